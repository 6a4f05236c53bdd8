/*
 * The MQTT outbox (agent/daemon/mqtt-outbox.c): records leave in order on acknowledgements that
 * may come out of order, survive a restart with their sequence numbers continuing, a torn last
 * record is cut off and said so, any other damage is an error naming the file and offset that
 * changes nothing, the bound drops the oldest for good, compaction shrinks the file, and what the
 * system refuses is HEALER_ERROR_IO with nothing changed.
 */
#define _GNU_SOURCE

#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "healer-error.h"
#include "module-checksums.h"
#include "mqtt-outbox-log.h"
#include "mqtt-outbox.h"
#include "test-util.h"

#define EVENT_BYTES 300

/* Warnings logged since the last clear (criticals still abort). */
static GPtrArray *warnings;

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return g_log_writer_default(level, fields, n_fields, user_data);
	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "MESSAGE") == 0 && (level & G_LOG_LEVEL_WARNING))
			g_ptr_array_add(warnings, g_strdup(fields[i].value));
	}
	return G_LOG_WRITER_HANDLED;
}

static void
assert_message(const GError *error, const char *part)
{
	g_assert_nonnull(error);
	if (strstr(error->message, part) == NULL)
		g_error("expected \"%s\" in \"%s\"", part, error->message);
}

/* An event of exactly `size` bytes naming its sequence number, as the caller writes them. */
static char *
make_payload(guint64 seq, gsize size)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "{\"seq\":%" G_GUINT64_FORMAT ",\"event\":\"heal-step\",\"text\":\"", seq);
	while (s->len + 2 < size)
		g_string_append_c(s, (char)('a' + (s->len + seq) % 26));
	g_string_append(s, "\"}");
	g_assert_cmpuint(s->len, ==, MAX(size, s->len));
	return g_string_free(s, FALSE);
}

static HealerMqttOutbox *
open_outbox(const char *dir, guint64 max_bytes)
{
	g_autoptr(GError) error = NULL;
	HealerMqttOutbox *outbox = healer_mqtt_outbox_open(dir, max_bytes, &error);

	g_assert_no_error(error);
	g_assert_nonnull(outbox);
	return outbox;
}

/* Appends the next event of `size` bytes; returns how many older ones were dropped for it. */
static guint
append_event(HealerMqttOutbox *outbox, gsize size)
{
	guint64 seq = healer_mqtt_outbox_next_seq(outbox);
	g_autofree char *payload = make_payload(seq, size);
	g_autoptr(GError) error = NULL;
	guint dropped = 99;

	g_assert_true(healer_mqtt_outbox_append(outbox, seq, payload, strlen(payload), &dropped, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, seq + 1);
	return dropped;
}

static void
ack(HealerMqttOutbox *outbox, guint64 seq)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(healer_mqtt_outbox_ack(outbox, seq, &error));
	g_assert_no_error(error);
}

/* The pending records are exactly `seqs` (n of them, 0-terminated list), each with its payload. */
static void
assert_pending_impl(HealerMqttOutbox *outbox, gsize size, const guint64 *seqs, guint n)
{
	guint64 bytes = 0;

	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, n);
	for (guint i = 0; i < n; i++) {
		g_autofree char *expected = NULL;
		g_autofree char *payload = NULL;
		g_autoptr(GError) error = NULL;
		guint64 seq = 0;
		gsize len = 0, peeked_len = 0;

		g_assert_true(healer_mqtt_outbox_peek(outbox, i, &seq, &peeked_len));
		g_assert_cmpuint(seq, ==, seqs[i]);
		/* Read back from outbox.log, wherever the appends and compactions left it. */
		payload = healer_mqtt_outbox_read(outbox, i, &len, &error);
		g_assert_no_error(error);
		g_assert_nonnull(payload);
		expected = make_payload(seq, size);
		g_assert_cmpuint(len, ==, strlen(expected));
		g_assert_cmpuint(peeked_len, ==, len);
		g_assert_cmpmem(payload, len, expected, strlen(expected));
		g_assert_cmpint(payload[len], ==, '\0');
		bytes += len;
	}
	g_assert_false(healer_mqtt_outbox_peek(outbox, n, NULL, NULL));
	g_assert_cmpuint(healer_mqtt_outbox_pending_bytes(outbox), ==, bytes);
}
#define assert_pending(outbox, size, ...)                                                                              \
	do {                                                                                                           \
		const guint64 seqs_[] = {__VA_ARGS__};                                                                 \
		assert_pending_impl((outbox), (size), seqs_, G_N_ELEMENTS(seqs_));                                     \
	} while (0)

static char *
read_text(const char *dir, const char *name)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(GBytes) bytes = test_read_file(path);

	return g_strndup(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

static gsize
file_size(const char *dir, const char *name)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return (gsize)st.st_size;
}

static gsize
record_size(gsize payload)
{
	return payload + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
}

static void
test_new(void)
{
	g_autofree char *tmp = test_tmpdir_new();
	g_autofree char *dir = g_build_filename(tmp, "state", "mqtt", NULL);
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autofree char *log = read_text(dir, "outbox.log");
	g_autofree char *acked_path = g_build_filename(dir, "acked", NULL);
	struct stat st;

	g_assert_cmpint(stat(dir, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 1);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 0);
	g_assert_cmpuint(healer_mqtt_outbox_pending_bytes(outbox), ==, 0);
	g_assert_false(healer_mqtt_outbox_peek(outbox, 0, NULL, NULL));
	g_assert_cmpmem(log, file_size(dir, "outbox.log"), "HOBX\1\0\0\0", 8);
	g_assert_false(g_file_test(acked_path, G_FILE_TEST_EXISTS));
	test_tmpdir_free(g_steal_pointer(&tmp));
}

static void
test_in_order(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *acked_path = g_build_filename(dir, "acked", NULL);
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autofree char *acked = NULL;

	for (guint i = 0; i < 3; i++)
		g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 0);
	assert_pending(outbox, EVENT_BYTES, 1, 2, 3);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 3 * record_size(EVENT_BYTES));

	ack(outbox, 1);
	assert_pending(outbox, EVENT_BYTES, 2, 3);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "1\n");
	/* Again, unknown, zero: ignored, nothing written. */
	g_assert_cmpint(g_unlink(acked_path), ==, 0);
	ack(outbox, 1);
	ack(outbox, 99);
	ack(outbox, 0);
	g_assert_false(g_file_test(acked_path, G_FILE_TEST_EXISTS));
	assert_pending(outbox, EVENT_BYTES, 2, 3);

	ack(outbox, 2);
	ack(outbox, 3);
	assert_pending(outbox, EVENT_BYTES);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "3\n");
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 4);
	/* Below the compaction threshold: the acknowledged records stay in the file. */
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 3 * record_size(EVENT_BYTES));
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_out_of_order(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autofree char *acked = NULL;

	for (guint i = 0; i < 5; i++)
		append_event(outbox, EVENT_BYTES);
	ack(outbox, 3);
	assert_pending(outbox, EVENT_BYTES, 1, 2, 4, 5);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "0\n3\n");
	ack(outbox, 5);
	ack(outbox, 3); /* already acknowledged */
	assert_pending(outbox, EVENT_BYTES, 1, 2, 4);

	/* The acknowledgements above the watermark survive a restart too. */
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES, 1, 2, 4);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 6);

	ack(outbox, 1);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "1\n3\n5\n");
	/* 2 leaves, and 3 (acknowledged before) with it: the watermark jumps over it. */
	ack(outbox, 2);
	assert_pending(outbox, EVENT_BYTES, 4);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "3\n5\n");
	ack(outbox, 4);
	assert_pending(outbox, EVENT_BYTES);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "5\n");

	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 6);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
ack_many(HealerMqttOutbox *outbox, const guint64 *seqs, guint n)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(healer_mqtt_outbox_ack_many(outbox, seqs, n, &error));
	g_assert_no_error(error);
}

static void
test_ack_many(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	const guint64 first[] = {4, 2, 99, 4, 1, 0};
	const guint64 second[] = {6, 3};
	const guint64 last[] = {5};
	g_autofree char *acked = NULL;

	for (guint i = 0; i < 6; i++)
		append_event(outbox, EVENT_BYTES);
	/* 1 and 2 the oldest, 4 out of order, repeats and unknown ones: one write. */
	ack_many(outbox, first, G_N_ELEMENTS(first));
	assert_pending(outbox, EVENT_BYTES, 3, 5, 6);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "2\n4\n");
	/* 3 takes the watermark past 4 to 5, which is still pending; 6 is above it. */
	ack_many(outbox, second, G_N_ELEMENTS(second));
	assert_pending(outbox, EVENT_BYTES, 5);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "4\n6\n");
	ack_many(outbox, NULL, 0);
	ack_many(outbox, last, 1);
	assert_pending(outbox, EVENT_BYTES);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "6\n");
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 7);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_reopen(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *log_path = g_build_filename(dir, "outbox.log", NULL);
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autoptr(GError) error = NULL;
	g_autofree char *before = NULL;

	for (guint i = 0; i < 3; i++)
		append_event(outbox, EVENT_BYTES);
	ack(outbox, 1);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);

	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES, 2, 3);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 4);

	/* Only the next number is accepted, and a refused append changes nothing. */
	before = test_tree_snapshot(dir);
	g_assert_false(healer_mqtt_outbox_append(outbox, 3, "{}", 2, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(error, "record 3 appended, but the next is 4");
	g_clear_error(&error);
	g_assert_false(healer_mqtt_outbox_append(outbox, 4, "x", HEALER_MQTT_OUTBOX_MAX_PAYLOAD + 1, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	test_assert_tree_unchanged(before, dir, "refused appends");
	assert_pending(outbox, EVENT_BYTES, 2, 3);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 4);

	append_event(outbox, EVENT_BYTES);
	ack(outbox, 2);
	ack(outbox, 3);
	ack(outbox, 4);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);

	/* Everything acknowledged: the numbers go on all the same. */
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 5);
	append_event(outbox, EVENT_BYTES);
	assert_pending(outbox, EVENT_BYTES, 5);

	/* And with only the acknowledgements left (the log lost): still no number is used twice. */
	ack(outbox, 5);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	g_assert_cmpint(g_unlink(log_path), ==, 0);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 6);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* The bytes of a log holding records 1..n of EVENT_BYTES, as the outbox writes them. */
static GByteArray *
make_log(guint n)
{
	GByteArray *log = g_byte_array_new();

	healer_mqtt_outbox_log_add_header(log);
	for (guint64 seq = 1; seq <= n; seq++) {
		g_autofree char *payload = make_payload(seq, EVENT_BYTES);
		healer_mqtt_outbox_log_add_record(log, seq, payload, strlen(payload));
	}
	return log;
}

static void
write_log(const char *dir, const guint8 *data, gsize len)
{
	g_autofree char *path = g_build_filename(dir, "outbox.log", NULL);

	test_write_file(path, data, len);
}

static void
test_torn_tail(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *log_path = g_build_filename(dir, "outbox.log", NULL);
	g_autoptr(GByteArray) log = make_log(3);
	gsize two = 8 + 2 * record_size(EVENT_BYTES);
	struct {
		gsize cut;       /* the file's length: inside the third record */
		gsize zero_tail; /* or: the three records and this many zero bytes */
		gsize flip;      /* or: the three records with this byte of the third flipped */
		const char *reason;
	} cases[] = {
	        {two + 1, 0, 0, "ends inside a record header"},
	        {two + 15, 0, 0, "ends inside a record header"},
	        {two + 16, 0, 0, "ends inside the record"},
	        {two + 17, 0, 0, "ends inside the record"},
	        {two + 200, 0, 0, "ends inside the record"},
	        {log->len - 1, 0, 0, "ends inside the record"},
	        {0, 1, 0, "zero bytes"},
	        {0, 4096, 0, "zero bytes"},
	        {0, 0, 20, "fails its CRC-32"},
	        {0, 0, record_size(EVENT_BYTES) - 1, "fails its CRC-32"},
	};

	for (guint c = 0; c < G_N_ELEMENTS(cases); c++) {
		g_autoptr(GByteArray) file = g_byte_array_new();
		g_autoptr(HealerMqttOutbox) outbox = NULL;
		g_autoptr(GBytes) now = NULL;
		g_autofree char *offset =
		        g_strdup_printf("at offset %" G_GSIZE_FORMAT " ", cases[c].zero_tail ? log->len : two);
		gsize expected_good = cases[c].zero_tail ? log->len : two;
		const char *warning;

		g_byte_array_append(file, log->data, cases[c].cut ? (guint)cases[c].cut : log->len);
		for (gsize z = 0; z < cases[c].zero_tail; z++)
			g_byte_array_append(file, (const guint8 *)"", 1);
		if (cases[c].flip)
			file->data[two + cases[c].flip] ^= 0x20;
		write_log(dir, file->data, file->len);

		g_ptr_array_set_size(warnings, 0);
		outbox = open_outbox(dir, 1 << 20);
		g_assert_cmpuint(warnings->len, ==, 1);
		warning = g_ptr_array_index(warnings, 0);
		g_test_message("%s", warning);
		g_assert_nonnull(strstr(warning, "outbox.log: a torn last record cut off"));
		g_assert_nonnull(strstr(warning, offset));
		g_assert_nonnull(strstr(warning, cases[c].reason));

		/* Cut off on disk; the records before it intact; its number is the next one's again. */
		g_assert_cmpuint(file_size(dir, "outbox.log"), ==, expected_good);
		if (cases[c].zero_tail) {
			assert_pending(outbox, EVENT_BYTES, 1, 2, 3);
			g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 4);
		} else {
			assert_pending(outbox, EVENT_BYTES, 1, 2);
			g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 3);
			append_event(outbox, EVENT_BYTES);
			now = test_read_file(log_path);
			g_assert_cmpmem(g_bytes_get_data(now, NULL), g_bytes_get_size(now), log->data, log->len);
		}
		/* Said once: opened again, the file is whole. */
		g_clear_pointer(&outbox, healer_mqtt_outbox_free);
		g_ptr_array_set_size(warnings, 0);
		outbox = open_outbox(dir, 1 << 20);
		g_assert_cmpuint(warnings->len, ==, 0);
		assert_pending(outbox, EVENT_BYTES, 1, 2, 3);
	}
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Opening fails with INVALID_DATA naming `expected` and the files stay as they were. */
static void
assert_damaged(const char *dir, const char *expected)
{
	g_autofree char *before = test_tree_snapshot(dir);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerMqttOutbox) outbox = healer_mqtt_outbox_open(dir, 1 << 20, &error);

	g_assert_null(outbox);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	assert_message(error, expected);
	g_assert_cmpuint(warnings->len, ==, 0);
	test_assert_tree_unchanged(before, dir, "a refused open");
}

static void
test_damage(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *acked_path = g_build_filename(dir, "acked", NULL);
	g_autoptr(GByteArray) log = make_log(3);
	gsize second = 8 + record_size(EVENT_BYTES);
	const char *bad_acked[] = {"",  "x\n", "1\n1\n", "5\n3\n", "-1\n", "01\n", "1 2\n", "18446744073709551616\n",
	                           "\n"};
	g_autoptr(GByteArray) backwards = g_byte_array_new();
	g_autoptr(GByteArray) huge = g_byte_array_new();

	g_ptr_array_set_size(warnings, 0);
	/* Every byte of the middle record, and of the file header. */
	for (gsize i = 0; i < record_size(EVENT_BYTES); i++) {
		g_autofree char *expected = g_strdup_printf("%s/outbox.log: offset %" G_GSIZE_FORMAT ": ", dir, second);

		log->data[second + i] ^= 0x01;
		write_log(dir, log->data, log->len);
		assert_damaged(dir, expected);
		log->data[second + i] ^= 0x01;
	}
	for (gsize i = 0; i < 8; i++) {
		log->data[i] ^= 0x80;
		write_log(dir, log->data, log->len);
		assert_damaged(dir, i < 4 ? "outbox.log: offset 0: not an MQTT outbox"
		                          : "outbox.log: offset 4: format version");
		log->data[i] ^= 0x80;
	}
	write_log(dir, (const guint8 *)"", 0);
	assert_damaged(dir, "outbox.log: offset 0: not an MQTT outbox");

	/* Records out of order, and a record longer than any event, each with good CRCs. */
	healer_mqtt_outbox_log_add_header(backwards);
	healer_mqtt_outbox_log_add_record(backwards, 7, "{}", 2);
	healer_mqtt_outbox_log_add_record(backwards, 7, "{}", 2);
	write_log(dir, backwards->data, backwards->len);
	assert_damaged(dir, "outbox.log: offset 30: record 7 after record 7");
	/* A header (with its CRC right) declaring 1 MiB and one byte. */
	{
		guint8 header[12] = {0x01, 0x00, 0x10, 0x00, 0x01};
		guint32 crc = healer_crc32(header, sizeof header);
		guint8 crc_le[4] = {crc & 0xff, (crc >> 8) & 0xff, (crc >> 16) & 0xff, crc >> 24};

		healer_mqtt_outbox_log_add_header(huge);
		g_byte_array_append(huge, header, sizeof header);
		g_byte_array_append(huge, crc_le, sizeof crc_le);
		write_log(dir, huge->data, huge->len);
		assert_damaged(dir, "outbox.log: offset 8: record of 1048577 bytes, more than 1048576");
	}
	g_assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));

	/* The acked file, damaged: the log is good, the error names acked. */
	write_log(dir, log->data, log->len);
	for (guint i = 0; i < G_N_ELEMENTS(bad_acked); i++) {
		g_autofree char *expected = g_strdup_printf("%s: offset ", acked_path);

		test_write_file(acked_path, (const guint8 *)bad_acked[i], strlen(bad_acked[i]));
		assert_damaged(dir, expected);
	}
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_bound(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1000);
	g_autofree char *acked = NULL;

	for (guint i = 0; i < 3; i++)
		g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 0);
	/* 900 bytes held: the fourth makes 1200, the oldest goes. */
	g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 1);
	assert_pending(outbox, EVENT_BYTES, 2, 3, 4);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "1\n");

	/* 3 acknowledged out of order is not counted again when it goes with 2. */
	ack(outbox, 3);
	g_assert_cmpuint(append_event(outbox, 700), ==, 1);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 2);
	g_assert_cmpuint(healer_mqtt_outbox_pending_bytes(outbox), ==, 1000);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "3\n");

	/* One larger than the bound: all the others go, the new one stays. */
	g_assert_cmpuint(append_event(outbox, 2000), ==, 2);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 1);
	g_assert_cmpuint(healer_mqtt_outbox_pending_bytes(outbox), ==, 2000);
	g_clear_pointer(&acked, g_free);
	acked = read_text(dir, "acked");
	g_assert_cmpstr(acked, ==, "5\n");

	/* Dropped for good: after a restart only record 6 is there. */
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1000);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 1);
	assert_pending(outbox, 2000, 6);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 7);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_compaction(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	const gsize size = 8192;
	gsize full;

	for (guint i = 0; i < 20; i++)
		append_event(outbox, size);
	full = 8 + 20 * record_size(size);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, full);
	/* Ten acknowledged are half the file, not more: it stays. */
	for (guint64 seq = 1; seq <= 10; seq++)
		ack(outbox, seq);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, full);
	/* The eleventh makes it more than half (and over 64 KiB): rewritten with the nine left. */
	ack(outbox, 11);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 9 * record_size(size));
	assert_pending(outbox, size, 12, 13, 14, 15, 16, 17, 18, 19, 20);
	/* Appends go on into the new file. */
	append_event(outbox, size);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 10 * record_size(size));

	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, size, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 22);

	/* Out of order: 21 down to 14 acknowledged are eight records, more than half and 64 KiB:
	 * rewritten with 12 and 13.  Those two acknowledged are below 64 KiB: they stay. */
	for (guint64 seq = 21; seq >= 14; seq--)
		ack(outbox, seq);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 2 * record_size(size));
	assert_pending(outbox, size, 12, 13);
	ack(outbox, 13);
	ack(outbox, 12);
	assert_pending(outbox, size);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 2 * record_size(size));
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, size);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 22);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_compaction_to_empty(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	const gsize size = 8192;

	/* Eight records of 8 KiB: the last acknowledgement makes them 64 KiB and all of the file. */
	for (guint i = 0; i < 8; i++)
		append_event(outbox, size);
	for (guint64 seq = 1; seq <= 7; seq++)
		ack(outbox, seq);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 8 * record_size(size));
	ack(outbox, 8);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8);
	assert_pending(outbox, size);

	/* Nothing left in the log: the numbers go on from acked. */
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, size);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 9);
	append_event(outbox, EVENT_BYTES);
	assert_pending(outbox, EVENT_BYTES, 9);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* As root, a directory's mode refuses nothing: the subprocess becomes nobody first. */
static void
drop_privileges(const char *tmp)
{
	const char *argv[] = {"chown", "-R", "65534:65534", tmp, NULL};
	g_autoptr(GError) error = NULL;
	int status = -1;

	if (geteuid() != 0)
		return;
	g_assert_true(
	        g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_cmpint(status, ==, 0);
	g_assert_cmpint(setgroups(0, NULL), ==, 0);
	g_assert_cmpint(setresgid(65534, 65534, 65534), ==, 0);
	g_assert_cmpint(setresuid(65534, 65534, 65534), ==, 0);
}

static void
unwritable_child(const char *tmp)
{
	g_autofree char *dir = g_build_filename(tmp, "outbox", NULL);
	g_autofree char *under = g_build_filename(dir, "new", NULL);
	g_autoptr(HealerMqttOutbox) outbox = NULL;
	g_autoptr(HealerMqttOutbox) refused = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *before = NULL;
	g_autofree char *payload = NULL;
	const guint64 both[] = {3, 2};
	guint dropped = 99;

	drop_privileges(tmp);
	outbox = open_outbox(dir, 1000);
	for (guint i = 0; i < 3; i++)
		append_event(outbox, EVENT_BYTES);
	ack(outbox, 1);
	g_assert_cmpint(g_chmod(dir, 0500), ==, 0);
	before = test_tree_snapshot(dir);

	/* acked cannot be replaced: in order, out of order. */
	g_assert_false(healer_mqtt_outbox_ack(outbox, 2, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	assert_message(error, "cannot record the acknowledgements");
	g_clear_error(&error);
	g_assert_false(healer_mqtt_outbox_ack(outbox, 3, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	g_clear_error(&error);
	g_assert_false(healer_mqtt_outbox_ack_many(outbox, both, G_N_ELEMENTS(both), &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	g_clear_error(&error);
	test_assert_tree_unchanged(before, dir, "refused acknowledgements");
	assert_pending(outbox, EVENT_BYTES, 2, 3);

	/* An append that must drop the oldest: the record goes in, acked cannot: taken out again. */
	payload = make_payload(4, 500);
	g_assert_false(healer_mqtt_outbox_append(outbox, 4, payload, strlen(payload), &dropped, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	assert_message(error, "cannot append record 4 (it needs 1 older ones dropped)");
	g_clear_error(&error);
	g_assert_cmpuint(dropped, ==, 0);
	test_assert_tree_unchanged(before, dir, "a refused append");
	assert_pending(outbox, EVENT_BYTES, 2, 3);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 4);

	/* Opening where nothing can be made. */
	refused = healer_mqtt_outbox_open(under, 1000, &error);
	g_assert_null(refused);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	assert_message(error, "cannot create the outbox directory");
	g_clear_error(&error);
	test_assert_tree_unchanged(before, dir, "a refused open");

	/* Writable again: everything goes on where it stood. */
	g_assert_cmpint(g_chmod(dir, 0700), ==, 0);
	ack(outbox, 3);
	ack(outbox, 2);
	assert_pending(outbox, EVENT_BYTES);
	g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 0);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1000);
	assert_pending(outbox, EVENT_BYTES, 4);
}

/* Appends n events of `size` bytes with one append_many(); returns how many older ones it dropped. */
static guint
append_batch(HealerMqttOutbox *outbox, guint n, gsize size)
{
	guint64 first = healer_mqtt_outbox_next_seq(outbox);
	g_autoptr(GPtrArray) payloads = g_ptr_array_new_with_free_func(g_free);
	g_autofree gsize *lens = g_new(gsize, n);
	g_autoptr(GError) error = NULL;
	guint dropped = 99;

	for (guint i = 0; i < n; i++) {
		g_ptr_array_add(payloads, make_payload(first + i, size));
		lens[i] = size;
	}
	g_assert_true(healer_mqtt_outbox_append_many(outbox, (const char *const *)payloads->pdata, lens, n, &dropped,
	                                             &error));
	g_assert_no_error(error);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, first + n);
	return dropped;
}

static void
test_append_many(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 6 * EVENT_BYTES);
	g_autoptr(GError) error = NULL;
	const char *too_big[] = {"{}", "{}"};
	gsize too_big_lens[] = {2, HEALER_MQTT_OUTBOX_MAX_PAYLOAD + 1};

	/* Numbered from the next sequence number on, in array order, one file write. */
	g_assert_cmpuint(append_batch(outbox, 4, EVENT_BYTES), ==, 0);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 4 * record_size(EVENT_BYTES));
	assert_pending(outbox, EVENT_BYTES, 1, 2, 3, 4);
	/* Room for all three: the three oldest go, none of the new ones. */
	g_assert_cmpuint(append_batch(outbox, 3, EVENT_BYTES), ==, 1);
	assert_pending(outbox, EVENT_BYTES, 2, 3, 4, 5, 6, 7);
	/* A batch bigger than the bound: every older one goes, the batch stays whole. */
	g_assert_cmpuint(append_batch(outbox, 8, EVENT_BYTES), ==, 6);
	assert_pending(outbox, EVENT_BYTES, 8, 9, 10, 11, 12, 13, 14, 15);
	/* One payload too big: none of them is appended, no number used up. */
	g_assert_false(healer_mqtt_outbox_append_many(outbox, too_big, too_big_lens, 2, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(error, "record 17 of 1048577 bytes");
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 16);
	/* Nothing to append is nothing done. */
	g_assert_true(healer_mqtt_outbox_append_many(outbox, NULL, NULL, 0, NULL, NULL));

	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 6 * EVENT_BYTES);
	assert_pending(outbox, EVENT_BYTES, 8, 9, 10, 11, 12, 13, 14, 15);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_drop_slack(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 6 * EVENT_BYTES);

	healer_mqtt_outbox_set_drop_slack(outbox, 2 * EVENT_BYTES);
	for (guint i = 0; i < 6; i++)
		g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 0);
	/* Full: the seventh drops until two events' worth is free besides it, three of them. */
	g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 3);
	assert_pending(outbox, EVENT_BYTES, 4, 5, 6, 7);
	/* The slack takes two more without a drop. */
	g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 0);
	g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 0);
	g_assert_cmpuint(append_event(outbox, EVENT_BYTES), ==, 3);
	assert_pending(outbox, EVENT_BYTES, 7, 8, 9, 10);
	/* A slack above the bound drops everything older, never the new record. */
	healer_mqtt_outbox_set_drop_slack(outbox, 1 << 20);
	g_assert_cmpuint(append_batch(outbox, 3, EVENT_BYTES), ==, 4);
	assert_pending(outbox, EVENT_BYTES, 11, 12, 13);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* outbox.log is read at open a window (256 KiB) at a time: records bigger than a window, and a torn
 * tail beyond several, read as they were written. */
static void
test_reopen_big(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 64 << 20);
	g_autofree char *path = g_build_filename(dir, "outbox.log", NULL);
	const gsize big = 700 * 1024;
	gsize size;
	int fd;

	append_event(outbox, 200);
	append_event(outbox, big);
	append_event(outbox, 300);
	append_batch(outbox, 2000, 250);
	size = file_size(dir, "outbox.log");
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	/* A torn last record: 5,000 zero bytes past the end, well past the last window's start. */
	fd = open(path, O_WRONLY);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(ftruncate(fd, (off_t)size + 5000), ==, 0);
	close(fd);

	outbox = open_outbox(dir, 64 << 20);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, size);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 2003);
	g_assert_cmpuint(healer_mqtt_outbox_pending_bytes(outbox), ==, 200 + big + 300 + 2000 * 250);
	{
		g_autofree char *payload = NULL;
		g_autofree char *expected = make_payload(2, big);
		gsize len = 0;

		payload = healer_mqtt_outbox_read(outbox, 1, &len, NULL);
		g_assert_nonnull(payload);
		g_assert_cmpmem(payload, len, expected, big);
	}
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 2004);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_skip(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);

	append_event(outbox, EVENT_BYTES);
	/* Two numbers carried by events published without the outbox: the next record is 4. */
	healer_mqtt_outbox_skip(outbox, 2);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 4);
	append_event(outbox, EVENT_BYTES);
	assert_pending(outbox, EVENT_BYTES, 1, 4);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES, 1, 4);
	g_assert_cmpuint(healer_mqtt_outbox_next_seq(outbox), ==, 5);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Overwrites one byte of outbox.log behind the outbox's back. */
static void
poke_log(const char *dir, goffset offset, guint8 byte)
{
	g_autofree char *path = g_build_filename(dir, "outbox.log", NULL);
	int fd = open(path, O_WRONLY);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, &byte, 1, offset), ==, 1);
	close(fd);
}

static void
test_read_back_damage(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	g_autoptr(GError) error = NULL;
	g_autofree char *payload = NULL;
	goffset second = 8 + record_size(EVENT_BYTES);

	append_event(outbox, EVENT_BYTES);
	append_event(outbox, EVENT_BYTES);
	/* The second record's payload changed on disk after it was written. */
	poke_log(dir, second + 16 + 40, 'Z');
	payload = healer_mqtt_outbox_read(outbox, 1, NULL, &error);
	g_assert_null(payload);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	assert_message(error, "outbox.log: offset 328: record 2 changed on disk (its CRC-32 does not match)");
	g_clear_error(&error);
	/* Its header: the same, said of the header. */
	poke_log(dir, second + 2, 0x7f);
	g_assert_null(healer_mqtt_outbox_read(outbox, 1, NULL, &error));
	assert_message(error, "offset 328: record 2 changed on disk (its header's CRC-32 does not match)");
	g_clear_error(&error);
	/* The first is still whole, and an index past the end is an argument error. */
	payload = healer_mqtt_outbox_read(outbox, 0, NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(payload);
	g_assert_null(healer_mqtt_outbox_read(outbox, 2, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	assert_message(error, "no pending record 2 (2 pending)");
	g_clear_error(&error);
	/* Given up (acknowledged), the damaged record leaves the file at once, small as it is: the next
	 * open would refuse the outbox for it. */
	ack(outbox, 2);
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + record_size(EVENT_BYTES));
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	assert_pending(outbox, EVENT_BYTES, 1);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Acknowledgements out of order leave holes: a compaction copies the runs between them. */
static void
test_compaction_runs(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 1 << 20);
	const gsize size = 4096;
	g_autofree char *stale = g_build_filename(dir, "outbox.log.compact-AbC123", NULL);

	append_batch(outbox, 40, size);
	/* Every record but 3, 4, 10, 20, 21, 22 and 40 acknowledged at once: one compaction, which
	 * copies three runs and a record on its own. */
	{
		g_autoptr(GArray) acked = g_array_new(FALSE, FALSE, sizeof(guint64));
		g_autoptr(GError) error = NULL;

		for (guint64 seq = 39; seq >= 1; seq--) {
			if (seq != 3 && seq != 4 && seq != 10 && !(seq >= 20 && seq <= 22))
				g_array_append_val(acked, seq);
		}
		g_assert_true(healer_mqtt_outbox_ack_many(outbox, (const guint64 *)(gpointer)acked->data, acked->len,
		                                          &error));
		g_assert_no_error(error);
	}
	g_assert_cmpuint(file_size(dir, "outbox.log"), ==, 8 + 7 * record_size(size));
	assert_pending(outbox, size, 3, 4, 10, 20, 21, 22, 40);
	append_event(outbox, size);
	assert_pending(outbox, size, 3, 4, 10, 20, 21, 22, 40, 41);

	/* A compaction healerd did not live to finish is removed at the next open, the log kept. */
	test_write_file(stale, (const guint8 *)"HOBX", 4);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 1 << 20);
	g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
	assert_pending(outbox, size, 3, 4, 10, 20, 21, 22, 40, 41);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Thousands of records acknowledged from the front, in bursts: the bookkeeping that drops them
 * lazily keeps the right ones (the array's dead front is reclaimed along the way). */
static void
test_many_records(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autoptr(HealerMqttOutbox) outbox = open_outbox(dir, 64 << 20);
	const guint n = 5000;
	g_autofree guint64 *seqs = g_new(guint64, n);
	g_autoptr(GError) error = NULL;

	append_batch(outbox, n, 100);
	for (guint i = 0; i < n; i++)
		seqs[i] = i + 1;
	/* Bursts of 32, the face's window, with one out of order at the end of each burst. */
	for (guint done = 0; done + 32 <= 4800; done += 32) {
		g_assert_true(healer_mqtt_outbox_ack_many(outbox, seqs + done, 31, &error));
		g_assert_true(healer_mqtt_outbox_ack_many(outbox, seqs + done + 31, 1, &error));
		g_assert_no_error(error);
	}
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 200);
	for (guint i = 0; i < 200; i++) {
		guint64 seq = 0;
		g_assert_true(healer_mqtt_outbox_peek(outbox, i, &seq, NULL));
		g_assert_cmpuint(seq, ==, 4801 + i);
	}
	append_event(outbox, 100);
	g_clear_pointer(&outbox, healer_mqtt_outbox_free);
	outbox = open_outbox(dir, 64 << 20);
	g_assert_cmpuint(healer_mqtt_outbox_pending(outbox), ==, 201);
	g_assert_cmpuint(healer_mqtt_outbox_pending_bytes(outbox), ==, 201 * 100);
	test_tmpdir_free(g_steal_pointer(&dir));
}

static void
test_unwritable(void)
{
	g_autofree char *tmp = NULL;

	if (g_test_subprocess()) {
		unwritable_child(g_getenv("OUTBOX_TEST_DIR"));
		return;
	}
	tmp = test_tmpdir_new();
	g_setenv("OUTBOX_TEST_DIR", tmp, TRUE);
	g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDOUT | G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
	test_tmpdir_free(g_steal_pointer(&tmp));
}

static void
test_not_a_directory(void)
{
	g_autofree char *tmp = test_tmpdir_new();
	g_autofree char *file = g_build_filename(tmp, "file", NULL);
	g_autofree char *dir = g_build_filename(file, "outbox", NULL);
	g_autofree char *before = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerMqttOutbox) outbox = NULL;

	test_write_file(file, (const guint8 *)"x", 1);
	before = test_tree_snapshot(tmp);
	outbox = healer_mqtt_outbox_open(dir, 1000, &error);
	g_assert_null(outbox);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_IO);
	assert_message(error, dir);
	test_assert_tree_unchanged(before, tmp, "a refused open");
	test_tmpdir_free(g_steal_pointer(&tmp));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	warnings = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
	g_test_add_func("/mqtt-outbox/new", test_new);
	g_test_add_func("/mqtt-outbox/in-order", test_in_order);
	g_test_add_func("/mqtt-outbox/out-of-order", test_out_of_order);
	g_test_add_func("/mqtt-outbox/ack-many", test_ack_many);
	g_test_add_func("/mqtt-outbox/reopen", test_reopen);
	g_test_add_func("/mqtt-outbox/torn-tail", test_torn_tail);
	g_test_add_func("/mqtt-outbox/damage", test_damage);
	g_test_add_func("/mqtt-outbox/bound", test_bound);
	g_test_add_func("/mqtt-outbox/compaction", test_compaction);
	g_test_add_func("/mqtt-outbox/compaction-to-empty", test_compaction_to_empty);
	g_test_add_func("/mqtt-outbox/append-many", test_append_many);
	g_test_add_func("/mqtt-outbox/drop-slack", test_drop_slack);
	g_test_add_func("/mqtt-outbox/reopen-big", test_reopen_big);
	g_test_add_func("/mqtt-outbox/skip", test_skip);
	g_test_add_func("/mqtt-outbox/read-back-damage", test_read_back_damage);
	g_test_add_func("/mqtt-outbox/compaction-runs", test_compaction_runs);
	g_test_add_func("/mqtt-outbox/many-records", test_many_records);
	g_test_add_func("/mqtt-outbox/unwritable", test_unwritable);
	g_test_add_func("/mqtt-outbox/not-a-directory", test_not_a_directory);
	return g_test_run();
}
