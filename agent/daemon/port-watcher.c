#include "port-watcher.h"

#include <dirent.h>
#include <gio/gio.h>
#include <glob.h>
#include <sys/stat.h>

#include "healer-error.h"
#include "healer-serial.h"
#include "events.h"

/* Events come in bursts (a symlink replaced is two); match once they settle. */
#define SETTLE_MS 50

/*
 * A port another program holds (healerctl probe for a few seconds, a second
 * healerd) is tried again this often: releasing a port changes nothing in
 * /dev, so no inotify event would bring it back.  One open() attempt per
 * busy port per period costs nothing.
 */
#define BUSY_RETRY_S 5

/*
 * At most this many skipped matches are named in the one record about them, the rest counted: every
 * match of a pattern that is only a little too wide is named; all of /dev (some 300 nodes) is not.
 */
#define MAX_NAMED_SKIPPED 16

/* glob()'s directory functions, the public ones (GLOB_ALTDIRFUNC, below). */
static void
glob_closedir(void *dir)
{
	closedir(dir);
}

static void *
glob_readdir(void *dir)
{
	return readdir(dir);
}

static void *
glob_opendir(const char *path)
{
	return opendir(path);
}

static int
glob_lstat(const char *restrict path, void *restrict st)
{
	return lstat(path, st);
}

static int
glob_stat(const char *restrict path, void *restrict st)
{
	return stat(path, st);
}

struct _HealerPortWatcher {
	GStrv globs;
	HealerPortsFunc func;
	gpointer user_data;
	gboolean watch;
	GHashTable *monitors; /* directory -> GFileMonitor*: every directory a glob walks through */
	guint settle_source;
	guint retry_source;
	GHashTable *skipped;     /* path -> why: matches that are not serial ports, reported once */
	GHashTable *refused;     /* path -> why: ports the engine could not open, reported once */
	GHashTable *unconfirmed; /* set of paths in `refused` not refused again during this scan */
	gboolean busy;           /* a port was refused as in use during this scan */
};

gboolean
healer_port_glob_is_wide(const char *glob)
{
	g_autofree char *fixed = g_strndup(glob, strcspn(glob, "*?["));

	/* "/", "/d", "/dev": a wildcard may walk into /dev */
	if (g_str_has_prefix("/dev/", fixed))
		return TRUE;
	if (!g_str_has_prefix(fixed, "/dev/"))
		return FALSE;
	return !g_str_has_prefix(fixed, "/dev/tty") && !g_str_has_prefix(fixed, "/dev/serial/");
}

/* One record for the matches this scan skipped that were not skipped before. */
static void
report_skipped(GPtrArray *reasons)
{
	g_autoptr(GString) s = g_string_new(NULL);

	if (reasons->len == 0)
		return;
	for (guint i = 0; i < reasons->len && i < MAX_NAMED_SKIPPED; i++)
		g_string_append_printf(s, "%s%s", i > 0 ? "; " : "", (const char *)g_ptr_array_index(reasons, i));
	if (reasons->len > MAX_NAMED_SKIPPED)
		g_string_append_printf(s, "; and %u more", reasons->len - MAX_NAMED_SKIPPED);
	healer_emit(HEALER_EVENT_PORT_REFUSED, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
	            "[serial] ports matched %u path%s that %s not opened: %s", reasons->len,
	            reasons->len == 1 ? "" : "s", reasons->len == 1 ? "is" : "are", s->str);
}

static gboolean on_retry(gpointer user_data);
static void on_changed(GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event, gpointer user_data);

/*
 * Every directory `glob` walks through: its fixed part up to the first wildcard, then each existing
 * directory that matches a longer prefix of it, down to the last component's directory.  For
 * /run/healer-sim/ * /tty that is /run/healer-sim and each /run/healer-sim/X: a tty link that
 * appears in a directory which was already there is seen as it appears.
 */
static void
add_watch_dirs(const char *glob_pattern, GHashTable *dirs)
{
	g_auto(GStrv) parts = g_strsplit(glob_pattern, "/", -1);
	guint n = g_strv_length(parts);
	g_autoptr(GString) prefix = g_string_new(NULL);
	gboolean wild = FALSE;

	/* parts[n - 1] is the port's own name: its directory is the deepest to watch. */
	for (guint i = 0; i + 1 < n; i++) {
		if (i > 0 || parts[0][0] != '\0')
			g_string_append(prefix, parts[i]);
		g_string_append_c(prefix, '/');
		if (strpbrk(parts[i], "*?[") != NULL)
			wild = TRUE;
		if (!wild) {
			/* The fixed part: only its deepest directory is watched (the parents change rarely). */
			if (i + 2 == n || strpbrk(parts[i + 1], "*?[") != NULL) {
				g_autofree char *dir = g_strndup(prefix->str, prefix->len > 1 ? prefix->len - 1 : 1);
				g_hash_table_add(dirs, g_steal_pointer(&dir));
			}
			continue;
		}
		{
			glob_t matches = {
			        .gl_closedir = glob_closedir,
			        .gl_readdir = glob_readdir,
			        .gl_opendir = glob_opendir,
			        .gl_lstat = glob_lstat,
			        .gl_stat = glob_stat,
			};
			if (glob(prefix->str, GLOB_ALTDIRFUNC | GLOB_ONLYDIR | GLOB_MARK, NULL, &matches) == 0) {
				for (size_t k = 0; k < matches.gl_pathc; k++) {
					const char *m = matches.gl_pathv[k];
					gsize len = strlen(m);
					/* GLOB_MARK: directories end in '/'; GLOB_ONLYDIR is only a hint. */
					if (len > 1 && m[len - 1] == '/')
						g_hash_table_add(dirs, g_strndup(m, len - 1));
				}
			}
			globfree(&matches);
		}
	}
}

/* Watches exactly the directories the globs walk through now: new ones added, gone ones dropped. */
static void
sync_watches(HealerPortWatcher *self)
{
	g_autoptr(GHashTable) dirs = NULL;
	GHashTableIter iter;
	gpointer key;

	if (!self->watch)
		return;
	dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; self->globs[i] != NULL; i++)
		add_watch_dirs(self->globs[i], dirs);
	g_hash_table_iter_init(&iter, self->monitors);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_hash_table_contains(dirs, key))
			g_hash_table_iter_remove(&iter);
	}
	g_hash_table_iter_init(&iter, dirs);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		g_autoptr(GFile) file = NULL;
		GFileMonitor *monitor;

		if (g_hash_table_contains(self->monitors, key))
			continue;
		file = g_file_new_for_path(key);
		monitor = g_file_monitor_directory(file, G_FILE_MONITOR_WATCH_MOVES, NULL, NULL);
		if (monitor == NULL) {
			g_debug("cannot watch %s for ports: its ports are found at the next rescan", (const char *)key);
			continue;
		}
		g_signal_connect(monitor, "changed", G_CALLBACK(on_changed), self);
		g_hash_table_insert(self->monitors, g_strdup(key), monitor);
	}
}

void
healer_port_watcher_rescan(HealerPortWatcher *self)
{
	g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) new_skips = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) still_skipped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter iter;
	gpointer key;

	if (self == NULL)
		return;
	sync_watches(self);
	for (guint i = 0; self->globs[i] != NULL; i++) {
		/* Through the public directory functions (glibc's glob calls its own internal ones): a
		 * preload that redirects /dev, as umockdev does under usbemu, then sees the same /dev as
		 * open() does. */
		glob_t matches = {
		        .gl_closedir = glob_closedir,
		        .gl_readdir = glob_readdir,
		        .gl_opendir = glob_opendir,
		        .gl_lstat = glob_lstat,
		        .gl_stat = glob_stat,
		};
		if (glob(self->globs[i], GLOB_ALTDIRFUNC, NULL, &matches) == 0) {
			for (size_t k = 0; k < matches.gl_pathc; k++) {
				const char *path = matches.gl_pathv[k];
				g_autoptr(GError) error = NULL;

				if (g_ptr_array_find_with_equal_func(paths, path, g_str_equal, NULL) ||
				    g_hash_table_contains(still_skipped, path))
					continue;
				/* Checked without opening: only serial ttys reach the engine. */
				if (!healer_serial_port_check(path, NULL, &error)) {
					if (g_strcmp0(g_hash_table_lookup(self->skipped, path), error->message) != 0) {
						g_ptr_array_add(new_skips, g_strdup(error->message));
						g_hash_table_replace(self->skipped, g_strdup(path),
						                     g_strdup(error->message));
					}
					g_hash_table_add(still_skipped, g_strdup(path));
					continue;
				}
				g_hash_table_remove(self->skipped, path);
				g_ptr_array_add(paths, g_strdup(path));
			}
		}
		globfree(&matches);
	}
	/* Skipped paths gone from the matches are forgotten: if they come back, they are reported again. */
	g_hash_table_iter_init(&iter, self->skipped);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_hash_table_contains(still_skipped, key))
			g_hash_table_iter_remove(&iter);
	}
	report_skipped(new_skips);

	/* Refusals the engine does not repeat during this scan are over (opened, or gone). */
	g_hash_table_remove_all(self->unconfirmed);
	g_hash_table_iter_init(&iter, self->refused);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_hash_table_add(self->unconfirmed, key);
	self->busy = FALSE;
	self->func(paths, self->user_data);
	g_hash_table_iter_init(&iter, self->unconfirmed);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		g_hash_table_iter_remove(&iter);
		g_hash_table_remove(self->refused, key);
	}
	if (self->busy && self->retry_source == 0)
		self->retry_source = g_timeout_add_seconds(BUSY_RETRY_S, on_retry, self);
}

void
healer_port_watcher_refused(HealerPortWatcher *self, const char *path, const GError *error)
{
	const char *before = g_hash_table_lookup(self->refused, path);

	g_hash_table_remove(self->unconfirmed, path);
	if (g_error_matches(error, HEALER_ERROR, HEALER_ERROR_BUSY))
		self->busy = TRUE;
	if (g_strcmp0(before, error->message) == 0)
		return;
	healer_emit(HEALER_EVENT_PORT_REFUSED, NULL, path, NULL, -1, G_LOG_LEVEL_WARNING, "%s%s", error->message,
	            g_error_matches(error, HEALER_ERROR, HEALER_ERROR_BUSY)
	                    ? ": not opened; healerd tries again every " G_STRINGIFY(BUSY_RETRY_S) " s"
	                    : ": not opened");
	g_hash_table_replace(self->refused, g_strdup(path), g_strdup(error->message));
}

static gboolean
on_retry(gpointer user_data)
{
	HealerPortWatcher *self = user_data;

	self->retry_source = 0;
	healer_port_watcher_rescan(self);
	return G_SOURCE_REMOVE;
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

/* A monitor no longer wanted: no signal from it reaches the watcher again. */
static void
monitor_free(gpointer monitor)
{
	g_signal_handlers_disconnect_matched(monitor, G_SIGNAL_MATCH_FUNC, 0, 0, NULL, G_CALLBACK(on_changed), NULL);
	g_file_monitor_cancel(monitor);
	g_object_unref(monitor);
}

HealerPortWatcher *
healer_port_watcher_new(const char *const *globs, gboolean watch, HealerPortsFunc func, gpointer user_data)
{
	HealerPortWatcher *self = g_new0(HealerPortWatcher, 1);

	self->globs = g_strdupv((char **)globs);
	self->func = func;
	self->user_data = user_data;
	self->monitors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, monitor_free);
	self->skipped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	self->refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	self->unconfirmed = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; self->globs[i] != NULL; i++) {
		if (healer_port_glob_is_wide(self->globs[i]))
			healer_emit(HEALER_EVENT_PORT_REFUSED, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
			            "[serial] ports: '%s' reaches into /dev beyond serial ports (/dev/tty*, "
			            "/dev/serial/); healerd opens only serial ttys among its matches, but name "
			            "the ports meant, such as /dev/ttyUSB* or /dev/serial/by-id/*",
			            self->globs[i]);
	}
	/* The directories to watch are found at each rescan (sync_watches()): some appear later. */
	self->watch = watch;
	return self;
}

void
healer_port_watcher_free(HealerPortWatcher *self)
{
	if (self == NULL)
		return;
	g_hash_table_unref(self->monitors);
	if (self->settle_source != 0)
		g_source_remove(self->settle_source);
	if (self->retry_source != 0)
		g_source_remove(self->retry_source);
	g_hash_table_unref(self->unconfirmed);
	g_hash_table_unref(self->refused);
	g_hash_table_unref(self->skipped);
	g_strfreev(self->globs);
	g_free(self);
}
