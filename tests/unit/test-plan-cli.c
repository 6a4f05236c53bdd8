/*
 * `healerctl plan` as a technician runs it, on the modules device-firmware
 * builds: a describe in the shape the firmware sends (system/describe.c),
 * the stepping-stone plan in text and JSON, nothing to do, installing an
 * app, no plan (exit 3 and the reason), usage errors (2) and unreadable or
 * malformed input (1, naming the file).
 */
#include <json-c/json.h>
#include <string.h>

#include "module-checksums.h"
#include "module-names.h"
#include "module-reader.h"
#include "test-util.h"

static char *tmpdir;

static const char *
modules_dir(void)
{
	return test_program("HEALER_FIRMWARE_MODULES");
}

static char *
module_path(const char *relative)
{
	return g_build_filename(modules_dir(), relative, NULL);
}

static HealerModule *
read_module(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) modules = healer_module_parse_file(path, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(modules->len, ==, 1);
	return g_ptr_array_steal_index(modules, 0);
}

/* One describe entry, as describe_build() writes it. */
static void
append_entry(GString *out, const char *relative, guint slot_size)
{
	g_autofree char *path = module_path(relative);
	g_autoptr(HealerModule) m = read_module(path);
	gboolean user = m->function == MODULE_FUNCTION_USER_PART;

	g_string_append_printf(out, "%s{\"s\":%u,\"l\":\"m\",\"vc\":30,\"vv\":%u",
	                       out->str[out->len - 1] == '[' ? "" : ",", slot_size, user ? 26 : 30);
	if (user) {
		g_autofree char *hex = healer_sha256_to_hex(m->sha256_stored);
		g_autofree char *upper = g_ascii_strup(hex, -1);
		g_string_append_printf(out, ",\"u\":\"%s\"", upper);
	}
	g_string_append_printf(out, ",\"f\":\"%s\",\"n\":\"%u\",\"v\":%u,\"d\":[",
	                       healer_module_function_to_describe_char(m->function), m->index, m->version);
	for (guint i = 0; i < m->dependencies->len; i++) {
		const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, i);
		g_string_append_printf(out, "%s{\"f\":\"%s\",\"n\":\"%u\",\"v\":%u}", i ? "," : "",
		                       healer_module_function_to_describe_char(d->function), d->index, d->version);
	}
	g_string_append(out, "]}");
}

/* The describe of a device running `release` with `app` (NULL: none), written to a file. */
static char *
write_describe(const char *name, const char *release, const char *app)
{
	g_autoptr(GString) json = g_string_new("{\"p\":3,\"m\":[");
	g_autofree char *b = g_build_filename(release, "bootloader.bin", NULL);
	g_autofree char *s1 = g_build_filename(release, "system-part1.bin", NULL);
	g_autofree char *s2 = g_build_filename(release, "system-part2.bin", NULL);
	char *path = g_build_filename(tmpdir, name, NULL);

	append_entry(json, b, 16384);
	append_entry(json, s1, 262144);
	append_entry(json, s2, 262144);
	if (app != NULL) {
		g_autofree char *a = g_build_filename("apps", app, NULL);
		append_entry(json, a, 131072);
	}
	g_string_append(json, "]}");
	test_write_file(path, (const guint8 *)json->str, json->len);
	return path;
}

static void
plan(TestRun *run, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (gpointer)test_program("HEALERCTL"));
	g_ptr_array_add(argv, (gpointer) "plan");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	test_run(run, (const char *const *)argv->pdata);
	g_test_message("exit %d\nstdout:\n%sstderr:\n%s", run->exit_status, run->out, run->err);
}

static json_object *
get(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(obj));
	return v;
}

static void
assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL)
		g_error("expected \"%s\" in: %s", needle, haystack);
}

static void
test_stepping_stone_json(void)
{
	g_autofree char *describe = write_describe("travel-100.json", "1.0.0", "travel-in-time.bin");
	const char *args[] = {"--describe", describe, "--modules", modules_dir(), "--json", NULL};
	g_auto(TestRun) run = {0};
	json_object *root, *steps;
	gint64 total = 0;
	guint parts = 0;

	plan(&run, args);
	g_assert_cmpint(run.exit_status, ==, 0);
	root = json_tokener_parse(run.out);
	g_assert_nonnull(root);
	steps = get(root, "steps");
	g_assert_cmpuint(json_object_array_length(steps), ==, 5);
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		json_object *step = json_object_array_get_idx(steps, i);
		const char *file = json_object_get_string(get(step, "file"));
		const char *function = json_object_get_string(get(step, "function"));
		guint index = (guint)json_object_get_int(get(step, "index"));
		guint version = (guint)json_object_get_int(get(step, "version"));
		g_autoptr(GBytes) bytes = test_read_file(file);
		g_autoptr(HealerModule) m = read_module(file);
		guint8 sha[HEALER_SHA256_SIZE];
		g_autofree char *hex = NULL;

		/* Each step names its file by the whole file's SHA-256, and the module in it. */
		healer_sha256(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), sha);
		hex = healer_sha256_to_hex(sha);
		g_assert_cmpstr(json_object_get_string(get(step, "sha256")), ==, hex);
		g_assert_cmpint(json_object_get_int64(get(step, "bytes")), ==, (gint64)g_bytes_get_size(bytes));
		g_assert_cmpstr(function, ==, healer_module_function_to_string(m->function));
		g_assert_cmpuint(index, ==, m->index);
		g_assert_cmpuint(version, ==, m->version);
		total += (gint64)g_bytes_get_size(bytes);

		/* The stepping stone: 1.2.0's part 1 and part 2, then 2.x's part 1 and part 2. */
		if (strcmp(function, "system-part") == 0) {
			g_assert_cmpuint(index, ==, parts % 2 + 1);
			if (parts < 2) {
				g_assert_cmpuint(version, ==, 1203);
				g_assert_cmpstr(json_object_get_string(get(step, "release")), ==, "1.2.0");
			} else {
				g_assert_cmpuint(version, >=, 2002);
			}
			parts++;
		} else {
			g_assert_cmpstr(function, ==, "bootloader");
			g_assert_cmpuint(version, >=, 200);
		}
	}
	g_assert_cmpuint(parts, ==, 4);
	g_assert_cmpint(json_object_get_int64(get(root, "bytes")), ==, total);
	json_object_put(root);
}

static void
test_stepping_stone_text(void)
{
	g_autofree char *describe = write_describe("travel-100.json", "1.0.0", "travel-in-time.bin");
	const char *args[] = {"--describe", describe, "--modules", modules_dir(), NULL};
	g_auto(TestRun) run = {0};
	g_auto(GStrv) lines = NULL;

	plan(&run, args);
	g_assert_cmpint(run.exit_status, ==, 0);
	lines = g_strsplit(run.out, "\n", -1);
	g_assert_cmpuint(g_strv_length(lines), ==, 7); /* 5 steps, the total, the final newline */
	g_assert_true(g_str_has_prefix(lines[1], "2. system-part 1 v1203 (1.2.0)  "));
	assert_contains(lines[1], "/1.2.0/system-part1.bin  ");
	g_assert_true(g_str_has_suffix(lines[1], " bytes"));
	g_assert_true(g_str_has_prefix(lines[2], "3. system-part 2 v1203 (1.2.0)  "));
	g_assert_true(g_str_has_prefix(lines[5], "total: "));
	assert_contains(lines[5], " bytes in 5 steps");
}

static void
test_release_table_from_dir(void)
{
	g_autofree char *describe = write_describe("travel-100.json", "1.0.0", "travel-in-time.bin");
	const char *args[] = {"--describe", describe, "--modules", modules_dir(), NULL};
	g_autofree char *saved = g_strdup(g_getenv("HEALER_RELEASE_TABLE"));
	g_auto(TestRun) run = {0};

	/* Without $HEALER_RELEASE_TABLE, DIR/releases.json names the releases. */
	g_unsetenv("HEALER_RELEASE_TABLE");
	plan(&run, args);
	if (saved != NULL)
		g_setenv("HEALER_RELEASE_TABLE", saved, TRUE);
	g_assert_cmpint(run.exit_status, ==, 0);
	assert_contains(run.out, "2. system-part 1 v1203 (1.2.0)  ");
}

static void
test_nothing_to_do(void)
{
	g_autofree char *describe = write_describe("tinker-100.json", "1.0.0", "tinker.bin");
	const char *args[] = {"--describe", describe, "--modules", modules_dir(), NULL};
	const char *json_args[] = {"--describe", describe, "--modules", modules_dir(), "--json", NULL};
	g_auto(TestRun) run = {0}, json_run = {0};
	json_object *root;

	plan(&run, args);
	g_assert_cmpint(run.exit_status, ==, 0);
	g_assert_true(g_str_has_prefix(run.out, "nothing to do: "));

	plan(&json_run, json_args);
	g_assert_cmpint(json_run.exit_status, ==, 0);
	root = json_tokener_parse(json_run.out);
	g_assert_nonnull(root);
	g_assert_cmpuint(json_object_array_length(get(root, "steps")), ==, 0);
	g_assert_cmpint(json_object_get_int64(get(root, "bytes")), ==, 0);
	json_object_put(root);
}

static void
test_install_app(void)
{
	g_autofree char *describe = write_describe("tinker-100.json", "1.0.0", "tinker.bin");
	g_autofree char *travel = module_path("apps/travel-in-time.bin");
	g_autofree char *tinker = module_path("apps/tinker.bin");
	const char *args[] = {"--describe", describe, "--modules", modules_dir(), "--app", travel, "--json", NULL};
	const char *again[] = {"--describe", describe, "--modules", modules_dir(), "--app", tinker, NULL};
	const char *not_app_args[] = {"--describe", describe, "--modules", modules_dir(), "--app", describe, NULL};
	g_auto(TestRun) run = {0}, run2 = {0}, run3 = {0};
	json_object *root, *steps;

	plan(&run, args);
	g_assert_cmpint(run.exit_status, ==, 0);
	root = json_tokener_parse(run.out);
	g_assert_nonnull(root);
	steps = get(root, "steps");
	g_assert_cmpuint(json_object_array_length(steps), ==, 6);
	/* The app last, after the system it needs. */
	g_assert_cmpstr(json_object_get_string(get(json_object_array_get_idx(steps, 5), "file")), ==, travel);
	g_assert_cmpstr(json_object_get_string(get(json_object_array_get_idx(steps, 5), "function")), ==, "user-part");
	json_object_put(root);

	/* The installed app again: nothing to do. */
	plan(&run2, again);
	g_assert_cmpint(run2.exit_status, ==, 0);
	g_assert_true(g_str_has_prefix(run2.out, "nothing to do: "));

	/* An --app that is no module at all is malformed input. */
	plan(&run3, not_app_args);
	g_assert_cmpint(run3.exit_status, ==, 1);
	assert_contains(run3.err, describe);
}

static void
copy_into(const char *dir, const char *relative)
{
	g_autofree char *from = module_path(relative);
	g_autofree char *to = g_build_filename(dir, relative, NULL);
	g_autofree char *parent = g_path_get_dirname(to);
	g_autoptr(GBytes) bytes = test_read_file(from);

	g_assert_cmpint(g_mkdir_with_parents(parent, 0700), ==, 0);
	test_write_file(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

static void
test_no_plan(void)
{
	g_autofree char *describe = write_describe("travel-100.json", "1.0.0", "travel-in-time.bin");
	g_autofree char *empty = g_build_filename(tmpdir, "empty-store", NULL);
	g_autofree char *only200 = g_build_filename(tmpdir, "only-2.0.0", NULL);
	g_autofree char *junk = g_build_filename(only200, "notes.txt", NULL);
	const char *args[] = {"--describe", describe, "--modules", empty, NULL};
	const char *args200[] = {"--describe", describe, "--modules", only200, "--json", NULL};
	g_auto(TestRun) run = {0}, run200 = {0};
	g_autofree char *expect = NULL;

	/* Nothing in the store: the missing module, exactly. */
	g_assert_cmpint(g_mkdir_with_parents(empty, 0700), ==, 0);
	plan(&run, args);
	g_assert_cmpint(run.exit_status, ==, 3);
	g_assert_cmpstr(run.out, ==, "");
	expect = g_strdup_printf("healerctl plan: no plan: no module in %s provides system-part 2 >= 2002 for "
	                         "platform 3 (needed by the installed user-part 1 v1; the device has system-part 2 "
	                         "v1000)\n",
	                         empty);
	g_assert_cmpstr(run.err, ==, expect);

	/* 2.0.0 alone (and a stray file, skipped with a warning): no order works without 1.2.0. */
	copy_into(only200, "2.0.0/bootloader.bin");
	copy_into(only200, "2.0.0/system-part1.bin");
	copy_into(only200, "2.0.0/system-part2.bin");
	test_write_file(junk, (const guint8 *)"x", 1);
	plan(&run200, args200);
	g_assert_cmpint(run200.exit_status, ==, 3);
	g_assert_cmpstr(run200.out, ==, "");
	assert_contains(run200.err, "healerctl plan: warning: skipped ");
	assert_contains(run200.err, "notes.txt: ");
	assert_contains(run200.err, "healerctl plan: no plan: cannot meet system-part 2 >= 2002");
	assert_contains(run200.err, "/2.0.0/system-part1.bin needs system-part 2 >= 1203 (the device has system-part 2 "
	                            "v1000)");
	assert_contains(run200.err, "a stepping-stone release is missing");
}

/*
 * An --app that is a module but no application: the resolver's INVALID_ARGUMENT, which healerctl maps to
 * exit 2 through healer_error_to_exit_code() (the usage errors above return 2 directly; mutation testing:
 * cli-exit-usage).
 */
static void
test_app_not_user_part(void)
{
	g_autofree char *describe = write_describe("tinker-100.json", "1.0.0", "tinker.bin");
	g_autofree char *system = module_path("2.0.0/system-part1.bin");
	const char *args[] = {"--describe", describe, "--modules", modules_dir(), "--app", system, NULL};
	g_auto(TestRun) run = {0};

	plan(&run, args);
	g_assert_cmpint(run.exit_status, ==, 2);
	g_assert_cmpstr(run.out, ==, "");
	assert_contains(run.err, "healerctl plan: ");
	assert_contains(run.err, "is not an application (user part)");
}

static void
test_usage(void)
{
	g_autofree char *describe = write_describe("travel-100.json", "1.0.0", "travel-in-time.bin");
	const char *none[] = {NULL};
	const char *no_modules[] = {"--describe", describe, NULL};
	const char *no_describe[] = {"--modules", modules_dir(), NULL};
	const char *unknown[] = {"--describe", describe, "--modules", modules_dir(), "--frobnicate", NULL};
	const char *extra[] = {"--describe", describe, "--modules", modules_dir(), "surplus", NULL};
	const char *bad_bound[] = {"--describe", describe, "--modules", modules_dir(), "--max-states", "-1", NULL};
	const char *const *cases[] = {none, no_modules, no_describe, unknown, extra, bad_bound};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_auto(TestRun) run = {0};
		plan(&run, cases[i]);
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_cmpstr(run.out, ==, "");
		g_assert_true(g_str_has_prefix(run.err, "healerctl plan: "));
	}
}

static void
test_malformed_input(void)
{
	g_autofree char *bad = g_build_filename(tmpdir, "truncated-describe.json", NULL);
	g_autofree char *wrong = g_build_filename(tmpdir, "not-a-describe.json", NULL);
	g_autofree char *missing = g_build_filename(tmpdir, "no-such-describe.json", NULL);
	g_autofree char *bad_table = g_build_filename(tmpdir, "bad-table.json", NULL);
	g_autofree char *describe = write_describe("travel-100.json", "1.0.0", "travel-in-time.bin");
	g_autofree char *no_dir = g_build_filename(tmpdir, "no-such-dir", NULL);
	const char *files[] = {bad, wrong, missing};

	static const char bad_json[] = "{\"p\":3,\"m\":[";
	static const char wrong_json[] = "{\"p\":3,\"m\":[{\"f\":\"s\",\"n\":1}]}";
	static const char table_json[] = "{\"format\":\"x\"}";

	test_write_file(bad, (const guint8 *)bad_json, strlen(bad_json));
	test_write_file(wrong, (const guint8 *)wrong_json, strlen(wrong_json));
	test_write_file(bad_table, (const guint8 *)table_json, strlen(table_json));
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		const char *args[] = {"--describe", files[i], "--modules", modules_dir(), NULL};
		g_auto(TestRun) run = {0};
		plan(&run, args);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_cmpstr(run.out, ==, "");
		assert_contains(run.err, files[i]);
	}
	{
		const char *args[] = {"--describe", describe,  "--modules", modules_dir(),
		                      "--releases", bad_table, NULL};
		g_auto(TestRun) run = {0};
		plan(&run, args);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.err, "release table");
	}
	{
		const char *args[] = {"--describe", describe, "--modules", no_dir, NULL};
		g_auto(TestRun) run = {0};
		plan(&run, args);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.err, no_dir);
	}
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/plan-cli/stepping-stone/json", test_stepping_stone_json);
	g_test_add_func("/plan-cli/stepping-stone/text", test_stepping_stone_text);
	g_test_add_func("/plan-cli/release-table-from-dir", test_release_table_from_dir);
	g_test_add_func("/plan-cli/nothing-to-do", test_nothing_to_do);
	g_test_add_func("/plan-cli/install-app", test_install_app);
	g_test_add_func("/plan-cli/no-plan", test_no_plan);
	g_test_add_func("/plan-cli/usage", test_usage);
	g_test_add_func("/plan-cli/app-not-user-part", test_app_not_user_part);
	g_test_add_func("/plan-cli/malformed-input", test_malformed_input);
	status = g_test_run();
	test_tmpdir_free(tmpdir);
	return status;
}
