/*
 * usbemu-client: a small libusb program test-usbemu runs as usbemu's COMMAND, for what dfu-util
 * does not show: hotplug at a stable port path, a handle outliving its device, libusb idle with a
 * device open, a too early GETSTATUS, and ioctls on an ordinary /dev file under the preload.
 *
 *   usbemu-client wait PORT VID:PID [NOT]    until that device is at PORT (there or arriving),
 *                                            with a devnum other than NOT
 *   usbemu-client replug FIFO N PORT         unplug device N through the control FIFO and back
 *   usbemu-client idle PORT                  event-loop wakeups in 1 s with the device open
 *   usbemu-client early-poll PORT ADDRESS    GETSTATUS again before the poll timeout
 *   usbemu-client write PORT ADDRESS FILE    one DfuSe block at ADDRESS, no erase first
 *   usbemu-client erase PORT ADDRESS         a DfuSe page erase, and GET_COMMANDS
 *   usbemu-client pty                        TIOCGPTN on /dev/ptmx
 *
 * Prints one line per finding; exit status 0 when everything went as it should, 1 if not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libusb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 5000
#define DEADLINE_S 60

static libusb_context *ctx;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
port_path(libusb_device *device, char *out, size_t size)
{
	uint8_t ports[8];
	int n = libusb_get_port_numbers(device, ports, (int)sizeof ports);
	int used = snprintf(out, size, "%u", libusb_get_bus_number(device));

	for (int i = 0; i < n && used > 0 && (size_t)used < size; i++)
		used += snprintf(out + used, size - (size_t)used, "%c%u", i == 0 ? '-' : '.', ports[i]);
}

static bool
parse_id(const char *text, uint16_t *vendor, uint16_t *product)
{
	unsigned v, p;

	if (sscanf(text, "%4x:%4x", &v, &p) != 2)
		return false;
	*vendor = (uint16_t)v;
	*product = (uint16_t)p;
	return true;
}

static bool
device_matches(libusb_device *device, const char *port, int vendor, int product)
{
	struct libusb_device_descriptor descriptor;
	char path[32];

	port_path(device, path, sizeof path);
	if (strcmp(path, port) != 0)
		return false;
	if (vendor < 0)
		return true;
	return libusb_get_device_descriptor(device, &descriptor) == 0 && descriptor.idVendor == vendor &&
	       descriptor.idProduct == product;
}

static libusb_device_handle *
open_at(const char *port)
{
	libusb_device **list;
	libusb_device_handle *handle = NULL;
	ssize_t n = libusb_get_device_list(ctx, &list);

	for (ssize_t i = 0; i < n && handle == NULL; i++) {
		if (device_matches(list[i], port, -1, -1)) {
			int r = libusb_open(list[i], &handle);
			if (r != 0)
				printf("open %s: %s\n", port, libusb_error_name(r));
		}
	}
	libusb_free_device_list(list, 1);
	if (handle == NULL)
		printf("no device at %s\n", port);
	return handle;
}

/* Hotplug: what arrived and left, in order. */
static struct {
	const char *port;
	int vendor, product;
	int arrived_devnum, left_devnum;
} watch = {.arrived_devnum = -1, .left_devnum = -1};

static int LIBUSB_CALL
on_hotplug(libusb_context *context, libusb_device *device, libusb_hotplug_event event, void *user_data)
{
	(void)context;
	(void)user_data;
	if (!device_matches(device, watch.port, event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? watch.vendor : -1,
	                    watch.product))
		return 0;
	if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
		watch.arrived_devnum = libusb_get_device_address(device);
	else
		watch.left_devnum = libusb_get_device_address(device);
	return 0;
}

/* Handles events until *flag >= 0 or the deadline. */
static bool
wait_for(int *flag, const char *what)
{
	double deadline = now_s() + DEADLINE_S;

	while (*flag < 0 && now_s() < deadline) {
		struct timeval tv = {.tv_sec = 1};
		libusb_handle_events_timeout_completed(ctx, &tv, NULL);
	}
	if (*flag < 0)
		printf("timed out waiting for %s\n", what);
	return *flag >= 0;
}

static int
cmd_wait(const char *port, const char *id, int not_devnum)
{
	libusb_hotplug_callback_handle callback;
	libusb_device **list;
	uint16_t vendor, product;
	ssize_t n;

	if (!parse_id(id, &vendor, &product)) {
		printf("'%s' is not VID:PID\n", id);
		return 1;
	}
	watch.port = port;
	watch.vendor = vendor;
	watch.product = product;
	libusb_hotplug_register_callback(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, 0, LIBUSB_HOTPLUG_MATCH_ANY,
	                                 LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, NULL,
	                                 &callback);
	n = libusb_get_device_list(ctx, &list);
	for (ssize_t i = 0; i < n; i++) {
		if (device_matches(list[i], port, vendor, product) && libusb_get_device_address(list[i]) != not_devnum)
			watch.arrived_devnum = libusb_get_device_address(list[i]);
	}
	libusb_free_device_list(list, 1);
	if (!wait_for(&watch.arrived_devnum, id))
		return 1;
	printf("found %s %s devnum=%d\n", port, id, watch.arrived_devnum);
	return 0;
}

static bool
fifo_command(const char *fifo, const char *command)
{
	int fd = open(fifo, O_WRONLY | O_CLOEXEC);
	size_t n = strlen(command);
	bool ok = fd >= 0 && write(fd, command, n) == (ssize_t)n;

	if (!ok)
		printf("cannot write '%s' to %s: %s\n", command, fifo, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ok;
}

static int
get_status(libusb_device_handle *handle, uint8_t status[6])
{
	return libusb_control_transfer(handle, 0xa1, 3 /* GETSTATUS */, 0, 0, status, 6, TIMEOUT_MS);
}

static int
cmd_replug(const char *fifo, const char *index, const char *port)
{
	libusb_hotplug_callback_handle callback;
	libusb_device_handle *handle;
	char command[64];
	uint8_t status[6];
	int r;

	watch.port = port;
	watch.vendor = -1;
	libusb_hotplug_register_callback(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, 0,
	                                 LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
	                                 on_hotplug, NULL, &callback);
	handle = open_at(port);
	if (handle == NULL)
		return 1;
	printf("before devnum=%u\n", libusb_get_device_address(libusb_get_device(handle)));
	snprintf(command, sizeof command, "unplug %s\n", index);
	if (!fifo_command(fifo, command) || !wait_for(&watch.left_devnum, "the device to leave"))
		return 1;
	printf("left devnum=%d\n", watch.left_devnum);
	/* The handle outlives its device: what a transfer on it gets. */
	r = get_status(handle, status);
	printf("old handle: %s\n", r < 0 ? libusb_error_name(r) : "answered");
	libusb_close(handle);
	snprintf(command, sizeof command, "replug %s\n", index);
	if (!fifo_command(fifo, command) || !wait_for(&watch.arrived_devnum, "the device to come back"))
		return 1;
	printf("arrived %s devnum=%d\n", port, watch.arrived_devnum);
	handle = open_at(port);
	if (handle == NULL)
		return 1;
	r = get_status(handle, status);
	printf("new handle: %s\n", r == 6 ? "answered" : libusb_error_name(r));
	libusb_close(handle);
	return r == 6 ? 0 : 1;
}

static int
cmd_idle(const char *port)
{
	libusb_device_handle *handle = open_at(port);
	uint8_t status[6];
	double end;
	int wakeups = 0;
	int r;

	if (handle == NULL)
		return 1;
	libusb_claim_interface(handle, 0);
	r = get_status(handle, status);
	/* Nothing is in flight: a poll that works sleeps the whole second in one call. */
	end = now_s() + 1.0;
	while (now_s() < end) {
		double left = end - now_s();
		struct timeval tv = {.tv_sec = (time_t)left,
		                     .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
		libusb_handle_events_timeout_completed(ctx, &tv, NULL);
		wakeups++;
	}
	printf("wakeups=%d\n", wakeups);
	if (r == 6)
		r = get_status(handle, status);
	printf("getstatus: %s\n", r == 6 ? "answered" : libusb_error_name(r));
	libusb_release_interface(handle, 0);
	libusb_close(handle);
	return r == 6 ? 0 : 1;
}

static const char *
describe_status(int r, const uint8_t status[6], char *text, size_t size)
{
	if (r < 0)
		snprintf(text, size, "%s", libusb_error_name(r));
	else
		snprintf(text, size, "state=%u status=%u poll=%u", status[4], status[0],
		         status[1] | status[2] << 8 | status[3] << 16);
	return text;
}

static int
cmd_early_poll(const char *port, const char *address_text)
{
	libusb_device_handle *handle = open_at(port);
	unsigned long address = strtoul(address_text, NULL, 0);
	uint8_t command[5] = {0x21, address & 0xff, (address >> 8) & 0xff, (address >> 16) & 0xff, address >> 24};
	uint8_t status[6];
	char text[64];
	int r;

	if (handle == NULL)
		return 1;
	libusb_claim_interface(handle, 0);
	r = libusb_control_transfer(handle, 0x21, 1 /* DNLOAD */, 0, 0, command, sizeof command, TIMEOUT_MS);
	printf("set address: %s\n", r == 5 ? "taken" : libusb_error_name(r));
	r = get_status(handle, status);
	printf("first: %s\n", describe_status(r, status, text, sizeof text));
	r = get_status(handle, status);
	printf("early: %s\n", describe_status(r, status, text, sizeof text));
	r = get_status(handle, status);
	printf("after: %s\n", describe_status(r, status, text, sizeof text));
	r = libusb_control_transfer(handle, 0x21, 4 /* CLRSTATUS */, 0, 0, NULL, 0, TIMEOUT_MS);
	printf("clrstatus: %s\n", r == 0 ? "done" : libusb_error_name(r));
	r = get_status(handle, status);
	printf("cleared: %s\n", describe_status(r, status, text, sizeof text));
	libusb_release_interface(handle, 0);
	libusb_close(handle);
	return 0;
}

/* DfuSe: DNLOAD of block 0 or data, then GETSTATUS until it is not dfuDNBUSY. */
static int
dnload(libusb_device_handle *handle, uint16_t block, uint8_t *data, uint16_t length, uint8_t status[6])
{
	int r = libusb_control_transfer(handle, 0x21, 1 /* DNLOAD */, block, 0, data, length, TIMEOUT_MS);

	if (r < 0)
		return r;
	do {
		r = get_status(handle, status);
		if (r == 6 && status[4] == 4 /* dfuDNBUSY */)
			usleep((useconds_t)(status[1] | status[2] << 8 | status[3] << 16) * 1000);
	} while (r == 6 && status[4] == 4);
	return r;
}

/* As dfu-util does before it starts: a device left in dfuERROR is cleared. */
static void
clear_error(libusb_device_handle *handle)
{
	uint8_t status[6];

	if (get_status(handle, status) == 6 && status[4] == 10 /* dfuERROR */)
		libusb_control_transfer(handle, 0x21, 4 /* CLRSTATUS */, 0, 0, NULL, 0, TIMEOUT_MS);
}

static int
cmd_write(const char *port, const char *address_text, const char *file)
{
	libusb_device_handle *handle = open_at(port);
	unsigned long address = strtoul(address_text, NULL, 0);
	uint8_t command[5] = {0x21, address & 0xff, (address >> 8) & 0xff, (address >> 16) & 0xff, address >> 24};
	uint8_t data[4096], status[6];
	char text[64];
	FILE *in = fopen(file, "rb");
	size_t n = in != NULL ? fread(data, 1, sizeof data, in) : 0;
	int r;

	if (in != NULL)
		fclose(in);
	if (handle == NULL || n == 0) {
		printf("nothing to write from %s\n", file);
		return 1;
	}
	libusb_claim_interface(handle, 0);
	clear_error(handle);
	r = dnload(handle, 0, command, sizeof command, status);
	printf("set address: %s\n", describe_status(r, status, text, sizeof text));
	r = dnload(handle, 2, data, (uint16_t)n, status);
	printf("write: %s\n", describe_status(r, status, text, sizeof text));
	libusb_release_interface(handle, 0);
	libusb_close(handle);
	return 0;
}

static int
cmd_erase(const char *port, const char *address_text)
{
	libusb_device_handle *handle = open_at(port);
	unsigned long address = strtoul(address_text, NULL, 0);
	uint8_t command[5] = {0x41, address & 0xff, (address >> 8) & 0xff, (address >> 16) & 0xff, address >> 24};
	uint8_t commands[16], status[6];
	char text[64];
	int r;

	if (handle == NULL)
		return 1;
	libusb_claim_interface(handle, 0);
	clear_error(handle);
	/* UPLOAD of block 0: the DfuSe commands the device takes. */
	r = libusb_control_transfer(handle, 0xa1, 2 /* UPLOAD */, 0, 0, commands, sizeof commands, TIMEOUT_MS);
	printf("commands:");
	for (int i = 0; i < r; i++)
		printf(" %02x", commands[i]);
	printf("%s\n", r < 0 ? libusb_error_name(r) : "");
	r = dnload(handle, 0, command, sizeof command, status);
	printf("erase: %s\n", describe_status(r, status, text, sizeof text));
	libusb_release_interface(handle, 0);
	libusb_close(handle);
	return 0;
}

static int
cmd_pty(void)
{
	int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	unsigned number;

	if (fd < 0) {
		printf("open /dev/ptmx: %s\n", strerror(errno));
		return 1;
	}
	if (ioctl(fd, TIOCGPTN, &number) != 0) {
		printf("TIOCGPTN: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	printf("pty /dev/pts/%u\n", number);
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && strcmp(argv[1], "pty") == 0)
		return cmd_pty();
	if (libusb_init(&ctx) != 0) {
		printf("libusb_init failed\n");
		return 1;
	}
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "wait") == 0)
		r = cmd_wait(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : -1);
	else if (argc == 5 && strcmp(argv[1], "replug") == 0)
		r = cmd_replug(argv[2], argv[3], argv[4]);
	else if (argc == 3 && strcmp(argv[1], "idle") == 0)
		r = cmd_idle(argv[2]);
	else if (argc == 4 && strcmp(argv[1], "early-poll") == 0)
		r = cmd_early_poll(argv[2], argv[3]);
	else if (argc == 5 && strcmp(argv[1], "write") == 0)
		r = cmd_write(argv[2], argv[3], argv[4]);
	else if (argc == 4 && strcmp(argv[1], "erase") == 0)
		r = cmd_erase(argv[2], argv[3]);
	else {
		fprintf(stderr,
		        "usage: usbemu-client wait PORT VID:PID [NOT-DEVNUM] | replug FIFO N PORT | idle PORT |\n"
		        "       early-poll PORT ADDRESS | write PORT ADDRESS FILE |\n"
		        "       erase PORT ADDRESS | pty\n");
		r = 2;
	}
	libusb_exit(ctx);
	return r;
}
