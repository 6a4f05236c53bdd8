/*
 * The resolver and the module inventory: plans over synthetic inventories
 * (mutual dependencies as in Device OS 2.x, stepping stones, downgrades
 * refused, prereleases only when allowed or required, the cheapest of
 * several paths, precise reasons when no plan exists, termination on large
 * inventories), over the project's own firmware modules as built, and the
 * inventory's reading of a directory with broken files in it.
 *
 * Synthetic modules are written in a small notation: "s2" is system-part
 * 2, "b" the bootloader, "a" the radio stack, "u1" user-part 1; a state
 * or inventory entry is "s2=2202:s1>=2202,b>=1003".
 */
#include <string.h>

#include "healer-error.h"
#include "module-inventory.h"
#include "module-names.h"
#include "module-writer.h"
#include "resolver.h"
#include "semver.h"
#include "test-util.h"

#define SRC "TESTSRC"

/* ---- Notation -------------------------------------------------------- */

static void
parse_position(const char *name, guint *function, guint *index)
{
	char kind = name[0];
	const char *rest = name + 1;

	switch (kind) {
	case 'b':
		*function = MODULE_FUNCTION_BOOTLOADER;
		break;
	case 's':
		*function = MODULE_FUNCTION_SYSTEM_PART;
		break;
	case 'u':
		*function = MODULE_FUNCTION_USER_PART;
		break;
	case 'a':
		*function = MODULE_FUNCTION_RADIO_STACK;
		break;
	case 'c':
		*function = MODULE_FUNCTION_NCP_FIRMWARE;
		break;
	default:
		g_error("bad position name %s", name);
	}
	*index = *rest != '\0' ? (guint)g_ascii_strtoull(rest, NULL, 10) : 0;
}

static char *
position_name(guint function, guint index)
{
	switch (function) {
	case MODULE_FUNCTION_BOOTLOADER:
		return index == 0 ? g_strdup("b") : g_strdup_printf("b%u", index);
	case MODULE_FUNCTION_SYSTEM_PART:
		return g_strdup_printf("s%u", index);
	case MODULE_FUNCTION_USER_PART:
		return g_strdup_printf("u%u", index);
	case MODULE_FUNCTION_RADIO_STACK:
		return index == 0 ? g_strdup("a") : g_strdup_printf("a%u", index);
	case MODULE_FUNCTION_NCP_FIRMWARE:
		return index == 0 ? g_strdup("c") : g_strdup_printf("c%u", index);
	default:
		return g_strdup_printf("f%u.%u", function, index);
	}
}

typedef struct {
	guint function, index;
	guint16 version;
} Dep;

/* "s2=2202:s1>=2202,b>=1003" -> position, version, dependencies */
static GArray *
parse_module(const char *text, guint *function, guint *index, guint16 *version)
{
	g_auto(GStrv) head = g_strsplit(text, ":", 2);
	g_auto(GStrv) sv = g_strsplit(head[0], "=", 2);
	GArray *deps = g_array_new(FALSE, TRUE, sizeof(Dep));

	g_assert_nonnull(sv[1]);
	parse_position(sv[0], function, index);
	*version = (guint16)g_ascii_strtoull(sv[1], NULL, 10);
	if (head[1] != NULL) {
		g_auto(GStrv) items = g_strsplit(head[1], ",", -1);
		for (guint i = 0; items[i] != NULL; i++) {
			g_auto(GStrv) dv = g_strsplit(items[i], ">=", 2);
			Dep d;
			g_assert_nonnull(dv[1]);
			parse_position(dv[0], &d.function, &d.index);
			d.version = (guint16)g_ascii_strtoull(dv[1], NULL, 10);
			g_array_append_val(deps, d);
		}
	}
	return deps;
}

/* An inventory entry in memory: "s1=2202:s2>=207", its size and release ("2.0.0-rc.1" marks a prerelease). */
static const HealerInventoryEntry *
add(HealerModuleInventory *inventory, guint16 platform, const char *text, gsize size, const char *release)
{
	guint function, index;
	guint16 version;
	g_autoptr(GArray) deps = parse_module(text, &function, &index, &version);
	g_autofree char *name = position_name(function, index);
	g_autofree char *path =
	        g_strdup_printf("%s/%s-%u%s%s.bin", SRC, name, version, release ? "@" : "", release ? release : "");
	HealerInventoryEntry *e = healer_inventory_entry_new(path, platform, function, index, version, size);

	for (guint i = 0; i < deps->len; i++) {
		const Dep *d = &g_array_index(deps, Dep, i);
		healer_inventory_entry_add_dependency(e, d->function, d->index, d->version);
	}
	if (release != NULL) {
		e->release = g_strdup(release);
		e->prerelease = healer_semver_is_prerelease(release);
	}
	/* A distinct suffix SHA-256 per module, as real modules have. */
	healer_sha256((const guint8 *)path, strlen(path), e->module_sha256);
	healer_module_inventory_add(inventory, e);
	return e;
}

/* "b=101 s1=207:s2>=100 s2=207:s1>=207 u1=4:s2>=2202" */
static HealerDeviceState *
state_new(guint16 platform, const char *text)
{
	HealerDeviceState *state = healer_device_state_new(platform);
	g_auto(GStrv) tokens = g_strsplit(text, " ", -1);

	for (guint t = 0; tokens[t] != NULL; t++) {
		guint function, index;
		guint16 version;
		g_autoptr(GArray) deps = NULL;
		if (*tokens[t] == '\0')
			continue;
		deps = parse_module(tokens[t], &function, &index, &version);
		healer_device_state_set(state, function, index, version);
		for (guint i = 0; i < deps->len; i++) {
			const Dep *d = &g_array_index(deps, Dep, i);
			healer_device_state_add_dependency(state, function, index, d->function, d->index, d->version);
		}
	}
	return state;
}

/* "b=1006 s1=2202 s2=2202" */
static char *
plan_text(const HealerPlan *plan)
{
	g_autoptr(GString) out = g_string_new(NULL);

	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerInventoryEntry *e = g_array_index(plan->steps, HealerPlanStep, i).entry;
		g_autofree char *name = position_name(e->function, e->index);
		g_string_append_printf(out, "%s%s=%u", i ? " " : "", name, e->version);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The device accepts every step and ends with the goal met; bytes add up. */
static void
assert_valid(const HealerDeviceState *state, const HealerPlan *plan, const HealerGoal *goal)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDeviceState) final_state = NULL;
	guint64 bytes = 0;

	g_assert_true(healer_plan_simulate(state, plan, &final_state, &error));
	g_assert_no_error(error);
	g_assert_true(healer_goal_met(final_state, goal, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < plan->steps->len; i++)
		bytes += g_array_index(plan->steps, HealerPlanStep, i).bytes;
	g_assert_cmpuint(bytes, ==, plan->bytes);
}

/* Heals `state` with `inventory`; asserts a valid plan and returns its text. */
static char *
heal(const HealerDeviceState *state, const HealerModuleInventory *inventory, const HealerResolverPolicy *policy,
     HealerPlan **plan_out)
{
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerPlan) plan = healer_resolve(state, inventory, &goal, policy, &error);
	char *text;

	g_assert_no_error(error);
	g_assert_nonnull(plan);
	assert_valid(state, plan, &goal);
	text = plan_text(plan);
	g_test_message("plan: %s (%" G_GUINT64_FORMAT " bytes, %u states)", text, plan->bytes, plan->states_explored);
	if (plan_out != NULL)
		*plan_out = g_steal_pointer(&plan);
	return text;
}

/* Heals and expects no plan; returns the reason. */
static char *
heal_fails(const HealerDeviceState *state, const HealerModuleInventory *inventory, const HealerResolverPolicy *policy)
{
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerPlan) plan = healer_resolve(state, inventory, &goal, policy, &error);

	g_assert_null(plan);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN);
	g_test_message("no plan: %s", error->message);
	return g_strdup(error->message);
}

static void
assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL)
		g_error("expected \"%s\" in: %s", needle, haystack);
}

/* ---- Mutual dependencies (Device OS 2.x Gen 2) ----------------------- */

#define PHOTON 6

/* Photon 2.2.0: part 1 needs part 2 >= 207, part 2 needs part 1 >= 2202 and bootloader >= 1003. */
static HealerModuleInventory *
photon_220_inventory(void)
{
	HealerModuleInventory *inventory = healer_module_inventory_new(SRC);

	add(inventory, PHOTON, "b=1006", 15000, "2.2.0");
	add(inventory, PHOTON, "s1=2202:s2>=207", 240000, "2.2.0");
	add(inventory, PHOTON, "s2=2202:s1>=2202,b>=1003", 260000, "2.2.0");
	return inventory;
}

static void
test_mutual_from_07(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerDeviceState) state =
	        state_new(PHOTON, "b=101 s1=207:s2>=207 s2=207:s1>=207,b>=101 u1=5:s2>=2202");
	g_autofree char *plan = heal(state, inventory, NULL, NULL);

	/* Part 1 first (its need, part 2 >= 207, is met), then part 2 once part 1 and the bootloader are there. */
	g_assert_cmpstr(plan, ==, "b=1006 s1=2202 s2=2202");
}

static void
test_mutual_deadlock(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=7 s1=100 s2=100:s1>=100 u1=5:s2>=2202");
	g_autofree char *why = heal_fails(state, inventory, NULL);

	/* Part 2 needs part 1 >= 2202, part 1 needs part 2 >= 207: neither can go first from 0.6. */
	assert_contains(why, "cannot meet system-part 2 >= 2202 (needed by the installed user-part 1 v5; the device "
	                     "has system-part 2 v100)");
	assert_contains(why, "system-part 2 v2202 (2.2.0) from " SRC "/s2-2202@2.2.0.bin needs system-part 1 >= "
	                     "2202 (the device has system-part 1 v100)");
	assert_contains(why, "system-part 1 v2202 (2.2.0) from " SRC "/s1-2202@2.2.0.bin needs system-part 2 >= 207 "
	                     "(the device has system-part 2 v100)");
	assert_contains(why, "these modules need each other and none can be installed first");
}

static void
test_mutual_through_07(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=7 s1=100 s2=100:s1>=100 u1=5:s2>=2202");
	g_autofree char *plan = NULL;

	/* With 0.7.0 in the store it becomes the stepping stone. */
	add(inventory, PHOTON, "s1=207", 200000, "0.7.0");
	add(inventory, PHOTON, "s2=207:s1>=207", 200000, "0.7.0");
	plan = heal(state, inventory, NULL, NULL);
	g_assert_cmpstr(plan, ==, "b=1006 s1=207 s2=207 s1=2202 s2=2202");
}

/* ---- Stepping stones on the project's own firmware -------------------- */

/*
 * The modules device-firmware builds (docs/firmware.md).  Others may add
 * releases and apps to it, so these tests check the plan's shape (1.2.0
 * before 2.x, every step accepted, no prerelease) rather than one list.
 */
static HealerModuleInventory *
firmware_inventory(void)
{
	const char *dir = test_program("HEALER_FIRMWARE_MODULES");
	g_autofree char *table_path = g_build_filename(dir, "releases.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = healer_release_table_new_from_file(table_path, &error);
	HealerModuleInventory *inventory;

	g_assert_no_error(error);
	inventory = healer_module_inventory_load_dir(dir, table, &error);
	g_assert_no_error(error);
	g_assert_nonnull(inventory);
	for (guint i = 0; i < inventory->warnings->len; i++)
		g_error("unexpected warning on the built modules: %s",
		        (char *)g_ptr_array_index(inventory->warnings, i));
	/* At least 1.0.0, 1.1.0, 1.2.0, 2.0.0-rc.1 and 2.0.0 of 3 modules, and tinker and travel-in-time. */
	g_assert_cmpuint(inventory->entries->len, >=, 17);
	return inventory;
}

static const HealerInventoryEntry *
catalog_find(const HealerModuleInventory *inventory, const char *suffix)
{
	for (guint i = 0; i < inventory->entries->len; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(inventory->entries, i);
		if (g_str_has_suffix(e->path, suffix))
			return e;
	}
	g_error("no %s in the inventory", suffix);
}

/* A device flashed with `release` of the firmware and `app` (may be NULL), as the factory would. */
static HealerDeviceState *
firmware_state(const HealerModuleInventory *inventory, const char *release, const HealerInventoryEntry *app)
{
	HealerDeviceState *state = healer_device_state_new(3);
	static const char *const parts[] = {"bootloader.bin", "system-part1.bin", "system-part2.bin"};
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
		g_autofree char *suffix = g_strdup_printf("/%s/%s", release, parts[i]);
		const HealerInventoryEntry *e = catalog_find(inventory, suffix);
		healer_device_state_set(state, e->function, e->index, e->version);
		for (guint k = 0; k < e->dependencies->len; k++) {
			const HealerModuleDependency *d = &g_array_index(e->dependencies, HealerModuleDependency, k);
			healer_device_state_add_dependency(state, e->function, e->index, d->function, d->index,
			                                   d->version);
		}
	}
	if (app != NULL)
		g_assert_true(healer_device_state_install(state, app, &error));
	g_assert_no_error(error);
	return state;
}

/* The system-part steps go 1.2.0's part 1 and part 2, then a 2.x part 1 and part 2; no prerelease. */
static void
assert_stepping_stone(const HealerPlan *plan)
{
	g_autoptr(GPtrArray) parts = g_ptr_array_new();
	guint bootloader_at = G_MAXUINT, last_part_at = 0;

	g_assert_false(plan->uses_prerelease);
	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerInventoryEntry *e = g_array_index(plan->steps, HealerPlanStep, i).entry;
		g_assert_false(e->prerelease);
		if (e->function == MODULE_FUNCTION_SYSTEM_PART) {
			g_ptr_array_add(parts, (gpointer)e);
			last_part_at = i;
		} else if (e->function == MODULE_FUNCTION_BOOTLOADER) {
			bootloader_at = i;
			g_assert_cmpuint(e->version, >=, 200);
		}
	}
	g_assert_cmpuint(parts->len, ==, 4);
	g_assert_cmpuint(bootloader_at, <, last_part_at);
	for (guint i = 0; i < 4; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(parts, i);
		g_assert_cmpuint(e->index, ==, i % 2 + 1);
		if (i < 2)
			g_assert_cmpstr(e->release, ==, "1.2.0");
		else
			g_assert_cmpuint(e->version, >=, 2002);
	}
}

static void
test_firmware_stepping_stone(void)
{
	g_autoptr(HealerModuleInventory) inventory = firmware_inventory();
	const HealerInventoryEntry *travel = catalog_find(inventory, "/apps/travel-in-time.bin");
	g_autoptr(HealerDeviceState) state = firmware_state(inventory, "1.0.0", travel);
	g_autoptr(HealerPlan) plan = NULL;
	g_autofree char *text = heal(state, inventory, NULL, &plan);
	guint64 bytes = 0;

	assert_contains(text, "s1=1203 s2=1203 s1=");

	/* travel-in-time needs s2 >= 2002; 2.0.0's parts need each other, so 1.2.0 goes first. */
	g_assert_cmpuint(travel->dependencies->len, ==, 1);
	g_assert_cmpuint(g_array_index(travel->dependencies, HealerModuleDependency, 0).version, ==, 2002);
	assert_stepping_stone(plan);
	g_assert_cmpuint(plan->steps->len, ==, 5);
	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		g_autoptr(GBytes) file = test_read_file(step->entry->path);
		g_assert_cmpuint(step->bytes, ==, g_bytes_get_size(file));
		bytes += step->bytes;
	}
	g_assert_cmpuint(plan->bytes, ==, bytes);

	/* Only 2.0.0 in the store: no order works, and the reason says so. */
	{
		g_autoptr(HealerModuleInventory) only_200 = healer_module_inventory_new("only-2.0.0");
		g_autofree char *why = NULL;
		for (guint i = 0; i < inventory->entries->len; i++) {
			const HealerInventoryEntry *e = g_ptr_array_index(inventory->entries, i);
			if (strstr(e->path, "/2.0.0/") != NULL) {
				HealerInventoryEntry *copy = healer_inventory_entry_new(
				        e->path, e->platform_id, e->function, e->index, e->version, e->size);
				g_array_append_vals(copy->dependencies, e->dependencies->data, e->dependencies->len);
				healer_module_inventory_add(only_200, copy);
			}
		}
		why = heal_fails(state, only_200, NULL);
		assert_contains(why, "cannot meet system-part 2 >= 2002");
		assert_contains(why, "needs system-part 2 >= 1203 (the device has system-part 2 v1000)");
		assert_contains(why, "a stepping-stone release is missing");
	}
}

static void
test_firmware_install_app(void)
{
	g_autoptr(HealerModuleInventory) inventory = firmware_inventory();
	const HealerInventoryEntry *tinker = catalog_find(inventory, "/apps/tinker.bin");
	const HealerInventoryEntry *travel = catalog_find(inventory, "/apps/travel-in-time.bin");
	g_autoptr(HealerDeviceState) state = firmware_state(inventory, "1.0.0", tinker);
	HealerGoal goal = {.kind = HEALER_GOAL_INSTALL_APP, .app = travel};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerPlan) plan = healer_resolve(state, inventory, &goal, NULL, &error);
	g_autoptr(HealerPlan) again = NULL;
	g_autoptr(HealerDeviceState) bare = firmware_state(inventory, "1.0.0", NULL);
	g_autofree char *text = NULL;

	g_assert_no_error(error);
	assert_valid(state, plan, &goal);
	/* The system first, the app last. */
	g_assert_cmpuint(plan->steps->len, ==, 6);
	g_assert_true(g_array_index(plan->steps, HealerPlanStep, 5).entry == travel);
	g_array_set_size(plan->steps, 5);
	assert_stepping_stone(plan);

	/* tinker is installed and happy on 1.0.0: nothing to do; on an app-less 1.0.0 only the app. */
	goal.app = tinker;
	again = healer_resolve(state, inventory, &goal, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(again->steps->len, ==, 0);
	g_clear_pointer(&again, healer_plan_free);
	again = healer_resolve(bare, inventory, &goal, NULL, &error);
	g_assert_no_error(error);
	assert_valid(bare, again, &goal);
	text = plan_text(again);
	g_assert_cmpstr(text, ==, "u1=3");
}

static void
test_firmware_from_110(void)
{
	g_autoptr(HealerModuleInventory) inventory = firmware_inventory();
	const HealerInventoryEntry *travel = catalog_find(inventory, "/apps/travel-in-time.bin");
	g_autoptr(HealerDeviceState) state = firmware_state(inventory, "1.1.0", travel);
	g_autoptr(HealerPlan) plan = NULL;
	g_autofree char *text = heal(state, inventory, NULL, &plan);

	assert_contains(text, "s1=1203 s2=1203 s1=");
	assert_stepping_stone(plan);
}

/* ---- Never downgrade ------------------------------------------------- */

static void
test_no_downgrade(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	/*
	 * The device's part 1 (3000) needs part 2 >= 3000 but holds 100: part 2
	 * 2202 (small) would break it, and installing the older part 1 2202
	 * (small) first would make that possible and cheap.  A device is never
	 * downgraded, so only the large part 2 3000 remains.
	 */
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=1006 s1=3000:s2>=3000 s2=100 u1=5:s2>=2202");
	g_autofree char *plan = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDeviceState) copy = NULL;
	const HealerInventoryEntry *old_s1, *same_s1;

	old_s1 = add(inventory, PHOTON, "s1=2202", 1000, "2.2.0");
	same_s1 = add(inventory, PHOTON, "s1=3000", 10, "3.0.0");
	add(inventory, PHOTON, "s2=2202:s1>=2202", 1000, "2.2.0");
	add(inventory, PHOTON, "s2=3000:s1>=3000", 900000, "3.0.0");
	plan = heal(state, inventory, NULL, NULL);
	g_assert_cmpstr(plan, ==, "s2=3000");

	/* The device model refuses both an older and an equal version. */
	copy = healer_device_state_copy(state);
	g_assert_false(healer_device_state_install(copy, old_s1, &error));
	assert_contains(error->message, "not newer than the installed v3000");
	g_clear_error(&error);
	g_assert_false(healer_device_state_install(copy, same_s1, &error));
	assert_contains(error->message, "not newer than the installed v3000");
	g_clear_error(&error);
	g_assert_cmpuint(healer_device_state_find(copy, MODULE_FUNCTION_SYSTEM_PART, 1)->version, ==, 3000);
}

static void
test_no_downgrade_no_plan(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "s1=2500 s2=2500:s1>=2500 u1=5:s2>=2600");
	g_autofree char *why = NULL;

	add(inventory, PHOTON, "s2=2202:s1>=2202", 1000, "2.2.0");
	why = heal_fails(state, inventory, NULL);
	g_assert_cmpstr(why, ==,
	                "no module in " SRC " provides system-part 2 >= 2600 for platform 6 (needed by the installed "
	                "user-part 1 v5; the device has system-part 2 v2500)");
}

/* ---- Prereleases ----------------------------------------------------- */

static void
test_prerelease_policy(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(3, "b=201 s1=2002 s2=1203:s1>=1203 u1=2:s2>=2000");
	HealerResolverPolicy allow = {.allow_prerelease = TRUE};
	g_autoptr(HealerPlan) plan = NULL;
	g_autofree char *a = NULL, *b = NULL, *c = NULL;

	/* The rc is smaller, but a release meets the need too: the release is used. */
	add(inventory, 3, "s2=2000:s1>=2000", 40000, "2.0.0-rc.1");
	add(inventory, 3, "s2=2002:s1>=2002", 50000, "2.0.0");
	a = heal(state, inventory, NULL, &plan);
	g_assert_cmpstr(a, ==, "s2=2002");
	g_assert_false(plan->uses_prerelease);
	g_clear_pointer(&plan, healer_plan_free);

	/* Allowed: the cheaper rc. */
	b = heal(state, inventory, &allow, &plan);
	g_assert_cmpstr(b, ==, "s2=2000");
	g_assert_true(plan->uses_prerelease);
	g_clear_pointer(&plan, healer_plan_free);

	/* Only the rc provides it: required, so used without being allowed. */
	g_ptr_array_remove_index(inventory->entries, 1);
	c = heal(state, inventory, NULL, &plan);
	g_assert_cmpstr(c, ==, "s2=2000");
	g_assert_true(plan->uses_prerelease);
}

static void
test_prerelease_stepping_stone(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(3, "b=201 s1=1000 s2=1000:s1>=1000 u1=2:s2>=2002");
	g_autofree char *plan = NULL;

	/* The only way to s2 2002 goes through an rc's part 1 (no final 1.2.0 here): it is required. */
	add(inventory, 3, "s1=1200", 30000, "1.2.0-rc.1");
	add(inventory, 3, "s2=1203:s1>=1200", 30000, "1.2.0");
	add(inventory, 3, "s1=2002:s2>=1203", 30000, "2.0.0");
	add(inventory, 3, "s2=2002:s1>=2002", 30000, "2.0.0");
	plan = heal(state, inventory, NULL, NULL);
	g_assert_cmpstr(plan, ==, "s1=1200 s2=1203 s1=2002 s2=2002");
}

/* ---- Cost ------------------------------------------------------------ */

static void
test_minimum_bytes(void)
{
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=1006 s1=2000 s2=2000:s1>=2000 u1=5:s2>=2100");

	/* Direct: s2 2300 (50000 bytes); or s1 2100 + s2 2100 (20000 + 10000). */
	{
		g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
		g_autofree char *plan = NULL;
		add(inventory, PHOTON, "s2=2300:s1>=2000", 50000, NULL);
		add(inventory, PHOTON, "s1=2100", 20000, NULL);
		add(inventory, PHOTON, "s2=2100:s1>=2100", 10000, NULL);
		plan = heal(state, inventory, NULL, NULL);
		g_assert_cmpstr(plan, ==, "s1=2100 s2=2100");
	}
	/* The same with the direct module cheaper. */
	{
		g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
		g_autofree char *plan = NULL;
		add(inventory, PHOTON, "s2=2300:s1>=2000", 29999, NULL);
		add(inventory, PHOTON, "s1=2100", 20000, NULL);
		add(inventory, PHOTON, "s2=2100:s1>=2100", 10000, NULL);
		plan = heal(state, inventory, NULL, NULL);
		g_assert_cmpstr(plan, ==, "s2=2300");
	}
	/* Equal bytes: fewer steps. */
	{
		g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
		g_autofree char *plan = NULL;
		add(inventory, PHOTON, "s2=2300:s1>=2000", 30000, NULL);
		add(inventory, PHOTON, "s1=2100", 20000, NULL);
		add(inventory, PHOTON, "s2=2100:s1>=2100", 10000, NULL);
		plan = heal(state, inventory, NULL, NULL);
		g_assert_cmpstr(plan, ==, "s2=2300");
	}
}

/* ---- No plan: precise reasons ---------------------------------------- */

static void
test_missing_module(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=7 s1=100 s2=100:s1>=100 u1=5:s2>=2202");
	g_autofree char *why = NULL, *why2 = NULL, *why3 = NULL;

	add(inventory, PHOTON, "s1=2202:s2>=207", 240000, "2.2.0");
	add(inventory, PHOTON, "b=1006", 15000, "2.2.0");
	why = heal_fails(state, inventory, NULL);
	g_assert_cmpstr(why, ==,
	                "no module in " SRC " provides system-part 2 >= 2202 for platform 6 (needed by the installed "
	                "user-part 1 v5; the device has system-part 2 v100)");

	/* One level down: the app needs part 1, whose own dependency nothing provides. */
	{
		g_autoptr(HealerDeviceState) s1_state = state_new(PHOTON, "b=7 s1=100 s2=100:s1>=100 u1=5:s1>=2202");
		why2 = heal_fails(s1_state, inventory, NULL);
		g_assert_cmpstr(why2, ==,
		                "cannot meet system-part 1 >= 2202 (needed by the installed user-part 1 v5; the device "
		                "has system-part 1 v100): system-part 1 v2202 (2.2.0) from " SRC
		                "/s1-2202@2.2.0.bin needs system-part 2 >= 207 (the device has system-part 2 v100); no "
		                "module in " SRC " provides system-part 2 >= 207 for platform 6 (the device has "
		                "system-part 2 v100)");
	}

	/* A module for another platform is named as such. */
	add(inventory, 12, "s2=2202:s1>=2202", 1000, "2.2.0");
	why3 = heal_fails(state, inventory, NULL);
	assert_contains(why3, "; " SRC "/s2-2202@2.2.0.bin is for platform 12)");
}

static void
test_no_user_part(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=7 s1=100 s2=100");
	g_autofree char *why = heal_fails(state, inventory, NULL);

	assert_contains(why, "no user part");
}

static void
test_nothing_to_do(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=7 s1=100 s2=100:s1>=100 u1=5:s2>=100");
	g_autoptr(HealerPlan) plan = NULL;
	g_autofree char *text = heal(state, inventory, NULL, &plan);

	g_assert_cmpstr(text, ==, "");
	g_assert_cmpuint(plan->bytes, ==, 0);
	/* With no inventory at all, too. */
	g_clear_pointer(&text, g_free);
	text = heal(state, NULL, NULL, NULL);
	g_assert_cmpstr(text, ==, "");
}

/*
 * A device whose own modules are already inconsistent: part 2 needs part 1 >= 300 but holds 100.  The
 * app needs part 1 >= 200 and the inventory has it; but part 2's failed dependency is part of the heal
 * too (it keeps the device in safe mode as the app's would), and nothing provides part 1 >= 300.
 */
static void
test_refuses_every_order(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=7 s1=100 s2=100:s1>=300 u1=5:s1>=200");
	g_autofree char *why = NULL;

	add(inventory, PHOTON, "s1=200", 1000, "2.0.0");
	why = heal_fails(state, inventory, NULL);
	g_assert_cmpstr(why, ==,
	                "no module in " SRC " provides system-part 1 >= 300 for platform 6 (needed by the installed "
	                "system-part 2 v100; the device has system-part 1 v100)");
}

/*
 * The search numbers the variants of its device states with 16 bits (0 is "empty"): the device's
 * modules and the inventory's distinct usable ones must stay below 65,535.  The device holds one module
 * (the app) and the inventory 65,534 versions of part 1: refused before any search, with the count.
 * Only the refusal is run, not the plan one fewer would give (a search over 65,533 variants).
 */
static void
test_too_many_modules(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "u1=5:s1>=2");
	g_autofree char *why = NULL;

	for (guint version = 1; version < G_MAXUINT16; version++) {
		HealerInventoryEntry *e = healer_inventory_entry_new("many.bin", PHOTON, MODULE_FUNCTION_SYSTEM_PART, 1,
		                                                     (guint16)version, 100);
		healer_module_inventory_add(inventory, e);
	}
	g_assert_cmpuint(state->modules->len + inventory->entries->len, ==, G_MAXUINT16);
	why = heal_fails(state, inventory, NULL);
	g_assert_cmpstr(why, ==, "too many modules to plan with (65534)");
}

/* ---- The device model -------------------------------------------------- */

static void
test_simulate(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerDeviceState) state =
	        state_new(PHOTON, "b=101 s1=207:s2>=207 s2=207:s1>=207,b>=101 u1=5:s2>=2202");
	g_autoptr(HealerPlan) bad = healer_plan_new();
	g_autoptr(HealerPlan) good = healer_plan_new();
	g_autoptr(HealerDeviceState) final_state = NULL;
	g_autoptr(GError) error = NULL;
	const HealerInventoryEntry *b = g_ptr_array_index(inventory->entries, 0);
	const HealerInventoryEntry *s1 = g_ptr_array_index(inventory->entries, 1);
	const HealerInventoryEntry *s2 = g_ptr_array_index(inventory->entries, 2);
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};

	/* Part 2 before part 1: refused at step 1, state untouched. */
	healer_plan_add_step(bad, s2);
	healer_plan_add_step(bad, s1);
	g_assert_false(healer_plan_simulate(state, bad, &final_state, &error));
	g_assert_null(final_state);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_FAILED);
	g_assert_cmpstr(error->message, ==,
	                "step 1 (" SRC "/s2-2202@2.2.0.bin): system-part 2 v2202 (2.2.0) needs system-part 1 >= 2202 "
	                "and the device has system-part 1 v207");
	g_clear_error(&error);

	/* Part 1, then part 2 without the bootloader: refused at step 2. */
	healer_plan_add_step(good, s1);
	healer_plan_add_step(good, s2);
	g_assert_false(healer_plan_simulate(state, good, NULL, &error));
	assert_contains(error->message, "step 2 (");
	assert_contains(error->message, "needs bootloader 0 >= 1003 and the device has bootloader 0 v101");
	g_clear_error(&error);
	g_array_insert_val(good->steps, 0, ((HealerPlanStep){.entry = b, .bytes = b->size}));
	g_assert_true(healer_plan_simulate(state, good, &final_state, &error));
	g_assert_no_error(error);
	g_assert_true(healer_goal_met(final_state, &goal, &error));
	g_assert_no_error(error);
	g_assert_false(healer_goal_met(state, &goal, &error));
	g_assert_cmpstr(
	        error->message, ==,
	        "the installed user-part 1 v5 needs system-part 2 >= 2202 and the device has system-part 2 v207");
}

static void
test_breaks_dependents(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	/* The radio stack needs part 1 >= 1321; the device holds an odd part 1 of 1000 (an inconsistent state). */
	g_autoptr(HealerDeviceState) state = state_new(13, "b=1006 a=202:s1>=1321 s1=1000 u1=6:s1>=1300");
	g_autoptr(GError) error = NULL;
	const HealerInventoryEntry *s1_1300, *wrong;
	g_autofree char *plan = NULL;

	s1_1300 = add(inventory, 13, "s1=1300", 100, NULL);
	add(inventory, 13, "s1=1400", 5000, NULL);
	wrong = add(inventory, 12, "s1=1500", 10, NULL);
	g_assert_false(healer_device_state_install(state, s1_1300, &error));
	assert_contains(error->message,
	                "would break the installed radio-stack 0 v202, which needs system-part 1 >= 1321");
	g_clear_error(&error);
	g_assert_false(healer_device_state_install(state, wrong, &error));
	assert_contains(error->message, "is for platform 12, the device is platform 13");
	g_clear_error(&error);
	/* The cheap 1300 is refused by the device, so the plan takes 1400. */
	plan = heal(state, inventory, NULL, NULL);
	g_assert_cmpstr(plan, ==, "s1=1400");
}

static void
test_radio_stack_order(void)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(SRC);
	/* Gen 3 from 1.5.2 with no radio stack listed: bootloader, then SoftDevice, then part 1. */
	g_autoptr(HealerDeviceState) state = state_new(13, "b=501 s1=1512:b>=501 u1=6:s1>=2202");
	g_autofree char *plan = NULL;

	add(inventory, 13, "b=1006", 47292, "2.2.0");
	add(inventory, 13, "a=202:b>=501,s1>=1321", 153048, NULL);
	add(inventory, 13, "s1=2202:b>=1005,a>=202", 499160, "2.2.0");
	plan = heal(state, inventory, NULL, NULL);
	g_assert_cmpstr(plan, ==, "b=1006 a=202 s1=2202");
}

static void
test_install_app_goal(void)
{
	g_autoptr(HealerModuleInventory) inventory = photon_220_inventory();
	g_autoptr(HealerModuleInventory) apps = healer_module_inventory_new(SRC);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=101 s1=207:s2>=207 s2=207:s1>=207,b>=101 u1=9");
	const HealerInventoryEntry *app = add(apps, PHOTON, "u1=3:s2>=2202", 5000, NULL);
	const HealerInventoryEntry *other_platform = add(apps, 12, "u1=3:s1>=2202", 5000, NULL);
	const HealerInventoryEntry *not_app = g_ptr_array_index(inventory->entries, 0);
	HealerGoal goal = {.kind = HEALER_GOAL_INSTALL_APP, .app = app};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerPlan) plan = healer_resolve(state, inventory, &goal, NULL, &error);
	g_autofree char *text = NULL;

	g_assert_no_error(error);
	assert_valid(state, plan, &goal);
	text = plan_text(plan);
	/* The installed app (v9) is replaced by an older-numbered one: apps number their own versions. */
	g_assert_cmpstr(text, ==, "b=1006 s1=2202 s2=2202 u1=3");
	g_assert_cmpuint(plan->bytes, ==, 15000 + 240000 + 260000 + 5000);

	goal.app = other_platform;
	g_assert_null(healer_resolve(state, inventory, &goal, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN);
	assert_contains(error->message, "is an app for platform 12, the device is platform 6");
	g_clear_error(&error);

	goal.app = not_app;
	g_assert_null(healer_resolve(state, inventory, &goal, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	/*
	 * The check every plan passes before it is returned (healer_resolve simulates it): the app not on
	 * the device yet (v9 is another build), and a device with no app at all, are not the goal met.
	 */
	goal.app = app;
	g_assert_false(healer_goal_met(state, &goal, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN);
	g_assert_cmpstr(error->message, ==, "the app " SRC "/u1-3.bin is not installed");
	g_clear_error(&error);
	{
		g_autoptr(HealerDeviceState) bare = state_new(PHOTON, "b=101 s1=207 s2=207");
		HealerGoal heal_goal = {.kind = HEALER_GOAL_HEAL};

		g_assert_false(healer_goal_met(bare, &heal_goal, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN);
		g_assert_cmpstr(error->message, ==,
		                "the device has no user part: nothing to heal (give an app to install)");
	}
}

/* ---- Termination ------------------------------------------------------ */

/*
 * 30 releases in the Device OS 2.x shape: release k's part 1 needs part 2
 * of release k-3, its part 2 needs part 1 of release k and the bootloader
 * of release k-2.  Every release in one store.
 */
static HealerModuleInventory *
many_releases(guint first)
{
	HealerModuleInventory *inventory = healer_module_inventory_new(SRC);

	for (guint k = first; k <= 30; k++) {
		g_autofree char *b = g_strdup_printf("b=%u", 100 + k);
		g_autofree char *s1 = g_strdup_printf("s1=%u:s2>=%u", 1000 + k * 10, 1000 + (k > 3 ? k - 3 : 0) * 10);
		g_autofree char *s2 =
		        g_strdup_printf("s2=%u:s1>=%u,b>=%u", 1000 + k * 10, 1000 + k * 10, 100 + (k > 2 ? k - 2 : 0));
		add(inventory, PHOTON, b, 10000 + k * 11, NULL);
		add(inventory, PHOTON, s1, 200000 + k * 97, NULL);
		add(inventory, PHOTON, s2, 150000 + k * 53, NULL);
	}
	return inventory;
}

static void
test_termination_many_releases(void)
{
	g_autoptr(HealerModuleInventory) inventory = many_releases(1);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=100 s1=1000 s2=1000:s1>=1000,b>=100 u1=1:s2>=1300");
	g_autoptr(HealerPlan) plan = NULL;
	g_autofree char *text = heal(state, inventory, NULL, &plan);
	HealerResolverPolicy tight = {.max_states = 5};
	g_autofree char *why = NULL;

	g_assert_cmpuint(inventory->entries->len, ==, 90);
	g_assert_cmpuint(plan->states_explored, <, HEALER_RESOLVER_DEFAULT_MAX_STATES);
	/* s2 >= 1300 takes part 1 and part 2 in hops of at most 3 releases. */
	g_assert_cmpuint(plan->steps->len, >=, 20);
	g_assert_true(g_str_has_suffix(text, " s2=1300"));

	/* A small bound ends the search with a reason. */
	why = heal_fails(state, inventory, &tight);
	assert_contains(why, "search limit: explored 5 device states");
}

static void
test_termination_deadlock(void)
{
	/* The same store without the first 5 releases: nothing is reachable from 1.0, found without a search. */
	g_autoptr(HealerModuleInventory) inventory = many_releases(6);
	g_autoptr(HealerDeviceState) state = state_new(PHOTON, "b=100 s1=1000 s2=1000:s1>=1000,b>=100 u1=1:s2>=1300");
	g_autofree char *why = heal_fails(state, inventory, NULL);

	assert_contains(why, "cannot meet system-part 2 >= 1300");
	assert_contains(why, "needs system-part 1 >= 1300 (the device has system-part 1 v1000)");
	assert_contains(why, "needs system-part 2 >= 1270 (the device has system-part 2 v1000)");
	assert_contains(why, "none can be installed first");
}

/* ---- The inventory ------------------------------------------------------ */

static GBytes *
write_module(guint16 platform, guint function, guint index, guint16 version, gsize payload, guint8 flags)
{
	HealerModuleSpec spec = {
	        .start_address = 0x08020000 + function * 0x10000 + index * 0x1000,
	        .platform_id = platform,
	        .function = (guint8)function,
	        .index = (guint8)index,
	        .version = version,
	        .flags = flags,
	};
	g_autofree guint8 *raw = g_malloc(payload);
	g_autoptr(GBytes) image = NULL;
	g_autoptr(GError) error = NULL;
	GBytes *module;

	for (gsize i = 0; i < payload; i++)
		raw[i] = (guint8)(i * 7 + version);
	image = g_bytes_new(raw, payload);
	if (function == MODULE_FUNCTION_SYSTEM_PART && index == 2) {
		spec.n_dependencies = 1;
		spec.dependencies[0].function = MODULE_FUNCTION_SYSTEM_PART;
		spec.dependencies[0].index = 1;
		spec.dependencies[0].version = version;
	}
	module = healer_module_write(&spec, image, &error);
	g_assert_no_error(error);
	return module;
}

static void
put(const char *dir, const char *name, GBytes *bytes)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *parent = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	test_write_file(path, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

static const char table_json[] = "{\"format\":\"healer-release-table\",\"format_version\":1,\"releases\":["
                                 "{\"name\":\"1.0.0\",\"modules\":{\"system-part\":1000}},"
                                 "{\"name\":\"2.0.0-rc.1\",\"modules\":{\"system-part\":2000}},"
                                 "{\"name\":\"2.0.0\",\"modules\":{\"system-part\":2002}}]}";

static void
test_inventory_dir(void)
{
	char *dir = test_tmpdir_new();
	g_autoptr(GBytes) s1 = write_module(PHOTON, MODULE_FUNCTION_SYSTEM_PART, 1, 1000, 3000, 0);
	g_autoptr(GBytes) s2 = write_module(PHOTON, MODULE_FUNCTION_SYSTEM_PART, 2, 2000, 2000, 0);
	g_autoptr(GBytes) s2b = write_module(PHOTON, MODULE_FUNCTION_SYSTEM_PART, 2, 2002, 2100, 0);
	g_autoptr(GBytes) app = write_module(PHOTON, MODULE_FUNCTION_USER_PART, 1, 4, 500, 0);
	g_autoptr(GBytes) table_bytes = g_bytes_new_static(table_json, sizeof table_json - 1);
	g_autoptr(GBytes) text = g_bytes_new_static("hello\n", 6);
	g_autoptr(GBytes) combined = NULL;
	g_autoptr(GPtrArray) parts = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = NULL;
	g_autoptr(HealerModuleInventory) inventory = NULL;
	g_autoptr(HealerModuleInventory) listed = NULL;
	g_autofree guint8 *corrupt = NULL;
	gsize len;
	static const char *const expect_paths[] = {"/1.0.0/system-part1.bin", "/2.0.0-rc.1/system-part2.bin",
	                                           "/2.0.0/deeper/system-part2.bin", "/apps/app.bin"};

	g_ptr_array_add(parts, s1);
	g_ptr_array_add(parts, s2);
	combined = healer_module_combine(parts, &error);
	g_assert_no_error(error);
	len = g_bytes_get_size(s2b);
	corrupt = g_memdup2(g_bytes_get_data(s2b, NULL), len);
	corrupt[len / 2] ^= 0x01;

	put(dir, "1.0.0/system-part1.bin", s1);
	put(dir, "2.0.0-rc.1/system-part2.bin", s2);
	put(dir, "2.0.0/deeper/system-part2.bin", s2b);
	put(dir, "apps/app.bin", app);
	put(dir, "releases.json", table_bytes);
	put(dir, "README", text);
	put(dir, "combined.bin", combined);
	{
		g_autoptr(GBytes) c = g_bytes_new(corrupt, len);
		g_autoptr(GBytes) truncated = g_bytes_new(g_bytes_get_data(s1, NULL), 100);
		put(dir, "broken/corrupt.bin", c);
		put(dir, "broken/truncated.bin", truncated);
	}
	/*
	 * One module marked COMBINED with nothing after it: the reader faults it, so the inventory's own
	 * "a COMBINED module" refusal (module-inventory.c) is never reached from a file.
	 */
	{
		g_autoptr(GBytes) flagged =
		        write_module(PHOTON, MODULE_FUNCTION_SYSTEM_PART, 1, 1001, 300, MODULE_FLAG_COMBINED);
		put(dir, "broken/flagged.bin", flagged);
	}

	table = healer_release_table_new_from_data(table_json, sizeof table_json - 1, &error);
	g_assert_no_error(error);
	inventory = healer_module_inventory_load_dir(dir, table, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(inventory->source, ==, dir);

	/* Every broken file is a warning naming it, never an entry; releases.json is passed over silently. */
	for (guint i = 0; i < inventory->warnings->len; i++)
		g_test_message("warning: %s", (char *)g_ptr_array_index(inventory->warnings, i));
	g_assert_cmpuint(inventory->warnings->len, ==, 5);
	{
		static const char *const expect[] = {
		        "/README: ", "/broken/corrupt.bin: not a valid module: ", "/broken/truncated.bin: ",
		        "/combined.bin: a COMBINED file of 2",
		        "/broken/flagged.bin: not a valid module: COMBINED flag set but no module follows"};
		for (guint i = 0; i < G_N_ELEMENTS(expect); i++) {
			gboolean found = FALSE;
			for (guint k = 0; k < inventory->warnings->len && !found; k++) {
				const char *w = g_ptr_array_index(inventory->warnings, k);
				found = g_str_has_prefix(w, dir) && strstr(w, expect[i]) != NULL;
			}
			if (!found)
				g_error("no warning with %s", expect[i]);
		}
	}

	g_assert_cmpuint(inventory->entries->len, ==, G_N_ELEMENTS(expect_paths));
	for (guint i = 0; i < inventory->entries->len; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(inventory->entries, i);
		g_autoptr(GBytes) file = test_read_file(e->path);
		guint8 sha[HEALER_SHA256_SIZE];
		g_autoptr(GPtrArray) parsed = healer_module_parse_file(e->path, &error);

		g_assert_no_error(error);
		g_assert_true(g_str_has_suffix(e->path, expect_paths[i]));
		g_assert_cmpuint(e->size, ==, g_bytes_get_size(file));
		healer_sha256(g_bytes_get_data(file, NULL), g_bytes_get_size(file), sha);
		g_assert_cmpmem(e->sha256, sizeof sha, sha, sizeof sha);
		g_assert_cmpmem(e->module_sha256, HEALER_SHA256_SIZE,
		                ((HealerModule *)g_ptr_array_index(parsed, 0))->sha256_stored, HEALER_SHA256_SIZE);
		g_assert_cmpuint(e->platform_id, ==, PHOTON);
	}
	{
		const HealerInventoryEntry *e0 = g_ptr_array_index(inventory->entries, 0);
		const HealerInventoryEntry *e1 = g_ptr_array_index(inventory->entries, 1);
		const HealerInventoryEntry *e2 = g_ptr_array_index(inventory->entries, 2);
		const HealerInventoryEntry *e3 = g_ptr_array_index(inventory->entries, 3);
		g_autofree char *d1 = healer_inventory_entry_to_string(e1);

		g_assert_cmpstr(e0->release, ==, "1.0.0");
		g_assert_false(e0->prerelease);
		g_assert_cmpstr(e1->release, ==, "2.0.0-rc.1");
		g_assert_true(e1->prerelease);
		g_assert_cmpstr(d1, ==, "system-part 2 v2000 (2.0.0-rc.1, prerelease)");
		g_assert_cmpuint(e1->dependencies->len, ==, 1);
		g_assert_cmpstr(e2->release, ==, "2.0.0");
		g_assert_false(e2->prerelease);
		/* User parts number their own versions: no release. */
		g_assert_cmpuint(e3->function, ==, MODULE_FUNCTION_USER_PART);
		g_assert_null(e3->release);
		g_assert_false(e3->prerelease);
	}

	/* An explicit list, in the order given, with the same warnings for bad files. */
	{
		g_autofree char *a = g_build_filename(dir, "apps/app.bin", NULL);
		g_autofree char *b = g_build_filename(dir, "combined.bin", NULL);
		g_autofree char *c = g_build_filename(dir, "1.0.0/system-part1.bin", NULL);
		g_autofree char *missing = g_build_filename(dir, "nope.bin", NULL);
		const char *files[] = {a, b, c, missing, NULL};
		listed = healer_module_inventory_load_files(files, NULL);
		g_assert_cmpuint(listed->entries->len, ==, 2);
		g_assert_cmpstr(((HealerInventoryEntry *)g_ptr_array_index(listed->entries, 0))->path, ==, a);
		g_assert_cmpstr(((HealerInventoryEntry *)g_ptr_array_index(listed->entries, 1))->path, ==, c);
		g_assert_null(((HealerInventoryEntry *)g_ptr_array_index(listed->entries, 1))->release);
		g_assert_cmpuint(listed->warnings->len, ==, 2);
		g_assert_true(g_str_has_prefix(g_ptr_array_index(listed->warnings, 1), missing));
	}

	/* A directory that is not there is an error, not an empty inventory. */
	{
		g_autofree char *missing_dir = g_build_filename(dir, "no-such-dir", NULL);
		g_assert_null(healer_module_inventory_load_dir(missing_dir, NULL, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		g_clear_error(&error);
	}
	test_tmpdir_free(dir);
}

static void
test_state_from_describe(void)
{
	static const char json[] =
	        "{\"p\":6,\"m\":["
	        "{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":7,\"d\":[]},"
	        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":100,\"d\":[]},"
	        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":100,"
	        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":100,\"_\":\"\"}]},"
	        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":"
	        "\"153790B1DF94A332C290930076EFF123B0CB9D87AC11619491D58B6120185C80\",\"f\":\"u\",\"n\":\"1\",\"v\":4,"
	        "\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":108,\"_\":\"\"}]},"
	        "{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":30,\"f\":\"u\",\"n\":\"1\",\"v\":2,\"d\":[]},"
	        "{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}],\"f\":[],\"v\":{}}";
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDescribe) describe = healer_describe_parse(json, sizeof json - 1, &error);
	g_autoptr(HealerDeviceState) state = NULL;
	const HealerInstalledModule *u;
	guint8 sha[HEALER_SHA256_SIZE];

	g_assert_no_error(error);
	state = healer_device_state_new_from_describe(describe);
	g_assert_cmpuint(state->platform_id, ==, PHOTON);
	/* The factory app and the empty factory slot are not part of the running state. */
	g_assert_cmpuint(state->modules->len, ==, 4);
	u = healer_device_state_find(state, MODULE_FUNCTION_USER_PART, 1);
	g_assert_nonnull(u);
	g_assert_cmpuint(u->version, ==, 4);
	g_assert_true(u->has_sha256);
	g_assert_true(healer_sha256_from_hex("153790B1DF94A332C290930076EFF123B0CB9D87AC11619491D58B6120185C80", sha));
	g_assert_cmpmem(u->sha256, sizeof sha, sha, sizeof sha);
	g_assert_cmpuint(u->dependencies->len, ==, 1);
	g_assert_false(healer_device_state_dependency_met(state, MODULE_FUNCTION_SYSTEM_PART, 2, 108));
	g_assert_true(healer_device_state_dependency_met(state, MODULE_FUNCTION_SYSTEM_PART, 2, 100));
	g_assert_true(healer_device_state_dependency_met(state, MODULE_FUNCTION_NONE, 0, 9));
	g_assert_false(healer_device_state_dependency_met(state, MODULE_FUNCTION_RADIO_STACK, 0, 1));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resolver/mutual/from-0.7", test_mutual_from_07);
	g_test_add_func("/resolver/mutual/deadlock", test_mutual_deadlock);
	g_test_add_func("/resolver/mutual/through-0.7", test_mutual_through_07);
	g_test_add_func("/resolver/stepping-stone/firmware-1.0.0", test_firmware_stepping_stone);
	g_test_add_func("/resolver/stepping-stone/firmware-1.1.0", test_firmware_from_110);
	g_test_add_func("/resolver/stepping-stone/install-app", test_firmware_install_app);
	g_test_add_func("/resolver/no-downgrade/cheaper-refused", test_no_downgrade);
	g_test_add_func("/resolver/no-downgrade/no-plan", test_no_downgrade_no_plan);
	g_test_add_func("/resolver/prerelease/policy", test_prerelease_policy);
	g_test_add_func("/resolver/prerelease/stepping-stone", test_prerelease_stepping_stone);
	g_test_add_func("/resolver/cost/minimum-bytes", test_minimum_bytes);
	g_test_add_func("/resolver/no-plan/missing-module", test_missing_module);
	g_test_add_func("/resolver/no-plan/no-user-part", test_no_user_part);
	g_test_add_func("/resolver/no-plan/refuses-every-order", test_refuses_every_order);
	g_test_add_func("/resolver/no-plan/too-many-modules", test_too_many_modules);
	g_test_add_func("/resolver/nothing-to-do", test_nothing_to_do);
	g_test_add_func("/resolver/device/simulate", test_simulate);
	g_test_add_func("/resolver/device/breaks-dependents", test_breaks_dependents);
	g_test_add_func("/resolver/device/radio-stack-order", test_radio_stack_order);
	g_test_add_func("/resolver/install-app", test_install_app_goal);
	g_test_add_func("/resolver/termination/many-releases", test_termination_many_releases);
	g_test_add_func("/resolver/termination/deadlock", test_termination_deadlock);
	g_test_add_func("/resolver/inventory/directory", test_inventory_dir);
	g_test_add_func("/resolver/state-from-describe", test_state_from_describe);
	return g_test_run();
}
