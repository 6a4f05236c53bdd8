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
	char *const *argv;         /* to re-execute on reset */
} sim_config_t;

/* Opens (or, on a reset, takes over) flash and serial.  Exits with a message on failure. */
void sim_hal_start(const sim_config_t *config, bool after_reset);
/* For factory programming a new device. */
int sim_flash_create(const char *path);

#endif
