#include "mqtt-topic.h"

#include <string.h>

char *
healer_mqtt_topic(const char *prefix, const char *gateway_id, const char *suffix)
{
	return g_strjoin("/", prefix, gateway_id, suffix, NULL);
}

gboolean
healer_mqtt_topic_level_is_valid(const char *name)
{
	gsize len;

	if (name == NULL || name[0] == '\0' || name[0] == '$')
		return FALSE;
	len = strlen(name);
	if (len > HEALER_MQTT_MAX_LEVEL || !g_utf8_validate(name, (gssize)len, NULL))
		return FALSE;
	for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (c == '/' || c == '+' || c == '#' || g_unichar_iscntrl(c))
			return FALSE;
	}
	return TRUE;
}

gboolean
healer_mqtt_prefix_is_valid(const char *prefix)
{
	g_auto(GStrv) levels = NULL;

	if (prefix == NULL || prefix[0] == '\0')
		return FALSE;
	levels = g_strsplit(prefix, "/", -1);
	for (guint i = 0; levels[i] != NULL; i++) {
		if (!healer_mqtt_topic_level_is_valid(levels[i]))
			return FALSE;
	}
	return TRUE;
}
