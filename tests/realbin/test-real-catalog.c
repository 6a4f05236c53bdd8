/*
 * healer-publish catalog and healerctl plan on real Device OS binaries: every Photon and Argon
 * module of reference-binaries.json (fetched from npm by fetch-reference-binaries.sh: Device OS
 * 0.5.2, 1.5.0 and 2.2.0 system parts and bootloaders, the Argon SoftDevice, Tinker and Doctor
 * applications), copied into one directory per platform as an operator would keep them.
 *
 *   - the signed catalog over each directory verifies, and lists every module with the function,
 *     index, version, dependencies, sizes and SHA-256s its header has (the JSON's "expect", which
 *     is Particle's binary-version-reader's reading), and system parts under their release;
 *   - healerctl plan gives the order a device in real dependency safe mode needs (the JSON's
 *     notes): a Photon with part 2 of 2.2.0 over part 1 and bootloader of 1.5.0 (bootloader, then
 *     part 1), a Photon halfway from 0.5.2 to 1.5.0 with an app for 0.6.0 (part 2), an Argon with
 *     part 1 of 2.2.0 over the 1.5.0 bootloader (the bootloader); and for a Photon on 0.5.2 with
 *     that app, no plan, naming the missing stepping-stone release;
 *   - the same plan from the device's object as `healerctl device ID --json` prints it.
 */
#include <string.h>

#include "json-autoptr.h"
#include "module-names.h"
#include "test-util.h"

typedef struct {
	const char *name; /* the platform's directory */
	guint16 platform_id;
	char *dir;            /* the modules */
	char *catalog;        /* DIR/../NAME-catalog.json */
	json_object *entries; /* the reference entries of the platform (borrowed from `list`) */
} Platform;

static char *tmpdir;
static json_object *list; /* reference-binaries.json */
static Platform photon = {"photon", 6, NULL, NULL, NULL};
static Platform argon = {"argon", 12, NULL, NULL, NULL};

static json_object *
field(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

static char *
safe_package_name(const char *package)
{
	g_autofree char *s = g_strdup(package[0] == '@' ? package + 1 : package);

	g_strdelimit(s, "/@", '-');
	return g_steal_pointer(&s);
}

static void
run_ok(const char *const *argv, const char *what, TestRun *run)
{
	test_run(run, argv);
	if (run->exit_status != 0)
		g_error("%s failed (exit %d):\n%s%s", what, run->exit_status, run->out, run->err);
}

static void
fetch(void)
{
	const char *source = test_program("HEALER_SOURCE_DIR");
	const char *cache = test_program("HEALER_REALBIN_CACHE");
	g_autofree char *script = g_build_filename(source, "tests", "realbin", "fetch-reference-binaries.sh", NULL);
	g_autofree char *list_path = g_build_filename(source, "tests", "realbin", "reference-binaries.json", NULL);
	const char *argv[] = {"/bin/bash", script, cache, NULL};
	g_auto(TestRun) run = {0};
	Platform *platforms[] = {&photon, &argon};

	run_ok(argv, "fetching the reference binaries (they come from npm packages; see the script)", &run);
	list = json_object_from_file(list_path);
	g_assert_nonnull(list);
	for (guint p = 0; p < G_N_ELEMENTS(platforms); p++) {
		Platform *platform = platforms[p];
		platform->dir = g_build_filename(tmpdir, platform->name, NULL);
		platform->catalog = g_strdup_printf("%s/%s-catalog.json", tmpdir, platform->name);
		platform->entries = json_object_new_array();
		g_assert_cmpint(g_mkdir_with_parents(platform->dir, 0700), ==, 0);
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *entry = json_object_array_get_idx(list, i);
			g_autofree char *pkg = safe_package_name(json_object_get_string(field(entry, "package")));
			const char *path = json_object_get_string(field(entry, "path"));
			g_autofree char *from = NULL, *base = NULL, *to = NULL;
			g_autoptr(GBytes) bytes = NULL;

			if (json_object_get_int(field(field(entry, "expect"), "platform_id")) != platform->platform_id)
				continue;
			from = g_build_filename(cache, "extracted", pkg, path, NULL);
			base = g_path_get_basename(path);
			to = g_build_filename(platform->dir, base, NULL);
			bytes = test_read_file(from);
			test_write_file(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
			json_object_array_add(platform->entries, json_object_get(entry));
		}
	}
	/* The sets the plans below need: Device OS 0.5.2, 1.5.0 and 2.2.0 for the Photon, 1.5.0 and 2.2.0 for the
	 * Argon. */
	g_assert_cmpuint(json_object_array_length(photon.entries), >=, 10);
	g_assert_cmpuint(json_object_array_length(argon.entries), >=, 6);
}

/* ---- the catalog ---------------------------------------------------------- */

static json_object *
catalog_module(json_object *catalog, const char *file_sha256)
{
	json_object *modules = field(catalog, "modules");

	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		json_object *m = json_object_array_get_idx(modules, i);
		if (g_strcmp0(json_object_get_string(field(m, "sha256")), file_sha256) == 0)
			return m;
	}
	return NULL;
}

static void
check_catalog(Platform *platform)
{
	const char *publish = test_program("HEALER_PUBLISH");
	const char *source = test_program("HEALER_SOURCE_DIR");
	g_autofree char *releases = g_build_filename(source, "data", "particle-device-os-releases.json", NULL);
	g_autofree char *keys = g_build_filename(tmpdir, "keys", NULL);
	g_autofree char *private_key = g_build_filename(tmpdir, "publisher.pem", NULL);
	g_autofree char *public_key = g_build_filename(keys, "publisher.pem", NULL);
	g_autoptr(json_object) catalog = NULL;
	g_auto(TestRun) keygen = {0};
	g_auto(TestRun) publish_run = {0};
	g_auto(TestRun) verify = {0};

	if (!g_file_test(private_key, G_FILE_TEST_EXISTS)) {
		const char *argv[] = {publish, "keygen", "--private", private_key, "--public", public_key, NULL};
		g_assert_cmpint(g_mkdir_with_parents(keys, 0700), ==, 0);
		run_ok(argv, "healer-publish keygen", &keygen);
	}
	{
		const char *argv[] = {publish,    "catalog",         "--modules", platform->dir, "--serial",
		                      "1",        "--key",           private_key, "--releases",  releases,
		                      "--output", platform->catalog, NULL};
		run_ok(argv, "healer-publish catalog over real Device OS binaries", &publish_run);
	}
	{
		const char *argv[] = {publish, "verify", "--catalog", platform->catalog, "--keys", keys, NULL};
		run_ok(argv, "healer-publish verify", &verify);
	}
	catalog = json_object_from_file(platform->catalog);
	g_assert_nonnull(catalog);
	g_assert_cmpuint(json_object_array_length(field(catalog, "modules")), ==,
	                 json_object_array_length(platform->entries));
	for (size_t i = 0; i < json_object_array_length(platform->entries); i++) {
		json_object *entry = json_object_array_get_idx(platform->entries, i);
		json_object *want = field(entry, "expect");
		const char *path = json_object_get_string(field(entry, "path"));
		json_object *got = catalog_module(catalog, json_object_get_string(field(entry, "file_sha256")));
		json_object *got_deps, *want_deps;
		g_autofree char *base = g_path_get_basename(path);
		const char *at;

		if (got == NULL)
			g_error("%s: %s is not in the catalog", platform->catalog, path);
		g_assert_cmpint(json_object_get_int(field(got, "platform_id")), ==, platform->platform_id);
		g_assert_cmpstr(json_object_get_string(field(got, "function")), ==,
		                healer_module_function_to_string((guint)json_object_get_int(field(want, "function"))));
		g_assert_cmpint(json_object_get_int(field(got, "index")), ==,
		                json_object_get_int(field(want, "index")));
		g_assert_cmpint(json_object_get_int(field(got, "version")), ==,
		                json_object_get_int(field(want, "version")));
		g_assert_cmpint(json_object_get_int64(field(got, "size")), ==,
		                json_object_get_int64(field(entry, "size")));
		g_assert_cmpstr(json_object_get_string(field(got, "module_sha256")), ==,
		                json_object_get_string(field(want, "sha256")));
		g_assert_cmpstr(json_object_get_string(field(got, "path")), ==, base);
		got_deps = field(got, "dependencies");
		want_deps = field(want, "dependencies");
		g_assert_cmpuint(json_object_array_length(got_deps), ==, json_object_array_length(want_deps));
		for (size_t d = 0; d < json_object_array_length(want_deps); d++) {
			json_object *gd = json_object_array_get_idx(got_deps, d);
			json_object *wd = json_object_array_get_idx(want_deps, d);
			g_assert_cmpstr(
			        json_object_get_string(field(gd, "function")), ==,
			        healer_module_function_to_string((guint)json_object_get_int(field(wd, "function"))));
			g_assert_cmpint(json_object_get_int(field(gd, "index")), ==,
			                json_object_get_int(field(wd, "index")));
			g_assert_cmpint(json_object_get_int(field(gd, "version")), ==,
			                json_object_get_int(field(wd, "version")));
		}
		/* A system part's file names its release ("photon-system-part1@2.2.0.bin"; the 0.5.2 era "-0.5.2-"). */
		if (g_strcmp0(json_object_get_string(field(got, "function")), "system-part") == 0) {
			const char *release = json_object_get_string(field(got, "release"));
			g_autofree char *name = NULL;
			at = strchr(base, '@');
			name = at != NULL ? g_strndup(at + 1, strlen(at + 1) - strlen(".bin"))
			                  : g_strndup(base + strlen("system-partN-"),
			                              strlen(base) - strlen("system-partN-") - strlen("-photon.bin"));
			g_assert_cmpstr(release, ==, name);
		}
		g_test_message("%s: %s %d v%d in the catalog as its header says", base,
		               json_object_get_string(field(got, "function")), json_object_get_int(field(got, "index")),
		               json_object_get_int(field(got, "version")));
	}
}

static void
test_catalog_photon(void)
{
	check_catalog(&photon);
}

static void
test_catalog_argon(void)
{
	check_catalog(&argon);
}

/* ---- plans for devices in dependency safe mode ---------------------------- */

/*
 * Describes of devices whose flash holds the real modules named (module info as Device OS computes
 * it: vc 30 checked, vv 26 where the dependency check failed).
 */
#define PHOTON_150_PART2_220                                                                                           \
	"{\"p\":6,\"m\":["                                                                                             \
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,\"d\":[]},"                    \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1502,"                            \
	"\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":207}]},"                                                                \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\",\"n\":\"2\",\"v\":2202,"                            \
	"\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":2202},{\"f\":\"b\",\"n\":\"0\",\"v\":1003}]},"                          \
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"u\",\"n\":\"1\",\"v\":3,"                               \
	"\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":6}]}]}"

#define PHOTON_HALFWAY_DOCTOR                                                                                          \
	"{\"p\":6,\"m\":["                                                                                             \
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,\"d\":[]},"                    \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\",\"n\":\"1\",\"v\":1502,"                            \
	"\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":207}]},"                                                                \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":17,"                              \
	"\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":17}]},"                                                                 \
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":4,"                               \
	"\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":108}]}]}"

#define PHOTON_052_DOCTOR                                                                                              \
	"{\"p\":6,\"m\":["                                                                                             \
	"{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,\"d\":[]},"                    \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":17,\"d\":[]},"                    \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":17,"                              \
	"\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":17}]},"                                                                 \
	"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":4,"                               \
	"\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":108}]}]}"

#define ARGON_150_PART1_220                                                                                            \
	"{\"p\":12,\"m\":["                                                                                            \
	"{\"s\":49152,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,"                              \
	"\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":1102}]},"                                                               \
	"{\"s\":192512,\"l\":\"m\",\"vc\":22,\"vv\":22,\"f\":\"a\",\"n\":\"0\",\"v\":202,"                             \
	"\"d\":[{\"f\":\"b\",\"n\":\"0\",\"v\":501},{\"f\":\"s\",\"n\":\"1\",\"v\":1321}]},"                           \
	"{\"s\":786432,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"s\",\"n\":\"1\",\"v\":2202,"                            \
	"\"d\":[{\"f\":\"b\",\"n\":\"0\",\"v\":1005},{\"f\":\"a\",\"n\":\"0\",\"v\":202}]},"                           \
	"{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"u\",\"n\":\"1\",\"v\":5,"                               \
	"\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":326}]}]}"

/* `healerctl plan --describe` on `describe` (written to a file) over the platform's modules. */
static void
plan(Platform *platform, const char *describe, TestRun *run)
{
	g_autofree char *path = g_build_filename(tmpdir, "describe.json", NULL);
	const char *argv[] = {
	        test_program("HEALERCTL"), "plan", "--describe", path, "--modules", platform->dir, "--json", NULL};

	test_write_file(path, (const guint8 *)describe, strlen(describe));
	test_run(run, argv);
}

/* The plan's steps, "FILE function index vversion" each, ";"-separated. */
static char *
steps_text(const TestRun *run)
{
	g_autoptr(json_object) root = NULL;
	json_object *steps;
	g_autoptr(GString) s = g_string_new(NULL);

	if (run->exit_status != 0)
		g_error("healerctl plan failed (exit %d): %s", run->exit_status, run->err);
	root = json_tokener_parse(run->out);
	g_assert_nonnull(root);
	steps = field(root, "steps");
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		json_object *step = json_object_array_get_idx(steps, i);
		g_autofree char *base = g_path_get_basename(json_object_get_string(field(step, "file")));
		g_string_append_printf(
		        s, "%s%s %s %d v%d", i > 0 ? "; " : "", base, json_object_get_string(field(step, "function")),
		        json_object_get_int(field(step, "index")), json_object_get_int(field(step, "version")));
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
test_plan_photon_part2_over_150(void)
{
	g_auto(TestRun) run = {0};
	g_autofree char *steps = NULL;

	/* Part 2 of 2.2.0 needs part 1 >= 2202 and bootloader >= 1003: the bootloader first (it leads at equal cost).
	 */
	plan(&photon, PHOTON_150_PART2_220, &run);
	steps = steps_text(&run);
	g_assert_cmpstr(steps, ==,
	                "photon-bootloader@2.2.0+lto.bin bootloader 0 v1006; "
	                "photon-system-part1@2.2.0.bin system-part 1 v2202");
}

static void
test_plan_photon_halfway(void)
{
	g_auto(TestRun) run = {0};
	g_autofree char *steps = NULL;

	/* Part 2 of 1.5.0 meets both the app (>= 108) and part 1 of 1.5.0 (>= 207); 2.2.0's needs part 1 >= 2202. */
	plan(&photon, PHOTON_HALFWAY_DOCTOR, &run);
	steps = steps_text(&run);
	g_assert_cmpstr(steps, ==, "photon-system-part2@1.5.0.bin system-part 2 v1502");
}

static void
test_plan_photon_052_no_plan(void)
{
	g_auto(TestRun) run = {0};

	plan(&photon, PHOTON_052_DOCTOR, &run);
	g_assert_cmpint(run.exit_status, ==, 3);
	g_assert_nonnull(strstr(run.err, "cannot meet system-part 2 >= 108"));
	g_assert_nonnull(strstr(run.err, "stepping-stone release is missing"));
}

static void
test_plan_argon_bootloader(void)
{
	g_auto(TestRun) run = {0};
	g_autofree char *steps = NULL;

	plan(&argon, ARGON_150_PART1_220, &run);
	steps = steps_text(&run);
	g_assert_cmpstr(steps, ==, "argon-bootloader@2.2.0.bin bootloader 0 v1006");
}

static void
test_plan_from_device_json(void)
{
	g_autoptr(json_object) describe = json_tokener_parse(PHOTON_150_PART2_220);
	g_autoptr(json_object) device = json_object_new_object();
	g_auto(TestRun) run = {0};
	g_autofree char *steps = NULL;

	/* As `healerctl device ID --json` prints a device: GetDevices' object, its modules the describe's "m". */
	json_object_object_add(device, "id", json_object_new_string("0123456789abcdef01234567"));
	json_object_object_add(device, "port", json_object_new_string("usb:1-1.4"));
	json_object_object_add(device, "transport", json_object_new_string("usb"));
	json_object_object_add(device, "platform_id", json_object_new_int(6));
	json_object_object_add(device, "platform", json_object_new_string("photon"));
	json_object_object_add(device, "mode", json_object_new_string("safe"));
	json_object_object_add(device, "modules", json_object_get(field(describe, "m")));
	plan(&photon, json_object_to_json_string(device), &run);
	steps = steps_text(&run);
	g_assert_cmpstr(steps, ==,
	                "photon-bootloader@2.2.0+lto.bin bootloader 0 v1006; "
	                "photon-system-part1@2.2.0.bin system-part 1 v2202");
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	fetch();
	g_test_add_func("/real-catalog/photon", test_catalog_photon);
	g_test_add_func("/real-catalog/argon", test_catalog_argon);
	g_test_add_func("/real-catalog/plan/photon-part2-2.2.0-over-1.5.0", test_plan_photon_part2_over_150);
	g_test_add_func("/real-catalog/plan/photon-halfway-to-1.5.0", test_plan_photon_halfway);
	g_test_add_func("/real-catalog/plan/photon-0.5.2-no-stepping-stone", test_plan_photon_052_no_plan);
	g_test_add_func("/real-catalog/plan/argon-part1-2.2.0-over-1.5.0", test_plan_argon_bootloader);
	g_test_add_func("/real-catalog/plan/from-device-json", test_plan_from_device_json);
	status = g_test_run();
	json_object_put(photon.entries);
	json_object_put(argon.entries);
	json_object_put(list);
	g_free(photon.dir);
	g_free(photon.catalog);
	g_free(argon.dir);
	g_free(argon.catalog);
	test_tmpdir_free(tmpdir);
	return status;
}
