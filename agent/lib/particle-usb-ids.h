/*
 * Who a USB device is from its vendor and product ids alone, for the devices healerd heals over
 * USB: Particle's (2b04:c0xx running Device OS, 2b04:d0xx in the DFU bootloader; the Core's
 * 1d50:607d / 607f) and an STM32 in its ROM bootloader (0483:df11).  And, for each Particle
 * platform, the module slots of its internal flash: where a DFU family reads each module's
 * header by UPLOAD to learn what the device holds when no Device OS runs to say it.
 *
 * Facts from @particle/device-constants 4.2.1 (the ids, the quirks), particle-usb 4.1.0 and
 * Device OS's ota_module_bounds.c (the slots); docs/usb.md has the tables.  Platform names and
 * generations are module-names.c's one table.  Like particle-usb, the ids are looked up in a
 * table, never computed: a product id that follows the pattern but is not listed is unknown.
 */
#pragma once

#include <glib.h>

#include "module-names.h"

G_BEGIN_DECLS

#define HEALER_USB_VENDOR_PARTICLE 0x2B04
#define HEALER_USB_VENDOR_SPARK    0x1D50 /* OpenMoko's, lent to the Spark Core */
#define HEALER_USB_VENDOR_ST       0x0483
#define HEALER_USB_PRODUCT_ST_DFU  0xDF11

typedef enum {
	/*
	 * Device OS runs (an application, safe mode or listening mode: the product id is the same;
	 * the control request GET_DEVICE_MODE tells listening apart, and safe mode shows only in
	 * the modules' validity): CDC ACM and Particle's control requests.
	 */
	HEALER_USB_MODE_NORMAL,
	HEALER_USB_MODE_DFU,     /* Particle's bootloader: DfuSe on interface 0 */
	HEALER_USB_MODE_ROM_DFU, /* the MCU's own ROM bootloader: DfuSe, nothing of Particle's */
} HealerUsbMode;

/* "normal", "dfu", "rom-dfu". */
const char *healer_usb_mode_to_string(HealerUsbMode mode);

typedef enum {
	/*
	 * A host-to-device control request without a data stage never completes: send one zero
	 * byte (particle-usb's controlOutTransfersRequireDataStage; RTL872x, Gen 4).
	 */
	HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA = 1 << 0,
} HealerUsbQuirks;

typedef struct {
	guint16 vendor_id;
	guint16 product_id;
	HealerUsbMode mode;
	/* The platform (module-names.h); NULL for a ROM bootloader, which cannot tell. */
	const HealerPlatform *platform;
	guint quirks; /* HealerUsbQuirks */
} HealerUsbIdentity;

/*
 * The identity of vendor:product, or FALSE when healerd knows no such device.  0483:df11 is
 * every STM32's ROM bootloader, a Photon's or any other board's: platform NULL.
 */
gboolean healer_usb_identify(guint16 vendor_id, guint16 product_id, HealerUsbIdentity *out);

/* The product id of a Particle platform in a mode (NORMAL or DFU); 0 if it has none. */
guint16 healer_usb_particle_product_id(guint16 platform_id, HealerUsbMode mode);

/* ---- module slots ------------------------------------------------------------------------------ */

typedef enum {
	/* The bootloader's DfuSe layout marks it read-only ('a'): Particle writes bootloaders by OTA. */
	HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU = 1 << 0,
	/* The image is written without its header (DROP_MODULE_INFO, the SoftDevice): nothing to read. */
	HEALER_PARTICLE_SLOT_NO_HEADER = 1 << 1,
	/* One of several slots with the same function and index: which one depends on the release. */
	HEALER_PARTICLE_SLOT_ALTERNATIVE = 1 << 2,
	/*
	 * The module's end is fixed at address + max_size and its start moves down as it grows
	 * (Gen 4 user part): its header is at a 4 KiB boundary in [address, address + max_size).
	 */
	HEALER_PARTICLE_SLOT_FIXED_END = 1 << 3,
	/* Encrypted (the Gen 4 prebootloader): Particle's tools never write it. */
	HEALER_PARTICLE_SLOT_ENCRYPTED = 1 << 4,
} HealerParticleSlotFlags;

typedef struct {
	guint8 function; /* MODULE_FUNCTION_* the slot holds */
	guint8 index;
	guint32 address;  /* where a module there starts (the lowest start for FIXED_END) */
	guint32 max_size; /* the most a module there may take */
	guint8 alt;       /* the DFU alternate setting holding it: 0, internal flash */
	guint flags;      /* HealerParticleSlotFlags */
} HealerParticleSlot;

/*
 * The module slots of a platform's internal flash, in address order, or NULL (n_slots 0) for a
 * platform without a table (the Core's monolithic firmware, unknown ids).  Static data.
 */
const HealerParticleSlot *healer_particle_slots(guint16 platform_id, gsize *n_slots);

/*
 * How many bytes to UPLOAD from a slot's start so that its module header is among them, wherever
 * the generation puts it: at 0, or after the vector table (Gen 2 at 0x184, Gen 3 at 0x200) or
 * the 32-byte Realtek image header (Gen 4 bootloaders at 0x20).  healer_module_parse_header()
 * (module-reader.h) finds and reads it.
 */
#define HEALER_PARTICLE_HEADER_READ_SIZE (MODULE_PREFIX_OFFSET_NRF52_VECTORS + MODULE_PREFIX_SIZE)

G_END_DECLS
