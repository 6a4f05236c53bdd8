#include "dfuse-layout.h"

#include <string.h>

#include "healer-error.h"

#define ADDRESS_SPACE     ((guint64)1 << 32)
#define MAX_ADDRESS_HEX   8
#define MAX_NUMBER_DIGITS 5

void
healer_dfuse_layout_free(HealerDfuseLayout *layout)
{
	if (layout == NULL)
		return;
	g_free(layout->name);
	if (layout->segments != NULL)
		g_array_unref(layout->segments);
	g_free(layout);
}

/* ---- parsing ---------------------------------------------------------------------------------- */

typedef struct {
	const char *text;
	gsize len;
	gsize pos;
} Cursor;

static int
peek(const Cursor *c)
{
	return c->pos < c->len ? (guchar)c->text[c->pos] : -1;
}

/* What stands at the cursor, for a message: 'x', '\x01', or "the end". */
static char *
found(const Cursor *c)
{
	int ch = peek(c);

	if (ch < 0)
		return g_strdup("the end");
	if (ch >= 0x20 && ch < 0x7f && ch != '\'')
		return g_strdup_printf("'%c'", ch);
	return g_strdup_printf("'\\x%02x'", ch);
}

G_GNUC_PRINTF(3, 4)
static gboolean
fail_at(gsize offset, GError **error, const char *format, ...)
{
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	return healer_fail(error, HEALER_ERROR_INVALID_DATA, "DfuSe layout, offset %" G_GSIZE_FORMAT ": %s", offset,
	                   what);
}

/* Fails naming what stands at the cursor. */
static gboolean
expected(const Cursor *c, const char *what, GError **error)
{
	g_autofree char *there = found(c);

	return fail_at(c->pos, error, "expected %s, found %s", what, there);
}

static gboolean
take(Cursor *c, char ch)
{
	if (peek(c) != (guchar)ch)
		return FALSE;
	c->pos++;
	return TRUE;
}

/* 1..MAX_NUMBER_DIGITS decimal digits. */
static gboolean
read_decimal(Cursor *c, const char *what, guint32 *out, GError **error)
{
	gsize start = c->pos;
	guint32 value = 0;

	while (g_ascii_isdigit(peek(c))) {
		if (c->pos - start == MAX_NUMBER_DIGITS)
			return fail_at(start, error, "%s has more than %u digits", what, MAX_NUMBER_DIGITS);
		value = value * 10 + (guint32)(peek(c) - '0');
		c->pos++;
	}
	if (c->pos == start) {
		g_autofree char *wanted = g_strdup_printf("%s (decimal digits)", what);
		return expected(c, wanted, error);
	}
	*out = value;
	return TRUE;
}

static gboolean
read_address(Cursor *c, guint32 *out, GError **error)
{
	gsize start;
	guint32 value = 0;

	if (peek(c) != '0' || c->pos + 1 >= c->len || g_ascii_tolower(c->text[c->pos + 1]) != 'x')
		return expected(c, "an address starting with 0x", error);
	c->pos += 2;
	start = c->pos;
	while (g_ascii_isxdigit(peek(c))) {
		if (c->pos - start == MAX_ADDRESS_HEX)
			return fail_at(start, error, "address has more than %u hex digits", MAX_ADDRESS_HEX);
		value = value << 4 | (guint32)g_ascii_xdigit_value((char)peek(c));
		c->pos++;
	}
	if (c->pos == start)
		return expected(c, "the address's hex digits after 0x", error);
	*out = value;
	return TRUE;
}

static const HealerDfuseSegment *
find_overlap(const HealerDfuseLayout *layout, guint32 start, guint64 end)
{
	for (guint i = 0; i < layout->segments->len; i++) {
		const HealerDfuseSegment *s = &g_array_index(layout->segments, HealerDfuseSegment, i);
		if (start < s->end && s->start < end)
			return s;
	}
	return NULL;
}

/* COUNT*SIZE[unit]attribute at the cursor, starting at `*address`, which it moves past the segment. */
static gboolean
read_segment(Cursor *c, HealerDfuseLayout *layout, guint64 *address, GError **error)
{
	HealerDfuseSegment segment = {.offset = c->pos};
	const HealerDfuseSegment *other;
	guint32 count, size;
	gsize size_offset;
	guint64 unit = 1, sector_size, end;
	int ch;

	if (!read_decimal(c, "a sector count", &count, error))
		return FALSE;
	if (!take(c, '*'))
		return expected(c, "'*' after the sector count", error);
	size_offset = c->pos;
	if (!read_decimal(c, "a sector size", &size, error))
		return FALSE;

	ch = peek(c);
	if (ch == ' ' || ch == 'B') {
		c->pos++;
	} else if (ch == 'K') {
		unit = 1024;
		c->pos++;
	} else if (ch == 'M') {
		unit = 1024 * 1024;
		c->pos++;
	} else if (!(ch >= 'a' && ch <= 'g')) {
		return expected(c, "a unit (' ' or 'B' bytes, 'K', 'M') or an attribute letter a..g", error);
	}
	ch = peek(c);
	if (!(ch >= 'a' && ch <= 'g'))
		return expected(c,
		                "an attribute letter a..g (a readable, b erasable, d writable, and their sums up to g)",
		                error);
	c->pos++;
	segment.attribute = (char)ch;
	segment.access = (guint8)(ch - 'a' + 1);

	if (count == 0)
		return fail_at(segment.offset, error, "a segment of 0 sectors");
	if (count > HEALER_DFUSE_LAYOUT_MAX_SECTORS)
		return fail_at(segment.offset, error, "%u sectors, more than the %u a segment may have", count,
		               HEALER_DFUSE_LAYOUT_MAX_SECTORS);
	if (size == 0)
		return fail_at(size_offset, error, "a sector size of 0");
	sector_size = size * unit;
	if (sector_size >= ADDRESS_SPACE)
		return fail_at(size_offset, error,
		               "sector size %" G_GUINT64_FORMAT " bytes is past the 32-bit address space", sector_size);
	end = *address + (guint64)count * sector_size;
	if (*address >= ADDRESS_SPACE || end > ADDRESS_SPACE)
		return fail_at(segment.offset, error,
		               "segment 0x%08" G_GINT64_MODIFIER "x + %u * %" G_GUINT64_FORMAT
		               " bytes ends past 0xffffffff",
		               *address, count, sector_size);
	segment.start = (guint32)*address;
	segment.end = end;
	segment.sector_size = (guint32)sector_size;
	segment.n_sectors = count;
	other = find_overlap(layout, segment.start, segment.end);
	if (other != NULL)
		return fail_at(segment.offset, error,
		               "segment 0x%08x..0x%08" G_GINT64_MODIFIER "x overlaps the one at offset %" G_GSIZE_FORMAT
		               " (0x%08x..0x%08" G_GINT64_MODIFIER "x)",
		               segment.start, segment.end - 1, other->offset, other->start, other->end - 1);
	g_array_append_val(layout->segments, segment);
	*address = end;
	return TRUE;
}

static gboolean
read_name(Cursor *c, HealerDfuseLayout *layout, GError **error)
{
	gsize start;
	gsize end;

	if (!take(c, '@'))
		return expected(c, "'@' (a DfuSe layout starts with it)", error);
	start = c->pos;
	while (peek(c) != '/') {
		int ch = peek(c);
		if (ch < 0x20 || ch > 0x7e)
			return expected(c, "a printable ASCII character of the name, or '/' and an address", error);
		c->pos++;
	}
	end = c->pos;
	while (end > start && c->text[end - 1] == ' ')
		end--;
	if (end == start)
		return fail_at(start, error, "expected a name between '@' and '/'");
	layout->name = g_strndup(c->text + start, end - start);
	return TRUE;
}

HealerDfuseLayout *
healer_dfuse_layout_parse(const char *text, gssize len, GError **error)
{
	g_autoptr(HealerDfuseLayout) layout = g_new0(HealerDfuseLayout, 1);
	Cursor c = {.text = text, .len = len < 0 ? strlen(text) : (gsize)len};

	layout->segments = g_array_new(FALSE, TRUE, sizeof(HealerDfuseSegment));
	if (c.len > HEALER_DFUSE_LAYOUT_MAX_LENGTH) {
		healer_fail(error, HEALER_ERROR_INVALID_DATA,
		            "DfuSe layout: %" G_GSIZE_FORMAT " characters, longer than the %u a layout may have", c.len,
		            HEALER_DFUSE_LAYOUT_MAX_LENGTH);
		return NULL;
	}
	if (!read_name(&c, layout, error))
		return NULL;
	/* Each pass reads one group: "/ADDRESS/" and its segments. */
	while (take(&c, '/')) {
		guint32 start = 0;
		guint64 address;

		if (!read_address(&c, &start, error))
			return NULL;
		if (!take(&c, '/')) {
			expected(&c, "'/' after the address", error);
			return NULL;
		}
		address = start;
		do {
			if (!read_segment(&c, layout, &address, error))
				return NULL;
		} while (take(&c, ','));
		if (peek(&c) != '/' && peek(&c) >= 0) {
			expected(&c, "',' and a segment, '/' and an address, or the end", error);
			return NULL;
		}
	}
	return g_steal_pointer(&layout);
}

/* ---- writing back ----------------------------------------------------------------------------- */

char *
healer_dfuse_layout_to_string(const HealerDfuseLayout *layout)
{
	g_autoptr(GString) out = g_string_new("@");
	guint64 next = ADDRESS_SPACE + 1; /* no segment starts there: the first one opens a group */

	g_string_append(out, layout->name);
	for (guint i = 0; i < layout->segments->len; i++) {
		const HealerDfuseSegment *s = &g_array_index(layout->segments, HealerDfuseSegment, i);
		guint32 size = s->sector_size;
		const char *unit = ""; /* bytes: the attribute letter right after the digits */

		if (s->start == next)
			g_string_append_c(out, ',');
		else
			g_string_append_printf(out, "/0x%x/", s->start);
		if (size % (1024 * 1024) == 0) {
			size /= 1024 * 1024;
			unit = "M";
		} else if (size % 1024 == 0) {
			size /= 1024;
			unit = "K";
		}
		g_string_append_printf(out, "%u*%u%s%c", s->n_sectors, size, unit, s->attribute);
		next = s->end;
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* ---- queries ---------------------------------------------------------------------------------- */

const char *
healer_dfuse_access_describe(guint access)
{
	static const char *const words[] = {
	        [0] = "not accessible",
	        [HEALER_DFUSE_READABLE] = "read-only",
	        [HEALER_DFUSE_ERASABLE] = "erase-only",
	        [HEALER_DFUSE_READABLE | HEALER_DFUSE_ERASABLE] = "readable and erasable",
	        [HEALER_DFUSE_WRITABLE] = "write-only",
	        [HEALER_DFUSE_READABLE | HEALER_DFUSE_WRITABLE] = "readable and writable",
	        [HEALER_DFUSE_ERASABLE | HEALER_DFUSE_WRITABLE] = "erasable and writable",
	        [HEALER_DFUSE_READABLE | HEALER_DFUSE_ERASABLE | HEALER_DFUSE_WRITABLE] =
	                "readable, erasable and writable",
	};

	return words[access & 7];
}

const HealerDfuseSegment *
healer_dfuse_layout_find_segment(const HealerDfuseLayout *layout, guint32 address)
{
	for (guint i = 0; i < layout->segments->len; i++) {
		const HealerDfuseSegment *s = &g_array_index(layout->segments, HealerDfuseSegment, i);
		if (address >= s->start && address < s->end)
			return s;
	}
	return NULL;
}

gboolean
healer_dfuse_layout_find_sector(const HealerDfuseLayout *layout, guint32 address, HealerDfuseSector *out)
{
	const HealerDfuseSegment *s = healer_dfuse_layout_find_segment(layout, address);

	if (s == NULL)
		return FALSE;
	out->segment = s;
	out->index = (address - s->start) / s->sector_size;
	out->start = s->start + out->index * s->sector_size;
	out->size = s->sector_size;
	return TRUE;
}

static const char *
missing_word(guint missing)
{
	if (missing & HEALER_DFUSE_WRITABLE)
		return "writable";
	if (missing & HEALER_DFUSE_READABLE)
		return "readable";
	return "erasable";
}

gboolean
healer_dfuse_layout_check_range(const HealerDfuseLayout *layout, guint32 address, gsize length, guint access,
                                GError **error)
{
	guint64 end = (guint64)address + length;
	guint64 at = address;

	if (length == 0)
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "0x%08x: an empty range", address);
	if (end > ADDRESS_SPACE)
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		                   "0x%08x + %" G_GSIZE_FORMAT " bytes: past the end of the 32-bit address space",
		                   address, length);
	while (at < end) {
		const HealerDfuseSegment *s = healer_dfuse_layout_find_segment(layout, (guint32)at);
		guint missing;

		if (s == NULL)
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "0x%08x..0x%08" G_GINT64_MODIFIER "x: 0x%08" G_GINT64_MODIFIER
			                   "x is in no segment of '%s'",
			                   address, end - 1, at, layout->name);
		missing = access & ~s->access;
		if (missing != 0)
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "0x%08x..0x%08" G_GINT64_MODIFIER
			                   "x: segment '%s' 0x%08x is not %s (attribute %c: %s)",
			                   address, end - 1, layout->name, s->start, missing_word(missing),
			                   s->attribute, healer_dfuse_access_describe(s->access));
		at = s->end;
	}
	return TRUE;
}

GArray *
healer_dfuse_layout_erase_list(const HealerDfuseLayout *layout, guint32 address, gsize length, GError **error)
{
	g_autoptr(GArray) sectors = g_array_new(FALSE, TRUE, sizeof(HealerDfuseSector));
	guint64 end = (guint64)address + length;
	guint64 at = address;

	if (!healer_dfuse_layout_check_range(layout, address, length, HEALER_DFUSE_WRITABLE, error))
		return NULL;
	while (at < end) {
		HealerDfuseSector sector;

		/* check_range found a segment for every byte. */
		healer_dfuse_layout_find_sector(layout, (guint32)at, &sector);
		if (sector.segment->access & HEALER_DFUSE_ERASABLE) {
			g_array_append_val(sectors, sector);
			at = (guint64)sector.start + sector.size;
		} else {
			at = sector.segment->end;
		}
	}
	return g_steal_pointer(&sectors);
}
