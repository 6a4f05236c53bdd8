#include "link-device.h"

#include "healer-error.h"
#include "healer-text.h"
#include "json-autoptr.h"
#include "module-checksums.h"

/*
 * Go back to the last acknowledged byte this many times for silence (a retry interval with no answer at
 * all) before giving up: 8 x 2.5 s with the default timeouts, about the device's own idle limit (20 s).
 */
#define MAX_RESENDS 8
/*
 * Go back this many times for gaps at the same offset (duplicate ACKs: the device is alive but the frame
 * there keeps arriving damaged) before giving up.  Generous: at a bit error rate of 1e-3 a 64-byte frame
 * is lost about half the time, and 32 losses in a row are then a 1-in-10^8 event.
 */
#define MAX_GAPS 32
/*
 * BEGIN again (after UPDATE_RESULT -104 or silence) this many times in a row without the device holding
 * more than the time before, then give up: a link that loses something every round, or a dead device.
 */
#define MAX_ROUNDS 5
/* DESCRIBE after the reset, one each retry interval: 4 x 2.5 s, the response timeout, by default. */
#define DESCRIBE_TRIES 4
/*
 * The DATA payload on a noisy line: a frame is lost when any of its bits is, so its chance to arrive is
 * (1 - BER)^bits.  Halve the payload on every loss, down to MIN_DATA; double it back after GROW_AFTER
 * ACKs in a row with no loss.  On a clean line nothing is lost and the negotiated size stays.
 */
#define MIN_DATA   64
#define GROW_AFTER 16
/* A device that said nothing since we opened it may have booted before: ask for HELLO. */
#define HELLO_PROBE_MS     1000
#define HELLO_PROBE_MAX_MS 60000 /* a port that never answers is asked less and less often, not every second */

typedef enum {
	OP_NONE,
	OP_WAIT_READY,
	OP_SENDING,
	OP_WAIT_RESULT,
	OP_WAIT_RESET,
	OP_WAIT_DESCRIBE,
} OpState;

struct _HealerLinkDevice {
	HealerDevice parent_instance;
	char *id;
	HealerTransport *transport;
	HealerLinkTimeouts timeouts;

	gboolean have_hello;
	HealerLinkHello hello;
	guint8 mode;
	guint8 led;
	HealerDescribe *describe;
	char *describe_json;
	HealerDeviceState *state;  /* the describe, for the resolver: built when first asked */
	GError *describe_error;    /* why the last describe was unreadable, or NULL */
	gboolean describe_pending; /* a DESCRIBE request is out */
	guint probe_source;        /* HELLO_REQUEST / DESCRIBE retries */
	guint probe_interval_ms;   /* the next retry's delay: doubles while the port stays silent */

	/* The install in flight. */
	OpState op;
	GBytes *module;
	GBytes *begin; /* the BEGIN frame, sent again to resume a round that ended incomplete */
	HealerDeviceInstallFunc op_func;
	gpointer op_user_data;
	guint32 next;       /* next byte to send */
	guint32 acked;      /* bytes the device acknowledged */
	GArray *inflight;   /* guint32: end offset of each DATA frame sent past `acked`, oldest first; from the first
	                       install */
	gboolean went_back; /* the window was resent for the gap at `acked` */
	guint stale_dups;   /* duplicate ACKs still due from frames sent before that go-back */
	guint16 max_data;   /* negotiated in UPDATE_READY */
	guint16 data_size;  /* payload in use, <= max_data; kept across installs (the line stays what it is) */
	guint clean_acks;   /* ACKs moving forward since the last loss */
	guint8 window;
	guint resends;        /* go-backs for silence without progress */
	guint gaps;           /* go-backs for duplicate ACKs without progress */
	guint rounds;         /* BEGINs sent again without the device holding more */
	guint32 round_offset; /* what the device held at the start of this round (UPDATE_READY) */
	gboolean resuming;    /* BEGIN was sent again: its UPDATE_READY continues the install */
	guint op_timer;
};

static void send_describe(HealerLinkDevice *self);

G_DEFINE_FINAL_TYPE(HealerLinkDevice, healer_link_device, HEALER_TYPE_DEVICE)

static void
clear_op_timer(HealerLinkDevice *self)
{
	if (self->op_timer != 0)
		g_source_remove(self->op_timer);
	self->op_timer = 0;
}

static void
finish_op(HealerLinkDevice *self, GError *error)
{
	HealerDeviceInstallFunc func = self->op_func;
	gpointer user_data = self->op_user_data;

	clear_op_timer(self);
	self->op = OP_NONE;
	g_clear_pointer(&self->module, g_bytes_unref);
	g_clear_pointer(&self->begin, g_bytes_unref);
	self->op_func = NULL;
	if (func != NULL)
		func(HEALER_DEVICE(self), error, user_data);
	if (error != NULL)
		g_error_free(error);
}

static gboolean on_op_timeout(gpointer user_data);

static void arm_probe(HealerLinkDevice *self, guint interval_ms);
static gboolean on_probe(gpointer user_data);

static void
arm_op_timer(HealerLinkDevice *self, guint ms)
{
	clear_op_timer(self);
	self->op_timer = g_timeout_add(ms, on_op_timeout, self);
}

/*
 * Silence during a transfer (no ACK, no UPDATE_READY, no UPDATE_RESULT) for this long means a frame or
 * its answer was lost: send again.  A quarter of the response timeout, so a noisy line does not sit out
 * the whole timeout at every loss, while a device that answers at all (an ACK at least every frame time,
 * UPDATE_READY after its erase) is never hurried; the limits on retries then bound a dead link.
 */
static guint
retry_ms(HealerLinkDevice *self)
{
	return MAX(self->timeouts.response_timeout_ms / 4, 1);
}

static void
send_finish(HealerLinkDevice *self)
{
	g_autoptr(GBytes) frame = healer_link_build_finish();

	self->op = OP_WAIT_RESULT;
	healer_transport_send(self->transport, frame);
	arm_op_timer(self, retry_ms(self));
}

/*
 * Fills the window: up to `window` DATA frames in flight past the acknowledged offset.  Once the last
 * byte is out, FINISH follows at once rather than one round trip later, after the last ACK: the device
 * handles frames in the order they arrive, so it verifies as soon as the last byte is in, and if a frame
 * was lost on the way it answers -104 (incomplete) and BEGIN resumes (on_update_result()).
 */
static void
send_window(HealerLinkDevice *self)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(self->module, &len);

	while (self->next < len && self->inflight->len < self->window) {
		guint32 n = MIN(self->data_size, (guint32)len - self->next);
		g_autoptr(GBytes) frame = healer_link_build_data(self->next, data + self->next, n, NULL);
		healer_transport_send(self->transport, frame);
		self->next += n;
		g_array_append_val(self->inflight, self->next);
	}
	if (self->op == OP_SENDING && self->next == len)
		send_finish(self);
}

/* Something was lost: a smaller frame has a better chance to cross this line. */
static void
shrink_data(HealerLinkDevice *self)
{
	self->clean_acks = 0;
	if (self->data_size > MIN_DATA)
		self->data_size = MAX(self->data_size / 2, MIN_DATA);
}

/*
 * Sends again from the acknowledged offset.  `stale` is how many duplicate ACKs the frames sent before
 * are still due to bring (the device answers each of them with the same offset): those are ignored; one
 * more means a resent frame was lost too, and we go back again (note_gap()).
 */
static void
go_back(HealerLinkDevice *self, guint stale)
{
	shrink_data(self);
	self->went_back = TRUE;
	self->stale_dups = stale;
	self->next = self->acked;
	g_array_set_size(self->inflight, 0);
	send_window(self);
}

/*
 * A duplicate ACK while sending: the device dropped the frame at `acked` (damaged on the line) and
 * answers every later frame with the same offset.  Go back once for the gap, not once per duplicate:
 * that resends the window once per frame in flight, and each resent frame brings more duplicates (a
 * storm that starved the link at any bit error rate; test-faults).  The duplicates still due from the
 * frames sent before the go-back are counted off; if more come, the resent frame at `acked` was lost
 * as well (the device takes frames in order), so go back again rather than wait for the timeout.  The
 * count is an upper bound (a lost frame or ACK brings no duplicate), so at worst we wait longer.
 */
static void
note_gap(HealerLinkDevice *self)
{
	guint outstanding = self->inflight->len;

	if (self->went_back && self->stale_dups > 0) {
		self->stale_dups--;
		return;
	}
	if (outstanding == 0)
		return;
	if (self->gaps++ >= MAX_GAPS) {
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED,
		                            "the frame at %u of %" G_GSIZE_FORMAT " bytes was lost %u times in a row",
		                            self->acked, g_bytes_get_size(self->module), MAX_GAPS));
		return;
	}
	/* In flight: the lost frame, the one this duplicate answers, and the rest, each due to bring one. */
	go_back(self, outstanding > 2 ? outstanding - 2 : 0);
}

/* BEGIN again: the device answers with what it holds (whole 1 KiB blocks), and the transfer goes on from there. */
static void
resend_begin(HealerLinkDevice *self, const char *why)
{
	if (self->rounds++ >= MAX_ROUNDS) {
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED,
		                            "transfer incomplete: %u rounds in a row gained nothing (last: %s); "
		                            "the device acknowledged %u of %" G_GSIZE_FORMAT " bytes",
		                            MAX_ROUNDS + 1, why, self->acked, g_bytes_get_size(self->module)));
		return;
	}
	self->op = OP_WAIT_READY;
	self->resuming = TRUE;
	healer_transport_send(self->transport, self->begin);
	arm_op_timer(self, retry_ms(self));
}

static gboolean
on_op_timeout(gpointer user_data)
{
	HealerLinkDevice *self = user_data;
	g_autoptr(HealerLinkDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	self->op_timer = 0;
	switch (self->op) {
	case OP_SENDING:
		/* Silence: the tail of the window (or every ACK) was lost. Go back to what the device holds. */
		if (self->resends++ < MAX_RESENDS) {
			go_back(self, 0);
			arm_op_timer(self, retry_ms(self));
			return G_SOURCE_REMOVE;
		}
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED,
		                            "transfer stalled at %u of %" G_GSIZE_FORMAT " bytes", self->acked,
		                            g_bytes_get_size(self->module)));
		break;
	case OP_WAIT_READY:
		/*
		 * BEGIN or its answer may have been damaged on the line.  BEGIN is safe to repeat: for the
		 * same module the device resumes, and a second answer is ignored.
		 */
		resend_begin(self, "no answer to BEGIN");
		break;
	case OP_WAIT_RESULT:
		/* FINISH, its answer or the last frames were lost: BEGIN tells what the device holds. */
		shrink_data(self);
		resend_begin(self, "no answer to FINISH");
		break;
	case OP_WAIT_RESET:
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "device did not come back within %u s",
		                            self->timeouts.reset_timeout_ms / 1000));
		break;
	case OP_WAIT_DESCRIBE:
		/*
		 * The describe (~500 bytes) is the longest frame after a reset and the likeliest to be
		 * damaged on a noisy line: ask again within the response timeout rather than fail the step
		 * (the engine would then plan from the describe before the reset).
		 */
		if (self->resends++ < DESCRIBE_TRIES - 1) {
			g_autoptr(GBytes) describe = healer_link_build_describe();
			healer_transport_send(self->transport, describe);
			arm_op_timer(self, retry_ms(self));
			break;
		}
		finish_op(self, g_error_new_literal(HEALER_ERROR, HEALER_ERROR_FAILED, "no describe after the reset"));
		break;
	case OP_NONE:
		break;
	}
	return G_SOURCE_REMOVE;
}

static void
on_update_ready(HealerLinkDevice *self, const link_frame_t *frame)
{
	HealerLinkUpdateReady ready;
	g_autoptr(GError) error = NULL;
	g_autofree char *status = NULL;
	guint32 held;

	if (self->op != OP_WAIT_READY)
		return;
	if (!healer_link_parse_update_ready(frame, &ready, &error)) {
		finish_op(self, g_steal_pointer(&error));
		return;
	}
	if (ready.status != 0) {
		status = healer_link_status_to_string(ready.status);
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "device refused the transfer: %s (%d)",
		                            status, ready.status));
		return;
	}
	held = MIN(ready.offset, (guint32)g_bytes_get_size(self->module));
	/* A round that ends with the device holding more is progress, however often it took. */
	if (self->resuming && held > self->round_offset)
		self->rounds = 0;
	self->resuming = FALSE;
	self->round_offset = held;
	self->op = OP_SENDING;
	self->acked = self->next = held;
	g_array_set_size(self->inflight, 0);
	self->went_back = FALSE;
	self->stale_dups = 0;
	self->max_data = ready.max_data;
	self->data_size = self->data_size == 0 ? ready.max_data : MIN(self->data_size, ready.max_data);
	self->window = ready.window;
	self->resends = 0;
	self->gaps = 0;
	/* Everything already held: send_window() sends FINISH alone. */
	send_window(self);
	if (self->op == OP_SENDING)
		arm_op_timer(self, retry_ms(self));
}

static void
on_ack(HealerLinkDevice *self, const link_frame_t *frame)
{
	guint32 next = 0;
	gsize total = self->module ? g_bytes_get_size(self->module) : 0;
	guint done = 0;

	/* ACKs keep coming after FINISH went out behind the last frames. */
	if ((self->op != OP_SENDING && self->op != OP_WAIT_RESULT) || !healer_link_parse_ack(frame, &next, NULL) ||
	    next > total)
		return;
	/* The device is alive and working through what we sent: the timer measures silence. */
	arm_op_timer(self, retry_ms(self));
	if (next <= self->acked) {
		/*
		 * After FINISH the device takes it before any frame we could resend now, and answers
		 * -104 for the gap: resume then (on_update_result()), not now.
		 */
		if (next == self->acked && self->op == OP_SENDING)
			note_gap(self);
		return;
	}
	self->acked = next;
	while (done < self->inflight->len && g_array_index(self->inflight, guint32, done) <= next)
		done++;
	g_array_remove_range(self->inflight, 0, done);
	self->went_back = FALSE;
	self->stale_dups = 0;
	self->resends = 0;
	self->gaps = 0;
	if (++self->clean_acks >= GROW_AFTER && self->data_size < self->max_data) {
		self->data_size = (guint16)MIN((guint)self->data_size * 2, self->max_data);
		self->clean_acks = 0;
	}
	healer_device_emit_progress(HEALER_DEVICE(self));
	if (self->op == OP_SENDING)
		send_window(self);
}

static void
on_update_result(HealerLinkDevice *self, const link_frame_t *frame)
{
	gint32 status = 0;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;

	if (self->op != OP_WAIT_RESULT)
		return;
	if (!healer_link_parse_update_result(frame, &status, &error)) {
		finish_op(self, g_steal_pointer(&error));
		return;
	}
	if (status == LINK_ERROR_INCOMPLETE) {
		/*
		 * FINISH overtook a gap: a frame was lost after the last go-back could help.  The device
		 * ended the transfer but keeps what it staged; BEGIN resumes from there.
		 */
		shrink_data(self);
		resend_begin(self, "FINISH answered incomplete");
		return;
	}
	if (status != 0) {
		text = healer_link_status_to_string(status);
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "device refused the module: %s (%d)",
		                            text, status));
		return;
	}
	/* Staged: the device resets and its bootloader installs it. */
	self->op = OP_WAIT_RESET;
	arm_op_timer(self, self->timeouts.reset_timeout_ms);
}

static void
on_error_frame(HealerLinkDevice *self, const link_frame_t *frame)
{
	g_auto(HealerLinkErrorReply) reply = {0};
	g_autofree char *text = NULL, *line = NULL;

	if (!healer_link_parse_error(frame, &reply, NULL))
		return;
	/* The device's text ends up in the journal, in D-Bus properties and on technicians' terminals. */
	text = healer_text_escape(reply.text, -1);
	line = g_strdup_printf("device error %d answering %s: %s", reply.code,
	                       healer_link_frame_type_to_string(reply.request_type)
	                               ? healer_link_frame_type_to_string(reply.request_type)
	                               : "?",
	                       text);
	healer_device_emit_log(HEALER_DEVICE(self), line);
	if (self->op == OP_WAIT_READY || self->op == OP_SENDING || self->op == OP_WAIT_RESULT)
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "%s", line));
}

/*
 * Another device answers on this port (the first HELLO, or a different id): what the last one said is
 * not this one's.  An install in flight was for the other device: it has failed.
 */
static void
new_id(HealerLinkDevice *self, char *id)
{
	g_autofree char *old = self->id;

	self->id = id;
	g_clear_pointer(&self->describe, healer_describe_free);
	g_clear_pointer(&self->state, healer_device_state_free);
	g_clear_pointer(&self->describe_json, g_free);
	if (old != NULL && self->op != OP_NONE)
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED,
		                            "another device (%s) answered on %s during the install", id,
		                            healer_device_get_port(HEALER_DEVICE(self))));
	healer_device_emit_identity_changed(HEALER_DEVICE(self));
}

static void
on_hello(HealerLinkDevice *self, const link_frame_t *frame)
{
	HealerLinkHello hello;
	char *id;

	if (!healer_link_parse_hello(frame, &hello, NULL))
		return;
	self->hello = hello;
	self->have_hello = TRUE;
	self->mode = hello.mode;
	self->led = hello.led;
	id = g_malloc(LINK_DEVICE_ID_SIZE * 2 + 1);
	for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++)
		g_snprintf(id + 2 * i, 3, "%02x", hello.device_id[i]);
	if (g_strcmp0(id, self->id) != 0) {
		new_id(self, id);
		if (self->transport == NULL)
			return; /* disconnected by the handler */
	} else {
		g_free(id);
	}
	/*
	 * A reset for an update while we wait for UPDATE_RESULT: FINISH staged the module and the answer was
	 * lost on the line.  The describe after it says whether the module is in.
	 */
	if (self->op == OP_WAIT_RESET || (self->op == OP_WAIT_RESULT && hello.reset_reason == LINK_RESET_UPDATE)) {
		self->op = OP_WAIT_DESCRIBE;
		self->resends = 0;
		arm_op_timer(self, retry_ms(self));
	} else if (self->op != OP_NONE) {
		/* It rebooted in the middle of something: that attempt is over; BEGIN again resumes it. */
		finish_op(self,
		          g_error_new_literal(HEALER_ERROR, HEALER_ERROR_FAILED, "device reset during the transfer"));
	}
	send_describe(self);
}

static void
on_describe_reply(HealerLinkDevice *self, const link_frame_t *frame)
{
	g_auto(HealerLinkDescribeReply) reply = {0};
	g_autoptr(GError) error = NULL;
	HealerDescribe *describe;

	self->describe_pending = FALSE;
	if (!healer_link_parse_describe_reply(frame, &reply, &error))
		return;
	describe = healer_describe_parse(reply.json, reply.len, &error);
	g_clear_error(&self->describe_error);
	if (describe == NULL) {
		self->describe_error = g_error_copy(error);
		g_autofree char *why = healer_text_escape(error->message, -1);
		g_autofree char *line = g_strdup_printf("unreadable describe: %s", why);
		healer_device_emit_log(HEALER_DEVICE(self), line);
		return;
	}
	g_clear_pointer(&self->describe, healer_describe_free);
	self->describe = describe;
	g_clear_pointer(&self->state, healer_device_state_free);
	g_free(self->describe_json);
	/*
	 * Exported as the device sent it, but written again by json-c: the parse above was strict (valid
	 * UTF-8, no raw control character in a string), and this drops the white space between tokens
	 * (a carriage return is white space to JSON, and to a terminal it overwrites the line).
	 */
	{
		g_autoptr(json_object) root = json_tokener_parse(reply.json);
		self->describe_json = g_strdup(
		        json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	/*
	 * Asked enough once the device said who it is.  A describe before any HELLO is an answer left on
	 * the line for an earlier program (healerctl probe stops reading once it knows enough): the HELLO
	 * is still to be asked for, or the device would wait here unheard forever.
	 */
	if (self->probe_source != 0 && self->have_hello) {
		g_source_remove(self->probe_source);
		self->probe_source = 0;
	}
	if (self->op == OP_WAIT_DESCRIBE)
		finish_op(self, NULL);
	if (self->have_hello)
		healer_device_emit_identified(HEALER_DEVICE(self));
}

static void
on_status(HealerLinkDevice *self, const link_frame_t *frame)
{
	HealerLinkStatus status;

	if (!healer_link_parse_status(frame, &status, NULL))
		return;
	self->mode = status.mode;
	self->led = status.led;
	healer_device_emit_changed(HEALER_DEVICE(self));
}

static void
on_log(HealerLinkDevice *self, const link_frame_t *frame)
{
	g_auto(HealerLinkLog) log = {0};
	g_autofree char *line = NULL;

	if (!healer_link_parse_log(frame, &log, NULL))
		return;
	/* A newline in it would forge a healerd line; an escape sequence would reach a terminal. */
	line = healer_text_escape(log.text, -1);
	healer_device_emit_log(HEALER_DEVICE(self), line);
}

static void
on_frame(HealerTransport *transport, const link_frame_t *frame, gpointer user_data)
{
	HealerLinkDevice *self = user_data;
	/* A handler may drop the last other reference: this one keeps the device until the frame is handled. */
	g_autoptr(HealerLinkDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	(void)transport;
	/* Something answers on this port after all: ask again soon. */
	if (self->probe_source != 0 && self->probe_interval_ms > HELLO_PROBE_MS && !self->have_hello)
		arm_probe(self, HELLO_PROBE_MS);
	switch (frame->type) {
	case LINK_HELLO:
		on_hello(self, frame);
		break;
	case LINK_DESCRIBE_REPLY:
		on_describe_reply(self, frame);
		break;
	case LINK_STATUS:
		on_status(self, frame);
		break;
	case LINK_LOG:
		on_log(self, frame);
		break;
	case LINK_UPDATE_READY:
		on_update_ready(self, frame);
		break;
	case LINK_ACK:
		on_ack(self, frame);
		break;
	case LINK_UPDATE_RESULT:
		on_update_result(self, frame);
		break;
	case LINK_ERROR:
		on_error_frame(self, frame);
		break;
	default:
		break;
	}
}

static void
on_closed(HealerTransport *transport, const GError *error, gpointer user_data)
{
	HealerLinkDevice *self = user_data;
	g_autoptr(HealerLinkDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	(void)transport;
	self->transport = NULL;
	if (self->op != OP_NONE)
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "device went away: %s", error->message));
	healer_device_emit_detached(HEALER_DEVICE(self));
}

static void
arm_probe(HealerLinkDevice *self, guint interval_ms)
{
	if (self->probe_source != 0)
		g_source_remove(self->probe_source);
	self->probe_interval_ms = interval_ms;
	self->probe_source = g_timeout_add(interval_ms, on_probe, self);
}

/* Until the device has said who it is, ask now and then: less often the longer it stays silent. */
static gboolean
on_probe(gpointer user_data)
{
	HealerLinkDevice *self = user_data;
	g_autoptr(GBytes) frame = self->have_hello ? healer_link_build_describe() : healer_link_build_hello_request();

	self->probe_source = 0;
	if (self->transport != NULL)
		healer_transport_send(self->transport, frame);
	arm_probe(self, MIN(self->probe_interval_ms * 2, HELLO_PROBE_MAX_MS));
	return G_SOURCE_REMOVE;
}

static void
send_describe(HealerLinkDevice *self)
{
	g_autoptr(GBytes) frame = healer_link_build_describe();

	if (self->transport == NULL)
		return;
	self->describe_pending = TRUE;
	healer_transport_send(self->transport, frame);
	if (self->probe_source == 0)
		arm_probe(self, self->timeouts.response_timeout_ms);
}

static void
link_device_disconnect(HealerLinkDevice *self)
{
	healer_transport_close(self->transport);
	self->transport = NULL;
	clear_op_timer(self);
	if (self->probe_source != 0)
		g_source_remove(self->probe_source);
	self->probe_source = 0;
}

static void
healer_link_device_dispose(GObject *object)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(object);

	self->op_func = NULL;
	link_device_disconnect(self);
	G_OBJECT_CLASS(healer_link_device_parent_class)->dispose(object);
}

static void
healer_link_device_finalize(GObject *object)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(object);

	g_clear_pointer(&self->module, g_bytes_unref);
	g_clear_pointer(&self->begin, g_bytes_unref);
	g_clear_pointer(&self->inflight, g_array_unref);
	g_clear_pointer(&self->describe, healer_describe_free);
	g_clear_pointer(&self->state, healer_device_state_free);
	g_clear_error(&self->describe_error);
	g_free(self->describe_json);
	g_free(self->id);
	G_OBJECT_CLASS(healer_link_device_parent_class)->finalize(object);
}

static const char *
link_get_id(HealerDevice *device)
{
	return HEALER_LINK_DEVICE(device)->id;
}

static guint16
link_get_platform_id(HealerDevice *device)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);

	return self->have_hello ? self->hello.platform_id : 0;
}

static const HealerDeviceState *
link_get_state(HealerDevice *device)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);

	/* Built when first asked (a plan, a check): a healthy device is never planned for. */
	if (self->state == NULL && self->describe != NULL)
		self->state = healer_device_state_new_from_describe(self->describe);
	return self->state;
}

static const char *
link_get_state_json(HealerDevice *device)
{
	return HEALER_LINK_DEVICE(device)->describe_json;
}

/* What the describe says at (function, index): its first entry there, as the device lists it. */
static gboolean
link_lookup_module(HealerDevice *device, guint function, guint index, guint16 *version)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);
	const HealerDescribeModule *m =
	        self->describe != NULL ? healer_describe_find(self->describe, function, index) : NULL;

	if (m == NULL)
		return FALSE;
	*version = m->version;
	return TRUE;
}

static void
link_get_health(HealerDevice *device, HealerDeviceHealth *health)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);
	const HealerDescribeModule *app =
	        self->describe != NULL ? healer_describe_find(self->describe, MODULE_FUNCTION_USER_PART, 1) : NULL;
	const char *mode = healer_link_mode_to_string(self->mode);
	const char *led = healer_link_led_to_string(self->led);

	health->running = self->have_hello && self->mode == LINK_MODE_NORMAL;
	health->mode = mode != NULL ? mode : "unknown";
	health->safe_mode_reason = healer_link_safe_mode_reason_to_string(
	        self->mode == LINK_MODE_SAFE ? self->hello.safe_mode_reason : LINK_SAFE_MODE_NONE);
	health->boot_mode = healer_link_mode_to_string(self->hello.mode);
	health->boot_reason = healer_link_safe_mode_reason_to_string(self->hello.safe_mode_reason);
	health->reset_reason = healer_link_reset_reason_to_string(self->hello.reset_reason);
	health->led = led;
	health->has_app = app != NULL;
	health->app_valid = app != NULL && healer_describe_module_valid(app);
	health->app_dependencies_failed = app != NULL && healer_describe_module_dependency_failed(app);
}

static void
link_get_progress(HealerDevice *device, guint64 *done, guint64 *total)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);

	*done = self->acked;
	*total = self->module ? g_bytes_get_size(self->module) : 0;
}

static gboolean
link_is_busy(HealerDevice *device)
{
	return HEALER_LINK_DEVICE(device)->op != OP_NONE;
}

static void
link_install_async(HealerDevice *device, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                   gpointer user_data)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);
	gsize len = 0;
	const guint8 *m = g_bytes_get_data(module->bytes, &len);
	guint8 sha[HEALER_SHA256_SIZE];
	g_autoptr(GBytes) begin = NULL;

	g_return_if_fail(self->transport != NULL);
	g_return_if_fail(self->op == OP_NONE);
	g_return_if_fail(len >= MODULE_PREFIX_SIZE);
	/* Made by the first install: most devices are idle, and never need it. */
	if (self->inflight == NULL)
		self->inflight = g_array_new(FALSE, FALSE, sizeof(guint32));
	self->module = g_bytes_ref(module->bytes);
	self->op_func = func;
	self->op_user_data = user_data;
	self->acked = self->next = 0;
	self->rounds = 0;
	self->round_offset = 0;
	self->resuming = FALSE;
	if (module->sha256 != NULL)
		memcpy(sha, module->sha256, sizeof sha);
	else
		healer_sha256(m, len, sha);
	begin = healer_link_build_begin((guint32)len, sha, module->function, module->index, module->version,
	                                HEALER_LINK_MAX_DATA_PAYLOAD);
	self->begin = g_bytes_ref(begin);
	self->op = OP_WAIT_READY;
	healer_transport_send(self->transport, begin);
	arm_op_timer(self, retry_ms(self));
}

static void
link_refresh(HealerDevice *device)
{
	send_describe(HEALER_LINK_DEVICE(device));
}

static void
link_reset(HealerDevice *device)
{
	HealerLinkDevice *self = HEALER_LINK_DEVICE(device);
	g_autoptr(GBytes) frame = healer_link_build_reset();

	if (self->transport != NULL)
		healer_transport_send(self->transport, frame);
}

static void
link_close(HealerDevice *device)
{
	link_device_disconnect(HEALER_LINK_DEVICE(device));
}

static void
healer_link_device_class_init(HealerLinkDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	HealerDeviceClass *device_class = HEALER_DEVICE_CLASS(klass);

	object_class->dispose = healer_link_device_dispose;
	object_class->finalize = healer_link_device_finalize;
	device_class->get_id = link_get_id;
	device_class->get_platform_id = link_get_platform_id;
	device_class->get_state = link_get_state;
	device_class->get_state_json = link_get_state_json;
	device_class->lookup_module = link_lookup_module;
	device_class->get_health = link_get_health;
	device_class->install_async = link_install_async;
	device_class->is_busy = link_is_busy;
	device_class->get_progress = link_get_progress;
	device_class->reset = link_reset;
	device_class->refresh = link_refresh;
	device_class->close = link_close;
}

static void
healer_link_device_init(HealerLinkDevice *self)
{
	(void)self;
}

HealerLinkDevice *
healer_link_device_new(const char *port, const char *physical_id, const char *transport_name,
                       HealerTransport *transport, const HealerLinkTimeouts *timeouts)
{
	/* Resets keep the port (the device says HELLO on the same line); BEGIN again resumes a transfer. */
	HealerLinkDevice *self = g_object_new(HEALER_TYPE_LINK_DEVICE, "port", port, "physical-id", physical_id,
	                                      "family", "link", "transport-name", transport_name, "flags",
	                                      (guint)HEALER_DEVICE_FLAG_RESUMES_TRANSFER, NULL);

	self->transport = transport;
	self->timeouts = *timeouts;
	transport->callbacks.frame = on_frame;
	transport->callbacks.closed = on_closed;
	transport->user_data = self;
	arm_probe(self, HELLO_PROBE_MS);
	return self;
}

const HealerLinkHello *
healer_link_device_get_hello(HealerLinkDevice *self)
{
	return self->have_hello ? &self->hello : NULL;
}

const HealerDescribe *
healer_link_device_get_describe(HealerLinkDevice *self)
{
	return self->describe;
}

typedef struct {
	gboolean identified;
	gboolean gone;
	gboolean late;
} ProbeWait;

static void
on_probe_identified(HealerDevice *device, gpointer user_data)
{
	(void)device;
	((ProbeWait *)user_data)->identified = TRUE;
}

static void
on_probe_detached(HealerDevice *device, gpointer user_data)
{
	(void)device;
	((ProbeWait *)user_data)->gone = TRUE;
}

static gboolean
on_probe_deadline(gpointer user_data)
{
	((ProbeWait *)user_data)->late = TRUE;
	return G_SOURCE_REMOVE;
}

HealerLinkDevice *
healer_link_device_probe(const char *port, HealerTransport *transport, guint timeout_s, GError **error)
{
	HealerLinkTimeouts timeouts = {.response_timeout_ms = timeout_s * 1000, .reset_timeout_ms = timeout_s * 1000};
	g_autoptr(HealerLinkDevice) self = healer_link_device_new(port, port, NULL, transport, &timeouts);
	g_autoptr(GBytes) hello_request = healer_link_build_hello_request();
	ProbeWait wait = {0};
	guint deadline;

	g_signal_connect(self, "identified", G_CALLBACK(on_probe_identified), &wait);
	g_signal_connect(self, "detached", G_CALLBACK(on_probe_detached), &wait);
	deadline = g_timeout_add_seconds(timeout_s, on_probe_deadline, &wait);
	/* A technician waits: both questions now, not after the daemon's second of listening first. */
	healer_transport_send(self->transport, hello_request);
	send_describe(self);
	while (!wait.identified && !wait.gone && !wait.late && self->describe_error == NULL)
		g_main_context_iteration(NULL, TRUE);
	if (!wait.late)
		g_source_remove(deadline);
	g_signal_handlers_disconnect_by_data(self, &wait);
	if (wait.identified)
		return g_steal_pointer(&self);
	if (self->describe_error != NULL)
		g_set_error(error, self->describe_error->domain, self->describe_error->code, "%s: %s", port,
		            self->describe_error->message);
	else
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "%s: no answer within %u s", port, timeout_s);
	return NULL;
}
