/*
 * The Particle control-request client (agent/daemon/particle-client.h) through real libusb against
 * usbemu's Particle devices in normal mode: tests/tools/particle-client-probe runs the client as
 * usbemu's COMMAND and prints one line a step; this test checks those lines and usbemu's trace
 * (the device's own account of every request).  Nothing waits by sleeping: the probe's steps wait
 * for the client's callbacks, and the test for the probe to exit.  Under the valgrind setup the
 * probe runs under valgrind (HEALER_TEST_WRAPPER), usbemu does not.
 */
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "module-names.h"
#include "test-util.h"
#include "usbemu-harness.h"

#define PHOTON 6
#define SP     MODULE_FUNCTION_SYSTEM_PART
#define UP     MODULE_FUNCTION_USER_PART

typedef UsbemuFixture Fixture;

static const char *const photon[] = {"--particle=photon", NULL};
static const char *const slow_photon[] = {"--particle=photon", "--time-scale=1000", NULL};
static const char *const p2[] = {"--particle=p2", NULL};

/*
 * usbemu --trace T DEVICE... --state S -- [wrapper] particle-client-probe PROBE...; asserts it exits 0,
 * returns its output and the trace in *trace.
 */
static char *
run(Fixture *f, const char *const *device, const char *const *probe, char **trace)
{
	g_autoptr(UsbemuCommand) cmd = usbemu_command_new(f, USBEMU_COMMAND_DEFAULT);
	char *out = NULL;

	usbemu_command_add_words(cmd, device);
	usbemu_command_add_printf(cmd, "--state=%s", f->state);
	usbemu_command_add(cmd, "--");
	usbemu_command_add_test_wrapper(cmd);
	usbemu_command_add(cmd, test_program("PARTICLE_CLIENT_PROBE"));
	usbemu_command_add_words(cmd, probe);
	g_assert_cmpint(usbemu_command_run(cmd, &out), ==, 0);
	*trace = usbemu_read_trace(f);
	return out;
}

/* `first` is in `text`, and before `then`. */
static void
assert_before(const char *text, const char *first, const char *then)
{
	const char *a = strstr(text, first);
	const char *b = strstr(text, then);

	if (a == NULL || b == NULL || a > b)
		g_error("'%s' not before '%s' in:\n%s", first, then, text);
}

/* A Photon with system parts 1 and 2 and an application: what module info has to report. */
static char *
photon_modules(Fixture *f)
{
	static const UsbemuModuleDep sp2_deps[] = {{SP, 1, 2300}};
	static const UsbemuModuleDep user_deps[] = {{SP, 2, 2300}};
	g_autofree char *sp1 = usbemu_write_module(f, "sp1.bin", PHOTON, 0x08020000, SP, 1, 2300, 30000, NULL, 0);
	g_autofree char *sp2 = usbemu_write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2300, 20000, sp2_deps, 1);
	g_autofree char *user = usbemu_write_module(f, "user.bin", PHOTON, 0x080A0000, UP, 1, 6, 4000, user_deps, 1);

	return g_strdup_printf("--modules=%s,%s,%s", sp1, sp2, user);
}

static void
check_module_info(Fixture *f, const char *format)
{
	g_autofree char *modules = photon_modules(f);
	g_autofree char *info = g_strdup_printf("--module-info=%s", format);
	const char *device[] = {"--particle=photon", modules, info, NULL};
	const char *probe[] = {"open", "module-info", "stats", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, device, probe, &trace);
	g_autofree char *line = g_strdup_printf(" modules (%s format)", format);
	const char *at;
	guint modules_seen = 0;
	unsigned long long transfers = 0, polls = 0, bytes_out = 0, bytes_in = 0;

	usbemu_assert_contains(out, "open: version 2.3.0 (client says 2.3.0)");
	/* Open: the raw version request, then RESET(0), before any request. */
	assert_before(trace,
	              "bRequest=0x50 wValue=0x0000 wIndex=0x001e wLength=64 result=", "particle RESET id=0 status=OK");
	assert_before(trace, "particle RESET id=0 status=OK",
	              "particle INIT type=GET_MODULE_INFO size=0 status=OK id=1");
	/* Done with a reply: read by RECV, in one chunk of exactly its size. */
	usbemu_assert_contains(trace, "particle CHECK id=1 status=OK result=0 size=");
	usbemu_assert_contains(trace, "particle RECV id=1 bytes=");
	at = strstr(out, "module-info: result 0, ");
	g_assert_nonnull(at);
	g_assert_cmpint(sscanf(at, "module-info: result 0, %*u bytes, %u", &modules_seen), ==, 1);
	g_assert_cmpuint(modules_seen, >=, 3);
	usbemu_assert_contains(at, line);
	at = strstr(out, "stats: ");
	g_assert_nonnull(at);
	g_assert_cmpint(sscanf(at, "stats: transfers %llu polls %llu bytes-out %llu bytes-in %llu", &transfers, &polls,
	                       &bytes_out, &bytes_in),
	                ==, 4);
	/* version, RESET(0), INIT, at least one CHECK, RECV */
	g_assert_cmpuint(transfers, >=, 5);
	g_assert_cmpuint(polls, >=, 1);
	g_assert_cmpuint(bytes_out, ==, 0);
	g_assert_cmpuint(bytes_in, >, 64);
}

static void
test_module_info_new(Fixture *f, gconstpointer data)
{
	(void)data;
	check_module_info(f, "new");
}

static void
test_module_info_old(Fixture *f, gconstpointer data)
{
	(void)data;
	check_module_info(f, "old");
}

/* Payloads over 64 bytes: INIT answers PENDING until the buffer is there; SEND in chunks of 4096. */
static void
test_pending_payloads(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"open", "request", "72", "64", "request", "72", "100", "request", "1234", "10000", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, photon, probe, &trace);

	(void)data;
	usbemu_assert_contains(out, "open: version none");
	/* 64 bytes: the pooled buffer, SEND at once. */
	usbemu_assert_contains(trace, "particle INIT type=GET_DEVICE_MODE size=64 status=OK id=1");
	assert_before(trace, "particle INIT type=GET_DEVICE_MODE size=64 status=OK id=1",
	              "particle SEND id=1 bytes=64");
	/* 100 bytes: PENDING, CHECK until OK (no result), then SEND. */
	usbemu_assert_contains(trace, "particle INIT type=GET_DEVICE_MODE size=100 status=PENDING id=2");
	assert_before(trace, "particle CHECK id=2 status=OK\n", "particle SEND id=2 bytes=100");
	usbemu_assert_contains(out, "request GET_DEVICE_MODE: result 0, ");
	/* 10000 bytes: three SENDs; the device does not know the type: its result, not an error. */
	usbemu_assert_contains(trace, "particle INIT type=1234 size=10000 status=PENDING id=3");
	g_assert_cmpuint(usbemu_count(trace, "particle SEND id=3 bytes=4096"), ==, 2);
	g_assert_cmpuint(usbemu_count(trace, "particle SEND id=3 bytes=1808"), ==, 1);
	usbemu_assert_contains(out, "request 1234: result -120, 0 bytes");
	usbemu_assert_lacks(out, "error");
}

/* Five at once: four in flight, the fifth waits for a slot; the device never answers BUSY. */
static void
test_five_at_once(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"open", "concurrent", "5", "90", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, photon, probe, &trace);

	(void)data;
	g_assert_cmpuint(usbemu_count(out, "concurrent GET_MODULE_INFO: result 0, "), ==, 5);
	usbemu_assert_contains(out, "concurrent: 5 answered, at most 4 at once now");
	usbemu_assert_lacks(trace, "status=BUSY");
	/* The fifth INIT only after one of the first four was done. */
	assert_before(trace, "particle CHECK id=", "particle INIT type=GET_MODULE_INFO size=0 status=OK id=5");
}

/*
 * The client allowed five: the fifth INIT goes out with the other four (one main-loop turn, before
 * any is CHECKed), so the device, holding four, answers BUSY.  The limit drops to four, the request
 * waits for a slot and succeeds; each of the four served without BUSY raises the limit one, back
 * to the five set.  So a second round of five meets BUSY again (exactly once, as the first): the
 * limit did climb back, and within a round it never goes past what the device took.
 */
static void
test_busy(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"--max-active=5", "open", "concurrent", "5", "90", "concurrent", "5", "90", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, photon, probe, &trace);

	(void)data;
	g_assert_cmpuint(usbemu_count(trace, "particle INIT type=GET_MODULE_INFO size=0 status=BUSY"), ==, 2);
	g_assert_cmpuint(usbemu_count(out, "concurrent GET_MODULE_INFO: result 0, "), ==, 10);
	g_assert_cmpuint(usbemu_count(out, "concurrent: 5 answered, at most 5 at once now"), ==, 2);
	usbemu_assert_lacks(out, "error");
}

/*
 * A request past its deadline: GET_MODULE_INFO takes 5 s on this device (--time-scale 1000), the
 * request has 100 ms.  The caller hears an error naming the request, its id and the step; the
 * device gets RESET(id); the next request gets the slot and an answer.
 */
static void
test_deadline(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"open", "request", "90", "0", "100", "request", "72", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, slow_photon, probe, &trace);

	(void)data;
	usbemu_assert_contains(out, "request GET_MODULE_INFO: error: GET_MODULE_INFO (id 1): no answer within 100 ms "
	                            "(polling CHECK for the result");
	usbemu_assert_contains(trace, "particle RESET id=1 status=OK");
	assert_before(trace, "particle RESET id=1 status=OK",
	              "particle INIT type=GET_DEVICE_MODE size=0 status=OK id=2");
	usbemu_assert_lacks(trace, "particle done id=1");
	usbemu_assert_contains(out, "request GET_DEVICE_MODE: result 0, ");
}

/*
 * Another host's RESET(0) (a second client opening the device) cancels our request while its
 * handler runs (5 s here): CHECK answers NOT_FOUND, and the error says so by name and id.
 */
static void
test_cancelled_by_another_host(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"open", "background-request", "90", "foreign-open", "wait-background", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, slow_photon, probe, &trace);

	(void)data;
	usbemu_assert_contains(out, "foreign-open: done");
	usbemu_assert_contains(out, "background request GET_MODULE_INFO: error: GET_MODULE_INFO (id 1): CHECK answered "
	                            "NOT_FOUND: the device cancelled the request");
	usbemu_assert_contains(trace, "particle CHECK id=1 status=NOT_FOUND");
	/* The device forgot it: no RESET(1) after. */
	usbemu_assert_lacks(trace, "particle RESET id=1");
}

/*
 * close() with work outstanding: on a P2 told there is no quirk, a raw OUT without a data stage
 * hangs (the device never answers it), so its transfer is surely in flight; GET_MODULE_INFO twice
 * at once, and the client closed in the first answer's callback.  No callback runs after, and the
 * hung transfer is cancelled, not waited for (under valgrind: nothing leaked or used after free).
 */
static void
test_close_in_flight(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"--quirk=off", "open", "background-raw-out", "40", "close-in-flight", "6", "90", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, p2, probe, &trace);

	(void)data;
	usbemu_assert_contains(trace, "particle hang: OUT bRequest=0x50 wIndex=40 without a data stage");
	usbemu_assert_contains(out, "close-in-flight: first answer, closing with 5 outstanding");
	usbemu_assert_contains(out, "close-in-flight: closed, 0 callbacks after");
	usbemu_assert_lacks(out, "background raw-out");
	usbemu_assert_lacks(trace, "particle raw reset");
}

/* RTL872x: an OUT request without payload carries one zero byte, or the device never answers it. */
static void
test_p2_data_stage(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"open", "module-info", "raw-out", "40", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, p2, probe, &trace);

	(void)data;
	usbemu_assert_contains(out, "device 2b04:c020 platform p2 data-stage yes");
	usbemu_assert_contains(out, "module-info: result 0, ");
	usbemu_assert_contains(trace, "bRequest=0x50 wValue=0x0000 wIndex=0x0028 wLength=1 result=1");
	usbemu_assert_contains(trace, "particle raw reset");
	usbemu_assert_lacks(trace, "particle hang");
	usbemu_assert_contains(out, "raw-out 40: done");
}

/* Without it the transfer never completes: after its 5 s it still counts as done (the device is resetting, for all the
 * host knows). */
static void
test_p2_without_data_stage(Fixture *f, gconstpointer data)
{
	const char *probe[] = {"--quirk=off", "open", "raw-out", "40", NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, p2, probe, &trace);

	(void)data;
	usbemu_assert_contains(out, "device 2b04:c020 platform p2 data-stage no");
	usbemu_assert_contains(trace, "particle hang: OUT bRequest=0x50 wIndex=40 without a data stage");
	usbemu_assert_contains(out, "raw-out 40: done");
}

/*
 * A module over control requests, as particle-usb sends one: START, DATA in the chunk START
 * answered (each over 64 bytes: PENDING for its buffer), FINISH; the device validates and resets.
 */
static void
test_ota(Fixture *f, gconstpointer data)
{
	static const UsbemuModuleDep sp2_deps[] = {{SP, 1, 2300}};
	g_autofree char *sp1 = usbemu_write_module(f, "sp1.bin", PHOTON, 0x08020000, SP, 1, 2300, 30000, NULL, 0);
	g_autofree char *sp2 = usbemu_write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2300, 5000, sp2_deps, 1);
	g_autofree char *modules = g_strdup_printf("--modules=%s", sp1);
	const char *device[] = {"--particle=photon", modules, "--time-scale=0.1", NULL};
	const char *probe[] = {"open", "ota", sp2, NULL};
	g_autofree char *trace = NULL;
	g_autofree char *out = run(f, device, probe, &trace);

	(void)data;
	usbemu_assert_contains(out, "ota: 5064 bytes, chunk 1024, result 0, ");
	usbemu_assert_contains(trace, "particle INIT type=START_FIRMWARE_UPDATE size=");
	g_assert_cmpuint(usbemu_count(trace, "particle INIT type=FIRMWARE_UPDATE_DATA size=1027 status=PENDING"), ==,
	                 4);
	g_assert_cmpuint(usbemu_count(trace, "particle INIT type=FIRMWARE_UPDATE_DATA size="), ==, 5);
	usbemu_assert_contains(trace, "particle update finished");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, func)                                                                                                \
	g_test_add("/particle-client/" name, Fixture, NULL, usbemu_fixture_set_up, func, usbemu_fixture_tear_down)
	ADD("module-info-new", test_module_info_new);
	ADD("module-info-old", test_module_info_old);
	ADD("pending-payloads", test_pending_payloads);
	ADD("five-at-once", test_five_at_once);
	ADD("busy", test_busy);
	ADD("deadline", test_deadline);
	ADD("cancelled-by-another-host", test_cancelled_by_another_host);
	ADD("close-in-flight", test_close_in_flight);
	ADD("p2-data-stage", test_p2_data_stage);
	ADD("p2-without-data-stage", test_p2_without_data_stage);
	ADD("ota", test_ota);
#undef ADD
	return g_test_run();
}
