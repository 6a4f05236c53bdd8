#include "job-file.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "healer-error.h"
#include "healer-file.h"
#include "journal.h"
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

gboolean
healer_job_file_save(const char *state_dir, const char *device_id, json_object *job, GError **error)
{
	g_autofree char *path = job_path(state_dir, device_id, error);
	g_autofree char *dir = NULL;
	g_autoptr(GBytes) bytes = NULL;
	const char *text;

	if (path == NULL)
		return FALSE;
	if (!json_object_is_type(job, json_type_object)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "a job must be a JSON object");
		return FALSE;
	}
	dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0750) != 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, err == EACCES ? HEALER_ERROR_PERMISSION_DENIED : HEALER_ERROR_IO,
		            "cannot create %s: %s", dir, g_strerror(err));
		return FALSE;
	}
	text = json_object_to_json_string_ext(job, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	bytes = g_bytes_new(text, strlen(text));
	if (!healer_file_write_atomic(path, bytes, error)) {
		g_prefix_error(error, "cannot save the job of %s: ", device_id);
		return FALSE;
	}
	return TRUE;
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
		healer_journal_event(NULL, device_id, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
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
