/* What every security test asserts about healerd while it is attacked: see attack-harness.h. */
#include "attack-harness.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "test-util.h"

/* The bounds: status within 1 s during an attack, RSS back within 2 MiB afterwards. */
#define STATUS_LIMIT_MS  1000
#define STATUS_PERIOD_MS 250
#define RSS_SLACK_KIB    2048
/*
 * Under AddressSanitizer healerd's heap is ASan's allocator, whose free lists and the shadow of every
 * page once touched stay resident: a 20,000-file walk that glibc gives back to within 0.2 MiB leaves
 * 3.1-3.5 MiB there even a minute later.  The 2 MiB bound is healerd's and is asserted in the plain
 * build; the sanitized one allows for its allocator on top, and says so.
 */
#define ASAN_ALLOWANCE_KIB 4096

/* Every call that opens, creates or changes a file by name. */
#define TRACED_CALLS                                                                                                   \
	"open,openat,openat2,creat,truncate,unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,symlink,"          \
	"symlinkat,link,linkat,chmod,fchmodat,chown,fchownat"

/* ---- healerd under strace ---- */

void
attack_setup(Attack *a, const char *module_dir, const char *extra_config)
{
	g_autofree char *strace = g_find_program_in_path("strace");
	g_autoptr(GDBusConnection) c = NULL;
	g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);
	const char *asan = g_getenv("ASAN_OPTIONS");
	g_autofree char *empty = NULL;

	/* scripts/setup.sh installs both: a missing one is a setup bug, not a reason to skip. */
	g_assert_nonnull(strace);
	g_assert_true(have_dbus_daemon());

	a->dir = test_tmpdir_new();
	a->state_dir = g_build_filename(a->dir, "state", NULL);
	a->ports_dir = g_build_filename(a->dir, "ports", NULL);
	a->opens_log = g_build_filename(a->dir, "opens.log", NULL);
	if (module_dir == NULL) {
		/* An empty one of its own: the temp dir holds logs healerd would read as candidate modules. */
		empty = g_build_filename(a->dir, "no-modules", NULL);
		g_assert_cmpint(g_mkdir(empty, 0755), ==, 0);
	}
	a->healerd = healerd_process_new(a->dir, module_dir != NULL ? module_dir : empty,
	                                 extra_config != NULL ? extra_config : "");
	a->healerd->bus_args = g_strdup(""); /* the system bus: the private one bus_start() points at */
	/* -y: paths for descriptor arguments (openat relative to a directory); -s: whole paths. */
	a->healerd->wrapper =
	        g_strdup_printf("%s -f -qq -y -s 4096 -e trace=%s -o %s", strace, TRACED_CALLS, a->opens_log);
	/*
	 * LeakSanitizer stops the process's threads with ptrace at exit, which strace already holds, so
	 * it would fail the exit: leaks are the other suites' and valgrind's to find, not these.  ASan
	 * also keeps freed memory in quarantine and never gives it back: RSS would not return to its
	 * baseline after any attack (id churn: +10 MiB).  Without quarantine, and freed memory released
	 * at once, it does (use-after-free reports then need the reuse, which the other suites cover).
	 */
	a->under_asan = asan != NULL;
	if (asan != NULL)
		g_ptr_array_add(env, g_strdup_printf("ASAN_OPTIONS=%s:detect_leaks=0:quarantine_size_mb=0:"
		                                     "allocator_release_to_os_interval_ms=0",
		                                     asan));
	g_ptr_array_add(env, NULL);
	a->healerd->env = g_strdupv((char **)env->pdata);

	bus_start(&a->bus);
	c = bus_connect(&a->bus);
	healerd_process_start(a->healerd);
	for (gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC; !has_owner(c);) {
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *log = NULL;
			g_file_get_contents(a->healerd->log, &log, NULL, NULL);
			g_error("healerd did not take its bus name within 60 s; its log:\n%s", log ? log : "");
		}
		attack_assert_alive(a);
		g_usleep(20000);
	}
	attack_rebaseline(a);
}

void
attack_teardown(Attack *a)
{
	if (a->healerd != NULL && a->healerd->process != NULL) {
		attack_assert_alive(a);
		/*
		 * The signal goes to healerd itself: strace would only detach on it.  strace then exits
		 * with healerd's own status, which must be a clean stop.
		 */
		g_assert_cmpint(kill(attack_healerd_pid(a), SIGTERM), ==, 0);
		g_subprocess_wait(a->healerd->process, NULL, NULL);
		if (!g_subprocess_get_if_exited(a->healerd->process) ||
		    g_subprocess_get_exit_status(a->healerd->process) != 0) {
			g_autofree char *log = NULL;
			g_file_get_contents(a->healerd->log, &log, NULL, NULL);
			g_error("healerd did not stop cleanly on SIGTERM; its log:\n%s", log ? log : "");
		}
		g_clear_object(&a->healerd->process);
	}
	a->healerd_pid = 0;
	g_clear_pointer(&a->healerd, healerd_process_free);
	bus_stop(&a->bus);
	if (a->dir != NULL)
		test_tmpdir_free(a->dir);
	a->dir = NULL;
	g_clear_pointer(&a->state_dir, g_free);
	g_clear_pointer(&a->ports_dir, g_free);
	g_clear_pointer(&a->opens_log, g_free);
}

/* Whether `pid` is a healerd that has run its own code (its comm is set by the exec). */
static gboolean
is_healerd(const char *pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%s/comm", pid);
	g_autofree char *comm = NULL;

	return g_file_get_contents(path, &comm, NULL, NULL) && g_str_equal(g_strstrip(comm), "healerd");
}

GPid
attack_healerd_pid(Attack *a)
{
	const char *tracer = g_subprocess_get_identifier(a->healerd->process);
	g_autofree char *path = NULL;

	if (a->healerd_pid != 0)
		return a->healerd_pid;
	g_assert_nonnull(tracer);
	/*
	 * healerd is the strace child whose comm is "healerd": strace also forks short-lived children of
	 * its own at start (its ptrace feature checks), and the tracee is "strace" until its exec.
	 */
	path = g_strdup_printf("/proc/%s/task/%s/children", tracer, tracer);
	for (gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;;) {
		g_autofree char *children = NULL;

		if (g_file_get_contents(path, &children, NULL, NULL)) {
			g_auto(GStrv) pids = g_strsplit_set(g_strstrip(children), " \n", -1);
			for (guint i = 0; pids[i] != NULL; i++) {
				if (g_ascii_isdigit(pids[i][0]) && is_healerd(pids[i])) {
					a->healerd_pid = (GPid)g_ascii_strtoll(pids[i], NULL, 10);
					return a->healerd_pid;
				}
			}
		}
		if (g_get_monotonic_time() > deadline)
			g_error("strace (pid %s) has not started healerd", tracer);
		g_usleep(10000);
	}
}

guint64
attack_rss_kib(Attack *a)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)attack_healerd_pid(a));
	g_autofree char *text = NULL;
	const char *line;

	g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
	line = strstr(text, "\nVmRSS:");
	g_assert_nonnull(line);
	return g_ascii_strtoull(line + strlen("\nVmRSS:"), NULL, 10);
}

void
attack_rebaseline(Attack *a)
{
	guint64 last = attack_rss_kib(a);

	/* Settled: no change beyond 64 KiB over half a second (at most 10 s: a busy start still gets a figure). */
	for (gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC; g_get_monotonic_time() < deadline;) {
		guint64 now;
		g_usleep(500000);
		now = attack_rss_kib(a);
		if (now <= last + 64 && last <= now + 64) {
			last = now;
			break;
		}
		last = now;
	}
	a->baseline_kib = last;
	g_test_message("healerd's baseline RSS: %" G_GUINT64_FORMAT " KiB", a->baseline_kib);
}

void
attack_assert_alive(Attack *a)
{
	g_assert_nonnull(a->healerd->process);
	if (g_subprocess_get_identifier(a->healerd->process) == NULL) {
		g_autofree char *log = NULL;
		g_file_get_contents(a->healerd->log, &log, NULL, NULL);
		g_error("healerd is no longer running; its log:\n%s", log ? log : "");
	}
	{
		g_autofree char *path = g_strdup_printf("/proc/%d", (int)attack_healerd_pid(a));
		g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
	}
}

/* ---- healerctl status while the attack runs ---- */

struct _AttackProbe {
	GThread *thread;
	gint stop;
	char *healerctl;
	GMutex lock;
	guint runs;
	guint slowest_ms;
	GString *failures; /* what went wrong, for the message */
};

static gpointer
probe_thread(gpointer user_data)
{
	AttackProbe *p = user_data;

	while (!g_atomic_int_get(&p->stop)) {
		const char *argv[] = {p->healerctl, "status", NULL};
		g_autofree char *out = NULL, *err = NULL;
		g_autoptr(GError) error = NULL;
		gint64 start = g_get_monotonic_time();
		int status = 0;
		guint ms;

		g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
		ms = (guint)((g_get_monotonic_time() - start) / 1000);
		g_mutex_lock(&p->lock);
		p->runs++;
		p->slowest_ms = MAX(p->slowest_ms, ms);
		if (error != NULL)
			g_string_append_printf(p->failures, "healerctl status could not run: %s\n", error->message);
		else if (!g_spawn_check_wait_status(status, NULL) || ms > STATUS_LIMIT_MS)
			g_string_append_printf(p->failures, "healerctl status: wait status %d after %u ms\n%s%s\n",
			                       status, ms, out, err);
		g_mutex_unlock(&p->lock);
		g_usleep(STATUS_PERIOD_MS * 1000);
	}
	return NULL;
}

AttackProbe *
attack_probe_start(Attack *a)
{
	AttackProbe *p = g_new0(AttackProbe, 1);

	(void)a;
	p->healerctl = g_strdup(test_program("HEALERCTL"));
	p->failures = g_string_new(NULL);
	g_mutex_init(&p->lock);
	p->thread = g_thread_new("status-probe", probe_thread, p);
	return p;
}

guint
attack_probe_finish(AttackProbe *p)
{
	guint slowest;

	/* An attack may be over before the first run: the probe still answers for the time just after it. */
	for (;;) {
		guint runs;
		g_mutex_lock(&p->lock);
		runs = p->runs;
		g_mutex_unlock(&p->lock);
		if (runs > 0)
			break;
		g_usleep(10000);
	}
	g_atomic_int_set(&p->stop, 1);
	g_thread_join(p->thread);
	g_test_message("healerctl status ran %u times during the attack, the slowest in %u ms", p->runs, p->slowest_ms);
	if (p->failures->len > 0)
		g_error("healerctl status did not answer within %u ms every time:\n%s", STATUS_LIMIT_MS,
		        p->failures->str);
	g_assert_cmpuint(p->runs, >, 0);
	slowest = p->slowest_ms;
	g_string_free(p->failures, TRUE);
	g_mutex_clear(&p->lock);
	g_free(p->healerctl);
	g_free(p);
	return slowest;
}

/* ---- afterwards ---- */

void
attack_assert_rss_settles(Attack *a, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	guint64 slack = RSS_SLACK_KIB;
	guint64 rss;

	if (a->under_asan) {
		slack += ASAN_ALLOWANCE_KIB;
		g_test_message("healerd runs under AddressSanitizer: its allocator is allowed %u KiB more",
		               ASAN_ALLOWANCE_KIB);
	}

	for (;;) {
		rss = attack_rss_kib(a);
		if (rss <= a->baseline_kib + slack)
			break;
		if (g_get_monotonic_time() > deadline)
			g_error("healerd's RSS is %" G_GUINT64_FORMAT
			        " KiB %u ms after the attack, more than %" G_GUINT64_FORMAT
			        " KiB over its baseline of %" G_GUINT64_FORMAT " KiB",
			        rss, timeout_ms, slack, a->baseline_kib);
		g_usleep(100000);
	}
	g_test_message("healerd's RSS after the attack: %" G_GUINT64_FORMAT " KiB (baseline %" G_GUINT64_FORMAT " KiB)",
	               rss, a->baseline_kib);
}

/* The first quoted argument of a strace line, unescaped (strace writes \" \\ and \ooo / \xNN). */
static char *
quoted_path(const char *line, const char **after)
{
	const char *p = strchr(line, '"');
	GString *out;

	if (p == NULL)
		return NULL;
	out = g_string_new(NULL);
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			const char *start = p + 1;
			char *end = NULL;
			if (*start == 'x') {
				g_string_append_c(out, (char)g_ascii_strtoull(start + 1, &end, 16));
				p = end - 1;
			} else if (g_ascii_isdigit(*start)) {
				g_string_append_c(out, (char)g_ascii_strtoull(start, &end, 8));
				p = end - 1;
			} else {
				g_string_append_c(out, *start);
				p++;
			}
			continue;
		}
		g_string_append_c(out, *p);
	}
	if (after != NULL)
		*after = *p == '"' ? p + 1 : p;
	return g_string_free(out, FALSE);
}

/* The directory an *at() call's first argument names (strace -y: `5</some/dir>`), or NULL for AT_FDCWD. */
static char *
dirfd_path(const char *args)
{
	const char *lt = strchr(args, '<'), *quote = strchr(args, '"');

	if (lt == NULL || (quote != NULL && quote < lt) || g_str_has_prefix(args, "AT_FDCWD"))
		return NULL;
	return g_strndup(lt + 1, strcspn(lt + 1, ">"));
}

static gboolean
under(const char *path, const char *dir)
{
	gsize n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static gboolean
write_allowed(Attack *a, const char *path)
{
	return under(path, a->state_dir) || under(path, a->ports_dir) || g_str_equal(path, "/dev/null") ||
	       g_str_equal(path, "/dev/ptmx") || under(path, "/dev/pts");
}

/* /proc/self/fd/N, /proc/PID/fd/N, /dev/fd/N (the directories themselves are fine: listing them). */
static gboolean
is_fd_reopen(const char *path)
{
	const char *rest = NULL;

	if (g_str_has_prefix(path, "/dev/fd/"))
		rest = path + strlen("/dev/fd/");
	else if (g_str_has_prefix(path, "/proc/")) {
		const char *p = path + strlen("/proc/");
		if (g_str_has_prefix(p, "self/"))
			p += strlen("self/");
		else if (g_str_has_prefix(p, "thread-self/"))
			p += strlen("thread-self/");
		else {
			while (g_ascii_isdigit(*p))
				p++;
			if (*p != '/')
				return FALSE;
			p++;
		}
		if (!g_str_has_prefix(p, "fd/"))
			return FALSE;
		rest = p + strlen("fd/");
	}
	return rest != NULL && g_ascii_isdigit(*rest);
}

void
attack_assert_opens(Attack *a, const char *const *never)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;
	g_autoptr(GString) bad = g_string_new(NULL);
	guint seen = 0;

	g_assert_true(g_file_get_contents(a->opens_log, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const char *line = lines[i], *call, *args, *rest = NULL;
		g_autofree char *name = NULL, *dir = NULL, *path = NULL;
		gboolean writes;

		/* "PID call(args) = result"; resumed and unfinished halves carry the call's name too. */
		call = strchr(line, ' ');
		if (call == NULL)
			continue;
		while (*call == ' ')
			call++; /* strace pads the pid to five columns */
		args = strchr(call, '(');
		if (args == NULL || strstr(line, "resumed>") != NULL)
			continue;
		args++;
		name = quoted_path(args, &rest);
		if (name == NULL)
			continue;
		seen++;
		dir = g_str_has_prefix(call, "open(") || g_str_has_prefix(call, "creat(") ? NULL : dirfd_path(args);
		path = name[0] == '/' || dir == NULL ? g_strdup(name) : g_build_filename(dir, name, NULL);

		/*
		 * A descriptor reopened by its /proc path is opened with healerd's rights, not with those of
		 * whoever passed it (and an O_PATH or write-only one becomes readable): never on a caller's behalf.
		 */
		if (is_fd_reopen(path))
			g_string_append_printf(bad, "reopened a descriptor through its /proc path: %s\n", line);
		for (guint k = 0; never != NULL && never[k] != NULL; k++) {
			if (g_str_equal(path, never[k]) || g_str_equal(name, never[k]))
				g_string_append_printf(bad, "opened %s, which it must never read: %s\n", never[k],
				                       line);
		}
		if (g_str_has_prefix(call, "open") || g_str_has_prefix(call, "creat"))
			writes = g_str_has_prefix(call, "creat") || strstr(rest, "O_WRONLY") != NULL ||
			         strstr(rest, "O_RDWR") != NULL || strstr(rest, "O_CREAT") != NULL ||
			         strstr(rest, "O_TRUNC") != NULL;
		else
			writes = TRUE; /* unlink, rename, mkdir, chmod, ...: each changes the file system */
		/* A path that is not absolute relative to the working directory: healerd's is /, never written. */
		if (writes && !write_allowed(a, path))
			g_string_append_printf(bad, "changed or opened for writing outside its state directory: %s\n",
			                       line);
	}
	g_test_message("strace recorded %u file calls by healerd", seen);
	/* An empty record would pass everything: strace must have seen at least the state directory. */
	g_assert_cmpuint(seen, >, 0);
	if (bad->len > 0)
		g_error("%s", bad->str);
}

void
attack_assert_unharmed(Attack *a, const char *const *never, guint timeout_ms)
{
	attack_assert_alive(a);
	attack_assert_rss_settles(a, timeout_ms);
	attack_assert_opens(a, never);
}
