/* CRC-32/IEEE (zlib's), for code that has no zlib: the firmware and the link framing. */
#ifndef HEALER_FW_CRC32_H
#define HEALER_FW_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Start with crc = 0; feed pieces in order. */
uint32_t fw_crc32_update(uint32_t crc, const void *data, size_t len);

#endif
