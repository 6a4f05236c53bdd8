/* What the end-to-end tests share: a private system bus, healerctl runs, simulated devices. */
#include "gateway-harness.h"

#include <glib/gstdio.h>
#include <signal.h>

/* ---- the private bus ---- */

void
bus_stop(Bus *bus)
{
	if (bus->process != NULL) {
		g_subprocess_send_signal(bus->process, SIGTERM);
		g_subprocess_wait(bus->process, NULL, NULL);
		g_clear_object(&bus->process);
	}
	g_clear_pointer(&bus->address, g_free);
	if (bus->dir != NULL) {
		test_tmpdir_free(bus->dir);
		bus->dir = NULL;
	}
}

/*
 * The system bus's default policy (as /usr/share/dbus-1/system.conf has it:
 * nobody owns names, method calls are denied unless a service's file opens
 * them), plus the project's policy file, unchanged.
 */
void
bus_start(Bus *bus)
{
	bus_start_with_policy(bus, NULL);
}

/* `extra`: policy XML read after the project's file, so it overrides it (NULL: none). */
void
bus_start_with_policy(Bus *bus, const char *extra)
{
	g_autofree char *config = NULL, *text = NULL, *policy = NULL, *log = NULL;
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	g_autoptr(GDataInputStream) out = NULL;
	g_autoptr(GError) error = NULL;
	const char *argv[] = {"dbus-daemon", NULL, "--print-address=1", "--nofork", NULL};

	bus->dir = test_tmpdir_new();
	g_assert_cmpint(g_chmod(bus->dir, 0755), ==, 0);
	config = g_build_filename(bus->dir, "bus.conf", NULL);
	log = g_build_filename(bus->dir, "dbus-daemon.log", NULL);
	policy = g_build_filename(test_program("HEALER_SOURCE_DIR"), "dbus", "io.healerd.Healer1.conf", NULL);
	g_assert_true(g_file_test(policy, G_FILE_TEST_EXISTS));
	text = g_strdup_printf(
	        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	        "<busconfig>\n"
	        "  <type>system</type>\n"
	        "  <listen>unix:dir=%s</listen>\n"
	        "  <auth>EXTERNAL</auth>\n"
	        "  <policy context=\"default\">\n"
	        "    <allow user=\"*\"/>\n"
	        "    <deny own=\"*\"/>\n"
	        "    <deny send_type=\"method_call\"/>\n"
	        "    <allow send_type=\"signal\"/>\n"
	        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
	        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
	        "    <allow receive_type=\"method_call\"/>\n"
	        "    <allow receive_type=\"method_return\"/>\n"
	        "    <allow receive_type=\"error\"/>\n"
	        "    <allow receive_type=\"signal\"/>\n"
	        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
	        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
	        "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
	        "    <allow send_destination=\"org.freedesktop.DBus\" "
	        "send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
	        "  </policy>\n"
	        "  <include>%s</include>\n"
	        "%s"
	        "</busconfig>\n",
	        bus->dir, policy, extra ? extra : "");
	test_write_file(config, (const guint8 *)text, strlen(text));

	argv[1] = g_strconcat("--config-file=", config, NULL);
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	bus->process = g_subprocess_launcher_spawnv(launcher, argv, &error);
	g_free((char *)argv[1]);
	g_assert_no_error(error);
	out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(bus->process));
	bus->address = g_data_input_stream_read_line(out, NULL, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(bus->address);
	g_test_message("private bus at %s", bus->address);
	/* healerd, healerctl, gdbus and this test all find it there. */
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", bus->address, TRUE);
	g_unsetenv("DBUS_SESSION_BUS_ADDRESS");
	g_unsetenv("HEALERCTL_BUS");
}

GDBusConnection *
bus_connect(const Bus *bus)
{
	g_autoptr(GError) error = NULL;
	GDBusConnection *c = g_dbus_connection_new_for_address_sync(
	        bus->address,
	        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL,
	        NULL, &error);

	g_assert_no_error(error);
	return c;
}

gboolean
has_owner(GDBusConnection *c)
{
	g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
	        c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
	        g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
	gboolean owned = FALSE;

	if (reply != NULL)
		g_variant_get(reply, "(b)", &owned);
	return owned;
}

void
bus_wait_for_healerd(const Bus *bus, guint timeout_ms)
{
	g_autoptr(GDBusConnection) c = bus_connect(bus);
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	while (!has_owner(c)) {
		if (g_get_monotonic_time() > deadline)
			g_error("healerd did not take %s on the test's bus within %u ms", BUS_NAME, timeout_ms);
		g_usleep(20000);
	}
}

/* ---- running healerctl ---- */

void
log_run(const TestRun *run, const char *what)
{
	g_test_message("%s: exit %d\nstdout:\n%sstderr:\n%s", what, run->exit_status, run->out, run->err);
}

/* healerctl ARGS... (NULL-terminated), wrapped like every command the tests run. */
void
healerctl(TestRun *run, const char *first, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GString) what = g_string_new("healerctl");
	va_list ap;

	g_ptr_array_add(argv, (gpointer)test_program("HEALERCTL"));
	va_start(ap, first);
	for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
		g_ptr_array_add(argv, (gpointer)a);
		g_string_append_printf(what, " %s", a);
	}
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	test_run(run, (const char *const *)argv->pdata);
	log_run(run, what->str);
}

gboolean
have_dbus_daemon(void)
{
	g_autofree char *path = g_find_program_in_path("dbus-daemon");

	return path != NULL;
}

/* ---- simulated devices ---- */

void
device_clear(Device *d)
{
	g_clear_pointer(&d->sim, sim_device_free);
	g_clear_pointer(&d->id, g_free);
	g_clear_pointer(&d->link, g_free);
	g_clear_pointer(&d->describe_json, g_free);
}

/* A device on DIR/ports/NAME; its HELLO and describe are kept, its line let go for healerd. */
void
start_device(Device *d, const char *dir, const char *name, const char *release, const char *app)
{
	g_autofree char *state = g_build_filename(dir, "devices", name, NULL);
	g_autoptr(HealerDescribe) describe = NULL;

	d->link = g_build_filename(dir, "ports", name, NULL);
	{
		const char *args[] = {"--release", release, "--app", app, "--link", d->link, NULL};
		d->sim = sim_device_start(state, args);
	}
	sim_device_wait_hello(d->sim, &d->hello, 10000);
	d->id = sim_hello_id(&d->hello);
	describe = sim_device_describe(d->sim, &d->describe_json);
	sim_device_disconnect(d->sim);
}

/* With healerd stopped: the device runs its application, every module valid. */
void
assert_runs(Device *d)
{
	g_autoptr(GBytes) hello_request = healer_link_build_hello_request();
	g_autoptr(HealerDescribe) describe = NULL;
	HealerLinkHello hello;

	sim_device_reconnect(d->sim);
	describe = sim_device_describe(d->sim, NULL);
	sim_device_send(d->sim, hello_request);
	sim_device_wait_hello(d->sim, &hello, 5000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_NORMAL);
	for (guint i = 0; i < describe->modules->len; i++)
		g_assert_true(healer_describe_module_valid(&g_array_index(describe->modules, HealerDescribeModule, i)));
	sim_device_disconnect(d->sim);
}
