/*
 * Which serial ports exist: the configured globs, matched now and again
 * whenever a directory they live in changes (inotify through GFileMonitor),
 * so devices are found as they are plugged in and dropped as they go.
 *
 * Only serial ttys are handed on (healer_serial_port_check(), which opens
 * nothing): other matches are skipped, reported once in one record.  At
 * start, a glob that reaches into /dev beyond /dev/tty* and /dev/serial/ is
 * reported as too wide.  A port the engine could not open because another
 * program holds it is reported once and tried again every few seconds.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HealerPortWatcher HealerPortWatcher;

/* Called with the full set of matching serial ports after every change. */
typedef void (*HealerPortsFunc)(GPtrArray *paths, gpointer user_data);

HealerPortWatcher *healer_port_watcher_new(const char *const *globs, gboolean watch, HealerPortsFunc func,
                                           gpointer user_data);
/*
 * Matches the globs again now (the engine also does this after a device goes away).  NULL does nothing:
 * an engine never started has no watcher, only the transports attached to it by hand.
 */
void healer_port_watcher_rescan(HealerPortWatcher *watcher);
/*
 * The engine could not open `path`, handed on by the last scan: logged once
 * per cause (not again while the same error repeats); when it is in use
 * (HEALER_ERROR_BUSY), the globs are matched again in a few seconds.
 */
void healer_port_watcher_refused(HealerPortWatcher *watcher, const char *path, const GError *error);
void healer_port_watcher_free(HealerPortWatcher *watcher);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerPortWatcher, healer_port_watcher_free)

/*
 * Whether a glob reaches into /dev beyond serial ports: its fixed part (up to
 * the first wildcard) leads into /dev but not to /dev/tty* or /dev/serial/.
 * "/dev/ptmx", "/dev/pts/N" or all of /dev do; "/dev/ttyUSB*",
 * "/dev/serial/by-id/..." and a directory of links elsewhere (healer-sim's
 * in /run/healer-sim) do not.
 */
gboolean healer_port_glob_is_wide(const char *glob);

G_END_DECLS
