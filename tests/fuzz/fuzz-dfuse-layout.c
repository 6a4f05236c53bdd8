/*
 * The DfuSe layout parser on arbitrary bytes (the string an alternate setting of any USB device
 * names itself with), then every query on whatever layout it accepts: segments ordered within
 * the address space and apart, the shortest form never longer than the input and parsed back to
 * the same layout, every erase list inside the range and made of erasable sectors, every range
 * check agreeing with a byte-by-byte look.
 */
#include "fuzz-target.h"

#include <string.h>

#include "dfu-download-plan.h"
#include "dfuse-layout.h"

static void
check_same(const HealerDfuseLayout *a, const HealerDfuseLayout *b)
{
	g_assert_cmpstr(a->name, ==, b->name);
	g_assert_cmpuint(a->segments->len, ==, b->segments->len);
	for (guint i = 0; i < a->segments->len; i++) {
		const HealerDfuseSegment *x = &g_array_index(a->segments, HealerDfuseSegment, i);
		const HealerDfuseSegment *y = &g_array_index(b->segments, HealerDfuseSegment, i);

		g_assert_cmpuint(x->start, ==, y->start);
		g_assert_cmpuint(x->end, ==, y->end);
		g_assert_cmpuint(x->sector_size, ==, y->sector_size);
		g_assert_cmpuint(x->n_sectors, ==, y->n_sectors);
		g_assert_cmpint(x->attribute, ==, y->attribute);
	}
}

/* Whether every byte of [address, address + length) has `access`, found one byte at a time. */
static gboolean
range_has(const HealerDfuseLayout *layout, guint32 address, guint32 length, guint access)
{
	for (guint64 at = address; at < (guint64)address + length; at++) {
		const HealerDfuseSegment *s = healer_dfuse_layout_find_segment(layout, (guint32)at);
		if (s == NULL || (s->access & access) != access)
			return FALSE;
	}
	return TRUE;
}

/* A short range (a byte-by-byte look must stay cheap): every query against that look. */
static void
check_range(const HealerDfuseLayout *layout, guint32 address, guint32 length)
{
	static const guint accesses[] = {HEALER_DFUSE_READABLE, HEALER_DFUSE_WRITABLE,
	                                 HEALER_DFUSE_WRITABLE | HEALER_DFUSE_ERASABLE};
	g_autoptr(GArray) erase = NULL;
	g_autoptr(GError) error = NULL;
	guint64 end = (guint64)address + length;
	guint64 previous_end = 0;

	g_assert_cmpuint(length, <=, 64);
	if (length == 0 || end > G_GUINT64_CONSTANT(0x100000000))
		return;
	for (gsize i = 0; i < G_N_ELEMENTS(accesses); i++) {
		gboolean ok = healer_dfuse_layout_check_range(layout, address, length, accesses[i], &error);
		g_assert_cmpint(ok, ==, range_has(layout, address, length, accesses[i]));
		g_assert_true(ok == (error == NULL));
		g_clear_error(&error);
	}
	erase = healer_dfuse_layout_erase_list(layout, address, length, &error);
	g_assert_true((erase != NULL) == range_has(layout, address, length, HEALER_DFUSE_WRITABLE));
	if (erase == NULL)
		return;
	/* In address order, apart, erasable, touching the range... */
	for (guint i = 0; i < erase->len; i++) {
		const HealerDfuseSector *s = &g_array_index(erase, HealerDfuseSector, i);
		g_assert_true(s->segment->access & HEALER_DFUSE_ERASABLE);
		g_assert_cmpuint(s->start, >=, previous_end);
		g_assert_cmpuint((guint64)s->start + s->size, >, address);
		g_assert_cmpuint(s->start, <, end);
		previous_end = (guint64)s->start + s->size;
	}
	/* ...and every erasable sector the range touches is there. */
	for (guint64 at = address; at < end; at++) {
		HealerDfuseSector sector;
		gboolean listed = FALSE;

		g_assert_true(healer_dfuse_layout_find_sector(layout, (guint32)at, &sector));
		g_assert_cmpuint(sector.start, <=, at);
		g_assert_cmpuint(at, <, (guint64)sector.start + sector.size);
		for (guint i = 0; i < erase->len; i++)
			listed = listed || g_array_index(erase, HealerDfuseSector, i).start == sector.start;
		g_assert_cmpint(listed, ==, (sector.segment->access & HEALER_DFUSE_ERASABLE) != 0);
	}
	{
		g_autoptr(HealerDfuPlan) plan = healer_dfuse_download_plan_new(layout, address, length, 16, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(plan->erase->len, ==, erase->len);
		g_assert_cmpuint(plan->n_blocks, ==, (length + 15) / 16);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	g_autoptr(HealerDfuseLayout) layout = NULL;
	g_autoptr(HealerDfuseLayout) again = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;

	if (!initialized) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}

	layout = healer_dfuse_layout_parse((const char *)data, (gssize)size, &error);
	if (layout == NULL) {
		g_assert_nonnull(error);
		g_assert_true(g_str_has_prefix(error->message, "DfuSe layout"));
		return 0;
	}
	g_assert_null(error);
	g_assert_cmpuint(size, <=, HEALER_DFUSE_LAYOUT_MAX_LENGTH);
	g_assert_cmpuint(strlen(layout->name), >, 0);
	g_assert_cmpuint(layout->segments->len, >, 0);
	for (guint i = 0; i < layout->segments->len; i++) {
		const HealerDfuseSegment *s = &g_array_index(layout->segments, HealerDfuseSegment, i);

		g_assert_cmpuint(s->n_sectors, >=, 1);
		g_assert_cmpuint(s->n_sectors, <=, HEALER_DFUSE_LAYOUT_MAX_SECTORS);
		g_assert_cmpuint(s->sector_size, >=, 1);
		g_assert_cmpuint(s->end, <=, G_GUINT64_CONSTANT(0x100000000));
		g_assert_cmpuint(s->end - s->start, ==, (guint64)s->n_sectors * s->sector_size);
		g_assert_cmpuint(s->access, ==, (guint)(s->attribute - 'a' + 1));
		g_assert_cmpuint(s->offset, <, size);
		g_assert_true(healer_dfuse_layout_find_segment(layout, s->start) == s);
		g_assert_true(healer_dfuse_layout_find_segment(layout, (guint32)(s->end - 1)) == s);
		for (guint j = 0; j < i; j++) {
			const HealerDfuseSegment *o = &g_array_index(layout->segments, HealerDfuseSegment, j);
			g_assert_true(s->end <= o->start || o->end <= s->start);
		}
		/* Queries on each segment's edges and across its neighbours. */
		check_range(layout, s->start, (guint32)MIN(s->end - s->start, 64));
		if (s->start > 0)
			check_range(layout, s->start - 1, 2);
		check_range(layout, (guint32)(s->end - 1), 2);
		if (s->n_sectors > 1)
			check_range(layout, s->start + s->sector_size - 1, 2);
	}

	text = healer_dfuse_layout_to_string(layout);
	g_assert_cmpuint(strlen(text), <=, size);
	again = healer_dfuse_layout_parse(text, -1, &error);
	g_assert_no_error(error);
	check_same(layout, again);
	return 0;
}
