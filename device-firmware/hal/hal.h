/*
 * The hardware abstraction: everything board-specific the firmware touches.
 * The portable core (bootloader/, system/, apps/, common/) calls only these
 * functions and reads only hal_board(); hal/sim/ implements them on a host
 * (flash in a file, serial on a pty, reset by restarting from power-on RAM), and a board
 * port implements them on silicon.  No heap anywhere.
 */
#ifndef HEALER_HAL_H
#define HEALER_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HAL_MAX_SLOTS   6
#define HAL_MAX_SECTORS 16

/* Where a module of (function, index) lives. */
typedef struct {
	uint8_t function;
	uint8_t index;
	uint32_t start;
	uint32_t size; /* the most it may occupy, CRC included */
} hal_slot_t;

typedef struct {
	uint32_t start;
	uint32_t size;
} hal_sector_t;

typedef struct {
	uint16_t platform_id;
	uint32_t flash_start;
	uint32_t flash_size;
	hal_sector_t sectors[HAL_MAX_SECTORS]; /* erase units, in address order */
	unsigned n_sectors;
	hal_slot_t slots[HAL_MAX_SLOTS];
	unsigned n_slots;
	uint32_t info_start;    /* device identity, written once at manufacture */
	uint32_t records_start; /* staging descriptor, progress, commit record: one sector */
	uint32_t records_size;
	uint32_t staging_start; /* where modules are received before commit */
	uint32_t staging_size;
	uint16_t max_data; /* largest DATA payload the serial path takes per frame */
	uint8_t window;    /* DATA frames in flight the serial path can buffer */
} hal_board_t;

const hal_board_t *hal_board(void);

/* Flash: NOR semantics.  program() can only clear bits; erase() sets whole sectors to 0xFF. */
int hal_flash_read(uint32_t addr, void *buf, size_t len);
int hal_flash_program(uint32_t addr, const void *data, size_t len);
int hal_flash_erase(uint32_t addr, size_t len); /* addr and len on sector bounds */

/* Serial: read never blocks; write returns once the bytes are on their way. */
size_t hal_serial_read(uint8_t *buf, size_t max);
void hal_serial_write(const uint8_t *data, size_t len);
void hal_serial_flush(void); /* wait until everything written has left */

uint32_t hal_millis(void);
/* Sleep until serial input may be available or timeout_ms passed (WFI). */
void hal_wait_event(uint32_t timeout_ms);

/* Reset reason of this boot, and a safe-mode request carried across the reset. */
uint8_t hal_reset_reason(void);
bool hal_safe_mode_requested(void);
__attribute__((noreturn)) void hal_reset(uint8_t reason, bool request_safe_mode);
/* A fault the firmware cannot go on from (SOS, then reset). */
__attribute__((noreturn)) void hal_panic(const char *why);

void hal_led_set(uint8_t led); /* enum link_led */

/* Diagnostics for whoever watches the board (stderr in the simulator). */
void hal_debug(const char *text);

/*
 * Optional engines.  A board with a hash or CRC unit that gives the same
 * results as the software in common/ computes there and returns true; a
 * board without one returns false and the core computes in software.
 * Verifying modules is most of a boot's work, so an engine shortens every
 * reset of a heal.
 *
 * hal_sha256_blocks: SHA-256's compression of `count` 64-byte blocks into
 * `state` (FIPS 180-4's intermediate hash, H0..H7).
 * hal_crc32_update: CRC-32/IEEE as zlib's crc32(): *crc = crc32(*crc, data, len).
 */
bool hal_sha256_blocks(uint32_t state[8], const uint8_t *blocks, size_t count);
bool hal_crc32_update(uint32_t *crc, const void *data, size_t len);

#endif
