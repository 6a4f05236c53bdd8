/*
 * Offline bundles (bundle.h, docs/bundles.md): reading a directory or a tar
 * archive with every file checked against the signed catalog, and writing
 * one, atomically.
 */
#define _GNU_SOURCE /* renameat2 */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "healer-archive.h"
#include "healer-error.h"
#include "healer-json.h"
#include "healer-loadable.h"
#include "json-autoptr.h"
#include "module-inventory.h"

#define CHUNK_SIZE (64 * 1024)
#define MAX_DEPTH  32
#define MAX_SIG    4096 /* a signature file is read up to this; the catalog code says what is wrong with it */

/* ------------------------------------------------------------------------ */
/* Helpers */

/* A name from outside, safe to print: escaped when it holds control characters or is not UTF-8. */
static char *
printable(const char *name)
{
	if (g_utf8_validate(name, -1, NULL)) {
		gboolean plain = TRUE;
		for (const char *p = name; *p != '\0'; p++)
			if ((guchar)*p < 0x20 || *p == 0x7f)
				plain = FALSE;
		if (plain)
			return g_strdup(name);
	}
	return g_strescape(name, NULL);
}

static gboolean
write_all(int fd, const guint8 *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

/* Removes a directory tree without following symbolic links (for what this file created). */
static void
remove_tree_at(int parent_fd, const char *name)
{
	int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir;
	struct dirent *de;

	if (fd < 0) {
		unlinkat(parent_fd, name, 0);
		return;
	}
	dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			remove_tree_at(dirfd(dir), de->d_name);
		else
			unlinkat(dirfd(dir), de->d_name, 0);
	}
	closedir(dir);
	unlinkat(parent_fd, name, AT_REMOVEDIR);
}

static void
remove_tree(const char *path)
{
	remove_tree_at(AT_FDCWD, path);
}

static void
sync_directory(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/*
 * libarchive comes from healer-archive.so, loaded by the first tar archive
 * read or written: directory bundles never need it.
 */
const HealerArchiveFuncs *
healer_archive_funcs(GError **error)
{
	return healer_loadable_get(HEALER_ARCHIVE_MODULE, HEALER_ARCHIVE_GETTER, HEALER_ARCHIVE_ABI_VERSION, error);
}

/* ------------------------------------------------------------------------ */
/* bundle.json and selection */

GPtrArray *
healer_bundle_manifest_parse(const guint8 *json, gsize len, const HealerCatalog *catalog, GError **error)
{
	static const char *const keys[] = {"format", "format_version", "modules", NULL};
	g_autoptr(json_object) root = NULL;
	g_autoptr(GHashTable) known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) carried = g_ptr_array_new();
	json_object *modules = NULL;

	root = healer_json_parse(json, len, "bundle manifest", error);
	if (root == NULL ||
	    !healer_json_check_format(root, HEALER_BUNDLE_FORMAT, HEALER_BUNDLE_FORMAT_VERSION, error) ||
	    !healer_json_check_keys(root, "", keys, error) ||
	    !healer_json_get_array(root, "modules", "", G_MAXSIZE, &modules, error))
		return NULL;
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);
		g_hash_table_add(known, healer_sha256_to_hex(module->sha256));
	}
	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		g_autofree char *at = healer_json_path_index("modules", i);
		json_object *val = json_object_array_get_idx(modules, i);
		const char *s;

		if (!healer_json_value_hex(val, at, HEALER_SHA256_SIZE, HEALER_JSON_HEX_LOWER, NULL, error))
			return NULL;
		s = json_object_get_string(val);
		if (!g_hash_table_contains(known, s)) {
			healer_json_fail(error, "%s: %s is not one of the catalog's modules", at, s);
			return NULL;
		}
		if (!g_hash_table_add(listed, (gpointer)s)) {
			healer_json_fail(error, "%s: %s is listed twice", at, s);
			return NULL;
		}
	}
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);
		g_autofree char *hex = healer_sha256_to_hex(module->sha256);
		if (g_hash_table_contains(listed, hex))
			g_ptr_array_add(carried, (gpointer)module);
	}
	return g_steal_pointer(&carried);
}

GPtrArray *
healer_catalog_select(const HealerCatalog *catalog, int platform_id, const char *release, GError **error)
{
	g_autoptr(GHashTable) shas = NULL;
	g_autoptr(GPtrArray) selected = g_ptr_array_new();

	if (release != NULL) {
		const HealerCatalogRelease *found = NULL;

		for (guint i = 0; found == NULL && i < catalog->releases->len; i++) {
			const HealerCatalogRelease *r = g_ptr_array_index(catalog->releases, i);
			if (strcmp(r->name, release) == 0)
				found = r;
		}
		if (found == NULL) {
			g_autoptr(GString) names = g_string_new(NULL);
			g_autofree char *name = printable(release);

			for (guint i = 0; i < catalog->releases->len; i++) {
				const HealerCatalogRelease *r = g_ptr_array_index(catalog->releases, i);
				g_string_append_printf(names, "%s%s", i > 0 ? ", " : "", r->name);
			}
			healer_fail(error, HEALER_ERROR_NOT_FOUND, "no release \"%s\" in the catalog (%s%s)", name,
			            names->len > 0 ? "it has " : "it lists no releases", names->str);
			return NULL;
		}
		shas = g_hash_table_new(g_str_hash, g_str_equal);
		for (guint i = 0; i < found->modules->len; i++)
			g_hash_table_add(shas, g_ptr_array_index(found->modules, i));
	}
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);
		g_autofree char *hex = NULL;

		if (platform_id >= 0 && module->platform_id != platform_id)
			continue;
		if (shas != NULL) {
			hex = healer_sha256_to_hex(module->sha256);
			if (!g_hash_table_contains(shas, hex))
				continue;
		}
		g_ptr_array_add(selected, (gpointer)module);
	}
	return g_steal_pointer(&selected);
}

/* ------------------------------------------------------------------------ */
/* Reading */

static void
bundle_module_free(gpointer data)
{
	HealerBundleModule *module = data;

	g_free(module->staged_path);
	g_free(module);
}

void
healer_bundle_free(HealerBundle *bundle)
{
	if (bundle == NULL)
		return;
	if (bundle->staging_dir != NULL)
		remove_tree(bundle->staging_dir);
	g_free(bundle->staging_dir);
	if (bundle->modules != NULL)
		g_ptr_array_unref(bundle->modules);
	g_free(bundle->key_id);
	healer_catalog_free(bundle->catalog);
	if (bundle->catalog_sig != NULL)
		g_bytes_unref(bundle->catalog_sig);
	if (bundle->catalog_json != NULL)
		g_bytes_unref(bundle->catalog_json);
	g_free(bundle->source);
	g_free(bundle);
}

typedef struct {
	HealerBundle *bundle;
	GPtrArray *carried;        /* const HealerCatalogModule*, in catalog order */
	GHashTable *catalog_paths; /* path -> const HealerCatalogModule*: every module of the catalog */
	GHashTable *carried_paths; /* path -> const HealerCatalogModule*: the carried ones */
	GHashTable *staged;        /* sha256 hex -> staged path (owned here) */
	guint8 *buffer;            /* CHUNK_SIZE */
} OpenState;

static void
open_state_clear(OpenState *st)
{
	g_clear_pointer(&st->carried, g_ptr_array_unref);
	g_clear_pointer(&st->catalog_paths, g_hash_table_unref);
	g_clear_pointer(&st->carried_paths, g_hash_table_unref);
	g_clear_pointer(&st->staged, g_hash_table_unref);
	g_clear_pointer(&st->buffer, g_free);
}

/* Where module bytes come from: an archive entry's data or a file. */
typedef struct {
	const HealerArchiveFuncs *af;
	HealerArchiveReader *archive; /* or */
	int fd;
	int saved_errno;
} Input;

static gssize
input_read(Input *in, guint8 *buf, gsize len)
{
	if (in->archive != NULL)
		return in->af->reader_read(in->archive, buf, len);
	for (;;) {
		ssize_t n = read(in->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			in->saved_errno = errno;
		return n;
	}
}

/* "truncated archive (libarchive's message)" or "damaged archive (...)". */
static char *
archive_fault(Input *in)
{
	const char *message = in->af->reader_error(in->archive);

	if (message == NULL)
		message = "unknown error";
	if (strstr(message, "runcated") != NULL || strstr(message, "premature end") != NULL)
		return g_strdup_printf("truncated archive (%s)", message);
	return g_strdup_printf("damaged archive (%s)", message);
}

/*
 * Reads the rest of `in` as `module`'s bytes, at most one byte past its
 * catalog size, hashing them, and writes them to the staging directory
 * (unless a module with the same SHA-256 was staged already).
 */
static gboolean
stage_module(OpenState *st, const HealerCatalogModule *module, Input *in, GError **error)
{
	HealerBundle *bundle = st->bundle;
	g_autofree char *hex = healer_sha256_to_hex(module->sha256);
	g_autofree char *dest = NULL;
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	guint8 digest[HEALER_SHA256_SIZE];
	gsize digest_len = sizeof(digest);
	guint64 total = 0;
	int out = -1;
	gboolean ok = FALSE;

	if (!g_hash_table_contains(st->staged, hex)) {
		dest = g_strdup_printf("%s/%s.bin", bundle->staging_dir, hex);
		out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (out < 0) {
			int saved = errno;
			return healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot stage it in %s: %s", bundle->source,
			                   module->path, bundle->staging_dir, g_strerror(saved));
		}
	}
	for (;;) {
		guint64 left = module->size >= total ? module->size - total : 0;
		gsize want = CHUNK_SIZE;
		gssize n;

		if (left < G_MAXUINT64)
			left++; /* one byte more tells a file that is too long */
		if (want > left)
			want = (gsize)left;
		n = input_read(in, st->buffer, want);
		if (n < 0) {
			if (in->archive != NULL) {
				g_autofree char *fault = archive_fault(in);
				healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: %s", bundle->source,
				            module->path, fault);
			} else {
				healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot read: %s", bundle->source,
				            module->path, g_strerror(in->saved_errno));
			}
			goto out;
		}
		if (n == 0)
			break;
		total += (guint64)n;
		if (total > module->size) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: %s: size mismatch (expected %" G_GUINT64_FORMAT " bytes, got more)",
			            bundle->source, module->path, module->size);
			goto out;
		}
		g_checksum_update(sum, st->buffer, (gssize)n);
		if (out >= 0 && !write_all(out, st->buffer, (gsize)n)) {
			int saved = errno;
			healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot write %s: %s", bundle->source, module->path,
			            dest, g_strerror(saved));
			goto out;
		}
	}
	if (total != module->size) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: size mismatch (expected %" G_GUINT64_FORMAT " bytes, got %" G_GUINT64_FORMAT ")",
		            bundle->source, module->path, module->size, total);
		goto out;
	}
	g_checksum_get_digest(sum, digest, &digest_len);
	if (memcmp(digest, module->sha256, sizeof(digest)) != 0) {
		g_autofree char *got = healer_sha256_to_hex(digest);
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: SHA-256 mismatch (expected %s, got %s)",
		            bundle->source, module->path, hex, got);
		goto out;
	}
	ok = TRUE;
out:
	if (out >= 0) {
		if (close(out) != 0 && ok) {
			int saved = errno;
			ok = healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot write %s: %s", bundle->source,
			                 module->path, dest, g_strerror(saved));
		}
		if (ok)
			g_hash_table_insert(st->staged, g_steal_pointer(&hex), g_steal_pointer(&dest));
	}
	return ok;
}

/*
 * With catalog.json, its signature (NULL when absent) and bundle.json
 * (NULL when absent) in hand: verifies and parses them, and works out the
 * carried modules.
 */
static gboolean
load_metadata(OpenState *st, GBytes *catalog_json, GBytes *sig, GBytes *manifest, GPtrArray *trusted_keys,
              gboolean allow_unsigned, GError **error)
{
	HealerBundle *bundle = st->bundle;
	gsize len = 0, sig_len = 0;
	const guint8 *data, *sig_data = NULL;

	if (catalog_json == NULL)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: missing (not a bundle)", bundle->source,
		                   HEALER_BUNDLE_CATALOG);
	bundle->catalog_json = g_bytes_ref(catalog_json);
	bundle->catalog_sig = sig != NULL ? g_bytes_ref(sig) : NULL;
	data = g_bytes_get_data(catalog_json, &len);
	if (sig != NULL)
		sig_data = g_bytes_get_data(sig, &sig_len);
	if (sig_data == NULL && sig != NULL)
		sig_data = (const guint8 *)""; /* an empty signature file is a signature of 0 bytes */
	bundle->catalog = healer_catalog_load_signed(data != NULL ? data : (const guint8 *)"", len, sig_data, sig_len,
	                                             trusted_keys, allow_unsigned, &bundle->key_id, error);
	if (bundle->catalog == NULL) {
		g_prefix_error(error, "%s: %s: ", bundle->source, HEALER_BUNDLE_CATALOG);
		return FALSE;
	}
	if (manifest != NULL) {
		const guint8 *mdata = g_bytes_get_data(manifest, &len);
		st->carried = healer_bundle_manifest_parse(mdata != NULL ? mdata : (const guint8 *)"", len,
		                                           bundle->catalog, error);
		if (st->carried == NULL) {
			g_prefix_error(error, "%s: %s: ", bundle->source, HEALER_BUNDLE_MANIFEST);
			return FALSE;
		}
		bundle->has_manifest = TRUE;
	} else {
		st->carried = g_ptr_array_new();
		for (guint i = 0; i < bundle->catalog->modules->len; i++)
			g_ptr_array_add(st->carried, g_ptr_array_index(bundle->catalog->modules, i));
	}
	st->catalog_paths = g_hash_table_new(g_str_hash, g_str_equal);
	st->carried_paths = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < bundle->catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(bundle->catalog->modules, i);
		g_hash_table_insert(st->catalog_paths, module->path, (gpointer)module);
	}
	for (guint i = 0; i < st->carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(st->carried, i);
		g_hash_table_insert(st->carried_paths, module->path, (gpointer)module);
	}
	return TRUE;
}

/* A file found in the bundle that is neither metadata nor a carried module: why it is refused. */
static gboolean
check_file_listed(OpenState *st, const char *path, GError **error)
{
	g_autofree char *base = g_path_get_basename(path);
	g_autofree char *name = NULL;

	if (g_hash_table_contains(st->carried_paths, path) || healer_module_file_name_is_metadata(base))
		return TRUE;
	name = printable(path);
	if (g_hash_table_contains(st->catalog_paths, path))
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: %s: not carried by this bundle (%s does not list it)", st->bundle->source, name,
		                   HEALER_BUNDLE_MANIFEST);
	return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: not listed in the catalog", st->bundle->source,
	                   name);
}

/* Every file is allowed, and every carried module is there. */
static gboolean
check_listing(OpenState *st, GHashTable *files, GError **error)
{
	g_autoptr(GList) sorted = g_list_sort(g_hash_table_get_keys(files), (GCompareFunc)g_strcmp0);

	/* In name order, so the fault reported first does not depend on readdir's order. */
	for (GList *l = sorted; l != NULL; l = l->next)
		if (!check_file_listed(st, l->data, error))
			return FALSE;
	for (guint i = 0; i < st->carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(st->carried, i);
		if (!g_hash_table_contains(files, module->path))
			return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: missing (%s)", st->bundle->source,
			                   module->path,
			                   st->bundle->has_manifest
			                           ? "bundle.json lists it"
			                           : "the catalog lists it and there is no bundle.json");
	}
	return TRUE;
}

static gboolean
make_staging_dir(OpenState *st, const char *staging_parent, GError **error)
{
	g_autofree char *template = g_build_filename(staging_parent, "bundle-XXXXXX", NULL);

	if (g_mkdir_with_parents(staging_parent, 0750) != 0) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot create %s: %s", st->bundle->source,
		                   staging_parent, g_strerror(saved));
	}
	if (g_mkdtemp_full(template, 0750) == NULL) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot create a staging directory in %s: %s",
		                   st->bundle->source, staging_parent, g_strerror(saved));
	}
	st->bundle->staging_dir = g_steal_pointer(&template);
	return TRUE;
}

/* The bundle's module list, in catalog order, once everything is staged. */
static gboolean
finish_modules(OpenState *st, GError **error)
{
	HealerBundle *bundle = st->bundle;

	bundle->modules = g_ptr_array_new_with_free_func(bundle_module_free);
	for (guint i = 0; i < st->carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(st->carried, i);
		g_autofree char *hex = healer_sha256_to_hex(module->sha256);
		const char *staged = g_hash_table_lookup(st->staged, hex);
		HealerBundleModule *entry;

		if (staged == NULL)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: %s: missing (the bundle changed while it was read)", bundle->source,
			                   module->path);
		entry = g_new0(HealerBundleModule, 1);
		entry->module = module;
		entry->staged_path = g_strdup(staged);
		g_ptr_array_add(bundle->modules, entry);
	}
	return TRUE;
}

/*
 * Reads the rest of `in` into memory, failing past `max` bytes; `expected`
 * (what the header or fstat says, at most max) is allocated at once.
 */
static GBytes *
read_bounded(OpenState *st, Input *in, const char *name, gsize max, gsize expected, GError **error)
{
	g_autoptr(GByteArray) data = g_byte_array_sized_new((guint)MIN(expected, max));

	for (;;) {
		gssize n = input_read(in, st->buffer, CHUNK_SIZE);
		if (n < 0) {
			if (in->archive != NULL) {
				g_autofree char *fault = archive_fault(in);
				healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: %s", st->bundle->source, name,
				            fault);
			} else {
				healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot read: %s", st->bundle->source, name,
				            g_strerror(in->saved_errno));
			}
			return NULL;
		}
		if (n == 0)
			break;
		if (data->len + (gsize)n > max) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: larger than %" G_GSIZE_FORMAT " bytes",
			            st->bundle->source, name, max);
			return NULL;
		}
		g_byte_array_append(data, st->buffer, (guint)n);
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}

/* ---- archives ---- */

/*
 * The entry's path with any leading "./" and trailing '/' removed; "" for
 * the top directory itself; NULL when unsafe (absolute, an empty, "." or
 * ".." component).
 */
static char *
normalize_entry_path(const char *raw)
{
	const char *p = raw;
	g_autofree char *path = NULL;
	g_auto(GStrv) parts = NULL;
	gsize len;

	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0)
		return g_strdup("");
	if (p[0] == '/')
		return NULL;
	path = g_strdup(p);
	len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		path[--len] = '\0';
	if (len == 0)
		return g_strdup("");
	parts = g_strsplit(path, "/", -1);
	for (guint i = 0; parts[i] != NULL; i++)
		if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0 || strcmp(parts[i], "..") == 0)
			return NULL;
	return g_steal_pointer(&path);
}

/* What one pass over an archive has counted so far, for the limits in bundle.h. */
typedef struct {
	guint count;        /* entries */
	guint64 name_bytes; /* their names' lengths */
	guint64 data_bytes; /* their declared sizes */
} ArchiveTally;

/* The most an entry named `path` (normalized) may declare, and what that limit is called in messages. */
static guint64
entry_limit(const char *path, const char **what)
{
	g_autofree char *base = g_path_get_basename(path);

	if (strcmp(path, HEALER_BUNDLE_SIGNATURE) == 0) {
		*what = "a catalog signature";
		return MAX_SIG;
	}
	if (strcmp(path, HEALER_BUNDLE_CATALOG) == 0 || strcmp(path, HEALER_BUNDLE_MANIFEST) == 0) {
		*what = "catalog.json and bundle.json";
		return HEALER_BUNDLE_MAX_METADATA;
	}
	if (healer_module_file_name_is_metadata(base)) {
		*what = "metadata passed over";
		return HEALER_BUNDLE_MAX_SKIPPED;
	}
	*what = "a module";
	return HEALER_BUNDLE_MAX_MODULE;
}

/*
 * The checks on an entry's header, the same in both passes, before any of
 * its data is read or skipped and before its name is kept: the count, the
 * name's length and the names' total, then (once the name is known to be
 * safe) its type and declared size.  The normalized path, or NULL.
 */
static char *
check_entry(OpenState *st, ArchiveTally *tally, const HealerArchiveEntry *entry, GError **error)
{
	const char *source = st->bundle->source;
	g_autofree char *path = NULL, *name = NULL;
	guint64 size = entry->size > 0 ? (guint64)entry->size : 0;
	const char *what = NULL;
	guint64 limit;

	if (++tally->count > HEALER_BUNDLE_MAX_ENTRIES) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: more than %d entries in archive; the limit is %d",
		            source, HEALER_BUNDLE_MAX_ENTRIES, HEALER_BUNDLE_MAX_ENTRIES);
		return NULL;
	}
	if (entry->path == NULL || entry->path_len == 0) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: entry %u has no name", source, tally->count);
		return NULL;
	}
	if (entry->path_len > HEALER_BUNDLE_MAX_NAME) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: entry %u has a name of %" G_GSIZE_FORMAT " bytes; the limit is %d", source,
		            tally->count, entry->path_len, HEALER_BUNDLE_MAX_NAME);
		return NULL;
	}
	tally->name_bytes += entry->path_len;
	if (tally->name_bytes > HEALER_BUNDLE_MAX_NAMES) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: entry %u: the names of the entries up to it add up to %" G_GUINT64_FORMAT
		            " bytes; the limit is %d",
		            source, tally->count, tally->name_bytes, HEALER_BUNDLE_MAX_NAMES);
		return NULL;
	}
	name = printable(entry->path);
	path = normalize_entry_path(entry->path);
	if (path == NULL) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: unsafe path in archive", source, name);
		return NULL;
	}
	if (entry->type == HEALER_ARCHIVE_ENTRY_HARDLINK) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: hard link in archive (only files are allowed)",
		            source, name);
		return NULL;
	}
	if (entry->type == HEALER_ARCHIVE_ENTRY_SYMLINK) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: symbolic link in archive (only files are allowed)", source, name);
		return NULL;
	}
	if (entry->type != HEALER_ARCHIVE_ENTRY_DIRECTORY &&
	    (entry->type != HEALER_ARCHIVE_ENTRY_FILE || path[0] == '\0')) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: device, FIFO or socket in archive (only files are allowed)", source, name);
		return NULL;
	}
	/* Its holes are not in the archive: reading would make up data, as much as it declares. */
	if (entry->sparse) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: sparse file in archive declaring %" G_GUINT64_FORMAT
		            " bytes (only plain files are allowed)",
		            source, name, size);
		return NULL;
	}
	limit = entry->type == HEALER_ARCHIVE_ENTRY_DIRECTORY ? 0 : entry_limit(path, &what);
	if (entry->type == HEALER_ARCHIVE_ENTRY_DIRECTORY && size > 0) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: directory entry declaring %" G_GUINT64_FORMAT " bytes", source, name, size);
		return NULL;
	}
	if (size > limit) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: entry %u declares %" G_GUINT64_FORMAT
		            " bytes; the limit for %s is %" G_GUINT64_FORMAT,
		            source, name, tally->count, size, what, limit);
		return NULL;
	}
	tally->data_bytes += size;
	if (tally->data_bytes > HEALER_BUNDLE_MAX_TOTAL) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: the entries up to it declare %" G_GUINT64_FORMAT " bytes; the limit is %d", source,
		            name, tally->data_bytes, HEALER_BUNDLE_MAX_TOTAL);
		return NULL;
	}
	return g_steal_pointer(&path);
}

static gboolean
archive_pass(OpenState *st, int fd, gboolean staging, GHashTable *files, GBytes **metadata, GError **error)
{
	HealerBundle *bundle = st->bundle;
	const HealerArchiveFuncs *af = healer_archive_funcs(error);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	HealerArchiveReader *a;
	Input in = {.af = af, .fd = -1};
	g_autofree char *last = NULL; /* the last entry's name, for messages */
	ArchiveTally tally = {0};
	gboolean ok = FALSE;

	if (af == NULL) {
		g_prefix_error(error, "%s: cannot read tar archives: ", bundle->source);
		return FALSE;
	}
	a = in.archive = af->reader_new();
	if (lseek(fd, 0, SEEK_SET) != 0) {
		int saved = errno;
		healer_fail(error, HEALER_ERROR_IO, "%s: cannot read: %s", bundle->source, g_strerror(saved));
		goto out;
	}
	if (!af->reader_open_fd(a, fd, CHUNK_SIZE)) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: not a directory or a readable tar archive (%s)",
		            bundle->source, af->reader_error(a) ? af->reader_error(a) : "unknown error");
		goto out;
	}
	for (;;) {
		HealerArchiveEntry entry = {.type = HEALER_ARCHIVE_ENTRY_OTHER, .size = -1};
		HealerArchiveNext r = af->reader_next(a, &entry);
		g_autofree char *path = NULL;

		if (r == HEALER_ARCHIVE_NEXT_END)
			break;
		if (r == HEALER_ARCHIVE_NEXT_ERROR) {
			if (tally.count == 0) {
				healer_fail(error, HEALER_ERROR_INVALID_DATA,
				            "%s: not a directory or a readable tar archive (%s)", bundle->source,
				            af->reader_error(a) ? af->reader_error(a) : "unknown error");
			} else {
				g_autofree char *fault = archive_fault(&in);
				healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s, last entry read: %s",
				            bundle->source, fault, last != NULL ? last : "none");
			}
			goto out;
		}
		path = check_entry(st, &tally, &entry, error);
		if (path == NULL)
			goto out;
		g_free(last);
		last = printable(entry.path); /* as stored: check_entry bounded its length */
		if (entry.type == HEALER_ARCHIVE_ENTRY_DIRECTORY)
			continue;
		if (g_hash_table_contains(seen, path)) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: duplicate entry in archive",
			            bundle->source, last);
			goto out;
		}
		g_hash_table_add(seen, g_strdup(path));
		if (!staging) {
			static const char *const top[] = {HEALER_BUNDLE_CATALOG, HEALER_BUNDLE_SIGNATURE,
			                                  HEALER_BUNDLE_MANIFEST};
			for (guint i = 0; i < G_N_ELEMENTS(top); i++) {
				if (strcmp(path, top[i]) == 0) {
					/* check_entry bounded the declared size: one allocation of it, no growing. */
					metadata[i] = read_bounded(st, &in, path, (gsize)MAX(entry.size, 0),
					                           (gsize)MAX(entry.size, 0), error);
					if (metadata[i] == NULL)
						goto out;
				}
			}
			g_hash_table_add(files, g_steal_pointer(&path));
		} else {
			const HealerCatalogModule *module = g_hash_table_lookup(st->carried_paths, path);

			if (module == NULL) {
				/* Allowed in the first pass; checked again in case the file changed since. */
				if (!check_file_listed(st, path, error))
					goto out;
				continue;
			}
			/* Refused from its header: nothing of a 50 GB entry is read to find out. */
			if ((guint64)MAX(entry.size, 0) != module->size) {
				healer_fail(error, HEALER_ERROR_INVALID_DATA,
				            "%s: %s: size mismatch (expected %" G_GUINT64_FORMAT
				            " bytes, the archive declares %" G_GINT64_FORMAT ")",
				            bundle->source, module->path, module->size, MAX(entry.size, 0));
				goto out;
			}
			if (!stage_module(st, module, &in, error))
				goto out;
		}
	}
	ok = TRUE;
out:
	af->reader_free(a);
	return ok;
}

static gboolean
open_archive(OpenState *st, int fd, GPtrArray *trusted_keys, gboolean allow_unsigned, const char *staging_parent,
             GError **error)
{
	g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GBytes *metadata[3] = {NULL, NULL, NULL};
	gboolean ok;

	/* First pass: the names, and the catalog, its signature and bundle.json, wherever they are. */
	ok = archive_pass(st, fd, FALSE, files, metadata, error) &&
	     load_metadata(st, metadata[0], metadata[1], metadata[2], trusted_keys, allow_unsigned, error) &&
	     check_listing(st, files, error) && make_staging_dir(st, staging_parent, error) &&
	     /* Second pass: stage the modules, verifying each against the verified catalog. */
	     archive_pass(st, fd, TRUE, NULL, NULL, error) && finish_modules(st, error);
	for (guint i = 0; i < G_N_ELEMENTS(metadata); i++)
		if (metadata[i] != NULL)
			g_bytes_unref(metadata[i]);
	return ok;
}

/* ---- directories ---- */

static gboolean
walk_directory(OpenState *st, int fd, const char *prefix, guint depth, GHashTable *files, guint *count,
               guint64 *name_bytes, GError **error)
{
	DIR *dir = fdopendir(fd); /* takes fd */
	struct dirent *de;
	gboolean ok = FALSE;

	if (dir == NULL) {
		int saved = errno;
		close(fd);
		return healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot read: %s", st->bundle->source,
		                   prefix != NULL ? prefix : ".", g_strerror(saved));
	}
	for (;;) {
		g_autofree char *rel = NULL, *name = NULL;
		struct stat lst;

		errno = 0;
		de = readdir(dir);
		if (de == NULL) {
			if (errno != 0) {
				int saved = errno;
				healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot read: %s", st->bundle->source,
				            prefix != NULL ? prefix : ".", g_strerror(saved));
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (++*count > HEALER_BUNDLE_MAX_ENTRIES) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: more than %d files and directories; the limit is %d", st->bundle->source,
			            HEALER_BUNDLE_MAX_ENTRIES, HEALER_BUNDLE_MAX_ENTRIES);
			goto out;
		}
		rel = prefix != NULL ? g_strconcat(prefix, "/", de->d_name, NULL) : g_strdup(de->d_name);
		/* The archive limits, so a directory bundle holds no more than an archive may. */
		if (strlen(rel) > HEALER_BUNDLE_MAX_NAME) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: file %u has a name of %zu bytes; the limit is %d", st->bundle->source, *count,
			            strlen(rel), HEALER_BUNDLE_MAX_NAME);
			goto out;
		}
		*name_bytes += strlen(rel);
		if (*name_bytes > HEALER_BUNDLE_MAX_NAMES) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: file %u: the names of the files up to it add up to %" G_GUINT64_FORMAT
			            " bytes; the limit is %d",
			            st->bundle->source, *count, *name_bytes, HEALER_BUNDLE_MAX_NAMES);
			goto out;
		}
		name = printable(rel);
		if (fstatat(dirfd(dir), de->d_name, &lst, AT_SYMLINK_NOFOLLOW) != 0) {
			int saved = errno;
			healer_fail(error, HEALER_ERROR_IO, "%s: %s: %s", st->bundle->source, name, g_strerror(saved));
			goto out;
		}
		if (S_ISDIR(lst.st_mode)) {
			int sub;
			if (depth >= MAX_DEPTH) {
				healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: directories nested too deep",
				            st->bundle->source, name);
				goto out;
			}
			sub = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				int saved = errno;
				healer_fail(error, HEALER_ERROR_IO, "%s: %s: cannot read: %s", st->bundle->source, name,
				            g_strerror(saved));
				goto out;
			}
			if (!walk_directory(st, sub, rel, depth + 1, files, count, name_bytes, error))
				goto out;
			continue;
		}
		/*
		 * Never followed, and its target never looked at: a link could point
		 * anywhere healerd may read (/etc/shadow), and even its size would tell.
		 */
		if (S_ISLNK(lst.st_mode)) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: %s: symbolic link (not followed: a bundle holds only files and directories)",
			            st->bundle->source, name);
			goto out;
		}
		if (!S_ISREG(lst.st_mode)) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: not a regular file", st->bundle->source,
			            name);
			goto out;
		}
		g_hash_table_add(files, g_steal_pointer(&rel));
	}
	ok = TRUE;
out:
	closedir(dir);
	return ok;
}

/*
 * Opens `path` (relative, checked) under `root_fd` without following any
 * symbolic link (the walk refused them; one put there since is refused
 * here, O_NOFOLLOW, without a word about its target).  Refuses anything but
 * a regular file, judged on the opened descriptor.
 */
static int
open_in_bundle(OpenState *st, int root_fd, const char *path, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	int dir = root_fd, fd;
	struct stat sb;
	guint n = g_strv_length(parts);

	for (guint i = 0; i + 1 < n; i++) {
		int next = openat(dir, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int saved = errno;
		if (dir != root_fd)
			close(dir);
		if (next < 0 && (saved == ELOOP || saved == ENOTDIR)) {
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: %s: not a directory, or a symbolic link (not followed: a bundle holds only "
			            "files and "
			            "directories)",
			            st->bundle->source, parts[i]);
			return -1;
		}
		if (next < 0) {
			healer_fail(error, saved == ENOENT ? HEALER_ERROR_INVALID_DATA : HEALER_ERROR_IO,
			            "%s: %s: cannot open: %s", st->bundle->source, path, g_strerror(saved));
			return -1;
		}
		dir = next;
	}
	/* O_NONBLOCK: a FIFO must not hang the open; it is refused below. */
	fd = openat(dir, parts[n - 1], O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;
		if (saved == ELOOP)
			healer_fail(error, HEALER_ERROR_INVALID_DATA,
			            "%s: %s: symbolic link (not followed: a bundle holds only files and directories)",
			            st->bundle->source, path);
		else
			healer_fail(error, saved == ENOENT ? HEALER_ERROR_INVALID_DATA : HEALER_ERROR_IO,
			            "%s: %s: cannot open: %s", st->bundle->source, path, g_strerror(saved));
	}
	if (dir != root_fd)
		close(dir);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: %s: not a regular file", st->bundle->source, path);
		return -1;
	}
	return fd;
}

static GBytes *
read_metadata_file(OpenState *st, int root_fd, const char *name, gsize max, GError **error)
{
	int fd = open_in_bundle(st, root_fd, name, error);
	Input in = {.fd = fd};
	struct stat sb = {0};
	GBytes *data;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) == 0 && (guint64)sb.st_size > max) {
		close(fd);
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: %s: %" G_GUINT64_FORMAT " bytes; the limit is %" G_GSIZE_FORMAT, st->bundle->source,
		            name, (guint64)sb.st_size, max);
		return NULL;
	}
	data = read_bounded(st, &in, name, max, (gsize)sb.st_size, error);
	close(fd);
	return data;
}

static gboolean
open_directory(OpenState *st, int root_fd, GPtrArray *trusted_keys, gboolean allow_unsigned, const char *staging_parent,
               GError **error)
{
	g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GBytes) catalog_json = NULL, sig = NULL, manifest = NULL;
	int walk_fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	guint count = 0;
	guint64 name_bytes = 0;

	if (walk_fd < 0) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot read: %s", st->bundle->source,
		                   g_strerror(saved));
	}
	if (!walk_directory(st, walk_fd, NULL, 0, files, &count, &name_bytes, error))
		return FALSE;
	if (g_hash_table_contains(files, HEALER_BUNDLE_CATALOG)) {
		catalog_json =
		        read_metadata_file(st, root_fd, HEALER_BUNDLE_CATALOG, HEALER_BUNDLE_MAX_METADATA, error);
		if (catalog_json == NULL)
			return FALSE;
	}
	if (g_hash_table_contains(files, HEALER_BUNDLE_SIGNATURE)) {
		sig = read_metadata_file(st, root_fd, HEALER_BUNDLE_SIGNATURE, MAX_SIG, error);
		if (sig == NULL)
			return FALSE;
	}
	if (g_hash_table_contains(files, HEALER_BUNDLE_MANIFEST)) {
		manifest = read_metadata_file(st, root_fd, HEALER_BUNDLE_MANIFEST, HEALER_BUNDLE_MAX_METADATA, error);
		if (manifest == NULL)
			return FALSE;
	}
	if (!load_metadata(st, catalog_json, sig, manifest, trusted_keys, allow_unsigned, error) ||
	    !check_listing(st, files, error) || !make_staging_dir(st, staging_parent, error))
		return FALSE;
	for (guint i = 0; i < st->carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(st->carried, i);
		int fd = open_in_bundle(st, root_fd, module->path, error);
		Input in = {.fd = fd};
		gboolean ok;

		if (fd < 0)
			return FALSE;
		ok = stage_module(st, module, &in, error);
		close(fd);
		if (!ok)
			return FALSE;
	}
	return finish_modules(st, error);
}

/* ---- recognising an archive by its content ---- */

/* A tar header: the POSIX or GNU magic, or (a V7 header has none) a checksum that adds up. */
static gboolean
is_tar_header(const guint8 *h, gsize len)
{
	guint64 sum = 0, stored = 0;
	gboolean digits = FALSE;

	if (len < 512)
		return FALSE;
	if (memcmp(h + 257, "ustar", 5) == 0)
		return TRUE;
	for (gsize i = 0; i < 512; i++)
		sum += i >= 148 && i < 156 ? ' ' : h[i];
	/* The checksum field: octal digits, padded with spaces or NULs. */
	for (gsize i = 148; i < 156; i++) {
		if (h[i] >= '0' && h[i] <= '7') {
			stored = stored * 8 + (guint64)(h[i] - '0');
			digits = TRUE;
		} else if (h[i] != ' ' && h[i] != '\0') {
			return FALSE;
		}
	}
	/* An all-zero block sums to 256 with nothing stored: not a header. */
	return digits && h[0] != '\0' && stored == sum;
}

gboolean
healer_bundle_fd_is_archive(int fd)
{
	/* The streams healer-archive.so reads (healer-archive.h), by their magic numbers. */
	static const struct {
		const char *magic;
		gsize len;
	} streams[] = {
	        {"\x1f\x8b\x08", 3}, /* gzip, deflate */
	        {"BZh", 3},          /* bzip2 */
	        {"\xfd"
	         "7zXZ\x00",
	         6},                     /* xz */
	        {"\x04\x22\x4d\x18", 4}, /* lz4 frame */
	        {"\x28\xb5\x2f\xfd", 4}, /* zstd frame */
	};
	guint8 head[512];
	ssize_t n;

	do
		n = pread(fd, head, sizeof(head), 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(streams); i++)
		if ((gsize)n >= streams[i].len && memcmp(head, streams[i].magic, streams[i].len) == 0)
			return TRUE;
	return is_tar_header(head, (gsize)n);
}

gboolean
healer_bundle_file_is_archive(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat sb;
	gboolean archive;

	if (fd < 0)
		return FALSE;
	archive = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && healer_bundle_fd_is_archive(fd);
	close(fd);
	return archive;
}

HealerBundle *
healer_bundle_open_fd(int fd, const char *name, GPtrArray *trusted_keys, gboolean allow_unsigned,
                      const char *staging_parent, GError **error)
{
	g_autoptr(HealerBundle) bundle = g_new0(HealerBundle, 1);
	OpenState st = {.bundle = bundle};
	struct stat sb;
	int flags;
	gboolean ok;

	g_return_val_if_fail(fd >= 0 && name != NULL && staging_parent != NULL, NULL);
	bundle->source = g_strdup(name);
	/* Only what the descriptor's owner could read: an O_PATH one still works with openat(). */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_PATH) != 0 || (flags & O_ACCMODE) == O_WRONLY) {
		healer_fail(error, HEALER_ERROR_PERMISSION_DENIED, "%s: not open for reading", name);
		return NULL;
	}
	if (fstat(fd, &sb) != 0 || (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode))) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: not a directory or a tar archive", name);
		return NULL;
	}
	st.staged = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	st.buffer = g_malloc(CHUNK_SIZE);
	if (S_ISDIR(sb.st_mode))
		ok = open_directory(&st, fd, trusted_keys, allow_unsigned, staging_parent, error);
	else
		ok = open_archive(&st, fd, trusted_keys, allow_unsigned, staging_parent, error);
	open_state_clear(&st);
	if (!ok)
		return NULL; /* the autoptr removes the staging directory */
	return g_steal_pointer(&bundle);
}

HealerBundle *
healer_bundle_open(const char *path, GPtrArray *trusted_keys, gboolean allow_unsigned, const char *staging_parent,
                   GError **error)
{
	HealerBundle *bundle;
	int fd;

	g_return_val_if_fail(path != NULL && staging_parent != NULL, NULL);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int saved = errno;
		healer_fail(error,
		            saved == ENOENT || saved == ENOTDIR ? HEALER_ERROR_NOT_FOUND
		            : saved == EACCES                   ? HEALER_ERROR_PERMISSION_DENIED
		                                                : HEALER_ERROR_IO,
		            "%s: %s", path, g_strerror(saved));
		return NULL;
	}
	bundle = healer_bundle_open_fd(fd, path, trusted_keys, allow_unsigned, staging_parent, error);
	close(fd);
	return bundle;
}

/* ------------------------------------------------------------------------ */
/* Writing */

gboolean
healer_bundle_dest_is_archive(const char *dest)
{
	static const char *const suffixes[] = {".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz"};

	for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++)
		if (g_str_has_suffix(dest, suffixes[i]))
			return TRUE;
	return FALSE;
}

typedef struct {
	const char *path;
	GBytes *data;
} OutFile;

static GBytes *
manifest_bytes(GPtrArray *carried)
{
	g_autoptr(json_object) root = json_object_new_object();
	json_object *list = json_object_new_array();
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *text = NULL;
	gsize len;

	json_object_object_add(root, "format", json_object_new_string(HEALER_BUNDLE_FORMAT));
	json_object_object_add(root, "format_version", json_object_new_int(HEALER_BUNDLE_FORMAT_VERSION));
	for (guint i = 0; i < carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(carried, i);
		char *hex = healer_sha256_to_hex(module->sha256);
		if (g_hash_table_add(seen, hex))
			json_object_array_add(list, json_object_new_string(hex));
	}
	json_object_object_add(root, "modules", list);
	text = g_strdup_printf(
	        "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	len = strlen(text);
	return g_bytes_new_take(g_steal_pointer(&text), len);
}

/* The module's bytes from `read`, checked against the catalog. */
static GBytes *
read_checked(const HealerCatalogModule *module, HealerBundleReadFunc read_func, gpointer user_data, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GBytes) data = read_func(module, user_data, &local_error);
	guint8 digest[HEALER_SHA256_SIZE];
	gsize len = 0;
	const guint8 *bytes;

	if (data == NULL) {
		if (local_error != NULL)
			g_propagate_error(error, g_steal_pointer(&local_error));
		else
			healer_fail(error, HEALER_ERROR_FAILED, "%s: could not be read", module->path);
		return NULL;
	}
	bytes = g_bytes_get_data(data, &len);
	if (len != module->size) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "%s: size mismatch (expected %" G_GUINT64_FORMAT " bytes, got %" G_GSIZE_FORMAT ")",
		            module->path, module->size, len);
		return NULL;
	}
	healer_sha256(bytes != NULL ? bytes : (const guint8 *)"", len, digest);
	if (memcmp(digest, module->sha256, sizeof(digest)) != 0) {
		g_autofree char *expected = healer_sha256_to_hex(module->sha256);
		g_autofree char *got = healer_sha256_to_hex(digest);
		healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: SHA-256 mismatch (expected %s, got %s)",
		            module->path, expected, got);
		return NULL;
	}
	return g_steal_pointer(&data);
}

/* Writes one file under `root` (creating its directories), fsynced; records the directories in `dirs`. */
static gboolean
write_file_under(const char *root, const char *rel, GBytes *data, GHashTable *dirs, GError **error)
{
	g_autofree char *path = g_build_filename(root, rel, NULL);
	g_autofree char *parent = g_path_get_dirname(path);
	gsize len = 0;
	const guint8 *bytes = g_bytes_get_data(data, &len);
	int fd;

	if (!g_hash_table_contains(dirs, parent)) {
		if (g_mkdir_with_parents(parent, 0755) != 0) {
			int saved = errno;
			return healer_fail(error, HEALER_ERROR_IO, "cannot create %s: %s", parent, g_strerror(saved));
		}
		/* Every directory from root down to parent, so each gets synced. */
		for (char *dir = g_strdup(parent); dir != NULL;) {
			char *up;
			if (strlen(dir) < strlen(root) || g_hash_table_contains(dirs, dir)) {
				g_free(dir);
				break;
			}
			up = g_path_get_dirname(dir);
			g_hash_table_add(dirs, dir);
			dir = up;
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "cannot create %s: %s", path, g_strerror(saved));
	}
	if (!write_all(fd, bytes, len) || fsync(fd) != 0) {
		int saved = errno;
		close(fd);
		return healer_fail(error, HEALER_ERROR_IO, "cannot write %s: %s", path, g_strerror(saved));
	}
	if (close(fd) != 0) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "cannot write %s: %s", path, g_strerror(saved));
	}
	return TRUE;
}

static gboolean
write_directory(const char *dest, const char *parent, GPtrArray *head, GPtrArray *carried,
                HealerBundleReadFunc read_func, gpointer user_data, GError **error)
{
	g_autofree char *base = g_path_get_basename(dest);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.tmp-XXXXXX", parent, base);
	g_autoptr(GHashTable) dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter iter;
	gpointer key;

	if (g_mkdtemp_full(tmp, 0755) == NULL) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot create a temporary directory beside it: %s",
		                   dest, g_strerror(saved));
	}
	g_hash_table_add(dirs, g_strdup(tmp));
	for (guint i = 0; i < head->len; i++) {
		const OutFile *file = g_ptr_array_index(head, i);
		if (!write_file_under(tmp, file->path, file->data, dirs, error))
			goto fail;
	}
	for (guint i = 0; i < carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(carried, i);
		g_autoptr(GBytes) data = read_checked(module, read_func, user_data, error);
		if (data == NULL || !write_file_under(tmp, module->path, data, dirs, error))
			goto fail;
	}
	g_hash_table_iter_init(&iter, dirs);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		sync_directory(key);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) != 0) {
		int saved = errno;
		if (saved == EINVAL || saved == ENOSYS) {
			/* A file system without RENAME_NOREPLACE: check, then rename. */
			if (g_file_test(dest, G_FILE_TEST_EXISTS) || g_file_test(dest, G_FILE_TEST_IS_SYMLINK))
				saved = EEXIST;
			else if (rename(tmp, dest) == 0)
				saved = 0;
			else
				saved = errno;
		}
		if (saved != 0) {
			healer_fail(error, saved == EEXIST ? HEALER_ERROR_INVALID_ARGUMENT : HEALER_ERROR_IO, "%s: %s",
			            dest, saved == EEXIST ? "already exists" : g_strerror(saved));
			goto fail;
		}
	}
	sync_directory(parent);
	return TRUE;
fail:
	remove_tree(tmp);
	return FALSE;
}

static gboolean
archive_add(const HealerArchiveFuncs *af, HealerArchiveWriter *a, const char *dest, const char *path, GBytes *data,
            time_t mtime, GError **error)
{
	gsize len = 0;
	const guint8 *bytes = g_bytes_get_data(data, &len);

	if (!af->writer_add_file(a, path, bytes != NULL ? bytes : (const guint8 *)"", len, (gint64)mtime))
		return healer_fail(error, HEALER_ERROR_IO, "%s: %s: %s", dest, path,
		                   af->writer_error(a) ? af->writer_error(a) : "write failed");
	return TRUE;
}

static gboolean
write_archive(const char *dest, const char *parent, GPtrArray *head, GPtrArray *carried, time_t mtime,
              HealerBundleReadFunc read_func, gpointer user_data, GError **error)
{
	g_autofree char *base = g_path_get_basename(dest);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.tmp-XXXXXX", parent, base);
	const HealerArchiveFuncs *af = healer_archive_funcs(error);
	HealerArchiveWriter *a = NULL;
	HealerArchiveCompression compression = HEALER_ARCHIVE_COMPRESSION_NONE;
	int fd;
	gboolean ok = FALSE;

	/* Before anything is created: without the module nothing is left behind. */
	if (af == NULL) {
		g_prefix_error(error, "%s: cannot write tar archives: ", dest);
		return FALSE;
	}
	fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0) {
		int saved = errno;
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot create a temporary file beside it: %s", dest,
		                   g_strerror(saved));
	}
	if (g_str_has_suffix(dest, ".gz") || g_str_has_suffix(dest, ".tgz"))
		compression = HEALER_ARCHIVE_COMPRESSION_GZIP;
	else if (g_str_has_suffix(dest, ".xz") || g_str_has_suffix(dest, ".txz"))
		compression = HEALER_ARCHIVE_COMPRESSION_XZ;
	a = af->writer_new(compression);
	if (!af->writer_open_fd(a, fd)) {
		healer_fail(error, HEALER_ERROR_IO, "%s: %s", dest,
		            af->writer_error(a) ? af->writer_error(a) : "cannot write");
		goto out;
	}
	for (guint i = 0; i < head->len; i++) {
		const OutFile *file = g_ptr_array_index(head, i);
		if (!archive_add(af, a, dest, file->path, file->data, mtime, error))
			goto out;
	}
	for (guint i = 0; i < carried->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(carried, i);
		g_autoptr(GBytes) data = read_checked(module, read_func, user_data, error);
		if (data == NULL || !archive_add(af, a, dest, module->path, data, mtime, error))
			goto out;
	}
	if (!af->writer_close(a)) {
		healer_fail(error, HEALER_ERROR_IO, "%s: %s", dest,
		            af->writer_error(a) ? af->writer_error(a) : "cannot write");
		goto out;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		int saved = errno;
		fd = -1;
		healer_fail(error, HEALER_ERROR_IO, "%s: cannot write: %s", dest, g_strerror(saved));
		goto out;
	}
	fd = -1;
	if (rename(tmp, dest) != 0) {
		int saved = errno;
		healer_fail(error, HEALER_ERROR_IO, "%s: %s", dest, g_strerror(saved));
		goto out;
	}
	sync_directory(parent);
	ok = TRUE;
out:
	if (a != NULL)
		af->writer_free(a);
	if (fd >= 0)
		close(fd);
	if (!ok)
		g_unlink(tmp);
	return ok;
}

gboolean
healer_bundle_write(const char *dest_arg, GBytes *catalog_json, GBytes *catalog_sig, const HealerCatalog *catalog,
                    GPtrArray *selected, HealerBundleReadFunc read_func, gpointer user_data, GError **error)
{
	g_autoptr(GHashTable) shas = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) carried = g_ptr_array_new();
	g_autoptr(GPtrArray) head = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GBytes) manifest = NULL;
	g_autofree char *parent = NULL;
	g_autoptr(GDateTime) created = NULL;
	g_autofree char *dest = NULL;
	gsize dest_len;
	time_t mtime = 0;
	OutFile *file;

	g_return_val_if_fail(dest_arg != NULL && catalog_json != NULL && catalog != NULL && selected != NULL &&
	                             read_func != NULL,
	                     FALSE);
	/* "out/" names the directory "out", not something inside it. */
	dest = g_strdup(dest_arg);
	dest_len = strlen(dest);
	while (dest_len > 1 && dest[dest_len - 1] == '/')
		dest[--dest_len] = '\0';
	for (guint i = 0; i < selected->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(selected, i);
		if (!g_ptr_array_find(catalog->modules, module, NULL))
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "%s: a selected module is not one of the catalog's", dest);
		g_hash_table_add(shas, healer_sha256_to_hex(module->sha256));
	}
	/* Every path of a selected SHA-256: what bundle.json's list means to a reader. */
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);
		g_autofree char *hex = healer_sha256_to_hex(module->sha256);
		if (g_hash_table_contains(shas, hex))
			g_ptr_array_add(carried, (gpointer)module);
	}
	manifest = manifest_bytes(carried);

	if (g_file_test(dest, G_FILE_TEST_EXISTS) || g_file_test(dest, G_FILE_TEST_IS_SYMLINK)) {
		if (!healer_bundle_dest_is_archive(dest) || g_file_test(dest, G_FILE_TEST_IS_DIR))
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "%s: already exists", dest);
	}
	parent = g_path_get_dirname(dest);
	if (!g_file_test(parent, G_FILE_TEST_IS_DIR))
		return healer_fail(error, HEALER_ERROR_NOT_FOUND, "%s: directory %s does not exist", dest, parent);

	created = catalog->created != NULL ? g_date_time_new_from_iso8601(catalog->created, NULL) : NULL;
	if (created != NULL && g_date_time_to_unix(created) > 0)
		mtime = (time_t)g_date_time_to_unix(created);

	file = g_new0(OutFile, 1);
	*file = (OutFile){HEALER_BUNDLE_CATALOG, catalog_json};
	g_ptr_array_add(head, file);
	if (catalog_sig != NULL) {
		file = g_new0(OutFile, 1);
		*file = (OutFile){HEALER_BUNDLE_SIGNATURE, catalog_sig};
		g_ptr_array_add(head, file);
	}
	file = g_new0(OutFile, 1);
	*file = (OutFile){HEALER_BUNDLE_MANIFEST, manifest};
	g_ptr_array_add(head, file);

	if (healer_bundle_dest_is_archive(dest))
		return write_archive(dest, parent, head, carried, mtime, read_func, user_data, error);
	return write_directory(dest, parent, head, carried, read_func, user_data, error);
}
