/*
 * How modules reach the store (docs/bundles.md, docs/upstream.md): module
 * directories, imported files and bundles, each gated by the trust (a
 * module enters only when an accepted, signed catalog lists it).
 *
 *   - A module directory that carries catalog.json (+ catalog.json.sig), such
 *     as the firmware the package ships, offers that catalog first; then its
 *     modules are imported one by one, each admitted or reported.
 *   - A bundle (a directory with catalog.json, or a tar archive, plain or
 *     compressed, recognised by its content) is all or nothing: its catalog and every module are verified
 *     in a worker thread before anything changes, then the catalog is
 *     accepted and the modules stored together.
 *   - A single module file, or a plain directory, is imported with the same
 *     admission check as module directories; a directory is walked in a
 *     worker, within limits, and summed up in one journal record.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "store.h"
#include "trust.h"

G_BEGIN_DECLS

typedef struct _HealerSupply HealerSupply;

/* Something new may be plannable: a catalog was accepted or modules were stored. */
typedef void (*HealerSupplyChangedFunc)(HealerSupply *supply, gpointer user_data);

HealerSupply *healer_supply_new(const HealerConfig *config, HealerStore *store, HealerTrust *trust);
void healer_supply_free(HealerSupply *supply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerSupply, healer_supply_free)

void healer_supply_set_changed_func(HealerSupply *supply, HealerSupplyChangedFunc func, gpointer user_data);
HealerTrust *healer_supply_get_trust(HealerSupply *supply);
HealerStore *healer_supply_get_store(HealerSupply *supply);

/* Offers a catalog (verbatim bytes) and tells the changed function when it is new. */
const HealerTrustedCatalog *healer_supply_offer_catalog(HealerSupply *supply, GBytes *json, GBytes *sig,
                                                        const char *source, GError **error);

/* Imports the configured module directories now, and again whenever one changes (watched). */
void healer_supply_start(HealerSupply *supply);

/*
 * A directory with catalog.json, or a file that is an archive by its content
 * (healer_bundle_file_is_archive) or whose name ends in .tar, .tar.gz, .tgz,
 * .tar.xz or .txz.
 */
gboolean healer_supply_is_bundle(const char *path);

typedef struct {
	guint added;         /* modules new to the store */
	GPtrArray *rejected; /* char*: "FILE: reason" (plain files and directories only) */
	char *catalog;       /* bundles: "serial N (key K)" of the catalog accepted; else NULL */
} HealerSupplyImportResult;

typedef void (*HealerSupplyImportDone)(const HealerSupplyImportResult *result, const GError *error, gpointer user_data);

/*
 * Imports what `fd` is open on (taken: closed when done), reading through the descriptor only,
 * never reopening it: a bundle (a directory holding catalog.json, or a file whose `name` ends in
 * .tar, .tar.gz, .tgz, .tar.xz or .txz), a module file, or a plain directory, walked in a worker
 * within the limits of import-walk.h and summed up in one journal record.  `name` (escaped by the
 * caller: healer_caller_name()) stands for it in every message, record and result.  A bundle that
 * fails any check is an error (HEALER_ERROR_INVALID_DATA, the message naming the file and the
 * fault) and changes nothing.  `done` is called from the main loop, always after this returns.
 */
void healer_supply_import_fd_async(HealerSupply *supply, int fd, const char *name, HealerSupplyImportDone done,
                                   gpointer user_data);

/*
 * healer_supply_import_fd_async() of an absolute `path`, opened here without blocking: what is not
 * a regular file or a directory (a FIFO, a device) is an error naming it, and never waited on.
 * For root's and healerd's own requests: a path is read with healerd's rights.
 */
void healer_supply_import_async(HealerSupply *supply, const char *path, HealerSupplyImportDone done,
                                gpointer user_data);

G_END_DECLS
