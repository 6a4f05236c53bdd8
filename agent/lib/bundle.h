/*
 * Offline bundles (docs/bundles.md): a directory or a tar archive (plain,
 * or compressed as libarchive reads it) holding a signed catalog
 * (catalog.json + catalog.json.sig, docs/catalog.md), an optional
 * bundle.json naming the catalog modules it carries, and those modules at
 * their catalog paths.  Nothing from a bundle is used before the catalog's
 * signature verifies, and no module leaves it before its size and SHA-256
 * match the signed catalog.
 *
 * Every fault is a GError in HEALER_ERROR whose message names the bundle,
 * the file and the fault: "bundle.tar: 1.2.0/system-part1.bin: SHA-256
 * mismatch (expected 5ebb..., got 1a2b...)".
 */
#pragma once

#include <glib.h>

#include "catalog.h"

G_BEGIN_DECLS

#define HEALER_BUNDLE_FORMAT         "healer-bundle"
#define HEALER_BUNDLE_FORMAT_VERSION 1
#define HEALER_BUNDLE_CATALOG        "catalog.json"
#define HEALER_BUNDLE_SIGNATURE      "catalog.json.sig"
#define HEALER_BUNDLE_MANIFEST       "bundle.json"
/*
 * Limits on what a bundle may make healerd hold or work through (issue 13):
 * every name and every entry is checked against them from its header,
 * before anything is kept or any of its data read or skipped (skipping an
 * entry of a compressed archive costs as much as reading it).
 */
/* The largest catalog.json or bundle.json read from a bundle (as upstream.c's catalog limit). */
#define HEALER_BUNDLE_MAX_METADATA (16 * 1024 * 1024)
/*
 * The largest other metadata file (releases.json, *.json.sig, ...), which
 * is passed over unread: the firmware build's releases.json is under 1 KiB.
 */
#define HEALER_BUNDLE_MAX_SKIPPED (1024 * 1024)
/* The largest module file: the store's own limit (store.c MAX_MODULE_FILE_SIZE). */
#define HEALER_BUNDLE_MAX_MODULE (64 * 1024 * 1024)
/*
 * The most data all entries of an archive may declare together: a bundle
 * of every release of every platform is a few MiB (the firmware build's
 * is 0.8 MiB); this bounds the decompression work of one import (read
 * twice: names first, then modules) to seconds of a worker thread.
 */
#define HEALER_BUNDLE_MAX_TOTAL (256 * 1024 * 1024)
/* The most entries (files and directories) an archive or directory bundle may hold: hundreds in practice. */
#define HEALER_BUNDLE_MAX_ENTRIES 4096
/* The longest entry name, in bytes: PATH_MAX; catalog paths ("1.2.0/system-part1.bin") are tens of bytes. */
#define HEALER_BUNDLE_MAX_NAME 4096
/*
 * All entry names together, in bytes: healerd keeps each name while it
 * reads an archive (duplicates, the listing check); 128 bytes for each of
 * the most entries.
 */
#define HEALER_BUNDLE_MAX_NAMES (HEALER_BUNDLE_MAX_ENTRIES * 128)

typedef struct {
	const HealerCatalogModule *module; /* borrowed from bundle->catalog */
	char *staged_path;                 /* verified copy in the staging dir: <staging_dir>/<sha256>.bin */
} HealerBundleModule;

typedef struct {
	char *source; /* the path opened, as given */
	GBytes *catalog_json;
	GBytes *catalog_sig; /* NULL when unsigned (allowed only with allow_unsigned) */
	HealerCatalog *catalog;
	char *key_id;          /* healer_catalog_key_id() of the verifying key, or "unsigned" */
	gboolean has_manifest; /* the bundle has a bundle.json (else it carries the whole catalog) */
	GPtrArray *modules;    /* HealerBundleModule*, in catalog order */
	char *staging_dir;     /* a fresh directory under staging_parent; removed by healer_bundle_free() */
} HealerBundle;

/*
 * Opens a bundle (a directory, or a file read as a tar archive), verifies
 * catalog.json's signature with `trusted_keys` (EVP_PKEY*;
 * healer_catalog_load_signed, so no serial rule: callers keep serials per
 * key), parses bundle.json, and copies every carried module into a fresh
 * directory under `staging_parent` (created if missing), checking each
 * file's size and SHA-256 against the catalog while copying (never trusting
 * an archive's own sizes; reads stop one byte past the catalog's size).
 *
 * Archives: absolute paths, "." or ".." components, symbolic and hard
 * links, devices, FIFOs, sparse files and duplicate entries are refused; a
 * leading "./" is accepted; every name and declared size is checked
 * against the limits above before anything of the entry is read.
 * Directories: symbolic links are refused, never followed (nor their
 * targets looked at), so a bundle cannot make healerd read outside it.  Either way, a file that is
 * neither a carried module nor metadata (healer_module_file_name_is_metadata:
 * *.json, *.json.sig) is refused: "FILE: not listed in the catalog".
 *
 * NULL on any fault, with nothing left in staging_parent:
 * HEALER_ERROR_NOT_FOUND (no such path), _PERMISSION_DENIED (path not
 * readable), _IO (reading or staging failed) or _INVALID_DATA (anything
 * wrong with the bundle).
 */
HealerBundle *healer_bundle_open(const char *path, GPtrArray *trusted_keys, gboolean allow_unsigned,
                                 const char *staging_parent, GError **error);
/*
 * The same for a descriptor someone else opened (ImportFd: read through it,
 * never reopened with healerd's rights): a directory or a regular file, open
 * for reading (O_PATH and write-only descriptors are refused,
 * HEALER_ERROR_PERMISSION_DENIED); `name` stands for it in every message.
 * `fd` is not closed; an archive is read from offset 0 with read() (the
 * offset moves).
 */
HealerBundle *healer_bundle_open_fd(int fd, const char *name, GPtrArray *trusted_keys, gboolean allow_unsigned,
                                    const char *staging_parent, GError **error);
void healer_bundle_free(HealerBundle *bundle);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerBundle, healer_bundle_free)

/*
 * Parses a bundle.json strictly against `catalog`:
 *     {"format": "healer-bundle", "format_version": 1, "modules": ["<sha256>", ...]}
 * Unknown keys, wrong types, a SHA-256 that is not 64 lowercase hex digits,
 * listed twice or not one of the catalog's modules are errors
 * (HEALER_ERROR_INVALID_DATA) naming the JSON path ("modules[2]: ...").
 * Returns the carried catalog modules (const HealerCatalogModule*, borrowed
 * from `catalog`), in catalog order: every module whose SHA-256 is listed.
 */
GPtrArray *healer_bundle_manifest_parse(const guint8 *json, gsize len, const HealerCatalog *catalog, GError **error);

/*
 * The catalog modules (const HealerCatalogModule*, borrowed, in catalog
 * order) of platform `platform_id` (-1: any) and release `release` (NULL:
 * any; otherwise the modules the catalog's release lists).  An unknown
 * release: NULL and HEALER_ERROR_NOT_FOUND naming the releases there are.
 * No match is an empty array, not an error.
 */
GPtrArray *healer_catalog_select(const HealerCatalog *catalog, int platform_id, const char *release, GError **error);

/* The bytes of a module (e.g. from a store), or NULL with an error.  healer_bundle_write checks them. */
typedef GBytes *(*HealerBundleReadFunc)(const HealerCatalogModule *module, gpointer user_data, GError **error);

/*
 * Writes a bundle of `selected` (const HealerCatalogModule*, from `catalog`,
 * which `catalog_json` is the text of) to `dest`:
 *   - a directory, when dest does not end in .tar, .tar.gz, .tgz, .tar.xz or
 *     .txz: dest must not exist; it is written under a temporary name beside
 *     it (every file fsynced) and renamed into place;
 *   - otherwise a tar archive (pax, gzip or xz compressed by the suffix),
 *     written to a temporary file beside dest, fsynced and renamed over it.
 * The parent directory must exist.  catalog.json, catalog.json.sig (when
 * `catalog_sig` is not NULL), bundle.json (always: the SHA-256s carried),
 * then the modules at their catalog paths, in catalog order.  A module
 * whose SHA-256 is selected is carried at every path the catalog gives it.
 * Each module's bytes (from `read`) are checked against the catalog's size
 * and SHA-256 before they are written: a mismatch is
 * HEALER_ERROR_INVALID_DATA "PATH: SHA-256 mismatch ...", and nothing is
 * left at dest.
 */
gboolean healer_bundle_write(const char *dest, GBytes *catalog_json, GBytes *catalog_sig, const HealerCatalog *catalog,
                             GPtrArray *selected, HealerBundleReadFunc read, gpointer user_data, GError **error);

/*
 * Whether the regular file open on `fd` is an archive by its content (read
 * with pread, the offset unchanged): a tar header (ustar magic or a valid
 * header checksum), or a gzip, bzip2, xz, lz4 or zstd stream, which the
 * bundle reader then reads as a tar.  Not by name: docs/bundles.md.
 */
gboolean healer_bundle_fd_is_archive(int fd);
/* The same for a path: FALSE for anything that is not a regular file (FIFOs are not opened blocking). */
gboolean healer_bundle_file_is_archive(const char *path);

/* Whether healer_bundle_write writes `dest` as an archive (by its suffix). */
gboolean healer_bundle_dest_is_archive(const char *dest);

G_END_DECLS
