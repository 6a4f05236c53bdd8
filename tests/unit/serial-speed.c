#include "serial-speed.h"

#include <asm/termbits.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

guint
serial_speed_of(int fd)
{
	struct termios2 tio;

	memset(&tio, 0, sizeof(tio));
	if (ioctl(fd, TCGETS2, &tio) != 0) {
		g_test_message("TCGETS2: %s", g_strerror(errno));
		g_test_fail();
		return 0;
	}
	return tio.c_ospeed;
}
