/*
 * HEALER_ERROR inside a loadable module.  Quarks are per process and by
 * name, so this is the very domain healer-error.c defines in the program
 * that loaded the module; but healer-error.c also registers the domain's
 * D-Bus error names, and GLib refuses (with a warning) a second
 * registration, so the modules must not link it.
 */
#include "healer-error.h"

GQuark
healer_error_quark(void)
{
	return g_quark_from_static_string("healer-error-quark");
}
