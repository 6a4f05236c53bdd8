#include "port-guard.h"

#include "events.h"

typedef struct {
	HealerPortGuard *guard;
	char *port;
	char *last_id;
	gint64 *seen; /* when the last new ids came (monotonic us), oldest first: guard->identities */
	guint n_seen;
	guint ignore_source; /* the port is ignored until this fires */
	/* Records: this interval's count, and those suppressed in it. */
	gint64 interval_start;
	guint records;
	guint suppressed;
	char *suppressed_id;   /* the device id the suppressed records were about */
	guint interval_source; /* ends the interval that suppressed records */
} PortRecord;

struct _HealerPortGuard {
	guint identities;
	GHashTable *ports; /* port -> PortRecord* */
	void (*unignored)(const char *port, gpointer user_data);
	gpointer user_data;
};

static void
flush_suppressed(PortRecord *r)
{
	if (r->suppressed > 0)
		healer_emit(HEALER_EVENT_LOG_SUPPRESSED, r->suppressed_id, r->port, NULL, -1, G_LOG_LEVEL_WARNING,
		            "suppressed %u records from the device on %s: more than %u in %u s", r->suppressed, r->port,
		            PORT_GUARD_RECORD_BURST, PORT_GUARD_RECORD_INTERVAL_S);
	r->suppressed = 0;
	g_clear_pointer(&r->suppressed_id, g_free);
}

static void
port_record_free(PortRecord *r)
{
	flush_suppressed(r);
	if (r->ignore_source != 0)
		g_source_remove(r->ignore_source);
	if (r->interval_source != 0)
		g_source_remove(r->interval_source);
	g_free(r->seen);
	g_free(r->port);
	g_free(r->last_id);
	g_free(r);
}

HealerPortGuard *
healer_port_guard_new(guint identities, void (*unignored)(const char *port, gpointer user_data), gpointer user_data)
{
	HealerPortGuard *self = g_new0(HealerPortGuard, 1);

	self->identities = MAX(identities, 1);
	self->ports = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)port_record_free);
	self->unignored = unignored;
	self->user_data = user_data;
	return self;
}

void
healer_port_guard_free(HealerPortGuard *self)
{
	if (self == NULL)
		return;
	g_hash_table_destroy(self->ports);
	g_free(self);
}

static PortRecord *
record_for(HealerPortGuard *self, const char *port)
{
	PortRecord *r = g_hash_table_lookup(self->ports, port);

	if (r == NULL) {
		r = g_new0(PortRecord, 1);
		r->guard = self;
		r->port = g_strdup(port);
		r->seen = g_new0(gint64, self->identities);
		g_hash_table_insert(self->ports, r->port, r);
	}
	return r;
}

/* Forgets the ports with nothing left to remember (the list stays as long as the ports recently used). */
static void
prune(HealerPortGuard *self, gint64 now)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->ports);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		PortRecord *r = value;
		gboolean identities_old =
		        r->n_seen == 0 || now - r->seen[r->n_seen - 1] > PORT_GUARD_IDENTITY_WINDOW_S * G_USEC_PER_SEC;
		gboolean records_old = now - r->interval_start > PORT_GUARD_RECORD_INTERVAL_S * G_USEC_PER_SEC;
		if (identities_old && records_old && r->ignore_source == 0 && r->interval_source == 0)
			g_hash_table_iter_remove(&iter);
	}
}

static gboolean
on_ignore_over(gpointer user_data)
{
	PortRecord *r = user_data;
	HealerPortGuard *self = r->guard;
	g_autofree char *port = g_strdup(r->port);

	r->ignore_source = 0;
	r->n_seen = 0;
	g_info("%s: served again after %u s ignored", port, PORT_GUARD_IGNORE_S);
	if (self->unignored != NULL)
		self->unignored(port, self->user_data);
	return G_SOURCE_REMOVE;
}

gboolean
healer_port_guard_note_identity(HealerPortGuard *self, const char *port, const char *id)
{
	gint64 now = g_get_monotonic_time();
	PortRecord *r;

	prune(self, now);
	r = record_for(self, port);
	if (r->ignore_source != 0)
		return FALSE;
	if (g_strcmp0(r->last_id, id) == 0)
		return TRUE; /* the same device again (a reset, a cable pulled) */
	g_free(r->last_id);
	r->last_id = g_strdup(id);
	/* Drop what left the window, then count this one. */
	while (r->n_seen > 0 && now - r->seen[0] > PORT_GUARD_IDENTITY_WINDOW_S * G_USEC_PER_SEC) {
		memmove(r->seen, r->seen + 1, (r->n_seen - 1) * sizeof r->seen[0]);
		r->n_seen--;
	}
	if (r->n_seen < self->identities) {
		r->seen[r->n_seen++] = now;
		return TRUE;
	}
	healer_emit(HEALER_EVENT_PORT_IGNORED, NULL, port, NULL, -1, G_LOG_LEVEL_WARNING,
	            "ignoring %s for %u s: more than %u device ids on it within %u s (the last %s); a "
	            "device's id never changes, so the device there is faulty or hostile",
	            port, PORT_GUARD_IGNORE_S, self->identities, PORT_GUARD_IDENTITY_WINDOW_S, id);
	r->ignore_source = g_timeout_add_seconds(PORT_GUARD_IGNORE_S, on_ignore_over, r);
	return FALSE;
}

gboolean
healer_port_guard_is_ignored(HealerPortGuard *self, const char *port)
{
	PortRecord *r = g_hash_table_lookup(self->ports, port);

	return r != NULL && r->ignore_source != 0;
}

static gboolean
on_interval_over(gpointer user_data)
{
	PortRecord *r = user_data;

	r->interval_source = 0;
	flush_suppressed(r);
	return G_SOURCE_REMOVE;
}

gboolean
healer_port_guard_allow_record(HealerPortGuard *self, const char *port, const char *device_id)
{
	gint64 now = g_get_monotonic_time();
	PortRecord *r = record_for(self, port);

	if (now - r->interval_start >= PORT_GUARD_RECORD_INTERVAL_S * G_USEC_PER_SEC) {
		/* A new interval (a pending "suppressed" record is written first: its timer is due now). */
		if (r->interval_source != 0) {
			g_source_remove(r->interval_source);
			r->interval_source = 0;
		}
		flush_suppressed(r);
		r->interval_start = now;
		r->records = 0;
	}
	if (r->records < PORT_GUARD_RECORD_BURST) {
		r->records++;
		return TRUE;
	}
	if (r->suppressed++ == 0) {
		gint64 left_ms = (r->interval_start + PORT_GUARD_RECORD_INTERVAL_S * G_USEC_PER_SEC - now) / 1000;
		r->suppressed_id = g_strdup(device_id);
		r->interval_source = g_timeout_add((guint)MAX(left_ms, 1), on_interval_over, r);
	}
	return FALSE;
}
