/*
 * healerctl inspect [--json] [--releases TABLE] FILE...
 *
 * Reads each file as devices would, prints every module in it and its
 * verdicts, and exits 1 if any file holds anything but valid modules.
 */
#include <stdio.h>

#include "cli-options.h"
#include "healer-error.h"
#include "healerctl.h"
#include "json-autoptr.h"
#include "module-json.h"
#include "module-names.h"
#include "module-reader.h"
#include "release-table.h"

static char *
version_text(const HealerReleaseTable *table, guint function, guint16 version)
{
	g_autofree char *release = NULL;

	/* Only system firmware versions name releases; apps number their own. */
	if (function != MODULE_FUNCTION_USER_PART)
		release = healer_release_table_label(table, function, version);
	return release ? g_strdup_printf("%u (%s)", version, release) : g_strdup_printf("%u", version);
}

static void
print_module(const char *file, const HealerModule *m, guint nth, guint count, const HealerReleaseTable *table)
{
	const HealerPlatform *platform = healer_platform_lookup(m->platform_id);
	const char *function = healer_module_function_to_string(m->function);
	g_autofree char *flags = healer_module_flags_to_string(m->flags);
	g_autofree char *version = version_text(table, m->function, m->version);
	g_autofree char *sha_stored = healer_sha256_to_hex(m->sha256_stored);
	g_autofree char *sha_computed = healer_sha256_to_hex(m->sha256_computed);

	if (count > 1)
		printf("%s: module %u of %u at offset %" G_GSIZE_FORMAT "\n", file, nth, count, m->file_offset);
	else
		printf("%s\n", file);
	printf("  Platform:       %s (%u)\n", platform ? platform->name : "unknown", m->platform_id);
	printf("  Function:       %s\n", function ? function : "unknown");
	printf("  Index:          %u\n", m->index);
	printf("  Version:        %s\n", version);
	printf("  Address:        0x%08x-0x%08x (%" G_GSIZE_FORMAT " bytes, prefix at offset 0x%" G_GSIZE_MODIFIER
	       "x)\n",
	       m->start_address, m->end_address, m->length, m->file_offset + m->prefix_offset);
	printf("  Flags:          0x%02x (%s)\n", m->flags, flags);
	if (m->mcu_target != 0)
		printf("  MCU target:     0x%02x\n", m->mcu_target);
	if (m->name != NULL)
		printf("  Name:           %s\n", m->name);
	if (m->dependencies->len == 0)
		printf("  Dependencies:   none\n");
	for (guint i = 0; i < m->dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(m->dependencies, HealerModuleDependency, i);
		g_autofree char *text = healer_module_dependency_to_string(dep);
		g_autofree char *release = healer_release_table_label(table, dep->function, dep->version);
		printf("  %-16s%s%s%s%s\n", i == 0 ? "Dependencies:" : "", text, release ? " (" : "",
		       release ? release : "", release ? ")" : "");
	}
	if (m->has_product)
		printf("  Product:        id %u, version %u%s\n", m->product_id, m->product_version,
		       m->product_id == MODULE_PRODUCT_NONE ? " (none)" : "");
	else
		printf("  Product:        not recorded (suffix of %u bytes)\n", m->suffix_size);
	if (m->compressed_header_present)
		printf("  Compression:    method %u, window bits %u, %u bytes uncompressed\n", m->compressed.method,
		       m->compressed.window_bits, m->compressed.original_size);
	for (guint i = 0; i < m->prefix_extensions->len + m->suffix_extensions->len; i++) {
		gboolean prefix = i < m->prefix_extensions->len;
		const HealerModuleExtension *ext =
		        prefix ? g_ptr_array_index(m->prefix_extensions, i)
		               : g_ptr_array_index(m->suffix_extensions, i - m->prefix_extensions->len);
		const char *name = healer_module_extension_type_to_string(ext->type);
		printf("  Extension:      %s %s (type 0x%04x, %u bytes)\n", prefix ? "prefix" : "suffix",
		       name ? name : "unknown", ext->type, ext->length);
	}
	printf("  Suffix:         %u bytes\n", m->suffix_size);
	printf("  SHA-256:        %s\n", sha_stored);
	if (m->sha_ok)
		printf("  SHA-256 check:  ok%s\n", (m->flags & MODULE_FLAG_DROP_MODULE_INFO) ? " (payload only)" : "");
	else
		printf("  SHA-256 check:  FAILED, computed %s\n", sha_computed);
	if (m->crc_ok)
		printf("  CRC-32 check:   ok (0x%08x)\n", m->crc_stored);
	else
		printf("  CRC-32 check:   FAILED, stored 0x%08x computed 0x%08x\n", m->crc_stored, m->crc_computed);
	printf("  Verdict:        %s\n\n", healer_module_is_valid(m) ? "valid" : "INVALID");
}

static HealerReleaseTable *
load_release_table(const char *path, GError **error)
{
	const char *env = g_getenv("HEALER_RELEASE_TABLE");

	if (path != NULL)
		return healer_release_table_new_from_file(path, error);
	if (env != NULL && *env != '\0')
		return healer_release_table_new_from_file(env, error);
	/* The installed firmware's table, if there is one: names are a courtesy, not required. */
	if (g_file_test(HEALER_FIRMWARE_DIR "/releases.json", G_FILE_TEST_EXISTS))
		return healer_release_table_new_from_file(HEALER_FIRMWARE_DIR "/releases.json", error);
	return NULL;
}

int
healerctl_inspect(int argc, char **argv)
{
	gboolean json = FALSE;
	g_autofree char *releases_path = NULL;
	g_auto(GStrv) files = NULL;
	const GOptionEntry entries[] = {
	        HEALERCTL_OPTION_JSON(&json, "Print a JSON array, one object per module"),
	        {"releases", 0, 0, G_OPTION_ARG_FILENAME, &releases_path,
	         "Release table naming module versions (default: $HEALER_RELEASE_TABLE, then the installed one)",
	         "TABLE"},
	        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILE..."},
	        HEALERCTL_OPTIONS_END,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = NULL;
	g_autoptr(json_object) array = json_object_new_array();
	int status = HEALER_EXIT_OK;

	if (healerctl_options_parse("inspect", "FILE... - show and verify firmware modules",
	                            "Exit status: 0 all files are valid modules, 1 any is not, 2 usage.", entries,
	                            &argc, &argv) != HEALER_EXIT_OK)
		return HEALER_EXIT_USAGE;
	if (files == NULL || files[0] == NULL)
		return healerctl_usage_error("inspect", "no file given (usage: healerctl inspect [--json] FILE...)");
	table = load_release_table(releases_path, &error);
	if (table == NULL && error != NULL)
		return healerctl_usage_error("inspect", "release table: %s", error->message);

	for (guint f = 0; files[f] != NULL; f++) {
		g_autoptr(GPtrArray) modules = NULL;
		g_autoptr(GError) file_error = NULL;

		modules = healer_module_parse_file(files[f], &file_error);
		if (modules == NULL) {
			fprintf(stderr, "healerctl inspect: %s\n", file_error->message);
			status = HEALER_EXIT_FAILED;
			continue;
		}
		for (guint i = 0; i < modules->len; i++) {
			const HealerModule *m = g_ptr_array_index(modules, i);
			if (json)
				json_object_array_add(array, healer_module_to_json(m, files[f]));
			else
				print_module(files[f], m, i + 1, modules->len, table);
			for (guint k = 0; k < m->faults->len; k++) {
				fprintf(stderr, "healerctl inspect: %s: module at offset %" G_GSIZE_FORMAT ": %s\n",
				        files[f], m->file_offset, (const char *)g_ptr_array_index(m->faults, k));
				status = HEALER_EXIT_FAILED;
			}
		}
	}
	if (json)
		healerctl_print_json(array, TRUE);
	fflush(stdout);
	return status;
}
