/*
 * The MQTT face (agent/daemon/mqtt-face.c) in-process, against a private mosquitto
 * (tests/tools/mosquitto-harness.h), where an end-to-end test cannot put healerd at will: what it
 * does at the very moment of a clean stop, and with an event the disk changed in its outbox.
 * (test-mqtt runs the real healerd.)
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <string.h>
#include <json.h>

#include "config.h"
#include "engine.h"
#include "events.h"
#include "json-autoptr.h"
#include "mosquitto-harness.h"
#include "mqtt-face.h"
#include "mqtt-outbox-log.h"
#include "mqtt-outbox.h"
#include "store.h"
#include "supply.h"
#include "test-util.h"

#define STATUS_TOPIC "healerd/gw-face/status"

static char *tmpdir;

#define SKIP_WITHOUT_MOSQUITTO()                                                                                       \
	do {                                                                                                           \
		if (!mosquitto_broker_available()) {                                                                   \
			g_test_skip(                                                                                   \
			        "mosquitto, mosquitto_passwd or openssl missing (scripts/setup.sh installs them)");    \
			return;                                                                                        \
		}                                                                                                      \
	} while (0)

/* Whether a status payload says "online": true. */
#define MARKER "{\"online\":true,\"marker\":true}"

static gboolean
is_marker(const MqttPeerMessage *m)
{
	return g_bytes_get_size(m->payload) == strlen(MARKER) &&
	       memcmp(g_bytes_get_data(m->payload, NULL), MARKER, strlen(MARKER)) == 0;
}

static gboolean
says_online(const MqttPeerMessage *m)
{
	g_autofree char *text = g_strndup(g_bytes_get_data(m->payload, NULL), g_bytes_get_size(m->payload));
	g_autoptr(json_object) o = json_tokener_parse(text);
	json_object *online = NULL;

	g_assert_nonnull(o);
	g_assert_true(json_object_object_get_ex(o, "online", &online));
	return json_object_get_boolean(online);
}

/*
 * A clean stop while a status is due (a change just happened, its idle not run yet) and events are
 * in flight: the client runs the main loop while it waits for the offline status's PUBACK, but
 * nothing may follow "offline" on the status topic, or the broker would retain "online" for a
 * gateway that is gone.
 */
static void
test_stop_is_the_last_word(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "stop", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL, late = NULL;
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(HealerMqttFace) face = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	const MqttPeerMessage *m;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, STATUS_TOPIC);
	g_assert_cmpint(g_mkdir_with_parents(state, 0755), ==, 0);
	text = g_strdup_printf("[daemon]\nstate-directory=%s\n[mqtt]\nbroker=mqtt://127.0.0.1:%d\ngateway-id=gw-face\n",
	                       state, b->port);
	config = healer_config_load_from_data("test.conf", text, strlen(text), &error);
	g_assert_no_error(error);
	face = healer_mqtt_face_new(config, healer_events(), &error);
	g_assert_no_error(error);
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	healer_mqtt_face_start(face, engine, store, supply, NULL);
	m = mqtt_peer_next(peer, STATUS_TOPIC);
	g_assert_true(says_online(m));

	/* The store gains a module (the status's count differs), and the change is announced: a status is due. */
	{
		g_autofree char *module =
		        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "1.0.0", "system-part1.bin", NULL);
		healer_store_import_file(store, module, NULL, &error);
		g_assert_no_error(error);
	}
	healer_emit_event(.kind = HEALER_EVENT_SOURCES_CHANGED);
	/*
	 * The broker stopped (SIGSTOP): no PUBACK can end the stop's wait early, so the loop runs, with
	 * the status's idle, until the wait is over; what the face sent meanwhile reaches the broker
	 * once it goes on, in order.
	 */
	mosquitto_broker_pause(b);
	healer_mqtt_face_stop(face, 2000);
	mosquitto_broker_resume(b);

	/*
	 * The status the store's change made may have gone out before the stop began (the harness's
	 * pause runs the main loop while it waits for the broker to stop): that one is fine.  Then
	 * "offline", and nothing after it (the marker below).
	 */
	m = mqtt_peer_next(peer, STATUS_TOPIC);
	if (says_online(m))
		m = mqtt_peer_next(peer, STATUS_TOPIC);
	g_assert_false(says_online(m));
	g_assert_true(m->retain);
	/*
	 * Up to the marker, nothing but "offline": the broker's will may say it once more (the stop's
	 * wait ran out while the broker was stopped), but no "online" may follow it.
	 */
	mqtt_peer_publish(peer, STATUS_TOPIC, MARKER, FALSE, NULL, NULL);
	for (m = mqtt_peer_next(peer, STATUS_TOPIC); !is_marker(m); m = mqtt_peer_next(peer, STATUS_TOPIC))
		g_assert_false(says_online(m));
	/* What the broker retains is "offline". */
	late = mqtt_peer_new(b);
	mqtt_peer_subscribe(late, STATUS_TOPIC);
	m = mqtt_peer_next(late, STATUS_TOPIC);
	g_assert_false(says_online(m));

	g_clear_pointer(&face, healer_mqtt_face_free);
	g_clear_pointer(&engine, healer_engine_free);
	while (g_main_context_iteration(NULL, FALSE))
		;
}

#define EVENTS_TOPIC  "healerd/gw-face/events"
#define EVENTS_MARKER "{\"marker\":true}"

static void
on_note(const HealerEvent *event, gpointer user_data)
{
	if (event->kind == HEALER_EVENT_NOTE && event->text != NULL && strstr(event->text, "cannot be read back"))
		g_ptr_array_add(user_data, g_strdup(event->text));
}

/*
 * An event the disk changed while it waited in the outbox (read back, it fails its CRC) is given up
 * with a journal record naming it, and the ones after it are not held up behind it; it counts as
 * delivered, so it does not come back after a restart.
 */
static void
test_unreadable_record(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autofree char *dir = g_build_filename(tmpdir, "unreadable", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *outbox_dir = g_build_filename(state, "mqtt", NULL);
	g_autofree char *log_path = g_build_filename(outbox_dir, "outbox.log", NULL);
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(HealerMqttFace) face = NULL;
	g_autoptr(HealerMqttOutbox) outbox = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) got = g_string_new(NULL);
	g_autofree char *text = NULL;
	guint note_subscription;
	gsize record_size = 0;

	/* Five events waiting from an earlier run; the third one's payload changes on disk while they wait. */
	outbox = healer_mqtt_outbox_open(outbox_dir, 1 << 20, &error);
	g_assert_no_error(error);
	for (guint64 seq = 1; seq <= 5; seq++) {
		g_autofree char *payload = g_strdup_printf(
		        "{\"seq\":%" G_GUINT64_FORMAT ",\"n\":\"event-%" G_GUINT64_FORMAT "\"}", seq, seq);
		g_assert_true(healer_mqtt_outbox_append(outbox, seq, payload, strlen(payload), NULL, &error));
		record_size = strlen(payload) + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
	}
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, EVENTS_TOPIC);
	note_subscription = healer_event_stream_subscribe(healer_events(), on_note, notes);
	/* The face's warning is what this test provokes (it is checked on the event stream). */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	text = g_strdup_printf("[daemon]\nstate-directory=%s\n[mqtt]\nbroker=mqtt://127.0.0.1:%d\ngateway-id=gw-face\n",
	                       state, b->port);
	config = healer_config_load_from_data("test.conf", text, strlen(text), &error);
	g_assert_no_error(error);
	/* The face opens the outbox (all five whole then); the change comes before it connects. */
	face = healer_mqtt_face_new(config, healer_events(), &error);
	g_assert_no_error(error);
	{
		int fd = open(log_path, O_WRONLY);
		g_assert_cmpint(fd, >=, 0);
		g_assert_cmpint(pwrite(fd, "X", 1, (off_t)(8 + 2 * record_size + 16 + 3)), ==, 1);
		close(fd);
	}
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	healer_mqtt_face_start(face, engine, store, supply, NULL);

	/* What arrives of the five, up to the test's marker published after the last of them. */
	for (;;) {
		const MqttPeerMessage *m = mqtt_peer_next(peer, EVENTS_TOPIC);
		g_autofree char *payload = g_strndup(g_bytes_get_data(m->payload, NULL), g_bytes_get_size(m->payload));
		const char *n = strstr(payload, "event-");

		if (strcmp(payload, EVENTS_MARKER) == 0)
			break;
		if (n != NULL) {
			g_string_append_printf(got, "%s%.7s", got->len ? " " : "", n);
			if (strncmp(n, "event-5", 7) == 0)
				mqtt_peer_publish(peer, EVENTS_TOPIC, EVENTS_MARKER, FALSE, NULL, NULL);
		}
	}
	g_assert_cmpstr(got->str, ==, "event-1 event-2 event-4 event-5");
	g_assert_cmpuint(notes->len, ==, 1);
	g_test_message("%s", (char *)g_ptr_array_index(notes, 0));
	g_assert_nonnull(strstr(g_ptr_array_index(notes, 0), "mqtt: event 3 cannot be read back from the outbox"));
	g_assert_nonnull(strstr(g_ptr_array_index(notes, 0), "record 3 changed on disk (its CRC-32 does not match)"));

	/* Stopped (the writer records what is outstanding): none of the five is pending any more. */
	healer_mqtt_face_stop(face, 2000);
	g_clear_pointer(&face, healer_mqtt_face_free);
	healer_event_stream_unsubscribe(healer_events(), note_subscription);
	outbox = healer_mqtt_outbox_open(outbox_dir, 1 << 20, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < healer_mqtt_outbox_pending(outbox); i++) {
		guint64 seq = 0;
		g_assert_true(healer_mqtt_outbox_peek(outbox, i, &seq, NULL));
		g_assert_cmpuint(seq, >, 5);
	}
	g_clear_pointer(&engine, healer_engine_free);
	while (g_main_context_iteration(NULL, FALSE))
		;
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/mqtt-face/stop-is-the-last-word", test_stop_is_the_last_word);
	g_test_add_func("/mqtt-face/unreadable-record", test_unreadable_record);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
