/*
 * What healerctl prints that came from healerd (and so may hold what a device sent: an error's
 * text) must not reach a terminal as control characters: escape sequences retitle or clear it, a
 * carriage return overwrites a line.
 */
#pragma once

#include <glib.h>

/*
 * A copy of `text` (NULL: "") as it may be printed: unchanged when it is valid UTF-8 with no control
 * character (C0, DEL, C1), else escaped with healer_text_escape().  A backslash alone is left as it
 * is: healerd's own escaping (device text, docs/security.md) shows as written, not doubled.
 */
char *healerctl_printable(const char *text);
