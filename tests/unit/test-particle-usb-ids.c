/*
 * Particle's USB identities and module slots (particle-usb-ids.h): every platform of the
 * reference's table in both modes, the ROM bootloader and the Core, the ids that must stay
 * unknown; every slot against its platform's own DfuSe layout (writable where healerd writes,
 * read-only where the bootloader sits, readable for the header read); and a module header found
 * in the first HEALER_PARTICLE_HEADER_READ_SIZE bytes of each generation's modules by
 * healer_module_parse_header().
 */
#include <string.h>

#include "dfuse-layout.h"
#include "healer-error.h"
#include "module-reader.h"
#include "module-writer.h"
#include "particle-usb-ids.h"

/* @particle/device-constants: platform, id, generation, normal and DFU product ids. */
static const struct {
	const char *name;
	guint16 id;
	guint generation;
	guint16 normal, dfu;
	gboolean rtl872x;
} platforms[] = {
        {"photon", 6, 2, 0xC006, 0xD006, FALSE},    {"p1", 8, 2, 0xC008, 0xD008, FALSE},
        {"electron", 10, 2, 0xC00A, 0xD00A, FALSE}, {"argon", 12, 3, 0xC00C, 0xD00C, FALSE},
        {"boron", 13, 3, 0xC00D, 0xD00D, FALSE},    {"xenon", 14, 3, 0xC00E, 0xD00E, FALSE},
        {"esomx", 15, 3, 0xC00F, 0xD00F, FALSE},    {"asom", 22, 3, 0xC016, 0xD016, FALSE},
        {"bsom", 23, 3, 0xC017, 0xD017, FALSE},     {"xsom", 24, 3, 0xC018, 0xD018, FALSE},
        {"b5som", 25, 3, 0xC019, 0xD019, FALSE},    {"tracker", 26, 3, 0xC01A, 0xD01A, FALSE},
        {"trackerm", 28, 4, 0xC01C, 0xD01C, TRUE},  {"p2", 32, 4, 0xC020, 0xD020, TRUE},
        {"msom", 35, 4, 0xC023, 0xD023, TRUE},      {"electron2", 37, 3, 0xC025, 0xD025, FALSE},
        {"sulu", 38, 4, 0xC026, 0xD026, TRUE},
};

static void
test_particle_ids(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(platforms); i++) {
		HealerUsbIdentity id;

		g_test_message("%s", platforms[i].name);
		g_assert_true(healer_usb_identify(0x2B04, platforms[i].normal, &id));
		g_assert_cmpint(id.mode, ==, HEALER_USB_MODE_NORMAL);
		g_assert_nonnull(id.platform);
		g_assert_cmpuint(id.platform->id, ==, platforms[i].id);
		g_assert_cmpstr(id.platform->name, ==, platforms[i].name);
		g_assert_cmpuint(id.platform->generation, ==, platforms[i].generation);
		g_assert_cmpuint(id.vendor_id, ==, 0x2B04);
		g_assert_cmpuint(id.product_id, ==, platforms[i].normal);
		g_assert_cmpuint(id.quirks, ==, platforms[i].rtl872x ? HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA : 0);

		g_assert_true(healer_usb_identify(0x2B04, platforms[i].dfu, &id));
		g_assert_cmpint(id.mode, ==, HEALER_USB_MODE_DFU);
		g_assert_cmpuint(id.platform->id, ==, platforms[i].id);
		g_assert_cmpuint(id.quirks, ==, platforms[i].rtl872x ? HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA : 0);

		g_assert_cmphex(healer_usb_particle_product_id(platforms[i].id, HEALER_USB_MODE_NORMAL), ==,
		                platforms[i].normal);
		g_assert_cmphex(healer_usb_particle_product_id(platforms[i].id, HEALER_USB_MODE_DFU), ==,
		                platforms[i].dfu);
		g_assert_cmphex(healer_usb_particle_product_id(platforms[i].id, HEALER_USB_MODE_ROM_DFU), ==, 0);
	}
}

static void
test_other_ids(void)
{
	HealerUsbIdentity id;
	const struct {
		guint16 vendor, product;
	} unknown[] = {
	        {0x2B04, 0xC000}, /* platform 0 has its own ids */
	        {0x2B04, 0xD003}, /* gcc: healerd's simulator id, no USB */
	        {0x2B04, 0xC067}, /* bluz (103) */
	        {0x2B04, 0xC02A}, /* tachyon: no control requests, nothing to heal */
	        {0x2B04, 0xD02A}, {0x2B04, 0xC0FF}, {0x2B04, 0xE006}, /* the pattern with another prefix */
	        {0x2B04, 0x0006}, {0x2B04, 0xC106}, {0x0483, 0x5740}, /* an STM32 virtual COM port */
	        {0x0483, 0xDF10}, {0x1D50, 0x6080}, {0x1D50, 0x607E}, {0x0000, 0x0000}, {0x2B05, 0xD006},
	};

	g_assert_true(healer_usb_identify(0x0483, 0xDF11, &id));
	g_assert_cmpint(id.mode, ==, HEALER_USB_MODE_ROM_DFU);
	g_assert_null(id.platform);
	g_assert_cmpuint(id.quirks, ==, 0);

	g_assert_true(healer_usb_identify(0x1D50, 0x607F, &id));
	g_assert_cmpint(id.mode, ==, HEALER_USB_MODE_DFU);
	g_assert_cmpstr(id.platform->name, ==, "core");
	g_assert_true(healer_usb_identify(0x1D50, 0x607D, &id));
	g_assert_cmpint(id.mode, ==, HEALER_USB_MODE_NORMAL);
	g_assert_cmpuint(id.platform->id, ==, 0);
	g_assert_cmphex(healer_usb_particle_product_id(0, HEALER_USB_MODE_DFU), ==, 0x607F);
	g_assert_cmphex(healer_usb_particle_product_id(0, HEALER_USB_MODE_NORMAL), ==, 0x607D);
	g_assert_cmphex(healer_usb_particle_product_id(0, HEALER_USB_MODE_ROM_DFU), ==, 0);
	g_assert_cmphex(healer_usb_particle_product_id(42, HEALER_USB_MODE_NORMAL), ==, 0);
	g_assert_cmphex(healer_usb_particle_product_id(3, HEALER_USB_MODE_DFU), ==, 0);

	for (gsize i = 0; i < G_N_ELEMENTS(unknown); i++) {
		HealerUsbIdentity untouched = {.vendor_id = 1, .product_id = 2};

		g_test_message("%04x:%04x", unknown[i].vendor, unknown[i].product);
		g_assert_false(healer_usb_identify(unknown[i].vendor, unknown[i].product, &untouched));
		g_assert_cmpuint(untouched.vendor_id, ==, 1);
	}

	g_assert_cmpstr(healer_usb_mode_to_string(HEALER_USB_MODE_NORMAL), ==, "normal");
	g_assert_cmpstr(healer_usb_mode_to_string(HEALER_USB_MODE_DFU), ==, "dfu");
	g_assert_cmpstr(healer_usb_mode_to_string(HEALER_USB_MODE_ROM_DFU), ==, "rom-dfu");
}

/* ---- slots ------------------------------------------------------------------------------------ */

typedef struct {
	guint8 function, index;
	guint32 address, max_size;
	guint flags;
} Slot;

static void
expect_slots(guint16 platform_id, const Slot *want, gsize n_want)
{
	gsize n = 99;
	const HealerParticleSlot *slots = healer_particle_slots(platform_id, &n);

	g_assert_nonnull(slots);
	g_assert_cmpuint(n, ==, n_want);
	for (gsize i = 0; i < n; i++) {
		g_assert_cmpuint(slots[i].function, ==, want[i].function);
		g_assert_cmpuint(slots[i].index, ==, want[i].index);
		g_assert_cmphex(slots[i].address, ==, want[i].address);
		g_assert_cmphex(slots[i].max_size, ==, want[i].max_size);
		g_assert_cmpuint(slots[i].flags, ==, want[i].flags);
		g_assert_cmpuint(slots[i].alt, ==, 0);
		if (i > 0)
			g_assert_cmphex(slots[i].address, >=, slots[i - 1].address);
	}
}

static void
test_slots(void)
{
	/* Device OS ota_module_bounds.c. */
	const Slot photon[] = {
	        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08000000, 0x4000, HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU},
	        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000, 0x40000, 0},
	        {MODULE_FUNCTION_SYSTEM_PART, 2, 0x08060000, 0x40000, 0},
	        {MODULE_FUNCTION_USER_PART, 1, 0x080A0000, 0x20000, 0},
	};
	const Slot electron[] = {
	        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08000000, 0x4000, HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU},
	        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000, 0x20000, 0},
	        {MODULE_FUNCTION_SYSTEM_PART, 2, 0x08040000, 0x20000, 0},
	        {MODULE_FUNCTION_SYSTEM_PART, 3, 0x08060000, 0x20000, 0},
	        {MODULE_FUNCTION_USER_PART, 1, 0x08080000, 0x20000, 0},
	};
	const Slot gen3[] = {
	        {MODULE_FUNCTION_RADIO_STACK, 0, 0x00001000, 0x2F000, HEALER_PARTICLE_SLOT_NO_HEADER},
	        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x00028000, 0x8C000, HEALER_PARTICLE_SLOT_ALTERNATIVE},
	        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x00030000, 0xA4000, HEALER_PARTICLE_SLOT_ALTERNATIVE},
	        {MODULE_FUNCTION_USER_PART, 2, 0x000B4000, 0x40000, 0},
	        {MODULE_FUNCTION_USER_PART, 1, 0x000D4000, 0x20000, 0},
	        {MODULE_FUNCTION_BOOTLOADER, 0, 0x000F4000, 0xC000, HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU},
	};
	const Slot gen4[] = {
	        {MODULE_FUNCTION_BOOTLOADER, 1, 0x08000000, 0x2000, HEALER_PARTICLE_SLOT_ENCRYPTED},
	        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08004000, 0x10000, 0},
	        {MODULE_FUNCTION_BOOTLOADER, 2, 0x08014000, 0x4A000, 0},
	        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08060000, 0x180000, 0},
	        {MODULE_FUNCTION_USER_PART, 1, 0x08480000, 0x180000, HEALER_PARTICLE_SLOT_FIXED_END},
	};
	const guint16 none[] = {0, 3, 42, 103, 9999};
	gsize n = 99;

	expect_slots(6, photon, G_N_ELEMENTS(photon));
	expect_slots(8, photon, G_N_ELEMENTS(photon));
	expect_slots(10, electron, G_N_ELEMENTS(electron));
	for (gsize i = 0; i < G_N_ELEMENTS(platforms); i++) {
		if (platforms[i].generation == 3)
			expect_slots(platforms[i].id, gen3, G_N_ELEMENTS(gen3));
		else if (platforms[i].generation == 4)
			expect_slots(platforms[i].id, gen4, G_N_ELEMENTS(gen4));
	}
	for (gsize i = 0; i < G_N_ELEMENTS(none); i++) {
		g_assert_null(healer_particle_slots(none[i], &n));
		g_assert_cmpuint(n, ==, 0);
		n = 99;
	}
	g_assert_cmpuint(HEALER_PARTICLE_HEADER_READ_SIZE, ==, 0x218);
}

/*
 * Every slot against the alternate setting 0 layout its bootloader reports (Device OS's
 * usbd_flash_if.h and usbd_dfu_mal.h): the header read is readable; what healerd may write is
 * writable; what is marked read-only over DFU is not.  Two sources of fact that must agree.
 */
static void
test_slots_against_layouts(void)
{
	static const struct {
		guint generation;
		const char *layout;
	} layouts[] = {
	        {2, "@Internal Flash /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"},
	        {3, "@Internal Flash /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"},
	        {4, "@Internal Flash /0x08000000/2048*004Kg"},
	};

	for (gsize p = 0; p < G_N_ELEMENTS(platforms); p++) {
		g_autoptr(HealerDfuseLayout) layout = NULL;
		const HealerParticleSlot *slots;
		gsize n = 0;

		for (gsize l = 0; l < G_N_ELEMENTS(layouts); l++) {
			if (layouts[l].generation == platforms[p].generation)
				layout = healer_dfuse_layout_parse(layouts[l].layout, -1, NULL);
		}
		g_assert_nonnull(layout);
		slots = healer_particle_slots(platforms[p].id, &n);
		for (gsize i = 0; i < n; i++) {
			const HealerParticleSlot *s = &slots[i];
			g_autoptr(GError) error = NULL;

			g_test_message("%s slot %" G_GSIZE_FORMAT " at 0x%08x", platforms[p].name, i, s->address);
			g_assert_true(healer_dfuse_layout_check_range(layout, s->address, s->max_size,
			                                              HEALER_DFUSE_READABLE, &error));
			g_assert_no_error(error);
			if (s->flags & HEALER_PARTICLE_SLOT_READ_ONLY_OVER_DFU) {
				g_assert_false(healer_dfuse_layout_check_range(layout, s->address, s->max_size,
				                                               HEALER_DFUSE_WRITABLE, &error));
				g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
			} else if (!(s->flags & (HEALER_PARTICLE_SLOT_ENCRYPTED | HEALER_PARTICLE_SLOT_NO_HEADER))) {
				g_assert_true(healer_dfuse_layout_check_range(
				        layout, s->address, s->max_size, HEALER_DFUSE_WRITABLE | HEALER_DFUSE_ERASABLE,
				        &error));
				g_assert_no_error(error);
			}
		}
	}
}

/* ---- module headers read by UPLOAD ------------------------------------------------------------ */

/* A module of `size` image bytes whose first word looks like an initial stack pointer when `vectors`. */
static GBytes *
make_module(const HealerModuleSpec *spec, gsize size, gboolean vectors)
{
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *image = g_malloc(size);
	g_autoptr(GBytes) bytes = NULL;
	GBytes *module;

	for (gsize i = 0; i < size; i++)
		image[i] = (guint8)(i * 7 + 3);
	if (vectors) {
		image[0] = 0x00;
		image[1] = 0x00;
		image[2] = 0x02;
		image[3] = 0x20; /* 0x20020000 */
	}
	bytes = g_bytes_new(image, size);
	module = healer_module_write(spec, bytes, &error);
	g_assert_no_error(error);
	return module;
}

static void
test_header_from_upload(void)
{
	const struct {
		const char *what;
		guint16 platform_id;
		guint8 function, index;
		guint32 address;
		gsize prefix_offset;
		gboolean vectors;
	} cases[] = {
	        {"Photon system part 2 behind its vector table", 6, MODULE_FUNCTION_SYSTEM_PART, 2, 0x08060000, 0x184,
	         TRUE},
	        {"Photon user part at 0", 6, MODULE_FUNCTION_USER_PART, 1, 0x080A0000, 0, FALSE},
	        {"Boron system part behind its vector table", 13, MODULE_FUNCTION_SYSTEM_PART, 1, 0x00028000, 0x200,
	         TRUE},
	        {"Argon bootloader", 12, MODULE_FUNCTION_BOOTLOADER, 0, 0x000F4000, 0x200, TRUE},
	        {"P2 bootloader behind a Realtek header", 32, MODULE_FUNCTION_BOOTLOADER, 0, 0x08004000, 0x20, FALSE},
	        {"P2 system part", 32, MODULE_FUNCTION_SYSTEM_PART, 1, 0x08060000, 0, FALSE},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		HealerModuleSpec spec = {
		        .start_address = cases[i].address,
		        .platform_id = cases[i].platform_id,
		        .function = cases[i].function,
		        .index = cases[i].index,
		        .version = (guint16)(2000 + i),
		        .n_dependencies = 1,
		        .dependencies = {{MODULE_FUNCTION_BOOTLOADER, 0, 1003, 0}},
		        .prefix_offset = cases[i].prefix_offset,
		};
		g_autoptr(GBytes) module = make_module(&spec, 4096, cases[i].vectors);
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(module, &len);
		g_autoptr(GError) error = NULL;
		g_autoptr(HealerModule) header = NULL;
		g_autoptr(GPtrArray) whole = NULL;
		const HealerModule *full;

		g_test_message("%s", cases[i].what);
		g_assert_cmpuint(len, >, HEALER_PARTICLE_HEADER_READ_SIZE);
		header = healer_module_parse_header(data, HEALER_PARTICLE_HEADER_READ_SIZE, &error);
		g_assert_no_error(error);
		whole = healer_module_parse(data, len, &error);
		g_assert_no_error(error);
		full = g_ptr_array_index(whole, 0);

		g_assert_true(header->header_only);
		g_assert_false(healer_module_is_valid(header));
		g_assert_true(healer_module_is_valid(full));
		g_assert_cmpuint(header->faults->len, ==, 0);
		g_assert_false(header->crc_ok);
		g_assert_cmpuint(header->prefix_offset, ==, cases[i].prefix_offset);
		/* Every prefix field as the whole module's reading has it. */
		g_assert_cmphex(header->start_address, ==, cases[i].address);
		g_assert_cmphex(header->start_address, ==, full->start_address);
		g_assert_cmphex(header->end_address, ==, full->end_address);
		g_assert_cmpuint(header->length, ==, full->length);
		g_assert_cmpuint(header->length, ==, len);
		g_assert_cmpuint(header->platform_id, ==, cases[i].platform_id);
		g_assert_cmpuint(header->function, ==, cases[i].function);
		g_assert_cmpuint(header->index, ==, cases[i].index);
		g_assert_cmpuint(header->version, ==, full->version);
		g_assert_cmpuint(header->flags, ==, full->flags);
		g_assert_cmpuint(header->dependencies->len, ==, 1);
		g_assert_cmpuint(g_array_index(header->dependencies, HealerModuleDependency, 0).version, ==, 1003);
	}
}

static void
test_header_refusals(void)
{
	guint8 erased[HEALER_PARTICLE_HEADER_READ_SIZE];
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerModule) header = NULL;

	/* An erased slot. */
	memset(erased, 0xFF, sizeof(erased));
	header = healer_module_parse_header(erased, sizeof(erased), &error);
	g_assert_null(header);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr(error->message, ==,
	                "no module prefix found (tried offsets 0, 0x184, 0x200, 0x20, 0x10c, 0xc0 of 536 bytes)");
	g_clear_error(&error);
	header = healer_module_parse_header(erased, 0, &error);
	g_assert_null(header);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);

	/* What the prefix alone shows wrong is a fault. */
	{
		HealerModuleSpec spec = {.start_address = 0x08020000,
		                         .platform_id = 6,
		                         .function = MODULE_FUNCTION_SYSTEM_PART,
		                         .index = 1};
		g_autoptr(GBytes) module = make_module(&spec, 2048, FALSE);
		g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(module, NULL), HEALER_PARTICLE_HEADER_READ_SIZE);

		copy[MODULE_PREFIX_OFF_FLAGS] |= 0x40;
		g_clear_error(&error);
		header = healer_module_parse_header(copy, HEALER_PARTICLE_HEADER_READ_SIZE, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(header->faults->len, ==, 1);
		g_assert_cmpstr(g_ptr_array_index(header->faults, 0), ==, "unknown flag bits 0x40");
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/particle-usb-ids/particle", test_particle_ids);
	g_test_add_func("/particle-usb-ids/others", test_other_ids);
	g_test_add_func("/particle-usb-ids/slots", test_slots);
	g_test_add_func("/particle-usb-ids/slots-against-layouts", test_slots_against_layouts);
	g_test_add_func("/particle-usb-ids/header-from-upload", test_header_from_upload);
	g_test_add_func("/particle-usb-ids/header-refusals", test_header_refusals);
	return g_test_run();
}
