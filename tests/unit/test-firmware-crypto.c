/*
 * The firmware's own CRC-32 and SHA-256 (device-firmware/common), which
 * the bootloader trusts with every module, against zlib and OpenSSL: every
 * length from 0 to 300, a few megabytes fed in random pieces, and the
 * published test vectors.
 */
#include <string.h>

#include <glib.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "crc32.h"
#include "sha256.h"

static guint8 *
pattern(gsize len, guint32 seed)
{
	guint8 *p = g_malloc(len > 0 ? len : 1);
	guint32 x = seed;

	for (gsize i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (guint8)(x >> 16);
	}
	return p;
}

static void
sha256_pieces(const guint8 *data, gsize len, GRand *rand, guint max_piece, guint8 digest[32])
{
	fw_sha256_t ctx;
	gsize pos = 0;

	fw_sha256_init(&ctx);
	while (pos < len) {
		gsize piece = (gsize)g_rand_int_range(rand, 0, (gint32)max_piece + 1);
		gsize n = MIN(piece, len - pos);
		fw_sha256_update(&ctx, data + pos, n);
		pos += n;
	}
	fw_sha256_final(&ctx, digest);
}

static guint32
crc32_pieces(const guint8 *data, gsize len, GRand *rand, guint max_piece)
{
	guint32 crc = 0;
	gsize pos = 0;

	while (pos < len) {
		gsize piece = (gsize)g_rand_int_range(rand, 0, (gint32)max_piece + 1);
		gsize n = MIN(piece, len - pos);
		crc = fw_crc32_update(crc, data + pos, n);
		pos += n;
	}
	return crc;
}

static void
test_crc32_lengths(void)
{
	g_autofree guint8 *data = pattern(300, 1);
	GRand *rand = g_rand_new_with_seed(11);

	for (gsize len = 0; len <= 300; len++) {
		guint32 want = (guint32)crc32(0L, data, (uInt)len);
		g_assert_cmphex(fw_crc32_update(0, data, len), ==, want);
		g_assert_cmphex(crc32_pieces(data, len, rand, 7), ==, want);
	}
	/* The standard check value of CRC-32/ISO-HDLC: the CRC of "123456789". */
	g_assert_cmphex(fw_crc32_update(0, "123456789", 9), ==, 0xCBF43926);
	g_assert_cmphex(fw_crc32_update(0, NULL, 0), ==, 0);
	g_rand_free(rand);
}

static void
test_crc32_large(void)
{
	static const gsize sizes[] = {1u << 20, 3u * (1u << 20) + 17};
	GRand *rand = g_rand_new_with_seed(12);

	for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autofree guint8 *data = pattern(sizes[i], (guint32)i + 2);
		guint32 want = (guint32)crc32(0L, data, (uInt)sizes[i]);

		g_assert_cmphex(fw_crc32_update(0, data, sizes[i]), ==, want);
		g_assert_cmphex(crc32_pieces(data, sizes[i], rand, 70000), ==, want);
	}
	g_rand_free(rand);
}

static void
test_sha256_lengths(void)
{
	g_autofree guint8 *data = pattern(300, 3);
	GRand *rand = g_rand_new_with_seed(13);

	for (gsize len = 0; len <= 300; len++) {
		guint8 want[32], got[32];
		fw_sha256_t ctx;

		SHA256(data, len, want);
		fw_sha256_init(&ctx);
		fw_sha256_update(&ctx, data, len);
		fw_sha256_final(&ctx, got);
		g_assert_cmpmem(got, 32, want, 32);
		sha256_pieces(data, len, rand, 70, got);
		g_assert_cmpmem(got, 32, want, 32);
	}
	g_rand_free(rand);
}

static void
test_sha256_large(void)
{
	static const gsize sizes[] = {1u << 20, 2u * (1u << 20) + 55};
	GRand *rand = g_rand_new_with_seed(14);

	for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autofree guint8 *data = pattern(sizes[i], (guint32)i + 4);
		guint8 want[32], got[32];

		SHA256(data, sizes[i], want);
		sha256_pieces(data, sizes[i], rand, 5000, got);
		g_assert_cmpmem(got, 32, want, 32);
		sha256_pieces(data, sizes[i], rand, 63, got);
		g_assert_cmpmem(got, 32, want, 32);
	}
	g_rand_free(rand);
}

static void
check_vector(const void *data, gsize len, const char *hex)
{
	guint8 got[32];
	char got_hex[65];
	fw_sha256_t ctx;

	fw_sha256_init(&ctx);
	fw_sha256_update(&ctx, data, len);
	fw_sha256_final(&ctx, got);
	for (guint i = 0; i < 32; i++)
		g_snprintf(got_hex + 2 * i, 3, "%02x", got[i]);
	g_assert_cmpstr(got_hex, ==, hex);
}

/* FIPS 180-2 appendix B (and the empty string). */
static void
test_sha256_vectors(void)
{
	static const char abc448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	g_autofree char *million = g_strnfill(1000000, 'a');
	fw_sha256_t ctx;
	guint8 got[32], want[32];

	check_vector("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_vector("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	g_assert_cmpuint(strlen(abc448), ==, 56); /* 448 bits */
	check_vector(abc448, strlen(abc448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check_vector(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* One byte at a time across the million. */
	fw_sha256_init(&ctx);
	for (guint i = 0; i < 1000000; i += 1000)
		for (guint j = 0; j < 1000; j++)
			fw_sha256_update(&ctx, "a", 1);
	fw_sha256_final(&ctx, got);
	SHA256((const guint8 *)million, 1000000, want);
	g_assert_cmpmem(got, 32, want, 32);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/firmware-crypto/crc32-lengths", test_crc32_lengths);
	g_test_add_func("/firmware-crypto/crc32-large", test_crc32_large);
	g_test_add_func("/firmware-crypto/sha256-lengths", test_sha256_lengths);
	g_test_add_func("/firmware-crypto/sha256-large", test_sha256_large);
	g_test_add_func("/firmware-crypto/sha256-vectors", test_sha256_vectors);
	return g_test_run();
}
