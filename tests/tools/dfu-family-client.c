/*
 * dfu-family-client: the DFU family (agent/daemon/dfu-device.h) on its own, through real libusb,
 * for test-dfu-family and the DFU benchmark.  Runs as usbemu's COMMAND; serves the first USB
 * device the built-in match table gives the dfu family, as healerd's USB backend would, and:
 *
 *   show                 prints what it read (id, platform, flags, the describe, the layouts)
 *   install FILE         installs the module; "installed" or "install failed: MESSAGE"
 *   leave                reset(): leaves DFU mode, and waits for the device to go and the next to come
 *
 * Options: --stall-interval MS (the client's retry interval), --control FIFO and --fault-at BYTES
 * --fault CMD (writes CMD to usbemu's control FIFO once the install has BYTES acknowledged; after an
 * unplug it waits for the device to come back and installs again from the start), --leave (after
 * an install).  Every wait is on an event; exit 0 when everything asked for succeeded.
 */
#include <fcntl.h>
#include <glib.h>
#include "json-autoptr.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dfu-device.h"
#include "usb-context.h"
#include "usb-match.h"

static struct {
	HealerUsbContext *context;
	GMainLoop *loop;
	HealerDevice *device;
	char *command;
	char *file;
	guint stall_interval_ms;
	char *control;
	gint64 fault_at;
	char *fault;
	gboolean fault_sent;
	gboolean leave;
	gboolean leaving;
	gboolean installed;
	gboolean again; /* installing again after an unplug */
	int status;
	char *last_physical_id;
} app = {.fault_at = -1, .status = 1};

static void start_install(void);

static void
quit(int status)
{
	app.status = status;
	g_main_loop_quit(app.loop);
}

static void
send_fault(const char *command)
{
	int fd = open(app.control, O_WRONLY | O_CLOEXEC);
	g_autofree char *line = g_strconcat(command, "\n", NULL);

	if (fd < 0 || write(fd, line, strlen(line)) != (gssize)strlen(line)) {
		g_printerr("cannot write to %s\n", app.control);
		quit(2);
	}
	if (fd >= 0)
		close(fd);
	printf("fault sent: %s\n", command);
	fflush(stdout);
}

static void
print_device(HealerDevice *device)
{
	g_autoptr(json_object) extra = healer_dfu_device_to_json(HEALER_DFU_DEVICE(device));
	HealerDeviceHealth health;

	healer_device_get_health(device, &health);
	printf("id %s\nport %s\nphysical-id %s\ntransport %s\nfamily %s\nplatform %u\nmode %s\n",
	       healer_device_get_id(device), healer_device_get_port(device), healer_device_get_physical_id(device),
	       healer_device_get_transport_name(device), healer_device_get_family(device),
	       healer_device_get_platform_id(device), health.mode);
	printf("flags%s%s%s\n",
	       healer_device_has_flag(device, HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET) ? " reenumerates" : "",
	       healer_device_has_flag(device, HEALER_DEVICE_FLAG_ID_CHANGES_ACROSS_MODES) ? " id-changes" : "",
	       healer_device_has_flag(device, HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET) ? " install-needs-reset" : "");
	printf("has-app %d app-dependencies-failed %d\n", health.has_app, health.app_dependencies_failed);
	printf("describe %s\n", healer_device_get_state_json(device) ? healer_device_get_state_json(device) : "(none)");
	printf("dfu %s\n", json_object_to_json_string_ext(extra, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
}

static void
on_progress(HealerDevice *device, gpointer user_data)
{
	guint64 done = 0, total = 0;

	(void)user_data;
	healer_device_get_progress(device, &done, &total);
	if (app.fault != NULL && !app.fault_sent && app.fault_at >= 0 && done >= (guint64)app.fault_at) {
		app.fault_sent = TRUE;
		send_fault(app.fault);
	}
}

static void
on_installed(HealerDevice *device, const GError *error, gpointer user_data)
{
	(void)user_data;
	if (error != NULL) {
		printf("install failed: %s\n", error->message);
		fflush(stdout);
		/* Unplugged on purpose: wait for it to come back (detached follows), then again. */
		if (app.fault_sent && g_str_has_prefix(app.fault, "unplug") && !app.again)
			return;
		quit(1);
		return;
	}
	printf("installed\n");
	print_device(device);
	app.installed = TRUE;
	if (app.leave) {
		app.leaving = TRUE;
		healer_device_reset(device);
		return;
	}
	quit(0);
}

static void
start_install(void)
{
	g_autoptr(GError) error = NULL;
	gchar *data = NULL;
	gsize len = 0;
	g_autoptr(GBytes) bytes = NULL;
	HealerDeviceModule module = {0};

	if (!g_file_get_contents(app.file, &data, &len, &error)) {
		g_printerr("%s\n", error->message);
		quit(2);
		return;
	}
	bytes = g_bytes_new_take(data, len);
	module.bytes = bytes;
	healer_device_install_async(app.device, &module, on_installed, NULL);
}

static void
on_identified(HealerDevice *device, gpointer user_data)
{
	(void)user_data;
	if (healer_device_is_busy(device) || app.installed)
		return;
	if (g_str_equal(app.command, "show")) {
		print_device(device);
		quit(0);
	} else if (g_str_equal(app.command, "install")) {
		print_device(device);
		start_install();
	} else if (g_str_equal(app.command, "leave")) {
		print_device(device);
		app.leaving = TRUE;
		healer_device_reset(device);
	}
}

static void
on_log(HealerDevice *device, const char *text, gpointer user_data)
{
	(void)device;
	(void)user_data;
	printf("log: %s\n", text);
	fflush(stdout);
	/* The headers could not be read: nothing more will come. */
	if (g_str_has_prefix(text, "cannot read the device") && !healer_device_is_busy(device))
		quit(3);
}

static void
on_detached(HealerDevice *device, gpointer user_data)
{
	(void)user_data;
	printf("detached %s\n", healer_device_get_physical_id(device));
	fflush(stdout);
	g_clear_object(&app.device);
	/* Unplugged mid-install on purpose: plug it back (usbemu's port numbers count from 1). */
	if (app.fault_sent && g_str_has_prefix(app.fault, "unplug ") && !app.installed && !app.again) {
		g_autofree char *replug = g_strconcat("replug ", app.fault + strlen("unplug "), NULL);
		send_fault(replug);
	}
}

static void
on_usb(HealerUsbContext *context, libusb_device *usb, gboolean arrived, gpointer user_data)
{
	struct libusb_device_descriptor descriptor;
	struct libusb_config_descriptor *config = NULL;
	const struct libusb_interface_descriptor *interface = NULL;
	g_autofree char *physical_id = healer_usb_physical_id(usb);
	guint n = 0;
	const HealerUsbMatch *builtin = healer_usb_builtin_matches(&n);
	g_autoptr(GPtrArray) rows = g_ptr_array_new();
	const HealerUsbMatch *match;
	g_autoptr(GError) error = NULL;

	(void)user_data;
	libusb_get_device_descriptor(usb, &descriptor);
	if (!arrived) {
		printf("left %s %04x:%04x\n", physical_id, descriptor.idVendor, descriptor.idProduct);
		fflush(stdout);
		if (app.device != NULL && g_strcmp0(healer_device_get_physical_id(app.device), physical_id) == 0) {
			healer_device_close(app.device);
			g_clear_object(&app.device);
		}
		return;
	}
	for (guint i = 0; i < n; i++)
		g_ptr_array_add(rows, (gpointer)&builtin[i]);
	if (libusb_get_active_config_descriptor(usb, &config) != 0)
		config = NULL;
	match = healer_usb_match_find((const HealerUsbMatch *const *)rows->pdata, rows->len, &descriptor, config,
	                              &interface);
	/* Another family's device (a Particle device in normal mode) is no DFU device to this client. */
	if (match != NULL && !g_str_equal(match->family, "dfu"))
		match = NULL;
	if (match == NULL) {
		/* After a leave: what came back at the physical id the device left. */
		if (app.leaving && g_strcmp0(physical_id, app.last_physical_id) == 0) {
			printf("back %s %04x:%04x not dfu\n", physical_id, descriptor.idVendor, descriptor.idProduct);
			quit(0);
		}
		libusb_free_config_descriptor(config);
		return;
	}
	if (app.device == NULL) {
		HealerUsbCandidate candidate = {.context = context,
		                                .device = usb,
		                                .descriptor = &descriptor,
		                                .config = config,
		                                .interface = interface,
		                                .physical_id = physical_id,
		                                .match = match};
		if (app.leaving && g_strcmp0(physical_id, app.last_physical_id) == 0) {
			printf("back %s %04x:%04x dfu\n", physical_id, descriptor.idVendor, descriptor.idProduct);
			app.leaving = FALSE;
			app.command = (char *)"show";
			app.installed = FALSE;
		}
		app.device = healer_dfu_device_new_usb(&candidate, &error);
		if (app.device == NULL) {
			printf("refused: %s\n", error->message);
			quit(4);
		} else {
			g_free(app.last_physical_id);
			app.last_physical_id = g_strdup(physical_id);
			healer_dfu_client_set_stall_interval(
			        healer_dfu_device_get_client(HEALER_DFU_DEVICE(app.device)), app.stall_interval_ms);
			g_signal_connect(app.device, "identified", G_CALLBACK(on_identified), NULL);
			g_signal_connect(app.device, "progress", G_CALLBACK(on_progress), NULL);
			g_signal_connect(app.device, "log", G_CALLBACK(on_log), NULL);
			g_signal_connect(app.device, "detached", G_CALLBACK(on_detached), NULL);
			/* Back after an unplug mid-install: from the start of the module again. */
			if (app.fault_sent && !app.installed && g_str_equal(app.command, "install")) {
				app.again = TRUE;
				printf("back: installing again\n");
				fflush(stdout);
			}
		}
	}
	libusb_free_config_descriptor(config);
}

int
main(int argc, char **argv)
{
	gint64 fault_at = -1;
	gint stall_interval = 10;
	g_autoptr(GError) error = NULL;
	GOptionEntry entries[] = {
	        {"stall-interval", 0, 0, G_OPTION_ARG_INT, &stall_interval, "DfuSe stall retry interval", "MS"},
	        {"control", 0, 0, G_OPTION_ARG_FILENAME, &app.control, "usbemu's control FIFO", "FIFO"},
	        {"fault-at", 0, 0, G_OPTION_ARG_INT64, &fault_at, "bytes acknowledged before the fault", "BYTES"},
	        {"fault", 0, 0, G_OPTION_ARG_STRING, &app.fault, "the control command to send", "CMD"},
	        {"leave", 0, 0, G_OPTION_ARG_NONE, &app.leave, "leave DFU mode after the install", NULL},
	        {NULL},
	};
	g_autoptr(GOptionContext) options = g_option_context_new("show | install FILE | leave");

	g_option_context_add_main_entries(options, entries, NULL);
	if (!g_option_context_parse(options, &argc, &argv, &error) || argc < 2 ||
	    (g_str_equal(argv[1], "install") && argc < 3)) {
		g_printerr("usage: dfu-family-client [OPTION...] show | install FILE | leave\n");
		return 2;
	}
	app.command = argv[1];
	app.file = argc > 2 ? argv[2] : NULL;
	app.fault_at = fault_at;
	app.stall_interval_ms = (guint)stall_interval;
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
	g_main_loop_run(app.loop);
	if (app.device != NULL)
		healer_device_close(app.device);
	g_clear_object(&app.device);
	/* Let a cancelled transfer come back before libusb goes. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	healer_usb_context_unwatch(app.context);
	healer_usb_context_unref(app.context);
	g_main_loop_unref(app.loop);
	g_free(app.last_physical_id);
	return app.status;
}
