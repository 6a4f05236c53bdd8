/*
 * A Particle device running Device OS (normal mode, safe mode): what usbemu answers to its vendor
 * control requests.  Three parts, one purpose each:
 *
 * - particle-channel.c: the service-request protocol (INIT/CHECK/SEND/RECV/RESET, the raw 0x50
 *   requests), as Device OS' usb_control_request_channel carries it out: ids from 1, at most 4
 *   active, a buffer allocated later for payloads over 64 bytes, CHECK PENDING while a handler
 *   runs.  A handler's time is modelled: it runs on a timer on usbemu's main loop.
 * - particle-requests.c: the request handlers (module info, OTA, reset, DFU mode, ...).
 * - particle-flash.c: what the flash holds, read as Device OS reads it: module info computed from
 *   the module headers in the platform's slots, an update validated and copied into place.
 *
 * The flash is the DFU model's internal flash (memories[0]): a Particle device's flash IS what its
 * bootloader serves in DFU mode.  Everything runs with usbemu.lock held.
 */
#pragma once

#include "particle-control.h"
#include "particle-module-info.h"
#include "usbemu.h"

/* Modelled handler times (docs/testing.md, "usbemu": where they come from). */
typedef struct {
	double scale;                 /* every modelled time is multiplied by this (--time-scale) */
	unsigned alloc_us;            /* allocating the buffer of a payload over 64 bytes */
	unsigned request_us;          /* a request with nothing to do but answer (20, 30, 72, ...) */
	unsigned module_info_us;      /* GET_MODULE_INFO: reading the headers, checking the modules */
	unsigned erase_us_per_kib;    /* START: erasing the staging area, per KiB of the module */
	unsigned write_us_per_kib;    /* DATA: programming flash, per KiB */
	unsigned validate_us_per_kib; /* FINISH: checking the module's CRC and SHA-256, per KiB */
	unsigned reset_ms;            /* from a reply to the reset it announced (40, 50, 60, FINISH) */
} UsbemuParticleTiming;

typedef enum {
	USBEMU_REQUEST_ALLOCATING, /* INIT answered PENDING: the payload buffer is not ready */
	USBEMU_REQUEST_RECEIVING,  /* the host SENDs the payload */
	USBEMU_REQUEST_RUNNING,    /* the handler runs (a timer): CHECK answers PENDING */
	USBEMU_REQUEST_DONE,       /* CHECK answers OK with the result; RECV reads the reply */
} UsbemuRequestState;

typedef struct {
	UsbemuDevice *device;
	uint16_t id;
	uint16_t type;
	UsbemuRequestState state;
	uint32_t size;       /* the payload size INIT declared */
	GByteArray *payload; /* what SEND brought so far */
	int32_t result;
	GBytes *reply;
	uint32_t reply_offset;
	GSource *timer; /* allocation or handler, while one is due */
	/*
	 * The reset its handler announced (40, 50, 60, FINISH), into `reset_mode`: it is scheduled once the
	 * host has the reply (the CHECK with the result, or the last RECV), as Device OS runs it from the
	 * request's completion handler; a request cancelled first never resets the device.
	 */
	bool reset_after_reply;
	int reset_mode; /* UsbemuMode */
} UsbemuRequest;

struct UsbemuParticle {
	HealerParticleModuleInfoFormat module_info_format;
	bool protected_device; /* Device Protection: OTA answers -1801, DFU segments read "b" */
	bool updates_disabled; /* System.disableUpdates(): START answers -1380 */
	UsbemuParticleTiming timing;

	GList *requests; /* UsbemuRequest, oldest first */
	uint16_t next_id;

	/* The OTA transfer START opened (in the staging area: lost with a reset before FINISH). */
	bool ota_active;
	uint32_t ota_size;
	GByteArray *ota_data;
	/* A validated module FINISH left for the bootloader to copy into place at the next reset. */
	GBytes *pending_update;
};

/* particle-channel.c */
UsbemuParticle *usbemu_particle_new(void);
void usbemu_particle_free(UsbemuParticle *particle);
/* A vendor request in normal mode: bytes of the data stage, -EPIPE (stall), or USBEMU_CONTROL_HANG. */
int usbemu_particle_control(UsbemuDevice *device, uint8_t request_type, uint8_t request, uint16_t value, uint16_t index,
                            uint16_t length, uint8_t *data);
/* The device resets: every request goes, an OTA in progress is lost, a validated update is copied. */
void usbemu_particle_reset(UsbemuDevice *device);
/* Schedules `delay_us` (scaled) from now: `func` runs on the main loop, with the lock held. */
GSource *usbemu_particle_timer(UsbemuDevice *device, unsigned delay_us, GSourceFunc func, gpointer data);
unsigned usbemu_particle_scaled_ms(const UsbemuDevice *device, unsigned ms);

/* particle-requests.c: runs request `r`'s handler (its time has passed): sets result and reply. */
void usbemu_particle_handle(UsbemuRequest *r);
/* How long request `r`'s handler takes, in µs (unscaled). */
unsigned usbemu_particle_handler_time(const UsbemuRequest *r);

/* particle-flash.c */
GPtrArray *usbemu_flash_modules(UsbemuDevice *device); /* HealerParticleModule*, with its free func */
GBytes *usbemu_flash_module_info(UsbemuDevice *device, HealerParticleModuleInfoFormat format);
/* Device OS' system version string from system part 1's module version ("2.2.0"); NULL if none. */
char *usbemu_flash_system_version(UsbemuDevice *device);
/* What FINISH says of a module: 0, or the OTA result that refuses it (-1330, -1340, -1360, ...). */
int32_t usbemu_flash_validate(UsbemuDevice *device, GBytes *module, char **why);
/* The bootloader copies a validated module to its start address. */
void usbemu_flash_install(UsbemuDevice *device, GBytes *module);
/* --modules: writes a file's module at its header's start address; FALSE with a reason. */
bool usbemu_flash_write_file(UsbemuDevice *device, const char *path, GError **error);
