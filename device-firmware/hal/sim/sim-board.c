/*
 * The simulated board: an STM32F205-like 1 MiB flash map (the Photon's
 * layout and sector sizes), so the simulator exercises the same erase and
 * copy sizes a real port will.  Platform 3 ("gcc"), the id Device OS gives
 * its host build, keeps real platform ids meaning what they mean.
 */
#include "hal.h"
#include "healer/link-protocol.h"
#include "healer/module-format.h"
#include "sim.h"

/*
 * The largest DATA payload the protocol allows, so a frame carries 0.7 %
 * framing rather than 1.4 % at 1024.  It costs no RAM in the firmware: its
 * frame decoder and encoder are sized for the protocol's largest frame
 * (LINK_MAX_FRAME, common/link-frame.h) whatever a board says here.  What
 * does scale is the serial receive path, which must hold `window` frames
 * of up to 2,064 encoded bytes: 16.5 KB, 13 % of an STM32F205's 128 KB
 * (the simulator's ring holds 64 KiB).  A board short of RAM lowers
 * window or max_data here; nothing else changes.
 */
#define SIM_MAX_DATA 2044
#define SIM_WINDOW   8
_Static_assert(SIM_MAX_DATA <= LINK_MAX_BODY - LINK_DATA_HEADER_SIZE, "max_data must fit a DATA frame");

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
        .max_data = SIM_MAX_DATA,
        .window = SIM_WINDOW,
};

const hal_board_t *
hal_board(void)
{
	return &board;
}
