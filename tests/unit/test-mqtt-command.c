/*
 * The MQTT command parser (agent/daemon/mqtt-command.c): each verb with the arguments it takes, and
 * every refusal with the message an operator reads in the reply (naming the verb and the key).
 */
#include "healer-error.h"
#include "mqtt-command.h"
#include "test-util.h"

static HealerMqttCommand *
parse(const char *verb, const char *payload, GError **error)
{
	return healer_mqtt_command_parse(verb, payload, payload != NULL ? strlen(payload) : 0, error);
}

static void
test_accepted(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerMqttCommand) heal = parse("heal", "{\"device\": \"0123456789abcdef01234567\"}", &error);
	g_autoptr(HealerMqttCommand) all = parse("heal", "{\"all\": true}", &error);
	g_autoptr(HealerMqttCommand) reset = parse("reset", "{\"device\": \"abc\"}\n", &error);
	g_autoptr(HealerMqttCommand) refresh = parse("refresh", NULL, &error);
	g_autoptr(HealerMqttCommand) status = parse("status", "{}", &error);

	g_assert_no_error(error);
	g_assert_cmpint(heal->verb, ==, HEALER_MQTT_COMMAND_HEAL);
	g_assert_cmpstr(heal->device_id, ==, "0123456789abcdef01234567");
	g_assert_false(heal->all);
	g_assert_cmpint(all->verb, ==, HEALER_MQTT_COMMAND_HEAL);
	g_assert_true(all->all);
	g_assert_null(all->device_id);
	g_assert_cmpint(reset->verb, ==, HEALER_MQTT_COMMAND_RESET);
	g_assert_cmpstr(reset->device_id, ==, "abc");
	g_assert_cmpint(refresh->verb, ==, HEALER_MQTT_COMMAND_REFRESH);
	g_assert_cmpint(status->verb, ==, HEALER_MQTT_COMMAND_STATUS);
	g_assert_cmpstr(healer_mqtt_command_verb_to_string(status->verb), ==, "status");
}

typedef struct {
	const char *verb;
	const char *payload;
	gint code;
	const char *message;
} Refusal;

static const Refusal refusals[] = {
        {"flash", "{}", HEALER_ERROR_NOT_FOUND, "unknown command \"flash\" (known: heal, reset, refresh, status)"},
        {"", "{}", HEALER_ERROR_NOT_FOUND, "unknown command \"\" (known: heal, reset, refresh, status)"},
        {"heal", "{}", HEALER_ERROR_INVALID_ARGUMENT, "heal: device: missing"},
        {"heal", "{\"device\": 7}", HEALER_ERROR_INVALID_ARGUMENT, "heal: device: expected a string"},
        {"heal", "{\"device\": \"a/+\"}", HEALER_ERROR_INVALID_ARGUMENT, "heal: device: not a device id"},
        {"heal", "{\"all\": false}", HEALER_ERROR_INVALID_ARGUMENT,
         "heal: expected {\"device\": ID} or {\"all\": true}"},
        {"heal", "{\"all\": true, \"device\": \"x\"}", HEALER_ERROR_INVALID_ARGUMENT,
         "heal: expected {\"device\": ID} or {\"all\": true}"},
        {"reset", "{\"device\": \"x\", \"now\": 1}", HEALER_ERROR_INVALID_ARGUMENT, "reset: top level: unknown key \"now\""},
        {"status", "[]", HEALER_ERROR_INVALID_ARGUMENT, "status: top level: expected an object"},
        {"refresh", "{\"device\":", HEALER_ERROR_INVALID_ARGUMENT, "refresh: not valid JSON"},
};

static void
test_refused(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(refusals); i++) {
		const Refusal *r = &refusals[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerMqttCommand) command = parse(r->verb, r->payload, &error);

		g_test_message("%s %s -> %s", r->verb, r->payload, error != NULL ? error->message : "(accepted)");
		g_assert_null(command);
		g_assert_error(error, HEALER_ERROR, r->code);
		g_assert_true(g_str_has_prefix(error->message, r->message));
	}
}

/* Larger than a command needs: refused before it is parsed. */
static void
test_too_large(void)
{
	g_autoptr(GString) payload = g_string_new("{\"device\": \"");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerMqttCommand) command = NULL;

	while (payload->len <= HEALER_MQTT_COMMAND_MAX_BYTES)
		g_string_append_c(payload, 'a');
	g_string_append(payload, "\"}");
	command = healer_mqtt_command_parse("heal", payload->str, payload->len, &error);
	g_assert_null(command);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_true(strstr(error->message, "is too large (at most 4096)") != NULL);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mqtt-command/accepted", test_accepted);
	g_test_add_func("/mqtt-command/refused", test_refused);
	g_test_add_func("/mqtt-command/too-large", test_too_large);
	return g_test_run();
}
