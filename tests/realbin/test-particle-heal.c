/*
 * healerd heals real Particle devices: real Device OS binaries (tests/realbin, fetched from npm by
 * fetch-reference-binaries.sh) in usbemu's Particle devices (`usbemu --particle`), healerd under
 * usbemu with its store holding the same binaries under a catalog healer-publish signed.
 *
 *   - a Photon (Gen 2, two system parts) in the real dependency safe mode of the reference's notes
 *     (bootloader 1.5.0, part 1 1.5.0, part 2 2.2.0, Tinker): healed over control requests in the
 *     order and with the bytes `healerctl plan` gives on its module info (the device's JSON as
 *     `healerctl device --json` prints it), each module in flash as its file is, and the device
 *     ends running Tinker (module info all passed); the same over DFU (`[particle] install = dfu`:
 *     the bootloader over control requests, part 1 by DfuSe after the mode switch, then back);
 *   - an Argon (Gen 3, new module-info format) healed with the 2.2.0 bootloader;
 *   - a Photon (module info in the new format: the JSON has each module's hash) that reboots
 *     mid-install heals on its return;
 *   - a Photon already in DFU mode with a broken system part heals by DFU and leaves DFU mode;
 *   - a P2 (RTL872x: a vendor OUT request without a data stage hangs it): identified, module info
 *     read, healed (its system part made with libhealer's writer: no real P2 system part is in
 *     the reference list; its application is the real Tinker 5.0.0);
 *   - a protected Photon refused once, with the words healer_particle_result_describe() has;
 *   - the CDC tty left alone: healerd's serial backend watches /dev/ttyACM*, not a byte reaches
 *     the device's tty, `healerctl devices` shows one device with its tty.
 *
 * Every wait is on an event: a healerd log line, a line of usbemu's trace.  Device OS' modelled
 * times run at a hundredth (--time-scale 0.01).  This process never loads umockdev.
 */
#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>

#include "gateway-harness.h"
#include "healer/module-format.h"
#include "healerd-process.h"
#include "json-autoptr.h"
#include "module-reader.h"
#include "test-util.h"
#include "usbemu-harness.h"

#define TIME_SCALE "0.01"
#define WAIT_MS    180000
#define P2         32

static char *tmpdir;
static char *cache; /* the extracted packages */

/* ---- the real binaries ------------------------------------------------------------------------ */

#define U150 "particle-cli-2.3.0/package/assets/updates/"
#define U220 "particle-cli-3.0.0/package/assets/updates/"
#define APPS "particle-cli-3.51.0/package/assets/knownApps/"

#define PHOTON_BOOTLOADER_150 U150 "photon-bootloader@1.5.0+lto.bin"
#define PHOTON_PART1_150      U150 "photon-system-part1@1.5.0.bin"
#define PHOTON_PART2_150      U150 "photon-system-part2@1.5.0.bin"
#define PHOTON_BOOTLOADER_220 U220 "photon-bootloader@2.2.0+lto.bin"
#define PHOTON_PART1_220      U220 "photon-system-part1@2.2.0.bin"
#define PHOTON_PART2_220      U220 "photon-system-part2@2.2.0.bin"
#define PHOTON_TINKER         APPS "photon/tinker/tinker-0.4.5-photon.bin"
#define ARGON_BOOTLOADER_150  U150 "argon-bootloader@1.5.0.bin"
#define ARGON_PART1_150       U150 "argon-system-part1@1.5.0.bin"
#define ARGON_BOOTLOADER_220  U220 "argon-bootloader@2.2.0.bin"
#define ARGON_SOFTDEVICE      U220 "argon-softdevice@2.2.0.bin"
#define ARGON_PART1_220       U220 "argon-system-part1@2.2.0.bin"
#define ARGON_TINKER          APPS "argon/tinker/tinker-0.8.0-rc.27-argon.bin"
#define P2_TINKER             APPS "p2/tinker/tinker-5.0.0-p2.bin"

static char *
real(const char *relative)
{
	return g_build_filename(cache, relative, NULL);
}

/* usbemu's --modules: the real binaries given (NULL-terminated), comma-separated. */
static char *
real_modules(const char *first, ...)
{
	g_autoptr(GString) list = g_string_new(NULL);
	va_list ap;

	va_start(ap, first);
	for (const char *r = first; r != NULL; r = va_arg(ap, const char *)) {
		g_autofree char *path = real(r);
		g_string_append_printf(list, "%s%s", list->len ? "," : "", path);
	}
	va_end(ap);
	return g_string_free(g_steal_pointer(&list), FALSE);
}

/* The store: a directory per platform with its modules and a catalog signed with the development key
 * (which healerd_process_new() trusts), system parts under their releases. */
static char *photon_store, *argon_store;

static void
publish(const char *dir)
{
	const char *source = test_program("HEALER_SOURCE_DIR");
	g_autofree char *key =
	        g_build_filename(source, "device-firmware", "keys", "development-DO-NOT-USE-IN-PRODUCTION.pem", NULL);
	g_autofree char *releases = g_build_filename(source, "data", "particle-device-os-releases.json", NULL);
	g_autofree char *catalog = g_build_filename(dir, "catalog.json", NULL);
	const char *argv[] = {test_program("HEALER_PUBLISH"),
	                      "catalog",
	                      "--modules",
	                      dir,
	                      "--serial",
	                      "1",
	                      "--key",
	                      key,
	                      "--releases",
	                      releases,
	                      "--output",
	                      catalog,
	                      NULL};
	g_auto(TestRun) run = {0};

	test_run(&run, argv);
	if (run.exit_status != 0)
		g_error("healer-publish catalog over %s failed (exit %d):\n%s%s", dir, run.exit_status, run.out,
		        run.err);
}

/* A store at `dir` holding the module files `paths` (`n` of them), published. */
static void
store_make(const char *dir, const char *const *paths, guint n)
{
	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	for (guint i = 0; i < n; i++) {
		g_autoptr(GBytes) bytes = test_read_file(paths[i]);
		g_autofree char *base = g_path_get_basename(paths[i]);
		g_autofree char *to = g_build_filename(dir, base, NULL);

		test_write_file(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
	}
	publish(dir);
}

/* A store at tmpdir/name of the real binaries `relative` (`n` of them). */
static char *
real_store(const char *name, const char *const *relative, guint n)
{
	char *dir = g_build_filename(tmpdir, name, NULL);
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < n; i++)
		g_ptr_array_add(paths, real(relative[i]));
	store_make(dir, (const char *const *)paths->pdata, n);
	return dir;
}

static void
fetch(void)
{
	const char *source = test_program("HEALER_SOURCE_DIR");
	const char *cache_root = test_program("HEALER_REALBIN_CACHE");
	g_autofree char *script = g_build_filename(source, "tests", "realbin", "fetch-reference-binaries.sh", NULL);
	const char *argv[] = {"/bin/bash", script, cache_root, NULL};
	g_auto(TestRun) run = {0};
	const char *photon[] = {PHOTON_BOOTLOADER_150, PHOTON_PART1_150, PHOTON_PART2_150,
	                        PHOTON_BOOTLOADER_220, PHOTON_PART1_220, PHOTON_PART2_220};
	const char *argon[] = {ARGON_BOOTLOADER_150, ARGON_PART1_150, ARGON_BOOTLOADER_220, ARGON_SOFTDEVICE,
	                       ARGON_PART1_220};

	test_run(&run, argv);
	if (run.exit_status != 0)
		g_error("fetching the reference binaries failed (exit %d; they come from npm, see the script):\n%s%s",
		        run.exit_status, run.out, run.err);
	cache = g_build_filename(cache_root, "extracted", NULL);
	photon_store = real_store("photon-store", photon, G_N_ELEMENTS(photon));
	argon_store = real_store("argon-store", argon, G_N_ELEMENTS(argon));
}

/* ---- one device under usbemu, healerd serving it ---------------------------------------------------- */

typedef struct {
	UsbemuFixture usb; /* usbemu's state, trace and control FIFO */
	HealerdProcess *healerd;
	Bus bus;
	char *id;           /* the device id: its USB serial number, lower case */
	const char *serial; /* [serial] ports for healerd (NULL: an empty directory of its own) */
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	usbemu_fixture_set_up(&f->usb, data);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	if (f->healerd != NULL)
		healerd_process_stop(f->healerd);
	g_clear_pointer(&f->healerd, healerd_process_free);
	bus_stop(&f->bus);
	usbemu_fixture_tear_down(&f->usb, data);
	g_free(f->id);
}

/*
 * healerd under `usbemu --particle PLATFORM --state ... --modules FILES --time-scale 0.01 OPTIONS...`
 * (OPTIONS NULL-terminated), its store `store`, `config` added at the end of its configuration
 * (after [healer]: more keys there, or other groups).  `bus`: on a private system bus (for
 * healerctl), else --no-bus.  `modules`: comma-separated, NULL on a kept flash.
 */
static void
start(Fixture *f, const char *platform, const char *modules, const char *store, const char *config, gboolean bus, ...)
{
	g_autoptr(UsbemuCommand) usbemu = usbemu_command_new(&f->usb, USBEMU_COMMAND_CONTROL);
	g_autofree char *healerd_dir = usbemu_path(&f->usb, "healerd");
	g_autofree char *serial_path = g_build_filename(f->usb.state, "serial", NULL);
	g_autofree char *serial = NULL;
	va_list ap;

	usbemu_command_add_printf(usbemu, "--particle=%s", platform);
	usbemu_command_add_printf(usbemu, "--state=%s", f->usb.state);
	usbemu_command_add(usbemu, "--time-scale=" TIME_SCALE);
	if (modules != NULL)
		usbemu_command_add_printf(usbemu, "--modules=%s", modules);
	va_start(ap, bus);
	for (const char *o = va_arg(ap, const char *); o != NULL; o = va_arg(ap, const char *))
		usbemu_command_add(usbemu, o);
	va_end(ap);
	usbemu_command_add(usbemu, "--");
	usbemu_command_add_test_wrapper(usbemu);

	g_assert_cmpint(g_mkdir_with_parents(healerd_dir, 0755), ==, 0);
	if (f->healerd != NULL) {
		healerd_process_stop(f->healerd);
		g_clear_pointer(&f->healerd, healerd_process_free);
		g_clear_pointer(&f->id, g_free);
	}
	f->healerd = healerd_process_new(healerd_dir, store, config);
	f->healerd->wrapper = usbemu_command_to_shell(usbemu);
	if (f->serial != NULL) {
		g_autofree char *text = NULL;
		g_autofree char *ports = g_strdup_printf("ports=%s/ports/*\n", healerd_dir);
		g_autofree char *wanted = g_strdup_printf("ports=%s\n", f->serial);
		g_autoptr(GString) s = NULL;
		g_assert_true(g_file_get_contents(f->healerd->config, &text, NULL, NULL));
		s = g_string_new(text);
		g_assert_cmpuint(g_string_replace(s, ports, wanted, 1), ==, 1);
		g_assert_true(g_file_set_contents(f->healerd->config, s->str, -1, NULL));
	}
	if (bus) {
		if (f->bus.process == NULL)
			bus_start(&f->bus);
		f->healerd->bus_args = g_strdup(""); /* the system bus: the private one */
	}
	healerd_process_start(f->healerd);
	{
		const char *attached[] = {"attached on usb:1-1.1: platform", NULL};
		healerd_process_wait(f->healerd, attached, 1, WAIT_MS);
	}
	if (bus)
		bus_wait_for_healerd(&f->bus, WAIT_MS);
	/* usbemu made the serial number by now (the device is attached). */
	g_assert_true(g_file_get_contents(serial_path, &serial, NULL, NULL));
	f->id = g_ascii_strdown(g_strstrip(serial), -1);
}

static void
wait_log(Fixture *f, guint count, ...)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new();
	va_list ap;

	va_start(ap, count);
	for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *))
		g_ptr_array_add(all, (gpointer)s);
	va_end(ap);
	g_ptr_array_add(all, NULL);
	healerd_process_wait(f->healerd, (const char *const *)all->pdata, count, WAIT_MS);
}

static guint
log_count(Fixture *f, const char *needle)
{
	const char *all[] = {needle, NULL};

	return healerd_process_count(f->healerd, all);
}

/* ---- what the device holds ------------------------------------------------------------------------ */

/* `healerctl plan --describe FILE --modules STORE --json`: the steps, "FILE function index vVERSION" each. */
typedef struct {
	GPtrArray *steps; /* char* */
	GPtrArray *files; /* char*: the module files, in order */
	gint64 bytes;
} Plan;

static void
plan_clear(Plan *p)
{
	g_clear_pointer(&p->steps, g_ptr_array_unref);
	g_clear_pointer(&p->files, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Plan, plan_clear)

static json_object *
field(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

static void
plan_describe(const char *describe_path, const char *store, Plan *plan)
{
	const char *argv[] = {
	        test_program("HEALERCTL"), "plan", "--describe", describe_path, "--modules", store, "--json", NULL};
	g_auto(TestRun) run = {0};
	g_autoptr(json_object) root = NULL;
	json_object *steps;

	test_run(&run, argv);
	log_run(&run, "healerctl plan --describe");
	g_assert_cmpint(run.exit_status, ==, 0);
	root = json_tokener_parse(run.out);
	g_assert_nonnull(root);
	steps = field(root, "steps");
	plan->steps = g_ptr_array_new_with_free_func(g_free);
	plan->files = g_ptr_array_new_with_free_func(g_free);
	plan->bytes = json_object_get_int64(field(root, "bytes"));
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		json_object *step = json_object_array_get_idx(steps, i);
		g_ptr_array_add(plan->steps,
		                g_strdup_printf("%s %d v%d", json_object_get_string(field(step, "function")),
		                                json_object_get_int(field(step, "index")),
		                                json_object_get_int(field(step, "version"))));
		g_ptr_array_add(plan->files, g_strdup(json_object_get_string(field(step, "file"))));
	}
}

/* The device's object (`healerctl device ID --json`). */
static json_object *
device_json(Fixture *f, const char *save_as)
{
	g_auto(TestRun) run = {0};
	json_object *device;

	healerctl(&run, "device", f->id, "--json", NULL);
	g_assert_cmpint(run.exit_status, ==, 0);
	device = json_tokener_parse(run.out);
	g_assert_nonnull(device);
	if (save_as != NULL)
		test_write_file(save_as, (const guint8 *)run.out, strlen(run.out));
	return device;
}

/* Every module of the device's JSON passed every check it ran. */
static void
assert_all_passed(json_object *device)
{
	json_object *modules = field(device, "modules");

	g_assert_cmpuint(json_object_array_length(modules), >=, 3);
	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		json_object *m = json_object_array_get_idx(modules, i);
		g_assert_cmpint(json_object_get_int(field(m, "vc")), ==, json_object_get_int(field(m, "vv")));
	}
}

/* Whether every module of the device's JSON has its SHA-256 ("u"): module info in the new format (the old has none). */
static gboolean
has_hashes(json_object *device, gboolean want)
{
	json_object *modules = field(device, "modules");

	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		json_object *hash = NULL;
		if (json_object_object_get_ex(json_object_array_get_idx(modules, i), "u", &hash) != want)
			return FALSE;
	}
	return TRUE;
}

/* The device's internal flash holds `file` byte for byte at its header's start address. */
static void
assert_flash_holds(Fixture *f, guint32 flash_base, const char *file)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parsed = healer_module_parse_file(file, &error);
	const HealerModule *m;

	g_assert_no_error(error);
	g_assert_cmpuint(parsed->len, ==, 1);
	m = parsed->pdata[0];
	if (!usbemu_flash_holds(&f->usb, flash_base, file, m->start_address))
		g_error("%s is not at 0x%08x in device 1's internal flash", file, m->start_address);
}

/* After a heal: every module of the plan is in the device's flash (healerd stopped first). */
static void
assert_flash_holds_plan(Fixture *f, const Plan *plan)
{
	healerd_process_stop(f->healerd);
	for (guint i = 0; i < plan->files->len; i++)
		assert_flash_holds(f, 0x08000000, plan->files->pdata[i]);
}

/*
 * healerd's log for the heal: its plan (the "plan step N:" lines), each step installed in that
 * order, the bytes of "starting the heal", the heal succeeded; all equal to `plan`.
 */
static void
assert_healed_as_planned(Fixture *f, const Plan *plan)
{
	g_autofree char *starting = g_strdup_printf("starting the heal: %u module(s), %" G_GINT64_FORMAT " bytes",
	                                            plan->steps->len, plan->bytes);
	g_autofree char *succeeded = g_strdup_printf("heal succeeded: %u module(s), %" G_GINT64_FORMAT " bytes",
	                                             plan->steps->len, plan->bytes);

	g_assert_cmpuint(log_count(f, starting), ==, 1);
	g_assert_cmpuint(log_count(f, succeeded), ==, 1);
	for (guint i = 0; i < plan->steps->len; i++) {
		g_autofree char *planned = g_strdup_printf("plan step %u: %s ", i + 1, (char *)plan->steps->pdata[i]);
		g_autofree char *installed = g_strdup_printf("installed %s (", (char *)plan->steps->pdata[i]);
		g_autofree char *of = g_strdup_printf("(step %u of %u)", i + 1, plan->steps->len);
		const char *both[] = {installed, of, NULL};
		g_assert_cmpuint(log_count(f, planned), ==, 1);
		g_assert_cmpuint(healerd_process_count(f->healerd, both), ==, 1);
	}
}

/* usbemu wrote each planned module (over control requests) in the plan's order, at its address, whole. */
static void
assert_written_over_control(Fixture *f, const Plan *plan, guint first, guint last)
{
	g_autofree char *text = usbemu_read_trace(&f->usb);
	const char *at = strstr(text, "event plugged mode=normal"); /* the writes after --modules' */

	g_assert_nonnull(at);
	for (guint i = first; i <= last; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) parsed = healer_module_parse_file(plan->files->pdata[i], &error);
		const HealerModule *m;
		g_autoptr(GBytes) bytes = test_read_file(plan->files->pdata[i]);
		g_autofree char *line = NULL;
		g_auto(GStrv) words = g_strsplit(plan->steps->pdata[i], " ", -1); /* function index vVERSION */

		g_assert_no_error(error);
		m = parsed->pdata[0];
		line = g_strdup_printf("particle flash %s %s version %s written at 0x%08x (%" G_GSIZE_FORMAT " bytes)",
		                       words[0], words[1], words[2] + 1, m->start_address, g_bytes_get_size(bytes));
		at = strstr(at, line);
		if (at == NULL)
			g_error("'%s' (step %u) not in usbemu's trace in the plan's order:\n%s", line, i + 1, text);
	}
}

/*
 * The device's JSON before any heal (healerd with auto-heal off, on the bus), saved to `path`, and
 * its plan; then healerd again, healing on its own (the same flash: usbemu keeps it).
 */
static void
describe_then_heal(Fixture *f, const char *modules, const char *config, const char *path, Plan *plan)
{
	g_autofree char *quiet = g_strconcat("auto-heal=false\n", config != NULL ? config : "", NULL);
	g_autoptr(json_object) before = NULL;

	start(f, "photon", modules, photon_store, quiet, TRUE, NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, safe", NULL);
	before = device_json(f, path);
	g_assert_cmpstr(json_object_get_string(field(before, "mode")), ==, "safe");
	g_assert_cmpstr(json_object_get_string(field(before, "platform")), ==, "photon");
	plan_describe(path, photon_store, plan);
	g_assert_cmpuint(plan->steps->len, ==, 2);
	g_assert_cmpstr(plan->steps->pdata[0], ==, "bootloader 0 v1006");
	g_assert_cmpstr(plan->steps->pdata[1], ==, "system-part 1 v2202");
	start(f, "photon", modules, photon_store, config, TRUE, NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, safe", NULL);
	wait_log(f, 1, "in safe mode: its application needs modules it lacks", NULL);
}

/* ---- the cases ------------------------------------------------------------------------------------- */

static char *
photon_safe_modules(void)
{
	return real_modules(PHOTON_BOOTLOADER_150, PHOTON_PART1_150, PHOTON_PART2_220, PHOTON_TINKER, NULL);
}

/*
 * The Photon in real dependency safe mode, healed over control requests: detected, planned as
 * `healerctl plan` plans its module info, each module installed and in flash, Tinker runs.  The
 * device's JSON comes from a first healerd with auto-heal off (describe_then_heal()).
 */
static void
test_photon_control(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_modules();
	g_autofree char *describe = usbemu_path(&f->usb, "device.json");
	g_autoptr(json_object) after = NULL;
	g_auto(Plan) plan = {0};

	(void)data;
	if (!have_dbus_daemon()) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	describe_then_heal(f, modules, NULL, describe, &plan);
	wait_log(f, 1, "heal succeeded", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, normal", NULL);
	assert_healed_as_planned(f, &plan);
	assert_written_over_control(f, &plan, 0, 1);
	after = device_json(f, NULL);
	g_assert_cmpstr(json_object_get_string(field(after, "mode")), ==, "normal");
	assert_all_passed(after);
	g_assert_true(has_hashes(after, FALSE)); /* the old format (usbemu's default on Gen 2) */
	assert_flash_holds_plan(f, &plan);
	{
		/* No DFU on this route. */
		g_autofree char *text = usbemu_read_trace(&f->usb);
		usbemu_assert_lacks(text, "mode=dfu");
	}
}

/* The same Photon over DFU: the bootloader over control requests, then part 1 by DfuSe after a mode switch. */
static void
test_photon_dfu(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_modules();
	g_autofree char *describe = usbemu_path(&f->usb, "device.json");
	g_autoptr(json_object) after = NULL;
	g_autofree char *text = NULL;
	g_auto(Plan) plan = {0};

	(void)data;
	if (!have_dbus_daemon()) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	describe_then_heal(f, modules, "[particle]\ninstall=dfu\n", describe, &plan);
	wait_log(f, 1, "heal succeeded", NULL);
	wait_log(f, 1, "rebooting into DFU mode to install it", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, dfu", NULL);
	wait_log(f, 1, "leaving DFU mode", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, normal", NULL);
	assert_healed_as_planned(f, &plan);
	/* The bootloader over control requests (DfuSe cannot write it), part 1 not. */
	assert_written_over_control(f, &plan, 0, 0);
	text = usbemu_read_trace(&f->usb);
	usbemu_assert_lacks(text, "particle flash system-part 1 version 2202");
	usbemu_assert_contains(text, "event plugged mode=dfu port=1-1.1");
	usbemu_assert_contains(text, "id=2b04:d006");
	usbemu_assert_contains(text, "event manifest next=normal");
	after = device_json(f, NULL);
	g_assert_cmpstr(json_object_get_string(field(after, "mode")), ==, "normal");
	assert_all_passed(after);
	assert_flash_holds_plan(f, &plan);
}

/* The Argon: part 1 of 2.2.0 over the 1.5.0 bootloader; the 2.2.0 bootloader goes over control requests. */
static void
test_argon(Fixture *f, gconstpointer data)
{
	g_autofree char *modules =
	        real_modules(ARGON_BOOTLOADER_150, ARGON_SOFTDEVICE, ARGON_PART1_220, ARGON_TINKER, NULL);
	g_autofree char *b220 = real(ARGON_BOOTLOADER_220);
	g_autofree char *text = NULL;

	(void)data;
	/* DFU configured: a bootloader still goes over control requests.  Module info in the new format (usbemu's
	 * default on Gen 3, said here). */
	start(f, "argon", modules, argon_store, "[particle]\ninstall=dfu\n", FALSE, "--module-info=new", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 12, safe", NULL);
	wait_log(f, 1, "starting the heal: 1 module(s), 47292 bytes", NULL);
	wait_log(f, 1, "installed bootloader 0 v1006", "(step 1 of 1)", NULL);
	wait_log(f, 1, "heal succeeded: 1 module(s), 47292 bytes", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 12, normal", NULL);
	healerd_process_stop(f->healerd);
	text = usbemu_read_trace(&f->usb);
	usbemu_assert_contains(text, "particle flash bootloader 0 version 1006 written at 0x000f4000 (47292 bytes)");
	usbemu_assert_lacks(text, "mode=dfu");
	assert_flash_holds(f, 0x00000000, b220);
}

/*
 * A Photon (module info in the new format) reset mid-install: `reboot 1` once the device has
 * acknowledged 40 DATA chunks (15 are the bootloader's: part 1 is on its way); the update in
 * progress is lost, and healerd heals it on its return.
 */
static void
test_reboot_mid_install(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_modules();
	g_autofree char *part1 = real(PHOTON_PART1_220), *bootloader = real(PHOTON_BOOTLOADER_220);
	g_autofree char *text = NULL;
	g_autoptr(json_object) after = NULL;

	(void)data;
	if (!have_dbus_daemon()) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	start(f, "photon", modules, photon_store, NULL, TRUE, "--module-info=new", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, safe", NULL);
	usbemu_wait_trace(&f->usb, "type=FIRMWARE_UPDATE_DATA result=0", 40, WAIT_MS);
	usbemu_control(&f->usb, "reboot 1");
	usbemu_wait_trace(&f->usb, "particle reset: the update in progress", 1, WAIT_MS);
	/* The attempt fails with the device gone, and resumes where it was when the device is back. */
	wait_log(f, 1, "heal attempt 1 failed: installing system-part 1 v2202", NULL);
	wait_log(f, 1, "resuming the heal: 1 module(s), 241496 bytes", NULL);
	wait_log(f, 1, "installed system-part 1 v2202", "(step 1 of 1)", NULL);
	wait_log(f, 1, "heal succeeded: 1 module(s), 241496 bytes", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, normal", NULL);
	after = device_json(f, NULL);
	assert_all_passed(after);
	g_assert_true(has_hashes(after, TRUE)); /* read in the new format */
	healerd_process_stop(f->healerd);
	text = usbemu_read_trace(&f->usb);
	/* Part 1 written once, whole: the transfer lost at the reboot left nothing. */
	g_assert_cmpuint(
	        usbemu_count(text, "particle flash system-part 1 version 2202 written at 0x08020000 (241496 bytes)"),
	        ==, 1);
	assert_flash_holds(f, 0x08000000, bootloader);
	assert_flash_holds(f, 0x08000000, part1);
}

/*
 * A Photon already in DFU mode whose part 1 (1.5.0) is older than part 2 (2.2.0) needs, the
 * bootloader new enough: part 1 of 2.2.0 by DfuSe, then DFU leave, and Tinker runs.
 */
static void
test_dfu_mode_broken_part(Fixture *f, gconstpointer data)
{
	g_autofree char *modules =
	        real_modules(PHOTON_BOOTLOADER_220, PHOTON_PART1_150, PHOTON_PART2_220, PHOTON_TINKER, NULL);
	g_autofree char *p1_220 = real(PHOTON_PART1_220);
	g_autofree char *text = NULL;

	(void)data;
	start(f, "photon", modules, photon_store, NULL, FALSE, "--mode=dfu", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, dfu", NULL);
	wait_log(f, 1, "starting the heal: 1 module(s), 241496 bytes", NULL);
	wait_log(f, 1, "installed system-part 1 v2202", "(step 1 of 1)", NULL);
	wait_log(f, 1, "heal succeeded: 1 module(s), 241496 bytes", NULL);
	wait_log(f, 1, "leaving DFU mode", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, normal", NULL);
	healerd_process_stop(f->healerd);
	text = usbemu_read_trace(&f->usb);
	usbemu_assert_contains(text, "event manifest next=normal");
	usbemu_assert_contains(text, "event plugged mode=normal port=1-1.1");
	usbemu_assert_lacks(text, "particle flash system-part 1 version 2202"); /* DfuSe wrote it */
	assert_flash_holds(f, 0x08000000, p1_220);
}

/*
 * The P2 (RTL872x): identified, module info read, healed over control requests.  Its system part
 * is libhealer's writer's (no real P2 system part is in the reference list); Tinker 5.0.0 is real
 * and needs system part 1 >= 5002.  A vendor OUT request without a data stage would hang it: the
 * trace shows none hung, and healerd's one such request (the raw reset, if sent) carries one byte.
 */
static void
test_p2(Fixture *f, gconstpointer data)
{
	g_autofree char *old_part = usbemu_write_module(&f->usb, "p2-part1-5001.bin", P2, 0x08060000,
	                                                MODULE_FUNCTION_SYSTEM_PART, 1, 5001, 48 * 1024, NULL, 0);
	g_autofree char *new_part = usbemu_write_module(&f->usb, "p2-part1-5002.bin", P2, 0x08060000,
	                                                MODULE_FUNCTION_SYSTEM_PART, 1, 5002, 48 * 1024, NULL, 0);
	g_autofree char *app = real(P2_TINKER);
	g_autofree char *modules = g_strjoin(",", old_part, app, NULL);
	g_autofree char *store = usbemu_path(&f->usb, "p2-store");
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	(void)data;
	store_make(store, (const char *const *)&new_part, 1);
	start(f, "p2", modules, store, NULL, FALSE, NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 32, safe", NULL);
	wait_log(f, 1, "installed system-part 1 v5002", "(step 1 of 1)", NULL);
	wait_log(f, 1, "heal succeeded: 1 module(s)", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 32, normal", NULL);
	healerd_process_stop(f->healerd);
	text = usbemu_read_trace(&f->usb);
	usbemu_assert_lacks(text, "result=hang");
	usbemu_assert_lacks(text, "particle hang");
	usbemu_assert_contains(text, "particle INIT type=GET_MODULE_INFO");
	usbemu_assert_contains(text, "particle flash system-part 1 version 5002 written at 0x08060000");
	/* Every vendor OUT request the host sent had a data stage (wLength >= 1). */
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (strstr(lines[i], " ctrl out bmRequestType=0x40 ") != NULL)
			g_assert_null(strstr(lines[i], " wLength=0 "));
	}
	assert_flash_holds(f, 0x08000000, new_part);
}

/* A protected Photon: refused once, the reason in the journal, the job failed, no retry. */
static void
test_protected(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_modules();
	g_autofree char *text = NULL;

	(void)data;
	start(f, "photon", modules, photon_store, NULL, FALSE, "--protected", NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, safe", NULL);
	wait_log(f, 1, "the device is protected (Device Protection, PROTECTED -1801)", "healerd will not retry", NULL);
	/* The job gave up (final: no retry is scheduled after it), then healerd stops. */
	wait_log(f, 1, "heal failed", "not retried", NULL);
	healerd_process_stop(f->healerd);
	text = usbemu_read_trace(&f->usb);
	g_assert_cmpuint(usbemu_count(text, "particle INIT type=START_FIRMWARE_UPDATE"), ==, 1);
	usbemu_assert_lacks(text, "particle INIT type=FIRMWARE_UPDATE_DATA");
	g_assert_cmpuint(log_count(f, "starting the heal"), ==, 1);
}

/*
 * The CDC tty: healerd's serial backend watches /dev/ttyACM*, the device's tty is there, and it is
 * left alone: no byte reaches it, `healerctl devices` shows one device with its tty.
 */
static void
test_tty_left_alone(Fixture *f, gconstpointer data)
{
	g_autofree char *modules =
	        real_modules(PHOTON_BOOTLOADER_220, PHOTON_PART1_220, PHOTON_PART2_220, PHOTON_TINKER, NULL);
	g_autofree char *text = NULL;
	g_auto(TestRun) devices = {0};
	g_auto(GStrv) lines = NULL;
	guint rows = 0;

	(void)data;
	if (!have_dbus_daemon()) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	f->serial = "/dev/ttyACM*";
	start(f, "photon", modules, photon_store, NULL, TRUE, NULL);
	wait_log(f, 1, "attached on usb:1-1.1: platform 6, normal", NULL);
	wait_log(f, 1, "/dev/ttyACM0: not opened: the USB serial port of Particle device usb:1-1.1 (2b04:c006)", NULL);
	healerctl(&devices, "devices", NULL);
	g_assert_cmpint(devices.exit_status, ==, 0);
	/* The header and one device: the Particle device, its tty with its port; no serial device. */
	lines = g_strsplit(devices.out, "\n", -1);
	for (guint i = 1; lines[i] != NULL; i++)
		rows += *g_strstrip(lines[i]) != '\0';
	g_assert_cmpuint(rows, ==, 1);
	usbemu_assert_contains(lines[1], f->id);
	usbemu_assert_contains(lines[1], "usb:1-1.1 (ttyACM0)  photon    normal");
	healerd_process_stop(f->healerd);
	text = usbemu_read_trace(&f->usb);
	usbemu_assert_contains(text, "event tty /dev/ttyACM0");
	usbemu_assert_lacks(text, "tty read");
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	fetch();
#define ADD(path, func) g_test_add("/particle-heal/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
	ADD("photon/control", test_photon_control);
	ADD("photon/dfu", test_photon_dfu);
	ADD("argon/control", test_argon);
	ADD("photon/reboot-mid-install", test_reboot_mid_install);
	ADD("photon/dfu-mode-broken-part", test_dfu_mode_broken_part);
	ADD("p2/data-stage", test_p2);
	ADD("photon/protected", test_protected);
	ADD("photon/tty-left-alone", test_tty_left_alone);
#undef ADD
	status = g_test_run();
	g_free(cache);
	g_free(photon_store);
	g_free(argon_store);
	test_tmpdir_free(tmpdir);
	return status;
}
