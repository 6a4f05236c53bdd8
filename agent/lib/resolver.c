#include "resolver.h"

#include <string.h>

#include "healer-error.h"
#include "module-names.h"

/* ---- Device state ---------------------------------------------------- */

static void
installed_clear(gpointer data)
{
	HealerInstalledModule *m = data;

	g_clear_pointer(&m->dependencies, g_array_unref);
}

HealerDeviceState *
healer_device_state_new(guint16 platform_id)
{
	HealerDeviceState *state = g_new0(HealerDeviceState, 1);

	state->platform_id = platform_id;
	state->modules = g_array_new(FALSE, TRUE, sizeof(HealerInstalledModule));
	g_array_set_clear_func(state->modules, installed_clear);
	return state;
}

void
healer_device_state_free(HealerDeviceState *state)
{
	if (state == NULL)
		return;
	g_array_unref(state->modules);
	g_free(state);
}

static HealerInstalledModule *
find_mutable(HealerDeviceState *state, guint function, guint index)
{
	for (guint i = 0; i < state->modules->len; i++) {
		HealerInstalledModule *m = &g_array_index(state->modules, HealerInstalledModule, i);
		if (m->function == function && m->index == index)
			return m;
	}
	return NULL;
}

const HealerInstalledModule *
healer_device_state_find(const HealerDeviceState *state, guint function, guint index)
{
	return find_mutable((HealerDeviceState *)state, function, index);
}

static HealerInstalledModule *
set_module_at(HealerDeviceState *state, guint function, guint index, guint16 version)
{
	HealerInstalledModule *m = find_mutable(state, function, index);

	if (m == NULL) {
		HealerInstalledModule fresh = {.function = (guint8)function, .index = (guint8)index};
		fresh.dependencies = g_array_new(FALSE, TRUE, sizeof(HealerModuleDependency));
		g_array_append_val(state->modules, fresh);
		m = &g_array_index(state->modules, HealerInstalledModule, state->modules->len - 1);
	} else {
		g_array_set_size(m->dependencies, 0);
	}
	m->version = version;
	m->has_sha256 = FALSE;
	memset(m->sha256, 0, sizeof m->sha256);
	return m;
}

void
healer_device_state_set(HealerDeviceState *state, guint function, guint index, guint16 version)
{
	set_module_at(state, function, index, version);
}

void
healer_device_state_add_dependency(HealerDeviceState *state, guint function, guint index, guint dep_function,
                                   guint dep_index, guint16 dep_version)
{
	HealerInstalledModule *m = find_mutable(state, function, index);
	HealerModuleDependency dep = {
	        .function = (guint8)dep_function,
	        .index = (guint8)dep_index,
	        .version = dep_version,
	};

	g_return_if_fail(m != NULL);
	if (dep_function != MODULE_FUNCTION_NONE)
		g_array_append_val(m->dependencies, dep);
}

HealerDeviceState *
healer_device_state_new_from_describe(const HealerDescribe *describe)
{
	HealerDeviceState *state = healer_device_state_new(describe->platform_id);

	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *d = &g_array_index(describe->modules, HealerDescribeModule, i);
		HealerInstalledModule *m;

		/* The first main-store entry for a position is the one the device runs. */
		if (!d->has_info || d->store != MODULE_STORE_MAIN || d->function == MODULE_FUNCTION_NONE ||
		    healer_device_state_find(state, d->function, d->index) != NULL)
			continue;
		m = set_module_at(state, d->function, d->index, d->version);
		for (guint k = 0; k < d->dependencies->len; k++) {
			const HealerDescribeDependency *dep =
			        &g_array_index(d->dependencies, HealerDescribeDependency, k);
			HealerModuleDependency copy = {
			        .function = dep->function, .index = dep->index, .version = dep->version};
			if (dep->function != MODULE_FUNCTION_NONE)
				g_array_append_val(m->dependencies, copy);
		}
		m->has_sha256 = d->has_hash;
		if (d->has_hash)
			memcpy(m->sha256, d->sha256, HEALER_SHA256_SIZE);
	}
	return state;
}

HealerDeviceState *
healer_device_state_copy(const HealerDeviceState *state)
{
	HealerDeviceState *copy = healer_device_state_new(state->platform_id);

	for (guint i = 0; i < state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(state->modules, HealerInstalledModule, i);
		HealerInstalledModule c = *m;
		c.dependencies = g_array_copy(m->dependencies);
		g_array_append_val(copy->modules, c);
	}
	return copy;
}

gboolean
healer_device_state_dependency_met(const HealerDeviceState *state, guint function, guint index, guint16 version)
{
	const HealerInstalledModule *m;

	if (function == MODULE_FUNCTION_NONE)
		return TRUE;
	m = healer_device_state_find(state, function, index);
	return m != NULL && m->version >= version;
}

static const char *
function_name(guint function)
{
	const char *name = healer_module_function_to_string(function);

	return name != NULL ? name : "unknown function";
}

/* "the device has system-part 2 v100" / "the device has no system-part 2" */
static char *
have_text(const HealerDeviceState *state, guint function, guint index)
{
	const HealerInstalledModule *m = healer_device_state_find(state, function, index);

	if (m == NULL)
		return g_strdup_printf("the device has no %s %u", function_name(function), index);
	return g_strdup_printf("the device has %s %u v%u", function_name(function), index, m->version);
}

static char *
dependency_text(guint function, guint index, guint16 version)
{
	HealerModuleDependency dep = {.function = (guint8)function, .index = (guint8)index, .version = version};

	return healer_module_dependency_to_string(&dep);
}

gboolean
healer_device_state_install(HealerDeviceState *state, const HealerInventoryEntry *entry, GError **error)
{
	g_autofree char *what = healer_inventory_entry_to_string(entry);
	const HealerInstalledModule *installed = healer_device_state_find(state, entry->function, entry->index);
	HealerInstalledModule *m;

	if (entry->platform_id != state->platform_id) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED,
		            "%s is for platform %u, the device is platform %u", what, entry->platform_id,
		            state->platform_id);
		return FALSE;
	}
	/* Applications are taken whatever their version and dependencies (the device then may boot into safe mode). */
	if (entry->function != MODULE_FUNCTION_USER_PART) {
		if (installed != NULL && entry->version <= installed->version) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED,
			            "%s is not newer than the installed v%u (devices are never downgraded)", what,
			            installed->version);
			return FALSE;
		}
		for (guint i = 0; i < entry->dependencies->len; i++) {
			const HealerModuleDependency *dep =
			        &g_array_index(entry->dependencies, HealerModuleDependency, i);
			if (!healer_device_state_dependency_met(state, dep->function, dep->index, dep->version)) {
				g_autofree char *need = healer_module_dependency_to_string(dep);
				g_autofree char *have = have_text(state, dep->function, dep->index);
				g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "%s needs %s and %s", what, need,
				            have);
				return FALSE;
			}
		}
		for (guint i = 0; i < state->modules->len; i++) {
			const HealerInstalledModule *other = &g_array_index(state->modules, HealerInstalledModule, i);
			if (other == installed || other->function == MODULE_FUNCTION_USER_PART)
				continue;
			for (guint k = 0; k < other->dependencies->len; k++) {
				const HealerModuleDependency *dep =
				        &g_array_index(other->dependencies, HealerModuleDependency, k);
				if (dep->function == entry->function && dep->index == entry->index &&
				    dep->version > entry->version) {
					g_autofree char *need = healer_module_dependency_to_string(dep);
					g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED,
					            "%s would break the installed %s %u v%u, which needs %s", what,
					            function_name(other->function), other->index, other->version, need);
					return FALSE;
				}
			}
		}
	}
	m = set_module_at(state, entry->function, entry->index, entry->version);
	for (guint i = 0; i < entry->dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(entry->dependencies, HealerModuleDependency, i);
		if (dep->function != MODULE_FUNCTION_NONE)
			g_array_append_val(m->dependencies, *dep);
	}
	m->has_sha256 = TRUE;
	memcpy(m->sha256, entry->module_sha256, HEALER_SHA256_SIZE);
	return TRUE;
}

/* ---- Goals and plans ------------------------------------------------- */

static gboolean
is_installed_app(const HealerDeviceState *state, const HealerInventoryEntry *app)
{
	const HealerInstalledModule *m = healer_device_state_find(state, MODULE_FUNCTION_USER_PART, app->index);

	return m != NULL && m->has_sha256 && m->version == app->version &&
	       memcmp(m->sha256, app->module_sha256, HEALER_SHA256_SIZE) == 0;
}

static gboolean
check_app(const HealerDeviceState *state, const HealerGoal *goal, GError **error)
{
	if (goal->app == NULL || goal->app->function != MODULE_FUNCTION_USER_PART) {
		g_autofree char *what = goal->app ? healer_inventory_entry_to_string(goal->app) : NULL;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s%s%s is not an application (user part)", goal->app ? goal->app->path : "no app given",
		            goal->app ? ": " : "", what ? what : "");
		return FALSE;
	}
	if (goal->app->platform_id != state->platform_id) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN,
		            "%s is an app for platform %u, the device is platform %u", goal->app->path,
		            goal->app->platform_id, state->platform_id);
		return FALSE;
	}
	return TRUE;
}

static gboolean
dependencies_met(const HealerDeviceState *state, const char *who, GArray *dependencies, GError **error)
{
	for (guint i = 0; i < dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(dependencies, HealerModuleDependency, i);
		if (!healer_device_state_dependency_met(state, dep->function, dep->index, dep->version)) {
			g_autofree char *need = healer_module_dependency_to_string(dep);
			g_autofree char *have = have_text(state, dep->function, dep->index);
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN, "%s needs %s and %s", who, need, have);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
healer_goal_met(const HealerDeviceState *state, const HealerGoal *goal, GError **error)
{
	guint n_apps = 0;

	if (goal->kind == HEALER_GOAL_INSTALL_APP) {
		if (!check_app(state, goal, error))
			return FALSE;
		if (!is_installed_app(state, goal->app)) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN, "the app %s is not installed",
			            goal->app->path);
			return FALSE;
		}
		return dependencies_met(state, goal->app->path, goal->app->dependencies, error);
	}
	/*
	 * The system modules first: one whose dependencies fail (a system part that needs a newer
	 * bootloader, a Photon's part 2 newer than its part 1) puts the device in safe mode as an app's
	 * does (the bootloader's and system part's checks at boot, reference §3.2), and no step may
	 * leave it so.
	 */
	for (guint i = 0; i < state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(state->modules, HealerInstalledModule, i);
		g_autofree char *who = NULL;
		if (m->function == MODULE_FUNCTION_USER_PART)
			continue;
		who = g_strdup_printf("the installed %s %u v%u", healer_module_function_to_string(m->function),
		                      m->index, m->version);
		if (!dependencies_met(state, who, m->dependencies, error))
			return FALSE;
	}
	for (guint i = 0; i < state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(state->modules, HealerInstalledModule, i);
		g_autofree char *who = NULL;
		if (m->function != MODULE_FUNCTION_USER_PART)
			continue;
		n_apps++;
		who = g_strdup_printf("the installed user-part %u v%u", m->index, m->version);
		if (!dependencies_met(state, who, m->dependencies, error))
			return FALSE;
	}
	if (n_apps == 0) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN,
		                    "the device has no user part: nothing to heal (give an app to install)");
		return FALSE;
	}
	return TRUE;
}

HealerPlan *
healer_plan_new(void)
{
	HealerPlan *plan = g_new0(HealerPlan, 1);

	plan->steps = g_array_new(FALSE, TRUE, sizeof(HealerPlanStep));
	return plan;
}

void
healer_plan_add_step(HealerPlan *plan, const HealerInventoryEntry *entry)
{
	HealerPlanStep step = {.entry = entry, .bytes = entry->size};

	g_array_append_val(plan->steps, step);
	plan->bytes += entry->size;
	if (entry->prerelease)
		plan->uses_prerelease = TRUE;
}

void
healer_plan_free(HealerPlan *plan)
{
	if (plan == NULL)
		return;
	g_array_unref(plan->steps);
	g_free(plan);
}

gboolean
healer_plan_simulate(const HealerDeviceState *state, const HealerPlan *plan, HealerDeviceState **final_state,
                     GError **error)
{
	g_autoptr(HealerDeviceState) sim = healer_device_state_copy(state);

	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		if (!healer_device_state_install(sim, step->entry, error)) {
			g_prefix_error(error, "step %u (%s): ", i + 1, step->entry->path);
			return FALSE;
		}
	}
	if (final_state != NULL)
		*final_state = g_steal_pointer(&sim);
	return TRUE;
}

/* ---- The search ------------------------------------------------------ */

/*
 * Inside the search a device state is a vector: for each position (function,
 * index) that the device has or the inventory offers, the id of the variant
 * in it (0: empty).  Variants are the device's own modules and the usable
 * inventory modules; inventory variants are sorted by (bootloader, radio
 * stack, NCP, system parts, others; index; releases before prereleases;
 * version), and among plans of equal bytes and steps the search keeps the
 * one whose step ids compare lowest, so plans come out deterministic and
 * in the conventional order.
 */

typedef struct {
	gint position; /* -1: a position nothing has and nothing offers: never met */
	guint8 function;
	guint8 index;
	guint16 version;
} Req;

typedef struct {
	guint position;
	guint8 function;
	guint8 index;
	guint16 version;
	GArray *deps; /* Req */
	guint64 bytes;
	const HealerInventoryEntry *entry; /* NULL: a module the device has */
} Variant;

typedef struct {
	guint8 function;
	guint8 index;
} Position;

typedef struct {
	const HealerDeviceState *state;
	const HealerModuleInventory *inventory;
	const HealerGoal *goal;
	gboolean allow_prerelease;
	guint max_states;

	GArray *positions;   /* Position */
	GArray *variants;    /* Variant; [0] stands for an empty position */
	guint first_offered; /* variants [first_offered, len) come from the inventory */
	guint16 *start;      /* the device's vector */
	GArray *goal_reqs;   /* Req: what the goal needs that the device does not have */
	GArray *moves;       /* guint16: inventory variants that can matter to the goal */
	gint32 *reach;       /* per position: the highest version any order could install (-1: none) */
	char *who;           /* "the app FILE" or "the installed user-part 1 v4" */
	guint states_explored;
} Search;

static void
variant_clear(gpointer data)
{
	Variant *v = data;

	g_clear_pointer(&v->deps, g_array_unref);
}

static void
search_clear(Search *s)
{
	g_clear_pointer(&s->positions, g_array_unref);
	g_clear_pointer(&s->variants, g_array_unref);
	g_clear_pointer(&s->start, g_free);
	g_clear_pointer(&s->goal_reqs, g_array_unref);
	g_clear_pointer(&s->moves, g_array_unref);
	g_clear_pointer(&s->reach, g_free);
	g_clear_pointer(&s->who, g_free);
}

static gint
position_find(const Search *s, guint function, guint index)
{
	for (guint i = 0; i < s->positions->len; i++) {
		const Position *position = &g_array_index(s->positions, Position, i);
		if (position->function == function && position->index == index)
			return (gint)i;
	}
	return -1;
}

static guint
position_get(Search *s, guint function, guint index)
{
	gint found = position_find(s, function, index);
	Position position = {.function = (guint8)function, .index = (guint8)index};

	if (found >= 0)
		return (guint)found;
	g_array_append_val(s->positions, position);
	return s->positions->len - 1;
}

static const Variant *
variant(const Search *s, guint id)
{
	return &g_array_index(s->variants, Variant, id);
}

static GArray *
make_reqs(const Search *s, GArray *dependencies)
{
	GArray *reqs = g_array_new(FALSE, TRUE, sizeof(Req));

	for (guint i = 0; i < dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(dependencies, HealerModuleDependency, i);
		Req r = {.function = dep->function, .index = dep->index, .version = dep->version};
		if (dep->function == MODULE_FUNCTION_NONE)
			continue;
		r.position = position_find(s, dep->function, dep->index);
		g_array_append_val(reqs, r);
	}
	return reqs;
}

/* Conventional install order for ties: bootloader, radio stack, NCP, system parts, the rest. */
static guint
function_rank(guint function)
{
	switch (function) {
	case MODULE_FUNCTION_BOOTLOADER:
		return 0;
	case MODULE_FUNCTION_RADIO_STACK:
		return 1;
	case MODULE_FUNCTION_NCP_FIRMWARE:
		return 2;
	case MODULE_FUNCTION_SYSTEM_PART:
		return 3;
	case MODULE_FUNCTION_MONO_FIRMWARE:
		return 4;
	default:
		return 5 + function;
	}
}

static gint
compare_entries(gconstpointer a, gconstpointer b)
{
	const HealerInventoryEntry *x = *(const HealerInventoryEntry *const *)a;
	const HealerInventoryEntry *y = *(const HealerInventoryEntry *const *)b;

	if (function_rank(x->function) != function_rank(y->function))
		return function_rank(x->function) < function_rank(y->function) ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	/* At equal cost a release beats a prerelease. */
	if (x->prerelease != y->prerelease)
		return x->prerelease ? 1 : -1;
	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return g_strcmp0(x->path, y->path);
}

static gboolean
same_dependencies(const HealerInventoryEntry *a, const HealerInventoryEntry *b)
{
	if (a->dependencies->len != b->dependencies->len)
		return FALSE;
	for (guint i = 0; i < a->dependencies->len; i++) {
		const HealerModuleDependency *x = &g_array_index(a->dependencies, HealerModuleDependency, i);
		const HealerModuleDependency *y = &g_array_index(b->dependencies, HealerModuleDependency, i);
		if (x->function != y->function || x->index != y->index || x->version != y->version)
			return FALSE;
	}
	return TRUE;
}

/* Inventory entries as one module: same position, version and dependencies (hashed on the first three). */
static guint
module_identity_hash(gconstpointer p)
{
	const HealerInventoryEntry *e = p;

	return ((guint)e->function * 31u + (guint)e->index) * 2654435761u ^ (guint)e->version;
}

static gboolean
module_identity_equal(gconstpointer a, gconstpointer b)
{
	const HealerInventoryEntry *x = a, *y = b;

	return x->function == y->function && x->index == y->index && x->version == y->version &&
	       same_dependencies(x, y);
}

/* A inventory entry the device could ever take in this pass: platform, kind, policy, newer than installed. */
static gboolean
usable(const Search *s, const HealerInventoryEntry *e)
{
	const HealerInstalledModule *installed;

	if (e->platform_id != s->state->platform_id || e->function == MODULE_FUNCTION_USER_PART ||
	    e->function == MODULE_FUNCTION_NONE)
		return FALSE;
	if (e->prerelease && !s->allow_prerelease)
		return FALSE;
	installed = healer_device_state_find(s->state, e->function, e->index);
	return installed == NULL || e->version > installed->version;
}

static gboolean
req_met_by(const Search *s, const Req *r, const guint16 *vec)
{
	return r->position >= 0 && vec[r->position] != 0 && variant(s, vec[r->position])->version >= r->version;
}

static gboolean
req_reachable(const Search *s, const Req *r)
{
	return r->position >= 0 && s->reach[r->position] >= (gint32)r->version;
}

static gboolean
search_init(Search *s, GError **error)
{
	g_autoptr(GPtrArray) entries = g_ptr_array_new();
	/* entry -> its position in `entries` + 1: an inventory of tens of thousands of entries is
	 * de-duplicated in linear time, not quadratic (65,534 entries took 5 s, 63 s under valgrind). */
	g_autoptr(GHashTable) kept = g_hash_table_new(module_identity_hash, module_identity_equal);
	Variant empty = {0};
	g_autofree guint32 *min_need = NULL;
	gboolean changed;

	s->positions = g_array_new(FALSE, TRUE, sizeof(Position));
	s->variants = g_array_new(FALSE, TRUE, sizeof(Variant));
	g_array_set_clear_func(s->variants, variant_clear);
	s->goal_reqs = g_array_new(FALSE, TRUE, sizeof(Req));
	s->moves = g_array_new(FALSE, TRUE, sizeof(guint16));
	g_array_append_val(s->variants, empty);

	/* Positions: everything the device has, everything the inventory could give it. */
	for (guint i = 0; i < s->state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(s->state->modules, HealerInstalledModule, i);
		position_get(s, m->function, m->index);
	}
	for (guint i = 0; s->inventory != NULL && i < s->inventory->entries->len; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(s->inventory->entries, i);
		gpointer position;
		if (!usable(s, e))
			continue;
		/* The same module in two files (a bootloader shared by releases): keep the smaller file. */
		if (g_hash_table_lookup_extended(kept, e, NULL, &position)) {
			guint k = GPOINTER_TO_UINT(position) - 1;
			const HealerInventoryEntry *other = g_ptr_array_index(entries, k);
			if (compare_entries(&e, &other) < 0) {
				g_hash_table_remove(kept, other);
				g_hash_table_insert(kept, (gpointer)e, position);
				g_ptr_array_index(entries, k) = (gpointer)e;
			}
		} else {
			g_ptr_array_add(entries, (gpointer)e);
			g_hash_table_insert(kept, (gpointer)e, GUINT_TO_POINTER(entries->len));
		}
		position_get(s, e->function, e->index);
	}
	if (s->state->modules->len + entries->len >= G_MAXUINT16) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN, "too many modules to plan with (%u)",
		            entries->len);
		return FALSE;
	}
	g_ptr_array_sort(entries, compare_entries);

	s->start = g_new0(guint16, s->positions->len);
	for (guint i = 0; i < s->state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(s->state->modules, HealerInstalledModule, i);
		Variant v = {.function = m->function, .index = m->index, .version = m->version};
		v.position = position_get(s, m->function, m->index);
		v.deps = make_reqs(s, m->dependencies);
		g_array_append_val(s->variants, v);
		s->start[v.position] = (guint16)(s->variants->len - 1);
	}
	s->first_offered = s->variants->len;
	for (guint i = 0; i < entries->len; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(entries, i);
		Variant v = {.function = e->function, .index = e->index, .version = e->version, .bytes = e->size};
		v.position = position_get(s, e->function, e->index);
		v.deps = make_reqs(s, e->dependencies);
		v.entry = e;
		g_array_append_val(s->variants, v);
	}

	/* What the goal needs that the device does not have yet. */
	if (s->goal->kind == HEALER_GOAL_INSTALL_APP) {
		g_autoptr(GArray) reqs = make_reqs(s, s->goal->app->dependencies);
		g_autofree char *base = g_path_get_basename(s->goal->app->path);
		g_array_append_vals(s->goal_reqs, reqs->data, reqs->len);
		s->who = g_strdup_printf("the app %s", base);
	} else {
		/* A system module's unmet dependencies first (healer_goal_met()), then the user parts'. */
		for (guint i = 0; i < s->state->modules->len; i++) {
			const HealerInstalledModule *m = &g_array_index(s->state->modules, HealerInstalledModule, i);
			g_autoptr(GArray) reqs = NULL;
			gboolean unmet = FALSE;
			if (m->function == MODULE_FUNCTION_USER_PART)
				continue;
			reqs = make_reqs(s, m->dependencies);
			for (guint k = 0; k < reqs->len; k++)
				unmet = unmet || !req_met_by(s, &g_array_index(reqs, Req, k), s->start);
			if (!unmet)
				continue;
			g_array_append_vals(s->goal_reqs, reqs->data, reqs->len);
			if (s->who == NULL)
				s->who = g_strdup_printf("the installed %s %u v%u",
				                         healer_module_function_to_string(m->function), m->index,
				                         m->version);
		}
		for (guint i = 0; i < s->state->modules->len; i++) {
			const HealerInstalledModule *m = &g_array_index(s->state->modules, HealerInstalledModule, i);
			g_autoptr(GArray) reqs = NULL;
			if (m->function != MODULE_FUNCTION_USER_PART)
				continue;
			reqs = make_reqs(s, m->dependencies);
			g_array_append_vals(s->goal_reqs, reqs->data, reqs->len);
			if (s->who == NULL)
				s->who = g_strdup_printf("the installed user-part %u v%u", m->index, m->version);
		}
	}
	for (guint i = 0; i < s->goal_reqs->len;) {
		if (req_met_by(s, &g_array_index(s->goal_reqs, Req, i), s->start))
			g_array_remove_index(s->goal_reqs, i);
		else
			i++;
	}

	/*
	 * Relevance: an inventory module matters only if it meets some unmet
	 * requirement of the goal or of a module that matters.  Versions only
	 * grow, so a dependency the device meets now stays met.
	 */
	min_need = g_new(guint32, s->positions->len);
	for (guint i = 0; i < s->positions->len; i++)
		min_need[i] = G_MAXUINT32;
	for (guint i = 0; i < s->goal_reqs->len; i++) {
		const Req *r = &g_array_index(s->goal_reqs, Req, i);
		if (r->position >= 0)
			min_need[r->position] = MIN(min_need[r->position], r->version);
	}
	{
		g_autofree gboolean *relevant = g_new0(gboolean, s->variants->len);
		do {
			changed = FALSE;
			for (guint id = s->first_offered; id < s->variants->len; id++) {
				const Variant *v = variant(s, id);
				if (relevant[id] || min_need[v->position] > v->version)
					continue;
				relevant[id] = TRUE;
				changed = TRUE;
				for (guint k = 0; k < v->deps->len; k++) {
					const Req *r = &g_array_index(v->deps, Req, k);
					if (r->position >= 0 && !req_met_by(s, r, s->start))
						min_need[r->position] = MIN(min_need[r->position], r->version);
				}
			}
		} while (changed);
		for (guint id = s->first_offered; id < s->variants->len; id++) {
			guint16 id16 = (guint16)id;
			if (relevant[id])
				g_array_append_val(s->moves, id16);
		}
	}

	/*
	 * Reachability, ignoring order: the highest version each position could
	 * ever hold.  Dependencies only ask for minimum versions, so this is
	 * exact (apart from devices whose modules are already inconsistent)
	 * and tells at once, and why, when no plan exists.
	 */
	s->reach = g_new(gint32, s->positions->len);
	for (guint i = 0; i < s->positions->len; i++)
		s->reach[i] = s->start[i] != 0 ? variant(s, s->start[i])->version : -1;
	do {
		changed = FALSE;
		for (guint i = 0; i < s->moves->len; i++) {
			const Variant *v = variant(s, g_array_index(s->moves, guint16, i));
			gboolean ok = s->reach[v->position] < (gint32)v->version;
			for (guint k = 0; ok && k < v->deps->len; k++)
				ok = req_reachable(s, &g_array_index(v->deps, Req, k));
			if (ok) {
				s->reach[v->position] = v->version;
				changed = TRUE;
			}
		}
	} while (changed);
	return TRUE;
}

static char *
variant_text(const Variant *v)
{
	g_autofree char *what = healer_inventory_entry_to_string(v->entry);

	return g_strdup_printf("%s from %s", what, v->entry->path);
}

/*
 * Why the goal is out of reach: follow the first unreachable requirement
 * down through the oldest module that could meet it, to a requirement no
 * module meets, or to modules that need each other.
 */
static char *
explain_unreachable(const Search *s, const Req *goal_req)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree gboolean *on_path = g_new0(gboolean, s->positions->len);
	const char *source =
	        s->inventory != NULL && s->inventory->source != NULL ? s->inventory->source : "the modules given";
	Req r = *goal_req;

	for (guint depth = 0;; depth++) {
		g_autofree char *need = dependency_text(r.function, r.index, r.version);
		g_autofree char *have = have_text(s->state, r.function, r.index);
		const Variant *first = NULL;
		guint n_candidates = 0;
		const Req *blocking = NULL;

		for (guint id = s->first_offered; r.position >= 0 && id < s->variants->len; id++) {
			const Variant *v = variant(s, id);
			if (v->position == (guint)r.position && v->version >= r.version) {
				if (first == NULL)
					first = v;
				n_candidates++;
			}
		}
		if (first == NULL) {
			const HealerInventoryEntry *elsewhere = NULL;
			for (guint i = 0; s->inventory != NULL && i < s->inventory->entries->len && !elsewhere; i++) {
				const HealerInventoryEntry *e = g_ptr_array_index(s->inventory->entries, i);
				if (e->function == r.function && e->index == r.index && e->version >= r.version &&
				    e->platform_id != s->state->platform_id)
					elsewhere = e;
			}
			g_string_append_printf(out, "%sno module in %s provides %s for platform %u (",
			                       depth ? "; " : "", source, need, s->state->platform_id);
			if (depth == 0)
				g_string_append_printf(out, "needed by %s; ", s->who);
			g_string_append(out, have);
			if (elsewhere != NULL)
				g_string_append_printf(out, "; %s is for platform %u", elsewhere->path,
				                       elsewhere->platform_id);
			g_string_append(out, ")");
			break;
		}
		if (on_path[r.position]) {
			g_autofree char *text = variant_text(first);
			g_string_append_printf(out,
			                       "; %s only comes from modules that cannot be installed yet (the oldest: "
			                       "%s): these modules need each other and none can be installed first, "
			                       "so a stepping-stone release is missing",
			                       need, text);
			break;
		}
		if (depth == 0)
			g_string_append_printf(out, "cannot meet %s (needed by %s; %s): ", need, s->who, have);
		else
			g_string_append(out, "; ");
		on_path[r.position] = TRUE;
		for (guint k = 0; k < first->deps->len && blocking == NULL; k++) {
			const Req *d = &g_array_index(first->deps, Req, k);
			if (!req_reachable(s, d))
				blocking = d;
		}
		{
			g_autofree char *text = variant_text(first);
			g_string_append(out, text);
			if (n_candidates > 1)
				g_string_append_printf(out, " (the oldest of %u modules providing it)", n_candidates);
		}
		if (blocking == NULL) {
			/* Cannot happen: a module whose dependencies are all reachable is reachable. */
			g_string_append(out, " cannot be installed");
			break;
		}
		{
			g_autofree char *dep = dependency_text(blocking->function, blocking->index, blocking->version);
			g_autofree char *dep_have = have_text(s->state, blocking->function, blocking->index);
			g_string_append_printf(out, " needs %s (%s)", dep, dep_have);
		}
		r = *blocking;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The device's own modules whose dependencies are already unmet: why every order is refused. */
static char *
explain_inconsistent(const Search *s)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < s->state->modules->len; i++) {
		const HealerInstalledModule *m = &g_array_index(s->state->modules, HealerInstalledModule, i);
		if (m->function == MODULE_FUNCTION_USER_PART)
			continue;
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, k);
			if (!healer_device_state_dependency_met(s->state, d->function, d->index, d->version)) {
				g_autofree char *need = healer_module_dependency_to_string(d);
				g_string_append_printf(out, "%s%s %u v%u needs %s", out->len ? ", " : "",
				                       function_name(m->function), m->index, m->version, need);
			}
		}
	}
	if (out->len == 0)
		g_string_append(out, "no installed module's dependency is unmet");
	return g_string_free(g_steal_pointer(&out), FALSE);
}

typedef struct {
	GBytes *key; /* the vector */
	guint64 bytes;
	guint steps;
	gint parent;
	guint16 via;
	gboolean closed;
} Node;

typedef struct {
	guint64 bytes;
	guint steps;
	guint seq;
	guint node;
} HeapItem;

static gboolean
heap_less(const HeapItem *a, const HeapItem *b)
{
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes;
	if (a->steps != b->steps)
		return a->steps < b->steps;
	return a->seq < b->seq;
}

static void
heap_push(GArray *heap, HeapItem item)
{
	guint i;

	g_array_append_val(heap, item);
	for (i = heap->len - 1; i > 0;) {
		guint parent = (i - 1) / 2;
		HeapItem *h = (HeapItem *)heap->data;
		if (!heap_less(&h[i], &h[parent]))
			break;
		HeapItem tmp = h[i];
		h[i] = h[parent];
		h[parent] = tmp;
		i = parent;
	}
}

static HeapItem
heap_pop(GArray *heap)
{
	HeapItem *h = (HeapItem *)heap->data;
	HeapItem top = h[0];
	guint i = 0;

	h[0] = h[heap->len - 1];
	g_array_set_size(heap, heap->len - 1);
	h = (HeapItem *)heap->data;
	for (;;) {
		guint l = 2 * i + 1, r = l + 1, m = i;
		if (l < heap->len && heap_less(&h[l], &h[m]))
			m = l;
		if (r < heap->len && heap_less(&h[r], &h[m]))
			m = r;
		if (m == i)
			break;
		HeapItem tmp = h[i];
		h[i] = h[m];
		h[m] = tmp;
		i = m;
	}
	return top;
}

static const guint16 *
node_vec(const Node *n)
{
	return g_bytes_get_data(n->key, NULL);
}

/* The variant ids of the path to `node`, first step first; `out` holds n->steps entries. */
static void
node_path(GArray *nodes, guint node, guint16 *out)
{
	const Node *n = &g_array_index(nodes, Node, node);

	for (guint i = n->steps; i > 0; i--) {
		out[i - 1] = n->via;
		n = &g_array_index(nodes, Node, n->parent);
	}
}

/* Whether path(from) + via is lexicographically below path(to) (equal lengths). */
static gboolean
path_less(GArray *nodes, guint from, guint16 via, guint to)
{
	const Node *a = &g_array_index(nodes, Node, from), *b = &g_array_index(nodes, Node, to);
	g_autofree guint16 *pa = g_new(guint16, a->steps + 1);
	g_autofree guint16 *pb = g_new(guint16, b->steps + 1);

	node_path(nodes, from, pa);
	pa[a->steps] = via;
	node_path(nodes, to, pb);
	for (guint i = 0; i < b->steps; i++) {
		if (pa[i] != pb[i])
			return pa[i] < pb[i];
	}
	return FALSE;
}

/* Whether the device in state `vec` would accept inventory variant `id`. */
static gboolean
accepts(const Search *s, const guint16 *vec, guint id)
{
	const Variant *m = variant(s, id);
	guint cur = vec[m->position];

	if (cur != 0 && m->version <= variant(s, cur)->version)
		return FALSE;
	for (guint k = 0; k < m->deps->len; k++) {
		if (!req_met_by(s, &g_array_index(m->deps, Req, k), vec))
			return FALSE;
	}
	for (guint position = 0; position < s->positions->len; position++) {
		const Variant *other;
		if (position == m->position || vec[position] == 0)
			continue;
		other = variant(s, vec[position]);
		if (other->function == MODULE_FUNCTION_USER_PART)
			continue;
		for (guint k = 0; k < other->deps->len; k++) {
			const Req *r = &g_array_index(other->deps, Req, k);
			if (r->position == (gint)m->position && r->version > m->version)
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
goal_reached(const Search *s, const guint16 *vec)
{
	for (guint i = 0; i < s->goal_reqs->len; i++) {
		if (!req_met_by(s, &g_array_index(s->goal_reqs, Req, i), vec))
			return FALSE;
	}
	return TRUE;
}

static void
node_clear(gpointer data)
{
	Node *n = data;

	g_clear_pointer(&n->key, g_bytes_unref);
}

/*
 * Uniform-cost search: states in order of bytes sent, then steps; each
 * state is expanded once (the visited set), and at most max_states are.
 * Returns the variant ids of the cheapest path, or NULL.
 */
static GArray *
search_run(Search *s, gboolean *hit_limit)
{
	g_autoptr(GArray) nodes = g_array_new(FALSE, TRUE, sizeof(Node));
	g_autoptr(GArray) heap = g_array_new(FALSE, FALSE, sizeof(HeapItem));
	g_autoptr(GHashTable) seen = g_hash_table_new(g_bytes_hash, g_bytes_equal);
	g_autofree guint16 *next = g_new(guint16, s->positions->len);
	gsize vec_size = s->positions->len * sizeof(guint16);
	guint seq = 0;
	Node root = {.key = g_bytes_new(s->start, vec_size), .parent = -1};

	*hit_limit = FALSE;
	g_array_set_clear_func(nodes, node_clear);
	g_array_append_val(nodes, root);
	g_hash_table_insert(seen, root.key, GUINT_TO_POINTER(1));
	heap_push(heap, (HeapItem){.node = 0, .seq = seq++});

	while (heap->len > 0) {
		HeapItem item = heap_pop(heap);
		Node *n = &g_array_index(nodes, Node, item.node);
		guint64 bytes;
		guint steps;

		if (n->closed || item.bytes != n->bytes || item.steps != n->steps)
			continue;
		n->closed = TRUE;
		if (goal_reached(s, node_vec(n))) {
			GArray *path = g_array_sized_new(FALSE, FALSE, sizeof(guint16), n->steps);
			g_array_set_size(path, n->steps);
			node_path(nodes, item.node, (guint16 *)path->data);
			return path;
		}
		if (++s->states_explored >= s->max_states) {
			*hit_limit = TRUE;
			return NULL;
		}
		bytes = n->bytes;
		steps = n->steps;
		for (guint i = 0; i < s->moves->len; i++) {
			guint16 id = g_array_index(s->moves, guint16, i);
			const Variant *m = variant(s, id);
			const guint16 *vec = node_vec(&g_array_index(nodes, Node, item.node));
			g_autoptr(GBytes) key = NULL;
			gpointer found;

			if (!accepts(s, vec, id))
				continue;
			memcpy(next, vec, vec_size);
			next[m->position] = id;
			key = g_bytes_new(next, vec_size);
			found = g_hash_table_lookup(seen, key);
			if (found == NULL) {
				Node fresh = {.key = g_bytes_ref(key),
				              .bytes = bytes + m->bytes,
				              .steps = steps + 1,
				              .parent = (gint)item.node,
				              .via = id};
				g_array_append_val(nodes, fresh);
				g_hash_table_insert(seen, fresh.key, GUINT_TO_POINTER(nodes->len));
				heap_push(heap, (HeapItem){.bytes = fresh.bytes,
				                           .steps = fresh.steps,
				                           .seq = seq++,
				                           .node = nodes->len - 1});
			} else {
				guint other = GPOINTER_TO_UINT(found) - 1;
				Node *o = &g_array_index(nodes, Node, other);
				guint64 nb = bytes + m->bytes;
				guint ns = steps + 1;
				if (o->closed)
					continue;
				if (nb < o->bytes || (nb == o->bytes && ns < o->steps)) {
					o->bytes = nb;
					o->steps = ns;
					o->parent = (gint)item.node;
					o->via = id;
					heap_push(heap,
					          (HeapItem){.bytes = nb, .steps = ns, .seq = seq++, .node = other});
				} else if (nb == o->bytes && ns == o->steps && path_less(nodes, item.node, id, other)) {
					o->parent = (gint)item.node;
					o->via = id;
				}
			}
		}
	}
	return NULL;
}

typedef enum {
	PASS_OK,
	PASS_NO_PLAN,
	PASS_LIMIT,
} PassResult;

static PassResult
run_pass(const HealerDeviceState *state, const HealerModuleInventory *inventory, const HealerGoal *goal,
         gboolean allow_prerelease, guint max_states, HealerPlan **plan_out, GError **error)
{
	Search s = {
	        .state = state,
	        .inventory = inventory,
	        .goal = goal,
	        .allow_prerelease = allow_prerelease,
	        .max_states = max_states,
	};
	g_autoptr(GArray) path = NULL;
	gboolean hit_limit = FALSE;
	PassResult result = PASS_NO_PLAN;

	if (!search_init(&s, error))
		goto out;
	for (guint i = 0; i < s.goal_reqs->len; i++) {
		const Req *r = &g_array_index(s.goal_reqs, Req, i);
		if (!req_reachable(&s, r)) {
			g_autofree char *why = explain_unreachable(&s, r);
			g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN, why);
			goto out;
		}
	}
	path = search_run(&s, &hit_limit);
	if (path == NULL && hit_limit) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN,
		            "search limit: explored %u device states without reaching the goal (%u modules of %s "
		            "could matter)",
		            s.states_explored, s.moves->len,
		            inventory != NULL && inventory->source ? inventory->source : "the modules given");
		result = PASS_LIMIT;
		goto out;
	}
	if (path == NULL) {
		g_autofree char *why = explain_inconsistent(&s);
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN,
		            "the modules in %s could meet what %s needs, but the device would refuse every order: "
		            "each would leave an installed module's dependency unmet (%s)",
		            inventory != NULL && inventory->source ? inventory->source : "the modules given", s.who,
		            why);
		goto out;
	}
	*plan_out = healer_plan_new();
	for (guint i = 0; i < path->len; i++)
		healer_plan_add_step(*plan_out, variant(&s, g_array_index(path, guint16, i))->entry);
	(*plan_out)->states_explored = s.states_explored;
	result = PASS_OK;
out:
	search_clear(&s);
	return result;
}

static gboolean
inventory_has_prerelease(const HealerModuleInventory *inventory, guint16 platform_id)
{
	for (guint i = 0; inventory != NULL && i < inventory->entries->len; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(inventory->entries, i);
		if (e->prerelease && e->platform_id == platform_id && e->function != MODULE_FUNCTION_USER_PART)
			return TRUE;
	}
	return FALSE;
}

HealerPlan *
healer_resolve(const HealerDeviceState *state, const HealerModuleInventory *inventory, const HealerGoal *goal,
               const HealerResolverPolicy *policy, GError **error)
{
	HealerResolverPolicy defaults = {0};
	guint max_states;
	g_autoptr(HealerPlan) plan = NULL;
	g_autoptr(GError) first_error = NULL;
	g_autoptr(GError) check_error = NULL;
	g_autoptr(HealerDeviceState) final_state = NULL;
	PassResult result;

	if (policy == NULL)
		policy = &defaults;
	max_states = policy->max_states != 0 ? policy->max_states : HEALER_RESOLVER_DEFAULT_MAX_STATES;
	if (goal->kind == HEALER_GOAL_INSTALL_APP) {
		if (!check_app(state, goal, error))
			return NULL;
	} else {
		gboolean any = FALSE;
		for (guint i = 0; i < state->modules->len && !any; i++)
			any = g_array_index(state->modules, HealerInstalledModule, i).function ==
			      MODULE_FUNCTION_USER_PART;
		if (!any) {
			g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN,
			                    "the device has no user part: nothing to heal (give an app to install)");
			return NULL;
		}
	}

	/* Prereleases only when allowed, or when the goal cannot be met without one. */
	result = run_pass(state, inventory, goal, policy->allow_prerelease, max_states, &plan, &first_error);
	if (result == PASS_NO_PLAN && !policy->allow_prerelease &&
	    inventory_has_prerelease(inventory, state->platform_id)) {
		g_autoptr(GError) second_error = NULL;
		result = run_pass(state, inventory, goal, TRUE, max_states, &plan, &second_error);
		/* The wider search explains better, unless it only ran out of room. */
		if (result == PASS_NO_PLAN) {
			g_clear_error(&first_error);
			first_error = g_steal_pointer(&second_error);
		}
	}
	if (plan == NULL) {
		g_propagate_error(error, g_steal_pointer(&first_error));
		return NULL;
	}
	if (goal->kind == HEALER_GOAL_INSTALL_APP && !is_installed_app(state, goal->app))
		healer_plan_add_step(plan, goal->app);

	/* The plan must be one the device accepts step by step, ending with the goal met. */
	if (!healer_plan_simulate(state, plan, &final_state, &check_error) ||
	    !healer_goal_met(final_state, goal, &check_error)) {
		g_critical("resolver produced an invalid plan: %s", check_error->message);
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "internal error: invalid plan: %s",
		            check_error->message);
		return NULL;
	}
	return g_steal_pointer(&plan);
}

json_object *
healer_plan_to_json(const HealerPlan *plan)
{
	json_object *root = json_object_new_object();
	json_object *steps = json_object_new_array();

	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		const HealerInventoryEntry *e = step->entry;
		const char *function = healer_module_function_to_string(e->function);
		g_autofree char *sha = healer_sha256_to_hex(e->sha256);
		json_object *obj = json_object_new_object();

		json_object_object_add(obj, "file", json_object_new_string(e->path));
		json_object_object_add(obj, "function",
		                       function ? json_object_new_string(function) : json_object_new_int(e->function));
		json_object_object_add(obj, "index", json_object_new_int(e->index));
		json_object_object_add(obj, "version", json_object_new_int(e->version));
		json_object_object_add(obj, "release", e->release ? json_object_new_string(e->release) : NULL);
		json_object_object_add(obj, "sha256", json_object_new_string(sha));
		json_object_object_add(obj, "bytes", json_object_new_int64((int64_t)step->bytes));
		json_object_array_add(steps, obj);
	}
	json_object_object_add(root, "steps", steps);
	json_object_object_add(root, "bytes", json_object_new_int64((int64_t)plan->bytes));
	return root;
}
