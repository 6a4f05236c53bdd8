/*
 * travel-in-time: built against 2.0.0, it calls SYSTEM_ABI_TIME_TRAVEL,
 * which only 2.0.0 exports.  Installed on an older system it must not run:
 * its header declares the dependency, the bootloader sees it unmet, and the
 * device comes up in safe mode instead of faulting.
 */
#include "app.h"
#include "text.h"

static void
setup(const dynalib_t *lib)
{
	char line[80];
	text_t t;
	int32_t year = DYNALIB_CALL(lib, SYSTEM_ABI_TIME_TRAVEL, time_travel, 1985);

	text_init(&t, line, sizeof line);
	text_str(&t, "travel-in-time: running on system ");
	text_str(&t, DYNALIB_CALL(lib, SYSTEM_ABI_RELEASE, release));
	text_str(&t, ", arrived in ");
	text_int(&t, year);
	DYNALIB_CALL(lib, SYSTEM_ABI_LOG, log, line);
}

static void
loop(const dynalib_t *lib)
{
	(void)lib;
}

const application_t app_travel_in_time = {
        .name = "travel-in-time",
        .abi_entries = SYSTEM_ABI_TIME_TRAVEL + 1,
        .setup = setup,
        .loop = loop,
};
