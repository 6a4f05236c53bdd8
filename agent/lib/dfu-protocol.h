/*
 * USB DFU 1.1 and ST's DfuSe extension, the parts that are bytes and names: the class requests,
 * the states and status codes a device reports, the 6-byte GETSTATUS reply, and the DfuSe
 * commands a host sends as the payload of DNLOAD block 0.  No USB here: the libusb backend sends
 * what these build and hands back what the device answered, and the DFU family decides.
 *
 * Numbers from the DFU 1.1 specification (USB-IF) and ST's UM0424/AN3156; docs/usb.md, "DFU and
 * DfuSe in libhealer", says what is accepted and what is refused.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* bmRequestType of every DFU class request: class, recipient interface (wIndex = interface). */
#define HEALER_DFU_REQUEST_TYPE_OUT 0x21
#define HEALER_DFU_REQUEST_TYPE_IN  0xA1

typedef enum {
	HEALER_DFU_REQUEST_DETACH = 0,    /* OUT, wValue = timeout in ms, no data */
	HEALER_DFU_REQUEST_DNLOAD = 1,    /* OUT, wValue = block number, data = the block */
	HEALER_DFU_REQUEST_UPLOAD = 2,    /* IN, wValue = block number */
	HEALER_DFU_REQUEST_GETSTATUS = 3, /* IN, 6 bytes: healer_dfu_status_parse() */
	HEALER_DFU_REQUEST_CLRSTATUS = 4, /* OUT, no data: leaves dfuERROR */
	HEALER_DFU_REQUEST_GETSTATE = 5,  /* IN, 1 byte: healer_dfu_state_parse() */
	HEALER_DFU_REQUEST_ABORT = 6,     /* OUT, no data: back to dfuIDLE */
} HealerDfuRequest;

/* "DNLOAD", ...; NULL for a number that is not a DFU request. */
const char *healer_dfu_request_to_string(guint request);

typedef enum {
	HEALER_DFU_STATE_APP_IDLE = 0,
	HEALER_DFU_STATE_APP_DETACH = 1,
	HEALER_DFU_STATE_DFU_IDLE = 2,
	HEALER_DFU_STATE_DNLOAD_SYNC = 3,
	HEALER_DFU_STATE_DNBUSY = 4,
	HEALER_DFU_STATE_DNLOAD_IDLE = 5,
	HEALER_DFU_STATE_MANIFEST_SYNC = 6,
	HEALER_DFU_STATE_MANIFEST = 7,
	HEALER_DFU_STATE_MANIFEST_WAIT_RESET = 8,
	HEALER_DFU_STATE_UPLOAD_IDLE = 9,
	HEALER_DFU_STATE_ERROR = 10,
	HEALER_DFU_STATE_LAST = HEALER_DFU_STATE_ERROR,
} HealerDfuState;

/* The specification's names: "appIDLE" ... "dfuIDLE", "dfuDNLOAD-SYNC" ... "dfuERROR"; NULL past dfuERROR. */
const char *healer_dfu_state_to_string(guint state);

typedef enum {
	HEALER_DFU_STATUS_OK = 0x00,
	HEALER_DFU_STATUS_ERR_TARGET = 0x01,
	HEALER_DFU_STATUS_ERR_FILE = 0x02,
	HEALER_DFU_STATUS_ERR_WRITE = 0x03,
	HEALER_DFU_STATUS_ERR_ERASE = 0x04,
	HEALER_DFU_STATUS_ERR_CHECK_ERASED = 0x05,
	HEALER_DFU_STATUS_ERR_PROG = 0x06,
	HEALER_DFU_STATUS_ERR_VERIFY = 0x07,
	HEALER_DFU_STATUS_ERR_ADDRESS = 0x08,
	HEALER_DFU_STATUS_ERR_NOTDONE = 0x09,
	HEALER_DFU_STATUS_ERR_FIRMWARE = 0x0A,
	HEALER_DFU_STATUS_ERR_VENDOR = 0x0B,
	HEALER_DFU_STATUS_ERR_USBR = 0x0C,
	HEALER_DFU_STATUS_ERR_POR = 0x0D,
	HEALER_DFU_STATUS_ERR_UNKNOWN = 0x0E,
	HEALER_DFU_STATUS_ERR_STALLEDPKT = 0x0F,
	HEALER_DFU_STATUS_LAST = HEALER_DFU_STATUS_ERR_STALLEDPKT,
} HealerDfuStatusCode;

/* "OK", "errTARGET" ... "errSTALLEDPKT"; NULL past errSTALLEDPKT. */
const char *healer_dfu_status_to_string(guint status);
/* What the code means, in a few words ("memory erase function failed"); NULL past errSTALLEDPKT. */
const char *healer_dfu_status_describe(guint status);

#define HEALER_DFU_STATUS_SIZE 6

/* The GETSTATUS reply. */
typedef struct {
	HealerDfuStatusCode status;
	guint32 poll_timeout_ms; /* bwPollTimeout: wait this long before the next GETSTATUS (24 bits) */
	HealerDfuState state;
	guint8 string_index; /* iString: a string descriptor describing a vendor error, 0 if none */
} HealerDfuStatus;

/*
 * Parses a GETSTATUS reply: exactly HEALER_DFU_STATUS_SIZE bytes, a status up to errSTALLEDPKT
 * and a state up to dfuERROR.  Anything else is HEALER_ERROR_INVALID_DATA naming the byte and
 * the value; `out` is written only on success.  A well-formed reply reporting an error is not a
 * parse error: see healer_dfu_status_check().
 */
gboolean healer_dfu_status_parse(const guint8 *data, gsize len, HealerDfuStatus *out, GError **error);

/*
 * FALSE with HEALER_ERROR_FAILED when the device reports a failure: a status other than OK, or
 * the state dfuERROR ("device reports errERASE (memory erase function failed) in state dfuERROR").
 */
gboolean healer_dfu_status_check(const HealerDfuStatus *status, GError **error);

/* Parses a GETSTATE reply: exactly one byte, a state up to dfuERROR. */
gboolean healer_dfu_state_parse(const guint8 *data, gsize len, HealerDfuState *out, GError **error);

/* ---- DfuSe ------------------------------------------------------------------------------------ */

/*
 * DfuSe commands.  All but GET_COMMANDS are the payload of DNLOAD with wValue = 0 (block 0),
 * answered by polling GETSTATUS; GET_COMMANDS is read with UPLOAD of block 0.  Data blocks use
 * wValue >= 2 and land at address pointer + (wValue - 2) * wTransferSize.
 */
typedef enum {
	HEALER_DFUSE_GET_COMMANDS = 0x00,
	HEALER_DFUSE_SET_ADDRESS_POINTER = 0x21,
	HEALER_DFUSE_ERASE = 0x41,
	HEALER_DFUSE_READ_UNPROTECT = 0x92,
	/* Particle's bootloaders: set the safe-mode request, manifest and reset (particle-usb's dfu.js). */
	HEALER_DFUSE_PARTICLE_ENTER_SAFE_MODE = 0xFA,
} HealerDfuseCommand;

/* "SET_ADDRESS_POINTER", ...; NULL for a code not listed above. */
const char *healer_dfuse_command_to_string(guint command);

/* The block number of the first data block, the one the address pointer points at. */
#define HEALER_DFUSE_FIRST_DATA_BLOCK 2
/* The longest command payload: a command byte and a 32-bit little-endian address. */
#define HEALER_DFUSE_COMMAND_MAX_SIZE 5

/*
 * Builders of the block-0 payload.  Each writes into `out` and returns the number of bytes to
 * send.  There is no mass-erase builder (0x41 alone): a healer erases the sectors it writes, and
 * Particle's bootloaders refuse the one-byte form.
 */
gsize healer_dfuse_build_set_address(guint32 address, guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE]);
gsize healer_dfuse_build_erase_sector(guint32 address, guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE]);
gsize healer_dfuse_build_read_unprotect(guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE]);
gsize healer_dfuse_build_particle_enter_safe_mode(guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE]);

#define HEALER_DFUSE_MAX_COMMANDS 32

/* What a GET_COMMANDS reply lists, each code once, in the order the device gave them. */
typedef struct {
	guint8 codes[HEALER_DFUSE_MAX_COMMANDS];
	guint n_codes;
} HealerDfuseCommands;

/*
 * Parses the reply to UPLOAD block 0: the GET_COMMANDS byte (0x00) and then the codes the
 * device supports.  Refused: an empty reply, a first byte other than 0x00, more than
 * HEALER_DFUSE_MAX_COMMANDS codes.  A code listed twice is kept once.
 */
gboolean healer_dfuse_commands_parse(const guint8 *data, gsize len, HealerDfuseCommands *out, GError **error);
gboolean healer_dfuse_commands_supports(const HealerDfuseCommands *commands, guint8 code);

G_END_DECLS
