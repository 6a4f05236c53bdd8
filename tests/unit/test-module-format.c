/*
 * The module writer and reader against each other: every function, with
 * and without dependencies, product data, extensions, image headers,
 * compression and combining, must read back exactly as written; and one
 * flipped byte anywhere must be caught.
 */
#include <string.h>

#include "healer-error.h"
#include "module-checksums.h"
#include "module-names.h"
#include "module-reader.h"
#include "module-writer.h"

/* A deterministic raw image: optional vector table, then varied bytes. */
static GBytes *
make_image(gsize len, gsize vector_table, guint32 sp, guint seed)
{
	guint8 *data = g_malloc(len);
	guint32 x = seed * 2654435761u + 1;

	for (gsize i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (guint8)(x >> 16);
	}
	if (vector_table >= 4) {
		data[0] = sp & 0xff;
		data[1] = (sp >> 8) & 0xff;
		data[2] = (sp >> 16) & 0xff;
		data[3] = sp >> 24;
	}
	return g_bytes_new_take(data, len);
}

static GPtrArray *
parse_ok(GBytes *module)
{
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(module, &len);
	GPtrArray *modules = healer_module_parse(data, len, &error);

	g_assert_no_error(error);
	g_assert_nonnull(modules);
	for (guint i = 0; i < modules->len; i++) {
		HealerModule *m = g_ptr_array_index(modules, i);
		if (!healer_module_is_valid(m))
			g_error("module %u: %s", i, (const char *)g_ptr_array_index(m->faults, 0));
	}
	return modules;
}

static void
assert_matches(const HealerModule *m, const HealerModuleSpec *spec)
{
	g_assert_cmpuint(m->start_address, ==, spec->start_address);
	g_assert_cmpuint(m->end_address, ==, spec->start_address + m->length - 4);
	g_assert_cmpuint(m->platform_id, ==, spec->platform_id);
	g_assert_cmpuint(m->function, ==, spec->function);
	g_assert_cmpuint(m->index, ==, spec->index);
	g_assert_cmpuint(m->version, ==, spec->version);
	g_assert_cmpuint(m->mcu_target, ==, spec->mcu_target);
	g_assert_cmpuint(m->prefix_offset, ==, spec->prefix_offset);
	g_assert_cmpuint(m->flags & (MODULE_FLAG_DROP_MODULE_INFO | MODULE_FLAG_ENCRYPTED), ==,
	                 spec->flags & (MODULE_FLAG_DROP_MODULE_INFO | MODULE_FLAG_ENCRYPTED));
	g_assert_cmpuint(!!(m->flags & MODULE_FLAG_COMPRESSED), ==, !!spec->compress);
	g_assert_cmpuint(m->dependencies->len, ==, spec->n_dependencies);
	for (guint i = 0; i < spec->n_dependencies; i++) {
		const HealerModuleDependency *d = &g_array_index(m->dependencies, HealerModuleDependency, i);
		g_assert_cmpuint(d->function, ==, spec->dependencies[i].function);
		g_assert_cmpuint(d->index, ==, spec->dependencies[i].index);
		g_assert_cmpuint(d->version, ==, spec->dependencies[i].version);
		g_assert_cmpuint(d->target, ==, spec->dependencies[i].target);
	}
	g_assert_cmpint(m->has_product, ==, spec->has_product);
	if (spec->has_product) {
		g_assert_cmpuint(m->product_id, ==, spec->product_id);
		g_assert_cmpuint(m->product_version, ==, spec->product_version);
	}
	g_assert_cmpstr(m->name, ==, spec->name);
	g_assert_true(m->crc_ok);
	g_assert_true(m->sha_ok);
}

static GBytes *
write_ok(const HealerModuleSpec *spec, GBytes *image)
{
	g_autoptr(GError) error = NULL;
	GBytes *module = healer_module_write(spec, image, &error);

	g_assert_no_error(error);
	g_assert_nonnull(module);
	return module;
}

static void
test_roundtrip_every_function(void)
{
	for (guint f = 1; f <= MODULE_FUNCTION_MAX; f++) {
		for (guint variant = 0; variant < 4; variant++) {
			HealerModuleSpec spec = {
			        .start_address = 0x08020000 + f * 0x1000,
			        .platform_id = 6,
			        .function = (guint8)f,
			        .index = (guint8)(f % 3),
			        .version = (guint16)(1000 + f * 7 + variant),
			};
			g_autoptr(GBytes) image = make_image(1000 + f * 13, 0, 0, f * 10 + variant);
			g_autoptr(GBytes) module = NULL;
			g_autoptr(GPtrArray) parsed = NULL;

			if (variant >= 1) {
				spec.n_dependencies = 2;
				spec.dependencies[0].function = MODULE_FUNCTION_SYSTEM_PART;
				spec.dependencies[0].index = 2;
				spec.dependencies[0].version = 207;
				spec.dependencies[1].function = MODULE_FUNCTION_BOOTLOADER;
				spec.dependencies[1].version = 1003;
			}
			if (variant >= 2) {
				spec.has_product = TRUE;
				spec.product_id = 6;
				spec.product_version = 42;
			}
			if (variant == 3) {
				/* A third dependency (an extension, with a target) and a name. */
				spec.n_dependencies = 3;
				spec.dependencies[2].function = MODULE_FUNCTION_NCP_FIRMWARE;
				spec.dependencies[2].version = 7;
				spec.dependencies[2].target = 0x21;
				spec.name = "tinker";
			}
			module = write_ok(&spec, image);
			parsed = parse_ok(module);
			g_assert_cmpuint(parsed->len, ==, 1);
			assert_matches(g_ptr_array_index(parsed, 0), &spec);
			if (variant == 3)
				g_assert_true(((HealerModule *)g_ptr_array_index(parsed, 0))->flags &
				              MODULE_FLAG_PREFIX_EXTENSIONS);
		}
	}
}

/* The offsets real images put their prefix at, each with the image header that goes with it. */
static void
test_roundtrip_prefix_offsets(void)
{
	static const struct {
		gsize offset;
		guint16 platform;
		guint32 sp;
	} cases[] = {
	        {0x184, 6, 0x20020000},  /* Gen 2: after an STM32F2 vector table */
	        {0x200, 13, 0x20040000}, /* Gen 3: after an nRF52840 vector table */
	        {0x20, 32, 0},           /* Gen 4: after a Realtek header */
	        {0x10C, 0, 0x20005000},  /* Core */
	        {0xC0, 103, 0x20003000}, /* Bluz */
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		for (int in_place = 0; in_place <= 1; in_place++) {
			HealerModuleSpec spec = {
			        .start_address = 0x30000,
			        .platform_id = cases[i].platform,
			        .function = MODULE_FUNCTION_SYSTEM_PART,
			        .index = 1,
			        .version = 2202,
			        .prefix_offset = cases[i].offset,
			        .in_place = in_place,
			        .has_product = TRUE,
			        .product_id = 0xFFFF,
			        .product_version = 0xFFFF,
			};
			g_autoptr(GBytes) image = make_image(4096, cases[i].offset, cases[i].sp, (guint)i);
			g_autoptr(GBytes) module = write_ok(&spec, image);
			g_autoptr(GPtrArray) parsed = parse_ok(module);

			g_assert_cmpuint(parsed->len, ==, 1);
			assert_matches(g_ptr_array_index(parsed, 0), &spec);
			g_assert_cmpuint(g_bytes_get_size(module), ==, 4096 + 40 + 4 + (in_place ? 0 : 24));
		}
	}
}

static void
test_roundtrip_suffix_extensions(void)
{
	guint8 dynamic_location[12] = {0x00, 0x40, 0x5f, 0x08, 0x00, 0x00, 0x00, 0x10, 0x00, 0x40, 0x5f, 0x08};
	g_autoptr(GArray) exts = g_array_new(FALSE, TRUE, sizeof(HealerExtensionSpec));
	HealerExtensionSpec ext = {.type = MODULE_EXTENSION_DYNAMIC_LOCATION,
	                           .body = g_bytes_new_static(dynamic_location, sizeof dynamic_location)};
	HealerModuleSpec spec = {
	        .start_address = 0x085F4000,
	        .platform_id = 32,
	        .function = MODULE_FUNCTION_USER_PART,
	        .index = 1,
	        .version = 6,
	        .n_dependencies = 1,
	        .dependencies = {{MODULE_FUNCTION_SYSTEM_PART, 1, 5002, 0}},
	        .has_product = TRUE,
	        .product_id = 32,
	        .product_version = 4,
	        .suffix_extensions = exts,
	};
	g_autoptr(GBytes) image = make_image(2000, 0, 0, 99);
	g_autoptr(GBytes) module = NULL;
	g_autoptr(GPtrArray) parsed = NULL;
	HealerModule *m;

	g_array_append_val(exts, ext);
	module = write_ok(&spec, image);
	parsed = parse_ok(module);
	m = g_ptr_array_index(parsed, 0);
	assert_matches(m, &spec);
	/* As Gen 4 devices lay it out: 36 + DYNAMIC_LOCATION (16) + PRODUCT_DATA (10). */
	g_assert_cmpuint(m->suffix_size, ==, 62);
	g_assert_cmpuint(m->suffix_extensions->len, ==, 2);

	/* Without a product the extensions end with END over a 36-byte base. */
	spec.has_product = FALSE;
	g_clear_pointer(&module, g_bytes_unref);
	g_clear_pointer(&parsed, g_ptr_array_unref);
	module = write_ok(&spec, image);
	parsed = parse_ok(module);
	m = g_ptr_array_index(parsed, 0);
	assert_matches(m, &spec);
	g_assert_cmpuint(m->suffix_size, ==, 36 + 16 + 4);
	g_bytes_unref(ext.body);
}

static void
test_drop_module_info(void)
{
	HealerModuleSpec spec = {
	        .start_address = 0x1000,
	        .platform_id = 12,
	        .function = MODULE_FUNCTION_RADIO_STACK,
	        .version = 202,
	        .flags = MODULE_FLAG_DROP_MODULE_INFO,
	        .n_dependencies = 2,
	        .dependencies = {{MODULE_FUNCTION_BOOTLOADER, 0, 501, 0}, {MODULE_FUNCTION_SYSTEM_PART, 1, 1321, 0}},
	};
	g_autoptr(GBytes) image = make_image(3000, 0, 0, 7);
	g_autoptr(GBytes) module = write_ok(&spec, image);
	g_autoptr(GPtrArray) parsed = parse_ok(module);
	HealerModule *m = g_ptr_array_index(parsed, 0);
	guint8 expected[32];

	assert_matches(m, &spec);
	g_assert_cmpuint(m->suffix_size, ==, 36);
	g_assert_false(m->has_product);
	/* The hash covers the payload only, as on real SoftDevice images. */
	healer_sha256(g_bytes_get_data(image, NULL), 3000, expected);
	g_assert_cmpmem(m->sha256_stored, 32, expected, 32);
}

static void
test_compressed(void)
{
	HealerModuleSpec spec = {
	        .start_address = 0xD4000,
	        .platform_id = 13,
	        .function = MODULE_FUNCTION_USER_PART,
	        .index = 1,
	        .version = 5,
	        .compress = TRUE,
	};
	guint8 raw[4096];
	g_autoptr(GBytes) image = NULL, module = NULL;
	g_autoptr(GPtrArray) parsed = NULL;
	HealerModule *m;

	for (gsize i = 0; i < sizeof raw; i++)
		raw[i] = (guint8)(i / 64); /* compressible */
	image = g_bytes_new(raw, sizeof raw);
	module = write_ok(&spec, image);
	parsed = parse_ok(module);
	m = g_ptr_array_index(parsed, 0);
	assert_matches(m, &spec);
	g_assert_true(m->compressed_header_present);
	g_assert_cmpuint(m->compressed.original_size, ==, sizeof raw);
	g_assert_cmpuint(m->compressed.method, ==, 0);
	g_assert_cmpuint(g_bytes_get_size(module), <, sizeof raw);

	/* Devices take compressed payloads only for system and user parts and assets. */
	spec.function = MODULE_FUNCTION_BOOTLOADER;
	g_clear_pointer(&module, g_bytes_unref);
	g_clear_pointer(&parsed, g_ptr_array_unref);
	module = write_ok(&spec, image);
	parsed = healer_module_parse(g_bytes_get_data(module, NULL), g_bytes_get_size(module), NULL);
	g_assert_nonnull(parsed);
	m = g_ptr_array_index(parsed, 0);
	g_assert_false(healer_module_is_valid(m));
	g_assert_nonnull(strstr(g_ptr_array_index(m->faults, 0), "COMPRESSED"));
}

static void
test_combined(void)
{
	HealerModuleSpec a = {.start_address = 0x08020000,
	                      .platform_id = 6,
	                      .function = MODULE_FUNCTION_SYSTEM_PART,
	                      .index = 1,
	                      .version = 1000,
	                      .prefix_offset = 0x184};
	HealerModuleSpec b = {.start_address = 0x080A0000,
	                      .platform_id = 6,
	                      .function = MODULE_FUNCTION_USER_PART,
	                      .index = 1,
	                      .version = 3,
	                      .n_dependencies = 1,
	                      .dependencies = {{MODULE_FUNCTION_SYSTEM_PART, 1, 1000, 0}}};
	g_autoptr(GBytes) ia = make_image(1500, 0x184, 0x20020000, 1), ib = make_image(700, 0, 0, 2);
	g_autoptr(GPtrArray) inputs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_autoptr(GBytes) combined = NULL;
	g_autoptr(GPtrArray) parsed = NULL;
	g_autoptr(GError) error = NULL;
	HealerModule *m1, *m2;

	g_ptr_array_add(inputs, write_ok(&a, ia));
	g_ptr_array_add(inputs, write_ok(&b, ib));
	combined = healer_module_combine(inputs, &error);
	g_assert_no_error(error);
	parsed = parse_ok(combined);
	g_assert_cmpuint(parsed->len, ==, 2);
	m1 = g_ptr_array_index(parsed, 0);
	m2 = g_ptr_array_index(parsed, 1);
	g_assert_true(m1->flags & MODULE_FLAG_COMBINED);
	g_assert_false(m2->flags & MODULE_FLAG_COMBINED);
	assert_matches(m1, &a);
	assert_matches(m2, &b);
	g_assert_cmpuint(m2->file_offset, ==, m1->length);
}

/* Every single-byte change, anywhere, is caught. */
static void
check_every_flip(GBytes *module)
{
	gsize len = 0;
	const guint8 *orig = g_bytes_get_data(module, &len);
	g_autofree guint8 *copy = g_memdup2(orig, len);

	for (gsize i = 0; i < len; i++) {
		for (guint bit = 0; bit < 8; bit += 7) {
			g_autoptr(GPtrArray) parsed = NULL;
			g_autoptr(GError) error = NULL;
			gboolean caught = FALSE;

			copy[i] ^= (guint8)(1u << bit);
			parsed = healer_module_parse(copy, len, &error);
			if (parsed == NULL) {
				g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
				caught = TRUE;
			} else {
				for (guint k = 0; k < parsed->len; k++)
					caught |= !healer_module_is_valid(g_ptr_array_index(parsed, k));
			}
			if (!caught)
				g_error("flipping bit %u of byte %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
				        " went unnoticed",
				        bit, i, len);
			copy[i] = orig[i];
		}
	}
}

static void
test_every_flip_caught(void)
{
	HealerModuleSpec specs[] = {
	        {.start_address = 0x08020000,
	         .platform_id = 6,
	         .function = MODULE_FUNCTION_SYSTEM_PART,
	         .index = 1,
	         .version = 2202,
	         .prefix_offset = 0x184,
	         .has_product = TRUE,
	         .product_id = 0xFFFF,
	         .product_version = 0xFFFF,
	         .n_dependencies = 1,
	         .dependencies = {{MODULE_FUNCTION_SYSTEM_PART, 2, 207, 0}}},
	        {.start_address = 0xD4000,
	         .platform_id = 13,
	         .function = MODULE_FUNCTION_USER_PART,
	         .index = 1,
	         .version = 6,
	         .n_dependencies = 3,
	         .name = "app",
	         .dependencies = {{MODULE_FUNCTION_SYSTEM_PART, 1, 2011, 0},
	                          {MODULE_FUNCTION_BOOTLOADER, 0, 501, 0},
	                          {MODULE_FUNCTION_NCP_FIRMWARE, 0, 7, 0x21}}},
	        {.start_address = 0x1000,
	         .platform_id = 12,
	         .function = MODULE_FUNCTION_RADIO_STACK,
	         .version = 202,
	         .flags = MODULE_FLAG_DROP_MODULE_INFO},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(specs); i++) {
		g_autoptr(GBytes) image =
		        make_image(i == 0 ? 0x184 + 300 : 300, specs[i].prefix_offset, 0x20020000, (guint)i);
		g_autoptr(GBytes) module = write_ok(&specs[i], image);
		check_every_flip(module);
	}
}

static void
assert_parse_error(const guint8 *data, gsize len, const char *expect)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parsed = healer_module_parse(data, len, &error);

	g_assert_null(parsed);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	if (strstr(error->message, expect) == NULL)
		g_error("expected '%s' in '%s'", expect, error->message);
}

static void
assert_fault(const guint8 *data, gsize len, const char *expect)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parsed = healer_module_parse(data, len, &error);
	HealerModule *m;

	g_assert_no_error(error);
	m = g_ptr_array_index(parsed, parsed->len - 1);
	for (guint i = 0; i < m->faults->len; i++) {
		if (strstr(g_ptr_array_index(m->faults, i), expect) != NULL)
			return;
	}
	g_error("expected a fault containing '%s' (%u faults%s%s)", expect, m->faults->len,
	        m->faults->len ? ", first: " : "", m->faults->len ? (char *)g_ptr_array_index(m->faults, 0) : "");
}

static void
test_named_faults(void)
{
	HealerModuleSpec spec = {.start_address = 0x080A0000,
	                         .platform_id = 6,
	                         .function = MODULE_FUNCTION_USER_PART,
	                         .index = 1,
	                         .version = 4,
	                         .name = "x"};
	g_autoptr(GBytes) image = make_image(500, 0, 0, 5);
	g_autoptr(GBytes) module = write_ok(&spec, image);
	gsize len = 0;
	const guint8 *orig = g_bytes_get_data(module, &len);
	g_autofree guint8 *copy = g_malloc(len + 8);
	g_autofree char *truncated =
	        g_strdup_printf("truncated at %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes", len - 10, len);
	guint8 zeros[256] = {0};

	assert_parse_error(orig, len - 10, truncated);
	assert_parse_error(zeros, sizeof zeros, "no module prefix found");
	assert_parse_error(orig, 0, "empty file");

	memcpy(copy, orig, len);
	copy[len - 1] ^= 0xff;
	assert_fault(copy, len, "CRC-32 stored");

	memcpy(copy, orig, len);
	memset(copy + len, 0xAA, 8);
	assert_fault(copy, len + 8, "8 unexpected bytes after the module end");

	/* The NAME extension's length points past its area. */
	memcpy(copy, orig, len);
	copy[MODULE_PREFIX_SIZE + 2] = 0xff;
	copy[MODULE_PREFIX_SIZE + 3] = 0x7f;
	assert_fault(copy, len, "bad prefix extension at offset 24");
}

/* The only fault of `data`: an edit stamped with fresh SHA-256 and CRC-32 must be named by itself. */
static void
assert_only_fault(guint8 *data, gsize len, const char *expect)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parsed = NULL;
	HealerModule *m;

	g_assert_true(healer_module_restamp(data, len, &error));
	g_assert_no_error(error);
	parsed = healer_module_parse(data, len, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(parsed->len, ==, 1);
	m = g_ptr_array_index(parsed, 0);
	g_assert_true(m->crc_ok);
	g_assert_true(m->sha_ok);
	g_assert_false(healer_module_is_valid(m));
	g_assert_cmpuint(m->faults->len, ==, 1);
	if (strstr(g_ptr_array_index(m->faults, 0), expect) == NULL)
		g_error("expected a fault containing '%s', got '%s'", expect, (char *)g_ptr_array_index(m->faults, 0));
}

/*
 * Header fields a writer cannot produce, restamped so that the hashes match: the reader must name
 * each (mutation testing found no test for them: tests/mutants/mutants.list, reader-unknown-flags and
 * reader-dependency-extension).
 */
static void
test_header_faults(void)
{
	HealerModuleSpec spec = {.start_address = 0x080A0000,
	                         .platform_id = 6,
	                         .function = MODULE_FUNCTION_SYSTEM_PART,
	                         .index = 1,
	                         .version = 4,
	                         .n_dependencies = 3,
	                         .dependencies = {{MODULE_FUNCTION_BOOTLOADER, 0, 1003, 0},
	                                          {MODULE_FUNCTION_SYSTEM_PART, 2, 207, 0},
	                                          {MODULE_FUNCTION_RADIO_STACK, 0, 3, 0}}};
	g_autoptr(GBytes) image = make_image(500, 0, 0, 7);
	g_autoptr(GBytes) module = write_ok(&spec, image);
	g_autoptr(GPtrArray) parsed = parse_ok(module);
	const HealerModule *m = g_ptr_array_index(parsed, 0);
	gsize len = 0;
	const guint8 *orig = g_bytes_get_data(module, &len);
	g_autofree guint8 *copy = g_malloc(len);
	const HealerModuleExtension *dep_ext = NULL;

	/* A flag bit no format defines (0x80), next to the ones set. */
	memcpy(copy, orig, len);
	copy[m->prefix_offset + MODULE_PREFIX_OFF_FLAGS] |= 0x80;
	assert_only_fault(copy, len, "unknown flag bits 0x80");

	/* The third dependency went into a DEPENDENCY extension: make it name function 0 (none). */
	g_assert_cmpuint(m->dependencies->len, ==, 3);
	for (guint i = 0; i < m->prefix_extensions->len; i++) {
		const HealerModuleExtension *ext = g_ptr_array_index(m->prefix_extensions, i);
		if (ext->type == MODULE_EXTENSION_DEPENDENCY)
			dep_ext = ext;
	}
	g_assert_nonnull(dep_ext);
	memcpy(copy, orig, len);
	g_assert_cmpuint(copy[dep_ext->offset + MODULE_EXTENSION_HEADER_SIZE], ==, MODULE_FUNCTION_RADIO_STACK);
	copy[dep_ext->offset + MODULE_EXTENSION_HEADER_SIZE] = MODULE_FUNCTION_NONE;
	assert_only_fault(copy, len, "function 0");
	/* And one past the last function. */
	copy[dep_ext->offset + MODULE_EXTENSION_HEADER_SIZE] = MODULE_FUNCTION_MAX + 1;
	assert_only_fault(copy, len, "bad dependency extension");
}

/*
 * A change the CRC-32 does not show (stamped again over the changed bytes), as an attacker would make:
 * only the SHA-256 catches it.  The flips above all break the CRC too, so they cannot tell whether the
 * SHA-256 is checked at all (mutation testing: reader-sha256).
 */
static void
test_sha256_alone(void)
{
	HealerModuleSpec spec = {.start_address = 0x080A0000,
	                         .platform_id = 6,
	                         .function = MODULE_FUNCTION_USER_PART,
	                         .index = 1,
	                         .version = 4};
	g_autoptr(GBytes) image = make_image(600, 0, 0, 9);
	g_autoptr(GBytes) module = write_ok(&spec, image);
	gsize len = 0;
	const guint8 *orig = g_bytes_get_data(module, &len);
	g_autofree guint8 *copy = g_memdup2(orig, len);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parsed = NULL;
	HealerModule *m;
	guint32 crc;

	copy[300] ^= 0x01;
	crc = healer_crc32(copy, len - MODULE_CRC_SIZE);
	copy[len - 4] = (guint8)(crc >> 24);
	copy[len - 3] = (guint8)(crc >> 16);
	copy[len - 2] = (guint8)(crc >> 8);
	copy[len - 1] = (guint8)crc;
	parsed = healer_module_parse(copy, len, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(parsed->len, ==, 1);
	m = g_ptr_array_index(parsed, 0);
	g_assert_true(m->crc_ok);
	g_assert_false(m->sha_ok);
	g_assert_false(healer_module_is_valid(m));
	g_assert_cmpuint(m->faults->len, ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(m->faults, 0), "SHA-256 stored "));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/module/roundtrip/every-function", test_roundtrip_every_function);
	g_test_add_func("/module/roundtrip/prefix-offsets", test_roundtrip_prefix_offsets);
	g_test_add_func("/module/roundtrip/suffix-extensions", test_roundtrip_suffix_extensions);
	g_test_add_func("/module/roundtrip/drop-module-info", test_drop_module_info);
	g_test_add_func("/module/roundtrip/compressed", test_compressed);
	g_test_add_func("/module/roundtrip/combined", test_combined);
	g_test_add_func("/module/integrity/every-flip-caught", test_every_flip_caught);
	g_test_add_func("/module/integrity/named-faults", test_named_faults);
	g_test_add_func("/module/integrity/header-faults", test_header_faults);
	g_test_add_func("/module/integrity/sha256-alone", test_sha256_alone);
	return g_test_run();
}
