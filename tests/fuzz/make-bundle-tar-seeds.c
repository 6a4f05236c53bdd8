/*
 * Writes corpus/bundle-tar/ (README.md): tar bundles for fuzz-bundle-tar,
 * made with libarchive.  An unsigned catalog of two small modules (the
 * target allows unsigned catalogs), valid in several compressions and tar
 * dialects, and one seed for each way the reader refuses an archive.
 * Deterministic (fixed times, owners and modes).  Built on request only:
 *
 *     ninja -C build tests/fuzz/make-bundle-tar-seeds
 *     build/tests/fuzz/make-bundle-tar-seeds tests/fuzz/corpus/bundle-tar
 */
#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

static const char module_a[] = "module A: a system part";
static const char module_b[] = "module B, an application";

typedef enum { FORMAT_PAX, FORMAT_GNU } Format;

typedef struct {
	struct archive *a;
} Seed;

static char *
sha256_hex(const char *data)
{
	return g_compute_checksum_for_string(G_CHECKSUM_SHA256, data, -1);
}

static char *
catalog_json(void)
{
	g_autofree char *a = sha256_hex(module_a), *b = sha256_hex(module_b);

	return g_strdup_printf(
	        "{\"format\": \"healer-catalog\", \"format_version\": 1, \"serial\": 7, "
	        "\"created\": \"2026-01-31T12:00:00Z\", \"modules\": ["
	        "{\"platform_id\": 6, \"function\": \"system-part\", \"index\": 1, \"version\": 1, \"release\": "
	        "\"1.0.0\", \"prerelease\": false, \"size\": %zu, \"sha256\": \"%s\", \"module_sha256\": \"%s\", "
	        "\"dependencies\": [], \"path\": \"1.0.0/system-part1.bin\"}, "
	        "{\"platform_id\": 6, \"function\": \"user-part\", \"index\": 1, \"version\": 3, \"release\": null, "
	        "\"prerelease\": false, \"size\": %zu, \"sha256\": \"%s\", \"module_sha256\": \"%s\", "
	        "\"dependencies\": [], \"path\": \"apps/b.bin\"}], "
	        "\"releases\": [{\"name\": \"1.0.0\", \"modules\": [\"%s\"]}]}\n",
	        strlen(module_a), a, a, strlen(module_b), b, b, a);
}

static char *
manifest_json(void)
{
	g_autofree char *a = sha256_hex(module_a), *b = sha256_hex(module_b);

	return g_strdup_printf(
	        "{\"format\": \"healer-bundle\", \"format_version\": 1, \"modules\": [\"%s\", \"%s\"]}\n", a, b);
}

static void
seed_open(Seed *s, const char *dir, const char *name, Format format, int (*filter)(struct archive *))
{
	g_autofree char *path = g_build_filename(dir, name, NULL);

	s->a = archive_write_new();
	if (format == FORMAT_GNU)
		archive_write_set_format_gnutar(s->a);
	else
		archive_write_set_format_pax_restricted(s->a);
	if (filter != NULL)
		filter(s->a);
	if (filter == archive_write_add_filter_gzip)
		archive_write_set_filter_option(s->a, "gzip", "timestamp", NULL);
	/* Small seeds: no padding to 10 KiB blocks; unblocked so an abandoned seed keeps what was written. */
	archive_write_set_bytes_per_block(s->a, 0);
	if (archive_write_open_filename(s->a, path) != ARCHIVE_OK)
		g_error("%s: %s", path, archive_error_string(s->a));
}

/* An entry of `type`, declaring `declared` bytes (-1: len), `len` bytes of data. */
static void
seed_add_full(Seed *s, const char *name, mode_t type, const char *data, gsize len, gint64 declared, gboolean sparse,
              const char *link, gboolean hard)
{
	struct archive_entry *e = archive_entry_new();

	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_mtime(e, 1769860800, 0);
	if (hard)
		archive_entry_set_hardlink(e, link);
	else if (link != NULL)
		archive_entry_set_symlink(e, link);
	archive_entry_set_size(e, declared >= 0 ? declared : (gint64)len);
	if (sparse)
		archive_entry_sparse_add_entry(e, declared - (gint64)len, (gint64)len);
	if (archive_write_header(s->a, e) != ARCHIVE_OK)
		g_error("%s: %s", name, archive_error_string(s->a));
	if (len > 0 && archive_write_data(s->a, data, len) != (la_ssize_t)len)
		g_error("%s: %s", name, archive_error_string(s->a));
	archive_entry_free(e);
}

static void
seed_add(Seed *s, const char *name, const char *data)
{
	seed_add_full(s, name, AE_IFREG, data, strlen(data), -1, FALSE, NULL, FALSE);
}

/* catalog.json, bundle.json (unless !manifest) and both modules, names after `prefix`. */
static void
seed_add_bundle(Seed *s, const char *prefix, gboolean manifest)
{
	g_autofree char *catalog = catalog_json(), *bundle = manifest_json();
	g_autofree char *n1 = g_strconcat(prefix, "catalog.json", NULL), *n2 = g_strconcat(prefix, "bundle.json", NULL);
	g_autofree char *n3 = g_strconcat(prefix, "1.0.0/system-part1.bin", NULL);
	g_autofree char *n4 = g_strconcat(prefix, "apps/b.bin", NULL);

	seed_add(s, n1, catalog);
	if (manifest)
		seed_add(s, n2, bundle);
	seed_add(s, n3, module_a);
	seed_add(s, n4, module_b);
}

static void
seed_close(Seed *s)
{
	if (archive_write_close(s->a) != ARCHIVE_OK)
		g_error("close: %s", archive_error_string(s->a));
	archive_write_free(s->a);
}

/* Stops after what was written: no end-of-archive blocks, no padding to what a header declared. */
static void
seed_abandon(Seed *s, gboolean filtered)
{
	archive_write_fail(s->a);
	if (filtered)
		archive_write_close(s->a);
	archive_write_free(s->a);
}

int
main(int argc, char **argv)
{
	g_autofree char *catalog = catalog_json();
	const char *dir;
	Seed s;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	g_mkdir_with_parents(dir, 0755);

	/* Accepted. */
	seed_open(&s, dir, "valid.tar", FORMAT_PAX, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add(&s, "releases.json", "{\"releases\": []}\n");
	seed_close(&s);
	seed_open(&s, dir, "valid.tar.gz", FORMAT_PAX, archive_write_add_filter_gzip);
	seed_add_bundle(&s, "", TRUE);
	seed_close(&s);
	seed_open(&s, dir, "valid.tar.xz", FORMAT_PAX, archive_write_add_filter_xz);
	seed_add_bundle(&s, "", FALSE);
	seed_close(&s);
	seed_open(&s, dir, "valid.tar.zst", FORMAT_PAX, archive_write_add_filter_zstd);
	seed_add_bundle(&s, "", TRUE);
	seed_close(&s);
	seed_open(&s, dir, "valid.tar.bz2", FORMAT_PAX, archive_write_add_filter_bzip2);
	seed_add_bundle(&s, "", TRUE);
	seed_close(&s);
	seed_open(&s, dir, "valid-gnu-dot-slash.tar", FORMAT_GNU, NULL);
	seed_add_full(&s, "./", AE_IFDIR, NULL, 0, 0, FALSE, NULL, FALSE);
	seed_add_full(&s, "./apps/", AE_IFDIR, NULL, 0, 0, FALSE, NULL, FALSE);
	seed_add_bundle(&s, "./", FALSE);
	seed_close(&s);

	/* Refused: one rule each. */
	{
		g_autofree char *name = g_strnfill(4097, 'n');
		seed_open(&s, dir, "long-name.tar", FORMAT_PAX, NULL);
		seed_add_bundle(&s, "", TRUE);
		seed_add(&s, name, "x");
		seed_close(&s);
		seed_open(&s, dir, "long-gnu-name.tar", FORMAT_GNU, NULL);
		seed_add(&s, name, "x");
		seed_close(&s);
	}
	{
		/* 200 names of 4000 bytes: each allowed, too many together. */
		seed_open(&s, dir, "names-total.tar.zst", FORMAT_PAX, archive_write_add_filter_zstd);
		for (guint i = 0; i < 200; i++) {
			g_autofree char *fill = g_strnfill(4000, 'm');
			g_autofree char *name = g_strdup_printf("%03u%s.json", i, fill);
			seed_add(&s, name, "");
		}
		seed_close(&s);
	}
	seed_open(&s, dir, "too-many-entries.tar.zst", FORMAT_PAX, archive_write_add_filter_zstd);
	for (guint i = 0; i < 4097; i++) {
		g_autofree char *name = g_strdup_printf("d%u/", i);
		seed_add_full(&s, name, AE_IFDIR, NULL, 0, 0, FALSE, NULL, FALSE);
	}
	seed_close(&s);
	seed_open(&s, dir, "skipped-declares-2g.tar.gz", FORMAT_PAX, archive_write_add_filter_gzip);
	seed_add_bundle(&s, "", TRUE);
	seed_add_full(&s, "notes.json", AE_IFREG, "{}", 2, 2306867200, FALSE, NULL, FALSE);
	seed_abandon(&s, TRUE);
	seed_open(&s, dir, "sparse-50g.tar", FORMAT_PAX, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add_full(&s, "extra.bin", AE_IFREG, "sparse!", 7, 50LL << 30, TRUE, NULL, FALSE);
	seed_close(&s);
	{
		/* One byte more than the catalog's size: refused from the header in the second pass. */
		g_autofree char *longer = g_strconcat(module_b, "!", NULL);
		seed_open(&s, dir, "module-declares-more.tar", FORMAT_PAX, NULL);
		seed_add(&s, "catalog.json", catalog);
		seed_add(&s, "1.0.0/system-part1.bin", module_a);
		seed_add(&s, "apps/b.bin", longer);
		seed_close(&s);
	}
	seed_open(&s, dir, "catalog-declares-17m.tar", FORMAT_PAX, NULL);
	seed_add_full(&s, "catalog.json", AE_IFREG, "{", 1, 17 * 1024 * 1024, FALSE, NULL, FALSE);
	seed_abandon(&s, FALSE);
	seed_open(&s, dir, "symlink.tar", FORMAT_PAX, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add_full(&s, "link.json", AE_IFLNK, NULL, 0, 0, FALSE, "/etc/shadow", FALSE);
	seed_close(&s);
	seed_open(&s, dir, "hardlink.tar", FORMAT_GNU, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add_full(&s, "hard.json", AE_IFREG, NULL, 0, 0, FALSE, "catalog.json", TRUE);
	seed_close(&s);
	seed_open(&s, dir, "duplicate.tar", FORMAT_PAX, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add(&s, "./apps/b.bin", module_b);
	seed_close(&s);
	seed_open(&s, dir, "unsafe-path.tar", FORMAT_PAX, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add(&s, "../x.json", "{}");
	seed_close(&s);
	seed_open(&s, dir, "tampered-module.tar", FORMAT_PAX, NULL);
	seed_add(&s, "catalog.json", catalog);
	seed_add(&s, "1.0.0/system-part1.bin", "module A: a system parT");
	seed_add(&s, "apps/b.bin", module_b);
	seed_close(&s);
	seed_open(&s, dir, "truncated.tar", FORMAT_PAX, NULL);
	seed_add_bundle(&s, "", TRUE);
	seed_add_full(&s, "1.0.0/later.json", AE_IFREG, "{}", 2, 4096, FALSE, NULL, FALSE);
	seed_abandon(&s, FALSE);
	return 0;
}
