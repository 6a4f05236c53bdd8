#include "dynalib.h"

#include <string.h>

#include "hal.h"
#include "healer/link-protocol.h"
#include "link.h"
#include "text.h"

static char release_name[17];
static uint32_t boot_millis;
static uint32_t random_state = 0x12345678u;

static void
api_log(const char *text)
{
	link_log(LINK_LOG_INFO, text);
}

static uint32_t
api_millis(void)
{
	return hal_millis();
}

static void
api_device_id(uint8_t out[12])
{
	hal_flash_read(hal_board()->info_start + 4, out, 12);
}

static const char *
api_release(void)
{
	return release_name;
}

static void
api_publish(const char *name, const char *data)
{
	char line[160];
	text_t t;

	text_init(&t, line, sizeof line);
	text_str(&t, "publish ");
	text_str(&t, name);
	text_str(&t, " ");
	text_str(&t, data);
	link_log(LINK_LOG_INFO, line);
}

static uint32_t
api_random(void)
{
	/* xorshift: apps want variety, not secrecy */
	random_state ^= random_state << 13;
	random_state ^= random_state >> 17;
	random_state ^= random_state << 5;
	return random_state;
}

static uint32_t
api_uptime(void)
{
	return (hal_millis() - boot_millis) / 1000;
}

static uint8_t
api_reset_reason(void)
{
	return hal_reset_reason();
}

static void
api_log_value(const char *name, int32_t value)
{
	char line[96];
	text_t t;

	text_init(&t, line, sizeof line);
	text_str(&t, name);
	text_str(&t, " = ");
	text_int(&t, value);
	link_log(LINK_LOG_INFO, line);
}

static uint32_t
api_free_memory(void)
{
	return 0; /* no heap: nothing to give */
}

static uint32_t
api_rtc_epoch(void)
{
	return 1700000000u + api_uptime();
}

static int32_t
api_time_travel(uint16_t year)
{
	char line[64];
	text_t t;

	text_init(&t, line, sizeof line);
	text_str(&t, "time travel to ");
	text_uint(&t, year);
	link_log(LINK_LOG_INFO, line);
	return year;
}

static int32_t
api_temperature(void)
{
	/* A simulated board has no sensor: a plausible cabinet temperature that drifts a little. */
	return 21500 + (int32_t)(api_random() % 1000);
}

static const system_api_t api = {
        .log = api_log,
        .millis = api_millis,
        .device_id = api_device_id,
        .release = api_release,
        .publish = api_publish,
        .random = api_random,
        .uptime = api_uptime,
        .reset_reason = api_reset_reason,
        .log_value = api_log_value,
        .free_memory = api_free_memory,
        .rtc_epoch = api_rtc_epoch,
        .time_travel = api_time_travel,
        .temperature_millicelsius = api_temperature,
};

void
dynalib_init(dynalib_t *lib, uint16_t exported, const char *release)
{
	lib->api = &api;
	lib->exported = exported < SYSTEM_ABI_COUNT ? exported : SYSTEM_ABI_COUNT;
	strncpy(release_name, release, sizeof release_name - 1);
	boot_millis = hal_millis();
}

void
dynalib_missing(unsigned entry)
{
	char why[64];
	text_t t;

	text_init(&t, why, sizeof why);
	text_str(&t, "dynalib entry ");
	text_uint(&t, entry);
	text_str(&t, " is not exported by the installed system");
	hal_panic(why);
}
