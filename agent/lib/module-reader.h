/*
 * Reading firmware modules the way devices and Particle's tools do: find the
 * prefix, walk the extensions, read the suffix backwards, and check length,
 * CRC-32 and SHA-256.  Pure functions over a byte buffer; nothing here
 * touches a file except healer_module_parse_file().
 *
 * A buffer whose structure cannot be read at all (no prefix anywhere, or a
 * module longer than the bytes present) is an error.  Everything found after
 * the header was located (a checksum mismatch, a bad extension, an
 * inconsistent flag) is recorded as a fault on the module, so a technician
 * sees every field and every fault together, as inspect prints them.
 */
#pragma once

#include <glib.h>

#include "healer/module-format.h"
#include "module-checksums.h"

G_BEGIN_DECLS

typedef struct {
	guint8 function;
	guint8 index;
	guint16 version;
	guint32 target; /* MCU target of a DEPENDENCY extension; 0 otherwise */
	gboolean from_extension;
} HealerModuleDependency;

typedef struct {
	guint16 type;
	guint16 length; /* as stored, header included */
	gsize offset;   /* from the start of the module image */
	GBytes *body;   /* the bytes after the 4-byte header */
} HealerModuleExtension;

typedef struct {
	gsize file_offset;   /* where this module's image begins in the buffer */
	gsize prefix_offset; /* where its prefix sits, from the image start */
	gsize length;        /* end_address - start_address + 4 */

	guint32 start_address;
	guint32 end_address;
	guint8 mcu_target; /* the prefix's "reserved" byte */
	guint8 flags;
	guint16 version;
	guint16 platform_id;
	guint8 function;
	guint8 index;
	GArray *dependencies; /* HealerModuleDependency; empty slots left out */

	GPtrArray *prefix_extensions; /* HealerModuleExtension*, END included */
	GPtrArray *suffix_extensions;
	char *name; /* from a NAME extension, or NULL */

	gboolean compressed_header_present;
	module_compressed_header_t compressed;

	gsize payload_offset; /* from image start: after prefix, extensions, compressed header */
	gsize payload_size;

	guint16 suffix_size;
	gboolean has_product;
	guint16 product_id;
	guint16 product_version;

	guint8 sha256_stored[HEALER_SHA256_SIZE];
	guint8 sha256_computed[HEALER_SHA256_SIZE];
	gboolean sha_ok;
	guint32 crc_stored;
	guint32 crc_computed;
	gboolean crc_ok;

	GPtrArray *faults; /* char*: what is wrong, with where; empty when valid */

	/* healer_module_parse_header(): only the prefix was read (no extensions, suffix or checksums). */
	gboolean header_only;
} HealerModule;

void healer_module_free(HealerModule *module);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerModule, healer_module_free)

/*
 * Every module in the buffer: one, or several when COMBINED flags chain
 * them.  Returns a GPtrArray of HealerModule*, or NULL with HEALER_ERROR_INVALID_DATA
 * when no module can be read.
 */
GPtrArray *healer_module_parse(const guint8 *data, gsize len, GError **error);
GPtrArray *healer_module_parse_file(const char *path, GError **error);

/*
 * Only the header of a module of which `data` holds the first `len` bytes: what a DFU UPLOAD of
 * a module slot's first bytes gives (particle-usb-ids.h).  The prefix is found as
 * healer_module_parse() finds it (offsets 0, 0x184, 0x200, 0x20, 0x10c, 0xc0, scored) and read:
 * addresses, `length`, flags, version, platform, function, index, dependency slots; `faults`
 * holds what the prefix alone shows wrong (unknown flags, DROP_MODULE_INFO away from offset 0,
 * COMPRESSED on the wrong function).  Nothing after the prefix is read, so the checksums are not
 * known: `header_only` is TRUE, `crc_ok` and `sha_ok` FALSE.  NULL with HEALER_ERROR_INVALID_DATA
 * when no prefix is there (an erased slot reads 0xff).
 */
HealerModule *healer_module_parse_header(const guint8 *data, gsize len, GError **error);

/* No fault, and read whole (not healer_module_parse_header()). */
gboolean healer_module_is_valid(const HealerModule *module);

/* A dependency slot as "system-part 2 >= 207". */
char *healer_module_dependency_to_string(const HealerModuleDependency *dep);

G_END_DECLS
