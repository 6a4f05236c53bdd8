/*
 * The describe a device sends (DESCRIBE_REPLY, docs/link-protocol.md): its
 * modules in Particle Device OS's shape (system_info_to_json), e.g.
 *
 *   {"p":6,"m":[{"s":262144,"l":"m","vc":30,"vv":30,"f":"s","n":"2","v":100,
 *                "d":[{"f":"s","n":"1","v":100,"_":""}]}, ...]}
 *
 * Parsing is strict about the keys it knows (types, ranges, the module
 * index as a string) and names the JSON path of a fault
 * ("m[3].d[0].n: ..."); keys it does not know ("imei", the cloud's "f":[]
 * and "v":{}, a module's "p") are ignored.  A slot printed without
 * "f"/"n"/"v" (an empty factory slot) is kept with has_info FALSE.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "healer/module-format.h"

G_BEGIN_DECLS

typedef struct {
	guint8 function; /* enum module_function */
	guint8 index;
	guint16 version; /* the minimum version */
} HealerDescribeDependency;

typedef struct {
	gboolean has_info; /* "f", "n" and "v" were present (FALSE: an empty slot) */
	guint8 function;   /* enum module_function; NONE when !has_info */
	guint8 index;
	guint16 version;
	guint8 store;             /* enum module_store ("l") */
	guint32 max_size;         /* "s" */
	guint16 validity_checked; /* "vc": enum module_validation bits */
	guint16 validity_passed;  /* "vv" */
	gboolean has_hash;        /* "u" was present */
	guint8 sha256[32];
	GArray *dependencies; /* HealerDescribeDependency, in order ("f":"n" entries kept) */
} HealerDescribeModule;

typedef struct {
	guint16 platform_id;
	GArray *modules; /* HealerDescribeModule, in order */
} HealerDescribe;

/*
 * An empty describe, for a family that learns the modules another way (the DFU family reads
 * their headers): add HealerDescribeModule entries to `modules`, each with its own
 * `dependencies` array (freed with the describe).
 */
HealerDescribe *healer_describe_new(guint16 platform_id);
/* `data` need not be NUL-terminated; NULL with HEALER_ERROR_INVALID_DATA on any fault. */
HealerDescribe *healer_describe_parse(const char *data, gsize len, GError **error);
void healer_describe_free(HealerDescribe *describe);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDescribe, healer_describe_free)

/* Same shape back (new reference): parse(to_json(d)) equals d. */
json_object *healer_describe_to_json(const HealerDescribe *describe);
/* Compact JSON text; free with g_free(). */
char *healer_describe_to_string(const HealerDescribe *describe);

/* The module (function, index) in the main store, or NULL. */
const HealerDescribeModule *healer_describe_find(const HealerDescribe *describe, guint function, guint index);

/* The device checked the module's dependencies and they failed (vc has 0x04, vv lacks it). */
gboolean healer_describe_module_dependency_failed(const HealerDescribeModule *module);
/* The device checked everything it checked and all passed (vc == vv, and vc != 0). */
gboolean healer_describe_module_valid(const HealerDescribeModule *module);

typedef struct {
	HealerDescribeDependency dependency;
	gboolean installed;        /* the describe lists (function, index) in the main store */
	guint16 installed_version; /* its version when installed; below dependency.version */
} HealerDescribeUnmet;

/*
 * The dependencies of `module` the describe does not satisfy: no module
 * (function, index) in the main store, or one older than the minimum.
 * Entries with function NONE are skipped.  HealerDescribeUnmet in the
 * module's order; empty when all are met.
 */
GArray *healer_describe_module_unmet_dependencies(const HealerDescribe *describe, const HealerDescribeModule *module);

/* "system-part 2 >= 108" */
char *healer_describe_dependency_to_string(const HealerDescribeDependency *dep);

G_END_DECLS
