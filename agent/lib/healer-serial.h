/*
 * Serial ports, opened the one safe way, by healerd (serial-transport.c)
 * and `healerctl probe` alike (docs/security.md, issue 13):
 *
 *  - Only a serial tty is opened: a character device of the kernel's tty
 *    class (a UART, USB CDC-ACM or USB serial adapter) or a pty slave, and
 *    not a virtual console, /dev/tty, /dev/console or /dev/ptmx.  That is
 *    decided from stat() and sysfs BEFORE open(), so a wide pattern (all of
 *    /dev) never opens a disk, a watchdog or a FIFO, not even read-only.
 *  - open() takes O_NONBLOCK | O_NOCTTY: it never waits for a modem's
 *    carrier and never makes the port the caller's controlling terminal.
 *  - The port is taken exclusively before its settings change: an advisory
 *    flock(LOCK_EX | LOCK_NB), which stops another healerd or healerctl even
 *    when it runs as root, and TIOCEXCL, which makes the kernel refuse any
 *    further open() by a process without CAP_SYS_ADMIN (screen, minicom, a
 *    getty).  A port in use is refused with HEALER_ERROR_BUSY, naming the
 *    holder when /proc/locks shows it: "PATH is in use by healerd (pid 1234)".
 *  - Closing puts back the settings found at open (termios), drops the
 *    exclusivity and closes: a port lent to healerd is handed back as it was.
 */
#pragma once

#include <glib.h>
#include <sys/stat.h>

G_BEGIN_DECLS

typedef struct _HealerSerialPort HealerSerialPort;

/*
 * Whether `path` (symlinks followed) is a serial tty, without opening it.
 * When not, HEALER_ERROR_NOT_FOUND (it does not exist) or
 * HEALER_ERROR_INVALID_ARGUMENT saying what it is instead:
 *   "PATH: not a serial port (a FIFO)"
 *   "PATH: not a serial port (character device 1:3, class mem)"
 *   "PATH: not a serial port (a virtual console)"
 * `st` (may be NULL) receives the stat of what the path names.
 */
gboolean healer_serial_port_check(const char *path, struct stat *st, GError **error);

/*
 * Checks `path` as above, opens it read-write, non-blocking, and takes it
 * exclusively; its settings are saved but not changed yet.  Errors:
 * those of healer_serial_port_check(), HEALER_ERROR_BUSY ("PATH is in use by
 * NAME (pid N)" or "PATH is in use by another program"),
 * HEALER_ERROR_PERMISSION_DENIED, HEALER_ERROR_IO.
 */
HealerSerialPort *healer_serial_port_open(const char *path, GError **error);

/*
 * The line speeds a port is set to exactly, in increasing order: the only
 * rates [serial] baud accepts (config.c), so no rate is silently replaced by
 * another.  healer_serial_baud_rate(i) for i < healer_serial_baud_rate_count().
 */
gsize healer_serial_baud_rate_count(void);
guint healer_serial_baud_rate(gsize i);
gboolean healer_serial_baud_is_supported(guint baud);
/* "1200, 2400, ..., 4000000", for messages. */
char *healer_serial_baud_rates_to_string(void);

/*
 * Raw 8N1 at `baud` (one of the rates above; 0: the port's speed as it is),
 * receiver on, modem lines ignored.  Another rate: HEALER_ERROR_INVALID_ARGUMENT.
 */
gboolean healer_serial_port_set_raw(HealerSerialPort *port, guint baud, GError **error);

int healer_serial_port_get_fd(HealerSerialPort *port);
const char *healer_serial_port_get_path(HealerSerialPort *port);

/* Puts the saved settings back (immediately; unsent output is dropped), lets go of the port, closes it, frees. */
void healer_serial_port_close(HealerSerialPort *port);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerSerialPort, healer_serial_port_close)

/*
 * Who holds an flock() on the file with this device and inode, from
 * /proc/locks: "NAME (pid N)", or NULL when it cannot be told (no lock,
 * /proc hidden).
 */
char *healer_serial_lock_holder(dev_t dev, ino_t ino);

G_END_DECLS
