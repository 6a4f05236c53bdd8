/*
 * healerd's journal face: structured records (g_log_structured) with a
 * MESSAGE_ID for each key event, explained to technicians by the journal
 * message catalog packaging/healerd.catalog (`journalctl -x`), and fields
 * a technician can filter on:
 *
 *     journalctl -u healerd HEALER_DEVICE_ID=0123456789abcdef01234567
 *     journalctl MESSAGE_ID=<HEALER_MSG_HEAL_FAILED>
 *
 * Outside the journal the same records are readable lines on stderr:
 * "healerd[warning]: [0123...] heal failed: ...".
 */
#pragma once

#include <glib.h>

#include "events.h"

G_BEGIN_DECLS

/*
 * Generated once with systemd-id128 new; never change one (the journal message catalog and
 * users' filters use them).
 */
#define HEALER_MSG_DEVICE_ATTACHED    "1d081cbad2d84d49b67f4b8bdebdd2d1"
#define HEALER_MSG_DEVICE_DETACHED    "9aa99e8ea1a14052ac89a69651a0d8bc"
#define HEALER_MSG_SAFE_MODE_DETECTED "5d485ce88ea5441ea65bc5eabcd73966"
#define HEALER_MSG_HEAL_STARTED       "7650209f1cc3415dbb88374f7f0f6ef6"
#define HEALER_MSG_MODULE_INSTALLED   "e5d54022f11f42d1a7af299fb20c083a"
#define HEALER_MSG_HEAL_SUCCEEDED     "4c97ed97df924153a052697aec3db034"
#define HEALER_MSG_HEAL_FAILED        "44242eb090924dd981ea90da57f3b2dd"
#define HEALER_MSG_HEAL_BLOCKED       "e284188100c74c1aa359a385a2c85cee"
#define HEALER_MSG_DEVICE_LOG         "c050ef0b2c224e0eb6e01c110e90e6e7"
#define HEALER_MSG_STORE_REJECTED     "9812ac4e756244ec8285eee71cac5d03"
#define HEALER_MSG_CATALOG_ACCEPTED   "6aeaf23a052248d9ac109a8a95c5f379"
#define HEALER_MSG_CATALOG_REJECTED   "1d871346a57c4c30a5ca4faf99e59f12"
#define HEALER_MSG_UPSTREAM_FAILED    "eb280b2bc344493c8a8486327c89a897"
#define HEALER_MSG_MODULE_FETCHED     "8c9b89d19d214b40a248c32e8f5b945b"
#define HEALER_MSG_UNSIGNED_ALLOWED   "27153c6025394c17b31be79212cdbd10"
#define HEALER_MSG_INSECURE_UPSTREAM  "7802eebbdd89443a9caca4f886bf2cd9"
#define HEALER_MSG_PORT_REFUSED       "c564959f89224789836bcc70e996bf46"
#define HEALER_MSG_DEVICE_CONFLICT    "22dbcd9a3b5b4accaea34b5cd1eec1fb"
#define HEALER_MSG_PORT_IGNORED       "d9f205dd6eb04a54891259e43802448f"
#define HEALER_MSG_LOG_SUPPRESSED     "dc28788b074d4ea6b0fe8c21c1d12076"

#define HEALER_JOURNAL_DOMAIN "healerd"

/*
 * Logs one record (the journal observer's writer; the daemon's parts emit
 * events instead): MESSAGE (printf-style, prefixed "[<device_id>] " when a
 * device is given), MESSAGE_ID (may be NULL for records without one),
 * PRIORITY, GLIB_DOMAIN "healerd", CODE_FILE/LINE/FUNC, and HEALER_DEVICE_ID,
 * HEALER_PORT, HEALER_MODULE, HEALER_STEP for those given (NULL / step < 0:
 * left out).  `level` is one G_LOG_LEVEL_*, not G_LOG_LEVEL_ERROR (which
 * aborts; use CRITICAL).
 */
#define healer_journal_event(...) healer_journal_event_full(__FILE__, G_STRINGIFY(__LINE__), G_STRFUNC, __VA_ARGS__)

void healer_journal_event_full(const char *code_file, const char *code_line, const char *code_func,
                               const char *message_id, const char *device_id, const char *port, const char *module,
                               int step, GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF(10, 11);

/*
 * The journal observer of the event stream (events.h): an event with a text
 * is one record, its MESSAGE_ID from its kind, its fields and CODE_* from the
 * event; events without text (progress, status, ...) are not recorded.
 */
void healer_journal_observe(const HealerEvent *event, gpointer user_data);

/*
 * Installs healerd's log writer (once per process; later calls only change
 * the level): records less severe than `max_level` (G_LOG_LEVEL_CRITICAL,
 * _WARNING, _INFO or _DEBUG) are dropped, except that G_MESSAGES_DEBUG
 * (=all or naming the domain) still shows debug records; the rest go to the
 * journal when stderr is connected to it, else to stderr as
 * "healerd[<level>]: <message>".
 */
void healer_journal_setup(GLogLevelFlags max_level);

/* The stderr line for a record, without the newline (exposed for the tests). */
char *healer_journal_format_line(GLogLevelFlags level, const GLogField *fields, gsize n_fields);

G_END_DECLS
