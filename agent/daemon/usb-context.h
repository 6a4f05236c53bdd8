/*
 * A libusb context driven by the GLib main loop: no thread of ours, no polling.
 *
 * Events: one GSource polls every file descriptor libusb says it uses
 * (libusb_get_pollfds(), then its added/removed notifiers) and, on platforms
 * where libusb's timeouts are not file descriptors too
 * (libusb_pollfds_handle_timeouts() is 0), wakes at libusb_get_next_timeout()
 * while a transfer with a timeout is in flight and never otherwise.  When one
 * is ready it calls libusb_handle_events_timeout_completed() with a zero
 * timeout: libusb completes transfers and runs their callbacks then, on the
 * main loop.  On Linux libusb keeps its timeouts in a timerfd, so the source
 * has no timer at all: idle, it costs no wakeup.
 *
 * Arrivals and departures: libusb's hotplug callbacks (with
 * LIBUSB_HOTPLUG_ENUMERATE, so the devices already there arrive first), run
 * by libusb while the source handles its events; they only queue the device,
 * which is handed on once libusb has returned (libusb allows no synchronous
 * request from inside its callback).  libusb's Linux backend finds them with
 * a thread of its own that sleeps on the kernel's (or udev's) uevent socket
 * and wakes the source through its event fd: that thread is libusb's, made
 * at libusb_init(), and asleep while nothing is plugged.  Where libusb has no
 * hotplug (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) is 0: a libusb built
 * for another platform, or without udev and netlink), the fallback watches
 * /dev/bus/usb and its bus directories with GFileMonitor (inotify: a device
 * node created or removed) and lists libusb's devices again once the changes
 * settle, comparing with those it knew; docs/usb.md says why this and not a
 * udev monitor.
 *
 * Every call and callback is on the thread running the default main context.
 */
#pragma once

#include <glib.h>
#include <libusb.h>

G_BEGIN_DECLS

typedef struct _HealerUsbContext HealerUsbContext;

typedef enum {
	HEALER_USB_CONTEXT_FLAG_NONE = 0,
	/* Use the fallback (watch /dev/bus/usb) even where libusb has hotplug: for tests. */
	HEALER_USB_CONTEXT_FLAG_NO_HOTPLUG = 1 << 0,
} HealerUsbContextFlags;

/* A device arrived (`arrived` TRUE) or left; `device` is valid for the call (take a reference to keep it). */
typedef void (*HealerUsbDeviceFunc)(HealerUsbContext *context, libusb_device *device, gboolean arrived,
                                    gpointer user_data);

/*
 * A libusb context whose events the default main context handles from now on.  NULL and
 * HEALER_ERROR_FAILED naming libusb's error when libusb_init() fails (no usbfs, no sysfs, no memory).
 * libusb's own warnings and errors become INFO records, its debug output DEBUG records.
 */
HealerUsbContext *healer_usb_context_new(HealerUsbContextFlags flags, GError **error);
HealerUsbContext *healer_usb_context_ref(HealerUsbContext *self);
/* The last reference: unwatches, stops handling events, libusb_exit(). */
void healer_usb_context_unref(HealerUsbContext *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerUsbContext, healer_usb_context_unref)

libusb_context *healer_usb_context_get_libusb(HealerUsbContext *self);

/* Whether arrivals and departures come from libusb's hotplug (FALSE: the /dev/bus/usb fallback). */
gboolean healer_usb_context_has_hotplug(HealerUsbContext *self);
/* Whether libusb's timeouts are file descriptors too (FALSE: the source runs a timer while one is pending). */
gboolean healer_usb_context_timeouts_on_fds(HealerUsbContext *self);

/*
 * Calls `func` for every device there now (before it returns) and then, from the main loop, for
 * each arrival and departure, once per device: a device reported arrived is reported left before
 * it could arrive again.  One watcher at a time.  FALSE and an error when libusb refuses the hotplug
 * callback or the device list.
 */
gboolean healer_usb_context_watch(HealerUsbContext *self, HealerUsbDeviceFunc func, gpointer user_data, GError **error);
/* No more calls; the devices known are forgotten without a departure. */
void healer_usb_context_unwatch(HealerUsbContext *self);

/*
 * Lists libusb's devices now and reports what arrived and left since (the fallback's scan; with
 * hotplug it finds nothing new).  Tests call it directly.
 */
void healer_usb_context_rescan(HealerUsbContext *self);

G_END_DECLS
