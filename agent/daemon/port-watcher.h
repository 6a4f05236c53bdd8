/*
 * Which serial ports exist: the configured globs, matched now and again
 * whenever a directory they live in changes (inotify through GFileMonitor),
 * so devices are found as they are plugged in and dropped as they go.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HealerPortWatcher HealerPortWatcher;

/* Called with the full set of matching paths after every change. */
typedef void (*HealerPortsFunc)(GPtrArray *paths, gpointer user_data);

HealerPortWatcher *healer_port_watcher_new(const char *const *globs, gboolean watch, HealerPortsFunc func,
                                           gpointer user_data);
/*
 * Matches the globs again now (the engine also does this after a device goes away).  NULL does nothing:
 * an engine never started has no watcher, only the transports attached to it by hand.
 */
void healer_port_watcher_rescan(HealerPortWatcher *watcher);
void healer_port_watcher_free(HealerPortWatcher *watcher);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerPortWatcher, healer_port_watcher_free)

G_END_DECLS
