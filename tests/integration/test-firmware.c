/*
 * The device firmware end to end, on simulated devices driven through
 * libhealer's link codec (no daemon): safe mode and its describe, healing
 * in a valid order through a stepping-stone release, the update errors,
 * resuming after a cut link or a device reset, and power loss at random
 * points of a transfer and of the commit.
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "healer/firmware-image.h"
#include "healer/module-format.h"
#include "module-checksums.h"
#include "module-writer.h"
#include "sim-client.h"
#include "test-util.h"

static char *tmpdir;

static GBytes *
module_file(const char *relative)
{
	g_autofree char *path = g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), relative, NULL);

	return test_read_file(path);
}

static SimDevice *
new_device(const char *name, const char *const *args)
{
	g_autofree char *dir = g_build_filename(tmpdir, name, NULL);

	return sim_device_start(dir, args);
}

/* A module's version, read from the describe. */
static guint16
installed_version(HealerDescribe *describe, guint function, guint index)
{
	const HealerDescribeModule *m = healer_describe_find(describe, function, index);

	g_assert_nonnull(m);
	return m->version;
}

static void
assert_all_valid(HealerDescribe *describe)
{
	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		if (m->function == MODULE_FUNCTION_USER_PART)
			continue;
		if (!healer_describe_module_valid(m))
			g_error("module %u/%u v%u is not valid: vc %u vv %u", m->function, m->index, m->version,
			        m->validity_checked, m->validity_passed);
	}
}

static void
flash_ok(SimDevice *dev, const char *relative)
{
	g_autoptr(GBytes) module = module_file(relative);
	SimTransfer t;
	HealerLinkHello hello;

	sim_device_transfer(dev, module, G_MAXUINT32, NULL, &t);
	g_assert_cmpint(t.ready_status, ==, 0);
	g_assert_true(t.finished);
	if (t.result != 0)
		g_error("%s refused: %d", relative, t.result);
	sim_device_wait_hello(dev, &hello, 10000);
	g_assert_cmpuint(hello.reset_reason, ==, LINK_RESET_UPDATE);
}

/* The device sent a LOG whose text is exactly `text` (already received: no wait). */
static void
assert_logged(SimDevice *dev, const char *text)
{
	for (guint i = 0; i < dev->logs->len; i++) {
		if (g_strcmp0(g_ptr_array_index(dev->logs, i), text) == 0)
			return;
	}
	for (guint i = 0; i < dev->logs->len; i++)
		g_test_message("logged: %s", (const char *)g_ptr_array_index(dev->logs, i));
	g_error("the device did not log \"%s\" (%u lines logged)", text, dev->logs->len);
}

/*
 * The device did not reset since `boot` and installed nothing.  Asked for
 * its HELLO, it answers with the mode, safe-mode reason and reset reason it
 * booted with: had it reset after the last request, its boot HELLO (reset
 * reason update or requested) would be first in line.  After a PING it
 * answered, no second HELLO is queued (it sends frames in order, so this is
 * not a timed silence), and its describe is `before_json`.
 */
static void
assert_not_reset(SimDevice *dev, const HealerLinkHello *boot, const char *before_json)
{
	g_autoptr(HealerDescribe) d = NULL;
	g_autoptr(HealerLinkFrame) extra = NULL;
	g_autofree char *json = NULL;
	HealerLinkHello now;

	sim_device_request_hello(dev, &now);
	g_assert_cmpuint(now.reset_reason, ==, boot->reset_reason);
	g_assert_cmpuint(now.mode, ==, boot->mode);
	g_assert_cmpuint(now.safe_mode_reason, ==, boot->safe_mode_reason);
	sim_device_sync(dev);
	extra = sim_device_wait(dev, LINK_HELLO, 0);
	g_assert_null(extra);
	d = sim_device_describe(dev, &json);
	g_assert_cmpstr(json, ==, before_json);
}

/*
 * Nothing was queued for commit: reset the device, and its bootloader
 * installs nothing (no "bootloader:" line before the PING it answers after
 * booting) and its describe is still `before_json`.  A refusal that left a
 * commit record behind would show here, not before the reset.
 */
static void
assert_nothing_staged(SimDevice *dev, const char *before_json)
{
	g_autoptr(GBytes) reset = healer_link_build_reset();
	g_autoptr(HealerDescribe) d = NULL;
	g_autofree char *json = NULL;
	HealerLinkHello hello;

	g_ptr_array_set_size(dev->logs, 0);
	sim_device_send(dev, reset);
	sim_device_wait_hello(dev, &hello, 10000);
	g_assert_cmpuint(hello.reset_reason, ==, LINK_RESET_REQUESTED);
	sim_device_sync(dev);
	for (guint i = 0; i < dev->logs->len; i++)
		g_assert_null(strstr(g_ptr_array_index(dev->logs, i), "bootloader:"));
	d = sim_device_describe(dev, &json);
	g_assert_cmpstr(json, ==, before_json);
}

static json_object *
member(json_object *obj, const char *key)
{
	json_object *value = NULL;

	if (!json_object_object_get_ex(obj, key, &value))
		g_error("no \"%s\" in %s", key, json_object_to_json_string(obj));
	return value;
}

/*
 * `got` (healerctl inspect --json, one module) is a valid module for this
 * board and is what firmware.json says it is: its slot's function, index
 * and start, the version, and the dependencies in their order.
 */
static void
assert_module_is(json_object *got, json_object *slot, guint16 version, json_object *dependencies)
{
	const char *file = json_object_get_string(member(got, "file"));
	json_object *deps = member(got, "dependencies");
	gsize n = dependencies != NULL ? json_object_array_length(dependencies) : 0;

	g_test_message("%s: v%d", file, json_object_get_int(member(got, "version")));
	if (!json_object_get_boolean(member(got, "valid")))
		g_error("%s is not valid: %s", file, json_object_to_json_string(member(got, "faults")));
	g_assert_cmpint(json_object_get_int(member(got, "platform_id")), ==, 3);
	g_assert_cmpstr(json_object_get_string(member(got, "function")), ==,
	                json_object_get_string(member(slot, "function")));
	g_assert_cmpint(json_object_get_int(member(got, "index")), ==, json_object_get_int(member(slot, "index")));
	g_assert_cmpint(json_object_get_int64(member(got, "start_address")), ==,
	                json_object_get_int64(member(slot, "start")));
	g_assert_cmpint(json_object_get_int(member(got, "version")), ==, version);
	g_assert_cmpuint(json_object_array_length(deps), ==, n);
	for (gsize i = 0; i < n; i++) {
		json_object *want = json_object_array_get_idx(dependencies, i);
		json_object *have = json_object_array_get_idx(deps, i);
		g_assert_cmpstr(json_object_get_string(member(have, "function")), ==,
		                json_object_get_string(json_object_array_get_idx(want, 0)));
		g_assert_cmpint(json_object_get_int(member(have, "index")), ==,
		                json_object_get_int(json_object_array_get_idx(want, 1)));
		g_assert_cmpint(json_object_get_int(member(have, "version")), ==,
		                json_object_get_int(json_object_array_get_idx(want, 2)));
	}
}

/*
 * Every module firmware.json describes was built, and healerctl inspect
 * finds each valid and as described (not only "exit 0": each file's own
 * verdict, version and dependencies); the text form names release versions.
 */
static void
test_modules_inspect(void)
{
	const char *dir = test_program("HEALER_FIRMWARE_MODULES");
	const char *parts[] = {"bootloader", "system-part1", "system-part2"};
	g_autofree char *description_path =
	        g_build_filename(test_program("HEALER_SOURCE_DIR"), "device-firmware", "firmware.json", NULL);
	json_object *description = json_object_from_file(description_path);
	json_object *slots, *releases, *apps, *result;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_auto(TestRun) run = {0}, text = {0};
	gsize at = 0;

	g_assert_nonnull(description);
	slots = member(description, "slots");
	releases = member(description, "releases");
	apps = member(description, "apps");
	g_assert_cmpuint(json_object_array_length(releases), >, 0);
	g_assert_cmpuint(json_object_array_length(apps), >, 0);

	g_ptr_array_add(argv, g_strdup(test_program("HEALERCTL")));
	g_ptr_array_add(argv, g_strdup("inspect"));
	g_ptr_array_add(argv, g_strdup("--json"));
	for (gsize r = 0; r < json_object_array_length(releases); r++) {
		const char *name = json_object_get_string(member(json_object_array_get_idx(releases, r), "name"));
		for (gsize p = 0; p < G_N_ELEMENTS(parts); p++)
			g_ptr_array_add(argv, g_strdup_printf("%s/%s/%s.bin", dir, name, parts[p]));
	}
	for (gsize a = 0; a < json_object_array_length(apps); a++)
		g_ptr_array_add(argv, g_strdup_printf("%s/apps/%s.bin", dir,
		                                      json_object_get_string(
		                                              member(json_object_array_get_idx(apps, a), "name"))));
	g_ptr_array_add(argv, NULL);
	test_run(&run, (const char *const *)argv->pdata);
	if (run.exit_status != 0)
		g_error("inspect failed on the firmware build:\n%s", run.err);
	result = json_tokener_parse(run.out);
	g_assert_nonnull(result);
	g_assert_cmpuint(json_object_array_length(result), ==, argv->len - 4);

	for (gsize r = 0; r < json_object_array_length(releases); r++) {
		json_object *release = json_object_array_get_idx(releases, r);
		for (gsize p = 0; p < G_N_ELEMENTS(parts); p++) {
			json_object *part = member(release, parts[p]), *deps = NULL;
			json_object_object_get_ex(part, "dependencies", &deps);
			assert_module_is(json_object_array_get_idx(result, at++), member(slots, parts[p]),
			                 (guint16)json_object_get_int(member(part, "version")), deps);
		}
	}
	for (gsize a = 0; a < json_object_array_length(apps); a++) {
		json_object *app = json_object_array_get_idx(apps, a);
		const char *against = json_object_get_string(member(app, "built_against"));
		json_object *deps = json_object_new_array(), *dep = json_object_new_array();
		/* An application needs system part 2 of the release it was built against. */
		for (gsize r = 0; r < json_object_array_length(releases); r++) {
			json_object *release = json_object_array_get_idx(releases, r);
			if (g_strcmp0(json_object_get_string(member(release, "name")), against) != 0)
				continue;
			json_object_array_add(dep, json_object_new_string("system-part"));
			json_object_array_add(dep, json_object_new_int(2));
			json_object_array_add(dep, json_object_get(member(member(release, "system-part2"), "version")));
		}
		g_assert_cmpuint(json_object_array_length(dep), ==, 3);
		json_object_array_add(deps, dep);
		assert_module_is(json_object_array_get_idx(result, at++), member(slots, "user-part"),
		                 (guint16)json_object_get_int(member(app, "version")), deps);
		json_object_put(deps);
	}
	json_object_put(result);
	json_object_put(description);

	/* The text form names versions by release (HEALER_RELEASE_TABLE). */
	g_ptr_array_remove_index(argv, 2);
	test_run(&text, (const char *const *)argv->pdata);
	g_assert_cmpint(text.exit_status, ==, 0);
	g_assert_nonnull(strstr(text.out, "Version:        1203 (1.2.0)"));
	g_assert_nonnull(strstr(text.out, "Version:        2000 (2.0.0-rc.1)"));
}

static void
test_safe_mode_describe(void)
{
	const char *args[] = {"--release", "1.0.0", "--app", "travel-in-time", NULL};
	g_autoptr(SimDevice) dev = new_device("safe", args);
	g_autoptr(HealerDescribe) describe = NULL;
	g_autoptr(GArray) unmet = NULL;
	g_autofree char *json = NULL;
	const HealerDescribeModule *user;
	HealerLinkHello hello;

	sim_device_wait_hello(dev, &hello, 10000);
	g_assert_cmpuint(hello.protocol_version, ==, LINK_PROTOCOL_VERSION);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	g_assert_cmpuint(hello.safe_mode_reason, ==, LINK_SAFE_MODE_DEPENDENCIES);
	g_assert_cmpuint(hello.led, ==, LINK_LED_BREATHING_MAGENTA);
	g_assert_cmpuint(hello.reset_reason, ==, LINK_RESET_POWER_ON);
	g_assert_cmpuint(hello.platform_id, ==, 3);

	describe = sim_device_describe(dev, &json);
	g_test_message("describe: %s", json);
	g_assert_cmpuint(describe->platform_id, ==, 3);
	user = healer_describe_find(describe, MODULE_FUNCTION_USER_PART, 1);
	g_assert_nonnull(user);
	g_assert_cmpuint(user->validity_checked, ==, 30);
	g_assert_cmpuint(user->validity_passed, ==, 26);
	g_assert_true(healer_describe_module_dependency_failed(user));
	g_assert_true(user->has_hash);
	/* It names what it needs: system part 2 of 2.0.0. */
	unmet = healer_describe_module_unmet_dependencies(describe, user);
	g_assert_cmpuint(unmet->len, ==, 1);
	g_assert_cmpuint(g_array_index(unmet, HealerDescribeDependency, 0).function, ==, MODULE_FUNCTION_SYSTEM_PART);
	g_assert_cmpuint(g_array_index(unmet, HealerDescribeDependency, 0).index, ==, 2);
	g_assert_cmpuint(g_array_index(unmet, HealerDescribeDependency, 0).version, ==, 2002);
	g_assert_nonnull(strstr(json, "\"vv\":26"));
	assert_all_valid(describe);
}

static void
test_other_safe_modes(void)
{
	const char *requested[] = {"--release", "1.0.0", "--app", "tinker", "--safe-mode", NULL};
	const char *no_app[] = {"--release", "2.0.0", "--app", "none", NULL};
	const char *normal[] = {"--release", "1.1.0", "--app", "tinker", NULL};
	g_autoptr(SimDevice) a = new_device("requested", requested);
	g_autoptr(SimDevice) b = new_device("no-app", no_app);
	g_autoptr(SimDevice) c = new_device("normal", normal);
	HealerLinkHello hello;

	sim_device_wait_hello(a, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	g_assert_cmpuint(hello.safe_mode_reason, ==, LINK_SAFE_MODE_REQUESTED);
	sim_device_wait_hello(b, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	g_assert_cmpuint(hello.safe_mode_reason, ==, LINK_SAFE_MODE_NO_APPLICATION);
	/* An app built against 1.0.0 runs on 1.1.0. */
	sim_device_wait_hello(c, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_NORMAL);
	g_assert_cmpuint(hello.led, ==, LINK_LED_BREATHING_CYAN);
	g_assert_true(sim_device_wait_log(c, "tinker: running on system 1.1.0", 5000));
}

/* data: NULL, or "--no-engines" (the firmware hashes and computes CRCs in software). */
/*
 * A paced line is never faster than its baud rate: 10 bits a byte (8N1),
 * 10.85 us at 921600 baud.  A lower bound, so a loaded machine cannot break
 * it (the simulator once rounded a byte down to 10 us: 8.5 % fast).
 */
static void
test_line_rate(void)
{
	const char *args[] = {"--release", "1.0.0", "--app", "heartbeat", "--baud", "921600", NULL};
	g_autoptr(SimDevice) dev = new_device("line-rate", args);
	g_autoptr(GBytes) module = module_file("1.1.0/system-part1.bin");
	gsize len = g_bytes_get_size(module);
	gint64 t0, elapsed, floor_us = (gint64)len * 10 * 1000000 / 921600;
	HealerLinkHello hello;
	SimTransfer t;

	sim_device_wait_hello(dev, &hello, 10000);
	t0 = g_get_monotonic_time();
	sim_device_transfer(dev, module, G_MAXUINT32, NULL, &t);
	elapsed = g_get_monotonic_time() - t0;
	g_assert_true(t.finished);
	g_assert_cmpint(t.result, ==, 0);
	g_test_message("%zu bytes in %" G_GINT64_FORMAT " us; the payload alone needs %" G_GINT64_FORMAT " us", len,
	               elapsed, floor_us);
	g_assert_cmpint(elapsed, >=, floor_us);
}

static void
test_heal_in_order(gconstpointer data)
{
	const char *args[] = {"--release", "1.0.0", "--app", "travel-in-time", data, NULL};
	g_autoptr(SimDevice) dev = new_device(data != NULL ? "heal-no-engines" : "heal", args);
	g_autoptr(GBytes) too_early = module_file("2.0.0/system-part2.bin");
	g_autoptr(HealerDescribe) final = NULL;
	g_autofree char *before_json = NULL;
	g_autoptr(HealerDescribe) before = NULL;
	HealerLinkHello hello;
	SimTransfer t;

	sim_device_wait_hello(dev, &hello, 10000);
	before = sim_device_describe(dev, &before_json);

	/* 2.0.0's part 2 needs part 1 >= 2002: refused, and nothing changes. */
	g_ptr_array_set_size(dev->logs, 0);
	sim_device_transfer(dev, too_early, G_MAXUINT32, NULL, &t);
	g_assert_true(t.finished);
	g_assert_cmpint(t.result, ==, MODULE_UPDATE_ERROR_DEPENDENCY);
	assert_logged(dev, "update refused (-1340): its first dependency, system part 1 >= 2002, is not installed "
	                   "(it has v1000)");
	/* No reset, back in safe mode: the same describe. */
	assert_not_reset(dev, &hello, before_json);

	/*
	 * 2.0.0's part 1 needs part 2 >= 1203 and its part 2 needs part 1 >=
	 * 2002: no order of 2.0.0 modules alone works from 1.0.0.  Through
	 * the 1.2.0 stepping stone it does.
	 */
	flash_ok(dev, "1.2.0/system-part1.bin");
	flash_ok(dev, "2.0.0/bootloader.bin");
	flash_ok(dev, "1.2.0/system-part2.bin");
	flash_ok(dev, "2.0.0/system-part1.bin");
	flash_ok(dev, "2.0.0/system-part2.bin");

	final = sim_device_describe(dev, NULL);
	assert_all_valid(final);
	g_assert_cmpuint(installed_version(final, MODULE_FUNCTION_BOOTLOADER, 0), ==, 201);
	g_assert_cmpuint(installed_version(final, MODULE_FUNCTION_SYSTEM_PART, 1), ==, 2002);
	g_assert_cmpuint(installed_version(final, MODULE_FUNCTION_SYSTEM_PART, 2), ==, 2002);
	g_assert_true(healer_describe_module_valid(healer_describe_find(final, MODULE_FUNCTION_USER_PART, 1)));
	g_assert_true(sim_device_wait_log(dev, "travel-in-time: running on system 2.0.0, arrived in 1985", 5000));
}

/* A module around a 2 KiB system image (image info first), as the firmware build would stamp it. */
static GBytes *
module_from_spec(const HealerModuleSpec *spec)
{
	guint8 payload[2048] = {0};
	g_autoptr(GBytes) image = NULL;
	g_autoptr(GError) error = NULL;
	firmware_image_info_t info = {.magic = FIRMWARE_IMAGE_MAGIC, .kind = FIRMWARE_IMAGE_SYSTEM};
	GBytes *module;

	memcpy(payload, &info, sizeof info);
	image = g_bytes_new(payload, sizeof payload);
	module = healer_module_write(spec, image, &error);
	g_assert_no_error(error);
	return module;
}

static GBytes *
make_module(guint16 platform, guint8 function, guint8 index, guint32 start, guint16 version)
{
	HealerModuleSpec spec = {.start_address = start,
	                         .platform_id = platform,
	                         .function = function,
	                         .index = index,
	                         .version = version};

	return module_from_spec(&spec);
}

/*
 * Sends `module` (with `begin` as its BEGIN when not NULL).  text NULL: the
 * device refuses it at BEGIN with `code`.  Otherwise it takes every byte and
 * refuses it at FINISH with `code`, saying why in the LOG it sends before
 * UPDATE_RESULT ("update refused (code): text").
 */
static void
expect_refused(SimDevice *dev, GBytes *module, GBytes *begin, gint32 code, const char *text)
{
	g_autofree char *line = NULL;
	SimTransfer t;

	g_ptr_array_set_size(dev->logs, 0);
	sim_device_transfer(dev, module, G_MAXUINT32, begin, &t);
	if (text == NULL) {
		g_assert_cmpint(t.ready_status, ==, code);
		return;
	}
	g_assert_cmpint(t.ready_status, ==, 0);
	g_assert_true(t.finished);
	g_assert_cmpint(t.result, ==, code);
	line = g_strdup_printf("update refused (%d): %s", code, text);
	assert_logged(dev, line);
}

static void
test_update_errors(void)
{
	const char *args[] = {"--release", "1.0.0", "--app", "tinker", NULL};
	g_autoptr(SimDevice) dev = new_device("errors", args);
	g_autoptr(GBytes) foreign = make_module(6, MODULE_FUNCTION_SYSTEM_PART, 1, 0x08020000, 5000);
	g_autoptr(GBytes) misplaced = make_module(3, MODULE_FUNCTION_SYSTEM_PART, 1, 0x08030000, 5000);
	g_autoptr(GBytes) good = module_file("1.1.0/system-part1.bin");
	g_autoptr(GBytes) other = module_file("1.1.0/system-part2.bin");
	g_autoptr(GBytes) lie = NULL, mislabelled = NULL, bad_slot = NULL;
	g_autofree char *before = NULL;
	g_autoptr(HealerDescribe) d1 = NULL;
	HealerLinkHello hello;
	guint8 sha[32] = {0};

	sim_device_wait_hello(dev, &hello, 10000);
	d1 = sim_device_describe(dev, &before);
	expect_refused(dev, foreign, NULL, MODULE_UPDATE_ERROR_PLATFORM, "built for platform 6, this board is 3");
	expect_refused(dev, misplaced, NULL, MODULE_UPDATE_ERROR_ADDRESS, "not linked at its slot's start address");
	/* BEGIN names a SHA-256 the bytes do not have. */
	lie = healer_link_build_begin((guint32)g_bytes_get_size(good), sha, MODULE_FUNCTION_SYSTEM_PART, 1, 1100, 1024);
	expect_refused(dev, good, lie, MODULE_UPDATE_ERROR_INTEGRITY,
	               "length, CRC-32 or SHA-256 wrong, or not the SHA-256 BEGIN named");
	/* BEGIN says system part 1, the bytes are system part 2. */
	healer_sha256(g_bytes_get_data(other, NULL), g_bytes_get_size(other), sha);
	mislabelled = healer_link_build_begin((guint32)g_bytes_get_size(other), sha, MODULE_FUNCTION_SYSTEM_PART, 1,
	                                      1100, 1024);
	expect_refused(dev, other, mislabelled, MODULE_UPDATE_ERROR_FORMAT,
	               "its prefix names another module than BEGIN did");
	/* No slot for a radio stack on this board: refused at BEGIN. */
	bad_slot = healer_link_build_begin(4096, sha, MODULE_FUNCTION_RADIO_STACK, 0, 1, 1024);
	expect_refused(dev, good, bad_slot, MODULE_UPDATE_ERROR_ADDRESS, NULL);

	assert_not_reset(dev, &hello, before);
	assert_nothing_staged(dev, before);
}

/*
 * A system module passes three dependency checks at FINISH (update.c): its
 * first dependency is installed, its second is, and it breaks no installed
 * module that depends on its slot.  Each module here fails exactly one of
 * them (the others pass), so removing any one check lets its module through
 * and fails this test.  The device refuses with -1340 and names the check,
 * does not reset, and installs nothing, even at the next reset.
 */
static void
test_dependency_checks(void)
{
	const char *args[] = {"--release", "1.0.0", "--app", "tinker", NULL};
	g_autoptr(SimDevice) dev = new_device("dependency-checks", args);
	g_autoptr(HealerDescribe) d = NULL;
	g_autofree char *before = NULL;
	const HealerDescribeModule *s2;
	HealerLinkHello hello;
	/* 1.0.0: bootloader 100, system part 1 1000 (s2 >= 1000), part 2 1000 (s1 >= 1000, b >= 100). */
	const struct {
		const char *what;
		guint8 function;
		guint32 start;
		guint16 version;
		guint8 dep_function[2];
		guint8 dep_index[2];
		guint16 dep_version[2];
		const char *why;
	} cases[] = {
	        {"first dependency unmet",
	         MODULE_FUNCTION_SYSTEM_PART,
	         0x08020000,
	         5000,
	         {MODULE_FUNCTION_SYSTEM_PART, MODULE_FUNCTION_BOOTLOADER},
	         {2, 0},
	         {5000, 100},
	         "its first dependency, system part 2 >= 5000, is not installed (it has v1000)"},
	        {"second dependency unmet",
	         MODULE_FUNCTION_SYSTEM_PART,
	         0x08020000,
	         5000,
	         {MODULE_FUNCTION_SYSTEM_PART, MODULE_FUNCTION_BOOTLOADER},
	         {2, 0},
	         {1000, 500},
	         "its second dependency, bootloader 0 >= 500, is not installed (it has v100)"},
	        /* A dependency on a slot this board does not have is never met. */
	        {"first dependency has no slot",
	         MODULE_FUNCTION_SYSTEM_PART,
	         0x08020000,
	         5000,
	         {MODULE_FUNCTION_RADIO_STACK, MODULE_FUNCTION_BOOTLOADER},
	         {0, 0},
	         {1, 100},
	         "its first dependency, module function 8 index 0 >= 1, is not installed"},
	        /* Its own dependencies met; part 2 needs part 1 >= 1000 (its first dependency). */
	        {"breaks part 2's first dependency",
	         MODULE_FUNCTION_SYSTEM_PART,
	         0x08020000,
	         900,
	         {MODULE_FUNCTION_SYSTEM_PART, MODULE_FUNCTION_BOOTLOADER},
	         {2, 0},
	         {1000, 100},
	         "v900 would break the installed system part 2 v1000, which needs system part 1 >= 1000"},
	        /* No dependencies of its own; part 2 needs a bootloader >= 100 (its second). */
	        {"breaks part 2's second dependency",
	         MODULE_FUNCTION_BOOTLOADER,
	         0x08000000,
	         50,
	         {0, 0},
	         {0, 0},
	         {0, 0},
	         "v50 would break the installed system part 2 v1000, which needs bootloader 0 >= 100"},
	};

	sim_device_wait_hello(dev, &hello, 10000);
	d = sim_device_describe(dev, &before);
	/* The premise: part 2 depends on part 1 >= 1000 first and on the bootloader >= 100 second. */
	s2 = healer_describe_find(d, MODULE_FUNCTION_SYSTEM_PART, 2);
	g_assert_nonnull(s2);
	g_assert_cmpuint(s2->dependencies->len, ==, 2);
	g_assert_cmpuint(g_array_index(s2->dependencies, HealerDescribeDependency, 0).function, ==,
	                 MODULE_FUNCTION_SYSTEM_PART);
	g_assert_cmpuint(g_array_index(s2->dependencies, HealerDescribeDependency, 0).version, ==, 1000);
	g_assert_cmpuint(g_array_index(s2->dependencies, HealerDescribeDependency, 1).function, ==,
	                 MODULE_FUNCTION_BOOTLOADER);
	g_assert_cmpuint(g_array_index(s2->dependencies, HealerDescribeDependency, 1).version, ==, 100);

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		HealerModuleSpec spec = {.start_address = cases[i].start,
		                         .platform_id = 3,
		                         .function = cases[i].function,
		                         .index = cases[i].function == MODULE_FUNCTION_SYSTEM_PART ? 1 : 0,
		                         .version = cases[i].version};
		g_autoptr(GBytes) module = NULL;

		for (guint k = 0; k < 2; k++) {
			if (cases[i].dep_function[k] == MODULE_FUNCTION_NONE)
				continue;
			spec.dependencies[spec.n_dependencies].function = cases[i].dep_function[k];
			spec.dependencies[spec.n_dependencies].index = cases[i].dep_index[k];
			spec.dependencies[spec.n_dependencies].version = cases[i].dep_version[k];
			spec.n_dependencies++;
		}
		module = module_from_spec(&spec);
		g_test_message("%s", cases[i].what);
		expect_refused(dev, module, NULL, MODULE_UPDATE_ERROR_DEPENDENCY, cases[i].why);
		assert_not_reset(dev, &hello, before);
	}
	assert_nothing_staged(dev, before);

	/*
	 * And the checks refuse no more than that: a part 1 at each boundary
	 * (its dependencies exactly the installed versions, its version exactly
	 * what part 2 needs) is taken, and the bootloader installs it.
	 */
	{
		HealerModuleSpec spec = {.start_address = 0x08020000,
		                         .platform_id = 3,
		                         .function = MODULE_FUNCTION_SYSTEM_PART,
		                         .index = 1,
		                         .version = 1000,
		                         .n_dependencies = 2,
		                         .dependencies = {{MODULE_FUNCTION_SYSTEM_PART, 2, 1000, 0},
		                                          {MODULE_FUNCTION_BOOTLOADER, 0, 100, 0}}};
		g_autoptr(GBytes) boundary = module_from_spec(&spec);
		SimTransfer t;

		g_ptr_array_set_size(dev->logs, 0);
		sim_device_transfer(dev, boundary, G_MAXUINT32, NULL, &t);
		g_assert_true(t.finished);
		g_assert_cmpint(t.result, ==, 0);
		sim_device_wait_hello(dev, &hello, 10000);
		g_assert_cmpuint(hello.reset_reason, ==, LINK_RESET_UPDATE);
		sim_device_sync(dev);
		assert_logged(dev, "bootloader: installed the staged module");
	}
}

/*
 * What the dependency checks let through, on purpose: an application's
 * dependencies are not checked at FINISH, and an installed application does
 * not hold back a system part (the device then boots into safe mode, which
 * is how devices come to need healing).  Each module here would be refused
 * if either exemption were lost.
 */
static void
test_dependency_exemptions(void)
{
	const char *args[] = {"--release", "1.1.0", "--app", "heartbeat", NULL};
	g_autoptr(SimDevice) dev = new_device("dependency-exemptions", args);
	g_autoptr(HealerDescribe) d = NULL;
	const HealerDescribeModule *user;
	HealerLinkHello hello;

	sim_device_wait_hello(dev, &hello, 10000);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_NORMAL);

	/* 1.0.0's part 2 (v1000) under heartbeat, which needs part 2 >= 1100. */
	flash_ok(dev, "1.0.0/system-part2.bin");
	g_assert_true(sim_device_wait_log(dev, "bootloader: installed the staged module", 5000));
	g_ptr_array_set_size(dev->logs, 0);
	sim_device_request_hello(dev, &hello);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	g_assert_cmpuint(hello.safe_mode_reason, ==, LINK_SAFE_MODE_DEPENDENCIES);

	/* travel-in-time needs part 2 >= 2002: taken all the same. */
	flash_ok(dev, "apps/travel-in-time.bin");
	g_assert_true(sim_device_wait_log(dev, "bootloader: installed the staged module", 5000));
	sim_device_request_hello(dev, &hello);
	g_assert_cmpuint(hello.mode, ==, LINK_MODE_SAFE);
	g_assert_cmpuint(hello.safe_mode_reason, ==, LINK_SAFE_MODE_DEPENDENCIES);
	d = sim_device_describe(dev, NULL);
	g_assert_cmpuint(installed_version(d, MODULE_FUNCTION_SYSTEM_PART, 2), ==, 1000);
	user = healer_describe_find(d, MODULE_FUNCTION_USER_PART, 1);
	g_assert_nonnull(user);
	g_assert_cmpuint(user->version, ==, 1);
	g_assert_true(healer_describe_module_dependency_failed(user));
}

/* Cut the link, reset the device: the transfer picks up where the device's flash says. */
static void
test_resume(void)
{
	const char *args[] = {"--release", "1.0.0", "--app", "tinker", NULL};
	g_autoptr(SimDevice) dev = new_device("resume", args);
	g_autoptr(GBytes) module = module_file("1.1.0/system-part1.bin");
	g_autoptr(GRand) rand = g_rand_new_with_seed(20261125);
	guint32 size = (guint32)g_bytes_get_size(module);
	HealerLinkHello hello;
	SimTransfer t;
	guint64 total_sent = 0;

	sim_device_wait_hello(dev, &hello, 10000);
	for (int round = 0; round < 4; round++) {
		guint32 cut = g_rand_int_range(rand, 1, (gint32)size - 1);
		sim_device_transfer(dev, module, cut, NULL, &t);
		g_assert_cmpint(t.ready_status, ==, 0);
		total_sent += t.bytes_sent;
		/* The device holds what it acknowledged, to the 1 KiB block it made durable. */
		if (round > 0)
			g_assert_cmpuint(t.held, >, 0);
		g_test_message("round %d: held %u, cut at %u of %u after %u acknowledged", round, t.held, cut, size,
		               t.acked);
		if (round % 2 == 0) {
			sim_device_reconnect(dev);
		} else {
			sim_device_kill(dev);
			sim_device_restart(dev);
			sim_device_wait_hello(dev, &hello, 10000);
			g_assert_cmpuint(hello.reset_reason, ==, LINK_RESET_POWER_ON);
		}
	}
	sim_device_transfer(dev, module, G_MAXUINT32, NULL, &t);
	g_assert_cmpuint(t.held, >, 0);
	g_assert_cmpuint(t.held % 1024, ==, 0);
	/* Only the rest was sent, not the whole module again. */
	g_assert_cmpuint(t.bytes_sent, ==, size - t.held);
	g_assert_true(t.finished);
	g_assert_cmpint(t.result, ==, 0);
	total_sent += t.bytes_sent;
	g_test_message("%" G_GUINT64_FORMAT " bytes sent in all for a %u-byte module", total_sent, size);
	sim_device_wait_hello(dev, &hello, 10000);
	{
		g_autoptr(HealerDescribe) d = sim_device_describe(dev, NULL);
		g_assert_cmpuint(installed_version(d, MODULE_FUNCTION_SYSTEM_PART, 1), ==, 1100);
		assert_all_valid(d);
	}
}

/*
 * kill -9 at random points of a transfer and of the commit that follows
 * FINISH: every time, the device comes back with a valid module set (the
 * old part or the new one, never a broken one).
 */
static void
test_power_loss(void)
{
	/* Flash that takes time to write: 256 us per KiB, an erase of a 128 KiB sector 32 ms. */
	const char *args[] = {"--release", "1.0.0", "--app", "tinker", "--flash-us-per-kib", "256", NULL};
	g_autoptr(SimDevice) dev = new_device("power", args);
	g_autoptr(GRand) rand = g_rand_new_with_seed(1985);
	const char *trials_env = g_getenv("HEALER_POWER_LOSS_TRIALS");
	guint trials = trials_env ? (guint)atoi(trials_env) : 10;
	const char *modules[] = {"1.1.0/system-part1.bin", "1.1.0/bootloader.bin", "1.2.0/system-part1.bin"};
	HealerLinkHello hello;
	guint committed = 0, after_finish = 0, redone = 0;

	sim_device_wait_hello(dev, &hello, 10000);
	for (guint trial = 0; trial < trials; trial++) {
		g_autoptr(GBytes) module = module_file(modules[trial % G_N_ELEMENTS(modules)]);
		g_autoptr(HealerDescribe) d = NULL;
		guint32 size = (guint32)g_bytes_get_size(module);
		SimTransfer t;

		if (trial % 2 == 0) {
			/* During the transfer. */
			sim_device_transfer(dev, module, g_rand_int_range(rand, 1, (gint32)size), NULL, &t);
			g_usleep(g_rand_int_range(rand, 0, 3000));
		} else {
			/* After FINISH: the device resets and its bootloader copies the module. */
			sim_device_transfer(dev, module, G_MAXUINT32, NULL, &t);
			g_assert_true(t.finished);
			g_assert_cmpint(t.result, ==, 0);
			g_usleep(g_rand_int_range(rand, 0, 120000));
			after_finish++;
		}
		sim_device_kill(dev);
		g_ptr_array_set_size(dev->logs, 0);
		sim_device_restart(dev);
		sim_device_wait_hello(dev, &hello, 10000);
		g_assert_cmpuint(hello.mode, !=, LINK_MODE_DFU);
		/*
		 * The power came back with a commit pending: the bootloader did it
		 * (again) now, and says so before it answers the PING.
		 */
		sim_device_sync(dev);
		if (trial % 2 == 1 && sim_device_wait_log(dev, "bootloader: installed the staged module", 0))
			redone++;
		g_ptr_array_set_size(dev->logs, 0);
		d = sim_device_describe(dev, NULL);
		assert_all_valid(d);
		if (installed_version(d, MODULE_FUNCTION_SYSTEM_PART, 1) != 1000 ||
		    installed_version(d, MODULE_FUNCTION_BOOTLOADER, 0) != 100)
			committed++;
	}
	g_test_message("%u power cuts (%u after FINISH, %u of them with the commit pending or half done): "
	               "always a valid module set",
	               trials, after_finish, redone);
	g_assert_cmpuint(committed, >, 0);
}

int
main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	tmpdir = test_tmpdir_new();
	g_test_add_func("/firmware/modules-inspect", test_modules_inspect);
	g_test_add_func("/firmware/safe-mode-describe", test_safe_mode_describe);
	g_test_add_func("/firmware/other-safe-modes", test_other_safe_modes);
	g_test_add_data_func("/firmware/heal-in-order", NULL, test_heal_in_order);
	g_test_add_data_func("/firmware/heal-in-order/no-engines", "--no-engines", test_heal_in_order);
	g_test_add_func("/firmware/line-rate", test_line_rate);
	g_test_add_func("/firmware/update-errors", test_update_errors);
	g_test_add_func("/firmware/dependency-checks", test_dependency_checks);
	g_test_add_func("/firmware/dependency-exemptions", test_dependency_exemptions);
	g_test_add_func("/firmware/resume", test_resume);
	g_test_add_func("/firmware/power-loss", test_power_loss);
	rc = g_test_run();
	test_tmpdir_free(tmpdir);
	return rc;
}
