/*
 * What the MQTT outbox (agent/daemon/mqtt-outbox.c) costs per event: an append (written and
 * fdatasync()ed), an append at the bound (the oldest dropped: acked rewritten too), an
 * acknowledgement in order (acked replaced atomically, compactions included), acknowledgements 20 at a
 * time (healer_mqtt_outbox_ack_many), appends 8, 32 and 128 at a time (healer_mqtt_outbox_append_many:
 * the face's group commit), reading a record back (what publishing it costs) and opening an
 * outbox holding 10,000 pending events.  Events of 300 bytes.  On tmpfs a sync costs nothing, so
 * each runs on a disk directory too.  Prints a table; it passes or fails nothing.
 *
 *   build/bench/bench-mqtt-outbox [DIR...]      (default: /dev/shm /var/tmp)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>

#include <glib/gstdio.h>

#include "mqtt-outbox-log.h"
#include "mqtt-outbox.h"

#define EVENT_BYTES  300
#define REOPEN_COUNT 10000
#define ACK_BATCH    20
#define TMPFS_MAGIC  0x01021994

static char *
make_event(guint64 seq)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "{\"seq\":%" G_GUINT64_FORMAT ",\"event\":\"heal-step\",\"text\":\"", seq);
	while (s->len + 2 < EVENT_BYTES)
		g_string_append_c(s, (char)('a' + s->len % 26));
	g_string_append(s, "\"}");
	return g_string_free(s, FALSE);
}

static void
remove_outbox(const char *dir)
{
	g_autofree char *log = g_build_filename(dir, "outbox.log", NULL);
	g_autofree char *acked = g_build_filename(dir, "acked", NULL);

	g_unlink(log);
	g_unlink(acked);
	g_rmdir(dir);
}

static HealerMqttOutbox *
open_or_die(const char *dir, guint64 max_bytes)
{
	g_autoptr(GError) error = NULL;
	HealerMqttOutbox *outbox = healer_mqtt_outbox_open(dir, max_bytes, &error);

	if (outbox == NULL)
		g_error("%s", error->message);
	return outbox;
}

static void
append_or_die(HealerMqttOutbox *outbox)
{
	guint64 seq = healer_mqtt_outbox_next_seq(outbox);
	g_autofree char *event = make_event(seq);
	g_autoptr(GError) error = NULL;

	if (!healer_mqtt_outbox_append(outbox, seq, event, strlen(event), NULL, &error))
		g_error("%s", error->message);
}

static void
append_batch_or_die(HealerMqttOutbox *outbox, guint n)
{
	guint64 first = healer_mqtt_outbox_next_seq(outbox);
	g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func(g_free);
	g_autofree gsize *lens = g_new(gsize, n);
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < n; i++) {
		g_ptr_array_add(events, make_event(first + i));
		lens[i] = strlen(g_ptr_array_index(events, i));
	}
	if (!healer_mqtt_outbox_append_many(outbox, (const char *const *)events->pdata, lens, n, NULL, &error))
		g_error("%s", error->message);
}

static void
row(const char *fs, const char *what, guint events, gint64 us)
{
	gdouble per = (gdouble)us / events;

	printf("%-6s %-34s %8u %12.1f %12.0f\n", fs, what, events, per, 1e6 / per);
}

static void
bench_dir(const char *parent, guint n)
{
	g_autofree char *dir = g_build_filename(parent, "bench-mqtt-outbox", NULL);
	struct statfs sfs;
	const char *fs;
	gint64 start;

	if (statfs(parent, &sfs) != 0)
		g_error("%s: %s", parent, g_strerror(errno));
	fs = sfs.f_type == TMPFS_MAGIC ? "tmpfs" : "disk";
	remove_outbox(dir);

	/* Appends, then their acknowledgements in order. */
	{
		g_autoptr(HealerMqttOutbox) outbox = open_or_die(dir, 16 << 20);

		start = g_get_monotonic_time();
		for (guint i = 0; i < n; i++)
			append_or_die(outbox);
		row(fs, "append (pwrite + fdatasync)", n, g_get_monotonic_time() - start);
		start = g_get_monotonic_time();
		for (guint64 seq = 1; seq <= n; seq++) {
			g_autoptr(GError) error = NULL;
			if (!healer_mqtt_outbox_ack(outbox, seq, &error))
				g_error("%s", error->message);
		}
		row(fs, "ack in order (acked replaced)", n, g_get_monotonic_time() - start);

		/* The same, acknowledged 20 at a time (mosquitto's default in-flight window). */
		for (guint i = 0; i < n; i++)
			append_or_die(outbox);
		start = g_get_monotonic_time();
		for (guint64 seq = n + 1; seq <= 2 * (guint64)n; seq += ACK_BATCH) {
			g_autoptr(GError) error = NULL;
			guint64 batch[ACK_BATCH];
			guint k = 0;

			for (; k < ACK_BATCH && seq + k <= 2 * (guint64)n; k++)
				batch[k] = seq + k;
			if (!healer_mqtt_outbox_ack_many(outbox, batch, k, &error))
				g_error("%s", error->message);
		}
		row(fs, "ack_many, 20 at a time", n, g_get_monotonic_time() - start);
		g_assert(healer_mqtt_outbox_pending(outbox) == 0);

		/* Group commit: the events of one main-loop dispatch written with one sync. */
		for (guint batch = 8; batch <= 256; batch *= 4) {
			g_autofree char *what = g_strdup_printf("append_many, %u at a time", batch);

			start = g_get_monotonic_time();
			for (guint done = 0; done < n; done += batch)
				append_batch_or_die(outbox, MIN(batch, n - done));
			row(fs, what, n, g_get_monotonic_time() - start);
		}
		/* What publishing costs per record: read back from outbox.log and CRC-checked. */
		start = g_get_monotonic_time();
		for (guint i = 0; i < healer_mqtt_outbox_pending(outbox); i++) {
			g_autoptr(GError) error = NULL;
			g_autofree char *payload = healer_mqtt_outbox_read(outbox, i, NULL, &error);

			if (payload == NULL)
				g_error("%s", error->message);
		}
		row(fs, "read back (pread + CRC-32)", healer_mqtt_outbox_pending(outbox),
		    g_get_monotonic_time() - start);
	}
	remove_outbox(dir);

	/* At the bound: every append drops the oldest. */
	{
		guint64 bound = 64 * EVENT_BYTES;
		g_autoptr(HealerMqttOutbox) outbox = open_or_die(dir, bound);

		for (guint i = 0; i < 64; i++)
			append_or_die(outbox);
		start = g_get_monotonic_time();
		for (guint i = 0; i < n; i++)
			append_or_die(outbox);
		row(fs, "append at the bound (drops oldest)", n, g_get_monotonic_time() - start);
	}
	remove_outbox(dir);
	/* The same with the face's drop slack (a 64th of the bound, at least 1 KiB: mqtt-face.c), at a
	 * bound of 16 MiB: drops come in steps of some 870 events, acked written once per step. */
	{
		guint64 bound = 16 << 20;
		g_autoptr(HealerMqttOutbox) outbox = open_or_die(dir, bound);
		guint fill = (guint)(bound / EVENT_BYTES);

		healer_mqtt_outbox_set_drop_slack(outbox, bound / 64);
		for (guint done = 0; done < fill; done += 256)
			append_batch_or_die(outbox, MIN(256, fill - done));
		start = g_get_monotonic_time();
		for (guint i = 0; i < n; i++)
			append_or_die(outbox);
		row(fs, "append at 16 MiB bound, drop slack", n, g_get_monotonic_time() - start);
	}
	remove_outbox(dir);

	/* Open with 10,000 pending: the file written directly, the open timed (best of 5). */
	{
		g_autoptr(GByteArray) log = g_byte_array_new();
		g_autofree char *log_path = NULL;
		g_autoptr(GError) error = NULL;
		gint64 best = G_MAXINT64;

		healer_mqtt_outbox_log_add_header(log);
		for (guint64 seq = 1; seq <= REOPEN_COUNT; seq++) {
			g_autofree char *event = make_event(seq);
			healer_mqtt_outbox_log_add_record(log, seq, event, strlen(event));
		}
		g_mkdir_with_parents(dir, 0700);
		log_path = g_build_filename(dir, "outbox.log", NULL);
		if (!g_file_set_contents(log_path, (const char *)log->data, log->len, &error))
			g_error("%s", error->message);
		for (guint r = 0; r < 5; r++) {
			HealerMqttOutbox *outbox;

			start = g_get_monotonic_time();
			outbox = open_or_die(dir, 16 << 20);
			best = MIN(best, g_get_monotonic_time() - start);
			g_assert(healer_mqtt_outbox_pending(outbox) == REOPEN_COUNT);
			healer_mqtt_outbox_free(outbox);
		}
		row(fs, "open with 10000 pending (per event)", REOPEN_COUNT, best);
	}
	remove_outbox(dir);
}

int
main(int argc, char **argv)
{
	const char *defaults[] = {"/dev/shm", "/var/tmp"};
	const char *const *dirs = argc > 1 ? (const char *const *)argv + 1 : defaults;
	guint n_dirs = argc > 1 ? (guint)argc - 1 : G_N_ELEMENTS(defaults);

	printf("# MQTT outbox: %u-byte events; disk = not tmpfs\n", EVENT_BYTES);
	printf("%-6s %-34s %8s %12s %12s\n", "fs", "operation", "events", "us/event", "events/s");
	for (guint i = 0; i < n_dirs; i++)
		bench_dir(dirs[i], 1000);
	return 0;
}
