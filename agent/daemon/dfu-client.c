#include "dfu-client.h"

#include <string.h>

#include "dfu-protocol.h"
#include "healer-error.h"
#include "particle-usb-ids.h"

/* GETSTATUS rounds a device may take to reach dfuIDLE (ERROR -> CLRSTATUS, busy, ABORT) before we give up. */
#define MAX_IDLE_ROUNDS 6
/* The US English language id string descriptors are asked in. */
#define LANGID_EN_US 0x0409

/*
 * An operation is a short list of steps, each one DFU exchange: a request and, for a download,
 * the GETSTATUS polls that follow it until the device is done.
 */
typedef enum {
	STEP_STRING,  /* GET_DESCRIPTOR (string) */
	STEP_IDLE,    /* to dfuIDLE */
	STEP_COMMAND, /* DfuSe command: DNLOAD block 0, polled; retried on a stall */
	STEP_DNLOAD,  /* a data block, polled */
	STEP_LEAVE,   /* zero-length DNLOAD, one GETSTATUS */
	STEP_UPLOAD,  /* one UPLOAD block */
	STEP_ABORT,   /* ABORT where the state is known to allow it (dfuDNLOAD-IDLE, dfuUPLOAD-IDLE): to dfuIDLE */
} StepKind;

typedef struct {
	StepKind kind;
	guint16 value; /* wValue: block number or string index */
	guint8 command[HEALER_DFUSE_COMMAND_MAX_SIZE];
	gsize command_len;
	GBytes *data;   /* STEP_DNLOAD */
	guint16 length; /* STEP_UPLOAD */
} Step;

typedef enum {
	PHASE_REQUEST,      /* the step's request is out */
	PHASE_STATUS,       /* GETSTATUS after it */
	PHASE_IDLE_STATUS,  /* STEP_IDLE: GETSTATUS */
	PHASE_IDLE_REQUEST, /* STEP_IDLE: CLRSTATUS or ABORT is out */
	PHASE_STALL_STATUS, /* a command stalled: GETSTATUS before it is sent again */
	PHASE_STALL_CLEAR,  /* ... CLRSTATUS or ABORT is out */
	PHASE_DIAGNOSE,     /* something failed: GETSTATUS to name the state it left */
} Phase;

struct _HealerDfuClient {
	HealerUsbContext *context;
	libusb_device *device;
	libusb_device_handle *handle;
	guint8 interface;
	guint16 transfer_size;
	guint stall_interval_ms;
	guint64 transfers;

	/* The operation under way. */
	char *what; /* "ERASE at 0x08020000": the start of its error messages */
	GArray *steps;
	guint step;
	Phase phase;
	Phase after_wait; /* the phase a poll timer resumes */
	guint stalls;
	guint idle_rounds;
	GByteArray *result;
	HealerDfuClientFunc func;
	gpointer user_data;
	GError *failure; /* waiting for PHASE_DIAGNOSE to add the device's state */
	gboolean busy;

	struct libusb_transfer *transfer; /* in flight, or NULL */
	guint timer;
	gboolean closing;
	guint dispatching; /* inside libusb's callback or a timer of ours: libusb_close() must wait */
};

static void run_step(HealerDfuClient *self);
static void on_transfer(struct libusb_transfer *transfer);
static void send_get_status(HealerDfuClient *self, Phase phase);

static void
step_clear(Step *step)
{
	g_clear_pointer(&step->data, g_bytes_unref);
}

static void
release(HealerDfuClient *self)
{
	libusb_release_interface(self->handle, self->interface);
	libusb_close(self->handle);
	libusb_unref_device(self->device);
	/* Last: libusb_exit() may run now, and nothing of libusb's may be left. */
	healer_usb_context_unref(self->context);
	g_array_unref(self->steps);
	g_free(self->what);
	g_free(self);
}

static gboolean
on_release_idle(gpointer user_data)
{
	release(user_data);
	return G_SOURCE_REMOVE;
}

HealerDfuClient *
healer_dfu_client_new(HealerUsbContext *context, libusb_device *device, libusb_device_handle *handle, guint8 interface,
                      guint16 transfer_size)
{
	HealerDfuClient *self = g_new0(HealerDfuClient, 1);

	self->context = healer_usb_context_ref(context);
	self->device = libusb_ref_device(device);
	self->handle = handle;
	self->interface = interface;
	self->transfer_size = transfer_size;
	self->stall_interval_ms = HEALER_DFU_STALL_INTERVAL_MS;
	self->steps = g_array_new(FALSE, TRUE, sizeof(Step));
	g_array_set_clear_func(self->steps, (GDestroyNotify)step_clear);
	return self;
}

static void
clear_operation(HealerDfuClient *self)
{
	if (self->timer != 0)
		g_source_remove(self->timer);
	self->timer = 0;
	g_array_set_size(self->steps, 0);
	g_clear_pointer(&self->result, g_byte_array_unref);
	g_clear_pointer(&self->what, g_free);
	g_clear_error(&self->failure);
	self->func = NULL;
	self->busy = FALSE;
}

void
healer_dfu_client_close(HealerDfuClient *self)
{
	if (self == NULL)
		return;
	clear_operation(self);
	self->closing = TRUE;
	if (self->transfer != NULL) {
		/* libusb hands it back from the main loop; the handle is closed then (on_transfer()). */
		libusb_cancel_transfer(self->transfer);
		return;
	}
	/*
	 * Called from one of our callbacks (the device's owner lets go when it hears the device is
	 * gone): libusb_close() there would wait for the event lock libusb holds, and the caller's
	 * frames still use the client.  From the main loop, once they have returned.
	 */
	if (self->dispatching > 0) {
		g_idle_add(on_release_idle, self);
		return;
	}
	release(self);
}

gboolean
healer_dfu_client_is_busy(HealerDfuClient *self)
{
	return self->busy;
}

void
healer_dfu_client_set_stall_interval(HealerDfuClient *self, guint interval_ms)
{
	self->stall_interval_ms = interval_ms;
}

guint64
healer_dfu_client_get_transfer_count(HealerDfuClient *self)
{
	return self->transfers;
}

/* ---- ending an operation ------------------------------------------------------------------------ */

static void
finish(HealerDfuClient *self, GError *error)
{
	HealerDfuClientFunc func = self->func;
	gpointer user_data = self->user_data;
	g_autoptr(GBytes) data = NULL;

	if (error == NULL && self->result != NULL)
		data = g_byte_array_free_to_bytes(g_steal_pointer(&self->result));
	clear_operation(self);
	if (func != NULL)
		func(self, data, error, user_data);
	if (error != NULL)
		g_error_free(error);
}

/* Fails the operation, naming it: "ERASE at 0x08020000: WHY". */
static void
finish_error(HealerDfuClient *self, int code, const char *why)
{
	finish(self, g_error_new(HEALER_ERROR, code, "%s: %s", self->what, why));
}

/* A failure without the device's word on it: ask for its state first (PHASE_DIAGNOSE). */
static void
fail_and_diagnose(HealerDfuClient *self, const char *why)
{
	if (self->phase == PHASE_DIAGNOSE) {
		g_autofree char *text =
		        g_strdup_printf("%s (the state is unknown: GETSTATUS failed too)", self->failure->message);
		g_clear_error(&self->failure);
		finish_error(self, HEALER_ERROR_FAILED, text);
		return;
	}
	g_clear_error(&self->failure);
	self->failure = g_error_new_literal(HEALER_ERROR, HEALER_ERROR_FAILED, why);
	send_get_status(self, PHASE_DIAGNOSE);
}

/* ---- transfers ---------------------------------------------------------------------------------- */

static void
submit(HealerDfuClient *self, guint8 request_type, guint8 request, guint16 value, guint16 index, const guint8 *out,
       guint16 length)
{
	guint8 *buffer = g_malloc0(LIBUSB_CONTROL_SETUP_SIZE + length);
	struct libusb_transfer *transfer = libusb_alloc_transfer(0);
	int r;

	libusb_fill_control_setup(buffer, request_type, request, value, index, length);
	if (out != NULL && length > 0)
		memcpy(buffer + LIBUSB_CONTROL_SETUP_SIZE, out, length);
	libusb_fill_control_transfer(transfer, self->handle, buffer, on_transfer, self, HEALER_DFU_TRANSFER_TIMEOUT_MS);
	transfer->flags = LIBUSB_TRANSFER_FREE_BUFFER | LIBUSB_TRANSFER_FREE_TRANSFER;
	r = libusb_submit_transfer(transfer);
	if (r < 0) {
		g_autofree char *why = NULL;
		libusb_free_transfer(transfer);
		if (r == LIBUSB_ERROR_NO_DEVICE) {
			finish_error(self, HEALER_ERROR_NOT_FOUND, "the device is gone");
			return;
		}
		why = g_strdup_printf("cannot send a request: %s", libusb_strerror(r));
		finish_error(self, HEALER_ERROR_FAILED, why);
		return;
	}
	self->transfer = transfer;
}

/* A class request to the DFU interface. */
static void
submit_dfu(HealerDfuClient *self, HealerDfuRequest request, guint16 value, const guint8 *out, guint16 length)
{
	gboolean in = request == HEALER_DFU_REQUEST_UPLOAD || request == HEALER_DFU_REQUEST_GETSTATUS ||
	              request == HEALER_DFU_REQUEST_GETSTATE;

	submit(self, in ? HEALER_DFU_REQUEST_TYPE_IN : HEALER_DFU_REQUEST_TYPE_OUT, request, value, self->interface,
	       out, length);
}

static void
send_get_status(HealerDfuClient *self, Phase phase)
{
	self->phase = phase;
	submit_dfu(self, HEALER_DFU_REQUEST_GETSTATUS, 0, NULL, HEALER_DFU_STATUS_SIZE);
}

static gboolean
on_wait_done(gpointer user_data)
{
	HealerDfuClient *self = user_data;

	self->timer = 0;
	self->dispatching++;
	if (self->after_wait == PHASE_REQUEST)
		run_step(self); /* a stalled command, sent again */
	else
		send_get_status(self, self->after_wait);
	self->dispatching--;
	return G_SOURCE_REMOVE;
}

/* The device asked for `ms` before it is asked again: a timer, never a sleep. */
static void
wait_then(HealerDfuClient *self, guint ms, Phase next)
{
	self->after_wait = next;
	self->timer = g_timeout_add(ms, on_wait_done, self);
}

static Step *
current_step(HealerDfuClient *self)
{
	return &g_array_index(self->steps, Step, self->step);
}

static const char *
step_request_name(const Step *step)
{
	switch (step->kind) {
	case STEP_STRING:
		return "GET_DESCRIPTOR";
	case STEP_IDLE:
		return "GETSTATUS";
	case STEP_COMMAND:
		return healer_dfuse_command_to_string(step->command[0]);
	case STEP_DNLOAD:
	case STEP_LEAVE:
		return "DNLOAD";
	case STEP_UPLOAD:
		return "UPLOAD";
	case STEP_ABORT:
		return "ABORT";
	}
	return "?";
}

static void
next_step(HealerDfuClient *self)
{
	self->step++;
	run_step(self);
}

static void
run_step(HealerDfuClient *self)
{
	Step *step;

	if (self->step >= self->steps->len) {
		finish(self, NULL);
		return;
	}
	step = current_step(self);
	self->phase = PHASE_REQUEST;
	switch (step->kind) {
	case STEP_STRING:
		submit(self, LIBUSB_ENDPOINT_IN, LIBUSB_REQUEST_GET_DESCRIPTOR,
		       (guint16)(LIBUSB_DT_STRING << 8 | step->value), LANGID_EN_US, NULL, 255);
		break;
	case STEP_IDLE:
		self->idle_rounds = 0;
		send_get_status(self, PHASE_IDLE_STATUS);
		break;
	case STEP_COMMAND:
		submit_dfu(self, HEALER_DFU_REQUEST_DNLOAD, 0, step->command, (guint16)step->command_len);
		break;
	case STEP_DNLOAD: {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(step->data, &len);
		submit_dfu(self, HEALER_DFU_REQUEST_DNLOAD, step->value, data, (guint16)len);
		break;
	}
	case STEP_LEAVE:
		submit_dfu(self, HEALER_DFU_REQUEST_DNLOAD, step->value, NULL, 0);
		break;
	case STEP_UPLOAD:
		submit_dfu(self, HEALER_DFU_REQUEST_UPLOAD, step->value, NULL, step->length);
		break;
	case STEP_ABORT:
		submit_dfu(self, HEALER_DFU_REQUEST_ABORT, 0, NULL, 0);
		break;
	}
}

static void
append_string(HealerDfuClient *self, const guint8 *data, gsize len)
{
	/* bLength, bDescriptorType 3, then UTF-16LE: ASCII kept, the rest as '?'. */
	gsize n = len >= 2 ? MIN(len, data[0]) : 0;

	self->result = g_byte_array_new();
	for (gsize i = 2; i + 1 < n; i += 2) {
		guint16 c = (guint16)(data[i] | data[i + 1] << 8);
		guint8 ch = c < 0x80 ? (guint8)c : '?';
		g_byte_array_append(self->result, &ch, 1);
	}
}

static gboolean
parse_status(HealerDfuClient *self, const guint8 *data, gsize len, HealerDfuStatus *status)
{
	g_autoptr(GError) error = NULL;

	if (healer_dfu_status_parse(data, len, status, &error))
		return TRUE;
	finish_error(self, HEALER_ERROR_INVALID_DATA, error->message);
	return FALSE;
}

/* "errERASE, state dfuERROR": what the device said, for messages. */
static char *
status_text(const HealerDfuStatus *status)
{
	return g_strdup_printf("state %s, status %s", healer_dfu_state_to_string(status->state),
	                       healer_dfu_status_to_string(status->status));
}

/* Sends CLRSTATUS (from dfuERROR) or ABORT (from anything else idle-like) to get to dfuIDLE. */
static void
send_clear(HealerDfuClient *self, const HealerDfuStatus *status, Phase phase)
{
	self->phase = phase;
	submit_dfu(self,
	           status->state == HEALER_DFU_STATE_ERROR ? HEALER_DFU_REQUEST_CLRSTATUS : HEALER_DFU_REQUEST_ABORT, 0,
	           NULL, 0);
}

static void
on_idle_status(HealerDfuClient *self, const HealerDfuStatus *status)
{
	if (status->state == HEALER_DFU_STATE_DFU_IDLE) {
		next_step(self);
		return;
	}
	if (self->idle_rounds++ >= MAX_IDLE_ROUNDS) {
		g_autofree char *text = status_text(status);
		g_autofree char *why = g_strdup_printf("the device does not return to dfuIDLE (%s)", text);
		finish_error(self, HEALER_ERROR_FAILED, why);
		return;
	}
	/* Busy (an erase a host before us left running): ABORT is not allowed there; wait as it asks. */
	if (status->state == HEALER_DFU_STATE_DNBUSY || status->state == HEALER_DFU_STATE_DNLOAD_SYNC) {
		wait_then(self, status->poll_timeout_ms, PHASE_IDLE_STATUS);
		return;
	}
	send_clear(self, status, PHASE_IDLE_REQUEST);
}

/* The GETSTATUS after a DNLOAD: poll while busy, then the step is done or has failed. */
static void
on_step_status(HealerDfuClient *self, const HealerDfuStatus *status)
{
	Step *step = current_step(self);
	g_autoptr(GError) error = NULL;

	if (step->kind == STEP_LEAVE) {
		/* Manifestation started: the device resets itself.  Gen 2 says dfuDNLOAD-IDLE instead. */
		if (status->state == HEALER_DFU_STATE_MANIFEST_SYNC || status->state == HEALER_DFU_STATE_MANIFEST ||
		    status->state == HEALER_DFU_STATE_MANIFEST_WAIT_RESET ||
		    status->state == HEALER_DFU_STATE_DNLOAD_IDLE || status->state == HEALER_DFU_STATE_DFU_IDLE) {
			next_step(self);
			return;
		}
	}
	if (status->state == HEALER_DFU_STATE_DNBUSY || status->state == HEALER_DFU_STATE_DNLOAD_SYNC) {
		wait_then(self, status->poll_timeout_ms, PHASE_STATUS);
		return;
	}
	if (!healer_dfu_status_check(status, &error)) {
		finish_error(self, HEALER_ERROR_FAILED, error->message);
		return;
	}
	if (status->state != HEALER_DFU_STATE_DNLOAD_IDLE) {
		g_autofree char *text = status_text(status);
		g_autofree char *why =
		        g_strdup_printf("%s ended in an unexpected state (%s)", step_request_name(step), text);
		finish_error(self, HEALER_ERROR_FAILED, why);
		return;
	}
	next_step(self);
}

/* A stalled DfuSe command: once the device is back in dfuIDLE, after the interval, it is sent again. */
static void
on_stall_status(HealerDfuClient *self, const HealerDfuStatus *status)
{
	if (status->state == HEALER_DFU_STATE_DFU_IDLE || status->state == HEALER_DFU_STATE_DNLOAD_IDLE) {
		wait_then(self, self->stall_interval_ms, PHASE_REQUEST);
		return;
	}
	if (status->state == HEALER_DFU_STATE_DNBUSY || status->state == HEALER_DFU_STATE_DNLOAD_SYNC) {
		wait_then(self, status->poll_timeout_ms, PHASE_STALL_STATUS);
		return;
	}
	send_clear(self, status, PHASE_STALL_CLEAR);
}

static void
on_reply(HealerDfuClient *self, const guint8 *data, gsize len)
{
	Step *step = current_step(self);
	HealerDfuStatus status;

	switch (self->phase) {
	case PHASE_REQUEST:
		switch (step->kind) {
		case STEP_STRING:
			append_string(self, data, len);
			next_step(self);
			return;
		case STEP_UPLOAD:
			if (len != step->length) {
				g_autofree char *why =
				        g_strdup_printf("UPLOAD block %u gave %" G_GSIZE_FORMAT " of %u bytes",
				                        step->value, len, step->length);
				fail_and_diagnose(self, why);
				return;
			}
			g_byte_array_append(self->result, data, (guint)len);
			next_step(self);
			return;
		case STEP_ABORT:
			/* DFU 1.1: ABORT from an idle state always lands in dfuIDLE; a device that cannot stalls it. */
			next_step(self);
			return;
		default:
			send_get_status(self, PHASE_STATUS);
			return;
		}
	case PHASE_IDLE_REQUEST:
		send_get_status(self, PHASE_IDLE_STATUS);
		return;
	case PHASE_STALL_CLEAR:
		send_get_status(self, PHASE_STALL_STATUS);
		return;
	case PHASE_STATUS:
	case PHASE_IDLE_STATUS:
	case PHASE_STALL_STATUS:
	case PHASE_DIAGNOSE:
		break;
	}
	if (!parse_status(self, data, len, &status))
		return;
	switch (self->phase) {
	case PHASE_STATUS:
		on_step_status(self, &status);
		break;
	case PHASE_IDLE_STATUS:
		on_idle_status(self, &status);
		break;
	case PHASE_STALL_STATUS:
		on_stall_status(self, &status);
		break;
	case PHASE_DIAGNOSE: {
		g_autofree char *text = status_text(&status);
		g_autofree char *why = g_strdup_printf("%s (%s)", self->failure->message, text);
		g_clear_error(&self->failure);
		finish_error(self, HEALER_ERROR_FAILED, why);
		break;
	}
	default:
		break;
	}
}

static void
on_stall(HealerDfuClient *self)
{
	Step *step = current_step(self);
	g_autofree char *why = NULL;

	if (self->phase == PHASE_REQUEST && step->kind == STEP_COMMAND && self->stalls < HEALER_DFU_STALL_RETRIES) {
		self->stalls++;
		g_debug("%s: %s stalled, sending it again (%u of %u)", self->what, step_request_name(step),
		        self->stalls, HEALER_DFU_STALL_RETRIES);
		send_get_status(self, PHASE_STALL_STATUS);
		return;
	}
	if (self->phase == PHASE_REQUEST && step->kind == STEP_COMMAND)
		why = g_strdup_printf("the device stalled %s %u times in a row", step_request_name(step),
		                      self->stalls + 1);
	else if (self->phase == PHASE_REQUEST)
		why = g_strdup_printf("the device stalled %s", step_request_name(step));
	else
		why = g_strdup_printf("the device stalled a request while %s",
		                      self->phase == PHASE_STATUS ? "polling its status" : "getting it to dfuIDLE");
	fail_and_diagnose(self, why);
}

static void
on_transfer(struct libusb_transfer *transfer)
{
	HealerDfuClient *self = transfer->user_data;
	enum libusb_transfer_status status = transfer->status;

	self->transfer = NULL;
	self->transfers++;
	if (self->closing) {
		/* The handle is closed outside libusb's callback: libusb still uses the transfer after it. */
		g_idle_add(on_release_idle, self);
		return;
	}
	if (!self->busy)
		return;
	self->dispatching++;
	switch (status) {
	case LIBUSB_TRANSFER_COMPLETED:
		on_reply(self, libusb_control_transfer_get_data(transfer), (gsize)transfer->actual_length);
		break;
	case LIBUSB_TRANSFER_STALL:
		on_stall(self);
		break;
	case LIBUSB_TRANSFER_NO_DEVICE:
		/* A leave's GETSTATUS may race the reset it started: the device went, as asked. */
		if (current_step(self)->kind == STEP_LEAVE && self->phase == PHASE_STATUS) {
			next_step(self);
			break;
		}
		finish_error(self, HEALER_ERROR_NOT_FOUND, "the device is gone");
		break;
	default:
		if (current_step(self)->kind == STEP_LEAVE && self->phase == PHASE_STATUS) {
			next_step(self);
			break;
		}
		{
			g_autofree char *why = g_strdup_printf("%s failed: %s", step_request_name(current_step(self)),
			                                       libusb_error_name(status == LIBUSB_TRANSFER_TIMED_OUT
			                                                                 ? LIBUSB_ERROR_TIMEOUT
			                                                                 : LIBUSB_ERROR_IO));
			fail_and_diagnose(self, why);
		}
		break;
	}
	self->dispatching--;
}

/* ---- operations --------------------------------------------------------------------------------- */

static gboolean
begin(HealerDfuClient *self, HealerDfuClientFunc func, gpointer user_data, char *what)
{
	g_return_val_if_fail(!self->busy, FALSE);
	g_return_val_if_fail(!self->closing, FALSE);
	self->busy = TRUE;
	self->func = func;
	self->user_data = user_data;
	self->what = what;
	self->step = 0;
	self->stalls = 0;
	return TRUE;
}

static void
add_step(HealerDfuClient *self, StepKind kind, guint16 value)
{
	Step step = {.kind = kind, .value = value};

	g_array_append_val(self->steps, step);
}

static void
add_command(HealerDfuClient *self, const guint8 *command, gsize len)
{
	Step step = {.kind = STEP_COMMAND, .command_len = len};

	memcpy(step.command, command, len);
	g_array_append_val(self->steps, step);
}

static void
add_set_address(HealerDfuClient *self, guint32 address)
{
	guint8 command[HEALER_DFUSE_COMMAND_MAX_SIZE];

	add_command(self, command, healer_dfuse_build_set_address(address, command));
}

void
healer_dfu_client_read_string_async(HealerDfuClient *self, guint8 index, HealerDfuClientFunc func, gpointer user_data)
{
	if (!begin(self, func, user_data, g_strdup_printf("reading string %u", index)))
		return;
	add_step(self, STEP_STRING, index);
	run_step(self);
}

void
healer_dfu_client_reach_idle_async(HealerDfuClient *self, HealerDfuClientFunc func, gpointer user_data)
{
	if (!begin(self, func, user_data, g_strdup("getting to dfuIDLE")))
		return;
	add_step(self, STEP_IDLE, 0);
	run_step(self);
}

void
healer_dfu_client_erase_async(HealerDfuClient *self, guint32 address, HealerDfuClientFunc func, gpointer user_data)
{
	guint8 command[HEALER_DFUSE_COMMAND_MAX_SIZE];

	if (!begin(self, func, user_data, g_strdup_printf("ERASE at 0x%08x", address)))
		return;
	/* From dfuIDLE or dfuDNLOAD-IDLE (a download under way): the caller got there first. */
	add_command(self, command, healer_dfuse_build_erase_sector(address, command));
	run_step(self);
}

void
healer_dfu_client_write_async(HealerDfuClient *self, guint32 address, GBytes *block, HealerDfuClientFunc func,
                              gpointer user_data)
{
	Step data = {.kind = STEP_DNLOAD, .value = HEALER_DFUSE_FIRST_DATA_BLOCK, .data = g_bytes_ref(block)};

	if (!begin(self, func, user_data,
	           g_strdup_printf("DNLOAD of %" G_GSIZE_FORMAT " bytes at 0x%08x", g_bytes_get_size(block),
	                           address))) {
		g_bytes_unref(data.data);
		return;
	}
	g_return_if_fail(g_bytes_get_size(block) > 0 && g_bytes_get_size(block) <= self->transfer_size);
	/*
	 * No GETSTATUS round to dfuIDLE first: after the last block (or the erase) the device is in
	 * dfuDNLOAD-IDLE, where DNLOAD is allowed, and a block is three transfers fewer for it.
	 */
	add_set_address(self, address);
	g_array_append_val(self->steps, data);
	run_step(self);
}

void
healer_dfu_client_read_async(HealerDfuClient *self, guint32 address, gsize size, HealerDfuClientFunc func,
                             gpointer user_data)
{
	gsize blocks;

	if (!begin(self, func, user_data,
	           g_strdup_printf("UPLOAD of %" G_GSIZE_FORMAT " bytes at 0x%08x", size, address)))
		return;
	self->result = g_byte_array_sized_new((guint)size);
	/*
	 * SET_ADDRESS_POINTER leaves dfuDNLOAD-IDLE (its GETSTATUS said so), where UPLOAD is refused:
	 * ABORT, with no GETSTATUS around it, as the state it starts from is known.
	 */
	add_step(self, STEP_IDLE, 0);
	add_set_address(self, address);
	add_step(self, STEP_ABORT, 0);
	blocks = (size + self->transfer_size - 1) / self->transfer_size;
	for (gsize i = 0; i < blocks; i++) {
		Step step = {.kind = STEP_UPLOAD,
		             .value = (guint16)(HEALER_DFUSE_FIRST_DATA_BLOCK + i),
		             .length = (guint16)MIN(self->transfer_size, size - i * self->transfer_size)};
		/* wValue stops at 65535: the pointer is set again further on (never at 4 KiB blocks of 256 MiB). */
		g_return_if_fail(HEALER_DFUSE_FIRST_DATA_BLOCK + i <= G_MAXUINT16);
		g_array_append_val(self->steps, step);
	}
	/* A last full block leaves dfuUPLOAD-IDLE; a short one, dfuIDLE (ABORT is allowed in both). */
	add_step(self, STEP_ABORT, 0);
	run_step(self);
}

void
healer_dfu_client_read_blocks_async(HealerDfuClient *self, guint32 address, const guint16 *blocks, guint n_blocks,
                                    guint16 length, HealerDfuClientFunc func, gpointer user_data)
{
	if (!begin(self, func, user_data,
	           g_strdup_printf("UPLOAD of %u blocks of %u bytes from 0x%08x", n_blocks, length, address)))
		return;
	g_return_if_fail(length > 0 && length <= self->transfer_size);
	self->result = g_byte_array_sized_new(n_blocks * length);
	add_step(self, STEP_IDLE, 0);
	add_set_address(self, address);
	add_step(self, STEP_ABORT, 0);
	for (guint i = 0; i < n_blocks; i++) {
		Step step = {.kind = STEP_UPLOAD, .value = blocks[i], .length = length};
		g_return_if_fail(blocks[i] >= HEALER_DFUSE_FIRST_DATA_BLOCK);
		g_array_append_val(self->steps, step);
	}
	add_step(self, STEP_ABORT, 0);
	run_step(self);
}

void
healer_dfu_client_leave_async(HealerDfuClient *self, guint32 address, HealerDfuClientFunc func, gpointer user_data)
{
	if (!begin(self, func, user_data, g_strdup_printf("leave at 0x%08x", address)))
		return;
	add_step(self, STEP_IDLE, 0);
	add_set_address(self, address);
	add_step(self, STEP_LEAVE, HEALER_DFUSE_FIRST_DATA_BLOCK);
	run_step(self);
}
