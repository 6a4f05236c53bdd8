#include "particle-client.h"

#include <stdarg.h>
#include <string.h>

#include "healer-error.h"
#include "particle-control.h"
#include "particle-poll.h"

/* The raw version request's data stage: what particle-usb asks for. */
#define VERSION_WLENGTH 64
/* String descriptors are asked for in US English; 255 bytes hold any. */
#define LANGID_EN_US      0x0409
#define STRING_MAX_LENGTH 255
/* INIT answered BUSY with nothing else of ours in flight: INIT again on this back-off (first 8 ms). */
#define BUSY_ESTIMATE_US 8000

typedef enum {
	OP_OPEN,    /* raw 0x50/30, then RESET(0) */
	OP_REQUEST, /* INIT, SEND, CHECK, RECV */
	OP_RAW_OUT, /* raw OUT 0x50/index */
	OP_STRING,  /* GET_DESCRIPTOR of a string (`type`: its index) */
} OpKind;

typedef enum {
	STAGE_QUEUED,
	STAGE_INIT,
	STAGE_BUSY_WAIT,   /* INIT answered BUSY and nothing else is ours: INIT again after a delay */
	STAGE_WAIT_BUFFER, /* CHECK until the device has the payload buffer */
	STAGE_SEND,
	STAGE_WAIT_RESULT, /* CHECK until the handler is done */
	STAGE_RECV,
	STAGE_CANCEL, /* RESET(id) of a request that failed: its slot is free once answered */
	STAGE_VERSION,
	STAGE_RESET_ALL,
	STAGE_RAW_OUT,
	STAGE_STRING,
} Stage;

typedef struct {
	HealerParticleClient *client;
	OpKind kind;
	Stage stage;
	guint16 type;    /* OP_REQUEST: the request type; OP_RAW_OUT: wIndex */
	GBytes *payload; /* OP_REQUEST, or NULL */
	guint timeout_ms;
	HealerParticleClientFunc func;
	gpointer user_data;

	guint16 id;
	gboolean device_forgot; /* NOT_FOUND, or the request ended normally: no RESET(id) */
	gboolean reported;      /* func has run (or never will) */
	gboolean active;        /* holds one of the device's request slots */
	gsize offset;           /* payload bytes sent, reply bytes received */
	guint32 reply_size;
	gint32 result;
	GByteArray *reply;

	/* A wait between CHECKs. */
	HealerParticlePollPhase phase;
	guint64 estimate_us;
	gint64 wait_start;
	gint64 check_sent; /* when the last CHECK went out */
	guint polls;
	guint busy_attempts;
	gboolean saw_busy; /* its INIT was answered BUSY at least once */

	struct libusb_transfer *transfer; /* in flight, or NULL */
	guint poll_timer;
	guint deadline_timer;
} Op;

struct _HealerParticleClient {
	HealerUsbContext *context;
	libusb_device_handle *handle;
	gboolean out_needs_data_stage;

	GQueue waiting;       /* Op: not started, in order */
	GPtrArray *running;   /* Op: started, not done */
	guint active;         /* requests holding a device slot */
	guint max_active;     /* now: lowered by BUSY, climbing back */
	guint max_active_cap; /* the most it climbs back to: HEALER_PARTICLE_MAX_ACTIVE or the set limit */
	gboolean opening;

	char *system_version;
	HealerParticlePoll poll;
	GArray *fixed_schedule; /* guint ms, or NULL: measured (benchmarks only) */
	HealerParticleClientStats stats;

	guint pump_idle;
	gboolean pumping;
	gboolean pump_again;
	guint in_flight; /* transfers libusb has not handed back */
	gboolean closing;
	guint release_idle;
	guint dispatching; /* inside libusb's callback or a timer of ours: libusb_close() must wait */
};

static void pump(HealerParticleClient *self);
static void on_transfer(struct libusb_transfer *transfer);
static void stage_failed(Op *op);

/* ---- life ------------------------------------------------------------------------------------- */

static void
op_free(Op *op)
{
	if (op->poll_timer != 0)
		g_source_remove(op->poll_timer);
	if (op->deadline_timer != 0)
		g_source_remove(op->deadline_timer);
	g_clear_pointer(&op->payload, g_bytes_unref);
	g_clear_pointer(&op->reply, g_byte_array_unref);
	g_free(op);
}

HealerParticleClient *
healer_particle_client_new(HealerUsbContext *context, libusb_device_handle *handle, gboolean out_needs_data_stage)
{
	HealerParticleClient *self = g_new0(HealerParticleClient, 1);

	self->context = healer_usb_context_ref(context);
	self->handle = handle;
	self->out_needs_data_stage = out_needs_data_stage;
	g_queue_init(&self->waiting);
	self->running = g_ptr_array_new();
	self->max_active = HEALER_PARTICLE_MAX_ACTIVE;
	self->max_active_cap = HEALER_PARTICLE_MAX_ACTIVE;
	healer_particle_poll_init(&self->poll);
	return self;
}

static void
release(HealerParticleClient *self)
{
	Op *op;

	while ((op = g_queue_pop_head(&self->waiting)) != NULL)
		op_free(op);
	for (guint i = 0; i < self->running->len; i++)
		op_free(g_ptr_array_index(self->running, i));
	g_ptr_array_unref(self->running);
	if (self->fixed_schedule != NULL)
		g_array_unref(self->fixed_schedule);
	libusb_close(self->handle);
	g_free(self->system_version);
	/* Last: libusb_exit() may run now, and nothing of libusb's may be left. */
	healer_usb_context_unref(self->context);
	g_free(self);
}

static gboolean
on_release_idle(gpointer user_data)
{
	HealerParticleClient *self = user_data;

	self->release_idle = 0;
	release(self);
	return G_SOURCE_REMOVE;
}

/* Once libusb has handed every transfer back, and never from inside its callback or one of ours. */
static void
release_when_idle(HealerParticleClient *self)
{
	if (self->in_flight > 0 || self->release_idle != 0)
		return;
	self->release_idle = g_idle_add(on_release_idle, self);
}

static void
op_stop_timers(Op *op)
{
	if (op->poll_timer != 0)
		g_source_remove(op->poll_timer);
	op->poll_timer = 0;
	if (op->deadline_timer != 0)
		g_source_remove(op->deadline_timer);
	op->deadline_timer = 0;
}

void
healer_particle_client_close(HealerParticleClient *self)
{
	if (self == NULL)
		return;
	g_return_if_fail(!self->closing);
	self->closing = TRUE;
	if (self->pump_idle != 0)
		g_source_remove(self->pump_idle);
	self->pump_idle = 0;
	for (GList *l = self->waiting.head; l != NULL; l = l->next)
		op_stop_timers(l->data);
	for (guint i = 0; i < self->running->len; i++) {
		Op *op = g_ptr_array_index(self->running, i);
		op_stop_timers(op);
		/* libusb hands it back from the main loop; the handle is closed after the last (on_transfer()). */
		if (op->transfer != NULL)
			libusb_cancel_transfer(op->transfer);
	}
	if (self->in_flight == 0 && self->dispatching == 0) {
		release(self);
		return;
	}
	/* Called from a callback of ours (the caller's frames still use the client), or transfers are out. */
	release_when_idle(self);
}

const char *
healer_particle_client_get_system_version(HealerParticleClient *self)
{
	return self->system_version;
}

void
healer_particle_client_set_max_active(HealerParticleClient *self, guint max_active)
{
	g_return_if_fail(max_active > 0);
	self->max_active = max_active;
	self->max_active_cap = max_active;
	pump(self);
}

void
healer_particle_client_set_poll_schedule(HealerParticleClient *self, const guint *schedule_ms, guint n)
{
	g_clear_pointer(&self->fixed_schedule, g_array_unref);
	if (schedule_ms == NULL || n == 0)
		return;
	self->fixed_schedule = g_array_sized_new(FALSE, FALSE, sizeof(guint), n);
	g_array_append_vals(self->fixed_schedule, schedule_ms, n);
}

guint
healer_particle_client_get_max_active(HealerParticleClient *self)
{
	return self->max_active;
}

void
healer_particle_client_get_stats(HealerParticleClient *self, HealerParticleClientStats *stats)
{
	*stats = self->stats;
}

/* ---- naming ----------------------------------------------------------------------------------- */

/* "GET_MODULE_INFO (id 3)", "request 123", "RESET (id 0)": the start of every message about `op`. */
static char *
op_name(const Op *op)
{
	const char *type_name;
	g_autofree char *type = NULL;

	switch (op->kind) {
	case OP_OPEN:
		return g_strdup(op->stage == STAGE_VERSION ? "raw request 0x50/30 (system version)" : "RESET (id 0)");
	case OP_RAW_OUT:
		return g_strdup_printf("raw request 0x50/%u", op->type);
	case OP_STRING:
		return g_strdup_printf("GET_DESCRIPTOR (string %u)", op->type);
	case OP_REQUEST:
		break;
	}
	type_name = healer_particle_request_type_to_string(op->type);
	type = type_name != NULL ? g_strdup(type_name) : g_strdup_printf("request %u", op->type);
	if (op->id == 0)
		return g_steal_pointer(&type);
	return g_strdup_printf("%s (id %u)", type, op->id);
}

static gsize
payload_size(const Op *op)
{
	return op->payload != NULL ? g_bytes_get_size(op->payload) : 0;
}

/* What the request was doing, for a deadline's message. */
static char *
stage_text(const Op *op)
{
	switch (op->stage) {
	case STAGE_QUEUED:
		return g_strdup("waiting for one of the device's request slots");
	case STAGE_INIT:
	case STAGE_BUSY_WAIT:
		return g_strdup("in INIT");
	case STAGE_WAIT_BUFFER:
		return g_strdup_printf("polling CHECK for a %" G_GSIZE_FORMAT "-byte payload buffer, %u polls",
		                       payload_size(op), op->polls);
	case STAGE_SEND:
		return g_strdup_printf("in SEND (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes sent)", op->offset,
		                       payload_size(op));
	case STAGE_WAIT_RESULT:
		return g_strdup_printf("polling CHECK for the result, %u polls", op->polls);
	case STAGE_RECV:
		return g_strdup_printf("in RECV (%" G_GSIZE_FORMAT " of %u bytes received)", op->offset,
		                       op->reply_size);
	case STAGE_CANCEL:
	case STAGE_VERSION:
	case STAGE_RESET_ALL:
	case STAGE_RAW_OUT:
	case STAGE_STRING:
		break;
	}
	return g_strdup("finishing");
}

/* ---- ending ----------------------------------------------------------------------------------- */

/* Runs func (once); FALSE when the client was closed from it: touch nothing then. */
static gboolean
report(Op *op, gint32 result, GBytes *reply, const GError *error)
{
	HealerParticleClient *self = op->client;
	HealerParticleClientFunc func = op->func;

	if (op->reported)
		return TRUE;
	op->reported = TRUE;
	if (op->deadline_timer != 0)
		g_source_remove(op->deadline_timer);
	op->deadline_timer = 0;
	if (self->closing || func == NULL)
		return !self->closing;
	self->dispatching++;
	func(self, result, reply, error, op->user_data);
	self->dispatching--;
	return !self->closing;
}

/* The op is over on the device too: its slot is free, and the next may start. */
static void
op_done(Op *op)
{
	HealerParticleClient *self = op->client;

	g_ptr_array_remove(self->running, op);
	if (op->active) {
		g_assert(self->active > 0);
		self->active--;
	}
	if (op->kind == OP_OPEN)
		self->opening = FALSE;
	op_free(op);
	pump(self);
}

/* Reports `error` (taken), then cancels the request on the device where it has one. */
static void fail(Op *op, int code, const char *format, ...) G_GNUC_PRINTF(3, 4);

static void
fail(Op *op, int code, const char *format, ...)
{
	g_autofree char *name = op_name(op);
	g_autofree char *why = NULL;
	g_autoptr(GError) error = NULL;
	va_list args;

	va_start(args, format);
	why = g_strdup_vprintf(format, args);
	va_end(args);
	error = g_error_new(HEALER_ERROR, code, "%s: %s", name, why);
	g_debug("%s", error->message);
	if (!report(op, 0, NULL, error))
		return;
	stage_failed(op);
}

static void
succeed(Op *op, gint32 result, GBytes *reply)
{
	HealerParticleClient *self = op->client;

	op->device_forgot = TRUE; /* a request the device finished is released by it */
	/*
	 * A request served without BUSY: the limit a BUSY lowered climbs back one, so a moment's
	 * crowding (another host's requests) does not cost the client's whole life.
	 */
	if (op->kind == OP_REQUEST && !op->saw_busy && self->max_active < self->max_active_cap) {
		self->max_active++;
		g_debug("%s: served without BUSY: %u requests at once from now on",
		        healer_particle_request_type_to_string(op->type) != NULL
		                ? healer_particle_request_type_to_string(op->type)
		                : "a request",
		        self->max_active);
	}
	if (!report(op, result, reply, NULL))
		return;
	op_done(op);
}

/* ---- transfers -------------------------------------------------------------------------------- */

static gboolean
submit(Op *op, guint8 request_type, guint8 request, guint16 value, guint16 index, const guint8 *out, guint16 length,
       GError **error)
{
	HealerParticleClient *self = op->client;
	guint8 *buffer = g_malloc0(LIBUSB_CONTROL_SETUP_SIZE + length);
	struct libusb_transfer *transfer = libusb_alloc_transfer(0);
	int r;

	libusb_fill_control_setup(buffer, request_type, request, value, index, length);
	if (out != NULL && length > 0)
		memcpy(buffer + LIBUSB_CONTROL_SETUP_SIZE, out, length);
	libusb_fill_control_transfer(transfer, self->handle, buffer, on_transfer, op,
	                             HEALER_PARTICLE_TRANSFER_TIMEOUT_MS);
	transfer->flags = LIBUSB_TRANSFER_FREE_BUFFER | LIBUSB_TRANSFER_FREE_TRANSFER;
	r = libusb_submit_transfer(transfer);
	if (r < 0) {
		libusb_free_transfer(transfer);
		g_set_error(error, HEALER_ERROR, r == LIBUSB_ERROR_NO_DEVICE ? HEALER_ERROR_NOT_FOUND : HEALER_ERROR_IO,
		            "cannot send %s: %s",
		            request_type == HEALER_PARTICLE_REQUEST_TYPE_OUT && request == HEALER_PARTICLE_SERVICE_SEND
		                    ? "SEND"
		            : healer_particle_service_to_string(request) != NULL
		                    ? healer_particle_service_to_string(request)
		                    : "the raw request",
		            r == LIBUSB_ERROR_NO_DEVICE ? "the device is gone" : libusb_strerror(r));
		return FALSE;
	}
	op->transfer = transfer;
	self->in_flight++;
	return TRUE;
}

static void
submit_setup(Op *op, HealerParticleSetup setup, const guint8 *out)
{
	g_autoptr(GError) error = NULL;

	if (submit(op, setup.request_type, setup.request, setup.value, setup.index, out, setup.length, &error))
		return;
	if (error->code == HEALER_ERROR_NOT_FOUND)
		op->device_forgot = TRUE;
	fail(op, error->code, "%s", error->message);
}

static void
send_init(Op *op)
{
	op->stage = STAGE_INIT;
	submit_setup(op, healer_particle_setup_init(op->type, (guint16)payload_size(op)), NULL);
}

static void
send_check(Op *op)
{
	op->check_sent = g_get_monotonic_time();
	submit_setup(op, healer_particle_setup_check(op->id), NULL);
}

static void
send_next_chunk(Op *op)
{
	const guint8 *data = g_bytes_get_data(op->payload, NULL);
	guint16 chunk = (guint16)MIN((gsize)HEALER_PARTICLE_MAX_CHUNK, payload_size(op) - op->offset);

	op->stage = STAGE_SEND;
	submit_setup(op, healer_particle_setup_send(op->id, chunk), data + op->offset);
}

static void
recv_next_chunk(Op *op)
{
	guint16 chunk = (guint16)MIN((gsize)HEALER_PARTICLE_MAX_CHUNK, op->reply_size - op->offset);

	op->stage = STAGE_RECV;
	submit_setup(op, healer_particle_setup_recv(op->id, chunk), NULL);
}

static void
send_cancel(Op *op)
{
	op->stage = STAGE_CANCEL;
	submit_setup(op, healer_particle_setup_reset(op->id), NULL);
}

/*
 * After a failure was reported: RESET(id) where the device still holds the request, then the slot
 * is free.  A transfer still out (a deadline while it was) is waited for first: it may bring the id.
 */
static void
stage_failed(Op *op)
{
	if (op->poll_timer != 0)
		g_source_remove(op->poll_timer);
	op->poll_timer = 0;
	if (op->transfer != NULL)
		return;
	if (op->stage == STAGE_QUEUED) {
		g_queue_remove(&op->client->waiting, op);
		op_free(op);
		return;
	}
	if (op->kind == OP_REQUEST && op->id != 0 && !op->device_forgot && op->stage != STAGE_CANCEL) {
		send_cancel(op);
		return;
	}
	op_done(op);
}

/* ---- polling ---------------------------------------------------------------------------------- */

static gboolean
on_poll_timer(gpointer user_data)
{
	Op *op = user_data;
	HealerParticleClient *self = op->client;

	op->poll_timer = 0;
	self->dispatching++;
	if (op->stage == STAGE_BUSY_WAIT)
		send_init(op);
	else
		send_check(op);
	self->dispatching--;
	return G_SOURCE_REMOVE;
}

/* The delay before CHECK number `attempt` of the wait under way. */
static guint
check_delay_ms(Op *op, guint attempt)
{
	GArray *fixed = op->client->fixed_schedule;

	if (fixed != NULL)
		return g_array_index(fixed, guint, MIN(attempt, fixed->len - 1));
	return healer_particle_poll_delay_ms(op->estimate_us, attempt);
}

static void
poll_later(Op *op, guint delay_ms)
{
	op->poll_timer = g_timeout_add(delay_ms, on_poll_timer, op);
}

/* The device works on it (`stage`: the buffer or the handler): CHECK when particle-poll says. */
static void
begin_wait(Op *op, Stage stage)
{
	op->stage = stage;
	op->phase = stage == STAGE_WAIT_BUFFER ? HEALER_PARTICLE_POLL_PHASE_BUFFER : HEALER_PARTICLE_POLL_PHASE_HANDLER;
	op->estimate_us = healer_particle_poll_estimate_us(&op->client->poll, op->type, op->phase);
	op->wait_start = g_get_monotonic_time();
	op->polls = 0;
	poll_later(op, check_delay_ms(op, 0));
}

/* ---- replies ---------------------------------------------------------------------------------- */

static gboolean
parse_reply(Op *op, const char *service, const guint8 *data, gsize len, HealerParticleReply *reply)
{
	g_autoptr(GError) error = NULL;

	if (healer_particle_reply_parse(data, len, reply, &error))
		return TRUE;
	fail(op, HEALER_ERROR_INVALID_DATA, "%s: %s", service, error->message);
	return FALSE;
}

static const char *
status_name(guint16 status)
{
	const char *name = healer_particle_status_to_string(status);

	return name != NULL ? name : "an unknown status";
}

static void
on_busy(Op *op)
{
	HealerParticleClient *self = op->client;
	guint others = self->active - 1;

	op->saw_busy = TRUE;
	/* The device serves fewer at once than we thought: as many as it holds of ours now. */
	self->max_active = MAX(1, others);
	if (others > 0) {
		g_autofree char *name = op_name(op);
		g_debug("%s: INIT answered BUSY: %u requests at once from now on", name, self->max_active);
		op->active = FALSE;
		self->active--;
		op->stage = STAGE_QUEUED;
		g_ptr_array_remove(self->running, op);
		g_queue_push_head(&self->waiting, op);
		return;
	}
	/* Busy with another host's requests: ask again on a back-off, until the deadline. */
	op->stage = STAGE_BUSY_WAIT;
	poll_later(op, healer_particle_poll_delay_ms(BUSY_ESTIMATE_US, op->busy_attempts++));
}

static void
on_init_reply(Op *op, const guint8 *data, gsize len)
{
	HealerParticleReply reply;

	if (!parse_reply(op, "INIT", data, len, &reply))
		return;
	if ((reply.status == HEALER_PARTICLE_STATUS_OK || reply.status == HEALER_PARTICLE_STATUS_PENDING) &&
	    !(reply.fields & HEALER_PARTICLE_REPLY_FIELD_ID)) {
		fail(op, HEALER_ERROR_INVALID_DATA, "INIT answered %s without a request id", status_name(reply.status));
		return;
	}
	switch (reply.status) {
	case HEALER_PARTICLE_STATUS_OK:
		op->id = reply.id;
		if (payload_size(op) == 0)
			begin_wait(op, STAGE_WAIT_RESULT);
		else
			send_next_chunk(op);
		return;
	case HEALER_PARTICLE_STATUS_PENDING:
		op->id = reply.id;
		begin_wait(op, STAGE_WAIT_BUFFER);
		return;
	case HEALER_PARTICLE_STATUS_BUSY:
		on_busy(op);
		return;
	case HEALER_PARTICLE_STATUS_NO_MEMORY:
		fail(op, HEALER_ERROR_FAILED,
		     "INIT answered NO_MEMORY: the device has no memory for a %" G_GSIZE_FORMAT "-byte payload",
		     payload_size(op));
		return;
	default:
		fail(op, HEALER_ERROR_FAILED, "INIT answered %s", status_name(reply.status));
		return;
	}
}

static void
on_check_reply(Op *op, const guint8 *data, gsize len)
{
	HealerParticleClient *self = op->client;
	HealerParticleReply reply;

	op->polls++;
	if (!parse_reply(op, "CHECK", data, len, &reply))
		return;
	switch (reply.status) {
	case HEALER_PARTICLE_STATUS_PENDING:
		poll_later(op, check_delay_ms(op, op->polls));
		return;
	case HEALER_PARTICLE_STATUS_OK:
		break;
	case HEALER_PARTICLE_STATUS_NOT_FOUND:
		op->device_forgot = TRUE;
		fail(op, HEALER_ERROR_FAILED, "CHECK answered NOT_FOUND: the device cancelled the request");
		return;
	case HEALER_PARTICLE_STATUS_NO_MEMORY:
		fail(op, HEALER_ERROR_FAILED,
		     "CHECK answered NO_MEMORY: the device found no memory for a %" G_GSIZE_FORMAT "-byte payload",
		     payload_size(op));
		return;
	default:
		fail(op, HEALER_ERROR_FAILED, "CHECK answered %s", status_name(reply.status));
		return;
	}
	/*
	 * Measured to when the CHECK that found it done went out, not to its answer: the device was
	 * ready by then (give or take the way there), and the round trip is no part of its time.
	 */
	healer_particle_poll_record(&self->poll, op->type, op->phase, (guint64)(op->check_sent - op->wait_start),
	                            op->polls);
	if (op->stage == STAGE_WAIT_BUFFER) {
		op->offset = 0;
		send_next_chunk(op);
		return;
	}
	if (!(reply.fields & HEALER_PARTICLE_REPLY_FIELD_RESULT)) {
		fail(op, HEALER_ERROR_INVALID_DATA, "CHECK answered OK without the request's result");
		return;
	}
	op->result = reply.result;
	if ((reply.fields & HEALER_PARTICLE_REPLY_FIELD_SIZE) && reply.size > 0) {
		if (reply.size > HEALER_PARTICLE_MAX_PAYLOAD) {
			fail(op, HEALER_ERROR_INVALID_DATA,
			     "CHECK announced a %u-byte reply, more than the protocol's %u", reply.size,
			     HEALER_PARTICLE_MAX_PAYLOAD);
			return;
		}
		op->reply_size = reply.size;
		op->reply = g_byte_array_sized_new(reply.size);
		op->offset = 0;
		recv_next_chunk(op);
		return;
	}
	{
		g_autoptr(GBytes) empty = g_bytes_new(NULL, 0);
		succeed(op, op->result, empty);
	}
}

static void
on_send_done(Op *op, gsize sent, guint16 asked)
{
	if (sent != asked) {
		fail(op, HEALER_ERROR_IO, "SEND took %" G_GSIZE_FORMAT " of %u bytes", sent, asked);
		return;
	}
	op->offset += sent;
	if (op->offset < payload_size(op)) {
		send_next_chunk(op);
		return;
	}
	begin_wait(op, STAGE_WAIT_RESULT);
}

static void
on_recv_reply(Op *op, const guint8 *data, gsize len, guint16 asked)
{
	if (len != asked) {
		fail(op, HEALER_ERROR_INVALID_DATA, "RECV gave %" G_GSIZE_FORMAT " of the %u bytes asked for", len,
		     asked);
		return;
	}
	g_byte_array_append(op->reply, data, (guint)len);
	op->offset += len;
	if (op->offset < op->reply_size) {
		recv_next_chunk(op);
		return;
	}
	{
		g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes(g_steal_pointer(&op->reply));
		succeed(op, op->result, bytes);
	}
}

static void
on_version_reply(Op *op, const guint8 *data, gsize len)
{
	HealerParticleClient *self = op->client;
	gsize n = 0;

	while (n < len && data[n] != '\0')
		n++;
	for (gsize i = 0; i < n; i++) {
		if (data[i] < 0x20 || data[i] > 0x7e) {
			g_debug("raw request 0x50/30: the system version is not printable text; ignored");
			return;
		}
	}
	g_clear_pointer(&self->system_version, g_free);
	if (n > 0)
		self->system_version = g_strndup((const char *)data, n);
}

static void
on_reset_all_reply(Op *op, const guint8 *data, gsize len)
{
	HealerParticleClient *self = op->client;
	HealerParticleReply reply;
	g_autoptr(GBytes) version = NULL;

	if (!parse_reply(op, "RESET", data, len, &reply))
		return;
	if (reply.status != HEALER_PARTICLE_STATUS_OK) {
		fail(op, HEALER_ERROR_FAILED, "RESET answered %s", status_name(reply.status));
		return;
	}
	if (self->system_version != NULL)
		version = g_bytes_new(self->system_version, strlen(self->system_version));
	succeed(op, 0, version);
}

/* bLength, bDescriptorType 3, then UTF-16LE: ASCII kept, anything else as '?'. */
static void
on_string_reply(Op *op, const guint8 *data, gsize len)
{
	gsize n = len >= 2 ? MIN(len, data[0]) : 0;
	g_autoptr(GByteArray) text = g_byte_array_new();
	g_autoptr(GBytes) bytes = NULL;

	if (n < 2 || data[1] != LIBUSB_DT_STRING) {
		fail(op, HEALER_ERROR_INVALID_DATA, "not a string descriptor (%" G_GSIZE_FORMAT " bytes)", len);
		return;
	}
	for (gsize i = 2; i + 1 < n; i += 2) {
		guint16 c = (guint16)(data[i] | data[i + 1] << 8);
		guint8 ch = c >= 0x20 && c < 0x7f ? (guint8)c : '?';
		g_byte_array_append(text, &ch, 1);
	}
	bytes = g_byte_array_free_to_bytes(g_steal_pointer(&text));
	succeed(op, 0, bytes);
}

static void
on_completed(Op *op, struct libusb_transfer *transfer)
{
	const guint8 *data = libusb_control_transfer_get_data(transfer);
	gsize len = (gsize)transfer->actual_length;
	guint16 asked = libusb_le16_to_cpu(((struct libusb_control_setup *)(void *)transfer->buffer)->wLength);

	switch (op->stage) {
	case STAGE_INIT:
		on_init_reply(op, data, len);
		return;
	case STAGE_WAIT_BUFFER:
	case STAGE_WAIT_RESULT:
		on_check_reply(op, data, len);
		return;
	case STAGE_SEND:
		on_send_done(op, len, asked);
		return;
	case STAGE_RECV:
		on_recv_reply(op, data, len, asked);
		return;
	case STAGE_CANCEL: {
		HealerParticleReply reply;
		if (healer_particle_reply_parse(data, len, &reply, NULL) && reply.status != HEALER_PARTICLE_STATUS_OK)
			g_debug("RESET of request %u answered %s", op->id, status_name(reply.status));
		op_done(op);
		return;
	}
	case STAGE_VERSION:
		on_version_reply(op, data, len);
		op->stage = STAGE_RESET_ALL;
		submit_setup(op, healer_particle_setup_reset(0), NULL);
		return;
	case STAGE_RESET_ALL:
		on_reset_all_reply(op, data, len);
		return;
	case STAGE_RAW_OUT:
		succeed(op, 0, NULL);
		return;
	case STAGE_STRING:
		on_string_reply(op, data, len);
		return;
	case STAGE_QUEUED:
	case STAGE_BUSY_WAIT:
		break;
	}
	g_assert_not_reached();
}

static const char *
stage_service(const Op *op)
{
	switch (op->stage) {
	case STAGE_INIT:
		return "INIT";
	case STAGE_WAIT_BUFFER:
	case STAGE_WAIT_RESULT:
		return "CHECK";
	case STAGE_SEND:
		return "SEND";
	case STAGE_RECV:
		return "RECV";
	case STAGE_CANCEL:
	case STAGE_RESET_ALL:
		return "RESET";
	case STAGE_STRING:
		return "GET_DESCRIPTOR";
	default:
		return "the raw request";
	}
}

/* A transfer that did not complete: what it means depends on the stage. */
static void
on_transfer_error(Op *op, enum libusb_transfer_status status)
{
	const char *service = stage_service(op);

	switch (op->stage) {
	case STAGE_RAW_OUT:
		/* The device resets at once: it may never answer, or be gone before it does. */
		g_debug("raw request 0x50/%u: %s (the device resets)", op->type, libusb_error_name(status));
		succeed(op, 0, NULL);
		return;
	case STAGE_VERSION:
		/* Pre-0.6 firmware has no version request: a stall, and no version. */
		op->stage = STAGE_RESET_ALL;
		submit_setup(op, healer_particle_setup_reset(0), NULL);
		return;
	case STAGE_CANCEL:
		op_done(op);
		return;
	default:
		break;
	}
	switch (status) {
	case LIBUSB_TRANSFER_NO_DEVICE:
		op->device_forgot = TRUE;
		fail(op, HEALER_ERROR_NOT_FOUND, "%s: the device is gone", service);
		return;
	case LIBUSB_TRANSFER_TIMED_OUT:
		fail(op, HEALER_ERROR_IO, "%s: no answer within %u ms", service, HEALER_PARTICLE_TRANSFER_TIMEOUT_MS);
		return;
	case LIBUSB_TRANSFER_STALL:
		fail(op, HEALER_ERROR_IO, "the device stalled %s", service);
		return;
	default:
		fail(op, HEALER_ERROR_IO, "%s failed: %s", service, libusb_error_name(LIBUSB_ERROR_IO));
		return;
	}
}

static void
on_transfer(struct libusb_transfer *transfer)
{
	Op *op = transfer->user_data;
	HealerParticleClient *self = op->client;
	enum libusb_transfer_status status = transfer->status;
	gboolean out = (transfer->buffer[0] & LIBUSB_ENDPOINT_IN) == 0;

	op->transfer = NULL;
	g_assert(self->in_flight > 0);
	self->in_flight--;
	if (self->closing) {
		/* The handle is closed outside libusb's callback: libusb still uses the transfer after it. */
		release_when_idle(self);
		return;
	}
	self->stats.transfers++;
	if (op->stage == STAGE_WAIT_BUFFER || op->stage == STAGE_WAIT_RESULT)
		self->stats.polls++;
	if (status == LIBUSB_TRANSFER_COMPLETED) {
		if (out)
			self->stats.bytes_out += (guint64)transfer->actual_length;
		else
			self->stats.bytes_in += (guint64)transfer->actual_length;
	}
	self->dispatching++;
	if (op->reported) {
		/* Its caller has heard (a deadline): learn the id INIT may have brought, then cancel it. */
		HealerParticleReply reply;
		if (op->stage == STAGE_INIT && status == LIBUSB_TRANSFER_COMPLETED &&
		    healer_particle_reply_parse(libusb_control_transfer_get_data(transfer),
		                                (gsize)transfer->actual_length, &reply, NULL) &&
		    (reply.fields & HEALER_PARTICLE_REPLY_FIELD_ID))
			op->id = reply.id;
		if (status == LIBUSB_TRANSFER_NO_DEVICE)
			op->device_forgot = TRUE;
		if (op->stage == STAGE_CANCEL || op->stage == STAGE_RAW_OUT || op->kind == OP_OPEN ||
		    op->kind == OP_STRING)
			op_done(op);
		else
			stage_failed(op);
	} else if (status == LIBUSB_TRANSFER_COMPLETED) {
		on_completed(op, transfer);
	} else {
		on_transfer_error(op, status);
	}
	self->dispatching--;
	if (self->closing)
		release_when_idle(self);
}

/* ---- starting --------------------------------------------------------------------------------- */

static void
start(Op *op)
{
	HealerParticleClient *self = op->client;

	g_ptr_array_add(self->running, op);
	switch (op->kind) {
	case OP_OPEN:
		self->opening = TRUE;
		op->stage = STAGE_VERSION;
		submit_setup(op,
		             (HealerParticleSetup){HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_RAW_REQUEST, 0,
		                                   HEALER_PARTICLE_RAW_SYSTEM_VERSION, VERSION_WLENGTH},
		             NULL);
		return;
	case OP_RAW_OUT: {
		static const guint8 zero = 0;
		op->stage = STAGE_RAW_OUT;
		submit_setup(op,
		             (HealerParticleSetup){HEALER_PARTICLE_REQUEST_TYPE_OUT, HEALER_PARTICLE_RAW_REQUEST, 0,
		                                   op->type, self->out_needs_data_stage ? 1 : 0},
		             &zero);
		return;
	}
	case OP_STRING:
		op->stage = STAGE_STRING;
		submit_setup(op,
		             (HealerParticleSetup){LIBUSB_ENDPOINT_IN, LIBUSB_REQUEST_GET_DESCRIPTOR,
		                                   (guint16)(LIBUSB_DT_STRING << 8 | op->type), LANGID_EN_US,
		                                   STRING_MAX_LENGTH},
		             NULL);
		return;
	case OP_REQUEST:
		op->active = TRUE;
		self->active++;
		send_init(op);
		return;
	}
}

/* Starts what may start, in order: open alone, requests up to the device's limit. */
static void
pump(HealerParticleClient *self)
{
	if (self->pumping) {
		self->pump_again = TRUE;
		return;
	}
	self->pumping = TRUE;
	do {
		self->pump_again = FALSE;
		while (!self->closing && !self->opening && self->waiting.head != NULL) {
			Op *op = self->waiting.head->data;
			if (op->kind == OP_OPEN && self->running->len > 0)
				break;
			if (op->kind == OP_REQUEST && self->active >= self->max_active)
				break;
			g_queue_pop_head(&self->waiting);
			start(op);
		}
	} while (self->pump_again && !self->closing);
	self->pumping = FALSE;
}

static gboolean
on_pump_idle(gpointer user_data)
{
	HealerParticleClient *self = user_data;

	self->pump_idle = 0;
	self->dispatching++;
	pump(self);
	self->dispatching--;
	return G_SOURCE_REMOVE;
}

static gboolean
on_deadline(gpointer user_data)
{
	Op *op = user_data;
	HealerParticleClient *self = op->client;
	g_autofree char *doing = stage_text(op);

	op->deadline_timer = 0;
	self->dispatching++;
	fail(op, HEALER_ERROR_IO, "no answer within %u ms (%s)", op->timeout_ms, doing);
	self->dispatching--;
	return G_SOURCE_REMOVE;
}

/* Queues `op`; it starts from the main loop, so no func runs inside the call that asked for it. */
static void
enqueue(HealerParticleClient *self, Op *op)
{
	op->client = self;
	op->stage = STAGE_QUEUED;
	g_queue_push_tail(&self->waiting, op);
	if (op->timeout_ms > 0)
		op->deadline_timer = g_timeout_add(op->timeout_ms, on_deadline, op);
	if (self->pump_idle == 0)
		self->pump_idle = g_idle_add(on_pump_idle, self);
}

void
healer_particle_client_open_async(HealerParticleClient *self, HealerParticleClientFunc func, gpointer user_data)
{
	Op *op = g_new0(Op, 1);

	g_return_if_fail(!self->closing);
	op->kind = OP_OPEN;
	op->func = func;
	op->user_data = user_data;
	enqueue(self, op);
}

void
healer_particle_client_request_async(HealerParticleClient *self, guint16 type, GBytes *payload, guint timeout_ms,
                                     HealerParticleClientFunc func, gpointer user_data)
{
	Op *op;

	g_return_if_fail(!self->closing);
	g_return_if_fail(payload == NULL || g_bytes_get_size(payload) <= HEALER_PARTICLE_MAX_PAYLOAD);
	op = g_new0(Op, 1);
	op->kind = OP_REQUEST;
	op->type = type;
	op->payload = payload != NULL && g_bytes_get_size(payload) > 0 ? g_bytes_ref(payload) : NULL;
	op->timeout_ms = timeout_ms > 0 ? timeout_ms : HEALER_PARTICLE_REQUEST_TIMEOUT_MS;
	op->func = func;
	op->user_data = user_data;
	enqueue(self, op);
}

void
healer_particle_client_raw_out_async(HealerParticleClient *self, guint16 index, HealerParticleClientFunc func,
                                     gpointer user_data)
{
	Op *op = g_new0(Op, 1);

	g_return_if_fail(!self->closing);
	op->kind = OP_RAW_OUT;
	op->type = index;
	op->func = func;
	op->user_data = user_data;
	enqueue(self, op);
}

void
healer_particle_client_read_string_async(HealerParticleClient *self, guint8 index, HealerParticleClientFunc func,
                                         gpointer user_data)
{
	Op *op = g_new0(Op, 1);

	g_return_if_fail(!self->closing);
	op->kind = OP_STRING;
	op->type = index;
	op->timeout_ms = HEALER_PARTICLE_TRANSFER_TIMEOUT_MS;
	op->func = func;
	op->user_data = user_data;
	enqueue(self, op);
}
