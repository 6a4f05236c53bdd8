#include "healer-serial.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/major.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "healer-error.h"

struct _HealerSerialPort {
	char *path;
	int fd;
	struct termios saved; /* as found at open: put back at close */
};

/* What a non-character-device path is, for the error. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISBLK(mode))
		return "a block device";
	return "not a device";
}

/*
 * The sysfs class of character device `rdev` ("tty", "mem", "misc"...):
 * /sys/dev/char/MAJ:MIN/subsystem links to /sys/class/NAME.  NULL when sysfs
 * has no such device (pty slaves are not in sysfs; nor is anything when
 * /sys is not mounted).
 */
static char *
char_device_class(dev_t rdev)
{
	g_autofree char *link = g_strdup_printf("/sys/dev/char/%u:%u/subsystem", major(rdev), minor(rdev));
	g_autofree char *target = g_file_read_link(link, NULL);

	return target != NULL ? g_path_get_basename(target) : NULL;
}

gboolean
healer_serial_port_check(const char *path, struct stat *st_out, GError **error)
{
	struct stat st;
	g_autofree char *class = NULL;
	guint maj, min;

	/* stat(), not open(): nothing is opened, so nothing can block or have a side effect. */
	if (stat(path, &st) != 0) {
		int saved = errno;
		g_set_error(error, HEALER_ERROR, saved == ENOENT ? HEALER_ERROR_NOT_FOUND : HEALER_ERROR_IO, "%s: %s",
		            path, g_strerror(saved));
		return FALSE;
	}
	if (st_out != NULL)
		*st_out = st;
	if (!S_ISCHR(st.st_mode)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: not a serial port (%s)", path,
		            file_kind(st.st_mode));
		return FALSE;
	}
	maj = major(st.st_rdev);
	min = minor(st.st_rdev);
	/* pty slaves (/dev/pts/N): how simulated devices and test tools attach. */
	if (maj >= UNIX98_PTY_SLAVE_MAJOR && maj < UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT)
		return TRUE;
	/* Major 4 below 64: the virtual consoles (tty0..tty63); 64 and up are the 8250 UARTs (ttyS*). */
	if (maj == TTY_MAJOR && min < 64) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: not a serial port (a virtual console)", path);
		return FALSE;
	}
	/* Major 5: /dev/tty (the caller's terminal), /dev/console, /dev/ptmx (makes a new pty), ttyprintk. */
	if (maj == TTYAUX_MAJOR) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: not a serial port (character device %u:%u: /dev/tty, /dev/console or /dev/ptmx)", path,
		            maj, min);
		return FALSE;
	}
	class = char_device_class(st.st_rdev);
	if (g_strcmp0(class, "tty") != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: not a serial port (character device %u:%u, %s%s)", path, maj, min,
		            class != NULL ? "class " : "not a tty", class != NULL ? class : "");
		return FALSE;
	}
	return TRUE;
}

char *
healer_serial_lock_holder(dev_t dev, ino_t ino)
{
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents("/proc/locks", &text, NULL, NULL))
		return NULL;
	lines = g_strsplit(text, "\n", -1);
	/* "1: FLOCK  ADVISORY  WRITE 1234 00:05:123 0 EOF" (waiters have "->" after the number) */
	for (guint i = 0; lines[i] != NULL; i++) {
		g_auto(GStrv) f = g_strsplit_set(lines[i], " \t", -1);
		g_autoptr(GPtrArray) tokens = g_ptr_array_new();
		guint lock_maj = 0, lock_min = 0;
		guint64 lock_ino = 0;
		guint64 pid = 0;
		g_autofree char *comm_path = NULL;
		g_autofree char *comm = NULL;

		for (guint k = 0; f[k] != NULL; k++) {
			if (f[k][0] != '\0')
				g_ptr_array_add(tokens, f[k]);
		}
		if (tokens->len < 6 || strcmp(g_ptr_array_index(tokens, 1), "FLOCK") != 0)
			continue;
		if (sscanf(g_ptr_array_index(tokens, 5), "%x:%x:%" G_GUINT64_FORMAT, &lock_maj, &lock_min, &lock_ino) !=
		            3 ||
		    lock_maj != major(dev) || lock_min != minor(dev) || lock_ino != (guint64)ino)
			continue;
		if (!g_ascii_string_to_unsigned(g_ptr_array_index(tokens, 4), 10, 1, G_MAXINT, &pid, NULL))
			continue;
		comm_path = g_strdup_printf("/proc/%" G_GUINT64_FORMAT "/comm", pid);
		if (g_file_get_contents(comm_path, &comm, NULL, NULL))
			g_strstrip(comm);
		return g_strdup_printf("%s (pid %" G_GUINT64_FORMAT ")",
		                       comm != NULL && comm[0] != '\0' ? comm : "a program", pid);
	}
	return NULL;
}

static void
set_busy_error(GError **error, const char *path, dev_t dev, ino_t ino)
{
	g_autofree char *holder = healer_serial_lock_holder(dev, ino);

	g_set_error(error, HEALER_ERROR, HEALER_ERROR_BUSY, "%s is in use by %s", path,
	            holder != NULL ? holder : "another program");
}

HealerSerialPort *
healer_serial_port_open(const char *path, GError **error)
{
	HealerSerialPort *port;
	struct stat before, after;
	struct termios saved;
	int fd;

	if (!healer_serial_port_check(path, &before, error))
		return NULL;
	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int saved_errno = errno;
		if (saved_errno == EBUSY) /* another holder's TIOCEXCL */
			set_busy_error(error, path, before.st_dev, before.st_ino);
		else
			g_set_error(error, HEALER_ERROR,
			            saved_errno == ENOENT   ? HEALER_ERROR_NOT_FOUND
			            : saved_errno == EACCES ? HEALER_ERROR_PERMISSION_DENIED
			                                    : HEALER_ERROR_IO,
			            "%s: %s", path, g_strerror(saved_errno));
		return NULL;
	}
	/* The path may have been pointed elsewhere between the check and the open. */
	if (fstat(fd, &after) != 0 || !S_ISCHR(after.st_mode) || after.st_rdev != before.st_rdev) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: changed while being opened: not opened", path);
		close(fd);
		return NULL;
	}
	if (!isatty(fd) || tcgetattr(fd, &saved) != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s: not a serial port (it has no terminal settings)", path);
		close(fd);
		return NULL;
	}
	/* The lock before any change: a port someone else holds is left exactly as it is. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int saved_errno = errno;
		if (saved_errno == EWOULDBLOCK)
			set_busy_error(error, path, after.st_dev, after.st_ino);
		else
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: cannot lock: %s", path,
			            g_strerror(saved_errno));
		close(fd);
		return NULL;
	}
	if (ioctl(fd, TIOCEXCL) != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: cannot take exclusively (TIOCEXCL): %s", path,
		            g_strerror(errno));
		close(fd);
		return NULL;
	}
	port = g_new0(HealerSerialPort, 1);
	port->path = g_strdup(path);
	port->fd = fd;
	port->saved = saved;
	return port;
}

/*
 * The one table of line speeds: config.c accepts a rate only when it is here, and the port is set to
 * exactly that rate, never to another (every termios Bxxx constant from 1200 up).
 */
static const struct {
	guint baud;
	speed_t speed;
} baud_rates[] = {
        {1200, B1200},       {2400, B2400},       {4800, B4800},       {9600, B9600},       {19200, B19200},
        {38400, B38400},     {57600, B57600},     {115200, B115200},   {230400, B230400},   {460800, B460800},
        {500000, B500000},   {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
        {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000},
        {4000000, B4000000},
};

static gboolean
speed_for(guint baud, speed_t *speed)
{
	for (gsize i = 0; i < G_N_ELEMENTS(baud_rates); i++) {
		if (baud_rates[i].baud == baud) {
			*speed = baud_rates[i].speed;
			return TRUE;
		}
	}
	return FALSE;
}

gsize
healer_serial_baud_rate_count(void)
{
	return G_N_ELEMENTS(baud_rates);
}

guint
healer_serial_baud_rate(gsize i)
{
	g_return_val_if_fail(i < G_N_ELEMENTS(baud_rates), 0);
	return baud_rates[i].baud;
}

gboolean
healer_serial_baud_is_supported(guint baud)
{
	speed_t speed;

	return speed_for(baud, &speed);
}

char *
healer_serial_baud_rates_to_string(void)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (gsize i = 0; i < G_N_ELEMENTS(baud_rates); i++)
		g_string_append_printf(s, "%s%u", i > 0 ? ", " : "", baud_rates[i].baud);
	return g_string_free(g_steal_pointer(&s), FALSE);
}

gboolean
healer_serial_port_set_raw(HealerSerialPort *port, guint baud, GError **error)
{
	struct termios tio = port->saved;
	speed_t speed = B0;

	if (baud != 0 && !speed_for(baud, &speed)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "%s: %u is not a supported baud rate",
		            port->path, baud);
		return FALSE;
	}
	cfmakeraw(&tio);
	if (baud != 0)
		cfsetspeed(&tio, speed);
	tio.c_cflag |= CLOCAL | CREAD;
	/* TCSANOW: what the device already sent (its HELLO) stays readable. */
	if (tcsetattr(port->fd, TCSANOW, &tio) != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "%s: cannot configure: %s", port->path,
		            g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

int
healer_serial_port_get_fd(HealerSerialPort *port)
{
	return port->fd;
}

const char *
healer_serial_port_get_path(HealerSerialPort *port)
{
	return port->path;
}

void
healer_serial_port_close(HealerSerialPort *port)
{
	if (port == NULL)
		return;
	/*
	 * Failures are expected and harmless here: a port unplugged or hung up answers EIO.  TCSANOW, not
	 * TCSADRAIN: waiting for output a stuck line never sends would block.
	 */
	(void)tcsetattr(port->fd, TCSANOW, &port->saved);
	(void)ioctl(port->fd, TIOCNXCL);
	close(port->fd); /* and the flock with it */
	g_free(port->path);
	g_free(port);
}
