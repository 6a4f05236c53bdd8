/*
 * Firmware distribution end to end (docs/bundles.md, docs/upstream.md), with
 * real healerd processes, healerctl and simulated devices:
 *
 * - offline: gateway A seeds its store from the firmware build; `healerctl
 *   export --release 2.1.0` writes a bundle from A's state directory;
 *   gateway B (empty store, no upstream, on a private system bus) has a
 *   device blocked on 2.1.0; `healerctl import` of the bundle heals it;
 *   importing it again adds nothing; a tampered copy is refused, naming the
 *   file, and changes nothing.
 */
#define _GNU_SOURCE /* memmem */
#include <glib/gstdio.h>
#include <string.h>

#include "gateway-harness.h"
#include "healerd-process.h"
#include "test-util.h"

static char *tmpdir;

static void
wait_log(HealerdProcess *healerd, const char *what, guint count, guint timeout_ms)
{
	const char *all[] = {what, NULL};

	healerd_process_wait(healerd, all, count, timeout_ms);
}

static GBytes *
store_index(const char *state)
{
	g_autofree char *path = g_build_filename(state, "store", "index.json", NULL);

	return test_read_file(path);
}

/* A .tar bundle of gateway A's release 2.1.0, written by healerctl export from A's state directory. */
static char *
export_from_gateway_a(const char *dir)
{
	g_autofree char *a_dir = g_build_filename(dir, "gateway-a", NULL);
	g_autofree char *a_state = g_build_filename(a_dir, "state", NULL);
	char *bundle = g_build_filename(dir, "usb-stick", "release-2.1.0.tar", NULL);
	g_autoptr(HealerdProcess) a = NULL;
	g_autofree char *stick = g_path_get_dirname(bundle);
	g_auto(TestRun) run = {0};

	g_mkdir_with_parents(a_dir, 0755);
	g_mkdir_with_parents(stick, 0755);
	a = healerd_process_new(a_dir, test_program("HEALER_FIRMWARE_MODULES"), NULL);
	healerd_process_start(a);
	wait_log(a, "accepted the signed catalog", 1, 30000);
	wait_log(a, "new module(s)", 1, 30000);
	wait_log(a, "serving", 1, 30000);
	healerd_process_stop(a);

	healerctl(&run, "export", "--state-dir", a_state, "--release", "2.1.0", bundle, NULL);
	g_assert_cmpint(run.exit_status, ==, 0);
	g_assert_true(g_file_test(bundle, G_FILE_TEST_IS_REGULAR));
	return bundle;
}

static void
test_offline_bundle(void)
{
	g_autofree char *dir = g_build_filename(tmpdir, "offline", NULL);
	g_autofree char *b_dir = g_build_filename(dir, "gateway-b", NULL);
	g_autofree char *b_state = g_build_filename(b_dir, "state", NULL);
	g_autofree char *empty = g_build_filename(b_dir, "no-modules", NULL);
	g_autofree char *bundle = NULL;
	g_autofree char *tampered = g_build_filename(dir, "usb-stick", "tampered.tar", NULL);
	g_auto(Bus) bus = {0};
	g_autoptr(HealerdProcess) b = NULL;
	g_auto(Device) weather = {0};
	g_autoptr(GBytes) before = NULL, after = NULL;

	if (!have_dbus_daemon()) {
		g_test_skip("no dbus-daemon");
		return;
	}
	bundle = export_from_gateway_a(dir);

	g_mkdir_with_parents(empty, 0755);
	/*
	 * The store already holds the modules the device needs, as a gateway upgraded from a version that
	 * checked no signatures would: no trusted catalog lists them, so they are not used.
	 */
	{
		g_autofree char *store = g_build_filename(b_state, "store", NULL);
		const char *parts[] = {"system-part1.bin", "system-part2.bin"};

		g_mkdir_with_parents(store, 0750);
		for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
			g_autofree char *from =
			        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "2.1.0", parts[i], NULL);
			g_autoptr(GBytes) bytes = test_read_file(from);
			g_autofree char *sha = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bytes);
			g_autofree char *name = g_strconcat(sha, ".bin", NULL);
			g_autofree char *to = g_build_filename(store, name, NULL);
			test_write_file(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
		}
	}
	b = healerd_process_new(b_dir, empty, NULL);
	b->bus_args = g_strdup(""); /* the system bus: the private one */
	start_device(&weather, b_dir, "weather", "2.0.0", "sensor");
	bus_start(&bus);
	healerd_process_start(b);
	/* Nothing in the store, no upstream: blocked, saying what it needs and what to do. */
	wait_log(b, "cannot heal", 1, 60000);
	{
		const char *all[] = {"cannot heal", "system-part", "import a module bundle", NULL};
		g_assert_cmpuint(healerd_process_count(b, all), >=, 1);
	}

	/* A tampered copy of the bundle: refused with the file and the fault, the store untouched. */
	{
		g_autoptr(GBytes) whole = test_read_file(bundle);
		g_autofree guint8 *data = g_memdup2(g_bytes_get_data(whole, NULL), g_bytes_get_size(whole));
		g_autofree char *part2 =
		        g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "2.1.0", "system-part2.bin", NULL);
		g_autoptr(GBytes) module = test_read_file(part2);
		const guint8 *at = memmem(data, g_bytes_get_size(whole), g_bytes_get_data(module, NULL), 4096);
		g_auto(TestRun) run = {0};

		/* One byte inside system-part 2's copy in the archive. */
		g_assert_nonnull(at);
		data[(at - data) + 2000] ^= 0x01;
		test_write_file(tampered, data, g_bytes_get_size(whole));
		healerctl(&run, "import", tampered, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_nonnull(strstr(run.err, "tampered.tar"));
		g_assert_nonnull(strstr(run.err, "SHA-256 mismatch"));
	}

	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "import", bundle, NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, "new modules added"));
	}
	wait_log(b, "heal succeeded", 1, 120000);
	before = store_index(b_state);

	/* The same bundle again: nothing new, the store as it was. */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "import", bundle, NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, "0 new modules added"));
	}
	after = store_index(b_state);
	g_assert_true(g_bytes_equal(before, after));
	/* What the gateway trusts now, and that it has no upstream. */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "status", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, "serial 1, "));
		g_assert_nonnull(strstr(run.out, "release-2.1.0.tar"));
		g_assert_nonnull(strstr(run.out, "Upstream:       none"));
	}
	/* No release table on this gateway: the release names come from the trusted catalog. */
	{
		g_auto(TestRun) run = {0};
		healerctl(&run, "modules", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, "2.1.0"));
	}
	healerd_process_stop(b);
	assert_runs(&weather);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/distribution/offline-bundle", test_offline_bundle);
	status = g_test_run();
	test_tmpdir_free(tmpdir);
	return status;
}
