/*
 * The service-request protocol of a Particle device in normal mode, as Device OS'
 * usb_control_request_channel carries it out (facts: /work/shared/reference/particle-usb.md §2):
 *
 * - INIT (IN, wIndex = type, wValue = payload size) opens a request with the next id (from 1):
 *   size 0 goes to its handler at once (OK + ID), up to 64 bytes has a buffer ready (OK + ID), more
 *   answers PENDING + ID until the buffer is allocated (a timer).  A fifth active request: BUSY.
 * - SEND (OUT) fills the buffer in order, never past the size INIT declared; its last byte starts
 *   the handler.  CHECK answers PENDING while the buffer is allocated or the handler runs, OK once
 *   the buffer is ready, OK + RESULT (+ SIZE) when done, NOT_FOUND for an id it does not have.  A
 *   request without reply bytes goes with that CHECK; RECV reads the reply from where the last
 *   left off, and the request goes with its last byte.
 * - RESET(id) cancels a request, RESET(0) every one; a cancelled handler does not run.
 * - INIT, CHECK and RESET with wLength < 64 stall, as do a request in the wrong direction and a
 *   SEND or RECV that does not fit.
 * - Raw 0x50: IN wIndex 20 the device id, IN 30 the system version, OUT 40 a reset now.
 * - RTL872x (the model's out_hangs_without_data): a vendor OUT request with no data stage never
 *   completes; the host's transfer times out and nothing happens on the device.
 *
 * A handler's time is modelled (particle-requests.c): it runs on a timer on the main loop, never
 * by sleeping in umockdev's ioctl thread.  Called with usbemu.lock held.
 */
#include <string.h>

#include "particle.h"

/* Device OS' defaults; the times are assumptions, docs/testing.md ("usbemu") says why. */
static const UsbemuParticleTiming default_timing = {
        .scale = 1.0,
        .alloc_us = 200,
        .request_us = 500,
        .module_info_us = 5000,
        .erase_us_per_kib = 7800,
        .write_us_per_kib = 4000,
        .validate_us_per_kib = 100,
        .reset_ms = 1000,
};

UsbemuParticle *
usbemu_particle_new(void)
{
	UsbemuParticle *particle = g_new0(UsbemuParticle, 1);

	particle->timing = default_timing;
	particle->next_id = 1;
	return particle;
}

static void
request_free(UsbemuRequest *r)
{
	if (r->timer != NULL) {
		g_source_destroy(r->timer);
		g_source_unref(r->timer);
	}
	if (r->payload != NULL)
		g_byte_array_unref(r->payload);
	if (r->reply != NULL)
		g_bytes_unref(r->reply);
	g_free(r);
}

static void
ota_clear(UsbemuParticle *particle)
{
	particle->ota_active = false;
	particle->ota_size = 0;
	g_clear_pointer(&particle->ota_data, g_byte_array_unref);
}

void
usbemu_particle_free(UsbemuParticle *particle)
{
	if (particle == NULL)
		return;
	g_list_free_full(particle->requests, (GDestroyNotify)request_free);
	ota_clear(particle);
	g_clear_pointer(&particle->pending_update, g_bytes_unref);
	g_free(particle);
}

/* ---- timers ------------------------------------------------------------------------------------ */

static gboolean
timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	(void)source;
	return callback(user_data);
}

static GSourceFuncs timer_funcs = {.dispatch = timer_dispatch};

unsigned
usbemu_particle_scaled_ms(const UsbemuDevice *device, unsigned ms)
{
	return (unsigned)(ms * device->particle->timing.scale + 0.5);
}

GSource *
usbemu_particle_timer(UsbemuDevice *device, unsigned delay_us, GSourceFunc func, gpointer data)
{
	GSource *source = g_source_new(&timer_funcs, sizeof(GSource));
	int64_t delay = (int64_t)(delay_us * device->particle->timing.scale);

	g_source_set_ready_time(source, usbemu_now_us() + delay);
	g_source_set_callback(source, func, data, NULL);
	g_source_set_name(source, "usbemu particle timer");
	g_source_attach(source, NULL);
	return source;
}

/* Runs on the main loop: takes the lock; a timer destroyed meanwhile (the request cancelled) does nothing. */
static bool
timer_enter(void)
{
	g_mutex_lock(&usbemu.lock);
	if (g_source_is_destroyed(g_main_current_source())) {
		g_mutex_unlock(&usbemu.lock);
		return false;
	}
	return true;
}

static void
timer_done(UsbemuRequest *r)
{
	g_source_unref(r->timer);
	r->timer = NULL;
}

/* ---- requests ---------------------------------------------------------------------------------- */

static const char *
request_name(uint16_t type, char buffer[8])
{
	const char *name = healer_particle_request_type_to_string(type);

	if (name != NULL)
		return name;
	g_snprintf(buffer, 8, "%u", type);
	return buffer;
}

static UsbemuRequest *
request_find(UsbemuParticle *particle, uint16_t id)
{
	for (GList *l = particle->requests; l != NULL; l = l->next) {
		UsbemuRequest *r = l->data;
		if (r->id == id)
			return r;
	}
	return NULL;
}

/* The host has the whole reply: the request goes, and the reset it announced is due. */
static void
request_release(UsbemuRequest *r)
{
	UsbemuDevice *device = r->device;
	UsbemuParticle *particle = device->particle;

	if (r->reset_after_reply) {
		UsbemuMode mode = (UsbemuMode)r->reset_mode;
		unsigned ms = usbemu_particle_scaled_ms(device, particle->timing.reset_ms);
		usbemu_trace("%s particle reset in %u ms into %s mode", device->label, ms,
		             mode == USBEMU_MODE_DFU ? "dfu" : "normal");
		usbemu_bus_schedule_reset(device, mode, ms);
	}
	particle->requests = g_list_remove(particle->requests, r);
	request_free(r);
}

static gboolean
on_handler_done(gpointer data)
{
	UsbemuRequest *r = data;
	char name[8];

	if (!timer_enter())
		return G_SOURCE_REMOVE;
	timer_done(r);
	usbemu_particle_handle(r);
	r->state = USBEMU_REQUEST_DONE;
	usbemu_trace("%s particle done id=%u type=%s result=%d reply=%zu", r->device->label, r->id,
	             request_name(r->type, name), r->result, r->reply != NULL ? g_bytes_get_size(r->reply) : 0);
	g_mutex_unlock(&usbemu.lock);
	return G_SOURCE_REMOVE;
}

static void
request_run(UsbemuRequest *r)
{
	r->state = USBEMU_REQUEST_RUNNING;
	r->timer = usbemu_particle_timer(r->device, usbemu_particle_handler_time(r), on_handler_done, r);
}

static gboolean
on_allocated(gpointer data)
{
	UsbemuRequest *r = data;

	if (!timer_enter())
		return G_SOURCE_REMOVE;
	timer_done(r);
	r->state = USBEMU_REQUEST_RECEIVING;
	g_mutex_unlock(&usbemu.lock);
	return G_SOURCE_REMOVE;
}

static uint16_t
take_id(UsbemuParticle *particle)
{
	/* Ids count up from 1; 0 is invalid, and one still in use is skipped after a wrap. */
	for (;;) {
		uint16_t id = particle->next_id++;
		if (particle->next_id == 0)
			particle->next_id = 1;
		if (id != 0 && request_find(particle, id) == NULL)
			return id;
	}
}

static int
reply_out(uint8_t *data, uint16_t length, const HealerParticleReply *reply)
{
	uint8_t bytes[HEALER_PARTICLE_REPLY_MAX_SIZE];
	gsize n = healer_particle_reply_write(reply, bytes);

	n = MIN(n, length);
	memcpy(data, bytes, n);
	return (int)n;
}

static int
service_init(UsbemuDevice *device, uint16_t type, uint16_t size, HealerParticleReply *reply)
{
	UsbemuParticle *particle = device->particle;
	UsbemuRequest *r;

	if (g_list_length(particle->requests) >= HEALER_PARTICLE_MAX_ACTIVE) {
		reply->status = HEALER_PARTICLE_STATUS_BUSY;
		return 0;
	}
	r = g_new0(UsbemuRequest, 1);
	r->device = device;
	r->id = take_id(particle);
	r->type = type;
	r->size = size;
	r->payload = g_byte_array_sized_new(size);
	particle->requests = g_list_append(particle->requests, r);
	reply->fields |= HEALER_PARTICLE_REPLY_FIELD_ID;
	reply->id = r->id;
	reply->status = HEALER_PARTICLE_STATUS_OK;
	if (size == 0) {
		request_run(r);
	} else if (size <= HEALER_PARTICLE_POOLED_PAYLOAD) {
		r->state = USBEMU_REQUEST_RECEIVING;
	} else {
		r->state = USBEMU_REQUEST_ALLOCATING;
		r->timer = usbemu_particle_timer(device, particle->timing.alloc_us, on_allocated, r);
		reply->status = HEALER_PARTICLE_STATUS_PENDING;
	}
	return 0;
}

static void
service_check(UsbemuDevice *device, uint16_t id, HealerParticleReply *reply)
{
	UsbemuRequest *r = request_find(device->particle, id);

	if (r == NULL) {
		reply->status = HEALER_PARTICLE_STATUS_NOT_FOUND;
		return;
	}
	switch (r->state) {
	case USBEMU_REQUEST_ALLOCATING:
	case USBEMU_REQUEST_RUNNING:
		reply->status = HEALER_PARTICLE_STATUS_PENDING;
		break;
	case USBEMU_REQUEST_RECEIVING:
		reply->status = HEALER_PARTICLE_STATUS_OK;
		break;
	case USBEMU_REQUEST_DONE:
		reply->status = HEALER_PARTICLE_STATUS_OK;
		reply->fields |= HEALER_PARTICLE_REPLY_FIELD_RESULT;
		reply->result = r->result;
		if (r->reply != NULL && g_bytes_get_size(r->reply) > 0) {
			reply->fields |= HEALER_PARTICLE_REPLY_FIELD_SIZE;
			reply->size = (guint32)g_bytes_get_size(r->reply);
		} else {
			request_release(r);
		}
		break;
	}
}

static int
service_send(UsbemuDevice *device, uint16_t id, uint16_t length, const uint8_t *data)
{
	UsbemuRequest *r = request_find(device->particle, id);

	if (r == NULL || r->state != USBEMU_REQUEST_RECEIVING || length == 0 || r->payload->len + length > r->size)
		return -EPIPE;
	g_byte_array_append(r->payload, data, length);
	if (r->payload->len == r->size)
		request_run(r);
	return length;
}

static int
service_recv(UsbemuDevice *device, uint16_t id, uint16_t length, uint8_t *data)
{
	UsbemuRequest *r = request_find(device->particle, id);
	gsize size;
	const uint8_t *bytes;

	if (r == NULL || r->state != USBEMU_REQUEST_DONE || r->reply == NULL || length == 0)
		return -EPIPE;
	bytes = g_bytes_get_data(r->reply, &size);
	if (length > size - r->reply_offset)
		return -EPIPE;
	memcpy(data, bytes + r->reply_offset, length);
	r->reply_offset += length;
	if (r->reply_offset == size)
		request_release(r);
	return length;
}

static void
service_reset(UsbemuDevice *device, uint16_t id, HealerParticleReply *reply)
{
	UsbemuParticle *particle = device->particle;
	UsbemuRequest *r;

	reply->status = HEALER_PARTICLE_STATUS_OK;
	if (id == 0) {
		g_list_free_full(g_steal_pointer(&particle->requests), (GDestroyNotify)request_free);
		return;
	}
	r = request_find(particle, id);
	if (r == NULL)
		reply->status = HEALER_PARTICLE_STATUS_NOT_FOUND;
	else
		request_release(r);
}

static int
raw_request(UsbemuDevice *device, bool in, uint16_t index, uint16_t length, uint8_t *data)
{
	g_autofree char *version = NULL;
	const char *text = NULL;
	size_t n;

	if (!in) {
		if (index != HEALER_PARTICLE_RAW_RESET)
			return -EPIPE;
		usbemu_trace("%s particle raw reset", device->label);
		usbemu_bus_schedule_reset(device, USBEMU_MODE_NORMAL, 0);
		return length;
	}
	if (index == HEALER_PARTICLE_RAW_DEVICE_ID)
		text = device->serial;
	else if (index == HEALER_PARTICLE_RAW_SYSTEM_VERSION)
		text = version = usbemu_flash_system_version(device);
	if (text == NULL)
		return -EPIPE;
	n = MIN(strlen(text), length);
	memcpy(data, text, n);
	return (int)n;
}

int
usbemu_particle_control(UsbemuDevice *device, uint8_t request_type, uint8_t request, uint16_t value, uint16_t index,
                        uint16_t length, uint8_t *data)
{
	HealerParticleReply reply = {.fields = HEALER_PARTICLE_REPLY_FIELD_STATUS};
	bool in = (request_type & 0x80) != 0;
	const char *service = healer_particle_service_to_string(request);
	char name[8];
	int r;

	if (!in && length == 0 && device->model->out_hangs_without_data) {
		usbemu_trace("%s particle hang: OUT bRequest=0x%02x wIndex=%u without a data stage", device->label,
		             request, index);
		return USBEMU_CONTROL_HANG;
	}
	if (request == HEALER_PARTICLE_RAW_REQUEST)
		return raw_request(device, in, index, length, data);
	/* The control FIFO's `stall N [REQUEST [SKIP]]`: the request fails, and nothing happens on the device. */
	if (service != NULL && device->stall_armed &&
	    (device->stall_request < 0 || device->stall_request == USBEMU_STALL_PARTICLE + request)) {
		if (device->stall_skip > 0) {
			device->stall_skip--;
		} else {
			device->stall_armed = false;
			usbemu_trace("%s fault stall fired bRequest=%s wIndex=%u", device->label, service, index);
			return -EPIPE;
		}
	}
	if (service == NULL || in != (request != HEALER_PARTICLE_SERVICE_SEND))
		return -EPIPE;
	switch (request) {
	case HEALER_PARTICLE_SERVICE_SEND:
		r = service_send(device, index, length, data);
		usbemu_trace("%s particle SEND id=%u bytes=%u%s", device->label, index, length, r < 0 ? " stall" : "");
		return r;
	case HEALER_PARTICLE_SERVICE_RECV:
		r = service_recv(device, index, length, data);
		usbemu_trace("%s particle RECV id=%u bytes=%u%s", device->label, index, length, r < 0 ? " stall" : "");
		return r;
	default:
		break;
	}
	if (length < HEALER_PARTICLE_MIN_WLENGTH)
		return -EPIPE;
	if (request == HEALER_PARTICLE_SERVICE_INIT)
		service_init(device, index, value, &reply);
	else if (request == HEALER_PARTICLE_SERVICE_CHECK)
		service_check(device, index, &reply);
	else
		service_reset(device, index, &reply);
	if (request == HEALER_PARTICLE_SERVICE_INIT)
		usbemu_trace("%s particle INIT type=%s size=%u status=%s id=%u", device->label,
		             request_name(index, name), value, healer_particle_status_to_string(reply.status),
		             reply.id);
	else if (reply.fields & HEALER_PARTICLE_REPLY_FIELD_RESULT)
		usbemu_trace("%s particle %s id=%u status=%s result=%d size=%u", device->label, service, index,
		             healer_particle_status_to_string(reply.status), reply.result, reply.size);
	else
		usbemu_trace("%s particle %s id=%u status=%s", device->label, service, index,
		             healer_particle_status_to_string(reply.status));
	return reply_out(data, length, &reply);
}

void
usbemu_particle_reset(UsbemuDevice *device)
{
	UsbemuParticle *particle = device->particle;

	if (particle == NULL)
		return;
	g_list_free_full(g_steal_pointer(&particle->requests), (GDestroyNotify)request_free);
	if (particle->ota_active)
		usbemu_trace("%s particle reset: the update in progress (%u of %u bytes) is lost", device->label,
		             particle->ota_data != NULL ? particle->ota_data->len : 0, particle->ota_size);
	ota_clear(particle);
	if (particle->pending_update != NULL) {
		g_autoptr(GBytes) module = g_steal_pointer(&particle->pending_update);
		usbemu_flash_install(device, module);
	}
}
