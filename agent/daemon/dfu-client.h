/*
 * A DFU 1.1 / DfuSe host on the main loop: each operation is a chain of
 * asynchronous libusb control transfers on interface `interface` of an open
 * device (callbacks run from the USB context's source, usb-context.h), and
 * every wait the device asks for (bwPollTimeout, the interval before a stalled
 * DfuSe command is sent again) is a GSource timer.  Nothing here sleeps or
 * makes a synchronous libusb call.
 *
 * Before each operation the device is brought to dfuIDLE: CLRSTATUS from
 * dfuERROR, ABORT from any other idle-like state.  A DfuSe command (block 0)
 * the device stalls is sent again, up to HEALER_DFU_STALL_RETRIES times, as
 * Particle's tools do.  An error names the operation, the address, and the
 * DFU state and status the device reported after it failed (a GETSTATUS is
 * asked for that); HEALER_ERROR_NOT_FOUND when the device is gone
 * (LIBUSB_ERROR_NO_DEVICE): the family then says it is detached.
 *
 * One operation at a time; `func` runs once, from the main loop.
 */
#pragma once

#include <glib.h>
#include <libusb.h>

#include "usb-context.h"

G_BEGIN_DECLS

/* A stalled DfuSe command is sent again this many times (particle-usb: 4, 1 s apart). */
#define HEALER_DFU_STALL_RETRIES 4
/*
 * The default interval before sending it again: what particle-usb waits.  Tests use a smaller one
 * (healer_dfu_client_set_stall_interval()), since the emulator's injected stall clears at once
 * and a second per retry would only slow the suite.
 */
#define HEALER_DFU_STALL_INTERVAL_MS 1000
/* One control transfer: generous, as an erase is answered by GETSTATUS, not by holding a transfer. */
#define HEALER_DFU_TRANSFER_TIMEOUT_MS 5000

typedef struct _HealerDfuClient HealerDfuClient;

/* `data`: what an UPLOAD or a string read gave (NULL otherwise or on error). */
typedef void (*HealerDfuClientFunc)(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data);

/*
 * A client for `handle` (taken: released and closed with the client), whose interface
 * `interface` is claimed.  The client keeps `device` and `context` referenced until the handle
 * is closed.  `transfer_size`: wTransferSize.
 *
 * Class requests go as DFU defines them, with no data stage where they carry nothing, on every
 * platform: the RTL872x quirk (particle-usb-ids.h) is known for Device OS's control requests only,
 * and particle-usb sends DFU requests to an RTL872x bootloader without one (docs/usb.md).
 */
HealerDfuClient *healer_dfu_client_new(HealerUsbContext *context, libusb_device *device, libusb_device_handle *handle,
                                       guint8 interface, guint16 transfer_size);
/*
 * Lets go: no callback follows.  A transfer in flight is cancelled and the handle closed once
 * libusb has handed it back (from the main loop); otherwise at once.
 */
void healer_dfu_client_close(HealerDfuClient *self);
gboolean healer_dfu_client_is_busy(HealerDfuClient *self);
void healer_dfu_client_set_stall_interval(HealerDfuClient *self, guint interval_ms);
/* Control transfers this client has completed (for the benchmarks' curious). */
guint64 healer_dfu_client_get_transfer_count(HealerDfuClient *self);

/* String descriptor `index` (US English) as UTF-8 text, non-ASCII characters as '?'. */
void healer_dfu_client_read_string_async(HealerDfuClient *self, guint8 index, HealerDfuClientFunc func,
                                         gpointer user_data);
/* dfuIDLE, from wherever the device is (dfuERROR: CLRSTATUS; dfuDNLOAD-IDLE and others: ABORT). */
void healer_dfu_client_reach_idle_async(HealerDfuClient *self, HealerDfuClientFunc func, gpointer user_data);
/* DfuSe ERASE of the sector at `address`, from dfuIDLE or dfuDNLOAD-IDLE (reach_idle first). */
void healer_dfu_client_erase_async(HealerDfuClient *self, guint32 address, HealerDfuClientFunc func,
                                   gpointer user_data);
/* DfuSe SET_ADDRESS_POINTER `address`, then DNLOAD block 2 (at most wTransferSize bytes). */
void healer_dfu_client_write_async(HealerDfuClient *self, guint32 address, GBytes *block, HealerDfuClientFunc func,
                                   gpointer user_data);
/* DfuSe read of `size` bytes from `address` by UPLOAD; back to dfuIDLE after. */
void healer_dfu_client_read_async(HealerDfuClient *self, guint32 address, gsize size, HealerDfuClientFunc func,
                                  gpointer user_data);
/*
 * `length` bytes at each of `blocks` (block numbers >= 2, in the order given: a block n is at
 * `address` + (n - 2) * wTransferSize), one UPLOAD each after a single SET_ADDRESS_POINTER: the
 * start of every wTransferSize step of a range for the price of one transfer each.
 */
void healer_dfu_client_read_blocks_async(HealerDfuClient *self, guint32 address, const guint16 *blocks, guint n_blocks,
                                         guint16 length, HealerDfuClientFunc func, gpointer user_data);
/*
 * DfuSe leave: SET_ADDRESS_POINTER `address` (the start of what was written, as dfu-util's
 * ":leave" does), a zero-length DNLOAD (block 2) and one GETSTATUS to start manifestation.  Done
 * when the device reports dfuMANIFEST (or dfuDNLOAD-IDLE: Gen 2 says that instead) or went away
 * while it did: it resets on its own from there.
 */
void healer_dfu_client_leave_async(HealerDfuClient *self, guint32 address, HealerDfuClientFunc func,
                                   gpointer user_data);

G_END_DECLS
