/*
 * What a DFU download of one image is, before any USB transfer: the sectors to erase, then the
 * data blocks (address, offset in the image, length, wValue).  Also the blocks of a read-back by
 * UPLOAD, to verify.  The DFU family walks a plan; this file only does the arithmetic, so every
 * boundary case is a unit test.
 *
 * DfuSe download, as dfu-util 0.11 (dfuse_dnload_element) and Particle's particle-usb (doDownload)
 * do it: first every erase (one ERASE per sector the image touches, in address order), then for
 * each block of at most wTransferSize bytes SET_ADDRESS_POINTER to the block's address and
 * DNLOAD with wValue 2, so a block lands exactly where the address pointer says whatever the
 * device does with block numbers (2 means "at the pointer"; larger ones add (n - 2) *
 * wTransferSize).  A plan's blocks all carry set_address = TRUE and block = 2.
 *
 * DfuSe upload (verify), as dfu-util's dfuse_do_upload: SET_ADDRESS_POINTER once (then ABORT,
 * since UPLOAD is taken only in dfuIDLE or dfuUPLOAD-IDLE), then UPLOAD with wValue 2, 3, 4, ...
 * A block number never passes 65535: the plan sets the pointer again and starts over at 2.
 *
 * Plain DFU 1.1 download: no addresses, block numbers 0, 1, 2, ... wrapping from 65535 to 0
 * (DFU 1.1 §6.1.1).  Not in any plan: the zero-length DNLOAD that ends a download (DFU 1.1
 * manifestation, DfuSe "leave"), which is the family's choice.
 */
#pragma once

#include <glib.h>

#include "dfuse-layout.h"

G_BEGIN_DECLS

typedef enum {
	HEALER_DFU_PLAN_DFU_DOWNLOAD,   /* DFU 1.1 */
	HEALER_DFU_PLAN_DFUSE_DOWNLOAD, /* erase, then SET_ADDRESS_POINTER + block 2 for each block */
	HEALER_DFU_PLAN_DFUSE_UPLOAD,   /* SET_ADDRESS_POINTER once, blocks 2, 3, ... */
} HealerDfuPlanKind;

typedef struct {
	guint32 address;      /* where it lands or comes from (DFU 1.1: 0 + offset, the device decides) */
	gsize offset;         /* in the image */
	guint32 length;       /* 1 .. wTransferSize */
	guint16 block;        /* wValue of its DNLOAD or UPLOAD */
	gboolean set_address; /* DfuSe: SET_ADDRESS_POINTER(address) right before it */
} HealerDfuBlock;

typedef struct {
	HealerDfuPlanKind kind;
	guint32 address;
	gsize size;
	guint16 transfer_size;
	GArray *erase; /* HealerDfuseSector, in address order; empty unless a DfuSe download */
	gsize n_blocks;
} HealerDfuPlan;

void healer_dfu_plan_free(HealerDfuPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDfuPlan, healer_dfu_plan_free)

/*
 * A DfuSe download of `size` bytes to `address`: the range must be writable in `layout` (the
 * error names the segment that is not: healer_dfuse_layout_check_range()).  Refused too: a size
 * of 0 and a transfer size of 0 (HEALER_ERROR_INVALID_ARGUMENT).
 */
HealerDfuPlan *healer_dfuse_download_plan_new(const HealerDfuseLayout *layout, guint32 address, gsize size,
                                              guint16 transfer_size, GError **error);

/* A DfuSe read-back of `size` bytes from `address`, which must be readable in `layout`. */
HealerDfuPlan *healer_dfuse_upload_plan_new(const HealerDfuseLayout *layout, guint32 address, gsize size,
                                            guint16 transfer_size, GError **error);

/* A DFU 1.1 download of `size` bytes (at most 4 GiB - 1). */
HealerDfuPlan *healer_dfu_download_plan_new(gsize size, guint16 transfer_size, GError **error);

/* Block `i` (0 .. n_blocks - 1) of the plan. */
void healer_dfu_plan_get_block(const HealerDfuPlan *plan, gsize i, HealerDfuBlock *out);

G_END_DECLS
