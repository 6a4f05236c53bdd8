#include "update.h"

#include <string.h>

#include "records.h"

static struct {
	bool active;
	record_t staging; /* what is being received */
	uint32_t next;    /* bytes received in order */
} rx;

static uint32_t
blocks_for(uint32_t size)
{
	return (size + RECORDS_BLOCK_SIZE - 1) / RECORDS_BLOCK_SIZE;
}

/* Bytes of this staging descriptor already in flash: the leading written blocks. */
static uint32_t
held_bytes(const record_t *staging)
{
	const hal_board_t *board = hal_board();
	uint8_t progress[64];
	uint32_t blocks = blocks_for(staging->size);
	uint32_t done = 0;

	for (uint32_t at = 0; at < blocks; at += sizeof progress) {
		uint32_t n = blocks - at < sizeof progress ? blocks - at : sizeof progress;
		if (hal_flash_read(board->records_start + RECORDS_PROGRESS_OFFSET + at, progress, n) != 0)
			return 0;
		for (uint32_t i = 0; i < n; i++) {
			if (progress[i] != 0x00)
				goto out;
			done++;
		}
	}
out:
	return done * RECORDS_BLOCK_SIZE < staging->size ? done * RECORDS_BLOCK_SIZE : staging->size;
}

int32_t
update_begin(uint32_t size, const uint8_t sha256[32], uint8_t function, uint8_t index, uint16_t version, uint32_t *held)
{
	const hal_board_t *board = hal_board();
	record_t existing, committed;

	*held = 0;
	if (size == 0 || size > board->staging_size || blocks_for(size) > RECORDS_PROGRESS_MAX)
		return LINK_ERROR_TOO_LARGE;
	if (module_slot_for(function, index) == NULL)
		return MODULE_UPDATE_ERROR_ADDRESS;

	/*
	 * The same module again (a cut link, a restarted host, a reset): resume,
	 * unless it was already committed once (its commit record is spent).
	 */
	if (records_read(RECORDS_STAGING_OFFSET, &existing) && existing.magic == RECORDS_STAGING_MAGIC &&
	    !records_read(RECORDS_COMMIT_OFFSET, &committed) && existing.size == size &&
	    existing.function == function && existing.index == index && existing.version == version &&
	    memcmp(existing.sha256, sha256, 32) == 0) {
		rx.staging = existing;
		rx.next = *held = held_bytes(&existing);
		rx.active = true;
		return 0;
	}

	/* A new module: nothing is pending (the bootloader commits before the system runs). */
	if (records_erase() != 0 || hal_flash_erase(board->staging_start, board->staging_size) != 0)
		return MODULE_UPDATE_ERROR_GENERIC;
	memset(&rx.staging, 0, sizeof rx.staging);
	rx.staging.size = size;
	memcpy(rx.staging.sha256, sha256, 32);
	rx.staging.function = function;
	rx.staging.index = index;
	rx.staging.version = version;
	if (records_write(RECORDS_STAGING_OFFSET, RECORDS_STAGING_MAGIC, &rx.staging) != 0)
		return MODULE_UPDATE_ERROR_GENERIC;
	rx.next = 0;
	rx.active = true;
	return 0;
}

int32_t
update_data(uint32_t offset, const uint8_t *data, size_t len, uint32_t *next_offset)
{
	const hal_board_t *board = hal_board();
	uint32_t before, after;
	static const uint8_t written = 0x00;

	if (!rx.active)
		return LINK_ERROR_NO_TRANSFER;
	if (offset != rx.next || len == 0) {
		/* Go-back-N: drop it and tell the host where to resume. */
		*next_offset = rx.next;
		return 0;
	}
	if (len > rx.staging.size - offset)
		return LINK_ERROR_BAD_REQUEST;
	if (hal_flash_program(board->staging_start + offset, data, len) != 0)
		return MODULE_UPDATE_ERROR_GENERIC;
	/* Data first, then the progress byte of every block it completed. */
	before = offset / RECORDS_BLOCK_SIZE;
	rx.next = offset + (uint32_t)len;
	after = rx.next == rx.staging.size ? blocks_for(rx.staging.size) : rx.next / RECORDS_BLOCK_SIZE;
	for (uint32_t block = before; block < after; block++) {
		if (hal_flash_program(board->records_start + RECORDS_PROGRESS_OFFSET + block, &written, 1) != 0)
			return MODULE_UPDATE_ERROR_GENERIC;
	}
	*next_offset = rx.next;
	return 0;
}

/* "system part 2", "bootloader 0": how the device names a module in its refusals. */
static void
text_module(text_t *t, uint8_t function, uint8_t index)
{
	switch (function) {
	case MODULE_FUNCTION_BOOTLOADER:
		text_str(t, "bootloader ");
		break;
	case MODULE_FUNCTION_SYSTEM_PART:
		text_str(t, "system part ");
		break;
	case MODULE_FUNCTION_USER_PART:
		text_str(t, "user part ");
		break;
	default:
		text_str(t, "module function ");
		text_uint(t, function);
		text_str(t, " index ");
		break;
	}
	text_uint(t, index);
}

/* "its first dependency, system part 2 >= 2002, is not installed (it has v1000)" */
static void
text_unmet(text_t *t, const module_report_t installed[HAL_MAX_SLOTS], const char *which, const module_dependency_t *dep)
{
	const hal_board_t *board = hal_board();

	text_str(t, "its ");
	text_str(t, which);
	text_str(t, " dependency, ");
	text_module(t, dep->function, dep->index);
	text_str(t, " >= ");
	text_uint(t, dep->version);
	text_str(t, ", is not installed");
	for (unsigned i = 0; i < board->n_slots; i++) {
		if (board->slots[i].function == dep->function && board->slots[i].index == dep->index &&
		    installed[i].present) {
			text_str(t, " (it has v");
			text_uint(t, installed[i].prefix.version);
			text_str(t, ")");
		}
	}
}

/*
 * Would installing `p` break a module already installed that depends on its
 * slot?  If so, says which in `why`.
 */
static bool
breaks_dependents(const module_report_t installed[HAL_MAX_SLOTS], const module_prefix_t *p, text_t *why)
{
	const hal_board_t *board = hal_board();

	for (unsigned i = 0; i < board->n_slots; i++) {
		const module_prefix_t *other = &installed[i].prefix;
		const module_dependency_t *deps[2] = {&other->dependency, &other->dependency2};
		if (!installed[i].present || other->function == MODULE_FUNCTION_USER_PART ||
		    (other->function == p->function && other->index == p->index))
			continue;
		for (int d = 0; d < 2; d++) {
			if (deps[d]->function == p->function && deps[d]->index == p->index &&
			    deps[d]->version > p->version) {
				text_str(why, "v");
				text_uint(why, p->version);
				text_str(why, " would break the installed ");
				text_module(why, other->function, other->index);
				text_str(why, " v");
				text_uint(why, other->version);
				text_str(why, ", which needs ");
				text_module(why, p->function, p->index);
				text_str(why, " >= ");
				text_uint(why, deps[d]->version);
				return true;
			}
		}
	}
	return false;
}

int32_t
update_finish(const module_report_t installed[HAL_MAX_SLOTS], text_t *why)
{
	const hal_board_t *board = hal_board();
	const hal_slot_t *slot;
	module_prefix_t p;
	uint8_t suffix_sha[32], whole[32];
	uint32_t length;
	record_t commit;

	if (!rx.active)
		return LINK_ERROR_NO_TRANSFER;
	if (rx.next != rx.staging.size)
		return LINK_ERROR_INCOMPLETE;
	rx.active = false;

	if (!module_read_prefix(board->staging_start, &p)) {
		text_str(why, "not a module (no prefix)");
		return MODULE_UPDATE_ERROR_FORMAT;
	}
	length = p.end_address - p.start_address + MODULE_CRC_SIZE;
	if (length != rx.staging.size ||
	    !module_check_integrity(board->staging_start, &p, rx.staging.size, suffix_sha, whole) ||
	    memcmp(whole, rx.staging.sha256, 32) != 0) {
		text_str(why, "length, CRC-32 or SHA-256 wrong, or not the SHA-256 BEGIN named");
		return MODULE_UPDATE_ERROR_INTEGRITY;
	}
	if (p.function != rx.staging.function || p.index != rx.staging.index || p.version != rx.staging.version) {
		text_str(why, "its prefix names another module than BEGIN did");
		return MODULE_UPDATE_ERROR_FORMAT;
	}
	if ((p.flags & ~MODULE_FLAG_PREFIX_EXTENSIONS) != 0) {
		text_str(why, "flags this firmware does not take");
		return MODULE_UPDATE_ERROR_FORMAT;
	}
	if (p.platform_id != board->platform_id) {
		text_str(why, "built for platform ");
		text_uint(why, p.platform_id);
		text_str(why, ", this board is ");
		text_uint(why, board->platform_id);
		return MODULE_UPDATE_ERROR_PLATFORM;
	}
	slot = module_slot_for(p.function, p.index);
	if (slot == NULL || p.start_address != slot->start || length > slot->size) {
		text_str(why, slot == NULL                     ? "no slot for it on this board"
		              : p.start_address != slot->start ? "not linked at its slot's start address"
		                                               : "larger than its slot");
		return MODULE_UPDATE_ERROR_ADDRESS;
	}
	/*
	 * A system module whose own dependencies are not installed, or that
	 * would leave an installed sibling unsatisfied, is refused.  An
	 * application is taken even with unmet dependencies: the device then
	 * boots into safe mode, which is how devices come to need healing.
	 * Three checks, each with its own text: the tests trip each alone.
	 */
	if (p.function != MODULE_FUNCTION_USER_PART) {
		if (!module_dependency_met(installed, p.dependency.function, p.dependency.index,
		                           p.dependency.version)) {
			text_unmet(why, installed, "first", &p.dependency);
			return MODULE_UPDATE_ERROR_DEPENDENCY;
		}
		if (!module_dependency_met(installed, p.dependency2.function, p.dependency2.index,
		                           p.dependency2.version)) {
			text_unmet(why, installed, "second", &p.dependency2);
			return MODULE_UPDATE_ERROR_DEPENDENCY;
		}
		if (breaks_dependents(installed, &p, why))
			return MODULE_UPDATE_ERROR_DEPENDENCY;
	}

	commit = rx.staging;
	if (records_write(RECORDS_COMMIT_OFFSET, RECORDS_COMMIT_MAGIC, &commit) != 0) {
		text_str(why, "writing the commit record failed");
		return MODULE_UPDATE_ERROR_GENERIC;
	}
	return 0;
}

void
update_cancel(void)
{
	rx.active = false;
}

bool
update_active(void)
{
	return rx.active;
}
