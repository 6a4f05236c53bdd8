/*
 * How the link-protocol family (link-device.c) reaches its device: a byte
 * pipe that delivers decoded link frames and takes encoded ones.  Serial is
 * the one there is; a link device over a USB CDC or vendor pipe would be
 * another.  Devices that speak no link protocol (DFU, Particle control
 * requests) are families of their own (device.h), not transports.
 */
#pragma once

#include <glib.h>

#include "link-codec.h"

G_BEGIN_DECLS

typedef struct _HealerTransport HealerTransport;

typedef struct {
	/* A frame arrived (transfer none: valid during the call). */
	void (*frame)(HealerTransport *transport, const link_frame_t *frame, gpointer user_data);
	/* The transport is gone (unplugged, device process died); no more callbacks after this. */
	void (*closed)(HealerTransport *transport, const GError *error, gpointer user_data);
} HealerTransportCallbacks;

typedef struct {
	void (*send)(HealerTransport *transport, GBytes *frame);
	void (*close)(HealerTransport *transport);
	/* What to call it in logs and errors: the port's path ("/dev/ttyACM0"), or a test's name. */
	const char *(*label)(HealerTransport *transport);
} HealerTransportOps;

struct _HealerTransport {
	const HealerTransportOps *ops;
	HealerTransportCallbacks callbacks;
	gpointer user_data;
};

static inline void
healer_transport_send(HealerTransport *transport, GBytes *frame)
{
	transport->ops->send(transport, frame);
}

/* Closes and frees; no callback is made. */
static inline void
healer_transport_close(HealerTransport *transport)
{
	if (transport != NULL)
		transport->ops->close(transport);
}

static inline const char *
healer_transport_label(HealerTransport *transport)
{
	return transport->ops->label(transport);
}

/* A serial port (tty, USB CDC-ACM, pty), raw, at `baud`. */
HealerTransport *healer_serial_transport_open(const char *path, guint baud, const HealerTransportCallbacks *callbacks,
                                              gpointer user_data, GError **error);

G_END_DECLS
