/*
 * healer-archive.so: the libarchive side of healer-archive.h.  Only this
 * module links libarchive; bundle.c loads it on its first tar archive.
 */
#include <archive.h>
#include <archive_entry.h>
#include <gmodule.h>
#include <string.h>

#include "healer-archive.h"

struct _HealerArchiveReader {
	struct archive *a;
};

struct _HealerArchiveWriter {
	struct archive *a;
};

/*
 * The compressions a bundle may use.  libarchive registers each one either
 * way, but falls back to running an external program when it was built
 * without the library (and says so with ARCHIVE_WARN): a filter is used
 * only when a scratch reader shows libarchive has the library itself.
 */
static int (*const filters[])(struct archive *) = {
        archive_read_support_filter_gzip, archive_read_support_filter_bzip2, archive_read_support_filter_xz,
        archive_read_support_filter_lz4,  archive_read_support_filter_zstd,
};

static HealerArchiveReader *
reader_new(void)
{
	HealerArchiveReader *r = g_new0(HealerArchiveReader, 1);

	r->a = archive_read_new();
	for (gsize i = 0; i < G_N_ELEMENTS(filters); i++) {
		struct archive *probe = archive_read_new();
		if (filters[i](probe) == ARCHIVE_OK)
			filters[i](r->a);
		archive_read_free(probe);
	}
	archive_read_support_format_tar(r->a);
	return r;
}

static gboolean
reader_open_fd(HealerArchiveReader *r, int fd, gsize block_size)
{
	return archive_read_open_fd(r->a, fd, block_size) == ARCHIVE_OK;
}

static HealerArchiveNext
reader_next(HealerArchiveReader *r, HealerArchiveEntry *out)
{
	struct archive_entry *entry = NULL;
	int status = archive_read_next_header(r->a, &entry);

	if (status == ARCHIVE_EOF)
		return HEALER_ARCHIVE_NEXT_END;
	/* ARCHIVE_WARN still gives an entry (e.g. an unknown pax keyword): bundle.c judges it. */
	if (status < ARCHIVE_WARN)
		return HEALER_ARCHIVE_NEXT_ERROR;
	out->path = archive_entry_pathname(entry);
	out->path_len = out->path != NULL ? strlen(out->path) : 0;
	/* A hard link entry may say AE_IFREG: the link is what matters. */
	if (archive_entry_hardlink(entry) != NULL)
		out->type = HEALER_ARCHIVE_ENTRY_HARDLINK;
	else if (archive_entry_filetype(entry) == AE_IFREG)
		out->type = HEALER_ARCHIVE_ENTRY_FILE;
	else if (archive_entry_filetype(entry) == AE_IFDIR)
		out->type = HEALER_ARCHIVE_ENTRY_DIRECTORY;
	else if (archive_entry_filetype(entry) == AE_IFLNK)
		out->type = HEALER_ARCHIVE_ENTRY_SYMLINK;
	else
		out->type = HEALER_ARCHIVE_ENTRY_OTHER;
	/* For a sparse file this is its full size (GNU.sparse.realsize), not what the archive stores. */
	out->size = archive_entry_size_is_set(entry) ? (gint64)archive_entry_size(entry) : -1;
	out->sparse = archive_entry_sparse_count(entry) > 0;
	return HEALER_ARCHIVE_NEXT_ENTRY;
}

static gssize
reader_read(HealerArchiveReader *r, void *buffer, gsize len)
{
	return archive_read_data(r->a, buffer, len);
}

static const char *
reader_error(HealerArchiveReader *r)
{
	return archive_error_string(r->a);
}

static void
reader_free(HealerArchiveReader *r)
{
	if (r == NULL)
		return;
	archive_read_free(r->a);
	g_free(r);
}

static HealerArchiveWriter *
writer_new(HealerArchiveCompression compression)
{
	HealerArchiveWriter *w = g_new0(HealerArchiveWriter, 1);

	w->a = archive_write_new();
	archive_write_set_format_pax_restricted(w->a);
	switch (compression) {
	case HEALER_ARCHIVE_COMPRESSION_GZIP:
		archive_write_add_filter_gzip(w->a);
		/* No time in the gzip header: the same bundle gives the same bytes. */
		archive_write_set_filter_option(w->a, "gzip", "timestamp", NULL);
		break;
	case HEALER_ARCHIVE_COMPRESSION_XZ:
		archive_write_add_filter_xz(w->a);
		break;
	case HEALER_ARCHIVE_COMPRESSION_NONE:
		archive_write_add_filter_none(w->a);
		break;
	}
	return w;
}

static gboolean
writer_open_fd(HealerArchiveWriter *w, int fd)
{
	return archive_write_open_fd(w->a, fd) == ARCHIVE_OK;
}

static gboolean
writer_add_file(HealerArchiveWriter *w, const char *path, const guint8 *data, gsize len, gint64 mtime)
{
	struct archive_entry *entry = archive_entry_new();
	gboolean ok = FALSE;

	archive_entry_set_pathname(entry, path);
	archive_entry_set_filetype(entry, AE_IFREG);
	archive_entry_set_perm(entry, 0644);
	archive_entry_set_size(entry, (la_int64_t)len);
	archive_entry_set_mtime(entry, (time_t)mtime, 0);
	if (archive_write_header(w->a, entry) != ARCHIVE_OK)
		goto out;
	while (len > 0) {
		la_ssize_t n = archive_write_data(w->a, data, len);
		if (n <= 0)
			goto out;
		data += n;
		len -= (gsize)n;
	}
	ok = TRUE;
out:
	archive_entry_free(entry);
	return ok;
}

static gboolean
writer_close(HealerArchiveWriter *w)
{
	return archive_write_close(w->a) == ARCHIVE_OK;
}

static const char *
writer_error(HealerArchiveWriter *w)
{
	return archive_error_string(w->a);
}

static void
writer_free(HealerArchiveWriter *w)
{
	if (w == NULL)
		return;
	archive_write_free(w->a);
	g_free(w);
}

static const HealerArchiveFuncs funcs = {
        .abi_version = HEALER_ARCHIVE_ABI_VERSION,
        .reader_new = reader_new,
        .reader_open_fd = reader_open_fd,
        .reader_next = reader_next,
        .reader_read = reader_read,
        .reader_error = reader_error,
        .reader_free = reader_free,
        .writer_new = writer_new,
        .writer_open_fd = writer_open_fd,
        .writer_add_file = writer_add_file,
        .writer_close = writer_close,
        .writer_error = writer_error,
        .writer_free = writer_free,
};

/* The module's one exported symbol (the rest is hidden: -fvisibility=hidden in meson.build). */
G_MODULE_EXPORT const HealerArchiveFuncs *healer_archive_module_get_funcs(void);

const HealerArchiveFuncs *
healer_archive_module_get_funcs(void)
{
	return &funcs;
}
