#ifndef HEALER_FW_SYSTEM_H
#define HEALER_FW_SYSTEM_H

/* Boots and runs the device; never returns (resets go through the HAL). */
__attribute__((noreturn)) void system_main(void);

#endif
