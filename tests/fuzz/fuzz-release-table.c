/*
 * The release table parser on arbitrary bytes (the table is data: shipped
 * by the firmware build and, later, inside catalogs), then every query on
 * whatever table it accepts.
 */
#include "fuzz-target.h"

#include "healer/module-format.h"
#include "release-table.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	static const guint16 versions[] = {0, 1, 100, 201, 1000, 2002, 65535};
	g_autoptr(HealerReleaseTable) table = NULL;
	g_autoptr(GError) error = NULL;
	guint n;

	if (!initialized) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}

	table = healer_release_table_new_from_data((const char *)data, size, &error);
	if (table == NULL) {
		g_assert(error != NULL);
		return 0;
	}
	g_assert(error == NULL);

	n = healer_release_table_get_n_releases(table);
	/* Functions 0..MAX, and one past it, which must answer "none". */
	for (guint function = 0; function <= MODULE_FUNCTION_MAX + 1; function++) {
		for (gsize v = 0; v < G_N_ELEMENTS(versions); v++) {
			g_autofree char *described = healer_release_table_label(table, function, versions[v]);
			(void)described;
		}
		for (guint i = 0; i < n; i++) {
			const char *name = healer_release_table_get_name(table, i);
			guint16 version = 0;

			g_assert(name != NULL);
			if (healer_release_table_lookup(table, name, function, &version)) {
				/* What a release ships, describe must name (it or a range holding it). */
				g_autofree char *described = healer_release_table_label(table, function, version);
				g_assert(described != NULL);
			}
		}
		{
			guint16 version = 0;
			(void)healer_release_table_lookup(table, "0.0.0-not-in-any-table", function, &version);
		}
	}
	return 0;
}
