/*
 * A Particle device's GET_MODULE_INFO reply (request 90), in either of its formats, read into what
 * healing needs: the modules of the main store, each with the checks the device ran on it and
 * which failed, and its dependencies; and what the device lacks, named (a dependency failure says
 * which module and which minimum version is missing), computed as Device OS computes it.
 *
 * Formats (docs/particle.md, "Module info"): the old one (field 1, Device OS before 5.6.0 and every
 * Gen 2 device) lists main-store modules with a `validity` mask of failures (0x01 integrity, 0x02
 * dependencies) and types in an enum of its own; the new one (field 2) lists every store, types as
 * the module header's function numbers, and checks as checked/passed masks.  A reply with old
 * entries is read in the old format, as particle-usb reads it.
 */
#pragma once

#include <glib.h>

#include "resolver.h"

G_BEGIN_DECLS

typedef enum {
	HEALER_PARTICLE_MODULE_INFO_OLD,
	HEALER_PARTICLE_MODULE_INFO_NEW,
} HealerParticleModuleInfoFormat;

/* "old", "new". */
const char *healer_particle_module_info_format_to_string(HealerParticleModuleInfoFormat format);

/* Check bits, in the new format's numbering (the old format's are mapped onto them). */
typedef enum {
	HEALER_PARTICLE_CHECK_INTEGRITY = 0x02,
	HEALER_PARTICLE_CHECK_DEPENDENCIES = 0x04,
	HEALER_PARTICLE_CHECK_RANGE = 0x08,
	HEALER_PARTICLE_CHECK_PLATFORM = 0x10,
	HEALER_PARTICLE_CHECK_PRODUCT = 0x20,
	HEALER_PARTICLE_CHECK_DEPENDENCIES_FULL = 0x40,
} HealerParticleCheck;

/* "integrity", "dependencies", "range", "platform", "product", "dependencies-full"; NULL otherwise. */
const char *healer_particle_check_to_string(guint check);

/* Stores (new format); the old format lists the main store only. */
#define HEALER_PARTICLE_STORE_MAIN 0

typedef struct {
	guint8 function; /* enum module_function (the old format's types mapped onto it) */
	guint8 index;
	guint16 version;
	guint32 size;     /* 0 when not reported */
	guint32 max_size; /* 0 when not reported (old format) */
	guint32 checked;  /* HealerParticleCheck bits the device ran (old format: integrity|dependencies) */
	guint32 passed;   /* ... and those that passed */
	gboolean has_hash;
	guint8 hash[32];      /* SHA-256 the device reports (new format) */
	GArray *dependencies; /* HealerModuleDependency {function, index, version}, as reported */
} HealerParticleModule;

typedef struct {
	HealerParticleModuleInfoFormat format;
	GPtrArray *modules; /* HealerParticleModule*, main store only, in the device's order */
} HealerParticleModuleInfo;

void healer_particle_module_info_free(HealerParticleModuleInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerParticleModuleInfo, healer_particle_module_info_free)

/* A module with no checks run and no dependencies (usbemu and tests build replies from these). */
HealerParticleModule *healer_particle_module_new(guint function, guint index, guint16 version);
void healer_particle_module_free(HealerParticleModule *module);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerParticleModule, healer_particle_module_free)
void healer_particle_module_add_dependency(HealerParticleModule *module, guint function, guint index, guint16 version);

/*
 * Reads a GetModuleInfo reply.  FALSE (NULL) with HEALER_ERROR_INVALID_DATA when it is not one
 * (protobuf that does not decode; a type, index or version out of range, an old-format validity
 * with undefined bits, a hash that is not 32 bytes, naming the entry: "module info (new format):
 * modules[3]: version 70000 is over 65535"), and for a reply that lists no main-store module.
 * Every entry is checked, those of other stores too; dependencies of type 0 (empty slots) are dropped.
 */
HealerParticleModuleInfo *healer_particle_module_info_parse(const guint8 *data, gsize len, GError **error);

/* The checks that failed: checked & ~passed. */
guint32 healer_particle_module_failed(const HealerParticleModule *module);

/*
 * Encodes `modules` (HealerParticleModule*) as a device would answer in `format` (usbemu; tests),
 * every module in the main store.  The old format carries integrity and dependency failures only,
 * and no hash, size limit or store; modules and dependencies its enum has no type for (resource,
 * settings, asset) are left out, as such a device never lists them.
 */
GBytes *healer_particle_module_info_encode(GPtrArray *modules, HealerParticleModuleInfoFormat format);

/* The modules as the resolver plans over them (HealerDeviceState with their dependencies). */
HealerDeviceState *healer_particle_module_info_to_state(const HealerParticleModuleInfo *info, guint16 platform_id);

/*
 * Why `module` failed its checks, in words, or NULL when it passed: for a dependency failure, each
 * dependency the other modules of `info` do not meet ("dependency check failed: needs system-part 2
 * version >= 2202 (has 1102)", "... (has none)", several joined by ", "); integrity, range,
 * platform, product and full-dependency failures named as such, several joined by "; ".
 */
char *healer_particle_module_describe_failure(const HealerParticleModuleInfo *info, const HealerParticleModule *module);

/* Whether any module failed its dependency check (the device is in safe mode for a dependency). */
gboolean healer_particle_module_info_has_dependency_failure(const HealerParticleModuleInfo *info);

G_END_DECLS
