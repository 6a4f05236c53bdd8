/*
 * Checking modules in flash as the bootloader must before it runs anything:
 * header, range, platform, CRC-32 and SHA-256, and dependencies against
 * what is installed.  Reads flash through the HAL in small pieces; no heap.
 */
#ifndef HEALER_FW_MODULE_CHECK_H
#define HEALER_FW_MODULE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "hal.h"
#include "healer/module-format.h"

typedef struct {
	bool present; /* a plausible prefix is there */
	module_prefix_t prefix;
	uint32_t length;    /* end - start + 4 */
	uint8_t checked;    /* enum module_validation bits that were checked */
	uint8_t passed;     /* and those that passed */
	uint8_t sha256[32]; /* from the suffix */
	uint16_t suffix_size;
} module_report_t;

/* The prefix at addr, if it looks like one (function known, end > start). */
bool module_read_prefix(uint32_t addr, module_prefix_t *prefix);

/*
 * Integrity of the module image at addr whose prefix is `prefix`: length
 * within max_len, CRC-32, and SHA-256.  whole_sha256, if not NULL, gets the
 * SHA-256 of the whole image (what the link's BEGIN names).
 */
bool module_check_integrity(uint32_t addr, const module_prefix_t *prefix, uint32_t max_len, uint8_t suffix_sha[32],
                            uint8_t whole_sha256[32]);

/* The board slot for (function, index), or NULL. */
const hal_slot_t *module_slot_for(uint8_t function, uint8_t index);

/*
 * Checks the module installed in `slot`: every bit but dependencies.
 * whole_sha256, if not NULL, gets the SHA-256 of the whole image when its
 * integrity was checked (range passed).
 */
void module_check_slot(const hal_slot_t *slot, module_report_t *report, uint8_t whole_sha256[32]);

/*
 * Is dependency (function, index, version) met by the installed modules in
 * `reports` (one per board slot, in board order)?  Not transitive, as on
 * real devices: only the version of the module in that slot counts.
 */
bool module_dependency_met(const module_report_t *reports, uint8_t function, uint8_t index, uint16_t version);

/*
 * Sets MODULE_VALIDATION_DEPENDENCIES on every present module whose
 * dependencies are met, once every slot's report is filled
 * (module_check_slot()).
 */
void module_check_dependencies(module_report_t reports[HAL_MAX_SLOTS]);

#endif
