/*
 * healerctl probe [--json] [--timeout SECONDS] PORT|usb:ID...
 *
 * Asks devices on serial ports directly, with no daemon (stop healerd
 * first: a port has one reader): who they are, their mode and LED, and
 * their modules with each dependency's verdict, as `particle serial
 * inspect` shows them.  A USB selector (usb:1-1.4, usb:2b04:d006) shows the
 * USB device(s) it names and the family that would serve each (probe-usb.c).  Ports are opened as healerd opens them
 * (healer-serial.h): only serial ttys, exclusively, so a port healerd holds
 * is refused ("/dev/ttyUSB0 is in use by healerd (pid 1234)") rather than
 * read by both; their settings are put back afterwards.
 */
#include <stdio.h>

#include "cli-options.h"
#include "describe.h"
#include "healer-error.h"
#include "healerctl.h"
#include "json-autoptr.h"
#include "link-codec.h"
#include "link-device.h"
#include "module-names.h"
#include "probe-usb.h"
#include "usb-selector.h"

/*
 * The device on `port`, asked by the link family's own code (link-device.h) through the
 * transport healerd uses, opened raw at the speed the port has (0), as probe always did.
 */
static HealerLinkDevice *
probe_port(const char *port, guint timeout_s, GError **error)
{
	HealerTransportCallbacks callbacks = {0};
	HealerTransport *transport = healer_serial_transport_open(port, 0, &callbacks, NULL, error);

	if (transport == NULL)
		return NULL;
	return healer_link_device_probe(port, transport, timeout_s, error);
}

void
healerctl_print_modules(const HealerDescribe *describe)
{
	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		const char *f = healer_module_function_to_string(m->function);
		printf("    %-12s %u  v%-5u %s\n", f ? f : "?", m->index, m->version,
		       healer_describe_module_valid(m) ? "valid" : "FAILED checks");
		for (guint d = 0; d < m->dependencies->len; d++) {
			const HealerDescribeDependency *dep =
			        &g_array_index(m->dependencies, HealerDescribeDependency, d);
			const HealerDescribeModule *have = healer_describe_find(describe, dep->function, dep->index);
			g_autofree char *text = healer_describe_dependency_to_string(dep);
			gboolean met = have != NULL && have->version >= dep->version;
			printf("        needs %-28s %s\n", text, met ? "PASS" : "FAIL");
		}
	}
}

static void
print_probe(const char *port, HealerLinkDevice *device)
{
	const HealerLinkHello *hello = healer_link_device_get_hello(device);
	const HealerDescribe *describe = healer_link_device_get_describe(device);
	const char *id = healer_device_get_id(HEALER_DEVICE(device));
	const HealerPlatform *platform = healer_platform_lookup(hello->platform_id);

	printf("%s\n  Device:       %s\n  Platform:     %s (%u)\n  Mode:         %s%s%s%s\n  LED:          %s\n"
	       "  Last reset:   %s\n  Modules:\n",
	       port, id, platform ? platform->name : "unknown", hello->platform_id,
	       healer_link_mode_to_string(hello->mode), hello->safe_mode_reason ? " (" : "",
	       hello->safe_mode_reason ? healer_link_safe_mode_reason_to_string(hello->safe_mode_reason) : "",
	       hello->safe_mode_reason ? ")" : "", healer_link_led_to_string(hello->led),
	       healer_link_reset_reason_to_string(hello->reset_reason));
	healerctl_print_modules(describe);
	printf("\n");
}

int
healerctl_probe(int argc, char **argv)
{
	gboolean json = FALSE;
	gint timeout_s = 5;
	g_auto(GStrv) ports = NULL;
	const GOptionEntry entries[] = {
	        HEALERCTL_OPTION_JSON(&json, "Print a JSON array: each port's hello and describe"),
	        {"timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s, "Seconds to wait for each device (default 5)",
	         "SECONDS"},
	        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &ports, NULL, "PORT|usb:ID..."},
	        HEALERCTL_OPTIONS_END,
	};
	g_autoptr(json_object) array = json_object_new_array();
	int status = HEALER_EXIT_OK;

	if (healerctl_options_parse("probe",
	                            "PORT|usb:ID... - ask devices on serial ports directly, or find USB devices",
	                            "Talks to the devices itself: stop healerd first.\n"
	                            "usb:BUS-PORT[.PORT...] (a physical id, e.g. usb:1-1.4) or usb:VID:PID (e.g.\n"
	                            "usb:2b04:d006): the USB devices there, and the family that serves each.\n"
	                            "Exit status: 0 every device answered, 1 a device did not, 2 usage.",
	                            entries, &argc, &argv) != HEALER_EXIT_OK)
		return HEALER_EXIT_USAGE;
	if (ports == NULL || ports[0] == NULL || timeout_s < 1)
		return healerctl_usage_error("probe", "give one or more ports (and a timeout of 1 s or more)");
	for (guint i = 0; ports[i] != NULL; i++) {
		g_autoptr(GError) port_error = NULL;
		g_autoptr(HealerLinkDevice) device = NULL;
		const HealerLinkHello *hello;

		if (healer_usb_selector_is_usb(ports[i])) {
			int usb_status = healerctl_probe_usb(ports[i], json, array);
			if (usb_status != HEALER_EXIT_OK && status != HEALER_EXIT_USAGE)
				status = usb_status;
			continue;
		}
		device = probe_port(ports[i], (guint)timeout_s, &port_error);

		if (device == NULL) {
			fprintf(stderr, "healerctl probe: %s\n", port_error->message);
			status = HEALER_EXIT_FAILED;
			continue;
		}
		hello = healer_link_device_get_hello(device);
		if (json) {
			const char *id = healer_device_get_id(HEALER_DEVICE(device));
			json_object *o = json_object_new_object();
			json_object_object_add(o, "port", json_object_new_string(ports[i]));
			json_object_object_add(o, "id", json_object_new_string(id));
			json_object_object_add(o, "platform_id", json_object_new_int(hello->platform_id));
			json_object_object_add(o, "mode",
			                       json_object_new_string(healer_link_mode_to_string(hello->mode)));
			json_object_object_add(o, "safe_mode_reason",
			                       json_object_new_string(healer_link_safe_mode_reason_to_string(
			                               hello->safe_mode_reason)));
			json_object_object_add(o, "led", json_object_new_string(healer_link_led_to_string(hello->led)));
			json_object_object_add(o, "modules",
			                       healer_describe_to_json(healer_link_device_get_describe(device)));
			json_object_array_add(array, o);
		} else {
			print_probe(ports[i], device);
		}
	}
	if (json)
		healerctl_print_json(array, TRUE);
	return status;
}
