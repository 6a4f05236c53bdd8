/*
 * Where healerd keeps its modules and catalogs in its state directory: the
 * one description of that layout, used by the daemon's store (store.c) and
 * trust (trust.c), which write it, and by `healerctl export`, which reads it
 * with no daemon running.
 *
 *   STATE/store/index.json              what the store holds (store.c)
 *   STATE/store/SHA256.bin              a module, named by its SHA-256 (hex)
 *   STATE/store/NAME.XXXXXX             an atomic write cut short (removed)
 *   STATE/catalogs/KEYID.json           a catalog healerd accepted, by the
 *   STATE/catalogs/KEYID.json.sig       id of the key that signed it
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* STATE/store */
char *healer_store_layout_store_dir(const char *state_dir);
/* STORE/index.json */
char *healer_store_layout_index_path(const char *store_dir);
/* STORE/SHA256.bin, `sha256_hex` as healer_store_layout_is_sha256_hex() takes it. */
char *healer_store_layout_module_path(const char *store_dir, const char *sha256_hex);

/* Whether `text` (`len` bytes) is a SHA-256 as the store names modules: 64 lowercase hex digits. */
gboolean healer_store_layout_is_sha256_hex(const char *text, gsize len);
/* Whether a file name in STORE is a module's: SHA256.bin. */
gboolean healer_store_layout_is_module_name(const char *name);
/* Whether a file name in STORE is what an atomic write of a module or of the index left behind. */
gboolean healer_store_layout_is_temp_name(const char *name);

/* STATE/catalogs */
char *healer_store_layout_catalogs_dir(const char *state_dir);
/* CATALOGS/KEYID.json */
char *healer_store_layout_catalog_path(const char *catalogs_dir, const char *key_id);
/* CATALOGS/KEYID.json.sig */
char *healer_store_layout_signature_path(const char *catalogs_dir, const char *key_id);
/* The key id a file name in CATALOGS is the catalog of (KEYID.json, not hidden), or NULL. */
char *healer_store_layout_catalog_key_id(const char *name);

G_END_DECLS
