/*
 * The simulated board: an STM32F205-like 1 MiB flash map (the Photon's
 * layout and sector sizes), so the simulator exercises the same erase and
 * copy sizes a real port will.  Platform 3 ("gcc"), the id Device OS gives
 * its host build, keeps real platform ids meaning what they mean.
 */
#include "hal.h"
#include "healer/module-format.h"
#include "sim.h"

static const hal_board_t board = {
        .platform_id = SIM_PLATFORM_ID,
        .flash_start = 0x08000000u,
        .flash_size = 0x00100000u,
        .sectors =
                {
                        {0x08000000u, 0x4000u},
                        {0x08004000u, 0x4000u},
                        {0x08008000u, 0x4000u},
                        {0x0800C000u, 0x4000u},
                        {0x08010000u, 0x10000u},
                        {0x08020000u, 0x20000u},
                        {0x08040000u, 0x20000u},
                        {0x08060000u, 0x20000u},
                        {0x08080000u, 0x20000u},
                        {0x080A0000u, 0x20000u},
                        {0x080C0000u, 0x20000u},
                        {0x080E0000u, 0x20000u},
                },
        .n_sectors = 12,
        .slots =
                {
                        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08000000u, 0x4000u},
                        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000u, 0x40000u},
                        {MODULE_FUNCTION_SYSTEM_PART, 2, 0x08060000u, 0x40000u},
                        {MODULE_FUNCTION_USER_PART, 1, 0x080A0000u, 0x20000u},
                },
        .n_slots = 4,
        .info_start = 0x08004000u,
        .records_start = 0x08008000u,
        .records_size = 0x4000u,
        .staging_start = 0x080C0000u,
        .staging_size = 0x40000u,
        .max_data = 1024,
        .window = 8,
};

const hal_board_t *
hal_board(void)
{
	return &board;
}
