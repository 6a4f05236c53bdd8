/* g_autoptr() support for json-c types, which json-c does not ship. */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_tokener, json_tokener_free)
static inline void
healer_json_object_release(json_object *obj)
{
	json_object_put(obj);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, healer_json_object_release)
