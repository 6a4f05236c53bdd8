/*
 * The MQTT outbox's writer: a thread of its own that does the outbox's appends and acknowledgements
 * (each a disk sync, milliseconds on a disk and far more on a worn SD card), so that the main loop,
 * and every device it serves, never waits for them: "healing never waits for MQTT".
 *
 * Jobs run one at a time in the order they were given; each one's result comes back on the main
 * context of the thread that made the writer (its thread-default context), in the same order, to
 * the `done` callback.  Between a job's submission and its result, the outbox can be read from the
 * main thread as it was (mqtt-outbox.h: readers never wait for the writer's syncs).
 */
#pragma once

#include <glib.h>

#include "mqtt-outbox.h"

G_BEGIN_DECLS

typedef struct _HealerMqttOutboxWriter HealerMqttOutboxWriter;

typedef enum {
	HEALER_MQTT_OUTBOX_WRITER_APPEND,
	HEALER_MQTT_OUTBOX_WRITER_ACK,
} HealerMqttOutboxWriterJobKind;

typedef struct {
	HealerMqttOutboxWriterJobKind kind;
	GPtrArray *payloads; /* APPEND: char *, NUL-terminated, numbered first_seq onwards */
	guint64 first_seq;   /* APPEND: the number the outbox gave the first (next_seq when it ran) */
	guint dropped;       /* APPEND: older records dropped to make room */
	GArray *seqs;        /* ACK: guint64, the records the broker acknowledged */
	GError *error;       /* NULL: done.  APPEND: none appended, and their numbers used up
	                      * (healer_mqtt_outbox_skip()); ACK: none recorded, all still pending */
} HealerMqttOutboxWriterResult;

typedef void (*HealerMqttOutboxWriterDone)(const HealerMqttOutboxWriterResult *result, gpointer user_data);

/* `outbox` stays the caller's and must outlive the writer. */
HealerMqttOutboxWriter *healer_mqtt_outbox_writer_new(HealerMqttOutbox *outbox, HealerMqttOutboxWriterDone done,
                                                      gpointer user_data);
/* Waits for the jobs given (their results are not delivered), then stops the thread. */
void healer_mqtt_outbox_writer_free(HealerMqttOutboxWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerMqttOutboxWriter, healer_mqtt_outbox_writer_free)

/* Appends `payloads` (char *, taken) as the next records, with one sync. */
void healer_mqtt_outbox_writer_append(HealerMqttOutboxWriter *writer, GPtrArray *payloads);
/* Records the acknowledgement of `seqs` (guint64, taken), with one write. */
void healer_mqtt_outbox_writer_ack(HealerMqttOutboxWriter *writer, GArray *seqs);
/*
 * Waits until every job given has run and delivers the results not yet delivered, now, on the
 * calling thread (which must be the one that made the writer): what a stopping healerd does so
 * that the last events are on disk before it exits.  Returns how many results it delivered.
 */
guint healer_mqtt_outbox_writer_flush(HealerMqttOutboxWriter *writer);

G_END_DECLS
