#include "port-watcher.h"

#include <gio/gio.h>
#include <glob.h>

/* Events come in bursts (a symlink replaced is two); match once they settle. */
#define SETTLE_MS 50

struct _HealerPortWatcher {
	GStrv globs;
	HealerPortsFunc func;
	gpointer user_data;
	GPtrArray *monitors; /* GFileMonitor* */
	guint settle_source;
};

void
healer_port_watcher_rescan(HealerPortWatcher *self)
{
	g_autoptr(GPtrArray) paths = NULL;

	if (self == NULL)
		return;
	paths = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; self->globs[i] != NULL; i++) {
		glob_t matches = {0};
		if (glob(self->globs[i], 0, NULL, &matches) == 0) {
			for (size_t k = 0; k < matches.gl_pathc; k++) {
				if (!g_ptr_array_find_with_equal_func(paths, matches.gl_pathv[k], g_str_equal, NULL))
					g_ptr_array_add(paths, g_strdup(matches.gl_pathv[k]));
			}
		}
		globfree(&matches);
	}
	self->func(paths, self->user_data);
}

static gboolean
on_settled(gpointer user_data)
{
	HealerPortWatcher *self = user_data;

	self->settle_source = 0;
	healer_port_watcher_rescan(self);
	return G_SOURCE_REMOVE;
}

static void
on_changed(GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event, gpointer user_data)
{
	HealerPortWatcher *self = user_data;

	(void)monitor;
	(void)file;
	(void)other;
	(void)event;
	if (self->settle_source == 0)
		self->settle_source = g_timeout_add(SETTLE_MS, on_settled, self);
}

HealerPortWatcher *
healer_port_watcher_new(const char *const *globs, gboolean watch, HealerPortsFunc func, gpointer user_data)
{
	HealerPortWatcher *self = g_new0(HealerPortWatcher, 1);

	self->globs = g_strdupv((char **)globs);
	self->func = func;
	self->user_data = user_data;
	self->monitors = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; watch && self->globs[i] != NULL; i++) {
		/* Watch the directory part up to the first wildcard. */
		g_autofree char *dir = g_path_get_dirname(self->globs[i]);
		g_autoptr(GFile) file = NULL;
		GFileMonitor *monitor;
		while (strpbrk(dir, "*?[") != NULL) {
			char *up = g_path_get_dirname(dir);
			g_free(dir);
			dir = up;
		}
		file = g_file_new_for_path(dir);
		monitor = g_file_monitor_directory(file, G_FILE_MONITOR_WATCH_MOVES, NULL, NULL);
		if (monitor == NULL) {
			g_warning("cannot watch %s for ports: they are found at start and when a device goes away",
			          dir);
			continue;
		}
		g_signal_connect(monitor, "changed", G_CALLBACK(on_changed), self);
		g_ptr_array_add(self->monitors, monitor);
	}
	return self;
}

void
healer_port_watcher_free(HealerPortWatcher *self)
{
	if (self == NULL)
		return;
	for (guint i = 0; i < self->monitors->len; i++)
		g_signal_handlers_disconnect_by_data(g_ptr_array_index(self->monitors, i), self);
	g_ptr_array_unref(self->monitors);
	if (self->settle_source != 0)
		g_source_remove(self->settle_source);
	g_strfreev(self->globs);
	g_free(self);
}
