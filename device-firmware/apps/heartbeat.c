/*
 * heartbeat: built against 1.1.0, it reports its uptime with
 * SYSTEM_ABI_LOG_VALUE, which 1.1.0 added.  On a 1.0.0 device it needs
 * 1.1.0's system parts: an update without a stepping stone.
 */
#include "app.h"

static uint32_t last_beat;

static void
setup(const dynalib_t *lib)
{
	DYNALIB_CALL(lib, SYSTEM_ABI_LOG, log, "heartbeat: running");
	last_beat = DYNALIB_CALL(lib, SYSTEM_ABI_MILLIS, millis);
	DYNALIB_CALL(lib, SYSTEM_ABI_LOG_VALUE, log_value, "heartbeat: uptime", 0);
}

static void
loop(const dynalib_t *lib)
{
	uint32_t now = DYNALIB_CALL(lib, SYSTEM_ABI_MILLIS, millis);

	if (now - last_beat >= 10000) {
		last_beat = now;
		DYNALIB_CALL(lib, SYSTEM_ABI_LOG_VALUE, log_value, "heartbeat: uptime",
		             (int32_t)DYNALIB_CALL(lib, SYSTEM_ABI_UPTIME, uptime));
	}
}

const application_t app_heartbeat = {
        .name = "heartbeat",
        .abi_entries = SYSTEM_ABI_LOG_VALUE + 1,
        .setup = setup,
        .loop = loop,
};
