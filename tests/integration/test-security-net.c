/*
 * Security, the network and the ports (issue 13, findings 6 and 7; docs/security.md): what a slow
 * upstream, a plain-http upstream, a wide port pattern, a second program on a port and a sloppy
 * configuration file must never do to healerd.  Each attack runs against healerd under the attack
 * harness (attack-harness.h): it stays up, `healerctl status` answers within 1 s throughout, its
 * RSS comes back, it opens nothing it must not, and the error a user sees names the cause.
 *
 * Ports are ptys this test makes (it keeps both ends open, so it can read the port's settings
 * while healerd holds it); waits are on events (healerd's journal lines, the port's settings),
 * bounded generously, never on time alone.
 */
#define _GNU_SOURCE /* posix_openpt, grantpt, unlockpt, ptsname */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "attack-harness.h"
#include "nginx-server.h"

#define WAIT_MS 60000

/* ---- ptys ---- */

typedef struct {
	int master;
	int slave; /* ours: the port's settings are read through it */
	char *slave_path;
	struct termios cooked; /* what the port was set to before healerd saw it */
} Pty;

/* A new pty, cooked (canonical, echo, output processing) at 9600 baud: nothing healerd would set. */
static void
pty_open(Pty *p)
{
	struct termios tio;

	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(p->master, >=, 0);
	g_assert_cmpint(grantpt(p->master), ==, 0);
	g_assert_cmpint(unlockpt(p->master), ==, 0);
	p->slave_path = g_strdup(ptsname(p->master));
	p->slave = open(p->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(p->slave, >=, 0);
	g_assert_cmpint(tcgetattr(p->slave, &tio), ==, 0);
	tio.c_iflag |= ICRNL | IXON;
	tio.c_oflag |= OPOST | ONLCR;
	tio.c_lflag |= ICANON | ECHO | ISIG | IEXTEN;
	cfsetspeed(&tio, B9600);
	g_assert_cmpint(tcsetattr(p->slave, TCSANOW, &tio), ==, 0);
	g_assert_cmpint(tcgetattr(p->slave, &p->cooked), ==, 0);
}

static void
pty_close(Pty *p)
{
	close(p->slave);
	close(p->master);
	g_free(p->slave_path);
}

static gboolean
is_raw(const Pty *p)
{
	struct termios tio;

	g_assert_cmpint(tcgetattr(p->slave, &tio), ==, 0);
	return !(tio.c_lflag & (ICANON | ECHO)) && !(tio.c_oflag & OPOST);
}

static gboolean
is_cooked_as_before(const Pty *p)
{
	struct termios tio;

	g_assert_cmpint(tcgetattr(p->slave, &tio), ==, 0);
	return tio.c_iflag == p->cooked.c_iflag && tio.c_oflag == p->cooked.c_oflag &&
	       tio.c_cflag == p->cooked.c_cflag && tio.c_lflag == p->cooked.c_lflag &&
	       cfgetispeed(&tio) == cfgetispeed(&p->cooked) && cfgetospeed(&tio) == cfgetospeed(&p->cooked);
}

/* Drains what healerd wrote to the device (HELLO requests), so its writes never fill the pty. */
static void
pty_drain(const Pty *p)
{
	char buf[4096];
	int flags = fcntl(p->master, F_GETFL);

	fcntl(p->master, F_SETFL, flags | O_NONBLOCK);
	while (read(p->master, buf, sizeof buf) > 0)
		;
	fcntl(p->master, F_SETFL, flags);
}

/* Waits until `cond` holds for the pty; fails with `what` and healerd's log after WAIT_MS. */
static void
pty_wait(Attack *a, const Pty *p, gboolean (*cond)(const Pty *), const char *what)
{
	for (gint64 deadline = g_get_monotonic_time() + WAIT_MS * 1000; !cond(p);) {
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *log = NULL;
			if (a != NULL)
				g_file_get_contents(a->healerd->log, &log, NULL, NULL);
			g_error("%s: not within %d ms; healerd's log:\n%s", what, WAIT_MS, log ? log : "");
		}
		pty_drain(p);
		g_usleep(20000);
	}
}

static char *
link_port(const char *dir, const char *name, const char *target)
{
	char *path = g_build_filename(dir, name, NULL);

	g_assert_cmpint(symlink(target, path), ==, 0);
	return path;
}

/* Waits until healerd's log has a line with every string (NULL-terminated). */
G_GNUC_NULL_TERMINATED static void
wait_log(HealerdProcess *healerd, const char *first, ...)
{
	g_autoptr(GPtrArray) all = g_ptr_array_new();
	va_list ap;

	va_start(ap, first);
	for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
		g_ptr_array_add(all, (gpointer)s);
	va_end(ap);
	g_ptr_array_add(all, NULL);
	healerd_process_wait(healerd, (const char *const *)all->pdata, 1, WAIT_MS);
}

/*
 * Ends the status probe, after one `healerctl status` of our own: the attack window then lasts at
 * least one run, however fast the attack itself went, so the probe has run in it.
 */
static void
finish_probe(AttackProbe *probe)
{
	g_auto(TestRun) run = {0};

	healerctl(&run, "status", NULL);
	g_assert_cmpint(run.exit_status, ==, 0);
	attack_probe_finish(probe);
}

static void
assert_contains(const char *text, const char *expected)
{
	if (text == NULL || strstr(text, expected) == NULL)
		g_error("expected '%s' in:\n%s", expected, text ? text : "(nothing)");
}

/* ---- finding 6: a slow upstream ---- */

/*
 * The upstream answers at once and then sends 2 bytes/s (tests/tools/slow-http behind nginx, over
 * TLS), above curl's stall limit: `healerctl refresh` fails once the transfer deadline passes
 * (transfer-timeout-seconds=5 here), with "URL: no complete answer within 5 s", while status keeps
 * answering.  Before the deadline existed, refresh waited until healerctl's own 300 s and the
 * transfer went on.
 */
static void
test_slow_upstream(void)
{
	Attack a = {0};
	g_autofree char *modules = test_tmpdir_new(); /* empty: nothing but the ports is read */
	AttackProbe *probe;
	g_auto(TestRun) run = {0};
	g_autoptr(NginxServer) nginx = NULL;
	g_autofree char *extra = NULL, *config = NULL, *url = NULL, *expected = NULL;
	int slow_port = 0;
	GPid slow;

	g_assert_true(nginx_server_available()); /* scripts/setup.sh installs nginx-light and openssl */
	slow = test_slow_http_start(2, 1 << 20, &slow_port);
	extra = g_strdup_printf("    location /slow/ { proxy_pass http://127.0.0.1:%d/; proxy_buffering off; }\n",
	                        slow_port);
	nginx = nginx_server_new(NULL, extra);
	nginx_server_start(nginx, 0);
	url = nginx_server_url(nginx, "slow");
	config = g_strdup_printf("[upstream]\nurl=%s\nca-file=%s\nproxy=\ntransfer-timeout-seconds=5\n"
	                         "retry-min-seconds=1\nretry-max-seconds=2\nrefresh-interval-seconds=0\n",
	                         url, nginx->ca_file);
	attack_setup(&a, modules, config);

	probe = attack_probe_start(&a);
	healerctl(&run, "refresh", NULL);
	finish_probe(probe);
	g_assert_cmpint(run.exit_status, !=, 0);
	expected = g_strdup_printf("healerctl refresh: %s/catalog.json: no complete answer within 5 s", url);
	assert_contains(run.err, expected);
	wait_log(a.healerd, "upstream catalog: ", "/slow/catalog.json: no complete answer within 5 s", NULL);

	attack_assert_unharmed(&a, NULL, 10000);
	attack_teardown(&a);
	test_tmpdir_free(g_steal_pointer(&modules));
	test_child_stop(slow);
}

/*
 * A plain-http url is refused at start, naming the file and line, and healerd does not start; with
 * allow-insecure-http=true it starts and says so in a warning record.
 */
static void
test_http_refused(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *config = g_build_filename(dir, "healerd.conf", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *text = NULL, *expected = NULL;
	g_autoptr(HealerdProcess) insecure = NULL;
	g_auto(TestRun) run = {0};

	text = g_strdup_printf("[daemon]\nstate-directory=%s\n[serial]\nports=\n[upstream]\nurl=http://127.0.0.1:1/x\n",
	                       state);
	g_assert_true(g_file_set_contents(config, text, -1, NULL));
	{
		const char *argv[] = {test_program("HEALERD"), "--no-bus", "--config", config, NULL};
		test_run(&run, argv);
	}
	g_assert_cmpint(run.exit_status, ==, 1);
	expected = g_strdup_printf("healerd: invalid configuration: %s:6: [upstream] url: 'http://127.0.0.1:1/x' is "
	                           "plain http: anyone on the network path could withhold new catalogs or replay old "
	                           "ones",
	                           config);
	assert_contains(run.err, expected);
	g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS)); /* it changed nothing */

	insecure = healerd_process_new(dir, dir,
	                               "[upstream]\nurl=http://127.0.0.1:1/x\nallow-insecure-http=true\n"
	                               "refresh-interval-seconds=0\n");
	healerd_process_start(insecure);
	wait_log(insecure, "[warning]",
	         "allow-insecure-http is ON: http://127.0.0.1:1/x may be fetched over plain http", NULL);
	healerd_process_stop(insecure);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* ---- finding 7: the ports ---- */

/*
 * A pattern that matches what is not a serial port: a regular file, a FIFO, a directory, a socket,
 * links to /dev/null, /dev/zero, /dev/tty, /dev/ptmx and nowhere.  None is opened at all (not even
 * read-only: the check is stat() and sysfs), nothing blocks, one warning names them; the one pty
 * among them is opened and taken.
 */
static void
test_wide_ports(void)
{
	Attack a = {0};
	g_autofree char *modules = test_tmpdir_new(); /* empty: nothing but the ports is read */
	AttackProbe *probe;
	Pty pty = {0};
	g_autoptr(GPtrArray) never = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *fifo = NULL, *file = NULL, *dir = NULL, *sock_path = NULL;
	const char *devices[][2] = {
	        {"null", "/dev/null"}, {"zero", "/dev/zero"}, {"tty", "/dev/tty"}, {"ptmx", "/dev/ptmx"}};
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int sock;

	attack_setup(&a, modules, NULL);
	probe = attack_probe_start(&a);

	file = g_build_filename(a.ports_dir, "file", NULL);
	g_assert_true(g_file_set_contents(file, "not a port\n", -1, NULL));
	fifo = g_build_filename(a.ports_dir, "fifo", NULL);
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
	dir = g_build_filename(a.ports_dir, "dir", NULL);
	g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
	sock_path = g_build_filename(a.ports_dir, "sock", NULL);
	g_assert_cmpuint(strlen(sock_path), <, sizeof addr.sun_path);
	strcpy(addr.sun_path, sock_path);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	g_assert_cmpint(bind(sock, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_ptr_array_add(never, g_strdup(file));
	g_ptr_array_add(never, g_strdup(fifo));
	g_ptr_array_add(never, g_strdup(dir));
	g_ptr_array_add(never, g_strdup(sock_path));
	for (gsize i = 0; i < G_N_ELEMENTS(devices); i++) {
		g_ptr_array_add(never, link_port(a.ports_dir, devices[i][0], devices[i][1]));
		if (!g_str_equal(devices[i][1], "/dev/null")) /* healerd may open /dev/null for itself */
			g_ptr_array_add(never, g_strdup(devices[i][1]));
	}
	g_ptr_array_add(never, link_port(a.ports_dir, "dangling", "/nonexistent/port"));
	pty_open(&pty);
	g_free(link_port(a.ports_dir, "pty", pty.slave_path));

	/* The one real port is taken; every other match is named as not a serial port. */
	pty_wait(&a, &pty, is_raw, "healerd takes the pty");
	for (guint i = 0; i < never->len; i++) {
		const char *path = g_ptr_array_index(never, i);
		g_autofree char *line = NULL;
		if (!g_str_has_prefix(path, a.ports_dir) || g_str_has_suffix(path, "/dangling"))
			continue;
		line = g_strdup_printf("%s: not a serial port (", path);
		wait_log(a.healerd, "[warning]", "[serial] ports matched ", line, NULL);
	}
	{
		g_autofree char *fifo_line = g_strdup_printf("%s: not a serial port (a FIFO)", fifo);
		g_autofree char *file_line = g_strdup_printf("%s: not a serial port (a regular file)", file);
		g_autofree char *null_line =
		        g_strdup_printf("%s/null: not a serial port (character device 1:3, class mem)", a.ports_dir);
		g_autofree char *tty_line = g_strdup_printf(
		        "%s/tty: not a serial port (character device 5:0: /dev/tty, /dev/console or /dev/ptmx)",
		        a.ports_dir);
		wait_log(a.healerd, fifo_line, NULL);
		wait_log(a.healerd, file_line, NULL);
		wait_log(a.healerd, null_line, NULL);
		wait_log(a.healerd, tty_line, NULL);
	}
	finish_probe(probe);

	g_ptr_array_add(never, NULL);
	attack_assert_unharmed(&a, (const char *const *)never->pdata, 10000);
	attack_teardown(&a);
	test_tmpdir_free(g_steal_pointer(&modules));
	close(sock);
	pty_close(&pty);
}

/*
 * healerd hands a port back as it found it: cooked at 9600 baud before, raw while healerd holds it,
 * cooked at 9600 again once the port leaves the pattern's matches, and again when healerd stops
 * while holding it.  (Before: raw at 115200 ever after.)
 */
static void
test_termios_restored(void)
{
	Attack a = {0};
	g_autofree char *modules = test_tmpdir_new(); /* empty: nothing but the ports is read */
	Pty pty = {0};
	g_autofree char *link = NULL;

	attack_setup(&a, modules, NULL);
	pty_open(&pty);
	g_assert_true(is_cooked_as_before(&pty));

	link = link_port(a.ports_dir, "dev", pty.slave_path);
	pty_wait(&a, &pty, is_raw, "healerd takes the pty");
	g_assert_cmpint(g_unlink(link), ==, 0);
	pty_wait(&a, &pty, is_cooked_as_before, "healerd puts the pty's settings back when it goes");

	g_free(link_port(a.ports_dir, "dev", pty.slave_path));
	pty_wait(&a, &pty, is_raw, "healerd takes the pty again");
	attack_assert_unharmed(&a, NULL, 10000);
	attack_teardown(&a); /* healerd stops holding it */
	g_assert_true(is_cooked_as_before(&pty));
	pty_close(&pty);
	test_tmpdir_free(g_steal_pointer(&modules));
}

/*
 * While healerd holds a port: `healerctl probe` is refused naming healerd and its pid, and a second
 * healerd (also root: TIOCEXCL alone would not stop it; the lock does) is refused likewise, leaves
 * the port's settings alone, and takes the port once the first lets go.  The second one's pattern
 * also names /dev/null: reported at start as reaching into /dev beyond serial ports.
 */
static void
test_exclusive(void)
{
	Attack a = {0};
	g_autofree char *modules = test_tmpdir_new(); /* empty: nothing but the ports is read */
	AttackProbe *probe;
	Pty pty = {0};
	g_auto(TestRun) run = {0};
	g_autofree char *link = NULL, *expected = NULL, *dir2 = NULL, *ports2 = NULL, *link2 = NULL;
	g_autofree char *drop_in_dir = NULL, *drop_in = NULL, *drop_in_text = NULL, *busy = NULL;
	g_autoptr(HealerdProcess) second = NULL;
	GPid pid;

	attack_setup(&a, modules, NULL);
	pid = attack_healerd_pid(&a);
	pty_open(&pty);
	link = link_port(a.ports_dir, "dev", pty.slave_path);
	pty_wait(&a, &pty, is_raw, "healerd takes the pty");

	probe = attack_probe_start(&a);
	healerctl(&run, "probe", "--timeout", "2", link, NULL);
	g_assert_cmpint(run.exit_status, ==, 1);
	expected = g_strdup_printf("healerctl probe: %s is in use by healerd (pid %d)\n", link, (int)pid);
	assert_contains(run.err, expected);

	dir2 = test_tmpdir_new();
	second = healerd_process_new(dir2, dir2, "");
	ports2 = g_build_filename(dir2, "ports", NULL);
	link2 = link_port(ports2, "dev", pty.slave_path);
	drop_in_dir = g_build_filename(dir2, "healerd.conf.d", NULL);
	g_assert_cmpint(g_mkdir(drop_in_dir, 0755), ==, 0);
	drop_in = g_build_filename(drop_in_dir, "50-ports.conf", NULL);
	drop_in_text = g_strdup_printf("[serial]\nports=%s/*;/dev/null\n", ports2);
	g_assert_true(g_file_set_contents(drop_in, drop_in_text, -1, NULL));
	healerd_process_start(second); /* no bus: the first one owns the name */
	busy = g_strdup_printf("%s is in use by healerd (pid %d): not opened; healerd tries again every 5 s", link2,
	                       (int)pid);
	wait_log(second, "[warning]", busy, NULL);
	wait_log(second, "[warning]", "[serial] ports: '/dev/null' reaches into /dev beyond serial ports", NULL);
	wait_log(second, "[warning]", "/dev/null: not a serial port (character device 1:3, class mem)", NULL);
	finish_probe(probe);
	g_assert_true(is_raw(&pty));

	attack_assert_unharmed(&a, NULL, 10000);
	attack_teardown(&a);
	test_tmpdir_free(g_steal_pointer(&modules));
	/* The first has let go: the second takes the port at its next try. */
	g_assert_true(is_cooked_as_before(&pty));
	pty_wait(NULL, &pty, is_raw, "the second healerd takes the pty once it is free");
	g_assert_cmpuint(healerd_process_count(second, (const char *const[]){busy, NULL}), ==, 1);
	healerd_process_stop(second);
	g_assert_true(is_cooked_as_before(&pty));
	pty_close(&pty);
	test_tmpdir_free(g_steal_pointer(&dir2));
}

/* A key set twice in one file: healerd does not start, names the file, both lines and the key, changes nothing. */
static void
test_duplicate_keys(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *config = g_build_filename(dir, "healerd.conf", NULL);
	g_autofree char *state = g_build_filename(dir, "state", NULL);
	g_autofree char *text = NULL, *expected = NULL;
	g_auto(TestRun) run = {0};
	const char *argv[] = {test_program("HEALERD"), "--no-bus", "--config", config, NULL};

	text = g_strdup_printf("[daemon]\nstate-directory=%s\n[serial]\nports=/dev/ttyUSB*\nbaud=9600\nports=/dev/*\n",
	                       state);
	g_assert_true(g_file_set_contents(config, text, -1, NULL));
	test_run(&run, argv);
	g_assert_cmpint(run.exit_status, ==, 1);
	expected = g_strdup_printf("healerd: invalid configuration: %s:6: [serial] ports: set twice in one file "
	                           "(first at line 4); set each key once\n",
	                           config);
	assert_contains(run.err, expected);
	g_assert_false(g_file_test(state, G_FILE_TEST_EXISTS));
	test_tmpdir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/security/net/slow-upstream", test_slow_upstream);
	g_test_add_func("/security/net/http-refused", test_http_refused);
	g_test_add_func("/security/ports/wide-pattern", test_wide_ports);
	g_test_add_func("/security/ports/termios-restored", test_termios_restored);
	g_test_add_func("/security/ports/exclusive", test_exclusive);
	g_test_add_func("/security/config/duplicate-keys", test_duplicate_keys);
	return g_test_run();
}
