/*
 * The MQTT outbox's files on arbitrary bytes (agent/daemon/mqtt-outbox-log.c): the same input is
 * read as DIR/outbox.log and as DIR/acked.  outbox.log: the good records, written again, are the
 * input's bytes up to where they end; a tail cut off as torn is one by a rule written apart from
 * the parser's; a refusal names the file and the offset where the good records end (or the
 * header's field).  acked: an accepted file, written again, is the input (its last newline
 * optional); a refusal names the file and an offset.
 */
#include "fuzz-target.h"

#include <stdio.h>
#include <string.h>

#include "healer-error.h"
#include "module-checksums.h"
#include "mqtt-outbox-log.h"

static guint32
le32(const uint8_t *p)
{
	return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

/* What only a torn last record leaves, by the rule of mqtt-outbox-log.h. */
static gboolean
is_torn_tail(const uint8_t *tail, size_t len, guint64 last_seq)
{
	guint64 seq;
	guint32 payload_len;
	gboolean zeros = TRUE;

	for (size_t i = 0; i < len; i++)
		zeros = zeros && tail[i] == 0;
	if (zeros || len < HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE)
		return TRUE;
	payload_len = le32(tail);
	seq = (guint64)le32(tail + 4) | (guint64)le32(tail + 8) << 32;
	if (healer_crc32(tail, 12) != le32(tail + 12) || payload_len > HEALER_MQTT_OUTBOX_MAX_PAYLOAD ||
	    seq <= last_seq)
		return FALSE;
	if ((size_t)payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD > len)
		return TRUE;
	return (size_t)payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD == len &&
	       healer_crc32(tail, HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + payload_len) !=
	               le32(tail + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + payload_len);
}

static void
check_log(const uint8_t *data, size_t size)
{
	g_autoptr(GArray) records = g_array_new(FALSE, FALSE, sizeof(HealerMqttOutboxLogRecord));
	g_autoptr(GArray) again = g_array_new(FALSE, FALSE, sizeof(HealerMqttOutboxLogRecord));
	g_autoptr(GByteArray) written = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	const char *torn = "unset";
	gsize good_len = 1, good_again = 1;
	gsize end = HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE;
	guint64 last_seq = 0;
	gboolean ok;

	ok = healer_mqtt_outbox_log_parse("fuzz/outbox.log", data, size, records, &good_len, &torn, &error);
	for (guint i = 0; i < records->len; i++) {
		HealerMqttOutboxLogRecord *r = &g_array_index(records, HealerMqttOutboxLogRecord, i);
		g_assert_cmpuint(r->offset, ==, end);
		g_assert_cmpuint(r->seq, >, last_seq);
		g_assert_cmpuint(r->payload_len, <=, HEALER_MQTT_OUTBOX_MAX_PAYLOAD);
		end += r->payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
		g_assert_cmpuint(end, <=, size);
		last_seq = r->seq;
		/* What the outbox reads back when it publishes: a good record passes as itself only. */
		g_assert_true(healer_mqtt_outbox_log_check_record("fuzz/outbox.log", r->offset, data + r->offset,
		                                                  r->payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD,
		                                                  r->seq, NULL));
		g_assert_false(healer_mqtt_outbox_log_check_record("fuzz/outbox.log", r->offset, data + r->offset,
		                                                   r->payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD,
		                                                   r->seq + 1, NULL));
	}
	/* Any bytes at all, read back as a record: refused with a message or accepted, never a crash. */
	if (size > HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE) {
		g_autoptr(GError) back = NULL;

		if (!healer_mqtt_outbox_log_check_record("fuzz/outbox.log", 8, data + 8, size - 8, 1, &back))
			g_assert_true(g_str_has_prefix(back->message, "fuzz/outbox.log: offset 8: record "));
	}
	if (!ok) {
		char offset[64];

		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_true(g_str_has_prefix(error->message, "fuzz/outbox.log: offset "));
		if (size >= HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE && memcmp(data, HEALER_MQTT_OUTBOX_LOG_MAGIC, 4) == 0 &&
		    le32(data + 4) == HEALER_MQTT_OUTBOX_LOG_VERSION) {
			/* The damage is the record after the good ones, and it is no torn tail. */
			snprintf(offset, sizeof offset, "fuzz/outbox.log: offset %" G_GSIZE_FORMAT ": ", end);
			g_assert_true(g_str_has_prefix(error->message, offset));
			g_assert_cmpuint(end, <, size);
			g_assert_false(is_torn_tail(data + end, size - end, last_seq));
		} else {
			g_assert_cmpuint(records->len, ==, 0);
		}
		return;
	}
	g_assert_no_error(error);
	g_assert_cmpuint(good_len, ==, end);
	g_assert_cmpuint(good_len, <=, size);
	g_assert_true((good_len < size) == (torn != NULL));
	if (good_len < size)
		g_assert_true(is_torn_tail(data + good_len, size - good_len, last_seq));

	/* Written again, the good records are the input's bytes. */
	healer_mqtt_outbox_log_add_header(written);
	for (guint i = 0; i < records->len; i++) {
		HealerMqttOutboxLogRecord *r = &g_array_index(records, HealerMqttOutboxLogRecord, i);
		healer_mqtt_outbox_log_add_record(
		        written, r->seq, (const char *)data + r->offset + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE,
		        r->payload_len);
	}
	g_assert_cmpmem(written->data, written->len, data, good_len);

	/* Cut where the parser cut, the file reads the same, whole. */
	g_assert_true(healer_mqtt_outbox_log_parse("fuzz/outbox.log", data, good_len, again, &good_again, &torn, NULL));
	g_assert_cmpuint(good_again, ==, good_len);
	g_assert_null(torn);
	g_assert_cmpuint(again->len, ==, records->len);
}

static void
check_acked(const uint8_t *data, size_t size)
{
	g_autoptr(GArray) above = g_array_new(FALSE, FALSE, sizeof(guint64));
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	guint64 watermark = 0;
	gsize text_len;

	if (!healer_mqtt_outbox_acked_parse("fuzz/acked", (const char *)data, size, &watermark, above, &error)) {
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_true(g_str_has_prefix(error->message, "fuzz/acked: offset "));
		return;
	}
	g_assert_no_error(error);
	for (guint i = 0; i < above->len; i++)
		g_assert_cmpuint(g_array_index(above, guint64, i), >,
		                 i == 0 ? watermark : g_array_index(above, guint64, i - 1));
	text = healer_mqtt_outbox_acked_format(watermark, (const guint64 *)(gpointer)above->data, above->len);
	text_len = strlen(text);
	g_assert_true(text_len == size || (text_len == size + 1 && data[size - 1] != '\n'));
	g_assert_cmpmem(text, size, data, size);
}

/*
 * Read a window at a time, as healer_mqtt_outbox_open() reads the file (with windows of a few bytes
 * here, so that records, headers and zeros straddle them), the file gives exactly what one parse of
 * it gives: the same records, the same end, the same torn reason or the same error.
 */
static void
check_windows(const uint8_t *data, size_t size)
{
	g_autoptr(GArray) whole = g_array_new(FALSE, FALSE, sizeof(HealerMqttOutboxLogRecord));
	g_autoptr(GArray) pieces = g_array_new(FALSE, FALSE, sizeof(HealerMqttOutboxLogRecord));
	g_autoptr(GError) whole_error = NULL;
	g_autoptr(GError) error = NULL;
	const char *whole_torn = NULL, *torn = NULL;
	gsize whole_good = 0;
	gsize window = size > 0 ? 1 + data[size - 1] % 48 : 1;
	guint64 off = HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE, prev_seq = 0;
	gboolean whole_ok, ok;

	whole_ok = healer_mqtt_outbox_log_parse("fuzz/outbox.log", data, size, whole, &whole_good, &whole_torn,
	                                        &whole_error);
	ok = healer_mqtt_outbox_log_parse_header("fuzz/outbox.log", data, size, &error);
	while (ok && off < size && torn == NULL) {
		gsize want = (gsize)MIN((guint64)window, size - off);
		guint64 next = off;

		ok = healer_mqtt_outbox_log_parse_window("fuzz/outbox.log", data + off, want, off, size, &prev_seq,
		                                         pieces, &next, &torn, &error);
		g_assert_cmpuint(next, >=, off);
		if (ok && next == off && torn == NULL)
			window *= 2;
		off = next;
	}
	g_assert_cmpint(ok, ==, whole_ok);
	if (!ok) {
		g_assert_cmpstr(error->message, ==, whole_error->message);
	} else {
		g_assert_cmpuint(off, ==, whole_good);
		g_assert_cmpstr(torn, ==, whole_torn);
	}
	g_assert_cmpuint(pieces->len, ==, whole->len);
	if (whole->len > 0)
		g_assert_cmpmem(pieces->data, pieces->len * sizeof(HealerMqttOutboxLogRecord), whole->data,
		                whole->len * sizeof(HealerMqttOutboxLogRecord));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;

	if (!initialized) {
		/* A critical or warning from the parsers is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}
	check_log(data, size);
	check_windows(data, size);
	check_acked(data, size);
	return 0;
}
