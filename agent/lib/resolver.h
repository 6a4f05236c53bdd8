/*
 * The resolver: which modules to send a device, in which order, so that
 * its application's dependencies are met (docs/resolver.md).  A pure
 * function of a device state, a module inventory, a goal and a policy: no I/O.
 *
 * It models what a device accepts (device-firmware/system/update.c,
 * update_finish(); Particle's HAL_FLASH_End()): a module for the device's
 * platform, newer than the one in its position, whose own dependencies the
 * installed modules meet (dependency (f, i, v) is met iff position (f, i)
 * holds version >= v; not transitive), and which leaves every other
 * installed system module's dependency on its position met.  Applications are
 * accepted with unmet dependencies.  One module per step; the plan is the
 * cheapest in bytes sent (then the fewest steps), found by uniform-cost
 * search over simulated device states with a visited set and a bound on
 * the states explored, so it always terminates.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "describe.h"
#include "module-inventory.h"

G_BEGIN_DECLS

/* ---- Device state ---------------------------------------------------- */

typedef struct {
	guint8 function; /* enum module_function */
	guint8 index;
	guint16 version;
	GArray *dependencies;              /* HealerModuleDependency, function NONE left out */
	gboolean has_sha256;               /* sha256 is known (a describe's "u", or a module installed from a file) */
	guint8 sha256[HEALER_SHA256_SIZE]; /* the module's suffix SHA-256 */
} HealerInstalledModule;

typedef struct {
	guint16 platform_id;
	GArray *modules; /* HealerInstalledModule, one per (function, index), in order added */
} HealerDeviceState;

HealerDeviceState *healer_device_state_new(guint16 platform_id);
/* The main-store modules of a describe (empty board slots and other stores left out). */
HealerDeviceState *healer_device_state_new_from_describe(const HealerDescribe *describe);
HealerDeviceState *healer_device_state_copy(const HealerDeviceState *state);
void healer_device_state_free(HealerDeviceState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDeviceState, healer_device_state_free)

/* Puts version `version` in position (function, index), with no dependencies, replacing what was there. */
void healer_device_state_set(HealerDeviceState *state, guint function, guint index, guint16 version);
/* Adds a dependency to the module in position (function, index), which must be set. */
void healer_device_state_add_dependency(HealerDeviceState *state, guint function, guint index, guint dep_function,
                                        guint dep_index, guint16 dep_version);
const HealerInstalledModule *healer_device_state_find(const HealerDeviceState *state, guint function, guint index);
/* Position (function, index) holds a version >= `version` (function NONE: always met). */
gboolean healer_device_state_dependency_met(const HealerDeviceState *state, guint function, guint index,
                                            guint16 version);

/*
 * Installs `entry` as the device would accept it, or refuses with
 * HEALER_ERROR_FAILED naming the rule: another platform, not newer than
 * the installed module (system modules only: an application replaces any
 * other), an own dependency unmet (system modules only), or an installed
 * system module's dependency it would break.  On refusal the state is
 * unchanged.
 */
gboolean healer_device_state_install(HealerDeviceState *state, const HealerInventoryEntry *entry, GError **error);

/* ---- Goals, policy, plans ------------------------------------------- */

typedef enum {
	/* Meet the dependencies of the installed user part(s); the application stays as it is. */
	HEALER_GOAL_HEAL,
	/* Install `app` last, after whatever system modules its dependencies need. */
	HEALER_GOAL_INSTALL_APP,
} HealerGoalKind;

typedef struct {
	HealerGoalKind kind;
	const HealerInventoryEntry *app; /* INSTALL_APP: a user part */
} HealerGoal;

/*
 * Whether `state` meets `goal`; FALSE with HEALER_ERROR_NO_PLAN naming the
 * first unmet dependency (or the missing application) otherwise.
 */
gboolean healer_goal_met(const HealerDeviceState *state, const HealerGoal *goal, GError **error);

#define HEALER_RESOLVER_DEFAULT_MAX_STATES 100000

typedef struct {
	/* Use prerelease modules freely; without it they are used only when no plan exists without them. */
	gboolean allow_prerelease;
	/* Device states the search may explore before giving up; 0 means the default. */
	guint max_states;
} HealerResolverPolicy;

typedef struct {
	const HealerInventoryEntry *entry; /* borrowed from the inventory or the goal */
	gsize bytes;                       /* entry->size */
} HealerPlanStep;

typedef struct {
	GArray *steps;            /* HealerPlanStep, in the order to send them */
	guint64 bytes;            /* the sum of the steps' bytes */
	gboolean uses_prerelease; /* a step is a prerelease module */
	guint states_explored;    /* search effort, for the curious */
} HealerPlan;

HealerPlan *healer_plan_new(void);
void healer_plan_add_step(HealerPlan *plan, const HealerInventoryEntry *entry);
void healer_plan_free(HealerPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerPlan, healer_plan_free)

/*
 * The cheapest plan that takes `state` to `goal` with the modules of
 * `inventory` (may be NULL: no modules), or NULL with:
 *   HEALER_ERROR_NO_PLAN  no plan exists, naming the dependency that
 *                         blocked and why ("no module in DIR provides
 *                         system-part 2 >= 2202 for platform 6", or the
 *                         chain of modules whose own dependency could not
 *                         be met), or the search limit was reached;
 *   HEALER_ERROR_INVALID_ARGUMENT  the goal's app is not a user part.
 * An empty plan means the goal is already met.  The steps borrow the
 * inventory's and the goal's entries, which must outlive the plan.
 * `policy` may be NULL (defaults).
 */
HealerPlan *healer_resolve(const HealerDeviceState *state, const HealerModuleInventory *inventory,
                           const HealerGoal *goal, const HealerResolverPolicy *policy, GError **error);

/*
 * Applies `plan` to a copy of `state` step by step with
 * healer_device_state_install(): TRUE when the device would accept every
 * step (each step's own dependencies held when it was sent), with the
 * resulting state in `final_state` (may be NULL).  FALSE with
 * HEALER_ERROR_FAILED "step N, MODULE (FILE): REASON" otherwise.
 */
/*
 * The plan as `healerctl plan --json` and the D-Bus Plan method give it:
 * {"steps": [{"file", "function", "index", "version", "release", "sha256", "bytes"}], "bytes": N}.
 * New reference.
 */
json_object *healer_plan_to_json(const HealerPlan *plan);

gboolean healer_plan_simulate(const HealerDeviceState *state, const HealerPlan *plan, HealerDeviceState **final_state,
                              GError **error);

G_END_DECLS
