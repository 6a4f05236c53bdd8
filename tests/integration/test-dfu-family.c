/*
 * The DFU family (agent/daemon/dfu-device.h) through real libusb against usbemu's emulated
 * devices: dfu-family-client (tests/tools) serves the device as healerd's USB backend would and
 * prints what happened; healerd itself heals a Particle device stuck in DFU.  The devices' flash
 * is usbemu's state files, compared byte for byte with the modules.  Faults go through usbemu's
 * control FIFO; the client writes them at a byte count it saw acknowledged, so every wait is on an
 * event (a progress signal, a hotplug arrival, a log line), never a sleep.
 *
 * This process never loads umockdev: usbemu runs the testbed and the client (or healerd) under
 * its preload.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway-harness.h"
#include "healerd-process.h"
#include "test-util.h"
#include "usbemu-harness.h"

#define KIB 1024

typedef UsbemuFixture Fixture;

typedef struct {
	const char *model;
	guint16 platform;     /* 0: the ST ROM */
	guint32 flash_base;   /* where internal-flash.bin starts */
	guint32 address;      /* where the test module goes */
	const char *function; /* its function and index */
	guint index;
} Model;

static const Model models[] = {
        {"stm32f2", 0, 0x08000000, 0x08020000, "system-part", 1},
        {"particle-photon", 6, 0x08000000, 0x08020000, "system-part", 1},
        {"particle-argon", 12, 0x00000000, 0x00030000, "system-part", 1},
        {"particle-p2", 32, 0x08000000, 0x08060000, "system-part", 1},
};

/* healerd's wrapper: usbemu, then the test wrapper, so that healerd (not usbemu) runs under it. */
static char *
healerd_wrapper(Fixture *f, const char *model)
{
	g_autoptr(UsbemuCommand) cmd = usbemu_command_new(f, USBEMU_COMMAND_DEFAULT);

	usbemu_command_add_printf(cmd, "--dfu=%s", model);
	usbemu_command_add_printf(cmd, "--state=%s", f->state);
	usbemu_command_add(cmd, "--");
	usbemu_command_add_test_wrapper(cmd);
	return usbemu_command_to_shell(cmd);
}

/*
 * Runs usbemu --dfu MODEL --state STATE -- ARGV... in the fixture's directory, returning its status and
 * output; `wrapped`: ARGV under the test wrapper (the family's code: the client, healerctl).
 */
static int
usbemu_run_wrapped(Fixture *f, const char *model, const char *const *command, gboolean wrapped, char **output)
{
	g_autoptr(UsbemuCommand) cmd = usbemu_command_new(f, USBEMU_COMMAND_CONTROL | USBEMU_COMMAND_IN_DIR);

	usbemu_command_add_printf(cmd, "--dfu=%s", model);
	usbemu_command_add_printf(cmd, "--state=%s", f->state);
	usbemu_command_add(cmd, "--");
	if (wrapped)
		usbemu_command_add_test_wrapper(cmd);
	usbemu_command_add_words(cmd, command);
	return usbemu_command_run(cmd, output);
}

/* usbemu running a program of someone else's (dfu-util, /bin/true): never under the test wrapper. */
static int
usbemu_run(Fixture *f, const char *model, const char *const *command, char **output)
{
	return usbemu_run_wrapped(f, model, command, FALSE, output);
}

/* The client under usbemu: "install FILE" and friends; its options first. */
static int
client_run(Fixture *f, const char *model, const char *const *args, char **output)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (gpointer)test_program("DFU_FAMILY_CLIENT"));
	g_ptr_array_add(argv, (gpointer) "--stall-interval=5");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	return usbemu_run_wrapped(f, model, (const char *const *)argv->pdata, TRUE, output);
}

/* A fresh device: usbemu makes its state (erased flash, a serial number) on a first, empty run. */
static void
make_device(Fixture *f, const char *model)
{
	const char *command[] = {"/bin/true", NULL};

	g_assert_cmpint(usbemu_run(f, model, command, NULL), ==, 0);
}

/* A module of `size` bytes of noise (a fixed seed: the same each run) stamped by mkmodule. */
static char *
make_module(Fixture *f, const char *name, guint16 platform, const char *function, guint index, guint version,
            guint32 address, gsize size, const char *dependency)
{
	g_autofree char *raw_path = g_strdup_printf("%s/%s.raw", f->dir, name);
	char *path = g_strdup_printf("%s/%s.bin", f->dir, name);
	g_autofree guint8 *raw = g_malloc(size);
	g_autoptr(GRand) rand = g_rand_new_with_seed(size + version);
	g_autofree char *platform_arg = g_strdup_printf("--platform=%u", platform ? platform : 6);
	g_autofree char *function_arg = g_strdup_printf("--function=%s", function);
	g_autofree char *index_arg = g_strdup_printf("--index=%u", index);
	g_autofree char *version_arg = g_strdup_printf("--version=%u", version);
	g_autofree char *address_arg = g_strdup_printf("--start-address=0x%08x", address);
	g_autofree char *dependency_arg = dependency ? g_strdup_printf("--dependency=%s", dependency) : NULL;
	g_autofree char *output_arg = g_strdup_printf("--output=%s", path);
	const char *argv[] = {test_program("MKMODULE"),
	                      platform_arg,
	                      function_arg,
	                      index_arg,
	                      version_arg,
	                      address_arg,
	                      output_arg,
	                      raw_path,
	                      dependency_arg,
	                      NULL};
	g_autoptr(GError) error = NULL;
	int status = 0;

	for (gsize i = 0; i < size; i++)
		raw[i] = (guint8)g_rand_int(rand);
	g_assert_true(g_file_set_contents(raw_path, (const char *)raw, (gssize)size, NULL));
	g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, &error);
	g_assert_no_error(error);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	return path;
}

/* Writes `module` into the device's flash file at `address`, as if flashed before. */
static void
put_module(Fixture *f, const Model *m, const char *module, guint32 address)
{
	g_autofree char *flash = usbemu_flash_path(f);
	g_autoptr(GBytes) bytes = test_read_file(module);
	int fd = open(flash, O_WRONLY | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(pwrite(fd, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), address - m->flash_base), ==,
	                (gssize)g_bytes_get_size(bytes));
	close(fd);
}

/* Whether the device's flash holds `module` at `address`. */
static gboolean
flash_holds(Fixture *f, const Model *m, const char *module, guint32 address)
{
	return usbemu_flash_holds(f, m->flash_base, module, address);
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* A Photon stuck in DFU is shown with its modules, read by UPLOAD at its slots. */
static void
test_show_modules(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *sp1 = make_module(f, "sp1", 6, "system-part", 1, 100, 0x08020000, 20 * KIB, NULL);
	g_autofree char *sp2 =
	        make_module(f, "sp2", 6, "system-part", 2, 100, 0x08060000, 30 * KIB, "system-part:1:100");
	g_autofree char *app = make_module(f, "app", 6, "user-part", 1, 5, 0x080a0000, 9 * KIB, "system-part:2:200");
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;

	(void)data;
	make_device(f, m->model);
	put_module(f, m, sp1, 0x08020000);
	put_module(f, m, sp2, 0x08060000);
	put_module(f, m, app, 0x080a0000);
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 0);
	usbemu_assert_contains(out, "port usb:1-1.1\n");
	usbemu_assert_contains(out, "physical-id usb:1-1.1\n");
	usbemu_assert_contains(out, "transport usb\nfamily dfu\nplatform 6\nmode dfu\n");
	/* Particle's serial number is the device id in every mode: the id does not change across modes. */
	usbemu_assert_contains(out, "flags reenumerates install-needs-reset\n");
	usbemu_assert_contains(out, "has-app 1 app-dependencies-failed 1\n");
	usbemu_assert_contains(out, "\"f\":\"s\",\"n\":\"1\",\"v\":100");
	usbemu_assert_contains(out, "\"f\":\"s\",\"n\":\"2\",\"v\":100");
	usbemu_assert_contains(
	        out, "\"vc\":4,\"vv\":0,\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":200}]");
	usbemu_assert_contains(out, "\"transfer_size\":4096");
}

/* A P2's user part ends at its slot's fixed end (0x08600000): found by reading the 4 KiB steps below it. */
static void
test_show_fixed_end(Fixture *f, gconstpointer data)
{
	const Model *m = &models[3];
	/* 20 KiB: it starts 5 steps below the end. */
	g_autofree char *app = make_module(f, "app", 32, "user-part", 1, 7, 0x08600000 - 5 * 4096, 20 * KIB - 64, NULL);
	g_autofree char *sp1 = make_module(f, "sp1", 32, "system-part", 1, 5000, 0x08060000, 40 * KIB, NULL);
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;

	(void)data;
	make_device(f, m->model);
	put_module(f, m, sp1, 0x08060000);
	put_module(f, m, app, 0x08600000 - 5 * 4096);
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 0);
	usbemu_assert_contains(out, "platform 32\n");
	usbemu_assert_contains(out, "\"f\":\"s\",\"n\":\"1\",\"v\":5000");
	usbemu_assert_contains(out, "\"f\":\"u\",\"n\":\"1\",\"v\":7");
}

/* The ST ROM: no Particle modules, its own serial; the id is the chip's, so it changes across modes. */
static void
test_show_rom(Fixture *f, gconstpointer data)
{
	const char *args[] = {"show", NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(client_run(f, "stm32f2", args, &out), ==, 0);
	usbemu_assert_contains(out, "mode rom-dfu\n");
	usbemu_assert_contains(out, "flags reenumerates id-changes install-needs-reset\n");
	usbemu_assert_contains(
	        out, "describe "
	             "{\"p\":0,\"m\":[],\"details\":{\"usb_id\":\"0483:df11\",\"mode\":\"rom-dfu\",\"platform\":\"\"");
	usbemu_assert_contains(out, "@Option Bytes");
}

/* A module to each model, at the address its header gives; the flash file holds it after. */
static void
test_install(Fixture *f, gconstpointer data)
{
	const Model *m = data;
	g_autofree char *module =
	        make_module(f, "module", m->platform, m->function, m->index, 300, m->address, 92 * KIB + 100, NULL);
	g_autofree char *version = g_strdup_printf("\"f\":\"s\",\"n\":\"%u\",\"v\":300", m->index);
	const char *args[] = {"install", module, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 0);
	usbemu_assert_contains(out, "installed\n");
	g_assert_true(flash_holds(f, m, module, m->address));
	/* A Particle device's describe shows the new module at once (its header, read again). */
	if (m->platform != 0)
		usbemu_assert_contains(strstr(out, "installed\n"), version);
	/* Verified by UPLOAD, and every GETSTATUS came after the poll timeout the device asked for. */
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "bRequest=UPLOAD");
	usbemu_assert_lacks(trace, "result=stall");
}

/* The Photon's bootloader segment is read-only ('a'): a module there is refused before any erase, the segment named. */
static void
test_read_only_refused(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *module = make_module(f, "boot", 6, "system-part", 3, 1200, 0x08000000, 10 * KIB, NULL);
	const char *args[] = {"install", module, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 1);
	usbemu_assert_contains(out, "install failed: cannot write ");
	usbemu_assert_contains(out, " bytes at 0x08000000: 0x08000000..");
	usbemu_assert_contains(out, "segment 'Internal Flash' 0x08000000 is not writable (attribute a: read-only)");
	g_assert_false(flash_holds(f, m, module, 0x08000000));
	trace = usbemu_read_trace(f);
	usbemu_assert_lacks(trace, "dfuse=ERASE");
}

/*
 * A bootloader is Device OS's to write (control requests): the device leaves DFU mode for it, nothing
 * is erased, and the install answers a mode switch (the engine runs the step again in normal mode).
 */
static void
test_bootloader_leaves_dfu(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *module = make_module(f, "boot", 6, "bootloader", 0, 1200, 0x08000000, 10 * KIB, NULL);
	const char *args[] = {"install", module, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 1);
	usbemu_assert_contains(out, "install failed: leaving DFU mode to install it over control requests");
	g_assert_false(flash_holds(f, m, module, 0x08000000));
	trace = usbemu_read_trace(f);
	usbemu_assert_lacks(trace, "dfuse=ERASE");
}

/*
 * A DfuSe command the device stalls (the erase) leaves it in dfuERROR: CLRSTATUS, then the command
 * again, and the install goes on; a busy device's longer poll timeout is honoured (asked early,
 * the emulator stalls the GETSTATUS).
 */
static void
test_stall_recovered(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *module = make_module(f, "module", 6, "system-part", 1, 300, 0x08020000, 20 * KIB, NULL);
	const char *args[] = {"install", module, NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	make_device(f, m->model);
	usbemu_control(f, "busy 1 30");
	/* At attach the headers at the Photon's four slots are read (a SET_ADDRESS_POINTER each): the fifth DNLOAD is
	 * the ERASE. */
	usbemu_control(f, "stall 1 DNLOAD 4");
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 0);
	usbemu_assert_contains(out, "installed\n");
	g_assert_true(flash_holds(f, m, module, 0x08020000));
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "fault stall fired bRequest=DNLOAD");
	usbemu_assert_contains(trace, "wLength=5 result=stall state=dfuERROR status=errSTALLEDPKT\n");
	usbemu_assert_contains(trace, "dfuse=ERASE:0x08020000");
	usbemu_assert_contains(trace, "bRequest=CLRSTATUS");
	usbemu_assert_contains(trace, "poll=30");
}

/* A data block the device stalls is not a command: the install fails, naming the block, state and status. */
static void
test_failure_names_state(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *module = make_module(f, "module", 6, "system-part", 1, 300, 0x08020000, 20 * KIB, NULL);
	const char *args[] = {"install", module, NULL};
	g_autofree char *out = NULL;

	(void)data;
	make_device(f, m->model);
	/* Let the four header reads, the erase and the first SET_ADDRESS_POINTER through: the data block is stalled. */
	usbemu_control(f, "stall 1 DNLOAD 6");
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 1);
	usbemu_assert_contains(out, "install failed: DNLOAD of 4096 bytes at 0x08020000: the device stalled DNLOAD "
	                            "(state dfuERROR, status errSTALLEDPKT)");
}

/* Unplugged mid-download: the install fails, and when the device is back it is installed from the start. */
static void
test_unplug_mid_download(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *module = make_module(f, "module", 6, "system-part", 1, 300, 0x08020000, 92 * KIB, NULL);
	g_autofree char *control_arg = g_strdup_printf("--control=%s", f->control);
	const char *args[] = {control_arg, "--fault-at=40000", "--fault=unplug 1", "install", module, NULL};
	g_autofree char *out = NULL;
	const char *second;

	(void)data;
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 0);
	usbemu_assert_contains(out, "fault sent: unplug 1\n");
	usbemu_assert_contains(out, "install failed: device went away: ");
	usbemu_assert_contains(out, "fault sent: replug 1\n");
	second = strstr(out, "back: installing again\n");
	g_assert_nonnull(second);
	usbemu_assert_contains(second, "installed\n");
	g_assert_true(flash_holds(f, m, module, 0x08020000));
}

/* The ST ROM leaves DFU into DFU again: the same device is back at the same physical id. */
static void
test_leave_rom(Fixture *f, gconstpointer data)
{
	const char *args[] = {"leave", NULL};
	g_autofree char *out = NULL;
	g_autofree char *trace = NULL;

	(void)data;
	g_assert_cmpint(client_run(f, "stm32f2", args, &out), ==, 0);
	usbemu_assert_contains(out, "left usb:1-1.1 0483:df11\n");
	usbemu_assert_contains(out, "back usb:1-1.1 0483:df11 dfu\n");
	/* Read again as it came back: in DFU mode, the same serial number, so the same id. */
	{
		const char *first = strstr(out, "\nid ");
		const char *back = strstr(out, "back usb:1-1.1");
		const char *again = back != NULL ? strstr(back, "\nid ") : NULL;
		gsize line;

		/* Checked one by one, so the compiler (ASan's -O2 stringop checks) sees none is NULL. */
		if (first == NULL || again == NULL)
			g_error("no 'id' line before and after the leave in:\n%s", out);
		line = strcspn(first + 1, "\n") + 1;
		g_assert_cmpint(strncmp(first, again, line), ==, 0);
	}
	trace = usbemu_read_trace(f);
	usbemu_assert_contains(trace, "event manifest next=dfu");
}

/* A Particle device leaves DFU for normal mode: another product id at the same physical id, no DFU family there. */
static void
test_leave_particle(Fixture *f, gconstpointer data)
{
	const char *args[] = {"leave", NULL};
	g_autofree char *out = NULL;

	(void)data;
	g_assert_cmpint(client_run(f, "particle-argon", args, &out), ==, 0);
	usbemu_assert_contains(out, "left usb:1-1.1 2b04:d00c\n");
	usbemu_assert_contains(out, "back usb:1-1.1 2b04:c00c not dfu\n");
}

/*
 * healerd heals a Photon stuck in DFU: its application needs system-part 2 v200, the store has it
 * (a signed catalog); healerd installs it, resets the device (leave), and the device comes back in
 * normal mode, where the Particle family serves it.
 */
static void
test_healerd_heals(Fixture *f, gconstpointer data)
{
	const Model *m = &models[1];
	g_autofree char *modules = g_build_filename(f->dir, "modules", NULL);
	g_autofree char *sp1 = make_module(f, "sp1", 6, "system-part", 1, 100, 0x08020000, 20 * KIB, NULL);
	g_autofree char *sp2 =
	        make_module(f, "sp2", 6, "system-part", 2, 100, 0x08060000, 30 * KIB, "system-part:1:100");
	g_autofree char *app = make_module(f, "app", 6, "user-part", 1, 5, 0x080a0000, 9 * KIB, "system-part:2:200");
	g_autofree char *sp2_new =
	        make_module(f, "sp2-200", 6, "system-part", 2, 200, 0x08060000, 30 * KIB, "system-part:1:100");
	g_autofree char *stored = g_build_filename(modules, "sp2-200.bin", NULL);
	g_autofree char *key = g_build_filename(test_program("HEALER_SOURCE_DIR"), "device-firmware", "keys",
	                                        "development-DO-NOT-USE-IN-PRODUCTION.pem", NULL);
	g_autofree char *catalog = g_build_filename(modules, "catalog.json", NULL);
	g_autofree char *healerd_dir = g_build_filename(f->dir, "healerd", NULL);
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autoptr(GBytes) bytes = test_read_file(sp2_new);
	const char *publish[] = {test_program("HEALER_PUBLISH"),
	                         "catalog",
	                         "--modules",
	                         modules,
	                         "--serial",
	                         "1",
	                         "--key",
	                         key,
	                         "--output",
	                         catalog,
	                         NULL};
	int status = 0;

	(void)data;
	g_assert_cmpint(g_mkdir_with_parents(modules, 0755), ==, 0);
	g_assert_true(
	        g_file_set_contents(stored, g_bytes_get_data(bytes, NULL), (gssize)g_bytes_get_size(bytes), NULL));
	g_assert_true(g_spawn_sync(NULL, (char **)publish, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL,
	                           &status, NULL));
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	make_device(f, m->model);
	put_module(f, m, sp1, 0x08020000);
	put_module(f, m, sp2, 0x08060000);
	put_module(f, m, app, 0x080a0000);

	g_mkdir_with_parents(healerd_dir, 0755);
	healerd = healerd_process_new(healerd_dir, modules, NULL);
	healerd->wrapper = healerd_wrapper(f, m->model);
	healerd_process_start(healerd);
	{
		const char *attached[] = {"attached on usb:1-1.1: platform 6, dfu", NULL};
		const char *started[] = {"starting the heal: 1 module(s)", NULL};
		const char *installed[] = {"installed system-part 2 v200 (step 1 of 1)", NULL};
		const char *succeeded[] = {"heal succeeded: 1 module(s)", "resetting it to start its application",
		                           NULL};
		const char *detached[] = {"] detached", NULL};
		const char *normal[] = {"usb:1-1.1: USB device 2b04:c006", "served by the particle family", NULL};
		healerd_process_wait(healerd, attached, 1, 60000);
		healerd_process_wait(healerd, started, 1, 60000);
		healerd_process_wait(healerd, installed, 1, 60000);
		healerd_process_wait(healerd, succeeded, 1, 60000);
		healerd_process_wait(healerd, detached, 1, 60000);
		healerd_process_wait(healerd, normal, 1, 60000);
	}
	healerd_process_stop(healerd);
	g_assert_true(flash_holds(f, m, sp2_new, 0x08060000));
	g_assert_true(flash_holds(f, m, app, 0x080a0000));
}

/* A Photon in DFU with every dependency met, and its modules there. */
static void
photon_with_modules(Fixture *f, gboolean app_needs_newer)
{
	const Model *m = &models[1];
	g_autofree char *sp1 = make_module(f, "sp1", 6, "system-part", 1, 100, 0x08020000, 20 * KIB, NULL);
	g_autofree char *sp2 =
	        make_module(f, "sp2", 6, "system-part", 2, 100, 0x08060000, 30 * KIB, "system-part:1:100");
	g_autofree char *app = make_module(f, "app", 6, "user-part", 1, 5, 0x080a0000, 9 * KIB,
	                                   app_needs_newer ? "system-part:2:200" : "system-part:2:100");

	make_device(f, m->model);
	put_module(f, m, sp1, 0x08020000);
	put_module(f, m, sp2, 0x08060000);
	put_module(f, m, app, 0x080a0000);
}

/* healerctl probe usb:... reads the device through the family: its layouts and modules. */
static void
test_probe(Fixture *f, gconstpointer data)
{
	const char *text_args[] = {test_program("HEALERCTL"), "probe", "usb:1-1.1", NULL};
	const char *json_args[] = {test_program("HEALERCTL"), "probe", "--json", "usb:2b04:d006", NULL};
	g_autofree char *out = NULL;
	g_autofree char *json = NULL;

	(void)data;
	photon_with_modules(f, TRUE);
	g_assert_cmpint(usbemu_run_wrapped(f, "particle-photon", text_args, TRUE, &out), ==, 0);
	usbemu_assert_contains(out, "  Family:       dfu (interface 0, class fe/01/02): healerd serves it\n");
	usbemu_assert_contains(out, "  DFU:          dfu, id ");
	usbemu_assert_contains(out, ", platform photon, wTransferSize 4096, can-download|can-upload|will-detach\n");
	usbemu_assert_contains(out,
	                       "    alt 0:      @Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg\n");
	usbemu_assert_contains(
	        out, "    user-part    1  v5     FAILED checks\n        needs system-part 2 >= 200         FAIL\n");
	g_assert_cmpint(usbemu_run_wrapped(f, "particle-photon", json_args, TRUE, &json), ==, 0);
	usbemu_assert_contains(json, "\"family\":\"dfu\"");
	usbemu_assert_contains(json, "\"describe\":{");
	usbemu_assert_contains(json, "\"transfer_size\":4096");
}

/* healerctl devices and device ID show a device healerd serves in DFU: port = physical id, transport usb, modules. */
static void
test_healerctl_devices(Fixture *f, gconstpointer data)
{
	g_auto(Bus) bus = {0};
	g_autofree char *modules = g_build_filename(f->dir, "modules", NULL);
	g_autofree char *healerd_dir = g_build_filename(f->dir, "healerd", NULL);
	g_autoptr(HealerdProcess) healerd = NULL;
	g_autofree char *serial_path = g_build_filename(f->state, "serial", NULL);
	g_autofree char *serial = NULL;
	g_autofree char *id = NULL;
	g_auto(TestRun) devices = {0};
	g_auto(TestRun) device = {0};
	const char *judged[] = {"dfu, nothing to heal", NULL};

	(void)data;
	if (!have_dbus_daemon()) {
		g_test_skip("dbus-daemon is not installed");
		return;
	}
	photon_with_modules(f, FALSE);
	g_assert_true(g_file_get_contents(serial_path, &serial, NULL, NULL));
	id = g_ascii_strdown(g_strstrip(serial), -1);
	g_mkdir_with_parents(modules, 0755);
	g_mkdir_with_parents(healerd_dir, 0755);
	healerd = healerd_process_new(healerd_dir, modules, NULL);
	healerd->bus_args = g_strdup(""); /* the system bus: the private one */
	healerd->wrapper = healerd_wrapper(f, "particle-photon");
	bus_start(&bus);
	healerd_process_start(healerd);
	healerd_process_wait(healerd, judged, 1, 60000);
	bus_wait_for_healerd(&bus, 60000);
	healerctl(&devices, "devices", NULL);
	g_assert_cmpint(devices.exit_status, ==, 0);
	usbemu_assert_contains(devices.out, id);
	usbemu_assert_contains(devices.out, "  usb:1-1.1  photon    dfu ");
	healerctl(&device, "device", id, NULL);
	g_assert_cmpint(device.exit_status, ==, 0);
	usbemu_assert_contains(device.out, "Port:         usb:1-1.1 (usb)\n");
	usbemu_assert_contains(device.out, "Mode:         dfu\n");
	usbemu_assert_contains(device.out, "    system-part  2  v100   valid\n");
	usbemu_assert_contains(device.out, "    user-part    1  v5     valid\n");
	/* The DFU family's details. */
	usbemu_assert_contains(device.out, "USB:          2b04:d006, serial number ");
	usbemu_assert_contains(device.out, "DFU:          wTransferSize 4096, can-download|can-upload");
	g_test_message("healerctl devices:\n%s\nhealerctl device:\n%s", devices.out, device.out);
	healerd_process_stop(healerd);
}

/*
 * dfu-util as the peer: for the same module and the same emulated model, `dfu-util -a 0 -s
 * ADDR:leave -D FILE` and the family (install, then leave) leave byte-identical flash files.
 */
static void
test_same_flash_as_dfu_util(Fixture *f, gconstpointer data)
{
	const Model *m = data;
	g_autofree char *module =
	        make_module(f, "module", m->platform, m->function, m->index, 300, m->address, 92 * KIB + 100, NULL);
	g_autofree char *dfu_util = g_find_program_in_path("dfu-util");
	g_autofree char *ours_state = g_build_filename(f->dir, "ours", NULL);
	g_autofree char *address = g_strdup_printf("0x%08x:leave", m->address);
	g_autofree char *out = NULL;
	g_autofree char *flash_theirs = NULL;
	g_autofree char *flash_ours = NULL;
	g_autoptr(GBytes) theirs = NULL;
	g_autoptr(GBytes) ours = NULL;
	const char *args[] = {"--leave", "install", module, NULL};
	const char *dfu_util_args[] = {dfu_util, "-a", "0", "-s", address, "-D", module, NULL};

	if (dfu_util == NULL) {
		g_test_skip("dfu-util is not installed (scripts/setup.sh installs it)");
		return;
	}
	/* dfu-util's device: a fresh state directory. */
	g_assert_cmpint(usbemu_run(f, m->model, dfu_util_args, &out), ==, 0);
	flash_theirs = usbemu_flash_path(f);
	theirs = test_read_file(flash_theirs);
	/* Ours: another fresh device of the same model. */
	g_free(f->state);
	f->state = g_strdup(ours_state);
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(client_run(f, m->model, args, &out), ==, 0);
	usbemu_assert_contains(out, "installed\n");
	usbemu_assert_contains(out, "back usb:1-1.1");
	flash_ours = usbemu_flash_path(f);
	ours = test_read_file(flash_ours);
	g_assert_cmpuint(g_bytes_get_size(theirs), ==, g_bytes_get_size(ours));
	g_assert_true(g_bytes_equal(theirs, ours));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn, data) g_test_add(path, Fixture, data, usbemu_fixture_set_up, fn, usbemu_fixture_tear_down)
	ADD("/dfu-family/show/modules", test_show_modules, NULL);
	ADD("/dfu-family/show/rom", test_show_rom, NULL);
	ADD("/dfu-family/show/fixed-end", test_show_fixed_end, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(models); i++) {
		g_autofree char *path = g_strdup_printf("/dfu-family/install/%s", models[i].model);
		g_autofree char *peer = g_strdup_printf("/dfu-family/same-flash-as-dfu-util/%s", models[i].model);
		ADD(path, test_install, &models[i]);
		ADD(peer, test_same_flash_as_dfu_util, &models[i]);
	}
	ADD("/dfu-family/read-only-refused", test_read_only_refused, NULL);
	ADD("/dfu-family/bootloader-leaves-dfu", test_bootloader_leaves_dfu, NULL);
	ADD("/dfu-family/stall-recovered", test_stall_recovered, NULL);
	ADD("/dfu-family/failure-names-state", test_failure_names_state, NULL);
	ADD("/dfu-family/unplug-mid-download", test_unplug_mid_download, NULL);
	ADD("/dfu-family/leave/rom", test_leave_rom, NULL);
	ADD("/dfu-family/leave/particle", test_leave_particle, NULL);
	ADD("/dfu-family/healerd-heals", test_healerd_heals, NULL);
	ADD("/dfu-family/probe", test_probe, NULL);
	ADD("/dfu-family/healerctl-devices", test_healerctl_devices, NULL);
	return g_test_run();
}
