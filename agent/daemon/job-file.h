/*
 * Healer jobs on disk: <state-dir>/jobs/<device-id>.json, one JSON object
 * per device with a job in progress (the plan and the step reached), written
 * atomically before each step so `kill -9 healerd` mid-heal resumes the job
 * on restart.  What the object holds is the healer's business; this file
 * only keeps it safe.
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

G_END_DECLS
