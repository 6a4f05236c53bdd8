#include "healerd-process.h"

#include <signal.h>

#include "test-util.h"

HealerdProcess *
healerd_process_new(const char *dir, const char *module_dir, const char *healer_lines)
{
	HealerdProcess *self = g_new0(HealerdProcess, 1);
	g_autofree char *ports = g_build_filename(dir, "ports", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	/* The firmware build's catalog is signed with the development key: trust it, here only. */
	g_autofree char *keys = g_build_filename(test_program("HEALER_SOURCE_DIR"), "device-firmware", "keys", NULL);

	self->dir = g_strdup(dir);
	self->config = g_build_filename(dir, "healerd.conf", NULL);
	self->log = g_build_filename(dir, "healerd.log", NULL);
	g_mkdir_with_parents(ports, 0755);
	text = g_strdup_printf(
	        "[daemon]\nstate-directory=%s\nlog-level=debug\n"
	        "[serial]\nports=%s/*\n"
	        "[store]\nmodule-directories=%s\ntrusted-keys=%s\n"
	        "[healer]\nreset-timeout-seconds=20\nresponse-timeout-seconds=5\nretry-backoff-seconds=1\n%s",
	        state, ports, module_dir, keys, healer_lines ? healer_lines : "");
	g_file_set_contents(self->config, text, -1, &error);
	g_assert_no_error(error);
	return self;
}

void
healerd_process_start(HealerdProcess *self)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	const char *wrapper = self->wrapper != NULL ? self->wrapper : g_getenv("HEALER_TEST_WRAPPER");
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;
	g_autofree char *old = NULL;

	/* Keep what earlier runs said: a restart test reads both. */
	if (g_file_get_contents(self->log, &old, NULL, NULL)) {
		g_autofree char *kept = g_strconcat(self->log, ".old", NULL);
		g_autofree char *all = NULL, *prev = NULL;
		g_file_get_contents(kept, &prev, NULL, NULL);
		all = g_strconcat(prev ? prev : "", old, NULL);
		g_file_set_contents(kept, all, -1, NULL);
	}
	if (wrapper != NULL && *wrapper != '\0') {
		g_auto(GStrv) words = NULL;
		g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(argv, g_strdup(words[i]));
	}
	g_ptr_array_add(argv, g_strdup(test_program("HEALERD")));
	g_ptr_array_add(argv, g_strdup("--config"));
	g_ptr_array_add(argv, g_strdup(self->config));
	/* These tests watch healerd's journal lines; test-dbus drives its bus API. */
	if (self->bus_args == NULL)
		g_ptr_array_add(argv, g_strdup("--no-bus"));
	else if (*self->bus_args != '\0')
		g_ptr_array_add(argv, g_strdup(self->bus_args));
	g_ptr_array_add(argv, NULL);
	/* If the test dies, so does what it started: nothing is left holding meson's pipes. */
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_set_stderr_file_path(launcher, self->log);
	g_subprocess_launcher_unsetenv(launcher, "NOTIFY_SOCKET");
	g_subprocess_launcher_unsetenv(launcher, "WATCHDOG_USEC");
	for (guint i = 0; self->env != NULL && self->env[i] != NULL; i++) {
		g_auto(GStrv) pair = g_strsplit(self->env[i], "=", 2);
		g_assert_nonnull(pair[1]);
		g_subprocess_launcher_setenv(launcher, pair[0], pair[1], TRUE);
	}
	self->process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
}

void
healerd_process_stop(HealerdProcess *self)
{
	if (self->process == NULL)
		return;
	g_subprocess_send_signal(self->process, SIGTERM);
	g_subprocess_wait(self->process, NULL, NULL);
	/* valgrind's error exit code: the daemon had memory errors or leaks. */
	if (g_subprocess_get_if_exited(self->process) && g_subprocess_get_exit_status(self->process) == 99)
		g_error("healerd had memory errors; see %s", self->log);
	g_assert_true(g_subprocess_get_if_exited(self->process));
	g_assert_cmpint(g_subprocess_get_exit_status(self->process), ==, 0);
	g_clear_object(&self->process);
}

void
healerd_process_kill(HealerdProcess *self)
{
	g_subprocess_send_signal(self->process, SIGKILL);
	g_subprocess_wait(self->process, NULL, NULL);
	g_clear_object(&self->process);
}

void
healerd_process_free(HealerdProcess *self)
{
	if (self == NULL)
		return;
	if (self->process != NULL)
		healerd_process_kill(self);
	g_free(self->dir);
	g_free(self->bus_args);
	g_free(self->wrapper);
	g_strfreev(self->env);
	g_free(self->config);
	g_free(self->log);
	g_free(self);
}

static gboolean
has_all(const char *line, const char *const *all)
{
	for (guint i = 0; all[i] != NULL; i++) {
		if (strstr(line, all[i]) == NULL)
			return FALSE;
	}
	return TRUE;
}

GPtrArray *
healerd_process_lines(HealerdProcess *self, const char *const *all)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(self->log, &text, NULL, NULL))
		return out;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		if (has_all(lines[i], all))
			g_ptr_array_add(out, g_strdup(lines[i]));
	}
	return out;
}

guint
healerd_process_count(HealerdProcess *self, const char *const *all)
{
	g_autoptr(GPtrArray) lines = healerd_process_lines(self, all);

	return lines->len;
}

void
healerd_process_wait(HealerdProcess *self, const char *const *all, guint count, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	g_autofree char *want = g_strjoinv("' and '", (char **)all);

	while (healerd_process_count(self, all) < count) {
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *text = NULL;
			g_file_get_contents(self->log, &text, NULL, NULL);
			g_error("healerd did not log %u line(s) with '%s' within %u ms; its log:\n%s", count, want,
			        timeout_ms, text ? text : "(none)");
		}
		if (self->process != NULL && g_subprocess_get_identifier(self->process) == NULL) {
			g_autofree char *log = NULL;
			gsize len = 0;

			/* The test's directory goes with it: the log's end is what says why. */
			if (g_file_get_contents(self->log, &log, &len, NULL))
				g_printerr("healerd's log ends:\n%s\n", log + (len > 4000 ? len - 4000 : 0));
			g_error("healerd exited; see %s", self->log);
		}
		g_usleep(20000);
	}
}
