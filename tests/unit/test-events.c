/*
 * The event stream (agent/daemon/events.c): every observer gets every event
 * in the order emitted, an event emitted by an observer waits its turn, an
 * observer unsubscribed during an emission is not called again; and the
 * journal observer turns each kind into its record.
 */
#include <string.h>

#include "events.h"
#include "journal.h"
#include "test-util.h"

/* What one observer saw: "kind:text" per event. */
typedef struct {
	GPtrArray *seen;
	HealerEventStream *stream;
	guint self_id;
	guint other_id; /* unsubscribed by this observer on its first event */
	gboolean emit_on_first;
} Watcher;

static void
watcher_init(Watcher *w, HealerEventStream *stream)
{
	*w = (Watcher){.seen = g_ptr_array_new_with_free_func(g_free), .stream = stream};
}

static void
watcher_clear(Watcher *w)
{
	g_ptr_array_unref(w->seen);
}

static char *
joined(Watcher *w)
{
	g_ptr_array_add(w->seen, NULL);
	char *s = g_strjoinv(" ", (char **)w->seen->pdata);
	g_ptr_array_remove_index(w->seen, w->seen->len - 1);
	return s;
}

static void
emit_text(HealerEventStream *stream, HealerEventKind kind, const char *text)
{
	/* A copy freed right after: the stream must keep its own. */
	g_autofree char *copy = g_strdup(text);

	healer_event_stream_emit(stream, &(const HealerEvent){.kind = kind, .text = copy, .step = -1});
}

static void
on_event(const HealerEvent *event, gpointer user_data)
{
	Watcher *w = user_data;
	gboolean first = w->seen->len == 0;

	g_ptr_array_add(w->seen, g_strdup(event->text));
	if (!first)
		return;
	if (w->other_id != 0)
		healer_event_stream_unsubscribe(w->stream, w->other_id);
	if (w->emit_on_first) {
		emit_text(w->stream, HEALER_EVENT_NOTE, "reply1");
		emit_text(w->stream, HEALER_EVENT_NOTE, "reply2");
	}
}

static void
test_order(void)
{
	g_autoptr(HealerEventStream) stream = healer_event_stream_new();
	Watcher a, b;
	g_autofree char *sa = NULL, *sb = NULL;

	watcher_init(&a, stream);
	watcher_init(&b, stream);
	healer_event_stream_subscribe(stream, on_event, &a);
	healer_event_stream_subscribe(stream, on_event, &b);
	emit_text(stream, HEALER_EVENT_NOTE, "one");
	emit_text(stream, HEALER_EVENT_HEAL_STARTED, "two");
	emit_text(stream, HEALER_EVENT_HEAL_FAILED, "three");
	sa = joined(&a);
	sb = joined(&b);
	g_assert_cmpstr(sa, ==, "one two three");
	g_assert_cmpstr(sb, ==, "one two three");
	watcher_clear(&a);
	watcher_clear(&b);
}

/* An observer that names its kinds gets those only, in order; one beside it still gets every kind. */
static void
test_interest_mask(void)
{
	g_autoptr(HealerEventStream) stream = healer_event_stream_new();
	Watcher all, some;
	g_autofree char *s_all = NULL, *s_some = NULL;

	watcher_init(&all, stream);
	watcher_init(&some, stream);
	healer_event_stream_subscribe(stream, on_event, &all);
	healer_event_stream_subscribe_kinds(stream,
	                                    HEALER_EVENT_KIND_BIT(HEALER_EVENT_HEAL_STARTED) |
	                                            HEALER_EVENT_KIND_BIT(HEALER_EVENT_DAEMON_STOPPING),
	                                    on_event, &some);
	emit_text(stream, HEALER_EVENT_NOTE, "note");
	emit_text(stream, HEALER_EVENT_HEAL_STARTED, "started");
	emit_text(stream, HEALER_EVENT_HEAL_PROGRESS, "progress");
	emit_text(stream, HEALER_EVENT_DAEMON_STOPPING, "stopping");
	s_all = joined(&all);
	s_some = joined(&some);
	g_assert_cmpstr(s_all, ==, "note started progress stopping");
	g_assert_cmpstr(s_some, ==, "started stopping");
	watcher_clear(&all);
	watcher_clear(&some);
}

/* The first observer emits two events while handling the first: the second observer still sees the first one first. */
static void
test_reentrant(void)
{
	g_autoptr(HealerEventStream) stream = healer_event_stream_new();
	Watcher a, b, c;
	g_autofree char *sa = NULL, *sb = NULL, *sc = NULL;

	watcher_init(&a, stream);
	watcher_init(&b, stream);
	watcher_init(&c, stream);
	a.emit_on_first = TRUE;
	healer_event_stream_subscribe(stream, on_event, &a);
	healer_event_stream_subscribe(stream, on_event, &b);
	healer_event_stream_subscribe(stream, on_event, &c);
	emit_text(stream, HEALER_EVENT_NOTE, "first");
	emit_text(stream, HEALER_EVENT_NOTE, "last");
	sa = joined(&a);
	sb = joined(&b);
	sc = joined(&c);
	g_assert_cmpstr(sa, ==, "first reply1 reply2 last");
	g_assert_cmpstr(sb, ==, "first reply1 reply2 last");
	g_assert_cmpstr(sc, ==, "first reply1 reply2 last");
	watcher_clear(&a);
	watcher_clear(&b);
	watcher_clear(&c);
}

/* Unsubscribed by an earlier observer during an emission: not called for that event nor any after. */
static void
test_unsubscribe_during_emission(void)
{
	g_autoptr(HealerEventStream) stream = healer_event_stream_new();
	Watcher a, b, c;
	g_autofree char *sa = NULL, *sb = NULL, *sc = NULL;

	watcher_init(&a, stream);
	watcher_init(&b, stream);
	watcher_init(&c, stream);
	healer_event_stream_subscribe(stream, on_event, &a);
	b.self_id = healer_event_stream_subscribe(stream, on_event, &b);
	healer_event_stream_subscribe(stream, on_event, &c);
	a.other_id = b.self_id;
	/* c unsubscribes itself on its first event: it sees that one, no more. */
	c.other_id = 3;
	emit_text(stream, HEALER_EVENT_NOTE, "one");
	emit_text(stream, HEALER_EVENT_NOTE, "two");
	sa = joined(&a);
	sb = joined(&b);
	sc = joined(&c);
	g_assert_cmpstr(sa, ==, "one two");
	g_assert_cmpstr(sb, ==, "");
	g_assert_cmpstr(sc, ==, "one");

	/* Unsubscribed outside an emission: the same. */
	healer_event_stream_unsubscribe(stream, 1);
	emit_text(stream, HEALER_EVENT_NOTE, "three");
	g_assert_cmpuint(a.seen->len, ==, 2);
	watcher_clear(&a);
	watcher_clear(&b);
	watcher_clear(&c);
}

/* ---- the journal observer ----------------------------------------------- */

static const char *
field(const char *key)
{
	return test_log_field(key);
}

/* Every kind with its MESSAGE_ID as docs/journal.md and the journal message catalog (healerd.catalog) list it. */
static const struct {
	HealerEventKind kind;
	const char *message_id;
} records[] = {
        {HEALER_EVENT_NOTE, NULL},
        {HEALER_EVENT_DEVICE_ATTACHED, HEALER_MSG_DEVICE_ATTACHED},
        {HEALER_EVENT_DEVICE_DETACHED, HEALER_MSG_DEVICE_DETACHED},
        {HEALER_EVENT_DEVICE_CONFLICT, HEALER_MSG_DEVICE_CONFLICT},
        {HEALER_EVENT_DEVICE_LOG, HEALER_MSG_DEVICE_LOG},
        {HEALER_EVENT_PORT_REFUSED, HEALER_MSG_PORT_REFUSED},
        {HEALER_EVENT_PORT_IGNORED, HEALER_MSG_PORT_IGNORED},
        {HEALER_EVENT_LOG_SUPPRESSED, HEALER_MSG_LOG_SUPPRESSED},
        {HEALER_EVENT_SAFE_MODE_DETECTED, HEALER_MSG_SAFE_MODE_DETECTED},
        {HEALER_EVENT_HEAL_STARTED, HEALER_MSG_HEAL_STARTED},
        {HEALER_EVENT_HEAL_STEP, HEALER_MSG_HEAL_STARTED},
        {HEALER_EVENT_MODULE_INSTALLED, HEALER_MSG_MODULE_INSTALLED},
        {HEALER_EVENT_HEAL_SUCCEEDED, HEALER_MSG_HEAL_SUCCEEDED},
        {HEALER_EVENT_HEAL_FAILED, HEALER_MSG_HEAL_FAILED},
        {HEALER_EVENT_HEAL_BLOCKED, HEALER_MSG_HEAL_BLOCKED},
        {HEALER_EVENT_MODULES_IMPORTED, NULL},
        {HEALER_EVENT_STORE_REJECTED, HEALER_MSG_STORE_REJECTED},
        {HEALER_EVENT_CATALOG_ACCEPTED, HEALER_MSG_CATALOG_ACCEPTED},
        {HEALER_EVENT_CATALOG_REJECTED, HEALER_MSG_CATALOG_REJECTED},
        {HEALER_EVENT_UNSIGNED_ALLOWED, HEALER_MSG_UNSIGNED_ALLOWED},
        {HEALER_EVENT_MODULE_FETCHED, HEALER_MSG_MODULE_FETCHED},
        {HEALER_EVENT_UPSTREAM_FAILED, HEALER_MSG_UPSTREAM_FAILED},
        {HEALER_EVENT_INSECURE_UPSTREAM, HEALER_MSG_INSECURE_UPSTREAM},
};

/* Each record kind, emitted onto the daemon's stream, is one journal record with its id, text and fields. */
static void
test_journal_records(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(records); i++) {
		guint before = test_log_count();
		const char *name = healer_event_kind_to_string(records[i].kind);

		healer_emit(records[i].kind, "e00fce68ae40e7ab6e4e3e11", "/dev/ttyACM0", "system-part1@2002", 2,
		            G_LOG_LEVEL_WARNING, "%s happened (%u)", name, i);
		g_assert_cmpuint(test_log_count(), ==, before + 1);
		{
			g_autofree char *text = g_strdup_printf("[e00fce68ae40e7ab6e4e3e11] %s happened (%u)", name, i);
			g_assert_cmpstr(field("MESSAGE"), ==, text);
		}
		g_assert_cmpstr(field("MESSAGE_ID"), ==, records[i].message_id);
		g_assert_cmpstr(field("PRIORITY"), ==, "4");
		g_assert_cmpstr(field("HEALER_DEVICE_ID"), ==, "e00fce68ae40e7ab6e4e3e11");
		g_assert_cmpstr(field("HEALER_PORT"), ==, "/dev/ttyACM0");
		g_assert_cmpstr(field("HEALER_MODULE"), ==, "system-part1@2002");
		g_assert_cmpstr(field("HEALER_STEP"), ==, "2");
		g_assert_cmpstr(field("GLIB_DOMAIN"), ==, "healerd");
		/* Where it was emitted, not where the journal observer wrote it. */
		g_assert_cmpstr(field("CODE_FUNC"), ==, "test_journal_records");
		g_assert_nonnull(strstr(field("CODE_FILE"), "test-events.c"));
	}
	/* Optional fields left out, the level kept. */
	healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, NULL, -1, G_LOG_LEVEL_DEBUG, "plain");
	g_assert_cmpstr(field("MESSAGE"), ==, "plain");
	g_assert_null(field("HEALER_DEVICE_ID"));
	g_assert_null(field("HEALER_PORT"));
	g_assert_null(field("HEALER_MODULE"));
	g_assert_null(field("HEALER_STEP"));
	g_assert_cmpstr(field("PRIORITY"), ==, "7");

	/* A count is a typed field; the record is the text. */
	healer_emit_count(HEALER_EVENT_MODULES_IMPORTED, NULL, 3, "bundle %s: %u new", "b.tar", 3u);
	g_assert_cmpstr(field("MESSAGE"), ==, "bundle b.tar: 3 new");
	g_assert_null(field("MESSAGE_ID"));
	g_assert_cmpstr(field("PRIORITY"), ==, "6");
}

static void
on_reason(const HealerEvent *event, gpointer user_data)
{
	char **reason = user_data;

	g_free(*reason);
	*reason = g_strdup(event->reason);
}

/* A reason rides along for the faces; the record is the text alone, as before. */
static void
test_reason(void)
{
	g_autofree char *reason = NULL;
	guint id = healer_event_stream_subscribe(healer_events(), on_reason, &reason);

	healer_emit_reason(HEALER_EVENT_HEAL_BLOCKED, "dev", "/dev/ttyACM0", -1, G_LOG_LEVEL_WARNING,
	                   "needs system-part 2", "cannot heal: %s; import a module bundle", "needs system-part 2");
	healer_event_stream_unsubscribe(healer_events(), id);
	g_assert_cmpstr(reason, ==, "needs system-part 2");
	g_assert_cmpstr(field("MESSAGE"), ==, "[dev] cannot heal: needs system-part 2; import a module bundle");
	g_assert_cmpstr(field("MESSAGE_ID"), ==, HEALER_MSG_HEAL_BLOCKED);
	g_assert_cmpstr(field("PRIORITY"), ==, "4");
	g_assert_null(field("HEALER_STEP"));
	g_assert_null(field("HEALER_MODULE"));
}

/* Events for the faces (no text) make no record. */
static void
test_journal_skips_face_events(void)
{
	guint before = test_log_count();

	healer_emit_event(.kind = HEALER_EVENT_HEAL_PROGRESS, .device_id = "dev", .step = 1, .total = 3,
	                  .module = "system-part 1", .progress = 40);
	healer_emit_event(.kind = HEALER_EVENT_HEAL_FINISHED, .device_id = "dev", .success = TRUE, .reason = "ok");
	healer_emit_event(.kind = HEALER_EVENT_DEVICE_CHANGED, .device_id = "dev");
	healer_emit_event(.kind = HEALER_EVENT_STATUS, .reason = "1 device: 1 healthy");
	g_assert_cmpuint(test_log_count(), ==, before);
}

/* Kind names are stable (a face may publish them) and unique. */
static void
test_kind_names(void)
{
	g_autoptr(GHashTable) names = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint k = 0; k < HEALER_EVENT_N_KINDS; k++) {
		const char *name = healer_event_kind_to_string(k);
		g_assert_nonnull(name);
		g_assert_false(g_hash_table_contains(names, name));
		g_hash_table_add(names, (gpointer)name);
	}
	g_assert_cmpstr(healer_event_kind_to_string(HEALER_EVENT_HEAL_FAILED), ==, "heal-failed");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_capture_start();
	g_test_add_func("/events/order", test_order);
	g_test_add_func("/events/interest-mask", test_interest_mask);
	g_test_add_func("/events/reentrant", test_reentrant);
	g_test_add_func("/events/unsubscribe-during-emission", test_unsubscribe_during_emission);
	g_test_add_func("/events/journal-records", test_journal_records);
	g_test_add_func("/events/reason", test_reason);
	g_test_add_func("/events/journal-skips-face-events", test_journal_skips_face_events);
	g_test_add_func("/events/kind-names", test_kind_names);
	return g_test_run();
}
