/*
 * The link-protocol family: a device that speaks healerd's framed link
 * protocol (HELLO, DESCRIBE, the install operation) over a transport
 * (transport.h: a serial port today).  Everything about the protocol stays
 * in here; the engine sees a HealerDevice (device.h).  Waiting for a reply
 * or for the device to come back after a reset is a timer and a state,
 * never a sleep.
 */
#pragma once

#include "describe.h"
#include "device.h"
#include "link-codec.h"
#include "transport.h"

G_BEGIN_DECLS

#define HEALER_TYPE_LINK_DEVICE (healer_link_device_get_type())
G_DECLARE_FINAL_TYPE(HealerLinkDevice, healer_link_device, HEALER, LINK_DEVICE, HealerDevice)

typedef struct {
	guint response_timeout_ms; /* a reply to a request */
	guint reset_timeout_ms;    /* HELLO after a reset */
} HealerLinkTimeouts;

/*
 * Speaks the link protocol through `transport` (taken: closed with the
 * device).  It asks for HELLO after 1 s of silence, then DESCRIBE; the
 * device's signals (device.h) say what came.  `physical_id`: where it is
 * plugged (device.h); `transport_name`: what the faces show ("serial").
 */
HealerLinkDevice *healer_link_device_new(const char *port, const char *physical_id, const char *transport_name,
                                         HealerTransport *transport, const HealerLinkTimeouts *timeouts);

/*
 * For a command line: asks the device on `transport` (taken) who it is and
 * what it holds, at once, and runs the default main context until it has
 * answered both (HELLO and DESCRIBE) or `timeout_s` passed.  The device,
 * identified, or NULL: no answer in time (NOT_FOUND), or its describe was
 * unreadable (the parser's error), each prefixed with `port`.
 */
HealerLinkDevice *healer_link_device_probe(const char *port, HealerTransport *transport, guint timeout_s,
                                           GError **error);

/* NULL before the first HELLO / DESCRIBE reply. */
const HealerLinkHello *healer_link_device_get_hello(HealerLinkDevice *self);
const HealerDescribe *healer_link_device_get_describe(HealerLinkDevice *self);

G_END_DECLS
