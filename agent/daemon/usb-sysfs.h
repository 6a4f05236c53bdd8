/*
 * One physical USB device, several ports: what sysfs says of the ttys a USB device's interfaces
 * give (a Particle device's CDC-ACM port, a USB serial adapter) and of the USB device a tty
 * belongs to.  The serial backend asks it before it opens a port (is the tty part of a USB device
 * another family holds?); a USB family asks it which ttys are its device's (the device JSON's
 * "ttys").
 *
 * The physical id is usb-match.h's: "usb:1-1.4", the kernel's name of the USB device in sysfs
 * (/sys/bus/usb/devices/1-1.4) with "usb:" before it.  The layout read (Linux's, stable ABI):
 *
 *   ROOT/class/tty/ttyACM0/device -> .../1-1.4/1-1.4:1.0              (CDC ACM: the interface)
 *   ROOT/class/tty/ttyUSB0/device -> .../1-1.4/1-1.4:1.0/ttyUSB0      (usb-serial: below it)
 *   ROOT/bus/usb/devices/1-1.4    -> .../1-1.4                        (idVendor, idProduct)
 *   .../1-1.4/1-1.4:1.0/tty/ttyACM0, .../1-1.4/1-1.4:1.0/ttyUSB0       (the ttys of each interface)
 *
 * `sysfs_root` is "/sys" in healerd, a directory of its own in tests (NULL: "/sys").  Nothing here
 * opens a device: it reads links and two small attribute files, so it may run on the main loop.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_SYSFS_ROOT "/sys"

typedef struct {
	char *physical_id; /* "usb:1-1.4" */
	guint16 vendor_id;
	guint16 product_id;
} HealerUsbTtyParent;

void healer_usb_tty_parent_clear(HealerUsbTtyParent *parent);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HealerUsbTtyParent, healer_usb_tty_parent_clear)

/*
 * The USB device tty `tty_name` ("ttyACM0") belongs to, walking up from its sysfs device to the
 * first directory that is a USB device (has idVendor).  FALSE when the tty is not on USB (a pty,
 * a UART) or sysfs does not know it: nothing is set then.
 */
gboolean healer_usb_sysfs_tty_parent(const char *sysfs_root, const char *tty_name, HealerUsbTtyParent *out);

/*
 * The ttys ("ttyACM0", sorted) of the interfaces of the USB device at `physical_id` ("usb:1-1.4");
 * an empty array when it has none or sysfs does not know it.
 */
GPtrArray *healer_usb_sysfs_ttys(const char *sysfs_root, const char *physical_id);

/* The tty name of a port path: the last component of where it resolves to ("/dev/serial/by-id/x" -> "ttyACM0"). */
char *healer_usb_sysfs_tty_name_for_port(const char *port);

G_END_DECLS
