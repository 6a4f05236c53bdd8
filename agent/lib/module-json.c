#include "module-json.h"

#include "module-names.h"

static json_object *
function_value(guint function)
{
	const char *name = healer_module_function_to_string(function);

	return name ? json_object_new_string(name) : json_object_new_int(function);
}

static json_object *
extensions_to_json(GPtrArray *extensions)
{
	json_object *arr = json_object_new_array();

	for (guint i = 0; i < extensions->len; i++) {
		const HealerModuleExtension *ext = g_ptr_array_index(extensions, i);
		const char *name = healer_module_extension_type_to_string(ext->type);
		json_object *obj = json_object_new_object();
		json_object_object_add(obj, "type", json_object_new_int(ext->type));
		json_object_object_add(obj, "name", name ? json_object_new_string(name) : NULL);
		json_object_object_add(obj, "length", json_object_new_int(ext->length));
		json_object_array_add(arr, obj);
	}
	return arr;
}

json_object *
healer_module_to_json(const HealerModule *m, const char *file)
{
	json_object *obj = json_object_new_object();
	json_object *deps = json_object_new_array();
	json_object *faults = json_object_new_array();
	const HealerPlatform *platform = healer_platform_lookup(m->platform_id);
	g_autofree char *sha_hex = healer_sha256_to_hex(m->sha256_stored);
	g_autofree char *sha_computed_hex = healer_sha256_to_hex(m->sha256_computed);
	g_autofree char *flag_names = healer_module_flags_to_string(m->flags);

	for (guint i = 0; i < m->dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(m->dependencies, HealerModuleDependency, i);
		json_object *d = json_object_new_object();
		json_object_object_add(d, "function", function_value(dep->function));
		json_object_object_add(d, "index", json_object_new_int(dep->index));
		json_object_object_add(d, "version", json_object_new_int(dep->version));
		if (dep->from_extension)
			json_object_object_add(d, "mcu_target", json_object_new_int64(dep->target));
		json_object_array_add(deps, d);
	}
	for (guint i = 0; i < m->faults->len; i++)
		json_object_array_add(faults, json_object_new_string(g_ptr_array_index(m->faults, i)));

	if (file != NULL)
		json_object_object_add(obj, "file", json_object_new_string(file));
	json_object_object_add(obj, "offset", json_object_new_int64((gint64)(m->file_offset + m->prefix_offset)));
	json_object_object_add(obj, "module_offset", json_object_new_int64((gint64)m->file_offset));
	json_object_object_add(obj, "length", json_object_new_int64((gint64)m->length));
	json_object_object_add(obj, "platform_id", json_object_new_int(m->platform_id));
	json_object_object_add(obj, "platform", platform ? json_object_new_string(platform->name) : NULL);
	json_object_object_add(obj, "function", function_value(m->function));
	json_object_object_add(obj, "index", json_object_new_int(m->index));
	json_object_object_add(obj, "version", json_object_new_int(m->version));
	json_object_object_add(obj, "start_address", json_object_new_int64(m->start_address));
	json_object_object_add(obj, "end_address", json_object_new_int64(m->end_address));
	json_object_object_add(obj, "mcu_target", json_object_new_int(m->mcu_target));
	json_object_object_add(obj, "flags", json_object_new_int(m->flags));
	json_object_object_add(obj, "flag_names", json_object_new_string(flag_names));
	json_object_object_add(obj, "dependencies", deps);
	json_object_object_add(obj, "product_id", m->has_product ? json_object_new_int64(m->product_id) : NULL);
	json_object_object_add(obj, "product_version", m->has_product ? json_object_new_int(m->product_version) : NULL);
	json_object_object_add(obj, "name", m->name ? json_object_new_string(m->name) : NULL);
	if (m->compressed_header_present) {
		json_object *c = json_object_new_object();
		json_object_object_add(c, "method", json_object_new_int(m->compressed.method));
		json_object_object_add(c, "window_bits", json_object_new_int(m->compressed.window_bits));
		json_object_object_add(c, "original_size", json_object_new_int64(m->compressed.original_size));
		json_object_object_add(obj, "compression", c);
	} else {
		json_object_object_add(obj, "compression", NULL);
	}
	json_object_object_add(obj, "prefix_extensions", extensions_to_json(m->prefix_extensions));
	json_object_object_add(obj, "suffix_extensions", extensions_to_json(m->suffix_extensions));
	json_object_object_add(obj, "payload_size", json_object_new_int64((gint64)m->payload_size));
	json_object_object_add(obj, "sha256", json_object_new_string(sha_hex));
	json_object_object_add(obj, "sha256_computed", json_object_new_string(sha_computed_hex));
	json_object_object_add(obj, "sha_ok", json_object_new_boolean(m->sha_ok));
	json_object_object_add(obj, "crc32", json_object_new_int64(m->crc_stored));
	json_object_object_add(obj, "crc32_computed", json_object_new_int64(m->crc_computed));
	json_object_object_add(obj, "crc_ok", json_object_new_boolean(m->crc_ok));
	json_object_object_add(obj, "suffix_size", json_object_new_int(m->suffix_size));
	json_object_object_add(obj, "valid", json_object_new_boolean(healer_module_is_valid(m)));
	json_object_object_add(obj, "faults", faults);
	return obj;
}
