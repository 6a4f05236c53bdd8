/*
 * healerd's one event stream.  Every key event (a device attached, a heal
 * step, a catalog rejected, the status summary changed, ...) is one
 * HealerEvent emitted onto a stream; the faces observe the stream and decide
 * for themselves what to make of it:
 *
 *   - the journal (journal.c, healer_journal_observe): every event with a
 *     text becomes one structured record, MESSAGE_ID from its kind;
 *   - systemd (notify.c, healer_notify_observe): STATUS=, READY=1, STOPPING=1;
 *   - D-Bus (dbus-face.c): objects and the HealProgress / HealFinished signals;
 *   - and later MQTT, which subscribes the same way.
 *
 * The engine, store, supply, trust, upstream, port guard and watcher, and
 * main.c emit; none of them logs or notifies directly.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	/* A record with no MESSAGE_ID: a note about a port or the store no technician filters for. */
	HEALER_EVENT_NOTE,
	/* Devices: the technician's records (text), then the faces' object lifecycle (no text). */
	HEALER_EVENT_DEVICE_ATTACHED,
	HEALER_EVENT_DEVICE_DETACHED,
	HEALER_EVENT_DEVICE_CONFLICT,
	HEALER_EVENT_DEVICE_LOG, /* a line the device logged */
	HEALER_EVENT_DEVICE_ADDED,
	HEALER_EVENT_DEVICE_CHANGED,
	HEALER_EVENT_DEVICE_REMOVED,
	/* Ports. */
	HEALER_EVENT_PORT_REFUSED,
	HEALER_EVENT_PORT_IGNORED,
	HEALER_EVENT_LOG_SUPPRESSED,
	/* Heals. */
	HEALER_EVENT_SAFE_MODE_DETECTED,
	HEALER_EVENT_HEAL_STARTED,
	HEALER_EVENT_HEAL_STEP, /* a step of the plan: module, step */
	HEALER_EVENT_HEAL_PROGRESS,
	HEALER_EVENT_MODULE_INSTALLED,
	HEALER_EVENT_HEAL_SUCCEEDED,
	HEALER_EVENT_HEAL_FAILED,
	HEALER_EVENT_HEAL_BLOCKED,  /* cannot heal: a module is missing */
	HEALER_EVENT_HEAL_FINISHED, /* a job ended (success, reason): what callers waiting on it see */
	/* Modules and catalogs. */
	HEALER_EVENT_MODULES_IMPORTED,
	HEALER_EVENT_STORE_REJECTED,
	HEALER_EVENT_CATALOG_ACCEPTED,
	HEALER_EVENT_CATALOG_REJECTED,
	HEALER_EVENT_UNSIGNED_ALLOWED,
	HEALER_EVENT_MODULE_FETCHED,
	HEALER_EVENT_UPSTREAM_FAILED,
	HEALER_EVENT_INSECURE_UPSTREAM,
	HEALER_EVENT_SOURCES_CHANGED, /* the store, the accepted catalogs or the upstream's state */
	HEALER_EVENT_MQTT_STATE,      /* the MQTT face's connection: reason = what `healerctl status` shows */
	/* The daemon. */
	HEALER_EVENT_STATUS, /* the summary changed: reason = "4 devices: 3 healthy, 1 healing" */
	HEALER_EVENT_DAEMON_READY,
	HEALER_EVENT_DAEMON_STOPPING,
	HEALER_EVENT_N_KINDS
} HealerEventKind;

/*
 * One event.  Every string may be NULL; an emitted event is copied, so the
 * emitter's strings need only live through the call.
 */
typedef struct {
	HealerEventKind kind;
	GLogLevelFlags priority; /* the journal record's level (G_LOG_LEVEL_INFO, ...) */
	const char *device_id;
	const char *port;
	const char *module; /* a step's module label, or the file, URL or source a record is about */
	int step;           /* 1-based step of the plan; -1: none */
	guint total;        /* HEAL_PROGRESS: steps in the plan */
	guint progress;     /* HEAL_PROGRESS: 0..100 over the job */
	gboolean success;   /* HEAL_FINISHED */
	guint count;        /* MODULES_IMPORTED: modules new to the store */
	const char *reason; /* HEAL_FINISHED: its message; HEAL_BLOCKED, HEAL_FAILED, SAFE_MODE_DETECTED: the detail;
	                     * STATUS: the summary */
	const char *text;   /* the record a technician reads; NULL: the event makes no journal record */
	/* Where it was emitted (the journal's CODE_FILE, CODE_LINE, CODE_FUNC). */
	const char *code_file;
	const char *code_line;
	const char *code_func;
} HealerEvent;

/* The journal's MESSAGE_ID for events of `kind` (journal.h), NULL for those without one. */
const char *healer_event_kind_message_id(HealerEventKind kind);
/* "heal-failed", ...: a stable name for faces that publish events (MQTT topics). */
const char *healer_event_kind_to_string(HealerEventKind kind);

/* An owned copy of `event` (its strings copied; code_* are literals and shared), for an observer that keeps it. */
HealerEvent *healer_event_copy(const HealerEvent *event);
void healer_event_free(HealerEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerEvent, healer_event_free)

typedef struct _HealerEventStream HealerEventStream;

/* Called for every event emitted after it subscribed, in the order emitted. */
typedef void (*HealerEventFunc)(const HealerEvent *event, gpointer user_data);

HealerEventStream *healer_event_stream_new(void);
void healer_event_stream_free(HealerEventStream *stream);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerEventStream, healer_event_stream_free)

/* Returns an id for healer_event_stream_unsubscribe() (never 0): `func` gets every kind. */
guint healer_event_stream_subscribe(HealerEventStream *stream, HealerEventFunc func, gpointer user_data);

/* The bit of `kind` in an interest mask, and the mask of every kind. */
#define HEALER_EVENT_KIND_BIT(kind) (G_GUINT64_CONSTANT(1) << (guint)(kind))
#define HEALER_EVENT_KINDS_ALL      G_MAXUINT64

/*
 * As healer_event_stream_subscribe(), for the kinds in `kinds` only (HEALER_EVENT_KIND_BIT()s ORed):
 * an observer that publishes a few kinds (MQTT) is not called for every progress tick.
 */
guint healer_event_stream_subscribe_kinds(HealerEventStream *stream, guint64 kinds, HealerEventFunc func,
                                          gpointer user_data);
/* From then on `func` is not called again, also when unsubscribed by an observer during an emission. */
void healer_event_stream_unsubscribe(HealerEventStream *stream, guint id);

/*
 * Hands `event` (copied) to every observer, in the order they subscribed.
 * An event emitted by an observer (on the same thread) is queued and
 * delivered once the current one has reached every observer, so each
 * observer sees every event in the one order they were emitted.  Emitting
 * from another thread waits for the current delivery to finish.
 */
void healer_event_stream_emit(HealerEventStream *stream, const HealerEvent *event);

/*
 * The daemon's stream.  Created on first use with the journal and systemd
 * observers subscribed, so no record is lost before main() wires the rest.
 */
HealerEventStream *healer_events(void);

/* Emits a typed event onto healer_events(): fields not given are 0 / NULL. */
#define healer_emit_event(...)                                                                                         \
	healer_event_stream_emit(healer_events(), &(const HealerEvent){.code_file = __FILE__,                          \
	                                                               .code_line = G_STRINGIFY(__LINE__),             \
	                                                               .code_func = G_STRFUNC,                         \
	                                                               __VA_ARGS__})

/*
 * Emits a record event onto healer_events(): the text is printf-style; module
 * NULL and step < 0 when there are none.  `level` is one G_LOG_LEVEL_*.
 */
#define healer_emit(kind, device_id, port, module, step, level, ...)                                                   \
	healer_emit_full(__FILE__, G_STRINGIFY(__LINE__), G_STRFUNC, kind, device_id, port, module, step, level,       \
	                 __VA_ARGS__)

void healer_emit_full(const char *code_file, const char *code_line, const char *code_func, HealerEventKind kind,
                      const char *device_id, const char *port, const char *module, int step, GLogLevelFlags level,
                      const char *format, ...) G_GNUC_PRINTF(10, 11);

/*
 * A record event with a reason a face can show on its own (HEAL_BLOCKED, HEAL_FAILED,
 * SAFE_MODE_DETECTED: the device's detail), besides the text that embeds it.
 */
#define healer_emit_reason(kind, device_id, port, step, level, reason, ...)                                            \
	healer_emit_reason_full(__FILE__, G_STRINGIFY(__LINE__), G_STRFUNC, kind, device_id, port, step, level,        \
	                        reason, __VA_ARGS__)

void healer_emit_reason_full(const char *code_file, const char *code_line, const char *code_func, HealerEventKind kind,
                             const char *device_id, const char *port, int step, GLogLevelFlags level,
                             const char *reason, const char *format, ...) G_GNUC_PRINTF(10, 11);

/* An INFO record event counting something (MODULES_IMPORTED: new modules), about `module` (NULL: none; a HEALER_MODULE
 * field when given). */
#define healer_emit_count(kind, module, count, ...)                                                                    \
	healer_emit_count_full(__FILE__, G_STRINGIFY(__LINE__), G_STRFUNC, kind, module, count, __VA_ARGS__)

void healer_emit_count_full(const char *code_file, const char *code_line, const char *code_func, HealerEventKind kind,
                            const char *module, guint count, const char *format, ...) G_GNUC_PRINTF(7, 8);

G_END_DECLS
