/*
 * The signed catalog (docs/catalog.md): a JSON list of the modules an
 * upstream repository or a bundle offers and the releases they make up,
 * with a serial number that only grows, and a detached Ed25519 signature
 * (raw 64 bytes in CATALOG.sig) over the exact catalog bytes.
 *
 * "Catalog" means this and nothing else.  A module inventory
 * (module-inventory.h) summarises module files found on disk; the
 * publisher writes a catalog of one (healer_catalog_build_from_directory,
 * agent/tools/catalog-publish.h).
 *
 * This is the gateway's side: parsing and verifying.  Writing and signing
 * catalogs and making keys is the publisher's (agent/tools/catalog-publish.h),
 * which healerd and healerctl do not link.
 *
 * Every rejection is HEALER_ERROR_INVALID_DATA with a message that says why:
 * "catalog is unsigned", "catalog is signed by an unknown key", "modules[3].path:
 * ...", "catalog is older than the last accepted catalog: serial 4 < 7".
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>

#include "module-inventory.h"
#include "module-checksums.h"
#include "release-table.h"

G_BEGIN_DECLS

#define HEALER_CATALOG_FORMAT           "healer-catalog"
#define HEALER_CATALOG_FORMAT_VERSION   1
#define HEALER_CATALOG_SIGNATURE_SIZE   64 /* a raw Ed25519 signature */
#define HEALER_CATALOG_MAX_DEPENDENCIES 16

typedef struct {
	guint16 platform_id;
	guint8 function; /* enum module_function */
	guint8 index;
	guint16 version;
	char *release; /* "2.2.0" or "2.2.0..2.3.1"; NULL when unknown */
	gboolean prerelease;
	guint64 size;
	guint8 sha256[HEALER_SHA256_SIZE];        /* of the whole file */
	guint8 module_sha256[HEALER_SHA256_SIZE]; /* the module's own (suffix) SHA-256: a describe's "u" */
	GArray *dependencies;                     /* HealerModuleDependency, as the module header declares them */
	char *path;                               /* relative, '/'-separated, no "..", no leading '/' */
} HealerCatalogModule;

typedef struct {
	char *name;
	GPtrArray *modules; /* char*: lowercase hex SHA-256s, each one of the catalog's modules */
} HealerCatalogRelease;

typedef struct {
	guint64 serial;
	char *created;       /* ISO-8601 UTC, as written */
	char *key_id;        /* "key_id": the signing key's id as the publisher wrote it, or NULL (optional) */
	GPtrArray *modules;  /* HealerCatalogModule* */
	GPtrArray *releases; /* HealerCatalogRelease* */
} HealerCatalog;

void healer_catalog_free(HealerCatalog *catalog);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerCatalog, healer_catalog_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)

/*
 * Parses catalog JSON strictly (unknown keys, wrong types, bad paths,
 * duplicate paths, releases naming absent modules are all errors, each
 * message naming the JSON path).  No signature check: use
 * healer_catalog_load_verified for anything from outside.
 */
HealerCatalog *healer_catalog_parse(const guint8 *json, gsize len, GError **error);

/*
 * Verifies `sig` (HEALER_CATALOG_SIGNATURE_SIZE raw bytes) over exactly
 * `json` with any of `trusted_keys` (EVP_PKEY*, Ed25519), then parses it and
 * checks serial >= min_serial.  `sig` NULL means unsigned: refused unless
 * `allow_unsigned` (a development switch; the catalog is then only parsed).
 */
HealerCatalog *healer_catalog_load_verified(const guint8 *json, gsize len, const guint8 *sig, gsize sig_len,
                                            GPtrArray *trusted_keys, guint64 min_serial, gboolean allow_unsigned,
                                            GError **error);

/*
 * Like healer_catalog_load_verified() without the serial rule, for callers
 * that keep the last serial per signing key: `key_id_out` (may be NULL)
 * gets the id of the key that verified the signature
 * (healer_catalog_key_id()), or "unsigned" for an unsigned catalog let in
 * by `allow_unsigned`.
 */
HealerCatalog *healer_catalog_load_signed(const guint8 *json, gsize len, const guint8 *sig, gsize sig_len,
                                          GPtrArray *trusted_keys, gboolean allow_unsigned, char **key_id_out,
                                          GError **error);

/* A key's id: the first 16 hex digits of the SHA-256 of its SubjectPublicKeyInfo DER. */
char *healer_catalog_key_id(EVP_PKEY *key);

/* The catalog's module as an inventory entry (what the resolver plans with), its path `base`/module->path (base may be
 * NULL). */
HealerInventoryEntry *healer_catalog_module_to_inventory_entry(const HealerCatalogModule *module, const char *base);

/* The module with this whole-file SHA-256, or NULL. */
const HealerCatalogModule *healer_catalog_find(const HealerCatalog *catalog, const guint8 sha256[HEALER_SHA256_SIZE]);

/*
 * Reads every "*.pem" public key in `dir` (sorted by name) into a new array
 * of EVP_PKEY* (freed with the array).  A file that is not a PEM public key,
 * or a key that is not Ed25519, is skipped with a warning "FILE: reason"
 * appended to `warnings` (char*, may be NULL).  FALSE only when `dir` cannot
 * be read.  An empty result is not an error here.
 */
gboolean healer_catalog_load_trusted_keys(const char *dir, GPtrArray **keys, GPtrArray *warnings, GError **error);

/* One PEM key file: a public key, or a private key (for signing). */
EVP_PKEY *healer_catalog_load_public_key(const char *path, GError **error);
EVP_PKEY *healer_catalog_load_private_key(const char *path, GError **error);

/*
 * Why `path` is not a module path a catalog may hold (relative, '/'-separated,
 * no empty, "." or ".." component, no backslash or control character), or
 * NULL when it is.  The publisher (agent/tools/catalog-publish.c) checks what
 * it writes with the same rule the parser applies.
 */
const char *healer_catalog_path_fault(const char *path);

/* OpenSSL's last error as text, for messages; clears OpenSSL's error queue. */
char *healer_catalog_openssl_error(void);

G_END_DECLS
