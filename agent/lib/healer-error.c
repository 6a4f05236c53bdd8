#include "healer-error.h"

#include <gio/gio.h>

/* The names errors carry on the bus; GDBus maps them back to HEALER_ERROR codes in clients. */
static const GDBusErrorEntry dbus_errors[] = {
        {HEALER_ERROR_FAILED, "io.healerd.Error.Failed"},
        {HEALER_ERROR_INVALID_ARGUMENT, "io.healerd.Error.InvalidArgument"},
        {HEALER_ERROR_INVALID_DATA, "io.healerd.Error.InvalidData"},
        {HEALER_ERROR_NOT_FOUND, "io.healerd.Error.NotFound"},
        {HEALER_ERROR_BUSY, "io.healerd.Error.Busy"},
        {HEALER_ERROR_PERMISSION_DENIED, "io.healerd.Error.PermissionDenied"},
        {HEALER_ERROR_NO_PLAN, "io.healerd.Error.NoPlan"},
        {HEALER_ERROR_IO, "io.healerd.Error.Io"},
};

GQuark
healer_error_quark(void)
{
	static gsize quark = 0;

	g_dbus_error_register_error_domain("healer-error-quark", &quark, dbus_errors, G_N_ELEMENTS(dbus_errors));
	return (GQuark)quark;
}

void
healer_error_register_dbus_names(void)
{
	(void)healer_error_quark();
}

int
healer_error_to_exit_code(const GError *error)
{
	if (error == NULL)
		return HEALER_EXIT_OK;
	if (error->domain != HEALER_ERROR)
		return HEALER_EXIT_FAILED;
	switch ((HealerError)error->code) {
	case HEALER_ERROR_INVALID_ARGUMENT:
		return HEALER_EXIT_USAGE;
	case HEALER_ERROR_NOT_FOUND:
	case HEALER_ERROR_NO_PLAN:
		return HEALER_EXIT_NOT_FOUND;
	case HEALER_ERROR_PERMISSION_DENIED:
		return HEALER_EXIT_PERMISSION;
	case HEALER_ERROR_BUSY:
		return HEALER_EXIT_BUSY;
	case HEALER_ERROR_FAILED:
	case HEALER_ERROR_INVALID_DATA:
	case HEALER_ERROR_IO:
		break;
	}
	return HEALER_EXIT_FAILED;
}

const char *
healer_error_to_dbus_name(HealerError code)
{
	for (gsize i = 0; i < G_N_ELEMENTS(dbus_errors); i++) {
		if (dbus_errors[i].error_code == (gint)code)
			return dbus_errors[i].dbus_error_name;
	}
	return "io.healerd.Error.Failed";
}

gboolean
healer_fail(GError **error, HealerError code, const char *format, ...)
{
	va_list args;
	g_autofree char *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error_literal(error, HEALER_ERROR, code, message);
	return FALSE;
}
