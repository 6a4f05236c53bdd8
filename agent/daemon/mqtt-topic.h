/*
 * healerd's MQTT topic names: <prefix>/<gateway-id>/<suffix> (docs/mqtt.md, "Topics"), and what may
 * be a level of them.  A gateway id, device id or verb that could widen a subscription ('+', '#') or
 * add a level ('/') is refused, never escaped: an operator's ACL is written against these names.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The longest topic level healerd makes or takes (a device id is 24 hex digits; a gateway id 32). */
#define HEALER_MQTT_MAX_LEVEL 128

/* "<prefix>/<gateway_id>/<suffix>" (suffix: "status", "events", "devices/<id>", "cmd/+"...). */
char *healer_mqtt_topic(const char *prefix, const char *gateway_id, const char *suffix);

/*
 * Whether `name` may be one topic level: non-empty, valid UTF-8, at most HEALER_MQTT_MAX_LEVEL bytes,
 * none of '/', '+', '#', no control character and no '$' first (the broker's own topics start so).
 */
gboolean healer_mqtt_topic_level_is_valid(const char *name);

/* A prefix: one or more valid levels separated by single '/' (no leading, trailing or doubled '/'). */
gboolean healer_mqtt_prefix_is_valid(const char *prefix);

G_END_DECLS
