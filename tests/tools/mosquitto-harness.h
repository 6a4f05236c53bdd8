/*
 * A private mosquitto broker for a test, and an MQTT peer to watch and drive it.
 *
 * The broker: `mosquitto -c DIR/mosquitto.conf` on 127.0.0.1 and a free port, everything in a
 * temporary directory, no persistence, run as a child that dies with the test.  Optionally a
 * password file (made with mosquitto_passwd) and a TLS listener that requires a client certificate,
 * with a throwaway CA, server and client certificates made with the openssl command.  Its log
 * (connections, disconnections, wills) is read from its stderr on the main loop, so a test can wait
 * for "the broker saw the client disconnect" as an event.
 *
 * The peer: a libmosquitto client of its own (MQTT v5, libmosquitto's thread, so it is independent
 * of the code under test) that collects what arrives on the filters it subscribed to and publishes
 * commands.  It wakes the default main context on each event: tests wait by iterating that context
 * (mqtt_wait_until), which also runs the client under test.
 */
#pragma once

#include <glib.h>

typedef struct {
	char *dir; /* temporary: mosquitto.conf, certificates, the password file */
	int port;  /* 0 until first started; kept across restarts */
	GPid pid;  /* 0: not running */
	gboolean tls;
	char *password_file; /* NULL: anonymous clients allowed */
	char *ca_file;       /* TLS: the CA that signed the server's and the client's certificates */
	char *client_cert;   /* TLS: a client certificate and key the broker accepts */
	char *client_key;
	GString *log;    /* everything the broker wrote to stderr, across restarts */
	guint log_watch; /* reading its stderr */
} MosquittoBroker;

typedef struct {
	char *topic;
	GBytes *payload;
	gboolean retain; /* as published (the peer subscribes with retain-as-published) */
	char *response_topic;
	GBytes *correlation;
} MqttPeerMessage;

typedef struct _MqttPeer MqttPeer;

/* mosquitto, mosquitto_passwd and openssl are installed; a test without them skips. */
gboolean mosquitto_broker_available(void);

/* A new temporary directory; anonymous clients, no TLS.  Not started. */
MosquittoBroker *mosquitto_broker_new(void);
/* A user in the broker's password file (anonymous clients are refused from then on). */
void mosquitto_broker_add_user(MosquittoBroker *b, const char *user, const char *password);
/*
 * The listener speaks TLS: a CA (ca_file), a server certificate for `server_san` ("DNS:localhost,
 * IP:127.0.0.1" when NULL), a client certificate (client_cert, client_key); clients must present one.
 */
void mosquitto_broker_enable_tls(MosquittoBroker *b, const char *server_san);
/* Another CA in the broker's directory that signed nothing: its PEM's path. */
char *mosquitto_broker_make_ca(MosquittoBroker *b, const char *name);

/* Starts it (a free port the first time, the same port after) and returns once it accepts. */
void mosquitto_broker_start(MosquittoBroker *b);
/* SIGTERM and wait; a no-op when not running. */
void mosquitto_broker_stop(MosquittoBroker *b);
/* kill -9 and wait: what it took and had not handled (its sockets' unread bytes) is gone. */
void mosquitto_broker_kill(MosquittoBroker *b);
/*
 * SIGSTOP, and returns once the kernel says it is stopped: its clients' connections stay up, and
 * what they send waits in its sockets, unread and unacknowledged.  mosquitto_broker_resume() undoes it.
 */
void mosquitto_broker_pause(MosquittoBroker *b);
void mosquitto_broker_resume(MosquittoBroker *b);
void mosquitto_broker_free(MosquittoBroker *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MosquittoBroker, mosquitto_broker_free)

/* "mqtt://HOST:PORT" or "mqtts://HOST:PORT". */
char *mosquitto_broker_url(const MosquittoBroker *b, const char *host);
/* Waits until the broker's log holds `text` (anywhere since it was made). */
void mosquitto_broker_wait_log(MosquittoBroker *b, const char *text);

/*
 * Iterates the default main context until done(data), failing the test after a generous bound
 * (MQTT_WAIT_SECONDS) that names `what`; the brokers' logs are printed then.
 */
#define MQTT_WAIT_SECONDS 60
void mqtt_wait_until(gboolean (*done)(gpointer data), gpointer data, const char *what);
/* The same with its own bound: what waits on a whole heal (minutes under valgrind). */
void mqtt_wait_until_within(gboolean (*done)(gpointer data), gpointer data, const char *what, guint seconds);

/* A peer connected to the broker (as user "peer" when it has a password file), or the test fails. */
MqttPeer *mqtt_peer_new(MosquittoBroker *b);
/* Subscribes (QoS 1, retain as published) and returns once the broker acknowledged it. */
void mqtt_peer_subscribe(MqttPeer *p, const char *filter);
/* Publishes QoS 1 and returns once acknowledged; response_topic and correlation may be NULL. */
void mqtt_peer_publish(MqttPeer *p, const char *topic, const char *payload, gboolean retain, const char *response_topic,
                       GBytes *correlation);
/* The next message on `topic` not taken yet, waiting for it; it stays the peer's. */
const MqttPeerMessage *mqtt_peer_next(MqttPeer *p, const char *topic);
/* How many messages arrived on `topic` so far. */
guint mqtt_peer_count(MqttPeer *p, const char *topic);
void mqtt_peer_free(MqttPeer *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MqttPeer, mqtt_peer_free)

#define MQTT_PEER_PASSWORD "peer-secret"
