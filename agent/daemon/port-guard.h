/*
 * What a device on a port may cost healerd, whatever it sends (issue 13, docs/security.md):
 *
 * - identities: a device's id never changes, so a port sees a new one only when a device is swapped
 *   by hand.  A port that shows more than PORT_GUARD_IDENTITIES ids (a setting) within PORT_GUARD_IDENTITY_WINDOW_S
 *   is ignored for PORT_GUARD_IGNORE_S (one journal record says why); every id is a D-Bus object, a
 *   job lookup and journal records, so a device that makes up ids could otherwise make them without
 *   limit.
 * - records: the journal records a device causes (its LOG and ERROR frames) are limited per port as
 *   journald limits a service: PORT_GUARD_RECORD_BURST per PORT_GUARD_RECORD_INTERVAL_S, then one
 *   "suppressed N records" record when the interval ends.
 *
 * Kept per port, not per attachment: the history must outlive a device that hangs up and comes back.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * 5 ids a minute by default ([serial] device-ids-per-minute): a technician swapping devices on one
 * port by hand does not go faster (swapping back and forth twice is 4), while a device inventing ids
 * does hundreds a second.  A test jig on a production line may need more: hence the option.
 */
#define PORT_GUARD_IDENTITIES        5
#define PORT_GUARD_IDENTITY_WINDOW_S 60
/*
 * 10 minutes ignored: a device that keeps inventing ids then costs 5 attaches and one record per 10
 * minutes; a faulty device swapped out is served again after that at the latest (or at once when
 * healerd restarts).
 */
#define PORT_GUARD_IGNORE_S 600
/*
 * 50 records per 10 s: a device's boot (a dozen lines) or a heal's messages pass whole; sustained,
 * 5 a second per device, 64 devices at most 320 a second, each text at most 2 KiB from one frame.
 * The flood of issue 13 was 10,000 a second from one device.
 */
#define PORT_GUARD_RECORD_BURST      50
#define PORT_GUARD_RECORD_INTERVAL_S 10

typedef struct _HealerPortGuard HealerPortGuard;

/*
 * `identities`: the ids a port may show per PORT_GUARD_IDENTITY_WINDOW_S (PORT_GUARD_IDENTITIES by
 * default).  `unignored` runs (with user_data) when a port's ignore period ends: serve it again.
 */
HealerPortGuard *healer_port_guard_new(guint identities, void (*unignored)(const char *port, gpointer user_data),
                                       gpointer user_data);
/* Logs the "suppressed" records still due. */
void healer_port_guard_free(HealerPortGuard *guard);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerPortGuard, healer_port_guard_free)

/*
 * A device on `port` said it is `id`.  The same id as the port's last one is free; a new one counts.
 * FALSE when that was one too many: the port is ignored from now on (the record is logged here), and
 * the caller lets go of it.
 */
gboolean healer_port_guard_note_identity(HealerPortGuard *guard, const char *port, const char *id);
/* Whether `port` is being ignored (do not open it). */
gboolean healer_port_guard_is_ignored(HealerPortGuard *guard, const char *port);
/*
 * Whether one more record caused by the device on `port` (`device_id`: its id, or NULL) may be
 * logged now; a refused one is counted for the "suppressed" record.
 */
gboolean healer_port_guard_allow_record(HealerPortGuard *guard, const char *port, const char *device_id);

G_END_DECLS
