/*
 * The serial backend: the configured ports (port-watcher.c), each opened
 * exclusively (serial-transport.c) and served by a link-protocol device
 * (link-device.h), under the port guard (port-guard.c: a port showing too
 * many device ids is let go for a while; a port's device may cause only so
 * many records).
 *
 * A tty that is part of a USB device another family holds (backend.h, "Peers"; usb-sysfs.h) is
 * never opened, nor the tty of a Particle device (vendor 2b04, whose family serves it over USB)
 * unless [serial] ports names it by its exact path: its application may read that port, and link
 * frames would reach it.  Either arrival order: a port served before a peer took its USB device is
 * let go when the peer adds it.  One record per port says why (again only when the reason changes).
 */
#pragma once

#include "backend.h"
#include "config.h"
#include "transport.h"

G_BEGIN_DECLS

#define HEALER_TYPE_SERIAL_BACKEND (healer_serial_backend_get_type())
G_DECLARE_FINAL_TYPE(HealerSerialBackend, healer_serial_backend, HEALER, SERIAL_BACKEND, HealerBackend)

/* `config` is not owned: it must outlive the backend. */
HealerSerialBackend *healer_serial_backend_new(HealerConfig *config);

/*
 * Serves the device on `port` through `transport` (taken), as the backend
 * does for every port it opens; tests and fuzzers attach their own transports
 * this way.  A port the guard ignores for now (too many device ids) is not
 * served: the transport is closed.  `port` must have no device yet (else the
 * transport is closed and a critical logged).
 */
void healer_serial_backend_attach_transport(HealerSerialBackend *self, const char *port, HealerTransport *transport);

/* Where sysfs is (usb-sysfs.h; NULL: /sys): tests give a directory of their own.  Before start. */
void healer_serial_backend_set_sysfs_root(HealerSerialBackend *self, const char *sysfs_root);

G_END_DECLS
