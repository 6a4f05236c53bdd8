/*
 * The system's dynalib: numbered entry points applications call.  The
 * table an application sees holds only the entries the installed system
 * part exports; calling one it lacks is a fault, exactly what a device
 * would hit running an application built against a newer release.
 */
#ifndef HEALER_FW_DYNALIB_H
#define HEALER_FW_DYNALIB_H

#include <stdint.h>

#include "healer/firmware-image.h"

typedef struct {
	void (*log)(const char *text);
	uint32_t (*millis)(void);
	void (*device_id)(uint8_t out[12]);
	const char *(*release)(void);
	void (*publish)(const char *name, const char *data);
	uint32_t (*random)(void);
	uint32_t (*uptime)(void);
	uint8_t (*reset_reason)(void);
	void (*log_value)(const char *name, int32_t value);
	uint32_t (*free_memory)(void);
	uint32_t (*rtc_epoch)(void);
	int32_t (*time_travel)(uint16_t year);
	int32_t (*temperature_millicelsius)(void);
} system_api_t;

typedef struct {
	const system_api_t *api;
	uint16_t exported; /* entries [0, exported) exist */
} dynalib_t;

/* The table as the installed system exports it. */
void dynalib_init(dynalib_t *lib, uint16_t exported, const char *release);

/* Calls entry `entry` of `lib`, or faults if the installed system lacks it. */
#define DYNALIB_CALL(lib, entry, member, ...)                                                                          \
	((lib)->exported > (entry) ? (lib)->api->member(__VA_ARGS__)                                                   \
	                           : (dynalib_missing(entry), (lib)->api->member(__VA_ARGS__)))

__attribute__((noreturn)) void dynalib_missing(unsigned entry);

#endif
