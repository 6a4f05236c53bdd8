#include "link-frame.h"

#include <string.h>

#include "crc32.h"

size_t
link_frame_encoded_size(size_t body_len)
{
	size_t raw = LINK_FRAME_HEADER_SIZE + body_len + LINK_FRAME_CRC_SIZE;

	return raw + raw / 254u + 2u;
}

/*
 * COBS: each block is a code byte (distance to the next zero, or 0xFF for
 * 254 data bytes with no zero) followed by the data bytes; the zeros
 * themselves are implied.  The raw frame is read in three pieces so the
 * body need not be copied.
 */
typedef struct {
	uint8_t *out;
	size_t size;
	size_t pos;
	size_t code_at;
	uint8_t code;
	int failed;
} cobs_writer_t;

static void
cobs_start(cobs_writer_t *w)
{
	w->code_at = w->pos++;
	w->code = 1;
	if (w->code_at >= w->size)
		w->failed = 1;
}

static void
cobs_put(cobs_writer_t *w, uint8_t byte)
{
	if (w->failed)
		return;
	if (byte == 0) {
		w->out[w->code_at] = w->code;
		cobs_start(w);
		return;
	}
	if (w->pos >= w->size) {
		w->failed = 1;
		return;
	}
	w->out[w->pos++] = byte;
	if (++w->code == 0xFF) {
		w->out[w->code_at] = w->code;
		cobs_start(w);
	}
}

size_t
link_frame_encode(uint8_t type, uint8_t flags, const void *body, size_t body_len, uint8_t *out, size_t out_size)
{
	cobs_writer_t w = {.out = out, .size = out_size};
	uint8_t header[LINK_FRAME_HEADER_SIZE] = {type, flags};
	uint8_t crc_bytes[LINK_FRAME_CRC_SIZE];
	const uint8_t *b = body;
	uint32_t crc;

	if (body_len > LINK_MAX_BODY || out_size < link_frame_encoded_size(body_len))
		return 0;
	crc = fw_crc32_update(0, header, sizeof header);
	crc = fw_crc32_update(crc, body, body_len);
	for (int i = 0; i < 4; i++)
		crc_bytes[i] = (uint8_t)(crc >> (8 * i));

	cobs_start(&w);
	for (size_t i = 0; i < sizeof header; i++)
		cobs_put(&w, header[i]);
	for (size_t i = 0; i < body_len; i++)
		cobs_put(&w, b[i]);
	for (size_t i = 0; i < sizeof crc_bytes; i++)
		cobs_put(&w, crc_bytes[i]);
	if (w.failed || w.pos >= w.size)
		return 0;
	w.out[w.code_at] = w.code;
	w.out[w.pos++] = LINK_FRAME_DELIMITER;
	return w.pos;
}

void
link_decoder_init(link_decoder_t *dec)
{
	memset(dec, 0, sizeof *dec);
}

static void
reset_frame(link_decoder_t *dec)
{
	dec->len = 0;
	dec->code = 0;
	dec->block_max = 0;
	dec->pending_zero = 0;
	dec->overflow = 0;
}

static void
append(link_decoder_t *dec, uint8_t byte)
{
	if (dec->len < sizeof dec->buf)
		dec->buf[dec->len++] = byte;
	else
		dec->overflow = 1;
}

/* A delimiter ended the frame: check it and hand it out. */
static int
finish_frame(link_decoder_t *dec, link_frame_t *frame)
{
	uint32_t stored, computed;

	/* buf holds one byte more than the largest frame, so a body of LINK_MAX_BODY + 1 must be refused here. */
	if (dec->overflow || dec->code != 0 || dec->len < LINK_FRAME_HEADER_SIZE + LINK_FRAME_CRC_SIZE ||
	    dec->len > LINK_MAX_FRAME) {
		if (dec->len > 0 || dec->overflow || dec->code != 0) {
			dec->frames_bad++;
			dec->bytes_dropped += (uint32_t)dec->len;
		}
		reset_frame(dec);
		return 0;
	}
	stored = (uint32_t)dec->buf[dec->len - 4] | (uint32_t)dec->buf[dec->len - 3] << 8 |
	         (uint32_t)dec->buf[dec->len - 2] << 16 | (uint32_t)dec->buf[dec->len - 1] << 24;
	computed = fw_crc32_update(0, dec->buf, dec->len - LINK_FRAME_CRC_SIZE);
	if (stored != computed) {
		dec->frames_bad++;
		dec->bytes_dropped += (uint32_t)dec->len;
		reset_frame(dec);
		return 0;
	}
	frame->type = dec->buf[0];
	frame->flags = dec->buf[1];
	frame->body = dec->buf + LINK_FRAME_HEADER_SIZE;
	frame->body_len = dec->len - LINK_FRAME_HEADER_SIZE - LINK_FRAME_CRC_SIZE;
	dec->frames_ok++;
	/* The body stays in buf until the next push; only the state is reset. */
	dec->len = 0;
	dec->code = 0;
	dec->block_max = 0;
	return 1;
}

size_t
link_decoder_push(link_decoder_t *dec, const uint8_t *data, size_t len, link_frame_t *frame, int *got)
{
	size_t i = 0;

	*got = 0;
	while (i < len) {
		uint8_t byte = data[i++];

		if (byte == LINK_FRAME_DELIMITER) {
			/* The last block's implied zero is not part of the frame. */
			dec->pending_zero = 0;
			if (finish_frame(dec, frame)) {
				*got = 1;
				return i;
			}
			continue;
		}
		if (dec->code == 0) {
			/* A code byte opens a block; the previous block's implied zero comes first. */
			if (dec->pending_zero)
				append(dec, 0);
			dec->code = byte;
			dec->block_max = byte == 0xFF;
		} else {
			append(dec, byte);
		}
		if (--dec->code == 0)
			dec->pending_zero = !dec->block_max;
	}
	return i;
}
