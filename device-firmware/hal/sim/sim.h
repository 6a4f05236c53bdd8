/* The host simulator's own interfaces (not seen by the portable firmware). */
#ifndef HEALER_SIM_H
#define HEALER_SIM_H

#include <stdbool.h>
#include <stdint.h>

#define SIM_PLATFORM_ID       3
#define SIM_DEVICE_INFO_MAGIC 0x44494448u /* "HDID" */

typedef struct {
	const char *state_dir;
	const char *link_path;
	unsigned baud;             /* 0: unpaced */
	unsigned latency_ms;       /* each direction */
	unsigned flash_us_per_kib; /* program and erase time, so power cuts can land mid-write */
	bool safe_mode;            /* requested at power-on */
	bool no_engines;           /* no SHA-256 or CRC-32 engine: the firmware computes them in software */
} sim_config_t;

/* Opens flash and serial.  Exits with a message on failure. */
void sim_hal_start(const sim_config_t *config);
/*
 * Powers the firmware on: calls power_on (its reset handler) with the RAM
 * as it is now, and again, from that same RAM, at every hal_reset().
 */
__attribute__((noreturn)) void sim_run(void (*power_on)(void));
/* For factory programming a new device. */
int sim_flash_create(const char *path);

#endif
