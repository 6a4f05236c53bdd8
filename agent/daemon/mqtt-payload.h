/*
 * What healerd publishes over MQTT, as JSON text (json-c): pure functions of their inputs, so the
 * tests check them against docs/mqtt.md's JSON Schemas without a broker (topics: mqtt-topic.h).
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "engine.h"
#include "events.h"

G_BEGIN_DECLS

/*
 * The name an event has on <prefix>/<gateway>/events ("device-attached", "heal-step", ...: the list in
 * docs/mqtt.md), or NULL for kinds MQTT does not publish (progress, notes, the faces' own lifecycle).
 */
const char *healer_mqtt_event_name(HealerEventKind kind);

/*
 * An event's payload: {"seq", "time" (RFC 3339 UTC, milliseconds), "event", "message_id" (the
 * journal's MESSAGE_ID, null when the kind has none), "device", "port", "text", and the kind's own
 * fields ("step", "module", "reason", "count")}.  NULL when healer_mqtt_event_name() is NULL.
 */
char *healer_mqtt_event_payload(guint64 seq, gint64 time_us, const HealerEvent *event);

/*
 * The events-dropped event the outbox's overflow makes: {"seq", "time", "event": "events-dropped",
 * "message_id": null, "device": null, "port": null, "text", "count"} (every event's fields, so a
 * consumer reads the topic one way).
 */
char *healer_mqtt_events_dropped_payload(guint64 seq, gint64 time_us, guint count);

/*
 * The retained status: {"online": true, "version", "time", "devices": {"<state>": count, ...},
 * "store": {"modules", "catalogs"}, "mqtt": {"outbox_pending", "dropped"}}; offline: {"online":
 * false, "version", "time"} (the will's, and a clean stop's).
 */
typedef struct {
	const char *version;
	gint64 time_us;
	GHashTable *devices_by_state; /* state name -> GUINT_TO_POINTER(count); NULL: none */
	guint store_modules;
	guint catalogs;
	guint outbox_pending;
	guint64 dropped;
} HealerMqttStatus;
char *healer_mqtt_status_payload(const HealerMqttStatus *status);
char *healer_mqtt_offline_payload(const char *version, gint64 time_us);

/*
 * A device's retained state: the object healerctl devices --json gives for it (device-json.c), plus
 * "detached": true and "detached_at" once it is gone (its last state stays).
 */
char *healer_mqtt_device_payload(const HealerDeviceInfo *info, gboolean detached, gint64 time_us);

/*
 * A command's reply: {"ok": true, "result": ...} or {"ok": false, "error": "<the D-Bus error name>",
 * "message"}.  `result` (may be NULL) is taken.
 */
char *healer_mqtt_reply_ok(json_object *result);
char *healer_mqtt_reply_error(const GError *error);

G_END_DECLS
