#include "healer-error.h"

G_DEFINE_QUARK(healer - error - quark, healer_error)

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
	switch (code) {
	case HEALER_ERROR_INVALID_ARGUMENT:
		return "io.healerd.Error.InvalidArgument";
	case HEALER_ERROR_INVALID_DATA:
		return "io.healerd.Error.InvalidData";
	case HEALER_ERROR_NOT_FOUND:
		return "io.healerd.Error.NotFound";
	case HEALER_ERROR_BUSY:
		return "io.healerd.Error.Busy";
	case HEALER_ERROR_PERMISSION_DENIED:
		return "io.healerd.Error.PermissionDenied";
	case HEALER_ERROR_NO_PLAN:
		return "io.healerd.Error.NoPlan";
	case HEALER_ERROR_IO:
		return "io.healerd.Error.Io";
	case HEALER_ERROR_FAILED:
		break;
	}
	return "io.healerd.Error.Failed";
}
