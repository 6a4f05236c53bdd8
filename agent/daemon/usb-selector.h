/*
 * Naming a USB device on a command line or in a configuration file: where it
 * is plugged, its physical id ("usb:1-1.4": bus 1, port 4 of the hub on port
 * 1), or what it is, its vendor and product id ("usb:2b04:d006").  A parser of
 * outside input with no libusb in it: config.c validates [usb] ignore with it
 * (and so the config fuzz target covers it); usb-match.h compares a selector
 * with a device.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most ports a physical id names (USB allows 7 tiers of hubs). */
#define HEALER_USB_MAX_PORTS 7

typedef enum {
	HEALER_USB_SELECTOR_PORT,
	HEALER_USB_SELECTOR_IDS,
} HealerUsbSelectorKind;

typedef struct {
	HealerUsbSelectorKind kind;
	guint8 bus;                         /* PORT */
	guint8 ports[HEALER_USB_MAX_PORTS]; /* PORT: from the root hub down */
	guint n_ports;                      /* PORT: 1..HEALER_USB_MAX_PORTS */
	guint16 vendor_id;                  /* IDS */
	guint16 product_id;                 /* IDS */
} HealerUsbSelector;

/* Whether `text` starts with "usb:" (a USB selector rather than a serial port). */
gboolean healer_usb_selector_is_usb(const char *text);
/* Parses `text`; FALSE and HEALER_ERROR_INVALID_ARGUMENT naming what is wrong with it. */
gboolean healer_usb_selector_parse(const char *text, HealerUsbSelector *selector, GError **error);

G_END_DECLS
