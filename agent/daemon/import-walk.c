#include "import-walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caller-file.h"
#include "module-inventory.h"
#include "module-reader.h"
#include "store.h"

typedef struct {
	HealerImportWalk *walk;
	guint entries;
	guint64 bytes;
} Walker;

void
healer_import_walk_free(HealerImportWalk *walk)
{
	if (walk == NULL)
		return;
	g_ptr_array_unref(walk->names);
	g_ptr_array_unref(walk->contents);
	g_ptr_array_unref(walk->rejected);
	g_free(walk->stopped);
	g_free(walk);
}

guint
healer_import_walk_skipped(const HealerImportWalk *walk)
{
	return walk->not_modules + walk->not_regular + walk->unreadable + walk->too_large;
}

static void
reject(Walker *w, const char *path, const char *reason)
{
	if (w->walk->rejected->len < HEALER_WALK_MAX_REPORTED)
		g_ptr_array_add(w->walk->rejected, g_strdup_printf("%s: %s", path, reason));
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Why `bytes` is not one module the store could take, or NULL when it is one. */
static char *
module_fault(GBytes *bytes)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) modules = healer_module_parse(data, len, &error);
	const HealerModule *m;

	if (modules == NULL)
		return g_strdup_printf("not a module: %s", error->message);
	m = g_ptr_array_index(modules, 0);
	if (modules->len > 1 || (m->flags & MODULE_FLAG_COMBINED))
		return g_strdup("a COMBINED file: store its modules as separate files");
	if (!healer_module_is_valid(m))
		return g_strdup_printf("invalid module: %s", (const char *)g_ptr_array_index(m->faults, 0));
	return NULL;
}

static void
read_file_at(Walker *w, int dir_fd, const char *name, const char *path, const struct stat *st)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autofree char *fault = NULL;
	struct stat opened;
	int fd;

	if ((guint64)st->st_size > HEALER_STORE_MAX_MODULE_SIZE) {
		w->walk->too_large++;
		reject(w, path, "larger than any module");
		return;
	}
	if (w->bytes + (guint64)st->st_size > HEALER_WALK_MAX_BYTES) {
		w->walk->stopped =
		        g_strdup_printf("read %u MiB, the most one import reads", HEALER_WALK_MAX_BYTES >> 20);
		return;
	}
	/* O_NONBLOCK: the file may have become a FIFO since fstatat(); fstat() below says what it is. */
	fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		w->walk->unreadable++;
		reject(w, path, g_strerror(errno));
		return;
	}
	if (fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode)) {
		w->walk->not_regular++;
		close(fd);
		return;
	}
	bytes = healer_fd_read_all(fd, path, HEALER_STORE_MAX_MODULE_SIZE, &error);
	close(fd);
	w->walk->scanned++;
	if (bytes == NULL) {
		w->walk->unreadable++;
		reject(w, path, error->message + strlen(path) + 2); /* "PATH: reason" */
		return;
	}
	w->bytes += g_bytes_get_size(bytes);
	fault = module_fault(bytes);
	if (fault != NULL) {
		w->walk->not_modules++;
		reject(w, path, fault);
		return;
	}
	g_ptr_array_add(w->walk->names, g_strdup(path));
	g_ptr_array_add(w->walk->contents, g_steal_pointer(&bytes));
}

/* Walks the directory `fd` (taken: closed here), `path` naming it. */
static void
walk_dir(Walker *w, int fd, const char *path, guint depth)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	DIR *dir = fdopendir(fd);
	struct dirent *de;

	if (dir == NULL) {
		w->walk->unreadable++;
		reject(w, path, g_strerror(errno));
		close(fd);
		return;
	}
	while ((de = readdir(dir)) != NULL && w->walk->stopped == NULL) {
		if (de->d_name[0] == '.' || healer_module_file_name_is_metadata(de->d_name))
			continue;
		if (++w->entries > HEALER_WALK_MAX_ENTRIES) {
			w->walk->stopped = g_strdup_printf("more than %u entries", HEALER_WALK_MAX_ENTRIES);
			break;
		}
		g_ptr_array_add(names, g_strdup(de->d_name));
	}
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len && w->walk->stopped == NULL; i++) {
		const char *name = g_ptr_array_index(names, i);
		g_autofree char *child = g_build_filename(path, name, NULL);
		struct stat st;

		if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue; /* gone since listed */
		if (S_ISDIR(st.st_mode)) {
			int sub;
			if (depth + 1 > HEALER_WALK_MAX_DEPTH) {
				w->walk->too_deep++;
				continue;
			}
			sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				w->walk->unreadable++;
				reject(w, child, g_strerror(errno));
				continue;
			}
			walk_dir(w, sub, child, depth + 1);
			continue;
		}
		/* A link to a file is read; one to a directory could loop, and is passed over. */
		if (S_ISLNK(st.st_mode) && fstatat(dirfd(dir), name, &st, 0) != 0) {
			w->walk->unreadable++;
			reject(w, child, "a dangling symbolic link");
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			w->walk->not_regular++;
			continue;
		}
		read_file_at(w, dirfd(dir), name, child, &st);
	}
	closedir(dir);
}

HealerImportWalk *
healer_import_walk(int dir_fd, const char *name)
{
	Walker w = {0};
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	w.walk = g_new0(HealerImportWalk, 1);
	w.walk->names = g_ptr_array_new_with_free_func(g_free);
	w.walk->contents = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	w.walk->rejected = g_ptr_array_new_with_free_func(g_free);
	if (fd < 0) {
		w.walk->unreadable++;
		reject(&w, name, g_strerror(errno));
		return w.walk;
	}
	walk_dir(&w, fd, name, 0);
	return w.walk;
}

typedef struct {
	int fd;
	char *name;
} WalkJob;

static void
walk_job_free(WalkJob *job)
{
	g_free(job->name);
	g_free(job);
}

static void
walk_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	WalkJob *job = data;

	(void)source;
	(void)cancellable;
	g_task_return_pointer(task, healer_import_walk(job->fd, job->name), (GDestroyNotify)healer_import_walk_free);
}

void
healer_import_walk_async(int dir_fd, const char *name, GAsyncReadyCallback callback, gpointer user_data)
{
	g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);
	WalkJob *job = g_new0(WalkJob, 1);

	job->fd = dir_fd;
	job->name = g_strdup(name);
	g_task_set_task_data(task, job, (GDestroyNotify)walk_job_free);
	g_task_run_in_thread(task, walk_thread);
}

HealerImportWalk *
healer_import_walk_finish(GAsyncResult *result, GError **error)
{
	return g_task_propagate_pointer(G_TASK(result), error);
}
