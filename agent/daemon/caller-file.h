/*
 * Files a D-Bus caller hands healerd (docs/dbus-api.md, "What healerd reads for a caller").
 *
 * healerd runs as root (or its own service user) and a caller is often only a member of group
 * healer, so healerd must never read a file with its own rights for a caller that could not read
 * it.  The rule: a caller passes a descriptor it opened itself (ImportFd, FlashAppFd, as fwupd's
 * Install does) and healerd reads through that descriptor and nothing else (it never reopens it
 * through /proc/self/fd, which would check healerd's rights, not the caller's); a path is taken
 * only from root and healerd's own user, who can read what healerd can.
 *
 * Whatever the source, only a regular file (or, from root, a directory) is read: opening a FIFO
 * would block the main loop until a writer came, and a device or a socket is never a module.
 */
#pragma once

#include <gio/gio.h>
#include <sys/stat.h>
#include <sys/types.h>

G_BEGIN_DECLS

/*
 * The longest name (in bytes) a caller's file is shown and logged under; longer names are cut and
 * marked.  A path is at most PATH_MAX (4096) bytes, so a longer "name" is not a path at all.
 */
#define HEALER_CALLER_NAME_MAX 4096

/* "a FIFO", "a character device", ... for a file type (st_mode), for messages. */
const char *healer_file_type_name(mode_t mode);

/* A caller's name for a file made safe to log and print: bounded, then healer_text_escape()d. */
char *healer_caller_name(const char *name);

/*
 * Checks a descriptor a caller passed: open for reading (not O_PATH, not write-only), and a
 * regular file, or a directory when `allow_directory`.  `name` (already escaped) names it in the
 * errors (HEALER_ERROR_INVALID_ARGUMENT).  `st_out` (may be NULL) gets its fstat().
 */
gboolean healer_caller_check_fd(int fd, const char *name, gboolean allow_directory, struct stat *st_out,
                                GError **error);

/*
 * Opens an absolute `path` for reading without blocking (O_NONBLOCK: a FIFO never stalls the
 * caller), and refuses what is not a regular file (or a directory when `allow_directory`), naming
 * the path and what it is.  Returns the descriptor (O_NONBLOCK cleared), or -1 with an error:
 * HEALER_ERROR_INVALID_ARGUMENT (relative path, wrong type), _NOT_FOUND, _PERMISSION_DENIED, _IO.
 */
int healer_caller_open_path(const char *path, gboolean allow_directory, struct stat *st_out, GError **error);

/*
 * Reads the whole regular file behind `fd` from offset 0 (pread: the caller's file offset is left
 * alone), at most `max` bytes: a larger file is HEALER_ERROR_INVALID_DATA "NAME: N bytes, larger
 * than any module", a read error HEALER_ERROR_IO.  Blocking: call it in a worker.
 */
GBytes *healer_fd_read_all(int fd, const char *name, gsize max, GError **error);

/*
 * healer_fd_read_all() in a worker thread; `callback` runs on the thread-default main context.
 * `fd` is borrowed: keep it open until the callback.
 */
void healer_fd_read_all_async(int fd, const char *name, gsize max, GAsyncReadyCallback callback, gpointer user_data);
GBytes *healer_fd_read_all_finish(GAsyncResult *result, GError **error);

G_END_DECLS
