/*
 * bench-link-transfer: installs module files on one device through
 * healerd's own code (agent/daemon: HealerDevice over the serial
 * transport, the same window, ACK handling and timeouts healerd uses) and
 * times each step on the host's side of the link.
 *
 *   bench-link-transfer PORT MODULE...
 *
 * A thin transport wraps the serial one and stamps frames as they pass
 * (CLOCK_MONOTONIC): the first BEGIN handed to the port, the first DATA
 * out, the ACK of the last byte back, UPDATE_RESULT back, HELLO after the
 * reset, and the device described again.  One line per module on stdout:
 *
 *   file bytes data_frames wire_bytes begin_data_s data_s ack_result_s result_hello_s hello_done_s total_s
 *
 * data_s (first DATA out -> the ACK of the last byte in: the host knows
 * every byte arrived) is the transfer itself.  FINISH goes out behind the
 * last DATA frame, before that ACK, so it no longer ends the data phase.
 * begin_data_s + data_s + ack_result_s is BEGIN out -> UPDATE_RESULT in.
 * wire_bytes counts the encoded DATA frames (with resends) the host wrote.
 * Exits 1 if an install fails.
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "link-device.h"
#include "healer-error.h"
#include "module-reader.h"
#include "transport.h"

typedef struct {
	gint64 begin, first_data, last_ack, result, hello, done;
	guint32 total; /* the module's bytes: an ACK of this many is the last */
	guint data_frames;
	guint64 wire_bytes;
} Stamps;

/* Wraps the serial transport: same frames both ways, stamped on the way. */
typedef struct {
	HealerTransport parent;
	HealerTransport *inner;
	HealerLinkDecoder *sent; /* decodes what we send, to know each frame's type */
	Stamps *stamps;
} TimedTransport;

static void
timed_send(HealerTransport *transport, GBytes *frame)
{
	TimedTransport *self = (TimedTransport *)transport;
	gint64 now = g_get_monotonic_time();
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(frame, &len);
	g_autoptr(GPtrArray) frames = healer_link_decoder_push(self->sent, data, len);
	Stamps *s = self->stamps;

	for (guint i = 0; i < frames->len; i++) {
		HealerLinkFrame *f = g_ptr_array_index(frames, i);
		switch (f->frame.type) {
		case LINK_BEGIN:
			if (s->begin == 0)
				s->begin = now;
			break;
		case LINK_DATA:
			if (s->first_data == 0)
				s->first_data = now;
			s->data_frames++;
			s->wire_bytes += len;
			break;
		default:
			break;
		}
	}
	healer_transport_send(self->inner, frame);
}

static void
timed_close(HealerTransport *transport)
{
	TimedTransport *self = (TimedTransport *)transport;

	healer_transport_close(self->inner);
	healer_link_decoder_free(self->sent);
	g_free(self);
}

static const char *
timed_label(HealerTransport *transport)
{
	return healer_transport_label(((TimedTransport *)transport)->inner);
}

static const HealerTransportOps timed_ops = {
        .send = timed_send,
        .close = timed_close,
        .label = timed_label,
};

static void
on_inner_frame(HealerTransport *inner, const link_frame_t *frame, gpointer user_data)
{
	TimedTransport *self = user_data;
	gint64 now = g_get_monotonic_time();
	Stamps *s = self->stamps;
	guint32 acked = 0;

	(void)inner;
	if (frame->type == LINK_ACK && s->last_ack == 0 && healer_link_parse_ack(frame, &acked, NULL) &&
	    acked == s->total)
		s->last_ack = now;
	else if (frame->type == LINK_UPDATE_RESULT)
		s->result = now;
	else if (frame->type == LINK_HELLO && s->result != 0 && s->hello == 0)
		s->hello = now;
	self->parent.callbacks.frame(&self->parent, frame, self->parent.user_data);
}

static void
on_inner_closed(HealerTransport *inner, const GError *error, gpointer user_data)
{
	TimedTransport *self = user_data;

	(void)inner;
	if (self->parent.callbacks.closed != NULL)
		self->parent.callbacks.closed(&self->parent, error, self->parent.user_data);
}

typedef struct {
	GMainLoop *loop;
	gboolean identified;
	gboolean done;
	GError *error;
} Wait;

static void
on_identified(HealerDevice *device, gpointer user_data)
{
	Wait *w = user_data;

	(void)device;
	if (!w->identified) {
		w->identified = TRUE;
		g_main_loop_quit(w->loop);
	}
}

static void
on_detached(HealerDevice *device, gpointer user_data)
{
	(void)device;
	(void)user_data;
	g_printerr("bench-link-transfer: the device went away\n");
	exit(1);
}

static void
on_installed(HealerDevice *device, const GError *error, gpointer user_data)
{
	Wait *w = user_data;

	(void)device;
	w->done = TRUE;
	w->error = error ? g_error_copy(error) : NULL;
	g_main_loop_quit(w->loop);
}

static gboolean
on_deadline(gpointer user_data)
{
	(void)user_data;
	g_printerr("bench-link-transfer: no answer within 10 minutes\n");
	exit(1);
}

static double
span(gint64 from, gint64 to)
{
	return from == 0 || to == 0 ? -1.0 : (double)(to - from) / 1e6;
}

int
main(int argc, char **argv)
{
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	HealerLinkTimeouts timeouts = {.response_timeout_ms = config->response_timeout_s * 1000,
	                               .reset_timeout_ms = config->reset_timeout_s * 1000};
	HealerTransportCallbacks callbacks = {.frame = on_inner_frame, .closed = on_inner_closed};
	g_autoptr(GError) error = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	TimedTransport *timed;
	HealerLinkDevice *device;
	Stamps stamps = {0};
	Wait wait = {.loop = loop};
	int status = 0;

	if (argc < 3) {
		g_printerr("usage: bench-link-transfer PORT MODULE...\n");
		return 2;
	}
	timed = g_new0(TimedTransport, 1);
	timed->parent.ops = &timed_ops;
	timed->sent = healer_link_decoder_new();
	timed->stamps = &stamps;
	timed->inner = healer_serial_transport_open(argv[1], config->baud, &callbacks, timed, &error);
	if (timed->inner == NULL) {
		g_printerr("bench-link-transfer: %s\n", error->message);
		return 1;
	}
	g_timeout_add_seconds(600, on_deadline, NULL);
	device = healer_link_device_new(argv[1], argv[1], "serial", &timed->parent, &timeouts);
	g_signal_connect(device, "identified", G_CALLBACK(on_identified), &wait);
	g_signal_connect(device, "detached", G_CALLBACK(on_detached), &wait);
	g_main_loop_run(loop);

	printf("# file bytes data_frames wire_bytes begin_data_s data_s ack_result_s result_hello_s hello_done_s "
	       "total_s\n");
	for (int i = 2; i < argc && status == 0; i++) {
		g_autoptr(GBytes) bytes = NULL;
		g_autoptr(GPtrArray) modules = NULL;
		gchar *contents = NULL;
		gsize len = 0;
		const HealerModule *m;

		if (!g_file_get_contents(argv[i], &contents, &len, &error) ||
		    (modules = healer_module_parse((const guint8 *)contents, len, &error)) == NULL) {
			g_printerr("bench-link-transfer: %s\n", error->message);
			g_free(contents);
			return 1;
		}
		bytes = g_bytes_new_take(contents, len);
		m = g_ptr_array_index(modules, 0);
		memset(&stamps, 0, sizeof stamps);
		stamps.total = (guint32)len;
		wait.done = FALSE;
		{
			HealerDeviceModule module = {
			        .bytes = bytes, .function = m->function, .index = m->index, .version = m->version};
			healer_device_install_async(HEALER_DEVICE(device), &module, on_installed, &wait);
		}
		while (!wait.done)
			g_main_loop_run(loop);
		stamps.done = g_get_monotonic_time();
		if (wait.error != NULL) {
			g_printerr("bench-link-transfer: %s: %s\n", argv[i], wait.error->message);
			g_clear_error(&wait.error);
			status = 1;
			break;
		}
		printf("%s %" G_GSIZE_FORMAT " %u %" G_GUINT64_FORMAT " %.6f %.6f %.6f %.6f %.6f %.6f\n", argv[i], len,
		       stamps.data_frames, stamps.wire_bytes, span(stamps.begin, stamps.first_data),
		       span(stamps.first_data, stamps.last_ack), span(stamps.last_ack, stamps.result),
		       span(stamps.result, stamps.hello), span(stamps.hello, stamps.done),
		       span(stamps.begin, stamps.done));
		fflush(stdout);
	}
	g_object_unref(device);
	/* The transports free themselves from idles. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	return status;
}
