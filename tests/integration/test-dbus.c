/*
 * healerd's D-Bus API and healerctl end to end, on a private dbus-daemon
 * that enforces the project's own bus policy (dbus/io.healerd.Healer1.conf)
 * under the system bus's defaults, against simulated devices:
 *
 * - gdbus introspect shows the documented interfaces, members and types;
 * - `healerctl devices --json` agrees with GetDevices and with what the
 *   devices themselves said (HELLO and describe);
 * - an unprivileged user (nobody) may list devices but is refused Heal
 *   (exit 4, with what to do); root heals;
 * - PropertiesChanged, HealProgress and HealFinished arrive during a heal;
 *   `healerctl monitor --json` prints them;
 * - `plan ID` on a blocked device exits 3 naming the missing module;
 *   `import` of that module unblocks it; `heal --all` ends with exit 0 and
 *   every device healthy, in healerd's view and on the devices;
 * - with no healerd on the bus, healerctl exits 5 and says how to start it.
 */
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <signal.h>
#include <unistd.h>

#include "gateway-harness.h"
#include "healer-dbus.h"
#include "healerd-process.h"
#include "json-autoptr.h"
#include "sim-client.h"
#include "test-util.h"

#define NOT_RUNNING "healerd is not running (start it with: systemctl start healerd)"
#define HOW_TO_HEAL "run as root or as a member of group healer"

static char *tmpdir;

static gboolean
can_switch_user(void)
{
	g_autofree char *setpriv = g_find_program_in_path("setpriv");

	return getuid() == 0 && setpriv != NULL;
}

/* healerctl ARGS... as nobody, with no groups (not wrapped: valgrind's files belong to root). */
static void
healerctl_as_nobody(TestRun *run, const char *first, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GString) what = g_string_new("(nobody) healerctl");
	g_autoptr(GError) error = NULL;
	int wait_status = 0;
	va_list ap;

	g_ptr_array_add(argv, (gpointer) "setpriv");
	g_ptr_array_add(argv, (gpointer) "--reuid=65534");
	g_ptr_array_add(argv, (gpointer) "--regid=65534");
	g_ptr_array_add(argv, (gpointer) "--clear-groups");
	g_ptr_array_add(argv, (gpointer)test_program("HEALERCTL"));
	va_start(ap, first);
	for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
		g_ptr_array_add(argv, (gpointer)a);
		g_string_append_printf(what, " %s", a);
	}
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync("/", (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &run->out,
	                           &run->err, &wait_status, &error));
	g_assert_no_error(error);
	run->exit_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	log_run(run, what->str);
}

/*
 * A healerctl left running (monitor, heal) while the test watches the bus.  Its output is read
 * line by line as it comes (on the main context), so a test can wait for a line (an event
 * monitor printed) instead of sleeping.
 */
typedef struct {
	GSubprocess *process;
	GDataInputStream *out_lines, *err_lines;
	GString *out_text, *err_text; /* what came so far */
	char *out, *err;              /* all of it, once done */
	gboolean out_eof, err_eof, exited, done;
} Background;

static void
background_check_done(Background *bg)
{
	if (!bg->out_eof || !bg->err_eof || !bg->exited || bg->done)
		return;
	bg->out = g_strdup(bg->out_text->str);
	bg->err = g_strdup(bg->err_text->str);
	bg->done = TRUE;
}

static void
on_background_line(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Background *bg = user_data;
	GDataInputStream *in = G_DATA_INPUT_STREAM(source);
	g_autoptr(GError) error = NULL;
	g_autofree char *line = g_data_input_stream_read_line_finish_utf8(in, result, NULL, &error);

	g_assert_no_error(error);
	if (line == NULL) {
		if (in == bg->out_lines)
			bg->out_eof = TRUE;
		else
			bg->err_eof = TRUE;
		background_check_done(bg);
		return;
	}
	g_string_append_printf(in == bg->out_lines ? bg->out_text : bg->err_text, "%s\n", line);
	g_data_input_stream_read_line_async(in, G_PRIORITY_DEFAULT, NULL, on_background_line, bg);
}

static void
on_background_exited(GObject *source, GAsyncResult *result, gpointer user_data)
{
	Background *bg = user_data;
	g_autoptr(GError) error = NULL;

	g_assert_true(g_subprocess_wait_finish(G_SUBPROCESS(source), result, &error));
	g_assert_no_error(error);
	bg->exited = TRUE;
	background_check_done(bg);
}

/* With wait_for_stderr, returns once the command has written a line on stderr. */
static void
background_start(Background *bg, const char *const *args, gboolean wait_for_stderr)
{
	g_autoptr(GSubprocessLauncher) launcher =
	        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	const char *wrapper = g_getenv("HEALER_TEST_WRAPPER");
	g_autoptr(GError) error = NULL;

	if (wrapper != NULL && *wrapper != '\0') {
		g_auto(GStrv) words = NULL;
		g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(argv, g_strdup(words[i]));
	}
	g_ptr_array_add(argv, g_strdup(test_program("HEALERCTL")));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	bg->process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	bg->out_text = g_string_new(NULL);
	bg->err_text = g_string_new(NULL);
	bg->out_lines = g_data_input_stream_new(g_subprocess_get_stdout_pipe(bg->process));
	bg->err_lines = g_data_input_stream_new(g_subprocess_get_stderr_pipe(bg->process));
	if (wait_for_stderr) {
		g_autofree char *line = g_data_input_stream_read_line_utf8(bg->err_lines, NULL, NULL, &error);
		g_assert_no_error(error);
		g_test_message("background healerctl said: %s", line ? line : "(nothing)");
		if (line != NULL)
			g_string_append_printf(bg->err_text, "%s\n", line);
	}
	g_data_input_stream_read_line_async(bg->out_lines, G_PRIORITY_DEFAULT, NULL, on_background_line, bg);
	g_data_input_stream_read_line_async(bg->err_lines, G_PRIORITY_DEFAULT, NULL, on_background_line, bg);
	g_subprocess_wait_async(bg->process, NULL, on_background_exited, bg);
}

/* Iterates the main context (so this test's proxies see signals) until it ends. */
static int
background_wait(Background *bg, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

	while (!bg->done) {
		if (g_get_monotonic_time() > deadline)
			g_error("healerctl still running after %u s", timeout_s);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(2000);
	}
	g_test_message("background healerctl: stdout:\n%sstderr:\n%s", bg->out, bg->err);
	g_assert_true(g_subprocess_get_if_exited(bg->process));
	return g_subprocess_get_exit_status(bg->process);
}

/* Iterates until a line of stdout makes `match` true (fails after timeout_s); returns its index. */
static guint
background_wait_line(Background *bg, gboolean (*match)(const char *line, gpointer data), gpointer data, guint timeout_s)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;

	for (;;) {
		g_auto(GStrv) lines = g_strsplit(bg->out_text->str, "\n", -1);
		for (guint i = 0; lines[i] != NULL; i++) {
			if (lines[i + 1] != NULL && match(lines[i], data)) /* a whole line: the last piece is not */
				return i;
		}
		if (bg->done || g_get_monotonic_time() > deadline)
			g_error("healerctl did not print the line awaited within %u s; it printed:\n%s", timeout_s,
			        bg->out_text->str);
		g_main_context_iteration(NULL, FALSE);
		g_usleep(2000);
	}
}

static void
background_clear(Background *bg)
{
	if (bg->process != NULL && !bg->done) {
		g_subprocess_force_exit(bg->process);
		while (!bg->done)
			g_main_context_iteration(NULL, TRUE);
	}
	g_clear_object(&bg->out_lines);
	g_clear_object(&bg->err_lines);
	if (bg->out_text != NULL)
		g_string_free(g_steal_pointer(&bg->out_text), TRUE);
	if (bg->err_text != NULL)
		g_string_free(g_steal_pointer(&bg->err_text), TRUE);
	g_clear_object(&bg->process);
	g_clear_pointer(&bg->out, g_free);
	g_clear_pointer(&bg->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Background, background_clear)

/* ---- JSON ---- */

static json_object *
parse_json(const char *text)
{
	g_autoptr(json_tokener) tok = json_tokener_new();
	json_object *obj = json_tokener_parse_ex(tok, text, (int)strlen(text));

	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
		g_error("not JSON (%s): %s", json_tokener_error_desc(json_tokener_get_error(tok)), text);
	return obj;
}

static json_object *
member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(obj));
	return v;
}

static const char *
string_member(json_object *obj, const char *key)
{
	return json_object_get_string(member(obj, key));
}

static json_object *
find_device(json_object *array, const char *id)
{
	for (size_t i = 0; i < json_object_array_length(array); i++) {
		json_object *d = json_object_array_get_idx(array, i);
		if (g_strcmp0(string_member(d, "id"), id) == 0)
			return d;
	}
	g_error("device %s not in %s", id, json_object_to_json_string(array));
	return NULL;
}

static json_object *
get_devices(HealerDBusHealer1 *manager)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;

	g_assert_true(healer_dbus_healer1_call_get_devices_sync(manager, &text, NULL, &error));
	g_assert_no_error(error);
	return parse_json(text);
}

static char *
list_modules(HealerDBusHealer1 *manager)
{
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_assert_true(healer_dbus_healer1_call_list_modules_sync(manager, &text, NULL, &error));
	g_assert_no_error(error);
	return text;
}

/* Until healerd owns its name and has judged `n` devices (none attached or identified only). */
static void
wait_for_devices(GDBusConnection *c, HealerDBusHealer1 *manager, guint n, HealerdProcess *healerd)
{
	gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

	for (;;) {
		if (has_owner(c)) {
			g_autoptr(json_object) devices = get_devices(manager);
			guint judged = 0;
			for (size_t i = 0; i < json_object_array_length(devices); i++) {
				const char *state = string_member(json_object_array_get_idx(devices, i), "state");
				if (!g_str_equal(state, "attached") && !g_str_equal(state, "identified"))
					judged++;
			}
			if (json_object_array_length(devices) == n && judged == n)
				return;
		}
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *log = NULL;
			g_file_get_contents(healerd->log, &log, NULL, NULL);
			g_error("healerd did not serve %u devices within 60 s; its log:\n%s", n, log);
		}
		g_usleep(50000);
	}
}

/* ---- introspection against the documented XML ---- */

static GDBusNodeInfo *
documented_api(void)
{
	g_autofree char *path =
	        g_build_filename(test_program("HEALER_SOURCE_DIR"), "dbus", "io.healerd.Healer1.xml", NULL);
	g_autofree char *xml = NULL;
	g_autoptr(GError) error = NULL;
	GDBusNodeInfo *node;

	g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
	node = g_dbus_node_info_new_for_xml(xml, &error);
	g_assert_no_error(error);
	return node;
}

static char *
args_signature(GDBusArgInfo **args)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; args != NULL && args[i] != NULL; i++)
		g_string_append(s, args[i]->signature);
	return g_string_free(s, FALSE);
}

/* Every method, signal and property the XML documents is served, with the same types. */
static void
assert_interface_matches(const GDBusInterfaceInfo *want, const GDBusInterfaceInfo *have)
{
	g_assert_nonnull(have);
	for (guint i = 0; want->methods != NULL && want->methods[i] != NULL; i++) {
		const GDBusMethodInfo *w = want->methods[i];
		GDBusMethodInfo *h = g_dbus_interface_info_lookup_method((GDBusInterfaceInfo *)have, w->name);
		g_autofree char *w_in = args_signature(w->in_args), *w_out = args_signature(w->out_args);
		g_autofree char *h_in = NULL, *h_out = NULL;
		g_assert_nonnull(h);
		h_in = args_signature(h->in_args);
		h_out = args_signature(h->out_args);
		g_assert_cmpstr(w_in, ==, h_in);
		g_assert_cmpstr(w_out, ==, h_out);
	}
	for (guint i = 0; want->signals != NULL && want->signals[i] != NULL; i++) {
		GDBusSignalInfo *h =
		        g_dbus_interface_info_lookup_signal((GDBusInterfaceInfo *)have, want->signals[i]->name);
		g_autofree char *w_args = args_signature(want->signals[i]->args);
		g_autofree char *h_args = NULL;
		g_assert_nonnull(h);
		h_args = args_signature(h->args);
		g_assert_cmpstr(w_args, ==, h_args);
	}
	for (guint i = 0; want->properties != NULL && want->properties[i] != NULL; i++) {
		GDBusPropertyInfo *h =
		        g_dbus_interface_info_lookup_property((GDBusInterfaceInfo *)have, want->properties[i]->name);
		g_assert_nonnull(h);
		g_assert_cmpstr(h->signature, ==, want->properties[i]->signature);
		g_assert_cmpint(h->flags, ==, want->properties[i]->flags);
	}
}

static GDBusNodeInfo *
introspect(GDBusConnection *c, const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	        g_dbus_connection_call_sync(c, BUS_NAME, path, "org.freedesktop.DBus.Introspectable", "Introspect",
	                                    NULL, G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
	const char *xml = NULL;
	GDBusNodeInfo *node;

	g_assert_no_error(error);
	g_variant_get(reply, "(&s)", &xml);
	node = g_dbus_node_info_new_for_xml(xml, &error);
	g_assert_no_error(error);
	return node;
}

static void
check_introspection(GDBusConnection *c, const char *device_id)
{
	g_autoptr(GDBusNodeInfo) api = documented_api();
	g_autoptr(GDBusNodeInfo) root = introspect(c, MANAGER_PATH);
	g_autofree char *device_path = g_strdup_printf(MANAGER_PATH "/devices/%s", device_id);
	g_autoptr(GDBusNodeInfo) device = introspect(c, device_path);
	g_auto(TestRun) run = {0};
	const char *argv[] = {"gdbus",         "introspect", "--system",  "--dest", BUS_NAME,
	                      "--object-path", MANAGER_PATH, "--recurse", NULL};
	g_autoptr(GError) error = NULL;
	int wait_status = 0;

	assert_interface_matches(g_dbus_node_info_lookup_interface(api, "io.healerd.Healer1"),
	                         g_dbus_node_info_lookup_interface(root, "io.healerd.Healer1"));
	g_assert_nonnull(g_dbus_node_info_lookup_interface(root, "org.freedesktop.DBus.ObjectManager"));
	assert_interface_matches(g_dbus_node_info_lookup_interface(api, "io.healerd.Healer1.Device"),
	                         g_dbus_node_info_lookup_interface(device, "io.healerd.Healer1.Device"));

	/* And as a technician sees it, with gdbus on the (private) system bus. */
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &run.out, &run.err,
	                           &wait_status, &error));
	g_assert_no_error(error);
	g_assert_true(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
	g_assert_nonnull(strstr(run.out, "interface io.healerd.Healer1 {"));
	g_assert_nonnull(strstr(run.out, "interface io.healerd.Healer1.Device {"));
	g_assert_nonnull(strstr(run.out, "interface org.freedesktop.DBus.ObjectManager {"));
	g_assert_nonnull(strstr(run.out, device_path));
	for (guint i = 0; api->interfaces[i] != NULL; i++) {
		const GDBusInterfaceInfo *iface = api->interfaces[i];
		for (guint m = 0; iface->methods && iface->methods[m]; m++)
			g_assert_nonnull(strstr(run.out, iface->methods[m]->name));
		for (guint s = 0; iface->signals && iface->signals[s]; s++)
			g_assert_nonnull(strstr(run.out, iface->signals[s]->name));
		for (guint p = 0; iface->properties && iface->properties[p]; p++)
			g_assert_nonnull(strstr(run.out, iface->properties[p]->name));
	}
}

/* ---- what a heal looks like on the bus ---- */

typedef struct {
	char *device_id;
	GHashTable *changed; /* property names seen in PropertiesChanged on the device */
	GPtrArray *states;   /* State values, in order */
	gboolean manager_healing_changed;
	guint progress_signals;
	guint max_step, steps, max_progress;
	gboolean finished, success;
} HealWatch;

static void
on_device_properties(GDBusProxy *proxy, GVariant *changed, const char *const *invalidated, gpointer user_data)
{
	HealWatch *w = user_data;
	GVariantIter iter;
	const char *name;
	GVariant *value;

	(void)proxy;
	(void)invalidated;
	g_variant_iter_init(&iter, changed);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		g_hash_table_add(w->changed, g_strdup(name));
		if (g_str_equal(name, "State"))
			g_ptr_array_add(w->states, g_variant_dup_string(value, NULL));
		g_variant_unref(value);
	}
}

static void
on_manager_properties(GDBusProxy *proxy, GVariant *changed, const char *const *invalidated, gpointer user_data)
{
	HealWatch *w = user_data;

	(void)proxy;
	(void)invalidated;
	{
		g_autoptr(GVariant) healing = g_variant_lookup_value(changed, "Healing", NULL);
		if (healing != NULL)
			w->manager_healing_changed = TRUE;
	}
}

static void
on_heal_progress(HealerDBusHealer1 *manager, const char *device_id, guint step, guint steps, const char *module,
                 guint progress, gpointer user_data)
{
	HealWatch *w = user_data;

	(void)manager;
	(void)module;
	if (!g_str_equal(device_id, w->device_id))
		return;
	w->progress_signals++;
	w->max_step = MAX(w->max_step, step);
	w->steps = steps;
	w->max_progress = MAX(w->max_progress, progress);
	g_assert_cmpuint(step, >=, 1);
	g_assert_cmpuint(step, <=, steps);
	g_assert_cmpuint(progress, <=, 100);
}

static void
on_heal_finished(HealerDBusHealer1 *manager, const char *device_id, gboolean success, const char *message,
                 gpointer user_data)
{
	HealWatch *w = user_data;

	(void)manager;
	(void)message;
	if (!g_str_equal(device_id, w->device_id))
		return;
	w->finished = TRUE;
	w->success = success;
}

static gboolean
saw_state(const HealWatch *w, const char *state)
{
	for (guint i = 0; i < w->states->len; i++) {
		if (g_str_equal(g_ptr_array_index(w->states, i), state))
			return TRUE;
	}
	return FALSE;
}

/* bash completion offers the verbs, and the ids of the devices healerd serves. */
static void
check_completion(Device **devices, guint n)
{
	g_autofree char *bash = g_find_program_in_path("bash");
	g_autofree char *completion =
	        g_build_filename(test_program("HEALER_SOURCE_DIR"), "packaging", "bash-completion", "healerctl", NULL);
	g_autofree char *script = NULL;
	g_auto(TestRun) run = {0};
	g_autoptr(GError) error = NULL;
	int wait_status = 0;
	const char *argv[] = {"bash", "--norc", "-c", NULL, NULL};

	if (bash == NULL) {
		g_test_skip("no bash: completion not checked"); /* reported, not a silent pass */
		return;
	}
	script =
	        g_strdup_printf("source '%s' && "
	                        "COMP_WORDS=('%s' he) COMP_CWORD=1 && _healerctl && echo \"verbs: ${COMPREPLY[*]}\" && "
	                        "COMP_WORDS=('%s' device '') COMP_CWORD=2 && _healerctl && "
	                        "echo \"ids: ${COMPREPLY[*]}\"",
	                        completion, test_program("HEALERCTL"), test_program("HEALERCTL"));
	argv[3] = script;
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &run.out, &run.err,
	                           &wait_status, &error));
	g_assert_no_error(error);
	log_run(&run, "bash completion");
	g_assert_true(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
	g_assert_nonnull(strstr(run.out, "verbs: heal\n"));
	for (guint i = 0; i < n; i++)
		g_assert_nonnull(strstr(run.out, devices[i]->id));
}

/* A heal-finished event of `id` (data) saying there was nothing to heal: the marker below. */
static gboolean
is_nothing_to_heal(const char *line, gpointer data)
{
	g_autoptr(json_object) event = *line == '\0' ? NULL : parse_json(line);

	return event != NULL && g_str_equal(string_member(event, "event"), "heal-finished") &&
	       g_str_equal(string_member(event, "device"), (const char *)data) &&
	       g_str_has_prefix(string_member(event, "message"), "nothing to heal");
}

/* ---- the tests ---- */

static void
test_end_to_end(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "e2e", NULL);
	g_autofree char *modules = g_build_filename(dir, "modules", NULL);
	g_autofree char *usb_stick = g_build_filename(dir, "usb-stick", NULL);
	g_autofree char *release_210 = g_build_filename(usb_stick, "2.1.0", NULL);
	g_auto(Bus) bus = {0};
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(GDBusConnection) c = NULL;
	g_autoptr(HealerDBusHealer1) manager = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(Device) healthy = {0}, stone = {0}, direct = {0}, blocked = {0};
	Device *all[] = {&healthy, &stone, &direct, &blocked};

	if (!have_dbus_daemon()) {
		g_test_skip("no dbus-daemon");
		return;
	}
	/* The store lacks 2.1.0, which the sensor device needs; it comes later "on a USB stick". */
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), modules, "2.1.0");
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), usb_stick, NULL);
	/* Devices wait for a technician: the test decides when heals happen. */
	healerd = healerd_process_new(dir, modules, "auto-heal=false\n");
	healerd->bus_args = g_strdup(""); /* the system bus (the private one) */
	start_device(&healthy, dir, "healthy", "2.0.0", "travel-in-time");
	start_device(&stone, dir, "stepping-stone", "1.0.0", "travel-in-time");
	start_device(&direct, dir, "direct", "1.0.0", "heartbeat");
	start_device(&blocked, dir, "blocked", "2.0.0", "sensor");

	bus_start(&bus);
	c = bus_connect(&bus);
	healerd_process_start(healerd);
	manager = healer_dbus_healer1_proxy_new_sync(c, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, MANAGER_PATH, NULL, &error);
	g_assert_no_error(error);
	wait_for_devices(c, manager, G_N_ELEMENTS(all), healerd);

	/* The documented API, and nothing different. */
	check_introspection(c, stone.id);

	/* devices --json agrees with GetDevices and with the devices themselves. */
	{
		g_auto(TestRun) run = {0};
		g_autoptr(json_object) listed = NULL;
		g_autoptr(json_object) daemon = get_devices(manager);

		healerctl(&run, "devices", "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		listed = parse_json(run.out);
		g_assert_true(json_object_is_type(listed, json_type_array));
		g_assert_cmpuint(json_object_array_length(listed), ==, G_N_ELEMENTS(all));
		g_assert_cmpuint(json_object_array_length(daemon), ==, G_N_ELEMENTS(all));
		for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
			json_object *mine = find_device(listed, all[i]->id);
			g_autoptr(json_object) said = parse_json(all[i]->describe_json);
			const char *keys[] = {"id", "port", "platform_id", "mode", "state", "progress", "modules"};

			for (guint k = 0; k < G_N_ELEMENTS(keys); k++)
				(void)member(mine, keys[k]);
			g_assert_true(json_object_equal(mine, find_device(daemon, all[i]->id)));
			g_assert_cmpstr(string_member(mine, "port"), ==, all[i]->link);
			g_assert_cmpint(json_object_get_int(member(mine, "platform_id")), ==,
			                all[i]->hello.platform_id);
			g_assert_cmpstr(string_member(mine, "mode"), ==,
			                healer_link_mode_to_string(all[i]->hello.mode));
			g_assert_cmpstr(string_member(mine, "led"), ==, healer_link_led_to_string(all[i]->hello.led));
			g_assert_true(json_object_equal(member(mine, "modules"), member(said, "m")));
			g_assert_cmpstr(string_member(mine, "state"), ==, all[i] == &healthy ? "healthy" : "safe-mode");
		}
	}
	check_completion(all, G_N_ELEMENTS(all));
	{
		g_auto(TestRun) run = {0};
		g_autoptr(json_object) status = NULL;
		healerctl(&run, "status", "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		status = parse_json(run.out);
		g_assert_cmpint(json_object_get_int(member(status, "devices")), ==, G_N_ELEMENTS(all));
		g_assert_cmpint(json_object_get_int(member(member(status, "states"), "safe-mode")), ==, 3);
		g_assert_cmpint(json_object_get_int(member(member(status, "states"), "healthy")), ==, 1);
		g_assert_cmpint(json_object_get_int(member(status, "store_modules")), >, 0);
	}

	/* The blocked device: its failed dependency in the module table, and no plan, naming the module. */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "device", blocked.id, NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, "needs system-part 2 >= 2100"));
		g_assert_nonnull(strstr(run.out, "FAIL"));
	}
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "plan", blocked.id, NULL);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_assert_nonnull(strstr(run.err, "no plan"));
		g_assert_nonnull(strstr(run.err, "system-part 2 >= 2100"));
	}
	{
		g_auto(TestRun) run = {0};
		g_autoptr(json_object) plan = NULL;
		healerctl(&run, "plan", stone.id, "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		plan = parse_json(run.out);
		g_assert_cmpuint(json_object_array_length(member(plan, "steps")), >=, 4);
	}
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "device", "no-such-device", NULL);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_assert_nonnull(strstr(run.err, "healerctl devices lists them"));
	}

	/* Anyone may look; only root and group healer may change things. */
	if (can_switch_user()) {
		g_auto(TestRun) list = {0}, heal = {0}, heal_all = {0}, import = {0};
		g_autofree char *modules_before = list_modules(manager);
		g_autoptr(json_object) devices_before = get_devices(manager);

		healerctl_as_nobody(&list, "devices", NULL);
		g_assert_cmpint(list.exit_status, ==, 0);
		for (guint i = 0; i < G_N_ELEMENTS(all); i++)
			g_assert_nonnull(strstr(list.out, all[i]->id));
		healerctl_as_nobody(&heal, "heal", stone.id, NULL);
		g_assert_cmpint(heal.exit_status, ==, 4);
		g_assert_nonnull(strstr(heal.err, HOW_TO_HEAL));
		healerctl_as_nobody(&heal_all, "heal", "--all", NULL);
		g_assert_cmpint(heal_all.exit_status, ==, 4);
		g_assert_nonnull(strstr(heal_all.err, HOW_TO_HEAL));
		/* A module nobody can read (the bus directory is world-searchable): healerd itself refuses. */
		{
			g_autofree char *readable = g_build_filename(bus.dir, "sensor.bin", NULL);
			g_autofree char *app =
			        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "apps", "sensor.bin", NULL);
			g_autoptr(GBytes) bytes = test_read_file(app);
			g_auto(TestRun) unreadable = {0};

			test_write_file(readable, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
			g_assert_cmpint(g_chmod(readable, 0644), ==, 0);
			healerctl_as_nobody(&import, "import", readable, NULL);
			g_assert_cmpint(import.exit_status, ==, 4);
			g_assert_nonnull(strstr(import.err, HOW_TO_HEAL));
			/* What nobody cannot open, healerd is never asked to read. */
			healerctl_as_nobody(&unreadable, "import", release_210, NULL);
			g_assert_cmpint(unreadable.exit_status, ==, 4);
			g_assert_nonnull(strstr(unreadable.err, "Permission denied"));
		}
		/* Refused, and nothing changed: the store, and every device's state (no heal began). */
		{
			g_autofree char *modules_after = list_modules(manager);
			g_autoptr(json_object) devices_after = get_devices(manager);
			g_assert_cmpstr(modules_after, ==, modules_before);
			for (guint i = 0; i < G_N_ELEMENTS(all); i++)
				g_assert_cmpstr(string_member(find_device(devices_after, all[i]->id), "state"), ==,
				                string_member(find_device(devices_before, all[i]->id), "state"));
		}
	} else {
		/* Not a silent pass: the subtest is reported skipped (run-tests.sh counts it; CI fails on it). */
		g_test_skip("not root or no setpriv: the unprivileged checks did not run");
	}

	/* Root heals the stepping-stone device; the bus shows it happen. */
	{
		g_autofree char *path = g_strdup_printf(MANAGER_PATH "/devices/%s", stone.id);
		g_autoptr(HealerDBusHealer1Device) dev = healer_dbus_healer1_device_proxy_new_sync(
		        c, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path, NULL, &error);
		g_auto(Background) heal = {0};
		const char *args[] = {"heal", stone.id, NULL};
		g_autofree char *first_step = g_strdup_printf("%s: step 1/", stone.id);
		g_autofree char *healed = g_strdup_printf("%s: healed", stone.id);
		HealWatch w = {.device_id = stone.id};

		g_assert_no_error(error);
		w.changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		w.states = g_ptr_array_new_with_free_func(g_free);
		g_signal_connect(dev, "g-properties-changed", G_CALLBACK(on_device_properties), &w);
		g_signal_connect(manager, "g-properties-changed", G_CALLBACK(on_manager_properties), &w);
		g_signal_connect(manager, "heal-progress", G_CALLBACK(on_heal_progress), &w);
		g_signal_connect(manager, "heal-finished", G_CALLBACK(on_heal_finished), &w);

		background_start(&heal, args, FALSE);
		g_assert_cmpint(background_wait(&heal, 240), ==, 0);
		/* The signals were sent before healerctl heard the last one: let them in. */
		for (gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
		     !w.finished && g_get_monotonic_time() < until;)
			g_main_context_iteration(NULL, FALSE);
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_assert_nonnull(strstr(heal.out, first_step));
		g_assert_nonnull(strstr(heal.out, healed));

		g_assert_true(w.finished);
		g_assert_true(w.success);
		g_assert_cmpuint(w.progress_signals, >, 0);
		g_assert_cmpuint(w.steps, >=, 4);
		g_assert_cmpuint(w.max_step, ==, w.steps);
		g_assert_true(saw_state(&w, "healing"));
		g_assert_true(saw_state(&w, "healthy"));
		g_assert_true(g_hash_table_contains(w.changed, "Progress"));
		g_assert_true(g_hash_table_contains(w.changed, "CurrentStep"));
		g_assert_true(g_hash_table_contains(w.changed, "Mode"));
		g_assert_true(g_hash_table_contains(w.changed, "Modules"));
		g_assert_true(w.manager_healing_changed);
		g_assert_cmpstr(healer_dbus_healer1_device_get_state(dev), ==, "healthy");
		g_assert_cmpstr(healer_dbus_healer1_device_get_mode(dev), ==, "normal");

		g_signal_handlers_disconnect_by_data(dev, &w);
		g_signal_handlers_disconnect_by_data(manager, &w);
		g_hash_table_unref(w.changed);
		g_ptr_array_unref(w.states);
	}

	/* 2.1.0 arrives; healerctl import puts it in the store; the blocked device has a plan now. */
	{
		g_auto(TestRun) run = {0}, plan = {0};
		g_autoptr(json_object) result = NULL;
		healerctl(&run, "import", release_210, "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		result = parse_json(run.out);
		g_assert_cmpint(json_object_get_int(member(result, "added")), >, 0);
		g_assert_cmpuint(json_object_array_length(member(result, "rejected")), ==, 0);
		healerctl(&plan, "plan", blocked.id, NULL);
		g_assert_cmpint(plan.exit_status, ==, 0);
		g_assert_nonnull(strstr(plan.out, "v2100"));
	}

	/* heal --all, with healerctl monitor --json watching. */
	{
		g_auto(Background) monitor = {0};
		g_auto(TestRun) run = {0}, after = {0};
		g_autoptr(json_object) devices = NULL;
		const char *monitor_args[] = {"monitor", "--json", NULL};
		g_auto(GStrv) lines = NULL;
		guint progress = 0, finished = 0, changed = 0, marker;
		gboolean seen_direct = FALSE, seen_blocked = FALSE;

		/* monitor says it is following once its signal subscriptions are in place. */
		background_start(&monitor, monitor_args, TRUE);
		healerctl(&run, "heal", "--all", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, direct.id));
		g_assert_nonnull(strstr(run.out, blocked.id));
		g_assert_nonnull(strstr(run.out, "2 healed, 0 failed"));

		healerctl(&after, "devices", "--json", NULL);
		g_assert_cmpint(after.exit_status, ==, 0);
		devices = parse_json(after.out);
		for (guint i = 0; i < G_N_ELEMENTS(all); i++) {
			json_object *d = find_device(devices, all[i]->id);
			g_assert_cmpstr(string_member(d, "state"), ==, "healthy");
			g_assert_cmpstr(string_member(d, "mode"), ==, "normal");
		}

		/*
		 * A marker instead of a sleep: Heal on the healthy device ends at once with a HealFinished
		 * ("nothing to heal"), which healerd sends after every signal of the heals above (one
		 * sender's signals arrive in order).  Once monitor has printed it, it has printed all of
		 * theirs, and any extra event would be before it.
		 */
		{
			g_autofree char *path = g_strdup_printf(MANAGER_PATH "/devices/%s", healthy.id);
			g_autoptr(HealerDBusHealer1Device) dev = healer_dbus_healer1_device_proxy_new_sync(
			        c, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path, NULL, &error);
			g_assert_no_error(error);
			g_assert_true(healer_dbus_healer1_device_call_heal_sync(dev, NULL, &error));
			g_assert_no_error(error);
			marker = background_wait_line(&monitor, is_nothing_to_heal, healthy.id, 60);
		}
		g_subprocess_send_signal(monitor.process, SIGINT);
		g_assert_cmpint(background_wait(&monitor, 30), ==, 0);
		lines = g_strsplit(monitor.out, "\n", -1);
		for (guint i = 0; i < marker; i++) {
			g_autoptr(json_object) event = NULL;
			const char *kind;
			if (*lines[i] == '\0')
				continue;
			event = parse_json(lines[i]);
			(void)member(event, "time");
			kind = string_member(event, "event");
			if (g_str_equal(kind, "heal-progress"))
				progress++;
			else if (g_str_equal(kind, "heal-finished")) {
				/* The two heals heal --all started, each once, and nothing else. */
				const char *id = string_member(event, "device");
				g_assert_true(json_object_get_boolean(member(event, "success")));
				g_assert_true(g_str_equal(id, direct.id) || g_str_equal(id, blocked.id));
				g_assert_false(g_str_equal(id, direct.id) ? seen_direct : seen_blocked);
				if (g_str_equal(id, direct.id))
					seen_direct = TRUE;
				else
					seen_blocked = TRUE;
				finished++;
			} else if (g_str_equal(kind, "properties-changed"))
				changed++;
		}
		g_assert_cmpuint(progress, >, 0);
		g_assert_cmpuint(finished, ==, 2);
		g_assert_cmpuint(changed, >, 0);
	}

	healerd_process_stop(healerd);
	for (gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC; has_owner(c);) {
		g_assert_cmpint(g_get_monotonic_time(), <, until);
		g_usleep(20000);
	}

	/* No daemon: exit 5, and how to start it. */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "status", NULL);
		g_assert_cmpint(run.exit_status, ==, 5);
		g_assert_nonnull(strstr(run.err, NOT_RUNNING));
	}

	/* The devices agree: each runs its application. */
	for (guint i = 0; i < G_N_ELEMENTS(all); i++)
		assert_runs(all[i]);
}

/* healerctl with no healerd, and with no bus at all. */
static void
test_not_running(void)
{
	g_auto(Bus) bus = {0};
	const char *verbs[][3] = {
	        {"status", NULL, NULL}, {"devices", "--json", NULL}, {"heal", "--all", NULL}, {"monitor", NULL, NULL}};

	if (!have_dbus_daemon()) {
		g_test_skip("no dbus-daemon");
		return;
	}
	bus_start(&bus);
	for (guint i = 0; i < G_N_ELEMENTS(verbs); i++) {
		g_auto(TestRun) run = {0};
		healerctl(&run, verbs[i][0], verbs[i][1], NULL);
		g_assert_cmpint(run.exit_status, ==, 5);
		g_assert_cmpstr(run.out, ==, "");
		g_assert_nonnull(strstr(run.err, NOT_RUNNING));
	}
	{
		g_autofree char *nowhere = g_strdup_printf("unix:path=%s/no-bus-here", bus.dir);
		g_auto(TestRun) run = {0};
		g_setenv("DBUS_SYSTEM_BUS_ADDRESS", nowhere, TRUE);
		healerctl(&run, "status", NULL);
		g_setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address, TRUE);
		g_assert_cmpint(run.exit_status, ==, 5);
		g_assert_nonnull(strstr(run.err, NOT_RUNNING));
	}
	{
		/* A bad bus choice is a usage error. */
		g_auto(TestRun) run = {0};
		g_setenv("HEALERCTL_BUS", "tram", TRUE);
		healerctl(&run, "status", NULL);
		g_unsetenv("HEALERCTL_BUS");
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_cmpstr(run.out, ==, "");
		g_assert_cmpstr(run.err, ==,
		                "healerctl status: HEALERCTL_BUS must be 'system' or 'session', not 'tram'\n");
	}
}

/* healerd --session for development: healerctl --session and HEALERCTL_BUS=session find it. */
static void
test_session_bus(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "session", NULL);
	g_autofree char *nowhere = NULL;
	g_auto(Bus) bus = {0};
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(GDBusConnection) c = NULL;

	if (!have_dbus_daemon()) {
		g_test_skip("no dbus-daemon");
		return;
	}
	bus_start(&bus);
	c = bus_connect(&bus);
	/* The private bus plays the session bus; the system bus is nowhere. */
	nowhere = g_strdup_printf("unix:path=%s/no-bus-here", bus.dir);
	g_setenv("DBUS_SESSION_BUS_ADDRESS", bus.address, TRUE);
	g_setenv("DBUS_SYSTEM_BUS_ADDRESS", nowhere, TRUE);
	healerd = healerd_process_new(dir, test_program("HEALER_FIRMWARE_MODULES"), NULL);
	healerd->bus_args = g_strdup("--session");
	healerd_process_start(healerd);
	for (gint64 until = g_get_monotonic_time() + 30 * G_USEC_PER_SEC; !has_owner(c);) {
		g_assert_cmpint(g_get_monotonic_time(), <, until);
		g_usleep(50000);
	}
	{
		g_auto(TestRun) flag = {0}, global = {0}, env = {0}, system = {0};
		healerctl(&flag, "status", "--session", NULL);
		g_assert_cmpint(flag.exit_status, ==, 0);
		g_assert_nonnull(strstr(flag.out, "session bus"));
		healerctl(&global, "--session", "devices", "--json", NULL);
		g_assert_cmpint(global.exit_status, ==, 0);
		{
			g_autoptr(json_object) none = parse_json(global.out);
			g_assert_true(json_object_is_type(none, json_type_array));
			g_assert_cmpuint(json_object_array_length(none), ==, 0);
		}
		g_setenv("HEALERCTL_BUS", "session", TRUE);
		healerctl(&env, "modules", NULL);
		g_assert_cmpint(env.exit_status, ==, 0);
		g_assert_nonnull(strstr(env.out, "system-part"));
		healerctl(&system, "--system", "status", NULL);
		g_unsetenv("HEALERCTL_BUS");
		g_assert_cmpint(system.exit_status, ==, 5);
		g_assert_nonnull(strstr(system.err, NOT_RUNNING));
	}
	healerd_process_stop(healerd);
	g_unsetenv("DBUS_SESSION_BUS_ADDRESS");
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/dbus/not-running", test_not_running);
	g_test_add_func("/dbus/session-bus", test_session_bus);
	g_test_add_func("/dbus/end-to-end", test_end_to_end);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
