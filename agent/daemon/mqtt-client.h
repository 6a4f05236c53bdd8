/*
 * One MQTT connection, on the GLib main loop: libmosquitto with its socket as a GSource (read when
 * readable, write while mosquitto_want_write(), misc on a timer for the keepalive), never
 * mosquitto_loop_start()'s thread and never a blocking call.  MQTT v5 (for the commands' response
 * topic and correlation data).  It connects, and after any loss reconnects with the project's
 * backoff (backoff.h, equal jitter, 1 s .. 60 s); a broker that refuses the credentials is retried
 * the same way, its reason kept for the status (healer_mqtt_client_get_last_error()).
 *
 * TLS when the broker is mqtts://: the CA file (else the system's CA store), and a client
 * certificate and key when configured.  The password is read from password-file once, at
 * healer_mqtt_client_new(), and never logged.
 *
 * A host name is looked up with GResolver (libmosquitto's own getaddrinfo() would block the loop)
 * and libmosquitto connects to the addresses; the broker's certificate is still checked against,
 * and the TLS server name (SNI) still is, the configured host.
 */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

typedef struct _HealerMqttClient HealerMqttClient;

/*
 * Called from the main loop; a callback may publish and subscribe, but not free the client.
 */
typedef struct {
	/* CONNACK accepted: subscribe, publish retained state, resend the outbox. */
	void (*connected)(gpointer user_data);
	/*
	 * The connection is gone or was refused: `why` for the status and the journal (the same as
	 * healer_mqtt_client_get_last_error()).  Once per lost connection and once per failed attempt
	 * (every address of the host tried), as the backoff's wait begins.
	 */
	void (*disconnected)(const char *why, gpointer user_data);
	/*
	 * The broker acknowledged the QoS 1 message `mid` (PUBACK) of this connection.  A PUBACK that
	 * refuses it (reason 0x80 or more) counts too, with a warning: sent again it would be refused again.
	 */
	void (*published)(int mid, gpointer user_data);
	/* A message on a subscribed topic; response_topic and correlation (MQTT v5) may be NULL. */
	void (*message)(const char *topic, const void *payload, gsize len, const char *response_topic,
	                GBytes *correlation, gpointer user_data);
} HealerMqttClientCallbacks;

/*
 * A client for config's [mqtt] (config->mqtt_broker must be set).  Reads the password file and checks
 * the TLS files exist and are readable: HEALER_ERROR_INVALID_ARGUMENT naming the key and file
 * otherwise.  Nothing is connected before healer_mqtt_client_start().
 */
HealerMqttClient *healer_mqtt_client_new(const HealerConfig *config, const HealerMqttClientCallbacks *callbacks,
                                         gpointer user_data, GError **error);
/* Closes the connection without a DISCONNECT: the broker publishes the will. */
void healer_mqtt_client_free(HealerMqttClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerMqttClient, healer_mqtt_client_free)

/* The last will (QoS 1): published by the broker when the connection drops without a DISCONNECT.
 * Sent with each CONNECT from the next one on: set it before healer_mqtt_client_start(). */
void healer_mqtt_client_set_will(HealerMqttClient *client, const char *topic, const char *payload, gboolean retain);

/* Connects (from the main loop: no callback runs before it returns) and keeps connecting.  A no-op
 * once started, and after stop(). */
void healer_mqtt_client_start(HealerMqttClient *client);

gboolean healer_mqtt_client_is_connected(HealerMqttClient *client);
/* Why the last attempt failed or the connection went ("connection refused: not authorized"); NULL when none. */
const char *healer_mqtt_client_get_last_error(HealerMqttClient *client);

/*
 * Publishes (only while connected: FALSE otherwise, nothing queued here; the outbox is the queue).
 * *mid (may be NULL) is the message id healer_mqtt_client's `published` callback names for QoS 1.
 * `correlation` (MQTT v5, may be NULL) is sent as the message's correlation data (a command's reply).
 */
gboolean healer_mqtt_client_publish(HealerMqttClient *client, const char *topic, const char *payload, gsize len,
                                    int qos, gboolean retain, GBytes *correlation, int *mid);

/* Subscribes now and again after every reconnect. */
void healer_mqtt_client_subscribe(HealerMqttClient *client, const char *topic_filter, int qos);

/*
 * A clean stop: publishes `topic` = `payload` (retained, QoS 1) when connected, waits for its PUBACK
 * at most `timeout_ms` by iterating the default main context, then disconnects (so the broker does
 * not publish the will).  For main()'s way out only.
 */
void healer_mqtt_client_stop(HealerMqttClient *client, const char *topic, const char *payload, guint timeout_ms);

G_END_DECLS
