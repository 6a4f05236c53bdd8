/*
 * healerctl export [--state-dir DIR] [--platform P] [--release R]
 *                  [--catalog KEYID] [--json] DEST
 *
 * Offline, from healerd's state directory: writes a bundle
 * (docs/bundles.md) of the modules the store holds that a catalog healerd
 * accepted lists, selected by platform and release, to a directory or a
 * tar archive (.tar, .tar.gz, .tar.xz), for another gateway's
 * `healerctl import` or USB stick.  No daemon needed; each module's
 * SHA-256 is checked as it is read from the store.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli-options.h"
#include "bundle.h"
#include "catalog.h"
#include "healer-error.h"
#include "healerctl.h"
#include "json-autoptr.h"
#include "module-names.h"
#include "store-layout.h"

#define DEFAULT_STATE_DIR "/var/lib/healerd"

typedef struct {
	char *key_id; /* the file name without .json */
	GBytes *json;
	GBytes *sig; /* NULL when there is no .sig beside it */
	HealerCatalog *catalog;
	GPtrArray *stored;   /* const HealerCatalogModule*: the selection the store holds */
	guint selected;      /* how many modules the selection had */
	gboolean no_release; /* the catalog lacks --release */
	char *release_error; /* its message */
} Candidate;

static void
candidate_free(gpointer data)
{
	Candidate *c = data;

	g_free(c->key_id);
	g_bytes_unref(c->json);
	if (c->sig != NULL)
		g_bytes_unref(c->sig);
	healer_catalog_free(c->catalog);
	if (c->stored != NULL)
		g_ptr_array_unref(c->stored);
	g_free(c->release_error);
	g_free(c);
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every <state>/catalogs/<key-id>.json (sorted), parsed; unreadable ones are warned about and skipped. */
static GPtrArray *
load_catalogs(const char *catalogs_dir, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GDir) dir = g_dir_open(catalogs_dir, 0, &local_error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) catalogs = g_ptr_array_new_with_free_func(candidate_free);
	const char *name;

	if (dir == NULL) {
		int code = g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		           : g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_ACCES)
		                   ? HEALER_ERROR_PERMISSION_DENIED
		                   : HEALER_ERROR_IO;
		g_set_error(error, HEALER_ERROR, code, "%s%s", local_error->message,
		            code == HEALER_ERROR_NOT_FOUND ? " (healerd has not accepted a catalog yet)" : "");
		return NULL;
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *key_id = healer_store_layout_catalog_key_id(name);
		if (key_id != NULL)
			g_ptr_array_add(names, g_strdup(name));
	}
	/* In the order of the file names. */
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *key_id = healer_store_layout_catalog_key_id(g_ptr_array_index(names, i));
		g_autofree char *path = healer_store_layout_catalog_path(catalogs_dir, key_id);
		g_autofree char *sig_path = healer_store_layout_signature_path(catalogs_dir, key_id);
		g_autofree char *data = NULL, *sig = NULL;
		gsize len = 0, sig_len = 0;
		g_autoptr(GError) file_error = NULL;
		Candidate *c;

		if (!g_file_get_contents(path, &data, &len, &file_error)) {
			fprintf(stderr, "healerctl export: warning: %s, skipped\n", file_error->message);
			continue;
		}
		if (g_file_test(sig_path, G_FILE_TEST_EXISTS) &&
		    !g_file_get_contents(sig_path, &sig, &sig_len, &file_error)) {
			fprintf(stderr, "healerctl export: warning: %s, skipped\n", file_error->message);
			continue;
		}
		c = g_new0(Candidate, 1);
		c->key_id = g_steal_pointer(&key_id);
		c->catalog = healer_catalog_parse((const guint8 *)data, len, &file_error);
		c->json = g_bytes_new_take(g_steal_pointer(&data), len);
		c->sig = sig != NULL ? g_bytes_new_take(g_steal_pointer(&sig), sig_len) : NULL;
		if (c->catalog == NULL) {
			fprintf(stderr, "healerctl export: warning: %s: %s, skipped\n", path, file_error->message);
			candidate_free(c);
			continue;
		}
		g_ptr_array_add(catalogs, c);
	}
	return g_steal_pointer(&catalogs);
}

typedef struct {
	const char *store_dir;
} StoreReader;

static char *
store_path(const char *store_dir, const HealerCatalogModule *module)
{
	g_autofree char *hex = healer_sha256_to_hex(module->sha256);

	return healer_store_layout_module_path(store_dir, hex);
}

/* A store file's bytes, its size and SHA-256 checked against the catalog. */
static GBytes *
read_from_store(const HealerCatalogModule *module, gpointer user_data, GError **error)
{
	const StoreReader *reader = user_data;
	g_autofree char *path = store_path(reader->store_dir, module);
	g_autofree char *data = NULL;
	g_autoptr(GError) local_error = NULL;
	guint8 digest[HEALER_SHA256_SIZE];
	struct stat st;
	gsize len = 0;

	if (stat(path, &st) != 0) {
		int saved = errno;
		g_set_error(error, HEALER_ERROR, saved == ENOENT ? HEALER_ERROR_NOT_FOUND : HEALER_ERROR_IO,
		            "%s (%s): %s", path, module->path, g_strerror(saved));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (guint64)st.st_size != module->size) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s (%s): size mismatch (expected %" G_GUINT64_FORMAT " bytes, got %" G_GINT64_FORMAT ")",
		            path, module->path, module->size, (gint64)st.st_size);
		return NULL;
	}
	if (!g_file_get_contents(path, &data, &len, &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s", local_error->message);
		return NULL;
	}
	healer_sha256((const guint8 *)data, len, digest);
	if (len != module->size || memcmp(digest, module->sha256, sizeof(digest)) != 0) {
		g_autofree char *expected = healer_sha256_to_hex(module->sha256);
		g_autofree char *got = healer_sha256_to_hex(digest);
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s (%s): SHA-256 mismatch (expected %s, got %s)", path, module->path, expected, got);
		return NULL;
	}
	return g_bytes_new_take(g_steal_pointer(&data), len);
}

/* --platform: a number, or a name module-names.h knows; -1 (any) when NULL. */
static gboolean
parse_platform(const char *text, int *out)
{
	const HealerPlatform *platform;
	guint64 n = 0;

	*out = -1;
	if (text == NULL)
		return TRUE;
	if (g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT16, &n, NULL)) {
		*out = (int)n;
		return TRUE;
	}
	platform = healer_platform_lookup_name(text);
	if (platform == NULL)
		return FALSE;
	*out = platform->id;
	return TRUE;
}

/* "512 bytes", "167.8 KiB", "1.2 MiB" (plain spaces, whatever the locale). */
static char *
format_size(guint64 bytes)
{
	if (bytes < 1024)
		return g_strdup_printf("%" G_GUINT64_FORMAT " byte%s", bytes, bytes == 1 ? "" : "s");
	if (bytes < 1024 * 1024)
		return g_strdup_printf("%.1f KiB", (double)bytes / 1024.0);
	if (bytes < G_GUINT64_CONSTANT(1024) * 1024 * 1024)
		return g_strdup_printf("%.1f MiB", (double)bytes / (1024.0 * 1024.0));
	return g_strdup_printf("%.1f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
}

static char *
join_key_ids(GPtrArray *candidates, gboolean with_serial)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (guint i = 0; i < candidates->len; i++) {
		const Candidate *c = g_ptr_array_index(candidates, i);
		g_string_append_printf(text, "%s%s", i > 0 ? ", " : "", c->key_id);
		if (with_serial)
			g_string_append_printf(text, " (serial %" G_GUINT64_FORMAT ", %u matching module%s stored)",
			                       c->catalog->serial, c->stored->len, c->stored->len == 1 ? "" : "s");
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}

int
healerctl_export(int argc, char **argv)
{
	gboolean json = FALSE;
	g_autofree char *state_dir = NULL, *platform_text = NULL, *release = NULL, *key_id = NULL;
	g_auto(GStrv) rest = NULL;
	const GOptionEntry entries[] = {
	        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
	         "healerd's state directory (default " DEFAULT_STATE_DIR ")", "DIR"},
	        {"platform", 0, 0, G_OPTION_ARG_STRING, &platform_text,
	         "Only modules for this platform (an id, or a name such as photon)", "P"},
	        {"release", 0, 0, G_OPTION_ARG_STRING, &release, "Only the modules of this release", "R"},
	        {"catalog", 0, 0, G_OPTION_ARG_STRING, &key_id,
	         "The catalog of this signing key id (or a unique prefix of it)", "KEYID"},
	        HEALERCTL_OPTION_JSON(&json, "Print the result as JSON"),
	        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, "DEST"},
	        HEALERCTL_OPTIONS_END,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) catalogs = NULL;
	g_autoptr(GPtrArray) matching = g_ptr_array_new();
	g_autofree char *catalogs_dir = NULL, *store_dir = NULL, *size_text = NULL;
	const Candidate *chosen;
	const char *dest;
	StoreReader reader;
	guint64 bytes = 0;
	int platform_id = -1;
	guint with_release = 0;

	if (healerctl_options_parse("export",
	                            "DEST - write a bundle of stored modules (a directory, or .tar/.tar.gz/.tar.xz)",
	                            "Offline, from healerd's state directory (no daemon needed): the stored modules of "
	                            "an accepted catalog,\nwith the catalog and its signature, as a bundle another "
	                            "gateway can import.\n"
	                            "Exit status: 0 written, 1 failed (a damaged store file, a write error), 2 usage "
	                            "(also: several catalogs match, choose one with --catalog), 3 nothing to export, "
	                            "no such release, catalog or state directory, 4 permission denied.",
	                            entries, &argc, &argv) != HEALER_EXIT_OK)
		return HEALER_EXIT_USAGE;
	if (rest == NULL || rest[0] == NULL || rest[1] != NULL)
		return healerctl_usage_error(
		        "export",
		        "%s (usage: healerctl export [--state-dir DIR] [--platform P] [--release R] [--catalog KEYID] "
		        "[--json] DEST)",
		        rest == NULL || rest[0] == NULL ? "no destination given" : "more than one destination given");
	dest = rest[0];
	if (!parse_platform(platform_text, &platform_id))
		return healerctl_usage_error("export",
		                             "unknown platform '%s' (give its id, or a name such as photon or argon)",
		                             platform_text);
	if (state_dir == NULL)
		state_dir = g_strdup(DEFAULT_STATE_DIR);
	if (!g_file_test(state_dir, G_FILE_TEST_IS_DIR)) {
		fprintf(stderr,
		        "healerctl export: %s: no such directory (healerd's state directory; give --state-dir)\n",
		        state_dir);
		return HEALER_EXIT_NOT_FOUND;
	}
	catalogs_dir = healer_store_layout_catalogs_dir(state_dir);
	store_dir = healer_store_layout_store_dir(state_dir);
	catalogs = load_catalogs(catalogs_dir, &error);
	if (catalogs == NULL)
		return healerctl_print_error("export", error);
	if (catalogs->len == 0) {
		fprintf(stderr, "healerctl export: no catalog in %s (healerd has not accepted a catalog yet)\n",
		        catalogs_dir);
		return HEALER_EXIT_NOT_FOUND;
	}
	if (key_id != NULL) {
		/* The catalog of that key id, or of the only id starting with it. */
		g_autoptr(GPtrArray) prefixed = g_ptr_array_new();
		guint found = G_MAXUINT;

		for (guint i = 0; i < catalogs->len; i++) {
			const Candidate *c = g_ptr_array_index(catalogs, i);
			if (strcmp(c->key_id, key_id) == 0)
				found = i;
			else if (g_str_has_prefix(c->key_id, key_id))
				g_ptr_array_add(prefixed, (gpointer)c);
		}
		if (found == G_MAXUINT && prefixed->len == 1)
			g_ptr_array_find(catalogs, g_ptr_array_index(prefixed, 0), &found);
		if (found == G_MAXUINT) {
			g_autofree char *known = join_key_ids(prefixed->len > 1 ? prefixed : catalogs, FALSE);
			fprintf(stderr, "healerctl export: %s catalog '%s' in %s (%s: %s)\n",
			        prefixed->len == 0 ? "no" : "more than one", key_id, catalogs_dir,
			        prefixed->len == 0 ? "there are" : "they are", known);
			return prefixed->len == 0 ? HEALER_EXIT_NOT_FOUND : HEALER_EXIT_USAGE;
		}
		{
			g_autoptr(GPtrArray) one = g_ptr_array_new_with_free_func(candidate_free);
			g_ptr_array_add(one, g_ptr_array_steal_index(catalogs, found));
			g_ptr_array_unref(catalogs);
			catalogs = g_steal_pointer(&one);
		}
	}

	for (guint i = 0; i < catalogs->len; i++) {
		Candidate *c = g_ptr_array_index(catalogs, i);
		g_autoptr(GError) select_error = NULL;
		g_autoptr(GPtrArray) selected = healer_catalog_select(c->catalog, platform_id, release, &select_error);

		c->stored = g_ptr_array_new();
		if (selected == NULL) {
			c->no_release = TRUE;
			c->release_error = g_strdup(select_error->message);
			continue;
		}
		with_release++;
		c->selected = selected->len;
		for (guint j = 0; j < selected->len; j++) {
			const HealerCatalogModule *module = g_ptr_array_index(selected, j);
			g_autofree char *path = store_path(store_dir, module);
			if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
				g_ptr_array_add(c->stored, (gpointer)module);
		}
		if (c->stored->len > 0)
			g_ptr_array_add(matching, c);
	}
	if (release != NULL && with_release == 0) {
		const Candidate *c = g_ptr_array_index(catalogs, 0);
		if (catalogs->len == 1)
			fprintf(stderr, "healerctl export: catalog %s: %s\n", c->key_id, c->release_error);
		else
			fprintf(stderr, "healerctl export: no release \"%s\" in any catalog in %s\n", release,
			        catalogs_dir);
		return HEALER_EXIT_NOT_FOUND;
	}
	if (matching->len == 0) {
		guint selected = 0;
		for (guint i = 0; i < catalogs->len; i++)
			selected += ((const Candidate *)g_ptr_array_index(catalogs, i))->selected;
		fprintf(stderr,
		        "healerctl export: nothing to export: %s%s%s%s%s; the store (%s) holds none of the %u "
		        "matching catalog module%s\n",
		        platform_text != NULL || release != NULL ? "modules" : "no module",
		        platform_text != NULL ? " for platform " : "", platform_text != NULL ? platform_text : "",
		        release != NULL ? " of release " : "", release != NULL ? release : "", store_dir, selected,
		        selected == 1 ? "" : "s");
		return HEALER_EXIT_NOT_FOUND;
	}
	if (matching->len > 1) {
		g_autofree char *ids = join_key_ids(matching, TRUE);
		fprintf(stderr,
		        "healerctl export: stored modules match several catalogs: %s; choose one with --catalog "
		        "KEYID\n",
		        ids);
		return HEALER_EXIT_USAGE;
	}
	chosen = g_ptr_array_index(matching, 0);

	reader.store_dir = store_dir;
	if (!healer_bundle_write(dest, chosen->json, chosen->sig, chosen->catalog, chosen->stored, read_from_store,
	                         &reader, &error))
		return healerctl_print_error("export", error);
	for (guint i = 0; i < chosen->stored->len; i++)
		bytes += ((const HealerCatalogModule *)g_ptr_array_index(chosen->stored, i))->size;
	size_text = format_size(bytes);
	if (json) {
		g_autoptr(json_object) root = json_object_new_object();
		json_object_object_add(root, "dest", json_object_new_string(dest));
		json_object_object_add(root, "catalog", json_object_new_string(chosen->key_id));
		json_object_object_add(root, "serial", json_object_new_uint64(chosen->catalog->serial));
		json_object_object_add(root, "modules", json_object_new_int64(chosen->stored->len));
		json_object_object_add(root, "bytes", json_object_new_uint64(bytes));
		json_object_object_add(root, "not_stored",
		                       json_object_new_int64(chosen->selected - chosen->stored->len));
		healerctl_print_json(root, TRUE);
	} else {
		printf("exported %u module%s (%s) of catalog %s serial %" G_GUINT64_FORMAT " to %s\n",
		       chosen->stored->len, chosen->stored->len == 1 ? "" : "s", size_text, chosen->key_id,
		       chosen->catalog->serial, dest);
		if (chosen->selected > chosen->stored->len)
			printf("left out %u matching module%s the store does not hold\n",
			       chosen->selected - chosen->stored->len,
			       chosen->selected - chosen->stored->len == 1 ? "" : "s");
	}
	fflush(stdout);
	return HEALER_EXIT_OK;
}
