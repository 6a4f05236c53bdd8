/*
 * The link protocol between a device and the gateway: every byte on the
 * wire, shared by the device firmware and the agent.  docs/link-protocol.md
 * explains it; this header is the definition.
 *
 * Framing: a frame is
 *
 *     type (u8) | flags (u8) | body (0..LINK_MAX_BODY bytes) | CRC-32 (u32 LE)
 *
 * COBS-encoded, so the encoded frame contains no zero byte, and followed by
 * one 0x00 delimiter.  A receiver that sees garbage, a cut or a bad CRC
 * drops bytes up to the next 0x00 and carries on: it resynchronises on the
 * next frame.  The CRC is CRC-32/IEEE over type, flags and body.
 *
 * All multi-byte fields are little-endian.  Freestanding C11, no heap.
 */
#ifndef HEALER_LINK_PROTOCOL_H
#define HEALER_LINK_PROTOCOL_H

#include <stdint.h>

#define LINK_PROTOCOL_VERSION 1u

#define LINK_FRAME_DELIMITER   0x00u
#define LINK_FRAME_HEADER_SIZE 2u /* type, flags */
#define LINK_FRAME_CRC_SIZE    4u
/* The largest body any frame may carry; DATA bodies are negotiated lower. */
#define LINK_MAX_BODY  2048u
#define LINK_MAX_FRAME (LINK_FRAME_HEADER_SIZE + LINK_MAX_BODY + LINK_FRAME_CRC_SIZE)
/* COBS adds one byte per 254, plus one; then the delimiter. */
#define LINK_MAX_ENCODED (LINK_MAX_FRAME + LINK_MAX_FRAME / 254u + 2u)

/* ---- frame types ------------------------------------------------------ */

enum link_frame_type {
	/* device -> host */
	LINK_HELLO = 0x01,          /* struct link_hello, at every boot and in reply to HELLO_REQUEST */
	LINK_DESCRIBE_REPLY = 0x02, /* describe JSON text (not NUL-terminated) */
	LINK_STATUS = 0x03,         /* struct link_status: mode or LED changed */
	LINK_LOG = 0x04,            /* u8 level, then text */
	LINK_UPDATE_READY = 0x05,   /* struct link_update_ready: answer to BEGIN */
	LINK_ACK = 0x06,            /* struct link_ack: cumulative, next byte offset expected */
	LINK_UPDATE_RESULT = 0x07,  /* struct link_update_result: answer to FINISH */
	LINK_PONG = 0x08,           /* u32 nonce, echoed */
	LINK_ERROR = 0x09,          /* struct link_error: a request that could not be served */

	/* host -> device */
	LINK_DESCRIBE = 0x41,      /* empty */
	LINK_BEGIN = 0x42,         /* struct link_begin */
	LINK_DATA = 0x43,          /* u32 offset, then bytes */
	LINK_FINISH = 0x44,        /* empty: verify and stage the module, then reset */
	LINK_RESET = 0x45,         /* empty */
	LINK_PING = 0x46,          /* u32 nonce */
	LINK_CANCEL = 0x47,        /* empty: drop the transfer in progress */
	LINK_HELLO_REQUEST = 0x48, /* empty: send HELLO again */
};

/* ---- device state reported in HELLO and STATUS ---------------------- */

enum link_mode {
	LINK_MODE_NORMAL = 0,   /* the application runs */
	LINK_MODE_SAFE = 1,     /* system runs, application held back */
	LINK_MODE_UPDATING = 2, /* receiving a module */
	LINK_MODE_LISTENING = 3,
	LINK_MODE_DFU = 4, /* no valid system: only the bootloader's updater */
};

enum link_safe_mode_reason {
	LINK_SAFE_MODE_NONE = 0,
	LINK_SAFE_MODE_DEPENDENCIES = 1, /* the application needs modules the device lacks */
	LINK_SAFE_MODE_REQUESTED = 2,    /* asked for (button, host); nothing to heal */
	LINK_SAFE_MODE_NO_APPLICATION = 3,
	LINK_SAFE_MODE_APPLICATION_INVALID = 4, /* integrity, range or platform */
};

enum link_led {
	LINK_LED_OFF = 0,
	LINK_LED_BREATHING_CYAN = 1,    /* normal operation */
	LINK_LED_BREATHING_MAGENTA = 2, /* safe mode */
	LINK_LED_BLINKING_MAGENTA = 3,  /* receiving an update */
	LINK_LED_BLINKING_BLUE = 4,     /* listening */
	LINK_LED_BLINKING_YELLOW = 5,   /* DFU / bootloader updater */
	LINK_LED_RED_SOS = 6,           /* panic */
	LINK_LED_BREATHING_GREEN = 7,
};

enum link_reset_reason {
	LINK_RESET_UNKNOWN = 0,
	LINK_RESET_POWER_ON = 1,
	LINK_RESET_PIN = 2,
	LINK_RESET_UPDATE = 3,    /* after a module was staged */
	LINK_RESET_REQUESTED = 4, /* RESET frame */
	LINK_RESET_WATCHDOG = 5,
	LINK_RESET_PANIC = 6,
};

enum link_log_level {
	LINK_LOG_ERROR = 0,
	LINK_LOG_WARNING = 1,
	LINK_LOG_INFO = 2,
	LINK_LOG_DEBUG = 3,
};

/* ---- bodies ------------------------------------------------------------ */

#define LINK_DEVICE_ID_SIZE 12u

struct __attribute__((packed)) link_hello {
	uint8_t protocol_version;
	uint8_t mode;             /* enum link_mode */
	uint8_t safe_mode_reason; /* enum link_safe_mode_reason */
	uint8_t reset_reason;     /* enum link_reset_reason */
	uint8_t led;              /* enum link_led */
	uint8_t window;           /* DATA frames the device accepts in flight */
	uint16_t platform_id;
	uint16_t max_data; /* largest DATA payload (after the offset) it accepts */
	uint8_t device_id[LINK_DEVICE_ID_SIZE];
};
_Static_assert(sizeof(struct link_hello) == 22, "hello");

struct __attribute__((packed)) link_status {
	uint8_t mode;
	uint8_t safe_mode_reason;
	uint8_t led;
	uint8_t reserved;
};

struct __attribute__((packed)) link_begin {
	uint32_t size;
	uint8_t sha256[32]; /* of the whole module file */
	uint8_t function;
	uint8_t index;
	uint16_t version;
	uint16_t max_data; /* the host's wish; the device answers what it will take */
};
_Static_assert(sizeof(struct link_begin) == 42, "begin");

struct __attribute__((packed)) link_update_ready {
	int32_t status;  /* 0, or an update error (module-format.h) */
	uint32_t offset; /* bytes the device already holds of this module: send from here */
	uint16_t max_data;
	uint8_t window;
	uint8_t reserved;
};

struct __attribute__((packed)) link_ack {
	uint32_t next_offset;
};

struct __attribute__((packed)) link_update_result {
	int32_t status; /* 0: staged, the device resets to commit it; else an update error */
};

struct __attribute__((packed)) link_error {
	int32_t code;
	uint8_t request_type;
	/* followed by a text */
};

#define LINK_DATA_HEADER_SIZE 4u /* u32 offset */

/* Errors in link_error.code (besides the module update errors). */
enum link_error_code {
	LINK_ERROR_UNKNOWN_REQUEST = -100,
	LINK_ERROR_BAD_REQUEST = -101,  /* malformed body */
	LINK_ERROR_NO_TRANSFER = -102,  /* DATA/FINISH without BEGIN */
	LINK_ERROR_OUT_OF_ORDER = -103, /* not reported: answered with an ACK of the expected offset */
	LINK_ERROR_INCOMPLETE = -104,   /* FINISH before every byte arrived */
	LINK_ERROR_TOO_LARGE = -105,    /* the module does not fit the staging area */
};

#endif /* HEALER_LINK_PROTOCOL_H */
