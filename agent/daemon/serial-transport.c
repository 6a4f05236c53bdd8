/*
 * The serial transport: a tty opened non-blocking, raw, with one GSource
 * for input and one for output while bytes wait, so nothing blocks the
 * main loop.  The port is opened, held exclusively and handed back with its
 * settings restored by healer-serial.c (only serial ttys are ever opened).
 *
 * Both sources may recurse (g_source_set_can_recurse()): GLib takes a
 * source that may not recurse out of the poll set around each of its dispatches
 * and puts it back after, each time writing its wakeup eventfd and forcing
 * one more poll() over every port for nothing (bench/README.md,
 * heal-profile).  Nothing here runs a nested main loop, so that guard buys
 * nothing.
 */
#include <errno.h>
#include <glib-unix.h>
#include <unistd.h>

#include "healer-error.h"
#include "healer-serial.h"
#include "transport.h"

typedef struct {
	HealerTransport parent;
	char *path;
	HealerSerialPort *port;
	int fd; /* the port's */
	GSource *in_source;
	GSource *out_source; /* while `out` holds bytes */
	/*
	 * Bytes the kernel has not taken yet; NULL when there are none.  Freed once drained, not kept
	 * for the next time: a full window can wait here (16 KB), and a device heals rarely.
	 */
	GByteArray *out;
	HealerLinkDecoder *decoder;
	gboolean closing;
} SerialTransport;

static void serial_close(HealerTransport *transport);

/* Reports the end once, then frees: the owner learns of it through `closed` only. */
static void
fail(SerialTransport *self, GError *error)
{
	HealerTransportCallbacks callbacks = self->parent.callbacks;
	gpointer user_data = self->parent.user_data;

	serial_close(&self->parent);
	if (callbacks.closed != NULL)
		callbacks.closed(&self->parent, error, user_data);
	g_error_free(error);
}

static GSource *
watch(SerialTransport *self, GIOCondition condition, GUnixFDSourceFunc func)
{
	GSource *source = g_unix_fd_source_new(self->fd, condition);

	g_source_set_callback(source, G_SOURCE_FUNC(func), self, NULL);
	g_source_set_can_recurse(source, TRUE);
	g_source_attach(source, NULL);
	return source;
}

static void
unwatch(GSource **source)
{
	if (*source != NULL) {
		g_source_destroy(*source);
		g_clear_pointer(source, g_source_unref);
	}
}

static gboolean
on_output(gint fd, GIOCondition condition, gpointer user_data)
{
	SerialTransport *self = user_data;

	(void)condition;
	while (self->out != NULL && self->out->len > 0) {
		ssize_t n = write(fd, self->out->data, self->out->len);
		if (n > 0) {
			g_byte_array_remove_range(self->out, 0, (guint)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return G_SOURCE_CONTINUE;
		fail(self, g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: write: %s", self->path, g_strerror(errno)));
		return G_SOURCE_REMOVE;
	}
	/* Drained: the next frame goes straight to the port again. */
	g_clear_pointer(&self->out, g_byte_array_unref);
	unwatch(&self->out_source);
	return G_SOURCE_REMOVE;
}

static void
serial_send(HealerTransport *transport, GBytes *frame)
{
	SerialTransport *self = (SerialTransport *)transport;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(frame, &len);

	/*
	 * Nothing queued: hand the frame to the kernel now.  A watch only for what it did not take
	 * saves a poll() over every fd and two GLib wakeup writes per frame (bench/README.md,
	 * heal-scale).  A hard error is left for the watch to report, from the main loop: failing
	 * here would close the transport under the caller.
	 */
	if (self->out == NULL) {
		while (len > 0) {
			ssize_t n = write(self->fd, data, len);
			if (n > 0) {
				data += n;
				len -= (gsize)n;
			} else if (!(n < 0 && errno == EINTR)) {
				break;
			}
		}
		if (len == 0)
			return;
		self->out = g_byte_array_sized_new((guint)len);
	}
	g_byte_array_append(self->out, data, (guint)len);
	if (self->out_source == NULL)
		self->out_source = watch(self, G_IO_OUT, on_output);
}

static gboolean
on_input(gint fd, GIOCondition condition, gpointer user_data)
{
	SerialTransport *self = user_data;
	guint8 buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			g_autoptr(GPtrArray) frames = healer_link_decoder_push(self->decoder, buf, (gsize)n);
			for (guint i = 0; i < frames->len && !self->closing; i++) {
				HealerLinkFrame *f = g_ptr_array_index(frames, i);
				self->parent.callbacks.frame(&self->parent, &f->frame, self->parent.user_data);
			}
			if (self->closing)
				return G_SOURCE_REMOVE;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !(condition & (G_IO_HUP | G_IO_ERR)))
			return G_SOURCE_CONTINUE;
		/* EOF, EIO (the other end of a pty went away) or a hang-up. */
		fail(self, g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", self->path,
		                       n == 0 || errno == EAGAIN ? "hung up" : g_strerror(errno)));
		return G_SOURCE_REMOVE;
	}
}

static void
serial_close(HealerTransport *transport)
{
	SerialTransport *self = (SerialTransport *)transport;

	if (self->closing)
		return;
	self->closing = TRUE;
	unwatch(&self->in_source);
	unwatch(&self->out_source);
	/* Its settings back as they were, and free for others. */
	g_clear_pointer(&self->port, healer_serial_port_close);
	self->fd = -1;
	g_clear_pointer(&self->out, g_byte_array_unref);
	healer_link_decoder_free(self->decoder);
	/* Freed from an idle: the caller may be inside one of our callbacks. */
	g_idle_add_once((GSourceOnceFunc)g_free, self->path);
	g_idle_add_once((GSourceOnceFunc)g_free, self);
}

static const char *
serial_label(HealerTransport *transport)
{
	return ((SerialTransport *)transport)->path;
}

static const HealerTransportOps serial_ops = {
        .send = serial_send,
        .close = serial_close,
        .label = serial_label,
};

HealerTransport *
healer_serial_transport_open(const char *path, guint baud, const HealerTransportCallbacks *callbacks,
                             gpointer user_data, GError **error)
{
	g_autoptr(HealerSerialPort) port = healer_serial_port_open(path, error);
	SerialTransport *self;

	if (port == NULL || !healer_serial_port_set_raw(port, baud, error))
		return NULL;
	self = g_new0(SerialTransport, 1);
	self->parent.ops = &serial_ops;
	self->parent.callbacks = *callbacks;
	self->parent.user_data = user_data;
	self->path = g_strdup(path);
	self->fd = healer_serial_port_get_fd(port);
	self->port = g_steal_pointer(&port);
	self->decoder = healer_link_decoder_new();
	self->in_source = watch(self, G_IO_IN | G_IO_HUP | G_IO_ERR, on_input);
	return &self->parent;
}
