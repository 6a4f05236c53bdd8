#include "usb-match.h"

#include <string.h>

#include "dfu-device.h"
#include "healer-error.h"

/*
 * The built-in table, one row per family and kind of device, tried in order.  A family adds its
 * rows here.  The row ending the table has no family.
 *
 * DFU (dfu-device.h): Particle devices in their DFU bootloader (2b04:d0xx; the platform comes
 * from the product id, and an id healerd does not know is refused by the family, not guessed) and
 * an STM32's ROM bootloader (0483:df11), each by its DFU interface (class 0xfe, subclass 0x01,
 * protocol 0x02: DFU mode).
 */
static const HealerUsbMatch builtin_matches[] = {
        {"dfu", 0x2b04, 0xd000, 0xf000, 0xfe, 0x01, 0x02, healer_dfu_device_new_usb},
        {"dfu", 0x0483, 0xdf11, 0xffff, 0xfe, 0x01, 0x02, healer_dfu_device_new_usb},
        {.family = NULL},
};

const HealerUsbMatch *
healer_usb_builtin_matches(guint *n_matches)
{
	guint n = 0;

	while (builtin_matches[n].family != NULL)
		n++;
	*n_matches = n;
	return builtin_matches;
}

static gboolean
field_matches(int wanted, guint8 value)
{
	return wanted == HEALER_USB_ANY || wanted == value;
}

gboolean
healer_usb_match_matches(const HealerUsbMatch *match, const struct libusb_device_descriptor *descriptor,
                         const struct libusb_interface_descriptor *interface)
{
	return descriptor->idVendor == match->vendor_id &&
	       (descriptor->idProduct & match->product_mask) == (match->product_id & match->product_mask) &&
	       field_matches(match->interface_class, interface->bInterfaceClass) &&
	       field_matches(match->interface_subclass, interface->bInterfaceSubClass) &&
	       field_matches(match->interface_protocol, interface->bInterfaceProtocol);
}

const HealerUsbMatch *
healer_usb_match_find(const HealerUsbMatch *const *matches, guint n, const struct libusb_device_descriptor *descriptor,
                      const struct libusb_config_descriptor *config,
                      const struct libusb_interface_descriptor **interface)
{
	*interface = NULL;
	if (config == NULL)
		return NULL;
	for (guint m = 0; m < n; m++) {
		for (guint i = 0; i < config->bNumInterfaces; i++) {
			const struct libusb_interface *iface = &config->interface[i];
			for (int a = 0; a < iface->num_altsetting; a++) {
				if (healer_usb_match_matches(matches[m], descriptor, &iface->altsetting[a])) {
					*interface = &iface->altsetting[a];
					return matches[m];
				}
			}
		}
	}
	return NULL;
}

char *
healer_usb_physical_id(libusb_device *device)
{
	/* One more than USB allows: a longer chain is reported by libusb as an overflow, not cut. */
	guint8 ports[HEALER_USB_MAX_PORTS + 1];
	int n = libusb_get_port_numbers(device, ports, sizeof ports);
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "usb:%u", libusb_get_bus_number(device));
	for (int i = 0; i < n; i++)
		g_string_append_printf(s, "%c%u", i == 0 ? '-' : '.', ports[i]);
	return g_string_free(s, FALSE);
}

gboolean
healer_usb_selector_matches(const HealerUsbSelector *selector, libusb_device *device,
                            const struct libusb_device_descriptor *descriptor)
{
	guint8 ports[HEALER_USB_MAX_PORTS + 1];
	int n;

	if (selector->kind == HEALER_USB_SELECTOR_IDS)
		return descriptor->idVendor == selector->vendor_id && descriptor->idProduct == selector->product_id;
	if (libusb_get_bus_number(device) != selector->bus)
		return FALSE;
	n = libusb_get_port_numbers(device, ports, sizeof ports);
	return n == (int)selector->n_ports && memcmp(ports, selector->ports, selector->n_ports) == 0;
}
