/*
 * The Particle family (agent/daemon/particle-device.h) through healerd's USB backend, real libusb
 * and the daemon's control-request client, against usbemu's Particle devices in normal mode:
 * attach, identity (the id is the USB serial number, as the DFU family makes it), safe mode
 * detected from the module info in both formats, health and the device JSON, an install over
 * control requests (staged, the device resets and comes back), the DFU route (a mode switch: the
 * device comes back in DFU mode, served by the DFU family, under the same id), and a protected
 * device refused with the words a technician needs.
 *
 * Each test makes module files with libhealer's writer and runs
 *   usbemu --particle PLATFORM --state DIR --modules ... -- test-particle-family --child CASE ...
 * The child (this program again, under umockdev's preload) runs a USB backend on a main loop,
 * prints what the family reports and exits; this process checks the lines and never loads
 * umockdev.  Every wait is on an event (a device added, identified, an install's callback).
 * healerd itself runs under usbemu for `healerctl device` (what a technician sees of the device).
 */
#include <gio/gio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dfu-device.h"
#include "gateway-harness.h"
#include "healerd-process.h"
#include "healer-error.h"
#include "json-autoptr.h"
#include "module-names.h"
#include "module-writer.h"
#include "particle-device.h"
#include "test-util.h"
#include "usb-backend.h"
#include "usbemu-harness.h"

/* Device OS' modelled times, a hundredth of the defaults. */
#define TIME_SCALE "0.01"
#define SERIAL     "0A1B2C3D4E5F60718293A4B5"
#define ID         "0a1b2c3d4e5f60718293a4b5"

/* ---- the child: the USB backend under usbemu ------------------------------------------------------ */

typedef struct {
	GMainLoop *loop;
	const char *command; /* "show", "install" */
	GBytes *module;
	guint16 function, index, version;
	HealerDevice *device; /* the one served now (a reference) */
	gint64 added_at;
	gboolean installed; /* the install's callback ran */
	gboolean awaiting_return;
	int status;
} Child;

static void
print_device(HealerDevice *device)
{
	HealerDeviceHealth h;
	guint16 version = 0;
	const HealerDeviceState *state = healer_device_get_state(device);

	healer_device_get_health(device, &h);
	printf("family %s\n", healer_device_get_family(device));
	printf("id %s\n", healer_device_get_id(device));
	printf("platform %u\n", healer_device_get_platform_id(device));
	printf("flags%s%s\n",
	       healer_device_has_flag(device, HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET) ? " reenumerates" : "",
	       healer_device_has_flag(device, HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET) ? " install-needs-reset" : "");
	printf("mode %s reason %s running %d\n", h.mode, h.safe_mode_reason, h.running);
	printf("has-app %d app-valid %d app-dependencies-failed %d\n", h.has_app, h.app_valid,
	       h.app_dependencies_failed);
	printf("boot-reason %s\n", h.boot_reason);
	for (guint i = 0; state != NULL && i < state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(state->modules, HealerInstalledModule, i);
		printf("state %s %u v%u deps", healer_module_function_to_string(m->function), m->index, m->version);
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
			printf(" %s:%u:%u", healer_module_function_to_string(d->function), d->index, d->version);
		}
		printf("\n");
	}
	if (healer_device_lookup_module(device, MODULE_FUNCTION_SYSTEM_PART, 2, &version))
		printf("lookup system-part 2 v%u\n", version);
	if (HEALER_IS_PARTICLE_DEVICE(device)) {
		g_autoptr(json_object) o = healer_particle_device_to_json(HEALER_PARTICLE_DEVICE(device));
		printf("json %s\n",
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		printf("state-json %s\n", healer_device_get_state_json(device));
	}
	fflush(stdout);
}

static void
on_installed(HealerDevice *device, const GError *error, gpointer user_data)
{
	Child *child = user_data;

	(void)device;
	child->installed = TRUE;
	if (healer_device_error_is_mode_switch(error)) {
		printf("mode switch: %s\n", error->message);
		child->awaiting_return = TRUE;
	} else if (error != NULL) {
		printf("install failed: %s (permission denied %d)\n", error->message,
		       g_error_matches(error, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED));
		g_main_loop_quit(child->loop);
	} else {
		printf("staged\n");
		child->awaiting_return = TRUE;
	}
	fflush(stdout);
}

static void
on_log(HealerDevice *device, const char *text, gpointer user_data)
{
	(void)device;
	(void)user_data;
	printf("log: %s\n", text);
	fflush(stdout);
}

static void
on_identified(HealerDevice *device, gpointer user_data)
{
	Child *child = user_data;

	if (child->installed && !child->awaiting_return)
		return;
	/* Printed, not asserted (timing is the benchmarks'): from the backend's device-added to here. */
	printf("identified after %" G_GINT64_FORMAT " ms\n", (g_get_monotonic_time() - child->added_at) / 1000);
	print_device(device);
	if (child->awaiting_return || g_str_equal(child->command, "show")) {
		if (child->awaiting_return)
			printf("back\n");
		g_main_loop_quit(child->loop);
		return;
	}
	{
		HealerDeviceModule m = {.bytes = child->module,
		                        .function = (guint8)child->function,
		                        .index = (guint8)child->index,
		                        .version = child->version};
		healer_device_install_async(device, &m, on_installed, child);
	}
}

static void
on_device_added(HealerBackend *backend, HealerDevice *device, gpointer user_data)
{
	Child *child = user_data;

	(void)backend;
	child->added_at = g_get_monotonic_time();
	g_set_object(&child->device, device);
	printf("added %s (%s)\n", healer_device_get_port(device), healer_device_get_family(device));
	fflush(stdout);
	g_signal_connect(device, "identified", G_CALLBACK(on_identified), child);
	g_signal_connect(device, "log", G_CALLBACK(on_log), child);
}

static void
on_device_removed(HealerBackend *backend, HealerDevice *device, const char *why, gpointer user_data)
{
	(void)backend;
	(void)user_data;
	g_signal_handlers_disconnect_by_data(device, user_data);
	printf("removed %s: %s\n", healer_device_get_port(device), why != NULL ? why : "");
	fflush(stdout);
}

static gboolean
on_child_timeout(gpointer user_data)
{
	Child *child = user_data;

	printf("timed out\n");
	child->status = 3;
	g_main_loop_quit(child->loop);
	return G_SOURCE_REMOVE;
}

/* --child CASE [FILE FUNCTION INDEX VERSION [ROUTE]] */
static int
child_main(int argc, char **argv)
{
	Child child = {.command = argv[2]};
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerUsbBackend) backend = NULL;

	if (g_str_equal(child.command, "install")) {
		char *contents = NULL;
		gsize len = 0;
		if (argc < 7 || !g_file_get_contents(argv[3], &contents, &len, &error)) {
			fprintf(stderr, "child: install FILE FUNCTION INDEX VERSION [ROUTE]\n");
			return 2;
		}
		child.module = g_bytes_new_take(contents, len);
		child.function = (guint16)atoi(argv[4]);
		child.index = (guint16)atoi(argv[5]);
		child.version = (guint16)atoi(argv[6]);
	}
	child.loop = g_main_loop_new(NULL, FALSE);
	backend = healer_usb_backend_new(config, HEALER_USB_CONTEXT_FLAG_NONE, &error);
	if (backend == NULL) {
		fprintf(stderr, "child: %s\n", error->message);
		return 2;
	}
	/* After the backend, which sets the routes [particle] configures. */
	if (argc > 7) {
		HealerParticleInstallRoute route;
		if (!healer_particle_install_route_from_string(argv[7], &route))
			return 2;
		healer_particle_device_set_install_route(0, route);
	}
	g_signal_connect(backend, "device-added", G_CALLBACK(on_device_added), &child);
	g_signal_connect(backend, "device-removed", G_CALLBACK(on_device_removed), &child);
	healer_backend_start(HEALER_BACKEND(backend));
	g_timeout_add_seconds(60, on_child_timeout, &child);
	g_main_loop_run(child.loop);
	healer_backend_stop(HEALER_BACKEND(backend));
	g_clear_object(&child.device);
	g_clear_pointer(&child.module, g_bytes_unref);
	g_main_loop_unref(child.loop);
	return child.status;
}

/* ---- the test ------------------------------------------------------------------------------------------ */

typedef UsbemuFixture Fixture;

/* usbemu [--control] DEVICE-OPTIONS --state ... --serial ... --time-scale ... --: the program to run comes next. */
static UsbemuCommand *
device_command(Fixture *f, UsbemuCommandFlags flags, const char *const *device)
{
	UsbemuCommand *cmd = usbemu_command_new(f, flags);

	usbemu_command_add_words(cmd, device);
	usbemu_command_add_printf(cmd, "--state=%s", f->state);
	usbemu_command_add(cmd, "--serial=" SERIAL);
	usbemu_command_add(cmd, "--time-scale=" TIME_SCALE);
	usbemu_command_add(cmd, "--");
	return cmd;
}

/* usbemu [--control] DEVICE-OPTIONS -- this program --child ARGS: its exit status and output. */
static int
run_flags(Fixture *f, UsbemuCommandFlags flags, const char *const *device, const char *const *args, char **output)
{
	g_autoptr(UsbemuCommand) cmd = device_command(f, flags, device);
	g_autoptr(GError) error = NULL;
	g_autofree char *self = g_file_read_link("/proc/self/exe", &error);

	g_assert_no_error(error);
	usbemu_command_add(cmd, self);
	usbemu_command_add(cmd, "--child");
	usbemu_command_add_words(cmd, args);
	return usbemu_command_run(cmd, output);
}

static int
run(Fixture *f, const char *const *device, const char *const *args, char **output)
{
	return run_flags(f, USBEMU_COMMAND_DEFAULT, device, args, output);
}

#define PHOTON 6
#define ARGON  12
#define SP     MODULE_FUNCTION_SYSTEM_PART
#define UP     MODULE_FUNCTION_USER_PART

/* A Photon in dependency safe mode: system part 1 2202 needs system part 2 >= 2202, the flash holds 1102. */
static char *
photon_safe_mode_option(Fixture *f)
{
	static const UsbemuModuleDep sp1_deps[] = {{SP, 2, 2202}};
	static const UsbemuModuleDep user_deps[] = {{SP, 2, 2202}};
	g_autofree char *sp1 = usbemu_write_module(f, "sp1.bin", PHOTON, 0x08020000, SP, 1, 2202, 40000, sp1_deps, 1);
	g_autofree char *sp2 = usbemu_write_module(f, "sp2-old.bin", PHOTON, 0x08060000, SP, 2, 1102, 30000, NULL, 0);
	g_autofree char *user = usbemu_write_module(f, "user.bin", PHOTON, 0x080A0000, UP, 1, 6, 5000, user_deps, 1);

	return g_strconcat("--modules=", sp1, ",", sp2, ",", user, NULL);
}

/* An Argon's system part 1 6200, and an application (user part 2 v6) for `user_platform` with `user_deps`. */
static char *
argon_modules_option(Fixture *f, guint16 user_platform, const UsbemuModuleDep *user_deps, guint n_user_deps)
{
	g_autofree char *sp1 = usbemu_write_module(f, "sp1.bin", ARGON, 0x00030000, SP, 1, 6200, 20000, NULL, 0);
	g_autofree char *user =
	        usbemu_write_module(f, "user.bin", user_platform, 0x000B4000, UP, 2, 6, 3000, user_deps, n_user_deps);

	return g_strconcat("--modules=", sp1, ",", user, NULL);
}

/* Attach, identify, safe mode from the dependency check: every health field, the JSON, the old format. */
static void
test_safe_mode_detected(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_option(f);
	const char *device[] = {"--particle=photon", modules, NULL};
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, args, &out), ==, 0);
	usbemu_assert_contains(out, "(particle)\n");
	usbemu_assert_contains(out, "identified after ");
	usbemu_assert_contains(out, "\nfamily particle\nid " ID "\nplatform 6\nflags reenumerates\n");
	usbemu_assert_contains(out, "mode safe reason dependencies running 0\n");
	usbemu_assert_contains(out, "has-app 1 app-valid 0 app-dependencies-failed 1\n");
	usbemu_assert_contains(out, "boot-reason system-part 1 v2202: ");
	usbemu_assert_contains(out, "needs system-part 2 version >= 2202");
	usbemu_assert_contains(out, "lookup system-part 2 v1102\n");
	usbemu_assert_contains(out, "\"platform\":\"photon\"");
	usbemu_assert_contains(out, "\"device_os\":\"2.2.0\"");
	usbemu_assert_contains(out, "\"mode\":\"safe\"");
	usbemu_assert_contains(out, "\"module_info_format\":\"old\"");
	usbemu_assert_contains(out, "\"function\":\"system-part\",\"index\":1,\"version\":2202");
	usbemu_assert_contains(out, "\"failed\":[\"dependencies\"]");
	/* The faces' modules: the describe's shape, with the family's details. */
	usbemu_assert_contains(out, "state-json {\"p\":6,\"m\":[");
	usbemu_assert_contains(out, "\"details\":{\"usb_id\":\"2b04:c006\"");
}

/*
 * A failure while identifying it is tried again on a back-off, said once each time: the open's
 * RESET(0) stalled once (`stall 1 RESET`), or GET_MODULE_INFO's INIT (`stall 1 INIT`: the first
 * INIT is its).  The device is identified all the same, in the safe mode it is in.
 */
static void
check_identify_retry(Fixture *f, const char *fault, const char *failure, const char *fired)
{
	g_autofree char *modules = photon_safe_mode_option(f);
	const char *device[] = {"--particle=photon", modules, NULL};
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	usbemu_control(f, fault);
	g_assert_cmpint(run_flags(f, USBEMU_COMMAND_CONTROL, device, args, &out), ==, 0);
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, fired);
	usbemu_assert_contains(out, failure);
	usbemu_assert_contains(out, " (attempt 1 of 6; again in ");
	g_assert_cmpuint(usbemu_count(out, " (attempt "), ==, 1);
	usbemu_assert_lacks(out, "giving up");
	usbemu_assert_contains(out, "identified after ");
	usbemu_assert_contains(out, "\nfamily particle\nid " ID "\nplatform 6\n");
	usbemu_assert_contains(out, "mode safe reason dependencies running 0\n");
	usbemu_assert_contains(out, "\"device_os\":\"2.2.0\"");
}

static void
test_open_retried(Fixture *f, gconstpointer data)
{
	(void)data;
	check_identify_retry(f, "stall 1 RESET", "log: cannot open it (system version, then RESET of every request) (",
	                     "fault stall fired bRequest=RESET wIndex=0");
}

static void
test_module_info_retried(Fixture *f, gconstpointer data)
{
	(void)data;
	check_identify_retry(f, "stall 1 INIT", "log: cannot read its module info (",
	                     "fault stall fired bRequest=INIT wIndex=90");
}

/*
 * No `serial` in sysfs (usbemu --no-sysfs-serial): the family reads the iSerialNumber string from
 * the device (GET_DESCRIPTOR, before the open) and makes the same id of it.
 */
static void
test_serial_from_descriptor(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_option(f);
	const char *device[] = {"--particle=photon", modules, "--no-sysfs-serial", NULL};
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, args, &out), ==, 0);
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "bRequest=GET_DESCRIPTOR wValue=0x0303 wIndex=0x0409");
	usbemu_assert_contains(out, "\nfamily particle\nid " ID "\nplatform 6\n");
	usbemu_assert_contains(out, "\"serial\":\"" SERIAL "\"");
	usbemu_assert_contains(out, "mode safe reason dependencies running 0\n");
}

/* New format on an Argon; a corrupt system part: reinstalled through the state, the application's dependency on it. */
static void
test_integrity(Fixture *f, gconstpointer data)
{
	static const UsbemuModuleDep user_deps[] = {{SP, 1, 6000}};
	g_autofree char *option = argon_modules_option(f, ARGON, user_deps, 1);
	const char *device[] = {"--particle=argon", option, NULL};
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, args, &out), ==, 0);
	usbemu_assert_contains(out, "mode normal reason none running 1\n");
	usbemu_assert_contains(out, "has-app 1 app-valid 1 app-dependencies-failed 0\n");
	usbemu_assert_contains(out, "\"module_info_format\":\"new\"");
	g_free(g_steal_pointer(&out));
	usbemu_flash_corrupt(f, 0x30000 + 1000);
	g_assert_cmpint(run(f, device, args, &out), ==, 0);
	usbemu_assert_contains(out, "mode safe reason integrity running 0\n");
	usbemu_assert_contains(out, "has-app 1 app-valid 0 app-dependencies-failed 1\n");
	usbemu_assert_contains(out, "\"failed\":[\"integrity\"]");
	/* The corrupt module is no module: the plan puts system part 1 6200 there again. */
	usbemu_assert_lacks(out, "state system-part 1 ");
	usbemu_assert_contains(out, "state user-part 2 v6 deps system-part:1:6000 system-part:1:6200\n");
}

/* A platform failure (another platform's application) is reported, not healed. */
static void
test_platform_reported(Fixture *f, gconstpointer data)
{
	g_autofree char *option = argon_modules_option(f, 13, NULL, 0);
	const char *device[] = {"--particle=argon", option, NULL};
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, args, &out), ==, 0);
	usbemu_assert_contains(out, "mode safe reason platform running 0\n");
	usbemu_assert_contains(out, "has-app 1 app-valid 0 app-dependencies-failed 0\n");
}

/*
 * The safe-mode Photon, with `extra` (one device option, or NULL), told to install system part 2 2202
 * by `route` (NULL: the configured one); asserts the run exits 0 and returns its output.
 */
static char *
install_sp2_2202(Fixture *f, const char *extra, const char *route)
{
	g_autofree char *modules = photon_safe_mode_option(f);
	g_autofree char *sp2 = usbemu_write_module(f, "sp2-new.bin", PHOTON, 0x08060000, SP, 2, 2202, 30000, NULL, 0);
	const char *device[] = {"--particle=photon", modules, extra, NULL};
	const char *args[] = {"install", sp2, "4", "2", "2202", route, NULL};
	char *out = NULL;

	g_assert_cmpint(run(f, device, args, &out), ==, 0);
	return out;
}

/* Over control requests: staged, the device resets, comes back with the same id, out of safe mode. */
static void
test_install_control(Fixture *f, gconstpointer data)
{
	g_autofree char *out = install_sp2_2202(f, NULL, NULL);
	g_autofree char *trace = usbemu_read_trace(f);
	const char *back;

	(void)data;
	usbemu_assert_contains(out, "log: module staged: the device resets to apply it\nstaged\n");
	back = strstr(out, "back\n");
	g_assert_nonnull(back);
	usbemu_assert_contains(out, "removed usb:");
	/* What came back: the same id, running its application with system part 2 2202. */
	usbemu_assert_contains(strstr(out, "staged\n"), "id " ID "\n");
	usbemu_assert_contains(strstr(out, "staged\n"), "mode normal reason none running 1\n");
	usbemu_assert_contains(strstr(out, "staged\n"), "lookup system-part 2 v2202\n");
	usbemu_assert_contains(trace, "START_FIRMWARE_UPDATE");
	usbemu_assert_contains(trace, "FINISH_FIRMWARE_UPDATE");
}

/* The DFU route: DFU_MODE, a mode switch; the device comes back in DFU mode, the DFU family's, same id. */
static void
test_install_dfu_route(Fixture *f, gconstpointer data)
{
	g_autofree char *out = install_sp2_2202(f, NULL, "dfu");

	(void)data;
	usbemu_assert_contains(out, "mode switch: rebooting into DFU mode to install it\n");
	usbemu_assert_contains(out, "(dfu)\n");
	usbemu_assert_contains(strstr(out, "mode switch"), "family dfu\nid " ID "\n");
	usbemu_assert_contains(strstr(out, "mode switch"), "back\n");
}

/* A protected device: refused with what to do, as PERMISSION_DENIED (no retry helps). */
static void
test_protected(Fixture *f, gconstpointer data)
{
	g_autofree char *out = install_sp2_2202(f, "--protected", NULL);

	(void)data;
	usbemu_assert_contains(out, "install failed: the device refused the module at START: ");
	usbemu_assert_contains(out, "(permission denied 1)");
	usbemu_assert_lacks(out, "staged");
}

/* healerd's command line prefix: usbemu with the device, then the test wrapper, so that healerd runs under it. */
static char *
healerd_wrapper(Fixture *f, const char *const *device)
{
	g_autoptr(UsbemuCommand) cmd = device_command(f, USBEMU_COMMAND_DEFAULT, device);

	usbemu_command_add_test_wrapper(cmd);
	return usbemu_command_to_shell(cmd);
}

/*
 * What a technician sees: healerd serves the Photon in dependency safe mode (auto-heal off, so it
 * stays so), `healerctl device ID` shows its Device OS, route, format, tty and the module table with
 * each check and the reason; --json has the family's details.
 */
static void
test_healerctl_device(Fixture *f, gconstpointer data)
{
	g_auto(Bus) bus = {0};
	g_autofree char *modules = photon_safe_mode_option(f);
	const char *device[] = {"--particle=photon", modules, NULL};
	g_autofree char *store = g_build_filename(f->dir, "store", NULL);
	g_autofree char *healerd_dir = g_build_filename(f->dir, "healerd", NULL);
	g_autoptr(HealerdProcess) healerd = NULL;
	g_auto(TestRun) text = {0};
	g_auto(TestRun) json = {0};
	const char *judged[] = {ID, "safe", NULL};
	g_auto(GStrv) lines = NULL;

	(void)data;
	if (!have_dbus_daemon()) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	g_mkdir_with_parents(store, 0755);
	g_mkdir_with_parents(healerd_dir, 0755);
	healerd = healerd_process_new(healerd_dir, store, "auto-heal = false\n");
	healerd->bus_args = g_strdup(""); /* the system bus: the private one */
	healerd->wrapper = healerd_wrapper(f, device);
	bus_start(&bus);
	healerd_process_start(healerd);
	healerd_process_wait(healerd, judged, 1, 60000);
	bus_wait_for_healerd(&bus, 60000);
	healerctl(&text, "device", ID, NULL);
	g_test_message("healerctl device:\n%s", text.out);
	g_assert_cmpint(text.exit_status, ==, 0);
	usbemu_assert_contains(text.out, "Platform:     photon (6)\n");
	usbemu_assert_contains(text.out, "Mode:         safe (dependencies)\n");
	usbemu_assert_contains(text.out, "Device OS:    2.2.0\n");
	usbemu_assert_contains(text.out, "USB:          2b04:c006, serial number " SERIAL "\n");
	usbemu_assert_contains(text.out, "Install:      control (over control requests, no mode switch)\n");
	usbemu_assert_contains(text.out, "Module info:  ");
	usbemu_assert_contains(text.out, "  MODULE         VERSION  SIZE   CHECKS\n");
	usbemu_assert_contains(text.out, "TTYs:         ttyACM0\n");
	usbemu_assert_contains(text.out, "  system-part 1  2202     ");
	usbemu_assert_contains(text.out, "FAILED dependencies");
	usbemu_assert_contains(text.out,
	                       "      dependency check failed: needs system-part 2 version >= 2202 (has 1102)\n");
	usbemu_assert_contains(text.out, "  system-part 2  1102     ");
	usbemu_assert_contains(text.out, "  user-part 1    6        ");
	/* The family's table replaces the describe's list. */
	usbemu_assert_lacks(text.out, "        needs ");
	lines = g_strsplit(text.out, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++)
		g_assert_cmpint(g_utf8_strlen(lines[i], -1), <=, 80);
	healerctl(&json, "device", ID, "--json", NULL);
	g_assert_cmpint(json.exit_status, ==, 0);
	usbemu_assert_contains(json.out, "\"details\"");
	usbemu_assert_contains(json.out, "\"install_route\"");
	usbemu_assert_contains(json.out, "\"device_os\"");
	healerd_process_stop(healerd);
}

int
main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0)
		return child_main(argc, argv);
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, usbemu_fixture_set_up, func, usbemu_fixture_tear_down)
	ADD("/particle-family/safe-mode-detected", test_safe_mode_detected);
	ADD("/particle-family/identify-retry/open", test_open_retried);
	ADD("/particle-family/identify-retry/module-info", test_module_info_retried);
	ADD("/particle-family/serial-from-descriptor", test_serial_from_descriptor);
	ADD("/particle-family/integrity", test_integrity);
	ADD("/particle-family/platform-reported", test_platform_reported);
	ADD("/particle-family/install/control", test_install_control);
	ADD("/particle-family/install/dfu-route", test_install_dfu_route);
	ADD("/particle-family/protected", test_protected);
	ADD("/particle-family/healerctl-device", test_healerctl_device);
	return g_test_run();
}
