/*
 * particle-client-probe: the Particle control-request client (agent/daemon/particle-client.h) on
 * its own, through real libusb, for test-particle-client.  Runs as usbemu's COMMAND; takes the
 * first Particle device in normal mode (2b04:c0xx) and runs STEPs in order, each when the last is
 * done, printing one line (or a few) per step:
 *
 *   open                      "open: version V" (or "open: version none"), "open: error: MESSAGE"
 *   request TYPE [SIZE [MS]]  TYPE with SIZE payload bytes (0, 1, 2, ...) and a deadline of MS:
 *                             "request TYPE: result R, N bytes" or "request TYPE: error: MESSAGE"
 *   module-info               GET_MODULE_INFO, the reply decoded: "module-info: result R, N bytes,
 *                             M modules (old|new format)"
 *   concurrent N TYPE         N requests at once: "concurrent: K of N answered" and each answer
 *   raw-out INDEX             "raw-out INDEX: done"
 *   background-raw-out INDEX  the same, and the next step at once (the line comes when it is done, if
 *                             the client is still open then)
 *   close-in-flight N TYPE    N requests at once; the client is closed in the first answer's
 *                             callback; then waits for a DRAIN_MS timer (the transfers cancelled by
 *                             close come back meanwhile): "close-in-flight: closed, M callbacks after"
 *   ota FILE                  START, DATA in the chunk START answered, FINISH, one after another (as
 *                             particle-usb does): "ota: N bytes, chunk C, result R, T ms"
 *   background-request TYPE   TYPE without payload, and the next step at once: "background request
 *                             TYPE: ..." when it is answered
 *   wait-background           waits for that answer
 *   foreign-open              a second client on the device (another host) opens: its RESET(0)
 *                             cancels our requests: "foreign-open: done"
 *   control COMMAND           writes COMMAND to usbemu's control FIFO (--control): "control: sent"
 *   stats                     "stats: transfers T polls P bytes-out O bytes-in I"
 *
 * --quirk on|off|auto: the data-stage quirk (auto: from the product id's identity); --max-active N:
 * the client's limit on requests in flight (above the device's 4: it answers BUSY); --schedule pusb:
 * CHECK on particle-usb's fixed schedule instead of the measured one (the benchmark's comparison).  Every wait is
 * on an event but close-in-flight's, which only gives libusb time to hand the cancelled transfers
 * back before the process ends (valgrind then sees whether the client freed everything).  Exit 0
 * when every step ran (answers are the test's to judge), 1 when the device never came.
 */
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "particle-client.h"
#include "particle-control.h"
#include "particle-control.pb-c.h"
#include "particle-usb-ids.h"
#include "usb-context.h"

#define DRAIN_MS 300

static struct {
	HealerUsbContext *context;
	GMainLoop *loop;
	HealerParticleClient *client;
	char **steps;
	guint step;
	char *control;
	char *quirk;
	gint max_active;
	char *schedule;
	libusb_device *usb;
	gboolean background_answered;
	gboolean waiting_background;
	HealerParticleClient *foreign;
	/* ota */
	GBytes *ota;
	gsize ota_offset;
	guint ota_chunk;
	gint64 ota_start;
	guint outstanding;
	guint answered;
	gboolean closed;
	guint after_close;
	int status;
} app = {.status = 1};

static void next_step(void);

static gboolean
on_next_idle(gpointer user_data)
{
	(void)user_data;
	next_step();
	return G_SOURCE_REMOVE;
}

static const char *
type_name(guint type)
{
	const char *name = healer_particle_request_type_to_string(type);
	static char number[16];

	if (name != NULL)
		return name;
	g_snprintf(number, sizeof(number), "%u", type);
	return number;
}

static void
print_answer(const char *what, gint32 result, GBytes *reply, const GError *error)
{
	if (error != NULL)
		printf("%s: error: %s\n", what, error->message);
	else
		printf("%s: result %d, %" G_GSIZE_FORMAT " bytes\n", what, result,
		       reply != NULL ? g_bytes_get_size(reply) : 0);
	fflush(stdout);
}

static void
on_open(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	(void)client;
	(void)result;
	(void)user_data;
	if (error != NULL)
		printf("open: error: %s\n", error->message);
	else if (reply != NULL)
		printf("open: version %.*s (client says %s)\n", (int)g_bytes_get_size(reply),
		       (const char *)g_bytes_get_data(reply, NULL), healer_particle_client_get_system_version(client));
	else
		printf("open: version none\n");
	fflush(stdout);
	next_step();
}

static void
on_request(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	g_autofree char *what = g_strdup_printf("request %s", type_name(GPOINTER_TO_UINT(user_data)));

	(void)client;
	print_answer(what, result, reply, error);
	next_step();
}

static void
on_module_info(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	Healer__Particle__ModuleInfoReply *info;
	gsize len = 0;
	const guint8 *data;

	(void)client;
	(void)user_data;
	if (error != NULL || reply == NULL) {
		print_answer("module-info", result, reply, error);
		next_step();
		return;
	}
	data = g_bytes_get_data(reply, &len);
	info = healer__particle__module_info_reply__unpack(NULL, len, data);
	if (info == NULL) {
		printf("module-info: result %d, %" G_GSIZE_FORMAT " bytes, not a GetModuleInfoReply\n", result, len);
	} else {
		gboolean old = info->n_legacy_modules > 0;
		printf("module-info: result %d, %" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT " modules (%s format)\n",
		       result, len, old ? info->n_legacy_modules : info->n_modules, old ? "old" : "new");
		healer__particle__module_info_reply__free_unpacked(info, NULL);
	}
	fflush(stdout);
	next_step();
}

static void
on_concurrent(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	g_autofree char *what = g_strdup_printf("concurrent %s", type_name(GPOINTER_TO_UINT(user_data)));

	print_answer(what, result, reply, error);
	app.answered++;
	if (--app.outstanding > 0)
		return;
	printf("concurrent: %u answered, at most %u at once now\n", app.answered,
	       healer_particle_client_get_max_active(client));
	fflush(stdout);
	next_step();
}

static gboolean
on_drained(gpointer user_data)
{
	(void)user_data;
	printf("close-in-flight: closed, %u callbacks after\n", app.after_close);
	fflush(stdout);
	next_step();
	return G_SOURCE_REMOVE;
}

static void
on_close_in_flight(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	(void)result;
	(void)reply;
	(void)error;
	(void)user_data;
	if (app.closed) {
		app.after_close++;
		return;
	}
	app.closed = TRUE;
	printf("close-in-flight: first answer, closing with %u outstanding\n", app.outstanding - 1);
	fflush(stdout);
	healer_particle_client_close(client);
	app.client = NULL;
	g_timeout_add(DRAIN_MS, on_drained, NULL);
}

static void
on_raw_out(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	(void)client;
	(void)result;
	(void)reply;
	printf("raw-out %u: %s\n", GPOINTER_TO_UINT(user_data), error != NULL ? error->message : "done");
	fflush(stdout);
	next_step();
}

static void
on_background_raw_out(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error,
                      gpointer user_data)
{
	(void)client;
	(void)result;
	(void)reply;
	if (app.closed)
		app.after_close++;
	printf("background raw-out %u: %s\n", GPOINTER_TO_UINT(user_data), error != NULL ? error->message : "done");
	fflush(stdout);
}

/* ---- ota ---- */

static void
on_background_request(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error,
                      gpointer user_data)
{
	g_autofree char *what = g_strdup_printf("background request %s", type_name(GPOINTER_TO_UINT(user_data)));

	(void)client;
	print_answer(what, result, reply, error);
	app.background_answered = TRUE;
	if (app.waiting_background) {
		app.waiting_background = FALSE;
		next_step();
	}
}

static void
on_foreign_open(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	(void)result;
	(void)reply;
	(void)user_data;
	printf("foreign-open: %s\n", error != NULL ? error->message : "done");
	fflush(stdout);
	healer_particle_client_close(client);
	app.foreign = NULL;
	next_step();
}

static void
foreign_open(void)
{
	libusb_device_handle *handle = NULL;
	int r = libusb_open(app.usb, &handle);

	if (r != 0) {
		printf("foreign-open: cannot open: %s\n", libusb_strerror(r));
		g_idle_add(on_next_idle, NULL);
		return;
	}
	app.foreign = healer_particle_client_new(app.context, handle, FALSE);
	healer_particle_client_open_async(app.foreign, on_foreign_open, NULL);
}

static void
ota_done(const char *how)
{
	printf("ota: %" G_GSIZE_FORMAT " bytes, chunk %u, %s, %.1f ms\n", g_bytes_get_size(app.ota), app.ota_chunk, how,
	       (double)(g_get_monotonic_time() - app.ota_start) / 1000.0);
	fflush(stdout);
	g_clear_pointer(&app.ota, g_bytes_unref);
	next_step();
}

/* FALSE (the step over) when the request failed. */
static gboolean
ota_check(const char *what, gint32 result, const GError *error)
{
	g_autofree char *how = NULL;

	if (error == NULL && result == 0)
		return TRUE;
	how = error != NULL ? g_strdup_printf("%s: error: %s", what, error->message)
	                    : g_strdup_printf("%s: result %d", what, result);
	ota_done(how);
	return FALSE;
}

static void
on_ota_finish(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	(void)client;
	(void)reply;
	(void)user_data;
	if (ota_check("FINISH", result, error))
		ota_done("result 0");
}

static void on_ota_data(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error,
                        gpointer user_data);

static void
ota_send_next(void)
{
	gsize size = g_bytes_get_size(app.ota);

	if (app.ota_offset < size) {
		Healer__Particle__FirmwareUpdateDataRequest data = HEALER__PARTICLE__FIRMWARE_UPDATE_DATA_REQUEST__INIT;
		gsize n = MIN(app.ota_chunk, size - app.ota_offset);
		g_autoptr(GBytes) payload = NULL;
		data.data.data = (guint8 *)g_bytes_get_data(app.ota, NULL) + app.ota_offset;
		data.data.len = n;
		payload = healer_particle_message_pack(&data.base);
		app.ota_offset += n;
		healer_particle_client_request_async(app.client, HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA, payload,
		                                     0, on_ota_data, NULL);
	} else {
		Healer__Particle__FinishFirmwareUpdateRequest finish =
		        HEALER__PARTICLE__FINISH_FIRMWARE_UPDATE_REQUEST__INIT;
		g_autoptr(GBytes) payload = healer_particle_message_pack(&finish.base);
		healer_particle_client_request_async(app.client, HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE,
		                                     payload, 0, on_ota_finish, NULL);
	}
}

static void
on_ota_data(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	(void)client;
	(void)reply;
	(void)user_data;
	if (ota_check("DATA", result, error))
		ota_send_next();
}

static void
on_ota_start(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	Healer__Particle__StartFirmwareUpdateReply *start;

	(void)client;
	(void)user_data;
	if (!ota_check("START", result, error))
		return;
	start = healer__particle__start_firmware_update_reply__unpack(NULL, g_bytes_get_size(reply),
	                                                              g_bytes_get_data(reply, NULL));
	app.ota_chunk = start != NULL && start->chunk_size > 0 ? start->chunk_size : 1024;
	if (start != NULL)
		healer__particle__start_firmware_update_reply__free_unpacked(start, NULL);
	ota_send_next();
}

static void
ota_begin(const char *path)
{
	Healer__Particle__StartFirmwareUpdateRequest start = HEALER__PARTICLE__START_FIRMWARE_UPDATE_REQUEST__INIT;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) payload = NULL;
	gchar *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, &error)) {
		printf("ota: %s\n", error->message);
		g_idle_add(on_next_idle, NULL);
		return;
	}
	app.ota = g_bytes_new_take(data, len);
	app.ota_offset = 0;
	app.ota_chunk = 0;
	app.ota_start = g_get_monotonic_time();
	start.size = (guint32)len;
	payload = healer_particle_message_pack(&start.base);
	healer_particle_client_request_async(app.client, HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE, payload, 0,
	                                     on_ota_start, NULL);
}

static GBytes *
pattern(guint size)
{
	guint8 *data = g_malloc(size);

	for (guint i = 0; i < size; i++)
		data[i] = (guint8)(i * 7 + 1);
	return g_bytes_new_take(data, size);
}

static const char *
arg(guint i)
{
	return app.steps[app.step + i] != NULL ? app.steps[app.step + i] : "";
}

static gboolean
is_number(const char *s)
{
	return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

static void
send_control(const char *command)
{
	int fd = app.control != NULL ? open(app.control, O_WRONLY | O_CLOEXEC) : -1;
	g_autofree char *line = g_strconcat(command, "\n", NULL);

	if (fd < 0 || write(fd, line, strlen(line)) != (gssize)strlen(line))
		printf("control: cannot write to %s\n", app.control != NULL ? app.control : "(no --control)");
	else
		printf("control: sent %s\n", command);
	if (fd >= 0)
		close(fd);
	fflush(stdout);
}

static void
next_step(void)
{
	const char *step = app.steps[app.step];

	if (step == NULL) {
		app.status = 0;
		g_main_loop_quit(app.loop);
		return;
	}
	if (app.client == NULL && !g_str_equal(step, "control")) {
		printf("%s: the client is closed\n", step);
		app.status = 0;
		g_main_loop_quit(app.loop);
		return;
	}
	app.step++;
	if (g_str_equal(step, "open")) {
		healer_particle_client_open_async(app.client, on_open, NULL);
	} else if (g_str_equal(step, "request")) {
		guint type = (guint)atoi(arg(0));
		guint size = is_number(arg(1)) ? (guint)atoi(arg(1)) : 0;
		guint timeout = is_number(arg(1)) && is_number(arg(2)) ? (guint)atoi(arg(2)) : 0;
		g_autoptr(GBytes) payload = pattern(size);
		app.step += 1 + is_number(arg(1)) + (is_number(arg(1)) && is_number(arg(2)));
		healer_particle_client_request_async(app.client, (guint16)type, payload, timeout, on_request,
		                                     GUINT_TO_POINTER(type));
	} else if (g_str_equal(step, "module-info")) {
		healer_particle_client_request_async(app.client, HEALER_PARTICLE_REQUEST_GET_MODULE_INFO, NULL, 0,
		                                     on_module_info, NULL);
	} else if (g_str_equal(step, "concurrent") || g_str_equal(step, "close-in-flight")) {
		gboolean close = g_str_equal(step, "close-in-flight");
		guint n = (guint)atoi(arg(0));
		guint type = (guint)atoi(arg(1));
		app.step += 2;
		app.outstanding = n;
		app.answered = 0;
		for (guint i = 0; i < n; i++)
			healer_particle_client_request_async(app.client, (guint16)type, NULL, 0,
			                                     close ? on_close_in_flight : on_concurrent,
			                                     GUINT_TO_POINTER(type));
	} else if (g_str_equal(step, "raw-out")) {
		guint index = (guint)atoi(arg(0));
		app.step++;
		healer_particle_client_raw_out_async(app.client, (guint16)index, on_raw_out, GUINT_TO_POINTER(index));
	} else if (g_str_equal(step, "background-raw-out")) {
		guint index = (guint)atoi(arg(0));
		app.step++;
		healer_particle_client_raw_out_async(app.client, (guint16)index, on_background_raw_out,
		                                     GUINT_TO_POINTER(index));
		g_idle_add(on_next_idle, NULL);
	} else if (g_str_equal(step, "ota")) {
		const char *path = arg(0);
		app.step++;
		ota_begin(path);
	} else if (g_str_equal(step, "background-request")) {
		guint type = (guint)atoi(arg(0));
		app.step++;
		app.background_answered = FALSE;
		healer_particle_client_request_async(app.client, (guint16)type, NULL, 0, on_background_request,
		                                     GUINT_TO_POINTER(type));
		g_idle_add(on_next_idle, NULL);
	} else if (g_str_equal(step, "wait-background")) {
		if (app.background_answered)
			g_idle_add(on_next_idle, NULL);
		else
			app.waiting_background = TRUE;
	} else if (g_str_equal(step, "foreign-open")) {
		foreign_open();
	} else if (g_str_equal(step, "control")) {
		send_control(arg(0));
		app.step++;
		g_idle_add(on_next_idle, NULL);
	} else if (g_str_equal(step, "stats")) {
		HealerParticleClientStats stats;
		healer_particle_client_get_stats(app.client, &stats);
		printf("stats: transfers %" G_GUINT64_FORMAT " polls %" G_GUINT64_FORMAT " bytes-out %" G_GUINT64_FORMAT
		       " bytes-in %" G_GUINT64_FORMAT "\n",
		       stats.transfers, stats.polls, stats.bytes_out, stats.bytes_in);
		fflush(stdout);
		g_idle_add(on_next_idle, NULL);
	} else {
		printf("unknown step %s\n", step);
		app.status = 2;
		g_main_loop_quit(app.loop);
	}
}

static void
on_usb(HealerUsbContext *context, libusb_device *usb, gboolean arrived, gpointer user_data)
{
	struct libusb_device_descriptor descriptor;
	HealerUsbIdentity identity;
	libusb_device_handle *handle = NULL;
	gboolean quirk;
	int r;

	(void)user_data;
	libusb_get_device_descriptor(usb, &descriptor);
	if (!arrived || app.client != NULL || app.closed)
		return;
	if (!healer_usb_identify(descriptor.idVendor, descriptor.idProduct, &identity) ||
	    identity.mode != HEALER_USB_MODE_NORMAL)
		return;
	r = libusb_open(usb, &handle);
	if (r != 0) {
		printf("cannot open %04x:%04x: %s\n", descriptor.idVendor, descriptor.idProduct, libusb_strerror(r));
		g_main_loop_quit(app.loop);
		return;
	}
	quirk = g_strcmp0(app.quirk, "on") == 0 ||
	        (g_strcmp0(app.quirk, "off") != 0 && (identity.quirks & HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA));
	printf("device %04x:%04x platform %s data-stage %s\n", descriptor.idVendor, descriptor.idProduct,
	       identity.platform != NULL ? identity.platform->name : "?", quirk ? "yes" : "no");
	fflush(stdout);
	app.usb = libusb_ref_device(usb);
	app.client = healer_particle_client_new(context, handle, quirk);
	if (app.max_active > 0)
		healer_particle_client_set_max_active(app.client, (guint)app.max_active);
	if (g_strcmp0(app.schedule, "pusb") == 0) {
		static const guint pusb[] = {50, 50, 100, 100, 250, 250, 500, 500, 1000};
		healer_particle_client_set_poll_schedule(app.client, pusb, G_N_ELEMENTS(pusb));
	}
	g_idle_add(on_next_idle, NULL);
}

int
main(int argc, char **argv)
{
	GOptionEntry entries[] = {
	        {"control", 0, 0, G_OPTION_ARG_FILENAME, &app.control, "usbemu's control FIFO", "FIFO"},
	        {"quirk", 0, 0, G_OPTION_ARG_STRING, &app.quirk, "the data-stage quirk: on, off, auto", "Q"},
	        {"schedule", 0, 0, G_OPTION_ARG_STRING, &app.schedule, "pusb: particle-usb's fixed CHECK schedule",
	         "S"},
	        {"max-active", 0, 0, G_OPTION_ARG_INT, &app.max_active,
	         "requests in flight at most (above the device's: BUSY)", "N"},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) options = g_option_context_new("STEP...");
	g_autoptr(GError) error = NULL;

	g_option_context_add_main_entries(options, entries, NULL);
	if (!g_option_context_parse(options, &argc, &argv, &error) || argc < 2) {
		g_printerr("usage: particle-client-probe [--control FIFO] [--quirk on|off|auto] STEP...\n");
		return 2;
	}
	app.steps = argv + 1;
	app.loop = g_main_loop_new(NULL, FALSE);
	app.context = healer_usb_context_new(HEALER_USB_CONTEXT_FLAG_NONE, &error);
	if (app.context == NULL) {
		g_printerr("%s\n", error->message);
		return 2;
	}
	if (!healer_usb_context_watch(app.context, on_usb, NULL, &error)) {
		g_printerr("%s\n", error->message);
		return 2;
	}
	/* The devices there now have been reported: without one there is nothing to wait for. */
	if (app.client == NULL && !app.closed)
		printf("no Particle device in normal mode\n");
	else
		g_main_loop_run(app.loop);
	if (app.client != NULL)
		healer_particle_client_close(app.client);
	if (app.foreign != NULL)
		healer_particle_client_close(app.foreign);
	/* What close left for the main loop (the handle's release). */
	while (g_main_context_iteration(NULL, FALSE))
		;
	if (app.usb != NULL)
		libusb_unref_device(app.usb);
	healer_usb_context_unwatch(app.context);
	healer_usb_context_unref(app.context);
	g_main_loop_unref(app.loop);
	g_free(app.control);
	g_free(app.quirk);
	g_free(app.schedule);
	g_clear_pointer(&app.ota, g_bytes_unref);
	return app.status;
}
