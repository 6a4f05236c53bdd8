/*
 * What `healerctl device ID` prints of a device's ttys and its family's details
 * (agent/cli/device-details.c), from fixed GetDevices objects: a Particle device in dependency safe
 * mode, a DFU device, a serial device, and objects whose text is too long or hostile.  Every line
 * must fit 80 columns.
 */
#include <string.h>

#include "device-details.h"
#include "json-autoptr.h"
#include "test-util.h"

/* A Photon in dependency safe mode, as healerd's GetDevices gives it (the Particle family's details). */
static const char particle_device[] =
        "{\"id\":\"0a1b2c3d4e5f60718293a4b5\",\"port\":\"usb:1-1.1\",\"transport\":\"usb\",\"platform_id\":6,"
        "\"platform\":\"photon\",\"mode\":\"safe\",\"state\":\"safe-mode\",\"safe_mode_reason\":\"dependencies\","
        "\"modules\":[],\"ttys\":[\"ttyACM0\"],"
        "\"details\":{\"usb_id\":\"2b04:c006\",\"serial\":\"0A1B2C3D4E5F60718293A4B5\",\"platform\":\"photon\","
        "\"device_os\":\"1.5.2\",\"mode\":\"safe\",\"safe_mode_reason\":\"dependencies\","
        "\"install_route\":\"control\",\"module_info_format\":\"old\",\"modules\":["
        "{\"function\":\"bootloader\",\"index\":0,\"version\":1200,\"size\":41984,\"max_size\":49152,"
        "\"checked\":[\"integrity\",\"dependencies\"],\"passed\":[\"integrity\",\"dependencies\"],"
        "\"failed\":[],\"failure\":null},"
        "{\"function\":\"system-part\",\"index\":1,\"version\":1502,\"size\":262144,\"max_size\":262144,"
        "\"checked\":[\"integrity\",\"dependencies\"],\"passed\":[\"integrity\",\"dependencies\"],"
        "\"failed\":[],\"failure\":null},"
        "{\"function\":\"system-part\",\"index\":2,\"version\":2202,\"size\":262144,\"max_size\":262144,"
        "\"checked\":[\"integrity\",\"dependencies\"],\"passed\":[\"integrity\"],\"failed\":[\"dependencies\"],"
        "\"failure\":\"dependency check failed: needs system-part 1 version >= 2202 (has 1502)\"},"
        "{\"function\":\"user-part\",\"index\":1,\"version\":6,\"size\":131072,\"max_size\":131072,"
        "\"checked\":[\"integrity\",\"dependencies\",\"range\",\"platform\"],"
        "\"passed\":[\"integrity\",\"range\",\"platform\"],\"failed\":[\"dependencies\"],"
        "\"failure\":\"dependency check failed: needs system-part 1 version >= 2202 (has 1502), needs "
        "system-part 2 version >= 2202 (has 2202); integrity check failed (its CRC does not match: the module "
        "is corrupt)\"}]}}";

static json_object *
parse(const char *text)
{
	json_object *o = json_tokener_parse(text);

	g_assert_nonnull(o);
	return o;
}

static void
assert_contains(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		g_error("'%s' not found in:\n%s", needle, text);
}

static void
assert_lacks(const char *text, const char *needle)
{
	if (strstr(text, needle) != NULL)
		g_error("'%s' found in:\n%s", needle, text);
}

/* Every line fits 80 columns, none has a control character, and the text ends with a newline. */
static void
assert_fits(const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

	g_assert_true(g_utf8_validate(text, -1, NULL));
	g_assert_true(*text == '\0' || g_str_has_suffix(text, "\n"));
	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_utf8_strlen(lines[i], -1) > HEALERCTL_DEVICE_DETAILS_COLUMNS)
			g_error("line %u is %ld columns wide:\n%s\nin:\n%s", i, g_utf8_strlen(lines[i], -1), lines[i],
			        text);
		for (const char *p = lines[i]; *p != '\0'; p++)
			g_assert_cmpint((guchar)*p, >=, 0x20);
	}
}

static void
test_particle(void)
{
	g_autoptr(json_object) device = parse(particle_device);
	gboolean table = FALSE;
	g_autofree char *text = healerctl_device_details_format(device, &table);

	g_test_message("%s", text);
	assert_fits(text);
	g_assert_true(table);
	assert_contains(text, "TTYs:         ttyACM0\n");
	assert_contains(text, "Device OS:    1.5.2\n");
	assert_contains(text, "USB:          2b04:c006, serial number 0A1B2C3D4E5F60718293A4B5\n");
	assert_contains(text, "Install:      control (over control requests, no mode switch)\n");
	assert_contains(text, "Module info:  old (one validity field)\n");
	assert_contains(text, "Modules:\n"
	                      "  MODULE         VERSION  SIZE    CHECKS\n"
	                      "  bootloader 0   1200     41984   passed integrity, dependencies\n"
	                      "  system-part 1  1502     262144  passed integrity, dependencies\n"
	                      "  system-part 2  2202     262144  FAILED dependencies; passed integrity\n"
	                      "      dependency check failed: needs system-part 1 version >= 2202 (has 1502)\n");
	/* A long cell wraps under its column, a long failure under itself. */
	assert_contains(text, "  user-part 1    6        131072  FAILED dependencies; passed integrity, range,\n"
	                      "                                  platform\n"
	                      "      dependency check failed: needs system-part 1 version >= 2202 (has 1502),\n"
	                      "      needs system-part 2 version >= 2202 (has 2202); integrity check failed\n"
	                      "      (its CRC does not match: the module is corrupt)\n");
}

static void
test_dfu(void)
{
	g_autoptr(json_object) device =
	        parse("{\"id\":\"x\",\"ttys\":[],\"details\":{\"usb_id\":\"2b04:d006\",\"mode\":\"dfu\","
	              "\"platform\":\"photon\",\"platform_id\":6,\"serial\":\"ABC\",\"transfer_size\":4096,"
	              "\"attributes\":\"can-download|can-upload|will-detach\",\"alternate_settings\":[]}}");
	gboolean table = TRUE;
	g_autofree char *text = healerctl_device_details_format(device, &table);

	assert_fits(text);
	g_assert_false(table);
	g_assert_cmpstr(text, ==,
	                "USB:          2b04:d006, serial number ABC\n"
	                "DFU:          wTransferSize 4096, can-download|can-upload|will-detach\n");
}

/* A serial device: no ttys, details null (GetDevices' object for a family without any). */
static void
test_none(void)
{
	g_autoptr(json_object) device = parse("{\"id\":\"x\",\"ttys\":[],\"details\":null}");
	g_autoptr(json_object) bare = parse("{\"id\":\"x\"}");
	gboolean table = TRUE;
	g_autofree char *text = healerctl_device_details_format(device, &table);
	g_autofree char *text2 = healerctl_device_details_format(bare, NULL);

	g_assert_cmpstr(text, ==, "");
	g_assert_false(table);
	g_assert_cmpstr(text2, ==, "");
}

/* A Particle device not read yet: what is known, no table; an empty module list is said so. */
static void
test_particle_unread(void)
{
	g_autoptr(json_object) unread = parse("{\"details\":{\"install_route\":\"dfu\",\"device_os\":null,"
	                                      "\"module_info_format\":null}}");
	g_autoptr(json_object) empty = parse("{\"details\":{\"install_route\":\"control\",\"modules\":[]}}");
	gboolean table = TRUE;
	g_autofree char *text = healerctl_device_details_format(unread, &table);
	g_autofree char *text2 = NULL;

	assert_fits(text);
	g_assert_false(table);
	assert_contains(text, "Device OS:    unknown (the device did not say)\n");
	assert_contains(text, "Install:      dfu (the device switches to DFU mode for each module)\n");
	assert_contains(text, "Module info:  not read yet\n");
	text2 = healerctl_device_details_format(empty, &table);
	g_assert_true(table);
	assert_contains(text2, "Modules:      none listed\n");
}

/* What a device or a confused healerd could send: control characters, words and names too long, wrong types. */
static void
test_hostile(void)
{
	g_autoptr(GString) json = g_string_new("{\"ttys\":[\"tty\\u001b[2J\",7],\"details\":{\"install_route\":"
	                                       "\"control\",\"device_os\":\"2.\\r2\",\"usb_id\":5,\"modules\":[");
	g_autoptr(json_object) device = NULL;
	g_autofree char *text = NULL;
	g_auto(GStrv) parts = NULL;
	gboolean table = FALSE;

	g_string_append(json, "{\"function\":\"a-function-name-far-too-long-for-any-table\",\"index\":4294967295,"
	                      "\"version\":-1,\"size\":9223372036854775807,\"passed\":[\"x\\u0007\"],\"failed\":[3],"
	                      "\"failure\":\"");
	for (guint i = 0; i < 300; i++)
		g_string_append_c(json, (char)('a' + i % 26));
	g_string_append(json, " then \\u00e9\\u00e9 words\\n and a newline\"},");
	g_string_append(json, "{\"function\":7,\"version\":\"v\",\"failure\":\"\"}, 3]}}");
	device = parse(json->str);
	text = healerctl_device_details_format(device, &table);
	g_test_message("%s", text);
	assert_fits(text);
	g_assert_true(table);
	assert_lacks(text, "\x1b");
	assert_contains(text, "TTYs:         tty\\x1b[2J\n");
	assert_contains(text, "Device OS:    2.\\r2\n");
	/* The name is cut, the checks go under the row when the row leaves them no room. */
	assert_contains(text, "  a-function-name- 4294967295  -1       9223372036854775807\n"
	                      "      passed x\\x07\n");
	assert_contains(text, "\n      abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv\n"
	                      "      wxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqr\n");
	assert_contains(text, "then éé words\\n and a newline\n");
	/* Keys of the wrong type show as "?"; an entry that is no object is no row. */
	assert_contains(text, "\n  ?                            ?        ?\n      none checked\n");
	parts = g_strsplit(text, "none checked", -1);
	g_assert_cmpuint(g_strv_length(parts), ==, 2);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/device-details/particle", test_particle);
	g_test_add_func("/device-details/particle-unread", test_particle_unread);
	g_test_add_func("/device-details/dfu", test_dfu);
	g_test_add_func("/device-details/none", test_none);
	g_test_add_func("/device-details/hostile", test_hostile);
	return g_test_run();
}
