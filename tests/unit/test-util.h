/* Helpers the tests share: running the project's commands, temp dirs. */
#pragma once

#include <glib.h>

typedef struct {
	int exit_status; /* -1 if the command died from a signal */
	char *out;
	char *err;
} TestRun;

void test_run_clear(TestRun *run);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TestRun, test_run_clear)

/*
 * Runs argv (argv[0] is a path to a built program), wrapped in
 * $HEALER_TEST_WRAPPER when set (the valgrind setup sets it), and captures
 * its output.  Fails the test if it cannot be started.
 */
void test_run(TestRun *run, const char *const *argv);

/* A fresh directory, removed with its contents by test_tmpdir_free(). */
char *test_tmpdir_new(void);
void test_tmpdir_free(char *dir);

/* Path of a built program, from the environment meson gives the tests. */
const char *test_program(const char *env_name);

GBytes *test_read_file(const char *path);
void test_write_file(const char *path, const guint8 *data, gsize len);

/* For a child's setup: it gets SIGKILL when the test process dies. */
void test_die_with_parent(gpointer user_data);

/* cp -r from to, leaving out the entry named `skip` (may be NULL) at the top. */
void test_copy_tree(const char *from, const char *to, const char *skip);
