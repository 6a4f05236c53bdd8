/*
 * The two checksums every module carries, computed with zlib (CRC-32) and
 * OpenSSL (SHA-256) rather than by hand.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_SHA256_SIZE 32

guint32 healer_crc32(const guint8 *data, gsize len);
void healer_sha256(const guint8 *data, gsize len, guint8 out[HEALER_SHA256_SIZE]);
/* Lowercase hex of a SHA-256 digest. */
char *healer_sha256_to_hex(const guint8 digest[HEALER_SHA256_SIZE]);
/* Parses 64 hex digits (either case); FALSE if malformed. */
gboolean healer_sha256_from_hex(const char *hex, guint8 out[HEALER_SHA256_SIZE]);

G_END_DECLS
