/*
 * The publisher's side of the signed catalog (docs/catalog.md): writing a
 * catalog of a module directory, signing it, and making Ed25519 keys.  Used
 * by healer-publish and the tests; healerd and healerctl only parse and
 * verify catalogs (agent/lib/catalog.h), so none of this is linked into them.
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>

#include "catalog.h"
#include "release-table.h"

G_BEGIN_DECLS

/*
 * Makes a catalog of every module file under `dir` (healer_module_inventory_load_dir;
 * a file that is not a usable module is an error, not a warning, so nothing
 * is silently left out).  `releases` (may be NULL) names each module's
 * release and makes the "releases" list: every release of the table with the
 * modules of the directory that it ships.  "created" is now, or
 * $SOURCE_DATE_EPOCH when set.  Returns the JSON text, newline-terminated.
 */
GBytes *healer_catalog_build_from_directory(const char *dir, guint64 serial, const HealerReleaseTable *releases,
                                            GError **error);
/*
 * The same, naming the key that will sign it ("key_id", healer_catalog_key_id()),
 * so a gateway can tell "signed by a key I do not trust" from "altered after
 * signing".  `key_id` may be NULL (left out).
 */
GBytes *healer_catalog_build_from_directory_for_key(const char *dir, guint64 serial, const HealerReleaseTable *releases,
                                                    const char *key_id, GError **error);

/* The raw 64-byte Ed25519 signature of `json` with `private_key`. */
GBytes *healer_catalog_sign(GBytes *json, EVP_PKEY *private_key, GError **error);

/* A fresh Ed25519 key pair. */
EVP_PKEY *healer_catalog_generate_key(GError **error);
/*
 * Writes a fresh Ed25519 key pair: the private key as PKCS#8 PEM to
 * `private_path` (mode 0600, atomically) and the public key as
 * SubjectPublicKeyInfo PEM to `public_path` (0644, atomically).
 */
gboolean healer_catalog_write_key_pair(const char *private_path, const char *public_path, GError **error);

G_END_DECLS
