/*
 * Text that came from outside (a device's LOG and ERROR frames, its describe, a D-Bus caller's file
 * name) made safe to log and to print in a terminal.
 *
 * A device can put anything in those bytes: a newline forges a second journal line, ESC and the C1
 * controls (CSI, OSC) retitle or clear a technician's terminal, and invalid UTF-8 breaks the JSON
 * and D-Bus strings it ends up in.  Every such byte is written visibly instead, so what a
 * technician sees is what the device sent, and nothing more.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A copy of `len` bytes of `text` (`len` -1: up to its NUL) that is valid UTF-8 with no control
 * character: \n, \r and \t become the two characters "\n", "\r", "\t"; a backslash becomes "\\";
 * other C0 controls, DEL, the C1 controls (U+0080..U+009F) and bytes that are not UTF-8 become
 * "\xNN" (each byte of the sequence); every other character is kept.  NULL gives "".
 */
char *healer_text_escape(const char *text, gssize len);

/* Whether healer_text_escape() would return `text` unchanged (no copy needed). */
gboolean healer_text_is_safe(const char *text, gssize len);

G_END_DECLS
