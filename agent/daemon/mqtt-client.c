/*
 * mqtt-client.h on libmosquitto 2.0, driven by the GLib main loop.
 *
 * libmosquitto is used without its thread and without its select() loop: its socket is a GSource
 * (readable always, writable while mosquitto_want_write()), mosquitto_loop_read()/_write() run when
 * the socket is ready and mosquitto_loop_misc() (the keepalive's PINGREQ and its timeout) on a timer
 * of a quarter of the keepalive (15 s by default: an idle gateway is not woken every second; a ping
 * goes out at most a quarter of the keepalive late, well inside the 1.5 keepalives a broker waits).  Nothing here
 * blocks:
 *
 * - mosquitto_connect_async() connects without waiting (a non-blocking connect()), but it looks the
 *   host up with a plain getaddrinfo(), which blocks for a host name (DNS).  So a name is resolved
 *   first with GResolver (its own thread) and libmosquitto is given the numeric addresses, one after
 *   the other; an address literal (127.0.0.1, ::1) goes straight to libmosquitto, where
 *   getaddrinfo() returns at once.
 * - TLS: connecting to an address would make libmosquitto check the broker's certificate against
 *   that address (it verifies against the host it was given) and send it as the server name (SNI).
 *   So the client brings its own SSL_CTX (MOSQ_OPT_SSL_CTX, without libmosquitto's defaults): the
 *   CA file or the system's store, the client certificate, peer verification by OpenSSL against the
 *   configured host (X509_VERIFY_PARAM_set1_host, or _set1_ip_asc for an address), and the
 *   configured host name put back as the SNI when the handshake starts (libmosquitto set the
 *   address just before SSL_connect(); an info callback at SSL_CB_HANDSHAKE_START runs before the
 *   ClientHello is written).
 *
 * Each attempt gets a fresh struct mosquitto, destroyed when the attempt fails or the connection
 * goes.  So nothing of a lost connection outlives it: not its socket (libmosquitto leaves a failed
 * TLS handshake's socket to the next connect), not its QoS 1 messages in flight, which libmosquitto
 * would send again itself after a reconnect while the outbox (the one queue, mqtt-outbox.h) sends
 * them again too, and not their message ids, so `published` only ever names a message of the
 * connection the caller published it on.  A libmosquitto callback never destroys its own struct:
 * it marks the connection lost and the code that called into libmosquitto drops it on the way out
 * (settle()).
 */
#include "mqtt-client.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "backoff.h"
#include "healer-error.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
/* mosquitto_loop_misc() runs every keepalive / MISC_PER_KEEPALIVE, never more often than MISC_MIN_MS. */
#define MISC_PER_KEEPALIVE 4
#define MISC_MIN_MS        1000

typedef enum {
	STATE_IDLE,       /* not started */
	STATE_RESOLVING,  /* GResolver is looking the host up */
	STATE_CONNECTING, /* TCP, TLS and CONNECT under way: no CONNACK yet */
	STATE_CONNECTED,  /* CONNACK accepted */
	STATE_WAITING,    /* for the backoff's timer */
	STATE_STOPPED,    /* stop(): never again */
} ClientState;

typedef struct {
	char *filter;
	int qos;
} Subscription;

/* The socket's GSource: one per connection, its events changed as libmosquitto wants to write. */
typedef struct {
	GSource source;
	HealerMqttClient *client;
	gpointer tag;
	GIOCondition events;
} SocketSource;

struct _HealerMqttClient {
	HealerMqttClientCallbacks callbacks;
	gpointer user_data;

	char *host; /* as configured: a name or an address literal */
	gboolean host_is_address;
	guint port;
	char *endpoint; /* "host:port" ("[v6]:port") for messages */
	char *client_id;
	char *username;
	char *password; /* wiped when freed */
	int keepalive_s;
	SSL_CTX *ssl_ctx; /* mqtts:// only */

	char *will_topic;
	char *will_payload;
	gboolean will_retain;
	GPtrArray *subscriptions; /* Subscription* */

	ClientState state;
	guint attempt; /* attempts failed since the last CONNACK: the backoff's exponent */
	guint retry_id;
	GCancellable *resolving;
	GQueue addresses; /* char*: this attempt's addresses not tried yet */
	char *last_error;

	/* This connection's (NULL / 0 between connections). */
	struct mosquitto *mosq;
	char *address;          /* the address it connects to */
	SocketSource *io;       /* its socket */
	guint misc_id;          /* mosquitto_loop_misc() */
	gboolean tcp_up;        /* its connect() completed */
	GHashTable *inflight;   /* mid -> nothing: QoS 1 messages waiting for their PUBACK */
	GHashTable *subacks;    /* mid -> filter: SUBSCRIBEs waiting for their SUBACK */
	char *tls_detail;       /* the last OpenSSL error libmosquitto logged */
	char *tls_verify_error; /* why the broker's certificate was refused */
	gboolean lost;          /* gone: drop it once out of libmosquitto */
	char *lost_why;         /* the first reason given, NULL for a stop */

	/* stop() waiting for its final message */
	int stop_mid;
	gboolean stop_waiting;
};

static void settle(HealerMqttClient *client);
static void connect_next(HealerMqttClient *client);
static void on_resolved(GObject *source, GAsyncResult *result, gpointer user_data);

/* ---- helpers ---- */

static void
subscription_free(gpointer data)
{
	Subscription *s = data;

	g_free(s->filter);
	g_free(s);
}

static void
wipe_string(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	g_free(s);
}

/* "Not authorized" -> "not authorized": reason strings read as the end of a sentence. */
static char *
lower_first(const char *text)
{
	char *s = g_strdup(text);

	if (s[0] != '\0' && g_ascii_isupper(s[0]) && !g_ascii_isupper(s[1]))
		s[0] = g_ascii_tolower(s[0]);
	return s;
}

static void
mosquitto_lib_init_once(void)
{
	static gsize done;

	if (g_once_init_enter(&done)) {
		/* Process-wide (OpenSSL and the random source): never cleaned up, like OpenSSL itself. */
		mosquitto_lib_init();
		g_once_init_leave(&done, 1);
	}
}

/* ---- TLS ---- */

static HealerMqttClient *
client_of_ssl(const SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

static int
on_tls_verify(int preverify_ok, X509_STORE_CTX *store)
{
	if (!preverify_ok) {
		SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
		HealerMqttClient *client = client_of_ssl(ssl);

		if (client->tls_verify_error == NULL)
			client->tls_verify_error =
			        g_strdup(X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
	}
	return preverify_ok;
}

/* The configured host as the server name, over the address libmosquitto set just before. */
static void
on_tls_info(const SSL *ssl, int where, int ret)
{
	HealerMqttClient *client = client_of_ssl(ssl);

	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) != 0 && !client->host_is_address)
		SSL_set_tlsext_host_name((SSL *)ssl, client->host);
}

/* The newest OpenSSL error's reason ("no certificate or crl found"), and the queue cleared. */
static char *
openssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	char *text = g_strdup(reason != NULL ? reason : "unknown OpenSSL error");

	ERR_clear_error();
	return text;
}

static gboolean
check_readable(const char *key, const char *path, GError **error)
{
	if (g_access(path, R_OK) != 0)
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "[mqtt] %s: cannot read %s: %s", key, path,
		                   g_strerror(errno));
	return TRUE;
}

static SSL_CTX *
tls_context_new(HealerMqttClient *client, const HealerConfig *config, GError **error)
{
	SSL_CTX *ctx;
	X509_VERIFY_PARAM *param;

	if ((config->mqtt_cert_file == NULL) != (config->mqtt_key_file == NULL)) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		            "[mqtt] cert-file and key-file go together: %s is set alone",
		            config->mqtt_cert_file != NULL ? "cert-file" : "key-file");
		return NULL;
	}
	if (config->mqtt_ca_file != NULL && !check_readable("ca-file", config->mqtt_ca_file, error))
		return NULL;
	if (config->mqtt_cert_file != NULL && (!check_readable("cert-file", config->mqtt_cert_file, error) ||
	                                       !check_readable("key-file", config->mqtt_key_file, error)))
		return NULL;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		g_autofree char *why = openssl_reason();
		healer_fail(error, HEALER_ERROR_FAILED, "[mqtt] cannot make a TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (config->mqtt_ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, config->mqtt_ca_file, NULL) != 1) {
			g_autofree char *why = openssl_reason();
			healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "[mqtt] ca-file: cannot load %s: %s",
			            config->mqtt_ca_file, why);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		g_autofree char *why = openssl_reason();
		healer_fail(error, HEALER_ERROR_FAILED, "[mqtt] cannot load the system's CA certificates: %s", why);
		goto fail;
	}
	if (config->mqtt_cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, config->mqtt_cert_file) != 1) {
			g_autofree char *why = openssl_reason();
			healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "[mqtt] cert-file: cannot load %s: %s",
			            config->mqtt_cert_file, why);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, config->mqtt_key_file, SSL_FILETYPE_PEM) != 1) {
			g_autofree char *why = openssl_reason();
			healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "[mqtt] key-file: cannot load %s: %s",
			            config->mqtt_key_file, why);
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			ERR_clear_error();
			healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			            "[mqtt] key-file %s is not the key of cert-file %s", config->mqtt_key_file,
			            config->mqtt_cert_file);
			goto fail;
		}
	}

	/* OpenSSL checks the name (or address) in the certificate during the chain's verification. */
	param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if ((client->host_is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, client->host)
	                             : X509_VERIFY_PARAM_set1_host(param, client->host, 0)) != 1) {
		ERR_clear_error();
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "[mqtt] broker: cannot verify certificates for %s",
		            client->host);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_tls_verify);
	SSL_CTX_set_info_callback(ctx, on_tls_info);
	SSL_CTX_set_app_data(ctx, client);
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- the password ---- */

static char *
read_password(const char *path, GError **error)
{
	g_autoptr(GError) local = NULL;
	char *contents = NULL;
	gsize len = 0;
	char *password;

	if (!g_file_get_contents(path, &contents, &len, &local)) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "[mqtt] password-file: %s", local->message);
		return NULL;
	}
	/* The first line, without its line end. */
	password = g_strndup(contents, strcspn(contents, "\r\n"));
	explicit_bzero(contents, len);
	g_free(contents);
	if (password[0] == '\0') {
		g_free(password);
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		            "[mqtt] password-file %s: no password on its first line", path);
		return NULL;
	}
	return password;
}

/* ---- why a connection failed or went ---- */

static void
mark_lost(HealerMqttClient *client, char *why)
{
	if (client->lost) {
		g_free(why);
		return;
	}
	client->lost = TRUE;
	client->lost_why = why;
}

static char *
where_to(HealerMqttClient *client)
{
	if (client->host_is_address || client->address == NULL)
		return g_strdup(client->endpoint);
	return g_strdup_printf("%s (%s)", client->endpoint, client->address);
}

/* A libmosquitto error code (or, from a DISCONNECT, an MQTT v5 reason code) as a sentence. */
static char *
describe_loss(HealerMqttClient *client, int rc, int err)
{
	g_autofree char *where = where_to(client);
	g_autofree char *prefix = client->state == STATE_CONNECTED ? g_strdup_printf("connection to %s lost", where)
	                                                           : g_strdup_printf("cannot connect to %s", where);

	if (client->tls_verify_error != NULL)
		return g_strdup_printf("TLS with %s failed: the broker's certificate was refused: %s", where,
		                       client->tls_verify_error);
	if (client->tls_detail != NULL)
		return g_strdup_printf("TLS with %s failed: %s", where, client->tls_detail);
	/* libmosquitto's mark of a TLS failure that OpenSSL gave no reason for (a reset mid-handshake). */
	if (client->ssl_ctx != NULL && rc == MOSQ_ERR_ERRNO && err == EPROTO)
		return client->state == STATE_CONNECTED
		               ? g_strdup_printf("%s: TLS error", prefix)
		               : g_strdup_printf("TLS with %s failed: the broker ended the connection", where);
	if (rc >= 0x80) {
		g_autofree char *reason = lower_first(mosquitto_reason_string(rc));
		return g_strdup_printf("%s: the broker disconnected: %s", prefix, reason);
	}
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
	case MOSQ_ERR_CONN_LOST:
	case MOSQ_ERR_NO_CONN:
		return g_strdup_printf("%s: the broker closed the connection", prefix);
	case MOSQ_ERR_KEEPALIVE:
		return g_strdup_printf("%s: no answer within the keepalive (%d s)", prefix, client->keepalive_s);
	case MOSQ_ERR_ERRNO:
		return g_strdup_printf("%s: %s", prefix, err != 0 ? g_strerror(err) : "socket error");
	case MOSQ_ERR_TLS:
		return g_strdup_printf("TLS with %s failed", where);
	default:
		return g_strdup_printf("%s: %s", prefix, mosquitto_strerror(rc));
	}
}

/* ---- the socket ---- */

static gboolean on_socket(HealerMqttClient *client, GIOCondition ready);

static gboolean
socket_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	SocketSource *s = (SocketSource *)source;

	(void)callback;
	(void)user_data;
	return on_socket(s->client, g_source_query_unix_fd(source, s->tag));
}

static GSourceFuncs socket_source_funcs = {
        .dispatch = socket_dispatch,
};

static void
socket_source_free(SocketSource *s)
{
	g_source_destroy(&s->source);
	g_source_unref(&s->source);
}

/* What to wait for: readable always; writable while libmosquitto has bytes to send, or the connect()'s outcome. */
static void
update_events(HealerMqttClient *client)
{
	GIOCondition events = G_IO_IN;

	if (client->io == NULL)
		return;
	if (!client->tcp_up || mosquitto_want_write(client->mosq))
		events |= G_IO_OUT;
	if (events != client->io->events) {
		g_source_modify_unix_fd(&client->io->source, client->io->tag, events);
		client->io->events = events;
	}
}

static void
watch_socket(HealerMqttClient *client)
{
	GSource *source = g_source_new(&socket_source_funcs, sizeof(SocketSource));
	SocketSource *s = (SocketSource *)source;

	s->client = client;
	s->events = G_IO_IN | G_IO_OUT;
	s->tag = g_source_add_unix_fd(source, mosquitto_socket(client->mosq), s->events);
	g_source_set_static_name(source, "healerd mqtt socket");
	g_source_attach(source, NULL);
	client->io = s;
}

static gboolean
on_socket(HealerMqttClient *client, GIOCondition ready)
{
	struct mosquitto *mosq = client->mosq;
	int rc = MOSQ_ERR_SUCCESS;

	/* The connect()'s outcome first: a refused connect would otherwise reach libmosquitto as a TLS
	 * handshake that waits for ever (its SSL_ERROR_SYSCALL is taken for "try again"). */
	if (!client->tcp_up && (ready & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) != 0) {
		int err = 0;
		socklen_t len = sizeof err;

		if (getsockopt(mosquitto_socket(mosq), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			g_autofree char *where = where_to(client);
			mark_lost(client, g_strdup_printf("cannot connect to %s: %s", where, g_strerror(err)));
			settle(client);
			return G_SOURCE_CONTINUE;
		}
		client->tcp_up = TRUE;
	}

	errno = 0;
	if ((ready & (G_IO_IN | G_IO_ERR | G_IO_HUP)) != 0)
		rc = mosquitto_loop_read(mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && !client->lost && mosquitto_socket(mosq) >= 0 && (ready & G_IO_OUT) != 0) {
		/* Until the CONNACK a writable socket may be the TLS handshake's wish to write, which
		 * libmosquitto only drives from mosquitto_loop_read(). */
		if (client->ssl_ctx != NULL && client->state == STATE_CONNECTING)
			rc = mosquitto_loop_read(mosq, 1);
		if (rc == MOSQ_ERR_SUCCESS && !client->lost && mosquitto_socket(mosq) >= 0)
			rc = mosquitto_loop_write(mosq, 1);
	}
	if (!client->lost) {
		int err = errno;

		if (rc != MOSQ_ERR_SUCCESS)
			mark_lost(client, describe_loss(client, rc, err));
		else if (mosquitto_socket(mosq) < 0)
			mark_lost(client, describe_loss(client, MOSQ_ERR_CONN_LOST, 0));
		else if ((ready & (G_IO_HUP | G_IO_ERR)) != 0)
			/* Hung up, and libmosquitto kept the socket (a TLS handshake taking the reset for a
			 * wish to wait): poll would report it for ever. */
			mark_lost(client, describe_loss(client, MOSQ_ERR_CONN_LOST, 0));
	}
	settle(client);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_misc(gpointer user_data)
{
	HealerMqttClient *client = user_data;
	int rc = mosquitto_loop_misc(client->mosq);

	if (rc != MOSQ_ERR_SUCCESS)
		mark_lost(client, describe_loss(client, rc, 0));
	settle(client);
	return G_SOURCE_CONTINUE;
}

/* This connection's everything, closed and freed (outside any libmosquitto call). */
static void
drop_connection(HealerMqttClient *client)
{
	g_clear_pointer(&client->io, socket_source_free);
	g_clear_handle_id(&client->misc_id, g_source_remove);
	g_clear_pointer(&client->mosq, mosquitto_destroy);
	g_clear_pointer(&client->address, g_free);
	g_clear_pointer(&client->tls_detail, g_free);
	g_clear_pointer(&client->tls_verify_error, g_free);
	g_hash_table_remove_all(client->inflight);
	g_hash_table_remove_all(client->subacks);
	client->tcp_up = FALSE;
	client->stop_waiting = FALSE;
}

/* ---- attempts and the backoff ---- */

static void
clear_addresses(HealerMqttClient *client)
{
	char *a;

	while ((a = g_queue_pop_head(&client->addresses)) != NULL)
		g_free(a);
}

static void
begin_attempt(HealerMqttClient *client)
{
	g_autoptr(GResolver) resolver = NULL;

	if (client->host_is_address) {
		g_queue_push_tail(&client->addresses, g_strdup(client->host));
		connect_next(client);
		return;
	}
	/* getaddrinfo() in libmosquitto would block the loop on DNS: GResolver looks it up in its thread. */
	resolver = g_resolver_get_default();
	client->state = STATE_RESOLVING;
	client->resolving = g_cancellable_new();
	g_resolver_lookup_by_name_async(resolver, client->host, client->resolving, on_resolved, client);
}

static gboolean
on_attempt(gpointer user_data)
{
	HealerMqttClient *client = user_data;

	client->retry_id = 0;
	begin_attempt(client);
	return G_SOURCE_REMOVE;
}

/* Every address failed, or the connection went: wait, then start over. */
static void
wait_and_retry(HealerMqttClient *client)
{
	guint64 delay = healer_backoff_delay_ms(client->attempt, RETRY_MIN_MS, RETRY_MAX_MS, g_random_int());

	clear_addresses(client);
	if (client->attempt < G_MAXUINT)
		client->attempt++;
	client->state = STATE_WAITING;
	client->retry_id = g_timeout_add((guint)delay, on_attempt, client);
	g_debug("MQTT %s: %s; again in %" G_GUINT64_FORMAT " ms", client->endpoint, client->last_error, delay);
	if (client->callbacks.disconnected != NULL)
		client->callbacks.disconnected(client->last_error, client->user_data);
}

/* Out of libmosquitto: a connection marked lost is dropped, and the next address or attempt comes. */
static void
settle(HealerMqttClient *client)
{
	gboolean was_connected = client->state == STATE_CONNECTED;

	if (!client->lost) {
		update_events(client);
		return;
	}
	drop_connection(client);
	client->lost = FALSE;
	if (client->lost_why != NULL) {
		g_free(client->last_error);
		client->last_error = g_steal_pointer(&client->lost_why);
	}
	if (client->state == STATE_STOPPED || client->state == STATE_IDLE)
		return;
	if (!was_connected && !g_queue_is_empty(&client->addresses))
		connect_next(client);
	else
		wait_and_retry(client);
}

/* ---- libmosquitto's callbacks (never destroy `mosq` here) ---- */

static void
on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	HealerMqttClient *client = obj;

	(void)flags;
	(void)props;
	if (client->lost || client->state != STATE_CONNECTING)
		return;
	if (rc != 0) {
		/* A v5 CONNACK's reason is 0x80 or more; 1..5 is a v3 broker's return code. */
		g_autofree char *reason =
		        lower_first(rc < 0x80 ? mosquitto_connack_string(rc) : mosquitto_reason_string(rc));
		mark_lost(client, g_strdup_printf("connection refused: %s", reason));
		return;
	}
	client->state = STATE_CONNECTED;
	client->attempt = 0;
	g_clear_pointer(&client->last_error, g_free);
	clear_addresses(client);
	g_debug("MQTT %s: connected", client->endpoint);
	for (guint i = 0; i < client->subscriptions->len; i++) {
		Subscription *s = g_ptr_array_index(client->subscriptions, i);
		int mid = 0;

		if (mosquitto_subscribe_v5(mosq, &mid, s->filter, s->qos, 0, NULL) == MOSQ_ERR_SUCCESS)
			g_hash_table_insert(client->subacks, GINT_TO_POINTER(mid), g_strdup(s->filter));
	}
	if (client->callbacks.connected != NULL)
		client->callbacks.connected(client->user_data);
}

static void
on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	HealerMqttClient *client = obj;
	int err = errno;

	(void)mosq;
	(void)props;
	if (client->state == STATE_STOPPED)
		mark_lost(client, NULL);
	else
		mark_lost(client, describe_loss(client, rc, err));
}

static void
on_publish(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *props)
{
	HealerMqttClient *client = obj;

	(void)mosq;
	(void)props;
	/* QoS 0 messages are reported once written: only PUBACKs count. */
	if (!g_hash_table_remove(client->inflight, GINT_TO_POINTER(mid)))
		return;
	if (reason >= 0x80) {
		/* Sending it again would be refused again: it leaves the outbox like an accepted one. */
		g_autofree char *why = lower_first(mosquitto_reason_string(reason));
		g_warning("MQTT %s: the broker refused message %d: %s", client->endpoint, mid, why);
	}
	if (client->stop_waiting && mid == client->stop_mid) {
		client->stop_waiting = FALSE;
		return;
	}
	if (client->callbacks.published != NULL)
		client->callbacks.published(mid, client->user_data);
}

static void
on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted, const mosquitto_property *props)
{
	HealerMqttClient *client = obj;
	g_autofree char *filter = NULL;

	(void)mosq;
	(void)props;
	if (!g_hash_table_steal_extended(client->subacks, GINT_TO_POINTER(mid), NULL, (gpointer *)&filter))
		return;
	for (int i = 0; i < count; i++) {
		if (granted[i] >= 0x80) {
			g_autofree char *why = lower_first(mosquitto_reason_string(granted[i]));
			g_warning("MQTT %s: the broker refused the subscription to %s: %s", client->endpoint, filter,
			          why);
		}
	}
}

static void
on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *message, const mosquitto_property *props)
{
	HealerMqttClient *client = obj;
	g_autoptr(GBytes) correlation = NULL;
	char *response_topic = NULL;
	void *data = NULL;
	uint16_t len = 0;

	(void)mosq;
	if (client->callbacks.message == NULL || client->state != STATE_CONNECTED)
		return;
	mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &response_topic, false);
	if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &data, &len, false) != NULL)
		correlation = g_bytes_new(data, len);
	free(data);
	client->callbacks.message(message->topic, message->payload, (gsize)MAX(message->payloadlen, 0), response_topic,
	                          correlation, client->user_data);
	free(response_topic);
}

static void
on_log(struct mosquitto *mosq, void *obj, int level, const char *text)
{
	HealerMqttClient *client = obj;

	(void)mosq;
	/* The TLS failure's reason reaches us only as libmosquitto's log line:
	 * "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed". */
	if (level == MOSQ_LOG_ERR && g_str_has_prefix(text, "OpenSSL Error")) {
		const char *reason = strrchr(text, ':');
		if (client->tls_detail == NULL && reason != NULL && reason[1] != '\0')
			client->tls_detail = g_strdup(reason + 1);
	}
	if ((level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) != 0)
		g_debug("MQTT %s: libmosquitto: %s", client->endpoint, text);
}

/* ---- connecting ---- */

static struct mosquitto *
mosquitto_for(HealerMqttClient *client)
{
	struct mosquitto *mosq = mosquitto_new(client->client_id, true, client);

	if (mosq == NULL)
		return NULL;
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	if (client->ssl_ctx != NULL) {
		mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, client->ssl_ctx);
	}
	if (client->username != NULL || client->password != NULL)
		mosquitto_username_pw_set(mosq, client->username, client->password);
	if (client->will_topic != NULL)
		mosquitto_will_set_v5(mosq, client->will_topic, (int)strlen(client->will_payload), client->will_payload,
		                      1, client->will_retain, NULL);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(mosq, on_publish);
	mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
	mosquitto_message_v5_callback_set(mosq, on_message);
	mosquitto_log_callback_set(mosq, on_log);
	return mosq;
}

/* The next address of this attempt; when none is left, the backoff. */
static void
connect_next(HealerMqttClient *client)
{
	char *address;

	while ((address = g_queue_pop_head(&client->addresses)) != NULL) {
		int rc, err;

		client->state = STATE_CONNECTING;
		client->address = address;
		client->mosq = mosquitto_for(client);
		if (client->mosq == NULL) {
			mark_lost(client,
			          g_strdup_printf("cannot connect to %s: %s", client->endpoint, g_strerror(errno)));
			settle(client);
			return;
		}
		/* A numeric address: libmosquitto's getaddrinfo() does not block. */
		errno = 0;
		rc = mosquitto_connect_async(client->mosq, address, (int)client->port, client->keepalive_s);
		err = errno;
		if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(client->mosq) >= 0) {
			watch_socket(client);
			client->misc_id =
			        g_timeout_add(MAX(MISC_MIN_MS, (guint)client->keepalive_s * 1000 / MISC_PER_KEEPALIVE),
			                      on_misc, client);
			g_source_set_static_name(g_main_context_find_source_by_id(NULL, client->misc_id),
			                         "healerd mqtt keepalive");
			update_events(client);
			return;
		}
		g_free(client->last_error);
		client->last_error = describe_loss(client, rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_NO_CONN, err);
		drop_connection(client);
	}
	wait_and_retry(client);
}

static void
on_resolved(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	GList *list = g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);
	HealerMqttClient *client = user_data;

	/* Cancelled: the client may be gone. */
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	g_clear_object(&client->resolving);
	if (list == NULL) {
		/* GResolver says "Error resolving “HOST”: REASON": the reason is what is new here. */
		const char *reason = g_strrstr(error->message, ": ");

		g_free(client->last_error);
		client->last_error = g_strdup_printf("cannot resolve %s: %s", client->host,
		                                     reason != NULL ? reason + 2 : error->message);
		wait_and_retry(client);
		return;
	}
	for (GList *l = list; l != NULL; l = l->next)
		g_queue_push_tail(&client->addresses, g_inet_address_to_string(l->data));
	g_resolver_free_addresses(list);
	connect_next(client);
}

/* ---- the API ---- */

HealerMqttClient *
healer_mqtt_client_new(const HealerConfig *config, const HealerMqttClientCallbacks *callbacks, gpointer user_data,
                       GError **error)
{
	g_autoptr(HealerMqttClient) client = NULL;

	g_return_val_if_fail(config != NULL && config->mqtt_broker != NULL && config->mqtt_host != NULL, NULL);
	g_return_val_if_fail(callbacks != NULL, NULL);

	mosquitto_lib_init_once();
	client = g_new0(HealerMqttClient, 1);
	client->callbacks = *callbacks;
	client->user_data = user_data;
	client->host = g_strdup(config->mqtt_host);
	client->host_is_address = g_hostname_is_ip_address(client->host);
	client->port = config->mqtt_port;
	client->endpoint = strchr(client->host, ':') != NULL ? g_strdup_printf("[%s]:%u", client->host, client->port)
	                                                     : g_strdup_printf("%s:%u", client->host, client->port);
	client->client_id = g_strdup(config->mqtt_client_id);
	client->username = g_strdup(config->mqtt_username);
	client->keepalive_s = (int)CLAMP(config->mqtt_keepalive_s, 5, 65535);
	client->subscriptions = g_ptr_array_new_with_free_func(subscription_free);
	client->inflight = g_hash_table_new(NULL, NULL);
	client->subacks = g_hash_table_new_full(NULL, NULL, NULL, g_free);
	g_queue_init(&client->addresses);

	if (config->mqtt_password_file != NULL &&
	    (client->password = read_password(config->mqtt_password_file, error)) == NULL)
		return NULL;
	if (config->mqtt_tls && (client->ssl_ctx = tls_context_new(client, config, error)) == NULL)
		return NULL;
	return g_steal_pointer(&client);
}

void
healer_mqtt_client_free(HealerMqttClient *client)
{
	if (client == NULL)
		return;
	/* No DISCONNECT: to the broker this is a connection that died, and it publishes the will. */
	client->state = STATE_STOPPED;
	if (client->resolving != NULL) {
		g_cancellable_cancel(client->resolving);
		g_clear_object(&client->resolving);
	}
	g_clear_handle_id(&client->retry_id, g_source_remove);
	drop_connection(client);
	clear_addresses(client);
	g_clear_pointer(&client->ssl_ctx, SSL_CTX_free);
	g_free(client->host);
	g_free(client->endpoint);
	g_free(client->client_id);
	g_free(client->username);
	wipe_string(client->password);
	g_free(client->will_topic);
	g_free(client->will_payload);
	g_ptr_array_unref(client->subscriptions);
	g_hash_table_unref(client->inflight);
	g_hash_table_unref(client->subacks);
	g_free(client->last_error);
	g_free(client->lost_why);
	g_free(client);
}

void
healer_mqtt_client_set_will(HealerMqttClient *client, const char *topic, const char *payload, gboolean retain)
{
	g_return_if_fail(client != NULL && topic != NULL && payload != NULL);
	g_return_if_fail(mosquitto_pub_topic_check(topic) == MOSQ_ERR_SUCCESS);

	g_free(client->will_topic);
	g_free(client->will_payload);
	client->will_topic = g_strdup(topic);
	client->will_payload = g_strdup(payload);
	client->will_retain = retain;
}

void
healer_mqtt_client_start(HealerMqttClient *client)
{
	g_return_if_fail(client != NULL);

	if (client->state != STATE_IDLE)
		return;
	/* From the main loop: no callback runs before start() returns. */
	client->state = STATE_WAITING;
	client->retry_id = g_idle_add(on_attempt, client);
}

gboolean
healer_mqtt_client_is_connected(HealerMqttClient *client)
{
	g_return_val_if_fail(client != NULL, FALSE);
	return client->state == STATE_CONNECTED;
}

const char *
healer_mqtt_client_get_last_error(HealerMqttClient *client)
{
	g_return_val_if_fail(client != NULL, NULL);
	return client->last_error;
}

gboolean
healer_mqtt_client_publish(HealerMqttClient *client, const char *topic, const char *payload, gsize len, int qos,
                           gboolean retain, GBytes *correlation, int *mid)
{
	mosquitto_property *props = NULL;
	int local_mid = 0;
	int rc;

	g_return_val_if_fail(client != NULL && topic != NULL, FALSE);
	g_return_val_if_fail(payload != NULL || len == 0, FALSE);
	g_return_val_if_fail(qos >= 0 && qos <= 2, FALSE);
	g_return_val_if_fail(correlation == NULL || g_bytes_get_size(correlation) <= G_MAXUINT16, FALSE);

	if (client->state != STATE_CONNECTED)
		return FALSE;
	if (len > G_MAXINT) {
		g_warning("MQTT %s: a message of %" G_GSIZE_FORMAT " bytes to %s is too large", client->endpoint, len,
		          topic);
		return FALSE;
	}
	if (correlation != NULL) {
		gsize size = 0;
		const void *data = g_bytes_get_data(correlation, &size);
		mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, data, (uint16_t)size);
	}
	rc = mosquitto_publish_v5(client->mosq, &local_mid, topic, (int)len, payload, qos, retain, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS) {
		/* A write error here: the socket's next event tells the rest. */
		g_debug("MQTT %s: cannot publish to %s: %s", client->endpoint, topic, mosquitto_strerror(rc));
		update_events(client);
		return FALSE;
	}
	if (qos > 0)
		g_hash_table_add(client->inflight, GINT_TO_POINTER(local_mid));
	if (mid != NULL)
		*mid = local_mid;
	update_events(client);
	return TRUE;
}

void
healer_mqtt_client_subscribe(HealerMqttClient *client, const char *topic_filter, int qos)
{
	Subscription *s = NULL;
	int mid = 0;

	g_return_if_fail(client != NULL && topic_filter != NULL);
	g_return_if_fail(mosquitto_sub_topic_check(topic_filter) == MOSQ_ERR_SUCCESS);
	g_return_if_fail(qos >= 0 && qos <= 2);

	for (guint i = 0; i < client->subscriptions->len && s == NULL; i++) {
		Subscription *t = g_ptr_array_index(client->subscriptions, i);
		if (strcmp(t->filter, topic_filter) == 0)
			s = t;
	}
	if (s == NULL) {
		s = g_new0(Subscription, 1);
		s->filter = g_strdup(topic_filter);
		g_ptr_array_add(client->subscriptions, s);
	}
	s->qos = qos;
	if (client->state != STATE_CONNECTED)
		return;
	if (mosquitto_subscribe_v5(client->mosq, &mid, topic_filter, qos, 0, NULL) == MOSQ_ERR_SUCCESS)
		g_hash_table_insert(client->subacks, GINT_TO_POINTER(mid), g_strdup(topic_filter));
	update_events(client);
}

static gboolean
on_stop_timeout(gpointer user_data)
{
	gboolean *timed_out = user_data;

	*timed_out = TRUE;
	return G_SOURCE_REMOVE;
}

void
healer_mqtt_client_stop(HealerMqttClient *client, const char *topic, const char *payload, guint timeout_ms)
{
	g_autoptr(GSource) timer = NULL;
	gboolean timed_out = FALSE;
	gboolean was_connected;

	g_return_if_fail(client != NULL);

	timer = g_timeout_source_new(timeout_ms);
	g_source_set_callback(timer, on_stop_timeout, &timed_out, NULL);
	g_source_attach(timer, NULL);

	if (client->state == STATE_CONNECTED && topic != NULL && payload != NULL &&
	    healer_mqtt_client_publish(client, topic, payload, strlen(payload), 1, TRUE, NULL, &client->stop_mid)) {
		client->stop_waiting = TRUE;
		while (client->stop_waiting && client->state == STATE_CONNECTED && !timed_out)
			g_main_context_iteration(NULL, TRUE);
	}

	was_connected = client->state == STATE_CONNECTED;
	client->state = STATE_STOPPED;
	if (client->resolving != NULL) {
		g_cancellable_cancel(client->resolving);
		g_clear_object(&client->resolving);
	}
	g_clear_handle_id(&client->retry_id, g_source_remove);
	clear_addresses(client);
	if (was_connected && client->mosq != NULL) {
		/* DISCONNECT, so the broker drops the will; written at once unless the socket is full. */
		mosquitto_disconnect(client->mosq);
		update_events(client);
		while (!client->lost && mosquitto_socket(client->mosq) >= 0 && !timed_out)
			g_main_context_iteration(NULL, TRUE);
	}
	drop_connection(client);
	client->lost = FALSE;
	g_clear_pointer(&client->lost_why, g_free);
	g_source_destroy(timer);
}
