#include "usb-match.h"

#include <string.h>

#include "dfu-device.h"
#include "healer-error.h"
#include "particle-device.h"

/*
 * The built-in table, one row per family and kind of device, tried in order.  A family adds its
 * rows here.  The row ending the table has no family.
 *
 * DFU (dfu-device.h): Particle devices in their DFU bootloader (2b04:d0xx; the platform comes
 * from the product id, and an id healerd does not know is refused by the family, not guessed) and
 * an STM32's ROM bootloader (0483:df11), each by its DFU interface (class 0xfe, subclass 0x01,
 * protocol 0x02: DFU mode).
 *
 * Particle (particle-device.h): Particle devices running Device OS (2b04:c0xx; the platform from
 * the product id, refused by the family when healerd does not know it), by their control
 * interface (0xff/0xff/0xff, no endpoints: the requests go to the device, nothing is claimed).
 */
static const HealerUsbMatch builtin_matches[] = {
        {"dfu", 0x2b04, 0xd000, 0xf000, 0xfe, 0x01, 0x02, healer_dfu_device_new_usb},
        {"dfu", 0x0483, 0xdf11, 0xffff, 0xfe, 0x01, 0x02, healer_dfu_device_new_usb},
        {"particle", 0x2b04, 0xc000, 0xf000, 0xff, 0xff, 0xff, healer_particle_device_new_usb},
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

/* The USB serial numbers kept as ids: Particle's are 24 hex digits, ST's 12 to 24. */
#define MAX_ID_LENGTH 64

char *
healer_usb_id_from_serial(const char *serial)
{
	GString *id = g_string_new(NULL);

	for (const char *p = serial; *p != '\0' && id->len < MAX_ID_LENGTH; p++) {
		if (g_ascii_isalnum(*p) || *p == '-' || *p == '_')
			g_string_append_c(id, g_ascii_tolower(*p));
	}
	if (id->len == 0)
		return g_string_free(id, TRUE), NULL;
	return g_string_free(id, FALSE);
}

char *
healer_usb_read_serial(libusb_device *device)
{
	g_autofree char *physical_id = healer_usb_physical_id(device);
	g_autofree char *path = g_strdup_printf("/sys/bus/usb/devices/%s/serial", physical_id + 4);
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	return g_strchomp(text);
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
