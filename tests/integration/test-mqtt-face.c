/*
 * The MQTT face (agent/daemon/mqtt-face.c) in-process, against a private mosquitto
 * (tests/tools/mosquitto-harness.h), where an end-to-end test cannot put healerd at will: what it
 * does at the very moment of a clean stop.  (test-mqtt runs the real healerd.)
 */
#include <glib/gstdio.h>
#include <string.h>
#include <json.h>

#include "config.h"
#include "engine.h"
#include "events.h"
#include "json-autoptr.h"
#include "mosquitto-harness.h"
#include "mqtt-face.h"
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

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/mqtt-face/stop-is-the-last-word", test_stop_is_the_last_word);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
