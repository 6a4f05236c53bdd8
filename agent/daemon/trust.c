#include "trust.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "healer-error.h"
#include "healer-file.h"
#include "events.h"

#define MAX_CATALOG_SIZE (16 * 1024 * 1024)

struct _HealerTrust {
	char *dir;          /* <state-dir>/catalogs */
	GPtrArray *keys;    /* EVP_PKEY* */
	GHashTable *by_key; /* key id -> HealerTrustedCatalog* */
	gboolean allow_unsigned;
};

static void
trusted_catalog_free(gpointer data)
{
	HealerTrustedCatalog *tc = data;

	g_free(tc->key_id);
	g_bytes_unref(tc->json);
	if (tc->sig != NULL)
		g_bytes_unref(tc->sig);
	healer_catalog_free(tc->catalog);
	g_free(tc->source);
	g_free(tc);
}

void
healer_trust_free(HealerTrust *trust)
{
	if (trust == NULL)
		return;
	g_free(trust->dir);
	g_ptr_array_unref(trust->keys);
	g_hash_table_unref(trust->by_key);
	g_free(trust);
}

GPtrArray *
healer_trust_get_keys(HealerTrust *trust)
{
	return trust->keys;
}

gboolean
healer_trust_get_allow_unsigned(HealerTrust *trust)
{
	return trust->allow_unsigned;
}

static gboolean
same_bytes(GBytes *a, GBytes *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return g_bytes_equal(a, b);
}

/* Signature and format, without the serial rule. */
static HealerCatalog *
verify(HealerTrust *trust, GBytes *json, GBytes *sig, char **key_id, GError **error)
{
	gsize len = 0, sig_len = 0;
	const guint8 *data = g_bytes_get_data(json, &len);
	const guint8 *sig_data = sig != NULL ? g_bytes_get_data(sig, &sig_len) : NULL;

	if (len > MAX_CATALOG_SIZE) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "catalog is %" G_GSIZE_FORMAT " bytes, more than the %d allowed", len, MAX_CATALOG_SIZE);
		return NULL;
	}
	/* An empty signature file is a signature of the wrong size, not "unsigned". */
	if (sig != NULL && sig_data == NULL)
		sig_data = (const guint8 *)"";
	return healer_catalog_load_signed(data, len, sig_data, sig_len, trust->keys, trust->allow_unsigned, key_id,
	                                  error);
}

gboolean
healer_trust_check(HealerTrust *trust, GBytes *json, GBytes *sig, HealerCatalog **catalog_out, char **key_id_out,
                   GError **error)
{
	g_autofree char *key_id = NULL;
	g_autoptr(HealerCatalog) catalog = verify(trust, json, sig, &key_id, error);
	HealerTrustedCatalog *held;

	if (catalog == NULL)
		return FALSE;
	held = g_hash_table_lookup(trust->by_key, key_id);
	if (held != NULL && catalog->serial < held->catalog->serial) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "catalog is older than the last accepted catalog: serial %" G_GUINT64_FORMAT
		            " < %" G_GUINT64_FORMAT " (key %s)",
		            catalog->serial, held->catalog->serial, key_id);
		return FALSE;
	}
	if (held != NULL && catalog->serial == held->catalog->serial && !same_bytes(json, held->json)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "catalog has serial %" G_GUINT64_FORMAT
		            ", already accepted with other contents (key %s): a publisher must raise the serial",
		            catalog->serial, key_id);
		return FALSE;
	}
	if (catalog_out != NULL)
		*catalog_out = g_steal_pointer(&catalog);
	if (key_id_out != NULL)
		*key_id_out = g_steal_pointer(&key_id);
	return TRUE;
}

static char *
catalog_path(HealerTrust *trust, const char *key_id, const char *suffix)
{
	g_autofree char *name = g_strconcat(key_id, suffix, NULL);

	return g_build_filename(trust->dir, name, NULL);
}

/* The signature first: a crash between the two renames leaves a pair that fails to verify and is ignored. */
static gboolean
persist(HealerTrust *trust, const HealerTrustedCatalog *tc, GError **error)
{
	g_autofree char *json_path = catalog_path(trust, tc->key_id, ".json");
	g_autofree char *sig_path = catalog_path(trust, tc->key_id, ".json.sig");

	if (tc->sig != NULL) {
		if (!healer_file_write_atomic(sig_path, tc->sig, error))
			return FALSE;
	} else if (g_unlink(sig_path) != 0 && errno != ENOENT) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot remove %s: %s", sig_path, g_strerror(errno));
		return FALSE;
	}
	return healer_file_write_atomic(json_path, tc->json, error);
}

const HealerTrustedCatalog *
healer_trust_offer(HealerTrust *trust, GBytes *json, GBytes *sig, const char *source, gboolean *changed, GError **error)
{
	g_autoptr(HealerCatalog) catalog = NULL;
	g_autofree char *key_id = NULL;
	HealerTrustedCatalog *held, *tc;

	if (changed != NULL)
		*changed = FALSE;
	if (!healer_trust_check(trust, json, sig, &catalog, &key_id, error))
		return NULL;
	held = g_hash_table_lookup(trust->by_key, key_id);
	if (held != NULL && same_bytes(json, held->json) && same_bytes(sig, held->sig)) {
		g_free(held->source);
		held->source = g_strdup(source);
		return held;
	}
	tc = g_new0(HealerTrustedCatalog, 1);
	tc->key_id = g_steal_pointer(&key_id);
	tc->json = g_bytes_ref(json);
	tc->sig = sig != NULL ? g_bytes_ref(sig) : NULL;
	tc->catalog = g_steal_pointer(&catalog);
	tc->source = g_strdup(source);
	if (!persist(trust, tc, error)) {
		trusted_catalog_free(tc);
		return NULL;
	}
	g_hash_table_replace(trust->by_key, tc->key_id, tc);
	if (changed != NULL)
		*changed = TRUE;
	healer_emit(HEALER_EVENT_CATALOG_ACCEPTED, NULL, NULL, source, -1,
	            tc->sig == NULL ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_INFO,
	            "accepted %s catalog serial %" G_GUINT64_FORMAT " from %s (key %s): %u modules, %u releases",
	            tc->sig == NULL ? "an UNSIGNED" : "the signed", tc->catalog->serial, source, tc->key_id,
	            tc->catalog->modules->len, tc->catalog->releases->len);
	return tc;
}

static gint
by_key_id(gconstpointer a, gconstpointer b)
{
	const HealerTrustedCatalog *x = *(HealerTrustedCatalog *const *)a;
	const HealerTrustedCatalog *y = *(HealerTrustedCatalog *const *)b;

	return strcmp(x->key_id, y->key_id);
}

GPtrArray *
healer_trust_list_catalogs(HealerTrust *trust)
{
	GPtrArray *list = g_ptr_array_new();
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, trust->by_key);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		g_ptr_array_add(list, value);

	g_ptr_array_sort(list, by_key_id);
	return list;
}

const HealerCatalogModule *
healer_trust_find_module(HealerTrust *trust, const guint8 sha256[HEALER_SHA256_SIZE],
                         const HealerTrustedCatalog **catalog_out)
{
	g_autoptr(GPtrArray) list = healer_trust_list_catalogs(trust);

	for (guint i = 0; i < list->len; i++) {
		const HealerTrustedCatalog *tc = g_ptr_array_index(list, i);
		const HealerCatalogModule *module = healer_catalog_find(tc->catalog, sha256);
		if (module != NULL) {
			if (catalog_out != NULL)
				*catalog_out = tc;
			return module;
		}
	}
	return NULL;
}

gboolean
healer_trust_admits(HealerTrust *trust, const char *sha_hex, guint64 size, gboolean *unsigned_out, char **reason)
{
	guint8 sha[HEALER_SHA256_SIZE];
	const HealerCatalogModule *module = NULL;

	if (unsigned_out != NULL)
		*unsigned_out = FALSE;
	if (healer_sha256_from_hex(sha_hex, sha))
		module = healer_trust_find_module(trust, sha, NULL);
	if (module != NULL && module->size == size)
		return TRUE;
	if (trust->allow_unsigned) {
		if (unsigned_out != NULL)
			*unsigned_out = TRUE;
		return TRUE;
	}
	if (module != NULL)
		*reason = g_strdup_printf("is %" G_GUINT64_FORMAT
		                          " bytes but the trusted catalog lists %" G_GUINT64_FORMAT,
		                          size, module->size);
	else
		*reason = g_strdup("is not listed in any trusted catalog (import a signed bundle that has it, "
		                   "or put it beside a signed catalog.json)");
	return FALSE;
}

/* Reads the catalogs kept in the state directory, each verified again. */
static void
load_kept(HealerTrust *trust)
{
	g_autoptr(GDir) dir = g_dir_open(trust->dir, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *key_id = NULL;
		g_autofree char *json_path = NULL, *sig_path = NULL;
		g_autofree char *json_data = NULL, *sig_data = NULL;
		gsize json_len = 0, sig_len = 0;
		g_autoptr(GBytes) json = NULL, sig = NULL;
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerCatalog) catalog = NULL;
		g_autofree char *verified_key = NULL;
		HealerTrustedCatalog *tc;

		if (!g_str_has_suffix(name, ".json") || name[0] == '.')
			continue;
		key_id = g_strndup(name, strlen(name) - strlen(".json"));
		json_path = catalog_path(trust, key_id, ".json");
		sig_path = catalog_path(trust, key_id, ".json.sig");
		if (!g_file_get_contents(json_path, &json_data, &json_len, &error)) {
			g_warning("kept catalog %s: %s; ignored", json_path, error->message);
			continue;
		}
		json = g_bytes_new_take(g_steal_pointer(&json_data), json_len);
		if (g_file_get_contents(sig_path, &sig_data, &sig_len, NULL))
			sig = g_bytes_new_take(g_steal_pointer(&sig_data), sig_len);
		catalog = verify(trust, json, sig, &verified_key, &error);
		if (catalog == NULL || strcmp(verified_key, key_id) != 0) {
			healer_emit(HEALER_EVENT_CATALOG_REJECTED, NULL, NULL, json_path, -1, G_LOG_LEVEL_WARNING,
			            "kept catalog %s no longer verifies (%s); ignored, its modules are not used",
			            json_path, error != NULL ? error->message : "signed by another key");
			continue;
		}
		tc = g_new0(HealerTrustedCatalog, 1);
		tc->key_id = g_steal_pointer(&key_id);
		tc->json = g_steal_pointer(&json);
		tc->sig = g_steal_pointer(&sig);
		tc->catalog = g_steal_pointer(&catalog);
		tc->source = g_strdup("the state directory");
		g_hash_table_replace(trust->by_key, tc->key_id, tc);
	}
}

HealerTrust *
healer_trust_new(const char *state_dir, const char *const *key_dirs, gboolean allow_unsigned, GError **error)
{
	g_autoptr(HealerTrust) trust = g_new0(HealerTrust, 1);

	trust->dir = g_build_filename(state_dir, "catalogs", NULL);
	trust->keys = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	trust->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, trusted_catalog_free);
	trust->allow_unsigned = allow_unsigned;
	if (g_mkdir_with_parents(trust->dir, 0750) != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot create %s: %s", trust->dir,
		            g_strerror(errno));
		return NULL;
	}
	for (guint i = 0; key_dirs != NULL && key_dirs[i] != NULL; i++) {
		g_autoptr(GPtrArray) keys = NULL;
		g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GError) local_error = NULL;

		if (!g_file_test(key_dirs[i], G_FILE_TEST_IS_DIR))
			continue;
		if (!healer_catalog_load_trusted_keys(key_dirs[i], &keys, warnings, &local_error)) {
			g_warning("trusted keys: %s", local_error->message);
			continue;
		}
		for (guint w = 0; w < warnings->len; w++)
			g_warning("trusted keys: %s", (const char *)g_ptr_array_index(warnings, w));
		for (guint k = 0; k < keys->len; k++) {
			EVP_PKEY *key = g_ptr_array_index(keys, k);
			g_autofree char *id = healer_catalog_key_id(key);
			g_info("trusting key %s from %s", id, key_dirs[i]);
			EVP_PKEY_up_ref(key);
			g_ptr_array_add(trust->keys, key);
		}
	}
	if (allow_unsigned)
		healer_emit(HEALER_EVENT_UNSIGNED_ALLOWED, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
		            "allow-unsigned is ON: modules no trusted catalog lists and unsigned catalogs are "
		            "accepted. This is a development switch; never use it on a gateway in the field");
	else if (trust->keys->len == 0)
		g_warning("no trusted keys (in %s): no catalog can be accepted, so no module can enter the store",
		          key_dirs != NULL && key_dirs[0] != NULL ? key_dirs[0] : "(no directory configured)");
	load_kept(trust);
	return g_steal_pointer(&trust);
}
