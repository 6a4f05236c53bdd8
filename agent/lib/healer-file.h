/* Durable file writes: nothing healerd writes is ever seen half-written. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Writes `contents` to a temporary file beside `path`, fsyncs it, renames it
 * over `path` and syncs the directory, so a crash leaves the old file or the
 * new one, never a mix.  Refuses (INVALID_ARGUMENT) when `path` exists
 * and is not a regular file (a device, a directory, a link to either).
 */
gboolean healer_file_write_atomic(const char *path, GBytes *contents, GError **error);

G_END_DECLS
