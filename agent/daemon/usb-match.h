/*
 * Which family serves a USB device, and where it is plugged.
 *
 * The match table: each row names a family and the devices it serves, by
 * vendor id, product id under a mask (0xd000/0xf000: every Particle device in
 * DFU mode) and the class, subclass and protocol of one of the interfaces of
 * its active configuration (any alternate setting).  The first row that
 * matches wins.  A family adds its rows to the built-in table (usb-match.c);
 * the backend (usb-backend.h) and `healerctl probe usb:...` read it, and tests
 * add rows of their own to a backend.
 *
 * The physical id is where the device is plugged: "usb:BUS-PORT.PORT...", as
 * the kernel names the device in sysfs (usb:1-1.4 is port 4 of the hub on
 * port 1 of bus 1).  It survives re-enumeration (a reset, a switch to DFU
 * mode: another device address, another product id) as long as the device
 * stays in the same socket.
 */
#pragma once

#include <glib.h>
#include <libusb.h>

#include "device.h"
#include "usb-selector.h"

G_BEGIN_DECLS

/* An interface class, subclass or protocol a row does not care about. */
#define HEALER_USB_ANY (-1)

typedef struct _HealerUsbMatch HealerUsbMatch;
typedef struct _HealerUsbContext HealerUsbContext;

/*
 * A device a row matched, handed to the row's family.  Everything is borrowed
 * for the call: a family that keeps the device takes its own references
 * (libusb_ref_device(), healer_usb_context_ref()) and copies what it needs of
 * the descriptors.
 */
typedef struct {
	HealerUsbContext *context; /* the context the device belongs to (its main-loop integration) */
	libusb_device *device;
	const struct libusb_device_descriptor *descriptor;
	const struct libusb_config_descriptor *config;       /* the active configuration: every interface and alt */
	const struct libusb_interface_descriptor *interface; /* the alternate setting that matched */
	const char *physical_id;                             /* "usb:1-1.4": the device's port and physical id */
	const HealerUsbMatch *match;
} HealerUsbCandidate;

/*
 * A family's constructor: a device to serve (its "port" and "physical-id" properties set to the
 * candidate's physical id, its "transport-name" "usb"), or NULL and an error saying why it cannot
 * be served (a kernel driver holds the interface it needs: healer_usb_open_claimed()).  Runs on the
 * main loop; it may open the device and submit asynchronous transfers, and must not block.
 */
typedef HealerDevice *(*HealerUsbDeviceNewFunc)(const HealerUsbCandidate *candidate, GError **error);

struct _HealerUsbMatch {
	const char *family; /* the family's name, as healer_device_get_family() gives it */
	guint16 vendor_id;
	guint16 product_id;
	guint16 product_mask;   /* the bits of the product id compared: 0xffff for one product */
	int interface_class;    /* or HEALER_USB_ANY */
	int interface_subclass; /* or HEALER_USB_ANY */
	int interface_protocol; /* or HEALER_USB_ANY */
	HealerUsbDeviceNewFunc new_device;
};

/* The families this build has, in the order they are tried; *n_matches rows. */
const HealerUsbMatch *healer_usb_builtin_matches(guint *n_matches);

/*
 * The first of `matches` (n rows) that matches the device (its `descriptor` and active `config`),
 * and in *interface the alternate setting that matched; NULL when none does.
 */
const HealerUsbMatch *healer_usb_match_find(const HealerUsbMatch *const *matches, guint n,
                                            const struct libusb_device_descriptor *descriptor,
                                            const struct libusb_config_descriptor *config,
                                            const struct libusb_interface_descriptor **interface);

/* Whether `match` matches a device with these ids and this interface. */
gboolean healer_usb_match_matches(const HealerUsbMatch *match, const struct libusb_device_descriptor *descriptor,
                                  const struct libusb_interface_descriptor *interface);

/* "usb:1-1.4" (a root hub, which has no port: "usb:1"). */
char *healer_usb_physical_id(libusb_device *device);

/*
 * A USB serial number as a device id: lower case, letters, digits, '-' and '_' only (it reaches
 * records and file names), at most 64 characters; NULL when nothing is left.  Every family
 * serving a device by its serial number makes its id with this, so a device keeps its id across
 * modes (a Particle device in Device OS and in its DFU bootloader).
 */
char *healer_usb_id_from_serial(const char *serial);

/*
 * The serial number the kernel read when the device was enumerated (sysfs: .../1-1.4/serial), with
 * no request to the device; NULL when the device has none or sysfs does not say.
 */
char *healer_usb_read_serial(libusb_device *device);

/* Whether the device is the one `selector` means. */
gboolean healer_usb_selector_matches(const HealerUsbSelector *selector, libusb_device *device,
                                     const struct libusb_device_descriptor *descriptor);

G_END_DECLS
