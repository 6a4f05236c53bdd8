/*
 * How fast libhealer reads and verifies modules (prefix search, extensions,
 * suffix, CRC-32 and SHA-256), by module size.  Prints a table; it passes or
 * fails nothing.  Run: meson compile -C build && build/bench/bench-module-reader
 */
#include <stdio.h>

#include "module-reader.h"
#include "module-writer.h"

static GBytes *
make_module(gsize payload)
{
	HealerModuleSpec spec = {.start_address = 0x08020000,
				 .platform_id = 6,
				 .function = MODULE_FUNCTION_SYSTEM_PART,
				 .index = 1,
				 .version = 1000,
				 .prefix_offset = 0x184,
				 .has_product = TRUE,
				 .product_id = 0xFFFF,
				 .product_version = 0xFFFF};
	guint8 *raw = g_malloc(payload);
	g_autoptr(GBytes) image = NULL;

	for (gsize i = 0; i < payload; i++)
		raw[i] = (guint8)(i * 2654435761u >> 13);
	raw[0] = 0x00, raw[1] = 0x00, raw[2] = 0x02, raw[3] = 0x20; /* stack pointer: a vector table */
	image = g_bytes_new_take(raw, payload);
	return healer_module_write(&spec, image, NULL);
}

int
main(void)
{
	const gsize sizes[] = {4 << 10, 16 << 10, 128 << 10, 256 << 10, 1536 << 10};

	printf("# libhealer module reader: parse + CRC-32 + SHA-256 (one core)\n");
	printf("%12s %10s %14s %12s\n", "module bytes", "runs", "us per module", "MB/s");
	for (gsize s = 0; s < G_N_ELEMENTS(sizes); s++) {
		g_autoptr(GBytes) module = make_module(sizes[s]);
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(module, &len);
		guint runs = (guint)MAX(20, (64u << 20) / len);
		gint64 start = g_get_monotonic_time();
		gdouble us;

		for (guint r = 0; r < runs; r++) {
			g_autoptr(GPtrArray) parsed = healer_module_parse(data, len, NULL);
			g_assert(parsed != NULL && healer_module_is_valid(g_ptr_array_index(parsed, 0)));
		}
		us = (gdouble)(g_get_monotonic_time() - start) / runs;
		printf("%12" G_GSIZE_FORMAT " %10u %14.1f %12.1f\n", len, runs, us, (gdouble)len / us);
	}
	return 0;
}
