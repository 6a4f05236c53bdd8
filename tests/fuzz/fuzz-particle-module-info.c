/*
 * A Particle device's GET_MODULE_INFO reply on arbitrary bytes (healer_particle_module_info_parse).
 * A refusal is HEALER_ERROR_INVALID_DATA saying "module info".  What is accepted: at least one
 * module, each with a function that has a name, no dependency of function NONE; the old format
 * ran exactly the integrity and dependency checks; the reply written again in its own format reads
 * back to the same modules; a module has a failure text exactly when a check failed, and one that
 * names each dependency the others do not meet; the dependency safe-mode flag agrees with the
 * modules; the plan state holds each position once, at its first entry's version.
 */
#include "fuzz-target.h"

#include <string.h>

#include "healer-error.h"
#include "healer/module-format.h"
#include "module-names.h"
#include "module-reader.h"
#include "particle-module-info.h"

static void
assert_same_module(const HealerParticleModule *a, const HealerParticleModule *b)
{
	g_assert_cmpuint(a->function, ==, b->function);
	g_assert_cmpuint(a->index, ==, b->index);
	g_assert_cmpuint(a->version, ==, b->version);
	g_assert_cmpuint(a->size, ==, b->size);
	g_assert_cmpuint(a->max_size, ==, b->max_size);
	g_assert_cmphex(a->checked, ==, b->checked);
	g_assert_cmphex(a->passed, ==, b->passed);
	g_assert_cmpint(a->has_hash, ==, b->has_hash);
	if (a->has_hash)
		g_assert_cmpmem(a->hash, sizeof(a->hash), b->hash, sizeof(b->hash));
	g_assert_cmpuint(a->dependencies->len, ==, b->dependencies->len);
	for (guint k = 0; k < a->dependencies->len; k++) {
		const HealerModuleDependency *da = &g_array_index(a->dependencies, HealerModuleDependency, k);
		const HealerModuleDependency *db = &g_array_index(b->dependencies, HealerModuleDependency, k);
		g_assert_cmpuint(da->function, ==, db->function);
		g_assert_cmpuint(da->index, ==, db->index);
		g_assert_cmpuint(da->version, ==, db->version);
	}
}

/* Whether another module of `info` holds (function, index) at `version` or newer. */
static gboolean
met_by_others(const HealerParticleModuleInfo *info, const HealerParticleModule *self, const HealerModuleDependency *d)
{
	for (guint i = 0; i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);
		if (m != self && m->function == d->function && m->index == d->index)
			return m->version >= d->version;
	}
	return FALSE;
}

static void
check_module(const HealerParticleModuleInfo *info, const HealerParticleModule *m)
{
	guint32 failed = healer_particle_module_failed(m);
	g_autofree char *text = healer_particle_module_describe_failure(info, m);

	g_assert_nonnull(healer_module_function_to_string(m->function));
	g_assert_cmpuint(m->function, !=, MODULE_FUNCTION_NONE);
	if (info->format == HEALER_PARTICLE_MODULE_INFO_OLD) {
		g_assert_cmphex(m->checked, ==, HEALER_PARTICLE_CHECK_INTEGRITY | HEALER_PARTICLE_CHECK_DEPENDENCIES);
		g_assert_cmphex(m->passed & ~m->checked, ==, 0);
		g_assert_false(m->has_hash);
		g_assert_cmpuint(m->max_size, ==, 0);
	}
	for (guint k = 0; k < m->dependencies->len; k++) {
		const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
		g_assert_cmpuint(d->function, !=, MODULE_FUNCTION_NONE);
		g_assert_nonnull(healer_module_function_to_string(d->function));
	}
	g_assert_cmphex(failed, ==, m->checked & ~m->passed);
	g_assert_true((failed == 0) == (text == NULL));
	if (failed & HEALER_PARTICLE_CHECK_DEPENDENCIES) {
		g_assert_true(g_str_has_prefix(text, "dependency check failed"));
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
			g_autofree char *needs =
			        g_strdup_printf("needs %s %u version >= %u (has ",
			                        healer_module_function_to_string(d->function), d->index, d->version);
			g_assert_true(met_by_others(info, m, d) || strstr(text, needs) != NULL);
		}
	}
	if (text != NULL)
		g_assert_true(g_utf8_validate(text, -1, NULL));
}

static void
check_round_trip(const HealerParticleModuleInfo *info)
{
	g_autoptr(GBytes) bytes = healer_particle_module_info_encode(info->modules, info->format);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerParticleModuleInfo) back = NULL;
	gsize len;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	back = healer_particle_module_info_parse(data, len, &error);
	g_assert_no_error(error);
	g_assert_cmpint(back->format, ==, info->format);
	g_assert_cmpuint(back->modules->len, ==, info->modules->len);
	for (guint i = 0; i < info->modules->len; i++)
		assert_same_module(g_ptr_array_index(info->modules, i), g_ptr_array_index(back->modules, i));
}

static void
check_state(const HealerParticleModuleInfo *info)
{
	g_autoptr(HealerDeviceState) state = healer_particle_module_info_to_state(info, 6);

	g_assert_cmpuint(state->platform_id, ==, 6);
	g_assert_cmpuint(state->modules->len, <=, info->modules->len);
	for (guint i = 0; i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);
		const HealerInstalledModule *s = healer_device_state_find(state, m->function, m->index);
		gboolean first = TRUE;
		g_assert_nonnull(s);
		for (guint j = 0; j < i; j++) {
			const HealerParticleModule *o = g_ptr_array_index(info->modules, j);
			if (o->function == m->function && o->index == m->index)
				first = FALSE;
		}
		if (first) {
			g_assert_cmpuint(s->version, ==, m->version);
			g_assert_cmpuint(s->dependencies->len, ==, m->dependencies->len);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	gboolean any_dependency_failure = FALSE;

	if (!initialized) {
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}
	info = healer_particle_module_info_parse(data, size, &error);
	if (info == NULL) {
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_true(g_str_has_prefix(error->message, "module info"));
		return 0;
	}
	g_assert_no_error(error);
	g_assert_cmpuint(info->modules->len, >, 0);
	for (guint i = 0; i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);
		check_module(info, m);
		if (healer_particle_module_failed(m) & HEALER_PARTICLE_CHECK_DEPENDENCIES)
			any_dependency_failure = TRUE;
	}
	g_assert_cmpint(healer_particle_module_info_has_dependency_failure(info), ==, any_dependency_failure);
	check_round_trip(info);
	check_state(info);
	return 0;
}
