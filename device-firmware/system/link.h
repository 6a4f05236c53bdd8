/* The device's end of the link protocol (docs/link-protocol.md). */
#ifndef HEALER_FW_LINK_H
#define HEALER_FW_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "bootloader.h"

/* Starts the link on a fresh boot and says HELLO. */
void link_start(boot_state_t *boot);
/* Reads what arrived and serves every complete frame. */
void link_poll(void);
void link_log(uint8_t level, const char *text);
/* The mode and LED the device shows; sends STATUS when they change. */
void link_set_mode(uint8_t mode, uint8_t safe_mode_reason);
uint8_t link_mode(void);
/* Milliseconds until the link needs attention without input (timeouts). */
uint32_t link_next_timeout(void);

#endif
