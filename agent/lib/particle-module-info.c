/*
 * GET_MODULE_INFO (request 90) replies, read and written with protobuf-c.
 *
 * Facts this file relies on (reference notes: particle-usb.md "GetModuleInfoReply",
 * particle-device-os.md §1.6 and §4b; sources Device OS control/storage.cpp and
 * system_info_encoding.cpp, particle-usb's getFirmwareModuleInfo):
 * - Old format, field 1 (Device OS before 5.6.0, every Gen 2 device): main-store modules only; types
 *   in an enum of its own (1 bootloader, 2 system part, 3 user part, 4 monolithic, 5 NCP, 6 radio
 *   stack), mapped here onto the module header's function numbers (2, 4, 5, 3, 7, 8), dependencies
 *   too; `validity` holds failures (0x01 integrity, 0x02 dependencies), read as checked =
 *   INTEGRITY|DEPENDENCIES and passed = checked minus the failures.  No hash, no size limit.
 * - New format, field 2 (Device OS 5.6.0 and later): types are function numbers, every store is
 *   listed (only store 0, main, is kept), checks come as checked/passed masks (fixed32), failed =
 *   checked & ~passed; the hash is the SHA-256 the device computes.
 * - A reply with any old entry is read in the old format, as particle-usb reads it.
 * - A dependency (f, i, v) is met iff the module in position (f, i) has version >= v; not
 *   transitive (Device OS validate_module_dependencies()).  A dependency of type 0 is an empty slot.
 * - Versions are 16 bits and indexes 8 bits in a module header; a reply that says more is not a
 *   device's, and is refused naming the entry.
 */
#include "particle-module-info.h"

#include <string.h>

#include "healer-error.h"
#include "module-names.h"
#include "module-reader.h"
#include "particle-control.h"
#include "particle-control.pb-c.h"

#define OLD_VALIDITY_INTEGRITY    0x01
#define OLD_VALIDITY_DEPENDENCIES 0x02
#define OLD_CHECKED               (HEALER_PARTICLE_CHECK_INTEGRITY | HEALER_PARTICLE_CHECK_DEPENDENCIES)

/* The old format's type enum, index = old type, value = module function; 0 = not in the enum. */
static const guint8 old_type_to_function[] = {
        [1] = MODULE_FUNCTION_BOOTLOADER,    [2] = MODULE_FUNCTION_SYSTEM_PART,  [3] = MODULE_FUNCTION_USER_PART,
        [4] = MODULE_FUNCTION_MONO_FIRMWARE, [5] = MODULE_FUNCTION_NCP_FIRMWARE, [6] = MODULE_FUNCTION_RADIO_STACK,
};

static guint
function_to_old_type(guint function)
{
	for (guint t = 1; t < G_N_ELEMENTS(old_type_to_function); t++) {
		if (old_type_to_function[t] == function)
			return t;
	}
	return 0;
}

const char *
healer_particle_module_info_format_to_string(HealerParticleModuleInfoFormat format)
{
	switch (format) {
	case HEALER_PARTICLE_MODULE_INFO_OLD:
		return "old";
	case HEALER_PARTICLE_MODULE_INFO_NEW:
		return "new";
	}
	return NULL;
}

const char *
healer_particle_check_to_string(guint check)
{
	switch (check) {
	case HEALER_PARTICLE_CHECK_INTEGRITY:
		return "integrity";
	case HEALER_PARTICLE_CHECK_DEPENDENCIES:
		return "dependencies";
	case HEALER_PARTICLE_CHECK_RANGE:
		return "range";
	case HEALER_PARTICLE_CHECK_PLATFORM:
		return "platform";
	case HEALER_PARTICLE_CHECK_PRODUCT:
		return "product";
	case HEALER_PARTICLE_CHECK_DEPENDENCIES_FULL:
		return "dependencies-full";
	default:
		return NULL;
	}
}

HealerParticleModule *
healer_particle_module_new(guint function, guint index, guint16 version)
{
	HealerParticleModule *module = g_new0(HealerParticleModule, 1);

	module->function = (guint8)function;
	module->index = (guint8)index;
	module->version = version;
	module->dependencies = g_array_new(FALSE, TRUE, sizeof(HealerModuleDependency));
	return module;
}

void
healer_particle_module_free(HealerParticleModule *module)
{
	if (module == NULL)
		return;
	g_array_unref(module->dependencies);
	g_free(module);
}

void
healer_particle_module_add_dependency(HealerParticleModule *module, guint function, guint index, guint16 version)
{
	HealerModuleDependency dep = {.function = (guint8)function, .index = (guint8)index, .version = version};

	g_array_append_val(module->dependencies, dep);
}

void
healer_particle_module_info_free(HealerParticleModuleInfo *info)
{
	if (info == NULL)
		return;
	g_ptr_array_unref(info->modules);
	g_free(info);
}

guint32
healer_particle_module_failed(const HealerParticleModule *module)
{
	return module->checked & ~module->passed;
}

/* ---- Reading ---------------------------------------------------------- */

/* Index and version checks shared by modules and dependencies; `where` names the entry. */
static gboolean
check_index_version(const char *where, guint32 index, guint32 version, GError **error)
{
	if (index > G_MAXUINT8)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: index %u is over %u", where, index,
		                   G_MAXUINT8);
	if (version > G_MAXUINT16)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: version %u is over %u", where, version,
		                   G_MAXUINT16);
	return TRUE;
}

/* An old-format type as a function; `dependency` allows 0 (an empty slot, returned as NONE). */
static gboolean
old_function(const char *where, guint32 type, gboolean dependency, guint8 *function, GError **error)
{
	if (dependency && type == 0) {
		*function = MODULE_FUNCTION_NONE;
		return TRUE;
	}
	if (type >= G_N_ELEMENTS(old_type_to_function) || old_type_to_function[type] == 0)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: type %u is not in the old format's enum (1 bootloader ... 6 radio stack)",
		                   where, type);
	*function = old_type_to_function[type];
	return TRUE;
}

static gboolean
new_function(const char *where, guint32 type, gboolean dependency, guint8 *function, GError **error)
{
	if ((type == MODULE_FUNCTION_NONE && !dependency) || type > MODULE_FUNCTION_MAX)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: type %u is not a module function (1 resource ... %u asset)", where, type,
		                   MODULE_FUNCTION_MAX);
	*function = (guint8)type;
	return TRUE;
}

typedef gboolean (*FunctionReader)(const char *where, guint32 type, gboolean dependency, guint8 *function,
                                   GError **error);

/* Reads one dependency (the old and new messages have the same three fields); empty slots are dropped. */
static gboolean
read_dependency(HealerParticleModule *module, const char *module_where, gsize k, FunctionReader read_function,
                guint32 type, guint32 index, guint32 version, GError **error)
{
	g_autofree char *where = g_strdup_printf("%s.dependencies[%zu]", module_where, k);
	guint8 function = MODULE_FUNCTION_NONE;

	if (!read_function(where, type, TRUE, &function, error) || !check_index_version(where, index, version, error))
		return FALSE;
	if (function != MODULE_FUNCTION_NONE)
		healer_particle_module_add_dependency(module, function, index, (guint16)version);
	return TRUE;
}

static HealerParticleModule *
read_old_module(const Healer__Particle__LegacyModule *m, gsize i, GError **error)
{
	g_autofree char *where = g_strdup_printf("modules[%zu]", i);
	g_autoptr(HealerParticleModule) module = NULL;
	guint8 function = MODULE_FUNCTION_NONE;

	if (!old_function(where, m->type, FALSE, &function, error) ||
	    !check_index_version(where, m->index, m->version, error))
		return NULL;
	if ((m->validity & ~(guint32)(OLD_VALIDITY_INTEGRITY | OLD_VALIDITY_DEPENDENCIES)) != 0) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: validity 0x%x has bits the old format does not define (0x01 integrity, "
		            "0x02 dependencies)",
		            where, m->validity);
		return NULL;
	}
	module = healer_particle_module_new(function, m->index, (guint16)m->version);
	module->size = m->size;
	module->checked = OLD_CHECKED;
	module->passed = OLD_CHECKED;
	if (m->validity & OLD_VALIDITY_INTEGRITY)
		module->passed &= ~(guint32)HEALER_PARTICLE_CHECK_INTEGRITY;
	if (m->validity & OLD_VALIDITY_DEPENDENCIES)
		module->passed &= ~(guint32)HEALER_PARTICLE_CHECK_DEPENDENCIES;
	for (gsize k = 0; k < m->n_dependencies; k++) {
		const Healer__Particle__LegacyDependency *d = m->dependencies[k];
		if (!read_dependency(module, where, k, old_function, d->type, d->index, d->version, error))
			return NULL;
	}
	return g_steal_pointer(&module);
}

/* NULL with no error: a module of another store, read and checked, then left out. */
static HealerParticleModule *
read_new_module(const Healer__Particle__Module *m, gsize i, GError **error)
{
	g_autofree char *where = g_strdup_printf("modules[%zu]", i);
	g_autoptr(HealerParticleModule) module = NULL;
	guint8 function = MODULE_FUNCTION_NONE;

	if (!new_function(where, m->type, FALSE, &function, error) ||
	    !check_index_version(where, m->index, m->version, error))
		return NULL;
	if (m->hash.len != 0 && m->hash.len != sizeof(module->hash)) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: hash of %zu byte(s), a SHA-256 has %zu", where,
		            m->hash.len, sizeof(module->hash));
		return NULL;
	}
	module = healer_particle_module_new(function, m->index, (guint16)m->version);
	module->size = m->size;
	module->max_size = m->max_size;
	module->checked = m->checked_flags;
	module->passed = m->passed_flags;
	module->has_hash = m->hash.len != 0;
	if (module->has_hash)
		memcpy(module->hash, m->hash.data, sizeof(module->hash));
	for (gsize k = 0; k < m->n_dependencies; k++) {
		const Healer__Particle__ModuleDependency *d = m->dependencies[k];
		if (!read_dependency(module, where, k, new_function, d->type, d->index, d->version, error))
			return NULL;
	}
	if (m->store != HEALER_PARTICLE_STORE_MAIN)
		return NULL;
	return g_steal_pointer(&module);
}

static HealerParticleModuleInfo *
module_info_new(HealerParticleModuleInfoFormat format)
{
	HealerParticleModuleInfo *info = g_new0(HealerParticleModuleInfo, 1);

	info->format = format;
	info->modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);
	return info;
}

HealerParticleModuleInfo *
healer_particle_module_info_parse(const guint8 *data, gsize len, GError **error)
{
	Healer__Particle__ModuleInfoReply *reply;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	g_autoptr(GError) entry_error = NULL;
	const char *format;

	reply = healer__particle__module_info_reply__unpack(NULL, len, data);
	if (reply == NULL) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "module info: %zu byte(s) that do not decode as a GetModuleInfo reply", len);
		return NULL;
	}
	if (reply->n_legacy_modules > 0) {
		info = module_info_new(HEALER_PARTICLE_MODULE_INFO_OLD);
		for (gsize i = 0; i < reply->n_legacy_modules && entry_error == NULL; i++) {
			HealerParticleModule *m = read_old_module(reply->legacy_modules[i], i, &entry_error);
			if (m != NULL)
				g_ptr_array_add(info->modules, m);
		}
	} else {
		info = module_info_new(HEALER_PARTICLE_MODULE_INFO_NEW);
		for (gsize i = 0; i < reply->n_modules && entry_error == NULL; i++) {
			HealerParticleModule *m = read_new_module(reply->modules[i], i, &entry_error);
			if (m != NULL)
				g_ptr_array_add(info->modules, m);
		}
	}
	healer__particle__module_info_reply__free_unpacked(reply, NULL);

	format = healer_particle_module_info_format_to_string(info->format);
	if (entry_error != NULL) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "module info (%s format): %s", format,
		            entry_error->message);
		return NULL;
	}
	if (info->modules->len == 0) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "module info (%s format): no module in the main store",
		            format);
		return NULL;
	}
	return g_steal_pointer(&info);
}

/* ---- Writing ---------------------------------------------------------- */

static GBytes *
encode_old(GPtrArray *modules)
{
	Healer__Particle__ModuleInfoReply reply = HEALER__PARTICLE__MODULE_INFO_REPLY__INIT;
	g_autofree Healer__Particle__LegacyModule *entries = g_new0(Healer__Particle__LegacyModule, modules->len);
	g_autofree Healer__Particle__LegacyModule **entry_ptrs = g_new0(Healer__Particle__LegacyModule *, modules->len);
	g_autoptr(GPtrArray) allocations = g_ptr_array_new_with_free_func(g_free);

	reply.legacy_modules = entry_ptrs;
	for (guint i = 0; i < modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(modules, i);
		Healer__Particle__LegacyModule *e = &entries[reply.n_legacy_modules];
		guint32 failed = healer_particle_module_failed(m);
		Healer__Particle__LegacyDependency *deps;
		Healer__Particle__LegacyDependency **dep_ptrs;

		/* The old enum has no resource, settings or asset: such a device never lists them. */
		if (function_to_old_type(m->function) == 0)
			continue;
		healer__particle__legacy_module__init(e);
		e->type = function_to_old_type(m->function);
		e->index = m->index;
		e->version = m->version;
		e->size = m->size;
		if (failed & HEALER_PARTICLE_CHECK_INTEGRITY)
			e->validity |= OLD_VALIDITY_INTEGRITY;
		if (failed & HEALER_PARTICLE_CHECK_DEPENDENCIES)
			e->validity |= OLD_VALIDITY_DEPENDENCIES;
		deps = g_new0(Healer__Particle__LegacyDependency, m->dependencies->len);
		dep_ptrs = g_new0(Healer__Particle__LegacyDependency *, m->dependencies->len);
		g_ptr_array_add(allocations, deps);
		g_ptr_array_add(allocations, dep_ptrs);
		e->dependencies = dep_ptrs;
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
			Healer__Particle__LegacyDependency *o = &deps[e->n_dependencies];
			if (function_to_old_type(d->function) == 0)
				continue;
			healer__particle__legacy_dependency__init(o);
			o->type = function_to_old_type(d->function);
			o->index = d->index;
			o->version = d->version;
			dep_ptrs[e->n_dependencies++] = o;
		}
		entry_ptrs[reply.n_legacy_modules++] = e;
	}
	return healer_particle_message_pack(&reply.base);
}

static GBytes *
encode_new(GPtrArray *modules)
{
	Healer__Particle__ModuleInfoReply reply = HEALER__PARTICLE__MODULE_INFO_REPLY__INIT;
	g_autofree Healer__Particle__Module *entries = g_new0(Healer__Particle__Module, modules->len);
	g_autofree Healer__Particle__Module **entry_ptrs = g_new0(Healer__Particle__Module *, modules->len);
	g_autoptr(GPtrArray) allocations = g_ptr_array_new_with_free_func(g_free);

	reply.modules = entry_ptrs;
	for (guint i = 0; i < modules->len; i++) {
		HealerParticleModule *m = g_ptr_array_index(modules, i);
		Healer__Particle__Module *e = &entries[i];
		Healer__Particle__ModuleDependency *deps =
		        g_new0(Healer__Particle__ModuleDependency, m->dependencies->len);
		Healer__Particle__ModuleDependency **dep_ptrs =
		        g_new0(Healer__Particle__ModuleDependency *, m->dependencies->len);

		g_ptr_array_add(allocations, deps);
		g_ptr_array_add(allocations, dep_ptrs);
		healer__particle__module__init(e);
		e->type = m->function;
		e->index = m->index;
		e->version = m->version;
		e->store = HEALER_PARTICLE_STORE_MAIN;
		e->max_size = m->max_size;
		e->size = m->size;
		e->checked_flags = m->checked;
		e->passed_flags = m->passed;
		if (m->has_hash) {
			e->hash.data = m->hash;
			e->hash.len = sizeof(m->hash);
		}
		e->dependencies = dep_ptrs;
		e->n_dependencies = m->dependencies->len;
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
			healer__particle__module_dependency__init(&deps[k]);
			deps[k].type = d->function;
			deps[k].index = d->index;
			deps[k].version = d->version;
			dep_ptrs[k] = &deps[k];
		}
		entry_ptrs[i] = e;
	}
	reply.n_modules = modules->len;
	return healer_particle_message_pack(&reply.base);
}

GBytes *
healer_particle_module_info_encode(GPtrArray *modules, HealerParticleModuleInfoFormat format)
{
	g_return_val_if_fail(modules != NULL, NULL);
	if (format == HEALER_PARTICLE_MODULE_INFO_OLD)
		return encode_old(modules);
	return encode_new(modules);
}

/* ---- What it means ---------------------------------------------------- */

HealerDeviceState *
healer_particle_module_info_to_state(const HealerParticleModuleInfo *info, guint16 platform_id)
{
	HealerDeviceState *state = healer_device_state_new(platform_id);

	for (guint i = 0; i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);

		/* Like a describe: the first entry for a position is the one the device runs. */
		if (healer_device_state_find(state, m->function, m->index) != NULL)
			continue;
		healer_device_state_set(state, m->function, m->index, m->version);
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
			healer_device_state_add_dependency(state, m->function, m->index, d->function, d->index,
			                                   d->version);
		}
		/*
		 * The reported hash is left out: Device OS computes it itself, and the resolver's sha256 is
		 * the module suffix's, which is not shown to be the same bytes for every module kind.
		 */
	}
	return state;
}

/* The version in position (function, index) among the modules other than `self`; FALSE if none. */
static gboolean
other_version(const HealerParticleModuleInfo *info, const HealerParticleModule *self, guint function, guint index,
              guint16 *version)
{
	for (guint i = 0; i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);
		if (m != self && m->function == function && m->index == index) {
			*version = m->version;
			return TRUE;
		}
	}
	return FALSE;
}

static void
append_function(GString *out, guint function)
{
	const char *name = healer_module_function_to_string(function);

	if (name != NULL)
		g_string_append(out, name);
	else
		g_string_append_printf(out, "function %u", function);
}

static void
describe_dependencies(GString *out, const HealerParticleModuleInfo *info, const HealerParticleModule *module)
{
	guint unmet = 0;

	g_string_append(out, "dependency check failed");
	for (guint k = 0; k < module->dependencies->len; k++) {
		const HealerModuleDependency *d = &g_array_index(module->dependencies, HealerModuleDependency, k);
		guint16 have = 0;
		gboolean present = other_version(info, module, d->function, d->index, &have);

		if (present && have >= d->version)
			continue;
		g_string_append(out, unmet++ == 0 ? ": needs " : ", needs ");
		append_function(out, d->function);
		g_string_append_printf(out, " %u version >= %u", d->index, d->version);
		if (present)
			g_string_append_printf(out, " (has %u)", have);
		else
			g_string_append(out, " (has none)");
	}
	/* The device judged against slots it did not list, or its module bounds: say so, not guess. */
	if (unmet == 0)
		g_string_append(out, " (the modules the device lists meet every dependency it reports)");
}

static const struct {
	guint32 bit;
	const char *text;
} check_failures[] = {
        {HEALER_PARTICLE_CHECK_INTEGRITY, "integrity check failed (its CRC does not match: the module is corrupt)"},
        {HEALER_PARTICLE_CHECK_RANGE, "range check failed (the module does not fit its flash slot)"},
        {HEALER_PARTICLE_CHECK_PLATFORM, "platform check failed (the module is for another platform)"},
        {HEALER_PARTICLE_CHECK_PRODUCT, "product check failed"},
        {HEALER_PARTICLE_CHECK_DEPENDENCIES_FULL,
         "full dependency check failed (it would break another module's dependency)"},
};

char *
healer_particle_module_describe_failure(const HealerParticleModuleInfo *info, const HealerParticleModule *module)
{
	guint32 failed = healer_particle_module_failed(module);
	guint32 named = HEALER_PARTICLE_CHECK_DEPENDENCIES;
	g_autoptr(GString) out = NULL;

	if (failed == 0)
		return NULL;
	out = g_string_new(NULL);
	if (failed & HEALER_PARTICLE_CHECK_DEPENDENCIES)
		describe_dependencies(out, info, module);
	for (gsize i = 0; i < G_N_ELEMENTS(check_failures); i++) {
		named |= check_failures[i].bit;
		if (!(failed & check_failures[i].bit))
			continue;
		if (out->len > 0)
			g_string_append(out, "; ");
		g_string_append(out, check_failures[i].text);
	}
	if (failed & ~named)
		g_string_append_printf(out, "%sunknown check(s) 0x%x failed", out->len > 0 ? "; " : "",
		                       failed & ~named);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

gboolean
healer_particle_module_info_has_dependency_failure(const HealerParticleModuleInfo *info)
{
	for (guint i = 0; i < info->modules->len; i++) {
		if (healer_particle_module_failed(g_ptr_array_index(info->modules, i)) &
		    HEALER_PARTICLE_CHECK_DEPENDENCIES)
			return TRUE;
	}
	return FALSE;
}
