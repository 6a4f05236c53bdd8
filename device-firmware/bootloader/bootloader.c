#include "bootloader.h"

#include <string.h>

#include "healer/link-protocol.h"
#include "records.h"

#define COPY_CHUNK 256

static int
copy_staging_to_slot(const hal_slot_t *slot, uint32_t length)
{
	const hal_board_t *board = hal_board();
	uint8_t buf[COPY_CHUNK];

	if (hal_flash_erase(slot->start, slot->size) != 0)
		return -1;
	for (uint32_t off = 0; off < length; off += COPY_CHUNK) {
		uint32_t n = length - off < COPY_CHUNK ? length - off : COPY_CHUNK;
		if (hal_flash_read(board->staging_start + off, buf, n) != 0 ||
		    hal_flash_program(slot->start + off, buf, n) != 0)
			return -1;
	}
	return 0;
}

/*
 * Installs the module the system staged before this reset.  Every step can
 * be cut by a power loss: the commit record stays pending until the slot
 * holds a verified copy, so the next boot simply does it again from the
 * intact staging area.  The check of the copy is the slot's check for this
 * boot: it fills reports[*checked_slot] (left at -1 when no slot was
 * checked), so the copy is not hashed a second time.
 */
static int32_t
commit_pending(module_report_t reports[HAL_MAX_SLOTS], int *checked_slot)
{
	const hal_board_t *board = hal_board();
	record_t commit;
	module_prefix_t p;
	const hal_slot_t *slot;
	uint8_t suffix_sha[32], whole[32];
	int32_t result = MODULE_UPDATE_ERROR_INTEGRITY;

	*checked_slot = -1;
	if (!records_read(RECORDS_COMMIT_OFFSET, &commit) || commit.magic != RECORDS_COMMIT_MAGIC ||
	    records_read_word(RECORDS_COMMIT_STATE_OFFSET) != RECORDS_STATE_PENDING)
		return 1;
	hal_debug("bootloader: committing the staged module");
	slot = module_slot_for(commit.function, commit.index);
	if (slot != NULL && module_read_prefix(board->staging_start, &p) &&
	    p.end_address - p.start_address + MODULE_CRC_SIZE == commit.size &&
	    module_check_integrity(board->staging_start, &p, commit.size, suffix_sha, whole) &&
	    memcmp(whole, commit.sha256, 32) == 0) {
		int i = (int)(slot - board->slots);

		result = MODULE_UPDATE_ERROR_GENERIC;
		if (copy_staging_to_slot(slot, commit.size) == 0) {
			module_check_slot(slot, &reports[i], whole);
			*checked_slot = i;
			if ((reports[i].passed & MODULE_VALIDATION_INTEGRITY) && memcmp(whole, commit.sha256, 32) == 0)
				result = 0;
		}
	}
	records_write_word(RECORDS_COMMIT_RESULT_OFFSET, (uint32_t)result);
	records_write_word(RECORDS_COMMIT_STATE_OFFSET, RECORDS_STATE_DONE);
	hal_debug(result == 0 ? "bootloader: module committed" : "bootloader: staged module failed verification");
	return result;
}

static bool
fully_valid(const module_report_t *r)
{
	return r->present && r->passed == r->checked;
}

void
bootloader_boot(boot_state_t *state)
{
	const hal_board_t *board = hal_board();
	const module_report_t *user = NULL;
	bool system_ok = true;
	int committed_slot;

	memset(state, 0, sizeof *state);
	state->commit_result = commit_pending(state->reports, &committed_slot);
	for (unsigned i = 0; i < board->n_slots; i++) {
		if ((int)i != committed_slot)
			module_check_slot(&board->slots[i], &state->reports[i], NULL);
	}
	module_check_dependencies(state->reports);

	for (unsigned i = 0; i < board->n_slots; i++) {
		uint8_t f = board->slots[i].function;
		if (f == MODULE_FUNCTION_SYSTEM_PART && !fully_valid(&state->reports[i]))
			system_ok = false;
		if (f == MODULE_FUNCTION_USER_PART)
			user = &state->reports[i];
	}

	if (!system_ok) {
		/* No system to run: only the bootloader's updater, which still speaks the link. */
		state->mode = LINK_MODE_DFU;
	} else if (hal_safe_mode_requested()) {
		state->mode = LINK_MODE_SAFE;
		state->safe_mode_reason = LINK_SAFE_MODE_REQUESTED;
	} else if (user == NULL || !user->present) {
		state->mode = LINK_MODE_SAFE;
		state->safe_mode_reason = LINK_SAFE_MODE_NO_APPLICATION;
	} else if ((user->passed | MODULE_VALIDATION_DEPENDENCIES) != user->checked) {
		state->mode = LINK_MODE_SAFE;
		state->safe_mode_reason = LINK_SAFE_MODE_APPLICATION_INVALID;
	} else if (!(user->passed & MODULE_VALIDATION_DEPENDENCIES)) {
		state->mode = LINK_MODE_SAFE;
		state->safe_mode_reason = LINK_SAFE_MODE_DEPENDENCIES;
	} else {
		state->mode = LINK_MODE_NORMAL;
	}
}
