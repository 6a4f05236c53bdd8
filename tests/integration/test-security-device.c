/*
 * An attached device attacking healerd (issue 13, findings 1 and 5; docs/security.md), with
 * tests/tools/hostile-device on a pty under healerd's ports:
 *
 * - id churn: a device that says it is another device after every describe.  The port holds one
 *   device at a time (each new id detaches the last: at most one object), and after
 *   PORT_GUARD_IDENTITIES ids within a minute the port is ignored, with one record saying why; once
 *   it is unplugged no object is left.
 * - id claim: a device that claims the id of a device on another port is refused there (a conflict
 *   record); the first port keeps the id, and after the impostor is unplugged the real device still
 *   answers `healerctl device ID`.  Once the first port lets go of the id, a device refused for it
 *   elsewhere gets it.
 * - LOG flood (1000 frames): at most PORT_GUARD_RECORD_BURST records per interval, then one "suppressed N records"
 *   record; what was logged and what was suppressed add up to what the device sent.
 * - hostile text: a newline in LOG text forges no healerd line, escape sequences in ERROR text reach
 *   neither the log nor `healerctl device` and `devices` (no ESC byte); the text shows escaped.
 *
 * Each asserts what every security test does (attack-harness.h): healerd stays up, answers
 * `healerctl status` within 1 s during the attack, returns to its RSS, opens nothing it must not.
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "attack-harness.h"
#include "healer-dbus.h"
#include "port-guard.h"

#define CLAIMED_ID "0123456789abcdef01234567"
/* After an attack, RSS has this long to come back. */
#define SETTLE_MS 30000
#define WAIT_MS   60000

/* ---- a hostile device ---- */

typedef struct {
	GSubprocess *process;
	char *link;
} Hostile;

static Hostile *hostile_start(Attack *a, const char *name, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* hostile-device --link PORTS/NAME ARGS...; its stderr goes to DIR/NAME.log. */
static Hostile *
hostile_start(Attack *a, const char *name, const char *first, ...)
{
	Hostile *h = g_new0(Hostile, 1);
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *log = g_strdup_printf("%s/%s.log", a->dir, name);
	g_autoptr(GError) error = NULL;
	va_list ap;

	h->link = g_build_filename(a->ports_dir, name, NULL);
	g_ptr_array_add(argv, (gpointer)test_program("HEALER_HOSTILE_DEVICE"));
	g_ptr_array_add(argv, (gpointer) "--link");
	g_ptr_array_add(argv, h->link);
	va_start(ap, first);
	for (const char *arg = first; arg != NULL; arg = va_arg(ap, const char *))
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	h->process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	return h;
}

/* Unplugged: the pty closes and its link goes. */
static void
hostile_unplug(Hostile *h)
{
	g_subprocess_send_signal(h->process, SIGTERM);
	g_subprocess_wait(h->process, NULL, NULL);
	g_clear_object(&h->process);
	g_assert_false(g_file_test(h->link, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK));
	g_free(h->link);
	g_free(h);
}

/* ---- what healerd shows ---- */

/* Device objects healerd exports (ObjectManager). */
static guint
count_objects(Attack *a)
{
	g_autoptr(GDBusConnection) c = bus_connect(&a->bus);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
	        c, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
	        G_VARIANT_TYPE("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
	g_autoptr(GVariant) objects = NULL;

	g_assert_no_error(error);
	objects = g_variant_get_child_value(reply, 0);
	return (guint)g_variant_n_children(objects);
}

static gboolean
has_byte(const char *text, char byte)
{
	return text != NULL && strchr(text, byte) != NULL;
}

/* Waits for `objects` device objects (the bus is asynchronous to the log). */
static void
wait_objects(Attack *a, guint objects)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;

	while (count_objects(a) != objects) {
		if (g_get_monotonic_time() > deadline)
			g_error("healerd exports %u device objects, not %u", count_objects(a), objects);
		g_usleep(50000);
	}
}

static void
test_id_churn(void)
{
	Attack a = {0};
	AttackProbe *probe;
	Hostile *h;
	guint attached, max_objects = 0;
	const char *ignored[] = {"ignoring", "device ids on it", NULL};
	const char *attaches[] = {"attached on", "/churn:", NULL};
	g_auto(TestRun) devices = {0};

	attack_setup(&a, NULL, NULL);
	probe = attack_probe_start(&a);
	h = hostile_start(&a, "churn", "--id-churn", NULL);
	/* The port holds one device at a time: sampled while it churns, never more than one object. */
	for (gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000;
	     healerd_process_count(a.healerd, ignored) == 0;) {
		max_objects = MAX(max_objects, count_objects(&a));
		if (g_get_monotonic_time() > deadline)
			healerd_process_wait(a.healerd, ignored, 1, 0);
	}
	g_assert_cmpuint(max_objects, <=, 1);
	/* One record says why, naming the cause; the port is let go, so its last object is gone too. */
	{
		const char *why[] = {"ignoring ", "/churn for 600 s: more than 5 device ids on it within 60 s",
		                     "a device's id never changes, so the device there is faulty or hostile", NULL};
		g_assert_cmpuint(healerd_process_count(a.healerd, why), ==, 1);
	}
	wait_objects(&a, 0);
	attached = healerd_process_count(a.healerd, attaches);
	g_assert_cmpuint(attached, >=, 1);
	g_assert_cmpuint(attached, <=, PORT_GUARD_IDENTITIES);
	/* While ignored, nothing more: no attach, no second record. */
	g_usleep(2 * G_USEC_PER_SEC);
	g_assert_cmpuint(healerd_process_count(a.healerd, attaches), ==, attached);
	g_assert_cmpuint(healerd_process_count(a.healerd, ignored), ==, 1);

	hostile_unplug(h);
	g_assert_cmpuint(count_objects(&a), ==, 0);
	healerctl(&devices, "devices", NULL);
	g_assert_cmpint(devices.exit_status, ==, 0);
	g_assert_nonnull(strstr(devices.out, "no devices attached"));
	g_assert_cmpuint(attack_probe_finish(probe), <=, 1000);
	attack_assert_unharmed(&a, NULL, SETTLE_MS);
	attack_teardown(&a);
}

static void
test_id_claim(void)
{
	Attack a = {0};
	AttackProbe *probe;
	Hostile *real, *impostor;
	const char *real_attached[] = {"[" CLAIMED_ID "] attached on ", "/real:", NULL};
	const char *refused[] = {"[" CLAIMED_ID "] refused on ", "/impostor: device " CLAIMED_ID " is attached on ",
	                         "/real, which keeps it", NULL};
	const char *impostor_gone[] = {"/impostor: closed (the device there was never attached)", NULL};
	const char *impostor_attached[] = {"[" CLAIMED_ID "] attached on ", "/impostor:", NULL};
	g_auto(TestRun) device = {0};
	g_auto(TestRun) after = {0};
	g_auto(TestRun) devices = {0};

	attack_setup(&a, NULL, NULL);
	real = hostile_start(&a, "real", "--device-id", CLAIMED_ID, NULL);
	healerd_process_wait(a.healerd, real_attached, 1, WAIT_MS);
	wait_objects(&a, 1);
	attack_rebaseline(&a);

	probe = attack_probe_start(&a);
	impostor = hostile_start(&a, "impostor", "--device-id", CLAIMED_ID, NULL);
	healerd_process_wait(a.healerd, refused, 1, WAIT_MS);
	g_assert_cmpuint(count_objects(&a), ==, 1);
	healerctl(&device, "device", CLAIMED_ID, NULL);
	g_assert_cmpint(device.exit_status, ==, 0);
	g_assert_nonnull(strstr(device.out, "/real (serial)"));
	healerctl(&devices, "devices", "--json", NULL);
	g_assert_cmpint(devices.exit_status, ==, 0);
	g_assert_null(strstr(devices.out, "/impostor"));

	/* The impostor goes: the real device's object and state stay. */
	hostile_unplug(impostor);
	healerd_process_wait(a.healerd, impostor_gone, 1, WAIT_MS);
	g_assert_cmpuint(count_objects(&a), ==, 1);
	healerctl(&after, "device", CLAIMED_ID, NULL);
	g_assert_cmpint(after.exit_status, ==, 0);
	g_assert_nonnull(strstr(after.out, "/real (serial)"));
	g_assert_nonnull(strstr(after.out, "State:        healthy"));
	/* The refusal was logged once, however often the impostor said who it is. */
	g_assert_cmpuint(healerd_process_count(a.healerd, refused), ==, 1);
	g_assert_cmpuint(attack_probe_finish(probe), <=, 1000);
	attack_assert_unharmed(&a, NULL, SETTLE_MS);

	/*
	 * The id goes to a device refused for it once its holder is gone (a USB device enumerated again
	 * on another port before the old one went must not stay refused).
	 */
	impostor = hostile_start(&a, "impostor", "--device-id", CLAIMED_ID, NULL);
	healerd_process_wait(a.healerd, refused, 2, WAIT_MS);
	hostile_unplug(real);
	healerd_process_wait(a.healerd, impostor_attached, 1, WAIT_MS);
	wait_objects(&a, 1);
	hostile_unplug(impostor);
	wait_objects(&a, 0);
	attack_teardown(&a);
}

/* The N of every "suppressed N records" line about the port (`where`: "/NAME: more than"). */
static guint
suppressed_total(Attack *a, const char *where, guint *records)
{
	const char *lines[] = {"suppressed ", " records from the device on ", where, NULL};
	g_autoptr(GPtrArray) found = healerd_process_lines(a->healerd, lines);
	guint total = 0;

	for (guint i = 0; i < found->len; i++) {
		const char *at = strstr(g_ptr_array_index(found, i), "suppressed ");
		total += (guint)g_ascii_strtoull(at + strlen("suppressed "), NULL, 10);
	}
	*records = found->len;
	return total;
}

/* Waits until the records of a flood of `sent` frames ("flood line I of SENT") and its suppressed ones add up. */
static void
wait_flood_accounted(Attack *a, const char *port_name, guint sent, guint *logged, guint *suppressed,
                     guint *suppressed_records)
{
	g_autofree char *of = g_strdup_printf(" of %u", sent);
	g_autofree char *where = g_strdup_printf("/%s: more than", port_name);
	const char *flood[] = {"device: flood line ", of, NULL};

	for (gint64 deadline = g_get_monotonic_time() + 3 * WAIT_MS * 1000;;) {
		*logged = healerd_process_count(a->healerd, flood);
		*suppressed = suppressed_total(a, where, suppressed_records);
		if (*logged + *suppressed >= sent)
			break;
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(200000);
	}
}

static void
test_log_flood(void)
{
	const guint sent = 1000;
	g_autofree char *count = g_strdup_printf("%u", sent);
	Attack a = {0};
	AttackProbe *probe;
	Hostile *h;
	guint logged = 0, suppressed = 0, suppressed_records = 0;

	attack_setup(&a, NULL, NULL);
	/*
	 * A first, smaller flood: the baseline is healerd's once it has served a device that logs (under
	 * ASan, the first records' allocations stay in its allocator's regions: 2.9 MiB).
	 */
	h = hostile_start(&a, "warm-up", "--log-flood", "200", NULL);
	wait_flood_accounted(&a, "warm-up", 200, &logged, &suppressed, &suppressed_records);
	hostile_unplug(h);
	attack_rebaseline(&a);

	probe = attack_probe_start(&a);
	h = hostile_start(&a, "flood", "--log-flood", count, NULL);
	/* Every LOG frame is either a record or counted in a "suppressed" record at its interval's end. */
	wait_flood_accounted(&a, "flood", sent, &logged, &suppressed, &suppressed_records);
	g_assert_cmpuint(logged + suppressed, ==, sent);
	g_assert_cmpuint(suppressed_records, >=, 1);
	/* At most a burst per interval: one interval per "suppressed" record, and maybe one more begun. */
	g_assert_cmpuint(logged, >=, PORT_GUARD_RECORD_BURST);
	g_assert_cmpuint(logged, <=, PORT_GUARD_RECORD_BURST * (suppressed_records + 1));
	{
		const char *why[] = {"suppressed ", " records from the device on ", "/flood: more than 50 in 10 s",
		                     NULL};
		g_assert_cmpuint(healerd_process_count(a.healerd, why), ==, suppressed_records);
	}
	g_assert_cmpuint(attack_probe_finish(probe), <=, 1000);
	attack_assert_unharmed(&a, NULL, SETTLE_MS);
	hostile_unplug(h);
	attack_teardown(&a);
}

/* A device whose LOG text forges a healerd line and whose ERROR text is made of escape sequences. */
static void
test_hostile_text(void)
{
	/* The title, a clear screen, a C1 CSI, and a line healerd would never write about this device. */
	const char *log_text = "boot\\nhealerd[info]: [" CLAIMED_ID "] heal succeeded";
	const char *error_text = "\\033]0;pwned\\007\\033[2J\\302\\23331mboom\\nhealerd[info]: forged";
	const char *forged_log[] = {"\nhealerd[info]: [" CLAIMED_ID "] heal succeeded", NULL};
	const char *log_shown[] = {"[" CLAIMED_ID "] device: boot\\nhealerd[info]: [" CLAIMED_ID "] heal succeeded",
	                           NULL};
	const char *gave_up[] = {"[" CLAIMED_ID "] heal failed: ", "gave up after 1 attempts", NULL};
	const char *escaped = "\\x1b]0;pwned\\x07\\x1b[2J\\xc2\\x9b31mboom\\nhealerd[info]: forged";
	Attack a = {0};
	AttackProbe *probe;
	Hostile *h;
	g_autofree char *log = NULL;
	g_auto(TestRun) device = {0};
	g_auto(TestRun) devices = {0};

	attack_setup(&a, test_program("HEALER_FIRMWARE_MODULES"), "max-attempts=1\n");
	probe = attack_probe_start(&a);
	h = hostile_start(&a, "text", "--device-id", CLAIMED_ID, "--mode", "heal", "--log-text", log_text,
	                  "--error-text", error_text, NULL);
	healerd_process_wait(a.healerd, log_shown, 1, WAIT_MS);
	/* The heal's first BEGIN is answered with the ERROR: the heal fails with its text, escaped. */
	healerd_process_wait(a.healerd, gave_up, 1, WAIT_MS);
	g_assert_true(g_file_get_contents(a.healerd->log, &log, NULL, NULL));
	g_assert_null(strstr(log, forged_log[0]));
	g_assert_null(strstr(log, "\nhealerd[info]: forged"));
	g_assert_false(has_byte(log, '\033'));
	g_assert_false(has_byte(log, '\a'));
	g_assert_nonnull(strstr(log, escaped));

	healerctl(&device, "device", CLAIMED_ID, NULL);
	g_assert_cmpint(device.exit_status, ==, 0);
	g_assert_false(has_byte(device.out, '\033'));
	g_assert_null(strstr(device.out, "\xc2\x9b"));
	g_assert_nonnull(strstr(device.out, "Last error:   "));
	g_assert_nonnull(strstr(device.out, escaped));
	healerctl(&devices, "devices", NULL);
	g_assert_cmpint(devices.exit_status, ==, 0);
	g_assert_false(has_byte(devices.out, '\033'));
	g_assert_null(strstr(devices.out, "\xc2\x9b"));
	g_assert_nonnull(strstr(devices.out, "device error -1320 answering BEGIN: \\x1b]0;pwned"));

	g_assert_cmpuint(attack_probe_finish(probe), <=, 1000);
	attack_assert_unharmed(&a, NULL, SETTLE_MS);
	hostile_unplug(h);
	attack_teardown(&a);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/security/device/id-churn", test_id_churn);
	g_test_add_func("/security/device/id-claim", test_id_claim);
	g_test_add_func("/security/device/log-flood", test_log_flood);
	g_test_add_func("/security/device/hostile-text", test_hostile_text);
	return g_test_run();
}
