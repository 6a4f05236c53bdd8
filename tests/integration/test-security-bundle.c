/*
 * A bundle author attacks healerd (issue 13, findings 2, 3 and 8; docs/security.md): hostile
 * bundles, crafted here at test time, imported with `healerctl import` while the attack harness
 * watches (attack-harness.h: healerd stays up, answers `healerctl status` within 1 s, its RSS
 * comes back within 2 MiB, and it opens nothing it must not).  Each refusal must name its cause.
 *
 *   long-names       800 entries with 500 KB names in a .tar.zst (RSS went 17 -> 822 MB)
 *   skipped-entry    a .tar.gz whose releases-like notes.json declares 2.2 GB (13.8 s of CPU)
 *   sparse-entry     a module entry that is a 50 GB sparse file ("got 0")
 *   zstd-named-bin   a valid .tar.zst bundle named firmware.bin (read as a module file)
 *   symlink-out      a directory bundle whose module is a symbolic link to a mode-600 file
 */
#include "attack-harness.h"

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-util.h"

#define RSS_TIMEOUT_MS 10000

/* ---- crafting archives ---- */

typedef struct {
	struct archive *a;
} Tar;

/* A pax tar at `path` through `filter` (archive_write_add_filter_*; NULL: none), written unblocked. */
static void
tar_open(Tar *t, const char *path, int (*filter)(struct archive *))
{
	t->a = archive_write_new();
	g_assert_cmpint(archive_write_set_format_pax_restricted(t->a), ==, ARCHIVE_OK);
	if (filter != NULL)
		g_assert_cmpint(filter(t->a), ==, ARCHIVE_OK);
	/* Unblocked: an archive abandoned after a header still has it on disk. */
	g_assert_cmpint(archive_write_set_bytes_per_block(t->a, 0), ==, ARCHIVE_OK);
	g_assert_cmpint(archive_write_open_filename(t->a, path), ==, ARCHIVE_OK);
}

/* A regular file whose header declares `declared` bytes (sparse: that full size), with `len` bytes of data. */
static void
tar_add(Tar *t, const char *name, const void *data, gsize len, gint64 declared, gboolean sparse)
{
	struct archive_entry *entry = archive_entry_new();

	archive_entry_set_pathname(entry, name);
	archive_entry_set_filetype(entry, AE_IFREG);
	archive_entry_set_perm(entry, 0644);
	archive_entry_set_size(entry, declared);
	if (sparse)
		archive_entry_sparse_add_entry(entry, declared - (gint64)len, (gint64)len);
	g_assert_cmpint(archive_write_header(t->a, entry), ==, ARCHIVE_OK);
	if (len > 0)
		g_assert_cmpint(archive_write_data(t->a, data, len), ==, (la_ssize_t)len);
	archive_entry_free(entry);
}

/* Every file of the firmware build's modules directory (a valid bundle), at its relative path. */
static void
tar_add_build_modules(Tar *t, const char *dir, const char *rel)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	g_assert_nonnull(d);
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
	for (guint i = 0; i < names->len; i++) {
		const char *n = g_ptr_array_index(names, i);
		g_autofree char *path = g_build_filename(dir, n, NULL);
		g_autofree char *sub = rel != NULL ? g_strconcat(rel, "/", n, NULL) : g_strdup(n);

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			tar_add_build_modules(t, path, sub);
		} else {
			g_autoptr(GBytes) data = test_read_file(path);
			tar_add(t, sub, g_bytes_get_data(data, NULL), g_bytes_get_size(data),
			        (gint64)g_bytes_get_size(data), FALSE);
		}
	}
}

static void
tar_close(Tar *t)
{
	g_assert_cmpint(archive_write_close(t->a), ==, ARCHIVE_OK);
	archive_write_free(t->a);
}

/* Stops the archive where it is: flushed (the filter too), no end blocks, no padding to what was declared. */
static void
tar_abandon(Tar *t, gboolean filtered)
{
	archive_write_fail(t->a);
	if (filtered)
		archive_write_close(t->a);
	archive_write_free(t->a);
}

/* ---- the attack ---- */

/*
 * healerd with an empty module directory; the first archive it reads loads healer-archive.so and
 * libarchive (about 3 MiB of library pages, once): a refused one is read first, then the baseline
 * is taken, so that what the attack leaves is what is measured.
 */
/*
 * Where the hostile bundles are made: not under the attack's directory, which healerd watches as
 * its module directory (attack_setup with no module directory), so that only the import reads them.
 */
static char *
work_dir(void)
{
	return test_tmpdir_new();
}

static void
setup_warm(Attack *a, const char *work)
{
	g_autofree char *warm = NULL;
	Tar t;

	attack_setup(a, NULL, NULL);
	warm = g_build_filename(work, "warm-up.tar.gz", NULL);
	tar_open(&t, warm, archive_write_add_filter_gzip);
	tar_add(&t, "README", "x", 1, 1, FALSE);
	tar_close(&t);
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "import", warm, NULL);
		log_run(&run, "healerctl import warm-up.tar.gz");
		g_assert_cmpint(run.exit_status, !=, 0);
		g_assert_nonnull(strstr(run.err, "warm-up.tar.gz: catalog.json: missing (not a bundle)"));
	}
	attack_rebaseline(a);
}

/*
 * `healerctl import PATH` during a status probe; the run is left in `run`, and what healerd's state
 * directory held before it in `before` (test_tree_snapshot()), for assert_state_unchanged().
 */
static void
import_attacked(Attack *a, const char *path, TestRun *run, char **before)
{
	AttackProbe *probe = NULL;
	g_autofree char *what = g_strdup_printf("healerctl import %s", path);

	*before = test_tree_snapshot(a->state_dir);
	probe = attack_probe_start(a);
	healerctl(run, "import", path, NULL);
	log_run(run, what);
	attack_probe_finish(probe);
}

/* A refused bundle leaves healerd's state directory as it was: store, index, catalogs, staging. */
static void
assert_state_unchanged(Attack *a, const char *before, const char *bundle)
{
	test_assert_tree_unchanged(before, a->state_dir, bundle);
}

static void
assert_refused(const TestRun *run, const char *cause)
{
	g_assert_cmpint(run->exit_status, !=, 0);
	if (strstr(run->err, cause) == NULL)
		g_error("expected '%s' in healerctl's error:\n%s", cause, run->err);
}

/* ---- finding 2: names ---- */

static void
test_long_names(void)
{
	Attack a = {0};
	char *work = work_dir();
	g_auto(TestRun) run = {0};
	g_autofree char *bundle = NULL;
	g_autofree char *before = NULL;
	g_autofree char *name = g_malloc(500 * 1000 + 5);
	Tar t;

	setup_warm(&a, work);
	/* The archive: 800 entries, each name 500 KB (zstd makes 400 MB of names a few hundred KB). */
	bundle = g_build_filename(work, "long-names.tar.zst", NULL);
	tar_open(&t, bundle, archive_write_add_filter_zstd);
	memset(name, 'n', 500 * 1000 + 4);
	name[500 * 1000 + 4] = '\0';
	for (guint i = 0; i < 800; i++) {
		char prefix[5];
		g_snprintf(prefix, sizeof(prefix), "%04u", i);
		memcpy(name, prefix, 4);
		tar_add(&t, name, NULL, 0, 0, FALSE);
	}
	tar_close(&t);

	import_attacked(&a, bundle, &run, &before);
	assert_refused(&run, "long-names.tar.zst: entry 1 has a name of 500004 bytes; the limit is 4096");
	assert_state_unchanged(&a, before, bundle);
	attack_assert_unharmed(&a, NULL, RSS_TIMEOUT_MS);
	attack_teardown(&a);
	test_tmpdir_free(work);
}

/* ---- finding 2: a skipped entry's size ---- */

static void
test_skipped_entry(void)
{
	Attack a = {0};
	char *work = work_dir();
	g_auto(TestRun) run = {0};
	g_autofree char *bundle = NULL;
	g_autofree char *before = NULL;
	static const guint8 zeros[64 * 1024];
	Tar t;

	setup_warm(&a, work);
	/*
	 * A valid bundle, then notes.json (metadata: passed over) declaring 2.2 GB.  Skipping it in a
	 * compressed archive meant decompressing all of it, in both passes; the archive stops after
	 * 64 KiB of it, so any attempt to skip it would end in "truncated archive" instead.
	 */
	bundle = g_build_filename(work, "skipped-entry.tar.gz", NULL);
	tar_open(&t, bundle, archive_write_add_filter_gzip);
	tar_add_build_modules(&t, g_getenv("HEALER_FIRMWARE_MODULES"), NULL);
	tar_add(&t, "notes.json", zeros, sizeof(zeros), 2306867200, FALSE);
	tar_abandon(&t, TRUE);

	import_attacked(&a, bundle, &run, &before);
	assert_refused(&run, "skipped-entry.tar.gz: notes.json: entry ");
	assert_refused(&run, " declares 2306867200 bytes; the limit for metadata passed over is 1048576");
	assert_state_unchanged(&a, before, bundle);
	attack_assert_unharmed(&a, NULL, RSS_TIMEOUT_MS);
	attack_teardown(&a);
	test_tmpdir_free(work);
}

/* ---- finding 8: a sparse entry ---- */

static void
test_sparse_entry(void)
{
	Attack a = {0};
	char *work = work_dir();
	g_auto(TestRun) run = {0};
	g_autofree char *bundle = NULL;
	g_autofree char *before = NULL;
	static const guint8 data[4096] = {1};
	Tar t;

	setup_warm(&a, work);
	/* A module as a 50 GB sparse file holding 4 KiB of data at its end. */
	bundle = g_build_filename(work, "sparse.tar", NULL);
	tar_open(&t, bundle, NULL);
	tar_add(&t, "1.2.0/system-part1.bin", data, sizeof(data), 50LL << 30, TRUE);
	tar_close(&t);

	import_attacked(&a, bundle, &run, &before);
	assert_refused(&run, "sparse.tar: 1.2.0/system-part1.bin: sparse file in archive declaring 53687091200 bytes "
	                     "(only plain files are allowed)");
	assert_state_unchanged(&a, before, bundle);
	attack_assert_unharmed(&a, NULL, RSS_TIMEOUT_MS);
	attack_teardown(&a);
	test_tmpdir_free(work);
}

/* ---- finding 8: recognised by content ---- */

static void
test_zstd_named_bin(void)
{
	Attack a = {0};
	char *work = work_dir();
	g_auto(TestRun) run = {0};
	g_autofree char *bundle = NULL;
	Tar t;

	setup_warm(&a, work);
	bundle = g_build_filename(work, "firmware.bin", NULL);
	tar_open(&t, bundle, archive_write_add_filter_zstd);
	tar_add_build_modules(&t, g_getenv("HEALER_FIRMWARE_MODULES"), NULL);
	tar_close(&t);

	/*
	 * No status probe: this bundle is valid, and storing its 22 modules (store.c,
	 * healer_store_import_all, each file written and synced on the main loop) is not an attack.
	 */
	healerctl(&run, "import", bundle, NULL);
	log_run(&run, "healerctl import firmware.bin");
	/* Read as a bundle: its signed catalog accepted and its modules stored, not "not a module". */
	g_assert_cmpint(run.exit_status, ==, 0);
	g_assert_null(strstr(run.out, "rejected"));
	g_assert_false(g_str_has_prefix(run.out, "0 new"));
	g_assert_nonnull(strstr(run.out, "new modules added to the store"));
	{
		g_auto(TestRun) status = {0};
		healerctl(&status, "status", NULL);
		log_run(&status, "healerctl status");
		g_assert_null(strstr(status.out, "none accepted"));
	}
	/* A valid import keeps what it stored (the store's index): only the checks that do not measure it. */
	attack_assert_alive(&a);
	attack_assert_opens(&a, NULL);
	attack_teardown(&a);
	test_tmpdir_free(work);
}

/* ---- finding 3: a symbolic link out of a directory bundle ---- */

static void
test_symlink_out(void)
{
	Attack a = {0};
	char *work = work_dir();
	g_auto(TestRun) run = {0};
	g_autofree char *bundle = NULL, *secret = NULL, *link = NULL;
	g_autofree char *before = NULL;
	static const char shadow[] = "root:$6$not-for-healerd:19000:0:99999:7:::\n";

	attack_setup(&a, NULL, NULL);
	/* The firmware build's bundle, copied, with system-part2.bin a link to a file only root may read. */
	bundle = g_build_filename(work, "link-bundle", NULL);
	test_copy_tree(g_getenv("HEALER_FIRMWARE_MODULES"), bundle, NULL);
	secret = g_build_filename(work, "shadow", NULL);
	test_write_file(secret, (const guint8 *)shadow, strlen(shadow));
	g_assert_cmpint(g_chmod(secret, 0600), ==, 0);
	link = g_build_filename(bundle, "2.0.0", "system-part2.bin", NULL);
	g_assert_cmpint(g_unlink(link), ==, 0);
	g_assert_cmpint(symlink(secret, link), ==, 0);

	import_attacked(&a, bundle, &run, &before);
	assert_refused(&run, "link-bundle: 2.0.0/system-part2.bin: symbolic link (not followed: a bundle holds only "
	                     "files and directories)");
	assert_state_unchanged(&a, before, bundle);
	/* Exactly this: nothing about the target, not its name, not its size (the error told it). */
	{
		g_autofree char *exact = g_strdup_printf("healerctl import: %s: 2.0.0/system-part2.bin: symbolic link "
		                                         "(not followed: a bundle holds only "
		                                         "files and directories)\n",
		                                         bundle);
		g_assert_cmpstr(run.err, ==, exact);
	}
	{
		/* Neither the target nor the link (opening it follows it) was opened. */
		const char *never[] = {secret, link, NULL};
		attack_assert_unharmed(&a, never, RSS_TIMEOUT_MS);
	}
	attack_teardown(&a);
	test_tmpdir_free(work);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_assert_nonnull(g_getenv("HEALER_FIRMWARE_MODULES"));
	g_test_add_func("/security/bundle/long-names", test_long_names);
	g_test_add_func("/security/bundle/skipped-entry", test_skipped_entry);
	g_test_add_func("/security/bundle/sparse-entry", test_sparse_entry);
	g_test_add_func("/security/bundle/zstd-named-bin", test_zstd_named_bin);
	g_test_add_func("/security/bundle/symlink-out", test_symlink_out);
	return g_test_run();
}
