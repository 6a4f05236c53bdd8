/*
 * usbemu's Particle devices in normal mode (tests/tools/usbemu/particle*.c), driven through libusb
 * with the service-request protocol spelled out here, not through the daemon's client: the test
 * checks the emulator against the reference's facts, on its own.
 *
 * Each test makes module files with libhealer's module writer, runs
 *   usbemu --particle PLATFORM --state DIR --modules ... -- test-usbemu-particle --child CASE ...
 * and checks what the child printed, the trace and the flash.  The child (this program again, under
 * umockdev's preload) talks libusb synchronously and exits non-zero with a message when the device
 * answers anything but what the case expects.  The test process itself never loads umockdev
 * (pitfall 7 of the spike).  Waiting for a device to come back is waiting for it to be listed, never
 * a sleep of a guessed length.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <libusb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "module-names.h"
#include "module-reader.h"
#include "module-writer.h"
#include "particle-control.h"
#include "particle-control.pb-c.h"
#include "particle-module-info.h"
#include "test-util.h"

#define PARTICLE_VID     0x2b04
#define TRANSFER_TIMEOUT 5000
#define WAIT_DEVICE_MS   60000
/* Device OS' modelled times, a hundredth of the defaults: a run takes well under a second. */
#define TIME_SCALE "0.01"

/* ---- the child: libusb under usbemu ------------------------------------------------------------ */

static libusb_context *ctx;

#define REQUIRE(cond, ...)                                                                                             \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "child: line %d: %s: ", __LINE__, #cond);                                      \
			fprintf(stderr, __VA_ARGS__);                                                                  \
			fputc('\n', stderr);                                                                           \
			exit(1);                                                                                       \
		}                                                                                                      \
	} while (0)

static uint16_t normal_pid, dfu_pid;

/* Waits for 2b04:pid to be listed with a devnum other than `not_devnum` (0: any), and opens it. */
static libusb_device_handle *
open_pid(uint16_t pid, uint8_t not_devnum)
{
	int64_t deadline = g_get_monotonic_time() + WAIT_DEVICE_MS * 1000;

	while (g_get_monotonic_time() < deadline) {
		libusb_device **list;
		ssize_t n = libusb_get_device_list(ctx, &list);
		libusb_device_handle *handle = NULL;

		for (ssize_t i = 0; i < n && handle == NULL; i++) {
			struct libusb_device_descriptor d;
			if (libusb_get_device_descriptor(list[i], &d) == 0 && d.idVendor == PARTICLE_VID &&
			    d.idProduct == pid && libusb_get_device_address(list[i]) != not_devnum)
				REQUIRE(libusb_open(list[i], &handle) == 0, "cannot open %04x", pid);
		}
		libusb_free_device_list(list, 1);
		if (handle != NULL)
			return handle;
		/* Polling the list: the device comes back when usbemu's timer says, not at a known time. */
		g_usleep(2000);
	}
	REQUIRE(false, "2b04:%04x did not show up", pid);
	return NULL;
}

static uint8_t
devnum_of(libusb_device_handle *h)
{
	return libusb_get_device_address(libusb_get_device(h));
}

/* A service request with a 64-byte IN data stage; returns the parsed reply. */
static HealerParticleReply
service(libusb_device_handle *h, uint8_t request, uint16_t value, uint16_t index)
{
	uint8_t data[64];
	HealerParticleReply reply;
	g_autoptr(GError) error = NULL;
	int n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_IN, request, value, index, data, sizeof data,
	                                TRANSFER_TIMEOUT);

	REQUIRE(n > 0, "service %u: %s", request, libusb_error_name(n));
	REQUIRE(healer_particle_reply_parse(data, (gsize)n, &reply, &error), "%s", error->message);
	return reply;
}

static const char *
status_name(unsigned status)
{
	return healer_particle_status_to_string(status);
}

/* CHECK until it answers something but PENDING. */
static HealerParticleReply
check_until_settled(libusb_device_handle *h, uint16_t id)
{
	for (;;) {
		HealerParticleReply r = service(h, HEALER_PARTICLE_SERVICE_CHECK, 0, id);
		if (r.status != HEALER_PARTICLE_STATUS_PENDING)
			return r;
		g_usleep(500);
	}
}

/* One whole request: INIT, SEND, CHECK, RECV; the device's result, and its reply in *reply. */
static int32_t
request(libusb_device_handle *h, uint16_t type, const uint8_t *payload, size_t size, GBytes **reply)
{
	HealerParticleReply r = service(h, HEALER_PARTICLE_SERVICE_INIT, (uint16_t)size, type);
	uint16_t id = r.id;
	g_autofree uint8_t *bytes = NULL;

	REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK || r.status == HEALER_PARTICLE_STATUS_PENDING, "INIT %u: %s",
	        type, status_name(r.status));
	if (r.status == HEALER_PARTICLE_STATUS_PENDING) {
		r = check_until_settled(h, id);
		REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK && !(r.fields & HEALER_PARTICLE_REPLY_FIELD_RESULT),
		        "buffer of request %u: %s", id, status_name(r.status));
	}
	for (size_t sent = 0; sent < size;) {
		uint16_t chunk = (uint16_t)MIN(size - sent, HEALER_PARTICLE_MAX_CHUNK);
		int n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_OUT, HEALER_PARTICLE_SERVICE_SEND, 0,
		                                id, (uint8_t *)payload + sent, chunk, TRANSFER_TIMEOUT);
		REQUIRE(n == chunk, "SEND: %s", libusb_error_name(n));
		sent += chunk;
	}
	r = check_until_settled(h, id);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK && (r.fields & HEALER_PARTICLE_REPLY_FIELD_RESULT),
	        "CHECK of request %u: %s", id, status_name(r.status));
	bytes = g_malloc(MAX(r.size, 1));
	for (uint32_t got = 0; got < r.size;) {
		uint16_t chunk = (uint16_t)MIN(r.size - got, HEALER_PARTICLE_MAX_CHUNK);
		int n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_SERVICE_RECV, 0, id,
		                                bytes + got, chunk, TRANSFER_TIMEOUT);
		REQUIRE(n == chunk, "RECV: %s", libusb_error_name(n));
		got += chunk;
	}
	if (reply != NULL)
		*reply = g_bytes_new(bytes, r.size);
	return r.result;
}

static void
print_module_info(libusb_device_handle *h)
{
	g_autoptr(GBytes) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	int32_t result = request(h, HEALER_PARTICLE_REQUEST_GET_MODULE_INFO, NULL, 0, &reply);

	REQUIRE(result == 0, "GET_MODULE_INFO: %d", result);
	info = healer_particle_module_info_parse(g_bytes_get_data(reply, NULL), g_bytes_get_size(reply), &error);
	REQUIRE(info != NULL, "%s", error->message);
	printf("format %s\n", healer_particle_module_info_format_to_string(info->format));
	for (guint i = 0; i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);
		g_autofree char *why = healer_particle_module_describe_failure(info, m);
		printf("module %s %u version %u failed 0x%02x hash %s%s%s\n",
		       healer_module_function_to_string(m->function), m->index, m->version,
		       healer_particle_module_failed(m), m->has_hash ? "yes" : "no", why != NULL ? ": " : "",
		       why != NULL ? why : "");
	}
}

static char *
raw_in(libusb_device_handle *h, uint16_t index)
{
	char text[65] = "";
	int n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_RAW_REQUEST, 0, index,
	                                (uint8_t *)text, 64, TRANSFER_TIMEOUT);

	REQUIRE(n >= 0, "raw %u: %s", index, libusb_error_name(n));
	text[n] = '\0';
	return g_strdup(text);
}

/* START, DATA in the chunk START answers, FINISH; returns the first non-zero result (or FINISH's). */
static int32_t
ota(libusb_device_handle **handle, GBytes *module, size_t stop_after, const char *fifo)
{
	libusb_device_handle *h = *handle;
	Healer__Particle__StartFirmwareUpdateRequest start = HEALER__PARTICLE__START_FIRMWARE_UPDATE_REQUEST__INIT;
	Healer__Particle__FinishFirmwareUpdateRequest finish = HEALER__PARTICLE__FINISH_FIRMWARE_UPDATE_REQUEST__INIT;
	Healer__Particle__StartFirmwareUpdateReply *started;
	g_autoptr(GBytes) reply = NULL;
	uint8_t buffer[8192];
	gsize size;
	const uint8_t *data = g_bytes_get_data(module, &size);
	uint32_t chunk;
	int32_t result;
	size_t n;

	start.size = (uint32_t)size;
	n = healer__particle__start_firmware_update_request__pack(&start, buffer);
	result = request(h, HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE, buffer, n, &reply);
	printf("start %d\n", result);
	if (result != 0)
		return result;
	started = healer__particle__start_firmware_update_reply__unpack(NULL, g_bytes_get_size(reply),
	                                                                g_bytes_get_data(reply, NULL));
	REQUIRE(started != NULL && started->chunk_size > 0, "START's reply");
	chunk = started->chunk_size;
	printf("chunk %u\n", chunk);
	healer__particle__start_firmware_update_reply__free_unpacked(started, NULL);
	for (size_t sent = 0; sent < size; sent += chunk) {
		Healer__Particle__FirmwareUpdateDataRequest piece =
		        HEALER__PARTICLE__FIRMWARE_UPDATE_DATA_REQUEST__INIT;
		if (stop_after > 0 && sent >= stop_after) {
			/* Mid-install: the device resets now (usbemu's `reboot`), and the update is lost. */
			uint8_t devnum = devnum_of(h);
			FILE *control = fopen(fifo, "w");
			REQUIRE(control != NULL, "%s: %s", fifo, g_strerror(errno));
			fprintf(control, "reboot 1\n");
			fclose(control);
			libusb_close(h);
			h = *handle = open_pid(normal_pid, devnum);
			printf("rebooted after %zu bytes\n", sent);
			break;
		}
		piece.data.data = (uint8_t *)data + sent;
		piece.data.len = MIN(chunk, size - sent);
		n = healer__particle__firmware_update_data_request__pack(&piece, buffer);
		result = request(h, HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA, buffer, n, NULL);
		if (result != 0) {
			printf("data %d\n", result);
			return result;
		}
	}
	n = healer__particle__finish_firmware_update_request__pack(&finish, buffer);
	result = request(h, HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE, buffer, n, NULL);
	printf("finish %d\n", result);
	return result;
}

/* A DfuSe request and the GETSTATUS that carry it out (dfuDNBUSY with a poll of 0, then the state). */
static void
dfuse(libusb_device_handle *h, uint16_t block, uint8_t *data, uint16_t length)
{
	uint8_t status[6];
	int n = libusb_control_transfer(h, 0x21, 1, block, 0, data, length, TRANSFER_TIMEOUT);

	REQUIRE(n == length, "DNLOAD block %u: %s", block, libusb_error_name(n));
	do {
		n = libusb_control_transfer(h, 0xa1, 3, 0, 0, status, sizeof status, TRANSFER_TIMEOUT);
		REQUIRE(n == 6 && status[0] == 0, "GETSTATUS: %s, status %u", libusb_error_name(n), status[0]);
	} while (status[4] == 4 /* dfuDNBUSY */);
}

static void
dfuse_address(libusb_device_handle *h, uint8_t command, uint32_t address)
{
	uint8_t data[5] = {command, address & 0xff, (address >> 8) & 0xff, (address >> 16) & 0xff, address >> 24};

	dfuse(h, 0, data, sizeof data);
}

/* The module written over DfuSe at its start address (every sector it covers erased first), then leave. */
static void
dfu_install(libusb_device_handle *h, GBytes *module)
{
	gsize size;
	const uint8_t *data = g_bytes_get_data(module, &size);
	g_autoptr(GPtrArray) parsed = healer_module_parse(data, size, NULL);
	uint32_t start;
	uint8_t block[4096];

	REQUIRE(parsed != NULL, "the module does not parse");
	start = ((HealerModule *)g_ptr_array_index(parsed, 0))->start_address;
	REQUIRE(libusb_claim_interface(h, 0) == 0, "claim");
	for (uint32_t offset = 0; offset < size; offset += sizeof block)
		dfuse_address(h, 0x41, start + offset);
	for (uint32_t offset = 0; offset < size; offset += sizeof block) {
		uint16_t n = (uint16_t)MIN(sizeof block, size - offset);
		memcpy(block, data + offset, n);
		dfuse_address(h, 0x21, start + offset);
		dfuse(h, 2, block, n);
	}
	printf("dfuse wrote %zu bytes at 0x%08x\n", (size_t)size, start);
	REQUIRE(libusb_control_transfer(h, 0x21, 1, 0, 0, NULL, 0, TRANSFER_TIMEOUT) == 0, "leave");
	REQUIRE(libusb_control_transfer(h, 0xa1, 3, 0, 0, block, 6, TRANSFER_TIMEOUT) == 6, "GETSTATUS");
}

/* The protocol's rules, one by one. */
static void
case_protocol(libusb_device_handle *h)
{
	uint8_t data[64];
	HealerParticleReply r;
	uint16_t ids[4];
	g_autofree char *id = raw_in(h, HEALER_PARTICLE_RAW_DEVICE_ID);
	g_autofree char *version = raw_in(h, HEALER_PARTICLE_RAW_SYSTEM_VERSION);
	uint8_t payload[100];
	int n;

	printf("device id %s\nversion %s\n", id, version);
	/* INIT, CHECK and RESET with wLength < 64 stall. */
	for (uint8_t s = HEALER_PARTICLE_SERVICE_INIT; s <= HEALER_PARTICLE_SERVICE_RESET; s++) {
		if (s == HEALER_PARTICLE_SERVICE_SEND || s == HEALER_PARTICLE_SERVICE_RECV)
			continue;
		n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_IN, s, 0, 1, data, 63, TRANSFER_TIMEOUT);
		REQUIRE(n == LIBUSB_ERROR_PIPE, "service %u with wLength 63: %s", s, libusb_error_name(n));
	}
	/* Ids from 1; a fifth active request is BUSY. */
	for (unsigned i = 0; i < 4; i++) {
		r = service(h, HEALER_PARTICLE_SERVICE_INIT, 10, HEALER_PARTICLE_REQUEST_GET_DEVICE_ID);
		REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK && (r.fields & HEALER_PARTICLE_REPLY_FIELD_ID),
		        "INIT %u: %s", i, status_name(r.status));
		ids[i] = r.id;
	}
	REQUIRE(ids[0] == 1 && ids[1] == 2 && ids[2] == 3 && ids[3] == 4, "ids %u %u %u %u", ids[0], ids[1], ids[2],
	        ids[3]);
	r = service(h, HEALER_PARTICLE_SERVICE_INIT, 0, HEALER_PARTICLE_REQUEST_GET_DEVICE_ID);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_BUSY && !(r.fields & HEALER_PARTICLE_REPLY_FIELD_ID), "fifth: %s",
	        status_name(r.status));
	printf("fifth active: BUSY\n");
	/* A buffer ready: CHECK is OK without a result; SEND past the size stalls; RECV before done stalls. */
	r = service(h, HEALER_PARTICLE_SERVICE_CHECK, 0, ids[0]);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK && !(r.fields & HEALER_PARTICLE_REPLY_FIELD_RESULT), "%s",
	        status_name(r.status));
	memset(payload, 0, sizeof payload);
	n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_OUT, HEALER_PARTICLE_SERVICE_SEND, 0, ids[0],
	                            payload, 11, TRANSFER_TIMEOUT);
	REQUIRE(n == LIBUSB_ERROR_PIPE, "SEND past the size: %s", libusb_error_name(n));
	n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_SERVICE_RECV, 0, ids[0], data,
	                            4, TRANSFER_TIMEOUT);
	REQUIRE(n == LIBUSB_ERROR_PIPE, "RECV before done: %s", libusb_error_name(n));
	/* RESET(id) cancels one, RESET(0) every one; CHECK of a cancelled or unknown id: NOT_FOUND. */
	r = service(h, HEALER_PARTICLE_SERVICE_RESET, 0, ids[0]);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK, "RESET(id): %s", status_name(r.status));
	r = service(h, HEALER_PARTICLE_SERVICE_CHECK, 0, ids[0]);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_NOT_FOUND, "CHECK after RESET(id): %s", status_name(r.status));
	r = service(h, HEALER_PARTICLE_SERVICE_RESET, 0, 0);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_OK, "RESET(0): %s", status_name(r.status));
	r = service(h, HEALER_PARTICLE_SERVICE_CHECK, 0, ids[3]);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_NOT_FOUND, "CHECK after RESET(0): %s", status_name(r.status));
	r = service(h, HEALER_PARTICLE_SERVICE_CHECK, 0, 999);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_NOT_FOUND, "CHECK 999: %s", status_name(r.status));
	printf("not found: ok\n");
	/* More than 64 bytes: PENDING until the buffer is allocated. */
	r = service(h, HEALER_PARTICLE_SERVICE_INIT, sizeof payload, HEALER_PARTICLE_REQUEST_GET_MODULE_INFO);
	REQUIRE(r.status == HEALER_PARTICLE_STATUS_PENDING && (r.fields & HEALER_PARTICLE_REPLY_FIELD_ID),
	        "INIT of 100 bytes: %s", status_name(r.status));
	printf("init of 100 bytes: PENDING id %u\n", r.id);
	service(h, HEALER_PARTICLE_SERVICE_RESET, 0, r.id);
	/* A whole request with a payload over 64 bytes, and one without. */
	REQUIRE(request(h, HEALER_PARTICLE_REQUEST_GET_DEVICE_MODE, payload, sizeof payload, NULL) == 0, "mode");
	REQUIRE(request(h, 12345, NULL, 0, NULL) == HEALER_PARTICLE_RESULT_NOT_SUPPORTED, "unknown type");
	printf("protocol ok\n");
}

/* RTL872x: an OUT request with no data stage never completes; with one byte it does. */
static void
case_hang(libusb_device_handle *h)
{
	uint8_t zero = 0;
	uint8_t devnum = devnum_of(h);
	g_autofree char *version = NULL;
	int n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_OUT, HEALER_PARTICLE_RAW_REQUEST, 0,
	                                HEALER_PARTICLE_RAW_RESET, NULL, 0, 300);

	REQUIRE(n == LIBUSB_ERROR_TIMEOUT, "OUT without a data stage: %s", libusb_error_name(n));
	printf("no data stage: timeout\n");
	version = raw_in(h, HEALER_PARTICLE_RAW_SYSTEM_VERSION);
	printf("still answers: version %s\n", version);
	n = libusb_control_transfer(h, HEALER_PARTICLE_REQUEST_TYPE_OUT, HEALER_PARTICLE_RAW_REQUEST, 0,
	                            HEALER_PARTICLE_RAW_RESET, &zero, 1, TRANSFER_TIMEOUT);
	REQUIRE(n == 1 || n == LIBUSB_ERROR_NO_DEVICE, "OUT with one byte: %s", libusb_error_name(n));
	libusb_close(h);
	h = open_pid(normal_pid, devnum);
	printf("reset with one byte: back\n");
	libusb_close(h);
}

static int
child_main(int argc, char **argv)
{
	const char *name = argv[2];
	libusb_device_handle *h;
	g_autoptr(GBytes) module = NULL;
	int32_t result;

	setvbuf(stdout, NULL, _IOLBF, 0);
	REQUIRE(argc >= 5, "--child CASE NORMAL-PID DFU-PID [ARG...]");
	normal_pid = (uint16_t)strtoul(argv[3], NULL, 16);
	dfu_pid = (uint16_t)strtoul(argv[4], NULL, 16);
	REQUIRE(libusb_init(&ctx) == 0, "libusb_init");
	if (strcmp(name, "info") == 0) {
		h = open_pid(normal_pid, 0);
		print_module_info(h);
	} else if (strcmp(name, "protocol") == 0) {
		h = open_pid(normal_pid, 0);
		case_protocol(h);
	} else if (strcmp(name, "hang") == 0) {
		case_hang(open_pid(normal_pid, 0));
		h = NULL;
	} else if (strcmp(name, "ota") == 0 || strcmp(name, "ota-reboot") == 0) {
		/* ota FILE [STOP-AFTER FIFO]: installs, waits for the reset, prints the module info. */
		g_autoptr(GError) error = NULL;
		char *contents;
		gsize len;
		uint8_t devnum;
		REQUIRE(argc >= 6 && g_file_get_contents(argv[5], &contents, &len, &error), "module file");
		module = g_bytes_new_take(contents, len);
		h = open_pid(normal_pid, 0);
		devnum = devnum_of(h);
		result = ota(&h, module, argc >= 8 ? strtoul(argv[6], NULL, 10) : 0, argc >= 8 ? argv[7] : NULL);
		if (result == 0) {
			libusb_close(h);
			h = open_pid(normal_pid, devnum);
			printf("back after the update\n");
			g_autofree char *version = raw_in(h, HEALER_PARTICLE_RAW_SYSTEM_VERSION);
			printf("version %s\n", version);
		} else {
			/* A refused update leaves the device as it was; it may have been reopened after a reboot. */
			libusb_close(h);
			h = open_pid(normal_pid, 0);
		}
		print_module_info(h);
	} else if (strcmp(name, "tty") == 0) {
		/* tty TRACE: the CDC ACM tty's USB parent in sysfs; bytes written reach the device. */
		g_autofree char *path = realpath("/sys/class/tty/ttyACM0", NULL);
		g_autofree char *class_path = NULL;
		g_autofree char *class = NULL;
		g_autofree char *product = NULL;
		g_autofree char *product_path = NULL;
		int64_t deadline = g_get_monotonic_time() + WAIT_DEVICE_MS * 1000;
		FILE *tty;
		REQUIRE(path != NULL, "no /sys/class/tty/ttyACM0");
		printf("tty %s\n", path);
		class_path = g_build_filename(path, "..", "..", "bInterfaceClass", NULL);
		product_path = g_build_filename(path, "..", "..", "..", "idProduct", NULL);
		REQUIRE(g_file_get_contents(class_path, &class, NULL, NULL), "%s", class_path);
		REQUIRE(g_file_get_contents(product_path, &product, NULL, NULL), "%s", product_path);
		printf("interface class %s", class);
		printf("parent product %s", product);
		tty = fopen("/dev/ttyACM0", "w");
		REQUIRE(tty != NULL, "/dev/ttyACM0: %s", g_strerror(errno));
		fputs("hello", tty);
		fflush(tty);
		/* Held open until the device read it (the trace says so): a closed pty's bytes may go. */
		for (;;) {
			g_autofree char *trace = NULL;
			REQUIRE(g_get_monotonic_time() < deadline, "the device never read the bytes");
			if (g_file_get_contents(argv[5], &trace, NULL, NULL) &&
			    strstr(trace, "tty read bytes=5") != NULL)
				break;
			g_usleep(2000);
		}
		fclose(tty);
		h = NULL;
	} else if (strcmp(name, "dfu-install") == 0) {
		/* dfu-install FILE: a device in DFU mode takes the module by DfuSe, leaves, reports it. */
		char *contents;
		gsize len;
		uint8_t devnum;
		REQUIRE(argc >= 6 && g_file_get_contents(argv[5], &contents, &len, NULL), "module file");
		module = g_bytes_new_take(contents, len);
		h = open_pid(dfu_pid, 0);
		devnum = devnum_of(h);
		dfu_install(h, module);
		libusb_close(h);
		h = open_pid(normal_pid, devnum);
		printf("normal mode %04x\n", normal_pid);
		print_module_info(h);
	} else if (strcmp(name, "dfu") == 0) {
		/* Request 50: DFU mode; the layout; leave: normal mode again, answering requests. */
		unsigned char layout[256] = "";
		uint8_t status[6];
		uint8_t devnum;
		h = open_pid(normal_pid, 0);
		result = request(h, HEALER_PARTICLE_REQUEST_DFU_MODE, NULL, 0, NULL);
		printf("dfu mode %d\n", result);
		libusb_close(h);
		h = open_pid(dfu_pid, 0);
		printf("in dfu mode %04x\n", dfu_pid);
		REQUIRE(libusb_get_string_descriptor_ascii(h, 6, layout, sizeof layout) > 0, "alt 0's layout");
		printf("layout %s\n", layout);
		REQUIRE(libusb_claim_interface(h, 0) == 0, "claim");
		REQUIRE(libusb_control_transfer(h, 0x21, 1, 0, 0, NULL, 0, TRANSFER_TIMEOUT) == 0, "leave");
		REQUIRE(libusb_control_transfer(h, 0xa1, 3, 0, 0, status, 6, TRANSFER_TIMEOUT) == 6, "GETSTATUS");
		devnum = devnum_of(h);
		libusb_close(h);
		h = open_pid(normal_pid, devnum);
		printf("normal mode again %04x\n", normal_pid);
		print_module_info(h);
	} else {
		REQUIRE(false, "no case '%s'", name);
		h = NULL;
	}
	if (h != NULL)
		libusb_close(h);
	libusb_exit(ctx);
	return 0;
}

/* ---- the test: modules, usbemu, what came out ---------------------------------------------------- */

typedef struct {
	char *dir;
	char *state;
	char *trace;
	char *control;
	int control_fd;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	(void)data;
	f->dir = test_tmpdir_new();
	f->state = g_build_filename(f->dir, "state", NULL);
	f->trace = g_build_filename(f->dir, "trace.txt", NULL);
	f->control = g_build_filename(f->dir, "control", NULL);
	g_assert_cmpint(mkfifo(f->control, 0600), ==, 0);
	/* Held open, so usbemu never sees the FIFO's end when the child closes it. */
	f->control_fd = open(f->control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	g_assert_cmpint(f->control_fd, >=, 0);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	close(f->control_fd);
	test_tmpdir_free(f->dir);
	g_free(f->state);
	g_free(f->trace);
	g_free(f->control);
}

typedef struct {
	guint8 function, index;
	guint16 version;
} Dep;

/* A module for `platform` from libhealer's writer, `size` bytes of payload, in the fixture's directory. */
static char *
write_module(Fixture *f, const char *name, guint16 platform, guint32 start, guint8 function, guint8 index,
             guint16 version, gsize size, const Dep *deps, guint n_deps)
{
	HealerModuleSpec spec = {
	        .start_address = start,
	        .platform_id = platform,
	        .function = function,
	        .index = index,
	        .version = version,
	        .n_dependencies = n_deps,
	};
	g_autofree guint8 *payload = g_malloc(size);
	g_autoptr(GBytes) image = NULL;
	g_autoptr(GBytes) module = NULL;
	g_autoptr(GError) error = NULL;
	char *path = g_build_filename(f->dir, name, NULL);
	guint32 x = version * 7919u + index;

	for (gsize i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		payload[i] = (guint8)(x >> 16);
	}
	for (guint i = 0; i < n_deps; i++) {
		spec.dependencies[i].function = deps[i].function;
		spec.dependencies[i].index = deps[i].index;
		spec.dependencies[i].version = deps[i].version;
	}
	image = g_bytes_new(payload, size);
	module = healer_module_write(&spec, image, &error);
	g_assert_no_error(error);
	test_write_file(path, g_bytes_get_data(module, NULL), g_bytes_get_size(module));
	return path;
}

/* usbemu DEVICE-OPTIONS -- this program --child CASE PIDS ARGS; its exit status and output. */
static int
run(Fixture *f, const char *const *device, const char *child_case, const char *const *args, char **output)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GSubprocessLauncher) launcher =
	        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_autoptr(GSubprocess) process = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *self = g_file_read_link("/proc/self/exe", &error);
	const char *pids[2] = {NULL, NULL};
	const char *wrapper = g_getenv("HEALER_TEST_WRAPPER");
	char *out = NULL;
	int status;

	g_assert_no_error(error);
	if (wrapper != NULL && *wrapper != '\0') {
		g_auto(GStrv) words = NULL;
		g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(argv, g_strdup(words[i]));
		/* usbemu runs itself again under umockdev's preload, which would take it out of valgrind:
		 * give it the preload from the start (the child, the test's own libusb client, is not wrapped). */
		g_subprocess_launcher_setenv(launcher, "LD_PRELOAD", "libumockdev-preload.so.0", TRUE);
	}
	g_ptr_array_add(argv, g_strdup(test_program("USBEMU")));
	g_ptr_array_add(argv, g_strdup_printf("--trace=%s", f->trace));
	g_ptr_array_add(argv, g_strdup_printf("--control=%s", f->control));
	for (guint i = 0; device[i] != NULL; i++) {
		if (strcmp(device[i], "--pids") == 0) {
			pids[0] = device[++i];
			pids[1] = device[++i];
			continue;
		}
		g_ptr_array_add(argv, g_strdup(device[i]));
	}
	g_ptr_array_add(argv, g_strdup_printf("--state=%s", f->state));
	g_ptr_array_add(argv, g_strdup("--time-scale=" TIME_SCALE));
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(self));
	g_ptr_array_add(argv, g_strdup("--child"));
	g_ptr_array_add(argv, g_strdup(child_case));
	g_ptr_array_add(argv, g_strdup(pids[0]));
	g_ptr_array_add(argv, g_strdup(pids[1]));
	for (guint i = 0; args != NULL && args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(process, NULL, NULL, &out, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(process));
	status = g_subprocess_get_exit_status(process);
	if (wrapper != NULL && *wrapper != '\0' && status == 99)
		g_error("memory errors under %s running usbemu:\n%s", wrapper, out);
	g_test_message("usbemu exited %d:\n%s", status, out);
	*output = out;
	return status;
}

static void
assert_contains(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		g_error("'%s' not found in:\n%s", needle, text);
}

static char *
read_text(const char *path)
{
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

#define PHOTON   6
#define ARGON    12
#define P2       32
#define SP       MODULE_FUNCTION_SYSTEM_PART
#define UP       MODULE_FUNCTION_USER_PART
#define PHOTON_D "--particle=photon", "--pids", "c006", "d006"

/*
 * A Photon in dependency safe mode: system part 1 (2202) needs system part 2 >= 2202 and the flash
 * holds 1102; the application needs system part 1 >= 2202.
 */
static char *
photon_safe_mode_modules(Fixture *f)
{
	static const Dep sp1_deps[] = {{SP, 2, 2202}};
	static const Dep user_deps[] = {{SP, 1, 2202}};
	g_autofree char *sp1 = write_module(f, "sp1.bin", PHOTON, 0x08020000, SP, 1, 2202, 40000, sp1_deps, 1);
	g_autofree char *sp2 = write_module(f, "sp2-old.bin", PHOTON, 0x08060000, SP, 2, 1102, 30000, NULL, 0);
	g_autofree char *user = write_module(f, "user.bin", PHOTON, 0x080A0000, UP, 1, 6, 5000, user_deps, 1);

	return g_strjoin(",", sp1, sp2, user, NULL);
}

static void
test_module_info_old(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	const char *device[] = {PHOTON_D, option, NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "info", NULL, &out), ==, 0);
	/* Gen 2: the old format by default. */
	assert_contains(out, "format old");
	assert_contains(out, "module system-part 1 version 2202 failed 0x04 hash no: dependency check failed: needs "
	                     "system-part 2 version >= 2202 (has 1102)");
	assert_contains(out, "module system-part 2 version 1102 failed 0x00");
	assert_contains(out, "module user-part 1 version 6 failed 0x00");
}

static void
test_module_info_new(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	const char *device[] = {PHOTON_D, option, "--module-info=new", NULL};
	g_autofree char *out = NULL;
	g_autofree char *flash = g_build_filename(f->state, "internal-flash.bin", NULL);
	g_autoptr(GBytes) bytes = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "info", NULL, &out), ==, 0);
	assert_contains(out, "format new");
	assert_contains(out, "module system-part 1 version 2202 failed 0x04 hash yes");
	assert_contains(out, "module system-part 2 version 1102 failed 0x00 hash yes");
	/* --modules wrote each at its start address. */
	bytes = test_read_file(flash);
	g_assert_cmpuint(g_bytes_get_size(bytes), ==, 1024 * 1024);
	g_assert_cmpuint(((const guint8 *)g_bytes_get_data(bytes, NULL))[0x20000], !=, 0xff);
}

/* Integrity, range and platform failures, on an Argon (new format by default). */
static void
test_module_info_checks(Fixture *f, gconstpointer data)
{
	g_autofree char *sp1 = write_module(f, "sp1.bin", ARGON, 0x00030000, SP, 1, 6200, 20000, NULL, 0);
	/* A Boron's application in the Argon's user slot: platform. */
	g_autofree char *user = write_module(f, "user.bin", 13, 0x000B4000, UP, 2, 6, 3000, NULL, 0);
	g_autofree char *option = g_strconcat("--modules=", sp1, ",", user, NULL);
	const char *device[] = {"--particle=argon", "--pids", "c00c", "d00c", option, NULL};
	g_autofree char *out = NULL;
	g_autofree char *flash = g_build_filename(f->state, "internal-flash.bin", NULL);
	g_autoptr(GBytes) bytes = NULL;
	g_autofree guint8 *copy = NULL;
	gsize size;

	(void)data;
	g_assert_cmpint(run(f, device, "info", NULL, &out), ==, 0);
	assert_contains(out, "format new");
	assert_contains(out, "module system-part 1 version 6200 failed 0x00");
	assert_contains(out, "module user-part 2 version 6 failed 0x10");
	g_free(out);
	out = NULL;
	/* A flipped byte in system part 1: integrity, in the next run over the same flash. */
	bytes = test_read_file(flash);
	size = g_bytes_get_size(bytes);
	copy = g_memdup2(g_bytes_get_data(bytes, NULL), size);
	copy[0x30000 + 1000] ^= 0x01;
	test_write_file(flash, copy, size);
	g_assert_cmpint(run(f, device, "info", NULL, &out), ==, 0);
	assert_contains(out, "module system-part 1 version 6200 failed 0x02");
}

static void
test_protocol(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	const char *device[] = {PHOTON_D, option, "--serial=0123456789abcdef01234567", NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "protocol", NULL, &out), ==, 0);
	assert_contains(out, "device id 0123456789abcdef01234567");
	/* Device OS' version from system part 1's 2202. */
	assert_contains(out, "version 2.2.0");
	assert_contains(out, "fifth active: BUSY");
	assert_contains(out, "init of 100 bytes: PENDING");
	assert_contains(out, "protocol ok");
	trace = read_text(f->trace);
	assert_contains(trace, "particle INIT type=GET_DEVICE_ID size=0 status=BUSY");
	assert_contains(trace, "particle CHECK id=999 status=NOT_FOUND");
}

static void
test_rtl872x_hang(Fixture *f, gconstpointer data)
{
	g_autofree char *sp1 = write_module(f, "sp1.bin", P2, 0x08060000, SP, 1, 6200, 20000, NULL, 0);
	g_autofree char *option = g_strconcat("--modules=", sp1, NULL);
	const char *device[] = {"--particle=p2", "--pids", "c020", "d020", option, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "hang", NULL, &out), ==, 0);
	assert_contains(out, "no data stage: timeout");
	assert_contains(out, "still answers: version 6.2.0");
	assert_contains(out, "reset with one byte: back");
	trace = read_text(f->trace);
	assert_contains(trace, "particle hang: OUT bRequest=0x50 wIndex=40 without a data stage");
	assert_contains(trace, "particle raw reset");
}

/* The Photon out of safe mode: system part 2 2202 over control requests. */
static void
test_ota(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	g_autofree char *sp2 = write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2202, 30000, NULL, 0);
	const char *device[] = {PHOTON_D, option, NULL};
	const char *args[] = {sp2, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;
	g_autofree char *flash = g_build_filename(f->state, "internal-flash.bin", NULL);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GBytes) module = test_read_file(sp2);

	(void)data;
	g_assert_cmpint(run(f, device, "ota", args, &out), ==, 0);
	assert_contains(out, "start 0");
	assert_contains(out, "chunk 1024");
	assert_contains(out, "finish 0");
	assert_contains(out, "back after the update");
	assert_contains(out, "module system-part 1 version 2202 failed 0x00");
	assert_contains(out, "module system-part 2 version 2202 failed 0x00");
	trace = read_text(f->trace);
	assert_contains(trace, "particle flash system-part 2 version 2202 written at 0x08060000");
	/* The module is at its address, byte for byte. */
	bytes = test_read_file(flash);
	g_assert_cmpmem((const guint8 *)g_bytes_get_data(bytes, NULL) + 0x60000, g_bytes_get_size(module),
	                g_bytes_get_data(module, NULL), g_bytes_get_size(module));
}

/* FINISH refuses a module whose dependency the flash does not meet, and one for another platform. */
static void
test_ota_refused(Fixture *f, gconstpointer data)
{
	static const Dep needs_new_sp1[] = {{SP, 1, 9999}};
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	g_autofree char *user = write_module(f, "user-new.bin", PHOTON, 0x080A0000, UP, 1, 7, 4000, needs_new_sp1, 1);
	g_autofree char *argon = write_module(f, "argon.bin", ARGON, 0x000B4000, UP, 2, 7, 4000, NULL, 0);
	const char *device[] = {PHOTON_D, option, NULL};
	const char *args_dep[] = {user, NULL};
	const char *args_platform[] = {argon, NULL};
	g_autofree char *out = NULL;
	g_autofree char *out2 = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "ota", args_dep, &out), ==, 0);
	assert_contains(out, "finish -1340");
	assert_contains(out, "module user-part 1 version 6 failed 0x00");
	g_assert_cmpint(run(f, device, "ota", args_platform, &out2), ==, 0);
	assert_contains(out2, "finish -1360");
}

static void
test_protected(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	g_autofree char *sp2 = write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2202, 30000, NULL, 0);
	const char *device[] = {PHOTON_D, option, "--protected", NULL};
	const char *args[] = {sp2, NULL};
	g_autofree char *out = NULL;
	g_autofree char *out2 = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "ota", args, &out), ==, 0);
	assert_contains(out, "start -1801");
	assert_contains(out, "module system-part 2 version 1102");
	/* In DFU mode its segments read "b": a DFU client refuses to write. */
	g_assert_cmpint(run(f, device, "dfu", NULL, &out2), ==, 0);
	assert_contains(out2, "layout @Internal Flash   /0x08000000/03*016Kb,01*016Kb,01*064Kb,07*128Kb");
}

static void
test_updates_disabled(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	g_autofree char *sp2 = write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2202, 30000, NULL, 0);
	const char *device[] = {PHOTON_D, option, "--updates-disabled", NULL};
	const char *args[] = {sp2, NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "ota", args, &out), ==, 0);
	assert_contains(out, "start -1380");
}

/* `reboot 1` in the middle of an install: the update is lost, the flash unchanged. */
static void
test_reboot_mid_install(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	g_autofree char *sp2 = write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2202, 30000, NULL, 0);
	const char *device[] = {PHOTON_D, option, NULL};
	const char *args[] = {sp2, "10240", f->control, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "ota-reboot", args, &out), ==, 0);
	assert_contains(out, "rebooted after 10240 bytes");
	/* No update in progress any more. */
	assert_contains(out, "finish -210");
	assert_contains(out, "module system-part 2 version 1102 failed 0x00");
	trace = read_text(f->trace);
	assert_contains(trace, "the update in progress (10240 of ");
}

/* Request 50: DFU mode (the DfuSe model, same flash); leave: normal mode, answering requests. */
static void
test_dfu_mode(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	const char *device[] = {PHOTON_D, option, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "dfu", NULL, &out), ==, 0);
	assert_contains(out, "dfu mode 0");
	assert_contains(out, "in dfu mode d006");
	assert_contains(out, "layout @Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg");
	assert_contains(out, "normal mode again c006");
	assert_contains(out, "module system-part 2 version 1102");
	trace = read_text(f->trace);
	assert_contains(trace, "dev1 event plugged mode=dfu port=1-1.1");
}

/* --mode dfu: a device in dependency safe mode healed over DfuSe, then normal mode with every check passed. */
static void
test_dfu_install(Fixture *f, gconstpointer data)
{
	g_autofree char *modules = photon_safe_mode_modules(f);
	g_autofree char *option = g_strconcat("--modules=", modules, NULL);
	g_autofree char *sp2 = write_module(f, "sp2.bin", PHOTON, 0x08060000, SP, 2, 2202, 30000, NULL, 0);
	const char *device[] = {PHOTON_D, option, "--mode=dfu", NULL};
	const char *args[] = {sp2, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "dfu-install", args, &out), ==, 0);
	assert_contains(out, "dfuse wrote");
	assert_contains(out, "normal mode c006");
	assert_contains(out, "module system-part 1 version 2202 failed 0x00");
	assert_contains(out, "module system-part 2 version 2202 failed 0x00");
	trace = read_text(f->trace);
	assert_contains(trace, "dev1 event plugged mode=dfu port=1-1.1 devnum=3 id=2b04:d006");
}

/* A CDC ACM device has a tty under its interface 0, as cdc_acm makes one; a test reaches it at /dev/ttyACM0. */
static void
test_tty(Fixture *f, gconstpointer data)
{
	const char *device[] = {PHOTON_D, NULL};
	const char *args[] = {f->trace, NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(run(f, device, "tty", args, &out), ==, 0);
	assert_contains(out, "tty /sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.1/1-1.1:1.0/tty/ttyACM0");
	assert_contains(out, "interface class 02");
	assert_contains(out, "parent product c006");
}

int
main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0)
		return child_main(argc, argv);
	g_test_init(&argc, &argv, NULL);
#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
	ADD("/usbemu-particle/module-info/old", test_module_info_old);
	ADD("/usbemu-particle/module-info/new", test_module_info_new);
	ADD("/usbemu-particle/module-info/checks", test_module_info_checks);
	ADD("/usbemu-particle/protocol", test_protocol);
	ADD("/usbemu-particle/rtl872x-hang", test_rtl872x_hang);
	ADD("/usbemu-particle/ota", test_ota);
	ADD("/usbemu-particle/ota-refused", test_ota_refused);
	ADD("/usbemu-particle/protected", test_protected);
	ADD("/usbemu-particle/updates-disabled", test_updates_disabled);
	ADD("/usbemu-particle/reboot-mid-install", test_reboot_mid_install);
	ADD("/usbemu-particle/dfu-mode", test_dfu_mode);
	ADD("/usbemu-particle/tty", test_tty);
	ADD("/usbemu-particle/dfu-install", test_dfu_install);
	return g_test_run();
}
