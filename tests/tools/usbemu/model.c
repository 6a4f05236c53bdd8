/*
 * The devices usbemu can be: their identities, memory layouts and quirks in DFU mode, each from
 * the public source named in `source` (docs/testing.md has the table and
 * /work/shared/reference/particle-usb.md the Particle facts).
 *
 * Strings are as the devices send them, spaces included: a DFU client shows them and parses the
 * layouts, and the Particle bootloaders pad the memory name with three spaces.
 */
#include <string.h>

#include "usbemu.h"

#define PARTICLE_VENDOR_ID 0x2b04
/* GET_COMMANDS of the Gen 3 and Gen 4 bootloaders: Particle's own two after ST's. */
#define PARTICLE_GEN3_COMMANDS                                                                                         \
	.commands = {DFUSE_GET_COMMANDS, DFUSE_SET_ADDRESS, DFUSE_ERASE, DFUSE_ENTER_SAFE_MODE,                        \
	             DFUSE_CLEAR_SECURITY_OVERRIDE},                                                                   \
	.n_commands = 5

/*
 * The OTA staging areas (Device OS ota_module_bounds.c: Photon/P1 256 KiB and Electron 128 KiB in
 * internal flash, Gen 4 1.5 MiB).  Gen 3 stages in external flash; its size here is an assumption,
 * as large as Gen 4's.
 */
#define GEN3_OTA_MAX_SIZE (1536 * 1024)
#define GEN4_OTA_MAX_SIZE (1536 * 1024)

/*
 * The platforms that share another's bootloader and flash: the P1 and Electron the Photon's
 * (STM32F205), the Boron and B SoM the Argon's (nRF52840), the M SoM the P2's (RTL872x); ids from
 * @particle/device-constants.  Their product strings follow the pattern of the ones read from
 * Device OS (an assumption: "<name> DFU Mode", "<name>").
 */
#define PARTICLE_GEN2(name_, description_, dfu_pid, dfu_product_, normal_pid, normal_product_, platform, ota)          \
	{                                                                                                              \
		.name = name_, .description = description_,                                                            \
		.source = "as particle-photon; ids from @particle/device-constants 4.2.1",                             \
		.vendor_id = PARTICLE_VENDOR_ID, .dfu_product_id = dfu_pid, .bcd_device = 0x0250,                      \
		.manufacturer = "Particle", .dfu_product = dfu_product_, .configuration_string = 2,                    \
		.first_interface_string = 6, .serial_length = 24, .transfer_size = 4096, .dfu_attributes = 0x0b,       \
		.layouts = {"@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg",                       \
		            "@DCT Flash   /0x00000000/01*016Kg"},                                                      \
		.commands = {DFUSE_GET_COMMANDS, DFUSE_SET_ADDRESS, DFUSE_ERASE}, .n_commands = 3,                     \
		.manifest_reports_dnload_idle = true, .reset_delay_ms = 500,                                           \
		.normal_layout = USBEMU_NORMAL_CDC_CONTROL, .normal_product_id = normal_pid,                           \
		.normal_bcd_device = 0x0250, .normal_product = normal_product_, .platform_id = platform,               \
		.ota_max_size = ota,                                                                                   \
	}
#define PARTICLE_GEN3(name_, description_, dfu_pid, dfu_product_, normal_pid, normal_product_, platform)               \
	{                                                                                                              \
		.name = name_, .description = description_,                                                            \
		.source = "as particle-argon; ids from @particle/device-constants 4.2.1",                              \
		.vendor_id = PARTICLE_VENDOR_ID, .dfu_product_id = dfu_pid, .bcd_device = 0x0251,                      \
		.manufacturer = "Particle", .dfu_product = dfu_product_, .configuration_string = 4,                    \
		.configuration_name = dfu_product_, .first_interface_string = 6, .serial_length = 24,                  \
		.transfer_size = 4096, .dfu_attributes = 0x0b,                                                         \
		.layouts = {"@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka",        \
		            "@DCT Flash   /0x00000000/1*016Ke", "@External Flash   /0x80000000/1024*004Kg"},           \
		PARTICLE_GEN3_COMMANDS, .reset_delay_ms = 500, .device_state_string = "sm=o",                          \
		.normal_layout = USBEMU_NORMAL_CDC_CONTROL, .normal_product_id = normal_pid,                           \
		.normal_bcd_device = 0x0251, .normal_product = normal_product_, .platform_id = platform,               \
		.ota_max_size = GEN3_OTA_MAX_SIZE,                                                                     \
	}
#define PARTICLE_GEN4(name_, description_, dfu_pid, dfu_product_, normal_pid, normal_product_, platform)               \
	{                                                                                                              \
		.name = name_, .description = description_,                                                            \
		.source = "as particle-p2; ids and quirk from @particle/device-constants 4.2.1",                       \
		.vendor_id = PARTICLE_VENDOR_ID, .dfu_product_id = dfu_pid, .bcd_device = 0x0252,                      \
		.manufacturer = "Particle", .dfu_product = dfu_product_, .configuration_string = 4,                    \
		.configuration_name = dfu_product_, .first_interface_string = 6, .serial_length = 24,                  \
		.transfer_size = 4096, .dfu_attributes = 0x0b,                                                         \
		.layouts = {"@Internal Flash   /0x08000000/2048*004Kg", "@DCT Flash   /0x00000000/1*016Ke"},           \
		PARTICLE_GEN3_COMMANDS, .reset_delay_ms = 500, .device_state_string = "sm=o",                          \
		.normal_layout = USBEMU_NORMAL_CONTROL_ONLY, .normal_product_id = normal_pid,                          \
		.normal_bcd_device = 0x0251, .normal_product = normal_product_, .platform_id = platform,               \
		.out_hangs_without_data = true, .ota_max_size = GEN4_OTA_MAX_SIZE,                                     \
	}

static const UsbemuModel models[] = {
        {
                .name = "stm32f2",
                .description = "STM32F2 system-memory (ROM) bootloader, DfuSe, 1 MiB flash",
                .source = "ST AN2606/AN3156/UM0424; the STM32F2/F4 ROM bootloader as dfu-util lists it",
                .vendor_id = 0x0483,
                .dfu_product_id = 0xdf11,
                .bcd_device = 0x2200,
                .manufacturer = "STMicroelectronics",
                .dfu_product = "STM32  BOOTLOADER",
                .first_interface_string = 4,
                .serial_length = 12,
                .serial_upper_case = true,
                .transfer_size = 2048,
                .dfu_attributes = 0x0b,
                .layouts = {"@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg",
                            "@Option Bytes  /0x1FFFC000/01*016 e", "@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
                            "@Device Feature/0xFFFF0000/01*004 e"},
                .commands = {DFUSE_GET_COMMANDS, DFUSE_SET_ADDRESS, DFUSE_ERASE, DFUSE_READ_UNPROTECT},
                .n_commands = 4,
                .mass_erase = true,
                .read_unprotect = true,
                .reset_delay_ms = 0,
                .normal_layout = USBEMU_NORMAL_NONE,
        },
        {
                .name = "particle-photon",
                .description = "Particle Photon (Gen 2, STM32F205) bootloader in DFU mode",
                .source = "Device OS v2.3.0 bootloader/src/stm32f2xx/usbd_desc.c, platform/MCU/STM32F2xx "
                          "usbd_dfu_core.c, usbd_flash_if.h, usbd_dct_if.h, usbd_conf.h",
                .vendor_id = PARTICLE_VENDOR_ID,
                .dfu_product_id = 0xd006,
                .bcd_device = 0x0250,
                .manufacturer = "Particle",
                .dfu_product = "Photon DFU Mode",
                .configuration_string = 2, /* the product string */
                .first_interface_string = 6,
                .serial_length = 24,
                .transfer_size = 4096,
                .dfu_attributes = 0x0b,
                .layouts = {"@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg",
                            "@DCT Flash   /0x00000000/01*016Kg"},
                .commands = {DFUSE_GET_COMMANDS, DFUSE_SET_ADDRESS, DFUSE_ERASE},
                .n_commands = 3,
                .manifest_reports_dnload_idle = true,
                .reset_delay_ms = 500,
                .normal_layout = USBEMU_NORMAL_CDC_CONTROL,
                .normal_product_id = 0xc006,
                .normal_bcd_device = 0x0250,
                .normal_product = "Photon",
                .platform_id = 6,
                .ota_max_size = 256 * 1024,
        },
        PARTICLE_GEN2("particle-p1", "Particle P1 (Gen 2, STM32F205) bootloader in DFU mode", 0xd008, "P1 DFU Mode",
                      0xc008, "P1", 8, 256 * 1024),
        PARTICLE_GEN2("particle-electron", "Particle Electron (Gen 2, STM32F205) bootloader in DFU mode", 0xd00a,
                      "Electron DFU Mode", 0xc00a, "Electron", 10, 128 * 1024),
        {
                .name = "particle-argon",
                .description = "Particle Argon (Gen 3, nRF52840) bootloader in DFU mode",
                .source = "Device OS 6.2.0 bootloader/src/nRF52840/usbd_device.cpp, usbd_dfu.h, usbd_dfu.cpp, "
                          "usbd_dfu_mal.h",
                .vendor_id = PARTICLE_VENDOR_ID,
                .dfu_product_id = 0xd00c,
                .bcd_device = 0x0251,
                .manufacturer = "Particle",
                .dfu_product = "Argon DFU Mode",
                .configuration_string = 4,
                .configuration_name = "Argon DFU Mode",
                .first_interface_string = 6,
                .serial_length = 24,
                .transfer_size = 4096,
                .dfu_attributes = 0x0b,
                .layouts = {"@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka",
                            "@DCT Flash   /0x00000000/1*016Ke", "@External Flash   /0x80000000/1024*004Kg"},
                PARTICLE_GEN3_COMMANDS,
                .reset_delay_ms = 500,
                .device_state_string = "sm=o",
                .normal_layout = USBEMU_NORMAL_CDC_CONTROL,
                .normal_product_id = 0xc00c,
                .normal_bcd_device = 0x0251,
                .normal_product = "Argon",
                .platform_id = 12,
                .ota_max_size = GEN3_OTA_MAX_SIZE,
        },
        PARTICLE_GEN3("particle-boron", "Particle Boron (Gen 3, nRF52840) bootloader in DFU mode", 0xd00d,
                      "Boron DFU Mode", 0xc00d, "Boron", 13),
        PARTICLE_GEN3("particle-bsom", "Particle B SoM (Gen 3, nRF52840) bootloader in DFU mode", 0xd017,
                      "B SoM DFU Mode", 0xc017, "B SoM", 23),
        {
                .name = "particle-p2",
                /* controlOutTransfersRequireDataStage holds in normal mode only: particle-usb sends the
                 * DFU class requests with no data stage and the bootloader completes them (docs/usb.md). */
                .description = "Particle P2 (Gen 4, RTL872x) bootloader in DFU mode",
                .source = "Device OS 6.2.0 bootloader/src/rtl872x/usb_hal.cpp, usbd_dfu.h, usbd_dfu.cpp, "
                          "usbd_dfu_mal.h; hal/src/tron/hal_platform_config.h",
                .vendor_id = PARTICLE_VENDOR_ID,
                .dfu_product_id = 0xd020,
                .bcd_device = 0x0252,
                .manufacturer = "Particle",
                .dfu_product = "P2 DFU Mode",
                .configuration_string = 4,
                .configuration_name = "P2 DFU Mode",
                .first_interface_string = 6,
                .serial_length = 24,
                .transfer_size = 4096,
                .dfu_attributes = 0x0b,
                .layouts = {"@Internal Flash   /0x08000000/2048*004Kg", "@DCT Flash   /0x00000000/1*016Ke"},
                PARTICLE_GEN3_COMMANDS,
                .reset_delay_ms = 500,
                .device_state_string = "sm=o",
                .normal_layout = USBEMU_NORMAL_CONTROL_ONLY,
                .normal_product_id = 0xc020,
                .normal_bcd_device = 0x0251,
                .normal_product = "P2",
                .platform_id = 32,
                .out_hangs_without_data = true,
                .ota_max_size = GEN4_OTA_MAX_SIZE,
        },
        PARTICLE_GEN4("particle-msom", "Particle M SoM (Gen 4, RTL872x) bootloader in DFU mode", 0xd023,
                      "M SoM DFU Mode", 0xc023, "M SoM", 35),
};

const UsbemuModel *
usbemu_model_find(const char *name)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(models); i++) {
		if (strcmp(models[i].name, name) == 0)
			return &models[i];
	}
	return NULL;
}

const UsbemuModel *
usbemu_model_get(unsigned i)
{
	return i < G_N_ELEMENTS(models) ? &models[i] : NULL;
}
