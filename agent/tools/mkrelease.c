/*
 * mkrelease: builds every module of every release, and every application,
 * from the firmware build description (device-firmware/firmware.json), and
 * writes the release table that maps their module versions to release
 * names.  One description, so versions, dependencies and the table cannot
 * disagree.
 *
 *   mkrelease firmware.json OUTDIR
 *
 * OUTDIR/<release>/{bootloader,system-part1,system-part2}.bin,
 * OUTDIR/apps/<name>.bin and OUTDIR/releases.json.  Each payload starts with
 * the image info (healer/firmware-image.h) and is filled to its size with
 * bytes derived from its name, so every module of every release differs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "healer-error.h"
#include "healer-file.h"
#include "healer/firmware-image.h"
#include "json-autoptr.h"
#include "module-names.h"
#include "module-writer.h"

typedef struct {
	guint8 function;
	guint8 index;
	guint32 start;
} Slot;

static gboolean
get_member(json_object *obj, const char *key, json_type type, json_object **out, const char *where, GError **error)
{
	if (!json_object_object_get_ex(obj, key, out) || !json_object_is_type(*out, type)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s.%s: missing or not a %s", where, key,
		            json_type_to_name(type));
		return FALSE;
	}
	return TRUE;
}

static gboolean
get_uint(json_object *obj, const char *key, guint64 max, guint64 *out, const char *where, GError **error)
{
	json_object *v;
	int64_t n;

	if (!get_member(obj, key, json_type_int, &v, where, error))
		return FALSE;
	n = json_object_get_int64(v);
	if (n < 0 || (guint64)n > max) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s.%s: %" G_GINT64_FORMAT " is outside 0..%" G_GUINT64_FORMAT, where, key, (gint64)n, max);
		return FALSE;
	}
	*out = (guint64)n;
	return TRUE;
}

static gboolean
read_slot(json_object *slots, const char *name, Slot *slot, GError **error)
{
	json_object *obj, *function;
	g_autofree char *where = g_strdup_printf("slots.%s", name);
	guint64 v;
	int f;

	if (!get_member(slots, name, json_type_object, &obj, "slots", error) ||
	    !get_member(obj, "function", json_type_string, &function, where, error))
		return FALSE;
	f = healer_module_function_from_string(json_object_get_string(function));
	if (f <= 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s.function: unknown", where);
		return FALSE;
	}
	slot->function = (guint8)f;
	if (!get_uint(obj, "index", G_MAXUINT8, &v, where, error))
		return FALSE;
	slot->index = (guint8)v;
	if (!get_uint(obj, "start", G_MAXUINT32, &v, where, error))
		return FALSE;
	slot->start = (guint32)v;
	return TRUE;
}

static GBytes *
make_payload(guint8 kind, guint16 abi_entries, const char *release, const char *name, gsize size)
{
	guint8 *data = g_malloc0(size);
	firmware_image_info_t info = {.magic = FIRMWARE_IMAGE_MAGIC, .kind = kind, .abi_entries = abi_entries};
	guint32 x = g_str_hash(release) ^ (g_str_hash(name) * 2654435761u) ^ kind;

	g_strlcpy(info.release, release, sizeof info.release);
	g_strlcpy(info.name, name, sizeof info.name);
	for (gsize i = sizeof info; i < size; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (guint8)(x >> 16);
	}
	/* Little-endian target: the struct's bytes are its wire form. */
	memcpy(data, &info, sizeof info);
	return g_bytes_new_take(data, size);
}

static gboolean
write_module(const char *path, const HealerModuleSpec *spec, GBytes *payload, GError **error)
{
	g_autoptr(GBytes) module = healer_module_write(spec, payload, error);

	if (module == NULL) {
		g_prefix_error(error, "%s: ", path);
		return FALSE;
	}
	return healer_file_write_atomic(path, module, error);
}

static gboolean
add_dependencies(HealerModuleSpec *spec, json_object *obj, const char *where, GError **error)
{
	json_object *deps;

	if (!json_object_object_get_ex(obj, "dependencies", &deps))
		return TRUE;
	if (!json_object_is_type(deps, json_type_array) || json_object_array_length(deps) > 2) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s.dependencies: expected up to two entries", where);
		return FALSE;
	}
	for (size_t i = 0; i < json_object_array_length(deps); i++) {
		json_object *d = json_object_array_get_idx(deps, i);
		int f;
		if (!json_object_is_type(d, json_type_array) || json_object_array_length(d) != 3 ||
		    (f = healer_module_function_from_string(json_object_get_string(json_object_array_get_idx(d, 0)))) <=
		            0) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
			            "%s.dependencies[%zu]: expected [function, index, version]", where, i);
			return FALSE;
		}
		spec->dependencies[i].function = (guint8)f;
		spec->dependencies[i].index = (guint8)json_object_get_int(json_object_array_get_idx(d, 1));
		spec->dependencies[i].version = (guint16)json_object_get_int(json_object_array_get_idx(d, 2));
		spec->n_dependencies++;
	}
	return TRUE;
}

static gboolean
build_release(json_object *release, guint16 platform, const Slot slots[3], const char *outdir,
              json_object *table_releases, GError **error)
{
	static const char *const parts[] = {"bootloader", "system-part1", "system-part2"};
	static const guint8 kinds[] = {FIRMWARE_IMAGE_BOOTLOADER, FIRMWARE_IMAGE_SYSTEM, FIRMWARE_IMAGE_SYSTEM};
	json_object *name_obj, *table_modules = json_object_new_object(), *table_release = json_object_new_object();
	g_autofree char *dir = NULL;
	const char *name;
	guint64 abi;

	json_object_object_add(table_release, "modules", table_modules);
	json_object_array_add(table_releases, table_release);
	if (!get_member(release, "name", json_type_string, &name_obj, "releases[]", error))
		return FALSE;
	name = json_object_get_string(name_obj);
	json_object_object_add(table_release, "name", json_object_new_string(name));
	if (!get_uint(release, "abi_entries", SYSTEM_ABI_COUNT, &abi, name, error))
		return FALSE;
	dir = g_build_filename(outdir, name, NULL);
	if (g_mkdir_with_parents(dir, 0755) != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(parts); i++) {
		json_object *part;
		g_autofree char *where = g_strdup_printf("%s.%s", name, parts[i]);
		g_autofree char *file = g_strdup_printf("%s/%s.bin", dir, parts[i]);
		g_autoptr(GBytes) payload = NULL;
		HealerModuleSpec spec = {.start_address = slots[i].start,
		                         .platform_id = platform,
		                         .function = slots[i].function,
		                         .index = slots[i].index};
		guint64 version, size;

		if (!get_member(release, parts[i], json_type_object, &part, name, error) ||
		    !get_uint(part, "version", G_MAXUINT16, &version, where, error) ||
		    !get_uint(part, "size", 0x40000, &size, where, error) ||
		    !add_dependencies(&spec, part, where, error))
			return FALSE;
		if (size < sizeof(firmware_image_info_t)) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s.size: too small", where);
			return FALSE;
		}
		spec.version = (guint16)version;
		payload = make_payload(kinds[i], (guint16)abi, name, parts[i], (gsize)size);
		if (!write_module(file, &spec, payload, error))
			return FALSE;
		json_object_object_add(table_modules, healer_module_function_to_string(slots[i].function),
		                       json_object_new_int((int)version));
	}
	return TRUE;
}

static gboolean
build_app(json_object *app, guint16 platform, const Slot *user, json_object *releases, const char *outdir,
          GError **error)
{
	json_object *name_obj, *against_obj;
	g_autofree char *dir = g_build_filename(outdir, "apps", NULL);
	g_autofree char *file = NULL;
	g_autoptr(GBytes) payload = NULL;
	HealerModuleSpec spec = {.start_address = user->start,
	                         .platform_id = platform,
	                         .function = user->function,
	                         .index = user->index};
	guint64 version, abi, size;
	gboolean found = FALSE;

	if (!get_member(app, "name", json_type_string, &name_obj, "apps[]", error) ||
	    !get_member(app, "built_against", json_type_string, &against_obj, json_object_get_string(name_obj),
	                error) ||
	    !get_uint(app, "version", G_MAXUINT16, &version, "app", error) ||
	    !get_uint(app, "abi_entries", SYSTEM_ABI_COUNT, &abi, "app", error) ||
	    !get_uint(app, "size", 0x20000, &size, "app", error))
		return FALSE;
	/* An application depends on system part 2 (which exports the dynalib) of the release it was built against. */
	for (size_t i = 0; i < json_object_array_length(releases); i++) {
		json_object *r = json_object_array_get_idx(releases, i), *n, *part, *v;
		if (json_object_object_get_ex(r, "name", &n) &&
		    g_strcmp0(json_object_get_string(n), json_object_get_string(against_obj)) == 0 &&
		    json_object_object_get_ex(r, "system-part2", &part) &&
		    json_object_object_get_ex(part, "version", &v)) {
			spec.dependencies[0].function = MODULE_FUNCTION_SYSTEM_PART;
			spec.dependencies[0].index = 2;
			spec.dependencies[0].version = (guint16)json_object_get_int(v);
			spec.n_dependencies = 1;
			found = TRUE;
		}
	}
	if (!found) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "app %s: built_against names no release",
		            json_object_get_string(name_obj));
		return FALSE;
	}
	spec.version = (guint16)version;
	spec.has_product = TRUE;
	spec.product_id = platform;
	spec.product_version = (guint16)version;
	g_mkdir_with_parents(dir, 0755);
	file = g_strdup_printf("%s/%s.bin", dir, json_object_get_string(name_obj));
	payload = make_payload(FIRMWARE_IMAGE_APPLICATION, (guint16)abi, json_object_get_string(against_obj),
	                       json_object_get_string(name_obj), (gsize)size);
	return write_module(file, &spec, payload, error);
}

static gboolean
run(const char *input, const char *outdir, GError **error)
{
	g_autoptr(json_object) root = json_object_from_file(input);
	g_autoptr(json_object) table = json_object_new_object();
	json_object *slots, *releases, *apps, *table_releases = json_object_new_array();
	static const char *const slot_names[] = {"bootloader", "system-part1", "system-part2", "user-part"};
	Slot slot[4];
	guint64 platform;
	g_autofree char *table_path = g_build_filename(outdir, "releases.json", NULL);
	g_autoptr(GBytes) table_bytes = NULL;
	const char *text;

	json_object_object_add(table, "format", json_object_new_string("healer-release-table"));
	json_object_object_add(table, "format_version", json_object_new_int(1));
	json_object_object_add(table, "releases", table_releases);
	if (root == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: %s", input, json_util_get_last_err());
		return FALSE;
	}
	if (!get_uint(root, "platform_id", G_MAXUINT16, &platform, input, error) ||
	    !get_member(root, "slots", json_type_object, &slots, input, error) ||
	    !get_member(root, "releases", json_type_array, &releases, input, error) ||
	    !get_member(root, "apps", json_type_array, &apps, input, error))
		return FALSE;
	for (gsize i = 0; i < G_N_ELEMENTS(slot_names); i++) {
		if (!read_slot(slots, slot_names[i], &slot[i], error))
			return FALSE;
	}
	for (size_t i = 0; i < json_object_array_length(releases); i++) {
		if (!build_release(json_object_array_get_idx(releases, i), (guint16)platform, slot, outdir,
		                   table_releases, error))
			return FALSE;
	}
	for (size_t i = 0; i < json_object_array_length(apps); i++) {
		if (!build_app(json_object_array_get_idx(apps, i), (guint16)platform, &slot[3], releases, outdir,
		               error))
			return FALSE;
	}
	text = json_object_to_json_string_ext(table, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	table_bytes = g_bytes_new(text, strlen(text));
	return healer_file_write_atomic(table_path, table_bytes, error);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: mkrelease FIRMWARE.json OUTDIR [STAMP]\n");
		return 2;
	}
	if (!run(argv[1], argv[2], &error)) {
		fprintf(stderr, "mkrelease: %s\n", error->message);
		return 1;
	}
	if (argc == 4) {
		g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
		if (!healer_file_write_atomic(argv[3], empty, &error)) {
			fprintf(stderr, "mkrelease: %s\n", error->message);
			return 1;
		}
	}
	return 0;
}
