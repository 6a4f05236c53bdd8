/*
 * The firmware's update receiver (device-firmware/system/update.c) on a
 * board whose flash is a buffer: a module is staged with update_begin() and
 * update_data(), then update_finish() judges it against installed modules
 * the test sets directly.  Each of the three dependency checks (the
 * module's first dependency, its second, and an installed module that
 * depends on its slot) is tripped alone, with its reason; a refusal writes
 * no commit record; modules at every boundary and what the checks exempt on
 * purpose are taken and queued.  test-firmware does the same end to end on
 * healer-sim; this one states every case against update_finish() alone.
 */
#include <string.h>

#include <glib.h>

#include "hal.h"
#include "healer/firmware-image.h"
#include "module-checksums.h"
#include "module-writer.h"
#include "records.h"
#include "text.h"
#include "update.h"

#define FLASH_START 0x08000000u
#define FLASH_SIZE  0x00100000u
#define PLATFORM    3

/* The simulator's map (hal/sim/sim-board.c): the slots in this order. */
enum { SLOT_BOOTLOADER, SLOT_PART1, SLOT_PART2, SLOT_USER };

static guint8 flash[FLASH_SIZE];

static const hal_board_t board = {
        .platform_id = PLATFORM,
        .flash_start = FLASH_START,
        .flash_size = FLASH_SIZE,
        .slots =
                {
                        {MODULE_FUNCTION_BOOTLOADER, 0, 0x08000000u, 0x4000u},
                        {MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000u, 0x40000u},
                        {MODULE_FUNCTION_SYSTEM_PART, 2, 0x08060000u, 0x40000u},
                        {MODULE_FUNCTION_USER_PART, 1, 0x080A0000u, 0x20000u},
                },
        .n_slots = 4,
        .records_start = 0x08008000u,
        .records_size = 0x4000u,
        .staging_start = 0x080C0000u,
        .staging_size = 0x40000u,
        .max_data = 2044,
        .window = 8,
};

/* The HAL calls update.c, records.c and module-check.c make. */
const hal_board_t *
hal_board(void)
{
	return &board;
}

static gboolean
in_flash(uint32_t addr, size_t len)
{
	return addr >= FLASH_START && addr - FLASH_START <= FLASH_SIZE && len <= FLASH_SIZE - (addr - FLASH_START);
}

int
hal_flash_read(uint32_t addr, void *buf, size_t len)
{
	if (!in_flash(addr, len))
		return -1;
	memcpy(buf, flash + (addr - FLASH_START), len);
	return 0;
}

/* NOR: programming only clears bits. */
int
hal_flash_program(uint32_t addr, const void *data, size_t len)
{
	const guint8 *bytes = data;

	if (!in_flash(addr, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		flash[addr - FLASH_START + i] &= bytes[i];
	return 0;
}

int
hal_flash_erase(uint32_t addr, size_t len)
{
	if (!in_flash(addr, len))
		return -1;
	memset(flash + (addr - FLASH_START), 0xFF, len);
	return 0;
}

typedef struct {
	guint8 function, index;
	guint16 version;
} Dep;

/* A module for `slot` around a 2 KiB system image, with up to two dependencies. */
static GBytes *
make_module(guint slot, guint16 version, Dep d1, Dep d2)
{
	HealerModuleSpec spec = {.start_address = board.slots[slot].start,
	                         .platform_id = PLATFORM,
	                         .function = board.slots[slot].function,
	                         .index = board.slots[slot].index,
	                         .version = version};
	const Dep deps[2] = {d1, d2};
	guint8 payload[2048] = {0};
	firmware_image_info_t info = {.magic = FIRMWARE_IMAGE_MAGIC, .kind = FIRMWARE_IMAGE_SYSTEM};
	g_autoptr(GBytes) image = NULL;
	g_autoptr(GError) error = NULL;
	GBytes *module;

	for (guint i = 0; i < 2; i++) {
		if (deps[i].function == MODULE_FUNCTION_NONE)
			continue;
		spec.dependencies[spec.n_dependencies].function = deps[i].function;
		spec.dependencies[spec.n_dependencies].index = deps[i].index;
		spec.dependencies[spec.n_dependencies].version = deps[i].version;
		spec.n_dependencies++;
	}
	memcpy(payload, &info, sizeof info);
	image = g_bytes_new(payload, sizeof payload);
	module = healer_module_write(&spec, image, &error);
	g_assert_no_error(error);
	return module;
}

/* What is installed: the reports the bootloader fills at boot, one per slot in board order. */
static void
install(module_report_t installed[HAL_MAX_SLOTS], guint slot, guint16 version, Dep d1, Dep d2)
{
	module_report_t *r = &installed[slot];

	memset(r, 0, sizeof *r);
	r->present = true;
	r->prefix.function = board.slots[slot].function;
	r->prefix.index = board.slots[slot].index;
	r->prefix.version = version;
	r->prefix.dependency.function = d1.function;
	r->prefix.dependency.index = d1.index;
	r->prefix.dependency.version = d1.version;
	r->prefix.dependency2.function = d2.function;
	r->prefix.dependency2.index = d2.index;
	r->prefix.dependency2.version = d2.version;
}

#define NONE    ((Dep){0, 0, 0})
#define B(v)    ((Dep){MODULE_FUNCTION_BOOTLOADER, 0, (v)})
#define S(n, v) ((Dep){MODULE_FUNCTION_SYSTEM_PART, (n), (v)})

/* Release 1.0.0 as firmware.json builds it, with tinker (s2 >= 1000). */
static void
release_1_0_0(module_report_t installed[HAL_MAX_SLOTS])
{
	memset(installed, 0, sizeof(module_report_t) * HAL_MAX_SLOTS);
	install(installed, SLOT_BOOTLOADER, 100, NONE, NONE);
	install(installed, SLOT_PART1, 1000, S(2, 1000), NONE);
	install(installed, SLOT_PART2, 1000, S(1, 1000), B(100));
	install(installed, SLOT_USER, 3, S(2, 1000), NONE);
}

/*
 * Stages `module` whole (erasing the records sector first, as a new BEGIN
 * does) and returns update_finish()'s verdict; `why` gets its reason.
 */
static gint32
finish(GBytes *module, const module_report_t installed[HAL_MAX_SLOTS], char why[160])
{
	gsize len = 0;
	const guint8 *m = g_bytes_get_data(module, &len);
	guint8 sha[32];
	guint32 held = 1, next = 0;
	text_t t;

	memset(flash, 0xFF, sizeof flash);
	healer_sha256(m, len, sha);
	g_assert_cmpint(update_begin((guint32)len, sha, m[MODULE_PREFIX_OFF_FUNCTION], m[MODULE_PREFIX_OFF_INDEX],
	                             (guint16)(m[MODULE_PREFIX_OFF_VERSION] | m[MODULE_PREFIX_OFF_VERSION + 1] << 8),
	                             &held),
	                ==, 0);
	g_assert_cmpuint(held, ==, 0);
	g_assert_cmpint(update_data(0, m, len, &next), ==, 0);
	g_assert_cmpuint(next, ==, len);
	text_init(&t, why, 160);
	return update_finish(installed, &t);
}

/* A commit record for `module`'s slot and version is in the records sector (the bootloader's order). */
static gboolean
commit_queued(GBytes *module)
{
	const guint8 *m = g_bytes_get_data(module, NULL);
	record_t commit;

	if (!records_read(RECORDS_COMMIT_OFFSET, &commit))
		return FALSE;
	g_assert_cmpuint(commit.function, ==, m[MODULE_PREFIX_OFF_FUNCTION]);
	g_assert_cmpuint(commit.index, ==, m[MODULE_PREFIX_OFF_INDEX]);
	return TRUE;
}

static void
expect_refused(const char *what, GBytes *module, const module_report_t installed[HAL_MAX_SLOTS], const char *reason)
{
	char why[160];
	gint32 status;

	g_test_message("%s", what);
	status = finish(module, installed, why);
	if (status != MODULE_UPDATE_ERROR_DEPENDENCY)
		g_error("%s: update_finish() returned %d (\"%s\"), not -1340", what, status, why);
	g_assert_cmpstr(why, ==, reason);
	/* Refused: nothing for the bootloader to install. */
	g_assert_false(commit_queued(module));
}

static void
expect_taken(const char *what, GBytes *module, const module_report_t installed[HAL_MAX_SLOTS])
{
	char why[160];
	gint32 status;

	g_test_message("%s", what);
	status = finish(module, installed, why);
	if (status != 0)
		g_error("%s: update_finish() refused it: %d \"%s\"", what, status, why);
	g_assert_cmpstr(why, ==, "");
	g_assert_true(commit_queued(module));
}

/* Each check alone: every other check passes for the module that trips it. */
static void
test_each_check_alone(void)
{
	module_report_t installed[HAL_MAX_SLOTS];

	release_1_0_0(installed);
	{
		g_autoptr(GBytes) m = make_module(SLOT_PART1, 5000, S(2, 5000), B(100));
		expect_refused("first dependency above the installed version", m, installed,
		               "its first dependency, system part 2 >= 5000, is not installed (it has v1000)");
	}
	{
		g_autoptr(GBytes) m = make_module(SLOT_PART1, 5000, S(2, 1000), B(500));
		expect_refused("second dependency above the installed version", m, installed,
		               "its second dependency, bootloader 0 >= 500, is not installed (it has v100)");
	}
	{
		g_autoptr(GBytes) m = make_module(SLOT_PART1, 900, S(2, 1000), B(100));
		expect_refused("below what part 2's first dependency needs", m, installed,
		               "v900 would break the installed system part 2 v1000, which needs system part 1 >= 1000");
	}
	{
		g_autoptr(GBytes) m = make_module(SLOT_BOOTLOADER, 99, NONE, NONE);
		expect_refused("below what part 2's second dependency needs", m, installed,
		               "v99 would break the installed system part 2 v1000, which needs bootloader 0 >= 100");
	}
}

/* An empty slot, or one the board lacks, meets no dependency. */
static void
test_missing_modules(void)
{
	module_report_t installed[HAL_MAX_SLOTS];

	release_1_0_0(installed);
	installed[SLOT_BOOTLOADER].present = false;
	{
		g_autoptr(GBytes) m = make_module(SLOT_PART1, 1000, S(2, 1000), B(1));
		expect_refused("second dependency's slot empty", m, installed,
		               "its second dependency, bootloader 0 >= 1, is not installed");
	}
	release_1_0_0(installed);
	{
		g_autoptr(GBytes) m = make_module(SLOT_PART1, 1000, (Dep){MODULE_FUNCTION_RADIO_STACK, 0, 1}, B(100));
		expect_refused("first dependency on a slot the board lacks", m, installed,
		               "its first dependency, module function 8 index 0 >= 1, is not installed");
	}
}

/*
 * The boundaries and the exemptions: each module here is taken, and would
 * be refused if a comparison were off by one or an exemption lost.
 */
static void
test_taken(void)
{
	module_report_t installed[HAL_MAX_SLOTS];

	release_1_0_0(installed);
	{
		/* Dependencies exactly the installed versions; exactly what part 2 needs of part 1. */
		g_autoptr(GBytes) m = make_module(SLOT_PART1, 1000, S(2, 1000), B(100));
		expect_taken("every check at its boundary", m, installed);
	}
	{
		/* Exactly what part 2 needs of the bootloader, through its second dependency. */
		g_autoptr(GBytes) m = make_module(SLOT_BOOTLOADER, 100, NONE, NONE);
		expect_taken("a bootloader at part 2's boundary", m, installed);
	}
	{
		/* An application's own dependencies are not checked: the device then boots into safe mode. */
		g_autoptr(GBytes) m = make_module(SLOT_USER, 1, S(2, 2002), NONE);
		expect_taken("an application with an unmet dependency", m, installed);
	}
	{
		/* An installed application that needs part 2 >= 2002 holds no system part back. */
		install(installed, SLOT_USER, 1, S(2, 2002), NONE);
		g_autoptr(GBytes) m = make_module(SLOT_PART2, 1500, S(1, 1000), B(100));
		expect_taken("a part 2 below what the application needs", m, installed);
	}
	{
		/* The module a new one replaces is no dependent of it, even if it named its own slot. */
		install(installed, SLOT_PART2, 1000, S(1, 1000), S(2, 2000));
		g_autoptr(GBytes) m = make_module(SLOT_PART2, 1500, S(1, 1000), B(100));
		expect_taken("a part 2 whose predecessor depended on part 2 >= 2000", m, installed);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/update/each-check-alone", test_each_check_alone);
	g_test_add_func("/update/missing-modules", test_missing_modules);
	g_test_add_func("/update/taken", test_taken);
	return g_test_run();
}
