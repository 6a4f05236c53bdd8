/*
 * DfuSe memory layouts (dfuse-layout.h) and the plans built on them (dfu-download-plan.h):
 * every layout string of the devices healerd meets parsed exactly and written back, every
 * refusal with its offset and message, the range checks and erase lists on real layouts, and
 * DfuSe and DFU 1.1 plans block by block, at every boundary.
 */
#include <string.h>

#include "dfu-download-plan.h"
#include "dfu-protocol.h"
#include "dfuse-layout.h"
#include "healer-error.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

typedef struct {
	guint32 start;
	guint64 end;
	guint32 sector_size;
	guint32 n_sectors;
	char attribute;
} Seg;

typedef struct {
	const char *source; /* where the string comes from */
	const char *text;
	const char *name;
	Seg segments[8];
	guint n_segments;
	const char *canonical; /* healer_dfuse_layout_to_string() */
} LayoutCase;

/*
 * The STM32F2's ROM bootloader strings are those dfu-util's device log records for the
 * STM32F4 ROM (device-logs/stm32f4discovery.lsusb): the same 1 MiB sector map (4 x 16K, 1 x 64K,
 * 7 x 128K) and the same OTP and option-byte addresses.  Particle's from Device OS's bootloaders;
 * the Core's and the F103's from dfu-util's device logs and a dfu-util -l listing.
 */
static const LayoutCase layouts[] = {
        {"STM32F2/F4 ROM alt 0",
         "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg",
         "Internal Flash",
         {{0x08000000, 0x08010000, 16 * KIB, 4, 'g'},
          {0x08010000, 0x08020000, 64 * KIB, 1, 'g'},
          {0x08020000, 0x08100000, 128 * KIB, 7, 'g'}},
         3,
         "@Internal Flash/0x8000000/4*16Kg,1*64Kg,7*128Kg"},
        {"STM32F2/F4 ROM alt 1",
         "@Option Bytes  /0x1FFFC000/01*016 g",
         "Option Bytes",
         {{0x1FFFC000, 0x1FFFC010, 16, 1, 'g'}},
         1,
         "@Option Bytes/0x1fffc000/1*16g"},
        {"STM32F2/F4 ROM alt 2",
         "@OTP Memory /0x1FFF7800/01*512 g,01*016 g",
         "OTP Memory",
         {{0x1FFF7800, 0x1FFF7A00, 512, 1, 'g'}, {0x1FFF7A00, 0x1FFF7A10, 16, 1, 'g'}},
         2,
         "@OTP Memory/0x1fff7800/1*512g,1*16g"},
        {"STM32F2/F4 ROM alt 3",
         "@Device Feature/0xFFFF0000/01*004 g",
         "Device Feature",
         {{0xFFFF0000, 0xFFFF0004, 4, 1, 'g'}},
         1,
         "@Device Feature/0xffff0000/1*4g"},
        {"Photon/P1 alt 0",
         "@Internal Flash /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg",
         "Internal Flash",
         {{0x08000000, 0x0800C000, 16 * KIB, 3, 'a'},
          {0x0800C000, 0x08010000, 16 * KIB, 1, 'g'},
          {0x08010000, 0x08020000, 64 * KIB, 1, 'g'},
          {0x08020000, 0x08100000, 128 * KIB, 7, 'g'}},
         4,
         "@Internal Flash/0x8000000/3*16Ka,1*16Kg,1*64Kg,7*128Kg"},
        {"Photon/P1 alt 0, older bootloader (three blanks)",
         "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg",
         "Internal Flash",
         {{0x08000000, 0x0800C000, 16 * KIB, 3, 'a'},
          {0x0800C000, 0x08010000, 16 * KIB, 1, 'g'},
          {0x08010000, 0x08020000, 64 * KIB, 1, 'g'},
          {0x08020000, 0x08100000, 128 * KIB, 7, 'g'}},
         4,
         "@Internal Flash/0x8000000/3*16Ka,1*16Kg,1*64Kg,7*128Kg"},
        {"Photon/P1 alt 1",
         "@DCT Flash /0x00000000/01*016Kg",
         "DCT Flash",
         {{0x00000000, 0x00004000, 16 * KIB, 1, 'g'}},
         1,
         "@DCT Flash/0x0/1*16Kg"},
        {"Argon/Boron (nRF52840) alt 0",
         "@Internal Flash /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka",
         "Internal Flash",
         {{0x00000000, 0x00001000, 4 * KIB, 1, 'a'},
          {0x00001000, 0x00030000, 4 * KIB, 47, 'g'},
          {0x00030000, 0x000F0000, 4 * KIB, 192, 'g'},
          {0x000F0000, 0x000F4000, 4 * KIB, 4, 'g'},
          {0x000F4000, 0x000F8000, 4 * KIB, 4, 'g'},
          {0x000F8000, 0x00100000, 4 * KIB, 8, 'a'}},
         6,
         "@Internal Flash/0x0/1*4Ka,47*4Kg,192*4Kg,4*4Kg,4*4Kg,8*4Ka"},
        {"Argon/Boron alt 1",
         "@DCT Flash /0x00000000/1*016Ke",
         "DCT Flash",
         {{0x00000000, 0x00004000, 16 * KIB, 1, 'e'}},
         1,
         "@DCT Flash/0x0/1*16Ke"},
        {"Argon/Boron alt 2",
         "@External Flash /0x80000000/1024*004Kg",
         "External Flash",
         {{0x80000000, 0x80400000, 4 * KIB, 1024, 'g'}},
         1,
         "@External Flash/0x80000000/1024*4Kg"},
        {"B5 SoM, Tracker, E SoM X alt 2",
         "@External Flash /0x80000000/2048*004Kg",
         "External Flash",
         {{0x80000000, 0x80800000, 4 * KIB, 2048, 'g'}},
         1,
         "@External Flash/0x80000000/2048*4Kg"},
        {"P2 (RTL872x) alt 0",
         "@Internal Flash /0x08000000/2048*004Kg",
         "Internal Flash",
         {{0x08000000, 0x08800000, 4 * KIB, 2048, 'g'}},
         1,
         "@Internal Flash/0x8000000/2048*4Kg"},
        {"P2 alt 1",
         "@DCT Flash /0x00000000/1*016Ke",
         "DCT Flash",
         {{0x00000000, 0x00004000, 16 * KIB, 1, 'e'}},
         1,
         "@DCT Flash/0x0/1*16Ke"},
        {"Spark Core alt 0",
         "@Internal Flash  /0x08000000/20*001Ka,108*001Kg",
         "Internal Flash",
         {{0x08000000, 0x08005000, KIB, 20, 'a'}, {0x08005000, 0x08020000, KIB, 108, 'g'}},
         2,
         "@Internal Flash/0x8000000/20*1Ka,108*1Kg"},
        {"Spark Core alt 1",
         "@SPI Flash : SST25x/0x00000000/512*04Kg",
         "SPI Flash : SST25x",
         {{0x00000000, 0x00200000, 4 * KIB, 512, 'g'}},
         1,
         "@SPI Flash : SST25x/0x0/512*4Kg"},
        {"STM32F103 ROM alt 0 (four-digit size)",
         "@Internal Flash  /0x08000000/064*0002Kg",
         "Internal Flash",
         {{0x08000000, 0x08020000, 2 * KIB, 64, 'g'}},
         1,
         "@Internal Flash/0x8000000/64*2Kg"},
        {"STM32F103 ROM alt 1",
         "@Option Bytes  /0x1FFFF800/01*016 e",
         "Option Bytes",
         {{0x1FFFF800, 0x1FFFF810, 16, 1, 'e'}},
         1,
         "@Option Bytes/0x1ffff800/1*16e"},
        {"STM32L072 ROM (no unit letter)",
         "@Internal Flash /0x08000000/1536*128g",
         "Internal Flash",
         {{0x08000000, 0x08030000, 128, 1536, 'g'}},
         1,
         "@Internal Flash/0x8000000/1536*128g"},
        {"two groups, B and M units, upper-case X, up to the last byte",
         "@Flash/0X08000000/2*2Bb,1*1Mg/0xFFFFF000/1*4Kc",
         "Flash",
         {{0x08000000, 0x08000004, 2, 2, 'b'},
          {0x08000004, 0x08100004, MIB, 1, 'g'},
          {0xFFFFF000, G_GUINT64_CONSTANT(0x100000000), 4 * KIB, 1, 'c'}},
         3,
         "@Flash/0x8000000/2*2b,1*1Mg/0xfffff000/1*4Kc"},
        {"a group that continues the last (merged when written back)",
         "@N/0x0/1*4Kg/0x1000/1*4Kd",
         "N",
         {{0x0, 0x1000, 4 * KIB, 1, 'g'}, {0x1000, 0x2000, 4 * KIB, 1, 'd'}},
         2,
         "@N/0x0/1*4Kg,1*4Kd"},
};

static void
check_layout(const LayoutCase *c, const HealerDfuseLayout *layout)
{
	g_assert_cmpstr(layout->name, ==, c->name);
	g_assert_cmpuint(layout->segments->len, ==, c->n_segments);
	for (guint i = 0; i < c->n_segments; i++) {
		const HealerDfuseSegment *s = &g_array_index(layout->segments, HealerDfuseSegment, i);
		const Seg *want = &c->segments[i];

		g_assert_cmphex(s->start, ==, want->start);
		g_assert_cmphex(s->end, ==, want->end);
		g_assert_cmpuint(s->sector_size, ==, want->sector_size);
		g_assert_cmpuint(s->n_sectors, ==, want->n_sectors);
		g_assert_cmpint(s->attribute, ==, want->attribute);
		g_assert_cmpuint(s->access, ==, want->attribute - 'a' + 1);
		g_assert_cmpuint((guint64)s->n_sectors * s->sector_size, ==, s->end - s->start);
	}
}

static void
test_layouts(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(layouts); i++) {
		const LayoutCase *c = &layouts[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerDfuseLayout) layout = NULL;
		g_autoptr(HealerDfuseLayout) again = NULL;
		g_autofree char *text = NULL;

		g_test_message("%s: %s", c->source, c->text);
		layout = healer_dfuse_layout_parse(c->text, -1, &error);
		g_assert_no_error(error);
		check_layout(c, layout);
		/* The first segment's count starts after "@NAME/0xADDRESS/". */
		g_assert_cmpuint(g_array_index(layout->segments, HealerDfuseSegment, 0).offset, ==,
		                 strchr(strchr(c->text, '/') + 1, '/') + 1 - c->text);

		text = healer_dfuse_layout_to_string(layout);
		g_assert_cmpstr(text, ==, c->canonical);
		g_assert_cmpuint(strlen(text), <=, strlen(c->text));
		again = healer_dfuse_layout_parse(text, -1, &error);
		g_assert_no_error(error);
		check_layout(c, again);
	}
}

static void
test_layout_explicit_length(void)
{
	const char text[] = "@N/0x0/1*4Kg,1*4Kg";
	g_autoptr(HealerDfuseLayout) layout = healer_dfuse_layout_parse(text, 12, NULL);

	/* Only the first 12 bytes: one segment. */
	g_assert_nonnull(layout);
	g_assert_cmpuint(layout->segments->len, ==, 1);
}

static const struct {
	const char *text;
	const char *message; /* after "DfuSe layout, " */
} refusals[] = {
        {"", "offset 0: expected '@' (a DfuSe layout starts with it), found the end"},
        {"Internal Flash/0x0/1*4Kg", "offset 0: expected '@' (a DfuSe layout starts with it), found 'I'"},
        {"@Internal Flash",
         "offset 15: expected a printable ASCII character of the name, or '/' and an address, found the end"},
        {"@Inter\x01nal/0x0/1*4Kg",
         "offset 6: expected a printable ASCII character of the name, or '/' and an address, found '\\x01'"},
        {"@Flash\xc3\xa9/0x0/1*4Kg",
         "offset 6: expected a printable ASCII character of the name, or '/' and an address, found '\\xc3'"},
        {"@/0x0/1*4Kg", "offset 1: expected a name between '@' and '/'"},
        {"@   /0x0/1*4Kg", "offset 1: expected a name between '@' and '/'"},
        {"@N/", "offset 3: expected an address starting with 0x, found the end"},
        {"@N/08000000/1*4Kg", "offset 3: expected an address starting with 0x, found '0'"},
        {"@N/0", "offset 3: expected an address starting with 0x, found '0'"},
        {"@N/0x/1*4Kg", "offset 5: expected the address's hex digits after 0x, found '/'"},
        {"@N/0xg/1*4Kg", "offset 5: expected the address's hex digits after 0x, found 'g'"},
        {"@N/0x123456789/1*4Kg", "offset 5: address has more than 8 hex digits"},
        {"@N/0x08000000", "offset 13: expected '/' after the address, found the end"},
        {"@N/0x0800:000/1*4Kg", "offset 9: expected '/' after the address, found ':'"},
        {"@N/0x0/", "offset 7: expected a sector count (decimal digits), found the end"},
        {"@N/0x0/x*4Kg", "offset 7: expected a sector count (decimal digits), found 'x'"},
        {"@N/0x0/-1*4Kg", "offset 7: expected a sector count (decimal digits), found '-'"},
        {"@N/0x0/123456*4Kg", "offset 7: a sector count has more than 5 digits"},
        {"@N/0x0/1x4Kg", "offset 8: expected '*' after the sector count, found 'x'"},
        {"@N/0x0/1", "offset 8: expected '*' after the sector count, found the end"},
        {"@N/0x0/1*Kg", "offset 9: expected a sector size (decimal digits), found 'K'"},
        {"@N/0x0/1*123456Kg", "offset 9: a sector size has more than 5 digits"},
        {"@N/0x0/1*4Xg",
         "offset 10: expected a unit (' ' or 'B' bytes, 'K', 'M') or an attribute letter a..g, found 'X'"},
        {"@N/0x0/1*4kg",
         "offset 10: expected a unit (' ' or 'B' bytes, 'K', 'M') or an attribute letter a..g, found 'k'"},
        {"@N/0x0/1*4",
         "offset 10: expected a unit (' ' or 'B' bytes, 'K', 'M') or an attribute letter a..g, found the end"},
        {"@N/0x0/1*4Kh",
         "offset 11: expected an attribute letter a..g (a readable, b erasable, d writable, and their sums up to g), "
         "found 'h'"},
        {"@N/0x0/1*4KG",
         "offset 11: expected an attribute letter a..g (a readable, b erasable, d writable, and their sums up to g), "
         "found 'G'"},
        {"@N/0x0/1*4K",
         "offset 11: expected an attribute letter a..g (a readable, b erasable, d writable, and their sums up to g), "
         "found the end"},
        {"@N/0x0/1*4 ",
         "offset 11: expected an attribute letter a..g (a readable, b erasable, d writable, and their sums up to g), "
         "found the end"},
        {"@N/0x0/1*4K g",
         "offset 11: expected an attribute letter a..g (a readable, b erasable, d writable, and their sums up to g), "
         "found ' '"},
        {"@N/0x0/0*4Kg", "offset 7: a segment of 0 sectors"},
        {"@N/0x0/1*0Kg", "offset 9: a sector size of 0"},
        {"@N/0x0/65536*1Kg", "offset 7: 65536 sectors, more than the 65535 a segment may have"},
        {"@N/0x0/1*4096Mg", "offset 9: sector size 4294967296 bytes is past the 32-bit address space"},
        {"@N/0x0/1*99999Mg", "offset 9: sector size 104856551424 bytes is past the 32-bit address space"},
        {"@N/0xFFFFF000/2*4Kg", "offset 14: segment 0xfffff000 + 2 * 4096 bytes ends past 0xffffffff"},
        {"@N/0xFFFFF000/1*4Kg,1*1 g", "offset 20: segment 0x100000000 + 1 * 1 bytes ends past 0xffffffff"},
        {"@N/0x0/65535*65535Kg", "offset 7: segment 0x00000000 + 65535 * 67107840 bytes ends past 0xffffffff"},
        {"@N/0x0/1*4Kg/0x800/1*4Kg",
         "offset 19: segment 0x00000800..0x000017ff overlaps the one at offset 7 (0x00000000..0x00000fff)"},
        {"@N/0x1000/1*4Kg/0x0/2*4Kg",
         "offset 20: segment 0x00000000..0x00001fff overlaps the one at offset 10 (0x00001000..0x00001fff)"},
        {"@N/0x0/1*4Kg;", "offset 12: expected ',' and a segment, '/' and an address, or the end, found ';'"},
        {"@N/0x0/1*4Kg ", "offset 12: expected ',' and a segment, '/' and an address, or the end, found ' '"},
        {"@N/0x0/1*4Kgg", "offset 12: expected ',' and a segment, '/' and an address, or the end, found 'g'"},
        {"@N/0x0/1*4Kg,", "offset 13: expected a sector count (decimal digits), found the end"},
        {"@N/0x0/1*4Kg,,1*4Kg", "offset 13: expected a sector count (decimal digits), found ','"},
        {"@N/0x0/1*4Kg/", "offset 13: expected an address starting with 0x, found the end"},
        {"@N/0x0/1*4Kg/0x1000", "offset 19: expected '/' after the address, found the end"},
};

static void
test_layout_refusals(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(refusals); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerDfuseLayout) layout = healer_dfuse_layout_parse(refusals[i].text, -1, &error);
		g_autofree char *want = g_strdup_printf("DfuSe layout, %s", refusals[i].message);

		g_test_message("%s", refusals[i].text);
		g_assert_null(layout);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_cmpstr(error->message, ==, want);
	}
}

static void
test_layout_limits(void)
{
	g_autoptr(GString) long_text = g_string_new("@");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDfuseLayout) layout = NULL;
	const char with_nul[] = "@N/0x0/1*4Kg\0,1*4Kg";

	/* 255 characters are fine, 256 are not. */
	g_string_append_len(long_text,
	                    "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN", 80);
	while (long_text->len < HEALER_DFUSE_LAYOUT_MAX_LENGTH - strlen("/0x0/1*4Kg"))
		g_string_append_c(long_text, 'N');
	g_string_append(long_text, "/0x0/1*4Kg");
	g_assert_cmpuint(long_text->len, ==, HEALER_DFUSE_LAYOUT_MAX_LENGTH);
	layout = healer_dfuse_layout_parse(long_text->str, -1, &error);
	g_assert_no_error(error);
	g_clear_pointer(&layout, healer_dfuse_layout_free);
	g_string_insert_c(long_text, 1, 'N');
	layout = healer_dfuse_layout_parse(long_text->str, -1, &error);
	g_assert_null(layout);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr(error->message, ==, "DfuSe layout: 256 characters, longer than the 255 a layout may have");
	g_clear_error(&error);

	/* A NUL inside the given length is a character like any other. */
	layout = healer_dfuse_layout_parse(with_nul, sizeof(with_nul) - 1, &error);
	g_assert_null(layout);
	g_assert_cmpstr(error->message, ==,
	                "DfuSe layout, offset 12: expected ',' and a segment, '/' and an address, or the end, found "
	                "'\\x00'");
}

/* ---- queries ---------------------------------------------------------------------------------- */

static HealerDfuseLayout *
parse_ok(const char *text)
{
	g_autoptr(GError) error = NULL;
	HealerDfuseLayout *layout = healer_dfuse_layout_parse(text, -1, &error);

	g_assert_no_error(error);
	return layout;
}

static const char *const photon = "@Internal Flash /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg";
static const char *const gen3 = "@Internal Flash /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka";
static const char *const p2 = "@Internal Flash /0x08000000/2048*004Kg";

static void
test_find(void)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(photon);
	const struct {
		guint32 address;
		guint segment; /* G_MAXUINT: none */
		guint32 index, start, size;
	} cases[] = {
	        {0x08000000, 0, 0, 0x08000000, 16 * KIB},  {0x08007FFF, 0, 1, 0x08004000, 16 * KIB},
	        {0x0800BFFF, 0, 2, 0x08008000, 16 * KIB},  {0x0800C000, 1, 0, 0x0800C000, 16 * KIB},
	        {0x0801FFFF, 2, 0, 0x08010000, 64 * KIB},  {0x080A1234, 3, 4, 0x080A0000, 128 * KIB},
	        {0x080FFFFF, 3, 6, 0x080E0000, 128 * KIB}, {0x08100000, G_MAXUINT, 0, 0, 0},
	        {0x07FFFFFF, G_MAXUINT, 0, 0, 0},          {0x00000000, G_MAXUINT, 0, 0, 0},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		const HealerDfuseSegment *segment = healer_dfuse_layout_find_segment(layout, cases[i].address);
		HealerDfuseSector sector = {0};
		gboolean found = healer_dfuse_layout_find_sector(layout, cases[i].address, &sector);

		if (cases[i].segment == G_MAXUINT) {
			g_assert_null(segment);
			g_assert_false(found);
			continue;
		}
		g_assert_true(segment == &g_array_index(layout->segments, HealerDfuseSegment, cases[i].segment));
		g_assert_true(found);
		g_assert_true(sector.segment == segment);
		g_assert_cmpuint(sector.index, ==, cases[i].index);
		g_assert_cmphex(sector.start, ==, cases[i].start);
		g_assert_cmpuint(sector.size, ==, cases[i].size);
	}
}

static void
test_access_words(void)
{
	const char *words[] = {"read-only",
	                       "erase-only",
	                       "readable and erasable",
	                       "write-only",
	                       "readable and writable",
	                       "erasable and writable",
	                       "readable, erasable and writable"};

	for (guint a = 1; a <= 7; a++)
		g_assert_cmpstr(healer_dfuse_access_describe(a), ==, words[a - 1]);
	g_assert_cmpstr(healer_dfuse_access_describe(0), ==, "not accessible");
}

static void
expect_range_error(const char *layout_text, guint32 address, gsize length, guint access, const char *message)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(layout_text);
	g_autoptr(GError) error = NULL;

	g_assert_false(healer_dfuse_layout_check_range(layout, address, length, access, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr(error->message, ==, message);
}

static void
test_check_range(void)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(photon);

	/* The user part, both system parts, and all of flash past the bootloader. */
	g_assert_true(healer_dfuse_layout_check_range(layout, 0x080A0000, 128 * KIB, HEALER_DFUSE_WRITABLE, NULL));
	g_assert_true(healer_dfuse_layout_check_range(layout, 0x08020000, 512 * KIB, HEALER_DFUSE_WRITABLE, NULL));
	g_assert_true(healer_dfuse_layout_check_range(layout, 0x0800C000, 0x08100000 - 0x0800C000,
	                                              HEALER_DFUSE_WRITABLE | HEALER_DFUSE_ERASABLE, NULL));
	/* Everything is readable, the bootloader too (a header read by UPLOAD). */
	g_assert_true(healer_dfuse_layout_check_range(layout, 0x08000000, MIB, HEALER_DFUSE_READABLE, NULL));
	g_assert_true(healer_dfuse_layout_check_range(layout, 0x080FFFFF, 1, HEALER_DFUSE_WRITABLE, NULL));
	g_assert_true(healer_dfuse_layout_check_range(layout, 0x08000000, 16 * KIB, 0, NULL));

	expect_range_error(photon, 0x08000000, 16 * KIB, HEALER_DFUSE_WRITABLE,
	                   "0x08000000..0x08003fff: segment 'Internal Flash' 0x08000000 is not writable (attribute a: "
	                   "read-only)");
	/* A range ending one byte inside the read-only part. */
	expect_range_error(photon, 0x0800C000 - 1, 2, HEALER_DFUSE_WRITABLE,
	                   "0x0800bfff..0x0800c000: segment 'Internal Flash' 0x08000000 is not writable (attribute a: "
	                   "read-only)");
	expect_range_error(photon, 0x080F0000, 128 * KIB, HEALER_DFUSE_WRITABLE,
	                   "0x080f0000..0x0810ffff: 0x08100000 is in no segment of 'Internal Flash'");
	expect_range_error(photon, 0x07FFFFFF, 2, HEALER_DFUSE_READABLE,
	                   "0x07ffffff..0x08000000: 0x07ffffff is in no segment of 'Internal Flash'");
	expect_range_error(photon, 0x08000000, 0, HEALER_DFUSE_READABLE, "0x08000000: an empty range");
	expect_range_error("@N/0xFFFFF000/1*4Kg", 0xFFFFFFFF, 2, HEALER_DFUSE_READABLE,
	                   "0xffffffff + 2 bytes: past the end of the 32-bit address space");
	/* The one byte that ends at 2^32 is fine. */
	{
		g_autoptr(HealerDfuseLayout) top = parse_ok("@N/0xFFFFF000/1*4Kg");
		g_assert_true(healer_dfuse_layout_check_range(top, 0xFFFFFFFF, 1, HEALER_DFUSE_WRITABLE, NULL));
	}
	/* The brief's example: OTP that a locked part reports read-only, a range over both of its segments. */
	expect_range_error("@OTP Memory /0x1FFF7800/01*512 a,01*016 a", 0x1FFF7800, 528, HEALER_DFUSE_WRITABLE,
	                   "0x1fff7800..0x1fff7a0f: segment 'OTP Memory' 0x1fff7800 is not writable (attribute a: "
	                   "read-only)");
	/* The second segment is the one that fails. */
	expect_range_error("@OTP Memory /0x1FFF7800/01*512 g,01*016 a", 0x1FFF7800, 528, HEALER_DFUSE_WRITABLE,
	                   "0x1fff7800..0x1fff7a0f: segment 'OTP Memory' 0x1fff7a00 is not writable (attribute a: "
	                   "read-only)");
	/* Gen 3's bootloader runs into the last 8 pages, which are 'a'. */
	expect_range_error(gen3, 0x000F4000, 48 * KIB, HEALER_DFUSE_WRITABLE,
	                   "0x000f4000..0x000fffff: segment 'Internal Flash' 0x000f8000 is not writable (attribute a: "
	                   "read-only)");
	expect_range_error("@W/0x0/1*4Kd", 0x0, 16, HEALER_DFUSE_READABLE,
	                   "0x00000000..0x0000000f: segment 'W' 0x00000000 is not readable (attribute d: write-only)");
	expect_range_error(
	        "@DCT Flash /0x00000000/1*016Ke", 0x0, 16, HEALER_DFUSE_ERASABLE,
	        "0x00000000..0x0000000f: segment 'DCT Flash' 0x00000000 is not erasable (attribute e: readable "
	        "and writable)");
	/* A hole between two groups. */
	expect_range_error("@H/0x0/1*4Kg/0x2000/1*4Kg", 0x0, 0x3000, HEALER_DFUSE_WRITABLE,
	                   "0x00000000..0x00002fff: 0x00001000 is in no segment of 'H'");
}

typedef struct {
	guint32 start, size;
} Sector;

static void
expect_erase(const char *layout_text, guint32 address, gsize length, const Sector *want, guint n_want)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(layout_text);
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) sectors = healer_dfuse_layout_erase_list(layout, address, length, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(sectors->len, ==, n_want);
	for (guint i = 0; i < n_want; i++) {
		const HealerDfuseSector *s = &g_array_index(sectors, HealerDfuseSector, i);
		g_assert_cmphex(s->start, ==, want[i].start);
		g_assert_cmpuint(s->size, ==, want[i].size);
		g_assert_cmphex(s->start, ==, s->segment->start + s->index * s->segment->sector_size);
	}
}

static void
test_erase_list(void)
{
	const Sector user[] = {{0x080A0000, 128 * KIB}};
	const Sector part1[] = {{0x08020000, 128 * KIB}, {0x08040000, 128 * KIB}};
	const Sector across[] = {{0x0800C000, 16 * KIB}, {0x08010000, 64 * KIB}, {0x08020000, 128 * KIB}};
	const Sector p2_part1[] = {{0x08060000, 4 * KIB},
	                           {0x08061000, 4 * KIB},
	                           {0x08062000, 4 * KIB},
	                           {0x08063000, 4 * KIB},
	                           {0x08064000, 4 * KIB}};
	const Sector unaligned[] = {{0x08060000, 4 * KIB}, {0x08061000, 4 * KIB}};
	const Sector mixed[] = {{0x1000, 4 * KIB}, {0x2000, 4 * KIB}};

	expect_erase(photon, 0x080A0000, 1000, user, G_N_ELEMENTS(user));
	expect_erase(photon, 0x080A1000, 10, user, G_N_ELEMENTS(user));
	expect_erase(photon, 0x080A0000, 128 * KIB, user, G_N_ELEMENTS(user));
	expect_erase(photon, 0x08020000, 128 * KIB + 1, part1, G_N_ELEMENTS(part1));
	expect_erase(photon, 0x0800C000, 0x08020400 - 0x0800C000, across, G_N_ELEMENTS(across));
	expect_erase(p2, 0x08060000, 0x5000, p2_part1, G_N_ELEMENTS(p2_part1));
	expect_erase(p2, 0x08060FFF, 2, unaligned, G_N_ELEMENTS(unaligned));
	/* Writable but not erasable sectors are left out: the Gen 3 DCT, and an 'e' segment before 'g's. */
	expect_erase("@DCT Flash /0x00000000/1*016Ke", 0x0, 100, NULL, 0);
	expect_erase("@M/0x0/1*4Ke,2*4Kg", 0x0, 0x3000, mixed, G_N_ELEMENTS(mixed));

	/* A range that is not writable has no erase list: the error says why. */
	{
		g_autoptr(HealerDfuseLayout) layout = parse_ok(photon);
		g_autoptr(GError) error = NULL;
		g_autoptr(GArray) sectors = healer_dfuse_layout_erase_list(layout, 0x08000000, 100, &error);

		g_assert_null(sectors);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
		g_assert_cmpstr(
		        error->message, ==,
		        "0x08000000..0x08000063: segment 'Internal Flash' 0x08000000 is not writable (attribute a: "
		        "read-only)");
	}
}

/* ---- plans ------------------------------------------------------------------------------------ */

static void
expect_block(const HealerDfuPlan *plan, gsize i, guint32 address, gsize offset, guint32 length, guint16 block,
             gboolean set_address)
{
	HealerDfuBlock b;

	healer_dfu_plan_get_block(plan, i, &b);
	g_assert_cmphex(b.address, ==, address);
	g_assert_cmpuint(b.offset, ==, offset);
	g_assert_cmpuint(b.length, ==, length);
	g_assert_cmpuint(b.block, ==, block);
	g_assert_cmpint(b.set_address, ==, set_address);
}

/* Every block of a plan: contiguous, within the transfer size, covering the image exactly. */
static void
check_blocks_cover(const HealerDfuPlan *plan)
{
	gsize next = 0;

	for (gsize i = 0; i < plan->n_blocks; i++) {
		HealerDfuBlock b;

		healer_dfu_plan_get_block(plan, i, &b);
		g_assert_cmpuint(b.offset, ==, next);
		g_assert_cmphex(b.address, ==, plan->address + b.offset);
		g_assert_cmpuint(b.length, >=, 1);
		g_assert_cmpuint(b.length, <=, plan->transfer_size);
		next += b.length;
	}
	g_assert_cmpuint(next, ==, plan->size);
}

static void
test_plan_dfuse_download(void)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(photon);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDfuPlan) plan = healer_dfuse_download_plan_new(layout, 0x08020000, 10000, 4096, &error);
	const HealerDfuseSector *sector;

	g_assert_no_error(error);
	g_assert_cmpint(plan->kind, ==, HEALER_DFU_PLAN_DFUSE_DOWNLOAD);
	g_assert_cmpuint(plan->erase->len, ==, 1);
	sector = &g_array_index(plan->erase, HealerDfuseSector, 0);
	g_assert_cmphex(sector->start, ==, 0x08020000);
	g_assert_cmpuint(sector->size, ==, 128 * KIB);
	g_assert_cmpuint(plan->n_blocks, ==, 3);
	/* Each block behind its own SET_ADDRESS_POINTER, with wValue 2, as dfu-util and particle-usb do. */
	expect_block(plan, 0, 0x08020000, 0, 4096, 2, TRUE);
	expect_block(plan, 1, 0x08021000, 4096, 4096, 2, TRUE);
	expect_block(plan, 2, 0x08022000, 8192, 10000 - 8192, 2, TRUE);
	check_blocks_cover(plan);
	g_clear_pointer(&plan, healer_dfu_plan_free);

	/* A multiple of the transfer size ends on a full block; one byte is one block. */
	plan = healer_dfuse_download_plan_new(layout, 0x080A0000, 8192, 4096, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(plan->n_blocks, ==, 2);
	expect_block(plan, 1, 0x080A1000, 4096, 4096, 2, TRUE);
	g_clear_pointer(&plan, healer_dfu_plan_free);
	plan = healer_dfuse_download_plan_new(layout, 0x080FFFFF, 1, 4096, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(plan->n_blocks, ==, 1);
	expect_block(plan, 0, 0x080FFFFF, 0, 1, 2, TRUE);
	g_assert_cmpuint(plan->erase->len, ==, 1);
	g_assert_cmphex(g_array_index(plan->erase, HealerDfuseSector, 0).start, ==, 0x080E0000);
	g_clear_pointer(&plan, healer_dfu_plan_free);

	/* A whole Photon system part with the STM32 ROM's 2048-byte blocks. */
	plan = healer_dfuse_download_plan_new(layout, 0x08060000, 256 * KIB, 2048, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(plan->n_blocks, ==, 128);
	g_assert_cmpuint(plan->erase->len, ==, 2);
	expect_block(plan, 127, 0x08060000 + 127 * 2048, 127 * 2048, 2048, 2, TRUE);
	check_blocks_cover(plan);
}

/* `error` is read after `plan` was made (an argument's value could be taken before the call ran). */
static void
expect_plan_error(HealerDfuPlan *plan, GError **error, const char *message)
{
	g_assert_null(plan);
	g_assert_error(*error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
	g_assert_cmpstr((*error)->message, ==, message);
	g_clear_error(error);
}

static void
test_plan_refusals(void)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(photon);
	g_autoptr(HealerDfuseLayout) write_only = parse_ok("@W/0x0/1*4Kd");
	GError *error = NULL;

	expect_plan_error(healer_dfuse_download_plan_new(layout, 0x08020000, 0, 4096, &error), &error,
	                  "an image of 0 bytes: nothing to transfer");
	expect_plan_error(healer_dfuse_download_plan_new(layout, 0x08020000, 100, 0, &error), &error,
	                  "a transfer size of 0: no block could be sent");
	expect_plan_error(healer_dfuse_download_plan_new(layout, 0x08000000, 16 * KIB, 4096, &error), &error,
	                  "0x08000000..0x08003fff: segment 'Internal Flash' 0x08000000 is not writable (attribute a: "
	                  "read-only)");
	expect_plan_error(healer_dfuse_download_plan_new(layout, 0x080E0000, 256 * KIB, 4096, &error), &error,
	                  "0x080e0000..0x0811ffff: 0x08100000 is in no segment of 'Internal Flash'");
	expect_plan_error(healer_dfuse_upload_plan_new(write_only, 0x0, 16, 4096, &error), &error,
	                  "0x00000000..0x0000000f: segment 'W' 0x00000000 is not readable (attribute d: write-only)");
	expect_plan_error(healer_dfuse_upload_plan_new(layout, 0x08000000, 0, 4096, &error), &error,
	                  "an image of 0 bytes: nothing to transfer");
	expect_plan_error(healer_dfu_download_plan_new(0, 64, &error), &error,
	                  "an image of 0 bytes: nothing to transfer");
	expect_plan_error(healer_dfu_download_plan_new(100, 0, &error), &error,
	                  "a transfer size of 0: no block could be sent");
#if GLIB_SIZEOF_SIZE_T > 4
	expect_plan_error(healer_dfu_download_plan_new((gsize)G_MAXUINT32 + 1, 4096, &error), &error,
	                  "an image of 4294967296 bytes: past the 32-bit address space");
#endif
	/* A write-only segment can be downloaded to, with nothing erased. */
	{
		g_autoptr(HealerDfuPlan) plan = healer_dfuse_download_plan_new(write_only, 0x0, 16, 4096, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(plan->erase->len, ==, 0);
		g_assert_cmpuint(plan->n_blocks, ==, 1);
	}
}

static void
test_plan_dfuse_upload(void)
{
	g_autoptr(HealerDfuseLayout) layout = parse_ok(photon);
	g_autoptr(HealerDfuseLayout) big = parse_ok("@B/0x0/1*1Mg");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDfuPlan) plan = healer_dfuse_upload_plan_new(layout, 0x08000000, 10 * 4096 + 24, 4096, &error);

	g_assert_no_error(error);
	g_assert_cmpint(plan->kind, ==, HEALER_DFU_PLAN_DFUSE_UPLOAD);
	g_assert_cmpuint(plan->erase->len, ==, 0);
	g_assert_cmpuint(plan->n_blocks, ==, 11);
	/* The pointer once, then wValue 2, 3, 4, ... */
	expect_block(plan, 0, 0x08000000, 0, 4096, 2, TRUE);
	expect_block(plan, 1, 0x08001000, 4096, 4096, 3, FALSE);
	expect_block(plan, 10, 0x0800A000, 40960, 24, 12, FALSE);
	check_blocks_cover(plan);
	g_clear_pointer(&plan, healer_dfu_plan_free);

	/* 1-byte blocks: after wValue 65535 the pointer is set again and numbering restarts at 2. */
	plan = healer_dfuse_upload_plan_new(big, 0x0, 65536, 1, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(plan->n_blocks, ==, 65536);
	expect_block(plan, 65533, 65533, 65533, 1, 65535, FALSE);
	expect_block(plan, 65534, 65534, 65534, 1, 2, TRUE);
	expect_block(plan, 65535, 65535, 65535, 1, 3, FALSE);
	check_blocks_cover(plan);
}

static void
test_plan_dfu(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDfuPlan) plan = healer_dfu_download_plan_new(1000, 64, &error);

	g_assert_no_error(error);
	g_assert_cmpint(plan->kind, ==, HEALER_DFU_PLAN_DFU_DOWNLOAD);
	g_assert_cmpuint(plan->erase->len, ==, 0);
	g_assert_cmpuint(plan->n_blocks, ==, 16);
	expect_block(plan, 0, 0, 0, 64, 0, FALSE);
	expect_block(plan, 1, 64, 64, 64, 1, FALSE);
	expect_block(plan, 15, 960, 960, 40, 15, FALSE);
	check_blocks_cover(plan);
	g_clear_pointer(&plan, healer_dfu_plan_free);

	/* Block numbers wrap from 65535 to 0. */
	plan = healer_dfu_download_plan_new(65537 * 16 + 5, 16, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(plan->n_blocks, ==, 65538);
	expect_block(plan, 65535, 65535 * 16, 65535 * 16, 16, 65535, FALSE);
	expect_block(plan, 65536, 65536 * 16, 65536 * 16, 16, 0, FALSE);
	expect_block(plan, 65537, 65537 * 16, 65537 * 16, 5, 1, FALSE);
	check_blocks_cover(plan);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dfuse-layout/devices", test_layouts);
	g_test_add_func("/dfuse-layout/explicit-length", test_layout_explicit_length);
	g_test_add_func("/dfuse-layout/refusals", test_layout_refusals);
	g_test_add_func("/dfuse-layout/limits", test_layout_limits);
	g_test_add_func("/dfuse-layout/find", test_find);
	g_test_add_func("/dfuse-layout/access-words", test_access_words);
	g_test_add_func("/dfuse-layout/check-range", test_check_range);
	g_test_add_func("/dfuse-layout/erase-list", test_erase_list);
	g_test_add_func("/dfu-plan/dfuse-download", test_plan_dfuse_download);
	g_test_add_func("/dfu-plan/refusals", test_plan_refusals);
	g_test_add_func("/dfu-plan/dfuse-upload", test_plan_dfuse_upload);
	g_test_add_func("/dfu-plan/dfu", test_plan_dfu);
	return g_test_run();
}
