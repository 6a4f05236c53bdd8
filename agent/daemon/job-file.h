/*
 * Healer jobs on disk: <state-dir>/jobs/<device-id>.json, one JSON object
 * per device with a job in progress, written atomically (temp file, fsync,
 * rename, directory sync) so `kill -9 healerd` mid-heal resumes the job on
 * restart.  What the object holds is the healer's business; this file only
 * keeps it safe.
 *
 * healerd writes through a HealerJobWriter, off the main loop: an fsync can
 * take milliseconds, and 64 devices starting a heal together would otherwise
 * stall every link for the sum of them.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_BEGIN_DECLS

/*
 * Writes `job` (a JSON object) for `device_id` atomically, creating
 * <state_dir>/jobs (0750) when needed.  `device_id` must be a plain name
 * (letters, digits, '-', '_', '.', not starting with '.'): otherwise
 * HEALER_ERROR_INVALID_ARGUMENT.
 */
gboolean healer_job_file_save(const char *state_dir, const char *device_id, json_object *job, GError **error);

/*
 * The saved job (a new reference), or NULL with no error when there is none.
 * A file that is not a JSON object is logged, renamed to <device-id>.json.corrupt
 * and treated as none.  Errors only for unreadable files and bad device ids.
 */
json_object *healer_job_file_load(const char *state_dir, const char *device_id, GError **error);

/* Removes the device's job file; none is fine. */
gboolean healer_job_file_remove(const char *state_dir, const char *device_id, GError **error);

/* The device ids (char*, sorted) that have a saved job; empty when none. */
GPtrArray *healer_job_file_list(const char *state_dir);

typedef struct _HealerJobWriter HealerJobWriter;

/*
 * A state of `device_id` reached the disk (error NULL) or could not be
 * written.  `seq` is what healer_job_writer_save() or _remove() returned
 * for it.  A state replaced by a newer one before its write began is never
 * written nor reported, so seeing `seq` means every state queued before it
 * is settled too.  Called on the main context the writer was made on.
 */
typedef void (*HealerJobWrittenFunc)(const char *device_id, guint64 seq, const GError *error, gpointer user_data);

/*
 * Writes job files in worker threads.  Per device at most one write is in
 * flight and at most one state waits behind it: a newer state replaces the
 * waiting one, so the file only ever moves forward, and a device saved ten
 * times while its disk is slow costs two writes.
 */
HealerJobWriter *healer_job_writer_new(const char *state_dir, HealerJobWrittenFunc func, gpointer user_data);

/*
 * Queues `job` (a JSON object, serialized now: json-c objects may not cross
 * threads) as the newest state of `device_id`.  Returns its sequence number
 * (increasing over the writer's life, never 0).
 */
guint64 healer_job_writer_save(HealerJobWriter *writer, const char *device_id, json_object *job);

/* Queues the removal of the device's job file as its newest state. */
guint64 healer_job_writer_remove(HealerJobWriter *writer, const char *device_id);

/*
 * Blocks until every queued state is on disk (or failed).  Completions not
 * yet delivered are delivered by the main context as usual.  For shutdown
 * and tests: never on a running main loop.
 */
void healer_job_writer_flush(HealerJobWriter *writer);

/* Flushes, then frees; completions still undelivered are dropped. */
void healer_job_writer_free(HealerJobWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerJobWriter, healer_job_writer_free)

/*
 * Tests only: `hook` runs in the worker right before each write or
 * removal, so a test can hold a write in flight and queue behind it.
 */
typedef void (*HealerJobWriterHook)(const char *device_id, gpointer user_data);
void healer_job_writer_set_hook(HealerJobWriter *writer, HealerJobWriterHook hook, gpointer user_data);

G_END_DECLS
