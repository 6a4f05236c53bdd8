#include "records.h"

#include <string.h>

#include "crc32.h"
#include "hal.h"

#define RECORD_SIZE 44u /* bytes covered by the CRC */

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
serialize(const record_t *r, uint8_t out[RECORD_SIZE + 4])
{
	put32(out, r->magic);
	put32(out + 4, r->size);
	memcpy(out + 8, r->sha256, 32);
	out[40] = r->function;
	out[41] = r->index;
	out[42] = (uint8_t)r->version;
	out[43] = (uint8_t)(r->version >> 8);
	put32(out + 44, r->crc);
}

bool
records_read(uint32_t offset, record_t *r)
{
	uint8_t raw[RECORD_SIZE + 4];

	if (hal_flash_read(hal_board()->records_start + offset, raw, sizeof raw) != 0)
		return false;
	r->magic = get32(raw);
	r->size = get32(raw + 4);
	memcpy(r->sha256, raw + 8, 32);
	r->function = raw[40];
	r->index = raw[41];
	r->version = (uint16_t)(raw[42] | raw[43] << 8);
	r->crc = get32(raw + 44);
	return (r->magic == RECORDS_STAGING_MAGIC || r->magic == RECORDS_COMMIT_MAGIC) &&
	       r->crc == fw_crc32_update(0, raw, RECORD_SIZE);
}

int
records_write(uint32_t offset, uint32_t magic, record_t *r)
{
	uint8_t raw[RECORD_SIZE + 4];

	r->magic = magic;
	r->crc = 0;
	serialize(r, raw);
	r->crc = fw_crc32_update(0, raw, RECORD_SIZE);
	put32(raw + RECORD_SIZE, r->crc);
	return hal_flash_program(hal_board()->records_start + offset, raw, sizeof raw);
}

uint32_t
records_read_word(uint32_t offset)
{
	uint8_t raw[4];

	if (hal_flash_read(hal_board()->records_start + offset, raw, sizeof raw) != 0)
		return 0;
	return get32(raw);
}

int
records_write_word(uint32_t offset, uint32_t value)
{
	uint8_t raw[4];

	put32(raw, value);
	return hal_flash_program(hal_board()->records_start + offset, raw, sizeof raw);
}

int
records_erase(void)
{
	return hal_flash_erase(hal_board()->records_start, hal_board()->records_size);
}
