/*
 * The describe: what this device holds, as JSON in the shape Particle
 * devices send, so a safe-mode report reads like a real one:
 *   {"p":3,"m":[{"s":16384,"l":"m","vc":30,"vv":30,"f":"b","n":"0","v":201,"d":[]}, ...]}
 */
#ifndef HEALER_FW_DESCRIBE_H
#define HEALER_FW_DESCRIBE_H

#include <stddef.h>

#include "module-check.h"

/* Returns the length written (not NUL-counted), or 0 if it does not fit. */
size_t describe_build(const module_report_t reports[HAL_MAX_SLOTS], char *out, size_t size);

#endif
