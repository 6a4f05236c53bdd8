/*
 * A module inventory: the module files at hand (a directory of releases, a
 * list of files, the store), read once and summarised, for the resolver to
 * plan with and the publisher to write a signed catalog of.  It is not a
 * catalog: that word means only the signed catalog (catalog.h).
 *
 * Each entry is what the resolver needs about one file (docs/resolver.md):
 * where the module goes, its version and dependencies, the bytes a device
 * would be sent, the SHA-256 of the whole file, and the release it belongs
 * to.
 *
 * A file that is not one valid module (no prefix, truncated, any fault,
 * COMBINED) is never used: it is skipped with a warning "FILE: reason", so
 * a damaged file in a directory cannot end up on a device.
 */
#pragma once

#include <glib.h>

#include "module-checksums.h"
#include "module-reader.h"
#include "release-table.h"

G_BEGIN_DECLS

typedef struct {
	char *path;
	guint16 platform_id;
	guint8 function; /* enum module_function */
	guint8 index;
	guint16 version;
	GArray *dependencies;                     /* HealerModuleDependency, empty slots left out */
	gsize size;                               /* file length: the bytes a device is sent */
	guint8 sha256[HEALER_SHA256_SIZE];        /* of the whole file */
	guint8 module_sha256[HEALER_SHA256_SIZE]; /* the suffix's SHA-256 (a describe's "u") */
	char *release;                            /* "2.2.0" or "2.2.0..2.3.1"; NULL when unknown */
	gboolean prerelease;                      /* every release shipping it is a semver prerelease */
} HealerInventoryEntry;

/*
 * A fresh entry with the given fields and no dependencies (tests and
 * in-memory inventories); path and release are copied, sha256 fields zero.
 */
HealerInventoryEntry *healer_inventory_entry_new(const char *path, guint16 platform_id, guint function, guint index,
                                                 guint16 version, gsize size);
void healer_inventory_entry_add_dependency(HealerInventoryEntry *entry, guint function, guint index, guint16 version);
/*
 * Reads one file.  NULL with HEALER_ERROR_INVALID_DATA ("FILE: reason")
 * when it is not exactly one valid module, or NOT_FOUND/IO when it cannot
 * be read.  `releases` (may be NULL) names the release of system modules.
 */
HealerInventoryEntry *healer_inventory_entry_new_from_file(const char *path, const HealerReleaseTable *releases,
                                                           GError **error);
/* The same for a file's bytes read elsewhere; `path` names it in the entry and in messages. */
HealerInventoryEntry *healer_inventory_entry_new_from_data(const char *path, const guint8 *data, gsize len,
                                                           const HealerReleaseTable *releases, GError **error);
void healer_inventory_entry_free(HealerInventoryEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerInventoryEntry, healer_inventory_entry_free)

/* "system-part 1 v1203 (1.2.0)": function, index, version and release. */
char *healer_inventory_entry_to_string(const HealerInventoryEntry *entry);

typedef struct {
	char *source;        /* what it was loaded from, for messages: a directory, or "the given files" */
	GPtrArray *entries;  /* HealerInventoryEntry*: a directory's sorted by path, files as given */
	GPtrArray *warnings; /* char*: "FILE: reason" for every file skipped */
} HealerModuleInventory;

HealerModuleInventory *healer_module_inventory_new(const char *source);
void healer_module_inventory_free(HealerModuleInventory *inventory);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerModuleInventory, healer_module_inventory_free)

/*
 * Whether a file name is metadata that lives beside modules and is never a
 * module candidate: "*.json" (release tables, catalogs, bundle manifests)
 * and "*.json.sig" (catalog signatures).
 */
gboolean healer_module_file_name_is_metadata(const char *name);

/* Takes ownership of `entry`. */
void healer_module_inventory_add(HealerModuleInventory *inventory, HealerInventoryEntry *entry);

/*
 * Every file under `dir`, recursively (symbolic links to directories are
 * not followed; files whose names end in ".json", such as a release
 * table, are not module candidates and are passed over silently).  NULL
 * with an error only when `dir` itself cannot be read; each file that is
 * not a usable module is a warning.
 */
HealerModuleInventory *healer_module_inventory_load_dir(const char *dir, const HealerReleaseTable *releases,
                                                        GError **error);
/* The files given, in order; a file that is not a usable module is a warning. */
HealerModuleInventory *healer_module_inventory_load_files(const char *const *files, const HealerReleaseTable *releases);

G_END_DECLS
