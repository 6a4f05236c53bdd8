/*
 * healerctl probe [--json] [--timeout SECONDS] PORT...
 *
 * Asks devices on serial ports directly, with no daemon (stop healerd
 * first: a port has one reader): who they are, their mode and LED, and
 * their modules with each dependency's verdict, as `particle serial
 * inspect` shows them.  Ports are opened as healerd opens them
 * (healer-serial.h): only serial ttys, exclusively, so a port healerd holds
 * is refused ("/dev/ttyUSB0 is in use by healerd (pid 1234)") rather than
 * read by both; their settings are put back afterwards.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "cli-options.h"
#include "describe.h"
#include "healer-error.h"
#include "healer-serial.h"
#include "healerctl.h"
#include "json-autoptr.h"
#include "link-codec.h"
#include "module-names.h"

typedef struct {
	HealerLinkHello hello;
	HealerDescribe *describe;
	char *describe_json;
} Probe;

static void
probe_clear(Probe *p)
{
	g_clear_pointer(&p->describe, healer_describe_free);
	g_clear_pointer(&p->describe_json, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Probe, probe_clear)

static gboolean
write_all(int fd, GBytes *frame, GError **error)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(frame, &len);

	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n > 0) {
			data += n;
			len -= (gsize)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 100);
		} else {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "write: %s", g_strerror(errno));
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
probe_port(const char *port, guint timeout_s, Probe *out, GError **error)
{
	g_autoptr(HealerLinkDecoder) decoder = healer_link_decoder_new();
	g_autoptr(GBytes) hello_request = healer_link_build_hello_request();
	g_autoptr(GBytes) describe = healer_link_build_describe();
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	gboolean have_hello = FALSE;
	g_autoptr(HealerSerialPort) serial = healer_serial_port_open(port, error);
	int fd;

	/* Raw at the speed the port has (0): as probe always did. */
	if (serial == NULL || !healer_serial_port_set_raw(serial, 0, error))
		return FALSE;
	fd = healer_serial_port_get_fd(serial);
	if (!write_all(fd, hello_request, error) || !write_all(fd, describe, error))
		return FALSE;
	while (out->describe == NULL || !have_hello) {
		gint64 now = g_get_monotonic_time();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		guint8 buf[4096];
		ssize_t n;

		if (now >= deadline) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "%s: no answer within %u s", port,
			            timeout_s);
			return FALSE;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0)
			continue;
		n = read(fd, buf, sizeof buf);
		if (n <= 0)
			continue;
		g_autoptr(GPtrArray) frames = healer_link_decoder_push(decoder, buf, (gsize)n);
		for (guint i = 0; i < frames->len; i++) {
			HealerLinkFrame *f = g_ptr_array_index(frames, i);
			g_auto(HealerLinkDescribeReply) reply = {0};
			if (f->frame.type == LINK_HELLO && healer_link_parse_hello(&f->frame, &out->hello, NULL)) {
				have_hello = TRUE;
			} else if (f->frame.type == LINK_DESCRIBE_REPLY && out->describe == NULL &&
			           healer_link_parse_describe_reply(&f->frame, &reply, NULL)) {
				out->describe = healer_describe_parse(reply.json, reply.len, error);
				if (out->describe == NULL) {
					g_prefix_error(error, "%s: ", port);
					return FALSE;
				}
				out->describe_json = g_steal_pointer(&reply.json);
			}
		}
	}
	return TRUE;
}

static char *
device_id(const HealerLinkHello *hello)
{
	GString *id = g_string_new(NULL);

	for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++)
		g_string_append_printf(id, "%02x", hello->device_id[i]);
	return g_string_free(id, FALSE);
}

static void
print_probe(const char *port, const Probe *p)
{
	g_autofree char *id = device_id(&p->hello);
	const HealerPlatform *platform = healer_platform_lookup(p->hello.platform_id);

	printf("%s\n  Device:       %s\n  Platform:     %s (%u)\n  Mode:         %s%s%s%s\n  LED:          %s\n"
	       "  Last reset:   %s\n  Modules:\n",
	       port, id, platform ? platform->name : "unknown", p->hello.platform_id,
	       healer_link_mode_to_string(p->hello.mode), p->hello.safe_mode_reason ? " (" : "",
	       p->hello.safe_mode_reason ? healer_link_safe_mode_reason_to_string(p->hello.safe_mode_reason) : "",
	       p->hello.safe_mode_reason ? ")" : "", healer_link_led_to_string(p->hello.led),
	       healer_link_reset_reason_to_string(p->hello.reset_reason));
	for (guint i = 0; i < p->describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(p->describe->modules, HealerDescribeModule, i);
		const char *f = healer_module_function_to_string(m->function);
		printf("    %-12s %u  v%-5u %s\n", f ? f : "?", m->index, m->version,
		       healer_describe_module_valid(m) ? "valid" : "FAILED checks");
		for (guint d = 0; d < m->dependencies->len; d++) {
			const HealerDescribeDependency *dep =
			        &g_array_index(m->dependencies, HealerDescribeDependency, d);
			const HealerDescribeModule *have = healer_describe_find(p->describe, dep->function, dep->index);
			g_autofree char *text = healer_describe_dependency_to_string(dep);
			gboolean met = have != NULL && have->version >= dep->version;
			printf("        needs %-28s %s\n", text, met ? "PASS" : "FAIL");
		}
	}
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
	        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &ports, NULL, "PORT..."},
	        HEALERCTL_OPTIONS_END,
	};
	g_autoptr(json_object) array = json_object_new_array();
	int status = HEALER_EXIT_OK;

	if (healerctl_options_parse("probe", "PORT... - ask devices on serial ports directly",
	                            "Talks to the devices itself: stop healerd first.\n"
	                            "Exit status: 0 every device answered, 1 a device did not, 2 usage.",
	                            entries, &argc, &argv) != HEALER_EXIT_OK)
		return HEALER_EXIT_USAGE;
	if (ports == NULL || ports[0] == NULL || timeout_s < 1)
		return healerctl_usage_error("probe", "give one or more ports (and a timeout of 1 s or more)");
	for (guint i = 0; ports[i] != NULL; i++) {
		g_auto(Probe) p = {0};
		g_autoptr(GError) port_error = NULL;
		if (!probe_port(ports[i], (guint)timeout_s, &p, &port_error)) {
			fprintf(stderr, "healerctl probe: %s\n", port_error->message);
			status = HEALER_EXIT_FAILED;
			continue;
		}
		if (json) {
			g_autofree char *id = device_id(&p.hello);
			json_object *o = json_object_new_object();
			json_object_object_add(o, "port", json_object_new_string(ports[i]));
			json_object_object_add(o, "id", json_object_new_string(id));
			json_object_object_add(o, "platform_id", json_object_new_int(p.hello.platform_id));
			json_object_object_add(o, "mode",
			                       json_object_new_string(healer_link_mode_to_string(p.hello.mode)));
			json_object_object_add(o, "safe_mode_reason",
			                       json_object_new_string(healer_link_safe_mode_reason_to_string(
			                               p.hello.safe_mode_reason)));
			json_object_object_add(o, "led",
			                       json_object_new_string(healer_link_led_to_string(p.hello.led)));
			json_object_object_add(o, "modules", healer_describe_to_json(p.describe));
			json_object_array_add(array, o);
		} else {
			print_probe(ports[i], &p);
		}
	}
	if (json)
		healerctl_print_json(array, TRUE);
	return status;
}
