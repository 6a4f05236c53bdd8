/* `healerctl probe usb:...`: the USB devices a selector names (probe-usb.c). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "describe.h"

/*
 * Prints each device `text` (usb:BUS-PORT[.PORT...] or usb:VID:PID) names, or with `json` adds an
 * object for each to `array`.  HEALER_EXIT_OK when one or more were found, HEALER_EXIT_FAILED
 * when none, HEALER_EXIT_USAGE when `text` is no selector (each said on stderr).
 */
int healerctl_probe_usb(const char *text, gboolean json, json_object *array);

/* The module table of a describe, each dependency PASS or FAIL, as probe prints it (cmd-probe.c). */
void healerctl_print_modules(const HealerDescribe *describe);
