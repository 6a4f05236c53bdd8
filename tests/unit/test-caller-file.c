/*
 * What healerd does with files a caller hands it (agent/daemon/caller-file.c, import-walk.c):
 * descriptors not open for reading and files that are not regular are refused with a message
 * naming the cause, a FIFO never blocks, a name is escaped and cut, reads are bounded, and a
 * directory walk keeps to its limits, never opening what is not a regular file.
 */
#define _GNU_SOURCE

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "caller-file.h"
#include "healer-error.h"
#include "import-walk.h"
#include "test-util.h"

static char *
write_text(const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename(dir, name, NULL);

	test_write_file(path, (const guint8 *)text, strlen(text));
	return path;
}

static void
assert_message(const GError *error, const char *part)
{
	g_assert_nonnull(error);
	if (strstr(error->message, part) == NULL)
		g_error("expected \"%s\" in \"%s\"", part, error->message);
}

static void
test_check_fd(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *file = write_text(dir, "file", "data");
	g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
	struct {
		const char *path;
		int flags;
		gboolean allow_dir;
		const char *expected; /* NULL: accepted */
	} cases[] = {
	        {file, O_RDONLY, FALSE, NULL},
	        {file, O_RDWR, FALSE, NULL},
	        {file, O_PATH, FALSE, "NAME: the descriptor was opened with O_PATH, not for reading"},
	        {file, O_WRONLY, FALSE, "NAME: the descriptor is open for writing only, not for reading"},
	        {dir, O_RDONLY, TRUE, NULL},
	        {dir, O_RDONLY, FALSE, "NAME: is a directory, not a regular file"},
	        {dir, O_PATH, TRUE, "O_PATH"},
	        {fifo, O_RDONLY | O_NONBLOCK, TRUE, "NAME: is a FIFO, not a regular file or a directory"},
	        {"/dev/null", O_RDONLY, FALSE, "NAME: is a character device, not a regular file"},
	};

	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		int fd = open(cases[i].path, cases[i].flags | O_CLOEXEC);
		gboolean ok;

		g_assert_cmpint(fd, >=, 0);
		ok = healer_caller_check_fd(fd, "NAME", cases[i].allow_dir, NULL, &error);
		close(fd);
		if (cases[i].expected == NULL) {
			g_assert_no_error(error);
			g_assert_true(ok);
		} else {
			g_assert_false(ok);
			g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
			assert_message(error, cases[i].expected);
		}
	}
	g_unlink(fifo);
	g_unlink(file);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* A FIFO with no writer: open() would wait for one; this returns at once with the reason. */
static void
test_open_path(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *fifo = g_build_filename(dir, "app.bin", NULL);
	g_autofree char *file = write_text(dir, "file", "data");
	g_autofree char *missing = g_build_filename(dir, "missing", NULL);
	g_autofree char *expected = g_strdup_printf("%s: is a FIFO, not a regular file", fifo);
	g_autoptr(GError) error = NULL;
	int fd;

	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_cmpint(healer_caller_open_path(fifo, FALSE, NULL, &error), ==, -1);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(error, expected);
	g_clear_error(&error);

	g_assert_cmpint(healer_caller_open_path("relative/app.bin", FALSE, NULL, &error), ==, -1);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(error, "'relative/app.bin' is not an absolute path");
	g_clear_error(&error);

	g_assert_cmpint(healer_caller_open_path(missing, FALSE, NULL, &error), ==, -1);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_clear_error(&error);

	g_assert_cmpint(healer_caller_open_path(dir, FALSE, NULL, &error), ==, -1);
	assert_message(error, "is a directory, not a regular file");
	g_clear_error(&error);

	fd = healer_caller_open_path(dir, TRUE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	close(fd);

	fd = healer_caller_open_path(file, FALSE, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, 0);
	close(fd);
	g_unlink(fifo);
	g_unlink(file);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_name(void)
{
	g_autofree char *escaped = healer_caller_name("a\nb\033]0;title\007c");
	g_autofree char *huge = g_strnfill(HEALER_CALLER_NAME_MAX + 10, 'x');
	g_autofree char *cut = healer_caller_name(huge);
	g_autofree char *expected = g_strdup_printf("... (%u bytes, cut)", HEALER_CALLER_NAME_MAX + 10);
	g_autofree char *plain = healer_caller_name("/media/usb/bundle.tar");

	g_assert_cmpstr(escaped, ==, "a\\nb\\x1b]0;title\\x07c");
	g_assert_cmpstr(plain, ==, "/media/usb/bundle.tar");
	g_assert_true(g_str_has_suffix(cut, expected));
	g_assert_cmpuint(strlen(cut), ==, HEALER_CALLER_NAME_MAX + strlen(expected));
}

static void
test_read_all(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *file = write_text(dir, "file", "0123456789");
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = NULL;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	/* pread: the caller's offset (shared with healerd's copy of the descriptor) stays put. */
	g_assert_cmpint(lseek(fd, 3, SEEK_SET), ==, 3);
	bytes = healer_fd_read_all(fd, "NAME", 10, &error);
	g_assert_no_error(error);
	g_assert_cmpmem(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), "0123456789", 10);
	g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 3);

	g_assert_null(healer_fd_read_all(fd, "NAME", 9, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	assert_message(error, "NAME: 10 bytes, larger than any module");
	close(fd);
	g_unlink(file);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_walk(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *deep = g_build_filename(dir, "1/2/3/4/5/6/7/8/9", NULL);
	g_autofree char *fifo = g_build_filename(dir, "fifo.bin", NULL);
	g_autofree char *link = g_build_filename(dir, "loop", NULL);
	g_autoptr(HealerImportWalk) walk = NULL;
	int fd;

	g_assert_cmpint(g_mkdir_with_parents(deep, 0755), ==, 0);
	g_free(write_text(deep, "deep.bin", "too deep"));
	g_free(write_text(dir, "catalog.json", "{}"));    /* metadata: passed over */
	g_free(write_text(dir, ".hidden.bin", "hidden")); /* passed over */
	for (guint i = 0; i < HEALER_WALK_MAX_REPORTED + 5; i++) {
		g_autofree char *name = g_strdup_printf("f%03u.bin", i);
		g_free(write_text(dir, name, "not a module"));
	}
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	g_assert_cmpint(symlink(".", link), ==, 0); /* a link to a directory: could loop */

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	walk = healer_import_walk(fd, "DIR");
	close(fd);
	g_assert_cmpuint(walk->scanned, ==, HEALER_WALK_MAX_REPORTED + 5);
	g_assert_cmpuint(walk->not_modules, ==, HEALER_WALK_MAX_REPORTED + 5);
	g_assert_cmpuint(walk->not_regular, ==, 2); /* the FIFO (never opened: this did not block) and the link */
	g_assert_cmpuint(walk->too_deep, ==, 1);
	g_assert_cmpuint(walk->names->len, ==, 0);
	g_assert_null(walk->stopped);
	/* Only the first files are named; in name order. */
	g_assert_cmpuint(walk->rejected->len, ==, HEALER_WALK_MAX_REPORTED);
	g_assert_true(g_str_has_prefix(g_ptr_array_index(walk->rejected, 0), "DIR/f000.bin: not a module"));
	g_assert_cmpuint(healer_import_walk_skipped(walk), ==, HEALER_WALK_MAX_REPORTED + 7);
	test_tmpdir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/caller-file/check-fd", test_check_fd);
	g_test_add_func("/caller-file/open-path", test_open_path);
	g_test_add_func("/caller-file/name", test_name);
	g_test_add_func("/caller-file/read-all", test_read_all);
	g_test_add_func("/caller-file/walk", test_walk);
	return g_test_run();
}
