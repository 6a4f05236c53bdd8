/*
 * The MQTT outbox on disk: outbox.log and acked in DIR (their bytes: mqtt-outbox-log.h).
 *
 * Durability: a record is written with one pwrite() at the end of the good records and
 * fdatasync()ed before the append returns; acked and every compacted outbox.log are replaced
 * whole by healer_file_write_atomic() (temp file, fsync, rename, directory fsync).  The
 * unacknowledged records are held in memory too (at most max_bytes of payload and the one
 * newest record), so peeking never reads the disk.
 *
 * The descriptor is not O_APPEND: Linux's pwrite() on an O_APPEND descriptor ignores the offset,
 * and an append that failed half-way must be overwritten at the known end of the good records,
 * not after its own remains.
 */
#define _GNU_SOURCE

#include "mqtt-outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "healer-error.h"
#include "healer-file.h"
#include "mqtt-outbox-log.h"

/* Acknowledged records are compacted away once they are more than half of outbox.log and at
 * least this many bytes: a file of a few records is not rewritten at every acknowledgement. */
#define COMPACT_MIN_BYTES (64 * 1024)

typedef struct {
	guint64 seq;
	char *payload; /* NUL-terminated for convenience, len bytes before it */
	gsize len;
} OutboxRecord;

struct _HealerMqttOutbox {
	char *log_path;
	char *acked_path;
	guint64 max_bytes;
	int fd;              /* outbox.log; -1 after a compaction could not open the new file */
	guint64 log_size;    /* where the good records end: the next one goes there */
	gboolean tail_dirty; /* a failed append may have left bytes past log_size */
	guint64 watermark;   /* every record up to it was acknowledged or dropped */
	GArray *acked_above; /* guint64, ascending, each above the watermark: acknowledged out of order */
	GArray *records;     /* OutboxRecord: the unacknowledged ones, oldest first */
	guint64 pending_bytes;
	guint64 next_seq;
	gboolean compact_failed; /* said once, until a compaction works again */
};

static void
outbox_record_clear(gpointer data)
{
	OutboxRecord *record = data;

	g_clear_pointer(&record->payload, g_free);
}

static OutboxRecord *
record_at(HealerMqttOutbox *outbox, guint index)
{
	return &g_array_index(outbox->records, OutboxRecord, index);
}

static gboolean
fail_errno(GError **error, int err, const char *path, const char *what)
{
	return healer_fail(error, HEALER_ERROR_IO, "%s: %s: %s", path, what, g_strerror(err));
}

static gboolean
sync_fd(int fd)
{
	int r;

	do
		r = fdatasync(fd);
	while (r != 0 && errno == EINTR);
	return r == 0;
}

/* The directory entry of a directory just made must reach the disk too, or a power cut loses it. */
static void
sync_parent(const char *dir)
{
	g_autofree char *parent = g_path_get_dirname(dir);
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static gboolean
ensure_dir(const char *dir, GError **error)
{
	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		return TRUE;
	if (g_mkdir_with_parents(dir, 0700) != 0)
		return fail_errno(error, errno, dir, "cannot create the outbox directory");
	sync_parent(dir);
	return TRUE;
}

static gboolean
write_acked(HealerMqttOutbox *outbox, guint64 watermark, const GArray *above, GError **error)
{
	char *text = healer_mqtt_outbox_acked_format(watermark, (const guint64 *)(gpointer)above->data, above->len);
	gsize len = strlen(text);
	g_autoptr(GBytes) bytes = g_bytes_new_take(text, len);
	g_autoptr(GError) local = NULL;

	if (!healer_file_write_atomic(outbox->acked_path, bytes, &local))
		return healer_fail(error, HEALER_ERROR_IO, "cannot record the acknowledgements: %s", local->message);
	return TRUE;
}

/* The entries of `above` that stay above `watermark`: a new array. */
static GArray *
above_after(const GArray *above, guint64 watermark)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(guint64));

	for (guint i = 0; i < above->len; i++) {
		if (g_array_index(above, guint64, i) > watermark)
			g_array_append_val(out, g_array_index(above, guint64, i));
	}
	return out;
}

/* Drops whatever a failed append left past the good records; the next append retries it. */
static void
cut_tail(HealerMqttOutbox *outbox)
{
	if (ftruncate(outbox->fd, (off_t)outbox->log_size) == 0) {
		(void)sync_fd(outbox->fd);
		outbox->tail_dirty = FALSE;
	} else {
		outbox->tail_dirty = TRUE;
	}
}

static gboolean
ensure_fd(HealerMqttOutbox *outbox, GError **error)
{
	if (outbox->fd < 0) {
		outbox->fd = open(outbox->log_path, O_RDWR | O_CLOEXEC);
		if (outbox->fd < 0)
			return fail_errno(error, errno, outbox->log_path, "cannot open");
	}
	if (outbox->tail_dirty) {
		cut_tail(outbox);
		if (outbox->tail_dirty)
			return fail_errno(error, errno, outbox->log_path, "cannot cut off a failed append");
	}
	return TRUE;
}

static gboolean
write_all_at(int fd, const guint8 *data, gsize len, guint64 offset)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, data, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return FALSE;
		}
		data += n, len -= (gsize)n, offset += (guint64)n;
	}
	return TRUE;
}

static gboolean
read_all(int fd, GByteArray *out)
{
	guint8 buf[65536];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		if (n == 0)
			return TRUE;
		g_byte_array_append(out, buf, (guint)n);
	}
}

/* Rewrites outbox.log with the unacknowledged records only, when the others are most of it. */
static void
maybe_compact(HealerMqttOutbox *outbox)
{
	guint64 pending_size = HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE + outbox->pending_bytes +
	                       (guint64)outbox->records->len * HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
	guint64 acked_size = outbox->log_size - pending_size;
	g_autoptr(GByteArray) contents = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;

	if (acked_size < COMPACT_MIN_BYTES || acked_size * 2 <= outbox->log_size)
		return;
	contents = g_byte_array_sized_new((guint)pending_size);
	healer_mqtt_outbox_log_add_header(contents);
	for (guint i = 0; i < outbox->records->len; i++) {
		OutboxRecord *record = record_at(outbox, i);
		healer_mqtt_outbox_log_add_record(contents, record->seq, record->payload, record->len);
	}
	bytes = g_byte_array_free_to_bytes(g_steal_pointer(&contents));
	if (!healer_file_write_atomic(outbox->log_path, bytes, &error)) {
		/* The acknowledgement itself is recorded: the file is only bigger than it needs to be. */
		if (!outbox->compact_failed)
			g_warning("%s: cannot compact (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			          " bytes acknowledged): %s; tried again at the next acknowledgement",
			          outbox->log_path, acked_size, outbox->log_size, error->message);
		outbox->compact_failed = TRUE;
		return;
	}
	outbox->compact_failed = FALSE;
	/* The old descriptor holds the replaced file; the next append opens the new one if this fails. */
	if (outbox->fd >= 0)
		close(outbox->fd);
	outbox->fd = open(outbox->log_path, O_RDWR | O_CLOEXEC);
	outbox->log_size = g_bytes_get_size(bytes);
	outbox->tail_dirty = FALSE;
}

/* Reads acked: the watermark and the records acknowledged above it (none when it is missing). */
static gboolean
read_acked(HealerMqttOutbox *outbox, GError **error)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) local = NULL;
	gsize len = 0;

	if (!g_file_get_contents(outbox->acked_path, &text, &len, &local)) {
		if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return TRUE;
		return healer_fail(error, HEALER_ERROR_IO, "%s", local->message);
	}
	return healer_mqtt_outbox_acked_parse(outbox->acked_path, text, len, &outbox->watermark, outbox->acked_above,
	                                      error);
}

/* Opens outbox.log (made with just its header when missing) and reads its good records. */
static gboolean
read_log(HealerMqttOutbox *outbox, GByteArray *contents, GArray *parsed, GError **error)
{
	const char *torn_reason = NULL;
	gsize good_len = 0;
	struct stat st;

	outbox->fd = open(outbox->log_path, O_RDWR | O_CLOEXEC);
	if (outbox->fd < 0 && errno == ENOENT) {
		g_autoptr(GByteArray) header = g_byte_array_new();
		g_autoptr(GBytes) bytes = NULL;

		healer_mqtt_outbox_log_add_header(header);
		bytes = g_byte_array_free_to_bytes(g_steal_pointer(&header));
		if (!healer_file_write_atomic(outbox->log_path, bytes, error))
			return FALSE;
		outbox->fd = open(outbox->log_path, O_RDWR | O_CLOEXEC);
	}
	if (outbox->fd < 0)
		return fail_errno(error, errno, outbox->log_path, "cannot open");
	if (fstat(outbox->fd, &st) != 0)
		return fail_errno(error, errno, outbox->log_path, "cannot stat");
	if (!S_ISREG(st.st_mode))
		return healer_fail(error, HEALER_ERROR_INVALID_DATA, "%s: not a regular file", outbox->log_path);
	if (!read_all(outbox->fd, contents))
		return fail_errno(error, errno, outbox->log_path, "cannot read");
	if (!healer_mqtt_outbox_log_parse(outbox->log_path, contents->data, contents->len, parsed, &good_len,
	                                  &torn_reason, error))
		return FALSE;
	if (good_len < contents->len) {
		/* healerd stopped in the middle of an append, which therefore never returned: the record was
		 * never handed to the broker, and its sequence number is the next one's again. */
		if (ftruncate(outbox->fd, (off_t)good_len) != 0 || !sync_fd(outbox->fd))
			return fail_errno(error, errno, outbox->log_path, "cannot cut off a torn last record");
		g_warning("%s: a torn last record cut off at offset %" G_GSIZE_FORMAT " (%" G_GSIZE_FORMAT
		          " bytes: %s): healerd or the system stopped while it was written, before its append "
		          "returned, so it was never published",
		          outbox->log_path, good_len, contents->len - good_len, torn_reason);
	}
	outbox->log_size = good_len;
	return TRUE;
}

HealerMqttOutbox *
healer_mqtt_outbox_open(const char *dir, guint64 max_bytes, GError **error)
{
	g_autoptr(HealerMqttOutbox) outbox = g_new0(HealerMqttOutbox, 1);
	g_autoptr(GByteArray) contents = g_byte_array_new();
	g_autoptr(GArray) parsed = g_array_new(FALSE, FALSE, sizeof(HealerMqttOutboxLogRecord));
	guint64 last_seq;
	guint above = 0;

	outbox->fd = -1;
	outbox->max_bytes = max_bytes;
	outbox->log_path = g_build_filename(dir, "outbox.log", NULL);
	outbox->acked_path = g_build_filename(dir, "acked", NULL);
	outbox->acked_above = g_array_new(FALSE, FALSE, sizeof(guint64));
	outbox->records = g_array_new(FALSE, FALSE, sizeof(OutboxRecord));
	g_array_set_clear_func(outbox->records, outbox_record_clear);

	if (!ensure_dir(dir, error) || !read_acked(outbox, error) || !read_log(outbox, contents, parsed, error))
		return NULL;

	/* Pending: the records above the watermark that were not acknowledged out of order. */
	last_seq = outbox->watermark;
	for (guint i = 0; i < parsed->len; i++) {
		HealerMqttOutboxLogRecord *in = &g_array_index(parsed, HealerMqttOutboxLogRecord, i);
		OutboxRecord record = {in->seq, NULL, in->payload_len};

		last_seq = MAX(last_seq, in->seq);
		if (in->seq <= outbox->watermark)
			continue;
		while (above < outbox->acked_above->len && g_array_index(outbox->acked_above, guint64, above) < in->seq)
			above++;
		if (above < outbox->acked_above->len && g_array_index(outbox->acked_above, guint64, above) == in->seq)
			continue;
		record.payload = g_malloc(in->payload_len + 1);
		memcpy(record.payload, contents->data + in->offset + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE,
		       in->payload_len);
		record.payload[in->payload_len] = '\0';
		g_array_append_val(outbox->records, record);
		outbox->pending_bytes += in->payload_len;
	}
	if (outbox->acked_above->len > 0)
		last_seq = MAX(last_seq, g_array_index(outbox->acked_above, guint64, outbox->acked_above->len - 1));
	outbox->next_seq = last_seq + 1;
	return g_steal_pointer(&outbox);
}

void
healer_mqtt_outbox_free(HealerMqttOutbox *outbox)
{
	if (outbox == NULL)
		return;
	if (outbox->fd >= 0)
		close(outbox->fd);
	g_array_unref(outbox->records);
	g_array_unref(outbox->acked_above);
	g_free(outbox->log_path);
	g_free(outbox->acked_path);
	g_free(outbox);
}

guint64
healer_mqtt_outbox_next_seq(HealerMqttOutbox *outbox)
{
	return outbox->next_seq;
}

gboolean
healer_mqtt_outbox_append(HealerMqttOutbox *outbox, guint64 seq, const char *payload, gsize len, guint *dropped,
                          GError **error)
{
	g_autoptr(GByteArray) encoded = NULL;
	guint64 kept_bytes = outbox->pending_bytes;
	guint n_drop = 0;
	OutboxRecord record;

	if (dropped != NULL)
		*dropped = 0;
	if (seq != outbox->next_seq)
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		                   "%s: record %" G_GUINT64_FORMAT " appended, but the next is %" G_GUINT64_FORMAT,
		                   outbox->log_path, seq, outbox->next_seq);
	if (len > HEALER_MQTT_OUTBOX_MAX_PAYLOAD)
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		                   "%s: record %" G_GUINT64_FORMAT " of %" G_GSIZE_FORMAT " bytes, more than %u",
		                   outbox->log_path, seq, len, HEALER_MQTT_OUTBOX_MAX_PAYLOAD);
	/* Room for the new record: the oldest go first, the new one always stays. */
	while (n_drop < outbox->records->len && kept_bytes + len > outbox->max_bytes)
		kept_bytes -= record_at(outbox, n_drop++)->len;

	if (!ensure_fd(outbox, error))
		return FALSE;
	encoded = g_byte_array_sized_new((guint)len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD);
	healer_mqtt_outbox_log_add_record(encoded, seq, payload, len);
	if (!write_all_at(outbox->fd, encoded->data, encoded->len, outbox->log_size) || !sync_fd(outbox->fd)) {
		int err = errno;
		cut_tail(outbox);
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot append record %" G_GUINT64_FORMAT ": %s",
		                   outbox->log_path, seq, g_strerror(err));
	}
	if (n_drop > 0) {
		/* Dropped for good: they are acknowledged as far as the outbox goes, so that they never
		 * come back after a restart. */
		guint64 watermark = (n_drop < outbox->records->len ? record_at(outbox, n_drop)->seq : seq) - 1;
		g_autoptr(GArray) above = above_after(outbox->acked_above, watermark);

		if (!write_acked(outbox, watermark, above, error)) {
			cut_tail(outbox);
			g_prefix_error(error,
			               "%s: cannot append record %" G_GUINT64_FORMAT
			               " (it needs %u older ones dropped): ",
			               outbox->log_path, seq, n_drop);
			return FALSE;
		}
		outbox->watermark = watermark;
		g_array_unref(outbox->acked_above);
		outbox->acked_above = g_steal_pointer(&above);
		g_array_remove_range(outbox->records, 0, n_drop);
		outbox->pending_bytes = kept_bytes;
	}
	record.seq = seq;
	record.len = len;
	record.payload = g_malloc(len + 1);
	if (len > 0)
		memcpy(record.payload, payload, len);
	record.payload[len] = '\0';
	g_array_append_val(outbox->records, record);
	outbox->pending_bytes += len;
	outbox->log_size += encoded->len;
	outbox->next_seq = seq + 1;
	if (dropped != NULL)
		*dropped = n_drop;
	if (n_drop > 0)
		maybe_compact(outbox);
	return TRUE;
}

guint
healer_mqtt_outbox_pending(HealerMqttOutbox *outbox)
{
	return outbox->records->len;
}

guint64
healer_mqtt_outbox_pending_bytes(HealerMqttOutbox *outbox)
{
	return outbox->pending_bytes;
}

gboolean
healer_mqtt_outbox_peek(HealerMqttOutbox *outbox, guint index, guint64 *seq, const char **payload, gsize *len)
{
	OutboxRecord *record;

	if (index >= outbox->records->len)
		return FALSE;
	record = record_at(outbox, index);
	if (seq != NULL)
		*seq = record->seq;
	if (payload != NULL)
		*payload = record->payload;
	if (len != NULL)
		*len = record->len;
	return TRUE;
}

/* The index of record `seq` among the unacknowledged ones (they ascend), or -1. */
static gint
find_record(HealerMqttOutbox *outbox, guint64 seq)
{
	guint lo = 0, hi = outbox->records->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		guint64 at = record_at(outbox, mid)->seq;

		if (at == seq)
			return (gint)mid;
		if (at < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static gint
compare_seq(gconstpointer a, gconstpointer b)
{
	guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

	return x < y ? -1 : x > y;
}

gboolean
healer_mqtt_outbox_ack_many(HealerMqttOutbox *outbox, const guint64 *seqs, guint n, GError **error)
{
	g_autoptr(GArray) acked = g_array_new(FALSE, FALSE, sizeof(guint64));
	g_autoptr(GArray) above = NULL;
	guint64 watermark = outbox->watermark;
	guint front = 0;

	/* The pending ones among them, ascending, once each. */
	for (guint i = 0; i < n; i++) {
		if (find_record(outbox, seqs[i]) >= 0)
			g_array_append_val(acked, seqs[i]);
	}
	if (acked->len == 0)
		return TRUE;
	g_array_sort(acked, compare_seq);
	for (guint i = 1; i < acked->len;) {
		if (g_array_index(acked, guint64, i) == g_array_index(acked, guint64, i - 1))
			g_array_remove_index(acked, i);
		else
			i++;
	}

	/* When the oldest pending records are among them, the watermark moves up to just below the
	 * first record left. */
	while (front < outbox->records->len &&
	       g_array_binary_search(acked, &record_at(outbox, front)->seq, compare_seq, NULL))
		front++;
	if (front > 0)
		watermark = (front < outbox->records->len ? record_at(outbox, front)->seq : outbox->next_seq) - 1;
	above = above_after(outbox->acked_above, watermark);
	for (guint i = 0; i < acked->len; i++) {
		if (g_array_index(acked, guint64, i) > watermark)
			g_array_append_val(above, g_array_index(acked, guint64, i));
	}
	g_array_sort(above, compare_seq);
	if (!write_acked(outbox, watermark, above, error))
		return FALSE;

	outbox->watermark = watermark;
	g_array_unref(outbox->acked_above);
	outbox->acked_above = g_steal_pointer(&above);
	for (guint i = acked->len; i-- > 0;) {
		guint index = (guint)find_record(outbox, g_array_index(acked, guint64, i));
		outbox->pending_bytes -= record_at(outbox, index)->len;
		g_array_remove_index(outbox->records, index);
	}
	maybe_compact(outbox);
	return TRUE;
}

gboolean
healer_mqtt_outbox_ack(HealerMqttOutbox *outbox, guint64 seq, GError **error)
{
	return healer_mqtt_outbox_ack_many(outbox, &seq, 1, error);
}
