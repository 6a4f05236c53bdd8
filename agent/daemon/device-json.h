/*
 * A device as JSON, the one form every face gives it in: D-Bus GetDevices
 * (what `healerctl list --json` prints), and later MQTT.  The keys are those
 * docs/dbus-api.md lists for GetDevices.
 */
#pragma once

#include <json-c/json.h>

#include "engine.h"

G_BEGIN_DECLS

/* A new object: id, port, transport, platform_id, platform, mode, led, state, detail, safe_mode_reason,
 * progress, current_step, last_error, last_heal, modules (the describe's "m" array, [] without one),
 * details (the family's own view of the device, its state JSON's "details" object: the Particle and DFU
 * families give one; null without) and ttys. */
json_object *healer_device_info_to_json(const HealerDeviceInfo *info);

G_END_DECLS
