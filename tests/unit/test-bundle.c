/*
 * Offline bundles (agent/lib/bundle.c, docs/bundles.md): the firmware
 * build's modules directory read as a bundle; directory and archive bundles
 * written (whole and filtered) and read back; every way a bundle is refused
 * (truncated archives, tampered modules and catalogs, a wrong key, missing
 * and extra files, bad bundle.json, unsafe and duplicate archive entries,
 * unsigned catalogs), each leaving nothing staged; `healerctl export`
 * from a fake state directory; and tar bundles refused, directory bundles
 * still working, without the libarchive module (healer-archive.so).
 */
#define _GNU_SOURCE /* O_PATH */
#include <fcntl.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "catalog-publish.h"
#include "catalog.h"
#include "healer-error.h"
#include "json-autoptr.h"
#include "test-util.h"

#define DEV_KEY "device-firmware/keys/development-DO-NOT-USE-IN-PRODUCTION.pub.pem"

typedef struct {
	char *tmp;
	char *staging; /* staging parent */
	const char *modules_dir;
	GPtrArray *keys; /* the development public key */
	char *key_id;
	GBytes *catalog_json;
	GBytes *catalog_sig;
	HealerCatalog *catalog;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autofree char *key_path = g_build_filename(g_getenv("HEALER_SOURCE_DIR"), DEV_KEY, NULL);
	g_autofree char *json_path = NULL, *sig_path = NULL;
	g_autoptr(GError) error = NULL;
	EVP_PKEY *key;

	(void)data;
	f->tmp = test_tmpdir_new();
	f->staging = g_build_filename(f->tmp, "staging", NULL);
	f->modules_dir = g_getenv("HEALER_FIRMWARE_MODULES");
	g_assert_nonnull(f->modules_dir);
	key = healer_catalog_load_public_key(key_path, &error);
	g_assert_no_error(error);
	f->key_id = healer_catalog_key_id(key);
	f->keys = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	g_ptr_array_add(f->keys, key);
	json_path = g_build_filename(f->modules_dir, "catalog.json", NULL);
	sig_path = g_build_filename(f->modules_dir, "catalog.json.sig", NULL);
	f->catalog_json = test_read_file(json_path);
	f->catalog_sig = test_read_file(sig_path);
	f->catalog = healer_catalog_parse(g_bytes_get_data(f->catalog_json, NULL), g_bytes_get_size(f->catalog_json),
	                                  &error);
	g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	healer_catalog_free(f->catalog);
	g_bytes_unref(f->catalog_json);
	g_bytes_unref(f->catalog_sig);
	g_ptr_array_unref(f->keys);
	g_free(f->key_id);
	g_free(f->staging);
	test_tmpdir_free(f->tmp);
}

static guint
count_entries(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	guint n = 0;

	while (d != NULL && g_dir_read_name(d) != NULL)
		n++;
	return n;
}

/* Refused with `code` and a message holding `message`; nothing left staged. */
static void
expect_refused(Fixture *f, HealerBundle *bundle, GError *error, int code, const char *message)
{
	g_assert_null(bundle);
	g_assert_nonnull(error);
	if (!g_error_matches(error, HEALER_ERROR, code))
		g_error("expected code %d, got %s %d: %s", code, g_quark_to_string(error->domain), error->code,
		        error->message);
	if (strstr(error->message, message) == NULL)
		g_error("expected '%s' in '%s'", message, error->message);
	/* The staging parent, made by the first open that got as far as staging, holds nothing at all. */
	test_assert_tree_unchanged(g_file_test(f->staging, G_FILE_TEST_EXISTS) ? "" : "(absent)\n", f->staging,
	                           error->message);
}

static HealerBundle *
open_bundle(Fixture *f, const char *path, gboolean allow_unsigned, GError **error)
{
	return healer_bundle_open(path, f->keys, allow_unsigned, f->staging, error);
}

/* Every staged file has its module's size and SHA-256, in catalog order. */
static void
check_staged(const HealerBundle *bundle)
{
	const HealerCatalogModule *previous = NULL;
	guint at = 0;

	for (guint i = 0; i < bundle->modules->len; i++) {
		const HealerBundleModule *m = g_ptr_array_index(bundle->modules, i);
		g_autoptr(GBytes) data = test_read_file(m->staged_path);
		guint8 digest[HEALER_SHA256_SIZE];
		guint index = 0;

		g_assert_true(g_str_has_prefix(m->staged_path, bundle->staging_dir));
		g_assert_cmpuint(g_bytes_get_size(data), ==, m->module->size);
		healer_sha256(g_bytes_get_data(data, NULL), g_bytes_get_size(data), digest);
		g_assert_cmpmem(digest, sizeof(digest), m->module->sha256, sizeof(m->module->sha256));
		g_assert_true(g_ptr_array_find(bundle->catalog->modules, m->module, &index));
		g_assert_true(previous == NULL || index > at);
		previous = m->module;
		at = index;
	}
}

static GBytes *
read_from_dir(const HealerCatalogModule *module, gpointer user_data, GError **error)
{
	g_autofree char *path = g_build_filename(user_data, module->path, NULL);
	char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, error))
		return NULL;
	return g_bytes_new_take(data, len);
}

static GBytes *
read_wrong(const HealerCatalogModule *module, gpointer user_data, GError **error)
{
	GBytes *data = read_from_dir(module, user_data, error);
	guint8 *copy;
	gsize len = 0;

	if (data == NULL)
		return NULL;
	copy = g_bytes_unref_to_data(data, &len);
	copy[len / 2] ^= 0x40;
	return g_bytes_new_take(copy, len);
}

static void
write_bundle(Fixture *f, const char *dest, GPtrArray *selected)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(healer_bundle_write(dest, f->catalog_json, f->catalog_sig, f->catalog, selected, read_from_dir,
	                                  (gpointer)f->modules_dir, &error));
	g_assert_no_error(error);
}

static GPtrArray *
select_modules(Fixture *f, int platform, const char *release)
{
	g_autoptr(GError) error = NULL;
	GPtrArray *selected = healer_catalog_select(f->catalog, platform, release, &error);

	g_assert_no_error(error);
	g_assert_nonnull(selected);
	return selected;
}

/* A copy of the build's modules directory, to damage. */
static char *
copy_modules(Fixture *f, const char *name)
{
	char *dir = g_build_filename(f->tmp, name, NULL);

	test_copy_tree(f->modules_dir, dir, NULL);
	return dir;
}

static void
flip_byte(const char *path, gsize offset)
{
	g_autoptr(GBytes) data = test_read_file(path);
	gsize len = 0;
	guint8 *copy = g_bytes_unref_to_data(g_bytes_ref(data), &len);

	g_assert_cmpuint(offset, <, len);
	copy[offset] ^= 0x01;
	test_write_file(path, copy, len);
	g_free(copy);
}

/* ---- tar files written by hand (libarchive), for what healer_bundle_write never writes ---- */

typedef struct {
	char *name;
	GBytes *data; /* regular files */
	mode_t type;  /* AE_IFREG, AE_IFLNK, AE_IFDIR, AE_IFIFO */
	char *link;   /* symlink target, or hard link target when `hard` */
	gboolean hard;
} TarEntry;

static void
tar_entry_clear(gpointer data)
{
	TarEntry *e = data;

	g_free(e->name);
	g_free(e->link);
	if (e->data != NULL)
		g_bytes_unref(e->data);
}

static GArray *
tar_entries_new(void)
{
	GArray *entries = g_array_new(FALSE, TRUE, sizeof(TarEntry));

	g_array_set_clear_func(entries, tar_entry_clear);
	return entries;
}

static void
tar_add_file(GArray *entries, const char *name, GBytes *data)
{
	TarEntry e = {g_strdup(name), g_bytes_ref(data), AE_IFREG, NULL, FALSE};

	g_array_append_val(entries, e);
}

static void
tar_add_special(GArray *entries, const char *name, mode_t type, const char *link, gboolean hard)
{
	TarEntry e = {g_strdup(name), NULL, type, g_strdup(link), hard};

	g_array_append_val(entries, e);
}

/* catalog.json, its signature and every module of the build, each name after `prefix`. */
static GArray *
tar_bundle_entries(Fixture *f, const char *prefix)
{
	GArray *entries = tar_entries_new();
	g_autofree char *catalog_name = g_strconcat(prefix, "catalog.json", NULL);
	g_autofree char *sig_name = g_strconcat(prefix, "catalog.json.sig", NULL);

	tar_add_file(entries, catalog_name, f->catalog_json);
	tar_add_file(entries, sig_name, f->catalog_sig);
	for (guint i = 0; i < f->catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(f->catalog->modules, i);
		g_autofree char *name = g_strconcat(prefix, module->path, NULL);
		g_autoptr(GBytes) data = read_from_dir(module, (gpointer)f->modules_dir, NULL);
		tar_add_file(entries, name, data);
	}
	return entries;
}

static void
write_tar(const char *path, GArray *entries)
{
	struct archive *a = archive_write_new();

	g_assert_cmpint(archive_write_set_format_pax_restricted(a), ==, ARCHIVE_OK);
	g_assert_cmpint(archive_write_open_filename(a, path), ==, ARCHIVE_OK);
	for (guint i = 0; i < entries->len; i++) {
		const TarEntry *e = &g_array_index(entries, TarEntry, i);
		struct archive_entry *entry = archive_entry_new();
		gsize len = 0;
		const void *data = e->data != NULL ? g_bytes_get_data(e->data, &len) : NULL;

		archive_entry_set_pathname(entry, e->name);
		archive_entry_set_filetype(entry, e->type);
		archive_entry_set_perm(entry, 0644);
		if (e->hard)
			archive_entry_set_hardlink(entry, e->link);
		else if (e->link != NULL)
			archive_entry_set_symlink(entry, e->link);
		archive_entry_set_size(entry, (la_int64_t)len);
		g_assert_cmpint(archive_write_header(a, entry), ==, ARCHIVE_OK);
		if (len > 0)
			g_assert_cmpint(archive_write_data(a, data, len), ==, (la_ssize_t)len);
		archive_entry_free(entry);
	}
	g_assert_cmpint(archive_write_close(a), ==, ARCHIVE_OK);
	archive_write_free(a);
}

/*
 * `entries` with `filter` (archive_write_add_filter_*; NULL: none), then,
 * when `name` is not NULL, one more regular file whose header declares
 * `declared` bytes (a sparse file of that size when `sparse`), of which a
 * block of zeros follows before the archive simply stops: a reader that
 * checks headers refuses it before reading; one that reads or skips its data
 * reports a truncated archive instead.
 */
static void
write_tar_declaring(const char *path, GArray *entries, int (*filter)(struct archive *), const char *name,
                    gint64 declared, gboolean sparse)
{
	struct archive *a = archive_write_new();
	static const guint8 zeros[4096];

	g_assert_cmpint(archive_write_set_format_pax_restricted(a), ==, ARCHIVE_OK);
	if (filter != NULL)
		g_assert_cmpint(filter(a), ==, ARCHIVE_OK);
	/* Unblocked: what was written is in the file even though the archive is never closed. */
	g_assert_cmpint(archive_write_set_bytes_per_block(a, 0), ==, ARCHIVE_OK);
	g_assert_cmpint(archive_write_open_filename(a, path), ==, ARCHIVE_OK);
	for (guint i = 0; entries != NULL && i < entries->len; i++) {
		const TarEntry *e = &g_array_index(entries, TarEntry, i);
		struct archive_entry *entry = archive_entry_new();
		gsize len = 0;
		const void *data = e->data != NULL ? g_bytes_get_data(e->data, &len) : NULL;

		archive_entry_set_pathname(entry, e->name);
		archive_entry_set_filetype(entry, e->type);
		archive_entry_set_perm(entry, 0644);
		archive_entry_set_size(entry, (la_int64_t)len);
		g_assert_cmpint(archive_write_header(a, entry), ==, ARCHIVE_OK);
		if (len > 0)
			g_assert_cmpint(archive_write_data(a, data, len), ==, (la_ssize_t)len);
		archive_entry_free(entry);
	}
	if (name == NULL) {
		g_assert_cmpint(archive_write_close(a), ==, ARCHIVE_OK);
	} else {
		struct archive_entry *entry = archive_entry_new();
		archive_entry_set_pathname(entry, name);
		archive_entry_set_filetype(entry, AE_IFREG);
		archive_entry_set_perm(entry, 0644);
		archive_entry_set_size(entry, declared);
		if (sparse)
			archive_entry_sparse_add_entry(entry, declared - (gint64)sizeof(zeros), sizeof(zeros));
		g_assert_cmpint(archive_write_header(a, entry), ==, ARCHIVE_OK);
		g_assert_cmpint(archive_write_data(a, zeros, sizeof(zeros)), ==, (la_ssize_t)sizeof(zeros));
		archive_entry_free(entry);
		if (filter == NULL) {
			/*
			 * Unblocked, the file holds every byte written so far.  Closing (which alone frees what
			 * libarchive allocated for the output) appends end-of-archive blocks: cut them off again.
			 */
			la_int64_t written = archive_filter_bytes(a, -1);
			archive_write_close(a);
			g_assert_cmpint(truncate(path, (off_t)written), ==, 0);
		} else {
			/* Flushes what the filter holds, with no padding to `declared`. */
			archive_write_fail(a);
			archive_write_close(a);
		}
	}
	archive_write_free(a);
}

/* The names in an archive, in order. */
static GPtrArray *
archive_names(const char *path)
{
	struct archive *a = archive_read_new();
	struct archive_entry *entry;
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	g_assert_cmpint(archive_read_open_filename(a, path, 10240), ==, ARCHIVE_OK);
	while (archive_read_next_header(a, &entry) == ARCHIVE_OK)
		g_ptr_array_add(names, g_strdup(archive_entry_pathname(entry)));
	archive_read_free(a);
	return names;
}

/* ---- tests ---- */

/* The firmware build's modules directory is a bundle without bundle.json. */
static void
test_open_build_dir(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = open_bundle(f, f->modules_dir, FALSE, &error);
	g_autofree char *staging_dir = NULL;

	(void)data;
	g_assert_no_error(error);
	g_assert_nonnull(bundle);
	g_assert_cmpstr(bundle->source, ==, f->modules_dir);
	g_assert_cmpstr(bundle->key_id, ==, f->key_id);
	g_assert_false(bundle->has_manifest);
	g_assert_nonnull(bundle->catalog_sig);
	g_assert_cmpuint(g_bytes_get_size(bundle->catalog_sig), ==, HEALER_CATALOG_SIGNATURE_SIZE);
	g_assert_true(g_bytes_equal(bundle->catalog_json, f->catalog_json));
	g_assert_cmpuint(bundle->catalog->serial, ==, 1);
	g_assert_cmpuint(bundle->catalog->modules->len, >=, 15);
	g_assert_cmpuint(bundle->modules->len, ==, bundle->catalog->modules->len);
	check_staged(bundle);
	g_assert_cmpuint(count_entries(f->staging), ==, 1);
	g_assert_cmpuint(count_entries(bundle->staging_dir), ==, bundle->modules->len);
	staging_dir = g_strdup(bundle->staging_dir);
	g_clear_pointer(&bundle, healer_bundle_free);
	g_assert_false(g_file_test(staging_dir, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(count_entries(f->staging), ==, 0);
}

static void
test_select(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) all = select_modules(f, -1, NULL);
	g_autoptr(GPtrArray) gcc = select_modules(f, 3, NULL);
	g_autoptr(GPtrArray) photon = select_modules(f, 6, NULL);
	g_autoptr(GPtrArray) r120 = select_modules(f, -1, "1.2.0");
	g_autoptr(GPtrArray) r210 = select_modules(f, 3, "2.1.0");
	g_autoptr(GPtrArray) none = healer_catalog_select(f->catalog, -1, "9.9.9", &error);

	(void)data;
	g_assert_cmpuint(all->len, ==, f->catalog->modules->len);
	g_assert_cmpuint(gcc->len, ==, f->catalog->modules->len);
	g_assert_cmpuint(photon->len, ==, 0);
	g_assert_cmpuint(r120->len, ==, 3);
	for (guint i = 0; i < r120->len; i++)
		g_assert_true(
		        g_str_has_prefix(((const HealerCatalogModule *)g_ptr_array_index(r120, i))->path, "1.2.0/"));
	g_assert_cmpuint(r210->len, ==, 4);
	g_assert_null(none);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(error->message, "\"9.9.9\""));
	g_assert_nonnull(strstr(error->message, "1.0.0, 1.1.0, 1.2.0"));
}

/* Directory and archive bundles, whole and filtered, read back the same. */
static void
test_write_and_reopen(Fixture *f, gconstpointer data)
{
	static const char *const dests[] = {"bundle-dir", "bundle.tar", "bundle.tar.gz", "bundle.tar.xz"};
	static const struct {
		int platform;
		const char *release;
	} selections[] = {{-1, NULL}, {-1, "1.2.0"}, {3, "2.1.0"}, {6, NULL}};

	(void)data;
	for (guint s = 0; s < G_N_ELEMENTS(selections); s++) {
		g_autoptr(GPtrArray) selected = select_modules(f, selections[s].platform, selections[s].release);

		for (guint d = 0; d < G_N_ELEMENTS(dests); d++) {
			g_autofree char *name = g_strdup_printf("%u-%s", s, dests[d]);
			g_autofree char *dest = g_build_filename(f->tmp, name, NULL);
			g_autoptr(GError) error = NULL;
			g_autoptr(HealerBundle) bundle = NULL;

			write_bundle(f, dest, selected);
			bundle = open_bundle(f, dest, FALSE, &error);
			g_assert_no_error(error);
			g_assert_nonnull(bundle);
			g_assert_true(bundle->has_manifest);
			g_assert_cmpstr(bundle->key_id, ==, f->key_id);
			g_assert_true(g_bytes_equal(bundle->catalog_json, f->catalog_json));
			g_assert_true(g_bytes_equal(bundle->catalog_sig, f->catalog_sig));
			g_assert_cmpuint(bundle->modules->len, ==, selected->len);
			for (guint i = 0; i < selected->len; i++) {
				const HealerCatalogModule *want = g_ptr_array_index(selected, i);
				const HealerBundleModule *got = g_ptr_array_index(bundle->modules, i);
				g_assert_cmpstr(got->module->path, ==, want->path);
			}
			check_staged(bundle);
			if (g_str_has_suffix(dest, ".tar") || g_str_has_suffix(dest, ".tar.gz") ||
			    g_str_has_suffix(dest, ".tar.xz")) {
				g_autoptr(GPtrArray) names = archive_names(dest);
				g_assert_cmpuint(names->len, ==, 3 + selected->len);
				g_assert_cmpstr(g_ptr_array_index(names, 0), ==, "catalog.json");
				g_assert_cmpstr(g_ptr_array_index(names, 1), ==, "catalog.json.sig");
				g_assert_cmpstr(g_ptr_array_index(names, 2), ==, "bundle.json");
			} else {
				g_autofree char *manifest = g_build_filename(dest, "bundle.json", NULL);
				g_assert_true(g_file_test(manifest, G_FILE_TEST_IS_REGULAR));
			}
		}
	}
	/* Nothing but the bundles and the (empty) staging parent: no temporary names left. */
	g_assert_cmpuint(count_entries(f->tmp), ==, G_N_ELEMENTS(dests) * G_N_ELEMENTS(selections) + 1);
	g_assert_cmpuint(count_entries(f->staging), ==, 0);
}

static void
test_write_refusals(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) selected = select_modules(f, -1, "1.2.0");
	g_autofree char *dir = g_build_filename(f->tmp, "out", NULL);
	g_autofree char *tar = g_build_filename(f->tmp, "out.tar", NULL);
	g_autofree char *nowhere = g_build_filename(f->tmp, "no-such-dir", "out.tar", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	/* A module whose bytes do not match the catalog is never written. */
	for (guint i = 0; i < 2; i++) {
		const char *dest = i == 0 ? dir : tar;
		g_assert_false(healer_bundle_write(dest, f->catalog_json, f->catalog_sig, f->catalog, selected,
		                                   read_wrong, (gpointer)f->modules_dir, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_nonnull(strstr(error->message, "1.2.0/bootloader.bin: SHA-256 mismatch (expected "));
		g_clear_error(&error);
		g_assert_cmpuint(count_entries(f->tmp), ==, 0); /* no temporary directory or file left */
	}
	/* An existing directory is not replaced; an archive is. */
	g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
	g_assert_false(healer_bundle_write(dir, f->catalog_json, f->catalog_sig, f->catalog, selected, read_from_dir,
	                                   (gpointer)f->modules_dir, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "already exists"));
	g_clear_error(&error);
	test_write_file(tar, (const guint8 *)"old", 3);
	write_bundle(f, tar, selected);
	bundle = open_bundle(f, tar, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(bundle->modules->len, ==, 3);
	/* A trailing slash names the directory itself. */
	{
		g_autofree char *slashed = g_build_filename(f->tmp, "slashed/", NULL);
		g_autofree char *manifest = g_build_filename(f->tmp, "slashed", "bundle.json", NULL);
		write_bundle(f, slashed, selected);
		g_assert_true(g_file_test(manifest, G_FILE_TEST_IS_REGULAR));
	}
	/* The parent directory must exist. */
	g_assert_false(healer_bundle_write(nowhere, f->catalog_json, f->catalog_sig, f->catalog, selected,
	                                   read_from_dir, (gpointer)f->modules_dir, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
}

/* Offsets of a ustar archive's entries (headers of 512 bytes, data padded to 512). */
typedef struct {
	char name[101];
	gsize header;
	gsize data;
	gsize size;
} TarSpan;

static GArray *
tar_spans(GBytes *tar)
{
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(tar, &len);
	GArray *spans = g_array_new(FALSE, TRUE, sizeof(TarSpan));

	for (gsize at = 0; at + 512 <= len && p[at] != 0;) {
		TarSpan span = {0};
		char size_text[13] = {0};

		memcpy(span.name, p + at, 100);
		memcpy(size_text, p + at + 124, 12);
		span.header = at;
		span.data = at + 512;
		span.size = (gsize)g_ascii_strtoull(size_text, NULL, 8);
		g_array_append_val(spans, span);
		at = span.data + (span.size + 511) / 512 * 512;
	}
	return spans;
}

static void
test_truncated(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) all = select_modules(f, -1, NULL);
	g_autofree char *tar = g_build_filename(f->tmp, "whole.tar", NULL);
	g_autofree char *tgz = g_build_filename(f->tmp, "whole.tar.gz", NULL);
	g_autofree char *cut = g_build_filename(f->tmp, "cut.tar", NULL);
	g_autofree char *cut_gz = g_build_filename(f->tmp, "cut.tar.gz", NULL);
	g_autoptr(GBytes) whole = NULL, whole_gz = NULL;
	g_autoptr(GArray) spans = NULL;
	const TarSpan *module, *last;
	gsize offsets[5];

	(void)data;
	write_bundle(f, tar, all);
	write_bundle(f, tgz, all);
	whole = test_read_file(tar);
	whole_gz = test_read_file(tgz);
	spans = tar_spans(whole);
	g_assert_cmpuint(spans->len, ==, 3 + all->len);
	module = &g_array_index(spans, TarSpan, 5);
	last = &g_array_index(spans, TarSpan, spans->len - 1);
	offsets[0] = 100;                                        /* in the first header */
	offsets[1] = module->header + 300;                       /* in a module's header */
	offsets[2] = module->data + module->size / 2;            /* in a module's data */
	offsets[3] = last->data + last->size - 1;                /* one byte short of the end of the last module */
	offsets[4] = g_array_index(spans, TarSpan, 1).data + 10; /* in the signature */
	for (guint i = 0; i < G_N_ELEMENTS(offsets); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerBundle) bundle = NULL;

		test_write_file(cut, g_bytes_get_data(whole, NULL), offsets[i]);
		bundle = open_bundle(f, cut, FALSE, &error);
		g_test_message("cut at %zu: %s", offsets[i], error != NULL ? error->message : "accepted");
		expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, cut);
		if (i == 2)
			g_assert_nonnull(strstr(error->message, "truncated archive ("));
	}
	for (guint i = 1; i <= 3; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerBundle) bundle = NULL;

		test_write_file(cut_gz, g_bytes_get_data(whole_gz, NULL), g_bytes_get_size(whole_gz) * i / 4);
		bundle = open_bundle(f, cut_gz, FALSE, &error);
		g_test_message("gz cut at %u/4: %s", i, error != NULL ? error->message : "accepted");
		expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, cut_gz);
	}
}

static void
test_tampered_module(Fixture *f, gconstpointer data)
{
	g_autofree char *dir = copy_modules(f, "tampered");
	g_autofree char *module_path = g_build_filename(dir, "1.2.0", "system-part1.bin", NULL);
	g_autofree char *tar = g_build_filename(f->tmp, "tampered.tar", NULL);
	g_autoptr(GArray) spans = NULL;
	g_autoptr(GBytes) whole = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;
	g_autoptr(GPtrArray) all = select_modules(f, -1, NULL);
	g_autofree char *message = NULL;
	guint8 *bytes;
	gsize len = 0;

	(void)data;
	flip_byte(module_path, 1000);
	bundle = open_bundle(f, dir, FALSE, &error);
	message = g_strdup_printf("%s: 1.2.0/system-part1.bin: SHA-256 mismatch (expected ", dir);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, message);
	g_clear_error(&error);
	flip_byte(module_path, 1000);

	/* One byte more than the catalog says. */
	{
		g_autoptr(GBytes) good = test_read_file(module_path);
		g_autoptr(GByteArray) longer = g_byte_array_new();
		g_byte_array_append(longer, g_bytes_get_data(good, NULL), (guint)g_bytes_get_size(good));
		g_byte_array_append(longer, (const guint8 *)"x", 1);
		test_write_file(module_path, longer->data, longer->len);
		bundle = open_bundle(f, dir, FALSE, &error);
		expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "1.2.0/system-part1.bin: size mismatch");
		g_clear_error(&error);
		test_write_file(module_path, g_bytes_get_data(good, NULL), g_bytes_get_size(good));
	}

	/* The same in an archive. */
	write_bundle(f, tar, all);
	whole = test_read_file(tar);
	spans = tar_spans(whole);
	bytes = g_bytes_unref_to_data(g_bytes_ref(whole), &len);
	for (guint i = 0; i < spans->len; i++) {
		const TarSpan *span = &g_array_index(spans, TarSpan, i);
		if (strcmp(span->name, "1.2.0/system-part1.bin") == 0)
			bytes[span->data + 77] ^= 0x80;
	}
	test_write_file(tar, bytes, len);
	g_free(bytes);
	bundle = open_bundle(f, tar, FALSE, &error);
	g_free(message);
	message = g_strdup_printf("%s: 1.2.0/system-part1.bin: SHA-256 mismatch (expected ", tar);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, message);
}

static void
test_tampered_catalog(Fixture *f, gconstpointer data)
{
	g_autofree char *dir = copy_modules(f, "tampered");
	g_autofree char *catalog = g_build_filename(dir, "catalog.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	g_autoptr(GBytes) json = test_read_file(catalog);
	const char *text = g_bytes_get_data(json, NULL);
	const char *created = g_strstr_len(text, (gssize)g_bytes_get_size(json), "\"created\": \"");
	g_autofree char *message = NULL;

	(void)data;
	/* The year 2026 becomes 3026: still a valid catalog, but not the one signed. */
	g_assert_nonnull(created);
	flip_byte(catalog, (gsize)(created - text) + strlen("\"created\": \""));
	bundle = open_bundle(f, dir, FALSE, &error);
	message = g_strdup_printf("%s: catalog.json: catalog ", dir);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, message);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "altered after signing");
	g_clear_error(&error);
	/* Damaged beyond parsing. */
	flip_byte(catalog, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "catalog.json: catalog ");
}

static void
test_wrong_key(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) other = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	g_ptr_array_add(other, healer_catalog_generate_key(&error));
	g_assert_no_error(error);
	bundle = healer_bundle_open(f->modules_dir, other, FALSE, f->staging, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "catalog is signed by an unknown key");
	g_clear_error(&error);
	/* No keys at all: the same. */
	bundle = healer_bundle_open(f->modules_dir, NULL, FALSE, f->staging, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "catalog is signed by an unknown key");
}

static void
test_missing_and_extra(Fixture *f, gconstpointer data)
{
	g_autofree char *dir = copy_modules(f, "bundle");
	g_autofree char *module = g_build_filename(dir, "2.0.0", "system-part2.bin", NULL);
	g_autofree char *extra = g_build_filename(dir, "1.0.0", "extra.bin", NULL);
	g_autofree char *notes = g_build_filename(dir, "1.0.0", "notes.json", NULL);
	g_autofree char *filtered = g_build_filename(f->tmp, "filtered", NULL);
	g_autofree char *filtered_module = g_build_filename(filtered, "1.2.0", "bootloader.bin", NULL);
	g_autofree char *not_carried = g_build_filename(filtered, "1.0.0", "bootloader.bin", NULL);
	g_autofree char *no_catalog = g_build_filename(dir, "catalog.json", NULL);
	g_autoptr(GPtrArray) r120 = select_modules(f, -1, "1.2.0");
	g_autoptr(GBytes) saved = test_read_file(module);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	g_assert_cmpint(g_unlink(module), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA,
	               "2.0.0/system-part2.bin: missing (the catalog lists it and there is no bundle.json)");
	g_clear_error(&error);
	test_write_file(module, g_bytes_get_data(saved, NULL), g_bytes_get_size(saved));

	/* Metadata names are allowed anywhere; anything else is not. */
	test_write_file(notes, (const guint8 *)"{}", 2);
	bundle = open_bundle(f, dir, FALSE, &error);
	g_assert_no_error(error);
	g_clear_pointer(&bundle, healer_bundle_free);
	test_write_file(extra, (const guint8 *)"x", 1);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "1.0.0/extra.bin: not listed in the catalog");
	g_clear_error(&error);
	g_unlink(extra);

	/* A filtered bundle: what bundle.json lists must be there, and nothing else of the catalog. */
	write_bundle(f, filtered, r120);
	g_assert_cmpint(g_unlink(filtered_module), ==, 0);
	bundle = open_bundle(f, filtered, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA,
	               "1.2.0/bootloader.bin: missing (bundle.json lists it)");
	g_clear_error(&error);
	test_copy_tree(f->modules_dir, filtered, NULL); /* everything back, and more */
	bundle = open_bundle(f, filtered, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA,
	               "1.0.0/bootloader.bin: not carried by this bundle (bundle.json does not list it)");
	g_clear_error(&error);
	g_assert_true(g_file_test(not_carried, G_FILE_TEST_EXISTS));

	/* No catalog: not a bundle. */
	g_assert_cmpint(g_unlink(no_catalog), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "catalog.json: missing (not a bundle)");
	g_clear_error(&error);

	/* No such path. */
	g_free(dir);
	dir = g_build_filename(f->tmp, "no-such-bundle.tar", NULL);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_NOT_FOUND, "no-such-bundle.tar");
	g_clear_error(&error);
	/* A file that is not an archive. */
	bundle = open_bundle(f, module, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "not a directory or a readable tar archive");
}

/* Opens `dir` and expects it refused with INVALID_DATA, the message holding `message`. */
static void
expect_dir_refused(Fixture *f, const char *dir, const char *message)
{
	g_autoptr(GError) error = NULL;
	HealerBundle *bundle = open_bundle(f, dir, FALSE, &error);

	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, message);
	g_test_message("refused as expected: %s", error->message);
}

/*
 * Directories `levels` deep under `dir`, each named by `width` characters, made one at a time through
 * descriptors: the whole path may be longer than PATH_MAX, as a bundle's own names may be.
 */
static void
make_deep(const char *dir, guint levels, guint width)
{
	g_autofree char *component = g_strnfill(width, 'n');
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	for (guint i = 0; i < levels; i++) {
		int next;
		g_assert_cmpint(mkdirat(fd, component, 0755), ==, 0);
		next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		g_assert_cmpint(next, >=, 0);
		close(fd);
		fd = next;
	}
	close(fd);
}

/* Takes make_deep()'s directories away again (the temp dir's removal goes by paths, too long here). */
static void
remove_deep(const char *dir, guint levels, guint width)
{
	g_autofree char *component = g_strnfill(width, 'n');
	g_autofree int *fds = g_new(int, levels + 1);

	fds[0] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(fds[0], >=, 0);
	for (guint i = 1; i < levels; i++) {
		fds[i] = openat(fds[i - 1], component, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		g_assert_cmpint(fds[i], >=, 0);
	}
	for (guint i = levels; i > 0; i--) {
		g_assert_cmpint(unlinkat(fds[i - 1], component, AT_REMOVEDIR), ==, 0);
		close(fds[i - 1]);
	}
}

/*
 * What a bundle given as a path or a directory can get wrong beyond its signature: not there, not a
 * directory or file, a FIFO inside, nesting, names and entry counts over the archive limits, a
 * module cut short, a catalog over the metadata limit.  Each refused with its cause, nothing staged.
 */
static void
test_directory_faults(Fixture *f, gconstpointer data)
{
	g_autofree char *missing = g_build_filename(f->tmp, "no-such-bundle", NULL);
	g_autofree char *fifo = g_build_filename(f->tmp, "bundle.fifo", NULL);
	g_autoptr(GError) error = NULL;
	HealerBundle *bundle;

	(void)data;
	bundle = open_bundle(f, missing, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_NOT_FOUND, "no-such-bundle: No such file or directory");
	g_clear_error(&error);

	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	expect_dir_refused(f, fifo, "bundle.fifo: not a directory or a tar archive");

	{
		g_autofree char *dir = copy_modules(f, "with-fifo");
		g_autofree char *inside = g_build_filename(dir, "1.0.0", "pipe.bin", NULL);
		g_assert_cmpint(mkfifo(inside, 0600), ==, 0);
		expect_dir_refused(f, dir, "with-fifo: 1.0.0/pipe.bin: not a regular file");
	}
	{
		/* 32 levels are allowed (empty directories are no harm); 33 are one more than a bundle may nest. */
		g_autofree char *dir = copy_modules(f, "deep");
		make_deep(dir, 32, 1);
		bundle = open_bundle(f, dir, FALSE, &error);
		g_assert_no_error(error);
		g_clear_pointer(&bundle, healer_bundle_free);
		{
			g_autoptr(GString) deepest = g_string_new(dir);
			for (guint i = 0; i < 32; i++)
				g_string_append(deepest, "/n");
			g_string_append(deepest, "/n");
			g_assert_cmpint(g_mkdir(deepest->str, 0755), ==, 0);
		}
		expect_dir_refused(f, dir, ": directories nested too deep");
	}
	{
		/* 17 components of 250 characters: a relative name of 4266 bytes, over the 4096 of an archive. */
		g_autofree char *dir = copy_modules(f, "long-name");
		make_deep(dir, 17, 250);
		expect_dir_refused(f, dir, "has a name of 4266 bytes; the limit is 4096");
		remove_deep(dir, 17, 250);
	}
	{
		/* 2,200 names of 245 bytes: fewer files than the limit, more than 512 KiB of names. */
		g_autofree char *dir = copy_modules(f, "many-names");
		g_autofree char *sub = g_build_filename(dir, "notes", NULL);
		g_autofree char *stem = g_strnfill(230, 'm');
		g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
		for (guint i = 0; i < 2200; i++) {
			g_autofree char *name = g_strdup_printf("%s/%s%04u.json", sub, stem, i);
			test_write_file(name, (const guint8 *)"{}", 2);
		}
		expect_dir_refused(f, dir, ": the names of the files up to it add up to ");
		expect_dir_refused(f, dir, " bytes; the limit is 524288");
	}
	{
		/* One file or directory more than the limit (the copy holds some already). */
		g_autofree char *dir = copy_modules(f, "many-files");
		g_autofree char *sub = g_build_filename(dir, "n", NULL);
		g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
		for (guint i = 0; i < HEALER_BUNDLE_MAX_ENTRIES; i++) {
			g_autofree char *name = g_strdup_printf("%s/%u.json", sub, i);
			test_write_file(name, (const guint8 *)"{}", 2);
		}
		expect_dir_refused(f, dir, "many-files: more than 4096 files and directories; the limit is 4096");
	}
	{
		/* A module cut short: its size, not only its digest, is named. */
		g_autofree char *dir = copy_modules(f, "short");
		g_autofree char *module = g_build_filename(dir, "2.0.0", "system-part2.bin", NULL);
		g_autoptr(GBytes) whole = test_read_file(module);
		g_autofree char *expected = NULL;
		test_write_file(module, g_bytes_get_data(whole, NULL), g_bytes_get_size(whole) - 1);
		expected = g_strdup_printf("short: 2.0.0/system-part2.bin: size mismatch (expected %" G_GSIZE_FORMAT
		                           " bytes, got %" G_GSIZE_FORMAT ")",
		                           g_bytes_get_size(whole), g_bytes_get_size(whole) - 1);
		expect_dir_refused(f, dir, expected);
	}
	{
		/* A catalog over the metadata limit (sparse: no disk taken), refused by its size alone. */
		g_autofree char *dir = copy_modules(f, "big-catalog");
		g_autofree char *catalog = g_build_filename(dir, "catalog.json", NULL);
		g_assert_cmpint(truncate(catalog, (off_t)HEALER_BUNDLE_MAX_METADATA + 1), ==, 0);
		expect_dir_refused(f, dir, "big-catalog: catalog.json: 16777217 bytes; the limit is 16777216");
	}
	g_unlink(fifo);
}

static void
test_symlinks_in_directory(Fixture *f, gconstpointer data)
{
	g_autofree char *dir = copy_modules(f, "bundle");
	g_autofree char *real_apps = g_build_filename(f->tmp, "real-apps", NULL);
	g_autofree char *apps = g_build_filename(dir, "apps", NULL);
	g_autofree char *tinker = g_build_filename(dir, "1.0.0", "bootloader.bin", NULL);
	g_autofree char *tinker_target = g_build_filename(f->modules_dir, "1.0.0", "bootloader.bin", NULL);
	g_autofree char *secret = g_build_filename(f->tmp, "secret-shadow", NULL);
	g_autofree char *catalog = g_build_filename(dir, "catalog.json", NULL);
	g_autofree char *catalog_copy = g_build_filename(f->tmp, "catalog-copy.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	/* A symbolic link to a file, even one with the right bytes, is refused: never followed. */
	g_assert_cmpint(g_unlink(tinker), ==, 0);
	g_assert_cmpint(symlink(tinker_target, tinker), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA,
	               "bundle: 1.0.0/bootloader.bin: symbolic link (not followed: a bundle holds only files and "
	               "directories)");
	g_clear_error(&error);
	/* To a file the bundle author may not read (finding 3): the message tells nothing of it. */
	test_write_file(secret, (const guint8 *)"root:$6$secret:19000:0:99999:7:::\n", 34);
	g_assert_cmpint(chmod(secret, 0600), ==, 0);
	g_assert_cmpint(g_unlink(tinker), ==, 0);
	g_assert_cmpint(symlink(secret, tinker), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA,
	               "1.0.0/bootloader.bin: symbolic link (not followed");
	/* Exactly this: nothing of the target (its name, its size) in it. */
	{
		g_autofree char *exact = g_strdup_printf("%s: 1.0.0/bootloader.bin: symbolic link (not followed: a "
		                                         "bundle holds only files and directories)",
		                                         dir);
		g_assert_cmpstr(error->message, ==, exact);
	}
	g_clear_error(&error);
	g_assert_cmpint(g_unlink(tinker), ==, 0);
	{
		g_autoptr(GBytes) good = test_read_file(tinker_target);
		test_write_file(tinker, g_bytes_get_data(good, NULL), g_bytes_get_size(good));
	}
	/* catalog.json itself as a link. */
	g_assert_cmpint(g_rename(catalog, catalog_copy), ==, 0);
	g_assert_cmpint(symlink(catalog_copy, catalog), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "catalog.json: symbolic link (not followed");
	g_clear_error(&error);
	g_assert_cmpint(g_unlink(catalog), ==, 0);
	g_assert_cmpint(g_rename(catalog_copy, catalog), ==, 0);
	/* Back to plain files: accepted. */
	bundle = open_bundle(f, dir, FALSE, &error);
	g_assert_no_error(error);
	check_staged(bundle);
	g_clear_pointer(&bundle, healer_bundle_free);
	/* A symbolic link to a directory is not followed either. */
	g_assert_cmpint(g_rename(apps, real_apps), ==, 0);
	g_assert_cmpint(symlink(real_apps, apps), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "apps: symbolic link (not followed");
}

static void
test_manifest(Fixture *f, gconstpointer data)
{
	static const struct {
		const char *json;
		const char *message;
	} bad[] = {
	        {"[]", "top level: expected an object"},
	        {"{\"format\": \"healer-catalog\", \"format_version\": 1, \"modules\": []}", "format: expected"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 2, \"modules\": []}",
	         "format_version: expected 1"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": \"1\", \"modules\": []}",
	         "format_version: expected 1"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1}", "modules: missing or not an array"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": {}}",
	         "modules: missing or not an array"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": [], \"extra\": 1}",
	         "top level: unknown key \"extra\""},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": [1]}",
	         "modules[0]: not 64 lowercase hex digits"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": "
	         "[\"5EBB9E7FC8F66449F30FDBFC17DD8D0"
	         "95B53E7095ED39E8019CBE5B99A3B44C6\"]}",
	         "modules[0]: not 64 lowercase hex digits"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": "
	         "[\"5ebb9e7fc8f66449f30fdbfc17dd8d0"
	         "95b53e7095ed39e8019cbe5b99a3b44c6\", "
	         "\"5ebb9e7fc8f66449f30fdbfc17dd8d095b53e7095ed39e8019cbe5b99a3b44c6"
	         "\"]}",
	         "modules[1]: 5ebb9e7fc8f66449f30fdbfc17dd8d095b53e7095ed39e8019cbe5b99a3b44c6 is listed twice"},
	        {"{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": "
	         "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}",
	         "modules[0]: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is not one of the "
	         "catalog's"},
	        {"{\"format\": \"healer-bundle\"", "not valid JSON"},
	        {"{} {}", "trailing data"},
	};
	const char *good = "{\"modules\": [\"5ebb9e7fc8f66449f30fdbfc17dd8d095b53e7095ed39e8019cbe5b99a3b44c6\"], "
	                   "\"format_version\": 1, \"format\": \"healer-bundle\"}";
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) carried = NULL;
	g_autofree char *dir = g_build_filename(f->tmp, "bundle", NULL);
	g_autofree char *manifest = g_build_filename(dir, "bundle.json", NULL);
	g_autoptr(HealerBundle) bundle = NULL;
	g_autoptr(GPtrArray) r120 = select_modules(f, -1, "1.2.0");

	(void)data;
	carried = healer_bundle_manifest_parse((const guint8 *)good, strlen(good), f->catalog, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(carried->len, ==, 1);
	g_assert_cmpstr(((const HealerCatalogModule *)g_ptr_array_index(carried, 0))->path, ==,
	                "1.0.0/system-part1.bin");
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GPtrArray) none = healer_bundle_manifest_parse((const guint8 *)bad[i].json,
		                                                         strlen(bad[i].json), f->catalog, &error);
		g_assert_null(none);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		if (strstr(error->message, bad[i].message) == NULL)
			g_error("%s: expected '%s' in '%s'", bad[i].json, bad[i].message, error->message);
		g_clear_error(&error);
	}
	/* A NUL byte inside is refused as such, not read as the end of the text. */
	{
		static const guint8 with_nul[] = "{\"format\": \"healer-bundle\"}\0 ";
		g_autoptr(GPtrArray) none =
		        healer_bundle_manifest_parse(with_nul, sizeof with_nul - 1, f->catalog, &error);
		g_assert_null(none);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_cmpstr(error->message, ==, "not valid JSON: contains a NUL byte");
		g_clear_error(&error);
	}
	/* In a bundle: the file and the JSON path are named. */
	write_bundle(f, dir, r120);
	test_write_file(manifest, (const guint8 *)bad[10].json, strlen(bad[10].json));
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(
	        f, bundle, error, HEALER_ERROR_INVALID_DATA,
	        "bundle.json: modules[0]: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is not "
	        "one of the catalog's modules");
}

static void
expect_tar_refused(Fixture *f, GArray *entries, const char *message)
{
	g_autofree char *tar = g_build_filename(f->tmp, "hand.tar", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	write_tar(tar, entries);
	bundle = open_bundle(f, tar, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, message);
}

static void
test_unsafe_entries(Fixture *f, gconstpointer data)
{
	g_autofree char *tar = g_build_filename(f->tmp, "hand.tar", NULL);
	g_autoptr(GBytes) x = g_bytes_new_static("x", 1);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	/* By hand, with "./" in front of every name and directory entries: accepted. */
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "./");
		tar_add_special(entries, "./", AE_IFDIR, NULL, FALSE);
		tar_add_special(entries, "./apps/", AE_IFDIR, NULL, FALSE);
		tar_add_file(entries, "./releases.json", x);
		write_tar(tar, entries);
		bundle = open_bundle(f, tar, FALSE, &error);
		g_assert_no_error(error);
		g_assert_false(bundle->has_manifest);
		g_assert_cmpuint(bundle->modules->len, ==, f->catalog->modules->len);
		check_staged(bundle);
		g_clear_pointer(&bundle, healer_bundle_free);
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_file(entries, "../x", x);
		expect_tar_refused(f, entries, "hand.tar: ../x: unsafe path in archive");
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_file(entries, "1.0.0/../../x.json", x);
		expect_tar_refused(f, entries, "1.0.0/../../x.json: unsafe path in archive");
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_file(entries, "/abs", x);
		expect_tar_refused(f, entries, "/abs: unsafe path in archive");
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_special(entries, "link.json", AE_IFLNK, "/etc/passwd", FALSE);
		expect_tar_refused(f, entries, "link.json: symbolic link in archive");
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_special(entries, "hard.json", AE_IFREG, "catalog.json", TRUE);
		expect_tar_refused(f, entries, "hard.json: hard link in archive");
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_special(entries, "fifo.json", AE_IFIFO, NULL, FALSE);
		expect_tar_refused(f, entries, "fifo.json: device, FIFO or socket in archive");
	}
	{
		/* The same module twice, once with "./": the second copy could differ. */
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		g_autofree char *path = g_build_filename(f->modules_dir, "apps", "tinker.bin", NULL);
		g_autoptr(GBytes) module = test_read_file(path);
		tar_add_file(entries, "./apps/tinker.bin", module);
		expect_tar_refused(f, entries, "./apps/tinker.bin: duplicate entry in archive");
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_file(entries, "README", x);
		expect_tar_refused(f, entries, "hand.tar: README: not listed in the catalog");
	}
}

/* Every limit of bundle.h, each refused from the entry's header with a message naming it (issue 13). */
static void
expect_declaring_refused(Fixture *f, GArray *entries, int (*filter)(struct archive *), const char *name,
                         gint64 declared, gboolean sparse, const char *message)
{
	g_autofree char *tar = g_build_filename(f->tmp, "hostile.tar", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	write_tar_declaring(tar, entries, filter, name, declared, sparse);
	bundle = open_bundle(f, tar, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, message);
}

static void
test_limits(Fixture *f, gconstpointer data)
{
	g_autofree char *tar = g_build_filename(f->tmp, "hostile.tar", NULL);
	g_autofree char *long_name = g_strnfill(HEALER_BUNDLE_MAX_NAME + 1, 'n');
	g_autofree char *max_name = g_strnfill(HEALER_BUNDLE_MAX_NAME, 'm');
	g_autoptr(GBytes) nothing = g_bytes_new_static("", 0);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	/* A name one byte too long, first and after a whole bundle; one of the longest allowed is only unlisted. */
	{
		g_autoptr(GArray) entries = tar_entries_new();
		g_autofree char *message =
		        g_strdup_printf("hostile.tar: entry 1 has a name of %d bytes; the limit is %d",
		                        HEALER_BUNDLE_MAX_NAME + 1, HEALER_BUNDLE_MAX_NAME);
		tar_add_file(entries, long_name, nothing);
		expect_declaring_refused(f, entries, NULL, NULL, 0, FALSE, message);
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		g_autofree char *message =
		        g_strdup_printf("entry %u has a name of %d bytes; the limit is %d", entries->len + 1,
		                        HEALER_BUNDLE_MAX_NAME + 1, HEALER_BUNDLE_MAX_NAME);
		tar_add_file(entries, long_name, f->catalog_sig);
		expect_declaring_refused(f, entries, archive_write_add_filter_zstd, NULL, 0, FALSE, message);
	}
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_file(entries, max_name, f->catalog_sig);
		expect_declaring_refused(f, entries, NULL, NULL, 0, FALSE, "mmmm: not listed in the catalog");
	}
	/* Names each allowed, too many bytes together: refused at the entry that passes the total. */
	{
		g_autoptr(GArray) entries = tar_entries_new();
		guint at = HEALER_BUNDLE_MAX_NAMES / HEALER_BUNDLE_MAX_NAME + 1;
		g_autofree char *message = NULL;
		for (guint i = 0; i < at + 10; i++) {
			g_autofree char *name = g_strdup_printf("%04u%s", i, max_name + 4);
			tar_add_file(entries, name, nothing);
		}
		message =
		        g_strdup_printf("hostile.tar: entry %u: the names of the entries up to it add up to %u bytes; "
		                        "the limit is %d",
		                        at, at * HEALER_BUNDLE_MAX_NAME, HEALER_BUNDLE_MAX_NAMES);
		expect_declaring_refused(f, entries, archive_write_add_filter_gzip, NULL, 0, FALSE, message);
	}
	/* One entry too many. */
	{
		g_autoptr(GArray) entries = tar_entries_new();
		g_autofree char *message = g_strdup_printf("more than %d entries in archive; the limit is %d",
		                                           HEALER_BUNDLE_MAX_ENTRIES, HEALER_BUNDLE_MAX_ENTRIES);
		for (guint i = 0; i < HEALER_BUNDLE_MAX_ENTRIES + 1; i++) {
			g_autofree char *name = g_strdup_printf("d%u/", i);
			tar_add_special(entries, name, AE_IFDIR, NULL, FALSE);
		}
		expect_declaring_refused(f, entries, NULL, NULL, 0, FALSE, message);
	}
	/*
	 * Declared sizes, each refused before any of the data is read or
	 * skipped (the archive stops after one block: reading would say
	 * "truncated").  A metadata file passed over, 2.2 GB in a compressed
	 * archive: skipping it meant decompressing it, twice (issue 13: 13.8 s).
	 */
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		g_autofree char *message =
		        g_strdup_printf("hostile.tar: notes.json: entry %u declares 2306867200 bytes; "
		                        "the limit for metadata passed over is %d",
		                        entries->len + 1, HEALER_BUNDLE_MAX_SKIPPED);
		expect_declaring_refused(f, entries, archive_write_add_filter_gzip, "notes.json", 2306867200, FALSE,
		                         message);
	}
	{
		g_autofree char *message = g_strdup_printf(
		        "catalog.json: entry 1 declares %d bytes; the limit for catalog.json and bundle.json is %d",
		        HEALER_BUNDLE_MAX_METADATA + 1, HEALER_BUNDLE_MAX_METADATA);
		expect_declaring_refused(f, NULL, NULL, "catalog.json", HEALER_BUNDLE_MAX_METADATA + 1, FALSE, message);
		expect_declaring_refused(f, NULL, NULL, "catalog.json.sig", 4097, FALSE,
		                         "catalog.json.sig: entry 1 declares 4097 bytes; the limit for a catalog "
		                         "signature is 4096");
	}
	{
		g_autofree char *message = g_strdup_printf(
		        "1.2.0/system-part1.bin: entry 1 declares %d bytes; the limit for a module is %d",
		        HEALER_BUNDLE_MAX_MODULE + 1, HEALER_BUNDLE_MAX_MODULE);
		expect_declaring_refused(f, NULL, NULL, "1.2.0/system-part1.bin", HEALER_BUNDLE_MAX_MODULE + 1, FALSE,
		                         message);
	}
	/* A sparse module of 50 GB: its declared size, not "got 0". */
	expect_declaring_refused(f, NULL, NULL, "1.2.0/system-part1.bin", 50LL << 30, TRUE,
	                         "hostile.tar: 1.2.0/system-part1.bin: sparse file in archive declaring 53687091200 "
	                         "bytes (only plain files are allowed)");
	/* Entries each within their limit, too much together (zstd: 256 MiB of zeros are a few KiB). */
	{
		g_autoptr(GArray) entries = tar_entries_new();
		g_autofree guint8 *zeros = g_malloc0(HEALER_BUNDLE_MAX_MODULE);
		g_autoptr(GBytes) big = g_bytes_new_static(zeros, HEALER_BUNDLE_MAX_MODULE);
		g_autofree char *message = NULL;
		for (guint i = 0; i < HEALER_BUNDLE_MAX_TOTAL / HEALER_BUNDLE_MAX_MODULE; i++) {
			g_autofree char *name = g_strdup_printf("big%u.bin", i);
			tar_add_file(entries, name, big);
		}
		message =
		        g_strdup_printf("hostile.tar: last.bin: the entries up to it declare %d bytes; the limit is %d",
		                        HEALER_BUNDLE_MAX_TOTAL + 4096, HEALER_BUNDLE_MAX_TOTAL);
		expect_declaring_refused(f, entries, archive_write_add_filter_zstd, "last.bin", 4096, FALSE, message);
	}
	/* The catalog's size is what counts: a module declaring one byte more is refused unread. */
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		const HealerCatalogModule *module = g_ptr_array_index(f->catalog->modules, 0);
		g_autofree char *message = NULL;
		for (guint i = 0; i < entries->len; i++) {
			TarEntry *e = &g_array_index(entries, TarEntry, i);
			if (strcmp(e->name, module->path) == 0) {
				gsize len = 0;
				const guint8 *bytes = g_bytes_get_data(e->data, &len);
				guint8 *longer = g_malloc(len + 1);
				memcpy(longer, bytes, len);
				longer[len] = 'x';
				g_bytes_unref(e->data);
				e->data = g_bytes_new_take(longer, len + 1);
			}
		}
		message = g_strdup_printf("%s: size mismatch (expected %" G_GUINT64_FORMAT
		                          " bytes, the archive declares %" G_GUINT64_FORMAT ")",
		                          module->path, module->size, module->size + 1);
		expect_declaring_refused(f, entries, NULL, NULL, 0, FALSE, message);
	}
	/* The limits leave a real bundle alone, however compressed. */
	{
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		tar_add_file(entries, "releases.json", f->catalog_sig);
		write_tar_declaring(tar, entries, archive_write_add_filter_zstd, NULL, 0, FALSE);
		bundle = open_bundle(f, tar, FALSE, &error);
		g_assert_no_error(error);
		check_staged(bundle);
	}
}

/* Archives are recognised by their content, whatever their name (docs/bundles.md; issue 13, finding 8). */
static void
test_content_detection(Fixture *f, gconstpointer data)
{
	static int (*const filters[])(struct archive *) = {
	        NULL,
	        archive_write_add_filter_gzip,
	        archive_write_add_filter_bzip2,
	        archive_write_add_filter_xz,
	        archive_write_add_filter_lz4,
	        archive_write_add_filter_zstd,
	};
	g_autofree char *bin = g_build_filename(f->tmp, "bundle.bin", NULL);
	g_autofree char *module = g_build_filename(f->modules_dir, "1.2.0", "system-part1.bin", NULL);
	g_autofree char *json = g_build_filename(f->modules_dir, "catalog.json", NULL);
	g_autofree char *empty = g_build_filename(f->tmp, "empty", NULL);
	g_autofree char *fifo = g_build_filename(f->tmp, "fifo", NULL);
	g_autofree char *v7 = g_build_filename(f->tmp, "v7.bin", NULL);

	(void)data;
	for (guint i = 0; i < G_N_ELEMENTS(filters); i++) {
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerBundle) bundle = NULL;

		write_tar_declaring(bin, entries, filters[i], NULL, 0, FALSE);
		g_assert_true(healer_bundle_file_is_archive(bin));
		bundle = open_bundle(f, bin, FALSE, &error);
		g_assert_no_error(error);
		check_staged(bundle);
	}
	/* A V7 header (no magic) by its checksum: the ustar magic wiped, the checksum made right again. */
	{
		g_autoptr(GBytes) whole = test_read_file(bin);
		gsize len = 0;
		guint8 *bytes;
		guint sum = 0;
		g_autoptr(GArray) entries = tar_bundle_entries(f, "");

		write_tar_declaring(v7, entries, NULL, NULL, 0, FALSE);
		g_bytes_unref(whole);
		whole = test_read_file(v7);
		bytes = g_bytes_unref_to_data(g_bytes_ref(whole), &len);
		memset(bytes + 257, 0, 8);
		memset(bytes + 148, ' ', 8);
		for (guint i = 0; i < 512; i++)
			sum += bytes[i];
		g_snprintf((char *)bytes + 148, 8, "%06o", sum);
		test_write_file(v7, bytes, 512);
		g_assert_true(healer_bundle_file_is_archive(v7));
		bytes[0] ^= 1; /* the checksum no longer adds up */
		test_write_file(v7, bytes, 512);
		g_assert_false(healer_bundle_file_is_archive(v7));
		g_free(bytes);
	}
	/* What is not an archive: a module, JSON, an empty file, a directory, a FIFO (not opened blocking). */
	g_assert_false(healer_bundle_file_is_archive(module));
	g_assert_false(healer_bundle_file_is_archive(json));
	test_write_file(empty, NULL, 0);
	g_assert_false(healer_bundle_file_is_archive(empty));
	g_assert_false(healer_bundle_file_is_archive(f->modules_dir));
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_false(healer_bundle_file_is_archive(fifo));
	g_assert_false(healer_bundle_file_is_archive("/no/such/file"));
}

/* healer_bundle_open_fd: read through a descriptor opened elsewhere, named as its owner named it. */
static void
test_open_fd(Fixture *f, gconstpointer data)
{
	g_autofree char *tar = g_build_filename(f->tmp, "fd.tar", NULL);
	g_autoptr(GArray) entries = tar_bundle_entries(f, "");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;
	int fd;

	(void)data;
	write_tar_declaring(tar, entries, archive_write_add_filter_gzip, NULL, 0, FALSE);
	fd = open(tar, O_RDONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_true(healer_bundle_fd_is_archive(fd));
	bundle = healer_bundle_open_fd(fd, "my-bundle", f->keys, FALSE, f->staging, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(bundle->source, ==, "my-bundle");
	check_staged(bundle);
	g_clear_pointer(&bundle, healer_bundle_free);
	close(fd);
	fd = open(f->modules_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	bundle = healer_bundle_open_fd(fd, "my-dir", f->keys, FALSE, f->staging, &error);
	g_assert_no_error(error);
	check_staged(bundle);
	g_clear_pointer(&bundle, healer_bundle_free);
	close(fd);
	/* Descriptors that do not allow reading: O_PATH (openat() would still work through one), write-only. */
	fd = open(f->modules_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	bundle = healer_bundle_open_fd(fd, "my-dir", f->keys, FALSE, f->staging, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_PERMISSION_DENIED, "my-dir: not open for reading");
	g_clear_error(&error);
	close(fd);
	fd = open(tar, O_WRONLY | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	bundle = healer_bundle_open_fd(fd, "my-bundle", f->keys, FALSE, f->staging, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_PERMISSION_DENIED, "my-bundle: not open for reading");
	close(fd);
}

static void
test_unsigned(Fixture *f, gconstpointer data)
{
	g_autofree char *dir = copy_modules(f, "unsigned");
	g_autofree char *sig = g_build_filename(dir, "catalog.json.sig", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = NULL;

	(void)data;
	g_assert_cmpint(g_unlink(sig), ==, 0);
	bundle = open_bundle(f, dir, FALSE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA,
	               "catalog.json: catalog is unsigned (and unsigned catalogs are not allowed)");
	g_clear_error(&error);
	bundle = open_bundle(f, dir, TRUE, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(bundle->key_id, ==, "unsigned");
	g_assert_null(bundle->catalog_sig);
	g_assert_cmpuint(bundle->modules->len, ==, f->catalog->modules->len);
	g_clear_pointer(&bundle, healer_bundle_free);
	/* A signature that is there is checked even with allow_unsigned. */
	test_write_file(sig, (const guint8 *)"short", 5);
	bundle = open_bundle(f, dir, TRUE, &error);
	expect_refused(f, bundle, error, HEALER_ERROR_INVALID_DATA, "catalog signature is 5 bytes");
}

/* ---- healerctl export ---- */

static char *
make_state_dir(Fixture *f, const char *dir_name, const char *const *paths)
{
	char *state = g_build_filename(f->tmp, dir_name, NULL);
	g_autofree char *catalogs = g_build_filename(state, "catalogs", NULL);
	g_autofree char *store = g_build_filename(state, "store", NULL);
	g_autofree char *json_name = g_strconcat(f->key_id, ".json", NULL);
	g_autofree char *sig_name = g_strconcat(f->key_id, ".json.sig", NULL);
	g_autofree char *json_path = g_build_filename(catalogs, json_name, NULL);
	g_autofree char *sig_path = g_build_filename(catalogs, sig_name, NULL);

	g_assert_cmpint(g_mkdir_with_parents(catalogs, 0755), ==, 0);
	g_assert_cmpint(g_mkdir_with_parents(store, 0755), ==, 0);
	test_write_file(json_path, g_bytes_get_data(f->catalog_json, NULL), g_bytes_get_size(f->catalog_json));
	test_write_file(sig_path, g_bytes_get_data(f->catalog_sig, NULL), g_bytes_get_size(f->catalog_sig));
	for (guint i = 0; i < f->catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(f->catalog->modules, i);
		g_autofree char *hex = NULL, *name = NULL, *path = NULL;
		g_autoptr(GBytes) data = NULL;

		if (!g_strv_contains(paths, module->path))
			continue;
		hex = healer_sha256_to_hex(module->sha256);
		name = g_strconcat(hex, ".bin", NULL);
		path = g_build_filename(store, name, NULL);
		data = read_from_dir(module, (gpointer)f->modules_dir, NULL);
		test_write_file(path, g_bytes_get_data(data, NULL), g_bytes_get_size(data));
	}
	return state;
}

static void
run_export(TestRun *run, const char *state, const char *const *options, const char *dest)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (gpointer)test_program("HEALERCTL"));
	g_ptr_array_add(argv, "export");
	if (state != NULL) {
		g_ptr_array_add(argv, "--state-dir");
		g_ptr_array_add(argv, (gpointer)state);
	}
	for (guint i = 0; options != NULL && options[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)options[i]);
	if (dest != NULL)
		g_ptr_array_add(argv, (gpointer)dest);
	g_ptr_array_add(argv, NULL);
	test_run(run, (const char *const *)argv->pdata);
	g_test_message("healerctl export ... %s: exit %d\n%s%s", dest ? dest : "", run->exit_status, run->out,
	               run->err);
}

static void
expect_bundle(Fixture *f, const char *dest, const char *const *paths)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = open_bundle(f, dest, FALSE, &error);

	g_assert_no_error(error);
	g_assert_true(bundle->has_manifest);
	g_assert_cmpuint(bundle->modules->len, ==, g_strv_length((char **)paths));
	for (guint i = 0; i < bundle->modules->len; i++) {
		const HealerBundleModule *m = g_ptr_array_index(bundle->modules, i);
		g_assert_true(g_strv_contains(paths, m->module->path));
	}
	check_staged(bundle);
}

static void
test_export_cli(Fixture *f, gconstpointer data)
{
	static const char *const stored[] = {"1.2.0/bootloader.bin",   "1.2.0/system-part1.bin",
	                                     "1.2.0/system-part2.bin", "2.1.0/system-part1.bin",
	                                     "apps/tinker.bin",        NULL};
	static const char *const r120[] = {"1.2.0/bootloader.bin", "1.2.0/system-part1.bin", "1.2.0/system-part2.bin",
	                                   NULL};
	g_autofree char *state = make_state_dir(f, "state", stored);
	g_autofree char *dir = g_build_filename(f->tmp, "export-dir", NULL);
	g_autofree char *tar = g_build_filename(f->tmp, "export.tar", NULL);
	g_autofree char *txz = g_build_filename(f->tmp, "export.tar.xz", NULL);
	g_autofree char *unused = g_build_filename(f->tmp, "unused.tar", NULL);
	g_autofree char *missing_state = g_build_filename(f->tmp, "no-state", NULL);
	g_autofree char *expected = NULL;
	g_autofree char *short_id = g_strndup(f->key_id, 6);

	(void)data;
	/* Everything the store holds of the catalog. */
	{
		g_auto(TestRun) run = {0};
		run_export(&run, state, NULL, dir);
		g_assert_cmpint(run.exit_status, ==, 0);
		expected = g_strdup_printf("exported 5 modules (");
		g_assert_true(g_str_has_prefix(run.out, expected));
		g_free(expected);
		expected = g_strdup_printf(" KiB) of catalog %s serial 1 to %s\n", f->key_id, dir);
		g_assert_nonnull(strstr(run.out, expected));
		g_assert_nonnull(strstr(run.out, "left out 17 matching modules the store does not hold"));
		expect_bundle(f, dir, stored);
	}
	/* One release, as an archive, by platform name. */
	{
		g_auto(TestRun) run = {0};
		const char *options[] = {"--release", "1.2.0", "--platform", "gcc", NULL};
		run_export(&run, state, options, tar);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_true(g_str_has_prefix(run.out, "exported 3 modules ("));
		expect_bundle(f, tar, r120);
	}
	/* --json, a platform id. */
	{
		g_auto(TestRun) run = {0};
		const char *options[] = {"--release", "1.2.0",     "--platform", "3",
		                         "--json",    "--catalog", short_id,     NULL};
		g_autoptr(json_object) root = NULL;
		json_object *val = NULL;

		run_export(&run, state, options, txz);
		g_assert_cmpint(run.exit_status, ==, 0);
		root = json_tokener_parse(run.out);
		g_assert_nonnull(root);
		g_assert_true(json_object_object_get_ex(root, "modules", &val));
		g_assert_cmpint(json_object_get_int(val), ==, 3);
		g_assert_true(json_object_object_get_ex(root, "catalog", &val));
		g_assert_cmpstr(json_object_get_string(val), ==, f->key_id);
		g_assert_true(json_object_object_get_ex(root, "serial", &val));
		g_assert_cmpint(json_object_get_int(val), ==, 1);
		expect_bundle(f, txz, r120);
	}
	/* An unknown release: 3, naming the known ones. */
	{
		g_auto(TestRun) run = {0};
		const char *options[] = {"--release", "9.9.9", NULL};
		run_export(&run, state, options, unused);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_assert_nonnull(strstr(run.err, "no release \"9.9.9\" in the catalog (it has 1.0.0, 1.1.0"));
		g_assert_false(g_file_test(unused, G_FILE_TEST_EXISTS));
	}
	/* A release the store holds nothing of, a platform it has nothing for: 3. */
	{
		g_auto(TestRun) run = {0};
		const char *options[] = {"--release", "1.0.0", NULL};
		run_export(&run, state, options, unused);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_assert_nonnull(strstr(run.err, "nothing to export"));
	}
	{
		g_auto(TestRun) run = {0};
		const char *options[] = {"--platform", "photon", NULL};
		run_export(&run, state, options, unused);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_assert_nonnull(strstr(run.err, "nothing to export"));
	}
	/* Usage: an unknown platform name, no DEST, an existing directory. */
	{
		g_auto(TestRun) run = {0};
		const char *options[] = {"--platform", "toaster", NULL};
		run_export(&run, state, options, unused);
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_nonnull(strstr(run.err, "unknown platform 'toaster'"));
	}
	{
		g_auto(TestRun) run = {0};
		run_export(&run, state, NULL, NULL);
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_nonnull(strstr(run.err, "no destination given"));
	}
	{
		g_auto(TestRun) run = {0};
		run_export(&run, state, NULL, dir);
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_nonnull(strstr(run.err, "already exists"));
	}
	/* No state directory: 3, saying so. */
	{
		g_auto(TestRun) run = {0};
		run_export(&run, missing_state, NULL, unused);
		g_assert_cmpint(run.exit_status, ==, 3);
		g_free(expected);
		expected = g_strdup_printf("%s: no such directory (healerd's state directory; give --state-dir)",
		                           missing_state);
		g_assert_nonnull(strstr(run.err, expected));
	}
	/* A second catalog with stored modules: choose with --catalog. */
	{
		g_auto(TestRun) run = {0}, chosen = {0}, unknown = {0};
		g_autofree char *other = g_build_filename(state, "catalogs", "0000000000000000.json", NULL);
		const char *choose[] = {"--catalog", short_id, NULL};
		const char *bogus[] = {"--catalog", "ffff", NULL};
		g_autofree char *tar2 = g_build_filename(f->tmp, "chosen.tar", NULL);

		test_write_file(other, g_bytes_get_data(f->catalog_json, NULL), g_bytes_get_size(f->catalog_json));
		run_export(&run, state, NULL, unused);
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_nonnull(strstr(run.err, "several catalogs"));
		g_assert_nonnull(strstr(run.err, "0000000000000000"));
		g_assert_nonnull(strstr(run.err, f->key_id));
		run_export(&chosen, state, choose, tar2);
		g_assert_cmpint(chosen.exit_status, ==, 0);
		expect_bundle(f, tar2, stored);
		run_export(&unknown, state, bogus, unused);
		g_assert_cmpint(unknown.exit_status, ==, 3);
		g_assert_nonnull(strstr(unknown.err, "no catalog 'ffff'"));
		g_unlink(other);
	}
	/* A damaged store file: 1, naming it; nothing written. */
	{
		g_auto(TestRun) run = {0};
		const HealerCatalogModule *module = NULL;
		g_autofree char *hex = NULL, *name = NULL, *path = NULL;

		for (guint i = 0; i < f->catalog->modules->len; i++) {
			module = g_ptr_array_index(f->catalog->modules, i);
			if (strcmp(module->path, "apps/tinker.bin") == 0)
				break;
		}
		hex = healer_sha256_to_hex(module->sha256);
		name = g_strconcat(hex, ".bin", NULL);
		path = g_build_filename(state, "store", name, NULL);
		flip_byte(path, 100);
		run_export(&run, state, NULL, unused);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_nonnull(strstr(run.err, "(apps/tinker.bin): SHA-256 mismatch"));
		g_assert_false(g_file_test(unused, G_FILE_TEST_EXISTS));
	}
}

/*
 * Without healer-archive.so (libarchive is loaded through it on first use):
 * tar bundles are refused with an error naming the module, leaving nothing
 * behind; directory bundles need no module and still work.  In a
 * subprocess, since a module once loaded stays loaded.
 */
static void
test_module_missing(Fixture *f, gconstpointer data)
{
	(void)data;
	if (g_test_subprocess()) {
		g_autofree char *empty = g_build_filename(f->tmp, "no-modules", NULL);
		g_autofree char *dir_dest = g_build_filename(f->tmp, "bundle-dir", NULL);
		g_autofree char *tar_dest = g_build_filename(f->tmp, "bundle.tar.gz", NULL);
		g_autofree char *not_tar = g_build_filename(f->tmp, "other.tar", NULL);
		g_autoptr(GPtrArray) selected = select_modules(f, -1, NULL);
		g_autoptr(HealerBundle) bundle = NULL;
		g_autoptr(GError) error = NULL;

		g_assert_cmpint(g_mkdir(empty, 0755), ==, 0);
		g_setenv("HEALER_MODULE_DIR", empty, TRUE);

		g_assert_false(healer_bundle_write(tar_dest, f->catalog_json, f->catalog_sig, f->catalog, selected,
		                                   read_from_dir, (gpointer)f->modules_dir, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
		g_assert_nonnull(strstr(error->message, "cannot write tar archives: cannot load "));
		g_assert_nonnull(strstr(error->message, "no-modules/healer-archive.so: No such file or directory"));
		g_test_message("%s", error->message);
		g_clear_error(&error);
		/* the empty module directory and the staging parent: no temporary file */
		g_assert_cmpuint(count_entries(f->tmp), ==, 1);

		test_write_file(not_tar, (const guint8 *)"x", 1);
		bundle = open_bundle(f, not_tar, FALSE, &error);
		expect_refused(f, bundle, error, HEALER_ERROR_NOT_FOUND, "cannot read tar archives: cannot load ");
		g_assert_nonnull(strstr(error->message, "healer-archive.so"));
		g_clear_error(&error);

		/* Not a shared object: dlopen()'s own reason. */
		{
			g_autofree char *junk = g_build_filename(empty, "healer-archive.so", NULL);
			test_write_file(junk, (const guint8 *)"not ELF", 7);
			bundle = open_bundle(f, not_tar, FALSE, &error);
			expect_refused(f, bundle, error, HEALER_ERROR_FAILED, "cannot read tar archives: cannot load ");
			g_assert_nonnull(strstr(error->message, "no-modules/healer-archive.so: "));
			g_assert_nonnull(strstr(error->message, "file too short"));
			g_clear_error(&error);
		}

		write_bundle(f, dir_dest, selected);
		bundle = open_bundle(f, dir_dest, FALSE, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(bundle->modules->len, ==, selected->len);
		check_staged(bundle);
		return;
	}
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(name, func) g_test_add("/bundle/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
	ADD("open-build-dir", test_open_build_dir);
	ADD("select", test_select);
	ADD("write-and-reopen", test_write_and_reopen);
	ADD("write-refusals", test_write_refusals);
	ADD("truncated", test_truncated);
	ADD("tampered-module", test_tampered_module);
	ADD("tampered-catalog", test_tampered_catalog);
	ADD("wrong-key", test_wrong_key);
	ADD("missing-and-extra", test_missing_and_extra);
	ADD("directory-faults", test_directory_faults);
	ADD("symlinks-in-directory", test_symlinks_in_directory);
	ADD("manifest", test_manifest);
	ADD("unsafe-entries", test_unsafe_entries);
	ADD("limits", test_limits);
	ADD("content-detection", test_content_detection);
	ADD("open-fd", test_open_fd);
	ADD("unsigned", test_unsigned);
	ADD("export-cli", test_export_cli);
	ADD("module-missing", test_module_missing);
#undef ADD
	return g_test_run();
}
