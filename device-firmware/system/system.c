/*
 * The system firmware's main: boot through the bootloader's checks, start
 * the link, and run the application unless the device is in safe mode.
 */
#include "system.h"

#include <string.h>

#include "app.h"
#include "bootloader.h"
#include "hal.h"
#include "healer/firmware-image.h"
#include "healer/link-protocol.h"
#include "link.h"
#include "text.h"

static bool
read_image_info(const hal_slot_t *slot, firmware_image_info_t *info)
{
	if (hal_flash_read(slot->start + MODULE_PREFIX_SIZE, info, sizeof *info) != 0)
		return false;
	info->release[sizeof info->release - 1] = '\0';
	info->name[sizeof info->name - 1] = '\0';
	return info->magic == FIRMWARE_IMAGE_MAGIC;
}

/* The application to run, found through the user part the bootloader verified. */
static const application_t *
start_application(dynalib_t *lib)
{
	firmware_image_info_t system_info, app_info;
	const hal_slot_t *system_slot = module_slot_for(MODULE_FUNCTION_SYSTEM_PART, 2);
	const hal_slot_t *user_slot = module_slot_for(MODULE_FUNCTION_USER_PART, 1);
	const application_t *app;
	char line[96];
	text_t t;

	if (system_slot == NULL || user_slot == NULL || !read_image_info(system_slot, &system_info) ||
	    !read_image_info(user_slot, &app_info) || app_info.kind != FIRMWARE_IMAGE_APPLICATION) {
		link_log(LINK_LOG_ERROR, "verified modules carry no image info: application not started");
		return NULL;
	}
	dynalib_init(lib, system_info.abi_entries, system_info.release);
	app = application_find(app_info.name);
	text_init(&t, line, sizeof line);
	if (app == NULL) {
		text_str(&t, "application '");
		text_str(&t, app_info.name);
		text_str(&t, "' has no code in this firmware: idle");
		link_log(LINK_LOG_WARNING, line);
		return NULL;
	}
	text_str(&t, "starting application ");
	text_str(&t, app->name);
	link_log(LINK_LOG_INFO, line);
	app->setup(lib);
	return app;
}

__attribute__((noreturn)) void
system_main(void)
{
	static boot_state_t boot;
	dynalib_t lib;
	const application_t *app = NULL;

	bootloader_boot(&boot);
	link_start(&boot);
	if (boot.commit_result == 0)
		link_log(LINK_LOG_INFO, "bootloader: installed the staged module");
	else if (boot.commit_result < 0)
		link_log(LINK_LOG_ERROR, "bootloader: the staged module failed verification and was not installed");
	if (boot.mode == LINK_MODE_SAFE)
		link_log(LINK_LOG_WARNING, boot.safe_mode_reason == LINK_SAFE_MODE_DEPENDENCIES
		                                   ? "safe mode: the application needs system modules this device lacks"
		                                   : "safe mode");
	if (boot.mode == LINK_MODE_NORMAL)
		app = start_application(&lib);

	for (;;) {
		hal_wait_event(app != NULL ? 100 : link_next_timeout());
		link_poll();
		if (app != NULL)
			app->loop(&lib);
	}
}
