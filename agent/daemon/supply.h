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
 *
 * And how a plan's modules reach a device: healer_supply_make_local() asks upstream for what
 * the store lacks (each step ready, fetching or blocked), healer_supply_acquire_module() hands
 * out the verified bytes to flash.  The supply keeps the current planning set (what plans are
 * made from); planning-set.h builds it.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "config.h"
#include "planning-set.h"
#include "resolver.h"
#include "store.h"
#include "trust.h"

G_BEGIN_DECLS

typedef struct _HealerSupply HealerSupply;
typedef struct _HealerUpstream HealerUpstream;

/* Something new may be plannable: a catalog was accepted or modules were stored. */
typedef void (*HealerSupplyChangedFunc)(HealerSupply *supply, gpointer user_data);

/* Takes neither: both outlive the supply.  `trust` NULL (tests): every valid module of the store is used. */
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

/* ---- what the engine plans from, fetches and flashes ------------------- */

/*
 * Where modules the store lacks come from (NULL: nowhere; not owned).  With an upstream, plans may
 * use modules the trusted catalogs list and the store lacks: they are fetched before the heal runs.
 */
void healer_supply_set_upstream(HealerSupply *supply, HealerUpstream *upstream);
HealerUpstream *healer_supply_get_upstream(HealerSupply *supply);

/*
 * The current planning set (planning-set.h; borrowed: valid until the next
 * healer_supply_drop_planning_set(); take a reference to keep it), built when first asked for
 * after a drop.
 */
HealerPlanningSet *healer_supply_get_planning_set(HealerSupply *supply);
/* The store or the trust changed: the next plan is made from a fresh planning set; held ones stay. */
void healer_supply_drop_planning_set(HealerSupply *supply);

typedef enum {
	HEALER_SUPPLY_STEP_READY,    /* its module is in the store */
	HEALER_SUPPLY_STEP_FETCHING, /* asked of upstream; the changed functions tell when it arrived */
	HEALER_SUPPLY_STEP_BLOCKED,  /* cannot come now: `reason` says why */
} HealerSupplyStepState;

const char *healer_supply_step_state_to_string(HealerSupplyStepState state);

typedef struct {
	HealerSupplyStepState state;
	char *reason; /* BLOCKED: why (a fetch failed and waits for its retry, or no upstream); else NULL */
} HealerSupplyStep;

/*
 * Makes the modules of `plan`'s steps local: a step whose module the store lacks is asked of
 * upstream (its download starts, or is already under way).  Returns one HealerSupplyStep per plan
 * step, in order (a GArray that frees the reasons).
 */
GArray *healer_supply_make_local(HealerSupply *supply, const HealerPlan *plan);

/*
 * A step's module, verified, to flash: one copy per module shared by every device flashing it.
 * Every module acquired is released when its flash is done.
 */
GBytes *healer_supply_acquire_module(HealerSupply *supply, const char *sha_hex, GError **error);
void healer_supply_release_module(HealerSupply *supply, const char *sha_hex);

/* Stores an application to install (verified, by its hash: *sha_out); the planning set is dropped. */
gboolean healer_supply_import_app(HealerSupply *supply, const char *name, GBytes *bytes, char **sha_out,
                                  GError **error);

/* Why the upstream catalog could not be fetched, or NULL (none, or no upstream). */
const char *healer_supply_get_upstream_problem(HealerSupply *supply);

/* The D-Bus Sources property's JSON (new reference): trusted keys, catalogs held, the upstream. */
json_object *healer_supply_sources_to_json(HealerSupply *supply);

G_END_DECLS
