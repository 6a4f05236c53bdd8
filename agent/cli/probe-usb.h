/* `healerctl probe usb:...`: the USB devices a selector names (probe-usb.c). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

/*
 * Prints each device `text` (usb:BUS-PORT[.PORT...] or usb:VID:PID) names, or with `json` adds an
 * object for each to `array`.  HEALER_EXIT_OK when one or more were found, HEALER_EXIT_FAILED
 * when none, HEALER_EXIT_USAGE when `text` is no selector (each said on stderr).
 */
int healerctl_probe_usb(const char *text, gboolean json, json_object *array);
