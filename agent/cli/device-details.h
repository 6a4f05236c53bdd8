/*
 * What `healerctl device ID` prints of a device beyond its D-Bus properties: its ttys and its
 * family's "details" (GetDevices' object, docs/dbus-api.md).  A Particle device shows its Device OS
 * version, install route, module-info format, USB ids and a table of its modules with the checks
 * each passed and failed and why one failed; a DFU device its USB ids and DFU attributes.
 *
 * Every string came from healerd, and some from the device: each is made printable
 * (healerctl_printable()).  No line is longer than 80 columns: a long cell or failure text wraps.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_BEGIN_DECLS

#define HEALERCTL_DEVICE_DETAILS_COLUMNS 80

/*
 * The lines for `device` (one GetDevices object), each ending in "\n"; "" when it has neither ttys
 * nor details.  `*module_table` (nullable) is set when the lines hold a module table (a Particle
 * device's), so the caller need not print the describe's.
 */
char *healerctl_device_details_format(json_object *device, gboolean *module_table);

G_END_DECLS
