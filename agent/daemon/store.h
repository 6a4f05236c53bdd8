/*
 * The module store: content-addressed copies of every valid module healerd
 * may flash, in <state-dir>/store/:
 *
 *     <sha256 of the whole file>.bin    one module, exactly the file imported
 *     index.json                        [{"sha256", "size", "platform_id",
 *                                         "function", "index", "version",
 *                                         "release", "source"}, ...]
 *
 * Every write is atomic (temp file, fsync, rename), so a crash or a full
 * disk leaves the old index or the new one, never a mix.  The store is
 * seeded from the configured module directories; a file that is not one
 * valid, single module (corrupt, foreign, COMBINED, unreadable) is reported
 * and skipped, never indexed.  Files are checked again when the store is
 * opened and before one is flashed (healer_store_read_verified()).
 */
#pragma once

#include <glib.h>

#include "release-table.h"

G_BEGIN_DECLS

typedef struct _HealerStore HealerStore;

/* Larger files are not modules (the largest real ones are about 1 MiB): never read further. */
#define HEALER_STORE_MAX_MODULE_SIZE (64u * 1024 * 1024)

typedef struct {
	char *sha256; /* lowercase hex of the whole file: its name in the store */
	char *path;   /* <state-dir>/store/<sha256>.bin */
	guint64 size;
	guint16 platform_id;
	guint8 function; /* MODULE_FUNCTION_* */
	guint8 index;
	guint16 version;
	char *release; /* "2.0.0", "1.0.0..1.1.0" (from the release tables), or NULL */
	char *source;  /* the path it was imported from; NULL when recovered from the store itself */
} HealerStoreEntry;

typedef void (*HealerStoreChangedFunc)(HealerStore *store, gpointer user_data);

/*
 * Decides whether a valid module file may enter the store (healerd: a
 * trusted catalog lists it).  FALSE with `reason` ("is not listed in any
 * trusted catalog ...") keeps it out.  `path` is the file being imported.
 */
typedef gboolean (*HealerStoreAdmitFunc)(const char *sha_hex, guint64 size, const char *path, char **reason,
                                         gpointer user_data);

/*
 * Opens (creating, mode 0750) <state_dir> and <state_dir>/store, and loads
 * the index.  Entries whose file is missing, of another size or whose
 * SHA-256 does not match are dropped (the file set aside as .corrupt) and
 * module files the index lacks (a crash between copy and index write) are
 * re-indexed, each logged as a STORE_REJECTED / info record; the index is
 * rewritten when anything changed.  An unreadable index.json is set aside
 * as index.json.corrupt and rebuilt from the files.
 */
HealerStore *healer_store_open(const char *state_dir, GError **error);
void healer_store_free(HealerStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerStore, healer_store_free)

const char *healer_store_get_directory(HealerStore *store);

/*
 * Release tables name the release of each module (the entries' `release`;
 * the first table that knows a module's version wins).  Takes ownership of
 * `table`.  Entries already stored are named again, and the index rewritten
 * if any name changed.
 */
gboolean healer_store_add_release_table(HealerStore *store, HealerReleaseTable *table, GError **error);

/*
 * Imports every regular file under `dir` (recursively; symlinks to files
 * are followed, symlinked directories are not; names starting with '.' and
 * *.json files, such as release tables, are skipped silently).  A file that
 * is not one valid module is logged (STORE_REJECTED, once per file version)
 * and appended to `warnings_out` (char*, "FILE: reason") when given.
 * Returns the number of modules newly added (0 when all were there
 * already).  Errors: `dir` unreadable, or writing the store failed
 * (modules copied before the failure stay stored and indexed); then 0.
 * Calls the changed function when something was added.
 */
guint healer_store_import_directory(HealerStore *store, const char *dir, GPtrArray *warnings_out, GError **error);

/*
 * Imports one file.  `sha_out` (optional) gets its SHA-256 hex, also when it
 * was already stored.  A file that is not one valid module:
 * HEALER_ERROR_INVALID_DATA "FILE: reason" (not logged).
 */
gboolean healer_store_import_file(HealerStore *store, const char *path, char **sha_out, GError **error);

/*
 * Imports the bytes of one file read elsewhere (a caller's descriptor, a worker): as
 * healer_store_import_file(), `name` standing for the file in messages and as the entry's source.
 */
gboolean healer_store_import_bytes(HealerStore *store, const char *name, GBytes *bytes, char **sha_out, GError **error);

/*
 * Imports files a worker read (`names`: char*, `contents`: GBytes*, index for index), each with
 * the admission check; a file that is not a module the store takes is appended to `rejected_out`
 * ("NAME: reason"; may be NULL) and not logged.  The index is written once.  Returns how many
 * were new; on a store write error 0 with `error` (modules stored before it stay).
 */
guint healer_store_import_many(HealerStore *store, GPtrArray *names, GPtrArray *contents, GPtrArray *rejected_out,
                               GError **error);

/*
 * Imports every file of `paths` or none: each must be one valid module the
 * admit function accepts, else HEALER_ERROR_INVALID_DATA "FILE: reason" and
 * nothing is written.  If writing the store fails part way, what this call
 * wrote is removed again and the index is as before.  `source` is recorded
 * as the entries' source.  `added_out` (may be NULL): how many were new.
 */
gboolean healer_store_import_all(HealerStore *store, GPtrArray *paths, const char *source, guint *added_out,
                                 GError **error);

/* The release name of a module no release table names (healerd: from the trusted catalog), or NULL. */
typedef char *(*HealerStoreReleaseFunc)(const char *sha_hex, gpointer user_data);
void healer_store_set_release_func(HealerStore *store, HealerStoreReleaseFunc func, gpointer user_data);

/* Sets the admission check for every import (NULL: any valid module). */
void healer_store_set_admit_func(HealerStore *store, HealerStoreAdmitFunc func, gpointer user_data);
/* Forgets the remembered verdicts on rejected files, so the next directory import judges them again. */
void healer_store_forget_rejections(HealerStore *store);

/* Every entry (const HealerStoreEntry*, owned by the store), in import order. Free the array. */
GPtrArray *healer_store_list(HealerStore *store);
guint healer_store_get_n_entries(HealerStore *store);
/* By SHA-256 hex (either case); NULL when not stored. */
const HealerStoreEntry *healer_store_lookup(HealerStore *store, const char *sha_hex);

/*
 * Reads the entry's file and checks its size and SHA-256; on success the
 * bytes (flash exactly these: they were checked).  On a mismatch or a
 * missing file: NULL, HEALER_ERROR_INVALID_DATA or _NOT_FOUND, and the
 * entry is retired: it leaves the list, lookups and the index (the file is
 * set aside as .corrupt) and the changed function is called.  The entry
 * pointer stays valid until the store is freed.
 */
GBytes *healer_store_read_verified(HealerStore *store, const HealerStoreEntry *entry, GError **error);
gboolean healer_store_verify_entry(HealerStore *store, const HealerStoreEntry *entry, GError **error);

/*
 * The verified bytes of stored module `sha_hex`, one copy shared by every
 * holder: the first acquisition reads and verifies the file
 * (healer_store_read_verified(), with its errors and retiring); later ones
 * get the same bytes, unread, while anyone holds them.  Once the last
 * holder released them they are freed, and the next acquisition verifies
 * the file again.  Bytes held stay valid even if the entry is retired
 * meanwhile: they matched its SHA-256.  The result is borrowed: valid until
 * the matching healer_store_release_module() (ref it to keep it longer).
 */
GBytes *healer_store_acquire_module(HealerStore *store, const char *sha_hex, GError **error);
void healer_store_release_module(HealerStore *store, const char *sha_hex);

/* Called after an import added modules and after an entry was retired. */
void healer_store_set_changed_func(HealerStore *store, HealerStoreChangedFunc func, gpointer user_data);

G_END_DECLS
