/*
 * The tar archives of bundles (bundle.c), through libarchive in the
 * loadable module healer-archive.so (agent/modules/archive-libarchive.c,
 * healer-loadable.h), so that programs reading only directory bundles, and
 * healerd until its first tar import, never map libarchive and the
 * libraries it needs (libxml2, ICU, libstdc++, ...).
 *
 * A thin layer: what bundle.c needs of libarchive and no policy; bundle.c
 * checks every name, type and byte.  Messages (the *_error functions, NULL
 * when libarchive has none) are libarchive's own.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_ARCHIVE_MODULE      "healer-archive.so"
#define HEALER_ARCHIVE_GETTER      "healer_archive_module_get_funcs"
#define HEALER_ARCHIVE_ABI_VERSION 2 /* 2: reader_next gives a HealerArchiveEntry (sizes, sparse) */

typedef struct _HealerArchiveReader HealerArchiveReader;
typedef struct _HealerArchiveWriter HealerArchiveWriter;

typedef enum {
	HEALER_ARCHIVE_ENTRY_FILE,
	HEALER_ARCHIVE_ENTRY_DIRECTORY,
	HEALER_ARCHIVE_ENTRY_SYMLINK,
	HEALER_ARCHIVE_ENTRY_HARDLINK, /* whatever its file type says */
	HEALER_ARCHIVE_ENTRY_OTHER,    /* devices, FIFOs, sockets */
} HealerArchiveEntryType;

typedef enum {
	HEALER_ARCHIVE_NEXT_ENTRY,
	HEALER_ARCHIVE_NEXT_END,
	HEALER_ARCHIVE_NEXT_ERROR,
} HealerArchiveNext;

/* What an entry's header says, before any of its data is read. */
typedef struct {
	const char *path; /* raw, as stored (valid until the next call; may be NULL) */
	gsize path_len;   /* strlen(path), 0 when NULL */
	HealerArchiveEntryType type;
	gint64 size;     /* the declared size of its data (a sparse file's full size); -1 when unset */
	gboolean sparse; /* a sparse file (GNU or pax sparse headers): its holes are not in the archive */
} HealerArchiveEntry;

typedef enum {
	HEALER_ARCHIVE_COMPRESSION_NONE,
	HEALER_ARCHIVE_COMPRESSION_GZIP, /* with no time in the gzip header: the same input, the same bytes */
	HEALER_ARCHIVE_COMPRESSION_XZ,
} HealerArchiveCompression;

typedef struct {
	guint abi_version; /* HEALER_ARCHIVE_ABI_VERSION; first, as healer-loadable.h requires */

	/*
	 * Reading a tar archive from `fd` (not closed), plain or compressed with
	 * gzip, bzip2, xz, lz4 or zstd (what healer_bundle_fd_is_archive()
	 * recognises), each only through libarchive's own
	 * library support: never an external program (which libarchive would
	 * otherwise run for lrzip, lzop, grzip, ... on a bundle author's say-so).
	 */
	HealerArchiveReader *(*reader_new)(void);
	gboolean (*reader_open_fd)(HealerArchiveReader *reader, int fd, gsize block_size);
	/* The next entry's header (entry->path valid until the next call). */
	HealerArchiveNext (*reader_next)(HealerArchiveReader *reader, HealerArchiveEntry *entry);
	/* The current entry's data: bytes read, 0 at its end, < 0 on error. */
	gssize (*reader_read)(HealerArchiveReader *reader, void *buffer, gsize len);
	const char *(*reader_error)(HealerArchiveReader *reader);
	void (*reader_free)(HealerArchiveReader *reader);

	/* Writing a pax tar archive to `fd` (not closed). */
	HealerArchiveWriter *(*writer_new)(HealerArchiveCompression compression);
	gboolean (*writer_open_fd)(HealerArchiveWriter *writer, int fd);
	/* A regular file, mode 0644. */
	gboolean (*writer_add_file)(HealerArchiveWriter *writer, const char *path, const guint8 *data, gsize len,
	                            gint64 mtime);
	gboolean (*writer_close)(HealerArchiveWriter *writer);
	const char *(*writer_error)(HealerArchiveWriter *writer);
	void (*writer_free)(HealerArchiveWriter *writer);
} HealerArchiveFuncs;

/* healer-archive.so's table, loaded on first use (healer_loadable_get()), or NULL with an error. */
const HealerArchiveFuncs *healer_archive_funcs(GError **error);

G_END_DECLS
