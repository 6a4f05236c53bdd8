/*
 * The DFU functional descriptor (DFU 1.1 §4.1.3, type 0x21): what a DFU interface can do and
 * how large a block it takes.  libusb hands it over among the class-specific descriptors that
 * follow the interface descriptor (libusb_interface_descriptor.extra); some devices put it
 * after the configuration instead (libusb_config_descriptor.extra), so a caller that finds
 * nothing in the one may look in the other.  HID uses the same type number, so only the
 * descriptors of a DFU interface (class 0xFE, subclass 0x01) may be given here.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_DFU_FUNCTIONAL_DESCRIPTOR_TYPE 0x21
/* bcdDFUVersion of ST's DfuSe (DFU 1.1a); a plain DFU 1.1 device says 0x0110. */
#define HEALER_DFU_VERSION_DFUSE 0x011A
/* A 7-byte descriptor predates bcdDFUVersion: DFU 1.0. */
#define HEALER_DFU_VERSION_1_0 0x0100

typedef enum {
	HEALER_DFU_ATTR_CAN_DOWNLOAD = 1 << 0,           /* bitCanDnload */
	HEALER_DFU_ATTR_CAN_UPLOAD = 1 << 1,             /* bitCanUpload */
	HEALER_DFU_ATTR_MANIFESTATION_TOLERANT = 1 << 2, /* still answers after manifestation */
	HEALER_DFU_ATTR_WILL_DETACH = 1 << 3,            /* detaches itself after DETACH */
} HealerDfuAttributes;
#define HEALER_DFU_ATTRS_KNOWN 0x0Fu

typedef struct {
	gsize offset;      /* where it starts in the buffer given */
	guint8 length;     /* bLength: 7 or 9 */
	guint8 attributes; /* bmAttributes as sent: reserved bits 4..7 are kept, not refused */
	guint16 detach_timeout_ms;
	guint16 transfer_size; /* wTransferSize: the most bytes one DNLOAD or UPLOAD carries; never 0 */
	guint16 dfu_version;   /* bcdDFUVersion; HEALER_DFU_VERSION_1_0 for a 7-byte descriptor */
} HealerDfuFunctional;

/*
 * Walks the descriptors in `data` (each bLength, bDescriptorType, ...) and parses the first DFU
 * functional descriptor.  Refused with HEALER_ERROR_INVALID_DATA, naming the offset: a
 * descriptor shorter than 2 bytes or running past the end (before the functional one is
 * reached), a functional descriptor whose bLength is not 7 or 9, a wTransferSize of 0.  None
 * there: HEALER_ERROR_NOT_FOUND, listing the types that were.  `out` is written only on success.
 */
gboolean healer_dfu_functional_find(const guint8 *data, gsize len, HealerDfuFunctional *out, GError **error);

gboolean healer_dfu_functional_is_dfuse(const HealerDfuFunctional *functional);

/* "can-download|can-upload|will-detach", "none", reserved bits as "0x10". */
char *healer_dfu_attributes_to_string(guint attributes);

G_END_DECLS
