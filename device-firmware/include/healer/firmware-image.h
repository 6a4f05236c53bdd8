/*
 * What this project's firmware modules carry at the start of their
 * payload, right after the 24-byte prefix: which image it is, and its side
 * of the system ABI.  A system part states how many dynalib entries it
 * exports; an application states how many it needs (which is why its
 * header declares a dependency on a release that exports them).
 */
#ifndef HEALER_FIRMWARE_IMAGE_H
#define HEALER_FIRMWARE_IMAGE_H

#include <stdint.h>

#define FIRMWARE_IMAGE_MAGIC 0x49574648u /* "HFWI" */

enum firmware_image_kind {
	FIRMWARE_IMAGE_BOOTLOADER = 1,
	FIRMWARE_IMAGE_SYSTEM = 2,
	FIRMWARE_IMAGE_APPLICATION = 3,
};

typedef struct __attribute__((packed)) {
	uint32_t magic;
	uint8_t kind;
	uint8_t reserved;
	uint16_t abi_entries; /* system: entries exported; application: entries needed */
	char release[16];     /* system release this image belongs to or was built against */
	char name[24];        /* application name; "" for system images */
} firmware_image_info_t;
_Static_assert(sizeof(firmware_image_info_t) == 48, "image info");

/* The system ABI: entries in the order releases added them. */
enum system_abi_entry {
	SYSTEM_ABI_LOG = 0,
	SYSTEM_ABI_MILLIS = 1,
	SYSTEM_ABI_DEVICE_ID = 2,
	SYSTEM_ABI_RELEASE = 3,
	SYSTEM_ABI_PUBLISH = 4,
	SYSTEM_ABI_RANDOM = 5,
	SYSTEM_ABI_UPTIME = 6,
	SYSTEM_ABI_RESET_REASON = 7, /* 1.0.0 exports 0..7 */
	SYSTEM_ABI_LOG_VALUE = 8,    /* from 1.1.0 */
	SYSTEM_ABI_FREE_MEMORY = 9,  /* from 1.2.0 */
	SYSTEM_ABI_RTC_EPOCH = 10,   /* from 2.0.0-rc.1 */
	SYSTEM_ABI_TIME_TRAVEL = 11, /* from 2.0.0 */
	SYSTEM_ABI_TEMPERATURE = 12, /* from 2.1.0 */
	SYSTEM_ABI_COUNT = 13,
};

#endif
