/*
 * Serial ports opened the safe way (agent/lib/healer-serial.h) and the port patterns healerd calls
 * too wide (port-watcher.h), on ptys and files this test makes: only serial ttys pass the check,
 * which opens nothing; an open port is held exclusively, a second open is refused naming the
 * holder; closing puts the settings back; every rate [serial] baud accepts is the rate the port is
 * set to, and no other rate is accepted.
 */
#define _GNU_SOURCE /* posix_openpt, grantpt, unlockpt, ptsname */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "config.h"
#include "healer-error.h"
#include "healer-serial.h"
#include "port-watcher.h"
#include "serial-speed.h"
#include "test-util.h"

typedef struct {
	int master;
	char *slave_path;
} Pty;

static void
pty_open(Pty *p)
{
	p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(p->master, >=, 0);
	g_assert_cmpint(grantpt(p->master), ==, 0);
	g_assert_cmpint(unlockpt(p->master), ==, 0);
	p->slave_path = g_strdup(ptsname(p->master));
}

static void
pty_close(Pty *p)
{
	close(p->master);
	g_free(p->slave_path);
}

static void
expect_refused(const char *path, int code, const char *expected)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerSerialPort) port = NULL;

	g_assert_false(healer_serial_port_check(path, NULL, &error));
	g_assert_error(error, HEALER_ERROR, code);
	g_assert_cmpstr(error->message, ==, expected);
	g_clear_error(&error);
	port = healer_serial_port_open(path, &error);
	g_assert_null(port);
	g_assert_error(error, HEALER_ERROR, code);
	g_assert_cmpstr(error->message, ==, expected);
}

/* What is not a serial tty is refused by what it is; a pty slave, a link to one, pass. */
static void
test_check(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *file = g_build_filename(dir, "file", NULL);
	g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
	g_autofree char *link = g_build_filename(dir, "port", NULL);
	g_autofree char *missing = g_build_filename(dir, "missing", NULL);
	g_autofree char *expected = NULL;
	g_autoptr(GError) error = NULL;
	struct stat st;
	Pty pty;

	g_assert_true(g_file_set_contents(file, "x", -1, NULL));
	g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);

	expected = g_strdup_printf("%s: not a serial port (a regular file)", file);
	expect_refused(file, HEALER_ERROR_INVALID_ARGUMENT, expected);
	g_free(expected);
	expected = g_strdup_printf("%s: not a serial port (a FIFO)", fifo);
	expect_refused(fifo, HEALER_ERROR_INVALID_ARGUMENT, expected);
	g_free(expected);
	expected = g_strdup_printf("%s: not a serial port (a directory)", dir);
	expect_refused(dir, HEALER_ERROR_INVALID_ARGUMENT, expected);
	g_free(expected);
	expected = g_strdup_printf("%s: No such file or directory", missing);
	expect_refused(missing, HEALER_ERROR_NOT_FOUND, expected);
	expect_refused("/dev/null", HEALER_ERROR_INVALID_ARGUMENT,
	               "/dev/null: not a serial port (character device 1:3, class mem)");
	expect_refused("/dev/tty", HEALER_ERROR_INVALID_ARGUMENT,
	               "/dev/tty: not a serial port (character device 5:0: /dev/tty, /dev/console or /dev/ptmx)");
	expect_refused("/dev/ptmx", HEALER_ERROR_INVALID_ARGUMENT,
	               "/dev/ptmx: not a serial port (character device 5:2: /dev/tty, /dev/console or /dev/ptmx)");

	pty_open(&pty);
	g_assert_true(healer_serial_port_check(pty.slave_path, &st, &error));
	g_assert_no_error(error);
	g_assert_true(S_ISCHR(st.st_mode));
	g_assert_cmpint(symlink(pty.slave_path, link), ==, 0);
	g_assert_true(healer_serial_port_check(link, NULL, &error));
	g_assert_no_error(error);
	pty_close(&pty);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static gboolean
same_termios(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
	       a->c_lflag == b->c_lflag && cfgetospeed(a) == cfgetospeed(b);
}

/*
 * Open: raw at the asked speed while held; a second open (even by the same process, even as root:
 * the lock) is refused naming this program and its pid, and changes nothing; close: the settings
 * found at open are back, and the port can be opened again.
 */
static void
test_open_exclusive_restore(void)
{
	g_autoptr(HealerSerialPort) port = NULL;
	g_autoptr(HealerSerialPort) second = NULL;
	g_autoptr(HealerSerialPort) again = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *expected = NULL;
	g_autofree char *comm = NULL;
	struct termios before, during, after;
	int observer;
	Pty pty;

	pty_open(&pty);
	observer = open(pty.slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(observer, >=, 0);
	g_assert_cmpint(tcgetattr(observer, &before), ==, 0);
	before.c_lflag |= ICANON | ECHO;
	cfsetspeed(&before, B9600);
	g_assert_cmpint(tcsetattr(observer, TCSANOW, &before), ==, 0);
	g_assert_cmpint(tcgetattr(observer, &before), ==, 0);

	port = healer_serial_port_open(pty.slave_path, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(healer_serial_port_get_path(port), ==, pty.slave_path);
	g_assert_true(healer_serial_port_set_raw(port, 921600, &error));
	g_assert_no_error(error);
	g_assert_cmpint(tcgetattr(observer, &during), ==, 0);
	g_assert_false(during.c_lflag & (ICANON | ECHO));
	g_assert_cmpuint(cfgetospeed(&during), ==, B921600);
	g_assert_false(healer_serial_port_set_raw(port, 1234, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);

	g_assert_true(g_file_get_contents("/proc/self/comm", &comm, NULL, NULL));
	g_strstrip(comm);
	expected = g_strdup_printf("%s is in use by %s (pid %d)", pty.slave_path, comm, (int)getpid());
	second = healer_serial_port_open(pty.slave_path, &error);
	g_assert_null(second);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_BUSY);
	g_assert_cmpstr(error->message, ==, expected);
	g_clear_error(&error);
	g_assert_cmpint(tcgetattr(observer, &after), ==, 0);
	g_assert_true(same_termios(&after, &during));

	g_clear_pointer(&port, healer_serial_port_close);
	g_assert_cmpint(tcgetattr(observer, &after), ==, 0);
	g_assert_true(same_termios(&after, &before));
	again = healer_serial_port_open(pty.slave_path, &error);
	g_assert_no_error(error);
	g_assert_nonnull(again);
	close(observer);
	pty_close(&pty);
}

/* The rates as [serial] baud lists them when it refuses one (healerd.conf(5) lists the same). */
#define ALL_RATES                                                                                                      \
	"1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, "       \
	"1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000"

/* [serial] baud=TEXT through the daemon's config: the rate taken, or 0 after checking why not. */
static guint
config_baud(const char *text)
{
	g_autofree char *conf = g_strdup_printf("[serial]\nbaud=%s\n", text);
	g_autofree char *expected = g_strdup_printf("test.conf:2: [serial] baud: '%s' is not a supported baud rate "
	                                            "(one of " ALL_RATES ")",
	                                            text);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerConfig) config = healer_config_load_from_data("test.conf", conf, strlen(conf), &error);

	if (config != NULL) {
		g_assert_no_error(error);
		return config->baud;
	}
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(error->message, ==, expected);
	return 0;
}

/*
 * Every rate the config accepts is the speed the port runs at, as the kernel reads it back (issue 15:
 * 1200, 2400, 4800, 500000, 576000 and 1152000 up were accepted, and ran at 115200).  The candidates
 * are every rate Linux has a constant for and a few it has not; those the config refuses are refused
 * with the list of rates, and so is any rate by the port itself.
 */
static void
test_every_accepted_rate_is_set(void)
{
	static const guint candidates[] = {
	        50,      75,      110,     134,     150,     200,     300,     600,     1200,    1800,
	        2400,    4800,    9600,    14400,   19200,   28800,   38400,   57600,   76800,   115200,
	        115201,  128000,  230400,  250000,  256000,  460800,  500000,  576000,  921600,  1000000,
	        1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000, 4000001, 5000000,
	};
	static const guint refused[] = {50, 600, 1800, 14400, 115201, 250000, 4000001, 5000000};
	guint accepted = 0;
	Pty pty;

	pty_open(&pty);
	for (gsize i = 0; i < G_N_ELEMENTS(candidates); i++) {
		g_autofree char *text = g_strdup_printf("%u", candidates[i]);
		g_autoptr(HealerSerialPort) port = NULL;
		g_autoptr(GError) error = NULL;
		guint baud = config_baud(text);

		if (baud == 0) {
			g_assert_false(healer_serial_baud_is_supported(candidates[i]));
			port = healer_serial_port_open(pty.slave_path, &error);
			g_assert_no_error(error);
			g_assert_false(healer_serial_port_set_raw(port, candidates[i], &error));
			g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
			continue;
		}
		g_assert_cmpuint(baud, ==, candidates[i]);
		port = healer_serial_port_open(pty.slave_path, &error);
		g_assert_no_error(error);
		g_assert_true(healer_serial_port_set_raw(port, baud, &error));
		g_assert_no_error(error);
		if (serial_speed_of(healer_serial_port_get_fd(port)) != baud)
			g_error("[serial] baud=%u accepted, but the port runs at %u", baud,
			        serial_speed_of(healer_serial_port_get_fd(port)));
		accepted++;
	}
	g_assert_cmpuint(accepted, ==, 21);
	/* The table itself: each of its rates among the candidates, each candidate above judged by it. */
	g_assert_cmpuint(healer_serial_baud_rate_count(), ==, accepted);
	for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
		g_autofree char *text = g_strdup_printf("%u", refused[i]);
		g_assert_cmpuint(config_baud(text), ==, 0);
	}
	g_assert_cmpuint(config_baud("0"), ==, 0);
	g_assert_cmpuint(config_baud("fast"), ==, 0);
	g_assert_cmpuint(config_baud("-9600"), ==, 0);
	pty_close(&pty);
}

/* The patterns reported at start: those that reach into /dev beyond /dev/tty* and /dev/serial/. */
static void
test_wide_globs(void)
{
	const char *wide[] = {"/dev/*",      "/dev/ptmx", "/dev/pts/*",   "/dev/t*",       "/*",
	                      "/d*/ttyUSB0", "/dev",      "/dev/serial*", "/dev/bus/usb/*"};
	const char *fine[] = {"/dev/ttyUSB*",        "/dev/ttyACM0",          "/dev/tty*",
	                      "/dev/serial/by-id/*", "/run/healer-sim/*/tty", "/srv/ports/*"};

	for (gsize i = 0; i < G_N_ELEMENTS(wide); i++) {
		if (!healer_port_glob_is_wide(wide[i]))
			g_error("'%s' should be reported as wide", wide[i]);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(fine); i++) {
		if (healer_port_glob_is_wide(fine[i]))
			g_error("'%s' should not be reported as wide", fine[i]);
	}
}

/* What the watcher last reported, and whether it named `want`. */
typedef struct {
	const char *want;
	gboolean seen;
} Ports;

static void
on_ports(GPtrArray *paths, gpointer user_data)
{
	Ports *ports = user_data;

	ports->seen = g_ptr_array_find_with_equal_func(paths, ports->want, g_str_equal, NULL);
}

static gboolean
on_watch_deadline(gpointer user_data)
{
	g_error("the watcher did not report %s", (const char *)user_data);
	return G_SOURCE_REMOVE;
}

/* Runs the main loop until the watcher reports `link` (a bound for a hang, not a timing check). */
static void
wait_reported(Ports *ports, const char *link)
{
	guint deadline = g_timeout_add_seconds(60, on_watch_deadline, (gpointer)link);

	ports->want = link;
	ports->seen = FALSE;
	while (!ports->seen)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(deadline);
}

/*
 * A port link that appears inside a directory the glob's wildcard matched, where the directory was
 * there before the link: seen as it appears (the watcher watches every level the glob walks),
 * with no rescan for another reason.  Then a new directory with its link, and the same again.
 */
static void
test_watch_every_level(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-serial-watch-XXXXXX", NULL);
	g_autofree char *sub = g_build_filename(dir, "device-1", NULL);
	g_autofree char *link = g_build_filename(sub, "tty", NULL);
	g_autofree char *sub2 = g_build_filename(dir, "device-2", NULL);
	g_autofree char *link2 = g_build_filename(sub2, "tty", NULL);
	g_autofree char *pattern = g_build_filename(dir, "*", "tty", NULL);
	const char *globs[] = {pattern, NULL};
	Ports ports = {0};
	HealerPortWatcher *watcher;
	Pty pty;

	pty_open(&pty);
	g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
	watcher = healer_port_watcher_new(globs, TRUE, on_ports, &ports);
	healer_port_watcher_rescan(watcher);
	g_assert_false(ports.seen);
	g_assert_cmpint(symlink(pty.slave_path, link), ==, 0);
	wait_reported(&ports, link);

	g_assert_cmpint(g_mkdir(sub2, 0755), ==, 0);
	/* The new directory is watched once the rescan its creation causes has run. */
	wait_reported(&ports, link);
	g_assert_cmpint(symlink(pty.slave_path, link2), ==, 0);
	wait_reported(&ports, link2);

	healer_port_watcher_free(watcher);
	g_unlink(link2);
	g_unlink(link);
	g_rmdir(sub2);
	g_rmdir(sub);
	g_rmdir(dir);
	pty_close(&pty);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/serial/check", test_check);
	g_test_add_func("/serial/open-exclusive-restore", test_open_exclusive_restore);
	g_test_add_func("/serial/wide-globs", test_wide_globs);
	g_test_add_func("/serial/watch-every-level", test_watch_every_level);
	g_test_add_func("/serial/every-accepted-rate-is-set", test_every_accepted_rate_is_set);
	return g_test_run();
}
