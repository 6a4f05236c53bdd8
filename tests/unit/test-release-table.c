#include <string.h>

#include "healer-error.h"
#include "healer/module-format.h"
#include "release-table.h"

static void
test_shipped_table(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table =
	        healer_release_table_new_from_file(g_getenv("HEALER_RELEASE_TABLE"), &error);
	g_autofree char *boot = NULL, *sys = NULL;
	guint16 v = 0;

	g_assert_no_error(error);
	g_assert_cmpuint(healer_release_table_get_n_releases(table), >=, 5);
	/* Sorted by semver precedence: the prerelease comes before its release. */
	for (guint i = 1; i < healer_release_table_get_n_releases(table); i++)
		g_assert_cmpstr(healer_release_table_get_name(table, i - 1), !=,
		                healer_release_table_get_name(table, i));
	g_assert_true(healer_release_table_lookup(table, "1.0.0", MODULE_FUNCTION_SYSTEM_PART, &v));
	sys = healer_release_table_label(table, MODULE_FUNCTION_SYSTEM_PART, v);
	g_assert_cmpstr(sys, ==, "1.0.0");
	g_assert_true(healer_release_table_lookup(table, "1.1.0", MODULE_FUNCTION_BOOTLOADER, &v));
	boot = healer_release_table_label(table, MODULE_FUNCTION_BOOTLOADER, v);
	g_assert_cmpstr(boot, ==, "1.0.0..1.1.0");
	g_assert_false(healer_release_table_lookup(table, "9.9.9", MODULE_FUNCTION_SYSTEM_PART, &v));
	g_assert_null(healer_release_table_label(table, MODULE_FUNCTION_SYSTEM_PART, 1));
}

/* The shipped Device OS table loads and names real release numbers (not a formula: 2.0.0 is 2008). */
static void
test_device_os_table(void)
{
	g_autofree char *path =
	        g_build_filename(g_getenv("HEALER_SOURCE_DIR"), "data", "particle-device-os-releases.json", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = healer_release_table_new_from_file(path, &error);
	g_autofree char *v2008 = NULL, *boot = NULL;

	g_assert_no_error(error);
	v2008 = healer_release_table_label(table, MODULE_FUNCTION_SYSTEM_PART, 2008);
	g_assert_cmpstr(v2008, ==, "2.0.0");
	boot = healer_release_table_label(table, MODULE_FUNCTION_BOOTLOADER, 1006);
	g_assert_cmpstr(boot, ==, "2.2.0..2.3.1");
}

static void
expect_error(const char *json, const char *message)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = healer_release_table_new_from_data(json, strlen(json), &error);

	g_assert_null(table);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	if (strstr(error->message, message) == NULL)
		g_error("expected '%s' in '%s'", message, error->message);
}

#define HEAD "{\"format\":\"healer-release-table\",\"format_version\":1,\"releases\":"

static void
test_bad_tables(void)
{
	expect_error("{\"format\":", "not valid JSON at byte");
	expect_error("[]", "top level: expected an object");
	expect_error("{\"format\":\"x\"}", "format: expected");
	expect_error("{\"format\":\"healer-release-table\",\"format_version\":2}", "format_version: expected 1");
	expect_error(HEAD "{}}", "releases: expected an array");
	expect_error(HEAD "[{\"name\":\"1.0\",\"modules\":{}}]}",
	             "releases[0].name: \"1.0\" is not a semantic version");
	expect_error(HEAD "[{\"name\":\"1.0.0\",\"modules\":{\"system\":5}}]}", "unknown module function \"system\"");
	expect_error(HEAD "[{\"name\":\"1.0.0\",\"modules\":{\"system-part\":70000}}]}", "outside 0..65535");
	expect_error(HEAD "[{\"name\":\"1.0.0\",\"modules\":{\"system-part\":\"5\"}}]}", "expected an integer");
	expect_error(HEAD "[{\"name\":\"1.0.0\",\"modules\":{},\"extra\":1}]}", "unknown key \"extra\"");
	/* Module versions must rise with the releases, or ">=" would lie. */
	expect_error(
	        HEAD "[{\"name\":\"2.0.0\",\"modules\":{\"system-part\":100}},"
	             "{\"name\":\"2.0.0-rc.1\",\"modules\":{\"system-part\":101}}]}",
	        "system-part version 100 of release 2.0.0 does not rise above 101 of the earlier release 2.0.0-rc.1");
	expect_error(HEAD "[{\"name\":\"1.0.0\",\"modules\":{\"system-part\":100}},"
	                  "{\"name\":\"1.1.0\",\"modules\":{\"system-part\":100}}]}",
	             "does not rise above");
	expect_error(HEAD "[]} trailing", "trailing data");
}

static void
test_missing_file(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = healer_release_table_new_from_file("/nonexistent/releases.json", &error);

	g_assert_null(table);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/release-table/shipped", test_shipped_table);
	g_test_add_func("/release-table/device-os", test_device_os_table);
	g_test_add_func("/release-table/bad", test_bad_tables);
	g_test_add_func("/release-table/missing-file", test_missing_file);
	return g_test_run();
}
