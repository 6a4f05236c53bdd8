/*
 * The Particle family: Particle devices running Device OS (2b04:c0xx, an application, safe mode or
 * listening mode), through their USB control requests (particle-client.h).  docs/usb.md,
 * "Particle family", and docs/particle.md tell the whole story.
 *
 * At attach: the id is the USB serial number (as the DFU family makes it, so the device keeps its
 * id across modes), the platform comes from the product id, the Device OS version from the raw
 * 0x50/30 request the client's open sends; then GET_MODULE_INFO (both formats) and
 * GET_DEVICE_MODE, and the device is identified: no fixed wait anywhere.  Safe mode shows only in
 * the modules' checks: a main-store module that failed one.
 *
 * An install sends one module over control requests (START with its size, DATA in the chunk
 * size the device answers, FINISH) and completes "staged": the device resets and comes back as
 * another USB device, which the engine waits for by id.  Over DFU (the [particle] install route
 * for the platform, or a device that cannot take it over control requests) it asks the device
 * to reboot into its DFU bootloader (DFU_MODE) and completes with a mode switch
 * (healer_device_mode_switch_new()): the DFU family installs the step when the device is back.
 * A bootloader always goes over control requests (DFU cannot write it).
 */
#pragma once

#include <json-c/json.h>

#include "device.h"
#include "usb-match.h"

G_BEGIN_DECLS

#define HEALER_TYPE_PARTICLE_DEVICE (healer_particle_device_get_type())
G_DECLARE_FINAL_TYPE(HealerParticleDevice, healer_particle_device, HEALER, PARTICLE_DEVICE, HealerDevice)

/* How a module is sent to a Particle device running Device OS. */
typedef enum {
	HEALER_PARTICLE_INSTALL_CONTROL, /* control requests: START, DATA, FINISH (the default) */
	HEALER_PARTICLE_INSTALL_DFU,     /* DFU_MODE, then the DFU family writes it */
} HealerParticleInstallRoute;

/* "control", "dfu" <-> the route; FALSE for another word. */
gboolean healer_particle_install_route_from_string(const char *text, HealerParticleInstallRoute *route);
const char *healer_particle_install_route_to_string(HealerParticleInstallRoute route);

/*
 * The route for devices of `platform_id` from now on (0: every platform without one of its own):
 * healerd's [particle] install and install.PLATFORM keys.  Process-wide, set before devices come.
 */
void healer_particle_device_set_install_route(guint16 platform_id, HealerParticleInstallRoute route);
HealerParticleInstallRoute healer_particle_device_get_install_route(guint16 platform_id);

/* The match table's constructor (usb-match.h): opens the device (no interface is claimed) and starts reading. */
HealerDevice *healer_particle_device_new_usb(const HealerUsbCandidate *candidate, GError **error);

/* Whether it has read its module info (at attach, and again at each refresh). */
gboolean healer_particle_device_is_ready(HealerParticleDevice *self);
/* Why reading it failed, or NULL. */
const GError *healer_particle_device_get_error(HealerParticleDevice *self);

/*
 * What `healerctl device` shows beyond the state: the USB ids, platform name, Device OS version,
 * mode ("normal", "safe", "listening"), the module info's format and each main-store module
 * with its function, index, version, size and checks (checked, passed, failed, and why).
 * New reference.
 */
json_object *healer_particle_device_to_json(HealerParticleDevice *self);

G_END_DECLS
