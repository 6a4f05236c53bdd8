#include "usbemu-harness.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "module-writer.h"
#include "test-util.h"

void
usbemu_fixture_set_up(UsbemuFixture *f, gconstpointer data)
{
	(void)data;
	f->dir = test_tmpdir_new();
	f->state = g_build_filename(f->dir, "state", NULL);
	f->trace = g_build_filename(f->dir, "trace.txt", NULL);
	f->control = g_build_filename(f->dir, "control", NULL);
	g_assert_cmpint(mkfifo(f->control, 0600), ==, 0);
	f->control_fd = open(f->control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	g_assert_cmpint(f->control_fd, >=, 0);
}

void
usbemu_fixture_tear_down(UsbemuFixture *f, gconstpointer data)
{
	(void)data;
	close(f->control_fd);
	test_tmpdir_free(f->dir);
	g_free(f->state);
	g_free(f->trace);
	g_free(f->control);
}

void
usbemu_control(UsbemuFixture *f, const char *command)
{
	g_autofree char *line = g_strconcat(command, "\n", NULL);

	g_assert_cmpint(write(f->control_fd, line, strlen(line)), ==, (gssize)strlen(line));
}

char *
usbemu_path(const UsbemuFixture *f, const char *name)
{
	return g_build_filename(f->dir, name, NULL);
}

char *
usbemu_flash_path(const UsbemuFixture *f)
{
	return g_build_filename(f->state, "internal-flash.bin", NULL);
}

gboolean
usbemu_flash_holds(const UsbemuFixture *f, guint32 flash_base, const char *module, guint32 address)
{
	g_autofree char *flash = usbemu_flash_path(f);
	g_autoptr(GBytes) want = test_read_file(module);
	g_autoptr(GBytes) have = test_read_file(flash);
	gsize offset = address - flash_base;

	return address >= flash_base && g_bytes_get_size(have) >= offset + g_bytes_get_size(want) &&
	       memcmp((const guint8 *)g_bytes_get_data(have, NULL) + offset, g_bytes_get_data(want, NULL),
	              g_bytes_get_size(want)) == 0;
}

void
usbemu_flash_corrupt(const UsbemuFixture *f, gsize offset)
{
	g_autofree char *flash = usbemu_flash_path(f);
	g_autoptr(GBytes) bytes = test_read_file(flash);
	gsize size = g_bytes_get_size(bytes);
	g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(bytes, NULL), size);

	g_assert_cmpuint(offset, <, size);
	copy[offset] ^= 0x01;
	test_write_file(flash, copy, size);
}

/* ---- usbemu's command line ------------------------------------------------------------------------ */

struct _UsbemuCommand {
	GPtrArray *argv;
	GSubprocessLauncher *launcher;
	const char *wrapper; /* usbemu runs under it (USBEMU_COMMAND_WRAP_USBEMU), or NULL */
};

/* $HEALER_TEST_WRAPPER's words, or NULL when it is not set. */
static GStrv
test_wrapper_words(void)
{
	const char *wrapper = g_getenv("HEALER_TEST_WRAPPER");
	GStrv words = NULL;

	if (wrapper == NULL || *wrapper == '\0')
		return NULL;
	g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
	return words;
}

UsbemuCommand *
usbemu_command_new(const UsbemuFixture *f, UsbemuCommandFlags flags)
{
	UsbemuCommand *cmd = g_new0(UsbemuCommand, 1);

	cmd->argv = g_ptr_array_new_with_free_func(g_free);
	cmd->launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_subprocess_launcher_set_child_setup(cmd->launcher, test_die_with_parent, NULL, NULL);
	if (flags & USBEMU_COMMAND_WRAP_USBEMU) {
		g_auto(GStrv) words = test_wrapper_words();
		if (words != NULL) {
			cmd->wrapper = g_getenv("HEALER_TEST_WRAPPER");
			usbemu_command_add_words(cmd, (const char *const *)words);
			/* usbemu runs itself again under umockdev's preload, which would take it out of valgrind:
			 * give it the preload from the start. */
			usbemu_command_setenv(cmd, "LD_PRELOAD", "libumockdev-preload.so.0");
		}
	}
	usbemu_command_add(cmd, test_program("USBEMU"));
	if (f != NULL) {
		usbemu_command_add_printf(cmd, "--trace=%s", f->trace);
		if (flags & USBEMU_COMMAND_CONTROL)
			usbemu_command_add_printf(cmd, "--control=%s", f->control);
		if (flags & USBEMU_COMMAND_IN_DIR)
			g_subprocess_launcher_set_cwd(cmd->launcher, f->dir);
	}
	return cmd;
}

void
usbemu_command_free(UsbemuCommand *cmd)
{
	g_ptr_array_unref(cmd->argv);
	g_object_unref(cmd->launcher);
	g_free(cmd);
}

void
usbemu_command_add(UsbemuCommand *cmd, const char *word)
{
	g_ptr_array_add(cmd->argv, g_strdup(word));
}

void
usbemu_command_add_printf(UsbemuCommand *cmd, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_ptr_array_add(cmd->argv, g_strdup_vprintf(format, args));
	va_end(args);
}

void
usbemu_command_add_words(UsbemuCommand *cmd, const char *const *words)
{
	for (guint i = 0; words != NULL && words[i] != NULL; i++)
		usbemu_command_add(cmd, words[i]);
}

void
usbemu_command_add_test_wrapper(UsbemuCommand *cmd)
{
	g_auto(GStrv) words = test_wrapper_words();

	for (guint i = 0; words != NULL && words[i] != NULL; i++) {
		usbemu_command_add(cmd, words[i]);
		if (i == 0 && g_str_has_suffix(words[0], "valgrind"))
			usbemu_command_add_printf(cmd, "--suppressions=%s/tests/unit/umockdev.supp",
			                          g_getenv("HEALER_SOURCE_DIR"));
	}
}

void
usbemu_command_setenv(UsbemuCommand *cmd, const char *name, const char *value)
{
	g_subprocess_launcher_setenv(cmd->launcher, name, value, TRUE);
}

int
usbemu_command_run(UsbemuCommand *cmd, char **output)
{
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *out = NULL;
	int status;

	g_ptr_array_add(cmd->argv, NULL);
	process = g_subprocess_launcher_spawnv(cmd->launcher, (const char *const *)cmd->argv->pdata, &error);
	/* The command may be run again. */
	g_ptr_array_remove_index(cmd->argv, cmd->argv->len - 1);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(process, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	if (!g_subprocess_get_if_exited(process))
		g_error("usbemu did not exit (signal %d):\n%s", g_subprocess_get_term_sig(process), out);
	status = g_subprocess_get_exit_status(process);
	if (cmd->wrapper != NULL && status == 99)
		g_error("memory errors under %s running usbemu:\n%s", cmd->wrapper, out);
	g_test_message("usbemu exited %d:\n%s", status, out);
	/*
	 * A failure's cause is at the end of what it printed: on stderr too, where it lands last in the
	 * test's log, after valgrind's own notes (meson shows only a log's last lines).
	 */
	if (status != 0) {
		gsize len = strlen(out);
		g_printerr("usbemu exited %d; the end of its output:\n%s\n", status,
		           out + (len > 2000 ? len - 2000 : 0));
	}
	if (output != NULL)
		*output = g_steal_pointer(&out);
	return status;
}

char *
usbemu_command_to_shell(const UsbemuCommand *cmd)
{
	g_autoptr(GString) line = g_string_new(NULL);

	for (guint i = 0; i < cmd->argv->len; i++) {
		g_autofree char *quoted = g_shell_quote(cmd->argv->pdata[i]);
		g_string_append_printf(line, "%s%s", i ? " " : "", quoted);
	}
	return g_string_free(g_steal_pointer(&line), FALSE);
}

/* ---- what came out ------------------------------------------------------------------------------ */

char *
usbemu_read_trace(const UsbemuFixture *f)
{
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_file_get_contents(f->trace, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

void
usbemu_wait_trace(const UsbemuFixture *f, const char *needle, guint count, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		g_autofree char *text = NULL;

		/* Not there yet before usbemu has started. */
		if (!g_file_get_contents(f->trace, &text, NULL, NULL))
			text = g_strdup("");
		if (usbemu_count(text, needle) >= count)
			return;
		if (g_get_monotonic_time() > deadline)
			g_error("usbemu's trace has '%s' fewer than %u times after %u ms:\n%s", needle, count,
			        timeout_ms, text);
		/* The trace is a file usbemu appends to: there is no event to wait on from here. */
		g_usleep(10000);
	}
}

guint
usbemu_count(const char *text, const char *needle)
{
	guint n = 0;

	for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

void
usbemu_assert_contains(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		g_error("'%s' not found in:\n%s", needle, text);
}

void
usbemu_assert_lacks(const char *text, const char *needle)
{
	if (strstr(text, needle) != NULL)
		g_error("'%s' found in:\n%s", needle, text);
}

/* ---- Particle modules ----------------------------------------------------------------------------- */

char *
usbemu_write_module(const UsbemuFixture *f, const char *name, guint16 platform, guint32 start, guint8 function,
                    guint8 index, guint16 version, gsize size, const UsbemuModuleDep *deps, guint n_deps)
{
	HealerModuleSpec spec = {
	        .start_address = start,
	        .platform_id = platform,
	        .function = function,
	        .index = index,
	        .version = version,
	        .n_dependencies = n_deps,
	};
	g_autofree guint8 *payload = g_malloc(size);
	g_autoptr(GBytes) image = NULL;
	g_autoptr(GBytes) module = NULL;
	g_autoptr(GError) error = NULL;
	char *path = usbemu_path(f, name);
	guint32 x = version * 7919u + index;

	g_assert_cmpuint(n_deps, <=, G_N_ELEMENTS(spec.dependencies));
	for (gsize i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		payload[i] = (guint8)(x >> 16);
	}
	for (guint i = 0; i < n_deps; i++) {
		spec.dependencies[i].function = deps[i].function;
		spec.dependencies[i].index = deps[i].index;
		spec.dependencies[i].version = deps[i].version;
	}
	image = g_bytes_new(payload, size);
	module = healer_module_write(&spec, image, &error);
	g_assert_no_error(error);
	test_write_file(path, g_bytes_get_data(module, NULL), g_bytes_get_size(module));
	return path;
}
