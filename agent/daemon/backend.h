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
};

const char *healer_backend_get_name(HealerBackend *self);
void healer_backend_start(HealerBackend *self);
void healer_backend_stop(HealerBackend *self);
gboolean healer_backend_allow_record(HealerBackend *self, HealerDevice *device, const char *device_id);

/* For backends. */
void healer_backend_emit_device_added(HealerBackend *self, HealerDevice *device);
void healer_backend_emit_device_removed(HealerBackend *self, HealerDevice *device, const char *why);

G_END_DECLS
