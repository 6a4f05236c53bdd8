#include "link-codec.h"

#include <string.h>

#include "healer-error.h"
#include "name-table.h"
#include "healer/module-format.h"

/* ---- little-endian fields, byte by byte ------------------------------------ */

static void
put_u16(guint8 *p, guint16 v)
{
	p[0] = (guint8)v;
	p[1] = (guint8)(v >> 8);
}

static void
put_u32(guint8 *p, guint32 v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (guint8)(v >> (8 * i));
}

static guint16
get_u16(const guint8 *p)
{
	return (guint16)(p[0] | p[1] << 8);
}

static guint32
get_u32(const guint8 *p)
{
	return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

/* ---- names ------------------------------------------------------------------ */

const char *
healer_link_frame_type_to_string(guint type)
{
	switch (type) {
	case LINK_HELLO:
		return "HELLO";
	case LINK_DESCRIBE_REPLY:
		return "DESCRIBE_REPLY";
	case LINK_STATUS:
		return "STATUS";
	case LINK_LOG:
		return "LOG";
	case LINK_UPDATE_READY:
		return "UPDATE_READY";
	case LINK_ACK:
		return "ACK";
	case LINK_UPDATE_RESULT:
		return "UPDATE_RESULT";
	case LINK_PONG:
		return "PONG";
	case LINK_ERROR:
		return "ERROR";
	case LINK_DESCRIBE:
		return "DESCRIBE";
	case LINK_BEGIN:
		return "BEGIN";
	case LINK_DATA:
		return "DATA";
	case LINK_FINISH:
		return "FINISH";
	case LINK_RESET:
		return "RESET";
	case LINK_PING:
		return "PING";
	case LINK_CANCEL:
		return "CANCEL";
	case LINK_HELLO_REQUEST:
		return "HELLO_REQUEST";
	default:
		return NULL;
	}
}

gboolean
healer_link_frame_type_is_from_device(guint type)
{
	return type >= LINK_HELLO && type <= LINK_ERROR;
}

static const char *const mode_names[] = {
        [LINK_MODE_NORMAL] = "normal",       [LINK_MODE_SAFE] = "safe-mode", [LINK_MODE_UPDATING] = "updating",
        [LINK_MODE_LISTENING] = "listening", [LINK_MODE_DFU] = "dfu",
};

static const char *const led_names[] = {
        [LINK_LED_OFF] = "off",
        [LINK_LED_BREATHING_CYAN] = "breathing-cyan",
        [LINK_LED_BREATHING_MAGENTA] = "breathing-magenta",
        [LINK_LED_BLINKING_MAGENTA] = "blinking-magenta",
        [LINK_LED_BLINKING_BLUE] = "blinking-blue",
        [LINK_LED_BLINKING_YELLOW] = "blinking-yellow",
        [LINK_LED_RED_SOS] = "red-sos",
        [LINK_LED_BREATHING_GREEN] = "breathing-green",
};

static const char *const reset_reason_names[] = {
        [LINK_RESET_UNKNOWN] = "unknown", [LINK_RESET_POWER_ON] = "power-on",   [LINK_RESET_PIN] = "pin",
        [LINK_RESET_UPDATE] = "update",   [LINK_RESET_REQUESTED] = "requested", [LINK_RESET_WATCHDOG] = "watchdog",
        [LINK_RESET_PANIC] = "panic",
};

static const char *const safe_mode_reason_names[] = {
        [LINK_SAFE_MODE_NONE] = "none",
        [LINK_SAFE_MODE_DEPENDENCIES] = "dependencies",
        [LINK_SAFE_MODE_REQUESTED] = "requested",
        [LINK_SAFE_MODE_NO_APPLICATION] = "no-application",
        [LINK_SAFE_MODE_APPLICATION_INVALID] = "application-invalid",
};

static const char *const log_level_names[] = {
        [LINK_LOG_ERROR] = "error",
        [LINK_LOG_WARNING] = "warning",
        [LINK_LOG_INFO] = "info",
        [LINK_LOG_DEBUG] = "debug",
};

const char *
healer_link_mode_to_string(guint mode)
{
	return NAME_OR_NULL(mode_names, mode);
}

const char *
healer_link_led_to_string(guint led)
{
	return NAME_OR_NULL(led_names, led);
}

const char *
healer_link_reset_reason_to_string(guint reason)
{
	return NAME_OR_NULL(reset_reason_names, reason);
}

const char *
healer_link_safe_mode_reason_to_string(guint reason)
{
	return NAME_OR_NULL(safe_mode_reason_names, reason);
}

const char *
healer_link_log_level_to_string(guint level)
{
	return NAME_OR_NULL(log_level_names, level);
}

const char *
healer_link_update_error_to_string(gint32 code)
{
	switch (code) {
	case MODULE_UPDATE_ERROR_GENERIC:
		return "generic";
	case MODULE_UPDATE_ERROR_INTEGRITY:
		return "integrity";
	case MODULE_UPDATE_ERROR_DEPENDENCY:
		return "dependency";
	case MODULE_UPDATE_ERROR_ADDRESS:
		return "address";
	case MODULE_UPDATE_ERROR_PLATFORM:
		return "platform";
	case MODULE_UPDATE_ERROR_FORMAT:
		return "format";
	default:
		return NULL;
	}
}

const char *
healer_link_error_code_to_string(gint32 code)
{
	switch (code) {
	case LINK_ERROR_UNKNOWN_REQUEST:
		return "unknown-request";
	case LINK_ERROR_BAD_REQUEST:
		return "bad-request";
	case LINK_ERROR_NO_TRANSFER:
		return "no-transfer";
	case LINK_ERROR_OUT_OF_ORDER:
		return "out-of-order";
	case LINK_ERROR_INCOMPLETE:
		return "incomplete";
	case LINK_ERROR_TOO_LARGE:
		return "too-large";
	default:
		return NULL;
	}
}

char *
healer_link_status_to_string(gint32 status)
{
	const char *name;

	if (status == 0)
		return g_strdup("ok");
	name = healer_link_update_error_to_string(status);
	if (name == NULL)
		name = healer_link_error_code_to_string(status);
	if (name != NULL)
		return g_strdup(name);
	return g_strdup_printf("error %" G_GINT32_FORMAT, status);
}

/* A status UPDATE_READY or UPDATE_RESULT may carry. */
static gboolean
status_known(gint32 status)
{
	return status == 0 || healer_link_update_error_to_string(status) != NULL ||
	       healer_link_error_code_to_string(status) != NULL;
}

/* ---- builders ------------------------------------------------------------ */

GBytes *
healer_link_build_frame(guint8 type, guint8 flags, const void *body, gsize body_len, GError **error)
{
	gsize size, n;
	guint8 *out;

	if (body_len > LINK_MAX_BODY) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s frame: a body of %" G_GSIZE_FORMAT " bytes is over the limit of %u",
		            healer_link_frame_type_to_string(type) ? healer_link_frame_type_to_string(type) : "link",
		            body_len, LINK_MAX_BODY);
		return NULL;
	}
	size = link_frame_encoded_size(body_len);
	out = g_malloc(size);
	n = link_frame_encode(type, flags, body, body_len, out, size);
	/* The size is the encoder's own bound, and body_len is within the limit. */
	g_assert(n > 0 && n <= size);
	return g_bytes_new_take(g_realloc(out, n), n);
}

/* A frame whose body is known to fit. */
static GBytes *
build(guint8 type, const void *body, gsize body_len)
{
	g_autoptr(GError) error = NULL;
	GBytes *bytes = healer_link_build_frame(type, 0, body, body_len, &error);

	g_assert_no_error(error);
	return bytes;
}

GBytes *
healer_link_build_describe(void)
{
	return build(LINK_DESCRIBE, NULL, 0);
}

GBytes *
healer_link_build_begin(guint32 size, const guint8 sha256[32], guint8 function, guint8 index, guint16 version,
                        guint16 max_data)
{
	guint8 body[42];

	G_STATIC_ASSERT(sizeof body == sizeof(struct link_begin));
	put_u32(body, size);
	memcpy(body + 4, sha256, 32);
	body[36] = function;
	body[37] = index;
	put_u16(body + 38, version);
	put_u16(body + 40, max_data);
	return build(LINK_BEGIN, body, sizeof body);
}

GBytes *
healer_link_build_data(guint32 offset, const guint8 *data, gsize len, GError **error)
{
	g_autofree guint8 *body = NULL;

	if (len > HEALER_LINK_MAX_DATA_PAYLOAD) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "DATA frame: a payload of %" G_GSIZE_FORMAT " bytes is over the limit of %u", len,
		            HEALER_LINK_MAX_DATA_PAYLOAD);
		return NULL;
	}
	body = g_malloc(LINK_DATA_HEADER_SIZE + len);
	put_u32(body, offset);
	if (len > 0)
		memcpy(body + LINK_DATA_HEADER_SIZE, data, len);
	return healer_link_build_frame(LINK_DATA, 0, body, LINK_DATA_HEADER_SIZE + len, error);
}

GBytes *
healer_link_build_finish(void)
{
	return build(LINK_FINISH, NULL, 0);
}

GBytes *
healer_link_build_reset(void)
{
	return build(LINK_RESET, NULL, 0);
}

GBytes *
healer_link_build_ping(guint32 nonce)
{
	guint8 body[4];

	put_u32(body, nonce);
	return build(LINK_PING, body, sizeof body);
}

GBytes *
healer_link_build_cancel(void)
{
	return build(LINK_CANCEL, NULL, 0);
}

GBytes *
healer_link_build_hello_request(void)
{
	return build(LINK_HELLO_REQUEST, NULL, 0);
}

GBytes *
healer_link_build_hello(const HealerLinkHello *hello)
{
	guint8 body[22];

	G_STATIC_ASSERT(sizeof body == sizeof(struct link_hello));
	body[0] = hello->protocol_version;
	body[1] = hello->mode;
	body[2] = hello->safe_mode_reason;
	body[3] = hello->reset_reason;
	body[4] = hello->led;
	body[5] = hello->window;
	put_u16(body + 6, hello->platform_id);
	put_u16(body + 8, hello->max_data);
	memcpy(body + 10, hello->device_id, LINK_DEVICE_ID_SIZE);
	return build(LINK_HELLO, body, sizeof body);
}

GBytes *
healer_link_build_describe_reply(const char *json, gsize len, GError **error)
{
	return healer_link_build_frame(LINK_DESCRIBE_REPLY, 0, json, len, error);
}

GBytes *
healer_link_build_status(const HealerLinkStatus *status)
{
	guint8 body[4] = {status->mode, status->safe_mode_reason, status->led, 0};

	G_STATIC_ASSERT(sizeof body == sizeof(struct link_status));
	return build(LINK_STATUS, body, sizeof body);
}

/* A fixed head followed by a text. */
static GBytes *
build_with_text(guint8 type, const guint8 *head, gsize head_len, const char *text, GError **error)
{
	gsize text_len = text != NULL ? strlen(text) : 0;
	g_autofree guint8 *body = NULL;

	if (text_len > LINK_MAX_BODY - head_len) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s frame: a text of %" G_GSIZE_FORMAT " bytes is over the limit of %" G_GSIZE_FORMAT,
		            healer_link_frame_type_to_string(type), text_len, LINK_MAX_BODY - head_len);
		return NULL;
	}
	body = g_malloc(head_len + text_len);
	memcpy(body, head, head_len);
	if (text_len > 0)
		memcpy(body + head_len, text, text_len);
	return healer_link_build_frame(type, 0, body, head_len + text_len, error);
}

GBytes *
healer_link_build_log(guint8 level, const char *text, GError **error)
{
	return build_with_text(LINK_LOG, &level, 1, text, error);
}

GBytes *
healer_link_build_update_ready(gint32 status, guint32 offset, guint16 max_data, guint8 window)
{
	guint8 body[12];

	G_STATIC_ASSERT(sizeof body == sizeof(struct link_update_ready));
	put_u32(body, (guint32)status);
	put_u32(body + 4, offset);
	put_u16(body + 8, max_data);
	body[10] = window;
	body[11] = 0;
	return build(LINK_UPDATE_READY, body, sizeof body);
}

GBytes *
healer_link_build_ack(guint32 next_offset)
{
	guint8 body[4];

	G_STATIC_ASSERT(sizeof body == sizeof(struct link_ack));
	put_u32(body, next_offset);
	return build(LINK_ACK, body, sizeof body);
}

GBytes *
healer_link_build_update_result(gint32 status)
{
	guint8 body[4];

	G_STATIC_ASSERT(sizeof body == sizeof(struct link_update_result));
	put_u32(body, (guint32)status);
	return build(LINK_UPDATE_RESULT, body, sizeof body);
}

GBytes *
healer_link_build_pong(guint32 nonce)
{
	guint8 body[4];

	put_u32(body, nonce);
	return build(LINK_PONG, body, sizeof body);
}

GBytes *
healer_link_build_error(gint32 code, guint8 request_type, const char *text, GError **error)
{
	guint8 head[5];

	G_STATIC_ASSERT(sizeof head == sizeof(struct link_error));
	put_u32(head, (guint32)code);
	head[4] = request_type;
	return build_with_text(LINK_ERROR, head, sizeof head, text, error);
}

/* ---- parsers ---------------------------------------------------------------- */

G_GNUC_PRINTF(3, 4)
static gboolean
fail(GError **error, guint8 type, const char *format, ...)
{
	const char *name = healer_link_frame_type_to_string(type);
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	if (name != NULL)
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s frame: %s", name, message);
	else
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "frame type 0x%02x: %s", type, message);
	return FALSE;
}

/* The frame is of type `want`. */
static gboolean
check_type(const link_frame_t *f, guint8 want, GError **error)
{
	const char *got = healer_link_frame_type_to_string(f->type);

	if (f->type == want)
		return TRUE;
	if (got != NULL)
		return fail(error, want, "got a %s frame (type 0x%02x) instead", got, f->type);
	return fail(error, want, "got a frame of unknown type 0x%02x instead", f->type);
}

static gboolean
check_length(const link_frame_t *f, guint8 want, gsize length, GError **error)
{
	if (!check_type(f, want, error))
		return FALSE;
	if (f->body_len != length)
		return fail(error, want, "body is %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT, f->body_len,
		            length);
	return TRUE;
}

static gboolean
check_min_length(const link_frame_t *f, guint8 want, gsize length, GError **error)
{
	if (!check_type(f, want, error))
		return FALSE;
	if (f->body_len < length)
		return fail(error, want, "body is %" G_GSIZE_FORMAT " bytes, expected at least %" G_GSIZE_FORMAT,
		            f->body_len, length);
	return TRUE;
}

static gboolean
check_enum(guint8 type, const char *field, guint value, const char *(*name)(guint), GError **error)
{
	if (name(value) != NULL)
		return TRUE;
	return fail(error, type, "%s %u is not defined", field, value);
}

static gboolean
check_max_data(guint8 type, guint max_data, GError **error)
{
	if (max_data >= 1 && max_data <= HEALER_LINK_MAX_DATA_PAYLOAD)
		return TRUE;
	return fail(error, type, "max_data %u is outside 1..%u", max_data, HEALER_LINK_MAX_DATA_PAYLOAD);
}

/* Text from the device, made printable anywhere: valid UTF-8, no NUL inside. */
static char *
text_from_body(const guint8 *p, gsize len)
{
	return g_utf8_make_valid((const char *)p, (gssize)len);
}

gboolean
healer_link_parse_hello(const link_frame_t *f, HealerLinkHello *out, GError **error)
{
	const guint8 *b = f->body;
	HealerLinkHello h;

	if (!check_type(f, LINK_HELLO, error))
		return FALSE;
	/* The version first: another version may lay the body out differently. */
	if (f->body_len >= 1 && b[0] != LINK_PROTOCOL_VERSION)
		return fail(error, LINK_HELLO, "protocol version %u, this host speaks %u", b[0], LINK_PROTOCOL_VERSION);
	if (!check_length(f, LINK_HELLO, sizeof(struct link_hello), error))
		return FALSE;
	h.protocol_version = b[0];
	h.mode = b[1];
	h.safe_mode_reason = b[2];
	h.reset_reason = b[3];
	h.led = b[4];
	h.window = b[5];
	h.platform_id = get_u16(b + 6);
	h.max_data = get_u16(b + 8);
	memcpy(h.device_id, b + 10, LINK_DEVICE_ID_SIZE);
	if (!check_enum(LINK_HELLO, "mode", h.mode, healer_link_mode_to_string, error) ||
	    !check_enum(LINK_HELLO, "safe-mode reason", h.safe_mode_reason, healer_link_safe_mode_reason_to_string,
	                error) ||
	    !check_enum(LINK_HELLO, "reset reason", h.reset_reason, healer_link_reset_reason_to_string, error) ||
	    !check_enum(LINK_HELLO, "LED", h.led, healer_link_led_to_string, error))
		return FALSE;
	if (h.window == 0)
		return fail(error, LINK_HELLO, "window 0: the device would accept no DATA frame");
	if (!check_max_data(LINK_HELLO, h.max_data, error))
		return FALSE;
	*out = h;
	return TRUE;
}

gboolean
healer_link_parse_describe_reply(const link_frame_t *f, HealerLinkDescribeReply *out, GError **error)
{
	if (!check_min_length(f, LINK_DESCRIBE_REPLY, 1, error))
		return FALSE;
	out->json = g_malloc(f->body_len + 1);
	memcpy(out->json, f->body, f->body_len);
	out->json[f->body_len] = '\0';
	out->len = f->body_len;
	return TRUE;
}

gboolean
healer_link_parse_status(const link_frame_t *f, HealerLinkStatus *out, GError **error)
{
	HealerLinkStatus s;

	if (!check_length(f, LINK_STATUS, sizeof(struct link_status), error))
		return FALSE;
	s.mode = f->body[0];
	s.safe_mode_reason = f->body[1];
	s.led = f->body[2];
	/* body[3] is reserved: written 0, ignored when read. */
	if (!check_enum(LINK_STATUS, "mode", s.mode, healer_link_mode_to_string, error) ||
	    !check_enum(LINK_STATUS, "safe-mode reason", s.safe_mode_reason, healer_link_safe_mode_reason_to_string,
	                error) ||
	    !check_enum(LINK_STATUS, "LED", s.led, healer_link_led_to_string, error))
		return FALSE;
	*out = s;
	return TRUE;
}

gboolean
healer_link_parse_log(const link_frame_t *f, HealerLinkLog *out, GError **error)
{
	if (!check_min_length(f, LINK_LOG, 1, error) ||
	    !check_enum(LINK_LOG, "level", f->body[0], healer_link_log_level_to_string, error))
		return FALSE;
	out->level = f->body[0];
	out->text = text_from_body(f->body + 1, f->body_len - 1);
	return TRUE;
}

gboolean
healer_link_parse_update_ready(const link_frame_t *f, HealerLinkUpdateReady *out, GError **error)
{
	HealerLinkUpdateReady r;

	if (!check_length(f, LINK_UPDATE_READY, sizeof(struct link_update_ready), error))
		return FALSE;
	r.status = (gint32)get_u32(f->body);
	r.offset = get_u32(f->body + 4);
	r.max_data = get_u16(f->body + 8);
	r.window = f->body[10];
	if (!status_known(r.status))
		return fail(error, LINK_UPDATE_READY, "status %" G_GINT32_FORMAT " is not defined", r.status);
	if (r.status == 0) {
		if (r.window == 0)
			return fail(error, LINK_UPDATE_READY, "window 0: the device would accept no DATA frame");
		if (!check_max_data(LINK_UPDATE_READY, r.max_data, error))
			return FALSE;
	}
	*out = r;
	return TRUE;
}

static gboolean
parse_u32(const link_frame_t *f, guint8 type, guint32 *out, GError **error)
{
	if (!check_length(f, type, 4, error))
		return FALSE;
	*out = get_u32(f->body);
	return TRUE;
}

gboolean
healer_link_parse_ack(const link_frame_t *f, guint32 *next_offset, GError **error)
{
	return parse_u32(f, LINK_ACK, next_offset, error);
}

gboolean
healer_link_parse_update_result(const link_frame_t *f, gint32 *status, GError **error)
{
	guint32 v;

	if (!parse_u32(f, LINK_UPDATE_RESULT, &v, error))
		return FALSE;
	if (!status_known((gint32)v))
		return fail(error, LINK_UPDATE_RESULT, "status %" G_GINT32_FORMAT " is not defined", (gint32)v);
	*status = (gint32)v;
	return TRUE;
}

gboolean
healer_link_parse_pong(const link_frame_t *f, guint32 *nonce, GError **error)
{
	return parse_u32(f, LINK_PONG, nonce, error);
}

gboolean
healer_link_parse_error(const link_frame_t *f, HealerLinkErrorReply *out, GError **error)
{
	gint32 code;

	if (!check_min_length(f, LINK_ERROR, sizeof(struct link_error), error))
		return FALSE;
	code = (gint32)get_u32(f->body);
	if (code >= 0)
		return fail(error, LINK_ERROR, "code %" G_GINT32_FORMAT " is not an error (errors are negative)", code);
	out->code = code;
	out->request_type = f->body[4];
	out->text = text_from_body(f->body + 5, f->body_len - 5);
	return TRUE;
}

gboolean
healer_link_parse_describe(const link_frame_t *f, GError **error)
{
	return check_length(f, LINK_DESCRIBE, 0, error);
}

gboolean
healer_link_parse_begin(const link_frame_t *f, HealerLinkBegin *out, GError **error)
{
	const guint8 *b = f->body;
	HealerLinkBegin r;

	if (!check_length(f, LINK_BEGIN, sizeof(struct link_begin), error))
		return FALSE;
	r.size = get_u32(b);
	memcpy(r.sha256, b + 4, 32);
	r.function = b[36];
	r.index = b[37];
	r.version = get_u16(b + 38);
	r.max_data = get_u16(b + 40);
	if (r.size == 0)
		return fail(error, LINK_BEGIN, "module size 0");
	if (r.function == MODULE_FUNCTION_NONE || r.function > MODULE_FUNCTION_MAX)
		return fail(error, LINK_BEGIN, "module function %u is outside 1..%u", r.function, MODULE_FUNCTION_MAX);
	if (!check_max_data(LINK_BEGIN, r.max_data, error))
		return FALSE;
	*out = r;
	return TRUE;
}

gboolean
healer_link_parse_data(const link_frame_t *f, HealerLinkData *out, GError **error)
{
	guint32 offset;
	gsize len;

	if (!check_min_length(f, LINK_DATA, LINK_DATA_HEADER_SIZE + 1, error))
		return FALSE;
	offset = get_u32(f->body);
	len = f->body_len - LINK_DATA_HEADER_SIZE;
	if (len > G_MAXUINT32 - offset)
		return fail(error, LINK_DATA,
		            "%" G_GSIZE_FORMAT " bytes at offset %" G_GUINT32_FORMAT " run past 4 GiB", len, offset);
	out->offset = offset;
	out->data = f->body + LINK_DATA_HEADER_SIZE;
	out->len = len;
	return TRUE;
}

gboolean
healer_link_parse_finish(const link_frame_t *f, GError **error)
{
	return check_length(f, LINK_FINISH, 0, error);
}

gboolean
healer_link_parse_reset(const link_frame_t *f, GError **error)
{
	return check_length(f, LINK_RESET, 0, error);
}

gboolean
healer_link_parse_ping(const link_frame_t *f, guint32 *nonce, GError **error)
{
	return parse_u32(f, LINK_PING, nonce, error);
}

gboolean
healer_link_parse_cancel(const link_frame_t *f, GError **error)
{
	return check_length(f, LINK_CANCEL, 0, error);
}

gboolean
healer_link_parse_hello_request(const link_frame_t *f, GError **error)
{
	return check_length(f, LINK_HELLO_REQUEST, 0, error);
}

void
healer_link_log_clear(HealerLinkLog *log)
{
	g_clear_pointer(&log->text, g_free);
}

void
healer_link_describe_reply_clear(HealerLinkDescribeReply *reply)
{
	g_clear_pointer(&reply->json, g_free);
	reply->len = 0;
}

void
healer_link_error_reply_clear(HealerLinkErrorReply *reply)
{
	g_clear_pointer(&reply->text, g_free);
}

/* ---- frames and the decoder ------------------------------------------------- */

HealerLinkFrame *
healer_link_frame_new(guint8 type, guint8 flags, const void *body, gsize body_len)
{
	HealerLinkFrame *frame = g_malloc(sizeof *frame + body_len);

	frame->frame.type = type;
	frame->frame.flags = flags;
	frame->frame.body = frame->body;
	frame->frame.body_len = body_len;
	if (body_len > 0)
		memcpy(frame->body, body, body_len);
	return frame;
}

HealerLinkFrame *
healer_link_frame_copy(const link_frame_t *frame)
{
	return healer_link_frame_new(frame->type, frame->flags, frame->body, frame->body_len);
}

void
healer_link_frame_free(HealerLinkFrame *frame)
{
	g_free(frame);
}

struct _HealerLinkDecoder {
	link_decoder_t dec;
	HealerLinkDecoderStats stats;
};

HealerLinkDecoder *
healer_link_decoder_new(void)
{
	HealerLinkDecoder *decoder = g_new0(HealerLinkDecoder, 1);

	link_decoder_init(&decoder->dec);
	return decoder;
}

void
healer_link_decoder_free(HealerLinkDecoder *decoder)
{
	g_free(decoder);
}

/* Moves the decoder's 32-bit counters into the 64-bit totals, so they never wrap. */
static void
collect_counters(HealerLinkDecoder *decoder)
{
	decoder->stats.frames_ok += decoder->dec.frames_ok;
	decoder->stats.frames_bad += decoder->dec.frames_bad;
	decoder->stats.bytes_dropped += decoder->dec.bytes_dropped;
	decoder->dec.frames_ok = 0;
	decoder->dec.frames_bad = 0;
	decoder->dec.bytes_dropped = 0;
}

GPtrArray *
healer_link_decoder_push(HealerLinkDecoder *decoder, const guint8 *data, gsize len)
{
	GPtrArray *frames = g_ptr_array_new_with_free_func((GDestroyNotify)healer_link_frame_free);
	gsize pos = 0;

	while (pos < len) {
		link_frame_t frame;
		int got = 0;
		gsize used = link_decoder_push(&decoder->dec, data + pos, len - pos, &frame, &got);

		g_assert(used > 0 && used <= len - pos);
		pos += used;
		if (got)
			g_ptr_array_add(frames, healer_link_frame_copy(&frame));
	}
	decoder->stats.bytes_in += len;
	collect_counters(decoder);
	return frames;
}

void
healer_link_decoder_reset(HealerLinkDecoder *decoder)
{
	collect_counters(decoder);
	link_decoder_init(&decoder->dec);
}

void
healer_link_decoder_get_stats(const HealerLinkDecoder *decoder, HealerLinkDecoderStats *stats)
{
	*stats = decoder->stats;
}
