/*
 * The USB backend: every USB device libusb sees (usb-context.h: at start and
 * on hot plug, on the main loop), matched against the families' table
 * (usb-match.h: vendor id, product id under a mask, interface class); the
 * first row that matches makes the device (its constructor gets the libusb
 * device, the interface that matched and the physical id, "usb:1-1.4", which
 * is also the device's port) and the backend emits device-added.  When libusb
 * says the device left, or the family says it is gone ("detached"), it is
 * closed and device-removed follows; a device a family let go is not made
 * again until it is plugged in (or re-enumerates) again.
 *
 * A device no row matches is left alone (one debug record), as is one
 * [usb] ignore lists (one info record); a family that refuses a device (a
 * kernel driver holds the interface it needs: usb-claim.h) is named in one
 * warning record.  The port guard (port-guard.h) applies per physical id as
 * per serial port: too many device ids there within a minute ([serial]
 * device-ids-per-minute) and the port is left alone for 10 minutes; the
 * records a device causes are budgeted.
 */
#pragma once

#include "backend.h"
#include "config.h"
#include "usb-context.h"
#include "usb-match.h"

G_BEGIN_DECLS

#define HEALER_TYPE_USB_BACKEND (healer_usb_backend_get_type())
G_DECLARE_FINAL_TYPE(HealerUsbBackend, healer_usb_backend, HEALER, USB_BACKEND, HealerBackend)

/*
 * `config` is not owned: it must outlive the backend.  NULL and HEALER_ERROR_FAILED when libusb
 * cannot be initialised (healerd then serves serial ports only).  `flags`: usb-context.h's.
 */
HealerUsbBackend *healer_usb_backend_new(HealerConfig *config, HealerUsbContextFlags flags, GError **error);

/* Tries `match` (not copied: it must outlive the backend) before the built-in rows; before start: tests. */
void healer_usb_backend_add_match(HealerUsbBackend *self, const HealerUsbMatch *match);

/* Its libusb context (a family's devices use it; tests rescan it). */
HealerUsbContext *healer_usb_backend_get_context(HealerUsbBackend *self);

G_END_DECLS
