/*
 * The firmware module format: the one definition of every byte a module
 * carries on flash, shared by the device firmware and the gateway agent.
 *
 * A module is laid out as
 *
 *   [optional image header: Cortex-M vector table or Realtek header]
 *   prefix (24 bytes) [prefix extensions, ending with END]
 *   [compressed-module header, when COMPRESSED]
 *   payload
 *   [suffix extensions] suffix base (36 or 40 bytes)
 *   CRC-32 (4 bytes, big-endian)
 *
 * and occupies exactly (end_address - start_address + 4) bytes: the suffix
 * ends at end_address and the CRC follows it.  Multi-byte fields are
 * little-endian except the trailing CRC, which real devices store
 * most-significant byte first.  The layout follows Particle Device OS's
 * module_info (see docs/module-format.md for the facts and their sources).
 *
 * This header is freestanding C11: no libc beyond <stdint.h>, no heap, so
 * the bootloader can use it as is.  Code that reads modules from outside
 * (the agent) must not overlay these structs on untrusted buffers; it reads
 * the documented offsets byte by byte.  The structs and static asserts pin
 * the offsets for the firmware, which builds its own headers with them.
 */
#ifndef HEALER_MODULE_FORMAT_H
#define HEALER_MODULE_FORMAT_H

#include <stdint.h>

/* ---- prefix --------------------------------------------------------- */

#define MODULE_PREFIX_SIZE 24u

/* Byte offsets inside the prefix. */
#define MODULE_PREFIX_OFF_START_ADDRESS 0u
#define MODULE_PREFIX_OFF_END_ADDRESS   4u
#define MODULE_PREFIX_OFF_RESERVED      8u /* MCU target; 0 = main MCU */
#define MODULE_PREFIX_OFF_FLAGS         9u
#define MODULE_PREFIX_OFF_VERSION       10u
#define MODULE_PREFIX_OFF_PLATFORM_ID   12u
#define MODULE_PREFIX_OFF_FUNCTION      14u
#define MODULE_PREFIX_OFF_INDEX         15u
#define MODULE_PREFIX_OFF_DEPENDENCY    16u
#define MODULE_PREFIX_OFF_DEPENDENCY2   20u

/* A dependency slot: function (0 = none), index, minimum version. */
#define MODULE_DEPENDENCY_SIZE         4u
#define MODULE_PREFIX_DEPENDENCY_SLOTS 2u

typedef struct __attribute__((packed)) {
	uint8_t function;
	uint8_t index;
	uint16_t version;
} module_dependency_t;

typedef struct __attribute__((packed)) {
	uint32_t start_address;
	uint32_t end_address;
	uint8_t reserved;
	uint8_t flags;
	uint16_t version;
	uint16_t platform_id;
	uint8_t function;
	uint8_t index;
	module_dependency_t dependency;
	module_dependency_t dependency2;
} module_prefix_t;

_Static_assert(sizeof(module_dependency_t) == MODULE_DEPENDENCY_SIZE, "dependency is 4 bytes");
_Static_assert(sizeof(module_prefix_t) == MODULE_PREFIX_SIZE, "prefix is 24 bytes");
_Static_assert(__builtin_offsetof(module_prefix_t, flags) == MODULE_PREFIX_OFF_FLAGS, "flags");
_Static_assert(__builtin_offsetof(module_prefix_t, version) == MODULE_PREFIX_OFF_VERSION, "version");
_Static_assert(__builtin_offsetof(module_prefix_t, platform_id) == MODULE_PREFIX_OFF_PLATFORM_ID, "platform");
_Static_assert(__builtin_offsetof(module_prefix_t, function) == MODULE_PREFIX_OFF_FUNCTION, "function");
_Static_assert(__builtin_offsetof(module_prefix_t, dependency2) == MODULE_PREFIX_OFF_DEPENDENCY2, "dependency2");

/* Where a prefix may sit from the start of a module image. */
#define MODULE_PREFIX_OFFSET_PLAIN         0x000u
#define MODULE_PREFIX_OFFSET_REALTEK       0x020u /* after a 32-byte Realtek image header */
#define MODULE_PREFIX_OFFSET_BLUZ          0x0C0u /* Bluz system part (platform 103) */
#define MODULE_PREFIX_OFFSET_CORE          0x10Cu /* Core (platform 0) monolithic image */
#define MODULE_PREFIX_OFFSET_STM32_VECTORS 0x184u /* after an STM32F2 vector table (Gen 2) */
#define MODULE_PREFIX_OFFSET_NRF52_VECTORS 0x200u /* after an nRF52840 vector table (Gen 3) */

/*
 * Devices decide "this image starts with a vector table" by looking at the
 * first word: an initial stack pointer in SRAM matches this mask test.
 */
#define MODULE_VECTOR_SP_MASK  0x2FF10000u
#define MODULE_VECTOR_SP_VALUE 0x20000000u

/* ---- functions, stores, flags ------------------------------------- */

enum module_function {
	MODULE_FUNCTION_NONE = 0,
	MODULE_FUNCTION_RESOURCE = 1,
	MODULE_FUNCTION_BOOTLOADER = 2,
	MODULE_FUNCTION_MONO_FIRMWARE = 3,
	MODULE_FUNCTION_SYSTEM_PART = 4,
	MODULE_FUNCTION_USER_PART = 5,
	MODULE_FUNCTION_SETTINGS = 6,
	MODULE_FUNCTION_NCP_FIRMWARE = 7,
	MODULE_FUNCTION_RADIO_STACK = 8,
	MODULE_FUNCTION_ASSET = 9,
	MODULE_FUNCTION_MAX = MODULE_FUNCTION_ASSET,
};

enum module_store {
	MODULE_STORE_MAIN = 0,
	MODULE_STORE_FACTORY = 1,
	MODULE_STORE_BACKUP = 2,
	MODULE_STORE_SCRATCHPAD = 3,
};

enum module_flag {
	/* Prefix (and suffix) are not written to the target; payload only. */
	MODULE_FLAG_DROP_MODULE_INFO = 0x01,
	/* Payload is raw Deflate behind a module_compressed_header_t. */
	MODULE_FLAG_COMPRESSED = 0x02,
	/* Another module follows right after this one's CRC. */
	MODULE_FLAG_COMBINED = 0x04,
	MODULE_FLAG_ENCRYPTED = 0x08,
	/* Prefix extensions (TLVs, ending with END) follow the prefix. */
	MODULE_FLAG_PREFIX_EXTENSIONS = 0x10,
};
#define MODULE_FLAGS_KNOWN 0x1Fu

/* ---- extensions (TLV: u16 type, u16 length including this header) -- */

#define MODULE_EXTENSION_HEADER_SIZE 4u

enum module_extension_type {
	MODULE_EXTENSION_END = 0x0000,
	MODULE_EXTENSION_PRODUCT_DATA = 0x0001,     /* u16 0xFFFF, u16 product id, u16 product version */
	MODULE_EXTENSION_DYNAMIC_LOCATION = 0x0002, /* u32 start, u32 dynalib load, u32 dynalib start */
	MODULE_EXTENSION_DEPENDENCY = 0x0003,       /* u8 function, u8 index, u16 version, u32 target */
	MODULE_EXTENSION_HASH = 0x0010,             /* u8 type (0 = SHA-256), u8 length, hash */
	MODULE_EXTENSION_NAME = 0x0011,             /* string, length given by the TLV */
	MODULE_EXTENSION_ASSET_DEPENDENCY = 0x0012, /* hash (type, length, 32 bytes) + name */
	MODULE_EXTENSION_SECURITY_MODE = 0x0013,    /* u8 mode [+ DER certificate] */
	MODULE_EXTENSION_ASSET_TYPE = 0x0014,       /* u8 asset type */
	MODULE_EXTENSION_INVALID = 0xFFFF,
};

/* Exact TLV lengths (header included) of the fixed-size extensions. */
#define MODULE_EXTENSION_PRODUCT_DATA_LENGTH     10u
#define MODULE_EXTENSION_DYNAMIC_LOCATION_LENGTH 16u
#define MODULE_EXTENSION_DEPENDENCY_LENGTH       12u
#define MODULE_EXTENSION_HASH_MIN_LENGTH         6u

/* ---- compressed module header (after the prefix and its extensions) */

#define MODULE_COMPRESSED_HEADER_SIZE  8u
#define MODULE_COMPRESSION_RAW_DEFLATE 0u

typedef struct __attribute__((packed)) {
	uint16_t header_size;
	uint8_t method;
	uint8_t window_bits; /* 8..15; 0 = 15 */
	uint32_t original_size;
} module_compressed_header_t;
_Static_assert(sizeof(module_compressed_header_t) == MODULE_COMPRESSED_HEADER_SIZE, "8 bytes");

/* ---- suffix ---------------------------------------------------------- */

/*
 * Read backwards from the end of the module.  Offsets are negative
 * distances from the end (the CRC's last byte is at -1).
 */
#define MODULE_CRC_SIZE                        4u
#define MODULE_SHA256_SIZE                     32u
#define MODULE_SUFFIX_BASE_SIZE                36u /* reserved, SHA-256, size */
#define MODULE_SUFFIX_PRODUCT_SIZE             40u /* + product id, product version */
#define MODULE_SUFFIX_FROM_END_SIZE            6u  /* u16 suffix size at end - 6 */
#define MODULE_SUFFIX_FROM_END_SHA256          38u /* SHA-256 at end - 38 */
#define MODULE_SUFFIX_FROM_END_RESERVED        40u /* u16 reserved at end - 40 */
#define MODULE_SUFFIX_FROM_END_PRODUCT_VERSION 42u
#define MODULE_SUFFIX_FROM_END_PRODUCT_ID      44u

/* Product id/version value of modules that belong to no product. */
#define MODULE_PRODUCT_NONE 0xFFFFu

/* ---- integrity rules ------------------------------------------------- */
/*
 * CRC-32 (IEEE 802.3, reflected 0xEDB88320, init and final XOR 0xFFFFFFFF)
 * over every byte of the module but the last four, stored big-endian in
 * those four.
 *
 * SHA-256 over every byte before the SHA field ([0, length - 38)), except
 * for DROP_MODULE_INFO images, whose SHA covers the payload only: from the
 * end of the prefix to the start of the suffix.
 */

/* ---- device-side validation results (describe "vc"/"vv") ------------ */

enum module_validation {
	MODULE_VALIDATION_PASSED = 0x00,
	MODULE_VALIDATION_INTEGRITY = 0x02,
	MODULE_VALIDATION_DEPENDENCIES = 0x04,
	MODULE_VALIDATION_RANGE = 0x08,
	MODULE_VALIDATION_PLATFORM = 0x10,
	MODULE_VALIDATION_PRODUCT = 0x20,
	MODULE_VALIDATION_DEPENDENCIES_FULL = 0x40,
};

/* ---- update errors the device answers with --------------------------- */

enum module_update_error {
	MODULE_UPDATE_ERROR_GENERIC = -1320,
	MODULE_UPDATE_ERROR_INTEGRITY = -1330,
	MODULE_UPDATE_ERROR_DEPENDENCY = -1340,
	MODULE_UPDATE_ERROR_ADDRESS = -1350,
	MODULE_UPDATE_ERROR_PLATFORM = -1360,
	MODULE_UPDATE_ERROR_FORMAT = -1370,
};

#endif /* HEALER_MODULE_FORMAT_H */
