/*
 * The serial backend: the configured ports (port-watcher.c), each opened
 * exclusively (serial-transport.c) and served by a link-protocol device
 * (link-device.h), under the port guard (port-guard.c: a port showing too
 * many device ids is let go for a while; a port's device may cause only so
 * many records).
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

G_END_DECLS
