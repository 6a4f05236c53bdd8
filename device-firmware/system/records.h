/*
 * The records sector: what must survive a power cut while a module travels
 * from the link to its slot.  Laid out so every change is a NOR-friendly
 * program (bits only cleared) and the sector is erased only when a new
 * transfer starts, when nothing is pending:
 *
 *   +0    staging descriptor: the module being received (size, SHA-256, slot)
 *   +64   progress: one byte per 1 KiB block of staging, 0x00 once written
 *   +512  commit record: the staged module to install at the next boot
 *   +576  commit state: 0xFFFFFFFF pending, 0 done
 *   +580  commit result: 0 installed, or an update error
 */
#ifndef HEALER_FW_RECORDS_H
#define HEALER_FW_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

#define RECORDS_BLOCK_SIZE           1024u
#define RECORDS_STAGING_OFFSET       0u
#define RECORDS_PROGRESS_OFFSET      64u
#define RECORDS_PROGRESS_MAX         448u /* blocks: staging areas up to 448 KiB */
#define RECORDS_COMMIT_OFFSET        512u
#define RECORDS_COMMIT_STATE_OFFSET  576u
#define RECORDS_COMMIT_RESULT_OFFSET 580u

#define RECORDS_STAGING_MAGIC 0x47545348u /* "HSTG" */
#define RECORDS_COMMIT_MAGIC  0x544D4348u /* "HCMT" */
#define RECORDS_STATE_PENDING 0xFFFFFFFFu
#define RECORDS_STATE_DONE    0x00000000u

/* Both records have this shape. */
typedef struct {
	uint32_t magic;
	uint32_t size;
	uint8_t sha256[32];
	uint8_t function;
	uint8_t index;
	uint16_t version;
	uint32_t crc; /* CRC-32 of the fields above */
} record_t;

/* Reads the record at offset; false if absent or damaged. */
bool records_read(uint32_t offset, record_t *record);
/* Fills in magic and crc, and programs it. */
int records_write(uint32_t offset, uint32_t magic, record_t *record);
uint32_t records_read_word(uint32_t offset);
int records_write_word(uint32_t offset, uint32_t value);
/* Erases the whole records sector (only when nothing is pending). */
int records_erase(void);

#endif
