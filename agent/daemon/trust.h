/*
 * What healerd trusts (docs/catalog.md, "Trust and acceptance"): the
 * Ed25519 public keys of [store] trusted-keys, and the signed catalogs it
 * has accepted, one per signing key, kept verbatim in
 * <state-dir>/catalogs/<key-id>.json and <key-id>.json.sig so they are
 * verified again at every start and can be exported in a bundle.
 *
 * A module may enter the store only when an accepted catalog lists its
 * whole-file SHA-256 and size (healer_trust_admits()), unless the
 * development switch allow-unsigned is on.  The serial rule is per key: a
 * catalog is accepted when its serial is at least the last one accepted
 * from the same key, so one publisher cannot replay an old catalog and two
 * publishers (the package's firmware, an upstream) do not interfere.
 */
#pragma once

#include <glib.h>

#include "catalog.h"

G_BEGIN_DECLS

typedef struct _HealerTrust HealerTrust;

typedef struct {
	char *key_id;           /* healer_catalog_key_id(), or "unsigned" */
	GBytes *json;           /* the exact bytes accepted */
	GBytes *sig;            /* NULL for an unsigned catalog (allow-unsigned) */
	HealerCatalog *catalog; /* parsed from json */
	char *source;           /* where it came from last: a URL, a bundle, a directory, or "the state directory" */
} HealerTrustedCatalog;

/*
 * Reads the keys of every directory in `key_dirs` (a directory that does not
 * exist is skipped; a file that is not an Ed25519 public key is a warning)
 * and the catalogs kept in <state_dir>/catalogs/, each verified again: one
 * that no longer verifies (its key was removed, the file was altered) is
 * logged and ignored.  Errors only when the state directory is unusable.
 */
HealerTrust *healer_trust_new(const char *state_dir, const char *const *key_dirs, gboolean allow_unsigned,
                              GError **error);
void healer_trust_free(HealerTrust *trust);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerTrust, healer_trust_free)

GPtrArray *healer_trust_get_keys(HealerTrust *trust); /* EVP_PKEY*, owned by the trust */
gboolean healer_trust_get_allow_unsigned(HealerTrust *trust);

/*
 * Checks a catalog as healer_trust_offer() would, without accepting it:
 * signature, format, and the serial rule against the catalog held for the
 * same key (equal serial: the bytes must be the same).  On success the
 * parsed catalog and the key id.  Errors: HEALER_ERROR_INVALID_DATA, the
 * message saying why.
 */
gboolean healer_trust_check(HealerTrust *trust, GBytes *json, GBytes *sig, HealerCatalog **catalog_out,
                            char **key_id_out, GError **error);

/*
 * Checks and accepts a catalog: it replaces the one held for its key and
 * is written to the state directory (atomically).  `changed` (may be NULL)
 * is FALSE when the same catalog was held already.  The result is owned by
 * the trust and valid until the next accepted catalog for that key.
 */
const HealerTrustedCatalog *healer_trust_offer(HealerTrust *trust, GBytes *json, GBytes *sig, const char *source,
                                               gboolean *changed, GError **error);

/* Every accepted catalog (const HealerTrustedCatalog*), by key id. Free the array. */
GPtrArray *healer_trust_list_catalogs(HealerTrust *trust);

/* The accepted catalogs' module with this whole-file SHA-256 (and its catalog), or NULL. */
const HealerCatalogModule *healer_trust_find_module(HealerTrust *trust, const guint8 sha256[HEALER_SHA256_SIZE],
                                                    const HealerTrustedCatalog **catalog_out);

/*
 * Whether a module file may enter the store: an accepted catalog lists its
 * SHA-256 with this size.  With allow-unsigned every module is admitted
 * (and `unsigned_out`, when given, says it was only the switch).
 * Otherwise FALSE with `reason` saying what to do.
 */
gboolean healer_trust_admits(HealerTrust *trust, const char *sha_hex, guint64 size, gboolean *unsigned_out,
                             char **reason);

G_END_DECLS
