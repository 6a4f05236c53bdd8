#include "semver.h"

static void
test_valid(void)
{
	const char *good[] = {"0.0.0",         "1.2.3",         "2.0.0-rc.1", "1.0.0-alpha.beta.1",
	                      "1.0.0+build.5", "1.0.0-x-y+z.1", "5.9.0",      "3.0.1-p2.1"};
	const char *bad[] = {"",       "1",          "1.2",    "1.2.3.4",     "01.2.3", "1.2.3-",  "1.2.3-01",
	                     "1.2.3+", "1.2.3-a..b", "v1.2.3", "1.2.3-rc.1 ", "1.-2.3", "1.2.3_rc"};

	for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
		if (!healer_semver_valid(good[i]))
			g_error("'%s' should be valid", good[i]);
	}
	for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
		if (healer_semver_valid(bad[i]))
			g_error("'%s' should be invalid", bad[i]);
	}
}

static void
test_order(void)
{
	/* The precedence example of the semver specification, in order. */
	const char *order[] = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
	                       "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
	                       "1.2.0",        "1.10.0",        "2.0.0-rc.1",       "2.0.0"};

	for (gsize i = 0; i < G_N_ELEMENTS(order); i++) {
		for (gsize j = 0; j < G_N_ELEMENTS(order); j++) {
			int c = healer_semver_compare(order[i], order[j]);
			int want = i < j ? -1 : i > j ? 1 : 0;
			if ((c < 0 ? -1 : c > 0 ? 1 : 0) != want)
				g_error("compare(%s, %s) = %d, want %d", order[i], order[j], c, want);
		}
	}
	g_assert_cmpint(healer_semver_compare("1.0.0+a", "1.0.0+b"), ==, 0);
	g_assert_true(healer_semver_is_prerelease("2.0.0-rc.1"));
	g_assert_false(healer_semver_is_prerelease("2.0.0+build-1"));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/semver/valid", test_valid);
	g_test_add_func("/semver/order", test_order);
	return g_test_run();
}
