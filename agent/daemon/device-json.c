#include "device-json.h"

/* The modules the device described, as it sent them; [] when it sent none (or nothing readable). */
static json_object *
modules_to_json(const char *describe_json)
{
	json_object *modules = NULL;

	if (describe_json != NULL && describe_json[0] != '\0') {
		json_object *describe = json_tokener_parse(describe_json);
		json_object *m = NULL;
		if (describe != NULL && json_object_object_get_ex(describe, "m", &m))
			modules = json_object_get(m);
		json_object_put(describe);
	}
	return modules != NULL ? modules : json_object_new_array();
}

json_object *
healer_device_info_to_json(const HealerDeviceInfo *d)
{
	json_object *o = json_object_new_object();

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
	json_object_object_add(o, "modules", modules_to_json(d->modules_json));
	{
		json_object *ttys = json_object_new_array();
		for (guint i = 0; d->ttys != NULL && d->ttys[i] != NULL; i++)
			json_object_array_add(ttys, json_object_new_string(d->ttys[i]));
		json_object_object_add(o, "ttys", ttys);
	}
	return o;
}
