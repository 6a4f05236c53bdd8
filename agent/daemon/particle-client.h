/*
 * A host of Particle's USB control-request ("service request") protocol on the main loop: each
 * request is a chain of asynchronous libusb control transfers to the device (recipient device,
 * no interface claimed; callbacks run from the USB context's source, usb-context.h), and every
 * wait between CHECKs is a GSource timer (particle-poll.h says how long).  Nothing here sleeps or
 * makes a synchronous libusb call.
 *
 * A request: INIT (the type and the payload size; PENDING: CHECK until the device has a buffer),
 * SEND in chunks of at most HEALER_PARTICLE_MAX_CHUNK, CHECK until the handler is done (OK with
 * its RESULT), RECV of the reply in chunks of at most HEALER_PARTICLE_MAX_CHUNK.  At most
 * HEALER_PARTICLE_MAX_ACTIVE requests are in flight; the rest wait in order.  A device that
 * answers INIT with BUSY (another host's requests, or a lower limit than ours) lowers the limit
 * to the requests in flight, and the request waits for one of them (or, with none, polls INIT on
 * the back-off) until its own deadline; each request served without BUSY raises the limit one
 * again, up to HEALER_PARTICLE_MAX_ACTIVE (or the limit set).
 *
 * Failures (HEALER_ERROR domain) name the request, its id and the step:
 *   "GET_MODULE_INFO (id 3): CHECK answered NOT_FOUND: the device cancelled the request"
 *   HEALER_ERROR_NOT_FOUND  the device is gone (LIBUSB_ERROR_NO_DEVICE)
 *   HEALER_ERROR_IO         a transfer failed or took longer than HEALER_PARTICLE_TRANSFER_TIMEOUT_MS,
 *                           or the request its deadline
 *   HEALER_ERROR_INVALID_DATA  a reply that is not the protocol's
 *   HEALER_ERROR_FAILED     the device refused (ERROR, NOT_FOUND, NO_MEMORY)
 * A request that failed or ran out of time after the device gave it an id is cancelled on the
 * device with RESET(id) (its slot is free once that is answered).
 *
 * Every call and callback is on the thread running the default main context; each `func` runs
 * exactly once, from the main loop (never from inside the call that started it), unless the
 * client is closed first.
 */
#pragma once

#include <glib.h>
#include <libusb.h>

#include "usb-context.h"

G_BEGIN_DECLS

/* One control transfer: a device answers each at once, so this only catches a device that hangs. */
#define HEALER_PARTICLE_TRANSFER_TIMEOUT_MS 5000
/* A request's deadline when its caller has none of its own (timeout_ms 0). */
#define HEALER_PARTICLE_REQUEST_TIMEOUT_MS 60000

typedef struct _HealerParticleClient HealerParticleClient;

/*
 * `result`: the device's result (0, or a HealerParticleResult, particle-control.h) when `error` is
 * NULL; `reply`: the reply payload (may be empty), or for open the version string's bytes (or NULL).
 */
typedef void (*HealerParticleClientFunc)(HealerParticleClient *client, gint32 result, GBytes *reply,
                                         const GError *error, gpointer user_data);

/*
 * A client for the opened device `handle` (taken: closed with the client, once libusb has handed
 * back every transfer).  The client keeps `context` referenced until then.
 * `out_needs_data_stage`: the RTL872x quirk (particle-usb-ids.h): an OUT request without payload
 * carries one zero byte, as a device with it never completes one without a data stage.
 */
HealerParticleClient *healer_particle_client_new(HealerUsbContext *context, libusb_device_handle *handle,
                                                 gboolean out_needs_data_stage);
/* Lets go: every transfer is cancelled and no callback runs after this returns. */
void healer_particle_client_close(HealerParticleClient *self);

/*
 * Raw 0x50/30 (the Device OS version; an error there is ignored: pre-0.6 firmware has none), then
 * RESET(0), cancelling whatever another host left on the device.  `reply`: the version's bytes,
 * or NULL.  Requests asked for meanwhile wait for it.  An error only when RESET(0) fails.
 */
void healer_particle_client_open_async(HealerParticleClient *self, HealerParticleClientFunc func, gpointer user_data);
/* "2.2.0" once open has read it (printable ASCII only), or NULL. */
const char *healer_particle_client_get_system_version(HealerParticleClient *self);

/*
 * One request of `type` (HealerParticleRequestType) with `payload` (NULL: none; at most
 * HEALER_PARTICLE_MAX_PAYLOAD bytes), failing with HEALER_ERROR_IO after `timeout_ms` (0:
 * HEALER_PARTICLE_REQUEST_TIMEOUT_MS) counted from this call.
 */
void healer_particle_client_request_async(HealerParticleClient *self, guint16 type, GBytes *payload, guint timeout_ms,
                                          HealerParticleClientFunc func, gpointer user_data);

/*
 * Raw OUT 0x50 with `index` (HEALER_PARTICLE_RAW_RESET: an immediate hard reset).  Any transfer
 * error counts as done: a device that resets at once may never answer.  `result` 0.
 */
void healer_particle_client_raw_out_async(HealerParticleClient *self, guint16 index, HealerParticleClientFunc func,
                                          gpointer user_data);

/*
 * The string descriptor `index` (GET_DESCRIPTOR, US English) as ASCII (anything else '?'), in
 * `reply`: the serial number when sysfs has none.  A standard request: no open needed first.
 */
void healer_particle_client_read_string_async(HealerParticleClient *self, guint8 index, HealerParticleClientFunc func,
                                              gpointer user_data);

/*
 * Requests in flight at most (HEALER_PARTICLE_MAX_ACTIVE at first; a BUSY lowers it, requests
 * served without one raise it back to this).  Tests raise it above the device's limit to have it
 * answer BUSY.
 */
void healer_particle_client_set_max_active(HealerParticleClient *self, guint max_active);
guint healer_particle_client_get_max_active(HealerParticleClient *self);

/*
 * CHECK on a fixed schedule instead of the measured one (particle-poll.h): the n-th CHECK of a wait
 * `schedule_ms[n]` after the last (the last entry repeating).  For benchmarks that compare with
 * particle-usb's 50, 50, 100, 100, 250, 250, 500, 500, 1000 ms; NULL: measured again.  Copied.
 */
void healer_particle_client_set_poll_schedule(HealerParticleClient *self, const guint *schedule_ms, guint n);

typedef struct {
	guint64 transfers; /* control transfers completed (every kind) */
	guint64 polls;     /* of them, CHECKs */
	guint64 bytes_out; /* data-stage bytes sent */
	guint64 bytes_in;  /* data-stage bytes received */
} HealerParticleClientStats;

void healer_particle_client_get_stats(HealerParticleClient *self, HealerParticleClientStats *stats);

G_END_DECLS
