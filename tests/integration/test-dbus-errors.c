/*
 * healerd's errors on the bus, each by its exact io.healerd.Error.* name, and what healerctl makes
 * of each (its exit code and message; docs/dbus-api.md, "Errors"), and that a refused call changed
 * nothing (the store, the jobs, the devices):
 *
 * - /dbus-errors/daemon-refuses: on a bus whose policy lets anyone call healerd's changing
 *   methods, nobody calls each of them and healerd itself answers PermissionDenied naming the
 *   method; healerctl as nobody exits 4.  (On the project's policy the bus refuses first, so
 *   only this shows healerd's own check.)
 * - /dbus-errors/busy: a heal held by a stopped device (SIGSTOP: it cannot finish, whatever the
 *   machine's speed); a second Heal, a Reset and a FlashAppFd are Busy; healerctl flash exits 6;
 *   the held heal then finishes as if nothing had happened.
 * - /dbus-errors/names: InvalidArgument, InvalidData, Io, NotFound and NoPlan, each provoked
 *   through a real call, with healerctl's exit code for it.
 * - /dbus-errors/failed: Failed (a CA file that is not one: "TLS setup failed"), from Refresh.
 *
 * Runs as root (CI does): nobody is reached with setpriv.
 */
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway-harness.h"
#include "healer-dbus.h"
#include "healerd-process.h"
#include "json-autoptr.h"
#include "test-util.h"

#define DEVICE_IFACE "io.healerd.Healer1.Device"
#define DENIED       "io.healerd.Error.PermissionDenied"
#define HOW_TO       "permission denied: run as root or as a member of group healer\n"
#define WAIT_S       60

/* Anyone may call anything of healerd's: a looser configuration than the project's file. */
#define PERMISSIVE_POLICY                                                                                              \
	"  <policy context=\"default\">\n"                                                                             \
	"    <allow send_destination=\"io.healerd.Healer1\"/>\n"                                                       \
	"  </policy>\n"

static char *tmpdir;

/* ---- one gateway: a private bus, healerd, devices ---- */

typedef struct {
	Bus bus;
	HealerdProcess *healerd;
	GDBusConnection *c;
	HealerDBusHealer1 *manager;
	char *modules; /* the module directory (the firmware build's, without 2.1.0) */
} Gateway;

static void
gateway_clear(Gateway *g)
{
	if (g->healerd != NULL)
		healerd_process_stop(g->healerd);
	g_clear_pointer(&g->healerd, healerd_process_free);
	g_clear_object(&g->manager);
	g_clear_object(&g->c);
	bus_stop(&g->bus);
	g_clear_pointer(&g->modules, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Gateway, gateway_clear)

static json_object *
parse_json(const char *text)
{
	json_object *obj = json_tokener_parse(text);

	if (obj == NULL)
		g_error("not JSON: %s", text);
	return obj;
}

static json_object *
get_devices(Gateway *g)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;

	g_assert_true(healer_dbus_healer1_call_get_devices_sync(g->manager, &text, NULL, &error));
	g_assert_no_error(error);
	return parse_json(text);
}

static char *
list_modules(Gateway *g)
{
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_assert_true(healer_dbus_healer1_call_list_modules_sync(g->manager, &text, NULL, &error));
	g_assert_no_error(error);
	return text;
}

/* "KEY" of device `id` in GetDevices, as a string. */
static char *
device_field(Gateway *g, const char *id, const char *key)
{
	g_autoptr(json_object) devices = get_devices(g);

	for (size_t i = 0; i < json_object_array_length(devices); i++) {
		json_object *d = json_object_array_get_idx(devices, i);
		json_object *v = NULL;
		if (json_object_object_get_ex(d, "id", &v) && g_str_equal(json_object_get_string(v), id) &&
		    json_object_object_get_ex(d, key, &v))
			return g_strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	}
	g_error("device %s (or its %s) not in GetDevices", id, key);
	return NULL;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

/* The store's files and the job files, one name a line: what a refused call must leave alone. */
static char *
state_listing(Gateway *g)
{
	g_autoptr(GString) out = g_string_new(NULL);
	const char *subdirs[] = {"store", "jobs"};

	for (guint i = 0; i < G_N_ELEMENTS(subdirs); i++) {
		g_autofree char *path = g_build_filename(g->healerd->dir, "state", subdirs[i], NULL);
		g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
		g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
		const char *name;
		while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
			g_ptr_array_add(names, g_strdup(name));
		g_ptr_array_sort(names, compare_names);
		for (guint n = 0; n < names->len; n++)
			g_string_append_printf(out, "%s/%s\n", subdirs[i], (char *)g_ptr_array_index(names, n));
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The module directory (the firmware build's without 2.1.0) and DIR/ports, for the devices. */
static void
gateway_init(Gateway *g, const char *dir)
{
	g_autofree char *ports = g_build_filename(dir, "ports", NULL);

	g->modules = g_build_filename(dir, "modules", NULL);
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), g->modules, "2.1.0");
	g_assert_cmpint(g_mkdir_with_parents(ports, 0755), ==, 0);
}

/* healerd (g->healerd, configured) on a private bus with `extra_policy` (NULL: the project's
 * policy only), until it has judged `n_devices` devices. */
static void
gateway_run(Gateway *g, const char *extra_policy, guint n_devices)
{
	g_autoptr(GError) error = NULL;
	gint64 deadline = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;

	g->healerd->bus_args = g_strdup(""); /* the system bus: the private one */
	bus_start_with_policy(&g->bus, extra_policy);
	g->c = bus_connect(&g->bus);
	healerd_process_start(g->healerd);
	g->manager =
	        healer_dbus_healer1_proxy_new_sync(g->c, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, MANAGER_PATH, NULL, &error);
	g_assert_no_error(error);
	for (;;) {
		if (has_owner(g->c)) {
			g_autoptr(json_object) devices = get_devices(g);
			guint judged = 0;
			for (size_t i = 0; i < json_object_array_length(devices); i++) {
				json_object *state = NULL;
				json_object_object_get_ex(json_object_array_get_idx(devices, i), "state", &state);
				if (!g_str_equal(json_object_get_string(state), "attached") &&
				    !g_str_equal(json_object_get_string(state), "identified"))
					judged++;
			}
			if (judged == n_devices && json_object_array_length(devices) == n_devices)
				return;
		}
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *log = NULL;
			g_file_get_contents(g->healerd->log, &log, NULL, NULL);
			g_error("healerd did not serve %u devices within %d s; its log:\n%s", n_devices, WAIT_S, log);
		}
		g_usleep(50000);
	}
}

/* Devices first (on DIR/ports), then healerd with `healer_lines` (NULL: none): gateway_run(). */
static void
gateway_start(Gateway *g, const char *dir, const char *extra_policy, const char *healer_lines, guint n_devices)
{
	g->healerd = healerd_process_new(dir, g->modules, healer_lines);
	gateway_run(g, extra_policy, n_devices);
}

static char *
device_path(const Device *d)
{
	return g_strdup_printf(MANAGER_PATH "/devices/%s", d->id);
}

/*
 * Calls METHOD and returns the D-Bus error name it failed with (the call must fail); `message`
 * gets the message without the name.  `fd_path`: opened and passed as handle 0.
 */
static char *
call_error(Gateway *g, const char *path, const char *interface, const char *method, GVariant *args, const char *fd_path,
           char **message)
{
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	char *name;

	if (fd_path != NULL) {
		int fd = g_open(fd_path, O_RDONLY | O_CLOEXEC, 0);
		g_assert_cmpint(fd, >=, 0);
		fds = g_unix_fd_list_new_from_array(&fd, 1);
	}
	reply = g_dbus_connection_call_with_unix_fd_list_sync(g->c, BUS_NAME, path, interface, method, args, NULL,
	                                                      G_DBUS_CALL_FLAGS_NONE, 60000, fds, NULL, NULL, &error);
	if (reply != NULL)
		g_error("%s.%s on %s succeeded; it should have failed", interface, method, path);
	name = g_dbus_error_get_remote_error(error);
	g_assert_nonnull(name);
	g_dbus_error_strip_remote_error(error);
	g_test_message("%s.%s: %s: %s", interface, method, name, error->message);
	*message = g_strdup(error->message);
	return name;
}

static void
assert_contains(const char *text, const char *part)
{
	if (text == NULL || strstr(text, part) == NULL)
		g_error("expected \"%s\" in:\n%s", part, text ? text : "(nothing)");
}

/* ARGV as nobody, with no groups (healerd asks the group database: nobody is in none that counts). */
static void
run_as_nobody(TestRun *run, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GString) what = g_string_new("(nobody)");
	g_autoptr(GError) error = NULL;
	int wait_status = 0;

	g_ptr_array_add(argv, (gpointer) "setpriv");
	g_ptr_array_add(argv, (gpointer) "--reuid=65534");
	g_ptr_array_add(argv, (gpointer) "--regid=65534");
	g_ptr_array_add(argv, (gpointer) "--clear-groups");
	for (guint i = 0; args[i] != NULL; i++) {
		g_ptr_array_add(argv, (gpointer)args[i]);
		g_string_append_printf(what, " %s", args[i]);
	}
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync("/", (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &run->out,
	                           &run->err, &wait_status, &error));
	g_assert_no_error(error);
	run->exit_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	log_run(run, what->str);
}

/* A file nobody can read, in the bus's world-searchable directory. */
static char *
readable_copy(Gateway *g, const char *from, const char *name)
{
	g_autoptr(GBytes) bytes = test_read_file(from);
	char *to = g_build_filename(g->bus.dir, name, NULL);

	test_write_file(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
	g_assert_cmpint(g_chmod(to, 0644), ==, 0);
	return to;
}

static char *
firmware_file(const char *relative)
{
	char *path = g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), relative, NULL);

	g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
	return path;
}

/* ---- HealFinished, and a marker after which none may come ---- */

typedef struct {
	GPtrArray *finished; /* "ID success message", in order */
	guint progress;      /* HealProgress signals, any device */
} Signals;

static void
on_heal_finished(HealerDBusHealer1 *manager, const char *device_id, gboolean success, const char *message,
                 gpointer user_data)
{
	Signals *s = user_data;

	(void)manager;
	g_ptr_array_add(s->finished, g_strdup_printf("%s %s %s", device_id, success ? "ok" : "failed", message));
}

static void
on_heal_progress(HealerDBusHealer1 *manager, const char *device_id, guint step, guint steps, const char *module,
                 guint progress, gpointer user_data)
{
	Signals *s = user_data;

	(void)manager;
	(void)device_id;
	(void)step;
	(void)steps;
	(void)module;
	(void)progress;
	s->progress++;
}

static guint
count_prefix(const Signals *s, const char *prefix)
{
	guint n = 0;

	for (guint i = 0; i < s->finished->len; i++)
		n += g_str_has_prefix(g_ptr_array_index(s->finished, i), prefix);
	return n;
}

/* Iterates until a HealFinished starting with `prefix` arrived; fails after timeout_s. */
static void
wait_finished(const Signals *s, const char *prefix, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

	while (count_prefix(s, prefix) == 0) {
		if (g_get_monotonic_time() > deadline)
			g_error("no HealFinished \"%s...\" within %u s", prefix, timeout_s);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(2000);
	}
}

/*
 * A deterministic end to "no more signals": Heal on a healthy device answers with a HealFinished
 * ("nothing to heal") sent after every signal of the calls made before it, as healerd sends its
 * signals in order.  Returns how many HealFinished came before the marker's.
 */
static guint
mark(Gateway *g, const Signals *s, const Device *healthy)
{
	g_autofree char *path = device_path(healthy);
	g_autofree char *prefix = g_strdup_printf("%s ok nothing to heal", healthy->id);
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	guint before = count_prefix(s, prefix);

	reply = g_dbus_connection_call_sync(g->c, BUS_NAME, path, DEVICE_IFACE, "Heal", NULL, NULL,
	                                    G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
	g_assert_no_error(error);
	for (gint64 deadline = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC; count_prefix(s, prefix) == before;) {
		if (g_get_monotonic_time() > deadline)
			g_error("the marker's HealFinished did not come within %d s", WAIT_S);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(2000);
	}
	for (guint i = 0; i < s->finished->len; i++) {
		if (g_str_has_prefix(g_ptr_array_index(s->finished, i), prefix) && i + 1 == s->finished->len)
			return i;
	}
	g_error("a HealFinished came after the marker's");
	return 0;
}

static void
signals_watch(Gateway *g, Signals *s)
{
	s->finished = g_ptr_array_new_with_free_func(g_free);
	g_signal_connect(g->manager, "heal-finished", G_CALLBACK(on_heal_finished), s);
	g_signal_connect(g->manager, "heal-progress", G_CALLBACK(on_heal_progress), s);
}

static void
signals_clear(Gateway *g, Signals *s)
{
	g_signal_handlers_disconnect_by_data(g->manager, s);
	g_clear_pointer(&s->finished, g_ptr_array_unref);
}

/* ---- the tests ---- */

/* healerd's own check, with the bus letting everything through. */
static void
test_daemon_refuses(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "refuses", NULL);
	/* Devices before the gateway: healerd stops (the gateway is cleared) before they go. */
	g_auto(Device) stone = {0}, healthy = {0};
	g_auto(Gateway) g = {0};
	g_autofree char *app = firmware_file("apps/sensor.bin");
	g_autofree char *stone_path = NULL, *readable = NULL, *modules_before = NULL, *state_before = NULL;
	g_autofree char *modules_after = NULL, *state_after = NULL, *stone_state = NULL, *stone_state_after = NULL;
	g_autofree char *import_args = NULL, *flash_args = NULL;
	Signals s = {0};

	g_assert_cmpuint(getuid(), ==, 0); /* to be nobody; the CI runs the tests as root */
	gateway_init(&g, dir);
	start_device(&stone, dir, "stepping-stone", "1.0.0", "travel-in-time");
	start_device(&healthy, dir, "healthy", "2.0.0", "travel-in-time");
	gateway_start(&g, dir, PERMISSIVE_POLICY, "auto-heal=false\n", 2);
	signals_watch(&g, &s);
	stone_path = device_path(&stone);
	readable = readable_copy(&g, app, "sensor.bin");
	modules_before = list_modules(&g);
	state_before = state_listing(&g);
	stone_state = device_field(&g, stone.id, "state");
	g_assert_cmpstr(stone_state, ==, "\"safe-mode\"");

	/* Every changing method, as nobody, with arguments healerd would otherwise act on. */
	import_args = g_strdup_printf("('%s',)", readable);
	flash_args = g_strdup_printf("('%s',)", readable);
	{
		const struct {
			const char *object, *method, *args;
			gboolean fd;
		} calls[] = {
		        {stone_path, DEVICE_IFACE ".Heal", "()", FALSE},
		        {stone_path, DEVICE_IFACE ".Reset", "()", FALSE},
		        {stone_path, DEVICE_IFACE ".FlashApp", flash_args, FALSE},
		        {stone_path, DEVICE_IFACE ".FlashAppFd", "(@h 0, 'sensor.bin')", TRUE},
		        {MANAGER_PATH, "io.healerd.Healer1.HealAll", "()", FALSE},
		        {MANAGER_PATH, "io.healerd.Healer1.ImportModules", import_args, FALSE},
		        {MANAGER_PATH, "io.healerd.Healer1.ImportFd", "(@h 0, 'sensor.bin')", TRUE},
		        {MANAGER_PATH, "io.healerd.Healer1.Refresh", "()", FALSE},
		};
		for (guint i = 0; i < G_N_ELEMENTS(calls); i++) {
			g_auto(TestRun) run = {0};
			const char *member = strrchr(calls[i].method, '.') + 1;
			/* The bus let it through (else org.freedesktop.DBus.Error.AccessDenied); healerd refused. */
			g_autofree char *want = g_strdup_printf(
			        "error " DENIED "\nonly root and members of group 'healer' may call %s\n", member);
			const char *with_fd[] = {test_program("HEALER_BUS_CALL"),
			                         "--fd",
			                         readable,
			                         calls[i].object,
			                         calls[i].method,
			                         calls[i].args,
			                         NULL};
			const char *without[] = {test_program("HEALER_BUS_CALL"), calls[i].object, calls[i].method,
			                         calls[i].args, NULL};
			run_as_nobody(&run, calls[i].fd ? with_fd : without);
			g_assert_cmpint(run.exit_status, ==, 1);
			g_assert_cmpstr(run.out, ==, want);
		}
	}

	/* healerctl as nobody: exit 4 and what to do, whoever refused. */
	{
		const char *heal[] = {test_program("HEALERCTL"), "heal", stone.id, NULL};
		const char *heal_all[] = {test_program("HEALERCTL"), "heal", "--all", NULL};
		const char *flash[] = {test_program("HEALERCTL"), "flash", stone.id, readable, NULL};
		const char *import[] = {test_program("HEALERCTL"), "import", readable, NULL};
		const char *refresh[] = {test_program("HEALERCTL"), "refresh", NULL};
		const char *const *runs[] = {heal, heal_all, flash, import, refresh};
		for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
			g_auto(TestRun) run = {0};
			g_autofree char *want = g_strdup_printf("healerctl %s: " HOW_TO, runs[i][1]);
			run_as_nobody(&run, runs[i]);
			g_assert_cmpint(run.exit_status, ==, 4);
			g_assert_cmpstr(run.err, ==, want);
		}
	}

	/* Nothing happened: no heal signal before the marker, the store and jobs as they were. */
	g_assert_cmpuint(mark(&g, &s, &healthy), ==, 0);
	g_assert_cmpuint(s.progress, ==, 0);
	modules_after = list_modules(&g);
	state_after = state_listing(&g);
	stone_state_after = device_field(&g, stone.id, "state");
	g_assert_cmpstr(modules_after, ==, modules_before);
	g_assert_cmpstr(state_after, ==, state_before);
	g_assert_null(strstr(state_after, "jobs/"));
	g_assert_cmpstr(stone_state_after, ==, stone_state);
	/* healerd's journal agrees: no heal began (test_busy shows this record for the heal it holds). */
	{
		const char *started[] = {"starting the heal", NULL};
		g_assert_cmpuint(healerd_process_count(g.healerd, started), ==, 0);
	}
	signals_clear(&g, &s);
}

/* Rewrites healerd.conf's `key=old` as `key=new`. */
static void
config_replace(HealerdProcess *healerd, const char *old, const char *new)
{
	g_autofree char *text = NULL;
	g_autoptr(GString) s = NULL;

	g_assert_true(g_file_get_contents(healerd->config, &text, NULL, NULL));
	s = g_string_new(text);
	g_assert_cmpuint(g_string_replace(s, old, new, 1), ==, 1);
	g_assert_true(g_file_set_contents(healerd->config, s->str, -1, NULL));
}

static pid_t
device_pid(const Device *d)
{
	const char *id = g_subprocess_get_identifier(d->sim->process);

	g_assert_nonnull(id);
	return (pid_t)g_ascii_strtoll(id, NULL, 10);
}

/* A heal held by a stopped device: what else is asked of the device meanwhile is Busy. */
static void
test_busy(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "busy", NULL);
	/* Devices before the gateway: healerd stops (the gateway is cleared) before they go. */
	g_auto(Device) stone = {0}, healthy = {0};
	g_auto(Gateway) g = {0};
	g_autofree char *app = firmware_file("apps/sensor.bin");
	g_autofree char *stone_path = NULL, *modules_before = NULL, *detail = NULL;
	g_autofree char *busy_heal = NULL, *busy_job = NULL, *busy_reset = NULL;
	g_autoptr(GError) error = NULL;
	Signals s = {0};

	gateway_init(&g, dir);
	start_device(&stone, dir, "stepping-stone", "1.0.0", "travel-in-time");
	start_device(&healthy, dir, "healthy", "2.0.0", "travel-in-time");
	/*
	 * healerd waits 600 s for an answer (resending after a quarter of that): the stopped device
	 * holds the heal for at least 150 s, far longer than the checks below take even when slow.
	 */
	g.healerd = healerd_process_new(dir, g.modules, "auto-heal=false\n");
	config_replace(g.healerd, "response-timeout-seconds=5", "response-timeout-seconds=600");
	config_replace(g.healerd, "reset-timeout-seconds=20", "reset-timeout-seconds=600");
	gateway_run(&g, NULL, 2);
	signals_watch(&g, &s);
	stone_path = device_path(&stone);
	modules_before = list_modules(&g);

	/* The device stops before the heal starts: healerd's first frame waits in the line. */
	g_assert_cmpint(kill(device_pid(&stone), SIGSTOP), ==, 0);
	{
		g_autoptr(GVariant) reply G_GNUC_UNUSED =
		        g_dbus_connection_call_sync(g.c, BUS_NAME, stone_path, DEVICE_IFACE, "Heal", NULL, NULL,
		                                    G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
		g_assert_no_error(error);
	}
	/* The job is active from the first Heal's answer on. */
	{
		g_autofree char *message = NULL;
		g_autofree char *name = call_error(&g, stone_path, DEVICE_IFACE, "Heal", NULL, NULL, &message);
		busy_heal = g_strdup_printf("device %s is already being healed", stone.id);
		g_assert_cmpstr(name, ==, "io.healerd.Error.Busy");
		g_assert_cmpstr(message, ==, busy_heal);
	}
	/* Once the first module is on its way, the device itself is busy (Reset). */
	for (gint64 deadline = g_get_monotonic_time() + WAIT_S * G_USEC_PER_SEC;;) {
		g_free(detail);
		detail = device_field(&g, stone.id, "detail");
		if (g_str_has_prefix(detail, "\"step 1 of "))
			break;
		if (g_get_monotonic_time() > deadline)
			g_error("the held heal did not reach step 1 within %d s (detail %s)", WAIT_S, detail);
		g_usleep(50000);
	}
	{
		g_autofree char *message = NULL;
		g_autofree char *name = call_error(&g, stone_path, DEVICE_IFACE, "Reset", NULL, NULL, &message);
		busy_reset = g_strdup_printf("device %s is receiving a module", stone.id);
		g_assert_cmpstr(name, ==, "io.healerd.Error.Busy");
		g_assert_cmpstr(message, ==, busy_reset);
	}
	{
		g_autofree char *message = NULL;
		g_autofree char *name = call_error(&g, stone_path, DEVICE_IFACE, "FlashAppFd",
		                                   g_variant_new("(hs)", 0, app), app, &message);
		busy_job = g_strdup_printf("device %s is busy with a job", stone.id);
		g_assert_cmpstr(name, ==, "io.healerd.Error.Busy");
		g_assert_cmpstr(message, ==, busy_job);
	}
	/* healerctl: exit 6, what is busy and what to do. */
	{
		g_auto(TestRun) run = {0};
		g_autofree char *want = g_strdup_printf(
		        "healerctl flash: busy: %s (wait for it to finish; healerctl monitor shows when)\n", busy_job);
		healerctl(&run, "flash", stone.id, app, NULL);
		g_assert_cmpint(run.exit_status, ==, 6);
		g_assert_cmpstr(run.err, ==, want);
		g_assert_cmpstr(run.out, ==, "");
	}
	/* healerctl heal on a device healing already follows that heal (docs): not an error. */
	{
		g_auto(TestRun) run = {0};
		g_autofree char *want =
		        g_strdup_printf("healerctl heal: %s is healing already; following that heal\n", stone.id);
		healerctl(&run, "heal", stone.id, "--no-wait", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_cmpstr(run.err, ==, want);
	}
	/* Nothing changed: the store, one job (the held one), still at step 1. */
	{
		g_autofree char *modules_after = list_modules(&g);
		g_autofree char *state = device_field(&g, stone.id, "state");
		g_autofree char *detail_after = device_field(&g, stone.id, "detail");
		g_autofree char *listing = state_listing(&g);
		g_autofree char *one_job = g_strdup_printf("jobs/%s.json\n", stone.id);
		g_assert_cmpstr(modules_after, ==, modules_before);
		g_assert_cmpstr(state, ==, "\"healing\"");
		g_assert_cmpstr(detail_after, ==, detail);
		g_assert_nonnull(strstr(listing, one_job));
		g_assert_null(strstr(strstr(listing, one_job) + strlen(one_job), "jobs/"));
		g_assert_cmpuint(count_prefix(&s, stone.id), ==, 0);
	}
	/* One heal started, the held one: the refusals started none. */
	{
		const char *started[] = {"starting the heal", stone.id, NULL};
		const char *any[] = {"starting the heal", NULL};
		g_assert_cmpuint(healerd_process_count(g.healerd, started), ==, 1);
		g_assert_cmpuint(healerd_process_count(g.healerd, any), ==, 1);
	}

	/* The device goes on: the held heal ends healed, once, as if nothing had been asked meanwhile. */
	g_assert_cmpint(kill(device_pid(&stone), SIGCONT), ==, 0);
	{
		g_autofree char *healed = g_strdup_printf("%s ok", stone.id);
		g_autofree char *state = NULL;
		wait_finished(&s, healed, 240);
		mark(&g, &s, &healthy);
		g_assert_cmpuint(count_prefix(&s, stone.id), ==, 1);
		state = device_field(&g, stone.id, "state");
		g_assert_cmpstr(state, ==, "\"healthy\"");
	}
	signals_clear(&g, &s);
	healerd_process_stop(g.healerd);
	/* And the device agrees: it runs its application. */
	assert_runs(&stone);
}

/* InvalidArgument, InvalidData, Io, NotFound, NoPlan: each through a real call, and healerctl's exit. */
static void
test_names(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "names", NULL);
	g_auto(Device) healthy = {0}, blocked = {0};
	g_auto(Gateway) g = {0};
	g_autofree char *healthy_path = NULL, *blocked_path = NULL, *modules_before = NULL, *state_before = NULL;
	g_autofree char *healthy_modules = NULL, *tampered = NULL, *system_part = NULL;
	g_autofree char *app = firmware_file("apps/sensor.bin");
	Signals s = {0};

	gateway_init(&g, dir);
	start_device(&healthy, dir, "healthy", "2.0.0", "travel-in-time");
	/* The store lacks 2.1.0, which the sensor application needs. */
	start_device(&blocked, dir, "blocked", "2.0.0", "sensor");
	gateway_start(&g, dir, NULL, "auto-heal=false\n", 2);
	signals_watch(&g, &s);
	healthy_path = device_path(&healthy);
	blocked_path = device_path(&blocked);
	modules_before = list_modules(&g);
	state_before = state_listing(&g);
	healthy_modules = device_field(&g, healthy.id, "modules");
	system_part = firmware_file("2.0.0/system-part1.bin");
	tampered = g_build_filename(dir, "tampered.bin", NULL);
	{
		g_autoptr(GBytes) bytes = test_read_file(app);
		g_autofree guint8 *data = g_memdup2(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
		data[g_bytes_get_size(bytes) / 2] ^= 0x01; /* one bit in the middle of the code */
		test_write_file(tampered, data, g_bytes_get_size(bytes));
	}

	/* InvalidArgument: a system module where an application is wanted; healerctl exits 2. */
	{
		g_autofree char *message = NULL;
		g_autofree char *name = call_error(&g, healthy_path, DEVICE_IFACE, "FlashAppFd",
		                                   g_variant_new("(hs)", 0, system_part), system_part, &message);
		g_auto(TestRun) run = {0};
		g_assert_cmpstr(name, ==, "io.healerd.Error.InvalidArgument");
		assert_contains(message, "is not an application for platform");
		healerctl(&run, "flash", healthy.id, system_part, NULL);
		g_assert_cmpint(run.exit_status, ==, 2);
		assert_contains(run.err, "healerctl flash: ");
		assert_contains(run.err, "is not an application for platform");
	}
	/* InvalidData: an application with one bit flipped; healerctl exits 1. */
	{
		g_autofree char *message = NULL;
		g_autofree char *name = call_error(&g, healthy_path, DEVICE_IFACE, "FlashAppFd",
		                                   g_variant_new("(hs)", 0, tampered), tampered, &message);
		g_auto(TestRun) run = {0};
		g_assert_cmpstr(name, ==, "io.healerd.Error.InvalidData");
		assert_contains(message, tampered);
		assert_contains(message, "not a valid module");
		healerctl(&run, "flash", healthy.id, tampered, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.err, "not a valid module");
	}
	/*
	 * Io: a regular file whose reads fail.  /proc/self/mem opens (the caller's own memory) and
	 * fstat says a regular file; reading offset 0, never mapped, fails with EIO, in healerd too
	 * (the descriptor stays bound to the caller's memory).  healerctl exits 1.
	 */
	{
		g_autofree char *message = NULL;
		g_autofree char *name =
		        call_error(&g, healthy_path, DEVICE_IFACE, "FlashAppFd",
		                   g_variant_new("(hs)", 0, "/proc/self/mem"), "/proc/self/mem", &message);
		g_auto(TestRun) run = {0};
		g_assert_cmpstr(name, ==, "io.healerd.Error.Io");
		g_assert_cmpstr(message, ==, "/proc/self/mem: Input/output error");
		healerctl(&run, "flash", healthy.id, "/proc/self/mem", NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_cmpstr(run.err, ==, "healerctl flash: /proc/self/mem: Input/output error\n");
	}
	/* NotFound: Refresh with no upstream configured; healerctl exits 3. */
	{
		g_autofree char *message = NULL;
		g_autofree char *name =
		        call_error(&g, MANAGER_PATH, "io.healerd.Healer1", "Refresh", NULL, NULL, &message);
		g_auto(TestRun) run = {0};
		g_assert_cmpstr(name, ==, "io.healerd.Error.NotFound");
		g_assert_cmpstr(message, ==, "no upstream is configured ([upstream] url in healerd.conf)");
		healerctl(&run, "refresh", NULL);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_assert_cmpstr(run.err, ==,
		                "healerctl refresh: no upstream is configured ([upstream] url in healerd.conf)\n");
	}
	/* NoPlan: Plan of the device whose application needs 2.1.0; healerctl exits 3. */
	{
		g_autofree char *message = NULL;
		g_autofree char *name = call_error(&g, blocked_path, DEVICE_IFACE, "Plan", NULL, NULL, &message);
		g_auto(TestRun) run = {0};
		g_assert_cmpstr(name, ==, "io.healerd.Error.NoPlan");
		assert_contains(message, "system-part 2 >= 2100");
		healerctl(&run, "plan", blocked.id, NULL);
		g_assert_cmpint(run.exit_status, ==, 3);
		assert_contains(run.err, "healerctl plan: no plan: ");
		assert_contains(run.err, "system-part 2 >= 2100");
	}

	/* Nothing changed: no heal began, the store and jobs as they were, the device's modules too. */
	g_assert_cmpuint(mark(&g, &s, &healthy), ==, 0);
	g_assert_cmpuint(s.progress, ==, 0);
	{
		g_autofree char *modules_after = list_modules(&g);
		g_autofree char *state_after = state_listing(&g);
		g_autofree char *healthy_after = device_field(&g, healthy.id, "modules");
		g_assert_cmpstr(modules_after, ==, modules_before);
		g_assert_cmpstr(state_after, ==, state_before);
		g_assert_cmpstr(healthy_after, ==, healthy_modules);
	}
	signals_clear(&g, &s);
}

/* Failed: an upstream CA file that is not one ("TLS setup failed"), from Refresh; healerctl exits 1. */
static void
test_failed(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "failed", NULL);
	g_autofree char *ca = g_build_filename(dir, "not-a-ca.pem", NULL);
	g_autofree char *lines = NULL, *modules_before = NULL;
	g_autoptr(GSocket) listener = NULL;
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(Gateway) g = {0};

	gateway_init(&g, dir);
	/*
	 * A port that accepts connections (the kernel completes them; nobody reads): curl gets as far
	 * as setting up TLS, where it loads the CA file and fails, before a byte is exchanged.
	 */
	listener = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
	g_assert_no_error(error);
	{
		g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
		g_autoptr(GSocketAddress) any = g_inet_socket_address_new(loopback, 0);
		g_assert_true(g_socket_bind(listener, any, TRUE, &error));
		g_assert_true(g_socket_listen(listener, &error));
		bound = g_socket_get_local_address(listener, &error);
		g_assert_no_error(error);
	}
	g_mkdir_with_parents(dir, 0755);
	test_write_file(ca, (const guint8 *)"not a certificate\n", 18);
	lines = g_strdup_printf("auto-heal=false\n[upstream]\nurl=https://127.0.0.1:%u/\nca-file=%s\n",
	                        g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)), ca);
	gateway_start(&g, dir, NULL, lines, 0);
	modules_before = list_modules(&g);
	{
		g_autofree char *message = NULL;
		g_autofree char *name =
		        call_error(&g, MANAGER_PATH, "io.healerd.Healer1", "Refresh", NULL, NULL, &message);
		g_auto(TestRun) run = {0};
		g_assert_cmpstr(name, ==, "io.healerd.Error.Failed");
		assert_contains(message, "TLS setup failed");
		healerctl(&run, "refresh", NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.err, "healerctl refresh: ");
		assert_contains(run.err, "TLS setup failed");
	}
	{
		g_autofree char *modules_after = list_modules(&g);
		g_assert_cmpstr(modules_after, ==, modules_before);
	}
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/dbus-errors/daemon-refuses", test_daemon_refuses);
	g_test_add_func("/dbus-errors/busy", test_busy);
	g_test_add_func("/dbus-errors/names", test_names);
	g_test_add_func("/dbus-errors/failed", test_failed);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
