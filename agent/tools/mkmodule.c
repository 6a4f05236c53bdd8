/*
 * mkmodule: turns a raw image into a firmware module (or chains modules
 * into a COMBINED file).  A thin command over libhealer's writer, which the
 * firmware build, the tests and technicians all share.
 *
 *   mkmodule --platform photon --function system-part --index 1 --version 1000 \
 *            --start-address 0x08020000 --dependency system-part:2:1000 -o part1.bin part1.raw
 *   mkmodule --combine -o both.bin a.bin b.bin
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "healer-error.h"
#include "healer-file.h"
#include "module-names.h"
#include "module-writer.h"

typedef struct {
	HealerModuleSpec spec;
	GArray *prefix_extensions;
	GArray *suffix_extensions;
} Options;

static gboolean
parse_uint(const char *text, guint64 max, guint64 *out, const char *what, GError **error)
{
	char *end = NULL;
	guint64 v;

	errno = 0;
	v = g_ascii_strtoull(text, &end, 0);
	if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 || v > max) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: '%s' is not a number in 0..%" G_GUINT64_FORMAT, what, text, max);
		return FALSE;
	}
	*out = v;
	return TRUE;
}

static gboolean
parse_function(const char *text, guint8 *out, GError **error)
{
	int f = healer_module_function_from_string(text);
	guint64 v;

	if (f > 0) {
		*out = (guint8)f;
		return TRUE;
	}
	if (g_ascii_isdigit(text[0]) && parse_uint(text, MODULE_FUNCTION_MAX, &v, "function", NULL) && v > 0) {
		*out = (guint8)v;
		return TRUE;
	}
	g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
	            "unknown module function '%s' (bootloader, system-part, user-part, monolithic, radio-stack, "
	            "ncp, resource, settings, asset)",
	            text);
	return FALSE;
}

/* FUNCTION:INDEX:VERSION[:TARGET] */
static gboolean
parse_dependency(const char *text, HealerModuleSpec *spec, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(text, ":", -1);
	guint n = g_strv_length(parts);
	guint64 index, version, target = 0;
	guint i = spec->n_dependencies;

	if (n < 3 || n > 4) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "--dependency '%s': expected FUNCTION:INDEX:VERSION[:MCU_TARGET]", text);
		return FALSE;
	}
	if (i >= G_N_ELEMENTS(spec->dependencies)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "at most %u dependencies",
		            (guint)G_N_ELEMENTS(spec->dependencies));
		return FALSE;
	}
	if (!parse_function(parts[0], &spec->dependencies[i].function, error) ||
	    !parse_uint(parts[1], G_MAXUINT8, &index, "dependency index", error) ||
	    !parse_uint(parts[2], G_MAXUINT16, &version, "dependency version", error) ||
	    (n == 4 && !parse_uint(parts[3], G_MAXUINT32, &target, "dependency MCU target", error)))
		return FALSE;
	spec->dependencies[i].index = (guint8)index;
	spec->dependencies[i].version = (guint16)version;
	spec->dependencies[i].target = (guint32)target;
	spec->n_dependencies++;
	return TRUE;
}

/* TYPE:HEX, e.g. 0x0012:00aabb */
static gboolean
parse_extension(const char *text, GArray *into, GError **error)
{
	const char *colon = strchr(text, ':');
	g_autofree char *type_text = NULL;
	guint64 type;
	gsize hex_len;
	g_autofree guint8 *body = NULL;

	if (colon == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "extension '%s': expected TYPE:HEX",
		            text);
		return FALSE;
	}
	type_text = g_strndup(text, (gsize)(colon - text));
	if (!parse_uint(type_text, G_MAXUINT16 - 1, &type, "extension type", error))
		return FALSE;
	hex_len = strlen(colon + 1);
	if (hex_len % 2 != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "extension '%s': odd number of hex digits", text);
		return FALSE;
	}
	body = g_malloc(hex_len / 2 + 1);
	for (gsize i = 0; i < hex_len / 2; i++) {
		int hi = g_ascii_xdigit_value(colon[1 + 2 * i]), lo = g_ascii_xdigit_value(colon[2 + 2 * i]);
		if (hi < 0 || lo < 0) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "extension '%s': bad hex digit",
			            text);
			return FALSE;
		}
		body[i] = (guint8)(hi << 4 | lo);
	}
	{
		HealerExtensionSpec ext = {.type = (guint16)type, .body = g_bytes_new(body, hex_len / 2)};
		g_array_append_val(into, ext);
	}
	return TRUE;
}

static void
clear_extension(gpointer data)
{
	g_bytes_unref(((HealerExtensionSpec *)data)->body);
}

static int
combine(char **inputs, const char *output)
{
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_autoptr(GBytes) combined = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; inputs != NULL && inputs[i] != NULL; i++) {
		g_autofree char *data = NULL;
		gsize len = 0;
		if (!g_file_get_contents(inputs[i], &data, &len, &error)) {
			fprintf(stderr, "mkmodule: %s\n", error->message);
			return HEALER_EXIT_FAILED;
		}
		g_ptr_array_add(modules, g_bytes_new_take(g_steal_pointer(&data), len));
	}
	combined = healer_module_combine(modules, &error);
	if (combined == NULL || !healer_file_write_atomic(output, combined, &error)) {
		fprintf(stderr, "mkmodule: %s\n", error->message);
		return healer_error_to_exit_code(error) == HEALER_EXIT_USAGE ? HEALER_EXIT_USAGE : HEALER_EXIT_FAILED;
	}
	return HEALER_EXIT_OK;
}

int
main(int argc, char **argv)
{
	g_autofree char *platform = NULL, *function = NULL, *index = NULL, *version = NULL;
	g_autofree char *start = NULL, *output = NULL, *product_id = NULL, *product_version = NULL;
	g_autofree char *prefix_offset = NULL, *mcu_target = NULL, *name = NULL;
	g_auto(GStrv) deps = NULL, flags = NULL, prefix_ext = NULL, suffix_ext = NULL, inputs = NULL;
	gboolean in_place = FALSE, compress = FALSE, do_combine = FALSE;
	const GOptionEntry entries[] = {
	        {"platform", 'p', 0, G_OPTION_ARG_STRING, &platform, "Platform id or name", "ID|NAME"},
	        {"function", 'f', 0, G_OPTION_ARG_STRING, &function, "Module function", "NAME"},
	        {"index", 'i', 0, G_OPTION_ARG_STRING, &index, "Module index", "N"},
	        {"version", 'v', 0, G_OPTION_ARG_STRING, &version, "Module version (0..65535)", "N"},
	        {"start-address", 'a', 0, G_OPTION_ARG_STRING, &start, "Flash address of the module's first byte",
	         "ADDR"},
	        {"dependency", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &deps,
	         "Dependency (repeatable; the third and later become extensions)", "FUNCTION:INDEX:VERSION[:TARGET]"},
	        {"product-id", 0, 0, G_OPTION_ARG_STRING, &product_id, "Product id", "N"},
	        {"product-version", 0, 0, G_OPTION_ARG_STRING, &product_version, "Product version", "N"},
	        {"prefix-offset", 0, 0, G_OPTION_ARG_STRING, &prefix_offset,
	         "Where the prefix goes in the image (default 0)", "N"},
	        {"in-place", 0, 0, G_OPTION_ARG_NONE, &in_place,
	         "Overwrite a 24-byte placeholder prefix at the offset instead of inserting one", NULL},
	        {"mcu-target", 0, 0, G_OPTION_ARG_STRING, &mcu_target, "The prefix's MCU target byte", "N"},
	        {"flag", 0, 0, G_OPTION_ARG_STRING_ARRAY, &flags, "drop-module-info, encrypted (repeatable)", "FLAG"},
	        {"compress", 0, 0, G_OPTION_ARG_NONE, &compress, "Compress the payload (raw Deflate)", NULL},
	        {"name", 0, 0, G_OPTION_ARG_STRING, &name, "Add a NAME prefix extension", "TEXT"},
	        {"prefix-extension", 0, 0, G_OPTION_ARG_STRING_ARRAY, &prefix_ext, "Add a prefix extension",
	         "TYPE:HEX"},
	        {"suffix-extension", 0, 0, G_OPTION_ARG_STRING_ARRAY, &suffix_ext, "Add a suffix extension",
	         "TYPE:HEX"},
	        {"combine", 0, 0, G_OPTION_ARG_NONE, &do_combine, "Chain the input modules into one COMBINED file",
	         NULL},
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Where to write the module", "FILE"},
	        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &inputs, NULL, "INPUT..."},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) context = g_option_context_new("INPUT - stamp a firmware module onto a raw image");
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) prefix_exts = g_array_new(FALSE, TRUE, sizeof(HealerExtensionSpec));
	g_autoptr(GArray) suffix_exts = g_array_new(FALSE, TRUE, sizeof(HealerExtensionSpec));
	g_autoptr(GBytes) image = NULL, module = NULL;
	g_autofree char *image_data = NULL;
	gsize image_len = 0;
	HealerModuleSpec spec = {0};
	guint64 v;

	g_array_set_clear_func(prefix_exts, clear_extension);
	g_array_set_clear_func(suffix_exts, clear_extension);
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error))
		goto usage;
	if (output == NULL) {
		g_set_error_literal(&error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "--output is required");
		goto usage;
	}
	if (do_combine)
		return combine(inputs, output);
	if (inputs == NULL || inputs[0] == NULL || inputs[1] != NULL) {
		g_set_error_literal(&error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                    "give exactly one INPUT image");
		goto usage;
	}
	if (platform == NULL || function == NULL || version == NULL || start == NULL) {
		g_set_error_literal(&error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                    "--platform, --function, --version and --start-address are required");
		goto usage;
	}
	{
		const HealerPlatform *p = healer_platform_lookup_name(platform);
		if (p != NULL)
			spec.platform_id = p->id;
		else if (parse_uint(platform, G_MAXUINT16, &v, "platform", &error))
			spec.platform_id = (guint16)v;
		else
			goto usage;
	}
	if (!parse_function(function, &spec.function, &error))
		goto usage;
	if (index != NULL) {
		if (!parse_uint(index, G_MAXUINT8, &v, "index", &error))
			goto usage;
		spec.index = (guint8)v;
	}
	if (!parse_uint(version, G_MAXUINT16, &v, "version", &error))
		goto usage;
	spec.version = (guint16)v;
	if (!parse_uint(start, G_MAXUINT32, &v, "start address", &error))
		goto usage;
	spec.start_address = (guint32)v;
	for (guint i = 0; deps != NULL && deps[i] != NULL; i++) {
		if (!parse_dependency(deps[i], &spec, &error))
			goto usage;
	}
	if ((product_id == NULL) != (product_version == NULL)) {
		g_set_error_literal(&error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                    "--product-id and --product-version go together");
		goto usage;
	}
	if (product_id != NULL) {
		if (!parse_uint(product_id, G_MAXUINT16, &v, "product id", &error))
			goto usage;
		spec.product_id = (guint16)v;
		if (!parse_uint(product_version, G_MAXUINT16, &v, "product version", &error))
			goto usage;
		spec.product_version = (guint16)v;
		spec.has_product = TRUE;
	}
	if (prefix_offset != NULL) {
		if (!parse_uint(prefix_offset, G_MAXUINT32, &v, "prefix offset", &error))
			goto usage;
		spec.prefix_offset = (gsize)v;
	}
	if (mcu_target != NULL) {
		if (!parse_uint(mcu_target, G_MAXUINT8, &v, "MCU target", &error))
			goto usage;
		spec.mcu_target = (guint8)v;
	}
	for (guint i = 0; flags != NULL && flags[i] != NULL; i++) {
		if (g_strcmp0(flags[i], "drop-module-info") == 0)
			spec.flags |= MODULE_FLAG_DROP_MODULE_INFO;
		else if (g_strcmp0(flags[i], "encrypted") == 0)
			spec.flags |= MODULE_FLAG_ENCRYPTED;
		else {
			g_set_error(&error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
			            "unknown --flag '%s' (drop-module-info, encrypted; COMBINED comes from --combine)",
			            flags[i]);
			goto usage;
		}
	}
	for (guint i = 0; prefix_ext != NULL && prefix_ext[i] != NULL; i++) {
		if (!parse_extension(prefix_ext[i], prefix_exts, &error))
			goto usage;
	}
	for (guint i = 0; suffix_ext != NULL && suffix_ext[i] != NULL; i++) {
		if (!parse_extension(suffix_ext[i], suffix_exts, &error))
			goto usage;
	}
	spec.in_place = in_place;
	spec.compress = compress;
	spec.name = name;
	spec.prefix_extensions = prefix_exts;
	spec.suffix_extensions = suffix_exts;

	if (!g_file_get_contents(inputs[0], &image_data, &image_len, &error)) {
		fprintf(stderr, "mkmodule: %s\n", error->message);
		return HEALER_EXIT_FAILED;
	}
	image = g_bytes_new_take(g_steal_pointer(&image_data), image_len);
	module = healer_module_write(&spec, image, &error);
	if (module == NULL)
		goto usage;
	if (!healer_file_write_atomic(output, module, &error)) {
		fprintf(stderr, "mkmodule: %s\n", error->message);
		return HEALER_EXIT_FAILED;
	}
	return HEALER_EXIT_OK;

usage:
	fprintf(stderr, "mkmodule: %s\n", error->message);
	return HEALER_EXIT_USAGE;
}
