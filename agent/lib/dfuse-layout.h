/*
 * DfuSe memory layouts: the string a DfuSe alternate setting names itself with (ST UM0424),
 *
 *     @Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg
 *
 * a name, then one or more groups "/ADDRESS/SEGMENT,SEGMENT,...", each segment COUNT*SIZE,
 * a unit (' ' or 'B' bytes, 'K' KiB, 'M' MiB; left out before the letter means bytes) and an
 * attribute letter a..g whose value minus 'a' + 1 holds the bits readable (1), erasable (2) and
 * writable (4).  The segments of a group follow each other from its address.
 *
 * The parser is strict: anything it cannot read exactly is refused with the character offset and
 * what was expected there, so a healer never writes by a layout it guessed.  Limits: 255
 * characters (a USB string descriptor holds at most 126; so at most 49 segments), 1..65535
 * sectors of 1 byte..4 GiB - 1 each, up to 8 hex digits of address and 5 decimal digits of
 * count and size; no segment may pass 0xffffffff or overlap another.  docs/usb.md has the
 * grammar and every refusal.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_DFUSE_LAYOUT_MAX_LENGTH  255
#define HEALER_DFUSE_LAYOUT_MAX_SECTORS 65535

typedef enum {
	HEALER_DFUSE_READABLE = 1 << 0,
	HEALER_DFUSE_ERASABLE = 1 << 1,
	HEALER_DFUSE_WRITABLE = 1 << 2,
} HealerDfuseAccess;

typedef struct {
	guint32 start;
	guint64 end; /* one past the last byte: at most 2^32 */
	guint32 sector_size;
	guint32 n_sectors;
	guint8 access;  /* HealerDfuseAccess bits */
	char attribute; /* the letter as written, 'a'..'g' */
	gsize offset;   /* where its sector count starts in the string */
} HealerDfuseSegment;

typedef struct {
	char *name;       /* between '@' and the first '/', trailing blanks removed (ST pads names) */
	GArray *segments; /* HealerDfuseSegment, in the order written */
} HealerDfuseLayout;

void healer_dfuse_layout_free(HealerDfuseLayout *layout);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDfuseLayout, healer_dfuse_layout_free)

/*
 * Parses `len` bytes of `text` (-1: up to its NUL).  Refused with HEALER_ERROR_INVALID_DATA:
 * "DfuSe layout, offset 27: expected '*' after the sector count, found 'x'".
 */
HealerDfuseLayout *healer_dfuse_layout_parse(const char *text, gssize len, GError **error);

/*
 * The layout written back in its shortest form: "@Internal Flash/0x8000000/4*16Kg,1*64Kg" (name
 * trimmed, no leading zeros, the largest unit that divides the sector size, none for bytes,
 * groups that continue the last merged).  Never longer than the string it was parsed from, and
 * parsed again it gives the same layout (the fuzz target checks both).
 */
char *healer_dfuse_layout_to_string(const HealerDfuseLayout *layout);

/* "read-only", "readable, erasable and writable", ... for an attribute's bits. */
const char *healer_dfuse_access_describe(guint access);

/* The segment holding `address`, or NULL. */
const HealerDfuseSegment *healer_dfuse_layout_find_segment(const HealerDfuseLayout *layout, guint32 address);

/* One sector: the unit a DfuSe ERASE works on. */
typedef struct {
	const HealerDfuseSegment *segment;
	guint32 index; /* within the segment */
	guint32 start;
	guint32 size;
} HealerDfuseSector;

/* The sector holding `address`; FALSE when no segment does. */
gboolean healer_dfuse_layout_find_sector(const HealerDfuseLayout *layout, guint32 address, HealerDfuseSector *out);

/*
 * Whether every byte of [address, address + length) lies in segments that have every bit of
 * `access` (HEALER_DFUSE_WRITABLE before a download, HEALER_DFUSE_READABLE before a verify by
 * UPLOAD).  Refused with HEALER_ERROR_INVALID_ARGUMENT, naming the range (last byte included) and
 * the first place that fails:
 *   "0x1fff7800..0x1fff7a0f: segment 'OTP Memory' 0x1fff7800 is not writable (attribute a: read-only)"
 *   "0x08100000..0x08100fff: 0x08100000 is in no segment of 'Internal Flash'"
 * and an empty range or one past 0xffffffff.
 */
gboolean healer_dfuse_layout_check_range(const HealerDfuseLayout *layout, guint32 address, gsize length, guint access,
                                         GError **error);

/*
 * The sectors to erase before writing [address, address + length): every sector of an erasable
 * segment the range touches, in address order (HealerDfuseSector).  Sectors of writable segments
 * that cannot be erased (attributes d, e) are left out, as dfu-util and Particle's tools do.  The
 * range must be writable (healer_dfuse_layout_check_range()); NULL with its error if not.
 */
GArray *healer_dfuse_layout_erase_list(const HealerDfuseLayout *layout, guint32 address, gsize length, GError **error);

G_END_DECLS
