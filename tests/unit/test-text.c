#include "healer-text.h"
#include <string.h>

typedef struct {
	const char *in;
	gssize len;
	const char *out;
} Case;

static void
test_escape(void)
{
	static const Case cases[] = {
	        {"plain text, ünïcødé", -1, "plain text, ünïcødé"},
	        /* a forged journal line */
	        {"ok\nhealerd[info]: heal succeeded", -1, "ok\\nhealerd[info]: heal succeeded"},
	        {"a\rb\tc", -1, "a\\rb\\tc"},
	        /* a window title (OSC) and a clear screen (CSI) */
	        {"\x1b]0;owned\x07\x1b[2J", -1, "\\x1b]0;owned\\x07\\x1b[2J"},
	        {"del\x7f", -1, "del\\x7f"},
	        /* C1 CSI as UTF-8 (U+009B) and a raw C1 byte (not UTF-8) */
	        {"\xc2\x9b"
	         "2J",
	         -1, "\\xc2\\x9b2J"},
	        {"\x9b"
	         "2J",
	         -1, "\\x9b2J"},
	        /* truncated and overlong sequences */
	        {"\xe2\x82", -1, "\\xe2\\x82"},
	        {"\xc0\xaf", -1, "\\xc0\\xaf"},
	        /* the escape character itself, so the output reads back unambiguously */
	        {"C:\\x41", -1, "C:\\\\x41"},
	        /* an embedded NUL with an explicit length */
	        {"a\0b", 3, "a\\x00b"},
	        {"", -1, ""},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *got = healer_text_escape(cases[i].in, cases[i].len);
		gboolean same = g_strcmp0(cases[i].in, cases[i].out) == 0 && cases[i].len < 0;
		g_assert_cmpstr(got, ==, cases[i].out);
		g_assert_true(g_utf8_validate(got, -1, NULL));
		g_assert_cmpint(healer_text_is_safe(cases[i].in, cases[i].len), ==, same);
	}
	{
		g_autofree char *none = healer_text_escape(NULL, -1);
		g_assert_cmpstr(none, ==, "");
	}
}

/* Whatever the bytes, the result is UTF-8 with no control character. */
static void
test_every_byte(void)
{
	char all[256];

	for (guint i = 0; i < 256; i++)
		all[i] = (char)i;
	for (gsize start = 0; start < sizeof all; start++) {
		g_autofree char *got = healer_text_escape(all + start, (gssize)(sizeof all - start));
		g_assert_true(g_utf8_validate(got, -1, NULL));
		g_assert_true(healer_text_is_safe(got, -1) || strchr(got, '\\') != NULL);
		for (const char *p = got; *p != '\0'; p = g_utf8_next_char(p)) {
			gunichar c = g_utf8_get_char(p);
			g_assert_false(c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f));
		}
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/text/escape", test_escape);
	g_test_add_func("/text/every-byte", test_every_byte);
	return g_test_run();
}
