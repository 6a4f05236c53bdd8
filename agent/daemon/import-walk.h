/*
 * Walking a directory a caller asked healerd to import (ImportModules, ImportFd of a directory),
 * in a worker thread so the main loop keeps answering, within limits so a huge or deep tree
 * (someone's /usr/share: 62,000 files) costs bounded time and memory and one journal record.
 *
 * The worker reads files and keeps only those that parse as one valid module; admission and
 * storing happen on the main loop (healer_store_import_many()), where the trust lives.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Module trees (healerctl export, the shipped firmware) are 2 or 3 levels deep; 8 leaves room. */
#define HEALER_WALK_MAX_DEPTH 8
/* Directory entries looked at: the same bound as a directory bundle's (HEALER_BUNDLE_MAX_ENTRIES). */
#define HEALER_WALK_MAX_ENTRIES 65536
/* Bytes read in all: every module of every release of every platform is a few MiB; 256 MiB is ample. */
#define HEALER_WALK_MAX_BYTES (256u * 1024 * 1024)
/* Rejected files named in the reply; the rest are counted (the journal summary has the counts). */
#define HEALER_WALK_MAX_REPORTED 100

typedef struct {
	GPtrArray *names;    /* char*: each module found, as NAME/relative/path */
	GPtrArray *contents; /* GBytes*: its bytes, index for index */
	GPtrArray *rejected; /* char*: "FILE: reason", the first HEALER_WALK_MAX_REPORTED */
	guint scanned;       /* regular files read */
	guint not_modules;   /* read, but not one valid module */
	guint not_regular;   /* FIFOs, devices, sockets, links to directories: never opened */
	guint unreadable;    /* could not be opened or read, or a subdirectory could not be listed */
	guint too_large;     /* larger than any module: never read */
	guint too_deep;      /* directories below HEALER_WALK_MAX_DEPTH: not entered */
	char *stopped;       /* NULL, or why the walk ended early (a limit) */
} HealerImportWalk;

void healer_import_walk_free(HealerImportWalk *walk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerImportWalk, healer_import_walk_free)

/* Files skipped for any reason (not modules, not regular, unreadable, too large). */
guint healer_import_walk_skipped(const HealerImportWalk *walk);

/*
 * Walks the directory open as `dir_fd` (borrowed: keep it open until the callback) in a worker,
 * through the descriptor (openat, never a path): names starting with '.' and metadata (*.json,
 * *.json.sig) are passed over silently, symbolic links to files are read, links to directories
 * and every other non-regular file are counted and never opened.  `name` prefixes every path.
 */
void healer_import_walk_async(int dir_fd, const char *name, GAsyncReadyCallback callback, gpointer user_data);
HealerImportWalk *healer_import_walk_finish(GAsyncResult *result, GError **error);

/* The walk done in the calling thread (the worker's body; tests). */
HealerImportWalk *healer_import_walk(int dir_fd, const char *name);

G_END_DECLS
