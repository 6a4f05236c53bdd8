#include "test-util.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
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

static void
snapshot_into(GPtrArray *lines, const char *root, const char *rel)
{
	g_autofree char *path = rel[0] != '\0' ? g_build_filename(root, rel, NULL) : g_strdup(root);
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *child_rel = rel[0] != '\0' ? g_build_filename(rel, name, NULL) : g_strdup(name);
		g_autofree char *child = g_build_filename(root, child_rel, NULL);
		struct stat st;

		g_assert_cmpint(lstat(child, &st), ==, 0);
		if (S_ISLNK(st.st_mode)) {
			g_autofree char *target = g_file_read_link(child, NULL);
			g_ptr_array_add(lines, g_strdup_printf("%s link -> %s", child_rel, target ? target : "?"));
		} else if (S_ISDIR(st.st_mode)) {
			g_ptr_array_add(lines, g_strdup_printf("%s dir %04o", child_rel, st.st_mode & 07777));
			snapshot_into(lines, root, child_rel);
		} else if (S_ISREG(st.st_mode)) {
			g_autoptr(GBytes) bytes = test_read_file(child);
			g_autofree char *sum = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bytes);
			g_autoptr(GString) line = g_string_new(NULL);

			g_string_printf(line, "%s file %04o %" G_GSIZE_FORMAT " %s", child_rel, st.st_mode & 07777,
			                g_bytes_get_size(bytes), sum);
			/* The index in full (it is small in tests): a diff then names the entry that changed. */
			if (strcmp(name, "index.json") == 0) {
				g_auto(GStrv) text = g_strsplit(g_bytes_get_data(bytes, NULL) != NULL
				                                        ? (const char *)g_bytes_get_data(bytes, NULL)
				                                        : "",
				                                "\n", -1);
				for (guint i = 0; text[i] != NULL; i++)
					g_string_append_printf(line, "\n%s   | %s", child_rel, text[i]);
			}
			g_ptr_array_add(lines, g_string_free(g_steal_pointer(&line), FALSE));
		} else {
			g_ptr_array_add(lines, g_strdup_printf("%s other %06o", child_rel, st.st_mode));
		}
	}
}

static gint
compare_lines(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *
test_tree_snapshot(const char *dir)
{
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GString) out = g_string_new(NULL);

	if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
		return g_strdup("(absent)\n");
	snapshot_into(lines, dir, "");
	g_ptr_array_sort(lines, compare_lines);
	for (guint i = 0; i < lines->len; i++)
		g_string_append_printf(out, "%s\n", (const char *)g_ptr_array_index(lines, i));
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* Lines of `a` not in `b`, each prefixed. */
static void
append_missing(GString *out, char **a, char **b, const char *prefix)
{
	g_autoptr(GHashTable) in_b = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; b[i] != NULL; i++)
		g_hash_table_add(in_b, b[i]);
	for (guint i = 0; a[i] != NULL; i++) {
		if (a[i][0] != '\0' && !g_hash_table_contains(in_b, a[i]))
			g_string_append_printf(out, "  %s %s\n", prefix, a[i]);
	}
}

void
test_assert_tree_unchanged_impl(const char *file, int line, const char *func, const char *before, const char *dir,
                                const char *what)
{
	g_autofree char *after = test_tree_snapshot(dir);
	g_auto(GStrv) old_lines = NULL, new_lines = NULL;
	g_autoptr(GString) msg = NULL;

	if (strcmp(before, after) == 0)
		return;
	old_lines = g_strsplit(before, "\n", -1);
	new_lines = g_strsplit(after, "\n", -1);
	msg = g_string_new(NULL);
	g_string_printf(msg, "%s changed %s (- before, + after):\n", what, dir);
	append_missing(msg, old_lines, new_lines, "-");
	append_missing(msg, new_lines, old_lines, "+");
	g_assertion_message(G_LOG_DOMAIN, file, line, func, msg->str);
}

static GHashTable *log_fields;
static GLogLevelFlags log_level;
static guint log_count;

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	(void)user_data;
	g_hash_table_remove_all(log_fields);
	for (gsize i = 0; i < n_fields; i++) {
		char *value =
		        fields[i].length < 0 ? g_strdup(fields[i].value) : g_strndup(fields[i].value, fields[i].length);
		g_hash_table_insert(log_fields, g_strdup(fields[i].key), value);
	}
	log_level = level;
	log_count++;
	return G_LOG_WRITER_HANDLED;
}

void
test_log_capture_start(void)
{
	log_fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
}

const char *
test_log_field(const char *key)
{
	return g_hash_table_lookup(log_fields, key);
}

GLogLevelFlags
test_log_last_level(void)
{
	return log_level;
}

guint
test_log_count(void)
{
	return log_count;
}
