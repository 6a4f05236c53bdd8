#include "healer-text.h"

#include <string.h>

/* The bytes of one character at `p` (at most `left`), or 0 when it is not valid UTF-8 there. */
static gsize
utf8_char_len(const char *p, gsize left)
{
	const char *end = NULL;
	gunichar c;
	gsize n;

	if ((guchar)*p < 0x80)
		return 1;
	n = (gsize)g_utf8_skip[(guchar)*p];
	if (n > left || !g_utf8_validate(p, (gssize)n, &end))
		return 0;
	c = g_utf8_get_char(p);
	return c == (gunichar)-1 || c == (gunichar)-2 ? 0 : n;
}

static gboolean
is_control(const char *p, gsize n)
{
	gunichar c;

	if (n == 1)
		return (guchar)*p < 0x20 || (guchar)*p == 0x7f;
	c = g_utf8_get_char(p);
	return c >= 0x80 && c <= 0x9f;
}

gboolean
healer_text_is_safe(const char *text, gssize len)
{
	gsize size, i = 0;

	if (text == NULL)
		return TRUE;
	size = len < 0 ? strlen(text) : (gsize)len;
	while (i < size) {
		gsize n = utf8_char_len(text + i, size - i);
		if (n == 0 || text[i] == '\\' || is_control(text + i, n))
			return FALSE;
		i += n;
	}
	return TRUE;
}

char *
healer_text_escape(const char *text, gssize len)
{
	GString *out;
	gsize size, i = 0;

	if (text == NULL)
		return g_strdup("");
	size = len < 0 ? strlen(text) : (gsize)len;
	out = g_string_sized_new(size + 1);
	while (i < size) {
		gsize n = utf8_char_len(text + i, size - i);
		guchar b = (guchar)text[i];

		if (n == 0) {
			g_string_append_printf(out, "\\x%02x", b);
			i++;
			continue;
		}
		if (b == '\\') {
			g_string_append(out, "\\\\");
		} else if (b == '\n') {
			g_string_append(out, "\\n");
		} else if (b == '\r') {
			g_string_append(out, "\\r");
		} else if (b == '\t') {
			g_string_append(out, "\\t");
		} else if (is_control(text + i, n)) {
			for (gsize k = 0; k < n; k++)
				g_string_append_printf(out, "\\x%02x", (guchar)text[i + k]);
		} else {
			g_string_append_len(out, text + i, (gssize)n);
		}
		i += n;
	}
	return g_string_free(out, FALSE);
}
