#include "usb-claim.h"

#include "healer-error.h"
#include "usb-match.h"

char *
healer_usb_interface_driver(libusb_device *device, guint8 interface_number)
{
	g_autofree char *physical_id = healer_usb_physical_id(device);
	struct libusb_config_descriptor *config = NULL;
	g_autofree char *link = NULL;
	g_autofree char *target = NULL;
	guint8 config_value;

	/* sysfs names an interface "BUS-PORT.PORT:CONFIG.INTERFACE": the physical id without "usb:". */
	if (libusb_get_active_config_descriptor(device, &config) != 0)
		return NULL;
	config_value = config->bConfigurationValue;
	libusb_free_config_descriptor(config);
	link = g_strdup_printf("/sys/bus/usb/devices/%s:%u.%u/driver", physical_id + 4, config_value, interface_number);
	target = g_file_read_link(link, NULL);
	return target != NULL ? g_path_get_basename(target) : NULL;
}

gboolean
healer_usb_claim_interface(libusb_device_handle *handle, const char *physical_id, guint8 interface_number,
                           GError **error)
{
	int r = libusb_kernel_driver_active(handle, interface_number);

	if (r == 1) {
		g_autofree char *driver = healer_usb_interface_driver(libusb_get_device(handle), interface_number);
		return healer_fail(error, HEALER_ERROR_BUSY,
		                   "%s: interface %u is held by the kernel driver %s: healerd does not take interfaces "
		                   "from kernel drivers (leave the device to it, or unbind it yourself)",
		                   physical_id, interface_number, driver != NULL ? driver : "(unnamed in sysfs)");
	}
	/*
	 * Unsure is no: claiming could take the interface from a driver libusb could not see.  A
	 * platform that cannot tell at all (NOT_SUPPORTED) refuses a claim on a bound interface itself.
	 */
	if (r < 0 && r != LIBUSB_ERROR_NOT_SUPPORTED)
		return healer_fail(
		        error, r == LIBUSB_ERROR_NO_DEVICE ? HEALER_ERROR_NOT_FOUND : HEALER_ERROR_FAILED,
		        "%s: cannot tell whether a kernel driver holds interface %u, so it is not claimed: %s",
		        physical_id, interface_number, libusb_strerror(r));
	r = libusb_claim_interface(handle, interface_number);
	if (r == LIBUSB_ERROR_BUSY)
		return healer_fail(error, HEALER_ERROR_BUSY,
		                   "%s: interface %u is in use (another program, or a kernel driver bound just now)",
		                   physical_id, interface_number);
	if (r < 0)
		return healer_fail(error, r == LIBUSB_ERROR_NO_DEVICE ? HEALER_ERROR_NOT_FOUND : HEALER_ERROR_FAILED,
		                   "%s: cannot claim interface %u: %s", physical_id, interface_number,
		                   libusb_strerror(r));
	return TRUE;
}

libusb_device_handle *
healer_usb_open(libusb_device *device, const char *physical_id, GError **error)
{
	libusb_device_handle *handle = NULL;
	int r = libusb_open(device, &handle);

	if (r < 0) {
		HealerError code = r == LIBUSB_ERROR_ACCESS      ? HEALER_ERROR_PERMISSION_DENIED
		                   : r == LIBUSB_ERROR_NO_DEVICE ? HEALER_ERROR_NOT_FOUND
		                                                 : HEALER_ERROR_FAILED;
		healer_fail(error, code, "%s: cannot open the device (bus %u, address %u): %s", physical_id,
		            libusb_get_bus_number(device), libusb_get_device_address(device), libusb_strerror(r));
		return NULL;
	}
	return handle;
}

libusb_device_handle *
healer_usb_open_claimed(libusb_device *device, const char *physical_id, guint8 interface_number, GError **error)
{
	libusb_device_handle *handle = healer_usb_open(device, physical_id, error);

	if (handle == NULL)
		return NULL;
	if (!healer_usb_claim_interface(handle, physical_id, interface_number, error)) {
		libusb_close(handle);
		return NULL;
	}
	return handle;
}
