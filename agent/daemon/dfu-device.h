/*
 * The DFU family: USB devices in DFU 1.1 / DfuSe mode (interface class
 * 0xfe/0x01/0x02), today Particle devices in their bootloader (2b04:d0xx, the
 * platform from the product id) and an STM32's ROM bootloader (0483:df11).
 * docs/usb.md, "DFU family", tells the whole story.
 *
 * At attach it reads the USB serial number (the id), the DfuSe memory layout
 * of each alternate setting and the module headers at the platform's slots
 * (by UPLOAD): a Particle device stuck in DFU is shown with its modules and
 * planned for like any other.  An install writes one module at the start
 * address its header gives (erase, blocks, verify by UPLOAD) and leaves the
 * device in DFU mode; reset() leaves DFU (manifestation), and the device comes
 * back as another USB device.  All through dfu-client.h: asynchronous, on the
 * main loop.
 */
#pragma once

#include "device.h"
#include "dfu-client.h"
#include "usb-match.h"

G_BEGIN_DECLS

#define HEALER_TYPE_DFU_DEVICE (healer_dfu_device_get_type())
G_DECLARE_FINAL_TYPE(HealerDfuDevice, healer_dfu_device, HEALER, DFU_DEVICE, HealerDevice)

/* The match table's constructor (usb-match.h): opens the device, claims its DFU interface, starts reading. */
HealerDevice *healer_dfu_device_new_usb(const HealerUsbCandidate *candidate, GError **error);

/* The device's client, for tests that make stalls cheap (healer_dfu_client_set_stall_interval()). */
HealerDfuClient *healer_dfu_device_get_client(HealerDfuDevice *self);
/* Whether it has read what it holds (at attach, and again after each install). */
gboolean healer_dfu_device_is_ready(HealerDfuDevice *self);
/* Why reading it failed, or NULL. */
const GError *healer_dfu_device_get_error(HealerDfuDevice *self);
/*
 * What `healerctl probe` and the faces show of it beyond the describe (its state JSON's "details"):
 * the USB ids, the mode ("dfu", "rom-dfu"), the platform's name ("" for a ROM bootloader) and number,
 * the serial number, wTransferSize, attributes and each alternate setting's layout (JSON object,
 * new reference).
 */
struct json_object *healer_dfu_device_to_json(HealerDfuDevice *self);

G_END_DECLS
