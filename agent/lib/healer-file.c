#include "healer-file.h"

#include <sys/stat.h>

#include "healer-error.h"

gboolean
healer_file_write_atomic(const char *path, GBytes *contents, GError **error)
{
	gsize len = 0;
	const char *data = g_bytes_get_data(contents, &len);
	g_autoptr(GError) local_error = NULL;
	struct stat st;

	/* The rename would replace whatever is at `path`: as root, "-o /dev/null" would swap the
	 * device node for a regular file (and "-o /dev/stdout" its symlink).  Only a regular file,
	 * or nothing, is ours to replace. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: exists and is not a regular file; not replaced", path);
		return FALSE;
	}
	/* GLib does temp file + fsync + rename (+ directory sync with DURABLE). */
	if (!g_file_set_contents_full(path, data ? data : "", (gssize)len,
	                              G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0644,
	                              &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s", local_error->message);
		return FALSE;
	}
	return TRUE;
}
