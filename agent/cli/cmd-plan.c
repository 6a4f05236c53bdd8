/*
 * healerctl plan --describe FILE --modules DIR [--releases TABLE] [--app FILE]
 *                [--allow-prerelease] [--max-states N] [--json]
 * healerctl plan ID [--json]
 *
 * Offline: which modules of DIR, in which order, a device in the state
 * the describe shows must be sent so that its application's dependencies
 * are met (or, with --app, so that the app can be installed last).  See
 * docs/resolver.md.  FILE is a describe, or a device's object as `healerctl
 * device ID --json` prints it (its "platform_id" and "modules"): a Particle
 * device's module info, a DFU device's headers (docs/particle.md).  With a device ID instead, healerd answers over
 * D-Bus (the Plan method; healerctl_plan_remote() in cmd-daemon.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli-options.h"
#include "client.h"
#include "describe.h"
#include "healer-error.h"
#include "healerctl.h"
#include "json-autoptr.h"
#include "module-inventory.h"
#include "module-names.h"
#include "release-table.h"
#include "resolver.h"

static HealerReleaseTable *
load_release_table(const char *path, const char *modules_dir, GError **error)
{
	const char *env = g_getenv("HEALER_RELEASE_TABLE");
	g_autofree char *in_dir = g_build_filename(modules_dir, "releases.json", NULL);

	if (path != NULL)
		return healer_release_table_new_from_file(path, error);
	if (env != NULL && *env != '\0')
		return healer_release_table_new_from_file(env, error);
	if (g_file_test(in_dir, G_FILE_TEST_EXISTS))
		return healer_release_table_new_from_file(in_dir, error);
	return NULL;
}

/*
 * A device's object as `healerctl device ID --json` prints it (GetDevices: "platform_id" and
 * "modules", the describe's "m" as its family reported it, whatever the family: link, DFU,
 * Particle) as the describe it came from; NULL for anything else (read as a describe then).
 */
static char *
describe_from_device_json(const char *data, gsize len)
{
	g_autoptr(json_tokener) tokener = json_tokener_new();
	g_autoptr(json_object) root = NULL;
	g_autoptr(json_object) describe = NULL;
	json_object *platform = NULL, *modules = NULL;

	root = json_tokener_parse_ex(tokener, data, (int)MIN(len, (gsize)G_MAXINT));
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    json_object_object_get_ex(root, "m", NULL) || !json_object_object_get_ex(root, "platform_id", &platform) ||
	    !json_object_object_get_ex(root, "modules", &modules))
		return NULL;
	describe = json_object_new_object();
	json_object_object_add(describe, "p", json_object_get(platform));
	json_object_object_add(describe, "m", json_object_get(modules));
	return g_strdup(json_object_to_json_string_ext(describe, JSON_C_TO_STRING_PLAIN));
}

static HealerDescribe *
load_describe(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	g_autofree char *from_device = NULL;
	gsize len = 0;
	g_autoptr(GError) local_error = NULL;
	HealerDescribe *describe;

	if (!g_file_get_contents(path, &data, &len, &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s", local_error->message);
		return NULL;
	}
	from_device = describe_from_device_json(data, len);
	if (from_device != NULL) {
		g_free(data);
		data = g_steal_pointer(&from_device);
		len = strlen(data);
	}
	describe = healer_describe_parse(data, len, &local_error);
	if (describe == NULL)
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: not a describe: %s", path,
		            local_error->message);
	return describe;
}

static void
print_text(const HealerPlan *plan, const HealerGoal *goal)
{
	if (plan->steps->len == 0) {
		if (goal->kind == HEALER_GOAL_INSTALL_APP)
			printf("nothing to do: %s is installed and its dependencies are met\n", goal->app->path);
		else
			printf("nothing to do: the installed user part's dependencies are met\n");
		return;
	}
	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		g_autofree char *what = healer_inventory_entry_to_string(step->entry);
		printf("%u. %s  %s  %" G_GSIZE_FORMAT " bytes\n", i + 1, what, step->entry->path, step->bytes);
	}
	printf("total: %" G_GUINT64_FORMAT " bytes in %u step%s (one module per reset)\n", plan->bytes,
	       plan->steps->len, plan->steps->len == 1 ? "" : "s");
}

int
healerctl_plan(int argc, char **argv)
{
	gboolean json = FALSE, allow_prerelease = FALSE;
	gint max_states = 0;
	g_autofree char *describe_path = NULL, *modules_dir = NULL, *releases_path = NULL, *app_path = NULL;
	g_auto(GStrv) rest = NULL;
	const GOptionEntry entries[] = {
	        {"describe", 0, 0, G_OPTION_ARG_FILENAME, &describe_path,
	         "The device's describe, or its `healerctl device ID --json` (JSON)", "FILE"},
	        {"modules", 0, 0, G_OPTION_ARG_FILENAME, &modules_dir, "Directory of module files to plan with", "DIR"},
	        {"releases", 0, 0, G_OPTION_ARG_FILENAME, &releases_path,
	         "Release table (default: $HEALER_RELEASE_TABLE, then DIR/releases.json)", "TABLE"},
	        {"app", 0, 0, G_OPTION_ARG_FILENAME, &app_path,
	         "Install this application, after the system modules it needs (default: heal the installed one)",
	         "FILE"},
	        {"allow-prerelease", 0, 0, G_OPTION_ARG_NONE, &allow_prerelease,
	         "Use prerelease modules freely (default: only when no plan exists without one)", NULL},
	        {"max-states", 0, 0, G_OPTION_ARG_INT, &max_states, "Search bound (default 100000)", "N"},
	        HEALERCTL_OPTION_JSON(&json, "Print the plan as JSON"),
	        HEALERCTL_BUS_OPTIONS,
	        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, NULL},
	        HEALERCTL_OPTIONS_END,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = NULL;
	g_autoptr(HealerDescribe) describe = NULL;
	g_autoptr(HealerModuleInventory) inventory = NULL;
	g_autoptr(HealerInventoryEntry) app = NULL;
	g_autoptr(HealerDeviceState) state = NULL;
	g_autoptr(HealerPlan) plan = NULL;
	HealerResolverPolicy policy = {0};
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};

	if (healerctl_options_parse(
	            "plan",
	            "ID | --describe FILE --modules DIR - plan the modules a device needs (healerd's plan, or offline)",
	            "With an ID, asks healerd (over D-Bus) what it would install on that device now.\n"
	            "With --describe and --modules, plans offline, with no daemon.\n"
	            "Exit status: 0 a plan (empty when nothing is needed), 1 unreadable or malformed "
	            "input, 2 usage, 3 no plan exists (the reason on stderr) or no such device, "
	            "4 permission denied, 5 healerd not running.",
	            entries, &argc, &argv) != HEALER_EXIT_OK)
		return HEALER_EXIT_USAGE;
	if (describe_path == NULL && rest != NULL && rest[0] != NULL) {
		/* A device ID: healerd plans, from what the device reports now. */
		if (rest[1] != NULL)
			return healerctl_usage_error(
			        "plan", "unexpected argument '%s' (usage: healerctl plan ID [--json])", rest[1]);
		if (modules_dir != NULL || releases_path != NULL || app_path != NULL || allow_prerelease ||
		    max_states != 0)
			return healerctl_usage_error(
			        "plan", "--modules, --releases, --app, --allow-prerelease and --max-states "
			                "plan offline, with --describe FILE instead of a device ID");
		return healerctl_plan_remote(rest[0], json);
	}
	if (rest != NULL && rest[0] != NULL)
		return healerctl_usage_error("plan", "unexpected argument '%s'", rest[0]);
	if (describe_path == NULL || modules_dir == NULL)
		return healerctl_usage_error("plan", "give a device ID, or --describe and --modules "
		                                     "(usage: healerctl plan ID [--json], or healerctl plan --describe "
		                                     "FILE --modules DIR [--app FILE] [--json])");
	if (max_states < 0)
		return healerctl_usage_error("plan", "--max-states must not be negative");
	policy.allow_prerelease = allow_prerelease;
	policy.max_states = (guint)max_states;

	describe = load_describe(describe_path, &error);
	if (describe == NULL) {
		fprintf(stderr, "healerctl plan: %s\n", error->message);
		return HEALER_EXIT_FAILED;
	}
	table = load_release_table(releases_path, modules_dir, &error);
	if (table == NULL && error != NULL) {
		fprintf(stderr, "healerctl plan: release table: %s\n", error->message);
		return HEALER_EXIT_FAILED;
	}
	inventory = healer_module_inventory_load_dir(modules_dir, table, &error);
	if (inventory == NULL) {
		fprintf(stderr, "healerctl plan: %s\n", error->message);
		return HEALER_EXIT_FAILED;
	}
	for (guint i = 0; i < inventory->warnings->len; i++)
		fprintf(stderr, "healerctl plan: warning: skipped %s\n",
		        (const char *)g_ptr_array_index(inventory->warnings, i));
	if (app_path != NULL) {
		app = healer_inventory_entry_new_from_file(app_path, table, &error);
		if (app == NULL) {
			fprintf(stderr, "healerctl plan: %s\n", error->message);
			return HEALER_EXIT_FAILED;
		}
		goal.kind = HEALER_GOAL_INSTALL_APP;
		goal.app = app;
	}

	state = healer_device_state_new_from_describe(describe);
	plan = healer_resolve(state, inventory, &goal, &policy, &error);
	if (plan == NULL) {
		if (g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN))
			g_prefix_error(&error, "no plan: ");
		return healerctl_print_error("plan", error);
	}
	if (plan->uses_prerelease && !allow_prerelease)
		fprintf(stderr,
		        "healerctl plan: note: this plan uses a prerelease module; no plan exists without one\n");
	if (json) {
		g_autoptr(json_object) root = healer_plan_to_json(plan);
		healerctl_print_json(root, TRUE);
	} else
		print_text(plan, &goal);
	fflush(stdout);
	return HEALER_EXIT_OK;
}
