#include "sim-client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include "module-checksums.h"
#include "test-util.h"

#define START_TIMEOUT_MS 10000

static gint64
deadline_after(guint ms)
{
	return g_get_monotonic_time() + (gint64)ms * 1000;
}

static void
open_tty(SimDevice *dev)
{
	const char *tty = dev->link;
	gint64 deadline = deadline_after(START_TIMEOUT_MS);
	struct termios tio;

	/* The symlink appears once the device has its pty. */
	while ((dev->fd = open(tty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (g_get_monotonic_time() > deadline)
			g_error("%s did not appear: %s", tty, g_strerror(errno));
		g_usleep(5000);
	}
	g_assert_cmpint(tcgetattr(dev->fd, &tio), ==, 0);
	cfmakeraw(&tio);
	/* TCSANOW: keep what the device already said (its HELLO). */
	g_assert_cmpint(tcsetattr(dev->fd, TCSANOW, &tio), ==, 0);
}

static void
spawn(SimDevice *dev, const char *const *extra)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_autofree char *log = g_build_filename(dev->state_dir, "sim.log", NULL);
	g_autoptr(GError) error = NULL;

	g_ptr_array_add(argv, (gpointer)test_program("HEALER_SIM"));
	g_ptr_array_add(argv, (gpointer) "--state");
	g_ptr_array_add(argv, dev->state_dir);
	g_ptr_array_add(argv, (gpointer) "--firmware-dir");
	g_ptr_array_add(argv, (gpointer)test_program("HEALER_FIRMWARE_MODULES"));
	for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)extra[i]);
	g_ptr_array_add(argv, NULL);
	/* If the test dies, so does what it started: nothing is left holding meson's pipes. */
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	g_subprocess_launcher_set_stderr_file_path(launcher, log);
	g_subprocess_launcher_unsetenv(launcher, "HEALER_SIM_MASTER_FD");
	dev->process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
}

SimDevice *
sim_device_start(const char *state_dir, const char *const *extra)
{
	SimDevice *dev = g_new0(SimDevice, 1);

	dev->state_dir = g_strdup(state_dir);
	dev->args = g_strdupv((char **)extra);
	dev->link = g_build_filename(state_dir, "tty", NULL);
	for (guint i = 0; extra != NULL && extra[i] != NULL && extra[i + 1] != NULL; i++) {
		if (g_strcmp0(extra[i], "--link") == 0) {
			g_free(dev->link);
			dev->link = g_strdup(extra[i + 1]);
		}
	}
	dev->fd = -1;
	dev->decoder = healer_link_decoder_new();
	dev->logs = g_ptr_array_new_with_free_func(g_free);
	g_queue_init(&dev->frames);
	g_mkdir_with_parents(state_dir, 0755);
	unlink(dev->link);
	spawn(dev, extra);
	open_tty(dev);
	return dev;
}

static void
drop_connection(SimDevice *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	g_queue_clear_full(&dev->frames, (GDestroyNotify)healer_link_frame_free);
	healer_link_decoder_reset(dev->decoder);
}

void
sim_device_kill(SimDevice *dev)
{
	g_subprocess_send_signal(dev->process, SIGKILL);
	g_subprocess_wait(dev->process, NULL, NULL);
	g_clear_object(&dev->process);
	drop_connection(dev);
}

void
sim_device_restart(SimDevice *dev)
{
	g_assert_null(dev->process);
	unlink(dev->link);
	spawn(dev, (const char *const *)dev->args);
	open_tty(dev);
}

void
sim_device_disconnect(SimDevice *dev)
{
	drop_connection(dev);
}

char *
sim_hello_id(const HealerLinkHello *hello)
{
	GString *id = g_string_new(NULL);

	for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++)
		g_string_append_printf(id, "%02x", hello->device_id[i]);
	return g_string_free(id, FALSE);
}

void
sim_device_reconnect(SimDevice *dev)
{
	drop_connection(dev);
	open_tty(dev);
}

void
sim_device_free(SimDevice *dev)
{
	if (dev == NULL)
		return;
	if (dev->process != NULL)
		sim_device_kill(dev);
	drop_connection(dev);
	unlink(dev->link);
	healer_link_decoder_free(dev->decoder);
	g_ptr_array_unref(dev->logs);
	g_strfreev(dev->args);
	g_free(dev->link);
	g_free(dev->state_dir);
	g_free(dev);
}

void
sim_device_send(SimDevice *dev, GBytes *frame)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(frame, &len);

	while (len > 0) {
		ssize_t n = write(dev->fd, data, len);
		if (n > 0) {
			data += n;
			len -= (gsize)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = dev->fd, .events = POLLOUT};
			poll(&p, 1, 100);
		} else {
			g_error("writing to the device: %s", g_strerror(errno));
		}
	}
}

/* Reads what is there (waiting until `deadline` for something) into the frame queue. */
static void
pump(SimDevice *dev, gint64 deadline)
{
	guint8 buf[8192];
	gint64 now = g_get_monotonic_time();
	struct pollfd p = {.fd = dev->fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, deadline > now ? (int)((deadline - now) / 1000) + 1 : 0) <= 0)
		return;
	while ((n = read(dev->fd, buf, sizeof buf)) > 0) {
		g_autoptr(GPtrArray) frames = healer_link_decoder_push(dev->decoder, buf, (gsize)n);
		for (guint i = 0; i < frames->len; i++) {
			HealerLinkFrame *f = g_ptr_array_index(frames, i);
			if (f->frame.type == LINK_LOG) {
				g_auto(HealerLinkLog) log = {0};
				if (healer_link_parse_log(&f->frame, &log, NULL)) {
					g_test_message("device log: %s", log.text);
					g_ptr_array_add(dev->logs, g_steal_pointer(&log.text));
				}
			}
			g_queue_push_tail(&dev->frames, g_ptr_array_steal_index(frames, i--));
		}
	}
}

HealerLinkFrame *
sim_device_wait(SimDevice *dev, guint8 type, guint timeout_ms)
{
	gint64 deadline = deadline_after(timeout_ms);

	for (;;) {
		for (GList *l = dev->frames.head; l != NULL; l = l->next) {
			HealerLinkFrame *f = l->data;
			if (f->frame.type == type) {
				g_queue_delete_link(&dev->frames, l);
				return f;
			}
		}
		if (g_get_monotonic_time() > deadline)
			return NULL;
		pump(dev, deadline);
	}
}

void
sim_device_wait_hello(SimDevice *dev, HealerLinkHello *hello, guint timeout_ms)
{
	g_autoptr(HealerLinkFrame) f = sim_device_wait(dev, LINK_HELLO, timeout_ms);
	g_autoptr(GError) error = NULL;

	if (f == NULL)
		g_error("no HELLO from %s within %u ms", dev->state_dir, timeout_ms);
	g_assert_true(healer_link_parse_hello(&f->frame, hello, &error));
	g_assert_no_error(error);
}

HealerDescribe *
sim_device_describe(SimDevice *dev, char **json_out)
{
	g_autoptr(GBytes) request = healer_link_build_describe();
	g_autoptr(HealerLinkFrame) f = NULL;
	g_auto(HealerLinkDescribeReply) reply = {0};
	g_autoptr(GError) error = NULL;
	HealerDescribe *describe;

	sim_device_send(dev, request);
	f = sim_device_wait(dev, LINK_DESCRIBE_REPLY, 5000);
	g_assert_nonnull(f);
	g_assert_true(healer_link_parse_describe_reply(&f->frame, &reply, &error));
	describe = healer_describe_parse(reply.json, reply.len, &error);
	g_assert_no_error(error);
	if (json_out != NULL)
		*json_out = g_strdup(reply.json);
	return describe;
}

gboolean
sim_device_wait_log(SimDevice *dev, const char *text, guint timeout_ms)
{
	gint64 deadline = deadline_after(timeout_ms);

	for (;;) {
		for (guint i = 0; i < dev->logs->len; i++) {
			if (strstr(g_ptr_array_index(dev->logs, i), text) != NULL)
				return TRUE;
		}
		if (g_get_monotonic_time() > deadline)
			return FALSE;
		pump(dev, deadline);
	}
}

void
sim_device_sync(SimDevice *dev)
{
	static guint32 counter;
	guint32 nonce = 0x5e000000u | ++counter;
	g_autoptr(GBytes) ping = healer_link_build_ping(nonce);
	gint64 deadline = deadline_after(START_TIMEOUT_MS);

	sim_device_send(dev, ping);
	for (;;) {
		gint64 now = g_get_monotonic_time();
		g_autoptr(HealerLinkFrame) pong =
		        now < deadline ? sim_device_wait(dev, LINK_PONG, (guint)((deadline - now) / 1000) + 1) : NULL;
		guint32 got = 0;

		if (pong == NULL)
			g_error("%s did not answer PING %08x within %u ms", dev->state_dir, nonce, START_TIMEOUT_MS);
		g_assert_true(healer_link_parse_pong(&pong->frame, &got, NULL));
		if (got == nonce)
			return;
	}
}

void
sim_device_request_hello(SimDevice *dev, HealerLinkHello *hello)
{
	g_autoptr(GBytes) request = healer_link_build_hello_request();

	sim_device_send(dev, request);
	sim_device_wait_hello(dev, hello, START_TIMEOUT_MS);
}

GBytes *
sim_begin_for(GBytes *module)
{
	gsize len = 0;
	const guint8 *m = g_bytes_get_data(module, &len);
	guint8 sha[32];

	healer_sha256(m, len, sha);
	return healer_link_build_begin((guint32)len, sha, m[MODULE_PREFIX_OFF_FUNCTION], m[MODULE_PREFIX_OFF_INDEX],
	                               (guint16)(m[MODULE_PREFIX_OFF_VERSION] | m[MODULE_PREFIX_OFF_VERSION + 1] << 8),
	                               1024);
}

void
sim_device_transfer(SimDevice *dev, GBytes *module, guint32 stop_after, GBytes *begin_override, SimTransfer *r)
{
	gsize len = 0;
	const guint8 *m = g_bytes_get_data(module, &len);
	g_autoptr(GBytes) begin = begin_override ? g_bytes_ref(begin_override) : sim_begin_for(module);
	g_autoptr(HealerLinkFrame) ready_frame = NULL;
	HealerLinkUpdateReady ready = {0};
	g_autoptr(GError) error = NULL;
	guint32 next, acked, total;

	memset(r, 0, sizeof *r);
	/* ACKs left over from an earlier transfer say nothing about this one. */
	for (HealerLinkFrame *stale; (stale = sim_device_wait(dev, LINK_ACK, 0)) != NULL;)
		healer_link_frame_free(stale);
	sim_device_send(dev, begin);
	ready_frame = sim_device_wait(dev, LINK_UPDATE_READY, 10000);
	g_assert_nonnull(ready_frame);
	g_assert_true(healer_link_parse_update_ready(&ready_frame->frame, &ready, &error));
	r->ready_status = ready.status;
	r->held = ready.offset;
	if (ready.status != 0)
		return;
	total = (guint32)len;
	next = acked = ready.offset;
	while (acked < total && acked < stop_after) {
		while (next < total && next - acked < (guint32)ready.window * ready.max_data) {
			guint32 n = MIN(ready.max_data, total - next);
			g_autoptr(GBytes) data = healer_link_build_data(next, m + next, n, &error);
			g_assert_no_error(error);
			sim_device_send(dev, data);
			r->bytes_sent += n;
			next += n;
		}
		{
			g_autoptr(HealerLinkFrame) ack = sim_device_wait(dev, LINK_ACK, 10000);
			guint32 value = 0;
			if (ack == NULL)
				g_error("no ACK at %u of %u bytes", acked, total);
			g_assert_true(healer_link_parse_ack(&ack->frame, &value, &error));
			/* Go-back-N: an ACK that does not advance means the device wants that offset again. */
			if (value <= acked && next > value)
				next = value;
			acked = MAX(acked, value);
		}
	}
	r->acked = acked;
	if (acked < total)
		return;
	{
		g_autoptr(GBytes) finish = healer_link_build_finish();
		g_autoptr(HealerLinkFrame) result = NULL;
		sim_device_send(dev, finish);
		result = sim_device_wait(dev, LINK_UPDATE_RESULT, 10000);
		g_assert_nonnull(result);
		g_assert_true(healer_link_parse_update_result(&result->frame, &r->result, &error));
		r->finished = TRUE;
	}
}
