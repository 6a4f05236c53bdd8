/*
 * The bundle manifest parser (bundle.json, docs/bundles.md) on arbitrary
 * bytes, against a fixed catalog of three modules, one of them at two
 * paths; whatever it accepts must be catalog modules, in catalog order,
 * each listed in the input.
 */
#include "fuzz-target.h"

#include <string.h>

#include "bundle.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define MODULE(sha, path)                                                                                              \
	"{\"platform_id\": 6, \"function\": \"system-part\", \"index\": 1, \"version\": 1, \"release\": null, "        \
	"\"prerelease\": false, \"size\": 1, \"sha256\": \"" sha "\", \"module_sha256\": \"" sha "\", "                \
	"\"dependencies\": [], \"path\": \"" path "\"}"

/* clang-format off */
static const char catalog_json[] =
	"{\"format\": \"healer-catalog\", \"format_version\": 1, \"serial\": 1, "
	"\"created\": \"2026-01-31T12:00:00Z\", \"modules\": ["
	MODULE(SHA_A, "a.bin") ", "
	MODULE(SHA_B, "b/b.bin") ", "
	MODULE(SHA_C, "c1.bin") ", "
	MODULE(SHA_C, "c2.bin")
	"], \"releases\": []}";
/* clang-format on */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static HealerCatalog *catalog = NULL;
	g_autoptr(GPtrArray) carried = NULL;
	g_autoptr(GError) error = NULL;
	guint last = 0;

	if (catalog == NULL) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		catalog = healer_catalog_parse((const guint8 *)catalog_json, strlen(catalog_json), &error);
		g_assert_no_error(error);
		g_assert(catalog->modules->len == 4);
	}

	carried = healer_bundle_manifest_parse(data, size, catalog, &error);
	if (carried == NULL) {
		g_assert(error != NULL && error->message[0] != '\0');
		return 0;
	}
	g_assert(error == NULL);
	for (guint i = 0; i < carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(carried, i);
		g_autofree char *hex = healer_sha256_to_hex(module->sha256);
		guint index = 0;

		/* One of the catalog's, after the previous one, and named by the input. */
		g_assert(g_ptr_array_find(catalog->modules, module, &index));
		g_assert(i == 0 || index > last);
		last = index;
		g_assert(g_strstr_len((const char *)data, (gssize)size, hex) != NULL);
	}
	return 0;
}
