#include "test-util.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>

void
test_run_clear(TestRun *run)
{
	g_clear_pointer(&run->out, g_free);
	g_clear_pointer(&run->err, g_free);
}

void
test_run(TestRun *run, const char *const *argv)
{
	const char *wrapper = g_getenv("HEALER_TEST_WRAPPER");
	g_autoptr(GPtrArray) full = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	int wait_status = 0;

	if (wrapper != NULL && *wrapper != '\0') {
		g_auto(GStrv) words = NULL;
		g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(full, g_strdup(words[i]));
	}
	for (guint i = 0; argv[i] != NULL; i++)
		g_ptr_array_add(full, g_strdup(argv[i]));
	g_ptr_array_add(full, NULL);

	g_assert_true(g_spawn_sync(NULL, (char **)full->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &run->out, &run->err,
	                           &wait_status, &error));
	g_assert_no_error(error);
	run->exit_status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	/* valgrind's own error exit code means the program under it had memory errors. */
	if (wrapper != NULL && *wrapper != '\0' && run->exit_status == 99)
		g_error("memory errors under %s running %s:\n%s", wrapper, argv[0], run->err);
}

char *
test_tmpdir_new(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("healer-test-XXXXXX", &error);

	g_assert_no_error(error);
	return dir;
}

static void
remove_tree(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child = g_build_filename(path, name, NULL);
		if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
			remove_tree(child);
		else
			g_unlink(child);
	}
	g_rmdir(path);
}

void
test_tmpdir_free(char *dir)
{
	if (dir == NULL)
		return;
	remove_tree(dir);
	g_free(dir);
}

const char *
test_program(const char *env_name)
{
	const char *path = g_getenv(env_name);

	if (path == NULL)
		g_error("%s is not set: run the tests through meson test", env_name);
	return path;
}

GBytes *
test_read_file(const char *path)
{
	g_autoptr(GError) error = NULL;
	char *data = NULL;
	gsize len = 0;

	g_file_get_contents(path, &data, &len, &error);
	g_assert_no_error(error);
	return g_bytes_new_take(data, len);
}

void
test_write_file(const char *path, const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, (const char *)data, (gssize)len, &error);
	g_assert_no_error(error);
}

void
test_die_with_parent(gpointer user_data)
{
	(void)user_data;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

void
test_copy_tree(const char *from, const char *to, const char *skip)
{
	g_autoptr(GDir) dir = g_dir_open(from, 0, NULL);
	const char *name;

	g_assert_nonnull(dir);
	g_mkdir_with_parents(to, 0755);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *src = g_build_filename(from, name, NULL);
		g_autofree char *dst = g_build_filename(to, name, NULL);
		if (skip != NULL && g_strcmp0(name, skip) == 0)
			continue;
		if (g_file_test(src, G_FILE_TEST_IS_DIR)) {
			test_copy_tree(src, dst, NULL);
		} else {
			g_autoptr(GBytes) data = test_read_file(src);
			test_write_file(dst, g_bytes_get_data(data, NULL), g_bytes_get_size(data));
		}
	}
}
