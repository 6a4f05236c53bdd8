#include "module-checksums.h"

#include <openssl/evp.h>
#include <zlib.h>

guint32
healer_crc32(const guint8 *data, gsize len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths: feed large buffers in pieces. */
	while (len > 0) {
		uInt chunk = len > G_MAXUINT32 ? G_MAXUINT32 : (uInt)len;
		crc = crc32(crc, data, chunk);
		data += chunk;
		len -= chunk;
	}
	return (guint32)crc;
}

void
healer_sha256(const guint8 *data, gsize len, guint8 out[HEALER_SHA256_SIZE])
{
	unsigned int out_len = 0;

	/* EVP_Digest only fails on allocation failure, which GLib treats as fatal too. */
	if (!EVP_Digest(data, len, out, &out_len, EVP_sha256(), NULL) || out_len != HEALER_SHA256_SIZE)
		g_error("SHA-256 computation failed in OpenSSL");
}

char *
healer_sha256_to_hex(const guint8 digest[HEALER_SHA256_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	char *out = g_malloc(HEALER_SHA256_SIZE * 2 + 1);

	for (gsize i = 0; i < HEALER_SHA256_SIZE; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[HEALER_SHA256_SIZE * 2] = '\0';
	return out;
}

gboolean
healer_sha256_from_hex(const char *hex, guint8 out[HEALER_SHA256_SIZE])
{
	if (hex == NULL || strlen(hex) != HEALER_SHA256_SIZE * 2)
		return FALSE;
	for (gsize i = 0; i < HEALER_SHA256_SIZE; i++) {
		int hi = g_ascii_xdigit_value(hex[2 * i]);
		int lo = g_ascii_xdigit_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return FALSE;
		out[i] = (guint8)(hi << 4 | lo);
	}
	return TRUE;
}
