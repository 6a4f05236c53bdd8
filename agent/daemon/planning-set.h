/*
 * The planning set: the modules the engine plans with (docs/architecture.md, "Names").  It is
 * the store's modules the trust admits, plus, when there is an upstream, the modules the trusted
 * catalogs list and the store lacks, each with its upstream URL as its path (the supply fetches
 * it before the heal runs: healer_supply_make_local()).
 *
 * Shared (g_rc_box): the supply holds the current one (healer_supply_get_planning_set()) and
 * every heal holds the one its plan was made from (plan steps point into its inventory), so a
 * store change during a heal never frees what a heal uses.
 */
#pragma once

#include <glib.h>

#include "module-inventory.h"
#include "store.h"
#include "trust.h"

G_BEGIN_DECLS

typedef struct {
	HealerModuleInventory *inventory; /* what healer_resolve() plans over */
} HealerPlanningSet;

/*
 * Builds a planning set now from what `store` holds and `trust` admits (`trust` NULL, in tests:
 * every valid store module).  With `upstream_url` (NULL: no upstream) and a trust, the modules the
 * trusted catalogs list and the store lacks are in it too, their path `upstream_url`/module path.
 * A store module that is not a valid module file is left out, and reported.
 */
HealerPlanningSet *healer_planning_set_new(HealerStore *store, HealerTrust *trust, const char *upstream_url);
HealerPlanningSet *healer_planning_set_ref(HealerPlanningSet *set);
void healer_planning_set_unref(HealerPlanningSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerPlanningSet, healer_planning_set_unref)

G_END_DECLS
