/*
 * mkmodule and `healerctl inspect` as a technician runs them: modules made
 * on the command line read back field for field, every fault is named on
 * stderr, and the exit codes are the documented ones.
 */
#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>

#include "test-util.h"

static char *tmpdir;

static char *
path_in_tmp(const char *name)
{
	return g_build_filename(tmpdir, name, NULL);
}

static char *
make_raw(const char *name, gsize len, guint seed)
{
	char *path = path_in_tmp(name);
	g_autofree guint8 *data = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)(i * 31 + seed);
	test_write_file(path, data, len);
	return path;
}

/* Runs mkmodule with the extra arguments; returns the module's path. */
static char *
mkmodule(const char *name, const char *raw, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_auto(TestRun) run = {0};
	char *out = path_in_tmp(name);

	g_ptr_array_add(argv, (gpointer)test_program("MKMODULE"));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, (gpointer) "-o");
	g_ptr_array_add(argv, out);
	g_ptr_array_add(argv, (gpointer)raw);
	g_ptr_array_add(argv, NULL);
	test_run(&run, (const char *const *)argv->pdata);
	if (run.exit_status != 0)
		g_error("mkmodule failed (%d): %s", run.exit_status, run.err);
	return out;
}

static json_object *
inspect_json(const char *file, int expect_status)
{
	const char *argv[] = {test_program("HEALERCTL"), "inspect", "--json", file, NULL};
	g_auto(TestRun) run = {0};
	json_object *root;

	test_run(&run, argv);
	g_assert_cmpint(run.exit_status, ==, expect_status);
	root = json_tokener_parse(run.out);
	g_assert_nonnull(root);
	g_assert_true(json_object_is_type(root, json_type_array));
	return root;
}

static json_object *
field(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(obj));
	return v;
}

static void
test_roundtrip_every_function(void)
{
	static const char *functions[] = {"resource", "bootloader", "monolithic",  "system-part", "user-part",
	                                  "settings", "ncp",        "radio-stack", "asset"};
	g_autofree char *raw = make_raw("image.raw", 777, 3);

	for (gsize f = 0; f < G_N_ELEMENTS(functions); f++) {
		for (int variant = 0; variant < 3; variant++) {
			g_autofree char *name = g_strdup_printf("%s-%d.bin", functions[f], variant);
			g_autofree char *version = g_strdup_printf("%d", (int)(100 + f * 10 + variant));
			const char *plain[] = {"--platform", "photon", "--function",      functions[f], "--index", "2",
			                       "--version",  version,  "--start-address", "0x08060000", NULL};
			const char *with_deps[] = {"--platform",
			                           "6",
			                           "--function",
			                           functions[f],
			                           "--index",
			                           "2",
			                           "--version",
			                           version,
			                           "--start-address",
			                           "0x08060000",
			                           "--dependency",
			                           "system-part:1:1000",
			                           "--dependency",
			                           "b:0:100",
			                           "--product-id",
			                           "6",
			                           "--product-version",
			                           "9",
			                           NULL};
			const char *with_exts[] = {"--platform",
			                           "argon",
			                           "--function",
			                           functions[f],
			                           "--index",
			                           "2",
			                           "--version",
			                           version,
			                           "--start-address",
			                           "0x30000",
			                           "--dependency",
			                           "system-part:1:1000",
			                           "--dependency",
			                           "bootloader:0:100",
			                           "--dependency",
			                           "ncp:0:7:0x21",
			                           "--name",
			                           "demo",
			                           "--suffix-extension",
			                           "0x0002:00400000000000100040000f",
			                           "--product-id",
			                           "12",
			                           "--product-version",
			                           "3",
			                           NULL};
			const char *const *args = variant == 0 ? plain : variant == 1 ? with_deps : with_exts;
			g_autofree char *module = mkmodule(name, raw, args);
			json_object *root = inspect_json(module, 0);
			json_object *m = json_object_array_get_idx(root, 0);
			json_object *deps = field(m, "dependencies");

			g_assert_cmpuint(json_object_array_length(root), ==, 1);
			g_assert_cmpstr(json_object_get_string(field(m, "file")), ==, module);
			g_assert_cmpstr(json_object_get_string(field(m, "function")), ==, functions[f]);
			g_assert_cmpint(json_object_get_int(field(m, "index")), ==, 2);
			g_assert_cmpint(json_object_get_int(field(m, "version")), ==, atoi(version));
			g_assert_cmpint(json_object_get_int(field(m, "platform_id")), ==, variant == 2 ? 12 : 6);
			g_assert_cmpint(json_object_get_int(field(m, "offset")), ==, 0);
			g_assert_cmpint(json_object_get_int64(field(m, "start_address")), ==,
			                variant == 2 ? 0x30000 : 0x08060000);
			g_assert_cmpint(json_object_get_int64(field(m, "end_address")) -
			                        json_object_get_int64(field(m, "start_address")) + 4,
			                ==, json_object_get_int64(field(m, "length")));
			g_assert_true(json_object_get_boolean(field(m, "crc_ok")));
			g_assert_true(json_object_get_boolean(field(m, "sha_ok")));
			g_assert_cmpint(json_object_get_int(field(m, "flags")), ==, variant == 2 ? 0x10 : 0);
			g_assert_cmpuint(strlen(json_object_get_string(field(m, "sha256"))), ==, 64);
			if (variant == 0) {
				g_assert_cmpuint(json_object_array_length(deps), ==, 0);
				g_assert_true(json_object_is_type(field(m, "product_id"), json_type_null));
				g_assert_true(json_object_is_type(field(m, "product_version"), json_type_null));
				g_assert_cmpint(json_object_get_int(field(m, "suffix_size")), ==, 36);
			} else {
				json_object *d0 = json_object_array_get_idx(deps, 0);
				json_object *d1 = json_object_array_get_idx(deps, 1);
				g_assert_cmpuint(json_object_array_length(deps), ==, variant == 2 ? 3 : 2);
				g_assert_cmpstr(json_object_get_string(field(d0, "function")), ==, "system-part");
				g_assert_cmpint(json_object_get_int(field(d0, "index")), ==, 1);
				g_assert_cmpint(json_object_get_int(field(d0, "version")), ==, 1000);
				g_assert_cmpstr(json_object_get_string(field(d1, "function")), ==, "bootloader");
				g_assert_cmpint(json_object_get_int(field(d1, "version")), ==, 100);
				g_assert_cmpint(json_object_get_int(field(m, "product_id")), ==, variant == 2 ? 12 : 6);
				g_assert_cmpint(json_object_get_int(field(m, "product_version")), ==,
				                variant == 2 ? 3 : 9);
				g_assert_cmpint(json_object_get_int(field(m, "suffix_size")), ==,
				                variant == 2 ? 62 : 40);
			}
			if (variant == 2) {
				json_object *d2 = json_object_array_get_idx(deps, 2);
				g_assert_cmpstr(json_object_get_string(field(d2, "function")), ==, "ncp");
				g_assert_cmpint(json_object_get_int(field(d2, "mcu_target")), ==, 0x21);
				g_assert_cmpstr(json_object_get_string(field(m, "name")), ==, "demo");
			}
			json_object_put(root);
		}
	}
}

static void
test_human_output(void)
{
	g_autofree char *raw = make_raw("human.raw", 600, 9);
	const char *args[] = {"--platform",
	                      "photon",
	                      "--function",
	                      "system-part",
	                      "--index",
	                      "1",
	                      "--version",
	                      "1000",
	                      "--start-address",
	                      "0x08020000",
	                      "--dependency",
	                      "system-part:2:1000",
	                      "--dependency",
	                      "bootloader:0:100",
	                      NULL};
	g_autofree char *module = mkmodule("human.bin", raw, args);
	const char *argv[] = {test_program("HEALERCTL"), "inspect", module, NULL};
	g_auto(TestRun) run = {0};

	test_run(&run, argv);
	g_assert_cmpint(run.exit_status, ==, 0);
	g_assert_cmpstr(run.err, ==, "");
	g_assert_nonnull(strstr(run.out, "Platform:       photon (6)"));
	g_assert_nonnull(strstr(run.out, "Function:       system-part"));
	g_assert_nonnull(strstr(run.out, "Version:        1000 (1.0.0)"));
	g_assert_nonnull(strstr(run.out, "system-part 2 >= 1000 (1.0.0)"));
	g_assert_nonnull(strstr(run.out, "bootloader 0 >= 100 (1.0.0..1.1.0)"));
	g_assert_nonnull(strstr(run.out, "CRC-32 check:   ok"));
	g_assert_nonnull(strstr(run.out, "SHA-256 check:  ok"));
	g_assert_nonnull(strstr(run.out, "Verdict:        valid"));
}

static void
expect_inspect_failure(const char *file, const char *fault)
{
	const char *argv[] = {test_program("HEALERCTL"), "inspect", file, NULL};
	g_auto(TestRun) run = {0};

	test_run(&run, argv);
	g_assert_cmpint(run.exit_status, ==, 1);
	if (strstr(run.err, file) == NULL || strstr(run.err, fault) == NULL)
		g_error("expected '%s' and '%s' on stderr, got: %s", file, fault, run.err);
}

static void
test_faults_named(void)
{
	g_autofree char *raw = make_raw("fault.raw", 400, 1);
	const char *args[] = {
	        "--platform", "photon",          "--function", "user-part",    "--index",           "1", "--version",
	        "4",          "--start-address", "0x080A0000", "--dependency", "system-part:2:108", NULL};
	g_autofree char *module = mkmodule("fault.bin", raw, args);
	g_autoptr(GBytes) good = test_read_file(module);
	gsize len = g_bytes_get_size(good);
	/* Offsets in the prefix, the payload, the SHA field, and the CRC. */
	const gsize flips[] = {9, 13, 15, 100, len - 30, len - 1};
	g_autofree char *bad = path_in_tmp("flipped.bin");

	for (gsize i = 0; i < G_N_ELEMENTS(flips); i++) {
		g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(good, NULL), len);
		copy[flips[i]] ^= 0x01;
		test_write_file(bad, copy, len);
		expect_inspect_failure(bad, "CRC-32 stored");
	}
	{
		g_autofree char *truncated = g_strdup_printf(
		        "truncated at %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", len - 100, len);
		test_write_file(bad, g_bytes_get_data(good, NULL), len - 100);
		expect_inspect_failure(bad, truncated);
	}
	{
		guint8 junk[512];
		memset(junk, 0x5a, sizeof junk);
		test_write_file(bad, junk, sizeof junk);
		expect_inspect_failure(bad, "no module prefix found");
	}
	expect_inspect_failure("/nonexistent/module.bin", "No such file");
}

static void
test_usage_and_mixed(void)
{
	g_autofree char *raw = make_raw("mixed.raw", 300, 4);
	const char *args[] = {"--platform",      "p1",         "--function", "bootloader", "--version", "101",
	                      "--start-address", "0x08000000", NULL};
	g_autofree char *module = mkmodule("mixed.bin", raw, args);
	/* Never /dev/null: a mutant that accepts the bad argument would, as root, rename a regular
	 * file over the device node.  A path of our own also shows nothing was written. */
	g_autofree char *refused_out = g_strconcat(raw, ".refused.bin", NULL);
	const char *no_files[] = {test_program("HEALERCTL"), "inspect", NULL};
	const char *bad_option[] = {test_program("HEALERCTL"), "inspect", "--bogus", module, NULL};
	const char *no_verb[] = {test_program("HEALERCTL"), NULL};
	const char *bad_verb[] = {test_program("HEALERCTL"), "frobnicate", NULL};
	const char *bad_dep[] = {test_program("MKMODULE"),
	                         "--platform",
	                         "6",
	                         "--function",
	                         "user-part",
	                         "--version",
	                         "1",
	                         "--start-address",
	                         "0",
	                         "--dependency",
	                         "system-part:x:1",
	                         "-o",
	                         refused_out,
	                         raw,
	                         NULL};
	const char *bad_function[] = {
	        test_program("MKMODULE"), "--platform", "6",  "--function", "kernel", "--version", "1",
	        "--start-address",        "0",          "-o", refused_out,  raw,      NULL};
	g_auto(TestRun) r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0}, r5 = {0}, r6 = {0};
	json_object *root;

	test_run(&r1, no_files);
	g_assert_cmpint(r1.exit_status, ==, 2);
	g_assert_nonnull(strstr(r1.err, "no file given"));
	test_run(&r2, bad_option);
	g_assert_cmpint(r2.exit_status, ==, 2);
	test_run(&r3, no_verb);
	g_assert_cmpint(r3.exit_status, ==, 2);
	test_run(&r4, bad_verb);
	g_assert_cmpint(r4.exit_status, ==, 2);
	g_assert_nonnull(strstr(r4.err, "unknown verb 'frobnicate'"));
	test_run(&r5, bad_dep);
	g_assert_cmpint(r5.exit_status, ==, 2);
	g_assert_nonnull(strstr(r5.err, "dependency index: 'x' is not a number"));
	test_run(&r6, bad_function);
	g_assert_cmpint(r6.exit_status, ==, 2);
	g_assert_nonnull(strstr(r6.err, "unknown module function 'kernel'"));
	g_assert_false(g_file_test(refused_out, G_FILE_TEST_EXISTS));

	/* A valid and a broken file: exit 1, and the JSON still lists the valid one. */
	{
		const char *argv[] = {test_program("HEALERCTL"), "inspect", "--json", module, raw, NULL};
		g_auto(TestRun) run = {0};
		test_run(&run, argv);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_nonnull(strstr(run.err, raw));
		root = json_tokener_parse(run.out);
		g_assert_cmpuint(json_object_array_length(root), ==, 1);
		g_assert_cmpstr(json_object_get_string(field(json_object_array_get_idx(root, 0), "function")), ==,
		                "bootloader");
		json_object_put(root);
	}
}

static void
test_combined(void)
{
	g_autofree char *raw = make_raw("comb.raw", 500, 7);
	const char *a_args[] = {"--platform", "photon", "--function",      "system-part", "--index", "1",
	                        "--version",  "1100",   "--start-address", "0x08020000",  NULL};
	const char *b_args[] = {
	        "--platform",      "photon",     "--function",   "user-part",          "--index", "1", "--version", "2",
	        "--start-address", "0x080A0000", "--dependency", "system-part:1:1100", NULL};
	g_autofree char *a = mkmodule("a.bin", raw, a_args);
	g_autofree char *b = mkmodule("b.bin", raw, b_args);
	g_autofree char *both = path_in_tmp("both.bin");
	const char *combine[] = {test_program("MKMODULE"), "--combine", "-o", both, a, b, NULL};
	g_auto(TestRun) run = {0};
	json_object *root;

	test_run(&run, combine);
	g_assert_cmpint(run.exit_status, ==, 0);
	root = inspect_json(both, 0);
	g_assert_cmpuint(json_object_array_length(root), ==, 2);
	g_assert_cmpint(json_object_get_int(field(json_object_array_get_idx(root, 0), "flags")), ==, 0x04);
	g_assert_cmpstr(json_object_get_string(field(json_object_array_get_idx(root, 1), "function")), ==, "user-part");
	json_object_put(root);
}

/* mkmodule -o onto something that is not a regular file (a fifo here, /dev/null in real life)
 * is refused and the thing is left as it was: the atomic rename would otherwise replace it. */
static void
test_output_not_regular(void)
{
	g_autofree char *raw = make_raw("special.raw", 200, 9);
	g_autofree char *fifo = path_in_tmp("special.fifo");
	const char *argv[] = {test_program("MKMODULE"), "--platform", "6",  "--function", "user-part", "--version", "1",
	                      "--start-address",        "0",          "-o", fifo,         raw,         NULL};
	g_auto(TestRun) run = {0};
	struct stat st;

	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	test_run(&run, argv);
	g_assert_cmpint(run.exit_status, !=, 0);
	g_assert_nonnull(strstr(run.err, "exists and is not a regular file; not replaced"));
	g_assert_cmpint(lstat(fifo, &st), ==, 0);
	g_assert_true(S_ISFIFO(st.st_mode));
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/inspect/roundtrip-every-function", test_roundtrip_every_function);
	g_test_add_func("/inspect/human-output", test_human_output);
	g_test_add_func("/inspect/faults-named", test_faults_named);
	g_test_add_func("/inspect/usage-and-mixed", test_usage_and_mixed);
	g_test_add_func("/inspect/combined", test_combined);
	g_test_add_func("/inspect/output-not-regular", test_output_not_regular);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
