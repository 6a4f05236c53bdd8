/*
 * SHA-256 for the firmware, which has no OpenSSL: the bootloader verifies
 * every module's hash before it runs anything.  Streaming, no heap.
 */
#ifndef HEALER_FW_SHA256_H
#define HEALER_FW_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint32_t state[8];
	uint64_t length; /* bytes */
	uint8_t block[64];
	size_t used;
} fw_sha256_t;

void fw_sha256_init(fw_sha256_t *ctx);
void fw_sha256_update(fw_sha256_t *ctx, const void *data, size_t len);
void fw_sha256_final(fw_sha256_t *ctx, uint8_t digest[32]);

#endif
