/*
 * healerd end to end on simulated devices: it finds devices in safe mode
 * on its ports, plans, installs modules in dependency order (through a
 * stepping stone where needed), checks the application runs, reports a
 * device it cannot heal as blocked until the module appears, survives a
 * kill -9 in the middle of a heal, heals many devices at once, and lives
 * through two ports vanishing at once.
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "healer/module-format.h"
#include "healerd-process.h"
#include "sim-client.h"
#include "test-util.h"

static char *tmpdir;

typedef struct {
	SimDevice *sim;
	char *id;
} Device;

static void
device_clear(Device *d)
{
	g_clear_pointer(&d->sim, sim_device_free);
	g_clear_pointer(&d->id, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Device, device_clear)

/* A simulated device on DIR/ports/NAME, its id read from its HELLO, its line then let go. */
static void
start_device_paced(Device *d, const char *dir, const char *name, const char *release, const char *app, const char *baud)
{
	g_autofree char *state = g_build_filename(dir, "devices", name, NULL);
	g_autofree char *link = g_build_filename(dir, "ports", name, NULL);
	const char *args[] = {"--release", release, "--app", app, "--link", link, baud ? "--baud" : NULL, baud, NULL};
	HealerLinkHello hello;

	d->sim = sim_device_start(state, args);
	sim_device_wait_hello(d->sim, &hello, 10000);
	d->id = sim_hello_id(&hello);
	sim_device_disconnect(d->sim);
}

static void
start_device(Device *d, const char *dir, const char *name, const char *release, const char *app)
{
	start_device_paced(d, dir, name, release, app, NULL);
}

/* Reads the device's describe over its own line (healerd must be stopped). */
static HealerDescribe *
describe_device(Device *d)
{
	sim_device_reconnect(d->sim);
	return sim_device_describe(d->sim, NULL);
}

static void
assert_runs(Device *d, guint16 s1, guint16 s2)
{
	g_autoptr(HealerDescribe) describe = describe_device(d);
	g_autoptr(GBytes) hello_request = healer_link_build_hello_request();
	HealerLinkHello hello;
	const HealerDescribeModule *app = healer_describe_find(describe, MODULE_FUNCTION_USER_PART, 1);

	sim_device_send(d->sim, hello_request);
	sim_device_wait_hello(d->sim, &hello, 5000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_NORMAL);
	g_assert_nonnull(app);
	g_assert_true(healer_describe_module_valid(app));
	g_assert_cmpuint(healer_describe_find(describe, MODULE_FUNCTION_SYSTEM_PART, 1)->version, ==, s1);
	g_assert_cmpuint(healer_describe_find(describe, MODULE_FUNCTION_SYSTEM_PART, 2)->version, ==, s2);
	for (guint i = 0; i < describe->modules->len; i++)
		g_assert_true(healer_describe_module_valid(&g_array_index(describe->modules, HealerDescribeModule, i)));
	sim_device_disconnect(d->sim);
}

static const char *const *
words(const char *a, const char *b)
{
	static const char *w[3];

	w[0] = a;
	w[1] = b;
	w[2] = NULL;
	return w;
}

static void
test_heal_four_devices(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "four", NULL);
	g_autofree char *modules = g_build_filename(dir, "modules", NULL);
	g_autofree char *staged = g_build_filename(dir, "usb-stick", NULL);
	g_autofree char *arrived = g_build_filename(modules, "2.1.0", NULL);
	g_autoptr(HealerdProcess) healerd = NULL;
	g_auto(Device) healthy = {0}, stone = {0}, direct = {0}, blocked = {0}, requested = {0};
	g_autoptr(GPtrArray) steps = NULL;
	const char *order[] = {"system-part 1 v1203", "system-part 2 v1203", "system-part 1 v2002",
	                       "system-part 2 v2002"};
	guint at = 0;

	/* The store starts without 2.1.0: the sensor device needs it. */
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), modules, "2.1.0");
	healerd = healerd_process_new(dir, modules, NULL);
	start_device(&healthy, dir, "healthy", "2.0.0", "travel-in-time");
	start_device(&stone, dir, "stepping-stone", "1.0.0", "travel-in-time");
	start_device(&direct, dir, "direct", "1.0.0", "heartbeat");
	start_device(&blocked, dir, "blocked", "2.0.0", "sensor");
	{
		/* In safe mode because it was asked to be: reported, not healed. */
		g_autofree char *state = g_build_filename(dir, "devices", "requested", NULL);
		g_autofree char *link = g_build_filename(dir, "ports", "requested", NULL);
		const char *args[] = {"--release", "1.0.0", "--app", "tinker", "--safe-mode", "--link", link, NULL};
		HealerLinkHello hello;
		requested.sim = sim_device_start(state, args);
		sim_device_wait_hello(requested.sim, &hello, 10000);
		requested.id = sim_hello_id(&hello);
		sim_device_disconnect(requested.sim);
	}
	healerd_process_start(healerd);

	healerd_process_wait(healerd, words(stone.id, "heal succeeded"), 1, 120000);
	healerd_process_wait(healerd, words(direct.id, "heal succeeded"), 1, 60000);
	healerd_process_wait(healerd, words(blocked.id, "cannot heal"), 1, 30000);
	{
		g_autoptr(GPtrArray) why = healerd_process_lines(healerd, words(blocked.id, "cannot heal"));
		g_test_message("%s", (char *)g_ptr_array_index(why, 0));
		g_assert_nonnull(strstr(g_ptr_array_index(why, 0), "system-part 2 >= 2100"));
	}
	g_assert_cmpuint(healerd_process_count(healerd, words(healthy.id, "attached on")), ==, 1);
	healerd_process_wait(healerd, words(requested.id, "nothing to heal (requested)"), 1, 10000);
	g_assert_cmpuint(healerd_process_count(healerd, words(requested.id, "the heal")), ==, 0);
	g_assert_cmpuint(healerd_process_count(healerd, words(healthy.id, "the heal")), ==, 0);
	g_assert_cmpuint(healerd_process_count(healerd, words(healthy.id, "in safe mode")), ==, 0);

	/* The stepping-stone device went through 1.2.0, in dependency order. */
	steps = healerd_process_lines(healerd, words(stone.id, "installed "));
	for (guint i = 0; i < steps->len && at < G_N_ELEMENTS(order); i++) {
		g_test_message("%s", (char *)g_ptr_array_index(steps, i));
		if (strstr(g_ptr_array_index(steps, i), order[at]) != NULL)
			at++;
	}
	g_assert_cmpuint(at, ==, G_N_ELEMENTS(order));

	/* 2.1.0 arrives in the module directory (copied elsewhere, then moved in whole). */
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), staged, NULL);
	{
		g_autofree char *release = g_build_filename(staged, "2.1.0", NULL);
		g_assert_cmpint(g_rename(release, arrived), ==, 0);
	}
	healerd_process_wait(healerd, words(blocked.id, "heal succeeded"), 1, 120000);
	healerd_process_stop(healerd);

	assert_runs(&healthy, 2002, 2002);
	assert_runs(&stone, 2002, 2002);
	assert_runs(&direct, 1100, 1100);
	assert_runs(&blocked, 2100, 2100);
	g_assert_true(sim_device_wait_log(stone.sim, "travel-in-time: running", 10) ||
	              healerd_process_count(healerd, words(stone.id, "travel-in-time: running")) > 0);
}

/* kill -9 healerd in the middle of a heal: started again, it finishes the job. */
static void
test_restart_mid_heal(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "restart", NULL);
	g_autoptr(HealerdProcess) healerd = healerd_process_new(dir, test_program("HEALER_FIRMWARE_MODULES"), NULL);
	g_auto(Device) dev = {0};

	/* Paced (460800 baud: about a second a module) so the kill lands with steps still to go. */
	start_device_paced(&dev, dir, "victim", "1.0.0", "travel-in-time", "460800");
	healerd_process_start(healerd);
	healerd_process_wait(healerd, words(dev.id, "(step 2 of"), 1, 120000);
	healerd_process_kill(healerd);
	g_assert_cmpuint(healerd_process_count(healerd, words(dev.id, "(step 5 of")), ==, 0);

	healerd_process_start(healerd);
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, 120000);
	g_assert_cmpuint(healerd_process_count(healerd, words(dev.id, "resuming the heal")), >=, 1);
	healerd_process_stop(healerd);
	assert_runs(&dev, 2002, 2002);
}

static void
test_many_devices(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "many", NULL);
	g_autoptr(HealerdProcess) healerd = healerd_process_new(dir, test_program("HEALER_FIRMWARE_MODULES"), NULL);
	const char *count_env = g_getenv("HEALER_MANY_DEVICES");
	guint n = count_env ? (guint)atoi(count_env) : 32;
	g_autofree Device *devices = g_new0(Device, n);
	gint64 start;

	for (guint i = 0; i < n; i++) {
		g_autofree char *name = g_strdup_printf("dev%02u", i);
		start_device(&devices[i], dir, name, "1.0.0", i % 2 ? "heartbeat" : "travel-in-time");
	}
	start = g_get_monotonic_time();
	healerd_process_start(healerd);
	{
		const char *succeeded[] = {"heal succeeded", NULL};
		healerd_process_wait(healerd, succeeded, n, 300000);
	}
	g_test_message("%u devices healed in %.1f s", n, (g_get_monotonic_time() - start) / 1e6);
	healerd_process_stop(healerd);
	for (guint i = 0; i < n; i++) {
		g_assert_cmpuint(healerd_process_count(healerd, words(devices[i].id, "heal succeeded")), ==, 1);
		assert_runs(&devices[i], i % 2 ? 1100 : 2002, i % 2 ? 1100 : 2002);
		device_clear(&devices[i]);
	}
}

/* No bus to serve on (none running, as on a gateway booted without D-Bus): healing goes on, quietly. */
static void
test_bus_unreachable(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "no-bus", NULL);
	g_autofree char *address = NULL;
	g_autoptr(HealerdProcess) healerd = healerd_process_new(dir, test_program("HEALER_FIRMWARE_MODULES"), NULL);
	g_auto(Device) device = {0};
	const char *succeeded[] = {"heal succeeded", NULL};
	const char *criticals[] = {"critical", NULL};
	const char *no_bus[] = {"no D-Bus connection", NULL};

	address = g_strdup_printf("unix:path=%s/no-such-bus", dir);
	healerd->bus_args = g_strdup(""); /* the system bus, which is not there */
	start_device(&device, dir, "lonely", "1.0.0", "heartbeat");
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", address, TRUE);
	healerd_process_start(healerd);
	g_unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
	healerd_process_wait(healerd, succeeded, 1, 120000);
	healerd_process_stop(healerd);
	g_assert_cmpuint(healerd_process_count(healerd, no_bus), ==, 1);
	g_assert_cmpuint(healerd_process_count(healerd, criticals), ==, 0);
	assert_runs(&device, 1100, 1100);
}

/*
 * Two ports vanish in the same instant (a USB hub with two serial adapters pulled): the first
 * port's hang-up rescans the ports, which lets go of the second's attachment while the second's own
 * hang-up is already pending in the same main-loop iteration.  That hang-up once reported to the
 * freed attachment (a use-after-free that crashed healerd).  healerd is stopped while both go, so both
 * hang-ups are ready in one poll whatever the machine's load.
 */
static void
test_two_ports_vanish_at_once(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "vanish", NULL);
	g_autofree char *modules = g_build_filename(dir, "modules", NULL);
	g_autoptr(HealerdProcess) healerd = NULL;
	g_auto(Device) a = {0}, b = {0};
	g_autofree char *link_a = NULL, *link_b = NULL;
	GPid pid;

	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), modules, NULL);
	healerd = healerd_process_new(dir, modules, NULL);
	start_device(&a, dir, "left", "2.0.0", "travel-in-time");
	start_device(&b, dir, "right", "2.0.0", "travel-in-time");
	link_a = g_build_filename(dir, "ports", "left", NULL);
	link_b = g_build_filename(dir, "ports", "right", NULL);
	healerd_process_start(healerd);
	healerd_process_wait(healerd, words(a.id, "attached on"), 1, 60000);
	healerd_process_wait(healerd, words(b.id, "attached on"), 1, 60000);

	pid = (GPid)g_ascii_strtoll(g_subprocess_get_identifier(healerd->process), NULL, 10);
	g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
	sim_device_kill(a.sim);
	sim_device_kill(b.sim);
	g_assert_cmpint(unlink(link_a), ==, 0);
	g_assert_cmpint(unlink(link_b), ==, 0);
	g_assert_cmpint(kill(pid, SIGCONT), ==, 0);

	/* Both let go, each reported once, and healerd still serving. */
	healerd_process_wait(healerd, words(a.id, "detached"), 1, 30000);
	healerd_process_wait(healerd, words(b.id, "detached"), 1, 30000);
	g_assert_cmpuint(healerd_process_count(healerd, words(a.id, "detached")), ==, 1);
	g_assert_cmpuint(healerd_process_count(healerd, words(b.id, "detached")), ==, 1);
	/* A healerd that crashed was signalled, and this fails. */
	healerd_process_stop(healerd);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/healerd/heal-four-devices", test_heal_four_devices);
	g_test_add_func("/healerd/restart-mid-heal", test_restart_mid_heal);
	g_test_add_func("/healerd/many-devices", test_many_devices);
	g_test_add_func("/healerd/bus-unreachable", test_bus_unreachable);
	g_test_add_func("/healerd/two-ports-vanish-at-once", test_two_ports_vanish_at_once);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
