/*
 * healerd over MQTT end to end (docs/mqtt.md): the real healerd healing simulated devices
 * (healer-sim on ptys) while it publishes to a private mosquitto (tests/tools/mosquitto-harness.h),
 * watched and driven by a libmosquitto peer of the test's own.
 *
 * What a subscriber arriving late finds retained, the events of a heal in order with their seq and
 * MESSAGE_ID, the will on kill -9 and the clean offline on SIGTERM, nothing lost when the broker goes
 * away in the middle of a heal, when it dies with a heal's events unacknowledged, or when healerd is
 * killed while the broker is away, a full outbox dropping its oldest events and saying so, commands
 * with MQTT v5
 * request/response (and refused while accept-commands is off), a wrong password that does not stop
 * healing and shows in `healerctl status`, and TLS with a client certificate.
 *
 * Every wait is for an event (a message at the peer, a line in healerd's log, a line in the
 * broker's log), bounded generously; a bound reached fails the test.
 */
#define _GNU_SOURCE

#include <glib/gstdio.h>
#include <string.h>
#include <json.h>
#include <signal.h>
#include <sys/wait.h>

#include "events.h"
#include "gateway-harness.h"
#include "healer-error.h"
#include "healerd-process.h"
#include "json-autoptr.h"
#include "mosquitto-harness.h"
#include "mqtt-outbox.h"
#include "mqtt-payload.h"
#include "test-util.h"

#define GATEWAY       "gw-test"
#define TOPICS        "healerd/" GATEWAY
#define STATUS_TOPIC  TOPICS "/status"
#define EVENTS_TOPIC  TOPICS "/events"
#define DEVICES_TOPIC TOPICS "/devices"
#define REPLY_TOPIC   TOPICS "/reply/tester"
#define CLIENT_ID     "healerd-" GATEWAY

static char *tmpdir;

static gboolean
under_valgrind(void)
{
	return g_getenv("HEALER_UNDER_VALGRIND") != NULL;
}

/* A whole heal (seconds; minutes under valgrind, where healerd runs twenty times slower). */
static guint
heal_seconds(void)
{
	return under_valgrind() ? 1200 : 240;
}

static guint
heal_ms(void)
{
	return heal_seconds() * 1000;
}

#define SKIP_WITHOUT_MOSQUITTO()                                                                                       \
	do {                                                                                                           \
		if (!mosquitto_broker_available()) {                                                                   \
			g_test_skip(                                                                                   \
			        "mosquitto, mosquitto_passwd or openssl missing (scripts/setup.sh installs them)");    \
			return;                                                                                        \
		}                                                                                                      \
	} while (0)

#define SKIP_WITHOUT_DBUS()                                                                                            \
	do {                                                                                                           \
		if (!have_dbus_daemon()) {                                                                             \
			g_test_skip("no dbus-daemon");                                                                 \
			return;                                                                                        \
		}                                                                                                      \
	} while (0)

static const char *const *
words(const char *a, const char *b)
{
	static const char *w[3];

	w[0] = a;
	w[1] = b;
	w[2] = NULL;
	return w;
}

/* ---- healerd and its devices ---- */

/*
 * healerd serving DIR/ports/ with the firmware build's modules, publishing to `b` as gateway
 * GATEWAY; `mqtt_lines` are more [mqtt] keys (may be NULL).
 */
static HealerdProcess *
healerd_new(const char *dir, MosquittoBroker *b, const char *healer_lines, const char *mqtt_lines)
{
	HealerdProcess *healerd = healerd_process_new(dir, test_program("HEALER_FIRMWARE_MODULES"), healer_lines);
	g_autofree char *url = mosquitto_broker_url(b, "127.0.0.1");
	g_autofree char *text = NULL;
	g_autofree char *all = NULL;

	g_assert_true(g_file_get_contents(healerd->config, &text, NULL, NULL));
	all = g_strdup_printf("%s[mqtt]\nbroker=%s\ngateway-id=%s\n%s", text, url, GATEWAY,
	                      mqtt_lines != NULL ? mqtt_lines : "");
	test_write_file(healerd->config, (const guint8 *)all, strlen(all));
	return healerd;
}

/* A device on DIR/ports/NAME (extra: more healer-sim arguments, NULL-terminated; may be NULL), its line let go. */
static void
start_sim(Device *d, const char *dir, const char *name, const char *release, const char *app, const char *const *extra)
{
	g_autofree char *state = g_build_filename(dir, "devices", name, NULL);
	g_autoptr(GPtrArray) args = g_ptr_array_new();

	d->link = g_build_filename(dir, "ports", name, NULL);
	g_ptr_array_add(args, (gpointer) "--release");
	g_ptr_array_add(args, (gpointer)release);
	g_ptr_array_add(args, (gpointer) "--app");
	g_ptr_array_add(args, (gpointer)app);
	g_ptr_array_add(args, (gpointer) "--link");
	g_ptr_array_add(args, d->link);
	for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
		g_ptr_array_add(args, (gpointer)extra[i]);
	g_ptr_array_add(args, NULL);
	d->sim = sim_device_start(state, (const char *const *)args->pdata);
	sim_device_wait_hello(d->sim, &d->hello, 10000);
	d->id = sim_hello_id(&d->hello);
	sim_device_disconnect(d->sim);
}

/* ---- what the peer received ---- */

static void
json_put(gpointer o)
{
	json_object_put(o);
}

static json_object *
parse_json(const char *text)
{
	json_object *o = json_tokener_parse(text);

	if (o == NULL)
		g_error("not JSON: %s", text);
	return o;
}

static json_object *
member(json_object *o, const char *key)
{
	json_object *value = NULL;

	if (!json_object_object_get_ex(o, key, &value))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(o));
	return value;
}

static const char *
string_member(json_object *o, const char *key)
{
	json_object *value = member(o, key);

	return json_object_is_type(value, json_type_null) ? NULL : json_object_get_string(value);
}

/* The messages on one topic at one peer, parsed, in the order they came. */
typedef struct {
	MqttPeer *peer;
	char *topic;
	GPtrArray *messages; /* const MqttPeerMessage*: the peer's */
	GPtrArray *payloads; /* char*: each payload as text */
	GPtrArray *objects;  /* json_object*: each parsed; NULL for one that is not JSON */
} Received;

static Received *
received_new(MqttPeer *peer, const char *topic)
{
	Received *r = g_new0(Received, 1);

	r->peer = peer;
	r->topic = g_strdup(topic);
	r->messages = g_ptr_array_new();
	r->payloads = g_ptr_array_new_with_free_func(g_free);
	r->objects = g_ptr_array_new_with_free_func(json_put);
	return r;
}

static void
received_free(Received *r)
{
	g_free(r->topic);
	g_ptr_array_unref(r->messages);
	g_ptr_array_unref(r->payloads);
	g_ptr_array_unref(r->objects);
	g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Received, received_free)

/* Takes what arrived since the last call (the peer's thread collects meanwhile). */
static void
received_pull(Received *r)
{
	while (r->messages->len < mqtt_peer_count(r->peer, r->topic)) {
		const MqttPeerMessage *m = mqtt_peer_next(r->peer, r->topic);
		gsize len = 0;
		const char *data = g_bytes_get_data(m->payload, &len);
		char *text = g_strndup(data, len);

		g_ptr_array_add(r->messages, (gpointer)m);
		g_ptr_array_add(r->payloads, text);
		g_ptr_array_add(r->objects, json_tokener_parse(text));
	}
}

typedef gboolean (*Match)(json_object *o, gconstpointer want);

typedef struct {
	Received *r;
	Match match;
	gconstpointer want;
	guint from;
	guint found;
} Search;

static gboolean
search_done(gpointer data)
{
	Search *s = data;

	received_pull(s->r);
	for (guint i = s->from; i < s->r->objects->len; i++) {
		json_object *o = g_ptr_array_index(s->r->objects, i);
		if (o != NULL && s->match(o, s->want)) {
			s->found = i;
			return TRUE;
		}
	}
	return FALSE;
}

/* The index of the first message from `from` on that matches, waiting up to `seconds` for it. */
static guint
received_wait_from(Received *r, guint from, Match match, gconstpointer want, const char *what, guint seconds)
{
	Search s = {r, match, want, from, 0};
	g_autofree char *full = g_strdup_printf("%s on %s", what, r->topic);

	mqtt_wait_until_within(search_done, &s, full, seconds);
	return s.found;
}

static json_object *
received_object(Received *r, guint i)
{
	return g_ptr_array_index(r->objects, i);
}

/* An event of kind `event` for device `device` (NULL: any). */
typedef struct {
	const char *event;
	const char *device;
} EventWant;

static gboolean
is_event(json_object *o, gconstpointer data)
{
	const EventWant *want = data;
	json_object *event = NULL, *device = NULL;

	if (!json_object_object_get_ex(o, "event", &event) || !json_object_object_get_ex(o, "device", &device))
		return FALSE;
	return g_strcmp0(json_object_get_string(event), want->event) == 0 &&
	       (want->device == NULL || g_strcmp0(json_object_get_string(device), want->device) == 0);
}

static json_object *
wait_event(Received *events, const char *event, const char *device, guint seconds)
{
	EventWant want = {event, device};

	return received_object(events, received_wait_from(events, 0, is_event, &want, event, seconds));
}

/* A status saying online, with exactly these counts by state ({"healthy":1}). */
static gboolean
is_online_with(json_object *o, gconstpointer data)
{
	g_autoptr(json_object) counts = parse_json(data);
	json_object *online = NULL, *devices = NULL;

	return json_object_object_get_ex(o, "online", &online) && json_object_get_boolean(online) &&
	       json_object_object_get_ex(o, "devices", &devices) && json_object_equal(devices, counts);
}

static gboolean
is_online(json_object *o, gconstpointer data)
{
	json_object *online = NULL;

	(void)data;
	return json_object_object_get_ex(o, "online", &online) && json_object_get_boolean(online);
}

static gboolean
is_offline(json_object *o, gconstpointer data)
{
	json_object *online = NULL;

	(void)data;
	return json_object_object_get_ex(o, "online", &online) && !json_object_get_boolean(online);
}

static gboolean
any(json_object *o, gconstpointer data)
{
	(void)o;
	(void)data;
	return TRUE;
}

static gboolean
is_marker(json_object *o, gconstpointer data)
{
	(void)data;
	return json_object_object_get_ex(o, "marker", NULL);
}

static gboolean
has_state(json_object *o, gconstpointer data)
{
	json_object *state = NULL;

	return json_object_object_get_ex(o, "state", &state) && g_strcmp0(json_object_get_string(state), data) == 0;
}

/* ---- docs/mqtt.md's schemas (tests/tools/check-json-schema.py) ---- */

static void
assert_schema(const char *name, const char *json)
{
	g_autofree char *page = g_build_filename(test_program("HEALER_SOURCE_DIR"), "docs", "mqtt.md", NULL);
	g_autofree char *script =
	        g_build_filename(test_program("HEALER_SOURCE_DIR"), "tests", "tools", "check-json-schema.py", NULL);
	g_autofree char *file = g_build_filename(tmpdir, "payload.json", NULL);
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) error = NULL;
	const char *python = g_getenv("PYTHON3");
	int status = 0;

	g_assert_true(g_file_set_contents(file, json, -1, &error));
	{
		const char *argv[] = {python != NULL ? python : "python3", script, page, name, file, NULL};
		if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
		                  &error))
			g_error("cannot run %s: %s", script, error->message);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		g_error("%s against schema %s (docs/mqtt.md): %s", json, name, err);
}

/* ---- events: seq, order, repeats ---- */

static gint64
event_seq(json_object *o)
{
	return json_object_get_int64(member(o, "seq"));
}

/*
 * Everything `lists` received on the events topic, in the order given (a peer that was there before
 * a restart, then one after): each message is the next seq (+1, none missing) or an exact repeat of
 * one already seen.  Returns seq -> payload, and the first seq in *first.
 */
static GHashTable *
assert_contiguous(Received *const *lists, guint n_lists, gint64 *first)
{
	GHashTable *by_seq = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	gint64 last = 0;

	*first = 0;
	for (guint l = 0; l < n_lists; l++) {
		received_pull(lists[l]);
		for (guint i = 0; i < lists[l]->objects->len; i++) {
			const char *payload = g_ptr_array_index(lists[l]->payloads, i);
			gint64 seq = event_seq(received_object(lists[l], i));
			const char *seen = g_hash_table_lookup(by_seq, &seq);

			if (seen != NULL) {
				/* QoS 1 is at least once: a repeat is the same bytes, seq and time included. */
				g_assert_cmpstr(payload, ==, seen);
				continue;
			}
			if (*first == 0)
				*first = seq;
			else if (seq != last + 1)
				g_error("event seq %" G_GINT64_FORMAT " after %" G_GINT64_FORMAT " (%s)", seq, last,
				        payload);
			last = seq;
			g_hash_table_insert(by_seq, g_memdup2(&seq, sizeof seq), g_strdup(payload));
		}
	}
	return by_seq;
}

/* The events of one device, in seq order (repeats left out), from seq `from` on. */
static GPtrArray *
device_events(GHashTable *by_seq, gint64 from, const char *device)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(json_put);

	for (gint64 seq = from;; seq++) {
		const char *payload = g_hash_table_lookup(by_seq, &seq);
		json_object *o;

		if (payload == NULL)
			return out;
		o = parse_json(payload);
		if (g_strcmp0(string_member(o, "device"), device) == 0)
			g_ptr_array_add(out, o);
		else
			json_object_put(o);
	}
}

static char *
kinds_of(GPtrArray *events)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (guint i = 0; i < events->len; i++)
		g_string_append_printf(s, "%s%s", i ? " " : "", string_member(g_ptr_array_index(events, i), "event"));
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The plan's size as heal-started's text says it: "starting the heal: 2 module(s), 92288 bytes". */
static guint
modules_in(json_object *started)
{
	const char *text = string_member(started, "text");
	const char *colon = strstr(text, ": ");

	g_assert_nonnull(colon);
	return (guint)g_ascii_strtoull(colon + 2, NULL, 10);
}

/*
 * One heal of `device` as its events say it, from `from`: device-attached, safe-mode-detected,
 * heal-started, one heal-step per module of the plan, heal-succeeded; each step numbered.  Returns
 * the device's events after those (a later run's).
 */
static GPtrArray *
assert_heal_events(GHashTable *by_seq, gint64 from, const char *device)
{
	g_autoptr(GPtrArray) mine = device_events(by_seq, from, device);
	g_autoptr(GPtrArray) heal = g_ptr_array_new();
	GPtrArray *rest = g_ptr_array_new_with_free_func(json_put);
	g_autofree char *all = kinds_of(mine);
	g_autofree char *kinds = NULL;
	g_autoptr(GString) want = g_string_new("device-attached safe-mode-detected heal-started");
	guint n;

	g_test_message("events of %s: %s", device, all);
	for (guint i = 0; i < mine->len; i++) {
		json_object *o = g_ptr_array_index(mine, i);
		if (heal->len > 0 &&
		    g_strcmp0(string_member(g_ptr_array_index(heal, heal->len - 1), "event"), "heal-succeeded") == 0)
			g_ptr_array_add(rest, json_object_get(o));
		else
			g_ptr_array_add(heal, o);
	}
	g_assert_cmpuint(heal->len, >=, 4);
	n = modules_in(g_ptr_array_index(heal, 2));
	g_assert_cmpuint(n, >=, 1);
	for (guint i = 0; i < n; i++)
		g_string_append(want, " heal-step");
	g_string_append(want, " heal-succeeded");
	kinds = kinds_of(heal);
	g_assert_cmpstr(kinds, ==, want->str);
	for (guint i = 0; i < n; i++) {
		json_object *step = g_ptr_array_index(heal, 3 + i);
		g_autofree char *text = g_strdup_printf("plan step %u: %s", i + 1, string_member(step, "module"));
		g_assert_cmpint(json_object_get_int(member(step, "step")), ==, (int)i + 1);
		g_assert_cmpstr(string_member(step, "text"), ==, text);
	}
	return rest;
}

/* The journal's MESSAGE_ID for the event's kind (healer_event_kind_message_id()), or NULL. */
static const char *
journal_message_id(const char *event)
{
	for (guint kind = 0; kind < HEALER_EVENT_N_KINDS; kind++) {
		if (g_strcmp0(healer_event_kind_to_string((HealerEventKind)kind), event) == 0)
			return healer_event_kind_message_id((HealerEventKind)kind);
	}
	g_error("no event kind named %s", event);
}

/* ---- a late subscriber finds the gateway's state retained ---- */

static void
test_late_subscriber(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "late", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) early = NULL, late = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) status = NULL, device = NULL, late_status = NULL, late_device = NULL;
	g_autofree char *device_topic = NULL;
	g_auto(Device) dev = {0};
	json_object *o;

	mosquitto_broker_start(b);
	early = mqtt_peer_new(b);
	mqtt_peer_subscribe(early, TOPICS "/#");
	healerd = healerd_new(dir, b, NULL, NULL);
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	device_topic = g_strdup_printf("%s/%s", DEVICES_TOPIC, dev.id);
	healerd_process_start(healerd);

	/* Once the early peer saw the gateway with its device healed, the broker holds that. */
	status = received_new(early, STATUS_TOPIC);
	device = received_new(early, device_topic);
	received_wait_from(status, 0, is_online_with, "{\"healthy\":1}", "status with the device healthy",
	                   heal_seconds());
	received_wait_from(device, 0, has_state, "healthy", "the device healthy", heal_seconds());

	late = mqtt_peer_new(b);
	late_status = received_new(late, STATUS_TOPIC);
	late_device = received_new(late, device_topic);
	mqtt_peer_subscribe(late, STATUS_TOPIC);
	mqtt_peer_subscribe(late, DEVICES_TOPIC "/+");

	received_wait_from(late_status, 0, is_online, NULL, "the retained status", MQTT_WAIT_SECONDS);
	o = received_object(late_status, 0);
	g_assert_true(((const MqttPeerMessage *)g_ptr_array_index(late_status->messages, 0))->retain);
	assert_schema("status", g_ptr_array_index(late_status->payloads, 0));
	g_assert_true(is_online_with(o, "{\"healthy\":1}"));
	g_assert_cmpstr(string_member(o, "version"), !=, "");
	g_assert_cmpint(json_object_get_int(member(member(o, "store"), "modules")), >, 0);

	received_wait_from(late_device, 0, has_state, "healthy", "the retained device", MQTT_WAIT_SECONDS);
	o = received_object(late_device, 0);
	g_assert_true(((const MqttPeerMessage *)g_ptr_array_index(late_device->messages, 0))->retain);
	assert_schema("device", g_ptr_array_index(late_device->payloads, 0));
	g_assert_cmpstr(string_member(o, "id"), ==, dev.id);
	g_assert_cmpstr(string_member(o, "port"), ==, dev.link);
	g_assert_cmpstr(string_member(o, "state"), ==, "healthy");
	g_assert_cmpstr(string_member(o, "mode"), ==, "normal");
	g_assert_false(json_object_get_boolean(member(o, "detached")));
	g_assert_false(json_object_object_get_ex(o, "detached_at", NULL));

	healerd_process_stop(healerd);
}

/* ---- the events of a heal, in order, with their seq and MESSAGE_ID ---- */

static void
test_heal_events(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "events", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GHashTable) schema_checked = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) rest = NULL;
	g_auto(Device) dev = {0};
	gint64 first = 0;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	events = received_new(peer, EVENTS_TOPIC);
	/* There before healerd's first event: a new state directory, so seq starts at 1. */
	mqtt_peer_subscribe(peer, EVENTS_TOPIC);
	healerd = healerd_new(dir, b, NULL, NULL);
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_start(healerd);
	wait_event(events, "heal-succeeded", dev.id, heal_seconds());
	/* What healerd logged is what it published: every event's line is in its log by now. */
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, heal_ms());

	by_seq = assert_contiguous(&events, 1, &first);
	g_assert_cmpint(first, ==, 1);
	rest = assert_heal_events(by_seq, first, dev.id);
	g_assert_cmpuint(rest->len, ==, 0);
	for (guint i = 0; i < events->objects->len; i++) {
		json_object *o = received_object(events, i);
		const char *kind = string_member(o, "event");
		const char *device = string_member(o, "device");
		g_autofree char *line = g_strdup_printf("%s%s%s%s", device ? "[" : "", device ? device : "",
		                                        device ? "] " : "", string_member(o, "text"));

		g_assert_false(((const MqttPeerMessage *)g_ptr_array_index(events->messages, i))->retain);
		/* MESSAGE_ID as the journal's record of it has it, and its text is that record's message. */
		g_assert_cmpstr(string_member(o, "message_id"), ==, journal_message_id(kind));
		if (healerd_process_count(healerd, words(line, NULL)) == 0)
			g_error("event %s: no line \"%s\" in healerd's log",
			        (char *)g_ptr_array_index(events->payloads, i), line);
		if (g_strcmp0(device, dev.id) == 0)
			g_assert_cmpstr(string_member(o, "port"), ==, dev.link);
		/* Each kind once against the schema: the interpreter costs a tenth of a second a run. */
		if (g_hash_table_add(schema_checked, (gpointer)kind))
			assert_schema("event", g_ptr_array_index(events->payloads, i));
	}
	healerd_process_stop(healerd);
}

/* ---- offline: the will on kill -9, healerd's own message on SIGTERM ---- */

static void
test_offline(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "offline", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL, after_kill = NULL, after_stop = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) status = NULL, killed = NULL, stopped = NULL;
	guint online, offline;
	gsize log_at;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	status = received_new(peer, STATUS_TOPIC);
	mqtt_peer_subscribe(peer, STATUS_TOPIC);
	healerd = healerd_new(dir, b, NULL, NULL);
	healerd_process_start(healerd);
	online = received_wait_from(status, 0, is_online, NULL, "online", MQTT_WAIT_SECONDS);

	/* kill -9: no goodbye, so the broker publishes the will, retained. */
	healerd_process_kill(healerd);
	offline = received_wait_from(status, online + 1, is_offline, NULL, "the will", MQTT_WAIT_SECONDS);
	g_assert_true(((const MqttPeerMessage *)g_ptr_array_index(status->messages, offline))->retain);
	after_kill = mqtt_peer_new(b);
	killed = received_new(after_kill, STATUS_TOPIC);
	mqtt_peer_subscribe(after_kill, STATUS_TOPIC);
	received_wait_from(killed, 0, is_offline, NULL, "the retained will", MQTT_WAIT_SECONDS);
	g_assert_cmpuint(killed->messages->len, ==, 1);
	g_assert_true(((const MqttPeerMessage *)g_ptr_array_index(killed->messages, 0))->retain);
	assert_schema("status-offline", g_ptr_array_index(killed->payloads, 0));

	/* Started again: online; then SIGTERM, and healerd says offline itself and says goodbye. */
	healerd_process_start(healerd);
	online = received_wait_from(status, offline + 1, is_online, NULL, "online again", MQTT_WAIT_SECONDS);
	log_at = b->log->len;
	healerd_process_stop(healerd);
	offline = received_wait_from(status, online + 1, is_offline, NULL, "the offline status", MQTT_WAIT_SECONDS);
	g_assert_true(((const MqttPeerMessage *)g_ptr_array_index(status->messages, offline))->retain);
	assert_schema("status-offline", g_ptr_array_index(status->payloads, offline));
	/*
	 * A DISCONNECT ("disconnected.", where a lost connection is "closed its connection." or
	 * "disconnected due to ..." as the socket ended), so the broker dropped the will.
	 */
	mosquitto_broker_wait_log(b, "Client " CLIENT_ID " disconnected.");
	g_assert_null(strstr(b->log->str + log_at, "Client " CLIENT_ID " closed its connection."));
	g_assert_null(strstr(b->log->str + log_at, "Client " CLIENT_ID " disconnected due to"));
	/* The marker is the next thing on the topic: no will came after healerd's own offline. */
	mqtt_peer_publish(peer, STATUS_TOPIC, "{\"marker\":true}", FALSE, NULL, NULL);
	g_assert_cmpuint(received_wait_from(status, offline + 1, is_marker, NULL, "the marker", MQTT_WAIT_SECONDS), ==,
	                 offline + 1);

	/* And a subscriber arriving now finds healerd's own offline status retained. */
	after_stop = mqtt_peer_new(b);
	stopped = received_new(after_stop, STATUS_TOPIC);
	mqtt_peer_subscribe(after_stop, STATUS_TOPIC);
	received_wait_from(stopped, 0, is_offline, NULL, "the retained offline status", MQTT_WAIT_SECONDS);
	g_assert_cmpstr(g_ptr_array_index(stopped->payloads, 0), ==, g_ptr_array_index(status->payloads, offline));
}

/* ---- nothing lost: the broker away in the middle of a heal ---- */

/*
 * kill -STOP, kill -CONT: while healerd is stopped the test's subscriber gets to the broker first, so
 * what healerd sends once it reconnects reaches it (events are not retained).
 */
static void
healerd_signal(HealerdProcess *healerd, int sig)
{
	g_subprocess_send_signal(healerd->process, sig);
}

static void
test_broker_restart_mid_heal(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "broker-restart", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) before = NULL, after = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events_before = NULL, events_after = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GPtrArray) rest = NULL, rest_late = NULL;
	g_auto(Device) dev = {0}, late = {0};
	/* 115200 baud: the heal's modules take seconds to cross, so the broker goes while they do. */
	const char *const paced[] = {"--baud", "115200", NULL};
	gint64 first = 0;
	Received *both[2];

	mosquitto_broker_start(b);
	before = mqtt_peer_new(b);
	events_before = received_new(before, EVENTS_TOPIC);
	mqtt_peer_subscribe(before, EVENTS_TOPIC);
	healerd = healerd_new(dir, b, NULL, NULL);
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", paced);
	healerd_process_start(healerd);

	/*
	 * The heal has started: the broker goes.  Not at the first heal-step but at the plan's last
	 * (they are published together): a broker without persistence loses what it acknowledged and
	 * had not yet delivered, and that is the broker's loss, not healerd's.  Now nothing is in
	 * flight; the heal's end is seconds of transfer away.
	 */
	{
		EventWant want = {"heal-started", dev.id};
		guint started = received_wait_from(events_before, 0, is_event, &want, "heal-started", heal_seconds());
		guint n = modules_in(received_object(events_before, started));
		received_wait_from(events_before, started + n, any, NULL, "the plan's last heal-step", heal_seconds());
		g_assert_cmpint(json_object_get_int(member(received_object(events_before, started + n), "step")), ==,
		                (int)n);
	}
	mosquitto_broker_stop(b);
	g_assert_cmpuint(healerd_process_count(healerd, words(dev.id, "heal succeeded")), ==, 0);
	/* Healing never waits for the broker: this heal ends, and a whole other one happens, while it is away. */
	start_sim(&late, dir, "late", "1.0.0", "heartbeat", NULL);
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, heal_ms());
	healerd_process_wait(healerd, words(late.id, "heal succeeded"), 1, heal_ms());

	healerd_signal(healerd, SIGSTOP);
	mosquitto_broker_start(b);
	after = mqtt_peer_new(b);
	events_after = received_new(after, EVENTS_TOPIC);
	mqtt_peer_subscribe(after, EVENTS_TOPIC);
	healerd_signal(healerd, SIGCONT);
	wait_event(events_after, "heal-succeeded", dev.id, heal_seconds());
	wait_event(events_after, "heal-succeeded", late.id, heal_seconds());

	/* Together: every event from seq 1, none missing, in order, a repeat only of what came before. */
	both[0] = events_before;
	both[1] = events_after;
	by_seq = assert_contiguous(both, 2, &first);
	g_assert_cmpint(first, ==, 1);
	rest = assert_heal_events(by_seq, first, dev.id);
	g_assert_cmpuint(rest->len, ==, 0);
	rest_late = assert_heal_events(by_seq, first, late.id);
	g_assert_cmpuint(rest_late->len, ==, 0);
	g_test_message("%u event(s) before the broker went, %u after it came back", events_before->objects->len,
	               events_after->objects->len);
	healerd_process_stop(healerd);
}

/*
 * The broker paused (SIGSTOP) while a heal's events go out, then killed: they were written to its
 * socket and never acknowledged, so healerd still holds them and sends them again once a broker is
 * back.  (The stop above lands when nothing is in flight; this one when everything is.)
 */
static void
test_broker_killed_with_events_in_flight(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "in-flight", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) before = NULL, after = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events_before = NULL, events_after = NULL, status = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GPtrArray) rest = NULL;
	g_auto(Device) dev = {0};
	gint64 first = 0;
	Received *both[2];

	mosquitto_broker_start(b);
	before = mqtt_peer_new(b);
	events_before = received_new(before, EVENTS_TOPIC);
	status = received_new(before, STATUS_TOPIC);
	mqtt_peer_subscribe(before, TOPICS "/#");
	healerd = healerd_new(dir, b, NULL, NULL);
	healerd_process_start(healerd);
	/* The start's events went out before the status (published in an idle after them). */
	received_wait_from(status, 0, is_online, NULL, "online", MQTT_WAIT_SECONDS);

	mosquitto_broker_pause(b);
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, heal_ms());
	/* healerd's connection is still up: the heal's events wait in the broker's socket, unread. */
	g_assert_cmpuint(healerd_process_count(healerd, words("mqtt: not connected", NULL)), ==, 0);
	mosquitto_broker_kill(b);

	healerd_signal(healerd, SIGSTOP);
	mosquitto_broker_start(b);
	after = mqtt_peer_new(b);
	events_after = received_new(after, EVENTS_TOPIC);
	mqtt_peer_subscribe(after, EVENTS_TOPIC);
	healerd_signal(healerd, SIGCONT);
	wait_event(events_after, "heal-succeeded", dev.id, heal_seconds());

	both[0] = events_before;
	both[1] = events_after;
	by_seq = assert_contiguous(both, 2, &first);
	g_assert_cmpint(first, ==, 1);
	rest = assert_heal_events(by_seq, first, dev.id);
	g_assert_cmpuint(rest->len, ==, 0);
	/* The first subscriber had none of the heal: all of it was resent. */
	received_pull(events_before);
	for (guint i = 0; i < events_before->objects->len; i++)
		g_assert_cmpstr(string_member(received_object(events_before, i), "device"), !=, dev.id);
	healerd_process_stop(healerd);
}

/* ---- nothing lost: healerd killed while the broker is away ---- */

/*
 * Waits until STATE/mqtt/outbox.log holds an `event` event of `device` (its payload's bytes: the
 * test reads the file healerd writes, never opens it as an outbox).
 */
static void
wait_in_outbox(const char *dir, const char *event, const char *device, guint ms)
{
	g_autofree char *path = g_build_filename(dir, "state", "mqtt", "outbox.log", NULL);
	g_autofree char *event_key = g_strdup_printf("\"event\":\"%s\"", event);
	g_autofree char *device_key = g_strdup_printf("\"device\":\"%s\"", device);
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;

	for (;;) {
		g_autofree char *data = NULL;
		gsize len = 0;

		if (g_file_get_contents(path, &data, &len, NULL)) {
			const char *at = data, *end = data + len;

			/* The event's key comes before its device's in a payload, within a record's length. */
			while ((at = memmem(at, (gsize)(end - at), event_key, strlen(event_key))) != NULL) {
				gsize rest = MIN((gsize)(end - at), 400);
				if (memmem(at, rest, device_key, strlen(device_key)) != NULL)
					return;
				at++;
			}
		}
		if (g_get_monotonic_time() > deadline)
			g_error("no %s event of %s in %s after %u ms", event, device, path, ms);
		g_usleep(20000);
	}
}

static void
test_killed_while_broker_away(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "killed-offline", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) before = NULL, after = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events_before = NULL, events_after = NULL, status = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GPtrArray) mine = NULL;
	g_auto(Device) dev = {0};
	gint64 first = 0;
	Received *both[2];

	mosquitto_broker_start(b);
	before = mqtt_peer_new(b);
	events_before = received_new(before, EVENTS_TOPIC);
	status = received_new(before, STATUS_TOPIC);
	mqtt_peer_subscribe(before, TOPICS "/#");
	healerd = healerd_new(dir, b, NULL, NULL);
	healerd_process_start(healerd);
	received_wait_from(status, 0, is_online, NULL, "online", MQTT_WAIT_SECONDS);

	/* The broker goes; a device comes and is healed; healerd is killed with its events in the outbox. */
	mosquitto_broker_stop(b);
	healerd_process_wait(healerd, words("mqtt: not connected", NULL), 1, 60000);
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, heal_ms());
	/*
	 * The heal's last event in the outbox, then the kill.  (The log line comes first: the event is
	 * on disk once the outbox's writer thread has synced it, a few milliseconds later, or many under
	 * valgrind; a kill inside that window loses it, as a power cut would.)
	 */
	wait_in_outbox(dir, "heal-succeeded", dev.id, heal_ms());
	healerd_process_kill(healerd);
	/* The broker was away all along: the first subscriber had none of them. */
	received_pull(events_before);
	for (guint i = 0; i < events_before->objects->len; i++)
		g_assert_cmpstr(string_member(received_object(events_before, i), "device"), !=, dev.id);

	/* The broker is back, a subscriber there first, then healerd. */
	mosquitto_broker_start(b);
	after = mqtt_peer_new(b);
	events_after = received_new(after, EVENTS_TOPIC);
	mqtt_peer_subscribe(after, EVENTS_TOPIC);
	healerd_process_start(healerd);
	/* The device is found again, healthy now: the new run's own event. */
	{
		EventWant want = {"device-attached", dev.id};
		guint i = received_wait_from(events_after, 0, is_event, &want, "the first device-attached",
		                             heal_seconds());
		received_wait_from(events_after, i + 1, is_event, &want, "the new run's device-attached",
		                   heal_seconds());
	}

	both[0] = events_before;
	both[1] = events_after;
	by_seq = assert_contiguous(both, 2, &first);
	g_assert_cmpint(first, ==, 1);
	/*
	 * seq goes on across the restart: the new run's events come after the killed run's heal-succeeded
	 * (device_events() is in seq order), the device found again, healthy.
	 */
	mine = assert_heal_events(by_seq, first, dev.id);
	g_assert_cmpuint(mine->len, >=, 1);
	g_assert_cmpstr(string_member(g_ptr_array_index(mine, 0), "event"), ==, "device-attached");
	for (guint i = 0; i < mine->len; i++)
		g_assert_cmpstr(string_member(g_ptr_array_index(mine, i), "event"), !=, "heal-started");
	healerd_process_stop(healerd);
}

/* ---- the bound: a full outbox drops its oldest events and says so ---- */

#define SMALL_OUTBOX_BYTES 65536

/*
 * Fills STATE/mqtt's outbox (as a long broker outage leaves it) with events of devices seen long
 * ago, up to SMALL_OUTBOX_BYTES; returns how many.
 */
static guint
fill_outbox(const char *dir)
{
	g_autofree char *outbox_dir = g_build_filename(dir, "state", "mqtt", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerMqttOutbox) outbox = healer_mqtt_outbox_open(outbox_dir, SMALL_OUTBOX_BYTES, &error);
	guint n = 0;

	g_assert_no_error(error);
	for (;; n++) {
		g_autofree char *id = g_strdup_printf("old-%03u", n);
		HealerEvent event = {.kind = HEALER_EVENT_DEVICE_ATTACHED,
		                     .device_id = id,
		                     .port = "/dev/ttyUSB0",
		                     .priority = G_LOG_LEVEL_INFO,
		                     .text = "a device attached while the broker was away, long ago"};
		guint64 seq = healer_mqtt_outbox_next_seq(outbox);
		g_autofree char *payload = healer_mqtt_event_payload(seq, g_get_real_time(), &event);

		if (healer_mqtt_outbox_pending_bytes(outbox) + strlen(payload) > SMALL_OUTBOX_BYTES)
			return n;
		g_assert_true(healer_mqtt_outbox_append(outbox, seq, payload, strlen(payload), NULL, &error));
		g_assert_no_error(error);
	}
}

/* The config's outbox-max-bytes=SMALL_OUTBOX_BYTES becomes 1 MiB. */
static void
raise_outbox_bound(HealerdProcess *healerd)
{
	g_autofree char *text = NULL;
	g_autofree char *small = g_strdup_printf("outbox-max-bytes=%u\n", SMALL_OUTBOX_BYTES);
	g_autoptr(GString) raised = NULL;

	g_assert_true(g_file_get_contents(healerd->config, &text, NULL, NULL));
	raised = g_string_new(text);
	g_assert_cmpuint(g_string_replace(raised, small, "outbox-max-bytes=1048576\n", 1), ==, 1);
	test_write_file(healerd->config, (const guint8 *)raised->str, raised->len);
}

static void
test_outbox_full(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "outbox-full", NULL);
	g_autofree char *mqtt_lines = g_strdup_printf("outbox-max-bytes=%u\n", SMALL_OUTBOX_BYTES);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GPtrArray) rest = NULL;
	g_auto(Device) dev = {0};
	EventWant succeeded = {"heal-succeeded", NULL}, attached = {"device-attached", NULL};
	gint64 first = 0, said_dropped = 0, last_notice = 0;
	guint notices = 0;
	guint filled;

	/* The broker is away (started once for its port): healerd starts with a full outbox and heals a
	 * device. */
	mosquitto_broker_start(b);
	healerd = healerd_new(dir, b, NULL, mqtt_lines);
	mosquitto_broker_stop(b);
	filled = fill_outbox(dir);
	g_test_message("outbox filled with %u events", filled);
	healerd_process_start(healerd);
	healerd_process_wait(healerd, words("mqtt: not connected", NULL), 1, 60000);
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, heal_ms());
	/* The journal says so, naming the bound. */
	healerd_process_wait(
	        healerd, words("the outbox is full (outbox-max-bytes=65536): dropped the", "oldest events"), 1, 60000);

	/*
	 * healerd stops (what it could not deliver stays in the outbox), the broker is back with a
	 * subscriber, then healerd starts again (so that nothing it publishes can come before the
	 * subscription): what is left arrives, in order, none missing.
	 */
	healerd_process_stop(healerd);
	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	events = received_new(peer, EVENTS_TOPIC);
	mqtt_peer_subscribe(peer, EVENTS_TOPIC);
	/* With room to spare this time, so that every drop is the first run's and told before its end. */
	raise_outbox_bound(healerd);
	healerd_process_start(healerd);
	succeeded.device = dev.id;
	attached.device = dev.id;
	{
		/* The new run's device-attached comes after every event of the first run. */
		guint i =
		        received_wait_from(events, 0, is_event, &attached, "the first device-attached", heal_seconds());
		i = received_wait_from(events, i + 1, is_event, &succeeded, "the heal's heal-succeeded",
		                       heal_seconds());
		received_wait_from(events, i + 1, is_event, &attached, "the new run's device-attached", heal_seconds());
	}
	by_seq = assert_contiguous(&events, 1, &first);

	/*
	 * The oldest went: the first to arrive is past 1, and the events-dropped events count exactly the
	 * ones before it (they are newer than every old event, so none of them was dropped itself).
	 */
	g_test_message("first seq received: %" G_GINT64_FORMAT, first);
	g_assert_cmpint(first, >, 1);
	for (gint64 seq = first;; seq++) {
		const char *payload = g_hash_table_lookup(by_seq, &seq);
		g_autoptr(json_object) o = NULL;

		if (payload == NULL)
			break;
		o = parse_json(payload);
		if (g_strcmp0(string_member(o, "event"), "events-dropped") != 0)
			continue;
		assert_schema("events-dropped", payload);
		notices++;
		g_assert_cmpint(json_object_get_int64(member(o, "count")), >=, 1);
		said_dropped += json_object_get_int64(member(o, "count"));
		last_notice = seq;
	}
	g_assert_cmpint(last_notice, >, (gint64)filled);
	g_assert_cmpint(said_dropped, ==, first - 1);
	/*
	 * In steps (the face's drop slack, 1 KiB at this bound): fewer notices than events dropped, and
	 * never a notice whose own append dropped another event (one notice per event dropped).
	 */
	g_assert_cmpuint(notices, <, said_dropped);
	/* The new run's heal is whole, after the old events that were kept. */
	rest = assert_heal_events(by_seq, first, dev.id);
	healerd_process_stop(healerd);
}

/* ---- commands: MQTT v5 request/response ---- */

/*
 * Publishes `payload` on cmd/VERB with REPLY_TOPIC as its response topic and `correlation` as its
 * correlation data; returns the reply (docs/mqtt.md's schema "reply"), which carries the same
 * correlation data.
 */
static json_object *
command(MqttPeer *peer, Received *replies, const char *verb, const char *payload, const char *correlation)
{
	g_autofree char *topic = g_strdup_printf("%s/cmd/%s", TOPICS, verb);
	g_autoptr(GBytes) data = g_bytes_new(correlation, strlen(correlation));
	const MqttPeerMessage *m;
	guint at;

	received_pull(replies);
	at = replies->messages->len;
	mqtt_peer_publish(peer, topic, payload, FALSE, REPLY_TOPIC, data);
	at = received_wait_from(replies, at, any, NULL, topic, MQTT_WAIT_SECONDS);
	m = g_ptr_array_index(replies->messages, at);
	g_test_message("%s %s -> %s", topic, payload, (char *)g_ptr_array_index(replies->payloads, at));
	g_assert_nonnull(m->correlation);
	g_assert_true(g_bytes_equal(m->correlation, data));
	g_assert_false(m->retain);
	assert_schema("reply", g_ptr_array_index(replies->payloads, at));
	return json_object_get(received_object(replies, at));
}

static void
assert_refused(json_object *reply, HealerError code, const char *says)
{
	g_assert_false(json_object_get_boolean(member(reply, "ok")));
	g_assert_cmpstr(string_member(reply, "error"), ==, healer_error_to_dbus_name(code));
	if (strstr(string_member(reply, "message"), says) == NULL)
		g_error("reply %s does not say \"%s\"", json_object_to_json_string(reply), says);
}

static void
test_commands(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "commands", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events = NULL, replies = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GPtrArray) rest = NULL;
	g_autofree char *heal = NULL, *carried_out = NULL;
	g_auto(Device) dev = {0};
	gint64 first = 0;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	events = received_new(peer, EVENTS_TOPIC);
	replies = received_new(peer, REPLY_TOPIC);
	mqtt_peer_subscribe(peer, EVENTS_TOPIC);
	mqtt_peer_subscribe(peer, REPLY_TOPIC);
	/* Heals only when asked to: the command starts it. */
	healerd = healerd_new(dir, b, "auto-heal=false\n", "accept-commands=true\n");
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_start(healerd);
	wait_event(events, "safe-mode-detected", dev.id, heal_seconds());

	heal = g_strdup_printf("{\"device\":\"%s\"}", dev.id);
	{
		g_autoptr(json_object) reply = command(peer, replies, "heal", heal, "request-1");
		g_assert_cmpstr(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN), ==,
		                "{\"ok\":true,\"result\":null}");
	}
	wait_event(events, "heal-succeeded", dev.id, heal_seconds());
	carried_out = g_strdup_printf("mqtt: command heal %s from %s/cmd/heal", dev.id, TOPICS);
	g_assert_cmpuint(healerd_process_count(healerd, words(carried_out, NULL)), ==, 1);
	{
		g_autoptr(json_object) reply = command(peer, replies, "status", "{}", "request-2");
		json_object *result = member(reply, "result");
		g_assert_true(json_object_get_boolean(member(reply, "ok")));
		assert_schema("status", json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN));
		g_assert_true(is_online_with(result, "{\"healthy\":1}"));
	}
	{
		/* An empty payload is {}. */
		g_autoptr(json_object) reply = command(peer, replies, "status", "", "request-3");
		g_assert_true(json_object_get_boolean(member(reply, "ok")));
	}
	{
		g_autoptr(json_object) reply = command(peer, replies, "reboot", "{}", "request-4");
		assert_refused(reply, HEALER_ERROR_NOT_FOUND, "unknown command \"reboot\"");
		g_assert_cmpstr(string_member(reply, "error"), ==, "io.healerd.Error.NotFound");
	}
	{
		g_autoptr(json_object) reply = command(peer, replies, "heal", "{\"device\":", "request-5");
		assert_refused(reply, HEALER_ERROR_INVALID_ARGUMENT, "heal: ");
		g_assert_cmpstr(string_member(reply, "error"), ==, "io.healerd.Error.InvalidArgument");
	}
	{
		/* A key the verb does not take. */
		g_autoptr(json_object) reply = command(peer, replies, "status", heal, "request-6");
		assert_refused(reply, HEALER_ERROR_INVALID_ARGUMENT, "device");
	}
	{
		g_autoptr(json_object) reply =
		        command(peer, replies, "heal", "{\"device\":\"e00fce68c2a7f3d1a4b5c6d9\"}", "request-7");
		assert_refused(reply, HEALER_ERROR_NOT_FOUND, "e00fce68c2a7f3d1a4b5c6d9");
	}
	/* One heal, the commanded one; the refused commands did nothing. */
	by_seq = assert_contiguous(&events, 1, &first);
	rest = assert_heal_events(by_seq, first, dev.id);
	g_assert_cmpuint(rest->len, ==, 0);
	/* In the journal, what was carried out (two heals and two status), not what could not be parsed. */
	g_assert_cmpuint(healerd_process_count(healerd, words("mqtt: command ", NULL)), ==, 4);
	g_assert_cmpuint(healerd_process_count(healerd, words("mqtt: command heal e00fce68c2a7f3d1a4b5c6d9", NULL)), ==,
	                 1);
	healerd_process_stop(healerd);
}

/* accept-commands off (the default): every command refused, saying why, and nothing done. */
static void
test_commands_off(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	SKIP_WITHOUT_DBUS();
	g_autofree char *dir = g_build_filename(tmpdir, "commands-off", NULL);
	g_auto(Bus) bus = {0};
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events = NULL, replies = NULL;
	g_autoptr(GHashTable) by_seq = NULL;
	g_autoptr(GPtrArray) rest = NULL;
	g_autofree char *heal = NULL;
	g_auto(Device) dev = {0};
	gint64 first = 0;

	/* First: it sets DBUS_SYSTEM_BUS_ADDRESS, which is no business of a process with threads (the peer's). */
	bus_start(&bus);
	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	events = received_new(peer, EVENTS_TOPIC);
	replies = received_new(peer, REPLY_TOPIC);
	mqtt_peer_subscribe(peer, EVENTS_TOPIC);
	mqtt_peer_subscribe(peer, REPLY_TOPIC);
	healerd = healerd_new(dir, b, "auto-heal=false\n", NULL);
	healerd->bus_args = g_strdup(""); /* the private system bus */
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_start(healerd);
	wait_event(events, "safe-mode-detected", dev.id, heal_seconds());
	bus_wait_for_healerd(&bus, 60000);

	heal = g_strdup_printf("{\"device\":\"%s\"}", dev.id);
	{
		g_autoptr(json_object) reply = command(peer, replies, "heal", heal, "request-1");
		assert_refused(reply, HEALER_ERROR_PERMISSION_DENIED, "[mqtt] accept-commands=false");
		g_assert_cmpstr(string_member(reply, "error"), ==, "io.healerd.Error.PermissionDenied");
	}
	{
		g_autoptr(json_object) reply = command(peer, replies, "status", "{}", "request-2");
		assert_refused(reply, HEALER_ERROR_PERMISSION_DENIED, "accept-commands");
	}
	/*
	 * The refused heal started nothing: a heal asked for now over D-Bus starts (a device being
	 * healed would answer Busy, exit 6), and its heal-started is the only one.
	 */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "heal", dev.id, NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
	}
	wait_event(events, "heal-succeeded", dev.id, heal_seconds());
	by_seq = assert_contiguous(&events, 1, &first);
	rest = assert_heal_events(by_seq, first, dev.id);
	g_assert_cmpuint(rest->len, ==, 0);
	g_assert_cmpuint(healerd_process_count(healerd, words("mqtt: command", NULL)), ==, 0);
	healerd_process_stop(healerd);
}

/* ---- refused credentials: healing goes on, healerctl status says why ---- */

static void
test_wrong_password(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	SKIP_WITHOUT_DBUS();
	g_autofree char *dir = g_build_filename(tmpdir, "wrong-password", NULL);
	g_autofree char *password_file = g_build_filename(tmpdir, "wrong-password.secret", NULL);
	g_autofree char *mqtt_lines = NULL, *where = NULL, *log = NULL;
	g_auto(Bus) bus = {0};
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(HealerdProcess) healerd = NULL;
	g_auto(Device) dev = {0};

	bus_start(&bus);
	mosquitto_broker_add_user(b, GATEWAY, "the-right-secret");
	mosquitto_broker_start(b);
	test_write_file(password_file, (const guint8 *)"a-wrong-secret\n", 15);
	g_assert_cmpint(g_chmod(password_file, 0600), ==, 0);
	mqtt_lines = g_strdup_printf("username=%s\npassword-file=%s\n", GATEWAY, password_file);
	healerd = healerd_new(dir, b, NULL, mqtt_lines);
	healerd->bus_args = g_strdup("");
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_start(healerd);

	/* Healing never waits for MQTT. */
	healerd_process_wait(healerd, words(dev.id, "heal succeeded"), 1, heal_ms());
	healerd_process_wait(healerd, words("mqtt: not connected", "not authorized"), 1, 60000);
	bus_wait_for_healerd(&bus, 60000);
	where = g_strdup_printf("not connected to 127.0.0.1:%d: connection refused: not authorized", b->port);
	{
		g_auto(TestRun) run = {0};
		g_auto(GStrv) lines = NULL;
		const char *mqtt = NULL;

		healerctl(&run, "status", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		lines = g_strsplit(run.out, "\n", -1);
		for (guint i = 0; lines[i] != NULL; i++) {
			if (g_str_has_prefix(lines[i], "MQTT:"))
				mqtt = lines[i];
		}
		g_assert_nonnull(mqtt);
		if (strstr(mqtt, where) == NULL)
			g_error("healerctl status: \"%s\" does not say \"%s\"", mqtt, where);
		g_assert_null(strstr(run.out, "a-wrong-secret"));
	}
	{
		g_auto(TestRun) run = {0};
		g_autoptr(json_object) status = NULL;

		healerctl(&run, "status", "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		status = parse_json(run.out);
		g_assert_nonnull(strstr(string_member(status, "mqtt"), where));
	}
	/* The password is never logged, by healerd or the broker. */
	g_assert_true(g_file_get_contents(healerd->log, &log, NULL, NULL));
	g_assert_null(strstr(log, "a-wrong-secret"));
	g_assert_null(strstr(b->log->str, "a-wrong-secret"));
	healerd_process_stop(healerd);
}

/* ---- TLS, the broker checked against a CA, healerd's client certificate checked by the broker ---- */

static void
test_tls(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "tls", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(Received) events = NULL, status = NULL;
	g_autofree char *mqtt_lines = NULL;
	g_auto(Device) dev = {0};

	mosquitto_broker_enable_tls(b, NULL);
	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	events = received_new(peer, EVENTS_TOPIC);
	status = received_new(peer, STATUS_TOPIC);
	mqtt_peer_subscribe(peer, TOPICS "/#");
	mqtt_lines =
	        g_strdup_printf("ca-file=%s\ncert-file=%s\nkey-file=%s\n", b->ca_file, b->client_cert, b->client_key);
	healerd = healerd_new(dir, b, NULL, mqtt_lines);
	{
		g_autofree char *config = NULL;
		g_assert_true(g_file_get_contents(healerd->config, &config, NULL, NULL));
		g_assert_nonnull(strstr(config, "\nbroker=mqtts://127.0.0.1:"));
	}
	start_sim(&dev, dir, "dev", "1.0.0", "heartbeat", NULL);
	healerd_process_start(healerd);
	wait_event(events, "heal-succeeded", dev.id, heal_seconds());
	received_wait_from(status, 0, is_online_with, "{\"healthy\":1}", "status with the device healthy",
	                   heal_seconds());
	healerd_process_wait(healerd, words("mqtt: connected to 127.0.0.1:", GATEWAY), 1, 10000);
	healerd_process_stop(healerd);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/mqtt/late-subscriber", test_late_subscriber);
	g_test_add_func("/mqtt/heal-events", test_heal_events);
	g_test_add_func("/mqtt/offline", test_offline);
	g_test_add_func("/mqtt/broker-restart-mid-heal", test_broker_restart_mid_heal);
	g_test_add_func("/mqtt/broker-killed-with-events-in-flight", test_broker_killed_with_events_in_flight);
	g_test_add_func("/mqtt/killed-while-broker-away", test_killed_while_broker_away);
	g_test_add_func("/mqtt/outbox-full", test_outbox_full);
	g_test_add_func("/mqtt/commands", test_commands);
	g_test_add_func("/mqtt/commands-off", test_commands_off);
	g_test_add_func("/mqtt/wrong-password", test_wrong_password);
	g_test_add_func("/mqtt/tls", test_tls);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
