#include "dfu-download-plan.h"

#include "dfu-protocol.h"
#include "healer-error.h"

/* UPLOAD block numbers 2..65535 in one run from one address pointer. */
#define UPLOAD_BLOCKS_PER_POINTER (G_MAXUINT16 - HEALER_DFUSE_FIRST_DATA_BLOCK + 1)

void
healer_dfu_plan_free(HealerDfuPlan *plan)
{
	if (plan == NULL)
		return;
	g_array_unref(plan->erase);
	g_free(plan);
}

static HealerDfuPlan *
plan_new(HealerDfuPlanKind kind, guint32 address, gsize size, guint16 transfer_size, GError **error)
{
	HealerDfuPlan *plan;

	if (size == 0) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "an image of 0 bytes: nothing to transfer");
		return NULL;
	}
	if (size > G_MAXUINT32) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		            "an image of %" G_GSIZE_FORMAT " bytes: past the 32-bit address space", size);
		return NULL;
	}
	if (transfer_size == 0) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "a transfer size of 0: no block could be sent");
		return NULL;
	}
	plan = g_new0(HealerDfuPlan, 1);
	plan->kind = kind;
	plan->address = address;
	plan->size = size;
	plan->transfer_size = transfer_size;
	plan->erase = g_array_new(FALSE, TRUE, sizeof(HealerDfuseSector));
	plan->n_blocks = (size + transfer_size - 1) / transfer_size;
	return plan;
}

HealerDfuPlan *
healer_dfuse_download_plan_new(const HealerDfuseLayout *layout, guint32 address, gsize size, guint16 transfer_size,
                               GError **error)
{
	g_autoptr(HealerDfuPlan) plan = plan_new(HEALER_DFU_PLAN_DFUSE_DOWNLOAD, address, size, transfer_size, error);
	GArray *erase;

	if (plan == NULL)
		return NULL;
	erase = healer_dfuse_layout_erase_list(layout, address, size, error);
	if (erase == NULL)
		return NULL;
	g_array_unref(plan->erase);
	plan->erase = erase;
	return g_steal_pointer(&plan);
}

HealerDfuPlan *
healer_dfuse_upload_plan_new(const HealerDfuseLayout *layout, guint32 address, gsize size, guint16 transfer_size,
                             GError **error)
{
	g_autoptr(HealerDfuPlan) plan = plan_new(HEALER_DFU_PLAN_DFUSE_UPLOAD, address, size, transfer_size, error);

	if (plan == NULL)
		return NULL;
	if (!healer_dfuse_layout_check_range(layout, address, size, HEALER_DFUSE_READABLE, error))
		return NULL;
	return g_steal_pointer(&plan);
}

HealerDfuPlan *
healer_dfu_download_plan_new(gsize size, guint16 transfer_size, GError **error)
{
	return plan_new(HEALER_DFU_PLAN_DFU_DOWNLOAD, 0, size, transfer_size, error);
}

void
healer_dfu_plan_get_block(const HealerDfuPlan *plan, gsize i, HealerDfuBlock *out)
{
	gsize offset = i * plan->transfer_size;

	g_return_if_fail(i < plan->n_blocks);
	out->offset = offset;
	out->address = plan->address + (guint32)offset;
	out->length = (guint32)MIN((gsize)plan->transfer_size, plan->size - offset);
	switch (plan->kind) {
	case HEALER_DFU_PLAN_DFU_DOWNLOAD:
		out->block = (guint16)(i & G_MAXUINT16);
		out->set_address = FALSE;
		break;
	case HEALER_DFU_PLAN_DFUSE_DOWNLOAD:
		out->block = HEALER_DFUSE_FIRST_DATA_BLOCK;
		out->set_address = TRUE;
		break;
	case HEALER_DFU_PLAN_DFUSE_UPLOAD:
		out->block = (guint16)(HEALER_DFUSE_FIRST_DATA_BLOCK + i % UPLOAD_BLOCKS_PER_POINTER);
		out->set_address = i % UPLOAD_BLOCKS_PER_POINTER == 0;
		break;
	}
}
