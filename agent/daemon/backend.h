/*
 * A backend finds devices and makes them: the serial backend watches the
 * configured ports and serves a link-protocol device on each (serial-backend.h);
 * a USB backend will watch USB devices and pick a family for each.  The engine
 * takes its devices from every backend it was given and knows no more of them
 * than device.h says.
 *
 * Ownership: a backend holds every device it made until it says the device is
 * removed (or it stops); whoever handles "device-added" takes its own reference
 * if it keeps the device.
 *
 * Peers: the backends of one daemon know each other (the engine introduces each to the others,
 * healer_backend_add_peer()), because one physical device may show up in more than one of them: a
 * Particle device is a USB device (the USB backend's Particle family holds it) and a CDC-ACM tty
 * (which the serial backend would open).  A backend asks its peers whether a physical id is held
 * before it opens a port there (healer_backend_peer_family_at()), and hears of each device a peer
 * adds (peer_device_added), so the answer holds whichever arrives first.
 *
 * Signals (main loop):
 *   "device-added" (HealerDevice *)           a device to serve: it has not said who it is yet
 *   "device-removed" (HealerDevice *, why)    it is gone or let go, closed already; `why` is the
 *                                             record to write ("detached"), or NULL for none (the
 *                                             backend said why itself)
 */
#pragma once

#include <glib-object.h>

#include "device.h"

G_BEGIN_DECLS

#define HEALER_TYPE_BACKEND (healer_backend_get_type())
G_DECLARE_DERIVABLE_TYPE(HealerBackend, healer_backend, HEALER, BACKEND, GObject)

struct _HealerBackendClass {
	GObjectClass parent_class;

	/* Adds what is there now (device-added, before it returns) and watches for more. */
	void (*start)(HealerBackend *self);
	/* Closes every device it made, with no signal: the daemon stops. */
	void (*stop)(HealerBackend *self);
	/*
	 * Whether a record `device` caused (a line it logged) may be written now: a backend may limit
	 * how much one attachment point can write (as journald limits a service).  `device_id`: the id
	 * the engine knows it by, or NULL.  NULL function: always.
	 */
	gboolean (*allow_record)(HealerBackend *self, HealerDevice *device, const char *device_id);
	/*
	 * The family of the device this backend serves at `physical_id` (usb-match.h's "usb:1-1.4"), or
	 * NULL when it serves none there.  NULL function: never.
	 */
	const char *(*family_at)(HealerBackend *self, const char *physical_id);
	/* A peer added `device` (after the engine heard of it).  NULL function: not interested. */
	void (*peer_device_added)(HealerBackend *self, HealerBackend *peer, HealerDevice *device);
	/*
	 * The other ports of a device this backend serves, by name ("ttyACM0": a Particle device's
	 * CDC-ACM tty, which belongs to it), asked when a face shows the device: newly allocated,
	 * NULL-terminated.  NULL function: none.
	 */
	GStrv (*get_ttys)(HealerBackend *self, HealerDevice *device);
};

const char *healer_backend_get_name(HealerBackend *self);
void healer_backend_start(HealerBackend *self);
void healer_backend_stop(HealerBackend *self);
gboolean healer_backend_allow_record(HealerBackend *self, HealerDevice *device, const char *device_id);

/* What the class's get_ttys says: never NULL (an empty list without one). */
GStrv healer_backend_get_ttys(HealerBackend *self, HealerDevice *device);

/* What the class's family_at says; NULL without one. */
const char *healer_backend_family_at(HealerBackend *self, const char *physical_id);

/*
 * Makes `self` and `peer` peers of each other (the engine does, for each backend it is given): each
 * hears of the other's devices (peer_device_added) and may ask it family_at.  Not referenced: a
 * backend that goes leaves its peers.
 */
void healer_backend_add_peer(HealerBackend *self, HealerBackend *peer);

/*
 * The family of the device one of `self`'s peers serves at `physical_id` ("the USB backend's
 * particle family holds usb:1-1.4"), or NULL when none does.  The string is the peer's: use it now.
 */
const char *healer_backend_peer_family_at(HealerBackend *self, const char *physical_id);

/* For backends. */
void healer_backend_emit_device_added(HealerBackend *self, HealerDevice *device);
void healer_backend_emit_device_removed(HealerBackend *self, HealerDevice *device, const char *why);

G_END_DECLS
