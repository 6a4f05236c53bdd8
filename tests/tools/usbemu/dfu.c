/*
 * The device model: what a device answers to a control transfer.  Standard requests from its
 * descriptors (descriptor.c); in DFU mode, DFU 1.1 class requests with the DfuSe extensions, as
 * the ST and Particle bootloaders carry them out:
 *
 * - a DNLOAD is taken in (dfuDNLOAD-SYNC) and carried out when the host asks GETSTATUS, which
 *   reports dfuDNBUSY with the operation's bwPollTimeout; the next GETSTATUS, no earlier than that
 *   timeout, reports dfuDNLOAD-IDLE, or dfuERROR with the operation's status.  A GETSTATUS before
 *   the timeout is a request with no transition defined: stalled, dfuERROR (errSTALLEDPKT), as
 *   DFU 1.1 and Particle's Gen 3 bootloader have it.
 * - block 0 carries a DfuSe command (set address 0x21, erase 0x41, read unprotect 0x92, GET_COMMANDS
 *   0x00, and Particle's 0xFA and 0xFB where the model lists them); block n >= 2 is data for
 *   (n - 2) * wTransferSize + the address pointer.
 * - a zero-length DNLOAD is "leave": GETSTATUS reports dfuMANIFEST (a Photon: dfuDNLOAD-IDLE), the
 *   flash is synced, and the device resets after the model's delay: it goes away and comes back
 *   at the same port, in normal mode (Particle) or DFU mode again (the ST ROM: no application).
 * - any other request with no transition from the current state stalls and enters dfuERROR.
 *
 * In normal mode, a Particle device's vendor requests go to its Device OS model (particle.h).
 *
 * Called from umockdev's worker thread with usbemu.lock held.
 */
#include <errno.h>
#include <string.h>

#include "particle.h"

#define REQUEST_GET_STATUS        0x00
#define REQUEST_CLEAR_FEATURE     0x01
#define REQUEST_SET_FEATURE       0x03
#define REQUEST_GET_DESCRIPTOR    0x06
#define REQUEST_GET_CONFIGURATION 0x08
#define REQUEST_SET_CONFIGURATION 0x09
#define REQUEST_GET_INTERFACE     0x0a
#define REQUEST_SET_INTERFACE     0x0b

#define DFU_WILL_DETACH 0x08

typedef struct {
	uint8_t type;
	uint8_t request;
	uint16_t value;
	uint16_t index;
	uint16_t length;
} Setup;

static bool
direction_in(const Setup *s)
{
	return (s->type & 0x80) != 0;
}

static int
copy_out(uint8_t *data, const Setup *s, const void *bytes, size_t n)
{
	size_t count = MIN(n, s->length);

	memcpy(data, bytes, count);
	return (int)count;
}

static int
string_descriptor(const UsbemuDevice *device, const Setup *s, uint8_t *data)
{
	uint8_t index = s->value & 0xff;
	uint8_t descriptor[255];
	const char *text;
	size_t n;

	if (index == 0) {
		const uint8_t languages[] = {4, 0x03, 0x09, 0x04}; /* English (US) */
		return copy_out(data, s, languages, sizeof languages);
	}
	text = g_hash_table_lookup(device->identity.strings, GUINT_TO_POINTER(index));
	if (text == NULL)
		return -EPIPE;
	n = MIN(strlen(text), (sizeof descriptor - 2) / 2);
	descriptor[0] = (uint8_t)(2 + 2 * n);
	descriptor[1] = 0x03;
	for (size_t i = 0; i < n; i++) {
		descriptor[2 + 2 * i] = (uint8_t)text[i];
		descriptor[3 + 2 * i] = 0;
	}
	return copy_out(data, s, descriptor, descriptor[0]);
}

static int
get_descriptor(const UsbemuDevice *device, const Setup *s, uint8_t *data)
{
	const UsbemuIdentity *id = &device->identity;
	uint8_t type = s->value >> 8;
	gsize n;
	const uint8_t *bytes;

	switch (type) {
	case 0x01:
		bytes = g_bytes_get_data(id->device_descriptor, &n);
		return copy_out(data, s, bytes, n);
	case 0x02:
		if ((s->value & 0xff) != 0)
			return -EPIPE;
		bytes = g_bytes_get_data(id->configuration, &n);
		return copy_out(data, s, bytes, n);
	case 0x03:
		return string_descriptor(device, s, data);
	case 0x21:
		/* The DFU functional descriptor, the configuration's last 9 bytes. */
		if (device->mode != USBEMU_MODE_DFU)
			return -EPIPE;
		bytes = g_bytes_get_data(id->configuration, &n);
		return copy_out(data, s, bytes + n - 9, 9);
	default:
		return -EPIPE; /* no device qualifier, BOS or other-speed descriptors: a full-speed device */
	}
}

static int
standard_request(UsbemuDevice *device, const Setup *s, uint8_t *data)
{
	const UsbemuIdentity *id = &device->identity;
	unsigned interface = s->index & 0xff;

	switch (s->request) {
	case REQUEST_GET_STATUS: {
		uint8_t status[2] = {(s->type & 0x1f) == 0 ? 0x01 : 0x00, 0}; /* self-powered */
		if (!direction_in(s))
			return -EPIPE;
		return copy_out(data, s, status, sizeof status);
	}
	case REQUEST_CLEAR_FEATURE:
	case REQUEST_SET_FEATURE:
		return direction_in(s) ? -EPIPE : 0;
	case REQUEST_GET_DESCRIPTOR:
		return direction_in(s) ? get_descriptor(device, s, data) : -EPIPE;
	case REQUEST_GET_CONFIGURATION: {
		uint8_t value = 1;
		return direction_in(s) ? copy_out(data, s, &value, 1) : -EPIPE;
	}
	case REQUEST_SET_CONFIGURATION:
		return !direction_in(s) && s->value <= 1 ? 0 : -EPIPE;
	case REQUEST_GET_INTERFACE: {
		uint8_t alternate = device->mode == USBEMU_MODE_DFU ? device->alternate : 0;
		if (!direction_in(s) || interface >= id->n_interfaces)
			return -EPIPE;
		return copy_out(data, s, &alternate, 1);
	}
	case REQUEST_SET_INTERFACE:
		if (direction_in(s) || interface >= id->n_interfaces || s->value >= id->alternate_settings[interface])
			return -EPIPE;
		if (device->mode == USBEMU_MODE_DFU)
			device->alternate = (uint8_t)s->value;
		return 0;
	default:
		return -EPIPE;
	}
}

void
usbemu_dfu_reset_state(UsbemuDevice *device)
{
	device->state = DFU_STATE_IDLE;
	device->status = DFU_STATUS_OK;
	device->alternate = 0;
	/* AN3156: with no Set Address Pointer, reads and writes start at the flash's first byte. */
	device->address_pointer = device->n_memories > 0 ? device->memories[0].base : 0;
	device->op_pending = false;
	device->busy_until = 0;
}

/* No transition from this state for this request: stall, and dfuERROR until CLRSTATUS. */
static int
dfu_stall(UsbemuDevice *device)
{
	device->state = DFU_STATE_ERROR;
	device->status = DFU_STATUS_ERR_STALLEDPKT;
	device->op_pending = false;
	return -EPIPE;
}

/* Where a device goes when it leaves DFU mode: the application, if it has a normal mode. */
static UsbemuMode
mode_after_leave(const UsbemuDevice *device)
{
	return device->model->normal_layout == USBEMU_NORMAL_NONE ? USBEMU_MODE_DFU : USBEMU_MODE_NORMAL;
}

static bool
model_lists_command(const UsbemuModel *model, uint8_t command)
{
	for (unsigned i = 0; i < model->n_commands; i++) {
		if (model->commands[i] == command)
			return true;
	}
	return false;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t
run_command(UsbemuDevice *device, UsbemuMemory *memory)
{
	const UsbemuModel *model = device->model;
	uint8_t command = device->op_data[0];
	uint16_t length = device->op_length;

	if (!model_lists_command(model, command))
		return DFU_STATUS_ERR_STALLEDPKT;
	switch (command) {
	case DFUSE_GET_COMMANDS:
	case DFUSE_CLEAR_SECURITY_OVERRIDE:
		return length == 1 ? DFU_STATUS_OK : DFU_STATUS_ERR_STALLEDPKT;
	case DFUSE_SET_ADDRESS:
		if (length != 5)
			return DFU_STATUS_ERR_STALLEDPKT;
		/* AN3156: an address the memory does not have is errTARGET. */
		if (usbemu_memory_segment_at(memory, le32(device->op_data + 1)) == NULL)
			return DFU_STATUS_ERR_TARGET;
		device->address_pointer = le32(device->op_data + 1);
		return DFU_STATUS_OK;
	case DFUSE_ERASE:
		if (length == 1)
			return model->mass_erase ? usbemu_memory_erase_all(memory) : DFU_STATUS_ERR_TARGET;
		if (length != 5)
			return DFU_STATUS_ERR_STALLEDPKT;
		return usbemu_memory_erase_page(memory, le32(device->op_data + 1));
	case DFUSE_READ_UNPROTECT:
		/* The ST ROM erases the flash, clears the protection and resets. */
		usbemu_memory_erase_all(&device->memories[0]);
		usbemu_memory_sync(&device->memories[0]);
		usbemu_bus_schedule_reset(device, USBEMU_MODE_DFU, 0);
		return DFU_STATUS_OK;
	case DFUSE_ENTER_SAFE_MODE:
		/* Particle: note the request, manifest, reset (into the application, in safe mode). */
		device->op_next_state = DFU_STATE_MANIFEST_SYNC;
		return DFU_STATUS_OK;
	default:
		return DFU_STATUS_ERR_STALLEDPKT;
	}
}

/* What the DNLOAD taken in asks for, done when GETSTATUS comes; returns its DFU status. */
static uint8_t
run_operation(UsbemuDevice *device)
{
	UsbemuMemory *memory = &device->memories[device->alternate];
	uint64_t address;

	device->op_next_state = DFU_STATE_DNLOAD_SYNC;
	if (device->op_block == 0)
		return run_command(device, memory);
	address = (uint64_t)(device->op_block - 2) * device->model->transfer_size + device->address_pointer;
	if (address > UINT32_MAX)
		return DFU_STATUS_ERR_ADDRESS;
	return usbemu_memory_write(memory, (uint32_t)address, device->op_data, device->op_length);
}

/* dfuDNBUSY ends when its poll timeout has passed. */
static void
settle(UsbemuDevice *device, int64_t now)
{
	if (device->state != DFU_STATE_DNBUSY || now < device->busy_until)
		return;
	if (device->op_result != DFU_STATUS_OK) {
		device->state = DFU_STATE_ERROR;
		device->status = device->op_result;
	} else {
		device->state = device->op_next_state;
	}
}

static bool
idle_like(uint8_t state)
{
	return state == DFU_STATE_IDLE || state == DFU_STATE_DNLOAD_SYNC || state == DFU_STATE_DNLOAD_IDLE ||
	       state == DFU_STATE_MANIFEST_SYNC || state == DFU_STATE_UPLOAD_IDLE;
}

static int
get_status(UsbemuDevice *device, const Setup *s, uint8_t *data, uint8_t *reported, uint32_t *poll_ms)
{
	uint8_t reply[6];

	*reported = device->state;
	*poll_ms = 0;
	switch (device->state) {
	case DFU_STATE_DNLOAD_SYNC:
		if (device->op_pending) {
			device->op_pending = false;
			device->op_result = run_operation(device);
			device->state = DFU_STATE_DNBUSY;
			*poll_ms = device->poll_timeout_ms;
			device->busy_until = usbemu_now_us() + (int64_t)*poll_ms * 1000;
		} else {
			device->state = DFU_STATE_DNLOAD_IDLE;
		}
		*reported = device->state;
		break;
	case DFU_STATE_DNBUSY:
		/* Asked before the poll timeout it was given. */
		return dfu_stall(device);
	case DFU_STATE_MANIFEST_SYNC:
		*reported = device->model->manifest_reports_dnload_idle ? DFU_STATE_DNLOAD_IDLE : DFU_STATE_MANIFEST;
		device->state = DFU_STATE_MANIFEST_WAIT_RESET;
		for (unsigned i = 0; i < device->n_memories; i++)
			usbemu_memory_sync(&device->memories[i]);
		usbemu_trace("%s event manifest next=%s reset_ms=%u", device->label,
		             mode_after_leave(device) == USBEMU_MODE_DFU ? "dfu" : "normal",
		             device->model->reset_delay_ms);
		usbemu_bus_schedule_reset(device, mode_after_leave(device), device->model->reset_delay_ms);
		break;
	default:
		break;
	}
	reply[0] = device->state == DFU_STATE_ERROR ? device->status : DFU_STATUS_OK;
	reply[1] = *poll_ms & 0xff;
	reply[2] = (*poll_ms >> 8) & 0xff;
	reply[3] = (*poll_ms >> 16) & 0xff;
	reply[4] = *reported;
	reply[5] = 0; /* iString */
	return copy_out(data, s, reply, sizeof reply);
}

static int
upload(UsbemuDevice *device, const Setup *s, uint8_t *data)
{
	const UsbemuModel *model = device->model;
	uint8_t status;
	uint64_t address;
	int n;

	if (device->state != DFU_STATE_IDLE && device->state != DFU_STATE_UPLOAD_IDLE)
		return dfu_stall(device);
	if (s->length == 0) {
		device->state = DFU_STATE_IDLE;
		return 0;
	}
	if (s->length > model->transfer_size || s->value == 1)
		return dfu_stall(device);
	if (s->value == 0) {
		device->state = DFU_STATE_IDLE;
		return copy_out(data, s, model->commands, model->n_commands);
	}
	address = (uint64_t)(s->value - 2) * model->transfer_size + device->address_pointer;
	n = address > UINT32_MAX ? -1
	                         : usbemu_memory_read(&device->memories[device->alternate], (uint32_t)address, data,
	                                              s->length, &status);
	if (n < 0) {
		device->state = DFU_STATE_ERROR;
		device->status = address > UINT32_MAX ? DFU_STATUS_ERR_ADDRESS : status;
		return -EPIPE;
	}
	/* A short block ends the upload (DFU 1.1 6.2). */
	device->state = n < s->length ? DFU_STATE_IDLE : DFU_STATE_UPLOAD_IDLE;
	return n;
}

static int
dfu_request(UsbemuDevice *device, const Setup *s, uint8_t *data, uint8_t *reported, uint32_t *poll_ms)
{
	const UsbemuModel *model = device->model;

	if (device->stall_armed && (device->stall_request < 0 || device->stall_request == s->request)) {
		if (device->stall_skip > 0) {
			device->stall_skip--;
		} else {
			char name[8];
			device->stall_armed = false;
			usbemu_trace("%s fault stall fired bRequest=%s", device->label,
			             usbemu_request_name(s->type, s->request, name));
			return dfu_stall(device);
		}
	}
	settle(device, usbemu_now_us());
	/* Resetting: it answers nothing more. */
	if (device->state == DFU_STATE_MANIFEST_WAIT_RESET || device->state == DFU_STATE_MANIFEST)
		return -EPIPE;
	if (direction_in(s) != (s->request == DFU_UPLOAD || s->request == DFU_GETSTATUS || s->request == DFU_GETSTATE))
		return dfu_stall(device);

	switch (s->request) {
	case DFU_DETACH:
		if (!idle_like(device->state))
			return dfu_stall(device);
		device->state = DFU_STATE_IDLE;
		/* bitWillDetach: it drops off the bus and comes back, in DFU mode still. */
		if (model->dfu_attributes & DFU_WILL_DETACH)
			usbemu_bus_schedule_reset(device, USBEMU_MODE_DFU, 0);
		return 0;
	case DFU_DNLOAD:
		if (device->state != DFU_STATE_IDLE && device->state != DFU_STATE_DNLOAD_IDLE)
			return dfu_stall(device);
		if (s->length == 0) {
			device->state = DFU_STATE_MANIFEST_SYNC;
			return 0;
		}
		if (s->length > model->transfer_size || s->value == 1)
			return dfu_stall(device);
		memcpy(device->op_data, data, s->length);
		device->op_block = s->value;
		device->op_length = s->length;
		device->op_pending = true;
		device->state = DFU_STATE_DNLOAD_SYNC;
		return s->length;
	case DFU_UPLOAD:
		return upload(device, s, data);
	case DFU_GETSTATUS:
		return get_status(device, s, data, reported, poll_ms);
	case DFU_CLRSTATUS:
		if (device->state != DFU_STATE_ERROR)
			return dfu_stall(device);
		device->state = DFU_STATE_IDLE;
		device->status = DFU_STATUS_OK;
		return 0;
	case DFU_GETSTATE:
		if (device->state == DFU_STATE_DNBUSY)
			return dfu_stall(device);
		return copy_out(data, s, &device->state, 1);
	case DFU_ABORT:
		if (!idle_like(device->state))
			return dfu_stall(device);
		device->state = DFU_STATE_IDLE;
		device->status = DFU_STATUS_OK;
		device->op_pending = false;
		return 0;
	default:
		return dfu_stall(device);
	}
}

/* " dfuse=ERASE:0x080a0000": what a DNLOAD of block 0 asked for, for the trace. */
static void
dfuse_command_text(const uint8_t *data, uint16_t length, char *text, size_t size)
{
	static const struct {
		uint8_t command;
		const char *name;
	} names[] = {
	        {DFUSE_GET_COMMANDS, "GET_COMMANDS"},
	        {DFUSE_SET_ADDRESS, "SET_ADDRESS"},
	        {DFUSE_ERASE, "ERASE"},
	        {DFUSE_READ_UNPROTECT, "READ_UNPROTECT"},
	        {DFUSE_ENTER_SAFE_MODE, "ENTER_SAFE_MODE"},
	        {DFUSE_CLEAR_SECURITY_OVERRIDE, "CLEAR_SECURITY_OVERRIDE"},
	};
	const char *name = NULL;

	for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
		if (names[i].command == data[0])
			name = names[i].name;
	}
	if (name == NULL)
		g_snprintf(text, size, " dfuse=0x%02x", data[0]);
	else if (length == 5)
		g_snprintf(text, size, " dfuse=%s:0x%08x", name, le32(data + 1));
	else
		g_snprintf(text, size, " dfuse=%s", name);
}

int
usbemu_control(UsbemuDevice *device, const uint8_t raw[8], uint8_t *data)
{
	Setup s = {
	        .type = raw[0],
	        .request = raw[1],
	        .value = (uint16_t)(raw[2] | raw[3] << 8),
	        .index = (uint16_t)(raw[4] | raw[5] << 8),
	        .length = (uint16_t)(raw[6] | raw[7] << 8),
	};
	unsigned type = (s.type >> 5) & 3;
	unsigned recipient = s.type & 0x1f;
	bool dfu = device->mode == USBEMU_MODE_DFU && type == 1 && recipient == 1 && (s.index & 0xff) == 0;
	uint8_t reported = 0;
	uint32_t poll_ms = 0;
	char name[8], result[16], extra[48] = "";
	int r;

	if (dfu)
		r = dfu_request(device, &s, data, &reported, &poll_ms);
	else if (type == 0)
		r = standard_request(device, &s, data);
	else if (type == 2 && device->mode == USBEMU_MODE_NORMAL && device->particle != NULL)
		r = usbemu_particle_control(device, s.type, s.request, s.value, s.index, s.length, data);
	else
		r = -EPIPE; /* other class and vendor requests: not emulated */

	if (usbemu_trace_enabled()) {
		bool dfu_mode = device->mode == USBEMU_MODE_DFU;
		bool status_reply = dfu && s.request == DFU_GETSTATUS && r >= 0;
		uint8_t state = status_reply ? reported : device->state;

		if (r >= 0)
			g_snprintf(result, sizeof result, "%d", r);
		else if (r == USBEMU_CONTROL_HANG)
			g_strlcpy(result, "hang", sizeof result);
		else
			g_strlcpy(result, "stall", sizeof result);
		if (status_reply)
			g_snprintf(extra, sizeof extra, " poll=%u", poll_ms);
		else if (dfu && s.request == DFU_DNLOAD && s.value == 0 && s.length > 0 && r >= 0)
			dfuse_command_text(data, s.length, extra, sizeof extra);
		usbemu_trace("%s ctrl %s bmRequestType=0x%02x bRequest=%s wValue=0x%04x wIndex=0x%04x wLength=%u "
		             "result=%s state=%s status=%s%s",
		             device->label, direction_in(&s) ? "in" : "out", s.type,
		             usbemu_request_name(s.type, s.request, name), s.value, s.index, s.length, result,
		             dfu_mode ? usbemu_dfu_state_name(state) : "-",
		             dfu_mode
		                     ? usbemu_dfu_status_name(state == DFU_STATE_ERROR ? device->status : DFU_STATUS_OK)
		                     : "-",
		             extra);
	}
	return r;
}
