#include "mqtt-command.h"

#include "healer-error.h"
#include "healer-json.h"
#include "healer-text.h"
#include "json-autoptr.h"
#include "mqtt-topic.h"

static const char *const verbs[] = {
        [HEALER_MQTT_COMMAND_HEAL] = "heal",
        [HEALER_MQTT_COMMAND_RESET] = "reset",
        [HEALER_MQTT_COMMAND_REFRESH] = "refresh",
        [HEALER_MQTT_COMMAND_STATUS] = "status",
};

const char *
healer_mqtt_command_verb_to_string(HealerMqttCommandVerb verb)
{
	return (guint)verb < G_N_ELEMENTS(verbs) ? verbs[verb] : "unknown";
}

void
healer_mqtt_command_free(HealerMqttCommand *command)
{
	if (command == NULL)
		return;
	g_free(command->device_id);
	g_free(command);
}

/* {"device": ID}: an id that could be a topic level of ours (it names devices/<id>). */
static gboolean
get_device(json_object *root, char **out, GError **error)
{
	const char *id = NULL;

	if (!healer_json_get_string(root, "device", "", &id, error))
		return FALSE;
	if (!healer_mqtt_topic_level_is_valid(id))
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "device: not a device id");
	*out = g_strdup(id);
	return TRUE;
}

static gboolean
parse_args(HealerMqttCommand *command, json_object *root, GError **error)
{
	static const char *const heal_keys[] = {"device", "all", NULL};
	static const char *const reset_keys[] = {"device", NULL};
	static const char *const no_keys[] = {NULL};
	gboolean all = FALSE;

	switch (command->verb) {
	case HEALER_MQTT_COMMAND_HEAL:
		if (!healer_json_check_keys(root, "", heal_keys, error))
			return FALSE;
		if (json_object_object_get_ex(root, "all", NULL)) {
			if (!healer_json_get_bool(root, "all", "", &all, error))
				return FALSE;
			if (!all || json_object_object_get_ex(root, "device", NULL))
				return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
				                   "expected {\"device\": ID} or {\"all\": true}");
			command->all = TRUE;
			return TRUE;
		}
		return get_device(root, &command->device_id, error);
	case HEALER_MQTT_COMMAND_RESET:
		return healer_json_check_keys(root, "", reset_keys, error) &&
		       get_device(root, &command->device_id, error);
	case HEALER_MQTT_COMMAND_REFRESH:
	case HEALER_MQTT_COMMAND_STATUS:
		return healer_json_check_keys(root, "", no_keys, error);
	}
	g_assert_not_reached();
}

HealerMqttCommand *
healer_mqtt_command_parse(const char *verb, const void *payload, gsize len, GError **error)
{
	g_autoptr(HealerMqttCommand) command = g_new0(HealerMqttCommand, 1);
	g_autoptr(json_object) root = NULL;
	g_autoptr(GError) local = NULL;
	gsize i;

	for (i = 0; i < G_N_ELEMENTS(verbs); i++) {
		if (g_strcmp0(verb, verbs[i]) == 0)
			break;
	}
	if (i == G_N_ELEMENTS(verbs)) {
		g_autofree char *shown = healer_text_escape(verb != NULL ? verb : "", -1);
		healer_fail(error, HEALER_ERROR_NOT_FOUND,
		            "unknown command \"%s\" (known: heal, reset, refresh, status)", shown);
		return NULL;
	}
	command->verb = (HealerMqttCommandVerb)i;
	if (len > HEALER_MQTT_COMMAND_MAX_BYTES) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: %" G_GSIZE_FORMAT " bytes is too large (at most %d)", verbs[i], len,
		            HEALER_MQTT_COMMAND_MAX_BYTES);
		return NULL;
	}
	root = len == 0 ? json_object_new_object() : healer_json_parse(payload, len, verb, &local);
	if (root == NULL || !healer_json_value_object(root, "top level", &local) ||
	    !parse_args(command, root, &local)) {
		/* Whatever the JSON layer called it, a bad payload is the caller's malformed argument. */
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: %s", verbs[i], local->message);
		return NULL;
	}
	return g_steal_pointer(&command);
}
