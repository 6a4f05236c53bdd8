#include "mqtt-face.h"

#include <string.h>

#include "device-json.h"
#include "healer-error.h"
#include "json-autoptr.h"
#include "mqtt-client.h"
#include "mqtt-command.h"
#include "mqtt-outbox-writer.h"
#include "mqtt-outbox.h"
#include "mqtt-payload.h"
#include "mqtt-topic.h"

/*
 * Records handed to the client and not yet acknowledged, at most: enough to keep a link busy, few
 * enough that a reconnect sends little twice.
 */
#define MAX_IN_FLIGHT 32

/*
 * Events made in one main-loop dispatch are written to the outbox together, with one disk sync
 * (group commit), at most this many at a time: a heal of many devices makes bursts of events, and a
 * sync per event would put the disk's latency on the main loop once per event.
 */
#define SAVE_BATCH_MAX 256

/*
 * A full outbox drops its oldest events in steps: enough to leave a 64th of the bound free (256 KiB,
 * some 850 events, of the default 16 MiB), and at least DROP_SLACK_MIN, more than an events-dropped
 * event takes (about 270 bytes), so the event telling of a drop never needs one itself, and the
 * journal and the broker hear of drops once per step, not once per event.
 */
#define DROP_SLACK_FRACTION 64
#define DROP_SLACK_MIN      1024

/*
 * A device's retained state changes with every percent of a heal: it goes out at most this often,
 * except a change of its state (healthy, healing, ...), which goes out at once.
 */
#define DEVICE_PUBLISH_MS 1000

/* The kinds the face is called for: the published events, and what changes retained state. */
#define STATE_KINDS                                                                                                    \
	(HEALER_EVENT_KIND_BIT(HEALER_EVENT_DEVICE_ADDED) | HEALER_EVENT_KIND_BIT(HEALER_EVENT_DEVICE_CHANGED) |       \
	 HEALER_EVENT_KIND_BIT(HEALER_EVENT_DEVICE_REMOVED) | HEALER_EVENT_KIND_BIT(HEALER_EVENT_STATUS) |             \
	 HEALER_EVENT_KIND_BIT(HEALER_EVENT_SOURCES_CHANGED))

typedef struct {
	HealerDeviceInfo *info; /* the last the engine gave */
	gint64 detached_at;     /* 0 while attached */
	char *published;        /* the payload the broker holds (retained), NULL: to publish */
	char *published_state;  /* its "state" and whether detached: a change of these goes out at once */
	gboolean due;           /* changed in a way that waits for the next DEVICE_PUBLISH_MS tick */
} DeviceState;

typedef struct _Refresh Refresh;

struct _HealerMqttFace {
	HealerConfig *config;
	HealerEngine *engine;
	HealerStore *store;
	HealerSupply *supply;
	HealerUpstream *upstream;
	HealerEventStream *stream;
	guint subscription;

	HealerMqttOutbox *outbox;
	HealerMqttOutboxWriter *writer; /* the outbox's appends and acknowledgements, off the main loop */
	guint64 next_seq;               /* the next event's number (the outbox's, plus what is on its way) */
	HealerMqttClient *client;
	char *status_topic;
	char *events_topic;
	char *devices_topic; /* ".../devices": a device's is devices_topic/ID */
	char *cmd_topic;     /* ".../cmd": a command's is cmd_topic/VERB */

	GHashTable *devices; /* id -> DeviceState */
	GHashTable *sent;    /* mid -> seq (guint64, boxed): records handed to the client on this connection */
	GPtrArray *unsaved;  /* char *: event payloads made, waiting for the outbox (seq: its next and on) */
	guint save_source;   /* writes `unsaved` to the outbox once this dispatch is over */
	GArray *acks;        /* guint64: seqs acknowledged, not yet given to the writer */
	GHashTable *acking;  /* seqs acknowledged (or given up), not recorded by the writer yet: not sent again */
	gboolean ack_job;    /* an acknowledgement job is with the writer: the next waits for its result */
	guint ack_source;
	guint64 next_seq_to_send;
	guint64 dropped;
	guint status_source;  /* an idle that publishes the status once a burst of changes is over */
	char *status_sent;    /* the last status published, its time left out: the same one is not sent again */
	guint devices_source; /* publishes the devices whose state is due (DEVICE_PUBLISH_MS) */
	GList *refreshes;     /* Refresh: commands waiting for the upstream */
	GThread *thread;      /* the main loop's, where the outbox and the client are used */
	GMutex deferred_lock;
	GList *deferred;   /* Deferred: events from other threads on their way to the main loop */
	gboolean stopping; /* healer_mqtt_face_stop() was called: the offline status is the last word */
};

struct _Refresh {
	HealerMqttFace *face; /* NULL once the face is gone */
	char *response_topic;
	GBytes *correlation;
};

static void record_acks(HealerMqttFace *self);
static gboolean on_acks_due(gpointer user_data);

/*
 * `seq` is delivered (or given up): the writer records it with the others of this dispatch.  Until
 * it has, the record is still pending in the outbox, and `acking` keeps it from being sent again,
 * after a reconnect too, whether it is still waiting here or already with the writer.
 */
static void
queue_ack(HealerMqttFace *self, guint64 seq)
{
	g_array_append_val(self->acks, seq);
	g_hash_table_add(self->acking, g_memdup2(&seq, sizeof seq));
	if (self->ack_source == 0)
		self->ack_source = g_idle_add(on_acks_due, self);
}

static void
device_state_free(DeviceState *state)
{
	healer_device_info_free(state->info);
	g_free(state->published);
	g_free(state->published_state);
	g_free(state);
}

/* ---- events: outbox first, then the broker -------------------------------------------------------- */

/*
 * A record the outbox cannot give back (the disk changed it, or refuses to read it) would stop
 * every later one at the front of the window forever: it is given up, and the journal says so.
 */
static void
give_up_record(HealerMqttFace *self, guint64 seq, const GError *why)
{
	healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
	            "mqtt: event %" G_GUINT64_FORMAT " cannot be read back from the outbox, so it is never "
	            "published: %s",
	            seq, why->message);
	self->dropped++;
	/* Recorded as delivered, by the writer (the outbox has one). */
	queue_ack(self, seq);
}

/* Hands the client every record not handed yet, oldest first, up to MAX_IN_FLIGHT in flight. */
static void
send_pending(HealerMqttFace *self)
{
	/* Stopping: what is not delivered yet stays in the outbox for the next start. */
	if (self->stopping || !healer_mqtt_client_is_connected(self->client))
		return;
	while (g_hash_table_size(self->sent) < MAX_IN_FLIGHT) {
		g_autoptr(GError) error = NULL;
		g_autofree char *payload = NULL;
		guint64 seq = 0;
		gsize len = 0;
		int mid = 0;

		/* By number, not index: the writer thread may acknowledge the front meanwhile. */
		payload = healer_mqtt_outbox_read_next(self->outbox, self->next_seq_to_send, &seq, &len, &error);
		if (payload == NULL && error == NULL)
			return;
		self->next_seq_to_send = seq + 1;
		/* The broker has it; the outbox will know once the writer has recorded it. */
		if (g_hash_table_contains(self->acking, &seq))
			continue;
		if (payload == NULL) {
			give_up_record(self, seq, error);
			continue;
		}
		if (!healer_mqtt_client_publish(self->client, self->events_topic, payload, len, 1, FALSE, NULL, &mid)) {
			self->next_seq_to_send = seq;
			return;
		}
		g_hash_table_insert(self->sent, GINT_TO_POINTER(mid), g_memdup2(&seq, sizeof seq));
	}
}

static void queue_payload(HealerMqttFace *self, char *payload);
static void status_changed(HealerMqttFace *self);

/* The outbox is full: an events-dropped event says how many went, to the broker and the journal. */
static void
say_dropped(HealerMqttFace *self, guint dropped)
{
	self->dropped += dropped;
	healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
	            "mqtt: the outbox is full (outbox-max-bytes=%" G_GUINT64_FORMAT "): dropped the %u oldest "
	            "events not yet delivered; an events-dropped event says so to the broker",
	            self->config->mqtt_outbox_max_bytes, dropped);
	queue_payload(self, healer_mqtt_events_dropped_payload(self->next_seq, g_get_real_time(), dropped));
}

/* An append's result, back from the writer: an event goes to the broker once it is on disk. */
static void
appended(HealerMqttFace *self, const HealerMqttOutboxWriterResult *result)
{
	guint n = result->payloads->len;

	if (result->error != NULL) {
		/* Not kept: they still go out now if the broker is there, without the outbox's promise; the
		 * writer used their numbers up, so that none is seen twice. */
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
		            "mqtt: %u event(s) not kept in the outbox: %s", n, result->error->message);
		self->next_seq_to_send = MAX(self->next_seq_to_send, result->first_seq + n);
		for (guint i = 0; i < n; i++) {
			const char *payload = g_ptr_array_index(result->payloads, i);

			if (!self->stopping && healer_mqtt_client_is_connected(self->client))
				healer_mqtt_client_publish(self->client, self->events_topic, payload, strlen(payload),
				                           1, FALSE, NULL, NULL);
		}
		return;
	}
	if (result->dropped > 0)
		say_dropped(self, result->dropped);
	send_pending(self);
}

/* Acknowledgements recorded (or not: then they stay pending, and go again at the next connection). */
static void
acks_recorded(HealerMqttFace *self, const HealerMqttOutboxWriterResult *result)
{
	self->ack_job = FALSE;
	for (guint i = 0; i < result->seqs->len; i++)
		g_hash_table_remove(self->acking, &g_array_index(result->seqs, guint64, i));
	if (result->error != NULL)
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
		            "mqtt: the delivery of %u event(s) not recorded: %s (they are sent again at the next "
		            "connection)",
		            result->seqs->len, result->error->message);
	/* The status's outbox_pending: once the burst is recorded, not per PUBACK. */
	status_changed(self);
	/* What came in meanwhile, in one job. */
	record_acks(self);
}

static void
on_written(const HealerMqttOutboxWriterResult *result, gpointer user_data)
{
	if (result->kind == HEALER_MQTT_OUTBOX_WRITER_APPEND)
		appended(user_data, result);
	else
		acks_recorded(user_data, result);
}

/* Hands the events made since the last save to the writer, at most SAVE_BATCH_MAX to a job. */
static void
save_events(HealerMqttFace *self)
{
	g_clear_handle_id(&self->save_source, g_source_remove);
	while (self->unsaved->len > 0) {
		guint n = MIN(self->unsaved->len, SAVE_BATCH_MAX);
		GPtrArray *batch = g_ptr_array_new_full(n, g_free);

		for (guint i = 0; i < n; i++)
			g_ptr_array_add(batch, g_steal_pointer(&g_ptr_array_index(self->unsaved, i)));
		g_ptr_array_remove_range(self->unsaved, 0, n);
		healer_mqtt_outbox_writer_append(self->writer, batch);
	}
}

static gboolean
on_save_due(gpointer user_data)
{
	HealerMqttFace *self = user_data;

	self->save_source = 0;
	save_events(self);
	return G_SOURCE_REMOVE;
}

/* `payload` (taken) was made for self->next_seq: numbered, and saved with this dispatch's others. */
static void
queue_payload(HealerMqttFace *self, char *payload)
{
	self->next_seq++;
	g_ptr_array_add(self->unsaved, payload);
	if (self->save_source == 0)
		self->save_source = g_idle_add_full(G_PRIORITY_DEFAULT, on_save_due, self, NULL);
}

static void
on_published_event(HealerMqttFace *self, const HealerEvent *event)
{
	char *payload = healer_mqtt_event_payload(self->next_seq, g_get_real_time(), event);

	if (payload != NULL)
		queue_payload(self, payload);
}

/* ---- retained state --------------------------------------------------------------------------------- */

static void
publish_device(HealerMqttFace *self, const char *id, DeviceState *state)
{
	g_autofree char *topic = g_strdup_printf("%s/%s", self->devices_topic, id);
	g_autofree char *payload = healer_mqtt_device_payload(state->info, state->detached_at != 0, state->detached_at);

	state->due = FALSE;
	if (self->stopping || g_strcmp0(payload, state->published) == 0 ||
	    !healer_mqtt_client_is_connected(self->client))
		return;
	if (healer_mqtt_client_publish(self->client, topic, payload, strlen(payload), 1, TRUE, NULL, NULL)) {
		g_free(state->published);
		state->published = g_steal_pointer(&payload);
		g_free(state->published_state);
		state->published_state =
		        g_strdup_printf("%s%s", state->info->state, state->detached_at ? " detached" : "");
	}
}

static gboolean
on_devices_due(gpointer user_data)
{
	HealerMqttFace *self = user_data;
	GHashTableIter iter;
	gpointer key, value;

	self->devices_source = 0;
	g_hash_table_iter_init(&iter, self->devices);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		if (((DeviceState *)value)->due)
			publish_device(self, key, value);
	}
	return G_SOURCE_REMOVE;
}

static void
update_device(HealerMqttFace *self, const char *id, gboolean removed)
{
	g_autofree char *now_state = NULL;
	DeviceState *state;

	if (id == NULL || !healer_mqtt_topic_level_is_valid(id))
		return;
	state = g_hash_table_lookup(self->devices, id);
	if (removed) {
		if (state == NULL)
			return;
		state->detached_at = g_get_real_time();
	} else {
		HealerDeviceInfo *info = healer_engine_get_device(self->engine, id);
		if (info == NULL)
			return;
		if (state == NULL) {
			state = g_new0(DeviceState, 1);
			g_hash_table_insert(self->devices, g_strdup(id), state);
		}
		healer_device_info_free(state->info);
		state->info = info;
		state->detached_at = 0;
	}
	now_state = g_strdup_printf("%s%s", state->info->state, state->detached_at ? " detached" : "");
	if (g_strcmp0(now_state, state->published_state) != 0) {
		publish_device(self, id, state);
		return;
	}
	state->due = TRUE;
	if (self->devices_source == 0 && !self->stopping)
		self->devices_source = g_timeout_add(DEVICE_PUBLISH_MS, on_devices_due, self);
}

static char *
status_payload(HealerMqttFace *self, gint64 time_us)
{
	g_autoptr(GHashTable) by_state = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) devices = healer_engine_list_devices(self->engine);
	HealerMqttStatus status = {
	        .version = HEALER_VERSION,
	        .time_us = time_us,
	        .devices_by_state = by_state,
	        .store_modules = healer_store_get_n_entries(self->store),
	        .outbox_pending = healer_mqtt_outbox_pending(self->outbox),
	        .dropped = self->dropped,
	};

	g_autoptr(json_object) sources = healer_supply_sources_to_json(self->supply);
	json_object *catalogs = NULL;

	/* The catalogs the supply holds, as D-Bus's Sources lists them. */
	if (json_object_object_get_ex(sources, "catalogs", &catalogs) && json_object_is_type(catalogs, json_type_array))
		status.catalogs = (guint)json_object_array_length(catalogs);
	for (guint i = 0; i < devices->len; i++) {
		const HealerDeviceInfo *info = g_ptr_array_index(devices, i);
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(by_state, info->state));
		g_hash_table_insert(by_state, info->state, GUINT_TO_POINTER(n + 1));
	}
	return healer_mqtt_status_payload(&status);
}

static gboolean
publish_status(gpointer user_data)
{
	HealerMqttFace *self = user_data;
	g_autofree char *payload = NULL;
	g_autofree char *key = NULL;

	self->status_source = 0;
	if (!healer_mqtt_client_is_connected(self->client))
		return G_SOURCE_REMOVE;
	key = status_payload(self, 0);
	if (g_strcmp0(key, self->status_sent) == 0)
		return G_SOURCE_REMOVE;
	payload = status_payload(self, g_get_real_time());
	if (healer_mqtt_client_publish(self->client, self->status_topic, payload, strlen(payload), 1, TRUE, NULL,
	                               NULL)) {
		g_free(self->status_sent);
		self->status_sent = g_steal_pointer(&key);
	}
	return G_SOURCE_REMOVE;
}

static void
status_changed(HealerMqttFace *self)
{
	if (self->status_source == 0 && !self->stopping)
		self->status_source = g_idle_add(publish_status, self);
}

static void handle_event(HealerMqttFace *self, const HealerEvent *event);

typedef struct {
	HealerMqttFace *face; /* NULL once the face is gone */
	HealerEvent *event;
} Deferred;

static gboolean
on_deferred(gpointer user_data)
{
	Deferred *d = user_data;

	/* d->face is only cleared on this thread (healer_mqtt_face_free()); the list is shared with workers. */
	if (d->face != NULL) {
		g_mutex_lock(&d->face->deferred_lock);
		d->face->deferred = g_list_remove(d->face->deferred, d);
		g_mutex_unlock(&d->face->deferred_lock);
		handle_event(d->face, d->event);
	}
	healer_event_free(d->event);
	g_free(d);
	return G_SOURCE_REMOVE;
}

/*
 * Events from a worker thread (a bundle's, the import walk's) are handed to the main loop, where
 * the outbox and the client live: in the order they came, behind what the loop is doing.
 */
static void
on_event(const HealerEvent *event, gpointer user_data)
{
	HealerMqttFace *self = user_data;
	Deferred *d;

	if (g_thread_self() == self->thread) {
		handle_event(self, event);
		return;
	}
	d = g_new0(Deferred, 1);
	d->event = healer_event_copy(event);
	g_mutex_lock(&self->deferred_lock);
	d->face = self;
	self->deferred = g_list_append(self->deferred, d);
	g_mutex_unlock(&self->deferred_lock);
	g_idle_add(on_deferred, d);
}

static void
handle_event(HealerMqttFace *self, const HealerEvent *event)
{

	/* Before healer_mqtt_face_start() only events are kept: there is no engine to ask about state. */
	if (self->engine == NULL && (STATE_KINDS & HEALER_EVENT_KIND_BIT(event->kind)) != 0)
		return;
	switch (event->kind) {
	/* The counts by state change with STATUS (the engine's summary), not with every percent. */
	case HEALER_EVENT_DEVICE_ADDED:
	case HEALER_EVENT_DEVICE_CHANGED:
		update_device(self, event->device_id, FALSE);
		break;
	case HEALER_EVENT_DEVICE_REMOVED:
		update_device(self, event->device_id, TRUE);
		break;
	case HEALER_EVENT_STATUS:
	case HEALER_EVENT_SOURCES_CHANGED:
		status_changed(self);
		break;
	default:
		on_published_event(self, event);
		break;
	}
}

/* ---- commands ------------------------------------------------------------------------------------- */

static void
reply(HealerMqttFace *self, const char *response_topic, GBytes *correlation, char *payload)
{
	g_autofree char *owned = payload;

	if (response_topic == NULL || self->client == NULL)
		return;
	healer_mqtt_client_publish(self->client, response_topic, owned, strlen(owned), 1, FALSE, correlation, NULL);
}

static void
reply_error(HealerMqttFace *self, const char *response_topic, GBytes *correlation, const GError *error)
{
	reply(self, response_topic, correlation, healer_mqtt_reply_error(error));
}

static void
on_refreshed(const HealerUpstreamRefreshResult *result, const GError *error, gpointer user_data)
{
	Refresh *refresh = user_data;
	HealerMqttFace *self = refresh->face;

	if (self != NULL) {
		self->refreshes = g_list_remove(self->refreshes, refresh);
		if (error != NULL) {
			reply_error(self, refresh->response_topic, refresh->correlation, error);
		} else {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "changed", json_object_new_boolean(result->changed));
			json_object_object_add(o, "serial", json_object_new_int64((gint64)result->serial));
			json_object_object_add(o, "modules", json_object_new_int64((gint64)result->n_modules));
			reply(self, refresh->response_topic, refresh->correlation, healer_mqtt_reply_ok(o));
		}
	}
	g_free(refresh->response_topic);
	g_clear_pointer(&refresh->correlation, g_bytes_unref);
	g_free(refresh);
}

static void
run_command(HealerMqttFace *self, const HealerMqttCommand *command, const char *response_topic, GBytes *correlation)
{
	g_autoptr(GError) error = NULL;

	switch (command->verb) {
	case HEALER_MQTT_COMMAND_HEAL:
		if (command->all) {
			g_autoptr(GPtrArray) ids = healer_engine_heal_all(self->engine);
			json_object *started = json_object_new_array();
			for (guint i = 0; i < ids->len; i++)
				json_object_array_add(started, json_object_new_string(g_ptr_array_index(ids, i)));
			json_object *o = json_object_new_object();
			json_object_object_add(o, "started", started);
			reply(self, response_topic, correlation, healer_mqtt_reply_ok(o));
			return;
		}
		if (!healer_engine_heal(self->engine, command->device_id, &error))
			break;
		reply(self, response_topic, correlation, healer_mqtt_reply_ok(NULL));
		return;
	case HEALER_MQTT_COMMAND_RESET:
		if (!healer_engine_reset(self->engine, command->device_id, &error))
			break;
		reply(self, response_topic, correlation, healer_mqtt_reply_ok(NULL));
		return;
	case HEALER_MQTT_COMMAND_REFRESH: {
		Refresh *refresh;
		if (self->upstream == NULL) {
			g_set_error_literal(&error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND,
			                    "no upstream is configured ([upstream] url)");
			break;
		}
		refresh = g_new0(Refresh, 1);
		refresh->face = self;
		refresh->response_topic = g_strdup(response_topic);
		refresh->correlation = correlation != NULL ? g_bytes_ref(correlation) : NULL;
		self->refreshes = g_list_prepend(self->refreshes, refresh);
		healer_upstream_refresh(self->upstream, on_refreshed, refresh);
		return;
	}
	case HEALER_MQTT_COMMAND_STATUS: {
		/* The retained status's object, as the reply's result. */
		g_autofree char *status = status_payload(self, g_get_real_time());
		reply(self, response_topic, correlation, healer_mqtt_reply_ok(json_tokener_parse(status)));
		return;
	}
	}
	reply_error(self, response_topic, correlation, error);
}

static void
on_message(const char *topic, const void *payload, gsize len, const char *response_topic, GBytes *correlation,
           gpointer user_data)
{
	HealerMqttFace *self = user_data;
	gsize prefix_len = strlen(self->cmd_topic);
	const char *verb;
	g_autoptr(HealerMqttCommand) command = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_str_has_prefix(topic, self->cmd_topic) || topic[prefix_len] != '/')
		return;
	verb = topic + prefix_len + 1;
	/* healerd is going: a command would start what nobody stays to finish, and its reply could not wait. */
	if (self->stopping)
		return;
	if (!self->config->mqtt_accept_commands) {
		g_set_error(&error, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED,
		            "commands are off on this gateway ([mqtt] accept-commands=false)");
		reply_error(self, response_topic, correlation, error);
		return;
	}
	command = healer_mqtt_command_parse(verb, payload, len, &error);
	if (command == NULL) {
		reply_error(self, response_topic, correlation, error);
		return;
	}
	healer_emit(HEALER_EVENT_NOTE, command->device_id, NULL, NULL, -1, G_LOG_LEVEL_INFO,
	            "mqtt: command %s%s%s from %s", verb, command->device_id ? " " : "",
	            command->device_id ? command->device_id : (command->all ? " (all devices)" : ""), topic);
	run_command(self, command, response_topic, correlation);
}

/* ---- the connection ------------------------------------------------------------------------------- */

/* What healerctl status says of MQTT (D-Bus property Mqtt), through the stream as every face hears. */
static void
state_changed(HealerMqttFace *self)
{
	g_autofree char *text = healer_mqtt_face_describe(self);

	healer_event_stream_emit(self->stream,
	                         &(const HealerEvent){.kind = HEALER_EVENT_MQTT_STATE, .reason = text, .step = -1});
}

static void
on_connected(gpointer user_data)
{
	HealerMqttFace *self = user_data;
	GHashTableIter iter;
	gpointer key, value;

	/* A new connection: nothing is in flight on it; every unacknowledged record goes again, in order. */
	record_acks(self);
	g_hash_table_remove_all(self->sent);
	self->next_seq_to_send = 0;
	healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_INFO,
	            "mqtt: connected to %s:%u as gateway %s; %u event(s) to deliver", self->config->mqtt_host,
	            self->config->mqtt_port, self->config->mqtt_gateway_id, healer_mqtt_outbox_pending(self->outbox));
	/* The broker may have lost retained state (restarted without persistence): all of it again. */
	g_hash_table_iter_init(&iter, self->devices);
	while (g_hash_table_iter_next(&iter, &key, &value)) {
		DeviceState *state = value;
		g_clear_pointer(&state->published, g_free);
		g_clear_pointer(&state->published_state, g_free);
		publish_device(self, key, state);
	}
	g_clear_pointer(&self->status_sent, g_free);
	status_changed(self);
	send_pending(self);
	state_changed(self);
}

static void
on_disconnected(const char *why, gpointer user_data)
{
	HealerMqttFace *self = user_data;

	record_acks(self);
	g_hash_table_remove_all(self->sent);
	healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
	            "mqtt: not connected to %s:%u: %s; events are kept (%u waiting) and healing goes on",
	            self->config->mqtt_host, self->config->mqtt_port, why, healer_mqtt_outbox_pending(self->outbox));
	state_changed(self);
}

/* The PUBACKs of one burst, recorded with one durable write (a write costs milliseconds on a disk). */
static void
record_acks(HealerMqttFace *self)
{
	GArray *seqs;

	g_clear_handle_id(&self->ack_source, g_source_remove);
	/*
	 * One job at a time: while the writer records a burst (milliseconds of syncing on a disk), the
	 * PUBACKs that come in gather for the next, so a fast drain makes few big jobs, not a queue of
	 * small ones behind a slow disk.
	 */
	if (self->acks->len == 0 || self->ack_job)
		return;
	self->ack_job = TRUE;
	seqs = g_steal_pointer(&self->acks);
	self->acks = g_array_new(FALSE, FALSE, sizeof(guint64));
	healer_mqtt_outbox_writer_ack(self->writer, seqs);
}

static gboolean
on_acks_due(gpointer user_data)
{
	HealerMqttFace *self = user_data;

	self->ack_source = 0;
	record_acks(self);
	return G_SOURCE_REMOVE;
}

static void
on_puback(int mid, gpointer user_data)
{
	HealerMqttFace *self = user_data;
	guint64 *seq = g_hash_table_lookup(self->sent, GINT_TO_POINTER(mid));

	/* Retained state and replies are not in the table: their acknowledgement changes nothing. */
	if (seq == NULL)
		return;
	/* Recorded once this dispatch's PUBACKs are all in (an idle runs after the socket's source). */
	queue_ack(self, *seq);
	g_hash_table_remove(self->sent, GINT_TO_POINTER(mid));
	/* Its place in the window is free now, not once the acknowledgement is written. */
	send_pending(self);
}

HealerMqttFace *
healer_mqtt_face_new(HealerConfig *config, HealerEventStream *stream, GError **error)
{
	static const HealerMqttClientCallbacks callbacks = {
	        .connected = on_connected,
	        .disconnected = on_disconnected,
	        .published = on_puback,
	        .message = on_message,
	};
	g_autoptr(HealerMqttFace) self = g_new0(HealerMqttFace, 1);
	g_autofree char *outbox_dir = g_build_filename(config->state_dir, "mqtt", NULL);
	g_autofree char *offline = NULL;
	g_autofree char *cmd_filter = NULL;
	guint64 kinds = STATE_KINDS;

	g_return_val_if_fail(config->mqtt_broker != NULL, NULL);
	self->config = config;
	self->thread = g_thread_self();
	g_mutex_init(&self->deferred_lock);
	self->devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)device_state_free);
	self->sent = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	self->acks = g_array_new(FALSE, FALSE, sizeof(guint64));
	self->acking = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	self->unsaved = g_ptr_array_new_with_free_func(g_free);
	self->status_topic = healer_mqtt_topic(config->mqtt_topic_prefix, config->mqtt_gateway_id, "status");
	self->events_topic = healer_mqtt_topic(config->mqtt_topic_prefix, config->mqtt_gateway_id, "events");
	self->devices_topic = healer_mqtt_topic(config->mqtt_topic_prefix, config->mqtt_gateway_id, "devices");
	self->cmd_topic = healer_mqtt_topic(config->mqtt_topic_prefix, config->mqtt_gateway_id, "cmd");
	self->outbox = healer_mqtt_outbox_open(outbox_dir, config->mqtt_outbox_max_bytes, error);
	if (self->outbox == NULL)
		return NULL;
	self->next_seq = healer_mqtt_outbox_next_seq(self->outbox);
	self->writer = healer_mqtt_outbox_writer_new(self->outbox, on_written, self);
	healer_mqtt_outbox_set_drop_slack(self->outbox,
	                                  MAX(DROP_SLACK_MIN, config->mqtt_outbox_max_bytes / DROP_SLACK_FRACTION));
	self->client = healer_mqtt_client_new(config, &callbacks, self, error);
	if (self->client == NULL)
		return NULL;
	offline = healer_mqtt_offline_payload(HEALER_VERSION, g_get_real_time());
	healer_mqtt_client_set_will(self->client, self->status_topic, offline, TRUE);
	/* Subscribed with commands off too: a command gets a refusal that says why, not silence. */
	cmd_filter = g_strdup_printf("%s/+", self->cmd_topic);
	healer_mqtt_client_subscribe(self->client, cmd_filter, 1);
	for (guint kind = 0; kind < HEALER_EVENT_N_KINDS; kind++) {
		if (healer_mqtt_event_name((HealerEventKind)kind) != NULL)
			kinds |= HEALER_EVENT_KIND_BIT(kind);
	}
	self->stream = stream;
	self->subscription = healer_event_stream_subscribe_kinds(stream, kinds, on_event, self);
	return g_steal_pointer(&self);
}

void
healer_mqtt_face_start(HealerMqttFace *self, HealerEngine *engine, HealerStore *store, HealerSupply *supply,
                       HealerUpstream *upstream)
{
	g_autoptr(GPtrArray) devices = NULL;

	self->engine = engine;
	self->store = store;
	self->supply = supply;
	self->upstream = upstream;
	/* Devices the engine knew before: their retained state is published on connect. */
	devices = healer_engine_list_devices(self->engine);

	for (guint i = 0; i < devices->len; i++)
		update_device(self, ((HealerDeviceInfo *)g_ptr_array_index(devices, i))->id, FALSE);
	healer_mqtt_client_start(self->client);
	state_changed(self);
}

char *
healer_mqtt_face_describe(HealerMqttFace *self)
{
	const char *why = healer_mqtt_client_get_last_error(self->client);

	if (healer_mqtt_client_is_connected(self->client))
		return g_strdup_printf("connected to %s:%u as gateway %s", self->config->mqtt_host,
		                       self->config->mqtt_port, self->config->mqtt_gateway_id);
	/* Events wait in the outbox meanwhile: said, since "not connected" alone sounds like loss. */
	return g_strdup_printf("not connected to %s:%u: %s (events are kept and sent once it is back)",
	                       self->config->mqtt_host, self->config->mqtt_port, why != NULL ? why : "connecting");
}

void
healer_mqtt_face_stop(HealerMqttFace *self, guint timeout_ms)
{
	g_autofree char *offline = healer_mqtt_offline_payload(HEALER_VERSION, g_get_real_time());

	/*
	 * The client runs the main loop while it waits for the offline status's PUBACK, and the engine,
	 * timers and idles with it: a status or device state published then would follow "offline" and
	 * be what the broker retains.  From here on nothing is published but "offline"; events still go
	 * to the outbox, for the next start.
	 */
	self->stopping = TRUE;
	g_clear_handle_id(&self->status_source, g_source_remove);
	g_clear_handle_id(&self->devices_source, g_source_remove);
	healer_mqtt_client_stop(self->client, self->status_topic, offline, timeout_ms);
}

void
healer_mqtt_face_free(HealerMqttFace *self)
{
	if (self == NULL)
		return;
	if (self->subscription != 0)
		healer_event_stream_unsubscribe(self->stream, self->subscription);
	for (GList *l = self->refreshes; l != NULL; l = l->next)
		((Refresh *)l->data)->face = NULL;
	g_mutex_lock(&self->deferred_lock);
	for (GList *l = self->deferred; l != NULL; l = l->next)
		((Deferred *)l->data)->face = NULL;
	g_list_free(self->deferred);
	self->deferred = NULL;
	g_mutex_unlock(&self->deferred_lock);
	g_list_free(self->refreshes);
	if (self->status_source != 0)
		g_source_remove(self->status_source);
	if (self->devices_source != 0)
		g_source_remove(self->devices_source);
	g_free(self->status_sent);
	/*
	 * What was acknowledged is recorded, not sent again at the next start, and what was made is kept
	 * for it: on disk before healerd exits.  (A flush can make one more event: the events-dropped
	 * of a last append that had to drop.)
	 */
	if (self->writer != NULL) {
		self->stopping = TRUE;
		record_acks(self);
		save_events(self);
		/* A result delivered can give the writer one more job (acknowledgements that waited, or an
		 * events-dropped event): until there is none. */
		while (healer_mqtt_outbox_writer_flush(self->writer) > 0) {
			record_acks(self);
			save_events(self);
		}
	}
	g_clear_pointer(&self->writer, healer_mqtt_outbox_writer_free);
	g_clear_handle_id(&self->save_source, g_source_remove);
	g_clear_handle_id(&self->ack_source, g_source_remove);
	g_clear_pointer(&self->unsaved, g_ptr_array_unref);
	g_clear_pointer(&self->acking, g_hash_table_unref);
	g_clear_pointer(&self->acks, g_array_unref);
	g_clear_pointer(&self->client, healer_mqtt_client_free);
	g_clear_pointer(&self->outbox, healer_mqtt_outbox_free);
	g_clear_pointer(&self->devices, g_hash_table_unref);
	g_clear_pointer(&self->sent, g_hash_table_unref);
	g_free(self->status_topic);
	g_free(self->events_topic);
	g_free(self->devices_topic);
	g_free(self->cmd_topic);
	g_mutex_clear(&self->deferred_lock);
	g_free(self);
}
