/*
 * tinker: the application built against the first release (1.0.0).  It
 * uses only the entries every release exports.
 */
#include "app.h"
#include "text.h"

static uint32_t last_beat;

static void
setup(const dynalib_t *lib)
{
	char line[80];
	text_t t;

	text_init(&t, line, sizeof line);
	text_str(&t, "tinker: running on system ");
	text_str(&t, DYNALIB_CALL(lib, SYSTEM_ABI_RELEASE, release));
	DYNALIB_CALL(lib, SYSTEM_ABI_LOG, log, line);
	last_beat = DYNALIB_CALL(lib, SYSTEM_ABI_MILLIS, millis);
}

static void
loop(const dynalib_t *lib)
{
	uint32_t now = DYNALIB_CALL(lib, SYSTEM_ABI_MILLIS, millis);

	if (now - last_beat >= 10000) {
		last_beat = now;
		DYNALIB_CALL(lib, SYSTEM_ABI_PUBLISH, publish, "tinker/heartbeat", "alive");
	}
}

const application_t app_tinker = {
        .name = "tinker",
        .abi_entries = SYSTEM_ABI_RESET_REASON + 1,
        .setup = setup,
        .loop = loop,
};
