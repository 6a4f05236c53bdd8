/*
 * Receiving a module: into the staging area, durably, so a transfer
 * survives link cuts, host restarts and device resets and resumes where it
 * stopped; then verified whole and queued for the bootloader to commit at
 * the next reset.  One module per reset, as on real devices.
 */
#ifndef HEALER_FW_UPDATE_H
#define HEALER_FW_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healer/link-protocol.h"
#include "module-check.h"
#include "text.h"

/* Starts (or resumes) receiving; *held is how many bytes the device already has. */
int32_t update_begin(uint32_t size, const uint8_t sha256[32], uint8_t function, uint8_t index, uint16_t version,
                     uint32_t *held);
/*
 * Takes DATA at offset.  Returns 0 and *next_offset when the bytes were
 * taken or were out of order (then *next_offset is what is expected, for
 * the ACK), or a link error code.
 */
int32_t update_data(uint32_t offset, const uint8_t *data, size_t len, uint32_t *next_offset);
/*
 * Verifies the whole staged module against the installed modules in
 * `installed` and queues it for commit.  0, or an update error code
 * (-1330 integrity, -1340 dependency, -1350 address, -1360 platform,
 * -1370 format), or a link error code.  On an update error, `why` gets
 * the reason in words (which check refused, naming the modules and
 * versions), for the device's LOG.
 */
int32_t update_finish(const module_report_t installed[HAL_MAX_SLOTS], text_t *why);
void update_cancel(void);
bool update_active(void);

#endif
