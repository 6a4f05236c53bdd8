/*
 * healerctl inspect on real Particle Device OS release binaries: Gen 2
 * system parts behind an STM32 vector table, Gen 3 modules behind an
 * nRF52840 one, a SoftDevice with DROP_MODULE_INFO, Gen 4 user parts with
 * suffix extensions, a Core monolithic image.  Each must give exactly the
 * fields Particle's own reader (binary-version-reader 3.1.3) reports for it,
 * recorded in reference-binaries.json.
 *
 * The binaries are not in this repository (they are Particle's); they are
 * fetched from the npm packages that ship them, into a cache, and checked
 * against their SHA-256 before use.
 */
#include <json-c/json.h>
#include <string.h>

#include "module-names.h"
#include "test-util.h"

static json_object *
field(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(obj));
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
ensure_fetched(const char *script, const char *cache)
{
	const char *argv[] = {"bash", script, cache, NULL};
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("fetching the reference binaries failed (they come from npm packages; see %s):\n%s%s", script,
		        out, err);
}

static void
compare_int(const char *file, const char *key, json_object *got, json_object *want)
{
	if (json_object_is_type(want, json_type_null)) {
		if (!json_object_is_type(got, json_type_null))
			g_error("%s: %s is %s, Particle's reader says none", file, key,
			        json_object_to_json_string(got));
		return;
	}
	if (json_object_get_int64(got) != json_object_get_int64(want))
		g_error("%s: %s is %" G_GINT64_FORMAT ", Particle's reader says %" G_GINT64_FORMAT, file, key,
		        (gint64)json_object_get_int64(got), (gint64)json_object_get_int64(want));
}

static void
test_real_binaries(void)
{
	const char *source = test_program("HEALER_SOURCE_DIR");
	const char *cache = test_program("HEALER_REALBIN_CACHE");
	g_autofree char *script = g_build_filename(source, "tests", "realbin", "fetch-reference-binaries.sh", NULL);
	g_autofree char *list_path = g_build_filename(source, "tests", "realbin", "reference-binaries.json", NULL);
	json_object *list = json_object_from_file(list_path);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_auto(TestRun) run = {0};
	json_object *result;
	size_t n;

	g_assert_nonnull(list);
	n = json_object_array_length(list);
	g_assert_cmpuint(n, >=, 10);
	ensure_fetched(script, cache);

	g_ptr_array_add(argv, g_strdup(test_program("HEALERCTL")));
	g_ptr_array_add(argv, g_strdup("inspect"));
	g_ptr_array_add(argv, g_strdup("--json"));
	for (size_t i = 0; i < n; i++) {
		json_object *entry = json_object_array_get_idx(list, i);
		g_autofree char *pkg = safe_package_name(json_object_get_string(field(entry, "package")));
		g_ptr_array_add(argv, g_build_filename(cache, "extracted", pkg,
		                                       json_object_get_string(field(entry, "path")), NULL));
	}
	g_ptr_array_add(argv, NULL);
	test_run(&run, (const char *const *)argv->pdata);
	if (run.exit_status != 0)
		g_error("healerctl inspect rejected a real release binary:\n%s", run.err);
	result = json_tokener_parse(run.out);
	g_assert_nonnull(result);
	g_assert_cmpuint(json_object_array_length(result), ==, n);

	for (size_t i = 0; i < n; i++) {
		json_object *entry = json_object_array_get_idx(list, i);
		json_object *want = field(entry, "expect");
		json_object *got = json_object_array_get_idx(result, i);
		const char *file = json_object_get_string(field(entry, "path"));
		static const char *ints[] = {"offset",          "platform_id", "index", "version",
		                             "start_address",   "end_address", "flags", "product_id",
		                             "product_version", "suffix_size"};
		json_object *got_deps = field(got, "dependencies"), *want_deps = field(want, "dependencies");
		const char *function =
		        healer_module_function_to_string((guint)json_object_get_int(field(want, "function")));

		for (gsize k = 0; k < G_N_ELEMENTS(ints); k++)
			compare_int(file, ints[k], field(got, ints[k]), field(want, ints[k]));
		g_assert_cmpstr(json_object_get_string(field(got, "function")), ==, function);
		g_assert_cmpstr(json_object_get_string(field(got, "sha256")), ==,
		                json_object_get_string(field(want, "sha256")));
		g_assert_cmpint(json_object_get_boolean(field(got, "crc_ok")), ==,
		                json_object_get_boolean(field(want, "crc_ok")));
		/* Particle's reader does not check SHA-256; these releases all carry a correct one. */
		g_assert_true(json_object_get_boolean(field(got, "sha_ok")));
		g_assert_cmpuint(json_object_array_length(got_deps), ==, json_object_array_length(want_deps));
		for (size_t d = 0; d < json_object_array_length(want_deps); d++) {
			json_object *gd = json_object_array_get_idx(got_deps, d),
			            *wd = json_object_array_get_idx(want_deps, d);
			g_assert_cmpstr(
			        json_object_get_string(field(gd, "function")), ==,
			        healer_module_function_to_string((guint)json_object_get_int(field(wd, "function"))));
			compare_int(file, "dependency index", field(gd, "index"), field(wd, "index"));
			compare_int(file, "dependency version", field(gd, "version"), field(wd, "version"));
		}
		g_test_message("%s: %s %s %d v%d, prefix at %d: as Particle's reader", file,
		               json_object_get_string(field(got, "platform")), function,
		               json_object_get_int(field(got, "index")), json_object_get_int(field(got, "version")),
		               json_object_get_int(field(got, "offset")));
	}
	json_object_put(result);
	json_object_put(list);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/real-binaries/match-particle-reader", test_real_binaries);
	return g_test_run();
}
