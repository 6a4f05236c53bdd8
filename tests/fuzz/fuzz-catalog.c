/*
 * The catalog parser on arbitrary bytes (a catalog comes from an upstream
 * server or a USB stick), through healer_catalog_load_verified with
 * allow_unsigned so the signature check does not stop every input; then
 * every field of whatever it accepts is checked against the format's rules.
 */
#include "fuzz-target.h"

#include <string.h>

#include "catalog.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	g_autoptr(HealerCatalog) catalog = NULL;
	g_autoptr(GError) error = NULL;

	if (!initialized) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}

	catalog = healer_catalog_load_verified(data, size, NULL, 0, NULL, 0, TRUE, &error);
	if (catalog == NULL) {
		g_assert(error != NULL);
		return 0;
	}
	g_assert(error == NULL);
	g_assert(catalog->created != NULL);
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);

		g_auto(GStrv) parts = NULL;

		/* Relative, and no component can climb out of the directory it is joined to. */
		g_assert(module->path != NULL && module->path[0] != '\0' && module->path[0] != '/');
		parts = g_strsplit(module->path, "/", -1);
		for (guint j = 0; parts[j] != NULL; j++)
			g_assert(parts[j][0] != '\0' && strcmp(parts[j], "..") != 0 && strcmp(parts[j], ".") != 0);
	}
	for (guint i = 0; i < catalog->releases->len; i++) {
		const HealerCatalogRelease *release = g_ptr_array_index(catalog->releases, i);

		g_assert(release->name != NULL);
		for (guint j = 0; j < release->modules->len; j++)
			g_assert(strlen(g_ptr_array_index(release->modules, j)) == 2 * HEALER_SHA256_SIZE);
	}
	/* A catalog over the minimum serial is refused the same way as one parsed. */
	if (catalog->serial < G_MAXUINT64) {
		g_autoptr(HealerCatalog) again =
		        healer_catalog_load_verified(data, size, NULL, 0, NULL, catalog->serial + 1, TRUE, &error);
		g_assert(again == NULL && error != NULL);
	}
	return 0;
}
