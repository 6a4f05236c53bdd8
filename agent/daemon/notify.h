/*
 * The systemd face: sd_notify READY=1 once serving, STATUS= lines, STOPPING=1,
 * and WATCHDOG=1 when the unit sets WatchdogSec=.  Every call is a no-op
 * outside systemd (no $NOTIFY_SOCKET, no $WATCHDOG_USEC).
 */
#pragma once

#include <glib.h>

#include "events.h"

G_BEGIN_DECLS

/*
 * The systemd observer of the event stream (events.h): STATUS events become
 * STATUS=<summary>, DAEMON_READY READY=1, DAEMON_STOPPING STOPPING=1.
 */
void healer_notify_observe(const HealerEvent *event, gpointer user_data);

void healer_notify_ready(void);
/* STATUS=..., e.g. "4 devices: 3 healthy, 1 healing". */
void healer_notify_status(const char *format, ...) G_GNUC_PRINTF(1, 2);
void healer_notify_stopping(void);

/*
 * When the service manager asked for a watchdog, adds a GLib timeout (on
 * the thread-default main context) sending WATCHDOG=1 at half the interval,
 * and returns its source id; 0 when there is no watchdog.  A main loop that
 * stalls stops the pings, so systemd restarts the daemon.
 */
guint healer_notify_watchdog_start(void);

G_END_DECLS
