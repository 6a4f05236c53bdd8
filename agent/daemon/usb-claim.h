/*
 * Taking an interface of a USB device, never from a kernel driver.
 *
 * A kernel driver bound to an interface (cdc_acm on a Particle device's
 * serial port, usbhid, a vendor's own) serves someone: healerd's serial
 * backend, a modem manager, a user.  healerd never takes an interface from
 * one: it asks libusb whether a driver holds it (libusb_kernel_driver_active(),
 * usbfs USBDEVFS_GETDRIVER) and refuses if one does or if it cannot tell,
 * naming the interface and the driver; it never calls
 * libusb_detach_kernel_driver() nor libusb_set_auto_detach_kernel_driver().
 * (The kernel refuses a claim on a bound interface too, EBUSY: a driver
 * bound between the check and the claim is refused the same way.)
 */
#pragma once

#include <glib.h>
#include <libusb.h>

G_BEGIN_DECLS

/*
 * The kernel driver bound to interface `interface_number` of the device, as sysfs names it
 * (/sys/bus/usb/devices/1-1.4:1.0/driver), or NULL when none is, or sysfs does not say.
 */
char *healer_usb_interface_driver(libusb_device *device, guint8 interface_number);

/*
 * Claims the interface, unless a kernel driver holds it: then HEALER_ERROR_BUSY, "usb:1-1.4:
 * interface 0 is held by the kernel driver cdc_acm: ...".  Also HEALER_ERROR_BUSY when another
 * program has claimed it, HEALER_ERROR_FAILED for libusb's other errors.
 */
gboolean healer_usb_claim_interface(libusb_device_handle *handle, const char *physical_id, guint8 interface_number,
                                    GError **error);

/*
 * Opens the device, claiming nothing (a family whose requests go to the device itself).  The
 * handle's usbfs node is polled by the context's source from now on; libusb_close() when done.
 * HEALER_ERROR_PERMISSION_DENIED when the node may not be opened (the udev rules grant healerd
 * the devices it serves), HEALER_ERROR_NOT_FOUND when the device went.
 */
libusb_device_handle *healer_usb_open(libusb_device *device, const char *physical_id, GError **error);

/*
 * Opens the device and claims the interface (above): a family's way in.  The handle's usbfs node
 * is polled by the context's source from now on; libusb_release_interface() and libusb_close()
 * when done.  HEALER_ERROR_PERMISSION_DENIED when the node may not be opened (the udev rules grant
 * healerd the devices it serves), HEALER_ERROR_NOT_FOUND when the device went.
 */
libusb_device_handle *healer_usb_open_claimed(libusb_device *device, const char *physical_id, guint8 interface_number,
                                              GError **error);

G_END_DECLS
