/*
 * The bootloader: commits a staged module, verifies every installed module
 * (range, platform, CRC-32, SHA-256, dependencies) and decides what may run.
 * It never hands control to a module it has not verified.
 */
#ifndef HEALER_FW_BOOTLOADER_H
#define HEALER_FW_BOOTLOADER_H

#include <stdint.h>

#include "module-check.h"

typedef struct {
	uint8_t mode;                           /* enum link_mode: NORMAL, SAFE or DFU */
	uint8_t safe_mode_reason;               /* enum link_safe_mode_reason */
	int32_t commit_result;                  /* 1 if nothing was committed this boot, else 0 or an update error */
	module_report_t reports[HAL_MAX_SLOTS]; /* one per board slot */
} boot_state_t;

void bootloader_boot(boot_state_t *state);

#endif
