/* A private mosquitto broker for tests, and an MQTT peer (mosquitto-harness.h). */
#include "mosquitto-harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-util.h"

/* The brokers alive, for their logs when a wait fails. */
static GPtrArray *live_brokers;

/* ---- waiting ---- */

static gboolean
on_wait_timeout(gpointer user_data)
{
	*(gboolean *)user_data = TRUE;
	return G_SOURCE_REMOVE;
}

void
mqtt_wait_until(gboolean (*done)(gpointer data), gpointer data, const char *what)
{
	mqtt_wait_until_within(done, data, what, MQTT_WAIT_SECONDS);
}

void
mqtt_wait_until_within(gboolean (*done)(gpointer data), gpointer data, const char *what, guint seconds)
{
	GSource *timer = g_timeout_source_new_seconds(seconds);
	gboolean timed_out = FALSE;

	g_source_set_callback(timer, on_wait_timeout, &timed_out, NULL);
	g_source_attach(timer, NULL);
	while (!done(data) && !timed_out)
		g_main_context_iteration(NULL, TRUE);
	g_source_destroy(timer);
	g_source_unref(timer);
	if (done(data))
		return;
	for (guint i = 0; live_brokers != NULL && i < live_brokers->len; i++) {
		MosquittoBroker *b = g_ptr_array_index(live_brokers, i);
		g_test_message("mosquitto on port %d said:\n%s", b->port, b->log->str);
	}
	g_error("no %s within %u s", what, seconds);
}

/* ---- commands ---- */

static void
run_tool(const char *dir, const char *const *argv)
{
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s %s failed:\n%s%s", argv[0], argv[1], out, err);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);

	test_write_file(path, (const guint8 *)text, strlen(text));
}

gboolean
mosquitto_broker_available(void)
{
	g_autofree char *openssl = g_find_program_in_path("openssl");
	g_autofree char *passwd = g_find_program_in_path("mosquitto_passwd");
	g_autofree char *broker = g_find_program_in_path("mosquitto");

	/* Debian puts the broker in /usr/sbin, outside a user's PATH. */
	if (broker == NULL && g_file_test("/usr/sbin/mosquitto", G_FILE_TEST_IS_EXECUTABLE))
		broker = g_strdup("/usr/sbin/mosquitto");
	return openssl != NULL && passwd != NULL && broker != NULL;
}

static const char *
broker_path(void)
{
	static char *path;

	if (path == NULL && (path = g_find_program_in_path("mosquitto")) == NULL)
		path = g_strdup("/usr/sbin/mosquitto");
	return path;
}

/* ---- certificates (openssl req / x509) ---- */

char *
mosquitto_broker_make_ca(MosquittoBroker *b, const char *name)
{
	g_autofree char *config = g_strdup_printf("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n"
	                                          "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
	                                          "keyUsage = critical,keyCertSign,cRLSign\n"
	                                          "subjectKeyIdentifier = hash\n",
	                                          name);
	g_autofree char *config_name = g_strdup_printf("%s.cnf", name);
	g_autofree char *key = g_strdup_printf("%s.key", name);
	g_autofree char *pem = g_strdup_printf("%s.pem", name);

	write_text(b->dir, config_name, config);
	run_tool(b->dir, (const char *[]){"openssl", "req", "-x509", "-config", config_name, "-extensions", "v3_ca",
	                                  "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
	                                  "-keyout", key, "-out", pem, "-days", "2", NULL});
	return g_build_filename(b->dir, pem, NULL);
}

/* NAME.pem and NAME.key for subject CN `cn` with extensions `ext`, signed by the CA "ca". */
static void
make_leaf(MosquittoBroker *b, const char *name, const char *cn, const char *ext)
{
	g_autofree char *cnf = g_strdup_printf("%s.cnf", name);
	g_autofree char *ext_name = g_strdup_printf("%s.ext", name);
	g_autofree char *key = g_strdup_printf("%s.key", name);
	g_autofree char *csr = g_strdup_printf("%s.csr", name);
	g_autofree char *pem = g_strdup_printf("%s.pem", name);
	g_autofree char *req = g_strdup_printf("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = %s\n", cn);

	write_text(b->dir, cnf, req);
	write_text(b->dir, ext_name, ext);
	run_tool(b->dir, (const char *[]){"openssl", "req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt",
	                                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, NULL});
	run_tool(b->dir, (const char *[]){"openssl", "x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key",
	                                  "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", ext_name, NULL});
}

void
mosquitto_broker_enable_tls(MosquittoBroker *b, const char *server_san)
{
	g_autofree char *server_ext = g_strdup_printf("subjectAltName = %s\n"
	                                              "basicConstraints = CA:FALSE\n"
	                                              "keyUsage = critical,digitalSignature\n"
	                                              "extendedKeyUsage = serverAuth\n"
	                                              "authorityKeyIdentifier = keyid\n",
	                                              server_san != NULL ? server_san : "DNS:localhost,IP:127.0.0.1");

	g_assert_cmpint(b->pid, ==, 0);
	b->tls = TRUE;
	b->ca_file = mosquitto_broker_make_ca(b, "ca");
	make_leaf(b, "server", "mosquitto test broker", server_ext);
	make_leaf(b, "client", "healerd test client",
	          "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
	          "extendedKeyUsage = clientAuth\nauthorityKeyIdentifier = keyid\n");
	b->client_cert = g_build_filename(b->dir, "client.pem", NULL);
	b->client_key = g_build_filename(b->dir, "client.key", NULL);
}

void
mosquitto_broker_add_user(MosquittoBroker *b, const char *user, const char *password)
{
	if (b->password_file == NULL) {
		/* -c makes the file; the peer's own user first. */
		b->password_file = g_build_filename(b->dir, "passwd", NULL);
		run_tool(b->dir, (const char *[]){"mosquitto_passwd", "-b", "-c", b->password_file, "peer",
		                                  MQTT_PEER_PASSWORD, NULL});
	}
	run_tool(b->dir, (const char *[]){"mosquitto_passwd", "-b", b->password_file, user, password, NULL});
}

/* ---- the broker ---- */

MosquittoBroker *
mosquitto_broker_new(void)
{
	MosquittoBroker *b = g_new0(MosquittoBroker, 1);

	b->dir = test_tmpdir_new();
	b->log = g_string_new(NULL);
	if (live_brokers == NULL)
		live_brokers = g_ptr_array_new();
	g_ptr_array_add(live_brokers, b);
	return b;
}

static int
free_loopback_port(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* The kernel's pick, released again: mosquitto cannot listen on port 0 and say which it got. */
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &len), ==, 0);
	close(fd);
	return ntohs(addr.sin_port);
}

static void
write_config(MosquittoBroker *b)
{
	g_autoptr(GString) conf = g_string_new(NULL);
	g_autofree char *path = g_build_filename(b->dir, "mosquitto.conf", NULL);

	g_string_append(conf, "per_listener_settings false\n"
	                      "persistence false\n"
	                      "log_dest stderr\n"
	                      "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
	                      "log_type subscribe\n"
	                      "connection_messages true\n"
	                      "log_timestamp false\n");
	/* As root it would switch to the user "mosquitto", who may not read the test's directory. */
	if (geteuid() == 0)
		g_string_append(conf, "user root\n");
	if (b->password_file != NULL)
		g_string_append_printf(conf, "allow_anonymous false\npassword_file %s\n", b->password_file);
	else
		g_string_append(conf, "allow_anonymous true\n");
	g_string_append_printf(conf, "listener %d 127.0.0.1\n", b->port);
	if (b->tls)
		g_string_append_printf(conf,
		                       "cafile %s\ncertfile %s/server.pem\nkeyfile %s/server.key\n"
		                       "require_certificate true\n",
		                       b->ca_file, b->dir, b->dir);
	test_write_file(path, (const guint8 *)conf->str, conf->len);
}

static gboolean
on_broker_log(GIOChannel *channel, GIOCondition condition, gpointer user_data)
{
	MosquittoBroker *b = user_data;
	int fd = g_io_channel_unix_get_fd(channel);
	char buf[4096];

	(void)condition;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			g_string_append_len(b->log, buf, n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return G_SOURCE_CONTINUE;
		/* End of file: it exited. */
		b->log_watch = 0;
		return G_SOURCE_REMOVE;
	}
}

static void
on_broker_exit(GPid pid, int status, gpointer user_data)
{
	MosquittoBroker *b = user_data;

	(void)status;
	g_spawn_close_pid(pid);
	b->pid = 0;
	g_main_context_wakeup(NULL);
}

typedef struct {
	MosquittoBroker *b;
	gsize from; /* where this start's log begins */
} Starting;

static gboolean
broker_started(gpointer data)
{
	Starting *s = data;

	/* "mosquitto version 2.0.11 running": its listener is open.  Or it exited. */
	return s->b->pid == 0 || strstr(s->b->log->str + s->from, " running\n") != NULL;
}

static void
spawn_broker(MosquittoBroker *b)
{
	g_autofree char *conf = g_build_filename(b->dir, "mosquitto.conf", NULL);
	const char *argv[] = {broker_path(), "-c", conf, NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GIOChannel) channel = NULL;
	int err_fd = -1;

	g_spawn_async_with_pipes(b->dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
	                         test_die_with_parent, NULL, &b->pid, NULL, NULL, &err_fd, &error);
	if (error != NULL)
		g_error("cannot start mosquitto (is the mosquitto package installed?): %s", error->message);
	g_unix_set_fd_nonblocking(err_fd, TRUE, NULL);
	channel = g_io_channel_unix_new(err_fd);
	g_io_channel_set_close_on_unref(channel, TRUE);
	b->log_watch = g_io_add_watch(channel, G_IO_IN | G_IO_HUP | G_IO_ERR, on_broker_log, b);
	g_child_watch_add(b->pid, on_broker_exit, b);
}

/* Exited, and its last words on stderr read. */
static gboolean
broker_gone(gpointer data)
{
	MosquittoBroker *b = data;

	return b->pid == 0 && b->log_watch == 0;
}

void
mosquitto_broker_start(MosquittoBroker *b)
{
	gboolean fixed_port = b->port != 0;

	g_assert_cmpint(b->pid, ==, 0);
	for (int attempt = 0;; attempt++) {
		Starting s = {b, b->log->len};

		if (!fixed_port)
			b->port = free_loopback_port();
		write_config(b);
		spawn_broker(b);
		mqtt_wait_until(broker_started, &s, "mosquitto running");
		if (b->pid != 0)
			return;
		mqtt_wait_until(broker_gone, b, "mosquitto exit");
		/* Another program took the port meanwhile: a new one, unless it must stay. */
		g_test_message("mosquitto exited at start on port %d:\n%s", b->port, b->log->str + s.from);
		if (fixed_port || attempt == 10)
			g_error("mosquitto did not start on port %d", b->port);
	}
}

void
mosquitto_broker_stop(MosquittoBroker *b)
{
	if (b->pid == 0)
		return;
	kill(b->pid, SIGTERM);
	mqtt_wait_until(broker_gone, b, "mosquitto exit");
}

void
mosquitto_broker_kill(MosquittoBroker *b)
{
	g_assert_cmpint(b->pid, !=, 0);
	kill(b->pid, SIGKILL);
	mqtt_wait_until(broker_gone, b, "mosquitto exit");
}

static gboolean
broker_stopped(gpointer data)
{
	MosquittoBroker *b = data;
	g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)b->pid);
	g_autofree char *stat = NULL;
	const char *after_name;

	/* "PID (mosquitto) T ...": the state follows the name's closing parenthesis. */
	if (!g_file_get_contents(path, &stat, NULL, NULL) || (after_name = strrchr(stat, ')')) == NULL)
		return FALSE;
	return after_name[1] == ' ' && after_name[2] == 'T';
}

static gboolean
on_pause_poll(gpointer user_data)
{
	(void)user_data;
	/* Nothing announces a stop: look again each millisecond (mqtt_wait_until wakes on a source). */
	return G_SOURCE_CONTINUE;
}

void
mosquitto_broker_pause(MosquittoBroker *b)
{
	guint poll_id;

	g_assert_cmpint(b->pid, !=, 0);
	g_assert_cmpint(kill(b->pid, SIGSTOP), ==, 0);
	poll_id = g_timeout_add(1, on_pause_poll, NULL);
	mqtt_wait_until(broker_stopped, b, "mosquitto stopped (SIGSTOP)");
	g_source_remove(poll_id);
}

void
mosquitto_broker_resume(MosquittoBroker *b)
{
	g_assert_cmpint(b->pid, !=, 0);
	g_assert_cmpint(kill(b->pid, SIGCONT), ==, 0);
}

void
mosquitto_broker_free(MosquittoBroker *b)
{
	if (b == NULL)
		return;
	if (b->pid != 0) {
		kill(b->pid, SIGKILL);
		mqtt_wait_until(broker_gone, b, "mosquitto exit");
	}
	g_ptr_array_remove(live_brokers, b);
	test_tmpdir_free(b->dir);
	g_free(b->password_file);
	g_free(b->ca_file);
	g_free(b->client_cert);
	g_free(b->client_key);
	g_string_free(b->log, TRUE);
	g_free(b);
}

char *
mosquitto_broker_url(const MosquittoBroker *b, const char *host)
{
	return g_strdup_printf("%s://%s:%d", b->tls ? "mqtts" : "mqtt", host, b->port);
}

typedef struct {
	MosquittoBroker *b;
	const char *text;
} LogWait;

static gboolean
log_has(gpointer data)
{
	LogWait *w = data;

	return strstr(w->b->log->str, w->text) != NULL;
}

void
mosquitto_broker_wait_log(MosquittoBroker *b, const char *text)
{
	g_autofree char *what = g_strdup_printf("\"%s\" in mosquitto's log", text);

	mqtt_wait_until(log_has, &(LogWait){b, text}, what);
}

/* ---- the peer ---- */

struct _MqttPeer {
	struct mosquitto *mosq;
	GMutex lock;       /* what libmosquitto's thread writes: */
	int connack;       /* -1 until the CONNACK */
	GHashTable *acked; /* mids of SUBACKs and PUBACKs */
	GPtrArray *messages;
	GHashTable *taken; /* topic -> how many mqtt_peer_next() returned */
};

static void
message_free(gpointer data)
{
	MqttPeerMessage *m = data;

	g_free(m->topic);
	g_bytes_unref(m->payload);
	g_free(m->response_topic);
	if (m->correlation != NULL)
		g_bytes_unref(m->correlation);
	g_free(m);
}

static void
peer_on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	MqttPeer *p = obj;

	(void)mosq;
	(void)flags;
	(void)props;
	g_mutex_lock(&p->lock);
	p->connack = rc;
	g_mutex_unlock(&p->lock);
	g_main_context_wakeup(NULL);
}

static void
peer_on_ack(MqttPeer *p, int mid)
{
	g_mutex_lock(&p->lock);
	g_hash_table_add(p->acked, GINT_TO_POINTER(mid));
	g_mutex_unlock(&p->lock);
	g_main_context_wakeup(NULL);
}

static void
peer_on_publish(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *props)
{
	(void)mosq;
	(void)reason;
	(void)props;
	peer_on_ack(obj, mid);
}

static void
peer_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                  const mosquitto_property *props)
{
	(void)mosq;
	(void)props;
	for (int i = 0; i < count; i++)
		g_assert_cmpint(granted[i], <, 0x80);
	peer_on_ack(obj, mid);
}

static void
peer_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *message,
                const mosquitto_property *props)
{
	MqttPeer *p = obj;
	MqttPeerMessage *m = g_new0(MqttPeerMessage, 1);
	void *data = NULL;
	uint16_t len = 0;

	(void)mosq;
	m->topic = g_strdup(message->topic);
	m->payload = g_bytes_new(message->payload, (gsize)message->payloadlen);
	m->retain = message->retain;
	mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &m->response_topic, false);
	if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &data, &len, false) != NULL)
		m->correlation = g_bytes_new(data, len);
	free(data);
	g_mutex_lock(&p->lock);
	g_ptr_array_add(p->messages, m);
	g_mutex_unlock(&p->lock);
	g_main_context_wakeup(NULL);
}

static gboolean
peer_connected(gpointer data)
{
	MqttPeer *p = data;
	gboolean done;

	g_mutex_lock(&p->lock);
	done = p->connack >= 0;
	g_mutex_unlock(&p->lock);
	return done;
}

MqttPeer *
mqtt_peer_new(MosquittoBroker *b)
{
	static gsize init;
	static int serial;
	MqttPeer *p = g_new0(MqttPeer, 1);
	g_autofree char *id = g_strdup_printf("test-peer-%d-%d", (int)getpid(), ++serial);
	mosquitto_property *props = NULL;

	if (g_once_init_enter(&init)) {
		mosquitto_lib_init();
		g_once_init_leave(&init, 1);
	}
	g_mutex_init(&p->lock);
	p->connack = -1;
	p->acked = g_hash_table_new(NULL, NULL);
	p->messages = g_ptr_array_new_with_free_func(message_free);
	p->taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/*
	 * A session that outlives its connection (MQTT v5: clean start off, an expiry): should the
	 * peer's connection drop (under valgrind libmosquitto's pselect() can fail, and its thread
	 * reconnects), the broker keeps its subscriptions and queues what came meanwhile, as a real
	 * consumer's session would, instead of a silent gap in what the test receives.
	 */
	p->mosq = mosquitto_new(id, false, p);
	g_assert_nonnull(p->mosq);
	mosquitto_int_option(p->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	if (b->tls) {
		g_assert_cmpint(mosquitto_tls_set(p->mosq, b->ca_file, NULL, b->client_cert, b->client_key, NULL), ==,
		                MOSQ_ERR_SUCCESS);
		/* The CA is checked; the name is not (some tests give the broker a certificate for another). */
		mosquitto_tls_insecure_set(p->mosq, true);
	}
	if (b->password_file != NULL)
		mosquitto_username_pw_set(p->mosq, "peer", MQTT_PEER_PASSWORD);
	mosquitto_connect_v5_callback_set(p->mosq, peer_on_connect);
	mosquitto_publish_v5_callback_set(p->mosq, peer_on_publish);
	mosquitto_subscribe_v5_callback_set(p->mosq, peer_on_subscribe);
	mosquitto_message_v5_callback_set(p->mosq, peer_on_message);
	/* The test's own client: its blocking connect to 127.0.0.1 is fine here. */
	g_assert_cmpint(mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600), ==, 0);
	g_assert_cmpint(mosquitto_connect_bind_v5(p->mosq, "127.0.0.1", b->port, 60, NULL, props), ==,
	                MOSQ_ERR_SUCCESS);
	mosquitto_property_free_all(&props);
	g_assert_cmpint(mosquitto_loop_start(p->mosq), ==, MOSQ_ERR_SUCCESS);
	mqtt_wait_until(peer_connected, p, "CONNACK for the test's peer");
	g_assert_cmpint(p->connack, ==, 0);
	return p;
}

typedef struct {
	MqttPeer *p;
	int mid;
} AckWait;

static gboolean
peer_acked(gpointer data)
{
	AckWait *w = data;
	gboolean done;

	g_mutex_lock(&w->p->lock);
	done = g_hash_table_contains(w->p->acked, GINT_TO_POINTER(w->mid));
	g_mutex_unlock(&w->p->lock);
	return done;
}

void
mqtt_peer_subscribe(MqttPeer *p, const char *filter)
{
	AckWait w = {p, 0};

	g_assert_cmpint(mosquitto_subscribe_v5(p->mosq, &w.mid, filter, 1, MQTT_SUB_OPT_RETAIN_AS_PUBLISHED, NULL), ==,
	                MOSQ_ERR_SUCCESS);
	mqtt_wait_until(peer_acked, &w, "SUBACK for the test's peer");
}

void
mqtt_peer_publish(MqttPeer *p, const char *topic, const char *payload, gboolean retain, const char *response_topic,
                  GBytes *correlation)
{
	mosquitto_property *props = NULL;
	AckWait w = {p, 0};

	if (response_topic != NULL)
		g_assert_cmpint(mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, response_topic), ==, 0);
	if (correlation != NULL)
		g_assert_cmpint(mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA,
		                                              g_bytes_get_data(correlation, NULL),
		                                              (uint16_t)g_bytes_get_size(correlation)),
		                ==, 0);
	g_assert_cmpint(mosquitto_publish_v5(p->mosq, &w.mid, topic, (int)strlen(payload), payload, 1, retain, props),
	                ==, MOSQ_ERR_SUCCESS);
	mosquitto_property_free_all(&props);
	mqtt_wait_until(peer_acked, &w, "PUBACK for the test's peer");
}

guint
mqtt_peer_count(MqttPeer *p, const char *topic)
{
	guint n = 0;

	g_mutex_lock(&p->lock);
	for (guint i = 0; i < p->messages->len; i++) {
		MqttPeerMessage *m = g_ptr_array_index(p->messages, i);
		if (strcmp(m->topic, topic) == 0)
			n++;
	}
	g_mutex_unlock(&p->lock);
	return n;
}

typedef struct {
	MqttPeer *p;
	const char *topic;
	guint want;
} CountWait;

static gboolean
peer_has(gpointer data)
{
	CountWait *w = data;

	return mqtt_peer_count(w->p, w->topic) >= w->want;
}

const MqttPeerMessage *
mqtt_peer_next(MqttPeer *p, const char *topic)
{
	guint taken = GPOINTER_TO_UINT(g_hash_table_lookup(p->taken, topic));
	g_autofree char *what = g_strdup_printf("message %u on %s", taken + 1, topic);
	const MqttPeerMessage *found = NULL;
	guint n = 0;

	mqtt_wait_until(peer_has, &(CountWait){p, topic, taken + 1}, what);
	g_hash_table_insert(p->taken, g_strdup(topic), GUINT_TO_POINTER(taken + 1));
	g_mutex_lock(&p->lock);
	for (guint i = 0; i < p->messages->len && found == NULL; i++) {
		MqttPeerMessage *m = g_ptr_array_index(p->messages, i);
		if (strcmp(m->topic, topic) == 0 && n++ == taken)
			found = m;
	}
	g_mutex_unlock(&p->lock);
	return found;
}

void
mqtt_peer_free(MqttPeer *p)
{
	if (p == NULL)
		return;
	mosquitto_disconnect(p->mosq);
	mosquitto_loop_stop(p->mosq, false);
	mosquitto_destroy(p->mosq);
	g_hash_table_unref(p->acked);
	g_ptr_array_unref(p->messages);
	g_hash_table_unref(p->taken);
	g_mutex_clear(&p->lock);
	g_free(p);
}
