#include "job-file.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "healer-error.h"
#include "healer-file.h"
#include "events.h"
#include "json-autoptr.h"

#define JOB_SUFFIX ".json"

static gboolean
device_id_is_valid(const char *device_id)
{
	if (device_id == NULL || device_id[0] == '\0' || device_id[0] == '.' || strlen(device_id) > 128)
		return FALSE;
	for (const char *p = device_id; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
			return FALSE;
	}
	return TRUE;
}

static char *
job_path(const char *state_dir, const char *device_id, GError **error)
{
	g_autofree char *name = NULL;

	if (!device_id_is_valid(device_id)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "'%s' is not a device id usable as a file name", device_id != NULL ? device_id : "(null)");
		return NULL;
	}
	name = g_strconcat(device_id, JOB_SUFFIX, NULL);
	return g_build_filename(state_dir, "jobs", name, NULL);
}

/* The JSON text of a job, as it goes to disk. */
static GBytes *
job_text(json_object *job)
{
	const char *text =
	        json_object_to_json_string_ext(job, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

	return g_bytes_new(text, strlen(text));
}

static gboolean
save_text(const char *state_dir, const char *device_id, GBytes *text, GError **error)
{
	g_autofree char *path = job_path(state_dir, device_id, error);
	g_autofree char *dir = NULL;

	if (path == NULL)
		return FALSE;
	dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0750) != 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, err == EACCES ? HEALER_ERROR_PERMISSION_DENIED : HEALER_ERROR_IO,
		            "cannot create %s: %s", dir, g_strerror(err));
		return FALSE;
	}
	if (!healer_file_write_atomic(path, text, error)) {
		g_prefix_error(error, "cannot save the job of %s: ", device_id);
		return FALSE;
	}
	return TRUE;
}

gboolean
healer_job_file_save(const char *state_dir, const char *device_id, json_object *job, GError **error)
{
	g_autoptr(GBytes) text = NULL;

	if (!json_object_is_type(job, json_type_object)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "a job must be a JSON object");
		return FALSE;
	}
	text = job_text(job);
	return save_text(state_dir, device_id, text, error);
}

json_object *
healer_job_file_load(const char *state_dir, const char *device_id, GError **error)
{
	g_autofree char *path = job_path(state_dir, device_id, error);
	g_autofree char *text = NULL;
	gsize len = 0;
	g_autoptr(GError) local_error = NULL;
	g_autoptr(json_object) job = NULL;
	enum json_tokener_error jerr = json_tokener_success;

	if (path == NULL)
		return NULL;
	if (!g_file_get_contents(path, &text, &len, &local_error)) {
		if (g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return NULL;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s", local_error->message);
		return NULL;
	}
	if (strlen(text) == len)
		job = json_tokener_parse_verbose(text, &jerr);
	if (job == NULL || !json_object_is_type(job, json_type_object)) {
		g_autofree char *corrupt = g_strconcat(path, ".corrupt", NULL);
		healer_emit(HEALER_EVENT_NOTE, device_id, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
		            "saved job %s is unreadable (%s); set aside as %s, the job starts afresh", path,
		            job == NULL ? json_tokener_error_desc(jerr) : "not a JSON object", corrupt);
		if (g_rename(path, corrupt) != 0)
			g_unlink(path);
		return NULL;
	}
	return g_steal_pointer(&job);
}

gboolean
healer_job_file_remove(const char *state_dir, const char *device_id, GError **error)
{
	g_autofree char *path = job_path(state_dir, device_id, error);

	if (path == NULL)
		return FALSE;
	if (g_unlink(path) != 0 && errno != ENOENT) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot remove %s: %s", path, g_strerror(err));
		return FALSE;
	}
	return TRUE;
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
healer_job_file_list(const char *state_dir)
{
	g_autofree char *dir_path = g_build_filename(state_dir, "jobs", NULL);
	g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
	GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *id = NULL;
		if (!g_str_has_suffix(name, JOB_SUFFIX))
			continue; /* .corrupt files, temp files of an interrupted write */
		id = g_strndup(name, strlen(name) - strlen(JOB_SUFFIX));
		if (device_id_is_valid(id))
			g_ptr_array_add(ids, g_steal_pointer(&id));
	}
	g_ptr_array_sort(ids, compare_strings);
	return ids;
}

/* ---- the writer ------------------------------------------------------------ */

/* Workers writing at once: fsyncs of several files share the file system's journal commit. */
#define WRITER_THREADS 4

/* One device's states: the one being written (by exactly one worker) and the newest queued behind it. */
typedef struct {
	char *device_id;
	gboolean queued;
	GBytes *next; /* the newest state; NULL with `queued`: remove the file */
	guint64 next_seq;
	gboolean running; /* a worker owns it; it stays in `devices` until the worker is done */
} DeviceQueue;

typedef struct {
	char *device_id;
	guint64 seq;
	GError *error;
} Completion;

struct _HealerJobWriter {
	gatomicrefcount ref; /* the owner, and each scheduled delivery */
	char *state_dir;
	GMainContext *context;
	GThreadPool *pool;
	HealerJobWrittenFunc func; /* main context only; NULL once freed */
	gpointer user_data;
	HealerJobWriterHook hook;
	gpointer hook_data;

	GMutex lock; /* guards what follows */
	GCond idle;
	GHashTable *devices; /* device id -> DeviceQueue* with a state queued or in flight */
	guint64 last_seq;
	guint running; /* DeviceQueues owned by a worker */
	GQueue done;   /* Completion* not yet delivered */
	gboolean delivery_scheduled;
};

static void
device_queue_free(DeviceQueue *q)
{
	g_clear_pointer(&q->next, g_bytes_unref);
	g_free(q->device_id);
	g_free(q);
}

static void
completion_free(Completion *c)
{
	g_clear_error(&c->error);
	g_free(c->device_id);
	g_free(c);
}

static HealerJobWriter *
writer_ref(HealerJobWriter *w)
{
	g_atomic_ref_count_inc(&w->ref);
	return w;
}

static void
writer_unref(gpointer data)
{
	HealerJobWriter *w = data;

	if (!g_atomic_ref_count_dec(&w->ref))
		return;
	g_queue_clear_full(&w->done, (GDestroyNotify)completion_free);
	g_hash_table_destroy(w->devices);
	g_cond_clear(&w->idle);
	g_mutex_clear(&w->lock);
	g_main_context_unref(w->context);
	g_free(w->state_dir);
	g_free(w);
}

/* On the main context: reports what the workers finished, in the order they finished it. */
static gboolean
deliver(gpointer data)
{
	HealerJobWriter *w = data;
	GQueue done = G_QUEUE_INIT;
	Completion *c;

	g_mutex_lock(&w->lock);
	done = w->done;
	g_queue_init(&w->done);
	w->delivery_scheduled = FALSE;
	g_mutex_unlock(&w->lock);
	while ((c = g_queue_pop_head(&done)) != NULL) {
		if (w->func != NULL)
			w->func(c->device_id, c->seq, c->error, w->user_data);
		completion_free(c);
	}
	return G_SOURCE_REMOVE;
}

/*
 * In a worker: writes the device's newest state, and again while a newer
 * one arrived meanwhile.  Owning the device until its queue is empty is
 * what keeps one write in flight per device and the states in order.
 */
static void
writer_work(gpointer data, gpointer user_data)
{
	DeviceQueue *q = data;
	HealerJobWriter *w = user_data;

	g_mutex_lock(&w->lock);
	while (q->queued) {
		g_autoptr(GBytes) text = g_steal_pointer(&q->next);
		guint64 seq = q->next_seq;
		GError *error = NULL;
		Completion *c;

		q->queued = FALSE;
		g_mutex_unlock(&w->lock);
		if (w->hook != NULL)
			w->hook(q->device_id, w->hook_data);
		if (text != NULL)
			save_text(w->state_dir, q->device_id, text, &error);
		else
			healer_job_file_remove(w->state_dir, q->device_id, &error);
		c = g_new0(Completion, 1);
		c->device_id = g_strdup(q->device_id);
		c->seq = seq;
		c->error = error;
		g_mutex_lock(&w->lock);
		g_queue_push_tail(&w->done, c);
		if (!w->delivery_scheduled) {
			g_autoptr(GSource) source = g_idle_source_new();
			w->delivery_scheduled = TRUE;
			g_source_set_priority(source, G_PRIORITY_DEFAULT);
			g_source_set_callback(source, deliver, writer_ref(w), writer_unref);
			g_source_set_static_name(source, "healer job writer");
			g_source_attach(source, w->context);
		}
	}
	q->running = FALSE;
	g_hash_table_remove(w->devices, q->device_id);
	if (--w->running == 0)
		g_cond_broadcast(&w->idle);
	g_mutex_unlock(&w->lock);
}

HealerJobWriter *
healer_job_writer_new(const char *state_dir, HealerJobWrittenFunc func, gpointer user_data)
{
	HealerJobWriter *w = g_new0(HealerJobWriter, 1);

	g_atomic_ref_count_init(&w->ref);
	w->state_dir = g_strdup(state_dir);
	w->context = g_main_context_ref_thread_default();
	w->func = func;
	w->user_data = user_data;
	g_mutex_init(&w->lock);
	g_cond_init(&w->idle);
	w->devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)device_queue_free);
	g_queue_init(&w->done);
	/* Shared threads: they exist only while there is something to write. */
	w->pool = g_thread_pool_new(writer_work, w, WRITER_THREADS, FALSE, NULL);
	return w;
}

static guint64
enqueue(HealerJobWriter *w, const char *device_id, GBytes *text)
{
	DeviceQueue *q;
	guint64 seq;

	g_mutex_lock(&w->lock);
	q = g_hash_table_lookup(w->devices, device_id);
	if (q == NULL) {
		q = g_new0(DeviceQueue, 1);
		q->device_id = g_strdup(device_id);
		g_hash_table_insert(w->devices, q->device_id, q);
	}
	/* The newest state wins: one still waiting is superseded, never written after this one. */
	g_clear_pointer(&q->next, g_bytes_unref);
	q->next = text != NULL ? g_bytes_ref(text) : NULL;
	q->queued = TRUE;
	q->next_seq = seq = ++w->last_seq;
	if (!q->running) {
		q->running = TRUE;
		w->running++;
		g_thread_pool_push(w->pool, q, NULL);
	}
	g_mutex_unlock(&w->lock);
	return seq;
}

guint64
healer_job_writer_save(HealerJobWriter *writer, const char *device_id, json_object *job)
{
	g_autoptr(GBytes) text = job_text(job);

	g_return_val_if_fail(json_object_is_type(job, json_type_object), 0);
	return enqueue(writer, device_id, text);
}

guint64
healer_job_writer_remove(HealerJobWriter *writer, const char *device_id)
{
	return enqueue(writer, device_id, NULL);
}

void
healer_job_writer_flush(HealerJobWriter *writer)
{
	g_mutex_lock(&writer->lock);
	while (writer->running > 0)
		g_cond_wait(&writer->idle, &writer->lock);
	g_mutex_unlock(&writer->lock);
}

void
healer_job_writer_free(HealerJobWriter *writer)
{
	if (writer == NULL)
		return;
	healer_job_writer_flush(writer);
	/* Nothing is queued: the pool has no work left to wait for. */
	g_thread_pool_free(writer->pool, FALSE, TRUE);
	writer->func = NULL;
	writer_unref(writer);
}

void
healer_job_writer_set_hook(HealerJobWriter *writer, HealerJobWriterHook hook, gpointer user_data)
{
	writer->hook = hook;
	writer->hook_data = user_data;
}
