#include "dfu-protocol.h"

#include "healer-error.h"
#include "name-table.h"

static const char *const request_names[] = {
        [HEALER_DFU_REQUEST_DETACH] = "DETACH",       [HEALER_DFU_REQUEST_DNLOAD] = "DNLOAD",
        [HEALER_DFU_REQUEST_UPLOAD] = "UPLOAD",       [HEALER_DFU_REQUEST_GETSTATUS] = "GETSTATUS",
        [HEALER_DFU_REQUEST_CLRSTATUS] = "CLRSTATUS", [HEALER_DFU_REQUEST_GETSTATE] = "GETSTATE",
        [HEALER_DFU_REQUEST_ABORT] = "ABORT",
};

static const char *const state_names[] = {
        [HEALER_DFU_STATE_APP_IDLE] = "appIDLE",
        [HEALER_DFU_STATE_APP_DETACH] = "appDETACH",
        [HEALER_DFU_STATE_DFU_IDLE] = "dfuIDLE",
        [HEALER_DFU_STATE_DNLOAD_SYNC] = "dfuDNLOAD-SYNC",
        [HEALER_DFU_STATE_DNBUSY] = "dfuDNBUSY",
        [HEALER_DFU_STATE_DNLOAD_IDLE] = "dfuDNLOAD-IDLE",
        [HEALER_DFU_STATE_MANIFEST_SYNC] = "dfuMANIFEST-SYNC",
        [HEALER_DFU_STATE_MANIFEST] = "dfuMANIFEST",
        [HEALER_DFU_STATE_MANIFEST_WAIT_RESET] = "dfuMANIFEST-WAIT-RESET",
        [HEALER_DFU_STATE_UPLOAD_IDLE] = "dfuUPLOAD-IDLE",
        [HEALER_DFU_STATE_ERROR] = "dfuERROR",
};

static const struct {
	const char *name;
	const char *meaning;
} statuses[] = {
        [HEALER_DFU_STATUS_OK] = {"OK", "no error"},
        [HEALER_DFU_STATUS_ERR_TARGET] = {"errTARGET", "the image is not meant for this device"},
        [HEALER_DFU_STATUS_ERR_FILE] = {"errFILE", "the image fails a vendor-specific check"},
        [HEALER_DFU_STATUS_ERR_WRITE] = {"errWRITE", "the device cannot write memory"},
        [HEALER_DFU_STATUS_ERR_ERASE] = {"errERASE", "memory erase failed"},
        [HEALER_DFU_STATUS_ERR_CHECK_ERASED] = {"errCHECK_ERASED", "memory erase check failed"},
        [HEALER_DFU_STATUS_ERR_PROG] = {"errPROG", "programming memory failed"},
        [HEALER_DFU_STATUS_ERR_VERIFY] = {"errVERIFY", "programmed memory failed verification"},
        [HEALER_DFU_STATUS_ERR_ADDRESS] = {"errADDRESS", "address out of range"},
        [HEALER_DFU_STATUS_ERR_NOTDONE] = {"errNOTDONE", "download ended before all the data arrived"},
        [HEALER_DFU_STATUS_ERR_FIRMWARE] = {"errFIRMWARE", "firmware corrupt, the device cannot leave DFU mode"},
        [HEALER_DFU_STATUS_ERR_VENDOR] = {"errVENDOR", "vendor-specific error (see iString)"},
        [HEALER_DFU_STATUS_ERR_USBR] = {"errUSBR", "unexpected USB reset"},
        [HEALER_DFU_STATUS_ERR_POR] = {"errPOR", "unexpected power-on reset"},
        [HEALER_DFU_STATUS_ERR_UNKNOWN] = {"errUNKNOWN", "unknown error"},
        [HEALER_DFU_STATUS_ERR_STALLEDPKT] = {"errSTALLEDPKT", "the device stalled an unexpected request"},
};

const char *
healer_dfu_request_to_string(guint request)
{
	return NAME_OR_NULL(request_names, request);
}

const char *
healer_dfu_state_to_string(guint state)
{
	return NAME_OR_NULL(state_names, state);
}

const char *
healer_dfu_status_to_string(guint status)
{
	return status < G_N_ELEMENTS(statuses) ? statuses[status].name : NULL;
}

const char *
healer_dfu_status_describe(guint status)
{
	return status < G_N_ELEMENTS(statuses) ? statuses[status].meaning : NULL;
}

/* ---- replies ------------------------------------------------------------------------------------ */

static gboolean
state_valid(guint8 state, const char *what, GError **error)
{
	if (state > HEALER_DFU_STATE_LAST)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "%s: state %u is not a DFU state (appIDLE 0 .. dfuERROR 10)", what, state);
	return TRUE;
}

gboolean
healer_dfu_status_parse(const guint8 *data, gsize len, HealerDfuStatus *out, GError **error)
{
	if (len != HEALER_DFU_STATUS_SIZE)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "GETSTATUS reply: %" G_GSIZE_FORMAT " bytes, expected %u "
		                   "(bStatus, bwPollTimeout[3], bState, iString)",
		                   len, HEALER_DFU_STATUS_SIZE);
	if (data[0] > HEALER_DFU_STATUS_LAST)
		return healer_fail(
		        error, HEALER_ERROR_INVALID_DATA,
		        "GETSTATUS reply: byte 0 (bStatus) %u is not a DFU status (OK 0 .. errSTALLEDPKT 15)", data[0]);
	if (!state_valid(data[4], "GETSTATUS reply: byte 4 (bState)", error))
		return FALSE;
	out->status = data[0];
	out->poll_timeout_ms = (guint32)data[1] | (guint32)data[2] << 8 | (guint32)data[3] << 16;
	out->state = data[4];
	out->string_index = data[5];
	return TRUE;
}

gboolean
healer_dfu_status_check(const HealerDfuStatus *status, GError **error)
{
	if (status->status == HEALER_DFU_STATUS_OK && status->state != HEALER_DFU_STATE_ERROR)
		return TRUE;
	return healer_fail(error, HEALER_ERROR_FAILED, "device reports %s (%s) in state %s",
	                   healer_dfu_status_to_string(status->status), healer_dfu_status_describe(status->status),
	                   healer_dfu_state_to_string(status->state));
}

gboolean
healer_dfu_state_parse(const guint8 *data, gsize len, HealerDfuState *out, GError **error)
{
	if (len != 1)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "GETSTATE reply: %" G_GSIZE_FORMAT " bytes, expected 1", len);
	if (!state_valid(data[0], "GETSTATE reply", error))
		return FALSE;
	*out = data[0];
	return TRUE;
}

/* ---- DfuSe commands ----------------------------------------------------------------------------- */

const char *
healer_dfuse_command_to_string(guint command)
{
	switch (command) {
	case HEALER_DFUSE_GET_COMMANDS:
		return "GET_COMMANDS";
	case HEALER_DFUSE_SET_ADDRESS_POINTER:
		return "SET_ADDRESS_POINTER";
	case HEALER_DFUSE_ERASE:
		return "ERASE";
	case HEALER_DFUSE_READ_UNPROTECT:
		return "READ_UNPROTECT";
	case HEALER_DFUSE_PARTICLE_ENTER_SAFE_MODE:
		return "PARTICLE_ENTER_SAFE_MODE";
	default:
		return NULL;
	}
}

static gsize
build_with_address(guint8 command, guint32 address, guint8 *out)
{
	out[0] = command;
	for (int i = 0; i < 4; i++)
		out[1 + i] = (guint8)(address >> (8 * i));
	return HEALER_DFUSE_COMMAND_MAX_SIZE;
}

gsize
healer_dfuse_build_set_address(guint32 address, guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE])
{
	return build_with_address(HEALER_DFUSE_SET_ADDRESS_POINTER, address, out);
}

gsize
healer_dfuse_build_erase_sector(guint32 address, guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE])
{
	return build_with_address(HEALER_DFUSE_ERASE, address, out);
}

gsize
healer_dfuse_build_read_unprotect(guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE])
{
	out[0] = HEALER_DFUSE_READ_UNPROTECT;
	return 1;
}

gsize
healer_dfuse_build_particle_enter_safe_mode(guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE])
{
	out[0] = HEALER_DFUSE_PARTICLE_ENTER_SAFE_MODE;
	return 1;
}

gboolean
healer_dfuse_commands_supports(const HealerDfuseCommands *commands, guint8 code)
{
	for (guint i = 0; i < commands->n_codes; i++) {
		if (commands->codes[i] == code)
			return TRUE;
	}
	return FALSE;
}

gboolean
healer_dfuse_commands_parse(const guint8 *data, gsize len, HealerDfuseCommands *out, GError **error)
{
	HealerDfuseCommands commands = {.n_codes = 0};

	if (len == 0)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "GET_COMMANDS reply: empty, expected 0x00 and the supported command codes");
	if (data[0] != HEALER_DFUSE_GET_COMMANDS)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "GET_COMMANDS reply: byte 0 is 0x%02x, expected 0x00 (GET_COMMANDS)", data[0]);
	for (gsize i = 1; i < len; i++) {
		if (healer_dfuse_commands_supports(&commands, data[i]))
			continue;
		if (commands.n_codes == HEALER_DFUSE_MAX_COMMANDS)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "GET_COMMANDS reply: byte %" G_GSIZE_FORMAT
			                   " (0x%02x) is past the %u command "
			                   "codes a reply may list",
			                   i, data[i], HEALER_DFUSE_MAX_COMMANDS);
		commands.codes[commands.n_codes++] = data[i];
	}
	*out = commands;
	return TRUE;
}
