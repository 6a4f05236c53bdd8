/*
 * Writing firmware modules: stamps a prefix, extensions, suffix, SHA-256
 * and CRC-32 onto a raw image.  The firmware build and the tests make every
 * module through this one writer, so what the reader accepts and what the
 * writer produces cannot drift apart.
 */
#pragma once

#include <glib.h>

#include "healer/module-format.h"

G_BEGIN_DECLS

typedef struct {
	guint16 type;
	GBytes *body; /* without the 4-byte TLV header */
} HealerExtensionSpec;

typedef struct {
	guint32 start_address;
	guint16 platform_id;
	guint8 function;
	guint8 index;
	guint16 version;
	guint8 mcu_target;
	/* DROP_MODULE_INFO, ENCRYPTED, COMBINED; PREFIX_EXTENSIONS and COMPRESSED follow from below. */
	guint8 flags;
	/* Up to two go into the prefix slots; more become DEPENDENCY extensions. */
	guint n_dependencies;
	struct {
		guint8 function;
		guint8 index;
		guint16 version;
		guint32 target;
	} dependencies[8];

	gboolean has_product;
	guint16 product_id;
	guint16 product_version;

	/* Where the prefix goes in the image (0, or after a vector table). */
	gsize prefix_offset;
	/*
	 * TRUE: the image already reserves 24 bytes at prefix_offset (the
	 * firmware links a placeholder prefix there) and they are overwritten.
	 * FALSE: the prefix is inserted at prefix_offset.
	 */
	gboolean in_place;
	/* Compress the payload with raw Deflate and set COMPRESSED. */
	gboolean compress;
	const char *name;          /* NAME prefix extension when set */
	GArray *prefix_extensions; /* HealerExtensionSpec, written after the built-in ones */
	GArray *suffix_extensions; /* HealerExtensionSpec */
} HealerModuleSpec;

/*
 * The whole module: image[0, prefix_offset), prefix and its extensions,
 * [compression header], payload, suffix extensions, suffix base and CRC.
 * end_address is start_address + the module's length - 4.
 */
GBytes *healer_module_write(const HealerModuleSpec *spec, GBytes *image, GError **error);

/*
 * Chains modules into one COMBINED file: every module but the last gets
 * the COMBINED flag and fresh SHA-256 and CRC-32.
 */
GBytes *healer_module_combine(GPtrArray *modules, GError **error);

/* Recomputes SHA-256 and CRC-32 of a module whose header was edited. */
gboolean healer_module_restamp(guint8 *module, gsize len, GError **error);

G_END_DECLS
