/*
 * A command that arrived on <prefix>/<gateway>/cmd/<verb> (docs/mqtt.md, "Commands"): its verb from
 * the topic's last level and its arguments from the JSON payload, checked strictly.  A pure parser of
 * outside input (anyone the broker lets publish there), so it is fuzzed (tests/fuzz).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	HEALER_MQTT_COMMAND_HEAL,    /* {"device": ID} or {"all": true} */
	HEALER_MQTT_COMMAND_RESET,   /* {"device": ID} */
	HEALER_MQTT_COMMAND_REFRESH, /* {} */
	HEALER_MQTT_COMMAND_STATUS,  /* {} */
} HealerMqttCommandVerb;

typedef struct {
	HealerMqttCommandVerb verb;
	char *device_id; /* heal, reset: the device; NULL for heal {"all": true} */
	gboolean all;    /* heal {"all": true} */
} HealerMqttCommand;

/* The largest payload taken: a command is a few keys. */
#define HEALER_MQTT_COMMAND_MAX_BYTES 4096

/*
 * Parses `verb` (the topic level after "cmd/") and `payload` (JSON; an empty payload is {}).
 * HEALER_ERROR_NOT_FOUND for an unknown verb ("unknown command \"x\" (known: heal, reset, refresh,
 * status)"); HEALER_ERROR_INVALID_ARGUMENT for a payload that is not what the verb takes (the message
 * names the key: "heal: device: expected a string"); nothing is returned then.
 */
HealerMqttCommand *healer_mqtt_command_parse(const char *verb, const void *payload, gsize len, GError **error);
void healer_mqtt_command_free(HealerMqttCommand *command);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerMqttCommand, healer_mqtt_command_free)

const char *healer_mqtt_command_verb_to_string(HealerMqttCommandVerb verb);

G_END_DECLS
