/*
 * The link protocol's framing and messages: every message built, decoded
 * and parsed back; the streaming decoder across every way a stream can be
 * cut, corrupted or padded with garbage; COBS edge cases; and every parser
 * refusing what it must refuse.
 */
#include <string.h>

#include "crc32.h"
#include "healer-error.h"
#include "healer/module-format.h"
#include "link-codec.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Decodes `bytes` in one push; exactly one frame expected. */
static HealerLinkFrame *
decode_one(GBytes *bytes)
{
	g_autoptr(HealerLinkDecoder) dec = healer_link_decoder_new();
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GPtrArray) frames = healer_link_decoder_push(dec, data, len);
	HealerLinkDecoderStats stats;

	healer_link_decoder_get_stats(dec, &stats);
	g_assert_cmpuint(frames->len, ==, 1);
	g_assert_cmpuint(stats.frames_ok, ==, 1);
	g_assert_cmpuint(stats.frames_bad, ==, 0);
	g_assert_cmpuint(stats.bytes_in, ==, len);
	return g_ptr_array_steal_index(frames, 0);
}

/* An encoded frame: no zero byte but the final delimiter, within the size bounds. */
static void
check_encoding(GBytes *bytes, gsize body_len)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	g_assert_cmpuint(len, >=, LINK_FRAME_HEADER_SIZE + body_len + LINK_FRAME_CRC_SIZE + 2);
	g_assert_cmpuint(len, <=, link_frame_encoded_size(body_len));
	g_assert_cmpuint(len, <=, LINK_MAX_ENCODED);
	g_assert_cmpuint(data[len - 1], ==, LINK_FRAME_DELIMITER);
	g_assert_null(memchr(data, 0, len - 1));
}

static void
expect_parse_error(gboolean ok, GError *error, const char *message)
{
	g_assert_false(ok);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	if (strstr(error->message, message) == NULL)
		g_error("expected '%s' in '%s'", message, error->message);
}

static GBytes *
concat(GBytes *const *parts, guint n)
{
	GByteArray *all = g_byte_array_new();

	for (guint i = 0; i < n; i++) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(parts[i], &len);
		g_byte_array_append(all, data, (guint)len);
	}
	return g_byte_array_free_to_bytes(all);
}

/* ---- round trips ------------------------------------------------------------- */

static void
test_host_messages(void)
{
	guint8 sha[32];
	guint8 payload[300];
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < sizeof sha; i++)
		sha[i] = (guint8)(i * 7 + 1);
	for (guint i = 0; i < sizeof payload; i++)
		payload[i] = (guint8)(i % 3 == 0 ? 0 : i);

	{
		g_autoptr(GBytes) b =
		        healer_link_build_begin(0x01020304, sha, MODULE_FUNCTION_SYSTEM_PART, 2, 1213, 1024);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		HealerLinkBegin begin;

		check_encoding(b, 42);
		g_assert_cmpuint(f->frame.type, ==, LINK_BEGIN);
		g_assert_cmpuint(f->frame.flags, ==, 0);
		g_assert_true(healer_link_parse_begin(&f->frame, &begin, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(begin.size, ==, 0x01020304);
		g_assert_cmpmem(begin.sha256, 32, sha, 32);
		g_assert_cmpuint(begin.function, ==, MODULE_FUNCTION_SYSTEM_PART);
		g_assert_cmpuint(begin.index, ==, 2);
		g_assert_cmpuint(begin.version, ==, 1213);
		g_assert_cmpuint(begin.max_data, ==, 1024);
	}
	{
		g_autoptr(GBytes) b = healer_link_build_data(0xA0B0C0D0, payload, sizeof payload, &error);
		g_autoptr(HealerLinkFrame) f = NULL;
		HealerLinkData data;

		g_assert_no_error(error);
		f = decode_one(b);
		g_assert_true(healer_link_parse_data(&f->frame, &data, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(data.offset, ==, 0xA0B0C0D0);
		g_assert_cmpmem(data.data, data.len, payload, sizeof payload);
	}
	{
		g_autoptr(GBytes) b = healer_link_build_ping(0xDEADBEEF);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		guint32 nonce = 0;

		g_assert_true(healer_link_parse_ping(&f->frame, &nonce, &error));
		g_assert_cmphex(nonce, ==, 0xDEADBEEF);
	}
	{
		static const struct {
			GBytes *(*build)(void);
			gboolean (*parse)(const link_frame_t *, GError **);
			guint8 type;
		} empty[] = {
		        {healer_link_build_describe, healer_link_parse_describe, LINK_DESCRIBE},
		        {healer_link_build_finish, healer_link_parse_finish, LINK_FINISH},
		        {healer_link_build_reset, healer_link_parse_reset, LINK_RESET},
		        {healer_link_build_cancel, healer_link_parse_cancel, LINK_CANCEL},
		        {healer_link_build_hello_request, healer_link_parse_hello_request, LINK_HELLO_REQUEST},
		};
		for (gsize i = 0; i < G_N_ELEMENTS(empty); i++) {
			g_autoptr(GBytes) b = empty[i].build();
			g_autoptr(HealerLinkFrame) f = decode_one(b);

			check_encoding(b, 0);
			g_assert_cmpuint(f->frame.type, ==, empty[i].type);
			g_assert_cmpuint(f->frame.body_len, ==, 0);
			g_assert_true(empty[i].parse(&f->frame, &error));
			g_assert_no_error(error);
			/* Every other empty parser refuses it by type. */
			for (gsize j = 0; j < G_N_ELEMENTS(empty); j++) {
				g_autoptr(GError) e = NULL;
				gboolean ok;

				if (j == i)
					continue;
				ok = empty[j].parse(&f->frame, &e);
				expect_parse_error(ok, e, "instead");
			}
		}
	}
}

static void
test_device_messages(void)
{
	g_autoptr(GError) error = NULL;
	HealerLinkHello hello = {
	        .protocol_version = LINK_PROTOCOL_VERSION,
	        .mode = LINK_MODE_SAFE,
	        .safe_mode_reason = LINK_SAFE_MODE_DEPENDENCIES,
	        .reset_reason = LINK_RESET_UPDATE,
	        .led = LINK_LED_BREATHING_MAGENTA,
	        .window = 4,
	        .platform_id = 12,
	        .max_data = 1024,
	        .device_id = {0xe0, 0x0f, 0xce, 0x68, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xff},
	};

	{
		g_autoptr(GBytes) b = healer_link_build_hello(&hello);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		HealerLinkHello got;

		check_encoding(b, 22);
		g_assert_true(healer_link_parse_hello(&f->frame, &got, &error));
		g_assert_no_error(error);
		g_assert_cmpmem(&got, sizeof got, &hello, sizeof hello);
		/* Little-endian on the wire. */
		g_assert_cmpuint(f->frame.body[6], ==, 12);
		g_assert_cmpuint(f->frame.body[7], ==, 0);
		g_assert_cmpuint(f->frame.body[8], ==, 0x00);
		g_assert_cmpuint(f->frame.body[9], ==, 0x04);
	}
	{
		static const char json[] = "{\"p\":6,\"m\":[]}";
		g_autoptr(GBytes) b = healer_link_build_describe_reply(json, strlen(json), &error);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		g_auto(HealerLinkDescribeReply) reply = {0};

		g_assert_true(healer_link_parse_describe_reply(&f->frame, &reply, &error));
		g_assert_cmpstr(reply.json, ==, json);
		g_assert_cmpuint(reply.len, ==, strlen(json));
	}
	{
		HealerLinkStatus status = {LINK_MODE_UPDATING, LINK_SAFE_MODE_NONE, LINK_LED_BLINKING_MAGENTA}, got;
		g_autoptr(GBytes) b = healer_link_build_status(&status);
		g_autoptr(HealerLinkFrame) f = decode_one(b);

		g_assert_true(healer_link_parse_status(&f->frame, &got, &error));
		g_assert_cmpmem(&got, sizeof got, &status, sizeof status);
	}
	{
		g_autoptr(GBytes) b = healer_link_build_log(LINK_LOG_WARNING, "staging area: 12 blocks held", &error);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		g_auto(HealerLinkLog) log = {0};

		g_assert_true(healer_link_parse_log(&f->frame, &log, &error));
		g_assert_cmpuint(log.level, ==, LINK_LOG_WARNING);
		g_assert_cmpstr(log.text, ==, "staging area: 12 blocks held");
	}
	{
		g_autoptr(GBytes) b = healer_link_build_update_ready(0, 5120, 512, 8);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		HealerLinkUpdateReady ready;

		g_assert_true(healer_link_parse_update_ready(&f->frame, &ready, &error));
		g_assert_cmpint(ready.status, ==, 0);
		g_assert_cmpuint(ready.offset, ==, 5120);
		g_assert_cmpuint(ready.max_data, ==, 512);
		g_assert_cmpuint(ready.window, ==, 8);
	}
	{
		/* A refusal carries no usable window or max_data. */
		g_autoptr(GBytes) b = healer_link_build_update_ready(MODULE_UPDATE_ERROR_PLATFORM, 0, 0, 0);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		HealerLinkUpdateReady ready;

		g_assert_true(healer_link_parse_update_ready(&f->frame, &ready, &error));
		g_assert_cmpint(ready.status, ==, -1360);
	}
	{
		g_autoptr(GBytes) b = healer_link_build_ack(0xFFFFFFFF);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		guint32 next = 0;

		g_assert_true(healer_link_parse_ack(&f->frame, &next, &error));
		g_assert_cmphex(next, ==, 0xFFFFFFFF);
	}
	{
		static const gint32 statuses[] = {0, -1320, -1330, -1340, -1350, -1360, -1370, LINK_ERROR_INCOMPLETE};

		for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
			g_autoptr(GBytes) b = healer_link_build_update_result(statuses[i]);
			g_autoptr(HealerLinkFrame) f = decode_one(b);
			gint32 got = 1;

			g_assert_true(healer_link_parse_update_result(&f->frame, &got, &error));
			g_assert_no_error(error);
			g_assert_cmpint(got, ==, statuses[i]);
		}
	}
	{
		g_autoptr(GBytes) b = healer_link_build_pong(7);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		guint32 nonce = 0;

		g_assert_true(healer_link_parse_pong(&f->frame, &nonce, &error));
		g_assert_cmpuint(nonce, ==, 7);
	}
	{
		g_autoptr(GBytes) b = healer_link_build_error(LINK_ERROR_NO_TRANSFER, LINK_DATA, "no BEGIN", &error);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		g_auto(HealerLinkErrorReply) reply = {0};

		g_assert_true(healer_link_parse_error(&f->frame, &reply, &error));
		g_assert_cmpint(reply.code, ==, LINK_ERROR_NO_TRANSFER);
		g_assert_cmpuint(reply.request_type, ==, LINK_DATA);
		g_assert_cmpstr(reply.text, ==, "no BEGIN");
	}
	{
		/* An empty text is fine; the device's bytes are made valid UTF-8, NULs included. */
		g_autoptr(GBytes) b = healer_link_build_error(LINK_ERROR_UNKNOWN_REQUEST, 0x7F, NULL, &error);
		g_autoptr(HealerLinkFrame) f = decode_one(b);
		g_auto(HealerLinkErrorReply) reply = {0};
		static const guint8 raw[] = {LINK_LOG_INFO, 'a', 0x00, 'b', 0xFF, 'c'};
		g_autoptr(HealerLinkFrame) logf = healer_link_frame_new(LINK_LOG, 0, raw, sizeof raw);
		g_auto(HealerLinkLog) log = {0};

		g_assert_true(healer_link_parse_error(&f->frame, &reply, &error));
		g_assert_cmpstr(reply.text, ==, "");
		g_assert_true(healer_link_parse_log(&logf->frame, &log, &error));
		g_assert_true(g_utf8_validate(log.text, -1, NULL));
		g_assert_cmpstr(log.text, ==,
		                "a\xEF\xBF\xBD"
		                "b\xEF\xBF\xBD"
		                "c");
	}
}

/* A stream of one frame of every type, plus data frames around them. */
static GBytes *
make_stream(guint *n_frames)
{
	g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	HealerLinkHello hello = {LINK_PROTOCOL_VERSION, 0, 0, 1, 1, 2, 6, 256, {1, 2, 3}};
	HealerLinkStatus status = {1, 1, 2};
	guint8 sha[32] = {0};
	guint8 data[600];

	for (guint i = 0; i < sizeof data; i++)
		data[i] = (guint8)(i % 5 == 0 ? 0 : 255 - i);
	g_ptr_array_add(parts, healer_link_build_hello(&hello));
	g_ptr_array_add(parts, healer_link_build_describe());
	g_ptr_array_add(parts, healer_link_build_describe_reply("{\"p\":6,\"m\":[]}", 14, NULL));
	g_ptr_array_add(parts, healer_link_build_status(&status));
	g_ptr_array_add(parts, healer_link_build_begin(1000, sha, 5, 1, 6, 512));
	g_ptr_array_add(parts, healer_link_build_update_ready(0, 0, 512, 4));
	for (guint off = 0; off < sizeof data; off += 200)
		g_ptr_array_add(parts, healer_link_build_data(off, data + off, 200, NULL));
	g_ptr_array_add(parts, healer_link_build_ack(600));
	g_ptr_array_add(parts, healer_link_build_log(LINK_LOG_DEBUG, "x", NULL));
	g_ptr_array_add(parts, healer_link_build_finish());
	g_ptr_array_add(parts, healer_link_build_update_result(0));
	g_ptr_array_add(parts, healer_link_build_ping(1));
	g_ptr_array_add(parts, healer_link_build_pong(1));
	g_ptr_array_add(parts, healer_link_build_cancel());
	g_ptr_array_add(parts, healer_link_build_reset());
	g_ptr_array_add(parts, healer_link_build_hello_request());
	g_ptr_array_add(parts, healer_link_build_error(-101, LINK_BEGIN, "short", NULL));
	*n_frames = parts->len;
	return concat((GBytes *const *)parts->pdata, parts->len);
}

/* Feeds `stream` in chunks of the given sizes (cycled) and collects every frame. */
static GPtrArray *
decode_chunked(const guint8 *stream, gsize len, const gsize *sizes, guint n_sizes, HealerLinkDecoderStats *stats)
{
	g_autoptr(HealerLinkDecoder) dec = healer_link_decoder_new();
	GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)healer_link_frame_free);
	gsize pos = 0;

	for (guint i = 0; pos < len; i++) {
		gsize n = MIN(sizes[i % n_sizes], len - pos);
		g_autoptr(GPtrArray) got = healer_link_decoder_push(dec, stream + pos, n);

		for (guint j = 0; j < got->len; j++)
			g_ptr_array_add(all, g_ptr_array_steal_index(got, j--));
		pos += n;
	}
	healer_link_decoder_get_stats(dec, stats);
	return all;
}

static void
assert_same_frames(GPtrArray *a, GPtrArray *b)
{
	g_assert_cmpuint(a->len, ==, b->len);
	for (guint i = 0; i < a->len; i++) {
		const HealerLinkFrame *fa = g_ptr_array_index(a, i), *fb = g_ptr_array_index(b, i);

		g_assert_cmpuint(fa->frame.type, ==, fb->frame.type);
		g_assert_cmpuint(fa->frame.flags, ==, fb->frame.flags);
		g_assert_cmpmem(fa->frame.body, fa->frame.body_len, fb->frame.body, fb->frame.body_len);
	}
}

static void
test_chunk_splits(void)
{
	guint n_frames = 0;
	g_autoptr(GBytes) stream = make_stream(&n_frames);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(stream, &len);
	static const gsize whole[] = {G_MAXSIZE};
	static const gsize one[] = {1};
	HealerLinkDecoderStats stats;
	g_autoptr(GPtrArray) reference = decode_chunked(data, len, whole, 1, &stats);
	GRand *rand = g_rand_new_with_seed(1234);

	g_assert_cmpuint(reference->len, ==, n_frames);
	g_assert_cmpuint(stats.frames_ok, ==, n_frames);
	g_assert_cmpuint(stats.frames_bad, ==, 0);
	g_assert_cmpuint(stats.bytes_dropped, ==, 0);

	/* Byte by byte. */
	{
		g_autoptr(GPtrArray) got = decode_chunked(data, len, one, 1, &stats);
		assert_same_frames(reference, got);
	}
	/* Every fixed chunk size from 2 to 64, then random ones. */
	for (gsize size = 2; size <= 64; size++) {
		g_autoptr(GPtrArray) got = decode_chunked(data, len, &size, 1, &stats);
		assert_same_frames(reference, got);
	}
	for (guint round = 0; round < 200; round++) {
		gsize sizes[17];
		g_autoptr(GPtrArray) got = NULL;

		for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
			sizes[i] = (gsize)g_rand_int_range(rand, 1, round % 2 ? 8 : 700);
		got = decode_chunked(data, len, sizes, G_N_ELEMENTS(sizes), &stats);
		assert_same_frames(reference, got);
		g_assert_cmpuint(stats.frames_bad, ==, 0);
	}
	/* Every single cut point in two. */
	for (gsize cut = 0; cut <= len; cut++) {
		gsize sizes[2] = {cut, len - cut};
		g_autoptr(GPtrArray) got = NULL;

		if (cut == 0 || cut == len)
			sizes[0] = sizes[1] = len;
		got = decode_chunked(data, len, sizes, 2, &stats);
		assert_same_frames(reference, got);
	}
	g_rand_free(rand);
}

/* Frames the decoder finds in `stream`, in one push. */
static GPtrArray *
decode_all(GBytes *stream, HealerLinkDecoderStats *stats)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(stream, &len);
	static const gsize whole[] = {G_MAXSIZE};

	return decode_chunked(data, len, whole, 1, stats);
}

static GBytes *
random_bytes(GRand *rand, gsize n, gboolean with_zeros)
{
	guint8 *p = g_malloc(n);

	for (gsize i = 0; i < n; i++) {
		p[i] = (guint8)g_rand_int_range(rand, with_zeros ? 0 : 1, 256);
		/* Zeros now and then, not one in 256 only. */
		if (with_zeros && g_rand_int_range(rand, 0, 16) == 0)
			p[i] = 0;
	}
	return g_bytes_new_take(p, n);
}

static void
test_garbage(void)
{
	GRand *rand = g_rand_new_with_seed(99);
	g_autoptr(GBytes) ping = healer_link_build_ping(0x11111111);
	g_autoptr(GBytes) pong = healer_link_build_pong(0x22222222);
	g_autoptr(GBytes) delim = g_bytes_new_static("", 1);

	for (guint round = 0; round < 300; round++) {
		g_autoptr(GBytes) g1 = random_bytes(rand, (gsize)g_rand_int_range(rand, 10, 600), TRUE);
		g_autoptr(GBytes) g2 = random_bytes(rand, (gsize)g_rand_int_range(rand, 10, 600), TRUE);
		/* Garbage, then a delimiter: what a sender emits before its first frame resynchronises. */
		GBytes *parts[] = {g1, delim, ping, g2, delim, pong, g1, delim};
		g_autoptr(GBytes) stream = concat(parts, G_N_ELEMENTS(parts));
		HealerLinkDecoderStats stats;
		g_autoptr(GPtrArray) frames = decode_all(stream, &stats);
		const HealerLinkFrame *a, *b;

		g_assert_cmpuint(frames->len, ==, 2);
		a = g_ptr_array_index(frames, 0);
		b = g_ptr_array_index(frames, 1);
		g_assert_cmpuint(a->frame.type, ==, LINK_PING);
		g_assert_cmpuint(b->frame.type, ==, LINK_PONG);
		g_assert_cmpuint(stats.frames_ok, ==, 2);
		g_assert_cmpuint(stats.frames_bad, >=, 1);
	}
	{
		/* Garbage glued to a frame with no delimiter between costs that frame, not the next. */
		g_autoptr(GBytes) g = random_bytes(rand, 100, FALSE);
		GBytes *parts[] = {g, ping, pong};
		g_autoptr(GBytes) stream = concat(parts, G_N_ELEMENTS(parts));
		HealerLinkDecoderStats stats;
		g_autoptr(GPtrArray) frames = decode_all(stream, &stats);

		g_assert_cmpuint(frames->len, ==, 1);
		g_assert_cmpuint(((HealerLinkFrame *)g_ptr_array_index(frames, 0))->frame.type, ==, LINK_PONG);
		g_assert_cmpuint(stats.frames_bad, ==, 1);
	}
	{
		/* Delimiters alone (empty frames) are neither frames nor faults. */
		g_autoptr(GBytes) zeros = g_bytes_new_take(g_malloc0(50), 50);
		GBytes *parts[] = {zeros, ping, zeros, pong, zeros};
		g_autoptr(GBytes) stream = concat(parts, G_N_ELEMENTS(parts));
		HealerLinkDecoderStats stats;
		g_autoptr(GPtrArray) frames = decode_all(stream, &stats);

		g_assert_cmpuint(frames->len, ==, 2);
		g_assert_cmpuint(stats.frames_bad, ==, 0);
	}
	g_rand_free(rand);
}

static void
test_overlong_garbage(void)
{
	GRand *rand = g_rand_new_with_seed(7);
	g_autoptr(GBytes) ping = healer_link_build_ping(42);
	g_autoptr(GBytes) delim = g_bytes_new_static("", 1);
	static const gsize lengths[] = {LINK_MAX_ENCODED - 1, LINK_MAX_ENCODED, LINK_MAX_ENCODED + 1,
	                                3 * LINK_MAX_ENCODED, 100000};

	for (gsize i = 0; i < G_N_ELEMENTS(lengths); i++) {
		g_autoptr(GBytes) g = random_bytes(rand, lengths[i], FALSE);
		GBytes *parts[] = {g, delim, ping, g, ping, ping};
		g_autoptr(GBytes) stream = concat(parts, G_N_ELEMENTS(parts));
		HealerLinkDecoderStats stats;
		g_autoptr(GPtrArray) frames = decode_all(stream, &stats);
		static const gsize one[] = {1};
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(stream, &len);
		g_autoptr(GPtrArray) bytewise = decode_chunked(data, len, one, 1, &stats);

		/* The ping after the delimiter and the last one; the one glued to garbage is lost. */
		g_assert_cmpuint(frames->len, ==, 2);
		for (guint j = 0; j < frames->len; j++) {
			guint32 nonce = 0;
			g_assert_true(healer_link_parse_ping(&((HealerLinkFrame *)g_ptr_array_index(frames, j))->frame,
			                                     &nonce, NULL));
			g_assert_cmpuint(nonce, ==, 42);
		}
		assert_same_frames(frames, bytewise);
		g_assert_cmpuint(stats.frames_bad, ==, 2);
	}
	g_rand_free(rand);
}

static void
test_bit_flips(void)
{
	g_autoptr(GBytes) a =
	        healer_link_build_begin(4096, (const guint8 *)"0123456789abcdef0123456789abcdef", 5, 1, 6, 512);
	g_autoptr(GBytes) b = healer_link_build_ack(1234);
	g_autoptr(GBytes) c = healer_link_build_pong(99);
	gsize alen = 0;
	const guint8 *adata = g_bytes_get_data(a, &alen);
	guint n = 0;

	for (gsize i = 0; i < alen; i++) {
		for (guint bit = 0; bit < 8; bit++) {
			guint8 *copy = g_memdup2(adata, alen);
			g_autoptr(GBytes) bad = NULL, stream = NULL;
			HealerLinkDecoderStats stats;
			g_autoptr(GPtrArray) frames = NULL;

			copy[i] ^= (guint8)(1u << bit);
			bad = g_bytes_new_take(copy, alen);
			{
				GBytes *parts[] = {bad, b, c};
				stream = concat(parts, G_N_ELEMENTS(parts));
			}
			frames = decode_all(stream, &stats);
			g_assert_cmpuint(stats.frames_bad, >=, 1);
			if (i == alen - 1) {
				/* The delimiter itself: the damaged frame swallows the next one. */
				g_assert_cmpuint(frames->len, ==, 1);
				g_assert_cmpuint(((HealerLinkFrame *)g_ptr_array_index(frames, 0))->frame.type, ==,
				                 LINK_PONG);
			} else {
				g_assert_cmpuint(frames->len, ==, 2);
				g_assert_cmpuint(((HealerLinkFrame *)g_ptr_array_index(frames, 0))->frame.type, ==,
				                 LINK_ACK);
			}
			n++;
		}
	}
	g_assert_cmpuint(n, ==, alen * 8);
}

static void
round_trip_body(const guint8 *body, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) b = healer_link_build_frame(0x5A, 0xA5, body, len, &error);
	g_autoptr(HealerLinkFrame) f = NULL;
	guint8 out[LINK_MAX_ENCODED];
	gsize n;

	g_assert_no_error(error);
	check_encoding(b, len);
	f = decode_one(b);
	g_assert_cmpuint(f->frame.type, ==, 0x5A);
	g_assert_cmpuint(f->frame.flags, ==, 0xA5);
	g_assert_cmpmem(f->frame.body, f->frame.body_len, body, len);
	/* The encoder into a fixed buffer gives the same bytes. */
	n = link_frame_encode(0x5A, 0xA5, body, len, out, sizeof out);
	g_assert_cmpuint(n, ==, g_bytes_get_size(b));
	g_assert_cmpmem(out, n, g_bytes_get_data(b, NULL), n);
}

static void
test_body_sizes(void)
{
	static const gsize sizes[] = {0, 1, 2, 252, 253, 254, 255, 256, 507, 508, 509, 762, 1000, 2047, 2048};
	guint8 *body = g_malloc(LINK_MAX_BODY);
	GRand *rand = g_rand_new_with_seed(5);

	for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
		gsize len = sizes[i];

		memset(body, 0, len);
		round_trip_body(body, len);
		memset(body, 0xFF, len);
		round_trip_body(body, len);
		for (gsize j = 0; j < len; j++)
			body[j] = (guint8)g_rand_int(rand);
		round_trip_body(body, len);
		/* A zero every 254 bytes, at the COBS block boundaries. */
		for (gsize j = 0; j < len; j++)
			body[j] = (j + 3) % 254 == 0 ? 0 : 0x42;
		round_trip_body(body, len);
	}
	/* Every length up to 600 with a pattern of zeros and non-zeros. */
	for (gsize len = 0; len <= 600; len++) {
		for (gsize j = 0; j < len; j++)
			body[j] = (guint8)((j * 37) % 11 == 0 ? 0 : j);
		round_trip_body(body, len);
	}
	g_rand_free(rand);
	g_free(body);
}

static void
test_oversize(void)
{
	guint8 *body = g_malloc0(LINK_MAX_BODY + 1);
	guint8 *out = g_malloc(LINK_MAX_ENCODED + 100);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) b = healer_link_build_frame(LINK_DATA, 0, body, LINK_MAX_BODY + 1, &error);

	g_assert_null(b);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_cmpuint(link_frame_encode(LINK_DATA, 0, body, LINK_MAX_BODY + 1, out, LINK_MAX_ENCODED + 100), ==, 0);
	/* A buffer one byte short. */
	g_assert_cmpuint(link_frame_encode(LINK_DATA, 0, body, 10, out, link_frame_encoded_size(10) - 1), ==, 0);
	g_assert_cmpuint(link_frame_encode(LINK_DATA, 0, body, LINK_MAX_BODY, out, LINK_MAX_ENCODED), >, 0);

	g_assert_null(healer_link_build_data(0, body, HEALER_LINK_MAX_DATA_PAYLOAD + 1, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	{
		g_autoptr(GBytes) ok = healer_link_build_data(0, body, HEALER_LINK_MAX_DATA_PAYLOAD, &error);
		g_assert_no_error(error);
		g_assert_nonnull(ok);
	}
	{
		g_autofree char *text = g_strnfill(LINK_MAX_BODY, 'x');
		g_assert_null(healer_link_build_log(LINK_LOG_INFO, text, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
		text[LINK_MAX_BODY - 1] = '\0';
		{
			g_autoptr(GBytes) ok = healer_link_build_log(LINK_LOG_INFO, text, &error);
			g_assert_no_error(error);
			g_assert_nonnull(ok);
		}
	}
	g_free(out);
	g_free(body);
}

/* A plain COBS encoder, independent of link-frame.c, for frames the encoder refuses to build. */
static GBytes *
cobs_frame(const guint8 *raw, gsize len)
{
	GByteArray *out = g_byte_array_new();
	gsize code_at = 0;
	guint8 code = 1;

	g_byte_array_append(out, &code, 1);
	for (gsize i = 0; i < len; i++) {
		if (raw[i] == 0) {
			out->data[code_at] = code;
			code_at = out->len;
			code = 1;
			g_byte_array_append(out, &code, 1);
			continue;
		}
		g_byte_array_append(out, &raw[i], 1);
		if (++code == 0xFF) {
			out->data[code_at] = code;
			code_at = out->len;
			code = 1;
			g_byte_array_append(out, &code, 1);
		}
	}
	out->data[code_at] = code;
	code = 0;
	g_byte_array_append(out, &code, 1);
	return g_byte_array_free_to_bytes(out);
}

static GBytes *
raw_frame(gsize body_len, guint8 fill)
{
	gsize len = LINK_FRAME_HEADER_SIZE + body_len + LINK_FRAME_CRC_SIZE;
	g_autofree guint8 *raw = g_malloc(len);
	guint32 crc;

	raw[0] = LINK_DATA;
	raw[1] = 0;
	memset(raw + 2, fill, body_len);
	crc = fw_crc32_update(0, raw, len - 4);
	for (int i = 0; i < 4; i++)
		raw[len - 4 + i] = (guint8)(crc >> (8 * i));
	return cobs_frame(raw, len);
}

/* A well-formed frame with a body over LINK_MAX_BODY is a length fault, whatever its CRC says. */
static void
test_decoder_rejects_oversize(void)
{
	g_autoptr(GBytes) ping = healer_link_build_ping(1);
	static const gsize lengths[] = {LINK_MAX_BODY + 1, LINK_MAX_BODY + 2, LINK_MAX_BODY + 300};

	/* The independent encoder agrees with link-frame.c where both work. */
	{
		guint8 body[LINK_MAX_BODY];
		g_autoptr(GBytes) mine = NULL, theirs = NULL;

		memset(body, 0x33, sizeof body);
		mine = raw_frame(LINK_MAX_BODY, 0x33);
		theirs = healer_link_build_frame(LINK_DATA, 0, body, sizeof body, NULL);
		g_assert_true(g_bytes_equal(mine, theirs));
	}
	for (gsize i = 0; i < G_N_ELEMENTS(lengths); i++) {
		g_autoptr(GBytes) big = raw_frame(lengths[i], 0x33);
		GBytes *parts[] = {big, ping};
		g_autoptr(GBytes) stream = concat(parts, G_N_ELEMENTS(parts));
		HealerLinkDecoderStats stats;
		g_autoptr(GPtrArray) frames = decode_all(stream, &stats);

		g_assert_cmpuint(frames->len, ==, 1);
		g_assert_cmpuint(((HealerLinkFrame *)g_ptr_array_index(frames, 0))->frame.type, ==, LINK_PING);
		g_assert_cmpuint(stats.frames_bad, ==, 1);
	}
}

/* A frame that decodes to fewer than header + CRC bytes, or ends inside a COBS block, is dropped. */
static void
test_decoder_short_frames(void)
{
	static const struct {
		gsize len;
		guint8 bytes[8];
	} cases[] = {
	        {3, {0x02, 0x41, 0x00}},                         /* one byte */
	        {6, {0x05, 0x41, 0x01, 0x02, 0x03, 0x00}},       /* four bytes */
	        {7, {0x06, 0x41, 0x01, 0x02, 0x03, 0x04, 0x00}}, /* five bytes */
	        {5, {0x09, 0x41, 0x01, 0x02, 0x00}},             /* a block cut by the delimiter */
	        {4, {0x01, 0x01, 0x01, 0x00}},                   /* two zeros */
	        {2, {0xFF, 0x00}},                               /* a full block's code and nothing else */
	};
	g_autoptr(GBytes) ping = healer_link_build_ping(5);

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GBytes) bad = g_bytes_new(cases[i].bytes, cases[i].len);
		GBytes *parts[] = {bad, ping};
		g_autoptr(GBytes) stream = concat(parts, G_N_ELEMENTS(parts));
		HealerLinkDecoderStats stats;
		g_autoptr(GPtrArray) frames = decode_all(stream, &stats);

		g_assert_cmpuint(frames->len, ==, 1);
		g_assert_cmpuint(stats.frames_bad, ==, 1);
	}
}

static void
test_decoder_reset(void)
{
	g_autoptr(HealerLinkDecoder) dec = healer_link_decoder_new();
	g_autoptr(GBytes) ping = healer_link_build_ping(3);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(ping, &len);
	HealerLinkDecoderStats stats;

	/* Half a frame, a reset, then a whole frame: the half is forgotten. */
	g_ptr_array_unref(healer_link_decoder_push(dec, data, len / 2));
	healer_link_decoder_reset(dec);
	{
		g_autoptr(GPtrArray) frames = healer_link_decoder_push(dec, data, len);
		g_assert_cmpuint(frames->len, ==, 1);
	}
	{
		g_autoptr(GPtrArray) frames = healer_link_decoder_push(dec, NULL, 0);
		g_assert_cmpuint(frames->len, ==, 0);
	}
	healer_link_decoder_get_stats(dec, &stats);
	g_assert_cmpuint(stats.frames_ok, ==, 1);
	g_assert_cmpuint(stats.frames_bad, ==, 0);
	g_assert_cmpuint(stats.bytes_in, ==, len + len / 2);
}

/* ---- parsers refuse ----------------------------------------------------------- */

static void
test_parse_errors(void)
{
	guint8 body[64] = {0};
	HealerLinkHello hello;
	HealerLinkStatus status;
	HealerLinkUpdateReady ready;
	HealerLinkBegin begin;
	HealerLinkData data;
	guint32 u32;
	gint32 s32;

#define FRAME(type, len) (&(link_frame_t){(type), 0, body, (len)})
#define EXPECT(call, message)                                                                                          \
	do {                                                                                                           \
		g_autoptr(GError) e_ = NULL;                                                                           \
		gboolean ok_ = (call);                                                                                 \
		expect_parse_error(ok_, e_, message);                                                                  \
	} while (0)

	/* Type and length. */
	EXPECT(healer_link_parse_ack(FRAME(LINK_PONG, 4), &u32, &e_),
	       "ACK frame: got a PONG frame (type 0x08) instead");
	EXPECT(healer_link_parse_ack(FRAME(0x77, 4), &u32, &e_), "ACK frame: got a frame of unknown type 0x77");
	EXPECT(healer_link_parse_ack(FRAME(LINK_ACK, 3), &u32, &e_), "ACK frame: body is 3 bytes, expected 4");
	EXPECT(healer_link_parse_ack(FRAME(LINK_ACK, 5), &u32, &e_), "ACK frame: body is 5 bytes, expected 4");
	EXPECT(healer_link_parse_pong(FRAME(LINK_PONG, 0), &u32, &e_), "PONG frame: body is 0 bytes");
	EXPECT(healer_link_parse_ping(FRAME(LINK_PING, 8), &u32, &e_), "PING frame: body is 8 bytes");
	EXPECT(healer_link_parse_finish(FRAME(LINK_FINISH, 1), &e_), "FINISH frame: body is 1 bytes, expected 0");
	EXPECT(healer_link_parse_describe_reply(FRAME(LINK_DESCRIBE_REPLY, 0), NULL, &e_),
	       "DESCRIBE_REPLY frame: body is 0 bytes, expected at least 1");
	EXPECT(healer_link_parse_log(FRAME(LINK_LOG, 0), NULL, &e_), "LOG frame: body is 0 bytes");
	EXPECT(healer_link_parse_error(FRAME(LINK_ERROR, 4), NULL, &e_), "ERROR frame: body is 4 bytes");
	EXPECT(healer_link_parse_data(FRAME(LINK_DATA, 4), &data, &e_),
	       "DATA frame: body is 4 bytes, expected at least 5");
	EXPECT(healer_link_parse_begin(FRAME(LINK_BEGIN, 41), &begin, &e_),
	       "BEGIN frame: body is 41 bytes, expected 42");
	EXPECT(healer_link_parse_status(FRAME(LINK_STATUS, 3), &status, &e_), "STATUS frame: body is 3 bytes");
	EXPECT(healer_link_parse_update_ready(FRAME(LINK_UPDATE_READY, 13), &ready, &e_),
	       "UPDATE_READY frame: body is 13 bytes, expected 12");

	/* HELLO: version, length, each enum, window, max_data. */
	{
		static const struct {
			guint offset;
			guint8 value;
			const char *message;
		} cases[] = {
		        {0, 2, "HELLO frame: protocol version 2, this host speaks 1"},
		        {1, 5, "HELLO frame: mode 5 is not defined"},
		        {2, 5, "HELLO frame: safe-mode reason 5 is not defined"},
		        {3, 7, "HELLO frame: reset reason 7 is not defined"},
		        {4, 8, "HELLO frame: LED 8 is not defined"},
		        {5, 0, "HELLO frame: window 0"},
		        {9, 0, "HELLO frame: max_data 0 is outside 1..2044"},
		};
		guint8 good[22] = {1, 0, 0, 0, 1, 4, 6, 0, 0, 2};

		memcpy(body, good, sizeof good);
		g_assert_true(healer_link_parse_hello(FRAME(LINK_HELLO, 22), &hello, NULL));
		EXPECT(healer_link_parse_hello(FRAME(LINK_HELLO, 21), &hello, &e_), "HELLO frame: body is 21 bytes");
		EXPECT(healer_link_parse_hello(FRAME(LINK_HELLO, 23), &hello, &e_), "HELLO frame: body is 23 bytes");
		for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
			memcpy(body, good, sizeof good);
			body[cases[i].offset] = cases[i].value;
			EXPECT(healer_link_parse_hello(FRAME(LINK_HELLO, 22), &hello, &e_), cases[i].message);
		}
		memcpy(body, good, sizeof good);
		body[8] = 0xFD; /* 2045 */
		body[9] = 0x07;
		EXPECT(healer_link_parse_hello(FRAME(LINK_HELLO, 22), &hello, &e_), "max_data 2045 is outside 1..2044");
		body[8] = 0xFC; /* 2044 */
		g_assert_true(healer_link_parse_hello(FRAME(LINK_HELLO, 22), &hello, NULL));
		g_assert_cmpuint(hello.max_data, ==, 2044);
	}

	/* STATUS */
	memset(body, 0, sizeof body);
	body[0] = 9;
	EXPECT(healer_link_parse_status(FRAME(LINK_STATUS, 4), &status, &e_), "STATUS frame: mode 9 is not defined");
	body[0] = 1;
	body[2] = 200;
	EXPECT(healer_link_parse_status(FRAME(LINK_STATUS, 4), &status, &e_), "STATUS frame: LED 200 is not defined");
	body[2] = 2;
	body[3] = 0x55; /* reserved: ignored */
	g_assert_true(healer_link_parse_status(FRAME(LINK_STATUS, 4), &status, NULL));

	/* LOG level */
	body[0] = 4;
	EXPECT(healer_link_parse_log(FRAME(LINK_LOG, 3), NULL, &e_), "LOG frame: level 4 is not defined");

	/* UPDATE_READY and UPDATE_RESULT status */
	memset(body, 0, sizeof body);
	body[0] = 1; /* status 1 */
	EXPECT(healer_link_parse_update_ready(FRAME(LINK_UPDATE_READY, 12), &ready, &e_),
	       "UPDATE_READY frame: status 1 is not defined");
	EXPECT(healer_link_parse_update_result(FRAME(LINK_UPDATE_RESULT, 4), &s32, &e_),
	       "UPDATE_RESULT frame: status 1 is not defined");
	body[0] = 0;
	body[8] = 0;
	body[10] = 4;
	EXPECT(healer_link_parse_update_ready(FRAME(LINK_UPDATE_READY, 12), &ready, &e_),
	       "UPDATE_READY frame: max_data 0 is outside");
	body[8] = 1;
	body[10] = 0;
	EXPECT(healer_link_parse_update_ready(FRAME(LINK_UPDATE_READY, 12), &ready, &e_),
	       "UPDATE_READY frame: window 0");
	/* -105 (too large) with a zero window is a valid refusal. */
	body[0] = 0x97;
	body[1] = body[2] = body[3] = 0xFF;
	g_assert_true(healer_link_parse_update_ready(FRAME(LINK_UPDATE_READY, 12), &ready, NULL));
	g_assert_cmpint(ready.status, ==, LINK_ERROR_TOO_LARGE);

	/* ERROR code must be negative */
	memset(body, 0, sizeof body);
	body[0] = 5;
	EXPECT(healer_link_parse_error(FRAME(LINK_ERROR, 5), NULL, &e_), "ERROR frame: code 5 is not an error");

	/* BEGIN */
	memset(body, 0, sizeof body);
	body[0] = 1;
	body[36] = 0;
	body[40] = 1;
	EXPECT(healer_link_parse_begin(FRAME(LINK_BEGIN, 42), &begin, &e_),
	       "BEGIN frame: module function 0 is outside 1..9");
	body[36] = 10;
	EXPECT(healer_link_parse_begin(FRAME(LINK_BEGIN, 42), &begin, &e_), "module function 10 is outside 1..9");
	body[36] = 5;
	body[0] = 0;
	EXPECT(healer_link_parse_begin(FRAME(LINK_BEGIN, 42), &begin, &e_), "BEGIN frame: module size 0");
	body[0] = 1;
	body[40] = 0;
	EXPECT(healer_link_parse_begin(FRAME(LINK_BEGIN, 42), &begin, &e_), "BEGIN frame: max_data 0");
	body[40] = 1;
	g_assert_true(healer_link_parse_begin(FRAME(LINK_BEGIN, 42), &begin, NULL));

	/* DATA past 4 GiB */
	memset(body, 0xFF, 4);
	EXPECT(healer_link_parse_data(FRAME(LINK_DATA, 6), &data, &e_),
	       "DATA frame: 2 bytes at offset 4294967295 run past");
	body[0] = 0xFE;
	g_assert_true(healer_link_parse_data(FRAME(LINK_DATA, 5), &data, NULL));
	g_assert_cmpuint(data.offset, ==, 0xFFFFFFFE);

	/* An unknown frame type is named by number in parsers' messages and has no name. */
	g_assert_null(healer_link_frame_type_to_string(0x00));
	g_assert_null(healer_link_frame_type_to_string(0x0A));
	g_assert_null(healer_link_frame_type_to_string(0x49));
#undef FRAME
#undef EXPECT
}

static void
test_names(void)
{
	static const char *const modes[] = {"normal", "safe-mode", "updating", "listening", "dfu"};
	static const char *const leds[] = {"off",           "breathing-cyan",  "breathing-magenta", "blinking-magenta",
	                                   "blinking-blue", "blinking-yellow", "red-sos",           "breathing-green"};
	static const char *const resets[] = {"unknown", "power-on", "pin", "update", "requested", "watchdog", "panic"};
	static const char *const safe[] = {"none", "dependencies", "requested", "no-application",
	                                   "application-invalid"};
	static const struct {
		gint32 code;
		const char *name;
	} errors[] = {
	        {-1320, "generic"}, {-1330, "integrity"}, {-1340, "dependency"},
	        {-1350, "address"}, {-1360, "platform"},  {-1370, "format"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(modes); i++)
		g_assert_cmpstr(healer_link_mode_to_string(i), ==, modes[i]);
	g_assert_null(healer_link_mode_to_string(G_N_ELEMENTS(modes)));
	for (guint i = 0; i < G_N_ELEMENTS(leds); i++)
		g_assert_cmpstr(healer_link_led_to_string(i), ==, leds[i]);
	g_assert_null(healer_link_led_to_string(G_N_ELEMENTS(leds)));
	for (guint i = 0; i < G_N_ELEMENTS(resets); i++)
		g_assert_cmpstr(healer_link_reset_reason_to_string(i), ==, resets[i]);
	g_assert_null(healer_link_reset_reason_to_string(G_N_ELEMENTS(resets)));
	for (guint i = 0; i < G_N_ELEMENTS(safe); i++)
		g_assert_cmpstr(healer_link_safe_mode_reason_to_string(i), ==, safe[i]);
	g_assert_null(healer_link_safe_mode_reason_to_string(G_N_ELEMENTS(safe)));
	g_assert_null(healer_link_safe_mode_reason_to_string(G_MAXUINT));
	for (guint i = 0; i < G_N_ELEMENTS(errors); i++) {
		g_autofree char *s = healer_link_status_to_string(errors[i].code);
		g_assert_cmpstr(healer_link_update_error_to_string(errors[i].code), ==, errors[i].name);
		g_assert_cmpstr(s, ==, errors[i].name);
	}
	g_assert_null(healer_link_update_error_to_string(0));
	g_assert_null(healer_link_update_error_to_string(-1331));
	{
		g_autofree char *ok = healer_link_status_to_string(0);
		g_autofree char *tl = healer_link_status_to_string(LINK_ERROR_TOO_LARGE);
		g_autofree char *other = healer_link_status_to_string(-7);
		g_assert_cmpstr(ok, ==, "ok");
		g_assert_cmpstr(tl, ==, "too-large");
		g_assert_cmpstr(other, ==, "error -7");
	}
	g_assert_cmpstr(healer_link_log_level_to_string(LINK_LOG_DEBUG), ==, "debug");
	g_assert_cmpstr(healer_link_frame_type_to_string(LINK_UPDATE_READY), ==, "UPDATE_READY");
	g_assert_cmpstr(healer_link_frame_type_to_string(LINK_HELLO_REQUEST), ==, "HELLO_REQUEST");
	g_assert_true(healer_link_frame_type_is_from_device(LINK_ERROR));
	g_assert_false(healer_link_frame_type_is_from_device(LINK_DESCRIBE));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/link-codec/host-messages", test_host_messages);
	g_test_add_func("/link-codec/device-messages", test_device_messages);
	g_test_add_func("/link-codec/chunk-splits", test_chunk_splits);
	g_test_add_func("/link-codec/garbage", test_garbage);
	g_test_add_func("/link-codec/overlong-garbage", test_overlong_garbage);
	g_test_add_func("/link-codec/bit-flips", test_bit_flips);
	g_test_add_func("/link-codec/body-sizes", test_body_sizes);
	g_test_add_func("/link-codec/oversize", test_oversize);
	g_test_add_func("/link-codec/decoder-rejects-oversize", test_decoder_rejects_oversize);
	g_test_add_func("/link-codec/decoder-short-frames", test_decoder_short_frames);
	g_test_add_func("/link-codec/decoder-reset", test_decoder_reset);
	g_test_add_func("/link-codec/parse-errors", test_parse_errors);
	g_test_add_func("/link-codec/names", test_names);
	return g_test_run();
}
