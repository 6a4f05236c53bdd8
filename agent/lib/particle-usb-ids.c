#include "particle-usb-ids.h"

/* ---- identities ------------------------------------------------------------------------------- */

/*
 * Particle platforms with USB ids (@particle/device-constants): normal 0xC000 | id, DFU 0xD000 | id.
 * Tachyon (42) is left out: a Linux board that answers no control requests, nothing to heal.
 */
static const struct {
	guint16 platform_id;
	guint quirks;
} particle_platforms[] = {
        {6, 0},
        {8, 0},
        {10, 0},
        {12, 0},
        {13, 0},
        {14, 0},
        {15, 0},
        {22, 0},
        {23, 0},
        {24, 0},
        {25, 0},
        {26, 0},
        {28, HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA},
        {32, HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA},
        {35, HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA},
        {37, 0},
        {38, HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA},
};

#define PARTICLE_NORMAL_BASE 0xC000
#define PARTICLE_DFU_BASE    0xD000
#define SPARK_CORE_NORMAL    0x607D
#define SPARK_CORE_DFU       0x607F
#define SPARK_CORE_PLATFORM  0

const char *
healer_usb_mode_to_string(HealerUsbMode mode)
{
	switch (mode) {
	case HEALER_USB_MODE_NORMAL:
		return "normal";
	case HEALER_USB_MODE_DFU:
		return "dfu";
	case HEALER_USB_MODE_ROM_DFU:
		return "rom-dfu";
	}
	return NULL;
}

guint16
healer_usb_particle_product_id(guint16 platform_id, HealerUsbMode mode)
{
	if (platform_id == SPARK_CORE_PLATFORM)
		return mode == HEALER_USB_MODE_NORMAL ? SPARK_CORE_NORMAL
		       : mode == HEALER_USB_MODE_DFU  ? SPARK_CORE_DFU
		                                      : 0;
	for (gsize i = 0; i < G_N_ELEMENTS(particle_platforms); i++) {
		if (particle_platforms[i].platform_id != platform_id)
			continue;
		if (mode == HEALER_USB_MODE_NORMAL)
			return PARTICLE_NORMAL_BASE | platform_id;
		if (mode == HEALER_USB_MODE_DFU)
			return PARTICLE_DFU_BASE | platform_id;
	}
	return 0;
}

gboolean
healer_usb_identify(guint16 vendor_id, guint16 product_id, HealerUsbIdentity *out)
{
	HealerUsbIdentity id = {.vendor_id = vendor_id, .product_id = product_id};

	if (vendor_id == HEALER_USB_VENDOR_ST && product_id == HEALER_USB_PRODUCT_ST_DFU) {
		id.mode = HEALER_USB_MODE_ROM_DFU;
	} else if (vendor_id == HEALER_USB_VENDOR_SPARK &&
	           (product_id == SPARK_CORE_NORMAL || product_id == SPARK_CORE_DFU)) {
		id.mode = product_id == SPARK_CORE_DFU ? HEALER_USB_MODE_DFU : HEALER_USB_MODE_NORMAL;
		id.platform = healer_platform_lookup(SPARK_CORE_PLATFORM);
	} else if (vendor_id == HEALER_USB_VENDOR_PARTICLE) {
		guint16 base = product_id & 0xFF00;

		if (base != PARTICLE_NORMAL_BASE && base != PARTICLE_DFU_BASE)
			return FALSE;
		for (gsize i = 0; i < G_N_ELEMENTS(particle_platforms) && id.platform == NULL; i++) {
			if (particle_platforms[i].platform_id == (product_id & 0x00FF)) {
				id.platform = healer_platform_lookup(particle_platforms[i].platform_id);
				id.quirks = particle_platforms[i].quirks;
			}
		}
		if (id.platform == NULL)
			return FALSE;
		id.mode = base == PARTICLE_DFU_BASE ? HEALER_USB_MODE_DFU : HEALER_USB_MODE_NORMAL;
	} else {
		return FALSE;
	}
	*out = id;
	return TRUE;
}

/* ---- module slots ----------------------------------------------------------------------------- */

#define KIB(n) ((guint32)(n)*1024u)

/* Photon, P1 (Device OS 2.3.1 hal/src/photon/ota_module_bounds.c). */
static const HealerParticleSlot photon_slots[] = {
        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08000000, KIB(16), 0, HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU},
        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000, KIB(256), 0, 0},
        {MODULE_FUNCTION_SYSTEM_PART, 2, 0x08060000, KIB(256), 0, 0},
        {MODULE_FUNCTION_USER_PART, 1, 0x080A0000, KIB(128), 0, 0},
};

/* Electron since 0.6.0: three system parts of 128 KiB (hal/src/electron/ota_module_bounds.c). */
static const HealerParticleSlot electron_slots[] = {
        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08000000, KIB(16), 0, HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU},
        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000, KIB(128), 0, 0},
        {MODULE_FUNCTION_SYSTEM_PART, 2, 0x08040000, KIB(128), 0, 0},
        {MODULE_FUNCTION_SYSTEM_PART, 3, 0x08060000, KIB(128), 0, 0},
        {MODULE_FUNCTION_USER_PART, 1, 0x08080000, KIB(128), 0, 0},
};

/*
 * nRF52840 (hal/src/nRF52840/ota_module_bounds.c).  System part 1 starts at 0x30000 up to
 * Device OS 6.1.1 and at 0x28000 from 6.1.2; its size is the most each start has allowed.
 * The user part has a 256 KiB slot (index 2, Device OS >= 3.1) and the older 128 KiB one
 * (index 1), which wins when both are valid.  The bootloader reaches into the last 8 pages,
 * which the DFU layout marks 'a'.
 */
static const HealerParticleSlot nrf52840_slots[] = {
        {MODULE_FUNCTION_RADIO_STACK, 0, 0x00001000, 0x2F000, 0, HEALER_PARTICLE_SLOT_NO_HEADER},
        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x00028000, 0xB4000 - 0x28000, 0, HEALER_PARTICLE_SLOT_ALTERNATIVE},
        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x00030000, 0xD4000 - 0x30000, 0, HEALER_PARTICLE_SLOT_ALTERNATIVE},
        {MODULE_FUNCTION_USER_PART, 2, 0x000B4000, KIB(256), 0, 0},
        {MODULE_FUNCTION_USER_PART, 1, 0x000D4000, KIB(128), 0, 0},
        {MODULE_FUNCTION_BOOTLOADER, 0, 0x000F4000, KIB(48), 0, HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU},
};

/* RTL872x (hal/src/rtl872x/ota_module_bounds.c): three bootloader modules, one system part. */
static const HealerParticleSlot rtl872x_slots[] = {
        {MODULE_FUNCTION_BOOTLOADER, 1, 0x08000000, 0x2000, 0, HEALER_PARTICLE_SLOT_ENCRYPTED},
        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08004000, 0x08014000 - 0x08004000, 0, 0},
        {MODULE_FUNCTION_BOOTLOADER, 2, 0x08014000, 0x0805E000 - 0x08014000, 0, 0},
        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08060000, 0x081E0000 - 0x08060000, 0, 0},
        {MODULE_FUNCTION_USER_PART, 1, 0x08480000, 0x08600000 - 0x08480000, 0, HEALER_PARTICLE_SLOT_FIXED_END},
};

const HealerParticleSlot *
healer_particle_slots(guint16 platform_id, gsize *n_slots)
{
	const HealerPlatform *platform = healer_platform_lookup(platform_id);

	*n_slots = 0;
	/* Only the platforms with USB ids: module-names.c also knows the simulator and the Bluz. */
	if (platform == NULL || healer_usb_particle_product_id(platform_id, HEALER_USB_MODE_DFU) == 0)
		return NULL;
	switch (platform_id) {
	case 6:
	case 8:
		*n_slots = G_N_ELEMENTS(photon_slots);
		return photon_slots;
	case 10:
		*n_slots = G_N_ELEMENTS(electron_slots);
		return electron_slots;
	default:
		break;
	}
	if (platform->generation == 3) {
		*n_slots = G_N_ELEMENTS(nrf52840_slots);
		return nrf52840_slots;
	}
	if (platform->generation == 4) {
		*n_slots = G_N_ELEMENTS(rtl872x_slots);
		return rtl872x_slots;
	}
	return NULL;
}
