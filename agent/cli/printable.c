#include "printable.h"

#include "healer-text.h"

char *
healerctl_printable(const char *text)
{
	if (text == NULL)
		return g_strdup("");
	if (g_utf8_validate(text, -1, NULL)) {
		const char *p = text;
		for (; *p != '\0'; p = g_utf8_next_char(p)) {
			gunichar c = g_utf8_get_char(p);
			if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
				break;
		}
		if (*p == '\0')
			return g_strdup(text);
	}
	return healer_text_escape(text, -1);
}
