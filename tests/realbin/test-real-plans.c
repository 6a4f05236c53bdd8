/*
 * The resolver on real Particle Device OS release binaries: the same
 * reference binaries test-real-binaries.c reads (fetched from npm by
 * fetch-reference-binaries.sh), plus three more 2.2.0 modules taken from
 * the same cached particle-cli tarball (the Boron bootloader and
 * SoftDevice, the Photon's system part 2), checked against the SHA-256
 * recorded here.
 *
 * The plans must be ones a device accepts step by step (each module's own
 * dependencies installed before it) and end with the app's dependencies
 * met; where the store lacks a module, the reason must name it.  The
 * Photon 2.2.0 parts (part 1 needs part 2 >= 207, part 2 needs part 1 >=
 * 2202) are the case on which Particle's binary-version-reader resolver
 * never terminates.
 */
#include <string.h>
#include <unistd.h>

#include "healer-error.h"
#include "module-inventory.h"
#include "module-names.h"
#include "release-table.h"
#include "resolver.h"
#include "test-util.h"

#define UPDATES "package/assets/updates/"

static char *tmpdir;  /* the stores the tests plan with, as symbolic links */
static char *updates; /* the reference binaries of particle-cli 3.0.0 */
static char *extra;   /* the extra ones, extracted here */
static HealerReleaseTable *releases;

/* Taken from the cached particle-cli-3.0.0 tarball beside the reference binaries. */
static const struct {
	const char *name;
	const char *sha256;
	gsize size;
} extra_files[] = {
        {"boron-bootloader@2.2.0.bin", "c8baae2f9ce78362d20e674a6083e889ea5a6d70bcb2b0895ae1bba1f150da5e", 47292},
        {"boron-softdevice@2.2.0.bin", "ed7217a5e0e819b5578d7767c63aaade4361f14744883e7a8b29450bc219bb9f", 153048},
        {"photon-system-part2@2.2.0.bin", "5f51499ac3d804faeafc72f68d8ddc726d127f5961013b57af52727d2d025634", 260840},
};

static void
run_or_die(const char *const *argv, const char *what)
{
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("%s failed:\n%s%s", what, out, err);
}

static void
fetch(void)
{
	const char *source = test_program("HEALER_SOURCE_DIR");
	const char *cache = test_program("HEALER_REALBIN_CACHE");
	g_autofree char *script = g_build_filename(source, "tests", "realbin", "fetch-reference-binaries.sh", NULL);
	g_autofree char *tarball = g_build_filename(cache, "particle-cli-3.0.0.tgz", NULL);
	g_autofree char *table = g_build_filename(source, "data", "particle-device-os-releases.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) tar = g_ptr_array_new_with_free_func(g_free);

	{
		const char *argv[] = {"bash", script, cache, NULL};
		run_or_die(argv, "fetching the reference binaries (they come from npm packages; see the script)");
	}
	updates = g_build_filename(cache, "extracted", "particle-cli-3.0.0", UPDATES, NULL);
	extra = g_build_filename(tmpdir, "extra", NULL);
	g_assert_cmpint(g_mkdir_with_parents(extra, 0700), ==, 0);
	g_ptr_array_add(tar, g_strdup("tar"));
	g_ptr_array_add(tar, g_strdup("-xzf"));
	g_ptr_array_add(tar, g_strdup(tarball));
	g_ptr_array_add(tar, g_strdup("-C"));
	g_ptr_array_add(tar, g_strdup(extra));
	g_ptr_array_add(tar, g_strdup("--"));
	for (guint i = 0; i < G_N_ELEMENTS(extra_files); i++)
		g_ptr_array_add(tar, g_strconcat(UPDATES, extra_files[i].name, NULL));
	g_ptr_array_add(tar, NULL);
	run_or_die((const char *const *)tar->pdata, "extracting from the particle-cli tarball");
	for (guint i = 0; i < G_N_ELEMENTS(extra_files); i++) {
		g_autofree char *path = g_build_filename(extra, UPDATES, extra_files[i].name, NULL);
		g_autoptr(GBytes) bytes = test_read_file(path);
		guint8 sha[HEALER_SHA256_SIZE];
		g_autofree char *hex = NULL;
		healer_sha256(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), sha);
		hex = healer_sha256_to_hex(sha);
		g_assert_cmpstr(hex, ==, extra_files[i].sha256);
		g_assert_cmpuint(g_bytes_get_size(bytes), ==, extra_files[i].size);
	}
	releases = healer_release_table_new_from_file(table, &error);
	g_assert_no_error(error);
}

/* A store directory `name` holding links to the named release binaries. */
static char *
store(const char *name, const char *const *files)
{
	char *dir = g_build_filename(tmpdir, name, NULL);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
	for (guint i = 0; files[i] != NULL; i++) {
		g_autofree char *target = g_build_filename(updates, files[i], NULL);
		g_autofree char *link = g_build_filename(dir, files[i], NULL);
		if (!g_file_test(target, G_FILE_TEST_EXISTS)) {
			g_free(target);
			target = g_build_filename(extra, UPDATES, files[i], NULL);
		}
		g_assert_true(g_file_test(target, G_FILE_TEST_IS_REGULAR));
		g_assert_cmpint(symlink(target, link), ==, 0);
	}
	return dir;
}

static HealerModuleInventory *
load(const char *dir)
{
	g_autoptr(GError) error = NULL;
	HealerModuleInventory *inventory = healer_module_inventory_load_dir(dir, releases, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(inventory->warnings->len, ==, 0);
	return inventory;
}

static HealerDeviceState *
state_from(const char *json)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDescribe) describe = healer_describe_parse(json, strlen(json), &error);

	g_assert_no_error(error);
	return healer_device_state_new_from_describe(describe);
}

/* Heals; asserts the plan is accepted step by step and meets the app's dependencies; returns "FILE FILE ...". */
static char *
heal(const HealerDeviceState *state, const HealerModuleInventory *inventory)
{
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerPlan) plan = healer_resolve(state, inventory, &goal, NULL, &error);
	g_autoptr(HealerDeviceState) final_state = NULL;
	g_autoptr(GString) text = g_string_new(NULL);

	g_assert_no_error(error);
	g_assert_true(healer_plan_simulate(state, plan, &final_state, &error));
	g_assert_no_error(error);
	g_assert_true(healer_goal_met(final_state, &goal, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		g_autofree char *base = g_path_get_basename(step->entry->path);
		g_autofree char *what = healer_inventory_entry_to_string(step->entry);
		g_test_message("%u. %s  %s  %" G_GSIZE_FORMAT " bytes", i + 1, what, base, step->bytes);
		g_string_append_printf(text, "%s%s", i ? " " : "", base);
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}

static char *
heal_fails(const HealerDeviceState *state, const HealerModuleInventory *inventory)
{
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerPlan) plan = healer_resolve(state, inventory, &goal, NULL, &error);

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

/* A Boron on 1.5.2 (bootloader 501, SoftDevice 202) whose app targets 2.2.0: needs (s,1) >= 2202. */
static const char boron_152[] =
        "{\"p\":13,\"m\":["
        "{\"s\":49152,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,\"d\":[]},"
        "{\"s\":671744,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1512,"
        "\"d\":[{\"f\":\"b\",\"n\":\"0\",\"v\":501},{\"f\":\"a\",\"n\":\"0\",\"v\":202}]},"
        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":6,"
        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":2202}]},"
        "{\"s\":192512,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"a\",\"n\":\"0\",\"v\":202,\"d\":[]}]}";

/* The same Boron, its describe without the radio stack (older firmware listed none). */
static const char boron_152_no_radio[] =
        "{\"p\":13,\"m\":["
        "{\"s\":49152,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,\"d\":[]},"
        "{\"s\":671744,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1512,"
        "\"d\":[{\"f\":\"b\",\"n\":\"0\",\"v\":501}]},"
        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":6,"
        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":2202}]}]}";

static void
test_boron(void)
{
	static const char *const files[] = {"boron-bootloader@2.2.0.bin", "boron-system-part1@2.2.0.bin",
	                                    "boron-softdevice@2.2.0.bin", "argon-softdevice@2.2.0.bin",
	                                    "argon-bootloader@2.2.0.bin", NULL};
	g_autofree char *dir = store("boron", files);
	g_autoptr(HealerModuleInventory) inventory = load(dir);
	g_autoptr(HealerDeviceState) state = state_from(boron_152);
	g_autoptr(HealerDeviceState) no_radio = state_from(boron_152_no_radio);
	g_autofree char *plan = heal(state, inventory);
	g_autofree char *plan2 = heal(no_radio, inventory);

	/* Part 1 2202 needs bootloader >= 1005 (the device has 501) and SoftDevice >= 202 (it has 202). */
	g_assert_cmpstr(plan, ==, "boron-bootloader@2.2.0.bin boron-system-part1@2.2.0.bin");
	/* With no SoftDevice listed: the Boron's (not the Argon's), after the bootloader, before part 1. */
	g_assert_cmpstr(plan2, ==,
	                "boron-bootloader@2.2.0.bin boron-softdevice@2.2.0.bin boron-system-part1@2.2.0.bin");
}

static void
test_boron_wrong_softdevice(void)
{
	static const char *const files[] = {"boron-bootloader@2.2.0.bin", "boron-system-part1@2.2.0.bin",
	                                    "argon-softdevice@2.2.0.bin", NULL};
	g_autofree char *dir = store("boron-argon-sd", files);
	g_autoptr(HealerModuleInventory) inventory = load(dir);
	g_autoptr(HealerDeviceState) state = state_from(boron_152_no_radio);
	g_autofree char *why = heal_fails(state, inventory);
	g_autofree char *expect = g_strdup_printf("no module in %s provides radio-stack 0 >= 202 for platform 13 (the "
	                                          "device has no radio-stack 0; %s/argon-softdevice@2.2.0.bin is for "
	                                          "platform 12)",
	                                          dir, dir);

	assert_contains(why, "cannot meet system-part 1 >= 2202");
	assert_contains(why, "boron-system-part1@2.2.0.bin needs radio-stack 0 >= 202");
	assert_contains(why, expect);
}

/* The Photon of the reference's spark/status/safe-mode (0.6.0-rc.1), its app rebuilt for 2.2.0. */
static const char photon_060[] =
        "{\"p\":6,\"m\":["
        "{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":7,\"d\":[]},"
        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":100,\"d\":[]},"
        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":100,"
        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":100,\"_\":\"\"}]},"
        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":"
        "\"153790B1DF94A332C290930076EFF123B0CB9D87AC11619491D58B6120185C80\",\"f\":\"u\",\"n\":\"1\",\"v\":4,"
        "\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":2202,\"_\":\"\"}]},"
        "{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}],\"f\":[],\"v\":{}}";

/* A Photon on 0.7.0 (bootloader 101, parts 207) with the same app. */
static const char photon_070[] =
        "{\"p\":6,\"m\":["
        "{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":101,\"d\":[]},"
        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":207,\"d\":[]},"
        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":207,"
        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":207},{\"f\":\"b\",\"n\":\"0\",\"v\":101}]},"
        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":4,"
        "\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":2202}]}]}";

static void
test_photon_reference_set(void)
{
	/* The reference set has the Photon's part 1 and bootloader of 2.2.0, not its part 2. */
	static const char *const files[] = {"photon-system-part1@2.2.0.bin", "photon-bootloader@2.2.0+lto.bin",
	                                    "electron-system-part1@2.2.0.bin", NULL};
	g_autofree char *dir = store("photon-reference", files);
	g_autoptr(HealerModuleInventory) inventory = load(dir);
	g_autoptr(HealerDeviceState) state = state_from(photon_060);
	g_autofree char *why = heal_fails(state, inventory);
	g_autofree char *expect = g_strdup_printf("no module in %s provides system-part 2 >= 2202 for platform 6 "
	                                          "(needed by the installed user-part 1 v4; the device has "
	                                          "system-part 2 v100)",
	                                          dir);
	g_autoptr(HealerDeviceState) wants_part1 = NULL;
	g_autofree char *why1 = NULL;
	g_autofree char *expect1 = NULL;
	g_autofree char *json1 = NULL;

	g_assert_cmpstr(why, ==, expect);

	/* An app needing part 1 2202: it is there, but needs part 2 >= 207, which is not. */
	json1 = g_strdup(photon_060);
	memcpy(strstr(json1, "\"n\":\"2\",\"v\":2202"), "\"n\":\"1\"", 7);
	wants_part1 = state_from(json1);
	why1 = heal_fails(wants_part1, inventory);
	expect1 = g_strdup_printf("system-part 1 v2202 (2.2.0) from %s/photon-system-part1@2.2.0.bin needs system-part "
	                          "2 >= 207 (the device has system-part 2 v100); no module in %s provides system-part "
	                          "2 >= 207 for platform 6 (the device has system-part 2 v100)",
	                          dir, dir);
	assert_contains(why1, "cannot meet system-part 1 >= 2202 (needed by the installed user-part 1 v4; the device "
	                      "has system-part 1 v100): ");
	assert_contains(why1, expect1);
}

static void
test_photon_mutual(void)
{
	static const char *const files[] = {"photon-system-part1@2.2.0.bin", "photon-system-part2@2.2.0.bin",
	                                    "photon-bootloader@2.2.0+lto.bin", NULL};
	g_autofree char *dir = store("photon-2.2.0", files);
	g_autoptr(HealerModuleInventory) inventory = load(dir);
	g_autoptr(HealerDeviceState) from_060 = state_from(photon_060);
	g_autoptr(HealerDeviceState) from_070 = state_from(photon_070);
	g_autofree char *why = heal_fails(from_060, inventory);
	g_autofree char *plan = heal(from_070, inventory);

	/* From 0.6: part 2 needs part 1 >= 2202, part 1 needs part 2 >= 207: a stepping stone is missing. */
	assert_contains(why, "photon-system-part2@2.2.0.bin needs system-part 1 >= 2202 (the device has system-part 1 "
	                     "v100)");
	assert_contains(why, "photon-system-part1@2.2.0.bin needs system-part 2 >= 207 (the device has system-part 2 "
	                     "v100)");
	assert_contains(why, "a stepping-stone release is missing");
	/* From 0.7: part 1 (its need met by 207), the bootloader (>= 1003 for part 2), then part 2. */
	g_assert_cmpstr(plan, ==,
	                "photon-bootloader@2.2.0+lto.bin photon-system-part1@2.2.0.bin photon-system-part2@2.2.0.bin");
}

/* The reference's Argon on 1.5.2 whose app needs (s,1) >= 2011: no Argon part 1 in the set. */
static void
test_argon_reference(void)
{
	static const char argon[] =
	        "{\"p\":12,\"m\":["
	        "{\"s\":49152,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":1005,\"d\":[]},"
	        "{\"s\":671744,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1512,"
	        "\"d\":[{\"f\":\"b\",\"n\":\"0\",\"v\":501},{\"f\":\"a\",\"n\":\"0\",\"v\":202}]},"
	        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":6,"
	        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":2011}]},"
	        "{\"s\":1536000,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"c\",\"n\":\"0\",\"v\":5,\"d\":[]},"
	        "{\"s\":192512,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"a\",\"n\":\"0\",\"v\":202,\"d\":[]}]}";
	static const char *const files[] = {"argon-bootloader@2.2.0.bin", "argon-softdevice@2.2.0.bin",
	                                    "boron-system-part1@2.2.0.bin", NULL};
	g_autofree char *dir = store("argon", files);
	g_autoptr(HealerModuleInventory) inventory = load(dir);
	g_autoptr(HealerDeviceState) state = state_from(argon);
	g_autofree char *why = heal_fails(state, inventory);
	g_autofree char *expect = g_strdup_printf("no module in %s provides system-part 1 >= 2011 for platform 12 "
	                                          "(needed by the installed user-part 1 v6; the device has "
	                                          "system-part 1 v1512; %s/boron-system-part1@2.2.0.bin is for "
	                                          "platform 13)",
	                                          dir, dir);

	g_assert_cmpstr(why, ==, expect);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	fetch();
	g_test_add_func("/real-plans/boron-from-1.5.2", test_boron);
	g_test_add_func("/real-plans/boron-argon-softdevice", test_boron_wrong_softdevice);
	g_test_add_func("/real-plans/photon-reference-set", test_photon_reference_set);
	g_test_add_func("/real-plans/photon-mutual", test_photon_mutual);
	g_test_add_func("/real-plans/argon-reference", test_argon_reference);
	status = g_test_run();
	healer_release_table_free(releases);
	g_free(updates);
	g_free(extra);
	test_tmpdir_free(tmpdir);
	return status;
}
