#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-c/json.h>

#include "healer-error.h"
#include "healer/module-format.h"
#include "job-file.h"
#include "journal.h"
#include "json-autoptr.h"
#include "release-table.h"
#include "store-layout.h"
#include "store.h"
#include "test-util.h"

/* Every record logged, as "MESSAGE_ID|MESSAGE" (structured logging bypasses g_test_expect_message). */
static GPtrArray *logged;

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	const char *id = "", *message = "";

	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "MESSAGE_ID") == 0)
			id = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	/* Criticals (and test failures) go out as usual, and abort. */
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return g_log_writer_default(level, fields, n_fields, user_data);
	g_ptr_array_add(logged, g_strdup_printf("%s|%s", id, message));
	return G_LOG_WRITER_HANDLED;
}

/* How many records logged since the last call contain `needle` (and the id, when given). */
static guint
count_logged(const char *message_id, const char *needle)
{
	guint n = 0;

	for (guint i = 0; i < logged->len; i++) {
		const char *record = g_ptr_array_index(logged, i);
		if ((message_id == NULL || g_str_has_prefix(record, message_id)) && strstr(record, needle) != NULL)
			n++;
	}
	return n;
}

/* The *.bin files under `dir`: every module the firmware build made, or those sorting before `stop` in apps/. */
static guint
count_modules(const char *dir, const char *stop)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;
	guint n = 0;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_DIR))
			n += count_modules(path, stop);
		else if (g_str_has_suffix(name, ".bin") &&
		         (stop == NULL || !g_str_has_suffix(dir, "/apps") || strcmp(name, stop) < 0))
			n++;
	}
	return n;
}

typedef struct {
	char *tmp;
	char *state;   /* tmp/state/deeper: created by the store */
	char *modules; /* $HEALER_FIRMWARE_MODULES */
	guint n;       /* modules in it: 17 or more */
	guint changed;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	(void)data;
	f->tmp = test_tmpdir_new();
	f->state = g_build_filename(f->tmp, "state", "deeper", NULL);
	f->modules = g_strdup(test_program("HEALER_FIRMWARE_MODULES"));
	f->n = count_modules(f->modules, NULL);
	g_assert_cmpuint(f->n, >=, 17);
	g_ptr_array_set_size(logged, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	test_tmpdir_free(f->tmp);
	g_free(f->state);
	g_free(f->modules);
}

static void
on_changed(HealerStore *store, gpointer user_data)
{
	Fixture *f = user_data;

	g_assert_nonnull(store);
	f->changed++;
}

static HealerStore *
open_store(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	HealerStore *store = healer_store_open(f->state, &error);

	g_assert_no_error(error);
	g_assert_nonnull(store);
	healer_store_set_changed_func(store, on_changed, f);
	return store;
}

/* index.json parses, is an array of `n` well-formed entries, and names exactly the files listed. */
static void
assert_index(Fixture *f, HealerStore *store, guint n)
{
	g_autofree char *path = g_build_filename(f->state, "store", "index.json", NULL);
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) root = NULL;
	g_autoptr(GPtrArray) list = healer_store_list(store);

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	root = json_tokener_parse(text);
	g_assert_nonnull(root);
	g_assert_true(json_object_is_type(root, json_type_array));
	g_assert_cmpuint(json_object_array_length(root), ==, n);
	g_assert_cmpuint(list->len, ==, n);
	g_assert_cmpuint(healer_store_get_n_entries(store), ==, n);
	for (guint i = 0; i < n; i++) {
		json_object *entry = json_object_array_get_idx(root, i);
		const HealerStoreEntry *e = g_ptr_array_index(list, i);
		json_object *v = NULL;
		const char *keys[] = {"sha256", "size",    "platform_id", "function",
		                      "index",  "version", "release",     "source"};

		for (gsize k = 0; k < G_N_ELEMENTS(keys); k++)
			g_assert_true(json_object_object_get_ex(entry, keys[k], NULL));
		g_assert_true(json_object_object_get_ex(entry, "sha256", &v));
		g_assert_cmpstr(json_object_get_string(v), ==, e->sha256);
		g_assert_true(g_file_test(e->path, G_FILE_TEST_IS_REGULAR));
		g_assert_true(healer_store_lookup(store, e->sha256) == e);
	}
}

static const HealerStoreEntry *
find_entry(HealerStore *store, guint function, guint index, guint version)
{
	g_autoptr(GPtrArray) list = healer_store_list(store);

	for (guint i = 0; i < list->len; i++) {
		const HealerStoreEntry *e = g_ptr_array_index(list, i);
		if (e->function == function && e->index == index && e->version == version)
			return e;
	}
	return NULL;
}

static void
add_release_table(Fixture *f, HealerStore *store)
{
	g_autofree char *path = g_build_filename(f->modules, "releases.json", NULL);
	g_autoptr(GError) error = NULL;
	HealerReleaseTable *table = healer_release_table_new_from_file(path, &error);

	g_assert_no_error(error);
	healer_store_add_release_table(store, table, &error);
	g_assert_no_error(error);
}

static guint
import(HealerStore *store, const char *dir, GPtrArray *warnings)
{
	g_autoptr(GError) error = NULL;
	guint n = healer_store_import_directory(store, dir, warnings, &error);

	g_assert_no_error(error);
	return n;
}

static void
test_import_firmware(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *source = g_build_filename(f->modules, "2.0.0", "system-part2.bin", NULL);
	g_autoptr(GBytes) original = test_read_file(source);
	g_autoptr(GBytes) verified = NULL;
	g_autoptr(GError) error = NULL;
	const HealerStoreEntry *e;
	struct stat st;

	(void)data;
	store = open_store(f);
	/* Created, 0750, parents too. */
	g_assert_cmpint(g_stat(f->state, &st), ==, 0);
	g_assert_cmpuint(st.st_mode & 0777, ==, 0750);
	assert_index(f, store, 0);

	add_release_table(f, store);
	/* Every release's 3 modules and the applications (17 or more); releases.json is skipped silently. */
	g_assert_cmpuint(import(store, f->modules, warnings), ==, f->n);
	g_assert_cmpuint(warnings->len, ==, 0);
	g_assert_cmpuint(f->changed, ==, 1);
	assert_index(f, store, f->n);

	e = find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 2, 2002);
	g_assert_nonnull(e);
	g_assert_cmpstr(e->source, ==, source);
	g_assert_cmpstr(e->release, ==, "2.0.0");
	g_assert_cmpuint(e->size, ==, g_bytes_get_size(original));
	g_assert_true(g_str_has_suffix(e->path, ".bin"));
	e = find_entry(store, MODULE_FUNCTION_BOOTLOADER, 0, 100);
	g_assert_nonnull(e);
	g_assert_cmpstr(e->release, ==, "1.0.0..1.1.0");

	/* The bytes read back are the source file's, checked. */
	e = find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 2, 2002);
	verified = healer_store_read_verified(store, e, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(verified, original));
	g_assert_true(healer_store_verify_entry(store, e, &error));
	g_assert_no_error(error);
	g_assert_true(healer_store_lookup(store, "0000000000000000000000000000000000000000000000000000000000000000") ==
	              NULL);
	{
		g_autofree char *upper = g_ascii_strup(e->sha256, -1);
		g_assert_true(healer_store_lookup(store, upper) == e);
	}

	/* Everything is there already. */
	g_assert_cmpuint(import(store, f->modules, warnings), ==, 0);
	g_assert_cmpuint(warnings->len, ==, 0);
	g_assert_cmpuint(f->changed, ==, 1);
	assert_index(f, store, f->n);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, ""), ==, 0);
}

static void
copy_file(const char *from, const char *to)
{
	g_autoptr(GBytes) bytes = test_read_file(from);

	test_write_file(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

static void
flip_byte(const char *path, gsize offset)
{
	g_autoptr(GBytes) bytes = test_read_file(path);
	g_autofree guint8 *data = g_memdup2(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));

	g_assert_cmpuint(offset, <, g_bytes_get_size(bytes));
	data[offset] ^= 0x5a;
	test_write_file(path, data, g_bytes_get_size(bytes));
}

static gboolean
has_warning(GPtrArray *warnings, const char *file, const char *reason)
{
	g_autofree char *prefix = g_strdup_printf("%s: ", file);

	for (guint i = 0; i < warnings->len; i++) {
		const char *w = g_ptr_array_index(warnings, i);
		if (g_str_has_prefix(w, prefix) && strstr(w, reason) != NULL)
			return TRUE;
	}
	return FALSE;
}

/* Corrupt, foreign, COMBINED and empty files are reported and never indexed. */
static void
test_rejects(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *dir = g_build_filename(f->tmp, "incoming", NULL);
	g_autofree char *sub = g_build_filename(dir, "sub", NULL);
	g_autofree char *part1 = g_build_filename(f->modules, "1.0.0", "system-part1.bin", NULL);
	g_autofree char *part2 = g_build_filename(f->modules, "1.0.0", "system-part2.bin", NULL);
	g_autofree char *good = g_build_filename(sub, "good.bin", NULL);
	g_autofree char *corrupt = g_build_filename(dir, "corrupt.bin", NULL);
	g_autofree char *foreign = g_build_filename(dir, "notes.txt", NULL);
	g_autofree char *empty = g_build_filename(dir, "empty.bin", NULL);
	g_autofree char *combined = g_build_filename(dir, "combined.bin", NULL);
	g_autofree char *hidden = g_build_filename(dir, ".hidden.bin", NULL);
	g_autofree char *json = g_build_filename(dir, "releases.json", NULL);
	g_autofree char *sha = NULL;
	g_autofree char *before = NULL;
	g_autoptr(GError) error = NULL;
	const char *combine[] = {test_program("MKMODULE"), "--combine", "-o", combined, part1, part2, NULL};
	g_auto(TestRun) run = {0};

	(void)data;
	g_assert_cmpint(g_mkdir_with_parents(sub, 0755), ==, 0);
	copy_file(part1, good);
	copy_file(part2, corrupt);
	flip_byte(corrupt, 0x300);
	test_write_file(foreign, (const guint8 *)"not firmware\n", 13);
	test_write_file(empty, (const guint8 *)"", 0);
	test_write_file(hidden, (const guint8 *)"x", 1);
	test_write_file(json, (const guint8 *)"{}", 2);
	test_run(&run, combine);
	g_assert_cmpint(run.exit_status, ==, 0);

	store = open_store(f);
	g_assert_cmpuint(import(store, dir, warnings), ==, 1);
	g_assert_cmpuint(warnings->len, ==, 4);
	g_assert_true(has_warning(warnings, corrupt, "invalid module"));
	g_assert_true(has_warning(warnings, foreign, "not a module"));
	g_assert_true(has_warning(warnings, empty, "not a module"));
	g_assert_true(has_warning(warnings, combined, "COMBINED"));
	assert_index(f, store, 1);
	g_assert_cmpstr(((const HealerStoreEntry *)find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 1, 1000))->source, ==,
	                good);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, corrupt), ==, 1);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, ""), ==, 4);

	/* A re-scan reports them again but logs nothing new: the files did not change. */
	before = test_tree_snapshot(f->state);
	g_ptr_array_set_size(warnings, 0);
	g_assert_cmpuint(import(store, dir, warnings), ==, 0);
	g_assert_cmpuint(warnings->len, ==, 4);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, ""), ==, 4);
	test_assert_tree_unchanged(before, f->state, "a re-scan of refused files");
	g_clear_pointer(&before, g_free);

	/* Fixed in place, the file is taken. */
	copy_file(part2, corrupt);
	g_ptr_array_set_size(warnings, 0);
	g_assert_cmpuint(import(store, dir, warnings), ==, 1);
	g_assert_cmpuint(warnings->len, ==, 3);
	assert_index(f, store, 2);

	/* One file: an error naming it, or the SHA-256 of what was stored. */
	before = test_tree_snapshot(f->state);
	g_assert_false(healer_store_import_file(store, foreign, &sha, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_true(g_str_has_prefix(error->message, foreign));
	g_assert_null(sha);
	g_clear_error(&error);
	test_assert_tree_unchanged(before, f->state, foreign);
	g_assert_true(healer_store_import_file(store, good, &sha, &error));
	g_assert_no_error(error);
	g_assert_nonnull(healer_store_lookup(store, sha));
	assert_index(f, store, 2);

	/* A directory that is not there is an error. */
	g_clear_pointer(&before, g_free);
	before = test_tree_snapshot(f->state);
	g_assert_cmpuint(healer_store_import_directory(store, "/nonexistent/healer", NULL, &error), ==, 0);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	test_assert_tree_unchanged(before, f->state, "a missing directory");
}

/* The store refuses by name and code, and leaves its state directory as it was (test_tree_snapshot()). */
static void
expect_file_refused(Fixture *f, HealerStore *store, const char *path, int code, const char *reason)
{
	g_autofree char *before = test_tree_snapshot(f->state);
	g_autoptr(GError) error = NULL;
	g_autofree char *sha = NULL;
	guint entries = healer_store_get_n_entries(store);

	g_assert_false(healer_store_import_file(store, path, &sha, &error));
	g_assert_error(error, HEALER_ERROR, code);
	if (!g_str_has_prefix(error->message, path) || strstr(error->message, reason) == NULL)
		g_error("expected '%s: ...%s...', got '%s'", path, reason, error->message);
	g_assert_null(sha);
	g_assert_cmpuint(healer_store_get_n_entries(store), ==, entries);
	test_assert_tree_unchanged(before, f->state, path);
}

static gboolean
admit_none(const char *sha_hex, guint64 size, const char *path, char **reason, gpointer user_data)
{
	(void)sha_hex;
	(void)size;
	(void)path;
	(void)user_data;
	*reason = g_strdup("not listed (test)");
	return FALSE;
}

/*
 * Every way the store refuses an import (one file, bytes, a batch, a whole bundle's modules, a
 * directory), fresh and remembered, leaves the state directory byte for byte as it was: no module
 * file, no index change, no temporary file.  Includes the all-or-nothing import of a bundle whose
 * last module fails to be written: what it wrote first is taken back out.
 */
static void
test_refusals_leave_store(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_build_filename(f->tmp, "refused", NULL);
	g_autofree char *part1 = g_build_filename(f->modules, "1.0.0", "system-part1.bin", NULL);
	g_autofree char *part2 = g_build_filename(f->modules, "1.0.0", "system-part2.bin", NULL);
	g_autofree char *app = g_build_filename(f->modules, "apps", "tinker.bin", NULL);
	g_autofree char *corrupt = g_build_filename(dir, "corrupt.bin", NULL);
	g_autofree char *foreign = g_build_filename(dir, "notes.txt", NULL);
	g_autofree char *empty = g_build_filename(dir, "empty.bin", NULL);
	g_autofree char *combined = g_build_filename(dir, "combined.bin", NULL);
	g_autofree char *huge = g_build_filename(dir, "huge.bin", NULL);
	g_autofree char *fifo = g_build_filename(f->tmp, "fifo.bin", NULL);
	g_autofree char *missing = g_build_filename(f->tmp, "missing.bin", NULL);
	g_autofree char *before = NULL;
	const char *combine[] = {test_program("MKMODULE"), "--combine", "-o", combined, part1, part2, NULL};
	g_auto(TestRun) run = {0};
	g_autofree char *sha = NULL;

	(void)data;
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	copy_file(part2, corrupt);
	flip_byte(corrupt, 0x300);
	test_write_file(foreign, (const guint8 *)"not firmware\n", 13);
	test_write_file(empty, (const guint8 *)"", 0);
	test_run(&run, combine);
	g_assert_cmpint(run.exit_status, ==, 0);
	{
		/* Sparse: larger than any module without taking the disk. */
		FILE *fp = fopen(huge, "w");
		g_assert_nonnull(fp);
		g_assert_cmpint(ftruncate(fileno(fp), (off_t)HEALER_STORE_MAX_MODULE_SIZE + 1), ==, 0);
		fclose(fp);
	}
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);

	store = open_store(f);
	/* Something in the store already, so "unchanged" is not just "empty". */
	g_assert_true(healer_store_import_file(store, part1, &sha, &error));
	g_assert_no_error(error);
	assert_index(f, store, 1);

	/* One file at a time. */
	expect_file_refused(f, store, corrupt, HEALER_ERROR_INVALID_DATA, "invalid module");
	expect_file_refused(f, store, foreign, HEALER_ERROR_INVALID_DATA, "not a module");
	expect_file_refused(f, store, empty, HEALER_ERROR_INVALID_DATA, "not a module");
	expect_file_refused(f, store, combined, HEALER_ERROR_INVALID_DATA, "COMBINED");
	expect_file_refused(f, store, huge, HEALER_ERROR_INVALID_DATA, "larger than any module");
	expect_file_refused(f, store, fifo, HEALER_ERROR_INVALID_DATA, "not a regular file");
	/* Remembered verdicts: the same refusal, still nothing written. */
	expect_file_refused(f, store, corrupt, HEALER_ERROR_INVALID_DATA, "invalid module");

	before = test_tree_snapshot(f->state);

	/* A directory of nothing but refusals (and one module already held). */
	{
		g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
		g_autofree char *held = g_build_filename(dir, "held.bin", NULL);
		copy_file(part1, held);
		healer_store_forget_rejections(store);
		g_assert_cmpuint(healer_store_import_directory(store, dir, warnings, &error), ==, 0);
		g_assert_no_error(error);
		g_assert_cmpuint(warnings->len, ==, 5);
		test_assert_tree_unchanged(before, f->state, "a directory of refused files");
		g_assert_cmpint(g_unlink(held), ==, 0);
	}
	/* A directory that is not there. */
	g_assert_cmpuint(healer_store_import_directory(store, missing, NULL, &error), ==, 0);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_clear_error(&error);
	test_assert_tree_unchanged(before, f->state, "a missing directory");

	/* Bytes, alone and in a batch, as a walked directory's are. */
	{
		g_autoptr(GBytes) bad = test_read_file(corrupt);
		g_autoptr(GPtrArray) names = g_ptr_array_new();
		g_autoptr(GPtrArray) contents = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
		g_autoptr(GPtrArray) rejected = g_ptr_array_new_with_free_func(g_free);

		g_assert_false(healer_store_import_bytes(store, "bytes.bin", bad, NULL, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_true(g_str_has_prefix(error->message, "bytes.bin: invalid module"));
		g_clear_error(&error);
		test_assert_tree_unchanged(before, f->state, "refused bytes");

		g_ptr_array_add(names, "a.bin");
		g_ptr_array_add(contents, g_bytes_ref(bad));
		g_ptr_array_add(names, "b.txt");
		g_ptr_array_add(contents, g_bytes_new_static("text", 4));
		g_assert_cmpuint(healer_store_import_many(store, names, contents, rejected, &error), ==, 0);
		g_assert_no_error(error);
		g_assert_cmpuint(rejected->len, ==, 2);
		test_assert_tree_unchanged(before, f->state, "a batch of refused bytes");
	}

	/* A bundle's modules, all or nothing: one bad file (first or last) refuses the good ones too. */
	{
		g_autoptr(GPtrArray) paths = g_ptr_array_new();
		guint added = 99;

		g_ptr_array_add(paths, part2);
		g_ptr_array_add(paths, app);
		g_ptr_array_add(paths, corrupt);
		g_assert_false(healer_store_import_all(store, paths, "bundle", &added, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_true(g_str_has_prefix(error->message, corrupt));
		g_assert_cmpuint(added, ==, 0);
		g_clear_error(&error);
		test_assert_tree_unchanged(before, f->state, "a bundle with a corrupt module");

		g_ptr_array_index(paths, 2) = missing;
		g_assert_false(healer_store_import_all(store, paths, "bundle", &added, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		g_assert_true(g_str_has_prefix(error->message, missing));
		g_clear_error(&error);
		test_assert_tree_unchanged(before, f->state, "a bundle with a missing module");

		/* Not admitted (no trusted catalog lists them): the store's admission check. */
		g_ptr_array_set_size(paths, 2);
		healer_store_set_admit_func(store, admit_none, NULL);
		g_assert_false(healer_store_import_all(store, paths, "bundle", &added, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_nonnull(strstr(error->message, "not listed (test)"));
		g_clear_error(&error);
		expect_file_refused(f, store, app, HEALER_ERROR_INVALID_DATA, "not listed (test)");
		test_assert_tree_unchanged(before, f->state, "modules not admitted");
		healer_store_set_admit_func(store, NULL, NULL);

		/*
		 * The last module cannot be written (a directory where its file goes): the first, written
		 * already, is taken back out.  The blocker is part of the "before".
		 */
		{
			g_autoptr(GBytes) bytes = test_read_file(app);
			g_autofree char *app_sha = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bytes);
			g_autofree char *blocker = g_strdup_printf("%s/store/%s.bin", f->state, app_sha);
			g_autofree char *blocked = NULL;

			g_assert_cmpint(g_mkdir(blocker, 0755), ==, 0);
			blocked = test_tree_snapshot(f->state);
			g_assert_false(healer_store_import_all(store, paths, "bundle", &added, &error));
			g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
			g_assert_nonnull(strstr(error->message, "nothing was imported"));
			g_clear_error(&error);
			test_assert_tree_unchanged(blocked, f->state, "a bundle whose last module cannot be written");
			g_assert_cmpint(g_rmdir(blocker), ==, 0);
		}
	}
	assert_index(f, store, 1);
	g_assert_cmpuint(f->changed, ==, 1);
	g_unlink(fifo);
}

static void
test_reopen(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autoptr(HealerStore) again = NULL;
	g_autoptr(GPtrArray) before = NULL;
	g_autoptr(GPtrArray) after = NULL;

	(void)data;
	add_release_table(f, store);
	g_assert_cmpuint(import(store, f->modules, NULL), ==, f->n);
	before = healer_store_list(store);
	again = open_store(f);
	after = healer_store_list(again);
	g_assert_cmpuint(after->len, ==, f->n);
	for (guint i = 0; i < after->len; i++) {
		const HealerStoreEntry *a = g_ptr_array_index(before, i), *b = g_ptr_array_index(after, i);
		g_assert_cmpstr(a->sha256, ==, b->sha256);
		g_assert_cmpstr(a->path, ==, b->path);
		g_assert_cmpstr(a->release, ==, b->release);
		g_assert_cmpstr(a->source, ==, b->source);
		g_assert_cmpuint(a->size, ==, b->size);
		g_assert_cmpuint(a->platform_id, ==, b->platform_id);
		g_assert_cmpuint(a->function, ==, b->function);
		g_assert_cmpuint(a->index, ==, b->index);
		g_assert_cmpuint(a->version, ==, b->version);
	}
	g_assert_cmpuint(count_logged(NULL, "store"), ==, 0);
	/* Nothing to add: the store is reused, not rebuilt. */
	g_assert_cmpuint(import(again, f->modules, NULL), ==, 0);
}

/*
 * One file at a time (healerctl import of a file, FlashAppFd): each import that adds a module writes
 * the index before it returns, so the module is still there when the store is opened again (mutation
 * testing found no test for it: tests/mutants/mutants.list, store-index-not-written).
 */
static void
test_single_imports_persist(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autoptr(HealerStore) again = NULL;
	g_autofree char *file = g_build_filename(f->modules, "2.0.0", "system-part2.bin", NULL);
	g_autofree char *other = g_build_filename(f->modules, "1.1.0", "system-part1.bin", NULL);
	g_autoptr(GBytes) other_bytes = test_read_file(other);
	g_autofree char *file_sha = NULL, *other_sha = NULL, *again_sha = NULL;
	g_autoptr(GError) error = NULL;

	(void)data;
	g_assert_true(healer_store_import_file(store, file, &file_sha, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(f->changed, ==, 1);
	assert_index(f, store, 1);

	g_assert_true(healer_store_import_bytes(store, "caller's descriptor", other_bytes, &other_sha, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(other_sha, !=, file_sha);
	g_assert_cmpuint(f->changed, ==, 2);
	assert_index(f, store, 2);

	/* Present already: the same SHA-256, nothing changed. */
	g_assert_true(healer_store_import_file(store, file, &again_sha, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(again_sha, ==, file_sha);
	g_assert_cmpuint(f->changed, ==, 2);
	assert_index(f, store, 2);

	again = open_store(f);
	assert_index(f, again, 2);
	g_assert_nonnull(healer_store_lookup(again, file_sha));
	g_assert_nonnull(healer_store_lookup(again, other_sha));
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, ""), ==, 0);
}

/* A store file altered or removed on disk is dropped at open, with a warning, and can be imported again. */
static void
test_tampered_at_open(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autoptr(HealerStore) again = NULL;
	g_autofree char *altered = NULL, *removed = NULL, *corrupt = NULL;
	g_autofree char *altered_sha = NULL, *removed_sha = NULL;
	const HealerStoreEntry *e;

	(void)data;
	g_assert_cmpuint(import(store, f->modules, NULL), ==, f->n);
	e = find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 1, 1203);
	altered = g_strdup(e->path);
	altered_sha = g_strdup(e->sha256);
	e = find_entry(store, MODULE_FUNCTION_BOOTLOADER, 0, 120);
	removed = g_strdup(e->path);
	removed_sha = g_strdup(e->sha256);
	g_clear_pointer(&store, healer_store_free);

	flip_byte(altered, 100);
	g_assert_cmpint(g_unlink(removed), ==, 0);
	again = open_store(f);
	assert_index(f, again, f->n - 2);
	g_assert_null(healer_store_lookup(again, altered_sha));
	g_assert_null(healer_store_lookup(again, removed_sha));
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, altered), ==, 1);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, removed), ==, 1);
	corrupt = g_strconcat(altered, ".corrupt", NULL);
	g_assert_true(g_file_test(corrupt, G_FILE_TEST_IS_REGULAR));
	g_assert_false(g_file_test(altered, G_FILE_TEST_EXISTS));

	/* The module directories put them back. */
	g_assert_cmpuint(import(again, f->modules, NULL), ==, 2);
	assert_index(f, again, f->n);
}

/* Tampering after open is caught before flashing; the entry leaves the store. */
static void
test_verify_entry(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autofree char *sha = NULL;
	const HealerStoreEntry *e;

	(void)data;
	g_assert_cmpuint(import(store, f->modules, NULL), ==, f->n);
	e = find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 2, 2002);
	g_assert_nonnull(e);
	sha = g_strdup(e->sha256);
	g_assert_cmpuint(f->changed, ==, 1);
	flip_byte(e->path, e->size - 10);

	g_assert_false(healer_store_verify_entry(store, e, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "altered"));
	g_clear_error(&error);
	g_assert_null(healer_store_lookup(store, sha));
	g_assert_cmpuint(f->changed, ==, 2);
	assert_index(f, store, f->n - 1);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, sha), ==, 1);
	/* The retired entry is still readable memory, and no longer verifies. */
	bytes = healer_store_read_verified(store, e, &error);
	g_assert_null(bytes);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_clear_error(&error);

	/* A store file deleted behind the store's back. */
	e = find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 1, 2002);
	g_assert_cmpint(g_unlink(e->path), ==, 0);
	g_assert_false(healer_store_verify_entry(store, e, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	assert_index(f, store, f->n - 2);

	/* Imported again from the source. */
	g_assert_cmpuint(import(store, f->modules, NULL), ==, 2);
	assert_index(f, store, f->n);
}

/* A lost or corrupt index is rebuilt from the store's files; temp files of interrupted writes go. */
static void
test_index_recovery(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autofree char *index = g_build_filename(f->state, "store", "index.json", NULL);
	g_autofree char *index_corrupt = g_strconcat(index, ".corrupt", NULL);
	g_autofree char *temp = g_strconcat(index, ".Ab12Cd", NULL);
	g_autofree char *stray = g_build_filename(
	        f->state, "store", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.bin", NULL);
	g_autofree char *stray_corrupt = g_strconcat(stray, ".corrupt", NULL);

	(void)data;
	g_assert_cmpuint(import(store, f->modules, NULL), ==, f->n);
	g_clear_pointer(&store, healer_store_free);

	/* Index gone: every file is indexed again (without its source). */
	g_assert_cmpint(g_unlink(index), ==, 0);
	test_write_file(temp, (const guint8 *)"[", 1);
	test_write_file(stray, (const guint8 *)"junk", 4);
	store = open_store(f);
	assert_index(f, store, f->n);
	g_assert_null(((const HealerStoreEntry *)find_entry(store, MODULE_FUNCTION_BOOTLOADER, 0, 100))->source);
	g_assert_false(g_file_test(temp, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(stray, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(stray_corrupt, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED, stray), ==, 1);
	g_clear_pointer(&store, healer_store_free);

	/* Index not JSON: set aside, rebuilt. */
	test_write_file(index, (const guint8 *)"{\"truncated", 11);
	store = open_store(f);
	assert_index(f, store, f->n);
	g_assert_true(g_file_test(index_corrupt, G_FILE_TEST_EXISTS));
	g_clear_pointer(&store, healer_store_free);

	/* A malformed entry is dropped (the record names the member at fault), then its file re-indexed. */
	test_write_file(index, (const guint8 *)"[{\"sha256\": 5}]", 15);
	store = open_store(f);
	assert_index(f, store, f->n);
	g_assert_cmpuint(count_logged(HEALER_MSG_STORE_REJECTED,
	                              "entry 0 dropped: sha256: expected a string of 64 lowercase hex digits"),
	                 ==, 1);
}

/* A write that fails leaves a clear error and a valid index. */
static void
test_write_failure(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autoptr(GError) error = NULL;
	g_autofree char *source = g_build_filename(f->modules, "apps", "tinker.bin", NULL);
	g_autofree char *sha = NULL;
	g_autofree char *blocker = NULL;
	g_autoptr(GBytes) bytes = test_read_file(source);
	g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);

	(void)data;
	/* A directory where tinker's store file would go: the rename fails, even for root. */
	g_checksum_update(checksum, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
	sha = g_strdup(g_checksum_get_string(checksum));
	blocker = g_strdup_printf("%s/store/%s.bin", f->state, sha);
	g_assert_cmpint(g_mkdir(blocker, 0755), ==, 0);

	g_assert_cmpuint(healer_store_import_directory(store, f->modules, NULL, &error), ==, 0);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "tinker.bin"));
	g_clear_error(&error);
	g_assert_null(healer_store_lookup(store, sha));
	/* The modules stored before apps/tinker.bin (names sort) are indexed. */
	assert_index(f, store, count_modules(f->modules, "tinker.bin"));
	g_assert_cmpuint(healer_store_get_n_entries(store), >=, 15);

	g_assert_cmpint(g_rmdir(blocker), ==, 0);
	import(store, f->modules, NULL);
	assert_index(f, store, f->n);
}

static void
test_job_files(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) job = json_tokener_parse("{\"plan\":[\"a\",\"b\"],\"step\":1}");
	g_autoptr(json_object) loaded = NULL;
	g_autoptr(GPtrArray) ids = NULL;
	g_autofree char *corrupt_path = g_build_filename(f->state, "jobs", "bbbb.json", NULL);
	g_autofree char *set_aside = g_strconcat(corrupt_path, ".corrupt", NULL);
	g_autoptr(json_object) array = json_tokener_parse("[1]");

	(void)data;
	ids = healer_job_file_list(f->state);
	g_assert_cmpuint(ids->len, ==, 0);
	g_clear_pointer(&ids, g_ptr_array_unref);
	g_assert_null(healer_job_file_load(f->state, "aaaa", &error));
	g_assert_no_error(error);

	g_assert_true(healer_job_file_save(f->state, "cccc", job, &error));
	g_assert_no_error(error);
	g_assert_true(healer_job_file_save(f->state, "aaaa", job, &error));
	g_assert_no_error(error);
	json_object_object_add(job, "step", json_object_new_int(2));
	g_assert_true(healer_job_file_save(f->state, "aaaa", job, &error));
	loaded = healer_job_file_load(f->state, "aaaa", &error);
	g_assert_no_error(error);
	g_assert_nonnull(loaded);
	g_assert_true(json_object_equal(loaded, job));

	/* A corrupt file is set aside and counts as none. */
	test_write_file(corrupt_path, (const guint8 *)"{\"plan\": [", 10);
	ids = healer_job_file_list(f->state);
	g_assert_cmpuint(ids->len, ==, 3);
	g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, "aaaa");
	g_assert_cmpstr(g_ptr_array_index(ids, 1), ==, "bbbb");
	g_assert_cmpstr(g_ptr_array_index(ids, 2), ==, "cccc");
	g_clear_pointer(&ids, g_ptr_array_unref);
	g_assert_null(healer_job_file_load(f->state, "bbbb", &error));
	g_assert_no_error(error);
	g_assert_true(g_file_test(set_aside, G_FILE_TEST_IS_REGULAR));
	g_assert_cmpuint(count_logged(NULL, "[bbbb] saved job"), ==, 1);

	g_assert_true(healer_job_file_remove(f->state, "cccc", &error));
	g_assert_true(healer_job_file_remove(f->state, "cccc", &error)); /* none: fine */
	g_assert_no_error(error);
	ids = healer_job_file_list(f->state);
	g_assert_cmpuint(ids->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(ids, 0), ==, "aaaa");

	/* Device ids are file names: nothing that could leave the directory. */
	g_assert_false(healer_job_file_save(f->state, "../escape", job, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(healer_job_file_save(f->state, "", job, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(healer_job_file_save(f->state, "dddd", array, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
}

/* One verified copy per module while anyone holds it; read and verified afresh after the last lets go. */
static void
test_shared_modules(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerStore) store = open_store(f);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) original = NULL;
	g_autofree char *sha = NULL, *upper = NULL;
	const HealerStoreEntry *e;
	GBytes *first, *second;

	(void)data;
	g_assert_cmpuint(import(store, f->modules, NULL), ==, f->n);
	e = find_entry(store, MODULE_FUNCTION_SYSTEM_PART, 2, 2002);
	sha = g_strdup(e->sha256);
	upper = g_ascii_strup(sha, -1);
	original = test_read_file(e->path);

	first = healer_store_acquire_module(store, sha, &error);
	g_assert_no_error(error);
	g_assert_true(g_bytes_equal(first, original));
	/* The file rots while the module is held: holders keep the bytes that were verified, unread. */
	flip_byte(e->path, e->size - 10);
	second = healer_store_acquire_module(store, upper, &error);
	g_assert_no_error(error);
	g_assert_true(second == first);
	g_assert_cmpuint(f->changed, ==, 1);
	healer_store_release_module(store, sha);
	g_assert_true(g_bytes_equal(second, original)); /* still held once */
	healer_store_release_module(store, upper);

	/* Released by all: the next holder reads the file again, and finds it altered. */
	g_assert_null(healer_store_acquire_module(store, sha, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_clear_error(&error);
	g_assert_null(healer_store_lookup(store, sha));
	g_assert_cmpuint(f->changed, ==, 2);
	g_assert_null(healer_store_acquire_module(store, sha, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
}

/* ---- the job writer ---- */

/* Completions of a writer, and a gate that holds its worker before a write. */
typedef struct {
	GMutex lock;
	GCond cond;
	gboolean closed; /* writes wait while closed */
	guint entered;   /* writes that reached the gate */
	GArray *seqs;    /* guint64, in the order reported */
	GPtrArray *ids;  /* char*, the same order */
	GPtrArray *errors;
} Writes;

static void
writes_init(Writes *w)
{
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
	w->seqs = g_array_new(FALSE, FALSE, sizeof(guint64));
	w->ids = g_ptr_array_new_with_free_func(g_free);
	w->errors = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
}

static void
writes_clear(Writes *w)
{
	g_array_unref(w->seqs);
	g_ptr_array_unref(w->ids);
	g_ptr_array_unref(w->errors);
	g_cond_clear(&w->cond);
	g_mutex_clear(&w->lock);
}

static void
on_written(const char *device_id, guint64 seq, const GError *error, gpointer user_data)
{
	Writes *w = user_data;

	g_array_append_val(w->seqs, seq);
	g_ptr_array_add(w->ids, g_strdup(device_id));
	if (error != NULL)
		g_ptr_array_add(w->errors, g_error_copy(error));
}

static void
gate(const char *device_id, gpointer user_data)
{
	Writes *w = user_data;

	(void)device_id;
	g_mutex_lock(&w->lock);
	w->entered++;
	g_cond_broadcast(&w->cond);
	while (w->closed)
		g_cond_wait(&w->cond, &w->lock);
	g_mutex_unlock(&w->lock);
}

static void
gate_wait_entered(Writes *w, guint n)
{
	g_mutex_lock(&w->lock);
	while (w->entered < n)
		g_cond_wait(&w->cond, &w->lock);
	g_mutex_unlock(&w->lock);
}

static void
gate_open(Writes *w)
{
	g_mutex_lock(&w->lock);
	w->closed = FALSE;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
}

/* Everything the writer finished is reported by the main context: dispatch it. */
static void
deliver_all(void)
{
	while (g_main_context_iteration(NULL, FALSE))
		;
}

static json_object *
job_at(guint step)
{
	json_object *job = json_object_new_object();

	json_object_object_add(job, "step", json_object_new_int((int)step));
	return job;
}

static guint64
save_step(HealerJobWriter *writer, const char *device_id, guint step)
{
	g_autoptr(json_object) job = job_at(step);

	return healer_job_writer_save(writer, device_id, job);
}

/* The step of the saved job, -1 when there is none. */
static int
saved_step(Fixture *f, const char *device_id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) job = healer_job_file_load(f->state, device_id, &error);
	json_object *step = NULL;

	g_assert_no_error(error);
	if (job == NULL)
		return -1;
	g_assert_true(json_object_object_get_ex(job, "step", &step));
	return json_object_get_int(step);
}

/*
 * States queued behind a write in flight: the newest replaces the older
 * ones, is written after the one in flight, never before it; a removal is a
 * state like any other.
 */
static void
test_job_writer_order(Fixture *f, gconstpointer data)
{
	Writes w = {.closed = TRUE};
	g_autoptr(HealerJobWriter) writer = NULL;
	guint64 s1, s2, s3, s4, s5, other;

	(void)data;
	writes_init(&w);
	writer = healer_job_writer_new(f->state, on_written, &w);
	healer_job_writer_set_hook(writer, gate, &w);

	s1 = save_step(writer, "aaaa", 1);
	gate_wait_entered(&w, 1); /* step 1 is in flight, held at the gate */
	s2 = save_step(writer, "aaaa", 2);
	s3 = save_step(writer, "aaaa", 3);
	g_assert_cmpuint(s1, <, s2);
	g_assert_cmpuint(s2, <, s3);
	g_assert_cmpint(saved_step(f, "aaaa"), ==, -1); /* nothing written yet */
	gate_open(&w);
	healer_job_writer_flush(writer);
	g_assert_cmpint(saved_step(f, "aaaa"), ==, 3);
	g_assert_cmpuint(w.seqs->len, ==, 0); /* reported on the main context only */
	deliver_all();
	/* Step 2 was replaced before its write began: neither written nor reported. */
	g_assert_cmpuint(w.entered, ==, 2);
	g_assert_cmpuint(w.seqs->len, ==, 2);
	g_assert_cmpuint(g_array_index(w.seqs, guint64, 0), ==, s1);
	g_assert_cmpuint(g_array_index(w.seqs, guint64, 1), ==, s3);
	g_assert_cmpuint(w.errors->len, ==, 0);

	/* A removal queued behind a save in flight: the file does not come back after it. */
	w.closed = TRUE;
	s4 = save_step(writer, "aaaa", 4);
	gate_wait_entered(&w, 3);
	s5 = healer_job_writer_remove(writer, "aaaa");
	/* Another device is not held up by this one's write in flight. */
	other = save_step(writer, "bbbb", 7);
	gate_wait_entered(&w, 4);
	gate_open(&w);
	healer_job_writer_flush(writer);
	g_assert_cmpint(saved_step(f, "aaaa"), ==, -1);
	g_assert_cmpint(saved_step(f, "bbbb"), ==, 7);
	deliver_all();
	g_assert_cmpuint(w.seqs->len, ==, 5);
	for (guint i = 2, a = 0; i < w.seqs->len; i++) {
		guint64 seq = g_array_index(w.seqs, guint64, i);
		if (strcmp(g_ptr_array_index(w.ids, i), "aaaa") == 0)
			g_assert_cmpuint(seq, ==, a++ == 0 ? s4 : s5);
		else
			g_assert_cmpuint(seq, ==, other);
	}
	g_clear_pointer(&writer, healer_job_writer_free);
	writes_clear(&w);
}

/* Freeing the writer (healerd stopping) waits for every state queued; nothing is reported after. */
static void
test_job_writer_flush(Fixture *f, gconstpointer data)
{
	Writes w = {0};
	HealerJobWriter *writer;

	(void)data;
	writes_init(&w);
	writer = healer_job_writer_new(f->state, on_written, &w);
	for (guint d = 0; d < 16; d++) {
		g_autofree char *id = g_strdup_printf("dev%02u", d);
		for (guint step = 1; step <= 5; step++)
			save_step(writer, id, step);
	}
	healer_job_writer_free(writer);
	for (guint d = 0; d < 16; d++) {
		g_autofree char *id = g_strdup_printf("dev%02u", d);
		g_assert_cmpint(saved_step(f, id), ==, 5);
	}
	deliver_all();
	g_assert_cmpuint(w.seqs->len, ==, 0);
	writes_clear(&w);
}

/* A write that fails is reported with its error; the next state is tried all the same. */
static void
test_job_writer_error(Fixture *f, gconstpointer data)
{
	Writes w = {0};
	g_autoptr(HealerJobWriter) writer = NULL;
	g_autofree char *jobs = g_build_filename(f->state, "jobs", NULL);
	const GError *error;
	guint64 seq;

	(void)data;
	writes_init(&w);
	g_assert_cmpint(g_mkdir_with_parents(f->state, 0750), ==, 0);
	test_write_file(jobs, (const guint8 *)"not a directory", 15);
	writer = healer_job_writer_new(f->state, on_written, &w);
	seq = save_step(writer, "aaaa", 1);
	healer_job_writer_flush(writer);
	deliver_all();
	g_assert_cmpuint(w.seqs->len, ==, 1);
	g_assert_cmpuint(g_array_index(w.seqs, guint64, 0), ==, seq);
	g_assert_cmpuint(w.errors->len, ==, 1);
	error = g_ptr_array_index(w.errors, 0);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	g_assert_nonnull(strstr(error->message, jobs));

	/* A device id that is no file name fails the same way, reported, not written. */
	seq = save_step(writer, "../escape", 1);
	healer_job_writer_flush(writer);
	deliver_all();
	g_assert_cmpuint(w.errors->len, ==, 2);
	g_assert_error((const GError *)g_ptr_array_index(w.errors, 1), HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpuint(g_array_index(w.seqs, guint64, 1), ==, seq);

	/* The disk is back: the next state is written. */
	g_assert_cmpint(g_unlink(jobs), ==, 0);
	save_step(writer, "aaaa", 2);
	healer_job_writer_flush(writer);
	deliver_all();
	g_assert_cmpuint(w.errors->len, ==, 2);
	g_assert_cmpint(saved_step(f, "aaaa"), ==, 2);
	g_clear_pointer(&writer, healer_job_writer_free);
	writes_clear(&w);
}

/*
 * The state directory's layout (store-layout.h), as docs/ and healerctl export know it: the paths
 * it builds, the store files it tells apart, the catalogs it names by key id.
 */
static void
test_layout(void)
{
	const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	g_autofree char *store = healer_store_layout_store_dir("/var/lib/healerd");
	g_autofree char *index = healer_store_layout_index_path(store);
	g_autofree char *module = healer_store_layout_module_path(store, sha);
	g_autofree char *catalogs = healer_store_layout_catalogs_dir("/var/lib/healerd");
	g_autofree char *catalog = healer_store_layout_catalog_path(catalogs, "k1");
	g_autofree char *signature = healer_store_layout_signature_path(catalogs, "k1");
	g_autofree char *module_name = g_strconcat(sha, ".bin", NULL);
	g_autofree char *module_temp = g_strconcat(sha, ".bin.Ab12Z9", NULL);
	g_autofree char *upper = g_ascii_strup(module_name, -1);
	g_autofree char *key_id = NULL;

	g_assert_cmpstr(store, ==, "/var/lib/healerd/store");
	g_assert_cmpstr(index, ==, "/var/lib/healerd/store/index.json");
	g_assert_cmpstr(module, ==,
	                "/var/lib/healerd/store/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.bin");
	g_assert_cmpstr(catalogs, ==, "/var/lib/healerd/catalogs");
	g_assert_cmpstr(catalog, ==, "/var/lib/healerd/catalogs/k1.json");
	g_assert_cmpstr(signature, ==, "/var/lib/healerd/catalogs/k1.json.sig");

	g_assert_true(healer_store_layout_is_sha256_hex(sha, 64));
	g_assert_false(healer_store_layout_is_sha256_hex(sha, 63));
	g_assert_true(healer_store_layout_is_module_name(module_name));
	g_assert_false(healer_store_layout_is_module_name(upper));
	g_assert_false(healer_store_layout_is_module_name(module_name + 1));
	g_assert_false(healer_store_layout_is_module_name(module_temp));
	g_assert_false(healer_store_layout_is_module_name("index.json"));

	g_assert_true(healer_store_layout_is_temp_name(module_temp));
	g_assert_true(healer_store_layout_is_temp_name("index.json.Ab12Z9"));
	g_assert_false(healer_store_layout_is_temp_name(module_name));
	g_assert_false(healer_store_layout_is_temp_name("index.json"));
	g_assert_false(healer_store_layout_is_temp_name("index.json.corrupt"));
	g_assert_false(healer_store_layout_is_temp_name("other.json.Ab12Z9"));

	key_id = healer_store_layout_catalog_key_id("k1.json");
	g_assert_cmpstr(key_id, ==, "k1");
	g_assert_null(healer_store_layout_catalog_key_id("k1.json.sig"));
	g_assert_null(healer_store_layout_catalog_key_id(".k1.json"));
	g_assert_null(healer_store_layout_catalog_key_id("k1.txt"));
}

#define ADD(name, func) g_test_add(name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	logged = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
	g_test_add_func("/store/layout", test_layout);
	ADD("/store/import-firmware", test_import_firmware);
	ADD("/store/rejects", test_rejects);
	ADD("/store/refusals-leave-store", test_refusals_leave_store);
	ADD("/store/reopen", test_reopen);
	ADD("/store/single-imports-persist", test_single_imports_persist);
	ADD("/store/tampered-at-open", test_tampered_at_open);
	ADD("/store/verify-entry", test_verify_entry);
	ADD("/store/index-recovery", test_index_recovery);
	ADD("/store/write-failure", test_write_failure);
	ADD("/store/job-files", test_job_files);
	ADD("/store/shared-modules", test_shared_modules);
	ADD("/store/job-writer-order", test_job_writer_order);
	ADD("/store/job-writer-flush", test_job_writer_flush);
	ADD("/store/job-writer-error", test_job_writer_error);
	return g_test_run();
}
