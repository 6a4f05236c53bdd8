/*
 * healerd's one error domain.  Every failure that crosses a module boundary
 * is a GError in HEALER_ERROR; the D-Bus face maps each code to an
 * io.healerd.Error.* name and healerctl maps it to an exit code, so a fault
 * reads the same everywhere.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_ERROR (healer_error_quark())
GQuark healer_error_quark(void);

typedef enum {
	HEALER_ERROR_FAILED,           /* generic failure */
	HEALER_ERROR_INVALID_ARGUMENT, /* the caller asked for something malformed */
	HEALER_ERROR_INVALID_DATA,     /* input (a module, a table, a frame) is malformed */
	HEALER_ERROR_NOT_FOUND,        /* a file, device or module does not exist */
	HEALER_ERROR_BUSY,             /* the target is doing something else */
	HEALER_ERROR_PERMISSION_DENIED,
	HEALER_ERROR_NO_PLAN, /* no sequence of modules reaches the goal */
	HEALER_ERROR_IO,      /* reading or writing failed */
} HealerError;

/* healerctl's documented exit codes. */
enum {
	HEALER_EXIT_OK = 0,
	HEALER_EXIT_FAILED = 1,
	HEALER_EXIT_USAGE = 2,
	HEALER_EXIT_NOT_FOUND = 3,
	HEALER_EXIT_PERMISSION = 4,
	HEALER_EXIT_NO_DAEMON = 5, /* healerd is not running */
	HEALER_EXIT_BUSY = 6,
};

int healer_error_to_exit_code(const GError *error);
const char *healer_error_to_dbus_name(HealerError code);

/*
 * Registers the io.healerd.Error.* names with GDBus, so errors cross the bus
 * as HEALER_ERROR codes in both directions.  Called by healer_error_quark().
 */
void healer_error_register_dbus_names(void);

/*
 * Sets `error` (which may be NULL) to `code` with a printf-style message and returns FALSE, so a
 * check reads `return healer_fail(error, HEALER_ERROR_INVALID_DATA, "x: expected ...", ...);`.
 */
G_GNUC_PRINTF(3, 4)
gboolean healer_fail(GError **error, HealerError code, const char *format, ...);

G_END_DECLS
