/*
 * The request handlers of a Particle device in normal mode: what Device OS answers to each
 * request type healing uses (facts: /work/shared/reference/particle-usb.md §3), and how long it
 * takes (the handler time particle-channel.c waits before the result shows).
 *
 * OTA (START 250, DATA 253, FINISH 251, CANCEL 252): START cancels a transfer in progress, checks
 * the size against the staging area and erases it (its time: the erase, per KiB); DATA appends
 * 1..bytesLeft bytes (else -290, and the transfer is cancelled, as any DATA error does); FINISH with
 * every byte validates the module (integrity, platform, dependencies against what stays in
 * flash), replies, and resets a second after the host has the reply: the bootloader then copies the module into place.
 * validate_only reports and cancels.  --protected answers -1801 to all three, --updates-disabled
 * -1380 to START.  Request 40 and 60 reset into normal mode, 50 into DFU mode, each once the host has the reply.
 *
 * Called with usbemu.lock held.
 */
#include <string.h>

#include "particle-control.pb-c.h"
#include "particle.h"

/* Device OS hard-codes the chunk START answers with. */
#define OTA_CHUNK_SIZE 1024
#define OTA_FORMAT_BIN 0

static void
ota_cancel(UsbemuParticle *particle)
{
	particle->ota_active = false;
	particle->ota_size = 0;
	g_clear_pointer(&particle->ota_data, g_byte_array_unref);
}

/* The reset request `r` announces: `reset_ms` (scaled) after the host has its reply (particle-channel.c). */
static void
reset_later(UsbemuRequest *r, UsbemuMode mode)
{
	r->reset_after_reply = true;
	r->reset_mode = (int)mode;
}

static int32_t
ota_start(UsbemuRequest *r)
{
	UsbemuDevice *device = r->device;
	UsbemuParticle *particle = device->particle;
	Healer__Particle__StartFirmwareUpdateRequest *request;
	Healer__Particle__StartFirmwareUpdateReply reply = HEALER__PARTICLE__START_FIRMWARE_UPDATE_REPLY__INIT;
	uint32_t size, format;

	if (particle->protected_device)
		return HEALER_PARTICLE_RESULT_PROTECTED;
	request = healer__particle__start_firmware_update_request__unpack(NULL, r->payload->len, r->payload->data);
	if (request == NULL)
		return HEALER_PARTICLE_RESULT_BAD_DATA;
	size = request->size;
	format = request->format;
	healer__particle__start_firmware_update_request__free_unpacked(request, NULL);
	ota_cancel(particle);
	if (particle->updates_disabled)
		return HEALER_PARTICLE_RESULT_OTA_UPDATES_DISABLED;
	if (format != OTA_FORMAT_BIN)
		return HEALER_PARTICLE_RESULT_NOT_SUPPORTED;
	if (size == 0 || size > device->model->ota_max_size)
		return HEALER_PARTICLE_RESULT_OTA_INVALID_SIZE;
	particle->ota_active = true;
	particle->ota_size = size;
	particle->ota_data = g_byte_array_sized_new(size);
	reply.chunk_size = OTA_CHUNK_SIZE;
	r->reply = healer_particle_message_pack(&reply.base);
	return HEALER_PARTICLE_RESULT_OK;
}

static int32_t
ota_data(UsbemuRequest *r)
{
	UsbemuParticle *particle = r->device->particle;
	Healer__Particle__FirmwareUpdateDataRequest *request;
	int32_t result = HEALER_PARTICLE_RESULT_OK;

	if (particle->protected_device)
		return HEALER_PARTICLE_RESULT_PROTECTED;
	if (!particle->ota_active)
		return HEALER_PARTICLE_RESULT_INVALID_STATE;
	request = healer__particle__firmware_update_data_request__unpack(NULL, r->payload->len, r->payload->data);
	if (request == NULL)
		result = HEALER_PARTICLE_RESULT_BAD_DATA;
	else if (request->data.len == 0 || request->data.len > particle->ota_size - particle->ota_data->len)
		result = HEALER_PARTICLE_RESULT_OUT_OF_RANGE;
	else
		g_byte_array_append(particle->ota_data, request->data.data, (guint)request->data.len);
	if (request != NULL)
		healer__particle__firmware_update_data_request__free_unpacked(request, NULL);
	/* Any error in DATA cancels the whole update on the device. */
	if (result != HEALER_PARTICLE_RESULT_OK)
		ota_cancel(particle);
	return result;
}

static int32_t
ota_finish(UsbemuRequest *r)
{
	UsbemuDevice *device = r->device;
	UsbemuParticle *particle = device->particle;
	Healer__Particle__FinishFirmwareUpdateRequest *request;
	g_autoptr(GBytes) module = NULL;
	g_autofree char *why = NULL;
	bool validate_only;
	int32_t result;

	if (particle->protected_device)
		return HEALER_PARTICLE_RESULT_PROTECTED;
	request = healer__particle__finish_firmware_update_request__unpack(NULL, r->payload->len, r->payload->data);
	if (request == NULL)
		return HEALER_PARTICLE_RESULT_BAD_DATA;
	validate_only = request->validate_only;
	healer__particle__finish_firmware_update_request__free_unpacked(request, NULL);
	if (!particle->ota_active || particle->ota_data->len != particle->ota_size)
		return HEALER_PARTICLE_RESULT_INVALID_STATE;
	module = g_bytes_new(particle->ota_data->data, particle->ota_data->len);
	ota_cancel(particle);
	result = usbemu_flash_validate(device, module, &why);
	usbemu_trace("%s particle update %s: %s", device->label, validate_only ? "validated" : "finished",
	             result == 0 ? "valid" : why);
	if (result != HEALER_PARTICLE_RESULT_OK || validate_only)
		return result;
	g_clear_pointer(&particle->pending_update, g_bytes_unref);
	particle->pending_update = g_steal_pointer(&module);
	reset_later(r, USBEMU_MODE_NORMAL);
	return HEALER_PARTICLE_RESULT_OK;
}

void
usbemu_particle_handle(UsbemuRequest *r)
{
	UsbemuDevice *device = r->device;
	UsbemuParticle *particle = device->particle;

	r->result = HEALER_PARTICLE_RESULT_OK;
	switch (r->type) {
	case HEALER_PARTICLE_REQUEST_GET_DEVICE_ID: {
		Healer__Particle__DeviceIdReply reply = HEALER__PARTICLE__DEVICE_ID_REPLY__INIT;
		reply.id = device->serial;
		r->reply = healer_particle_message_pack(&reply.base);
		break;
	}
	case HEALER_PARTICLE_REQUEST_GET_SYSTEM_VERSION: {
		Healer__Particle__SystemVersionReply reply = HEALER__PARTICLE__SYSTEM_VERSION_REPLY__INIT;
		g_autofree char *version = usbemu_flash_system_version(device);
		if (version == NULL) {
			r->result = HEALER_PARTICLE_RESULT_NOT_FOUND;
			break;
		}
		reply.version = version;
		r->reply = healer_particle_message_pack(&reply.base);
		break;
	}
	case HEALER_PARTICLE_REQUEST_RESET:
	case HEALER_PARTICLE_REQUEST_SAFE_MODE:
		reset_later(r, USBEMU_MODE_NORMAL);
		break;
	case HEALER_PARTICLE_REQUEST_DFU_MODE:
		reset_later(r, USBEMU_MODE_DFU);
		break;
	case HEALER_PARTICLE_REQUEST_GET_DEVICE_MODE: {
		Healer__Particle__DeviceModeReply reply = HEALER__PARTICLE__DEVICE_MODE_REPLY__INIT;
		reply.mode = 0; /* normal: safe mode is not reported, listening mode is not emulated */
		r->reply = healer_particle_message_pack(&reply.base);
		break;
	}
	case HEALER_PARTICLE_REQUEST_GET_PROTECTED_STATE: {
		Healer__Particle__ProtectedStateReply reply = HEALER__PARTICLE__PROTECTED_STATE_REPLY__INIT;
		reply.state = particle->protected_device;
		r->reply = healer_particle_message_pack(&reply.base);
		break;
	}
	case HEALER_PARTICLE_REQUEST_GET_MODULE_INFO:
		r->reply = usbemu_flash_module_info(device, particle->module_info_format);
		break;
	case HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE:
		r->result = ota_start(r);
		break;
	case HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA:
		r->result = ota_data(r);
		break;
	case HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE:
		r->result = ota_finish(r);
		break;
	case HEALER_PARTICLE_REQUEST_CANCEL_FIRMWARE_UPDATE:
		ota_cancel(particle);
		break;
	default:
		r->result = HEALER_PARTICLE_RESULT_NOT_SUPPORTED;
		break;
	}
}

/* The size START asks for, for the erase time; 0 if the payload does not say. */
static uint32_t
start_size(const UsbemuRequest *r)
{
	Healer__Particle__StartFirmwareUpdateRequest *request =
	        healer__particle__start_firmware_update_request__unpack(NULL, r->payload->len, r->payload->data);
	uint32_t size = request != NULL ? request->size : 0;

	if (request != NULL)
		healer__particle__start_firmware_update_request__free_unpacked(request, NULL);
	return size;
}

static unsigned
per_kib(unsigned us_per_kib, uint64_t bytes)
{
	return (unsigned)MIN((uint64_t)us_per_kib * bytes / 1024, G_MAXUINT);
}

unsigned
usbemu_particle_handler_time(const UsbemuRequest *r)
{
	const UsbemuParticle *particle = r->device->particle;
	const UsbemuParticleTiming *t = &particle->timing;

	switch (r->type) {
	case HEALER_PARTICLE_REQUEST_GET_MODULE_INFO:
		return t->module_info_us;
	case HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE:
		if (particle->protected_device || particle->updates_disabled)
			return t->request_us;
		return t->request_us + per_kib(t->erase_us_per_kib, MIN(start_size(r), r->device->model->ota_max_size));
	case HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA:
		return t->request_us + per_kib(t->write_us_per_kib, r->payload->len);
	case HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE:
		return t->request_us + per_kib(t->validate_us_per_kib, particle->ota_size);
	default:
		return t->request_us;
	}
}
