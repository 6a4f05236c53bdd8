/* Building text in fixed buffers without printf: describe JSON and log lines. */
#ifndef HEALER_FW_TEXT_H
#define HEALER_FW_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	char *buf;
	size_t size;
	size_t len;
	int overflow; /* something did not fit: the text is cut */
} text_t;

void text_init(text_t *t, char *buf, size_t size);
void text_str(text_t *t, const char *s);
void text_uint(text_t *t, uint32_t v);
void text_int(text_t *t, int32_t v);
void text_hex(text_t *t, const uint8_t *bytes, size_t n, int upper);

#endif
