#include "text.h"

void
text_init(text_t *t, char *buf, size_t size)
{
	t->buf = buf;
	t->size = size;
	t->len = 0;
	t->overflow = 0;
	if (size > 0)
		buf[0] = '\0';
}

static void
put(text_t *t, char c)
{
	if (t->len + 1 < t->size) {
		t->buf[t->len++] = c;
		t->buf[t->len] = '\0';
	} else {
		t->overflow = 1;
	}
}

void
text_str(text_t *t, const char *s)
{
	while (*s)
		put(t, *s++);
}

void
text_uint(text_t *t, uint32_t v)
{
	char digits[10];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		put(t, digits[--n]);
}

void
text_int(text_t *t, int32_t v)
{
	if (v < 0) {
		put(t, '-');
		text_uint(t, (uint32_t)0 - (uint32_t)v);
	} else {
		text_uint(t, (uint32_t)v);
	}
}

void
text_hex(text_t *t, const uint8_t *bytes, size_t n, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		put(t, digits[bytes[i] >> 4]);
		put(t, digits[bytes[i] & 0xF]);
	}
}
