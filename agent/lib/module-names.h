/*
 * Names for the numbers a module header carries: platforms, functions,
 * stores and flags.  One table each, so the CLI, the describe parser and the
 * JSON output agree on every spelling.
 */
#pragma once

#include <glib.h>

#include "healer/module-format.h"

G_BEGIN_DECLS

/* Device generation of a platform id; 0 when the platform is unknown. */
typedef struct {
	guint16 id;
	const char *name;
	guint generation;
} HealerPlatform;

const HealerPlatform *healer_platform_lookup(guint16 id);
const HealerPlatform *healer_platform_lookup_name(const char *name);

/* "bootloader", "system-part", ...; NULL for values outside the enum. */
const char *healer_module_function_to_string(guint function);
/* Parses a name from the list above (or its describe character); -1 if unknown. */
int healer_module_function_from_string(const char *name);
/* The one-character code a describe uses ("b", "s", "u", ...). */
const char *healer_module_function_to_describe_char(guint function);

const char *healer_module_store_to_string(guint store);

/* "COMPRESSED|COMBINED", "none", or with unknown bits as "0x40". */
char *healer_module_flags_to_string(guint flags);

const char *healer_module_extension_type_to_string(guint type);

G_END_DECLS
