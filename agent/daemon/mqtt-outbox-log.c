#include "mqtt-outbox-log.h"

#include <string.h>

#include "healer-error.h"
#include "module-checksums.h"

static guint32
read_u32(const guint8 *p)
{
	return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static guint64
read_u64(const guint8 *p)
{
	return (guint64)read_u32(p) | (guint64)read_u32(p + 4) << 32;
}

static void
add_u32(GByteArray *out, guint32 v)
{
	guint8 b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};

	g_byte_array_append(out, b, sizeof b);
}

static void
add_u64(GByteArray *out, guint64 v)
{
	add_u32(out, (guint32)v);
	add_u32(out, (guint32)(v >> 32));
}

static gboolean
all_zero(const guint8 *data, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (data[i] != 0)
			return FALSE;
	}
	return TRUE;
}

gboolean
healer_mqtt_outbox_log_parse_header(const char *name, const guint8 *data, gsize len, GError **error)
{
	guint32 version;

	if (len < HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE || memcmp(data, HEALER_MQTT_OUTBOX_LOG_MAGIC, 4) != 0)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: offset 0: not an MQTT outbox (no \"%s\" header)", name,
		                   HEALER_MQTT_OUTBOX_LOG_MAGIC);
	version = read_u32(data + 4);
	if (version != HEALER_MQTT_OUTBOX_LOG_VERSION)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: offset 4: format version %u, this healerd reads version %u", name, version,
		                   HEALER_MQTT_OUTBOX_LOG_VERSION);
	return TRUE;
}

gboolean
healer_mqtt_outbox_log_parse_window(const char *name, const guint8 *data, gsize len, guint64 base, guint64 file_len,
                                    guint64 *prev_seq, GArray *records, guint64 *next, const char **torn_reason,
                                    GError **error)
{
	guint64 off = base, end = base + len;
	gboolean at_eof = end >= file_len;

	*torn_reason = NULL;
	while (off < end) {
		const guint8 *rec = data + (off - base);
		guint64 rest = file_len - off;    /* to the end of the file */
		gsize avail = (gsize)(end - off); /* in the window */
		guint32 payload_len;
		guint64 seq;
		guint32 crc;

		/* Zeros up to the window's end: torn if they go on to the end of the file (the next window
		 * says, when this one does not reach it). */
		if (all_zero(rec, avail)) {
			if (at_eof)
				*torn_reason = "zero bytes where a record should begin";
			break;
		}
		if (avail < HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE) {
			if (at_eof)
				*torn_reason = "the file ends inside a record header";
			break;
		}
		payload_len = read_u32(rec);
		seq = read_u64(rec + 4);
		if (healer_crc32(rec, 12) != read_u32(rec + 12))
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: offset %" G_GUINT64_FORMAT
			                   ": record header damaged (its CRC-32 does not match)",
			                   name, off);
		if (payload_len > HEALER_MQTT_OUTBOX_MAX_PAYLOAD)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: offset %" G_GUINT64_FORMAT ": record of %u bytes, more than %u", name,
			                   off, payload_len, HEALER_MQTT_OUTBOX_MAX_PAYLOAD);
		if (seq <= *prev_seq)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: offset %" G_GUINT64_FORMAT ": record %" G_GUINT64_FORMAT
			                   " after record %" G_GUINT64_FORMAT " (sequence numbers only grow, from 1)",
			                   name, off, seq, *prev_seq);
		if (rest < (guint64)payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD) {
			*torn_reason = "the file ends inside the record";
			break;
		}
		/* The record runs past the window: the next one starts with it. */
		if (avail < (gsize)payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD)
			break;
		crc = healer_crc32(rec, HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + payload_len);
		if (crc != read_u32(rec + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + payload_len)) {
			if (rest == (guint64)payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD) {
				*torn_reason = "the last record fails its CRC-32";
				break;
			}
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: offset %" G_GUINT64_FORMAT ": record %" G_GUINT64_FORMAT
			                   " damaged (its CRC-32 does not match)",
			                   name, off, seq);
		}
		g_array_append_val(records, ((HealerMqttOutboxLogRecord){seq, (gsize)off, payload_len}));
		*prev_seq = seq;
		off += payload_len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
	}
	*next = off;
	return TRUE;
}

gboolean
healer_mqtt_outbox_log_parse(const char *name, const guint8 *data, gsize len, GArray *records, gsize *good_len,
                             const char **torn_reason, GError **error)
{
	guint64 prev_seq = 0, next = HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE;

	*good_len = 0;
	*torn_reason = NULL;
	if (!healer_mqtt_outbox_log_parse_header(name, data, len, error))
		return FALSE;
	if (!healer_mqtt_outbox_log_parse_window(
	            name, data + HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE, len - HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE,
	            HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE, len, &prev_seq, records, &next, torn_reason, error))
		return FALSE;
	*good_len = (gsize)next;
	return TRUE;
}

gboolean
healer_mqtt_outbox_log_check_record(const char *name, guint64 offset, const guint8 *data, gsize len, guint64 seq,
                                    GError **error)
{
	gsize payload_len;

	if (len < HEALER_MQTT_OUTBOX_RECORD_OVERHEAD || healer_crc32(data, 12) != read_u32(data + 12))
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: offset %" G_GUINT64_FORMAT ": record %" G_GUINT64_FORMAT
		                   " changed on disk (its header's CRC-32 does not match)",
		                   name, offset, seq);
	payload_len = len - HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
	if (read_u32(data) != payload_len || read_u64(data + 4) != seq)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: offset %" G_GUINT64_FORMAT ": record %" G_GUINT64_FORMAT
		                   " of %u bytes where record %" G_GUINT64_FORMAT " of %" G_GSIZE_FORMAT
		                   " bytes was written",
		                   name, offset, read_u64(data + 4), read_u32(data), seq, payload_len);
	if (healer_crc32(data, HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + payload_len) !=
	    read_u32(data + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + payload_len))
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: offset %" G_GUINT64_FORMAT ": record %" G_GUINT64_FORMAT
		                   " changed on disk (its CRC-32 does not match)",
		                   name, offset, seq);
	return TRUE;
}

void
healer_mqtt_outbox_log_add_header(GByteArray *out)
{
	g_byte_array_append(out, (const guint8 *)HEALER_MQTT_OUTBOX_LOG_MAGIC, 4);
	add_u32(out, HEALER_MQTT_OUTBOX_LOG_VERSION);
}

void
healer_mqtt_outbox_log_add_record(GByteArray *out, guint64 seq, const char *payload, gsize len)
{
	guint start = out->len;
	guint32 header_crc;

	g_return_if_fail(len <= HEALER_MQTT_OUTBOX_MAX_PAYLOAD && seq >= 1);
	add_u32(out, (guint32)len);
	add_u64(out, seq);
	header_crc = healer_crc32(out->data + start, 12);
	add_u32(out, header_crc);
	if (len > 0)
		g_byte_array_append(out, (const guint8 *)payload, (guint)len);
	add_u32(out, healer_crc32(out->data + start, HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE + len));
}

/* A decimal number, digits only, within 64 bits. */
static gboolean
parse_number(const char *s, gsize len, guint64 *out)
{
	guint64 v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		guint d;

		if (!g_ascii_isdigit(s[i]))
			return FALSE;
		d = (guint)(s[i] - '0');
		if (v > (G_MAXUINT64 - d) / 10)
			return FALSE;
		v = v * 10 + d;
	}
	*out = v;
	return TRUE;
}

gboolean
healer_mqtt_outbox_acked_parse(const char *name, const char *text, gsize len, guint64 *watermark, GArray *above,
                               GError **error)
{
	gsize off = 0;
	guint line = 0;
	guint64 prev = 0;

	if (len == 0)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: offset 0: empty, expected a sequence number",
		                   name);
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		gsize line_len = (nl != NULL ? (gsize)(nl - text) : len) - off;
		guint64 v;

		if (!parse_number(text + off, line_len, &v))
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: offset %" G_GSIZE_FORMAT
			                   ": expected a sequence number (decimal digits) on a line",
			                   name, off);
		if (line == 0) {
			*watermark = v;
		} else if (v <= prev) {
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "%s: offset %" G_GSIZE_FORMAT ": %" G_GUINT64_FORMAT
			                   " after %" G_GUINT64_FORMAT
			                   " (the records acknowledged above the first line's ascend from above it)",
			                   name, off, v, prev);
		} else {
			g_array_append_val(above, v);
		}
		prev = v;
		line++;
		off += line_len + 1;
	}
	return TRUE;
}

char *
healer_mqtt_outbox_acked_format(guint64 watermark, const guint64 *above, guint n_above)
{
	GString *out = g_string_new(NULL);

	g_string_append_printf(out, "%" G_GUINT64_FORMAT "\n", watermark);
	for (guint i = 0; i < n_above; i++)
		g_string_append_printf(out, "%" G_GUINT64_FORMAT "\n", above[i]);
	return g_string_free(out, FALSE);
}
