/*
 * The line speed a tty is set to, in bits per second, as the kernel reads it
 * from the port's settings (TCGETS2's c_ospeed): an oracle independent of any
 * table of ours.  In a file of its own because <asm/termbits.h> clashes with
 * <termios.h>.
 */
#pragma once

#include <glib.h>

/* The output speed of the tty open on `fd`; 0 (and a test failure) when it cannot be read. */
guint serial_speed_of(int fd);
