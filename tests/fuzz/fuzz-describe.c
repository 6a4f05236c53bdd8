/*
 * The describe parser on arbitrary bytes (a device's DESCRIBE_REPLY body),
 * then everything healerd does with a describe it accepts: the round trip
 * through healer_describe_to_json() (which must parse back to the same text),
 * lookups, dependency checks and their text.
 */
#include <string.h>

#include "fuzz-target.h"

#include "describe.h"
#include "healer-error.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	g_autoptr(HealerDescribe) describe = NULL;
	g_autoptr(HealerDescribe) again = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL, *text2 = NULL;

	if (!initialized) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}

	describe = healer_describe_parse((const char *)data, size, &error);
	if (describe == NULL) {
		g_assert(error != NULL && error->domain == HEALER_ERROR && error->code == HEALER_ERROR_INVALID_DATA);
		g_assert(g_str_has_prefix(error->message, "describe: "));
		return 0;
	}
	g_assert(error == NULL);

	text = healer_describe_to_string(describe);
	again = healer_describe_parse(text, strlen(text), &error);
	if (again == NULL)
		g_error("to_json output does not parse back: %s\n%s", error->message, text);
	text2 = healer_describe_to_string(again);
	g_assert_cmpstr(text, ==, text2);
	g_assert(again->platform_id == describe->platform_id && again->modules->len == describe->modules->len);

	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		const HealerDescribeModule *m2 = &g_array_index(again->modules, HealerDescribeModule, i);
		g_autoptr(GArray) unmet = healer_describe_module_unmet_dependencies(describe, m);

		g_assert(m->function == m2->function && m->index == m2->index && m->version == m2->version);
		g_assert(m->has_info == m2->has_info && m->has_hash == m2->has_hash && m->store == m2->store);
		g_assert(memcmp(m->sha256, m2->sha256, 32) == 0);
		g_assert(m->dependencies->len == m2->dependencies->len);
		g_assert(unmet->len <= m->dependencies->len);
		(void)healer_describe_module_dependency_failed(m);
		(void)healer_describe_module_valid(m);
		if (m->has_info && m->store == MODULE_STORE_MAIN)
			g_assert(healer_describe_find(describe, m->function, m->index) != NULL);
		for (guint u = 0; u < unmet->len; u++) {
			const HealerDescribeUnmet *un = &g_array_index(unmet, HealerDescribeUnmet, u);
			g_autofree char *dep = healer_describe_dependency_to_string(&un->dependency);

			g_assert(dep != NULL && un->dependency.function != MODULE_FUNCTION_NONE);
			g_assert(!un->installed || un->installed_version < un->dependency.version);
		}
	}
	return 0;
}
