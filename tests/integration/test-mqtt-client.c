/*
 * The MQTT client (agent/daemon/mqtt-client.c) against a real mosquitto on loopback, one broker per
 * test (tests/tools/mosquitto-harness.h): publishing with PUBACKs, MQTT v5 request/response, the
 * reconnect after the broker went, refused credentials, TLS with a client certificate and the
 * broker's name checked, the will and the clean stop.  Every wait is for an event, bounded by a
 * generous limit that fails the test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "healer-error.h"
#include "mosquitto-harness.h"
#include "mqtt-client.h"
#include "test-util.h"

/* What the client's callbacks saw. */
typedef struct {
	HealerMqttClient *client; /* for replies from the message callback */
	guint connected;
	guint disconnected;
	char *why;         /* the last `disconnected` reason */
	GArray *published; /* int: mids */
	guint messages;
	char *topic; /* the last message's */
	char *payload;
	char *response_topic;
	GBytes *correlation;
	gboolean reply; /* answer each command on its response topic with "ok" and its correlation */
} Recorder;

static void
on_connected(gpointer user_data)
{
	Recorder *r = user_data;

	r->connected++;
}

static void
on_disconnected(const char *why, gpointer user_data)
{
	Recorder *r = user_data;

	g_assert_nonnull(why);
	g_free(r->why);
	r->why = g_strdup(why);
	r->disconnected++;
}

static void
on_published(int mid, gpointer user_data)
{
	Recorder *r = user_data;

	g_array_append_val(r->published, mid);
}

static void
on_message(const char *topic, const void *payload, gsize len, const char *response_topic, GBytes *correlation,
           gpointer user_data)
{
	Recorder *r = user_data;

	g_free(r->topic);
	g_free(r->payload);
	g_free(r->response_topic);
	g_clear_pointer(&r->correlation, g_bytes_unref);
	r->topic = g_strdup(topic);
	r->payload = g_strndup(payload, len);
	r->response_topic = g_strdup(response_topic);
	r->correlation = correlation != NULL ? g_bytes_ref(correlation) : NULL;
	r->messages++;
	/* From inside libmosquitto's callback: queued, written once the socket is writable. */
	if (r->reply && response_topic != NULL)
		g_assert_true(
		        healer_mqtt_client_publish(r->client, response_topic, "ok", 2, 1, FALSE, correlation, NULL));
}

static const HealerMqttClientCallbacks callbacks = {
        .connected = on_connected,
        .disconnected = on_disconnected,
        .published = on_published,
        .message = on_message,
};

static Recorder *
recorder_new(void)
{
	Recorder *r = g_new0(Recorder, 1);

	r->published = g_array_new(FALSE, FALSE, sizeof(int));
	return r;
}

static void
recorder_free(Recorder *r)
{
	g_free(r->why);
	g_array_unref(r->published);
	g_free(r->topic);
	g_free(r->payload);
	g_free(r->response_topic);
	g_clear_pointer(&r->correlation, g_bytes_unref);
	g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Recorder, recorder_free)

/* ---- waits ---- */

typedef struct {
	guint *counter;
	guint at_least;
} CountWait;

static gboolean
count_reached(gpointer data)
{
	CountWait *w = data;

	return *w->counter >= w->at_least;
}

static void
wait_count(guint *counter, guint at_least, const char *what)
{
	mqtt_wait_until(count_reached, &(CountWait){counter, at_least}, what);
}

typedef struct {
	GArray *mids;
	int mid;
} MidWait;

static gboolean
mid_published(gpointer data)
{
	MidWait *w = data;

	for (guint i = 0; i < w->mids->len; i++)
		if (g_array_index(w->mids, int, i) == w->mid)
			return TRUE;
	return FALSE;
}

/* The broker logged `text` `times` times: "CLIENT-ID 1 FILTER" is a subscription it took. */
typedef struct {
	MosquittoBroker *b;
	const char *text;
	guint times;
} LogCount;

static gboolean
log_count_reached(gpointer data)
{
	LogCount *w = data;
	guint n = 0;

	for (const char *p = w->b->log->str; (p = strstr(p, w->text)) != NULL; p++)
		n++;
	return n >= w->times;
}

static void
wait_subscribed(MosquittoBroker *b, const char *client_id, const char *filter, guint times)
{
	g_autofree char *line = g_strdup_printf("\n%s 1 %s\n", client_id, filter);
	g_autofree char *what = g_strdup_printf("subscription %u of %s to %s", times, client_id, filter);

	mqtt_wait_until(log_count_reached, &(LogCount){b, line, times}, what);
}

/* ---- configuration ---- */

static int client_serial;

/* The [mqtt] fields the client reads, owned by the test (never given to healer_config_free). */
static void
config_init(HealerConfig *c, MosquittoBroker *b, const char *host)
{
	memset(c, 0, sizeof *c);
	c->mqtt_broker = mosquitto_broker_url(b, host);
	c->mqtt_host = g_strdup(host);
	c->mqtt_port = (guint)b->port;
	c->mqtt_tls = b->tls;
	c->mqtt_client_id = g_strdup_printf("healerd-test-%d", ++client_serial);
	c->mqtt_keepalive_s = 60;
	if (b->tls) {
		c->mqtt_ca_file = g_strdup(b->ca_file);
		c->mqtt_cert_file = g_strdup(b->client_cert);
		c->mqtt_key_file = g_strdup(b->client_key);
	}
}

static void
config_clear(HealerConfig *c)
{
	g_free(c->mqtt_broker);
	g_free(c->mqtt_host);
	g_free(c->mqtt_client_id);
	g_free(c->mqtt_username);
	g_free(c->mqtt_password_file);
	g_free(c->mqtt_ca_file);
	g_free(c->mqtt_cert_file);
	g_free(c->mqtt_key_file);
}

static char *
write_password_file(const char *dir, const char *text)
{
	char *path = g_build_filename(dir, "mqtt-password", NULL);

	test_write_file(path, (const guint8 *)text, strlen(text));
	return path;
}

static HealerMqttClient *
client_new(const HealerConfig *config, Recorder *r)
{
	g_autoptr(GError) error = NULL;
	HealerMqttClient *client = healer_mqtt_client_new(config, &callbacks, r, &error);

	g_assert_no_error(error);
	g_assert_nonnull(client);
	r->client = client;
	return client;
}

#define SKIP_WITHOUT_MOSQUITTO()                                                                                       \
	do {                                                                                                           \
		if (!mosquitto_broker_available()) {                                                                   \
			g_test_skip(                                                                                   \
			        "mosquitto, mosquitto_passwd or openssl missing (scripts/setup.sh installs them)");    \
			return;                                                                                        \
		}                                                                                                      \
	} while (0)

/* ---- tests ---- */

/* Connect, publish QoS 1: the PUBACK names the mid publish() gave; the peer gets the message. */
static void
test_publish(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerMqttClient) client = NULL;
	HealerConfig config;
	const MqttPeerMessage *m;
	int mid = 0, mid0 = 0;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, "healerd/gw/#");
	config_init(&config, b, "127.0.0.1");
	client = client_new(&config, r);

	/* Nothing is queued in the client: before the CONNACK a publish is refused. */
	g_assert_false(healer_mqtt_client_publish(client, "healerd/gw/events", "x", 1, 1, FALSE, NULL, &mid));
	healer_mqtt_client_start(client);
	wait_count(&r->connected, 1, "connected");
	g_assert_true(healer_mqtt_client_is_connected(client));
	g_assert_null(healer_mqtt_client_get_last_error(client));

	g_assert_true(healer_mqtt_client_publish(client, "healerd/gw/events", "{\"seq\":1}", 9, 1, FALSE, NULL, &mid));
	g_assert_cmpint(mid, >, 0);
	mqtt_wait_until(mid_published, &(MidWait){r->published, mid}, "PUBACK");
	m = mqtt_peer_next(peer, "healerd/gw/events");
	g_assert_cmpmem(g_bytes_get_data(m->payload, NULL), g_bytes_get_size(m->payload), "{\"seq\":1}", 9);
	g_assert_false(m->retain);
	g_assert_null(m->correlation);

	/* QoS 0: delivered, and no `published` (that is for PUBACKs). */
	g_assert_true(healer_mqtt_client_publish(client, "healerd/gw/devices/d1", "{}", 2, 0, TRUE, NULL, &mid0));
	m = mqtt_peer_next(peer, "healerd/gw/devices/d1");
	g_assert_true(m->retain);
	g_assert_cmpuint(r->published->len, ==, 1);
	g_assert_cmpuint(r->disconnected, ==, 0);
	config_clear(&config);
}

/* A command in, its reply out: MQTT v5 response topic and correlation data round trip. */
static void
test_request_response(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerMqttClient) client = NULL;
	static const guint8 corr[] = {0x00, 0x01, 0xfe, 0xff, 'i', 'd'};
	g_autoptr(GBytes) correlation = g_bytes_new_static(corr, sizeof corr);
	HealerConfig config;
	const MqttPeerMessage *reply;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, "operator/replies/#");
	config_init(&config, b, "127.0.0.1");
	client = client_new(&config, r);
	r->reply = TRUE;
	/* Before start: remembered, sent after the CONNACK. */
	healer_mqtt_client_subscribe(client, "healerd/gw/cmd/#", 1);
	healer_mqtt_client_start(client);
	wait_count(&r->connected, 1, "connected");
	wait_subscribed(b, config.mqtt_client_id, "healerd/gw/cmd/#", 1);

	mqtt_peer_publish(peer, "healerd/gw/cmd/status", "{\"device\":\"d1\"}", FALSE, "operator/replies/7",
	                  correlation);
	reply = mqtt_peer_next(peer, "operator/replies/7");
	g_assert_cmpuint(r->messages, ==, 1);
	g_assert_cmpstr(r->topic, ==, "healerd/gw/cmd/status");
	g_assert_cmpstr(r->payload, ==, "{\"device\":\"d1\"}");
	g_assert_cmpstr(r->response_topic, ==, "operator/replies/7");
	g_assert_nonnull(r->correlation);
	g_assert_true(g_bytes_equal(r->correlation, correlation));
	g_assert_cmpmem(g_bytes_get_data(reply->payload, NULL), g_bytes_get_size(reply->payload), "ok", 2);
	g_assert_nonnull(reply->correlation);
	g_assert_true(g_bytes_equal(reply->correlation, correlation));

	/* A message without them: NULL for both. */
	mqtt_peer_publish(peer, "healerd/gw/cmd/refresh", "{}", FALSE, NULL, NULL);
	wait_count(&r->messages, 2, "the second command");
	g_assert_cmpstr(r->topic, ==, "healerd/gw/cmd/refresh");
	g_assert_null(r->response_topic);
	g_assert_null(r->correlation);
	config_clear(&config);
}

/* The broker goes and comes back on the same port: the client reconnects by itself and subscribes again. */
static void
test_reconnect(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerMqttClient) client = NULL;
	g_autofree char *refused = NULL;
	HealerConfig config;
	int mid = 0;

	mosquitto_broker_start(b);
	config_init(&config, b, "127.0.0.1");
	client = client_new(&config, r);
	healer_mqtt_client_subscribe(client, "healerd/gw/cmd/#", 1);
	healer_mqtt_client_start(client);
	wait_count(&r->connected, 1, "connected");
	wait_subscribed(b, config.mqtt_client_id, "healerd/gw/cmd/#", 1);

	mosquitto_broker_stop(b);
	wait_count(&r->disconnected, 1, "disconnected after the broker stopped");
	g_assert_false(healer_mqtt_client_is_connected(client));
	g_assert_false(healer_mqtt_client_publish(client, "healerd/gw/events", "x", 1, 1, FALSE, NULL, &mid));
	g_test_message("lost: %s", r->why);
	g_assert_nonnull(strstr(r->why, "127.0.0.1"));
	/* It keeps trying while the broker is away, each attempt refused. */
	wait_count(&r->disconnected, 2, "a failed reconnect");
	refused = g_strdup_printf("cannot connect to 127.0.0.1:%d: Connection refused", b->port);
	g_assert_cmpstr(r->why, ==, refused);
	g_assert_cmpstr(healer_mqtt_client_get_last_error(client), ==, refused);
	g_assert_cmpuint(r->connected, ==, 1);

	mosquitto_broker_start(b);
	wait_count(&r->connected, 2, "reconnected after the broker came back");
	g_assert_null(healer_mqtt_client_get_last_error(client));
	wait_subscribed(b, config.mqtt_client_id, "healerd/gw/cmd/#", 2);
	peer = mqtt_peer_new(b);
	mqtt_peer_publish(peer, "healerd/gw/cmd/heal", "{}", FALSE, NULL, NULL);
	wait_count(&r->messages, 1, "a command through the restored subscription");
	g_assert_cmpstr(r->topic, ==, "healerd/gw/cmd/heal");
	config_clear(&config);
}

/* The password is read from password-file; a wrong one is refused, said so, and retried. */
static void
test_credentials(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) good = recorder_new();
	g_autoptr(Recorder) bad = recorder_new();
	g_autoptr(HealerMqttClient) client = NULL;
	g_autoptr(HealerMqttClient) refused = NULL;
	HealerConfig config, wrong;
	g_autofree char *good_dir = test_tmpdir_new();
	g_autofree char *bad_dir = test_tmpdir_new();

	mosquitto_broker_add_user(b, "gateway", "s3cret pass");
	mosquitto_broker_start(b);

	config_init(&config, b, "127.0.0.1");
	config.mqtt_username = g_strdup("gateway");
	/* The first line without its newline; the rest of the file is not the password's. */
	config.mqtt_password_file = write_password_file(good_dir, "s3cret pass\nsecond line\n");
	client = client_new(&config, good);
	healer_mqtt_client_start(client);
	wait_count(&good->connected, 1, "connected with the right password");

	config_init(&wrong, b, "127.0.0.1");
	wrong.mqtt_username = g_strdup("gateway");
	wrong.mqtt_password_file = write_password_file(bad_dir, "wrong\n");
	refused = client_new(&wrong, bad);
	healer_mqtt_client_start(refused);
	wait_count(&bad->disconnected, 1, "refused");
	g_test_message("refused: %s", bad->why);
	g_assert_cmpstr(bad->why, ==, "connection refused: not authorized");
	g_assert_cmpstr(healer_mqtt_client_get_last_error(refused), ==, "connection refused: not authorized");
	/* Retried with the backoff, refused again. */
	wait_count(&bad->disconnected, 2, "refused again");
	g_assert_cmpuint(bad->connected, ==, 0);
	g_assert_false(healer_mqtt_client_is_connected(refused));
	/* The password is never in a message. */
	g_assert_null(strstr(b->log->str, "wrong"));

	test_tmpdir_free(g_steal_pointer(&good_dir));
	test_tmpdir_free(g_steal_pointer(&bad_dir));
	config_clear(&config);
	config_clear(&wrong);
}

/* What new() refuses, naming the key and the file. */
static void
test_new_errors(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *missing = g_build_filename(dir, "nothing-here", NULL);
	g_autofree char *empty = write_password_file(dir, "\nsecond\n");
	Recorder r = {0};
	HealerConfig c = {0};
	g_autoptr(GError) error = NULL;

	c.mqtt_broker = (char *)"mqtts://broker.example:8883";
	c.mqtt_host = (char *)"broker.example";
	c.mqtt_port = 8883;
	c.mqtt_keepalive_s = 60;

	c.mqtt_password_file = missing;
	g_assert_null(healer_mqtt_client_new(&c, &callbacks, &r, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "password-file"));
	g_assert_nonnull(strstr(error->message, missing));
	g_clear_error(&error);

	c.mqtt_password_file = empty;
	g_assert_null(healer_mqtt_client_new(&c, &callbacks, &r, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, empty));
	g_clear_error(&error);
	c.mqtt_password_file = NULL;

	c.mqtt_tls = TRUE;
	c.mqtt_ca_file = missing;
	g_assert_null(healer_mqtt_client_new(&c, &callbacks, &r, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "ca-file"));
	g_assert_nonnull(strstr(error->message, missing));
	g_clear_error(&error);

	/* A file that is not a certificate. */
	c.mqtt_ca_file = empty;
	g_assert_null(healer_mqtt_client_new(&c, &callbacks, &r, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_test_message("%s", error->message);
	g_assert_nonnull(strstr(error->message, "ca-file: cannot load"));
	g_clear_error(&error);
	c.mqtt_ca_file = NULL;

	c.mqtt_cert_file = empty;
	g_assert_null(healer_mqtt_client_new(&c, &callbacks, &r, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "key-file"));
	g_clear_error(&error);

	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Nothing listens: refused, said so, and no callback before start() returns. */
static void
test_refused_port(void)
{
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(HealerMqttClient) client = NULL;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_autofree char *expected = NULL;
	HealerConfig c = {0};

	/* Bound and not listening: connections are refused, and no other program can take the port. */
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &len), ==, 0);
	c.mqtt_broker = (char *)"mqtt://127.0.0.1";
	c.mqtt_host = (char *)"127.0.0.1";
	c.mqtt_port = ntohs(addr.sin_port);
	c.mqtt_keepalive_s = 60;
	client = client_new(&c, r);
	healer_mqtt_client_start(client);
	g_assert_cmpuint(r->disconnected, ==, 0);
	wait_count(&r->disconnected, 1, "the refusal");
	expected = g_strdup_printf("cannot connect to 127.0.0.1:%u: Connection refused", c.mqtt_port);
	g_assert_cmpstr(r->why, ==, expected);
	g_assert_cmpstr(healer_mqtt_client_get_last_error(client), ==, expected);
	close(fd);
}

/* A name that does not resolve: said so, retried (.invalid never resolves, RFC 6761). */
static void
test_resolve_failure(void)
{
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(HealerMqttClient) client = NULL;
	HealerConfig c = {0};

	c.mqtt_broker = (char *)"mqtt://healerd-test.invalid:1883";
	c.mqtt_host = (char *)"healerd-test.invalid";
	c.mqtt_port = 1883;
	c.mqtt_keepalive_s = 60;
	client = client_new(&c, r);
	healer_mqtt_client_start(client);
	wait_count(&r->disconnected, 1, "the lookup's failure");
	g_test_message("%s", r->why);
	g_assert_true(g_str_has_prefix(r->why, "cannot resolve healerd-test.invalid: "));
	g_assert_null(strstr(r->why, "Error resolving"));
	wait_count(&r->disconnected, 2, "the second lookup's failure");
	g_assert_cmpuint(r->connected, ==, 0);
}

/* mqtts:// with the CA and a client certificate the broker requires. */
static void
test_tls(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerMqttClient) client = NULL;
	HealerConfig config;
	int mid = 0;

	mosquitto_broker_enable_tls(b, NULL);
	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, "healerd/#");
	config_init(&config, b, "127.0.0.1");
	client = client_new(&config, r);
	healer_mqtt_client_start(client);
	wait_count(&r->connected, 1, "connected over TLS");
	g_assert_true(healer_mqtt_client_publish(client, "healerd/gw/events", "tls", 3, 1, FALSE, NULL, &mid));
	mqtt_wait_until(mid_published, &(MidWait){r->published, mid}, "PUBACK over TLS");
	mqtt_peer_next(peer, "healerd/gw/events");
	config_clear(&config);
}

/*
 * The broker's certificate names "localhost" only.  As mqtts://localhost the client resolves the
 * name itself and connects to an address, yet checks the certificate against "localhost"; as
 * mqtts://127.0.0.1 the same certificate is refused.
 */
static void
test_tls_host_name(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) by_name = recorder_new();
	g_autoptr(Recorder) by_address = recorder_new();
	g_autoptr(HealerMqttClient) named = NULL;
	g_autoptr(HealerMqttClient) addressed = NULL;
	HealerConfig config, config_address;
	g_autofree char *expected = NULL;

	mosquitto_broker_enable_tls(b, "DNS:localhost");
	mosquitto_broker_start(b);

	config_init(&config, b, "localhost");
	named = client_new(&config, by_name);
	healer_mqtt_client_start(named);
	wait_count(&by_name->connected, 1, "connected to localhost");

	config_init(&config_address, b, "127.0.0.1");
	addressed = client_new(&config_address, by_address);
	healer_mqtt_client_start(addressed);
	wait_count(&by_address->disconnected, 1, "refused: the certificate does not name 127.0.0.1");
	g_test_message("%s", by_address->why);
	expected = g_strdup_printf("TLS with 127.0.0.1:%d failed: the broker's certificate was refused: "
	                           "IP address mismatch",
	                           b->port);
	g_assert_cmpstr(by_address->why, ==, expected);
	g_assert_cmpuint(by_address->connected, ==, 0);
	config_clear(&config);
	config_clear(&config_address);
}

/* A TLS server on 127.0.0.1 that records the server name (SNI) of one handshake, in its own thread. */
typedef struct {
	int listen_fd;
	int port;
	SSL_CTX *ctx;
	GThread *thread;
	GMutex lock;
	char *server_name; /* "(none)" when the ClientHello had none; NULL until a handshake */
} SniServer;

static int
sni_record(SSL *ssl, int *alert, void *arg)
{
	SniServer *s = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	g_mutex_lock(&s->lock);
	if (s->server_name == NULL)
		s->server_name = g_strdup(name != NULL ? name : "(none)");
	g_mutex_unlock(&s->lock);
	g_main_context_wakeup(NULL);
	return SSL_TLSEXT_ERR_OK;
}

static gpointer
sni_serve(gpointer data)
{
	SniServer *s = data;
	int fd = accept(s->listen_fd, NULL, NULL);
	SSL *ssl;

	g_assert_cmpint(fd, >=, 0);
	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	/* Done when the ClientHello was read; the outcome does not matter here. */
	SSL_accept(ssl);
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static SniServer *
sni_server_new(MosquittoBroker *b)
{
	SniServer *s = g_new0(SniServer, 1);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	g_autofree char *cert = g_build_filename(b->dir, "server.pem", NULL);
	g_autofree char *key = g_build_filename(b->dir, "server.key", NULL);

	g_mutex_init(&s->lock);
	s->ctx = SSL_CTX_new(TLS_server_method());
	g_assert_cmpint(SSL_CTX_use_certificate_chain_file(s->ctx, cert), ==, 1);
	g_assert_cmpint(SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM), ==, 1);
	SSL_CTX_set_tlsext_servername_callback(s->ctx, sni_record);
	SSL_CTX_set_tlsext_servername_arg(s->ctx, s);
	s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(listen(s->listen_fd, 4), ==, 0);
	g_assert_cmpint(getsockname(s->listen_fd, (struct sockaddr *)&addr, &len), ==, 0);
	s->port = ntohs(addr.sin_port);
	s->thread = g_thread_new("sni-server", sni_serve, s);
	return s;
}

static gboolean
sni_seen(gpointer data)
{
	SniServer *s = data;
	gboolean seen;

	g_mutex_lock(&s->lock);
	seen = s->server_name != NULL;
	g_mutex_unlock(&s->lock);
	return seen;
}

static void
sni_server_free(SniServer *s)
{
	g_thread_join(s->thread);
	close(s->listen_fd);
	SSL_CTX_free(s->ctx);
	g_free(s->server_name);
	g_mutex_clear(&s->lock);
	g_free(s);
}

/*
 * The server name sent is the configured host, though the client connects to the address it
 * resolved (libmosquitto would send the address it was given).
 */
static void
test_tls_server_name(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	HealerMqttClient *client;
	SniServer *server;
	HealerConfig config;

	/* The broker only for its certificates. */
	mosquitto_broker_enable_tls(b, "DNS:localhost");
	server = sni_server_new(b);
	b->port = server->port;
	config_init(&config, b, "localhost");
	client = client_new(&config, r);
	healer_mqtt_client_start(client);
	mqtt_wait_until(sni_seen, server, "a ClientHello");
	healer_mqtt_client_free(client);
	g_assert_cmpstr(server->server_name, ==, "localhost");
	sni_server_free(server);
	config_clear(&config);
}

/* A CA that did not sign the broker's certificate: refused, said so, retried. */
static void
test_tls_wrong_ca(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(HealerMqttClient) client = NULL;
	g_autofree char *prefix = NULL;
	HealerConfig config;

	mosquitto_broker_enable_tls(b, NULL);
	mosquitto_broker_start(b);
	config_init(&config, b, "127.0.0.1");
	g_free(config.mqtt_ca_file);
	config.mqtt_ca_file = mosquitto_broker_make_ca(b, "other-ca");
	client = client_new(&config, r);
	healer_mqtt_client_start(client);
	wait_count(&r->disconnected, 1, "TLS refused");
	g_test_message("%s", r->why);
	/* OpenSSL's words follow ("self-signed certificate in certificate chain": the broker sends its CA too). */
	prefix = g_strdup_printf("TLS with 127.0.0.1:%d failed: the broker's certificate was refused: ", b->port);
	g_assert_true(g_str_has_prefix(r->why, prefix));
	g_assert_nonnull(strstr(r->why + strlen(prefix), "certificate"));
	g_assert_cmpstr(healer_mqtt_client_get_last_error(client), ==, r->why);
	wait_count(&r->disconnected, 2, "TLS refused again");
	g_assert_cmpuint(r->connected, ==, 0);
	config_clear(&config);
}

/* Without a client certificate the broker ends the handshake: a TLS failure, said so. */
static void
test_tls_no_client_certificate(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(HealerMqttClient) client = NULL;
	g_autofree char *prefix = NULL;
	HealerConfig config;

	mosquitto_broker_enable_tls(b, NULL);
	mosquitto_broker_start(b);
	config_init(&config, b, "127.0.0.1");
	g_clear_pointer(&config.mqtt_cert_file, g_free);
	g_clear_pointer(&config.mqtt_key_file, g_free);
	client = client_new(&config, r);
	healer_mqtt_client_start(client);
	wait_count(&r->disconnected, 1, "TLS refused for want of a certificate");
	g_test_message("%s", r->why);
	prefix = g_strdup_printf("TLS with 127.0.0.1:%d failed: ", b->port);
	/* OpenSSL's reason ("tlsv13 alert certificate required") when the broker's alert was read before
	 * the reset; "the broker ended the connection" when the CONNECT's write met the reset first. */
	g_assert_true(g_str_has_prefix(r->why, prefix));
	g_assert_cmpuint(r->connected, ==, 0);
	config_clear(&config);
}

/* A connection that dies without DISCONNECT (the client freed while connected): the broker publishes the will. */
static void
test_will(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(MqttPeer) peer = NULL;
	HealerMqttClient *client;
	HealerConfig config;
	const MqttPeerMessage *m;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, "healerd/gw/status");
	config_init(&config, b, "127.0.0.1");
	client = client_new(&config, r);
	healer_mqtt_client_set_will(client, "healerd/gw/status", "{\"online\":false}", TRUE);
	healer_mqtt_client_start(client);
	wait_count(&r->connected, 1, "connected");
	g_assert_cmpuint(mqtt_peer_count(peer, "healerd/gw/status"), ==, 0);

	healer_mqtt_client_free(client);
	m = mqtt_peer_next(peer, "healerd/gw/status");
	g_assert_cmpmem(g_bytes_get_data(m->payload, NULL), g_bytes_get_size(m->payload), "{\"online\":false}", 16);
	g_assert_true(m->retain);
	config_clear(&config);
}

/* stop(): the final retained message is acknowledged before it returns, and DISCONNECT drops the will. */
static void
test_stop(void)
{
	SKIP_WITHOUT_MOSQUITTO();
	g_autoptr(MosquittoBroker) b = mosquitto_broker_new();
	g_autoptr(Recorder) r = recorder_new();
	g_autoptr(MqttPeer) peer = NULL;
	g_autoptr(HealerMqttClient) client = NULL;
	g_autofree char *clean = NULL;
	HealerConfig config;
	const MqttPeerMessage *m;

	mosquitto_broker_start(b);
	peer = mqtt_peer_new(b);
	mqtt_peer_subscribe(peer, "healerd/gw/status");
	config_init(&config, b, "127.0.0.1");
	client = client_new(&config, r);
	healer_mqtt_client_set_will(client, "healerd/gw/status", "{\"online\":false,\"will\":true}", TRUE);
	healer_mqtt_client_start(client);
	wait_count(&r->connected, 1, "connected");

	/* Generous: the PUBACK comes within milliseconds, stop() returns as soon as it does. */
	healer_mqtt_client_stop(client, "healerd/gw/status", "{\"online\":false}", 30000);
	g_assert_false(healer_mqtt_client_is_connected(client));
	/* Its own message is not reported as the caller's. */
	g_assert_cmpuint(r->published->len, ==, 0);
	m = mqtt_peer_next(peer, "healerd/gw/status");
	g_assert_cmpmem(g_bytes_get_data(m->payload, NULL), g_bytes_get_size(m->payload), "{\"online\":false}", 16);
	g_assert_true(m->retain);

	/* The broker took a DISCONNECT ("disconnected", where a lost connection "closed its connection"),
	 * so it dropped the will; a marker after that is the next thing on the topic. */
	clean = g_strdup_printf("Client %s disconnected.", config.mqtt_client_id);
	mosquitto_broker_wait_log(b, clean);
	mqtt_peer_publish(peer, "healerd/gw/status", "marker", FALSE, NULL, NULL);
	m = mqtt_peer_next(peer, "healerd/gw/status");
	g_assert_cmpmem(g_bytes_get_data(m->payload, NULL), g_bytes_get_size(m->payload), "marker", 6);
	g_assert_cmpuint(mqtt_peer_count(peer, "healerd/gw/status"), ==, 2);
	g_assert_cmpuint(r->disconnected, ==, 0);

	/* Stopped for good: start() does nothing. */
	healer_mqtt_client_start(client);
	g_assert_false(healer_mqtt_client_is_connected(client));
	config_clear(&config);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mqtt-client/publish", test_publish);
	g_test_add_func("/mqtt-client/request-response", test_request_response);
	g_test_add_func("/mqtt-client/reconnect", test_reconnect);
	g_test_add_func("/mqtt-client/credentials", test_credentials);
	g_test_add_func("/mqtt-client/new-errors", test_new_errors);
	g_test_add_func("/mqtt-client/refused-port", test_refused_port);
	g_test_add_func("/mqtt-client/resolve-failure", test_resolve_failure);
	g_test_add_func("/mqtt-client/tls", test_tls);
	g_test_add_func("/mqtt-client/tls/host-name", test_tls_host_name);
	g_test_add_func("/mqtt-client/tls/server-name", test_tls_server_name);
	g_test_add_func("/mqtt-client/tls/wrong-ca", test_tls_wrong_ca);
	g_test_add_func("/mqtt-client/tls/no-client-certificate", test_tls_no_client_certificate);
	g_test_add_func("/mqtt-client/will", test_will);
	g_test_add_func("/mqtt-client/stop", test_stop);
	return g_test_run();
}
