#include "catalog-publish.h"

#include <gio/gio.h>
#include <openssl/pem.h>

#include "json-autoptr.h"

#include "healer-error.h"
#include "module-inventory.h"
#include "module-names.h"

static char *
created_now(void)
{
	const char *epoch = g_getenv("SOURCE_DATE_EPOCH");
	g_autoptr(GDateTime) now = NULL;
	guint64 seconds = 0;

	if (epoch != NULL && g_ascii_string_to_unsigned(epoch, 10, 0, G_MAXINT64, &seconds, NULL))
		now = g_date_time_new_from_unix_utc((gint64)seconds);
	if (now == NULL)
		now = g_date_time_new_now_utc();
	return g_date_time_format(now, "%Y-%m-%dT%H:%M:%SZ");
}

GBytes *
healer_catalog_build_from_directory(const char *dir, guint64 serial, const HealerReleaseTable *releases, GError **error)
{
	return healer_catalog_build_from_directory_for_key(dir, serial, releases, NULL, error);
}

GBytes *
healer_catalog_build_from_directory_for_key(const char *dir, guint64 serial, const HealerReleaseTable *releases,
                                            const char *key_id, GError **error)
{
	g_autoptr(HealerModuleInventory) modules = healer_module_inventory_load_dir(dir, releases, error);
	g_autoptr(json_object) root = NULL;
	g_autoptr(GFile) base = g_file_new_for_path(dir);
	g_autofree char *created = NULL;
	json_object *jmodules, *jreleases;
	const char *text;

	if (modules == NULL)
		return NULL;
	if (modules->warnings->len > 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s (and %u more problems)",
		            (const char *)g_ptr_array_index(modules->warnings, 0), modules->warnings->len - 1);
		return NULL;
	}
	root = json_object_new_object();
	created = created_now();
	json_object_object_add(root, "format", json_object_new_string(HEALER_CATALOG_FORMAT));
	json_object_object_add(root, "format_version", json_object_new_int(HEALER_CATALOG_FORMAT_VERSION));
	json_object_object_add(root, "serial", json_object_new_uint64(serial));
	json_object_object_add(root, "created", json_object_new_string(created));
	if (key_id != NULL)
		json_object_object_add(root, "key_id", json_object_new_string(key_id));
	jmodules = json_object_new_array();
	json_object_object_add(root, "modules", jmodules);
	for (guint i = 0; i < modules->entries->len; i++) {
		const HealerInventoryEntry *entry = g_ptr_array_index(modules->entries, i);
		g_autoptr(GFile) file = g_file_new_for_path(entry->path);
		g_autofree char *relative = g_file_get_relative_path(base, file);
		g_autofree char *hex = healer_sha256_to_hex(entry->sha256);
		g_autofree char *module_hex = healer_sha256_to_hex(entry->module_sha256);
		json_object *jm, *deps;

		if (relative == NULL || healer_catalog_path_fault(relative) != NULL) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: cannot name it relative to %s",
			            entry->path, dir);
			return NULL;
		}
		jm = json_object_new_object();
		json_object_object_add(jm, "platform_id", json_object_new_int(entry->platform_id));
		json_object_object_add(jm, "function",
		                       json_object_new_string(healer_module_function_to_string(entry->function)));
		json_object_object_add(jm, "index", json_object_new_int(entry->index));
		json_object_object_add(jm, "version", json_object_new_int(entry->version));
		json_object_object_add(jm, "release", entry->release ? json_object_new_string(entry->release) : NULL);
		json_object_object_add(jm, "prerelease", json_object_new_boolean(entry->prerelease));
		json_object_object_add(jm, "size", json_object_new_uint64(entry->size));
		json_object_object_add(jm, "sha256", json_object_new_string(hex));
		json_object_object_add(jm, "module_sha256", json_object_new_string(module_hex));
		deps = json_object_new_array();
		for (guint d = 0; d < entry->dependencies->len; d++) {
			const HealerModuleDependency *dep =
			        &g_array_index(entry->dependencies, HealerModuleDependency, d);
			json_object *jd = json_object_new_object();

			json_object_object_add(jd, "function",
			                       json_object_new_string(healer_module_function_to_string(dep->function)));
			json_object_object_add(jd, "index", json_object_new_int(dep->index));
			json_object_object_add(jd, "version", json_object_new_int(dep->version));
			json_object_array_add(deps, jd);
		}
		json_object_object_add(jm, "dependencies", deps);
		json_object_object_add(jm, "path", json_object_new_string(relative));
		json_object_array_add(jmodules, jm);
	}
	jreleases = json_object_new_array();
	json_object_object_add(root, "releases", jreleases);
	for (guint r = 0; releases != NULL && r < healer_release_table_get_n_releases(releases); r++) {
		const char *name = healer_release_table_get_name(releases, r);
		g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		json_object *list = json_object_new_array();
		json_object *jr;

		for (guint i = 0; i < modules->entries->len; i++) {
			const HealerInventoryEntry *entry = g_ptr_array_index(modules->entries, i);
			guint16 version = 0;
			char *hex;

			if (!healer_release_table_lookup(releases, name, entry->function, &version) ||
			    version != entry->version)
				continue;
			hex = healer_sha256_to_hex(entry->sha256);
			if (!g_hash_table_add(seen, hex))
				continue;
			json_object_array_add(list, json_object_new_string(hex));
		}
		if (json_object_array_length(list) == 0) {
			json_object_put(list);
			continue;
		}
		jr = json_object_new_object();
		json_object_object_add(jr, "name", json_object_new_string(name));
		json_object_object_add(jr, "modules", list);
		json_object_array_add(jreleases, jr);
	}
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
	{
		GString *out = g_string_new(text);
		g_string_append_c(out, '\n');
		return g_string_free_to_bytes(out);
	}
}

GBytes *
healer_catalog_sign(GBytes *json, EVP_PKEY *private_key, GError **error)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(json, &len);
	guint8 sig[HEALER_CATALOG_SIGNATURE_SIZE];
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *ctx;
	gboolean ok;

	if (private_key == NULL || EVP_PKEY_id(private_key) != EVP_PKEY_ED25519) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "the signing key is not an Ed25519 private key");
		return NULL;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, private_key) == 1 &&
	     EVP_DigestSign(ctx, sig, &sig_len, data ? data : (const guint8 *)"", len) == 1 &&
	     sig_len == HEALER_CATALOG_SIGNATURE_SIZE;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		g_autofree char *why = healer_catalog_openssl_error();
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "signing failed: %s", why);
		return NULL;
	}
	return g_bytes_new(sig, sig_len);
}

EVP_PKEY *
healer_catalog_generate_key(GError **error)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_PKEY *key = NULL;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
		g_autofree char *why = healer_catalog_openssl_error();
		EVP_PKEY_CTX_free(ctx);
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "key generation failed: %s", why);
		return NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static gboolean
write_pem(const char *path, EVP_PKEY *key, gboolean private, GError **error)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	g_autoptr(GError) local_error = NULL;
	gboolean ok;

	if (bio == NULL || (private ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
	                            : PEM_write_bio_PUBKEY(bio, key)) != 1) {
		g_autofree char *why = healer_catalog_openssl_error();
		BIO_free(bio);
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "%s: cannot encode the key: %s", path, why);
		return FALSE;
	}
	len = BIO_get_mem_data(bio, &data);
	/* GLib writes a temporary file with this mode, fsyncs it and renames it over `path`. */
	ok = g_file_set_contents_full(path, data, len, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
	                              private ? 0600 : 0644, &local_error);
	OPENSSL_cleanse(data, (size_t)len);
	BIO_free(bio);
	if (!ok) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s", local_error->message);
		return FALSE;
	}
	return TRUE;
}

gboolean
healer_catalog_write_key_pair(const char *private_path, const char *public_path, GError **error)
{
	g_autoptr(EVP_PKEY) key = healer_catalog_generate_key(error);

	if (key == NULL)
		return FALSE;
	return write_pem(private_path, key, TRUE, error) && write_pem(public_path, key, FALSE, error);
}
