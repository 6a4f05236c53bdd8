#include "mqtt-gateway-id.h"

#include <errno.h>
#include <string.h>

#include <systemd/sd-id128.h>

#include "healer-error.h"

/* Set by healer_mqtt_gateway_id_set_machine_id_for_tests(); NULL: /etc/machine-id. */
static char *machine_id_for_tests;

void
healer_mqtt_gateway_id_set_machine_id_for_tests(const char *machine_id)
{
	g_free(machine_id_for_tests);
	machine_id_for_tests = g_strdup(machine_id);
}

/* HEALER_MQTT_GATEWAY_APP_ID's bytes (the unit test checks they agree). */
#define APP_ID SD_ID128_MAKE(84, c5, f4, b9, de, 82, 48, 63, be, db, 78, d3, 36, 2c, d1, 4d)

static char *
id_to_string(sd_id128_t id)
{
	char text[SD_ID128_STRING_MAX];

	return g_strdup(sd_id128_to_string(id, text));
}

/* What libsystemd's errno means for /etc/machine-id, in words an administrator acts on. */
static gboolean
fail_no_machine_id(GError **error, int errnum)
{
	const char *why;

	switch (errnum) {
	case ENOENT:
		why = "missing";
		break;
	case ENOMEDIUM:
	case ENOPKG:
		why = "empty or not initialized yet";
		break;
	case EINVAL:
	case EUCLEAN:
		why = "not a machine id";
		break;
	default:
		why = g_strerror(errnum);
		break;
	}
	return healer_fail(error, HEALER_ERROR_NOT_FOUND, "no machine id to derive it from (/etc/machine-id: %s)", why);
}

char *
healer_mqtt_gateway_id_from_machine_id(const char *machine_id, GError **error)
{
	sd_id128_t machine;
	sd_id128_t app = APP_ID;
	sd_id128_t result;
	guint8 digest[32];
	gsize digest_len = sizeof digest;
	g_autoptr(GHmac) hmac = NULL;

	if (machine_id == NULL || sd_id128_from_string(machine_id, &machine) < 0 || sd_id128_is_null(machine)) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "'%s' is not a machine id (32 hexadecimal digits)",
		            machine_id != NULL ? machine_id : "");
		return NULL;
	}
	hmac = g_hmac_new(G_CHECKSUM_SHA256, machine.bytes, sizeof machine.bytes);
	g_hmac_update(hmac, app.bytes, sizeof app.bytes);
	g_hmac_get_digest(hmac, digest, &digest_len);
	memcpy(result.bytes, digest, sizeof result.bytes);
	/* A version 4 UUID, RFC 4122 variant, as systemd marks the ids it derives. */
	result.bytes[6] = (result.bytes[6] & 0x0F) | 0x40;
	result.bytes[8] = (result.bytes[8] & 0x3F) | 0x80;
	return id_to_string(result);
}

char *
healer_mqtt_gateway_id_default(GError **error)
{
	sd_id128_t id;
	int r;

	if (machine_id_for_tests != NULL) {
		if (machine_id_for_tests[0] == '\0') {
			fail_no_machine_id(error, ENOENT);
			return NULL;
		}
		return healer_mqtt_gateway_id_from_machine_id(machine_id_for_tests, error);
	}
	r = sd_id128_get_machine_app_specific(APP_ID, &id);
	if (r < 0) {
		fail_no_machine_id(error, -r);
		return NULL;
	}
	return id_to_string(id);
}
