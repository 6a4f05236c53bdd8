#include "store-layout.h"

#include <string.h>

#define STORE_DIR        "store"
#define INDEX_NAME       "index.json"
#define MODULE_SUFFIX    ".bin"
#define CATALOGS_DIR     "catalogs"
#define CATALOG_SUFFIX   ".json"
#define SIGNATURE_SUFFIX ".json.sig"
#define SHA256_HEX_LEN   64
/* g_file_set_contents() writes NAME.XXXXXX, then renames it to NAME. */
#define TEMP_SUFFIX_LEN 7

char *
healer_store_layout_store_dir(const char *state_dir)
{
	return g_build_filename(state_dir, STORE_DIR, NULL);
}

char *
healer_store_layout_index_path(const char *store_dir)
{
	return g_build_filename(store_dir, INDEX_NAME, NULL);
}

char *
healer_store_layout_module_path(const char *store_dir, const char *sha256_hex)
{
	g_autofree char *name = g_strconcat(sha256_hex, MODULE_SUFFIX, NULL);

	return g_build_filename(store_dir, name, NULL);
}

gboolean
healer_store_layout_is_sha256_hex(const char *text, gsize len)
{
	if (len != SHA256_HEX_LEN)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
			return FALSE;
	}
	return TRUE;
}

gboolean
healer_store_layout_is_module_name(const char *name)
{
	return strlen(name) == SHA256_HEX_LEN + strlen(MODULE_SUFFIX) &&
	       healer_store_layout_is_sha256_hex(name, SHA256_HEX_LEN) &&
	       strcmp(name + SHA256_HEX_LEN, MODULE_SUFFIX) == 0;
}

gboolean
healer_store_layout_is_temp_name(const char *name)
{
	gsize len = strlen(name);
	gsize module_len = SHA256_HEX_LEN + strlen(MODULE_SUFFIX);
	gsize index_len = strlen(INDEX_NAME);

	if (len == module_len + TEMP_SUFFIX_LEN)
		return healer_store_layout_is_sha256_hex(name, SHA256_HEX_LEN) &&
		       strncmp(name + SHA256_HEX_LEN, MODULE_SUFFIX ".", strlen(MODULE_SUFFIX) + 1) == 0;
	if (len == index_len + TEMP_SUFFIX_LEN)
		return g_str_has_prefix(name, INDEX_NAME ".");
	return FALSE;
}

char *
healer_store_layout_catalogs_dir(const char *state_dir)
{
	return g_build_filename(state_dir, CATALOGS_DIR, NULL);
}

static char *
catalog_file(const char *catalogs_dir, const char *key_id, const char *suffix)
{
	g_autofree char *name = g_strconcat(key_id, suffix, NULL);

	return g_build_filename(catalogs_dir, name, NULL);
}

char *
healer_store_layout_catalog_path(const char *catalogs_dir, const char *key_id)
{
	return catalog_file(catalogs_dir, key_id, CATALOG_SUFFIX);
}

char *
healer_store_layout_signature_path(const char *catalogs_dir, const char *key_id)
{
	return catalog_file(catalogs_dir, key_id, SIGNATURE_SUFFIX);
}

char *
healer_store_layout_catalog_key_id(const char *name)
{
	if (name[0] == '.' || !g_str_has_suffix(name, CATALOG_SUFFIX))
		return NULL;
	return g_strndup(name, strlen(name) - strlen(CATALOG_SUFFIX));
}
