/*
 * The firmware's module check (device-firmware/system/module-check.c), the
 * code the bootloader trusts before it runs anything, on a board whose flash
 * is a buffer: every module the firmware build makes, and modules written
 * for every place the suffix's hash field can fall in the check's 256-byte
 * reads.  The image's SHA-256 and the whole file's (what a BEGIN names) come
 * from one pass over the bytes; both must equal OpenSSL's, and a changed
 * byte anywhere must fail the check.
 */
#include <string.h>

#include <glib.h>
#include <openssl/sha.h>

#include "hal.h"
#include "module-check.h"
#include "module-writer.h"

#define FLASH_START 0x08000000u
#define FLASH_SIZE  (256u * 1024u)
#define SLOT_START  (FLASH_START + 0x20000u)

static guint8 flash[FLASH_SIZE];

static const hal_board_t board = {
        .platform_id = 6,
        .flash_start = FLASH_START,
        .flash_size = FLASH_SIZE,
        .slots = {{.function = MODULE_FUNCTION_SYSTEM_PART, .index = 1, .start = SLOT_START, .size = 0x20000u}},
        .n_slots = 1,
};

/* The two HAL calls module-check.c makes. */
const hal_board_t *
hal_board(void)
{
	return &board;
}

int
hal_flash_read(uint32_t addr, void *buf, size_t len)
{
	if (addr < FLASH_START || addr - FLASH_START > FLASH_SIZE || len > FLASH_SIZE - (addr - FLASH_START))
		return -1;
	memcpy(buf, flash + (addr - FLASH_START), len);
	return 0;
}

/* Puts `module` into the slot and checks it; whole gets the whole image's hash. */
static gboolean
check_in_slot(const guint8 *module, gsize len, guint8 whole[32], module_report_t *report)
{
	memset(flash, 0xFF, sizeof flash);
	g_assert_cmpuint(len, <=, board.slots[0].size);
	memcpy(flash + (SLOT_START - FLASH_START), module, len);
	module_check_slot(&board.slots[0], report, whole);
	return (report->passed & MODULE_VALIDATION_INTEGRITY) != 0;
}

/* Checks a good module, then the same module with one byte changed at each of `offsets`. */
static void
check_module(const char *what, const guint8 *module, gsize len)
{
	g_autofree guint8 *copy = g_memdup2(module, len);
	guint8 expected[32], whole[32], suffix_sha[32], payload[32];
	module_report_t report;
	module_prefix_t prefix;
	gsize offsets[] = {0,
	                   1,
	                   len / 2,
	                   len - MODULE_SUFFIX_FROM_END_SHA256 - 1,
	                   len - MODULE_SUFFIX_FROM_END_SHA256,
	                   len - MODULE_SUFFIX_FROM_END_SHA256 + 31,
	                   len - MODULE_CRC_SIZE - 1,
	                   len - 1};

	SHA256(module, len, expected);
	memset(whole, 0, sizeof whole);
	if (!check_in_slot(module, len, whole, &report))
		g_error("%s: a valid module (%zu bytes) fails the check", what, len);
	if (memcmp(whole, expected, 32) != 0)
		g_error("%s: the whole image's SHA-256 differs from OpenSSL's", what);
	/* The suffix's hash covers the image up to its own field. */
	SHA256(module, len - MODULE_SUFFIX_FROM_END_SHA256, payload);
	g_assert_cmpmem(report.sha256, 32, payload, 32);

	/* Without the whole image's hash, the same verdict. */
	g_assert_true(module_read_prefix(SLOT_START, &prefix));
	g_assert_true(module_check_integrity(SLOT_START, &prefix, (uint32_t)len, suffix_sha, NULL));

	for (gsize i = 0; i < G_N_ELEMENTS(offsets); i++) {
		memcpy(copy, module, len);
		copy[offsets[i]] ^= 0x01;
		if (check_in_slot(copy, len, whole, &report) && memcmp(whole, expected, 32) == 0)
			g_error("%s: byte %zu of %zu changed, yet the check passed with the same hash", what,
			        offsets[i], len);
		/* Outside the prefix, the integrity check itself must fail. */
		if (offsets[i] >= MODULE_PREFIX_SIZE)
			g_assert_false(check_in_slot(copy, len, whole, &report));
	}
}

/* Restamps a built module for this test board's slot: the check reads the range from the prefix. */
static void
move_to_slot(guint8 *module, gsize len)
{
	guint32 start, end;
	g_autoptr(GError) error = NULL;

	memcpy(&start, module + MODULE_PREFIX_OFF_START_ADDRESS, 4);
	memcpy(&end, module + MODULE_PREFIX_OFF_END_ADDRESS, 4);
	end = GUINT32_TO_LE(SLOT_START + (GUINT32_FROM_LE(end) - GUINT32_FROM_LE(start)));
	start = GUINT32_TO_LE(SLOT_START);
	memcpy(module + MODULE_PREFIX_OFF_START_ADDRESS, &start, 4);
	memcpy(module + MODULE_PREFIX_OFF_END_ADDRESS, &end, 4);
	module[MODULE_PREFIX_OFF_FUNCTION] = MODULE_FUNCTION_SYSTEM_PART;
	module[MODULE_PREFIX_OFF_INDEX] = 1;
	g_assert_true(healer_module_restamp(module, len, &error));
}

static void
test_built_modules(void)
{
	const char *dir = g_getenv("HEALER_FIRMWARE_MODULES");
	const char *releases[] = {"1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0", "apps"};
	guint checked = 0;

	g_assert_nonnull(dir);
	for (gsize r = 0; r < G_N_ELEMENTS(releases); r++) {
		g_autofree char *path = g_build_filename(dir, releases[r], NULL);
		g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
		const char *name;

		g_assert_nonnull(d);
		while ((name = g_dir_read_name(d)) != NULL) {
			g_autofree char *file = g_build_filename(path, name, NULL);
			g_autofree guint8 *data = NULL;
			g_autofree char *what = g_strdup_printf("%s/%s", releases[r], name);
			gsize len;

			if (!g_str_has_suffix(name, ".bin"))
				continue;
			g_assert_true(g_file_get_contents(file, (char **)&data, &len, NULL));
			move_to_slot(data, len);
			check_module(what, data, len);
			checked++;
		}
	}
	g_test_message("%u modules of the firmware build checked", checked);
	g_assert_cmpuint(checked, >=, 15);
}

/* Every position of the suffix's hash field within the check's 256-byte reads. */
static void
test_every_boundary(void)
{
	for (gsize payload = 1000; payload < 1000 + 256; payload++) {
		HealerModuleSpec spec = {
		        .start_address = SLOT_START,
		        .platform_id = board.platform_id,
		        .function = MODULE_FUNCTION_SYSTEM_PART,
		        .index = 1,
		        .version = 1,
		};
		g_autofree guint8 *raw = g_malloc(payload);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) image = NULL, module = NULL;
		g_autofree char *what = g_strdup_printf("a %zu-byte payload", payload);
		gsize len;

		for (gsize i = 0; i < payload; i++)
			raw[i] = (guint8)(i * 31 + payload);
		image = g_bytes_new(raw, payload);
		module = healer_module_write(&spec, image, &error);
		g_assert_no_error(error);
		len = g_bytes_get_size(module);
		check_module(what, g_bytes_get_data(module, NULL), len);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/module-check/built-modules", test_built_modules);
	g_test_add_func("/module-check/every-boundary", test_every_boundary);
	return g_test_run();
}
