/*
 * CRC-32/IEEE.  Built into the firmware with HEALER_FW_HAL_ENGINES, the
 * board's CRC engine computes it when it has one (hal.h).
 */
#include "crc32.h"

#ifdef HEALER_FW_HAL_ENGINES
#include "hal.h"
#endif

/* Nibble-wise table: 64 bytes of table, fast enough for a serial link. */
static const uint32_t crc_nibble[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
        0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
};

uint32_t
fw_crc32_update(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

#ifdef HEALER_FW_HAL_ENGINES
	if (hal_crc32_update(&crc, data, len))
		return crc;
#endif
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ crc_nibble[crc & 0xF];
		crc = (crc >> 4) ^ crc_nibble[crc & 0xF];
	}
	return ~crc;
}
