/*
 * The MQTT outbox: a durable, bounded FIFO of event payloads.  Every event healerd publishes on
 * <prefix>/<gateway>/events is appended here (written durably: the append returns once the record is
 * on disk) before it is handed to the broker, and leaves only when the broker acknowledged it
 * (PUBACK).  Events made while the broker is away, or before a kill -9, are published after the
 * restart, in order.
 *
 * Each record carries its sequence number: one counter per gateway, increasing by one per event and
 * never reused across restarts (the next number is one past the highest ever appended or
 * acknowledged, both of which survive a restart).
 *
 * Storage (docs/mqtt.md, "The outbox"; the bytes: mqtt-outbox-log.h): DIR/outbox.log holds the
 * records in order, each length-prefixed and CRC-checked (the payloads stay there: memory holds
 * where each record is, and a record is read back when it is published); DIR/acked holds the highest sequence
 * number acknowledged in order, and those acknowledged out of order above it (written
 * atomically).  A torn last record (healerd killed mid-append) is cut off at open, and said so (a
 * warning); any other damage is an error naming the file and the offset, and changes nothing.
 * Acknowledged records are compacted away (the file rewritten atomically) once they are more than
 * half of it (and at least 64 KiB, so that a file of a few records is not rewritten at every
 * acknowledgement).
 *
 * Bounded: when an append would make the unacknowledged records exceed max_bytes, the oldest
 * unacknowledged records are dropped (never the new one) and counted; the caller learns the count
 * and publishes an events-dropped event for them.  Dropped records count as acknowledged: they
 * never come back after a restart.  (Opened with a max_bytes below what it holds, the outbox keeps
 * its records until the next append drops what it must.)
 *
 * Threads: appends, skips and acknowledgements come from one thread at a time (healerd's is its
 * MQTT outbox thread, so that the main loop never waits for a disk sync); the other calls may come
 * from any thread at the same time and never wait for the disk's syncs.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HealerMqttOutbox HealerMqttOutbox;

/*
 * Opens (creating DIR when missing, mode 0700) the outbox in DIR.  max_bytes bounds the payload
 * bytes held unacknowledged (at least one record is always kept).  HEALER_ERROR_INVALID_DATA for a
 * damaged file (the message names it and the offset), HEALER_ERROR_IO for what the system refused.
 */
HealerMqttOutbox *healer_mqtt_outbox_open(const char *dir, guint64 max_bytes, GError **error);
void healer_mqtt_outbox_free(HealerMqttOutbox *outbox);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerMqttOutbox, healer_mqtt_outbox_free)

/*
 * When an append must drop older records, it drops until `bytes` are free besides the new records
 * (0 by default: just enough).  The caller that tells of each drop with an event of its own sets
 * it to at least that event's size, so that the telling never needs a drop itself (a notice that
 * dropped a record, told by a notice that dropped one more, ...), and a little more so that a
 * full outbox drops (and the journal says so) once per many events rather than at every one.
 */
void healer_mqtt_outbox_set_drop_slack(HealerMqttOutbox *outbox, guint64 bytes);

/* The sequence number the next append gets (>= 1). */
guint64 healer_mqtt_outbox_next_seq(HealerMqttOutbox *outbox);

/*
 * Appends `payload` as record healer_mqtt_outbox_next_seq() (the caller wrote that number into the
 * payload), durably.  *dropped (may be NULL) is set to the number of older unacknowledged records
 * dropped to make room (0 almost always).  FALSE with HEALER_ERROR_IO when it could not be written:
 * nothing changed (the sequence number is not used up).  HEALER_ERROR_INVALID_ARGUMENT when `seq` is
 * not healer_mqtt_outbox_next_seq() or the payload is over 1 MiB.
 */
gboolean healer_mqtt_outbox_append(HealerMqttOutbox *outbox, guint64 seq, const char *payload, gsize len,
                                   guint *dropped, GError **error);
/*
 * The same for n records at once, numbered healer_mqtt_outbox_next_seq() onwards in array order,
 * made durable by one write and one fdatasync(): a burst of events (a heal's steps on many devices)
 * costs one disk sync, not one each.  Drops make room for all n (never one of the n); all or none
 * of them is appended.
 */
gboolean healer_mqtt_outbox_append_many(HealerMqttOutbox *outbox, const char *const *payloads, const gsize *lens,
                                        guint n, guint *dropped, GError **error);
/*
 * Uses up n sequence numbers without records: the events that carried them were published without
 * the outbox's promise after an append failed, and no later event may carry their numbers while
 * healerd runs.  (Not persisted: the disk just refused a write.  After a restart with nothing
 * appended since, the numbers come again; docs/mqtt.md says so.)
 */
void healer_mqtt_outbox_skip(HealerMqttOutbox *outbox, guint n);

/*
 * Unacknowledged records, oldest first: how many, their payload bytes, and the one at `index` (its
 * seq and payload length).  Only their places in outbox.log are held in memory (16 bytes a record),
 * so a full outbox of small events costs about a twentieth of its bytes, not all of them.
 */
guint healer_mqtt_outbox_pending(HealerMqttOutbox *outbox);
guint64 healer_mqtt_outbox_pending_bytes(HealerMqttOutbox *outbox);
gboolean healer_mqtt_outbox_peek(HealerMqttOutbox *outbox, guint index, guint64 *seq, gsize *len);
/*
 * The payload of the record at `index` (NUL-terminated, `*len` bytes before the NUL), read back from
 * outbox.log (the page cache, for a record just written) and checked against its CRC-32s.  NULL with
 * HEALER_ERROR_INVALID_ARGUMENT for an index past the end, HEALER_ERROR_IO when it cannot be read,
 * HEALER_ERROR_INVALID_DATA "outbox.log: offset N: ..." when the disk changed it.  (A caller that
 * then gives the record up acknowledges it: the outbox compacts at that acknowledgement, whatever
 * the sizes, so the damaged bytes leave outbox.log before they can make the next open refuse it.)
 */
char *healer_mqtt_outbox_read(HealerMqttOutbox *outbox, guint index, gsize *len, GError **error);
/*
 * The same for the oldest pending record numbered `from_seq` or later, found and read in one go (an
 * index is stale as soon as the writer thread acknowledges the front): *seq is its number.  NULL
 * with no error and *seq 0 when there is none; NULL with an error and *seq set when it cannot be
 * read back.
 */
char *healer_mqtt_outbox_read_next(HealerMqttOutbox *outbox, guint64 from_seq, guint64 *seq, gsize *len,
                                   GError **error);

/*
 * The broker acknowledged record `seq`: it is no longer pending.  Acknowledgements may come out of
 * order: acked's watermark passes a record once every older one is acknowledged too, and until
 * then acked lists it above the watermark.  Unknown or already acknowledged: ignored.
 * Persisted durably before it returns TRUE; FALSE with HEALER_ERROR_IO when it could not be:
 * nothing changed (the record is still pending).
 */
gboolean healer_mqtt_outbox_ack(HealerMqttOutbox *outbox, guint64 seq, GError **error);
/*
 * The same for n records at once (any order, repeats and unknown ones ignored), persisted with one
 * write: on a disk an acknowledgement costs a few milliseconds of syncing, so a burst of PUBACKs
 * (the backlog resent after a reconnect) is best acknowledged together, e.g. once per main-loop
 * dispatch.  FALSE with HEALER_ERROR_IO: nothing changed, all of them still pending.
 */
gboolean healer_mqtt_outbox_ack_many(HealerMqttOutbox *outbox, const guint64 *seqs, guint n, GError **error);

G_END_DECLS
