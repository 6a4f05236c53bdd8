#include "module-check.h"

#include <string.h>

#include "crc32.h"
#include "sha256.h"

#define CHUNK 256

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool
module_read_prefix(uint32_t addr, module_prefix_t *prefix)
{
	uint8_t raw[MODULE_PREFIX_SIZE];

	if (hal_flash_read(addr, raw, sizeof raw) != 0)
		return false;
	prefix->start_address = le32(raw + MODULE_PREFIX_OFF_START_ADDRESS);
	prefix->end_address = le32(raw + MODULE_PREFIX_OFF_END_ADDRESS);
	prefix->reserved = raw[MODULE_PREFIX_OFF_RESERVED];
	prefix->flags = raw[MODULE_PREFIX_OFF_FLAGS];
	prefix->version = le16(raw + MODULE_PREFIX_OFF_VERSION);
	prefix->platform_id = le16(raw + MODULE_PREFIX_OFF_PLATFORM_ID);
	prefix->function = raw[MODULE_PREFIX_OFF_FUNCTION];
	prefix->index = raw[MODULE_PREFIX_OFF_INDEX];
	prefix->dependency.function = raw[MODULE_PREFIX_OFF_DEPENDENCY];
	prefix->dependency.index = raw[MODULE_PREFIX_OFF_DEPENDENCY + 1];
	prefix->dependency.version = le16(raw + MODULE_PREFIX_OFF_DEPENDENCY + 2);
	prefix->dependency2.function = raw[MODULE_PREFIX_OFF_DEPENDENCY2];
	prefix->dependency2.index = raw[MODULE_PREFIX_OFF_DEPENDENCY2 + 1];
	prefix->dependency2.version = le16(raw + MODULE_PREFIX_OFF_DEPENDENCY2 + 2);
	return prefix->function != MODULE_FUNCTION_NONE && prefix->function <= MODULE_FUNCTION_MAX &&
	       prefix->end_address > prefix->start_address;
}

bool
module_check_integrity(uint32_t addr, const module_prefix_t *prefix, uint32_t max_len, uint8_t suffix_sha[32],
                       uint8_t whole_sha256[32])
{
	uint32_t length = prefix->end_address - prefix->start_address + MODULE_CRC_SIZE;
	uint8_t buf[CHUNK];
	uint8_t tail[MODULE_SUFFIX_FROM_END_SHA256];
	uint8_t digest[32];
	fw_sha256_t sha, whole;
	uint32_t crc = 0;
	uint32_t sha_end, stored_crc;
	uint16_t suffix_size;

	if (length > max_len || length < MODULE_PREFIX_SIZE + MODULE_SUFFIX_BASE_SIZE + MODULE_CRC_SIZE)
		return false;
	/* The last 38 bytes: SHA-256, suffix size, CRC. */
	if (hal_flash_read(addr + length - sizeof tail, tail, sizeof tail) != 0)
		return false;
	memcpy(suffix_sha, tail, 32);
	suffix_size = le16(tail + 32);
	stored_crc = (uint32_t)tail[34] << 24 | (uint32_t)tail[35] << 16 | (uint32_t)tail[36] << 8 | tail[37];
	if (suffix_size < MODULE_SUFFIX_BASE_SIZE || suffix_size > length - MODULE_PREFIX_SIZE - MODULE_CRC_SIZE)
		return false;

	/*
	 * One pass of SHA-256, not two: the suffix's hash covers the image up to
	 * its own field and the whole image's hash is the same stream continued,
	 * so the state at sha_end is copied and the copy goes on over the last 38
	 * bytes.  Hashing is most of a boot's time (on silicon and in healer-sim).
	 */
	sha_end = length - MODULE_SUFFIX_FROM_END_SHA256;
	fw_sha256_init(&sha);
	for (uint32_t off = 0; off < length; off += CHUNK) {
		uint32_t n = length - off < CHUNK ? length - off : CHUNK;
		uint32_t in_sha = off >= sha_end ? 0 : off + n <= sha_end ? n : sha_end - off;
		if (hal_flash_read(addr + off, buf, n) != 0)
			return false;
		if (off < length - MODULE_CRC_SIZE)
			crc = fw_crc32_update(crc, buf,
			                      off + n <= length - MODULE_CRC_SIZE ? n : length - MODULE_CRC_SIZE - off);
		if (in_sha > 0) {
			fw_sha256_update(&sha, buf, in_sha);
			if (off + in_sha == sha_end)
				whole = sha;
		}
		if (whole_sha256 != NULL && in_sha < n)
			fw_sha256_update(&whole, buf + in_sha, n - in_sha);
	}
	fw_sha256_final(&sha, digest);
	if (whole_sha256 != NULL)
		fw_sha256_final(&whole, whole_sha256);
	/* DROP_MODULE_INFO images hash only their payload; this firmware does not take them. */
	if (prefix->flags & MODULE_FLAG_DROP_MODULE_INFO)
		return false;
	return crc == stored_crc && memcmp(digest, suffix_sha, 32) == 0;
}

const hal_slot_t *
module_slot_for(uint8_t function, uint8_t index)
{
	const hal_board_t *board = hal_board();

	for (unsigned i = 0; i < board->n_slots; i++) {
		if (board->slots[i].function == function && board->slots[i].index == index)
			return &board->slots[i];
	}
	return NULL;
}

void
module_check_slot(const hal_slot_t *slot, module_report_t *report, uint8_t whole_sha256[32])
{
	memset(report, 0, sizeof *report);
	if (!module_read_prefix(slot->start, &report->prefix))
		return;
	report->present = true;
	report->length = report->prefix.end_address - report->prefix.start_address + MODULE_CRC_SIZE;
	report->checked = MODULE_VALIDATION_INTEGRITY | MODULE_VALIDATION_DEPENDENCIES | MODULE_VALIDATION_RANGE |
	                  MODULE_VALIDATION_PLATFORM;
	if (report->prefix.platform_id == hal_board()->platform_id)
		report->passed |= MODULE_VALIDATION_PLATFORM;
	if (report->prefix.function == slot->function && report->prefix.index == slot->index &&
	    report->prefix.start_address == slot->start && report->length <= slot->size)
		report->passed |= MODULE_VALIDATION_RANGE;
	if ((report->passed & MODULE_VALIDATION_RANGE) &&
	    module_check_integrity(slot->start, &report->prefix, slot->size, report->sha256, whole_sha256))
		report->passed |= MODULE_VALIDATION_INTEGRITY;
}

bool
module_dependency_met(const module_report_t *reports, uint8_t function, uint8_t index, uint16_t version)
{
	const hal_board_t *board = hal_board();

	if (function == MODULE_FUNCTION_NONE)
		return true;
	for (unsigned i = 0; i < board->n_slots; i++) {
		if (board->slots[i].function == function && board->slots[i].index == index)
			return reports[i].present && reports[i].prefix.version >= version;
	}
	return false; /* no slot for it on this board */
}

void
module_check_dependencies(module_report_t reports[HAL_MAX_SLOTS])
{
	const hal_board_t *board = hal_board();

	for (unsigned i = 0; i < board->n_slots; i++) {
		const module_prefix_t *p = &reports[i].prefix;
		if (!reports[i].present)
			continue;
		if (module_dependency_met(reports, p->dependency.function, p->dependency.index,
		                          p->dependency.version) &&
		    module_dependency_met(reports, p->dependency2.function, p->dependency2.index,
		                          p->dependency2.version))
			reports[i].passed |= MODULE_VALIDATION_DEPENDENCIES;
	}
}
