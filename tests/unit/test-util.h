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

/*
 * What a directory tree holds, as text: one line per entry, sorted by path,
 * "path dir MODE", "path file MODE SIZE SHA-256" or "path link -> TARGET",
 * and the whole text of every index.json (the store's index) indented below
 * its line, so a difference shows which module entry changed.  Nothing about
 * times: a refused import may not change what is there, but the snapshot
 * does not care when it was last looked at.  A missing `dir` is "(absent)".
 */
char *test_tree_snapshot(const char *dir);

/*
 * Fails the test, naming `what` and listing the lines that went ("-") and
 * came ("+"), unless `dir` is still as `before` (a test_tree_snapshot()).
 */
#define test_assert_tree_unchanged(before, dir, what)                                                                  \
	test_assert_tree_unchanged_impl(__FILE__, __LINE__, G_STRFUNC, (before), (dir), (what))
void test_assert_tree_unchanged_impl(const char *file, int line, const char *func, const char *before, const char *dir,
                                     const char *what);

/*
 * Captures every log record of the process from now on (g_log_set_writer_func: call once, before
 * anything logs): the last record's fields, its level, and how many records there were.
 */
void test_log_capture_start(void);
/* A field of the last record; NULL when it had none. */
const char *test_log_field(const char *key);
GLogLevelFlags test_log_last_level(void);
guint test_log_count(void);
