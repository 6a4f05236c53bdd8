#include "link.h"

#include <string.h>

#include "describe.h"
#include "hal.h"
#include "healer/link-protocol.h"
#include "link-frame.h"
#include "text.h"
#include "update.h"

/* A transfer that hears nothing for this long is dropped (its bytes stay staged for a resume). */
#define LINK_TRANSFER_IDLE_MS 20000u

static struct {
	boot_state_t *boot;
	link_decoder_t decoder;
	uint8_t out[LINK_MAX_ENCODED];
	uint8_t mode;
	uint8_t safe_mode_reason;
	uint8_t resting_mode; /* what the device goes back to when a transfer ends */
	uint8_t resting_reason;
	uint16_t max_data;
	uint32_t last_frame_ms;
} link;

static uint8_t
led_for(uint8_t mode)
{
	switch (mode) {
	case LINK_MODE_NORMAL:
		return LINK_LED_BREATHING_CYAN;
	case LINK_MODE_SAFE:
		return LINK_LED_BREATHING_MAGENTA;
	case LINK_MODE_UPDATING:
		return LINK_LED_BLINKING_MAGENTA;
	case LINK_MODE_LISTENING:
		return LINK_LED_BLINKING_BLUE;
	default:
		return LINK_LED_BLINKING_YELLOW;
	}
}

static void
send(uint8_t type, const void *body, size_t len)
{
	size_t n = link_frame_encode(type, 0, body, len, link.out, sizeof link.out);

	if (n > 0)
		hal_serial_write(link.out, n);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
send_hello(void)
{
	const hal_board_t *board = hal_board();
	uint8_t body[sizeof(struct link_hello)];

	body[0] = LINK_PROTOCOL_VERSION;
	body[1] = link.mode;
	body[2] = link.safe_mode_reason;
	body[3] = hal_reset_reason();
	body[4] = led_for(link.mode);
	body[5] = board->window;
	put16(body + 6, board->platform_id);
	put16(body + 8, board->max_data);
	hal_flash_read(board->info_start + 4, body + 10, LINK_DEVICE_ID_SIZE);
	send(LINK_HELLO, body, sizeof body);
}

static void
send_status(void)
{
	uint8_t body[4] = {link.mode, link.safe_mode_reason, led_for(link.mode), 0};

	send(LINK_STATUS, body, sizeof body);
}

static void
send_error(int32_t code, uint8_t request, const char *text)
{
	uint8_t body[5 + 96];
	size_t n = strlen(text) < 96 ? strlen(text) : 96;

	put32(body, (uint32_t)code);
	body[4] = request;
	memcpy(body + 5, text, n);
	send(LINK_ERROR, body, 5 + n);
}

void
link_log(uint8_t level, const char *text)
{
	uint8_t body[1 + 200];
	size_t n = strlen(text) < 200 ? strlen(text) : 200;

	body[0] = level;
	memcpy(body + 1, text, n);
	send(LINK_LOG, body, 1 + n);
	hal_debug(text);
}

void
link_set_mode(uint8_t mode, uint8_t safe_mode_reason)
{
	if (mode == link.mode && safe_mode_reason == link.safe_mode_reason)
		return;
	link.mode = mode;
	link.safe_mode_reason = safe_mode_reason;
	hal_led_set(led_for(mode));
	send_status();
}

uint8_t
link_mode(void)
{
	return link.mode;
}

static void
end_transfer(void)
{
	update_cancel();
	link_set_mode(link.resting_mode, link.resting_reason);
}

static void
on_describe(void)
{
	static char json[1536];
	size_t n = describe_build(link.boot->reports, json, sizeof json);

	if (n == 0)
		send_error(LINK_ERROR_TOO_LARGE, LINK_DESCRIBE, "describe does not fit a frame");
	else
		send(LINK_DESCRIBE_REPLY, json, n);
}

static void
on_begin(const link_frame_t *f)
{
	uint8_t reply[sizeof(struct link_update_ready)] = {0};
	uint32_t held = 0;
	uint16_t wanted;
	int32_t status;

	if (f->body_len != sizeof(struct link_begin)) {
		send_error(LINK_ERROR_BAD_REQUEST, f->type, "BEGIN body must be 42 bytes");
		return;
	}
	wanted = get16(f->body + 40);
	status = update_begin(get32(f->body), f->body + 4, f->body[36], f->body[37], get16(f->body + 38), &held);
	link.max_data = wanted != 0 && wanted < hal_board()->max_data ? wanted : hal_board()->max_data;
	put32(reply, (uint32_t)status);
	put32(reply + 4, held);
	put16(reply + 8, link.max_data);
	reply[10] = hal_board()->window;
	send(LINK_UPDATE_READY, reply, sizeof reply);
	if (status == 0)
		link_set_mode(LINK_MODE_UPDATING, LINK_SAFE_MODE_NONE);
}

static void
on_data(const link_frame_t *f)
{
	uint8_t ack[sizeof(struct link_ack)];
	uint32_t next = 0;
	int32_t status;

	if (f->body_len <= LINK_DATA_HEADER_SIZE || f->body_len - LINK_DATA_HEADER_SIZE > link.max_data) {
		send_error(LINK_ERROR_BAD_REQUEST, f->type, "DATA payload empty or over the negotiated size");
		return;
	}
	status = update_data(get32(f->body), f->body + LINK_DATA_HEADER_SIZE, f->body_len - LINK_DATA_HEADER_SIZE,
	                     &next);
	if (status != 0) {
		send_error(status, f->type, status == LINK_ERROR_NO_TRANSFER ? "no transfer in progress" : "bad DATA");
		return;
	}
	put32(ack, next);
	send(LINK_ACK, ack, sizeof ack);
}

static void
on_finish(const link_frame_t *f)
{
	uint8_t reply[sizeof(struct link_update_result)];
	static char why[160], line[200];
	text_t reason, log;
	int32_t status;

	(void)f;
	text_init(&reason, why, sizeof why);
	status = update_finish(link.boot->reports, &reason);
	/*
	 * A refusal says why before its UPDATE_RESULT, so the host holds the
	 * reason when the code arrives (three checks share -1340).
	 */
	if (status != 0 && reason.len > 0) {
		text_init(&log, line, sizeof line);
		text_str(&log, "update refused (");
		text_int(&log, status);
		text_str(&log, "): ");
		text_str(&log, why);
		link_log(LINK_LOG_WARNING, line);
	}
	put32(reply, (uint32_t)status);
	send(LINK_UPDATE_RESULT, reply, sizeof reply);
	if (status == 0) {
		link_log(LINK_LOG_INFO, "update staged: resetting to commit it");
		hal_serial_flush();
		hal_reset(LINK_RESET_UPDATE, false);
	}
	end_transfer();
}

static void
dispatch(const link_frame_t *f)
{
	uint8_t pong[4];

	link.last_frame_ms = hal_millis();
	switch (f->type) {
	case LINK_DESCRIBE:
		on_describe();
		break;
	case LINK_BEGIN:
		on_begin(f);
		break;
	case LINK_DATA:
		on_data(f);
		break;
	case LINK_FINISH:
		on_finish(f);
		break;
	case LINK_RESET:
		hal_serial_flush();
		hal_reset(LINK_RESET_REQUESTED, false);
	case LINK_PING:
		if (f->body_len != 4) {
			send_error(LINK_ERROR_BAD_REQUEST, f->type, "PING body must be 4 bytes");
			break;
		}
		memcpy(pong, f->body, 4);
		send(LINK_PONG, pong, sizeof pong);
		break;
	case LINK_CANCEL:
		end_transfer();
		break;
	case LINK_HELLO_REQUEST:
		send_hello();
		break;
	default:
		/* Frames a device sends are not requests: an echo on the line, ignore it. */
		if (f->type >= 0x40)
			send_error(LINK_ERROR_UNKNOWN_REQUEST, f->type, "unknown request");
		break;
	}
}

void
link_start(boot_state_t *boot)
{
	memset(&link, 0, sizeof link);
	link.boot = boot;
	link_decoder_init(&link.decoder);
	link.mode = link.resting_mode = boot->mode;
	link.safe_mode_reason = link.resting_reason = boot->safe_mode_reason;
	link.max_data = hal_board()->max_data;
	hal_led_set(led_for(link.mode));
	send_hello();
}

void
link_poll(void)
{
	uint8_t in[512];
	size_t n;

	while ((n = hal_serial_read(in, sizeof in)) > 0) {
		size_t used = 0;
		while (used < n) {
			link_frame_t frame;
			int got = 0;
			used += link_decoder_push(&link.decoder, in + used, n - used, &frame, &got);
			if (got)
				dispatch(&frame);
		}
	}
	if (link.mode == LINK_MODE_UPDATING && hal_millis() - link.last_frame_ms > LINK_TRANSFER_IDLE_MS) {
		link_log(LINK_LOG_WARNING, "transfer idle: dropped (received bytes stay staged)");
		end_transfer();
	}
}

uint32_t
link_next_timeout(void)
{
	uint32_t idle;

	if (link.mode != LINK_MODE_UPDATING)
		return 1000;
	idle = hal_millis() - link.last_frame_ms;
	return idle >= LINK_TRANSFER_IDLE_MS ? 0 : LINK_TRANSFER_IDLE_MS - idle;
}
