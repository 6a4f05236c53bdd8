/*
 * healerd: finds devices in safe mode and heals them.
 *
 *   healerd [--config FILE] [--state-dir DIR] [--verbose]
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>

#include "config.h"
#include "dbus-face.h"
#include "engine.h"
#include "healer-error.h"
#include "journal.h"
#include "notify.h"
#include "store.h"

static gboolean
on_stop_signal(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_REMOVE;
}

static void
on_store_changed(HealerStore *store, gpointer user_data)
{
	(void)store;
	healer_engine_store_changed(user_data);
}

/* Seeds the store from the configured module directories; bad files are reported, never indexed. */
static void
import_module_dirs(HealerStore *store, const HealerConfig *config)
{
	for (guint i = 0; config->module_dirs != NULL && config->module_dirs[i] != NULL; i++) {
		g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GError) error = NULL;
		guint added = healer_store_import_directory(store, config->module_dirs[i], warnings, &error);

		for (guint w = 0; w < warnings->len; w++)
			healer_journal_event(HEALER_MSG_STORE_REJECTED, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
			                     "module directory %s: skipped %s", config->module_dirs[i],
			                     (const char *)g_ptr_array_index(warnings, w));
		if (error != NULL)
			g_warning("module directory %s: %s", config->module_dirs[i], error->message);
		else
			g_info("module directory %s: %u new module(s); the store holds %u", config->module_dirs[i],
			       added, healer_store_get_n_entries(store));
	}
}

typedef struct {
	HealerStore *store;
	const HealerConfig *config;
	guint settle_source;
} ModuleDirWatch;

static gboolean
on_module_dirs_settled(gpointer user_data)
{
	ModuleDirWatch *watch = user_data;

	watch->settle_source = 0;
	import_module_dirs(watch->store, watch->config);
	return G_SOURCE_REMOVE;
}

static void
on_module_dir_changed(GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event, gpointer user_data)
{
	ModuleDirWatch *watch = user_data;

	(void)monitor;
	(void)file;
	(void)other;
	(void)event;
	/* A copy is many events: import once they settle. */
	if (watch->settle_source != 0)
		g_source_remove(watch->settle_source);
	watch->settle_source = g_timeout_add(500, on_module_dirs_settled, watch);
}

/* New modules dropped into a module directory (a technician's USB stick copy) enter the store. */
static GPtrArray *
watch_module_dirs(ModuleDirWatch *watch)
{
	GPtrArray *monitors = g_ptr_array_new_with_free_func(g_object_unref);

	for (guint i = 0; watch->config->module_dirs != NULL && watch->config->module_dirs[i] != NULL; i++) {
		g_autoptr(GFile) dir = g_file_new_for_path(watch->config->module_dirs[i]);
		g_autoptr(GError) error = NULL;
		GFileMonitor *monitor = g_file_monitor_directory(dir, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
		if (monitor == NULL) {
			g_warning("not watching module directory %s: %s", watch->config->module_dirs[i],
			          error->message);
			continue;
		}
		g_signal_connect(monitor, "changed", G_CALLBACK(on_module_dir_changed), watch);
		g_ptr_array_add(monitors, monitor);
	}
	return monitors;
}

static void
load_release_tables(HealerStore *store, const HealerConfig *config)
{
	for (guint i = 0; config->release_tables != NULL && config->release_tables[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		HealerReleaseTable *table = healer_release_table_new_from_file(config->release_tables[i], &error);
		if (table == NULL || !healer_store_add_release_table(store, table, &error))
			g_warning("release table %s: %s", config->release_tables[i], error->message);
	}
}

int
main(int argc, char **argv)
{
	g_autofree char *config_path = NULL, *state_dir = NULL;
	gboolean verbose = FALSE, version = FALSE, session = FALSE, no_bus = FALSE;
	const GOptionEntry entries[] = {
	        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
	         "Configuration file (default " HEALER_CONFIG_DEFAULT_PATH ", plus its healerd.conf.d/*.conf)", "FILE"},
	        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir, "Override [daemon] state-directory", "DIR"},
	        {"session", 0, 0, G_OPTION_ARG_NONE, &session, "Serve D-Bus on the session bus (development, demos)",
	         NULL},
	        {"no-bus", 0, 0, G_OPTION_ARG_NONE, &no_bus, "Serve no D-Bus API at all", NULL},
	        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL},
	        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) context = g_option_context_new("- heal devices stuck in safe mode");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(GPtrArray) monitors = NULL;
	g_autoptr(HealerDBusFace) face = NULL;
	ModuleDirWatch watch = {0};

	setlocale(LC_ALL, "");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		fprintf(stderr, "healerd: %s\n", error->message);
		return 2;
	}
	if (version) {
		printf("healerd %s\n", HEALER_VERSION);
		return 0;
	}
	config = healer_config_load(config_path, &error);
	if (config == NULL) {
		fprintf(stderr, "healerd: invalid configuration: %s\n", error->message);
		return 1;
	}
	if (state_dir != NULL) {
		g_free(config->state_dir);
		config->state_dir = g_steal_pointer(&state_dir);
	}
	healer_journal_setup(verbose ? G_LOG_LEVEL_DEBUG : config->log_level);

	store = healer_store_open(config->state_dir, &error);
	if (store == NULL) {
		g_critical("cannot open the module store in %s: %s", config->state_dir, error->message);
		return 1;
	}
	load_release_tables(store, config);
	import_module_dirs(store, config);

	loop = g_main_loop_new(NULL, FALSE);
	engine = healer_engine_new(config, store);
	healer_store_set_changed_func(store, on_store_changed, engine);
	g_unix_signal_add(SIGTERM, on_stop_signal, loop);
	g_unix_signal_add(SIGINT, on_stop_signal, loop);
	if (!no_bus)
		face = healer_dbus_face_new(engine, session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, loop);
	healer_engine_start(engine);
	watch.store = store;
	watch.config = config;
	monitors = watch_module_dirs(&watch);
	healer_notify_watchdog_start();
	healer_notify_ready();
	g_info("healerd %s serving %s; state in %s", HEALER_VERSION,
	       config->serial_ports && config->serial_ports[0] ? config->serial_ports[0] : "no ports",
	       config->state_dir);
	g_main_loop_run(loop);
	healer_notify_stopping();
	if (face != NULL && healer_dbus_face_lost_name(face)) {
		g_critical("stopping: the D-Bus name is taken or not allowed");
		return 1;
	}
	g_info("stopping");
	if (watch.settle_source != 0)
		g_source_remove(watch.settle_source);
	for (guint i = 0; i < monitors->len; i++)
		g_signal_handlers_disconnect_by_data(g_ptr_array_index(monitors, i), &watch);
	return 0;
}
