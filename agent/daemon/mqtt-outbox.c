/*
 * The MQTT outbox on disk: outbox.log and acked in DIR (their bytes: mqtt-outbox-log.h).
 *
 * Durability: a batch of records is written with one pwrite() at the end of the good records and
 * fdatasync()ed before the append returns; acked is replaced whole by healer_file_write_atomic()
 * (temp file, fsync, rename, directory fsync), and a compacted outbox.log the same way, streamed
 * record by record from the old file into the temp file.
 *
 * Memory: the payloads stay on disk.  Each unacknowledged record is 16 bytes here (seq, offset,
 * length); publishing reads the few records in flight back with pread() (the page cache, for a
 * record written moments ago).  Opening reads outbox.log a window at a time (256 KiB), so a full
 * outbox never passes through healerd's memory whole: its memory target is 16 MiB, and the default
 * bound is as much again.
 *
 * The descriptor is not O_APPEND: Linux's pwrite() on an O_APPEND descriptor ignores the offset,
 * and an append that failed half-way must be overwritten at the known end of the good records,
 * not after its own remains.
 */
#define _GNU_SOURCE

#include "mqtt-outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "healer-error.h"
#include "healer-file.h"
#include "mqtt-outbox-log.h"

/* Acknowledged records are compacted away once they are more than half of outbox.log and at
 * least this many bytes: a file of a few records is not rewritten at every acknowledgement. */
#define COMPACT_MIN_BYTES (64 * 1024)

/* 16 bytes: a full outbox holds tens of thousands.  21 bits hold HEALER_MQTT_OUTBOX_MAX_PAYLOAD
 * (1 MiB) itself; 43 bits of offset are 8 TiB of outbox.log. */
typedef struct {
	guint64 seq;
	guint64 offset : 43; /* of the record (its header) in outbox.log */
	guint64 len : 21;    /* of its payload */
} OutboxRecord;

G_STATIC_ASSERT(sizeof(OutboxRecord) == 16);
G_STATIC_ASSERT(HEALER_MQTT_OUTBOX_MAX_PAYLOAD < (1u << 21));

/*
 * Threads: one writer (whoever appends, skips and acknowledges: healerd's outbox thread) and any
 * number of readers.  The writer reads the structures freely (nobody else changes them) and does
 * its disk work without the lock; it holds the lock only while it changes them.  Readers hold it
 * for what they read, so they never wait for a sync.
 */
struct _HealerMqttOutbox {
	GMutex lock;
	char *log_path;
	char *acked_path;
	guint64 max_bytes;
	guint64 drop_slack;  /* free besides the new records once an append must drop */
	int fd;              /* outbox.log; -1 after a compaction could not open the new file */
	guint64 log_size;    /* where the good records end: the next one goes there */
	gboolean tail_dirty; /* a failed append may have left bytes past log_size */
	guint64 watermark;   /* every record up to it was acknowledged or dropped */
	GArray *acked_above; /* guint64, ascending, each above the watermark: acknowledged out of order */
	GArray *records;     /* OutboxRecord: the unacknowledged ones from `head` on, oldest first */
	guint head;          /* records before it were acknowledged: dropped from the array lazily */
	guint64 pending_bytes;
	guint64 next_seq;
	gboolean compact_failed; /* said once, until a compaction works again */
	gboolean compact_soon;   /* a record failed its read-back: the next chance compacts, whatever the sizes */
};

static guint
n_pending(HealerMqttOutbox *outbox)
{
	return outbox->records->len - outbox->head;
}

static OutboxRecord *
record_at(HealerMqttOutbox *outbox, guint index)
{
	return &g_array_index(outbox->records, OutboxRecord, outbox->head + index);
}

/* Forgets the n oldest pending records.  Acknowledgements come at the front, a few at a time, of an
 * array that may hold tens of thousands: the array is shifted only once its dead front is most of
 * it, not at every acknowledgement. */
static void
drop_front(HealerMqttOutbox *outbox, guint n)
{
	outbox->head += n;
	if (outbox->head >= 1024 && outbox->head * 2 >= outbox->records->len) {
		g_array_remove_range(outbox->records, 0, outbox->head);
		outbox->head = 0;
	}
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
		int fd = open(outbox->log_path, O_RDWR | O_CLOEXEC);

		if (fd < 0)
			return fail_errno(error, errno, outbox->log_path, "cannot open");
		g_mutex_lock(&outbox->lock);
		outbox->fd = fd;
		g_mutex_unlock(&outbox->lock);
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

/* FALSE with errno set; a file that ends first is EIO (a record the outbox knows must be there). */
static gboolean
read_all_at(int fd, guint8 *data, gsize len, guint64 offset)
{
	while (len > 0) {
		ssize_t n = pread(fd, data, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return FALSE;
		}
		data += n, len -= (gsize)n, offset += (guint64)n;
	}
	return TRUE;
}

/* The bytes of a record in outbox.log: its header, its payload, its CRC. */
static guint64
record_size(const OutboxRecord *record)
{
	return (guint64)record->len + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
}

/* Compaction copies through a buffer of this size: the records are never all in memory. */
#define COPY_CHUNK (64 * 1024)

/* The temp file a compaction writes, renamed over outbox.log when it is complete and synced. */
#define COMPACT_SUFFIX ".compact-"

/*
 * Writes the unacknowledged records into a new file and renames it over outbox.log.  Records that
 * sit back to back in the old file (all of them, unless acknowledgements came out of order) are
 * copied as one run.  On success the new file's descriptor replaces the old one and the records'
 * offsets are the new file's; on failure nothing changed.
 */
static gboolean
compact(HealerMqttOutbox *outbox, GError **error)
{
	g_autofree char *tmp_path = g_strconcat(outbox->log_path, COMPACT_SUFFIX "XXXXXX", NULL);
	g_autoptr(GByteArray) header = g_byte_array_new();
	g_autoptr(GArray) offsets = g_array_sized_new(FALSE, FALSE, sizeof(guint64), n_pending(outbox));
	g_autofree guint8 *buf = NULL;
	guint64 out_off;
	gboolean ok;
	int tmp;

	if (!ensure_fd(outbox, error))
		return FALSE;
	tmp = g_mkstemp_full(tmp_path, O_RDWR | O_CLOEXEC, 0600);
	if (tmp < 0)
		return fail_errno(error, errno, tmp_path, "cannot create");
	healer_mqtt_outbox_log_add_header(header);
	ok = write_all_at(tmp, header->data, header->len, 0);
	out_off = header->len;
	buf = g_malloc(COPY_CHUNK);
	for (guint i = 0; ok && i < n_pending(outbox);) {
		guint64 run_start = record_at(outbox, i)->offset;
		guint64 run_end = run_start + record_size(record_at(outbox, i));
		guint j = i + 1;

		while (j < n_pending(outbox) && record_at(outbox, j)->offset == run_end)
			run_end += record_size(record_at(outbox, j++));
		for (guint64 done = 0; ok && done < run_end - run_start;) {
			gsize chunk = (gsize)MIN((guint64)COPY_CHUNK, run_end - run_start - done);

			ok = read_all_at(outbox->fd, buf, chunk, run_start + done) &&
			     write_all_at(tmp, buf, chunk, out_off + done);
			done += chunk;
		}
		for (; i < j; i++) {
			guint64 at = out_off + (record_at(outbox, i)->offset - run_start);
			g_array_append_val(offsets, at);
		}
		out_off += run_end - run_start;
	}
	ok = ok && sync_fd(tmp) && rename(tmp_path, outbox->log_path) == 0;
	if (!ok) {
		int err = errno;

		close(tmp);
		(void)unlink(tmp_path);
		return fail_errno(error, err, tmp_path, "cannot write the compacted outbox");
	}
	sync_parent(outbox->log_path);
	/* The temp file is outbox.log now; the old descriptor holds the replaced file. */
	g_mutex_lock(&outbox->lock);
	close(outbox->fd);
	outbox->fd = tmp;
	for (guint i = 0; i < n_pending(outbox); i++)
		record_at(outbox, i)->offset = g_array_index(offsets, guint64, i);
	outbox->log_size = out_off;
	outbox->tail_dirty = FALSE;
	g_mutex_unlock(&outbox->lock);
	return TRUE;
}

/* Rewrites outbox.log with the unacknowledged records only, when the others are most of it. */
static void
maybe_compact(HealerMqttOutbox *outbox)
{
	guint64 pending_size = HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE + outbox->pending_bytes +
	                       (guint64)n_pending(outbox) * HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
	guint64 acked_size = outbox->log_size - pending_size;
	g_autoptr(GError) error = NULL;

	gboolean soon;

	g_mutex_lock(&outbox->lock);
	soon = outbox->compact_soon;
	g_mutex_unlock(&outbox->lock);
	/* A damaged record, once given up (acknowledged), must leave the file: the next open would refuse
	 * the whole outbox for it. */
	if (!soon && (acked_size < COMPACT_MIN_BYTES || acked_size * 2 <= outbox->log_size))
		return;
	if (!compact(outbox, &error)) {
		/* The acknowledgement itself is recorded: the file is only bigger than it needs to be. */
		if (!outbox->compact_failed)
			g_warning("%s: cannot compact (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			          " bytes acknowledged): %s; tried again at the next acknowledgement",
			          outbox->log_path, acked_size, outbox->log_size, error->message);
		outbox->compact_failed = TRUE;
		return;
	}
	outbox->compact_failed = FALSE;
	g_mutex_lock(&outbox->lock);
	outbox->compact_soon = FALSE;
	g_mutex_unlock(&outbox->lock);
}

/* A compaction healerd did not live to rename is a partial copy: outbox.log is still whole. */
static void
remove_stale_compactions(const char *dir)
{
	g_autoptr(GDir) listing = g_dir_open(dir, 0, NULL);
	const char *name;

	while (listing != NULL && (name = g_dir_read_name(listing)) != NULL) {
		if (g_str_has_prefix(name, "outbox.log" COMPACT_SUFFIX)) {
			g_autofree char *path = g_build_filename(dir, name, NULL);
			(void)unlink(path);
		}
	}
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

/* outbox.log is read this much at a time at open (more for a record, or zeros, that do not fit). */
#define READ_WINDOW (256 * 1024)

/*
 * Finds the good records of outbox.log (of `size` bytes), a window at a time: a full outbox is
 * tens of megabytes, and reading it whole would put all of it in healerd's memory at every start.
 * Sets *good_len to where they end.
 */
static gboolean
scan_log(HealerMqttOutbox *outbox, guint64 size, GArray *parsed, guint64 *good_len, const char **torn_reason,
         GError **error)
{
	guint8 header[HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE];
	g_autofree guint8 *buf = NULL;
	gsize window = READ_WINDOW;
	guint64 off = HEALER_MQTT_OUTBOX_LOG_HEADER_SIZE, prev_seq = 0;

	*torn_reason = NULL;
	if (size < sizeof header)
		return healer_mqtt_outbox_log_parse_header(outbox->log_path, (const guint8 *)"", 0, error);
	if (!read_all_at(outbox->fd, header, sizeof header, 0))
		return fail_errno(error, errno, outbox->log_path, "cannot read");
	if (!healer_mqtt_outbox_log_parse_header(outbox->log_path, header, sizeof header, error))
		return FALSE;
	buf = g_malloc(window);
	while (off < size && *torn_reason == NULL) {
		gsize want = (gsize)MIN((guint64)window, size - off);
		guint64 next = off;

		if (!read_all_at(outbox->fd, buf, want, off))
			return fail_errno(error, errno, outbox->log_path, "cannot read");
		if (!healer_mqtt_outbox_log_parse_window(outbox->log_path, buf, want, off, size, &prev_seq, parsed,
		                                         &next, torn_reason, error))
			return FALSE;
		if (next == off && *torn_reason == NULL) {
			/* A record longer than the window, or zeros up to its end: read more at once. */
			window *= 2;
			buf = g_realloc(buf, window);
		}
		off = next;
	}
	*good_len = off;
	return TRUE;
}

/* Opens outbox.log (made with just its header when missing) and finds its good records. */
static gboolean
read_log(HealerMqttOutbox *outbox, GArray *parsed, GError **error)
{
	const char *torn_reason = NULL;
	guint64 good_len = 0, size;
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
	size = (guint64)st.st_size;
	if (!scan_log(outbox, size, parsed, &good_len, &torn_reason, error))
		return FALSE;
	if (good_len < size) {
		/* healerd stopped in the middle of an append, which therefore never returned: the record was
		 * never handed to the broker, and its sequence number is the next one's again. */
		if (ftruncate(outbox->fd, (off_t)good_len) != 0 || !sync_fd(outbox->fd))
			return fail_errno(error, errno, outbox->log_path, "cannot cut off a torn last record");
		g_warning("%s: a torn last record cut off at offset %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
		          " bytes: %s): healerd or the system stopped while it was written, before its append "
		          "returned, so it was never published",
		          outbox->log_path, good_len, size - good_len, torn_reason);
	}
	outbox->log_size = good_len;
	return TRUE;
}

HealerMqttOutbox *
healer_mqtt_outbox_open(const char *dir, guint64 max_bytes, GError **error)
{
	g_autoptr(HealerMqttOutbox) outbox = g_new0(HealerMqttOutbox, 1);
	g_autoptr(GArray) parsed = g_array_new(FALSE, FALSE, sizeof(HealerMqttOutboxLogRecord));
	guint64 last_seq;
	guint above = 0;

	g_mutex_init(&outbox->lock);
	outbox->fd = -1;
	outbox->max_bytes = max_bytes;
	outbox->log_path = g_build_filename(dir, "outbox.log", NULL);
	outbox->acked_path = g_build_filename(dir, "acked", NULL);
	outbox->acked_above = g_array_new(FALSE, FALSE, sizeof(guint64));
	outbox->records = g_array_new(FALSE, FALSE, sizeof(OutboxRecord));

	if (!ensure_dir(dir, error) || !read_acked(outbox, error) || !read_log(outbox, parsed, error))
		return NULL;
	remove_stale_compactions(dir);

	/* Pending: the records above the watermark that were not acknowledged out of order. */
	last_seq = outbox->watermark;
	for (guint i = 0; i < parsed->len; i++) {
		HealerMqttOutboxLogRecord *in = &g_array_index(parsed, HealerMqttOutboxLogRecord, i);
		OutboxRecord record = {.seq = in->seq, .offset = in->offset, .len = in->payload_len};

		last_seq = MAX(last_seq, in->seq);
		if (in->seq <= outbox->watermark)
			continue;
		while (above < outbox->acked_above->len && g_array_index(outbox->acked_above, guint64, above) < in->seq)
			above++;
		if (above < outbox->acked_above->len && g_array_index(outbox->acked_above, guint64, above) == in->seq)
			continue;
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
	g_mutex_clear(&outbox->lock);
	g_free(outbox);
}

void
healer_mqtt_outbox_set_drop_slack(HealerMqttOutbox *outbox, guint64 bytes)
{
	g_mutex_lock(&outbox->lock);
	outbox->drop_slack = bytes;
	g_mutex_unlock(&outbox->lock);
}

guint64
healer_mqtt_outbox_next_seq(HealerMqttOutbox *outbox)
{
	g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new(&outbox->lock);

	return outbox->next_seq;
}

/* "record 7" or "records 7 to 9", for messages about an append. */
static char *
describe_batch(guint64 first, guint n)
{
	if (n == 1)
		return g_strdup_printf("record %" G_GUINT64_FORMAT, first);
	return g_strdup_printf("records %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT, first, first + n - 1);
}

gboolean
healer_mqtt_outbox_append_many(HealerMqttOutbox *outbox, const char *const *payloads, const gsize *lens, guint n,
                               guint *dropped, GError **error)
{
	g_autoptr(GByteArray) encoded = NULL;
	g_autoptr(GArray) above = NULL;
	g_autofree char *what = NULL;
	guint64 first = outbox->next_seq, kept_bytes = outbox->pending_bytes, new_bytes = 0, offset;
	gsize encoded_size = 0;
	guint n_drop = 0;

	if (dropped != NULL)
		*dropped = 0;
	if (n == 0)
		return TRUE;
	for (guint i = 0; i < n; i++) {
		if (lens[i] > HEALER_MQTT_OUTBOX_MAX_PAYLOAD)
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "%s: record %" G_GUINT64_FORMAT " of %" G_GSIZE_FORMAT
			                   " bytes, more than %u",
			                   outbox->log_path, first + i, lens[i], HEALER_MQTT_OUTBOX_MAX_PAYLOAD);
		new_bytes += lens[i];
		encoded_size += lens[i] + HEALER_MQTT_OUTBOX_RECORD_OVERHEAD;
	}
	what = describe_batch(first, n);
	/* Room for the new records (and the slack, once dropping): the oldest go first, the new ones
	 * always stay. */
	if (kept_bytes + new_bytes > outbox->max_bytes) {
		guint64 target = outbox->max_bytes - MIN(outbox->drop_slack, outbox->max_bytes);

		while (n_drop < n_pending(outbox) && kept_bytes + new_bytes > target)
			kept_bytes -= record_at(outbox, n_drop++)->len;
	}

	if (!ensure_fd(outbox, error))
		return FALSE;
	encoded = g_byte_array_sized_new((guint)encoded_size);
	for (guint i = 0; i < n; i++)
		healer_mqtt_outbox_log_add_record(encoded, first + i, payloads[i], lens[i]);
	if (!write_all_at(outbox->fd, encoded->data, encoded->len, outbox->log_size) || !sync_fd(outbox->fd)) {
		int err = errno;
		cut_tail(outbox);
		return healer_fail(error, HEALER_ERROR_IO, "%s: cannot append %s: %s", outbox->log_path, what,
		                   g_strerror(err));
	}
	if (n_drop > 0) {
		/* Dropped for good: they are acknowledged as far as the outbox goes, so that they never
		 * come back after a restart. */
		guint64 watermark = (n_drop < n_pending(outbox) ? record_at(outbox, n_drop)->seq : first) - 1;

		above = above_after(outbox->acked_above, watermark);
		if (!write_acked(outbox, watermark, above, error)) {
			cut_tail(outbox);
			g_prefix_error(error,
			               "%s: cannot append %s (it needs %u older ones dropped): ", outbox->log_path,
			               what, n_drop);
			return FALSE;
		}
		g_mutex_lock(&outbox->lock);
		outbox->watermark = watermark;
		g_array_unref(outbox->acked_above);
		outbox->acked_above = g_steal_pointer(&above);
		drop_front(outbox, n_drop);
		outbox->pending_bytes = kept_bytes;
	} else {
		g_mutex_lock(&outbox->lock);
	}
	offset = outbox->log_size;
	for (guint i = 0; i < n; i++) {
		OutboxRecord record = {.seq = first + i, .offset = offset, .len = lens[i]};

		g_array_append_val(outbox->records, record);
		offset += record_size(&record);
	}
	outbox->pending_bytes += new_bytes;
	outbox->log_size += encoded->len;
	outbox->next_seq = first + n;
	g_mutex_unlock(&outbox->lock);
	if (dropped != NULL)
		*dropped = n_drop;
	if (n_drop > 0)
		maybe_compact(outbox);
	return TRUE;
}

gboolean
healer_mqtt_outbox_append(HealerMqttOutbox *outbox, guint64 seq, const char *payload, gsize len, guint *dropped,
                          GError **error)
{
	if (dropped != NULL)
		*dropped = 0;
	if (seq != outbox->next_seq)
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		                   "%s: record %" G_GUINT64_FORMAT " appended, but the next is %" G_GUINT64_FORMAT,
		                   outbox->log_path, seq, outbox->next_seq);
	return healer_mqtt_outbox_append_many(outbox, &payload, &len, 1, dropped, error);
}

void
healer_mqtt_outbox_skip(HealerMqttOutbox *outbox, guint n)
{
	g_mutex_lock(&outbox->lock);
	outbox->next_seq += n;
	g_mutex_unlock(&outbox->lock);
}

guint
healer_mqtt_outbox_pending(HealerMqttOutbox *outbox)
{
	g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new(&outbox->lock);

	return n_pending(outbox);
}

guint64
healer_mqtt_outbox_pending_bytes(HealerMqttOutbox *outbox)
{
	g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new(&outbox->lock);

	return outbox->pending_bytes;
}

gboolean
healer_mqtt_outbox_peek(HealerMqttOutbox *outbox, guint index, guint64 *seq, gsize *len)
{
	g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new(&outbox->lock);
	OutboxRecord *record;

	if (index >= n_pending(outbox))
		return FALSE;
	record = record_at(outbox, index);
	if (seq != NULL)
		*seq = record->seq;
	if (len != NULL)
		*len = record->len;
	return TRUE;
}

/* healer_mqtt_outbox_read() with the lock held. */
static char *
read_locked(HealerMqttOutbox *outbox, guint index, gsize *len, GError **error)
{
	g_autofree guint8 *bytes = NULL;
	OutboxRecord record;
	gsize size;

	if (index >= n_pending(outbox)) {
		healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "%s: no pending record %u (%u pending)",
		            outbox->log_path, index, n_pending(outbox));
		return NULL;
	}
	record = *record_at(outbox, index);
	size = (gsize)record_size(&record);
	bytes = g_malloc(size + 1);
	if (!read_all_at(outbox->fd, bytes, size, record.offset)) {
		fail_errno(error, errno, outbox->log_path, "cannot read back a pending record");
		return NULL;
	}
	if (!healer_mqtt_outbox_log_check_record(outbox->log_path, record.offset, bytes, size, record.seq, error)) {
		outbox->compact_soon = TRUE;
		return NULL;
	}
	memmove(bytes, bytes + HEALER_MQTT_OUTBOX_RECORD_HEADER_SIZE, record.len);
	bytes[record.len] = '\0';
	if (len != NULL)
		*len = record.len;
	return (char *)g_steal_pointer(&bytes);
}

char *
healer_mqtt_outbox_read(HealerMqttOutbox *outbox, guint index, gsize *len, GError **error)
{
	g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new(&outbox->lock);

	return read_locked(outbox, index, len, error);
}

char *
healer_mqtt_outbox_read_next(HealerMqttOutbox *outbox, guint64 from_seq, guint64 *seq, gsize *len, GError **error)
{
	g_autoptr(GMutexLocker) locker G_GNUC_UNUSED = g_mutex_locker_new(&outbox->lock);
	guint lo = 0, hi = n_pending(outbox);

	/* Pending records ascend (with holes where some were acknowledged out of order). */
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;

		if (record_at(outbox, mid)->seq < from_seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	*seq = 0;
	if (lo == n_pending(outbox))
		return NULL;
	*seq = record_at(outbox, lo)->seq;
	return read_locked(outbox, lo, len, error);
}

/* The index of record `seq` among the unacknowledged ones (they ascend), or -1. */
static gint
find_record(HealerMqttOutbox *outbox, guint64 seq)
{
	guint lo = 0, hi = n_pending(outbox);

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
	while (front < n_pending(outbox) &&
	       g_array_binary_search(acked, &record_at(outbox, front)->seq, compare_seq, NULL))
		front++;
	if (front > 0)
		watermark = (front < n_pending(outbox) ? record_at(outbox, front)->seq : outbox->next_seq) - 1;
	above = above_after(outbox->acked_above, watermark);
	for (guint i = 0; i < acked->len; i++) {
		if (g_array_index(acked, guint64, i) > watermark)
			g_array_append_val(above, g_array_index(acked, guint64, i));
	}
	g_array_sort(above, compare_seq);
	if (!write_acked(outbox, watermark, above, error))
		return FALSE;

	g_mutex_lock(&outbox->lock);
	outbox->watermark = watermark;
	g_array_unref(outbox->acked_above);
	outbox->acked_above = g_steal_pointer(&above);
	/* Those acknowledged out of order, from the newest (their indexes stay right), then the front. */
	for (guint i = acked->len; i-- > 0 && g_array_index(acked, guint64, i) > watermark;) {
		guint index = (guint)find_record(outbox, g_array_index(acked, guint64, i));
		outbox->pending_bytes -= record_at(outbox, index)->len;
		g_array_remove_index(outbox->records, outbox->head + index);
	}
	for (guint i = 0; i < front; i++)
		outbox->pending_bytes -= record_at(outbox, i)->len;
	drop_front(outbox, front);
	g_mutex_unlock(&outbox->lock);
	maybe_compact(outbox);
	return TRUE;
}

gboolean
healer_mqtt_outbox_ack(HealerMqttOutbox *outbox, guint64 seq, GError **error)
{
	return healer_mqtt_outbox_ack_many(outbox, &seq, 1, error);
}
