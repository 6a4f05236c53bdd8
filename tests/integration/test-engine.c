/*
 * The engine in-process (no faces yet): installing an application through
 * it first installs the system modules the application needs, then the
 * application, so the device never boots into safe mode.
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "engine.h"
#include "healer-error.h"
#include "store.h"
#include "healer/module-format.h"
#include "journal.h"
#include "sim-client.h"
#include "test-util.h"

static char *tmpdir;

typedef struct {
	GMainLoop *loop;
	gboolean done;
	GError *error;
} Outcome;

static void
on_done(HealerEngine *engine, const char *device_id, const GError *error, gpointer user_data)
{
	Outcome *o = user_data;

	(void)engine;
	(void)device_id;
	o->done = TRUE;
	o->error = error ? g_error_copy(error) : NULL;
	g_main_loop_quit(o->loop);
}

static gboolean
on_timeout(gpointer user_data)
{
	g_error("the engine did not finish in time");
	(void)user_data;
	return G_SOURCE_REMOVE;
}

static void
test_flash_app_never_safe_mode(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "flash", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *link = g_build_filename(dir, "ports", "dev", NULL);
	g_autofree char *device_dir = g_build_filename(dir, "device", NULL);
	g_autofree char *ports_glob = g_build_filename(dir, "ports", "*", NULL);
	g_autofree char *app =
	        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "apps", "travel-in-time.bin", NULL);
	g_autofree char *not_app =
	        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "2.0.0", "system-part1.bin", NULL);
	g_autofree char *sim_log = g_build_filename(device_dir, "sim.log", NULL);
	g_autofree char *log_text = NULL, *id = NULL;
	const char *args[] = {"--release", "1.0.0", "--app", "tinker", "--link", link, NULL};
	g_autoptr(SimDevice) sim = NULL;
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDescribe) describe = NULL;
	Outcome outcome = {.loop = loop};
	HealerLinkHello hello;
	gint64 deadline;
	guint timeout;

	{
		g_autofree char *ports = g_path_get_dirname(link);
		g_mkdir_with_parents(ports, 0755);
	}
	sim = sim_device_start(device_dir, args);
	sim_device_wait_hello(sim, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_NORMAL);
	id = sim_hello_id(&hello);
	sim_device_disconnect(sim);

	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	g_strfreev(config->serial_ports);
	config->serial_ports = g_strsplit(ports_glob, "\n", -1);
	g_strfreev(config->module_dirs);
	config->module_dirs = g_strsplit(test_program("HEALER_FIRMWARE_MODULES"), "\n", -1);
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	healer_store_import_directory(store, config->module_dirs[0], NULL, &error);
	g_assert_no_error(error);
	engine = healer_engine_new(config, store);
	healer_engine_start(engine);

	/* Unknown device, and a file that is no application: refused at once. */
	g_assert_false(healer_engine_flash_app(engine, "000000000000000000000000", app, on_done, &outcome, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* Wait (on the loop) until the device is attached and described. */
	deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (!healer_engine_flash_app(engine, id, not_app, on_done, &outcome, &error)) {
		if (!g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND))
			break;
		g_clear_error(&error);
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_main_context_iteration(NULL, TRUE);
	}
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	g_assert_true(healer_engine_flash_app(engine, id, app, on_done, &outcome, &error));
	g_assert_no_error(error);
	timeout = g_timeout_add_seconds(120, on_timeout, NULL);
	if (!outcome.done)
		g_main_loop_run(loop);
	g_source_remove(timeout);
	g_assert_no_error(outcome.error);
	g_clear_pointer(&engine, healer_engine_free);
	/* Let the engine's deferred frees run. */
	while (g_main_context_iteration(NULL, FALSE))
		;

	sim_device_reconnect(sim);
	describe = sim_device_describe(sim, NULL);
	g_assert_cmpuint(healer_describe_find(describe, MODULE_FUNCTION_SYSTEM_PART, 2)->version, ==, 2002);
	g_assert_true(healer_describe_module_valid(healer_describe_find(describe, MODULE_FUNCTION_USER_PART, 1)));
	/* The device never came up in safe mode: the application went in last. */
	g_assert_true(g_file_get_contents(sim_log, &log_text, NULL, NULL));
	g_assert_null(strstr(log_text, "safe mode"));
	g_assert_nonnull(strstr(log_text, "travel-in-time: running on system 2.0.0"));
}

/* What a heal looked like from outside while it ran. */
typedef struct {
	GMainLoop *loop;
	char *job_path;
	gboolean progressed;
	gboolean file_at_first_progress;
	char *error_at_first_progress;
	gboolean finished, success;
} HealSeen;

static void
on_heal_progress(HealerEngine *engine, const char *device_id, guint step, guint steps, const char *module,
                 guint progress, gpointer user_data)
{
	HealSeen *seen = user_data;
	g_autoptr(HealerDeviceInfo) info = healer_engine_get_device(engine, device_id);

	(void)step;
	(void)steps;
	(void)module;
	(void)progress;
	if (seen->progressed)
		return;
	seen->progressed = TRUE;
	seen->file_at_first_progress = g_file_test(seen->job_path, G_FILE_TEST_IS_REGULAR);
	seen->error_at_first_progress = g_strdup(info != NULL ? info->last_error : "");
}

static void
on_heal_finished(HealerEngine *engine, const char *device_id, gboolean success, const char *message, gpointer user_data)
{
	HealSeen *seen = user_data;

	(void)engine;
	(void)device_id;
	(void)message;
	seen->finished = TRUE;
	seen->success = success;
	g_main_loop_quit(seen->loop);
}

/*
 * A device in safe mode, healed by the engine: its job file is on disk
 * before the device receives anything (written by a worker), is gone once
 * the heal ended and the engine is freed, and no module stays held.  With
 * `data` set the job file cannot be written: the heal goes on, and the
 * device's last error says why.
 */
static void
test_heal_job_file(gconstpointer data)
{
	gboolean unwritable = GPOINTER_TO_INT(data);
	g_autofree char *dir = g_build_filename(tmpdir, unwritable ? "heal-unsaved" : "heal", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *jobs = g_build_filename(state, "jobs", NULL);
	g_autofree char *link = g_build_filename(dir, "ports", "dev", NULL);
	g_autofree char *device_dir = g_build_filename(dir, "device", NULL);
	g_autofree char *ports_glob = g_build_filename(dir, "ports", "*", NULL);
	g_autofree char *id = NULL, *job_name = NULL;
	const char *args[] = {"--release", "1.0.0", "--app", "heartbeat", "--link", link, NULL};
	const HealerEngineObserver observer = {.heal_progress = on_heal_progress, .heal_finished = on_heal_finished};
	g_autoptr(SimDevice) sim = NULL;
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) entries = NULL;
	g_autoptr(GPtrArray) shas = g_ptr_array_new_with_free_func(g_free);
	HealSeen seen = {.loop = loop};
	HealerLinkHello hello;
	guint timeout;

	{
		g_autofree char *ports = g_path_get_dirname(link);
		g_mkdir_with_parents(ports, 0755);
	}
	sim = sim_device_start(device_dir, args);
	sim_device_wait_hello(sim, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	id = sim_hello_id(&hello);
	sim_device_disconnect(sim);
	job_name = g_strconcat(id, ".json", NULL);
	seen.job_path = g_build_filename(jobs, job_name, NULL);

	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	g_strfreev(config->serial_ports);
	config->serial_ports = g_strsplit(ports_glob, "\n", -1);
	g_strfreev(config->module_dirs);
	config->module_dirs = g_strsplit(test_program("HEALER_FIRMWARE_MODULES"), "\n", -1);
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	healer_store_import_directory(store, config->module_dirs[0], NULL, &error);
	g_assert_no_error(error);
	if (unwritable)
		test_write_file(jobs, (const guint8 *)"not a directory", 15);
	engine = healer_engine_new(config, store);
	healer_engine_add_observer(engine, &observer, &seen);
	healer_engine_start(engine);
	timeout = g_timeout_add_seconds(120, on_timeout, NULL);
	g_main_loop_run(loop);
	g_source_remove(timeout);

	g_assert_true(seen.success);
	g_assert_true(seen.progressed);
	if (unwritable) {
		g_assert_false(seen.file_at_first_progress);
		g_assert_nonnull(strstr(seen.error_at_first_progress, "cannot save the heal's progress"));
	} else {
		g_assert_true(seen.file_at_first_progress);
		g_assert_cmpstr(seen.error_at_first_progress, ==, "");
	}

	/*
	 * No module is held once the heal ended: every stored file, altered
	 * now, is read again (and refused) by the next one to flash it.
	 */
	entries = healer_store_list(store);
	for (guint i = 0; i < entries->len; i++) {
		const HealerStoreEntry *e = g_ptr_array_index(entries, i);
		g_autoptr(GBytes) bytes = test_read_file(e->path);
		g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));

		copy[g_bytes_get_size(bytes) - 1] ^= 0xff;
		test_write_file(e->path, copy, g_bytes_get_size(bytes));
		g_ptr_array_add(shas, g_strdup(e->sha256));
	}
	for (guint i = 0; i < shas->len; i++) {
		g_assert_null(healer_store_acquire_module(store, g_ptr_array_index(shas, i), &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_clear_error(&error);
	}

	/* The job file's removal was queued at the heal's end; freeing the engine waits for it. */
	g_clear_pointer(&engine, healer_engine_free);
	while (g_main_context_iteration(NULL, FALSE))
		;
	if (!unwritable)
		g_assert_false(g_file_test(seen.job_path, G_FILE_TEST_EXISTS));
	g_free(seen.job_path);
	g_free(seen.error_at_first_progress);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	healer_journal_setup(G_LOG_LEVEL_INFO);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/engine/flash-app-never-safe-mode", test_flash_app_never_safe_mode);
	g_test_add_data_func("/engine/heal-job-file", GINT_TO_POINTER(FALSE), test_heal_job_file);
	g_test_add_data_func("/engine/heal-job-file-unwritable", GINT_TO_POINTER(TRUE), test_heal_job_file);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
