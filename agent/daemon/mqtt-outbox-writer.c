#include "mqtt-outbox-writer.h"

#include <string.h>

struct _HealerMqttOutboxWriter {
	HealerMqttOutbox *outbox;
	HealerMqttOutboxWriterDone done;
	gpointer user_data;
	GMainContext *context; /* where results are delivered */
	GThreadPool *pool;     /* one exclusive thread: jobs run in the order given */

	GMutex lock;      /* guards what follows, shared with the thread */
	GCond idle;       /* signalled when `running` drops to 0 */
	guint running;    /* jobs given whose result is not queued yet */
	GQueue results;   /* HealerMqttOutboxWriterResult *, oldest first, not yet delivered */
	GSource *deliver; /* the idle that delivers them, NULL when none is attached */
};

static void
result_free(HealerMqttOutboxWriterResult *result)
{
	g_clear_pointer(&result->payloads, g_ptr_array_unref);
	g_clear_pointer(&result->seqs, g_array_unref);
	g_clear_error(&result->error);
	g_free(result);
}

/* Delivers the queued results, oldest first; on the writer's main context (or a flush's thread). */
static guint
deliver_results(HealerMqttOutboxWriter *self)
{
	guint n = 0;

	for (;;) {
		HealerMqttOutboxWriterResult *result;

		g_mutex_lock(&self->lock);
		result = g_queue_pop_head(&self->results);
		g_mutex_unlock(&self->lock);
		if (result == NULL)
			return n;
		/* `done` may give new jobs; their results come after these. */
		self->done(result, self->user_data);
		result_free(result);
		n++;
	}
}

static gboolean
on_deliver(gpointer user_data)
{
	HealerMqttOutboxWriter *self = user_data;

	g_mutex_lock(&self->lock);
	g_clear_pointer(&self->deliver, g_source_unref);
	g_mutex_unlock(&self->lock);
	deliver_results(self);
	return G_SOURCE_REMOVE;
}

/* The writer's thread. */
static void
run_job(gpointer data, gpointer user_data)
{
	HealerMqttOutboxWriterResult *result = data;
	HealerMqttOutboxWriter *self = user_data;

	if (result->kind == HEALER_MQTT_OUTBOX_WRITER_APPEND) {
		g_autofree gsize *lens = g_new(gsize, result->payloads->len);

		for (guint i = 0; i < result->payloads->len; i++)
			lens[i] = strlen(g_ptr_array_index(result->payloads, i));
		result->first_seq = healer_mqtt_outbox_next_seq(self->outbox);
		if (!healer_mqtt_outbox_append_many(self->outbox, (const char *const *)result->payloads->pdata, lens,
		                                    result->payloads->len, &result->dropped, &result->error))
			/* The caller numbered the events after these already: their numbers stay used. */
			healer_mqtt_outbox_skip(self->outbox, result->payloads->len);
	} else {
		(void)healer_mqtt_outbox_ack_many(self->outbox, (const guint64 *)(gpointer)result->seqs->data,
		                                  result->seqs->len, &result->error);
	}

	g_mutex_lock(&self->lock);
	g_queue_push_tail(&self->results, result);
	if (self->deliver == NULL) {
		self->deliver = g_idle_source_new();
		g_source_set_priority(self->deliver, G_PRIORITY_DEFAULT);
		g_source_set_callback(self->deliver, on_deliver, self, NULL);
		g_source_attach(self->deliver, self->context);
	}
	if (--self->running == 0)
		g_cond_broadcast(&self->idle);
	g_mutex_unlock(&self->lock);
}

HealerMqttOutboxWriter *
healer_mqtt_outbox_writer_new(HealerMqttOutbox *outbox, HealerMqttOutboxWriterDone done, gpointer user_data)
{
	HealerMqttOutboxWriter *self = g_new0(HealerMqttOutboxWriter, 1);

	self->outbox = outbox;
	self->done = done;
	self->user_data = user_data;
	self->context = g_main_context_ref_thread_default();
	g_mutex_init(&self->lock);
	g_cond_init(&self->idle);
	g_queue_init(&self->results);
	/* Exclusive with one thread: never fails (GLib aborts if it cannot make the thread). */
	self->pool = g_thread_pool_new(run_job, self, 1, TRUE, NULL);
	return self;
}

static void
wait_idle(HealerMqttOutboxWriter *self)
{
	g_mutex_lock(&self->lock);
	while (self->running > 0)
		g_cond_wait(&self->idle, &self->lock);
	if (self->deliver != NULL) {
		g_source_destroy(self->deliver);
		g_clear_pointer(&self->deliver, g_source_unref);
	}
	g_mutex_unlock(&self->lock);
}

void
healer_mqtt_outbox_writer_free(HealerMqttOutboxWriter *self)
{
	if (self == NULL)
		return;
	wait_idle(self);
	g_thread_pool_free(self->pool, FALSE, TRUE);
	g_queue_clear_full(&self->results, (GDestroyNotify)result_free);
	g_main_context_unref(self->context);
	g_cond_clear(&self->idle);
	g_mutex_clear(&self->lock);
	g_free(self);
}

static void
push(HealerMqttOutboxWriter *self, HealerMqttOutboxWriterResult *job)
{
	g_mutex_lock(&self->lock);
	self->running++;
	g_mutex_unlock(&self->lock);
	g_thread_pool_push(self->pool, job, NULL);
}

void
healer_mqtt_outbox_writer_append(HealerMqttOutboxWriter *self, GPtrArray *payloads)
{
	HealerMqttOutboxWriterResult *job = g_new0(HealerMqttOutboxWriterResult, 1);

	job->kind = HEALER_MQTT_OUTBOX_WRITER_APPEND;
	job->payloads = payloads;
	push(self, job);
}

void
healer_mqtt_outbox_writer_ack(HealerMqttOutboxWriter *self, GArray *seqs)
{
	HealerMqttOutboxWriterResult *job = g_new0(HealerMqttOutboxWriterResult, 1);

	job->kind = HEALER_MQTT_OUTBOX_WRITER_ACK;
	job->seqs = seqs;
	push(self, job);
}

guint
healer_mqtt_outbox_writer_flush(HealerMqttOutboxWriter *self)
{
	wait_idle(self);
	return deliver_results(self);
}
