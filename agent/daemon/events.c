#include "events.h"

#include "journal.h"
#include "notify.h"

static const struct {
	const char *name;
	const char *message_id;
} kinds[HEALER_EVENT_N_KINDS] = {
        [HEALER_EVENT_NOTE] = {"note", NULL},
        [HEALER_EVENT_DEVICE_ATTACHED] = {"device-attached", HEALER_MSG_DEVICE_ATTACHED},
        [HEALER_EVENT_DEVICE_DETACHED] = {"device-detached", HEALER_MSG_DEVICE_DETACHED},
        [HEALER_EVENT_DEVICE_CONFLICT] = {"device-conflict", HEALER_MSG_DEVICE_CONFLICT},
        [HEALER_EVENT_DEVICE_LOG] = {"device-log", HEALER_MSG_DEVICE_LOG},
        [HEALER_EVENT_DEVICE_ADDED] = {"device-added", NULL},
        [HEALER_EVENT_DEVICE_CHANGED] = {"device-changed", NULL},
        [HEALER_EVENT_DEVICE_REMOVED] = {"device-removed", NULL},
        [HEALER_EVENT_PORT_REFUSED] = {"port-refused", HEALER_MSG_PORT_REFUSED},
        [HEALER_EVENT_PORT_IGNORED] = {"port-ignored", HEALER_MSG_PORT_IGNORED},
        [HEALER_EVENT_LOG_SUPPRESSED] = {"log-suppressed", HEALER_MSG_LOG_SUPPRESSED},
        [HEALER_EVENT_SAFE_MODE_DETECTED] = {"safe-mode-detected", HEALER_MSG_SAFE_MODE_DETECTED},
        [HEALER_EVENT_HEAL_STARTED] = {"heal-started", HEALER_MSG_HEAL_STARTED},
        /* A step is part of the heal's start record set: the catalog explains both under one id. */
        [HEALER_EVENT_HEAL_STEP] = {"heal-step", HEALER_MSG_HEAL_STARTED},
        [HEALER_EVENT_HEAL_PROGRESS] = {"heal-progress", NULL},
        [HEALER_EVENT_MODULE_INSTALLED] = {"module-installed", HEALER_MSG_MODULE_INSTALLED},
        [HEALER_EVENT_HEAL_SUCCEEDED] = {"heal-succeeded", HEALER_MSG_HEAL_SUCCEEDED},
        [HEALER_EVENT_HEAL_FAILED] = {"heal-failed", HEALER_MSG_HEAL_FAILED},
        [HEALER_EVENT_HEAL_BLOCKED] = {"heal-blocked", HEALER_MSG_HEAL_BLOCKED},
        [HEALER_EVENT_HEAL_FINISHED] = {"heal-finished", NULL},
        /* Imports have always been plain records: a MESSAGE_ID now would be a new journal message catalog entry. */
        [HEALER_EVENT_MODULES_IMPORTED] = {"modules-imported", NULL},
        [HEALER_EVENT_STORE_REJECTED] = {"store-rejected", HEALER_MSG_STORE_REJECTED},
        [HEALER_EVENT_CATALOG_ACCEPTED] = {"catalog-accepted", HEALER_MSG_CATALOG_ACCEPTED},
        [HEALER_EVENT_CATALOG_REJECTED] = {"catalog-rejected", HEALER_MSG_CATALOG_REJECTED},
        [HEALER_EVENT_UNSIGNED_ALLOWED] = {"unsigned-allowed", HEALER_MSG_UNSIGNED_ALLOWED},
        [HEALER_EVENT_MODULE_FETCHED] = {"module-fetched", HEALER_MSG_MODULE_FETCHED},
        [HEALER_EVENT_UPSTREAM_FAILED] = {"upstream-failed", HEALER_MSG_UPSTREAM_FAILED},
        [HEALER_EVENT_INSECURE_UPSTREAM] = {"insecure-upstream", HEALER_MSG_INSECURE_UPSTREAM},
        [HEALER_EVENT_SOURCES_CHANGED] = {"sources-changed", NULL},
        [HEALER_EVENT_MQTT_STATE] = {"mqtt-state", NULL},
        [HEALER_EVENT_STATUS] = {"status", NULL},
        [HEALER_EVENT_DAEMON_READY] = {"daemon-ready", NULL},
        [HEALER_EVENT_DAEMON_STOPPING] = {"daemon-stopping", NULL},
};

const char *
healer_event_kind_message_id(HealerEventKind kind)
{
	return kind < HEALER_EVENT_N_KINDS ? kinds[kind].message_id : NULL;
}

const char *
healer_event_kind_to_string(HealerEventKind kind)
{
	return kind < HEALER_EVENT_N_KINDS ? kinds[kind].name : "unknown";
}

typedef struct {
	guint id;
	HealerEventFunc func; /* NULL: unsubscribed during an emission, dropped once it ends */
	gpointer user_data;
	guint64 kinds; /* HEALER_EVENT_KIND_BIT()s of the kinds it is called for */
} Subscriber;

G_STATIC_ASSERT(HEALER_EVENT_N_KINDS <= 64);

struct _HealerEventStream {
	/* Held through a whole delivery: an observer re-enters it (same thread), other threads wait. */
	GRecMutex lock;
	GArray *subscribers; /* Subscriber */
	GQueue pending;      /* HealerEvent*, owned copies */
	gboolean delivering;
	guint last_id;
};

HealerEvent *
healer_event_copy(const HealerEvent *event)
{
	HealerEvent *copy = g_new(HealerEvent, 1);

	*copy = *event;
	copy->device_id = g_strdup(event->device_id);
	copy->port = g_strdup(event->port);
	copy->module = g_strdup(event->module);
	copy->reason = g_strdup(event->reason);
	copy->text = g_strdup(event->text);
	/* code_* are string literals (__FILE__, G_STRFUNC): not copied. */
	return copy;
}

void
healer_event_free(HealerEvent *event)
{
	if (event == NULL)
		return;
	g_free((char *)event->device_id);
	g_free((char *)event->port);
	g_free((char *)event->module);
	g_free((char *)event->reason);
	g_free((char *)event->text);
	g_free(event);
}

HealerEventStream *
healer_event_stream_new(void)
{
	HealerEventStream *self = g_new0(HealerEventStream, 1);

	g_rec_mutex_init(&self->lock);
	self->subscribers = g_array_new(FALSE, TRUE, sizeof(Subscriber));
	g_queue_init(&self->pending);
	return self;
}

void
healer_event_stream_free(HealerEventStream *self)
{
	if (self == NULL)
		return;
	g_queue_clear_full(&self->pending, (GDestroyNotify)healer_event_free);
	g_array_unref(self->subscribers);
	g_rec_mutex_clear(&self->lock);
	g_free(self);
}

guint
healer_event_stream_subscribe(HealerEventStream *self, HealerEventFunc func, gpointer user_data)
{
	return healer_event_stream_subscribe_kinds(self, HEALER_EVENT_KINDS_ALL, func, user_data);
}

guint
healer_event_stream_subscribe_kinds(HealerEventStream *self, guint64 wanted, HealerEventFunc func, gpointer user_data)
{
	Subscriber s = {.func = func, .user_data = user_data, .kinds = wanted};

	g_return_val_if_fail(func != NULL, 0);
	g_rec_mutex_lock(&self->lock);
	s.id = ++self->last_id;
	g_array_append_val(self->subscribers, s);
	g_rec_mutex_unlock(&self->lock);
	return s.id;
}

/* Drops the subscribers unsubscribed while a delivery ran (not earlier: it walks the array by index). */
static void
compact(HealerEventStream *self)
{
	for (guint i = self->subscribers->len; i-- > 0;) {
		if (g_array_index(self->subscribers, Subscriber, i).func == NULL)
			g_array_remove_index(self->subscribers, i);
	}
}

void
healer_event_stream_unsubscribe(HealerEventStream *self, guint id)
{
	g_rec_mutex_lock(&self->lock);
	for (guint i = 0; i < self->subscribers->len; i++) {
		Subscriber *s = &g_array_index(self->subscribers, Subscriber, i);
		if (s->id == id)
			s->func = NULL;
	}
	if (!self->delivering)
		compact(self);
	g_rec_mutex_unlock(&self->lock);
}

void
healer_event_stream_emit(HealerEventStream *self, const HealerEvent *event)
{
	HealerEvent *next;

	g_rec_mutex_lock(&self->lock);
	g_queue_push_tail(&self->pending, healer_event_copy(event));
	if (self->delivering) {
		/* An observer emitted: its event goes out once the current one reached everyone. */
		g_rec_mutex_unlock(&self->lock);
		return;
	}
	self->delivering = TRUE;
	while ((next = g_queue_pop_head(&self->pending)) != NULL) {
		/* Those subscribed during this event get the next one. */
		guint n = self->subscribers->len;
		for (guint i = 0; i < n; i++) {
			Subscriber s = g_array_index(self->subscribers, Subscriber, i);
			if (s.func != NULL && (s.kinds & HEALER_EVENT_KIND_BIT(next->kind)) != 0)
				s.func(next, s.user_data);
		}
		healer_event_free(next);
	}
	self->delivering = FALSE;
	compact(self);
	g_rec_mutex_unlock(&self->lock);
}

HealerEventStream *
healer_events(void)
{
	static HealerEventStream *stream;

	if (g_once_init_enter(&stream)) {
		HealerEventStream *s = healer_event_stream_new();
		healer_event_stream_subscribe(s, healer_journal_observe, NULL);
		healer_event_stream_subscribe(s, healer_notify_observe, NULL);
		g_once_init_leave(&stream, s);
	}
	return stream;
}

/* Emits `event` onto the daemon's stream with its text formatted from `format`. */
static void emit_formatted(HealerEvent *event, const char *format, va_list args) G_GNUC_PRINTF(2, 0);

static void
emit_formatted(HealerEvent *event, const char *format, va_list args)
{
	g_autofree char *text = g_strdup_vprintf(format, args);

	event->text = text;
	healer_event_stream_emit(healer_events(), event);
}

void
healer_emit_full(const char *code_file, const char *code_line, const char *code_func, HealerEventKind kind,
                 const char *device_id, const char *port, const char *module, int step, GLogLevelFlags level,
                 const char *format, ...)
{
	HealerEvent event = {.kind = kind,
	                     .priority = level,
	                     .device_id = device_id,
	                     .port = port,
	                     .module = module,
	                     .step = step,
	                     .code_file = code_file,
	                     .code_line = code_line,
	                     .code_func = code_func};
	va_list args;

	va_start(args, format);
	emit_formatted(&event, format, args);
	va_end(args);
}

void
healer_emit_reason_full(const char *code_file, const char *code_line, const char *code_func, HealerEventKind kind,
                        const char *device_id, const char *port, int step, GLogLevelFlags level, const char *reason,
                        const char *format, ...)
{
	HealerEvent event = {.kind = kind,
	                     .priority = level,
	                     .device_id = device_id,
	                     .port = port,
	                     .step = step,
	                     .reason = reason,
	                     .code_file = code_file,
	                     .code_line = code_line,
	                     .code_func = code_func};
	va_list args;

	va_start(args, format);
	emit_formatted(&event, format, args);
	va_end(args);
}

void
healer_emit_count_full(const char *code_file, const char *code_line, const char *code_func, HealerEventKind kind,
                       const char *module, guint count, const char *format, ...)
{
	HealerEvent event = {.kind = kind,
	                     .priority = G_LOG_LEVEL_INFO,
	                     .module = module,
	                     .step = -1,
	                     .count = count,
	                     .code_file = code_file,
	                     .code_line = code_line,
	                     .code_func = code_func};
	va_list args;

	va_start(args, format);
	emit_formatted(&event, format, args);
	va_end(args);
}
