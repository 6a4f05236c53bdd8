#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "events.h"
#include "journal.h"
#include "notify.h"
#include "test-util.h"

static const char *
field(const char *key)
{
	return test_log_field(key);
}

static void
test_event_fields(void)
{
	healer_journal_event(HEALER_MSG_MODULE_INSTALLED, "e00fce68ae40e7ab6e4e3e11", "/dev/ttyACM0",
	                     "system-part1@2002", 3, G_LOG_LEVEL_INFO, "installed %s (%d of %d)", "system-part 1", 3,
	                     5);
	g_assert_cmpstr(field("MESSAGE"), ==, "[e00fce68ae40e7ab6e4e3e11] installed system-part 1 (3 of 5)");
	g_assert_cmpstr(field("MESSAGE_ID"), ==, HEALER_MSG_MODULE_INSTALLED);
	g_assert_cmpstr(field("HEALER_DEVICE_ID"), ==, "e00fce68ae40e7ab6e4e3e11");
	g_assert_cmpstr(field("HEALER_PORT"), ==, "/dev/ttyACM0");
	g_assert_cmpstr(field("HEALER_MODULE"), ==, "system-part1@2002");
	g_assert_cmpstr(field("HEALER_STEP"), ==, "3");
	g_assert_cmpstr(field("GLIB_DOMAIN"), ==, "healerd");
	g_assert_cmpstr(field("PRIORITY"), ==, "6");
	g_assert_nonnull(field("CODE_FILE"));
	g_assert_cmpstr(field("CODE_FUNC"), ==, "test_event_fields");
	g_assert_cmpint(test_log_last_level() & G_LOG_LEVEL_MASK, ==, G_LOG_LEVEL_INFO);

	/* Optional fields are left out, and no device means no prefix. */
	healer_journal_event(HEALER_MSG_STORE_REJECTED, NULL, NULL, "/x.bin", -1, G_LOG_LEVEL_WARNING, "bad");
	g_assert_cmpstr(field("MESSAGE"), ==, "bad");
	g_assert_null(field("HEALER_DEVICE_ID"));
	g_assert_null(field("HEALER_PORT"));
	g_assert_null(field("HEALER_STEP"));
	g_assert_cmpstr(field("HEALER_MODULE"), ==, "/x.bin");
	g_assert_cmpstr(field("PRIORITY"), ==, "4");

	healer_journal_event(NULL, NULL, NULL, NULL, 0, G_LOG_LEVEL_DEBUG, "plain");
	g_assert_null(field("MESSAGE_ID"));
	g_assert_cmpstr(field("HEALER_STEP"), ==, "0");
	g_assert_cmpstr(field("PRIORITY"), ==, "7");

	/* ERROR would abort the daemon: logged as critical instead. */
	healer_journal_event(HEALER_MSG_HEAL_FAILED, "dev", NULL, NULL, -1, G_LOG_LEVEL_ERROR, "x");
	g_assert_cmpint(test_log_last_level() & G_LOG_LEVEL_MASK, ==, G_LOG_LEVEL_CRITICAL);
}

static void
test_format_line(void)
{
	const GLogField ours[] = {{"MESSAGE", "[dev] healed", -1}, {"GLIB_DOMAIN", "healerd", -1}};
	const GLogField gio[] = {{"MESSAGE", "oops", -1}, {"GLIB_DOMAIN", "GLib-GIO", -1}};
	const GLogField counted[] = {{"MESSAGE", "abcdef", 3}};
	g_autofree char *a = healer_journal_format_line(G_LOG_LEVEL_INFO, ours, G_N_ELEMENTS(ours));
	g_autofree char *b = healer_journal_format_line(G_LOG_LEVEL_WARNING, gio, G_N_ELEMENTS(gio));
	g_autofree char *c = healer_journal_format_line(G_LOG_LEVEL_MESSAGE, counted, G_N_ELEMENTS(counted));

	g_assert_cmpstr(a, ==, "healerd[info]: [dev] healed");
	g_assert_cmpstr(b, ==, "healerd[warning]: GLib-GIO: oops");
	g_assert_cmpstr(c, ==, "healerd[notice]: abc");
}

static const char *const all_ids[] = {
        HEALER_MSG_DEVICE_ATTACHED,  HEALER_MSG_DEVICE_DETACHED, HEALER_MSG_SAFE_MODE_DETECTED, HEALER_MSG_HEAL_STARTED,
        HEALER_MSG_MODULE_INSTALLED, HEALER_MSG_HEAL_SUCCEEDED,  HEALER_MSG_HEAL_FAILED,        HEALER_MSG_HEAL_BLOCKED,
        HEALER_MSG_DEVICE_LOG,       HEALER_MSG_STORE_REJECTED,  HEALER_MSG_INSECURE_UPSTREAM,  HEALER_MSG_PORT_REFUSED,
        HEALER_MSG_DEVICE_CONFLICT,  HEALER_MSG_PORT_IGNORED,    HEALER_MSG_LOG_SUPPRESSED,
};

/* Every MESSAGE_ID is a distinct 128-bit id with one entry in the journal message catalog, which has no others. */
static void
test_message_catalog(void)
{
	g_autofree char *path = g_build_filename(g_getenv("HEALER_SOURCE_DIR"), "packaging", "healerd.catalog", NULL);
	g_autoptr(GBytes) text = test_read_file(path);
	g_auto(GStrv) lines = g_strsplit(g_bytes_get_data(text, NULL), "\n", -1);
	guint entries = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(all_ids); i++) {
		g_autofree char *header = g_strconcat("-- ", all_ids[i], NULL);
		guint found = 0;

		g_assert_cmpuint(strlen(all_ids[i]), ==, 32);
		for (const char *p = all_ids[i]; *p; p++)
			g_assert_true(g_ascii_isdigit(*p) || (*p >= 'a' && *p <= 'f'));
		for (gsize j = 0; j < i; j++)
			g_assert_cmpstr(all_ids[i], !=, all_ids[j]);
		for (guint l = 0; lines[l] != NULL; l++) {
			if (strcmp(lines[l], header) != 0)
				continue;
			found++;
			g_assert_true(g_str_has_prefix(lines[l + 1], "Subject: "));
			g_assert_cmpstr(lines[l + 2], ==, "Defined-By: healerd");
			g_assert_true(g_str_has_prefix(lines[l + 3], "Documentation: "));
		}
		g_assert_cmpuint(found, ==, 1);
	}
	for (guint l = 0; lines[l] != NULL; l++)
		entries += g_str_has_prefix(lines[l], "-- ");
	g_assert_cmpuint(entries, ==, G_N_ELEMENTS(all_ids));
}

/* Runs a system program (not wrapped in valgrind: it is not ours). */
static int
run_system(const char *const *argv, char **out, char **err)
{
	g_autoptr(GError) error = NULL;
	int wait_status = 0;

	g_assert_true(
	        g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &wait_status, &error));
	g_assert_no_error(error);
	return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

/* journalctl itself reads the journal message catalog (in a scratch root: no privileges needed). */
static void
test_message_catalog_journalctl(void)
{
	g_autofree char *journalctl = g_find_program_in_path("journalctl");
	g_autofree char *source = g_build_filename(g_getenv("HEALER_SOURCE_DIR"), "packaging", "healerd.catalog", NULL);
	g_autofree char *root = NULL;
	g_autofree char *catalog_dir = NULL;
	g_autofree char *installed = NULL;
	g_autofree char *root_arg = NULL;
	g_autoptr(GBytes) text = NULL;
	g_autofree char *out = NULL, *err = NULL, *list = NULL, *list_err = NULL;
	int status;

	if (journalctl == NULL) {
		g_test_skip("journalctl not installed");
		return;
	}
	root = test_tmpdir_new();
	catalog_dir = g_build_filename(root, "usr", "lib", "systemd", "catalog", NULL);
	g_assert_cmpint(g_mkdir_with_parents(catalog_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(root, 0755), ==, 0);
	{
		g_autofree char *var = g_build_filename(root, "var", "lib", "systemd", "catalog", NULL);
		g_assert_cmpint(g_mkdir_with_parents(var, 0755), ==, 0);
	}
	installed = g_build_filename(catalog_dir, "healerd.catalog", NULL);
	text = test_read_file(source);
	test_write_file(installed, g_bytes_get_data(text, NULL), g_bytes_get_size(text));
	root_arg = g_strconcat("--root=", root, NULL);
	{
		const char *argv[] = {journalctl, root_arg, "--update-catalog", NULL};
		status = run_system(argv, &out, &err);
	}
	if (status != 0) {
		g_autofree char *why = g_strdup_printf("journalctl --update-catalog failed here: %s", err);
		test_tmpdir_free(g_steal_pointer(&root));
		g_test_skip(why);
		return;
	}
	{
		const char *argv[] = {journalctl, root_arg, "--list-catalog", NULL};
		status = run_system(argv, &list, &list_err);
	}
	g_assert_cmpint(status, ==, 0);
	for (gsize i = 0; i < G_N_ELEMENTS(all_ids); i++) {
		if (strstr(list, all_ids[i]) == NULL)
			g_error("%s missing from journalctl --list-catalog:\n%s", all_ids[i], list);
	}
	test_tmpdir_free(g_steal_pointer(&root));
}

static char *
receive_datagram(GSocket *socket)
{
	char buf[512];
	g_autoptr(GError) error = NULL;
	gssize n;

	g_socket_set_timeout(socket, 5);
	n = g_socket_receive(socket, buf, sizeof buf - 1, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(n, >=, 0);
	buf[n] = '\0';
	return g_strdup(buf);
}

static gboolean
quit_loop(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

/* sd_notify messages reach $NOTIFY_SOCKET; the watchdog pings at half $WATCHDOG_USEC. */
static void
test_notify(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "notify", NULL);
	g_autofree char *pid = g_strdup_printf("%d", (int)getpid());
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, 0, &error);
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autofree char *ready = NULL, *status = NULL, *stopping = NULL, *first = NULL, *ping = NULL;
	guint watchdog;

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, address, TRUE, &error));
	g_assert_no_error(error);

	/* Outside systemd: nothing happens, no watchdog. */
	g_unsetenv("NOTIFY_SOCKET");
	g_unsetenv("WATCHDOG_USEC");
	healer_notify_ready();
	g_assert_cmpuint(healer_notify_watchdog_start(), ==, 0);

	g_setenv("NOTIFY_SOCKET", path, TRUE);
	healer_notify_ready();
	ready = receive_datagram(socket);
	g_assert_cmpstr(ready, ==, "READY=1");
	healer_notify_status("%d devices: %d healthy,\n%d healing", 4, 3, 1);
	status = receive_datagram(socket);
	g_assert_cmpstr(status, ==, "STATUS=4 devices: 3 healthy, 1 healing");
	healer_notify_stopping();
	stopping = receive_datagram(socket);
	g_assert_cmpstr(stopping, ==, "STOPPING=1");

	g_setenv("WATCHDOG_USEC", "100000", TRUE);
	g_setenv("WATCHDOG_PID", pid, TRUE);
	watchdog = healer_notify_watchdog_start();
	g_assert_cmpuint(watchdog, !=, 0);
	first = receive_datagram(socket);
	g_assert_cmpstr(first, ==, "WATCHDOG=1");
	g_timeout_add(80, quit_loop, loop);
	g_main_loop_run(loop);
	ping = receive_datagram(socket);
	g_assert_cmpstr(ping, ==, "WATCHDOG=1");
	g_source_remove(watchdog);

	/* A watchdog meant for another process is not ours. */
	g_setenv("WATCHDOG_PID", "1", TRUE);
	g_assert_cmpuint(healer_notify_watchdog_start(), ==, 0);
	g_unsetenv("NOTIFY_SOCKET");
	g_unsetenv("WATCHDOG_USEC");
	g_unsetenv("WATCHDOG_PID");
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* The systemd observer of the event stream: READY, STATUS and STOPPING events, and nothing for the others. */
static void
test_notify_events(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *path = g_build_filename(dir, "notify", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocket) socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, 0, &error);
	g_autoptr(GSocketAddress) address = g_unix_socket_address_new(path);
	g_autofree char *ready = NULL, *status = NULL, *stopping = NULL;

	g_assert_no_error(error);
	g_assert_true(g_socket_bind(socket, address, TRUE, &error));
	g_assert_no_error(error);
	g_setenv("NOTIFY_SOCKET", path, TRUE);
	healer_emit_event(.kind = HEALER_EVENT_DAEMON_READY);
	ready = receive_datagram(socket);
	g_assert_cmpstr(ready, ==, "READY=1");
	/* A record, a device event: nothing for systemd (the next datagram is the status). */
	healer_emit(HEALER_EVENT_HEAL_FAILED, "dev", NULL, NULL, -1, G_LOG_LEVEL_WARNING, "heal failed: x");
	healer_emit_event(.kind = HEALER_EVENT_DEVICE_CHANGED, .device_id = "dev");
	healer_emit_event(.kind = HEALER_EVENT_STATUS, .reason = "2 devices: 1 healthy,\n1 failed");
	status = receive_datagram(socket);
	g_assert_cmpstr(status, ==, "STATUS=2 devices: 1 healthy, 1 failed");
	healer_emit_event(.kind = HEALER_EVENT_DAEMON_STOPPING);
	stopping = receive_datagram(socket);
	g_assert_cmpstr(stopping, ==, "STOPPING=1");
	g_unsetenv("NOTIFY_SOCKET");
	test_tmpdir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_capture_start();
	g_test_add_func("/journal/event-fields", test_event_fields);
	g_test_add_func("/journal/format-line", test_format_line);
	g_test_add_func("/journal/message-catalog", test_message_catalog);
	g_test_add_func("/journal/message-catalog-journalctl", test_message_catalog_journalctl);
	g_test_add_func("/notify/messages", test_notify);
	g_test_add_func("/notify/events", test_notify_events);
	return g_test_run();
}
