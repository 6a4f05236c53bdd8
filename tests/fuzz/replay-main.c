/*
 * Replays fuzz corpora without libFuzzer: every file named on the command
 * line, and every file under every directory named (recursively, in sorted
 * order), goes through LLVMFuzzerTestOneInput once.  Prints TAP for meson.
 * Linked with one fuzz-NAME.c into replay-NAME, built by any compiler, so
 * the corpora run in the ordinary test suite (and under valgrind or the
 * sanitizers with the other tests).
 *
 *   replay-module-reader tests/fuzz/corpus/module-reader [FILE|DIR]...
 *
 * Exits non-zero when an argument does not exist, a directory holds no
 * file, or a file cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "fuzz-target.h"

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the regular files under `dir` to `files`, sorted, depth first. */
static gboolean
collect_dir(const char *dir, GPtrArray *files, GError **error)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	if (d == NULL)
		return FALSE;
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			if (!collect_dir(path, files, error))
				return FALSE;
		} else if (g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
			g_ptr_array_add(files, g_steal_pointer(&path));
		}
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	int status = EXIT_SUCCESS;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		g_autoptr(GError) error = NULL;
		guint before = files->len;

		if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
			if (!collect_dir(argv[i], files, &error)) {
				fprintf(stderr, "%s: %s\n", argv[0], error->message);
				return EXIT_FAILURE;
			}
			if (files->len == before) {
				fprintf(stderr, "%s: %s: no files in this directory\n", argv[0], argv[i]);
				return EXIT_FAILURE;
			}
		} else if (g_file_test(argv[i], G_FILE_TEST_IS_REGULAR)) {
			g_ptr_array_add(files, g_strdup(argv[i]));
		} else {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i],
			        g_file_test(argv[i], G_FILE_TEST_EXISTS) ? "not a regular file or directory"
			                                                 : "no such file or directory");
			return EXIT_FAILURE;
		}
	}

	printf("1..%u\n", files->len);
	fflush(stdout);
	for (guint i = 0; i < files->len; i++) {
		const char *path = g_ptr_array_index(files, i);
		g_autoptr(GError) error = NULL;
		g_autofree char *contents = NULL;
		guint8 *data;
		gsize len = 0;

		if (!g_file_get_contents(path, &contents, &len, &error)) {
			printf("not ok %u - %s # %s\n", i + 1, path, error->message);
			status = EXIT_FAILURE;
			continue;
		}
		/*
		 * An exact-size copy, as libFuzzer passes it: no terminating NUL for
		 * a reader to lean on, and a non-NULL pointer even when empty.
		 */
		data = malloc(len > 0 ? len : 1);
		if (data == NULL)
			g_error("out of memory");
		memcpy(data, contents, len);
		g_clear_pointer(&contents, g_free);
		if (LLVMFuzzerTestOneInput(data, len) != 0) {
			printf("not ok %u - %s # LLVMFuzzerTestOneInput returned non-zero\n", i + 1, path);
			status = EXIT_FAILURE;
		} else {
			printf("ok %u - %s\n", i + 1, path);
		}
		free(data);
		/* A crash must not hide which file caused it. */
		fflush(stdout);
	}
	return status;
}
