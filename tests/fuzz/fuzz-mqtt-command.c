/*
 * The MQTT command parser on arbitrary bytes: anyone the broker lets publish on
 * <prefix>/<gateway>/cmd/<verb> controls both the verb (the topic's last level) and the payload.
 * Input: the verb, a NUL, then the payload (no NUL: all of it is the verb and the payload is empty).
 * Either an error in the HEALER_ERROR domain naming the verb, or a command whose fields obey the
 * parser's rules.
 */
#include "fuzz-target.h"

#include <string.h>

#include "healer-error.h"
#include "mqtt-command.h"
#include "mqtt-topic.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	const uint8_t *nul = memchr(data, '\0', size);
	gsize verb_len = nul != NULL ? (gsize)(nul - data) : size;
	g_autofree char *verb = g_strndup((const char *)data, verb_len);
	const uint8_t *payload = nul != NULL ? nul + 1 : data + size;
	gsize payload_len = nul != NULL ? size - verb_len - 1 : 0;
	g_autoptr(HealerMqttCommand) command = NULL;
	g_autoptr(GError) error = NULL;

	if (!initialized) {
		/* A critical or warning from the parser is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}
	command = healer_mqtt_command_parse(verb, payload, payload_len, &error);
	if (command == NULL) {
		g_assert(error != NULL && error->domain == HEALER_ERROR);
		g_assert(error->code == HEALER_ERROR_NOT_FOUND || error->code == HEALER_ERROR_INVALID_ARGUMENT);
		g_assert(g_utf8_validate(error->message, -1, NULL));
		return 0;
	}
	g_assert(error == NULL);
	g_assert_cmpstr(healer_mqtt_command_verb_to_string(command->verb), ==, verb);
	switch (command->verb) {
	case HEALER_MQTT_COMMAND_HEAL:
		g_assert(command->all == (command->device_id == NULL));
		break;
	case HEALER_MQTT_COMMAND_RESET:
		g_assert(!command->all && command->device_id != NULL);
		break;
	case HEALER_MQTT_COMMAND_REFRESH:
	case HEALER_MQTT_COMMAND_STATUS:
		g_assert(!command->all && command->device_id == NULL);
		break;
	}
	if (command->device_id != NULL)
		g_assert(healer_mqtt_topic_level_is_valid(command->device_id));
	return 0;
}
