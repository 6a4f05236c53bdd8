/*
 * usbemu (tests/tools/usbemu) through clients it does not share code with: dfu-util, and
 * usbemu-client, a small libusb program, for what dfu-util does not show.  Each test runs usbemu
 * with a shell script as COMMAND and checks its output, the devices' memory files and the trace.
 * Faults are written to the control FIFO before usbemu starts (it takes them before COMMAND runs),
 * or by usbemu-client, which then waits for the hotplug events: nothing here waits by sleeping.
 *
 * The test process itself never loads umockdev (pitfall 7 of the spike: a testbed breaks ioctls
 * on ptys in its process); usbemu runs the testbed, and `usbemu-client pty` checks that a
 * COMMAND under it can still use a pty.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "test-util.h"
#include "usbemu-harness.h"

#define MODULE_SIZE (92 * 1024 + 100) /* a 92 KiB module, and a last block shorter than the rest */

typedef UsbemuFixture Fixture;

static bool
have_dfu_util(void)
{
	g_autofree char *path = g_find_program_in_path("dfu-util");

	if (path == NULL)
		g_test_skip("dfu-util is not installed (scripts/setup.sh installs it)");
	return path != NULL;
}

/*
 * Runs usbemu DEVICES... -- /bin/sh -c SCRIPT in the fixture's directory (with --trace and
 * --control there when `f` is given); returns its exit status, and what it and the script printed.
 * The script finds usbemu-client as $USBEMU_CLIENT.
 */
static int
usbemu_run_flags(Fixture *f, UsbemuCommandFlags flags, const char *const *devices, const char *script, char **output)
{
	g_autoptr(UsbemuCommand) cmd = usbemu_command_new(f, flags);

	usbemu_command_add_words(cmd, devices);
	if (script != NULL) {
		usbemu_command_add(cmd, "--");
		usbemu_command_add(cmd, "/bin/sh");
		usbemu_command_add(cmd, "-c");
		usbemu_command_add(cmd, script);
	}
	usbemu_command_setenv(cmd, "USBEMU_CLIENT", test_program("USBEMU_CLIENT"));
	return usbemu_command_run(cmd, output);
}

static int
usbemu_run(Fixture *f, const char *const *devices, const char *script, char **output)
{
	return usbemu_run_flags(f, USBEMU_COMMAND_CONTROL | USBEMU_COMMAND_WRAP_USBEMU | USBEMU_COMMAND_IN_DIR, devices,
	                        script, output);
}

static char *
read_text(const char *path)
{
	g_autoptr(GError) error = NULL;
	char *text = NULL;

	g_file_get_contents(path, &text, NULL, &error);
	g_assert_no_error(error);
	return text;
}

static unsigned
count_lines(const char *text, const char *needle)
{
	unsigned n = 0;
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (strstr(lines[i], needle) != NULL)
			n++;
	}
	return n;
}

/* Bytes that do not repeat within a module: every misplaced block shows. */
static GBytes *
make_module(gsize size, guint32 seed)
{
	guint8 *bytes = g_malloc(size);
	guint32 x = seed;

	for (gsize i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		bytes[i] = (guint8)(x >> 16);
	}
	return g_bytes_new_take(bytes, size);
}

static void
write_module(Fixture *f, const char *name, GBytes *module)
{
	g_autofree char *path = usbemu_path(f, name);
	gsize size;
	const guint8 *data = g_bytes_get_data(module, &size);

	test_write_file(path, data, size);
}

/* A state directory whose memory file is all `fill` (usbemu takes a file of the right size). */
static char *
state_with_memory(Fixture *f, const char *name, const char *memory, gsize size, guint8 fill)
{
	char *dir = usbemu_path(f, name);
	g_autofree char *file = g_build_filename(dir, memory, NULL);
	g_autofree guint8 *bytes = g_malloc(size);

	memset(bytes, fill, size);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	test_write_file(file, bytes, size);
	return dir;
}

static GBytes *
read_bytes(const char *path)
{
	return test_read_file(path);
}

/* What dfu-util lists, from the facts (docs/testing.md), not from usbemu's tables. */
static const struct {
	const char *model;
	const char *id;
	const char *version;
	const char *serial;
	const char *alternates[4];
} listed[] = {
        {"stm32f2",
         "0483:df11",
         "2200",
         "325936773330",
         {"@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg", "@Option Bytes  /0x1FFFC000/01*016 e",
          "@OTP Memory /0x1FFF7800/01*512 e,01*016 e", "@Device Feature/0xFFFF0000/01*004 e"}},
        {"particle-photon",
         "2b04:d006",
         "0250",
         "3c003d000a47353235303037",
         {"@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg", "@DCT Flash   /0x00000000/01*016Kg"}},
        {"particle-argon",
         "2b04:d00c",
         "0251",
         "e00fce68b1b4c0d1a5dd3f41",
         {"@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka",
          "@DCT Flash   /0x00000000/1*016Ke", "@External Flash   /0x80000000/1024*004Kg"}},
        {"particle-p2",
         "2b04:d020",
         "0252",
         "0a10aced202194944a0452ac",
         {"@Internal Flash   /0x08000000/2048*004Kg", "@DCT Flash   /0x00000000/1*016Ke"}},
};

static void
test_list(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *out = NULL;
	unsigned found = 0;

	(void)data;
	if (!have_dfu_util())
		return;
	for (unsigned i = 0; i < G_N_ELEMENTS(listed); i++) {
		g_ptr_array_add(args, g_strdup_printf("--dfu=%s", listed[i].model));
		g_ptr_array_add(args, g_strdup_printf("--state=%s/%s", f->dir, listed[i].model));
		g_ptr_array_add(args, g_strdup_printf("--serial=%s", listed[i].serial));
	}
	g_ptr_array_add(args, NULL);
	g_assert_cmpint(usbemu_run(f, (const char *const *)args->pdata, "dfu-util -l", &out), ==, 0);
	/* Device i at port 1-1.i with devnum 2 + i (the root hub and the hub have 1 and 2). */
	for (unsigned i = 0; i < G_N_ELEMENTS(listed); i++) {
		for (unsigned alt = 0; alt < G_N_ELEMENTS(listed[i].alternates) && listed[i].alternates[alt]; alt++) {
			g_autofree char *line = g_strdup_printf(
			        "Found DFU: [%s] ver=%s, devnum=%u, cfg=1, intf=0, path=\"1-1.%u\", alt=%u, "
			        "name=\"%s\", serial=\"%s\"\n",
			        listed[i].id, listed[i].version, i + 3, i + 1, alt, listed[i].alternates[alt],
			        listed[i].serial);
			usbemu_assert_contains(out, line);
			found++;
		}
	}
	g_assert_cmpuint(count_lines(out, "Found DFU:"), ==, found);
}

/* One model's download: where the module goes, what dfu-util erases, what comes back after leave. */
typedef struct {
	const char *model;
	guint32 base;        /* alternate setting 0's first address */
	gsize size;          /* and its size */
	guint32 address;     /* where the module goes */
	guint32 erase_start; /* the sectors dfu-util erases for it */
	guint32 erase_end;
	const char *after_leave; /* VID:PID at the port once the device has reset */
	const char *after_mode;
	const char *dfu_id; /* VID:PID in DFU mode */
} Download;

static const Download downloads[] = {
        {"stm32f2", 0x08000000, 1024 * 1024, 0x08004000, 0x08004000, 0x08020000, "0483:df11", "dfu", "0483:df11"},
        {"particle-photon", 0x08000000, 1024 * 1024, 0x080a0000, 0x080a0000, 0x080c0000, "2b04:c006", "normal",
         "2b04:d006"},
        {"particle-argon", 0x00000000, 1024 * 1024, 0x000b4000, 0x000b4000, 0x000b4000 + 24 * 4096, "2b04:c00c",
         "normal", "2b04:d00c"},
        {"particle-p2", 0x08000000, 8 * 1024 * 1024, 0x08060000, 0x08060000, 0x08060000 + 24 * 4096, "2b04:c020",
         "normal", "2b04:d020"},
};

/* The memory file holds the module at its address, 0xFF in the rest of what was erased, and
 * `fill` everywhere else. */
static void
assert_flash(const char *path, const Download *d, GBytes *module, guint8 fill)
{
	g_autoptr(GBytes) flash = read_bytes(path);
	gsize module_size, flash_size;
	const guint8 *m = g_bytes_get_data(module, &module_size);
	const guint8 *bytes = g_bytes_get_data(flash, &flash_size);
	guint32 start = d->erase_start - d->base, end = d->erase_end - d->base, at = d->address - d->base;

	g_assert_cmpuint(flash_size, ==, d->size);
	g_assert_cmpmem(bytes + at, module_size, m, module_size);
	for (gsize i = 0; i < flash_size; i++) {
		guint8 expected = i >= start && i < end ? 0xff : fill;
		if (i >= at && i < at + module_size)
			continue;
		if (bytes[i] != expected)
			g_error("%s: byte 0x%zx (address 0x%08zx) is 0x%02x, not 0x%02x", path, i, d->base + i,
			        bytes[i], expected);
	}
}

static void
test_download(Fixture *f, gconstpointer data)
{
	const Download *d = data;
	g_autoptr(GBytes) module = make_module(MODULE_SIZE, 92);
	g_autofree char *state = state_with_memory(f, "state", "internal-flash.bin", d->size, 0x00);
	g_autofree char *flash = g_build_filename(state, "internal-flash.bin", NULL);
	g_autofree char *model = g_strdup_printf("--dfu=%s", d->model);
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	const char *args[] = {model, state_arg, NULL};
	/* A reset re-enumerates: the device comes back at the same port with the next devnum (4). */
	bool normal = strcmp(d->after_mode, "normal") == 0;
	/* In normal mode, `dfu 1` brings it back in DFU mode (what a DFU_MODE request would). */
	g_autofree char *script = g_strdup_printf(
	        "dfu-util -p 1-1.1 -a 0 -s 0x%08x:leave -D module.bin && "
	        "\"$USBEMU_CLIENT\" wait 1-1.1 %s 3%s%s%s",
	        d->address, d->after_leave, normal ? " && echo 'dfu 1' >control && \"$USBEMU_CLIENT\" wait 1-1.1 " : "",
	        normal ? d->dfu_id : "", normal ? " 4" : "");
	g_autofree char *expected_found = g_strdup_printf("found 1-1.1 %s devnum=4", d->after_leave);
	g_autofree char *plugged_again =
	        g_strdup_printf("dev1 event plugged mode=%s port=1-1.1 devnum=4", d->after_mode);
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;
	gint64 start = g_get_monotonic_time();

	if (!have_dfu_util())
		return;
	write_module(f, "module.bin", module);
	/*
	 * Not under valgrind, as the read unprotect below: dfu-util exits right after the leave, and a
	 * usbemu slowed by valgrind replugs after that, when umockdev's uevent sender finds dfu-util's
	 * listener socket refusing and aborts usbemu ("uevent_sender sendmsg_one: sendmsg failed",
	 * seen in CI), a race of the testbed's, not of the model.
	 */
	g_assert_cmpint(usbemu_run_flags(f, USBEMU_COMMAND_CONTROL | USBEMU_COMMAND_IN_DIR, args, script, &out), ==, 0);
	usbemu_assert_contains(out, "File downloaded successfully");
	usbemu_assert_contains(out, expected_found);
	assert_flash(flash, d, module, 0x00);
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "dev1 event manifest");
	usbemu_assert_contains(trace, "dev1 event unplugged port=1-1.1 devnum=3");
	usbemu_assert_contains(trace, plugged_again);
	if (normal) {
		g_autofree char *found_dfu = g_strdup_printf("found 1-1.1 %s devnum=5", d->dfu_id);
		usbemu_assert_contains(out, found_dfu);
		usbemu_assert_contains(trace, "control \"dfu 1\" ok");
		usbemu_assert_contains(trace, "dev1 event plugged mode=dfu port=1-1.1 devnum=5");
	}
	/* For the benchmarks to come: what a 92 KiB module costs (not a check). */
	g_test_message("%s: %u control transfers, %.2f s with dfu-util and the wait", d->model,
	               count_lines(trace, " ctrl "), (double)(g_get_monotonic_time() - start) / 1e6);
}

static void
test_upload(Fixture *f, gconstpointer data)
{
	g_autofree char *state = usbemu_path(f, "argon");
	g_autofree char *internal = g_build_filename(state, "internal-flash.bin", NULL);
	g_autofree char *external = g_build_filename(state, "external-flash.bin", NULL);
	g_autoptr(GBytes) internal_bytes = make_module(1024 * 1024, 1);
	g_autoptr(GBytes) external_bytes = make_module(4 * 1024 * 1024, 2);
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	const char *args[] = {"--dfu=particle-argon", state_arg, NULL};
	g_autofree char *out = NULL;
	g_autofree char *internal_up = usbemu_path(f, "internal.bin");
	g_autofree char *external_up = usbemu_path(f, "external.bin");
	g_autoptr(GBytes) up_internal = NULL;
	g_autoptr(GBytes) up_external = NULL;

	(void)data;
	if (!have_dfu_util())
		return;
	g_assert_cmpint(g_mkdir_with_parents(state, 0755), ==, 0);
	test_write_file(internal, g_bytes_get_data(internal_bytes, NULL), g_bytes_get_size(internal_bytes));
	test_write_file(external, g_bytes_get_data(external_bytes, NULL), g_bytes_get_size(external_bytes));
	/* Lengths that are no multiple of wTransferSize: the last block is short. */
	g_assert_cmpint(usbemu_run(f, args,
	                           "dfu-util -a 0 -s 0xb4000:10000 -U internal.bin && "
	                           "dfu-util -a 2 -s 0x80001000:5000 -U external.bin",
	                           &out),
	                ==, 0);
	up_internal = read_bytes(internal_up);
	up_external = read_bytes(external_up);
	g_assert_cmpmem(g_bytes_get_data(up_internal, NULL), g_bytes_get_size(up_internal),
	                (const guint8 *)g_bytes_get_data(internal_bytes, NULL) + 0xb4000, 10000);
	g_assert_cmpmem(g_bytes_get_data(up_external, NULL), g_bytes_get_size(up_external),
	                (const guint8 *)g_bytes_get_data(external_bytes, NULL) + 0x1000, 5000);
}

static void
test_read_only(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) module = make_module(8192, 7);
	g_autofree char *photon = state_with_memory(f, "photon", "internal-flash.bin", 1024 * 1024, 0xff);
	g_autofree char *argon = state_with_memory(f, "argon", "internal-flash.bin", 1024 * 1024, 0xff);
	g_autofree char *photon_arg = g_strdup_printf("--state=%s", photon);
	g_autofree char *argon_arg = g_strdup_printf("--state=%s", argon);
	const char *args[] = {"--dfu=particle-photon", photon_arg, "--dfu=particle-argon", argon_arg, NULL};
	g_autofree char *before_photon = NULL, *before_argon = NULL;
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	write_module(f, "module.bin", module);
	if (!have_dfu_util())
		return;
	/* A first run makes the rest of the state (serial, model, the other memories). */
	g_assert_cmpint(usbemu_run(f, args, "exit 0", NULL), ==, 0);
	before_photon = test_tree_snapshot(photon);
	before_argon = test_tree_snapshot(argon);
	/* The Photon's bootloader sectors are 'a': dfu-util reads the layout and will not try. */
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -p 1-1.1 -a 0 -s 0x08000000 -D module.bin", &out), ==, 64);
	usbemu_assert_contains(out, "is not writeable");
	trace = usbemu_read_trace(f);
	g_assert_cmpuint(count_lines(trace, "bRequest=DNLOAD wValue=0x0002"), ==, 0);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&trace, g_free);
	/* Forced, the devices refuse: errWRITE, nothing written (the Argon's last 8 pages are 'a' too). */
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -p 1-1.1 -a 0 -s 0x08000000:force -D module.bin", &out), ==, 74);
	usbemu_assert_contains(out, "dfuERROR, status(3) = Device is unable to write memory");
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -p 1-1.2 -a 0 -s 0x000f8000:force -D module.bin", &out), ==, 74);
	usbemu_assert_contains(out, "dfuERROR, status(3) = Device is unable to write memory");
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "dev2 ctrl in bmRequestType=0xa1 bRequest=GETSTATUS wValue=0x0000 wIndex=0x0000 "
	                              "wLength=6 result=6 state=dfuERROR status=errWRITE");
	test_assert_tree_unchanged(before_photon, photon, "a refused write to the Photon");
	test_assert_tree_unchanged(before_argon, argon, "a refused write to the Argon");
}

static void
test_check_erased(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) block = make_module(100, 3);
	g_autofree char *state = state_with_memory(f, "p2", "internal-flash.bin", 8 * 1024 * 1024, 0x00);
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	const char *args[] = {"--dfu=particle-p2", state_arg, NULL};
	g_autofree char *before = NULL;
	g_autofree char *out = NULL;

	(void)data;
	write_module(f, "block.bin", block);
	g_assert_cmpint(usbemu_run(f, args, "exit 0", NULL), ==, 0);
	before = test_tree_snapshot(state);
	/* Flash only clears bits: a block over bytes that are not erased is refused (errCHECK_ERASED);
	 * one running past the memory's end is errADDRESS. */
	g_assert_cmpint(usbemu_run(f, args,
	                           "\"$USBEMU_CLIENT\" write 1-1.1 0x08060000 block.bin && "
	                           "\"$USBEMU_CLIENT\" write 1-1.1 0x087fffc0 block.bin",
	                           &out),
	                ==, 0);
	usbemu_assert_contains(out, "set address: state=5 status=0 poll=0\nwrite: state=10 status=5 poll=0\n"
	                            "set address: state=5 status=0 poll=0\nwrite: state=10 status=8 poll=0\n");
	test_assert_tree_unchanged(before, state, "a write over bytes not erased");
}

static void
test_erase_refused(Fixture *f, gconstpointer data)
{
	g_autofree char *state = state_with_memory(f, "photon", "internal-flash.bin", 1024 * 1024, 0x00);
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	const char *args[] = {"--dfu=particle-photon", state_arg, NULL};
	g_autofree char *before = NULL;
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(usbemu_run(f, args, "exit 0", NULL), ==, 0);
	before = test_tree_snapshot(state);
	/* The bootloader's sector is 'a' (read only): its erase is refused, errTARGET (dfu-util will
	 * not even ask); an address outside the memory too. */
	g_assert_cmpint(usbemu_run(f, args,
	                           "\"$USBEMU_CLIENT\" erase 1-1.1 0x08000000 && "
	                           "\"$USBEMU_CLIENT\" erase 1-1.1 0x20000000",
	                           &out),
	                ==, 0);
	usbemu_assert_contains(out, "commands: 00 21 41\nerase: state=10 status=1 poll=0\n"
	                            "commands: 00 21 41\nerase: state=10 status=1 poll=0\n");
	test_assert_tree_unchanged(before, state, "a refused erase");
}

static void
test_whole_flash(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) block = make_module(100, 5);
	g_autofree char *stm32 = state_with_memory(f, "stm32", "internal-flash.bin", 1024 * 1024, 0x00);
	g_autofree char *photon = state_with_memory(f, "photon", "internal-flash.bin", 1024 * 1024, 0x00);
	g_autofree char *stm32_arg = g_strdup_printf("--state=%s", stm32);
	g_autofree char *photon_arg = g_strdup_printf("--state=%s", photon);
	g_autofree char *stm32_flash = g_build_filename(stm32, "internal-flash.bin", NULL);
	g_autofree char *photon_flash = g_build_filename(photon, "internal-flash.bin", NULL);
	const char *args[] = {"--dfu=stm32f2", stm32_arg, "--dfu=particle-photon", photon_arg, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;
	g_autoptr(GBytes) flash = NULL;
	const guint8 *bytes;

	(void)data;
	write_module(f, "block.bin", block);
	if (!have_dfu_util())
		return;
	/* The ST ROM erases all its flash at once (ERASE with no address), then takes the block. */
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -p 1-1.1 -a 0 -s 0x08004000:mass-erase:force -D block.bin", &out),
	                ==, 0);
	flash = read_bytes(stm32_flash);
	bytes = g_bytes_get_data(flash, NULL);
	g_assert_cmpmem(bytes + 0x4000, 100, g_bytes_get_data(block, NULL), 100);
	for (gsize i = 0; i < 1024 * 1024; i++)
		g_assert_true((i >= 0x4000 && i < 0x4000 + 100) || bytes[i] == 0xff);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&flash, g_bytes_unref);
	/*
	 * Its read unprotect (0x92) erases everything and resets: back with the next devnum.  usbemu is
	 * not put under valgrind here: dfu-util exits as soon as it sent 0x92, and a usbemu slowed by
	 * valgrind replugs after that, when umockdev's uevent sender finds dfu-util's listener socket
	 * refusing and aborts usbemu ("uevent_sender sendmsg_one: sendmsg failed"), a race of the
	 * testbed's, not of the model.
	 */
	g_assert_cmpint(usbemu_run_flags(f, USBEMU_COMMAND_CONTROL | USBEMU_COMMAND_IN_DIR, args,
	                                 "dfu-util -p 1-1.1 -a 0 -s :unprotect:force -D block.bin && "
	                                 "\"$USBEMU_CLIENT\" wait 1-1.1 0483:df11 3",
	                                 &out),
	                ==, 0);
	usbemu_assert_contains(out, "found 1-1.1 0483:df11 devnum=");
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "dfuse=READ_UNPROTECT");
	usbemu_assert_contains(trace, "dev1 event unplugged port=1-1.1 devnum=3");
	flash = read_bytes(stm32_flash);
	bytes = g_bytes_get_data(flash, NULL);
	for (gsize i = 0; i < 1024 * 1024; i++)
		g_assert_cmpuint(bytes[i], ==, 0xff);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&trace, g_free);
	g_clear_pointer(&flash, g_bytes_unref);
	/* Particle's bootloaders have no mass erase: errTARGET, nothing erased. */
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -p 1-1.2 -a 0 -s 0x080a0000:mass-erase:force -D block.bin", &out),
	                ==, 74);
	usbemu_assert_contains(out, "MASS_ERASE not correctly executed");
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "dev2 ctrl in bmRequestType=0xa1 bRequest=GETSTATUS wValue=0x0000 wIndex=0x0000 "
	                              "wLength=6 result=6 state=dfuERROR status=errTARGET");
	flash = read_bytes(photon_flash);
	bytes = g_bytes_get_data(flash, NULL);
	for (gsize i = 0; i < 1024 * 1024; i++)
		g_assert_cmpuint(bytes[i], ==, 0x00);
}

static void
test_stall(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) module = make_module(3 * 4096 + 100, 11);
	g_autofree char *state = usbemu_path(f, "photon");
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	g_autofree char *flash = g_build_filename(state, "internal-flash.bin", NULL);
	const char *args[] = {"--dfu=particle-photon", state_arg, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;
	g_autoptr(GBytes) written = NULL;
	const guint8 *bytes;

	(void)data;
	write_module(f, "module.bin", module);
	if (!have_dfu_util())
		return;
	/* DNLOADs: the erase, then address and data of block 1, then the address of block 2: stalled. */
	usbemu_control(f, "stall 1 DNLOAD 3");
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -a 0 -s 0x080a0000 -D module.bin", &out), ==, 74);
	usbemu_assert_contains(out, "LIBUSB_ERROR_PIPE");
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "control \"stall 1 DNLOAD 3\" ok");
	usbemu_assert_contains(trace, "dev1 fault stall fired bRequest=DNLOAD");
	usbemu_assert_contains(trace,
	                       "bRequest=DNLOAD wValue=0x0000 wIndex=0x0000 wLength=5 result=stall state=dfuERROR "
	                       "status=errSTALLEDPKT");
	g_assert_cmpuint(count_lines(trace, "bRequest=DNLOAD wValue=0x0002"), ==, 1);
	/* The first block is in, the rest of the erased sector erased. */
	written = read_bytes(flash);
	bytes = g_bytes_get_data(written, NULL);
	g_assert_cmpmem(bytes + 0xa0000, 4096, g_bytes_get_data(module, NULL), 4096);
	for (gsize i = 0xa0000 + 4096; i < 0xc0000; i++)
		g_assert_cmpuint(bytes[i], ==, 0xff);
}

static void
test_busy(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) module = make_module(2 * 4096 + 100, 13);
	g_autofree char *state = usbemu_path(f, "p2");
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	g_autofree char *flash = g_build_filename(state, "internal-flash.bin", NULL);
	const char *args[] = {"--dfu=particle-p2", state_arg, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;
	g_autoptr(GBytes) written = NULL;

	(void)data;
	write_module(f, "module.bin", module);
	if (!have_dfu_util())
		return;
	/* Every operation takes 150 ms: dfu-util waits for it each time and succeeds. */
	usbemu_control(f, "busy 1 150");
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -v -v -a 0 -s 0x08060000 -D module.bin", &out), ==, 0);
	usbemu_assert_contains(out, "Poll timeout 150 ms");
	trace = usbemu_read_trace(f);
	/* 3 erases, 3 addresses, 3 blocks: each reported busy with the timeout. */
	g_assert_cmpuint(count_lines(trace, "state=dfuDNBUSY status=OK poll=150"), ==, 9);
	g_assert_cmpuint(count_lines(trace, "result=stall"), ==, 0);
	written = read_bytes(flash);
	g_assert_cmpmem((const guint8 *)g_bytes_get_data(written, NULL) + 0x60000, g_bytes_get_size(module),
	                g_bytes_get_data(module, NULL), g_bytes_get_size(module));
}

static void
test_early_poll(Fixture *f, gconstpointer data)
{
	g_autofree char *state_arg = g_strdup_printf("--state=%s/argon", f->dir);
	const char *args[] = {"--dfu=particle-argon", state_arg, NULL};
	g_autofree char *out = NULL;

	(void)data;
	/* Asked again long before a minute is up: stalled, dfuERROR until CLRSTATUS. */
	usbemu_control(f, "busy 1 60000");
	g_assert_cmpint(usbemu_run(f, args, "\"$USBEMU_CLIENT\" early-poll 1-1.1 0xb4000", &out), ==, 0);
	usbemu_assert_contains(out, "first: state=4 status=0 poll=60000");
	usbemu_assert_contains(out, "early: LIBUSB_ERROR_PIPE");
	usbemu_assert_contains(out, "after: state=10 status=15 poll=0");
	usbemu_assert_contains(out, "clrstatus: done");
	usbemu_assert_contains(out, "cleared: state=2 status=0 poll=0");
}

static void
test_persist(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) module = make_module(20000, 17);
	g_autofree char *state = usbemu_path(f, "photon");
	g_autofree char *state_arg = g_strdup_printf("--state=%s", state);
	g_autofree char *serial_path = g_build_filename(state, "serial", NULL);
	const char *args[] = {"--dfu=particle-photon", state_arg, NULL};
	g_autofree char *first = NULL, *second = NULL, *serial = NULL, *listed_serial = NULL;
	g_autofree char *up = usbemu_path(f, "up.bin");
	g_autoptr(GBytes) uploaded = NULL;

	(void)data;
	write_module(f, "module.bin", module);
	if (!have_dfu_util())
		return;
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -a 0 -s 0x080a0000:leave -D module.bin && dfu-util -l", &first),
	                ==, 0);
	/* A new usbemu, the same state directory: the same serial number, the module still there. */
	g_assert_cmpint(usbemu_run(f, args, "dfu-util -l && dfu-util -a 0 -s 0x080a0000:20000 -U up.bin", &second), ==,
	                0);
	serial = g_strstrip(read_text(serial_path));
	g_assert_cmpuint(strlen(serial), ==, 24);
	listed_serial = g_strdup_printf("serial=\"%s\"", serial);
	usbemu_assert_contains(second, listed_serial);
	uploaded = read_bytes(up);
	g_assert_cmpmem(g_bytes_get_data(uploaded, NULL), g_bytes_get_size(uploaded), g_bytes_get_data(module, NULL),
	                g_bytes_get_size(module));
}

static void
test_replug(Fixture *f, gconstpointer data)
{
	g_autofree char *first = g_strdup_printf("--state=%s/one", f->dir);
	g_autofree char *second = g_strdup_printf("--state=%s/two", f->dir);
	const char *args[] = {"--dfu=stm32f2", first, "--dfu=particle-photon", second, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	if (!have_dfu_util())
		return;
	/* Device 2 pulled and put back: hotplug events, the same port, a new devnum; a handle kept
	 * open across it is dead; device 1 is untouched. */
	g_assert_cmpint(usbemu_run(f, args, "\"$USBEMU_CLIENT\" replug control 2 1-1.2 && dfu-util -l", &out), ==, 0);
	usbemu_assert_contains(out, "before devnum=4\nleft devnum=4\nold handle: LIBUSB_ERROR_NO_DEVICE\n"
	                            "arrived 1-1.2 devnum=5\nnew handle: answered\n");
	usbemu_assert_contains(out, "[2b04:d006] ver=0250, devnum=5, cfg=1, intf=0, path=\"1-1.2\", alt=0");
	usbemu_assert_contains(out, "[0483:df11] ver=2200, devnum=3, cfg=1, intf=0, path=\"1-1.1\", alt=0");
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "dev2 event unplugged port=1-1.2 devnum=4");
	usbemu_assert_contains(trace, "control \"unplug 2\" ok");
	usbemu_assert_contains(trace, "dev2 event plugged mode=dfu port=1-1.2 devnum=5 id=2b04:d006");
	usbemu_assert_contains(trace, "control \"replug 2\" ok");
	usbemu_assert_lacks(trace, "dev1 event unplugged");
}

static void
test_idle(Fixture *f, gconstpointer data)
{
	g_autofree char *state_arg = g_strdup_printf("--state=%s/argon", f->dir);
	const char *args[] = {"--dfu=particle-argon", state_arg, NULL};
	g_autofree char *out = NULL;
	const char *wakeups;

	(void)data;
	/* Pitfall 6: libusb polls an open device's node; a node that always polls ready makes it spin
	 * (thousands of wakeups a second).  Usbemu's wakes it only when a transfer is done. */
	g_assert_cmpint(usbemu_run(f, args, "\"$USBEMU_CLIENT\" idle 1-1.1", &out), ==, 0);
	usbemu_assert_contains(out, "getstatus: answered");
	wakeups = strstr(out, "wakeups=");
	g_assert_nonnull(wakeups);
	g_assert_cmpint(atoi(wakeups + strlen("wakeups=")), <=, 2);
}

static void
test_pty(Fixture *f, gconstpointer data)
{
	g_autofree char *state_arg = g_strdup_printf("--state=%s/stm32", f->dir);
	const char *args[] = {"--dfu=stm32f2", state_arg, NULL};
	g_autofree char *out = NULL;

	(void)data;
	/* Pitfall 7: umockdev 0.17.16 answers ENOTTY to ioctls on /dev files it does not emulate. */
	g_assert_cmpint(usbemu_run(f, args, "\"$USBEMU_CLIENT\" pty", &out), ==, 0);
	usbemu_assert_contains(out, "pty /dev/pts/");
}

static void
test_control_errors(Fixture *f, gconstpointer data)
{
	g_autofree char *state_arg = g_strdup_printf("--state=%s/stm32", f->dir);
	const char *args[] = {"--dfu=stm32f2", state_arg, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	usbemu_control(f, "bogus 1");
	usbemu_control(f, "unplug 2");
	usbemu_control(f, "stall 1 FOO");
	usbemu_control(f, "busy 1 x");
	usbemu_control(f, "replug 1");
	usbemu_control(f, "dfu 1");
	g_assert_cmpint(usbemu_run(f, args, "exit 0", &out), ==, 0);
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "control \"bogus 1\" error: unknown command");
	usbemu_assert_contains(trace, "control \"unplug 2\" error: '2' is not a device number (1 to 1)");
	usbemu_assert_contains(trace, "control \"stall 1 FOO\" error: 'FOO' is not a DFU request");
	usbemu_assert_contains(trace, "control \"busy 1 x\" error: 'x' is not a poll timeout");
	usbemu_assert_contains(trace, "control \"replug 1\" error: device 1 is plugged in");
	usbemu_assert_contains(trace, "control \"dfu 1\" error: device 1 is not plugged in in normal mode");
	usbemu_assert_contains(out, "usbemu: control: 'bogus 1': unknown command");
}

static void
test_state_errors(Fixture *f, gconstpointer data)
{
	g_autofree char *short_state = state_with_memory(f, "short", "internal-flash.bin", 1000, 0xff);
	g_autofree char *short_arg = g_strdup_printf("--state=%s", short_state);
	g_autofree char *argon_arg = g_strdup_printf("--state=%s/argon", f->dir);
	g_autofree char *out = NULL;

	(void)data;
	{
		const char *args[] = {"--dfu=particle-photon", short_arg, NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out, "internal-flash.bin is 1000 bytes, but the device's Internal Flash");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=particle-argon", argon_arg, NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", NULL), ==, 0);
	}
	{
		const char *args[] = {"--dfu=particle-p2", argon_arg, NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out, "holds a particle-argon, not a particle-p2");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=particle-argon", argon_arg, "--dfu=particle-argon", argon_arg, NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out, "have the same --state");
	}
}

static void
test_usage(Fixture *f, gconstpointer data)
{
	g_autofree char *state_arg = g_strdup_printf("--state=%s/s", f->dir);
	g_autofree char *out = NULL;

	(void)data;
	{
		const char *args[] = {NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out, "no device");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=nosuch", state_arg, NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out,
		                       "--dfu nosuch: no such model (models: stm32f2, particle-photon, particle-p1, "
		                       "particle-electron, particle-argon, particle-boron, particle-bsom, particle-p2, "
		                       "particle-msom)");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=stm32f2", NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out, "device 1 (--dfu stm32f2) has no --state DIR");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--state=x", "--dfu=stm32f2", NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out,
		                       "--state x: comes after the --dfu MODEL or --particle PLATFORM it belongs to");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=stm32f2", state_arg, NULL};
		g_assert_cmpint(usbemu_run(NULL, args, NULL, &out), ==, 125);
		usbemu_assert_contains(out, "no COMMAND");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=stm32f2", state_arg, "--serial=a b", NULL};
		g_assert_cmpint(usbemu_run(NULL, args, "exit 0", &out), ==, 125);
		usbemu_assert_contains(out, "--serial 'a b'");
		g_clear_pointer(&out, g_free);
	}
	{
		const char *args[] = {"--dfu=stm32f2", state_arg, "--", "/nonexistent/command", NULL};
		g_assert_cmpint(usbemu_run(NULL, args, NULL, &out), ==, 127);
	}
}

static void
test_exit_status(Fixture *f, gconstpointer data)
{
	g_autofree char *state_arg = g_strdup_printf("--state=%s/s", f->dir);
	const char *args[] = {"--dfu=stm32f2", state_arg, NULL};

	(void)data;
	g_assert_cmpint(usbemu_run(f, args, "exit 7", NULL), ==, 7);
	g_assert_cmpint(usbemu_run(f, args, "kill -TERM $$", NULL), ==, 128 + 15);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn, data) g_test_add(path, Fixture, data, usbemu_fixture_set_up, fn, usbemu_fixture_tear_down)
	ADD("/usbemu/usage", test_usage, NULL);
	ADD("/usbemu/exit-status", test_exit_status, NULL);
	ADD("/usbemu/state-errors", test_state_errors, NULL);
	ADD("/usbemu/control-errors", test_control_errors, NULL);
	ADD("/usbemu/list", test_list, NULL);
	for (unsigned i = 0; i < G_N_ELEMENTS(downloads); i++) {
		g_autofree char *path = g_strdup_printf("/usbemu/download/%s", downloads[i].model);
		ADD(path, test_download, &downloads[i]);
	}
	ADD("/usbemu/upload", test_upload, NULL);
	ADD("/usbemu/read-only", test_read_only, NULL);
	ADD("/usbemu/check-erased", test_check_erased, NULL);
	ADD("/usbemu/erase-refused", test_erase_refused, NULL);
	ADD("/usbemu/whole-flash", test_whole_flash, NULL);
	ADD("/usbemu/stall", test_stall, NULL);
	ADD("/usbemu/busy", test_busy, NULL);
	ADD("/usbemu/early-poll", test_early_poll, NULL);
	ADD("/usbemu/persist", test_persist, NULL);
	ADD("/usbemu/replug", test_replug, NULL);
	ADD("/usbemu/idle", test_idle, NULL);
	ADD("/usbemu/pty", test_pty, NULL);
#undef ADD
	return g_test_run();
}
