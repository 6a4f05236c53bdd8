/*
 * The MQTT face (docs/mqtt.md): one more observer of the event stream, beside the journal, sd_notify
 * and D-Bus, so all of them say the same things.  It publishes
 *
 *   <prefix>/<gateway>/status           retained: online, counts by state, store; the will says offline
 *   <prefix>/<gateway>/devices/<id>     retained: what `healerctl devices --json` gives for it
 *   <prefix>/<gateway>/events           QoS 1: the events of docs/mqtt.md, each with its seq
 *
 * and, with [mqtt] accept-commands=true, answers <prefix>/<gateway>/cmd/<verb> (heal, reset,
 * refresh, status) on the request's MQTT v5 response topic, calling the engine as D-Bus does.
 *
 * Nothing is lost: an event goes to the outbox (mqtt-outbox.h) before it is published and leaves on
 * its PUBACK; retained state is published again after every reconnect.  Healing never waits for
 * the broker: the face only appends and hands records to the client, which never blocks.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "engine.h"
#include "events.h"
#include "store.h"
#include "supply.h"
#include "upstream.h"

G_BEGIN_DECLS

typedef struct _HealerMqttFace HealerMqttFace;

/*
 * A face for config's [mqtt] (config->mqtt_broker set), observing `stream` from now on: made first
 * thing, so the events of healerd's start (catalogs accepted, modules imported) are kept too.  Opens
 * the outbox in <state-dir>/mqtt and reads the password file: NULL and the error (naming the file or
 * key) when either fails.  Nothing is connected before healer_mqtt_face_start().
 */
HealerMqttFace *healer_mqtt_face_new(HealerConfig *config, HealerEventStream *stream, GError **error);

/* Connects, and keeps connecting; device state and commands go to `engine` from now on (`upstream` may be NULL). */
void healer_mqtt_face_start(HealerMqttFace *face, HealerEngine *engine, HealerStore *store, HealerSupply *supply,
                            HealerUpstream *upstream);

/* For healerctl status and D-Bus: "connected to HOST:PORT as gateway ID", "not connected to HOST:PORT: WHY (...)". */
char *healer_mqtt_face_describe(HealerMqttFace *face);

/*
 * A clean stop: the retained status says offline (published and acknowledged within timeout_ms when
 * the broker is there), then the connection closes without the will.  Events still in the outbox
 * stay there for the next start.
 */
void healer_mqtt_face_stop(HealerMqttFace *face, guint timeout_ms);

/* Unsubscribes from the stream; call before the engine is freed. */
void healer_mqtt_face_free(HealerMqttFace *face);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerMqttFace, healer_mqtt_face_free)

G_END_DECLS
