#include "mqtt-payload.h"

#include "device-json.h"
#include "healer-error.h"
#include "healer-text.h"

/* The latest instant RFC 3339 can write with a four-digit year: 9999-12-31T23:59:59.999999Z. */
#define LAST_RFC3339_US G_GINT64_CONSTANT(253402300799999999)

const char *
healer_mqtt_event_name(HealerEventKind kind)
{
	switch (kind) {
	case HEALER_EVENT_DEVICE_ATTACHED:
	case HEALER_EVENT_DEVICE_DETACHED:
	case HEALER_EVENT_SAFE_MODE_DETECTED:
	case HEALER_EVENT_HEAL_STARTED:
	case HEALER_EVENT_HEAL_STEP:
	case HEALER_EVENT_HEAL_SUCCEEDED:
	case HEALER_EVENT_HEAL_FAILED:
	case HEALER_EVENT_HEAL_BLOCKED:
	case HEALER_EVENT_MODULES_IMPORTED:
	case HEALER_EVENT_CATALOG_ACCEPTED:
	case HEALER_EVENT_CATALOG_REJECTED:
	case HEALER_EVENT_UPSTREAM_FAILED:
		/* The journal's names are the MQTT names: one vocabulary for both (docs/mqtt.md). */
		return healer_event_kind_to_string(kind);
	default:
		return NULL;
	}
}

/*
 * "2026-12-07T18:04:05.123Z" (milliseconds, always UTC).  An instant before 1970 or past year 9999
 * (a clock gone wrong) is written as the nearest one RFC 3339 can hold, so the payload stays valid.
 */
static json_object *
time_to_json(gint64 time_us)
{
	g_autoptr(GDateTime) dt = NULL;
	g_autofree char *seconds = NULL;
	char text[32];

	time_us = CLAMP(time_us, 0, LAST_RFC3339_US);
	dt = g_date_time_new_from_unix_utc(time_us / G_USEC_PER_SEC);
	seconds = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
	g_snprintf(text, sizeof text, "%s.%03dZ", seconds, (int)(time_us % G_USEC_PER_SEC / 1000));
	return json_object_new_string(text);
}

/*
 * A string, or null for NULL.  Text that is not UTF-8 (a file name, something a device sent) is
 * written with those bytes as "\xNN": a consumer's JSON parser refuses the payload otherwise.
 */
static json_object *
string_or_null(const char *text)
{
	g_autofree char *escaped = NULL;

	if (text == NULL)
		return NULL;
	if (g_utf8_validate(text, -1, NULL))
		return json_object_new_string(text);
	escaped = healer_text_escape(text, -1);
	return json_object_new_string(escaped);
}

/* The JSON text of `o`, which is released. */
static char *
to_text(json_object *o)
{
	char *text =
	        g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return text;
}

/* The fields every message on <prefix>/<gateway>/events begins with. */
static json_object *
event_new(guint64 seq, gint64 time_us, const char *name, const char *message_id, const char *device_id,
          const char *port, const char *text)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "seq", json_object_new_uint64(seq));
	json_object_object_add(o, "time", time_to_json(time_us));
	json_object_object_add(o, "event", json_object_new_string(name));
	json_object_object_add(o, "message_id", string_or_null(message_id));
	json_object_object_add(o, "device", string_or_null(device_id));
	json_object_object_add(o, "port", string_or_null(port));
	json_object_object_add(o, "text", string_or_null(text));
	return o;
}

char *
healer_mqtt_event_payload(guint64 seq, gint64 time_us, const HealerEvent *event)
{
	const char *name = healer_mqtt_event_name(event->kind);
	json_object *o;

	if (name == NULL)
		return NULL;
	o = event_new(seq, time_us, name, healer_event_kind_message_id(event->kind), event->device_id, event->port,
	              event->text);
	switch (event->kind) {
	case HEALER_EVENT_HEAL_STEP:
		json_object_object_add(o, "step", event->step >= 1 ? json_object_new_int(event->step) : NULL);
		json_object_object_add(o, "module", string_or_null(event->module));
		break;
	case HEALER_EVENT_SAFE_MODE_DETECTED:
	case HEALER_EVENT_HEAL_FAILED:
	case HEALER_EVENT_HEAL_BLOCKED:
		json_object_object_add(o, "reason", string_or_null(event->reason));
		break;
	case HEALER_EVENT_MODULES_IMPORTED:
		json_object_object_add(o, "count", json_object_new_uint64(event->count));
		break;
	case HEALER_EVENT_CATALOG_ACCEPTED:
	case HEALER_EVENT_CATALOG_REJECTED:
	case HEALER_EVENT_UPSTREAM_FAILED:
		json_object_object_add(o, "module", string_or_null(event->module));
		break;
	default:
		break;
	}
	return to_text(o);
}

char *
healer_mqtt_events_dropped_payload(guint64 seq, gint64 time_us, guint count)
{
	g_autofree char *text = g_strdup_printf(
	        "the outbox was full: dropped the %u oldest event(s) the broker had not acknowledged", count);
	json_object *o = event_new(seq, time_us, "events-dropped", NULL, NULL, NULL, text);

	json_object_object_add(o, "count", json_object_new_uint64(count));
	return to_text(o);
}

char *
healer_mqtt_status_payload(const HealerMqttStatus *status)
{
	json_object *o = json_object_new_object();
	json_object *devices = json_object_new_object();
	json_object *store = json_object_new_object();
	json_object *mqtt = json_object_new_object();

	if (status->devices_by_state != NULL) {
		/* Sorted by state name: two status messages compare key by key. */
		g_autoptr(GList) states =
		        g_list_sort(g_hash_table_get_keys(status->devices_by_state), (GCompareFunc)g_strcmp0);
		for (GList *l = states; l != NULL; l = l->next) {
			guint count = GPOINTER_TO_UINT(g_hash_table_lookup(status->devices_by_state, l->data));
			json_object_object_add(devices, l->data, json_object_new_uint64(count));
		}
	}
	json_object_object_add(store, "modules", json_object_new_uint64(status->store_modules));
	json_object_object_add(store, "catalogs", json_object_new_uint64(status->catalogs));
	json_object_object_add(mqtt, "outbox_pending", json_object_new_uint64(status->outbox_pending));
	json_object_object_add(mqtt, "dropped", json_object_new_uint64(status->dropped));

	json_object_object_add(o, "online", json_object_new_boolean(TRUE));
	json_object_object_add(o, "version", json_object_new_string(status->version));
	json_object_object_add(o, "time", time_to_json(status->time_us));
	json_object_object_add(o, "devices", devices);
	json_object_object_add(o, "store", store);
	json_object_object_add(o, "mqtt", mqtt);
	return to_text(o);
}

char *
healer_mqtt_offline_payload(const char *version, gint64 time_us)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "online", json_object_new_boolean(FALSE));
	json_object_object_add(o, "version", json_object_new_string(version));
	json_object_object_add(o, "time", time_to_json(time_us));
	return to_text(o);
}

char *
healer_mqtt_device_payload(const HealerDeviceInfo *info, gboolean detached, gint64 time_us)
{
	json_object *o = healer_device_info_to_json(info);

	json_object_object_add(o, "detached", json_object_new_boolean(detached));
	if (detached)
		json_object_object_add(o, "detached_at", time_to_json(time_us));
	return to_text(o);
}

char *
healer_mqtt_reply_ok(json_object *result)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(TRUE));
	json_object_object_add(o, "result", result);
	return to_text(o);
}

char *
healer_mqtt_reply_error(const GError *error)
{
	json_object *o = json_object_new_object();
	/*
	 * Only HEALER_ERROR codes have names of their own (docs/dbus-api.md, "Errors"); an error from
	 * another domain is "anything else", io.healerd.Error.Failed, whose message still says what.
	 */
	HealerError code = error->domain == HEALER_ERROR ? (HealerError)error->code : HEALER_ERROR_FAILED;

	json_object_object_add(o, "ok", json_object_new_boolean(FALSE));
	json_object_object_add(o, "error", json_object_new_string(healer_error_to_dbus_name(code)));
	json_object_object_add(o, "message", string_or_null(error->message != NULL ? error->message : ""));
	return to_text(o);
}
