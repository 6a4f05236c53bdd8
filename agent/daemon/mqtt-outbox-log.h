/*
 * The MQTT outbox's two files as bytes (mqtt-outbox.c does the disk): pure functions, so the
 * parsers can be fuzzed on their own (tests/fuzz/fuzz-mqtt-outbox.c).
 *
 * DIR/outbox.log: an 8-byte file header, "HOBX" and the format version (u32 LE, 1), then the
 * records back to back, oldest first, their sequence numbers strictly increasing:
 *
 *     offset  size  field
 *          0     4  payload length, u32 LE (at most HEALER_MQTT_OUTBOX_MAX_PAYLOAD)
 *          4     8  sequence number, u64 LE (>= 1)
 *         12     4  CRC-32 of bytes 0..11 (the header's own check: see below)
 *         16   len  payload
 *     16+len     4  CRC-32 of bytes 0..16+len-1 (all of the record before it)
 *
 * A record is written by one pwrite() and fdatasync()ed before the next, so only the last one can
 * be torn.  The header's own CRC tells a torn last record (its header intact, the file ending
 * inside its declared length) from a damaged length in the middle of the file, which would
 * otherwise read as a record running past the end and take every later record with it.  Torn,
 * and cut off at open: a tail shorter than a record header, a tail of zero bytes only (what
 * some file systems leave of an append a power cut interrupted), a record whose intact header
 * declares more bytes than the file holds, and a last record that fails its CRC while ending
 * exactly at the end of the file.  Every other fault is damage.
 *
 * DIR/acked: text, the watermark (the highest sequence number below which every record was
 * acknowledged or dropped) on the first line, then one line per record acknowledged above the
 * watermark (out of order), ascending.  Written whole, atomically.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_MQTT_OUTBOX_LOG_MAGIC       "HOBX"
#define HEALER_MQTT_OUTBOX_LOG_VERSION     1
#define HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE 8
/* A record's bytes before its payload: length, seq, header CRC. */
#define HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE 16
/* What a record adds to its payload: its header before it, the CRC after. */
#define HEALER_MQTT_OUTBOX_RECORD_OVERHEAD 20
/* An event is a few hundred bytes; a length above this is damage, not an event. */
#define HEALER_MQTT_OUTBOX_MAX_PAYLOAD (1u << 20)

typedef struct {
	guint64 seq;
	gsize offset;      /* of the record in the file */
	gsize payload_len; /* the payload is at offset + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE */
} HealerMqttOutboxLogRecord;

/*
 * Reads outbox.log's bytes (`name` names the file in messages).  Adds every good record to
 * `records` (a GArray of HealerMqttOutboxLogRecord) in file order and sets *good_len to where the
 * last one ends: below `len` when a torn last record follows, and *torn_reason then says what
 * was wrong with it (a static string).  FALSE with HEALER_ERROR_INVALID_DATA "NAME: offset N:
 * ..." for any other damage (`records` may then hold the records before it).
 */
gboolean healer_mqtt_outbox_log_parse(const char *name, const guint8 *data, gsize len, GArray *records, gsize *good_len,
                                      const char **torn_reason, GError **error);

/* Checks the file header, outbox.log's first HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE bytes. */
gboolean healer_mqtt_outbox_log_parse_header(const char *name, const guint8 *data, gsize len, GError **error);
/*
 * The records of a window of outbox.log, so that a big file is read a piece at a time: `data` is
 * the `len` bytes at file offset `base` (at or after the header), `file_len` the file's length, and
 * *prev_seq the sequence number of the last good record before the window (0 for none; updated).
 * Adds the good records that lie wholly in the window and sets *next to where it stopped: at the
 * end of the good records when the window reaches the end of the file (*torn_reason then says what
 * follows, if anything), or sooner, at a record (or zeros) the window ends in, or at a torn last
 * record it could already tell.  The next window starts at *next; one that ends where it starts
 * must be made longer.  Errors as healer_mqtt_outbox_log_parse(), which is this over the whole
 * file.
 */
gboolean healer_mqtt_outbox_log_parse_window(const char *name, const guint8 *data, gsize len, guint64 base,
                                             guint64 file_len, guint64 *prev_seq, GArray *records, guint64 *next,
                                             const char **torn_reason, GError **error);

/*
 * Checks one record read back from outbox.log at `offset`: `len` bytes, its header, payload and CRC,
 * which must be record `seq` with a payload of len - HEALER_MQTT_OUTBOX_RECORD_OVERHEAD bytes.
 * FALSE with HEALER_ERROR_INVALID_DATA "NAME: offset N: ..." when it is not.
 */
gboolean healer_mqtt_outbox_log_check_record(const char *name, guint64 offset, const guint8 *data, gsize len,
                                             guint64 seq, GError **error);

/* Appends the file header, or one record, to `out`. */
void healer_mqtt_outbox_log_add_header(GByteArray *out);
void healer_mqtt_outbox_log_add_record(GByteArray *out, guint64 seq, const char *payload, gsize len);

/*
 * Reads the acked file's text: the watermark and, into `above` (a GArray of guint64), the records
 * acknowledged above it, ascending.  FALSE with HEALER_ERROR_INVALID_DATA "NAME: offset N: ..."
 * when it is not that.
 */
gboolean healer_mqtt_outbox_acked_parse(const char *name, const char *text, gsize len, guint64 *watermark,
                                        GArray *above, GError **error);
/* The acked file's text for `watermark` and the n_above seqs in `above` (ascending, all above it). */
char *healer_mqtt_outbox_acked_format(guint64 watermark, const guint64 *above, guint n_above);

G_END_DECLS
