/*
 * sensor: built against 2.1.0 for its temperature entry point.  A device
 * on 2.0.0 running it needs 2.1.0's system parts.
 */
#include "app.h"
#include "text.h"

static uint32_t last_reading;

static void
report(const dynalib_t *lib)
{
	DYNALIB_CALL(lib, SYSTEM_ABI_LOG_VALUE, log_value, "sensor: millicelsius",
	             DYNALIB_CALL(lib, SYSTEM_ABI_TEMPERATURE, temperature_millicelsius));
}

static void
setup(const dynalib_t *lib)
{
	DYNALIB_CALL(lib, SYSTEM_ABI_LOG, log, "sensor: running");
	last_reading = DYNALIB_CALL(lib, SYSTEM_ABI_MILLIS, millis);
	report(lib);
}

static void
loop(const dynalib_t *lib)
{
	uint32_t now = DYNALIB_CALL(lib, SYSTEM_ABI_MILLIS, millis);

	if (now - last_reading >= 30000) {
		last_reading = now;
		report(lib);
	}
}

const application_t app_sensor = {
        .name = "sensor",
        .abi_entries = SYSTEM_ABI_TEMPERATURE + 1,
        .setup = setup,
        .loop = loop,
};
