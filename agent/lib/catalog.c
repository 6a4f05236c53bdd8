#include "catalog.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "json-autoptr.h"

#include "healer-error.h"
#include "healer-file.h"
#include "healer-json.h"
#include "healer/module-format.h"
#include "module-inventory.h"
#include "module-names.h"
#include "semver.h"

/* The catalog's errors are all about its data (the publisher half below moves to agent/tools/ as is). */
#define fail(error, ...) healer_fail((error), HEALER_ERROR_INVALID_DATA, __VA_ARGS__)

static void
catalog_module_free(gpointer data)
{
	HealerCatalogModule *module = data;

	g_free(module->release);
	g_free(module->path);
	if (module->dependencies != NULL)
		g_array_unref(module->dependencies);
	g_free(module);
}

static void
catalog_release_free(gpointer data)
{
	HealerCatalogRelease *release = data;

	g_free(release->name);
	if (release->modules != NULL)
		g_ptr_array_unref(release->modules);
	g_free(release);
}

void
healer_catalog_free(HealerCatalog *catalog)
{
	if (catalog == NULL)
		return;
	g_free(catalog->created);
	g_free(catalog->key_id);
	g_ptr_array_unref(catalog->modules);
	g_ptr_array_unref(catalog->releases);
	g_free(catalog);
}

/* OpenSSL's last error, for messages; clears its queue. */
static char *
openssl_error(void)
{
	unsigned long code = ERR_get_error();
	char buf[256];

	ERR_clear_error();
	if (code == 0)
		return g_strdup("unknown OpenSSL error");
	ERR_error_string_n(code, buf, sizeof(buf));
	return g_strdup(buf);
}

/* Relative, '/'-separated, no empty, "." or ".." component, no backslash or control character. */
static const char *
path_fault(const char *path)
{
	g_auto(GStrv) parts = NULL;

	if (path[0] == '\0')
		return "is empty";
	if (path[0] == '/')
		return "is absolute (starts with '/')";
	for (const char *p = path; *p != '\0'; p++) {
		if (*p == '\\')
			return "contains a backslash";
		if ((guchar)*p < 0x20 || *p == 0x7f)
			return "contains a control character";
	}
	parts = g_strsplit(path, "/", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		if (parts[i][0] == '\0')
			return "has an empty component";
		if (strcmp(parts[i], ".") == 0)
			return "has a '.' component";
		if (strcmp(parts[i], "..") == 0)
			return "has a '..' component";
	}
	return NULL;
}

/* "function": a module function's name, as module-names.c spells it. */
static gboolean
get_function(json_object *obj, const char *where, guint8 *function, GError **error)
{
	const char *s;
	int f;

	if (!healer_json_get_string(obj, "function", where, &s, error))
		return FALSE;
	f = healer_module_function_from_string(s);
	if (f <= MODULE_FUNCTION_NONE || strlen(s) < 2)
		return healer_json_fail(error, "%s.function: unknown module function \"%s\"", where, s);
	*function = (guint8)f;
	return TRUE;
}

/* "dependencies": [{"function": "system-part", "index": 1, "version": 1203}, ...], at most 8. */
static gboolean
parse_dependencies(json_object *obj, const char *where, HealerCatalogModule *module, GError **error)
{
	static const char *const keys[] = {"function", "index", "version", NULL};
	g_autofree char *list_path = healer_json_path(where, "dependencies");
	json_object *list = NULL;

	module->dependencies = g_array_new(FALSE, TRUE, sizeof(HealerModuleDependency));
	if (!json_object_object_get_ex(obj, "dependencies", NULL))
		return healer_json_fail(error, "%s: missing (an array, empty when the module has none)", list_path);
	if (!healer_json_get_array(obj, "dependencies", where, HEALER_CATALOG_MAX_DEPENDENCIES, &list, error))
		return FALSE;
	for (size_t d = 0; d < json_object_array_length(list); d++) {
		json_object *dep_obj = json_object_array_get_idx(list, d);
		g_autofree char *at = healer_json_path_index(list_path, d);
		HealerModuleDependency dep = {0};
		guint64 index = 0, version = 0;

		if (!healer_json_value_object(dep_obj, at, error) ||
		    !healer_json_check_keys(dep_obj, at, keys, error) ||
		    !get_function(dep_obj, at, &dep.function, error) ||
		    !healer_json_get_uint(dep_obj, "index", at, G_MAXUINT8, &index, error) ||
		    !healer_json_get_uint(dep_obj, "version", at, G_MAXUINT16, &version, error))
			return FALSE;
		dep.index = (guint8)index;
		dep.version = (guint16)version;
		g_array_append_val(module->dependencies, dep);
	}
	return TRUE;
}

static gboolean
parse_module(json_object *obj, guint i, HealerCatalogModule *module, GError **error)
{
	static const char *const keys[] = {"platform_id",   "function",     "index", "version",
	                                   "release",       "prerelease",   "size",  "sha256",
	                                   "module_sha256", "dependencies", "path",  NULL};
	g_autofree char *where = healer_json_path_index("modules", i);
	const char *s;
	guint64 platform_id = 0, index = 0, version = 0;

	if (!healer_json_value_object(obj, where, error) || !healer_json_check_keys(obj, where, keys, error) ||
	    !healer_json_get_uint(obj, "platform_id", where, G_MAXUINT16, &platform_id, error) ||
	    !get_function(obj, where, &module->function, error) ||
	    !healer_json_get_uint(obj, "index", where, G_MAXUINT8, &index, error) ||
	    !healer_json_get_uint(obj, "version", where, G_MAXUINT16, &version, error))
		return FALSE;
	module->platform_id = (guint16)platform_id;
	module->index = (guint8)index;
	module->version = (guint16)version;
	if (!healer_json_get_string_or_null(obj, "release", where, &s, error))
		return FALSE;
	if (s != NULL && s[0] == '\0')
		return healer_json_fail(error, "%s.release: expected a non-empty string or null", where);
	module->release = g_strdup(s);
	if (!healer_json_get_bool(obj, "prerelease", where, &module->prerelease, error) ||
	    !healer_json_get_uint(obj, "size", where, G_MAXUINT64, &module->size, error) ||
	    !healer_json_get_hex(obj, "sha256", where, HEALER_SHA256_SIZE, HEALER_JSON_HEX_LOWER, module->sha256,
	                         error) ||
	    !healer_json_get_hex(obj, "module_sha256", where, HEALER_SHA256_SIZE, HEALER_JSON_HEX_LOWER,
	                         module->module_sha256, error) ||
	    !parse_dependencies(obj, where, module, error) || !healer_json_get_string(obj, "path", where, &s, error))
		return FALSE;
	if (path_fault(s) != NULL)
		return healer_json_fail(error, "%s.path: \"%s\" %s", where, s, path_fault(s));
	module->path = g_strdup(s);
	return TRUE;
}

static gboolean
parse_release(json_object *obj, guint i, GHashTable *shas, HealerCatalogRelease *release, GError **error)
{
	static const char *const keys[] = {"name", "modules", NULL};
	g_autofree char *where = healer_json_path_index("releases", i);
	g_autofree char *named = NULL;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	json_object *modules = NULL;
	const char *s;

	if (!healer_json_value_object(obj, where, error) || !healer_json_check_keys(obj, where, keys, error) ||
	    !healer_json_get_string(obj, "name", where, &s, error))
		return FALSE;
	if (!healer_semver_valid(s))
		return healer_json_fail(error, "%s.name: \"%s\" is not a semantic version", where, s);
	release->name = g_strdup(s);
	/* From here on the release is named by its name too: "releases[3] (1.2.0).modules[1]". */
	named = g_strdup_printf("%s (%s)", where, release->name);
	if (!healer_json_get_array(obj, "modules", named, G_MAXSIZE, &modules, error))
		return FALSE;
	for (size_t j = 0; j < json_object_array_length(modules); j++) {
		g_autofree char *at = g_strdup_printf("%s.modules[%zu]", named, j);
		json_object *val = json_object_array_get_idx(modules, j);

		if (!healer_json_value_hex(val, at, HEALER_SHA256_SIZE, HEALER_JSON_HEX_LOWER, NULL, error))
			return FALSE;
		s = json_object_get_string(val);
		if (!g_hash_table_contains(shas, s))
			return healer_json_fail(error, "%s: %s is not one of the catalog's modules", at, s);
		if (!g_hash_table_add(seen, (gpointer)s))
			return healer_json_fail(error, "%s: %s is listed twice", at, s);
		g_ptr_array_add(release->modules, g_strdup(s));
	}
	return TRUE;
}

static gboolean
parse_root(json_object *root, HealerCatalog *catalog, GError **error)
{
	static const char *const keys[] = {"format", "format_version", "serial",   "created",
	                                   "key_id", "modules",        "releases", NULL};
	json_object *modules = NULL, *releases = NULL;
	const char *s;
	gboolean found;
	g_autoptr(GHashTable) paths = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) shas = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GDateTime) created = NULL;

	if (!healer_json_check_format(root, HEALER_CATALOG_FORMAT, HEALER_CATALOG_FORMAT_VERSION, error) ||
	    !healer_json_check_keys(root, "", keys, error) ||
	    !healer_json_get_uint(root, "serial", "", G_MAXUINT64, &catalog->serial, error) ||
	    !healer_json_get_string(root, "created", "", &s, error))
		return FALSE;
	created = g_date_time_new_from_iso8601(s, NULL);
	if (created == NULL || !g_str_has_suffix(s, "Z"))
		return healer_json_fail(error,
		                        "created: \"%s\" is not an ISO-8601 UTC time such as 2026-01-31T12:00:00Z", s);
	catalog->created = g_strdup(s);
	if (!healer_json_get_optional_hex(root, "key_id", "", 8, HEALER_JSON_HEX_LOWER, NULL, &found, NULL))
		return healer_json_fail(error, "key_id: expected 16 lowercase hex digits (a key id)");
	if (found && !healer_json_get_string(root, "key_id", "", &s, error))
		return FALSE;
	if (found)
		catalog->key_id = g_strdup(s);
	if (!healer_json_get_array(root, "modules", "", G_MAXSIZE, &modules, error) ||
	    !healer_json_get_array(root, "releases", "", G_MAXSIZE, &releases, error))
		return FALSE;
	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		HealerCatalogModule *module = g_new0(HealerCatalogModule, 1);

		g_ptr_array_add(catalog->modules, module);
		if (!parse_module(json_object_array_get_idx(modules, i), (guint)i, module, error))
			return FALSE;
		if (!g_hash_table_add(paths, module->path))
			return healer_json_fail(error, "modules[%zu].path: \"%s\" is listed twice", i, module->path);
		g_hash_table_add(shas, healer_sha256_to_hex(module->sha256));
	}
	for (size_t i = 0; i < json_object_array_length(releases); i++) {
		HealerCatalogRelease *release = g_new0(HealerCatalogRelease, 1);

		release->modules = g_ptr_array_new_with_free_func(g_free);
		g_ptr_array_add(catalog->releases, release);
		if (!parse_release(json_object_array_get_idx(releases, i), (guint)i, shas, release, error))
			return FALSE;
		if (!g_hash_table_add(names, release->name))
			return healer_json_fail(error, "releases[%zu].name: \"%s\" is listed twice", i, release->name);
	}
	return TRUE;
}

HealerCatalog *
healer_catalog_parse(const guint8 *json, gsize len, GError **error)
{
	g_autoptr(json_object) root = NULL;
	g_autoptr(HealerCatalog) catalog = g_new0(HealerCatalog, 1);

	catalog->modules = g_ptr_array_new_with_free_func(catalog_module_free);
	catalog->releases = g_ptr_array_new_with_free_func(catalog_release_free);
	root = healer_json_parse(json, len, "catalog", error);
	if (root == NULL || !parse_root(root, catalog, error))
		return NULL;
	return g_steal_pointer(&catalog);
}

static gboolean
verify_with(EVP_PKEY *key, const guint8 *json, gsize len, const guint8 *sig, gsize sig_len)
{
	EVP_MD_CTX *ctx;
	gboolean ok;

	if (key == NULL || EVP_PKEY_id(key) != EVP_PKEY_ED25519)
		return FALSE;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return FALSE;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
	     EVP_DigestVerify(ctx, sig, sig_len, json, len) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/*
 * No trusted key verifies the signature: either an unknown key signed it,
 * or it was altered after signing.  The catalog's own "key_id" (unverified,
 * only a hint) tells which, when the publisher wrote one.
 */
static void
describe_bad_signature(const guint8 *json, gsize len, GPtrArray *trusted_keys, GError **error)
{
	g_autoptr(HealerCatalog) hint = healer_catalog_parse(json, len, NULL);

	if (hint == NULL) {
		fail(error, "catalog was altered or damaged after signing: it no longer parses and no trusted key "
		            "verifies it");
		return;
	}
	if (hint->key_id == NULL) {
		fail(error, "catalog is signed by an unknown key (or was altered after signing)");
		return;
	}
	for (guint i = 0; trusted_keys != NULL && i < trusted_keys->len; i++) {
		g_autofree char *id = healer_catalog_key_id(g_ptr_array_index(trusted_keys, i));
		if (strcmp(id, hint->key_id) == 0) {
			fail(error,
			     "catalog was altered after signing: the signature of trusted key %s does not verify",
			     hint->key_id);
			return;
		}
	}
	fail(error, "catalog is signed by an unknown key %s (not among the trusted keys)", hint->key_id);
}

char *
healer_catalog_key_id(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(key, &der);
	guint8 digest[HEALER_SHA256_SIZE];
	g_autofree char *hex = NULL;

	if (len <= 0)
		return g_strdup("invalid-key");
	healer_sha256(der, (gsize)len, digest);
	OPENSSL_free(der);
	hex = healer_sha256_to_hex(digest);
	return g_strndup(hex, 16);
}

HealerCatalog *
healer_catalog_load_signed(const guint8 *json, gsize len, const guint8 *sig, gsize sig_len, GPtrArray *trusted_keys,
                           gboolean allow_unsigned, char **key_id_out, GError **error)
{
	g_autoptr(HealerCatalog) catalog = NULL;
	g_autofree char *key_id = NULL;

	if (sig == NULL) {
		if (!allow_unsigned) {
			fail(error, "catalog is unsigned (and unsigned catalogs are not allowed)");
			return NULL;
		}
		key_id = g_strdup("unsigned");
	} else {
		if (sig_len != HEALER_CATALOG_SIGNATURE_SIZE) {
			fail(error, "catalog signature is %" G_GSIZE_FORMAT " bytes, not a %d-byte Ed25519 signature",
			     sig_len, HEALER_CATALOG_SIGNATURE_SIZE);
			return NULL;
		}
		for (guint i = 0; key_id == NULL && trusted_keys != NULL && i < trusted_keys->len; i++) {
			EVP_PKEY *key = g_ptr_array_index(trusted_keys, i);
			if (verify_with(key, json, len, sig, sig_len))
				key_id = healer_catalog_key_id(key);
		}
		if (key_id == NULL) {
			describe_bad_signature(json, len, trusted_keys, error);
			return NULL;
		}
	}
	catalog = healer_catalog_parse(json, len, error);
	if (catalog == NULL)
		return NULL;
	if (key_id_out != NULL)
		*key_id_out = g_steal_pointer(&key_id);
	return g_steal_pointer(&catalog);
}

HealerCatalog *
healer_catalog_load_verified(const guint8 *json, gsize len, const guint8 *sig, gsize sig_len, GPtrArray *trusted_keys,
                             guint64 min_serial, gboolean allow_unsigned, GError **error)
{
	g_autoptr(HealerCatalog) catalog =
	        healer_catalog_load_signed(json, len, sig, sig_len, trusted_keys, allow_unsigned, NULL, error);

	if (catalog == NULL)
		return NULL;
	if (catalog->serial < min_serial) {
		fail(error,
		     "catalog is older than the last accepted catalog: serial %" G_GUINT64_FORMAT
		     " < %" G_GUINT64_FORMAT,
		     catalog->serial, min_serial);
		return NULL;
	}
	return g_steal_pointer(&catalog);
}

HealerInventoryEntry *
healer_catalog_module_to_inventory_entry(const HealerCatalogModule *module, const char *base)
{
	g_autofree char *path = base != NULL ? g_build_filename(base, module->path, NULL) : g_strdup(module->path);
	HealerInventoryEntry *entry = healer_inventory_entry_new(path, module->platform_id, module->function,
	                                                         module->index, module->version, (gsize)module->size);

	for (guint i = 0; i < module->dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(module->dependencies, HealerModuleDependency, i);
		healer_inventory_entry_add_dependency(entry, dep->function, dep->index, dep->version);
	}
	memcpy(entry->sha256, module->sha256, HEALER_SHA256_SIZE);
	memcpy(entry->module_sha256, module->module_sha256, HEALER_SHA256_SIZE);
	g_free(entry->release);
	entry->release = g_strdup(module->release);
	entry->prerelease = module->prerelease;
	return entry;
}

const HealerCatalogModule *
healer_catalog_find(const HealerCatalog *catalog, const guint8 sha256[HEALER_SHA256_SIZE])
{
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);
		if (memcmp(module->sha256, sha256, HEALER_SHA256_SIZE) == 0)
			return module;
	}
	return NULL;
}

static EVP_PKEY *
load_key(const char *path, gboolean private, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) local_error = NULL;
	BIO *bio;
	EVP_PKEY *key;

	if (!g_file_get_contents(path, &data, &len, &local_error)) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "%s", local_error->message);
		return NULL;
	}
	if (len > G_MAXINT) {
		fail(error, "%s: too large for a key", path);
		return NULL;
	}
	bio = BIO_new_mem_buf(data, (int)len);
	if (bio == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "%s: out of memory", path);
		return NULL;
	}
	key = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL) {
		g_autofree char *why = openssl_error();
		fail(error, "%s: not a PEM %s key (%s)", path, private ? "private" : "public", why);
		return NULL;
	}
	return key;
}

EVP_PKEY *
healer_catalog_load_public_key(const char *path, GError **error)
{
	return load_key(path, FALSE, error);
}

EVP_PKEY *
healer_catalog_load_private_key(const char *path, GError **error)
{
	return load_key(path, TRUE, error);
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

gboolean
healer_catalog_load_trusted_keys(const char *dir, GPtrArray **keys, GPtrArray *warnings, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GDir) d = g_dir_open(dir, 0, &local_error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) result = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	const char *name;

	if (d == NULL) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "%s", local_error->message);
		return FALSE;
	}
	while ((name = g_dir_read_name(d)) != NULL)
		if (g_str_has_suffix(name, ".pem"))
			g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, compare_strings);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
		g_autoptr(GError) key_error = NULL;
		EVP_PKEY *key;

		if (g_file_test(path, G_FILE_TEST_IS_DIR))
			continue;
		key = healer_catalog_load_public_key(path, &key_error);
		if (key == NULL) {
			if (warnings != NULL)
				g_ptr_array_add(warnings, g_strdup_printf("%s, skipped", key_error->message));
			continue;
		}
		if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
			if (warnings != NULL)
				g_ptr_array_add(warnings, g_strdup_printf("%s: not an Ed25519 key (%s), skipped", path,
				                                          EVP_PKEY_get0_type_name(key)));
			EVP_PKEY_free(key);
			continue;
		}
		g_ptr_array_add(result, key);
	}
	*keys = g_steal_pointer(&result);
	return TRUE;
}

/* The publisher's side (agent/tools/catalog-publish.c) writes only paths that parse_module() accepts. */
const char *
healer_catalog_path_fault(const char *path)
{
	return path_fault(path);
}

char *
healer_catalog_openssl_error(void)
{
	return openssl_error();
}
