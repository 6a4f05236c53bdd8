/*
 * Link framing, shared by the firmware and the agent: building a frame
 * (header, body, CRC, COBS, delimiter) into a caller's buffer, and a
 * streaming decoder that takes bytes as they arrive and yields whole,
 * checked frames.  No heap; the decoder owns a fixed buffer.
 */
#ifndef HEALER_LINK_FRAME_H
#define HEALER_LINK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "healer/link-protocol.h"

/*
 * Encodes one frame into out (at least LINK_MAX_ENCODED bytes, or
 * link_frame_encoded_size(body_len)).  Returns the encoded length including
 * the delimiter, or 0 if body_len is over LINK_MAX_BODY or out is too small.
 */
size_t link_frame_encode(uint8_t type, uint8_t flags, const void *body, size_t body_len, uint8_t *out, size_t out_size);
size_t link_frame_encoded_size(size_t body_len);

typedef struct {
	uint8_t buf[LINK_MAX_FRAME + 1]; /* decoded bytes of the frame being received */
	size_t len;
	uint8_t code;         /* COBS: bytes left in the current block, including its code byte */
	uint8_t block_max;    /* the current block is a full 0xFF block: no implied zero after it */
	uint8_t pending_zero; /* the previous block ended with an implied zero, not yet stored */
	uint8_t overflow;     /* the frame outgrew buf: drop it at the delimiter */
	/* Statistics, for logs and tests. */
	uint32_t frames_ok;
	uint32_t frames_bad; /* CRC, length or COBS faults */
	uint32_t bytes_dropped;
} link_decoder_t;

typedef struct {
	uint8_t type;
	uint8_t flags;
	const uint8_t *body; /* points into the decoder: valid until the next push */
	size_t body_len;
} link_frame_t;

void link_decoder_init(link_decoder_t *dec);

/*
 * Feeds bytes; stops after the first complete frame.  Returns how many
 * bytes were consumed; *got is 1 when `frame` holds a frame.  Call again
 * with the rest of the input until it is all consumed.
 */
size_t link_decoder_push(link_decoder_t *dec, const uint8_t *data, size_t len, link_frame_t *frame, int *got);

#endif
