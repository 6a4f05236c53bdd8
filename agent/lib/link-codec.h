/*
 * The link protocol's message layer, over the shared frame codec
 * (device-firmware/common/link-frame.h): a builder per message that
 * returns the encoded frame (COBS, CRC, delimiter) as GBytes, a parser per
 * message that checks a decoded frame's body (exact length, enum ranges)
 * and fills a struct, and HealerLinkDecoder, which turns byte chunks as
 * they arrive into owned frames.
 *
 * Both directions are here: the agent builds host->device frames and
 * parses device->host ones; tests, the fuzzers and a device simulator do
 * the reverse.  Fields are read and written byte by byte, little-endian,
 * as link-protocol.h lays them out; no struct is overlaid on a buffer.
 * Every parser fails with HEALER_ERROR_INVALID_DATA and a message that
 * names the frame type and the fault.  docs/link-protocol.md describes the
 * protocol.
 */
#pragma once

#include <glib.h>

#include "healer/link-protocol.h"
#include "link-frame.h"

G_BEGIN_DECLS

/* The largest DATA payload a frame can carry: the body less the offset. */
#define HEALER_LINK_MAX_DATA_PAYLOAD (LINK_MAX_BODY - LINK_DATA_HEADER_SIZE)

/* ---- bodies ----------------------------------------------------------- */

typedef struct {
	guint8 protocol_version;
	guint8 mode;             /* enum link_mode */
	guint8 safe_mode_reason; /* enum link_safe_mode_reason */
	guint8 reset_reason;     /* enum link_reset_reason */
	guint8 led;              /* enum link_led */
	guint8 window;           /* >= 1 */
	guint16 platform_id;
	guint16 max_data; /* 1..HEALER_LINK_MAX_DATA_PAYLOAD */
	guint8 device_id[LINK_DEVICE_ID_SIZE];
} HealerLinkHello;

typedef struct {
	guint8 mode;
	guint8 safe_mode_reason;
	guint8 led;
} HealerLinkStatus;

typedef struct {
	guint8 level; /* enum link_log_level */
	char *text;   /* valid UTF-8, NUL-terminated (invalid bytes and NULs become U+FFFD) */
} HealerLinkLog;

typedef struct {
	char *json; /* the body as received, NUL-terminated copy */
	gsize len;  /* without the NUL */
} HealerLinkDescribeReply;

typedef struct {
	gint32 status; /* 0, an update error (enum module_update_error) or a link error (enum link_error_code) */
	guint32 offset;
	guint16 max_data; /* checked (1..HEALER_LINK_MAX_DATA_PAYLOAD) only when status is 0 */
	guint8 window;    /* checked (>= 1) only when status is 0 */
} HealerLinkUpdateReady;

typedef struct {
	gint32 code;         /* negative */
	guint8 request_type; /* the frame type that failed (any value: it may be unknown) */
	char *text;          /* as HealerLinkLog.text */
} HealerLinkErrorReply;

typedef struct {
	guint32 size; /* >= 1 */
	guint8 sha256[32];
	guint8 function; /* enum module_function, not NONE */
	guint8 index;
	guint16 version;
	guint16 max_data; /* 1..HEALER_LINK_MAX_DATA_PAYLOAD */
} HealerLinkBegin;

typedef struct {
	guint32 offset;
	const guint8 *data; /* points into the frame's body */
	gsize len;          /* >= 1; offset + len fits in 32 bits */
} HealerLinkData;

void healer_link_log_clear(HealerLinkLog *log);
void healer_link_describe_reply_clear(HealerLinkDescribeReply *reply);
void healer_link_error_reply_clear(HealerLinkErrorReply *reply);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HealerLinkLog, healer_link_log_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HealerLinkDescribeReply, healer_link_describe_reply_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HealerLinkErrorReply, healer_link_error_reply_clear)

/* ---- builders: each returns one encoded frame, delimiter included ------ */

/* Any frame; NULL with HEALER_ERROR_INVALID_ARGUMENT when body_len > LINK_MAX_BODY. */
GBytes *healer_link_build_frame(guint8 type, guint8 flags, const void *body, gsize body_len, GError **error);

/* host -> device */
GBytes *healer_link_build_describe(void);
GBytes *healer_link_build_begin(guint32 size, const guint8 sha256[32], guint8 function, guint8 index, guint16 version,
                                guint16 max_data);
/* NULL with HEALER_ERROR_INVALID_ARGUMENT when len > HEALER_LINK_MAX_DATA_PAYLOAD. */
GBytes *healer_link_build_data(guint32 offset, const guint8 *data, gsize len, GError **error);
GBytes *healer_link_build_finish(void);
GBytes *healer_link_build_reset(void);
GBytes *healer_link_build_ping(guint32 nonce);
GBytes *healer_link_build_cancel(void);
GBytes *healer_link_build_hello_request(void);

/* device -> host */
GBytes *healer_link_build_hello(const HealerLinkHello *hello);
/* The text functions fail like healer_link_build_data when the body would be too long. */
GBytes *healer_link_build_describe_reply(const char *json, gsize len, GError **error);
GBytes *healer_link_build_status(const HealerLinkStatus *status);
GBytes *healer_link_build_log(guint8 level, const char *text, GError **error);
GBytes *healer_link_build_update_ready(gint32 status, guint32 offset, guint16 max_data, guint8 window);
GBytes *healer_link_build_ack(guint32 next_offset);
GBytes *healer_link_build_update_result(gint32 status);
GBytes *healer_link_build_pong(guint32 nonce);
GBytes *healer_link_build_error(gint32 code, guint8 request_type, const char *text, GError **error);

/* ---- parsers: frame type, exact body length, field ranges -------------- */

/* device -> host */
gboolean healer_link_parse_hello(const link_frame_t *f, HealerLinkHello *out, GError **error);
gboolean healer_link_parse_describe_reply(const link_frame_t *f, HealerLinkDescribeReply *out, GError **error);
gboolean healer_link_parse_status(const link_frame_t *f, HealerLinkStatus *out, GError **error);
gboolean healer_link_parse_log(const link_frame_t *f, HealerLinkLog *out, GError **error);
gboolean healer_link_parse_update_ready(const link_frame_t *f, HealerLinkUpdateReady *out, GError **error);
gboolean healer_link_parse_ack(const link_frame_t *f, guint32 *next_offset, GError **error);
gboolean healer_link_parse_update_result(const link_frame_t *f, gint32 *status, GError **error);
gboolean healer_link_parse_pong(const link_frame_t *f, guint32 *nonce, GError **error);
gboolean healer_link_parse_error(const link_frame_t *f, HealerLinkErrorReply *out, GError **error);

/* host -> device; the empty ones only check the type and that the body is empty. */
gboolean healer_link_parse_describe(const link_frame_t *f, GError **error);
gboolean healer_link_parse_begin(const link_frame_t *f, HealerLinkBegin *out, GError **error);
gboolean healer_link_parse_data(const link_frame_t *f, HealerLinkData *out, GError **error);
gboolean healer_link_parse_finish(const link_frame_t *f, GError **error);
gboolean healer_link_parse_reset(const link_frame_t *f, GError **error);
gboolean healer_link_parse_ping(const link_frame_t *f, guint32 *nonce, GError **error);
gboolean healer_link_parse_cancel(const link_frame_t *f, GError **error);
gboolean healer_link_parse_hello_request(const link_frame_t *f, GError **error);

/* ---- names --------------------------------------------------------------- */

/* "HELLO", "DATA", ...; NULL for a type the protocol does not define. */
const char *healer_link_frame_type_to_string(guint type);
gboolean healer_link_frame_type_is_from_device(guint type);
/* "normal", "safe-mode", "updating", "listening", "dfu"; NULL if unknown (likewise below). */
const char *healer_link_mode_to_string(guint mode);
/* "off", "breathing-cyan", "breathing-magenta", "blinking-magenta", "blinking-blue", "blinking-yellow", "red-sos",
 * "breathing-green" */
const char *healer_link_led_to_string(guint led);
/* "unknown", "power-on", "pin", "update", "requested", "watchdog", "panic" */
const char *healer_link_reset_reason_to_string(guint reason);
/* "none", "dependencies", "requested", "no-application", "application-invalid" */
const char *healer_link_safe_mode_reason_to_string(guint reason);
/* "error", "warning", "info", "debug" */
const char *healer_link_log_level_to_string(guint level);
/* "generic", "integrity", "dependency", "address", "platform", "format" (enum module_update_error) */
const char *healer_link_update_error_to_string(gint32 code);
/* "unknown-request", "bad-request", "no-transfer", "out-of-order", "incomplete", "too-large" (enum link_error_code) */
const char *healer_link_error_code_to_string(gint32 code);
/* Any status or code: "ok" for 0, the names above, else "error -1234"; free with g_free(). */
char *healer_link_status_to_string(gint32 status);

/* ---- the streaming decoder --------------------------------------------- */

/* A decoded frame the caller owns; frame.body points into it. */
typedef struct {
	link_frame_t frame;
	guint8 body[];
} HealerLinkFrame;

HealerLinkFrame *healer_link_frame_new(guint8 type, guint8 flags, const void *body, gsize body_len);
HealerLinkFrame *healer_link_frame_copy(const link_frame_t *frame);
void healer_link_frame_free(HealerLinkFrame *frame);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerLinkFrame, healer_link_frame_free)

typedef struct _HealerLinkDecoder HealerLinkDecoder;

typedef struct {
	guint64 bytes_in;      /* every byte pushed */
	guint64 frames_ok;     /* frames handed out */
	guint64 frames_bad;    /* CRC, length or COBS faults (the frame was dropped) */
	guint64 bytes_dropped; /* decoded bytes of dropped frames */
} HealerLinkDecoderStats;

HealerLinkDecoder *healer_link_decoder_new(void);
void healer_link_decoder_free(HealerLinkDecoder *decoder);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerLinkDecoder, healer_link_decoder_free)

/*
 * Feeds a chunk of any size (0 included); returns the frames it completed,
 * in order, as HealerLinkFrame* (transfer full, possibly empty).  Partial
 * frames are kept for the next chunk.
 */
GPtrArray *healer_link_decoder_push(HealerLinkDecoder *decoder, const guint8 *data, gsize len);
/* Forgets a partial frame (after a reconnect, say); the counters stay. */
void healer_link_decoder_reset(HealerLinkDecoder *decoder);
void healer_link_decoder_get_stats(const HealerLinkDecoder *decoder, HealerLinkDecoderStats *stats);

G_END_DECLS
