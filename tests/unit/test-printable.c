/* agent/cli/printable.c: what healerctl prints of healerd's text reaches no terminal as control characters. */
#include "printable.h"
#include "test-util.h"

static void
check(const char *in, const char *want)
{
	g_autofree char *out = healerctl_printable(in);

	g_assert_cmpstr(out, ==, want);
}

static void
test_printable(void)
{
	/* Plain text, UTF-8 and healerd's own escaping (a backslash) are shown as they are. */
	check("step 2 of 5: system-part 1 v1100", "step 2 of 5: system-part 1 v1100");
	check("Grüße ✓", "Grüße ✓");
	check("device error -1320 answering BEGIN: \\x1b]0;pwned", "device error -1320 answering BEGIN: \\x1b]0;pwned");
	check(NULL, "");
	/* A control character anywhere, C1 included, and the whole is escaped (backslashes too, then). */
	check("boom\nhealerd[info]: forged", "boom\\nhealerd[info]: forged");
	check("\033]0;pwned\a\033[2J", "\\x1b]0;pwned\\x07\\x1b[2J");
	check("\xc2\x9b"
	      "31m",
	      "\\xc2\\x9b31m");
	check("a\\b\r", "a\\\\b\\r");
	check("bad \xff utf-8", "bad \\xff utf-8");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/printable/healerctl", test_printable);
	return g_test_run();
}
