/*
 * The module reader on arbitrary bytes, and what inspect does with every
 * module it returns: the JSON object and each dependency as text.
 */
#include "fuzz-target.h"

#include "module-json.h"
#include "module-reader.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	g_autoptr(GPtrArray) modules = NULL;
	g_autoptr(GError) error = NULL;

	if (!initialized) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}

	modules = healer_module_parse(data, size, &error);
	if (modules == NULL) {
		g_assert(error != NULL);
		return 0;
	}
	g_assert(error == NULL);
	g_assert(modules->len > 0);
	for (guint i = 0; i < modules->len; i++) {
		const HealerModule *module = g_ptr_array_index(modules, i);
		json_object *obj = healer_module_to_json(module, i % 2 ? "fuzz.bin" : NULL);
		const char *text = json_object_to_json_string(obj);

		g_assert(text != NULL);
		json_object_put(obj);
		for (guint d = 0; d < module->dependencies->len; d++) {
			g_autofree char *dep = healer_module_dependency_to_string(
			        &g_array_index(module->dependencies, HealerModuleDependency, d));
			g_assert(dep != NULL);
		}
	}
	return 0;
}
