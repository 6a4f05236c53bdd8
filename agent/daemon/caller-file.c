/* O_PATH */
#define _GNU_SOURCE

#include "caller-file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "healer-error.h"
#include "healer-text.h"

const char *
healer_file_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "not a file";
	}
}

char *
healer_caller_name(const char *name)
{
	gsize len;
	g_autofree char *escaped = NULL;

	if (name == NULL)
		return g_strdup("");
	len = strlen(name);
	escaped = healer_text_escape(name, (gssize)MIN(len, HEALER_CALLER_NAME_MAX));
	if (len <= HEALER_CALLER_NAME_MAX)
		return g_steal_pointer(&escaped);
	return g_strdup_printf("%s... (%" G_GSIZE_FORMAT " bytes, cut)", escaped, len);
}

static gboolean
check_type(const struct stat *st, const char *name, gboolean allow_directory, GError **error)
{
	if (S_ISREG(st->st_mode) || (allow_directory && S_ISDIR(st->st_mode)))
		return TRUE;
	g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: is %s, not a regular file%s", name,
	            healer_file_type_name(st->st_mode), allow_directory ? " or a directory" : "");
	return FALSE;
}

gboolean
healer_caller_check_fd(int fd, const char *name, gboolean allow_directory, struct stat *st_out, GError **error)
{
	int flags = fcntl(fd, F_GETFL);
	struct stat st;

	if (flags < 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: not a usable descriptor: %s", name,
		            g_strerror(err));
		return FALSE;
	}
	/* An O_PATH descriptor needs no read permission to open; reading "through" it means reopening. */
	if (flags & O_PATH) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: the descriptor was opened with O_PATH, not for reading", name);
		return FALSE;
	}
	if ((flags & O_ACCMODE) == O_WRONLY) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: the descriptor is open for writing only, not for reading", name);
		return FALSE;
	}
	if (fstat(fd, &st) != 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", name, g_strerror(err));
		return FALSE;
	}
	if (!check_type(&st, name, allow_directory, error))
		return FALSE;
	if (st_out != NULL)
		*st_out = st;
	return TRUE;
}

int
healer_caller_open_path(const char *path, gboolean allow_directory, struct stat *st_out, GError **error)
{
	g_autofree char *name = healer_caller_name(path);
	struct stat st;
	int fd;

	if (!g_path_is_absolute(path)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "'%s' is not an absolute path", name);
		return -1;
	}
	/* O_NONBLOCK: open() of a FIFO with no writer would wait for one, with the main loop. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR,
		            err == ENOENT || err == ENOTDIR ? HEALER_ERROR_NOT_FOUND
		            : err == EACCES || err == EPERM ? HEALER_ERROR_PERMISSION_DENIED
		                                            : HEALER_ERROR_IO,
		            "%s: %s", name, g_strerror(err));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", name, g_strerror(err));
		close(fd);
		return -1;
	}
	if (!check_type(&st, name, allow_directory, error)) {
		close(fd);
		return -1;
	}
	/* A regular file reads the same either way; the flag only mattered for open(). */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (st_out != NULL)
		*st_out = st;
	return fd;
}

/*
 * The buffer a file is read into: its own anonymous mapping, not the heap.  A walk reads
 * thousands of files in a worker thread; from malloc, their freed pages stayed in that thread's
 * arena (8 MB after a walk of /usr/share, which malloc_trim() did not give back), while a
 * mapping is gone the moment it is unmapped.
 */
typedef struct {
	void *data;
	gsize size;
} Mapping;

static void
mapping_free(gpointer user_data)
{
	Mapping *m = user_data;

	munmap(m->data, m->size);
	g_free(m);
}

static Mapping *
mapping_new(gsize size)
{
	void *data = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	Mapping *m;

	if (data == MAP_FAILED)
		return NULL;
	m = g_new0(Mapping, 1);
	m->data = data;
	m->size = size;
	return m;
}

GBytes *
healer_fd_read_all(int fd, const char *name, gsize max, GError **error)
{
	struct stat st;
	Mapping *m;
	guint8 *data;
	gsize done = 0;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: not a regular file", name);
		return NULL;
	}
	if ((guint64)st.st_size > max) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s: %" G_GUINT64_FORMAT " bytes, larger than any module", name, (guint64)st.st_size);
		return NULL;
	}
	/* One byte more than fstat said: a file that grew meanwhile is noticed, not cut. */
	m = mapping_new((gsize)st.st_size + 1);
	if (m == NULL) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: no memory to read it: %s", name,
		            g_strerror(err));
		return NULL;
	}
	data = m->data;
	for (;;) {
		ssize_t n = pread(fd, data + done, (gsize)st.st_size + 1 - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", name, g_strerror(err));
			mapping_free(m);
			return NULL;
		}
		if (n == 0)
			break;
		done += (gsize)n;
		if (done > (gsize)st.st_size) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: the file grew while it was read", name);
			mapping_free(m);
			return NULL;
		}
	}
	if (done != (gsize)st.st_size) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: the file shrank while it was read", name);
		mapping_free(m);
		return NULL;
	}
	return g_bytes_new_with_free_func(data, done, mapping_free, m);
}

typedef struct {
	int fd;
	char *name;
	gsize max;
} ReadJob;

static void
read_job_free(ReadJob *job)
{
	g_free(job->name);
	g_free(job);
}

static void
read_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	ReadJob *job = data;
	GError *error = NULL;
	GBytes *bytes = healer_fd_read_all(job->fd, job->name, job->max, &error);

	(void)source;
	(void)cancellable;
	if (bytes == NULL)
		g_task_return_error(task, error);
	else
		g_task_return_pointer(task, bytes, (GDestroyNotify)g_bytes_unref);
}

void
healer_fd_read_all_async(int fd, const char *name, gsize max, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
	ReadJob *job = g_new0(ReadJob, 1);

	job->fd = fd;
	job->name = g_strdup(name);
	job->max = max;
	g_task_set_task_data(task, job, (GDestroyNotify)read_job_free);
	g_task_run_in_thread(task, read_thread);
}

GBytes *
healer_fd_read_all_finish(GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}
