/*
 * The link decoder on arbitrary bytes (what a serial line delivers), fed in
 * chunk sizes the first byte chooses, then every typed parser on every
 * frame it yields.  Checked on the way:
 *
 *   - the chunked HealerLinkDecoder and one link_decoder_t fed the whole
 *     input yield the same frames and the same counters;
 *   - no frame has a body over LINK_MAX_BODY;
 *   - each frame re-encoded with link_frame_encode decodes to itself;
 *   - a parser succeeds only on its own frame type, and fails with an error
 *     otherwise; what HELLO, BEGIN, DATA, ACK, PING, PONG and UPDATE_RESULT
 *     parse builds back to the same frame.
 *
 * First byte: 0 = the whole input at once; 1..127 = chunks of that size;
 * 128..255 = pseudo-random sizes from 1 to (byte - 127) * 8.
 */
#include <string.h>

#include "fuzz-target.h"

#include "healer-error.h"
#include "link-codec.h"

static gsize
next_chunk(guint8 selector, guint32 *state, gsize left)
{
	gsize n;

	if (selector == 0)
		return left;
	if (selector < 128) {
		n = selector;
	} else {
		*state = *state * 1103515245u + 12345u;
		n = 1 + (*state >> 8) % ((gsize)(selector - 127) * 8);
	}
	return MIN(n, left);
}

static void
check_rebuilt(const link_frame_t *f, GBytes *rebuilt)
{
	g_autoptr(HealerLinkDecoder) dec = healer_link_decoder_new();
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(rebuilt, &len);
	g_autoptr(GPtrArray) frames = healer_link_decoder_push(dec, data, len);
	const HealerLinkFrame *again;

	g_assert(frames->len == 1);
	again = g_ptr_array_index(frames, 0);
	g_assert(again->frame.type == f->type);
	/* Builders write flags 0. */
	g_assert(again->frame.body_len == f->body_len);
	g_assert(f->body_len == 0 || memcmp(again->frame.body, f->body, f->body_len) == 0);
}

/* Expects exactly the parser of the frame's own type to accept it (if any does). */
#define PARSED(call, own_type)                                                                                         \
	({                                                                                                             \
		g_autoptr(GError) error_ = NULL;                                                                       \
		gboolean ok_ = (call);                                                                                 \
		if (ok_)                                                                                               \
			g_assert(error_ == NULL && f->type == (own_type));                                             \
		else                                                                                                   \
			g_assert(error_ != NULL && error_->domain == HEALER_ERROR &&                                   \
			         error_->code == HEALER_ERROR_INVALID_DATA && error_->message[0] != '\0');             \
		ok_;                                                                                                   \
	})

static void
parse_everything(const link_frame_t *f)
{
	HealerLinkHello hello;
	HealerLinkStatus status;
	HealerLinkUpdateReady ready;
	HealerLinkBegin begin;
	HealerLinkData data;
	guint32 u32 = 0;
	gint32 s32 = 0;
	gboolean plain = f->flags == 0;

	if (PARSED(healer_link_parse_hello(f, &hello, &error_), LINK_HELLO) && plain) {
		g_autoptr(GBytes) b = healer_link_build_hello(&hello);
		check_rebuilt(f, b);
		g_assert(healer_link_mode_to_string(hello.mode) != NULL);
		g_assert(healer_link_led_to_string(hello.led) != NULL);
		g_assert(healer_link_reset_reason_to_string(hello.reset_reason) != NULL);
		g_assert(healer_link_safe_mode_reason_to_string(hello.safe_mode_reason) != NULL);
	}
	{
		g_auto(HealerLinkDescribeReply) reply = {0};
		if (PARSED(healer_link_parse_describe_reply(f, &reply, &error_), LINK_DESCRIBE_REPLY))
			g_assert(reply.len == f->body_len && reply.json[reply.len] == '\0');
	}
	if (PARSED(healer_link_parse_status(f, &status, &error_), LINK_STATUS))
		g_assert(healer_link_mode_to_string(status.mode) != NULL);
	{
		g_auto(HealerLinkLog) log = {0};
		if (PARSED(healer_link_parse_log(f, &log, &error_), LINK_LOG))
			g_assert(g_utf8_validate(log.text, -1, NULL));
	}
	if (PARSED(healer_link_parse_update_ready(f, &ready, &error_), LINK_UPDATE_READY)) {
		g_autofree char *s = healer_link_status_to_string(ready.status);
		g_assert(s != NULL);
	}
	if (PARSED(healer_link_parse_ack(f, &u32, &error_), LINK_ACK) && plain) {
		g_autoptr(GBytes) b = healer_link_build_ack(u32);
		check_rebuilt(f, b);
	}
	if (PARSED(healer_link_parse_update_result(f, &s32, &error_), LINK_UPDATE_RESULT) && plain) {
		g_autoptr(GBytes) b = healer_link_build_update_result(s32);
		check_rebuilt(f, b);
	}
	if (PARSED(healer_link_parse_pong(f, &u32, &error_), LINK_PONG) && plain) {
		g_autoptr(GBytes) b = healer_link_build_pong(u32);
		check_rebuilt(f, b);
	}
	{
		g_auto(HealerLinkErrorReply) reply = {0};
		if (PARSED(healer_link_parse_error(f, &reply, &error_), LINK_ERROR))
			g_assert(reply.code < 0 && g_utf8_validate(reply.text, -1, NULL));
	}
	(void)PARSED(healer_link_parse_describe(f, &error_), LINK_DESCRIBE);
	if (PARSED(healer_link_parse_begin(f, &begin, &error_), LINK_BEGIN) && plain) {
		g_autoptr(GBytes) b = healer_link_build_begin(begin.size, begin.sha256, begin.function, begin.index,
		                                              begin.version, begin.max_data);
		check_rebuilt(f, b);
	}
	if (PARSED(healer_link_parse_data(f, &data, &error_), LINK_DATA) && plain) {
		g_autoptr(GBytes) b = healer_link_build_data(data.offset, data.data, data.len, NULL);
		g_assert(b != NULL);
		check_rebuilt(f, b);
	}
	(void)PARSED(healer_link_parse_finish(f, &error_), LINK_FINISH);
	(void)PARSED(healer_link_parse_reset(f, &error_), LINK_RESET);
	if (PARSED(healer_link_parse_ping(f, &u32, &error_), LINK_PING) && plain) {
		g_autoptr(GBytes) b = healer_link_build_ping(u32);
		check_rebuilt(f, b);
	}
	(void)PARSED(healer_link_parse_cancel(f, &error_), LINK_CANCEL);
	(void)PARSED(healer_link_parse_hello_request(f, &error_), LINK_HELLO_REQUEST);
	(void)healer_link_frame_type_to_string(f->type);
}

/* The frame, encoded again, decodes to the same type, flags and body. */
static void
check_reencode(const link_frame_t *f)
{
	static guint8 out[LINK_MAX_ENCODED];
	static link_decoder_t dec;
	link_frame_t again;
	size_t n = link_frame_encode(f->type, f->flags, f->body, f->body_len, out, sizeof out);
	size_t used;
	int got = 0;

	g_assert(n > 0 && n <= sizeof out && out[n - 1] == 0 && memchr(out, 0, n - 1) == NULL);
	link_decoder_init(&dec);
	used = link_decoder_push(&dec, out, n, &again, &got);
	g_assert(got && used == n);
	g_assert(again.type == f->type && again.flags == f->flags && again.body_len == f->body_len);
	g_assert(f->body_len == 0 || memcmp(again.body, f->body, f->body_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	/* 2 KiB of state: static, not on the stack. */
	static link_decoder_t whole;
	g_autoptr(HealerLinkDecoder) dec = NULL;
	g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func((GDestroyNotify)healer_link_frame_free);
	HealerLinkDecoderStats stats;
	guint32 state;
	guint8 selector;
	gsize pos = 0;
	guint i = 0;

	if (!initialized) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}
	if (size == 0)
		return 0;
	selector = data[0];
	state = selector;
	data++;
	size--;

	dec = healer_link_decoder_new();
	while (pos < size) {
		gsize n = next_chunk(selector, &state, size - pos);
		g_autoptr(GPtrArray) got = healer_link_decoder_push(dec, data + pos, n);

		pos += n;
		for (guint j = 0; j < got->len; j++)
			g_ptr_array_add(frames, g_ptr_array_steal_index(got, j--));
	}
	healer_link_decoder_get_stats(dec, &stats);
	g_assert(stats.bytes_in == size);
	g_assert(stats.frames_ok == frames->len);

	/* The same bytes in one piece, through the bare decoder: the same frames, the same counts. */
	link_decoder_init(&whole);
	pos = 0;
	while (pos < size) {
		link_frame_t f;
		int got = 0;
		size_t used = link_decoder_push(&whole, data + pos, size - pos, &f, &got);

		g_assert(used > 0 && used <= size - pos);
		pos += used;
		if (!got)
			continue;
		g_assert(i < frames->len);
		{
			const HealerLinkFrame *mine = g_ptr_array_index(frames, i++);
			g_assert(mine->frame.type == f.type && mine->frame.flags == f.flags);
			g_assert(mine->frame.body_len == f.body_len);
			g_assert(f.body_len == 0 || memcmp(mine->frame.body, f.body, f.body_len) == 0);
		}
	}
	g_assert(i == frames->len);
	g_assert(whole.frames_ok == stats.frames_ok && whole.frames_bad == stats.frames_bad &&
	         whole.bytes_dropped == stats.bytes_dropped);

	for (i = 0; i < frames->len; i++) {
		const HealerLinkFrame *f = g_ptr_array_index(frames, i);

		g_assert(f->frame.body_len <= LINK_MAX_BODY);
		check_reencode(&f->frame);
		parse_everything(&f->frame);
	}
	return 0;
}
