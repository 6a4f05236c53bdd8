/* memfd_create() */
#define _GNU_SOURCE

#include "import-dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "healer-archive.h"
#include "healer-error.h"
#include "module-inventory.h"

/* The same bound as healerd's walk (agent/daemon/import-walk.h): module trees are 2 or 3 deep. */
#define MAX_DEPTH 8

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each regular file under `dir_fd` (links to files followed, to directories not), sorted, as DIR-relative paths. */
static void
list_files(int dir_fd, const char *rel, guint depth, gboolean skip_metadata, GPtrArray *files)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	DIR *dir;
	struct dirent *de;
	int fd = openat(dir_fd, rel[0] != '\0' ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || (skip_metadata && healer_module_file_name_is_metadata(de->d_name)))
			continue;
		g_ptr_array_add(names, g_strdup(de->d_name));
	}
	closedir(dir);
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *child = rel[0] != '\0' ? g_build_filename(rel, g_ptr_array_index(names, i), NULL)
		                                        : g_strdup(g_ptr_array_index(names, i));
		struct stat st;

		if (fstatat(dir_fd, child, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < MAX_DEPTH)
				list_files(dir_fd, child, depth + 1, skip_metadata, files);
			continue;
		}
		if (S_ISLNK(st.st_mode) && (fstatat(dir_fd, child, &st, 0) != 0 || !S_ISREG(st.st_mode)))
			continue;
		if (S_ISREG(st.st_mode))
			g_ptr_array_add(files, g_steal_pointer(&child));
	}
}

/* Opens `rel` under `dir_fd` for reading, without blocking on a FIFO swapped in; -1 with errno. */
static int
open_file(int dir_fd, const char *rel)
{
	struct stat st;
	int fd = openat(dir_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

static gboolean
import_fd(HealerctlClient *client, int fd, const char *name, guint *added, GPtrArray *rejected, GError **error)
{
	g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new_from_array(&fd, 1); /* takes the descriptor */
	g_auto(GStrv) refused = NULL;
	guint n = 0;

	if (!healer_dbus_healer1_call_import_fd_sync(client->manager, g_variant_new_handle(0), name, fd_list, &n,
	                                             &refused, NULL, NULL, error))
		return FALSE;
	*added += n;
	for (guint i = 0; refused != NULL && refused[i] != NULL; i++)
		g_ptr_array_add(rejected, g_strdup(refused[i]));
	return TRUE;
}

/* A directory bundle, read with our rights and packed as a tar archive healerd reads whole. */
static gboolean
import_bundle(HealerctlClient *client, int dir_fd, const char *path, guint *added, GPtrArray *rejected, GError **error)
{
	const HealerArchiveFuncs *af = healer_archive_funcs(error);
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *name = g_strdup_printf("%s (packed by healerctl).tar", path);
	HealerArchiveWriter *w;
	gboolean ok = TRUE;
	int memfd;

	if (af == NULL)
		return FALSE;
	memfd = memfd_create("healerctl-bundle.tar", MFD_CLOEXEC);
	if (memfd < 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot pack %s: %s", path, g_strerror(err));
		return FALSE;
	}
	list_files(dir_fd, "", 0, FALSE, files);
	w = af->writer_new(HEALER_ARCHIVE_COMPRESSION_NONE);
	if (!af->writer_open_fd(w, memfd)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot pack %s: %s", path, af->writer_error(w));
		ok = FALSE;
	}
	for (guint i = 0; ok && i < files->len; i++) {
		const char *rel = g_ptr_array_index(files, i);
		g_autofree char *full = g_build_filename(path, rel, NULL);
		g_autofree char *data = NULL;
		g_autoptr(GError) read_error = NULL;
		gsize len = 0;
		int fd = open_file(dir_fd, rel);
		g_autoptr(GIOChannel) channel = NULL;

		if (fd < 0) {
			int err = errno;
			g_set_error(error, HEALER_ERROR,
			            err == EACCES ? HEALER_ERROR_PERMISSION_DENIED : HEALER_ERROR_IO, "%s: %s", full,
			            g_strerror(err));
			ok = FALSE;
			break;
		}
		channel = g_io_channel_unix_new(fd);
		g_io_channel_set_close_on_unref(channel, TRUE);
		if (g_io_channel_set_encoding(channel, NULL, &read_error) != G_IO_STATUS_NORMAL ||
		    g_io_channel_read_to_end(channel, &data, &len, &read_error) != G_IO_STATUS_NORMAL) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", full, read_error->message);
			ok = FALSE;
			break;
		}
		if (!af->writer_add_file(w, rel, (const guint8 *)data, len, 0)) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot pack %s: %s", full,
			            af->writer_error(w));
			ok = FALSE;
		}
	}
	if (ok && !af->writer_close(w)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot pack %s: %s", path, af->writer_error(w));
		ok = FALSE;
	}
	af->writer_free(w);
	if (!ok) {
		close(memfd);
		return FALSE;
	}
	lseek(memfd, 0, SEEK_SET);
	return import_fd(client, memfd, name, added, rejected, error);
}

gboolean
healerctl_import_directory(HealerctlClient *client, int dir_fd, const char *path, guint *added, GPtrArray *rejected,
                           GError **error)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	struct stat st;

	if (fstatat(dir_fd, HEALER_BUNDLE_CATALOG, &st, 0) == 0)
		return import_bundle(client, dir_fd, path, added, rejected, error);
	/* A plain directory: module by module, as healerd's own walk would, each file opened by us. */
	list_files(dir_fd, "", 0, TRUE, files);
	for (guint i = 0; i < files->len; i++) {
		const char *rel = g_ptr_array_index(files, i);
		g_autofree char *full = g_build_filename(path, rel, NULL);
		int fd = open_file(dir_fd, rel);

		if (fd < 0) {
			g_ptr_array_add(rejected, g_strdup_printf("%s: %s", full, g_strerror(errno)));
			continue;
		}
		if (!import_fd(client, fd, full, added, rejected, error))
			return FALSE;
	}
	return TRUE;
}
