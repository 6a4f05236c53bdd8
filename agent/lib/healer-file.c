#include "healer-file.h"

#include "healer-error.h"

gboolean
healer_file_write_atomic(const char *path, GBytes *contents, GError **error)
{
	gsize len = 0;
	const char *data = g_bytes_get_data(contents, &len);
	g_autoptr(GError) local_error = NULL;

	/* GLib does temp file + fsync + rename (+ directory sync with DURABLE). */
	if (!g_file_set_contents_full(path, data ? data : "", (gssize)len,
	                              G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0644,
	                              &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s", local_error->message);
		return FALSE;
	}
	return TRUE;
}
