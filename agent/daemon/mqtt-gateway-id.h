/*
 * The default [mqtt] gateway-id: this machine's id (/etc/machine-id) made application-specific, the
 * way systemd derives ids for applications (sd_id128_get_machine_app_specific(), machine-id(5)):
 * HMAC-SHA256 keyed with the machine id over healerd's fixed application id, cut to 128 bits and
 * marked as a version 4 UUID, written as 32 lowercase hex digits.  Stable across reboots and
 * reinstalls of healerd, different on every machine, and it does not reveal the machine id (which
 * is confidential: it keys other applications' ids).  An administrator gets the same value with
 *
 *     systemd-id128 machine-id --app-specific=84c5f4b9de824863bedb78d3362cd14d
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* healerd's application id (generated once with `systemd-id128 new`; never change it). */
#define HEALER_MQTT_GATEWAY_APP_ID "84c5f4b9de824863bedb78d3362cd14d"

/*
 * This machine's gateway id, from /etc/machine-id through libsystemd.  HEALER_ERROR_NOT_FOUND when
 * there is no usable machine id (a container without one, an empty or "uninitialized" file), the
 * message saying why.
 */
char *healer_mqtt_gateway_id_default(GError **error);

/*
 * The gateway id of the machine whose id is `machine_id` (32 hex digits, or the UUID form), computed
 * here rather than by libsystemd: what the tests check healer_mqtt_gateway_id_default() against.
 * HEALER_ERROR_INVALID_ARGUMENT when `machine_id` is not a non-null 128-bit id.
 */
char *healer_mqtt_gateway_id_from_machine_id(const char *machine_id, GError **error);

/*
 * Tests only: healer_mqtt_gateway_id_default() then derives from `machine_id` (as
 * healer_mqtt_gateway_id_from_machine_id()) instead of /etc/machine-id; "" as if the machine had no
 * id; NULL goes back to /etc/machine-id.  Not thread-safe: call it before loading configurations.
 */
void healer_mqtt_gateway_id_set_machine_id_for_tests(const char *machine_id);

G_END_DECLS
