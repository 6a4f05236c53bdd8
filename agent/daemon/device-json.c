#include "device-json.h"

/*
 * From the state JSON (the describe the device sent, or the one its family made): the modules (its
 * "m", [] without one) and the family's own details (its "details" object, NULL without one).
 */
static void
state_to_json(const char *state_json, json_object **modules, json_object **details)
{
	*modules = NULL;
	*details = NULL;
	if (state_json != NULL && state_json[0] != '\0') {
		json_object *state = json_tokener_parse(state_json);
		json_object *value = NULL;
		if (state != NULL && json_object_object_get_ex(state, "m", &value))
			*modules = json_object_get(value);
		if (state != NULL && json_object_object_get_ex(state, "details", &value) &&
		    json_object_is_type(value, json_type_object))
			*details = json_object_get(value);
		json_object_put(state);
	}
	if (*modules == NULL)
		*modules = json_object_new_array();
}

json_object *
healer_device_info_to_json(const HealerDeviceInfo *d)
{
	json_object *o = json_object_new_object();
	json_object *modules, *details;

	state_to_json(d->modules_json, &modules, &details);
	json_object_object_add(o, "id", json_object_new_string(d->id));
	json_object_object_add(o, "port", json_object_new_string(d->port));
	json_object_object_add(o, "transport", json_object_new_string(d->transport));
	json_object_object_add(o, "platform_id", json_object_new_int(d->platform_id));
	json_object_object_add(o, "platform", json_object_new_string(d->platform_name));
	json_object_object_add(o, "mode", json_object_new_string(d->mode));
	json_object_object_add(o, "led", json_object_new_string(d->led));
	json_object_object_add(o, "state", json_object_new_string(d->state));
	json_object_object_add(o, "detail", json_object_new_string(d->detail));
	json_object_object_add(o, "safe_mode_reason", json_object_new_string(d->safe_mode_reason));
	json_object_object_add(o, "progress", json_object_new_int((int)d->progress));
	json_object_object_add(o, "current_step", json_object_new_string(d->current_step));
	json_object_object_add(o, "last_error", json_object_new_string(d->last_error));
	json_object_object_add(o, "last_heal", json_object_new_int64((gint64)d->last_heal));
	json_object_object_add(o, "modules", modules);
	json_object_object_add(o, "details", details);
	{
		json_object *ttys = json_object_new_array();
		for (guint i = 0; d->ttys != NULL && d->ttys[i] != NULL; i++)
			json_object_array_add(ttys, json_object_new_string(d->ttys[i]));
		json_object_object_add(o, "ttys", ttys);
	}
	return o;
}
