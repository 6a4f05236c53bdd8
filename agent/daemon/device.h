/*
 * One attached device, as the engine sees it: its link (through a
 * transport), what it said in HELLO and DESCRIBE, and the one operation
 * that can be in flight on it (installing a module).  Waiting for a reply
 * or for the device to come back after a reset is a timer and a state,
 * never a sleep.
 */
#pragma once

#include <glib.h>

#include "describe.h"
#include "link-codec.h"
#include "transport.h"

G_BEGIN_DECLS

typedef struct _HealerDevice HealerDevice;

typedef enum {
	HEALER_DEVICE_EVENT_IDENTIFIED, /* HELLO and a DESCRIBE arrived (at attach and after every boot) */
	/*
	 * HELLO brought an id other than the one before (the first HELLO too): another device answers on
	 * this port.  Its describe is dropped (IDENTIFIED follows the new one) and an install in flight has
	 * failed.  The handler may disconnect the device.
	 */
	HEALER_DEVICE_EVENT_NEW_ID,
	HEALER_DEVICE_EVENT_STATUS,   /* mode or LED changed */
	HEALER_DEVICE_EVENT_LOG,      /* the device logged a line: healer_device_get_last_log() */
	HEALER_DEVICE_EVENT_PROGRESS, /* bytes of the module in flight were acknowledged */
	HEALER_DEVICE_EVENT_DETACHED, /* the transport closed; the device object is dead */
} HealerDeviceEvent;

typedef void (*HealerDeviceEventFunc)(HealerDevice *device, HealerDeviceEvent event, gpointer user_data);
/* error NULL: the module is installed and the device has come back and described itself. */
typedef void (*HealerDeviceInstallFunc)(HealerDevice *device, const GError *error, gpointer user_data);

typedef struct {
	guint response_timeout_ms; /* a reply to a request */
	guint reset_timeout_ms;    /* HELLO after a reset */
} HealerDeviceTimeouts;

HealerDevice *healer_device_new(const char *port, HealerTransport *transport, const HealerDeviceTimeouts *timeouts,
                                HealerDeviceEventFunc func, gpointer user_data);
void healer_device_free(HealerDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDevice, healer_device_free)

const char *healer_device_get_port(HealerDevice *device);
/* The device id (24 hex digits) once HELLO arrived, else NULL. */
const char *healer_device_get_id(HealerDevice *device);
/* Closes the line now (no event follows); the device is freed later as usual. */
void healer_device_disconnect(HealerDevice *device);
/* NULL before the first HELLO. */
const HealerLinkHello *healer_device_get_hello(HealerDevice *device);
/* NULL before the first DESCRIBE reply. */
const HealerDescribe *healer_device_get_describe(HealerDevice *device);
/* The describe as the device sent it, written again compactly by json-c (no control character). */
const char *healer_device_get_describe_json(HealerDevice *device);
/* The last LOG or ERROR text, escaped (healer_text_escape()): safe to log and to show. */
const char *healer_device_get_last_log(HealerDevice *device);
guint8 healer_device_get_mode(HealerDevice *device);
guint8 healer_device_get_led(HealerDevice *device);
void healer_device_get_progress(HealerDevice *device, guint32 *done, guint32 *total);
gboolean healer_device_is_busy(HealerDevice *device);

/*
 * Sends `module` (resuming from what the device already holds), asks it to
 * install it, waits for its reset and HELLO, and describes it again.
 * `sha256` (HEALER_SHA256_SIZE bytes): the module's SHA-256 when the caller
 * knows it (a store module is named by it), else NULL and it is computed.
 */
void healer_device_install_async(HealerDevice *device, GBytes *module, const guint8 *sha256, guint8 function,
                                 guint8 index, guint16 version, HealerDeviceInstallFunc func, gpointer user_data);
/* Asks the device to reset; it says HELLO when it is back. */
void healer_device_reset(HealerDevice *device);
/* Asks for HELLO and DESCRIBE again (e.g. after the store changed). */
void healer_device_refresh(HealerDevice *device);

G_END_DECLS
