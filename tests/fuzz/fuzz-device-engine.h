/*
 * The input language of fuzz-device-engine.c, shared with make-engine-seeds.c
 * (which writes its seed corpus).  An input is one configuration byte, then
 * operations: an opcode byte (its low four bits select the operation), then
 * that operation's parameter bytes.  A missing parameter byte reads as 0, so
 * every byte string is a valid input.
 *
 * The fake device on each port keeps a model of what it runs (bootloader,
 * system parts, application, as the firmware build's releases make them):
 * FE_DESCRIBE answers with it, FE_HELLO's "model" mode says safe mode when
 * a dependency fails, and FE_RESULT 0 installs the module healerd's last
 * BEGIN named, so a heal can run to its end.
 */
#pragma once

/* Configuration byte. */
#define FE_CFG_AUTO_HEAL_OFF    0x01 /* auto-heal = false */
#define FE_CFG_JOBS_SHIFT       1    /* 2 bits: max-concurrent-jobs (0: unlimited) */
#define FE_CFG_ATTEMPTS_SHIFT   3    /* 2 bits: max-attempts - 1 */
#define FE_CFG_ALLOW_PRERELEASE 0x20
#define FE_CFG_APP_SHIFT        6 /* 2 bits: the application both devices start with (FE_APP_*) */

enum {
	FE_HELLO,         /* p: id (bits 0-1), mode (bits 2-3: FE_MODE_*), reset reason (bits 4-6) */
	FE_DESCRIBE,      /* the model's describe */
	FE_READY,         /* p0: offset (bits 0-1: FE_AT_*), window - 1 (bits 2-4), refuse (bit 7);
	                   * p1: max_data (bits 4-5: 2044, 512, 64, 1), refusal (bits 0-2) */
	FE_ACK,           /* p: which offset (bits 0-2: FE_ACK_*), steps of 64 (bits 3-7) */
	FE_RESULT,        /* p: status (bits 0-2: 0, 0, -104, -1340, -105, -1330, 1, -100) */
	FE_ERROR,         /* p: code (bits 0-1), request type (bits 2-4), then len, text */
	FE_LOG,           /* p: level, then len, text */
	FE_STATUS,        /* p: mode (bits 0-2), reason (bits 3-5), then led */
	FE_RAW,           /* type, flags, len, body: any frame, as the decoder would hand it over */
	FE_DESCRIBE_TEXT, /* len (2 bytes, little-endian), JSON text */
	FE_TICK,          /* p: 0xFF fires every pending timer, else the p-th (mod count) by age */
	FE_UNPLUG,        /* the current port's transport closes (unplugged) */
	FE_PLUG,          /* p: port (bit 0): a new transport there, if it has none; it becomes current */
	FE_MODEL,         /* p: 0-4 sets the application (FE_APP_*); 5, 6, 7 set the release in bits 3-5
	                   * (mod 6: 1.0.0 ... 2.1.0) of every system module, system-part 1 alone, or
	                   * system-part 2 alone */
	FE_FACE,          /* p: an engine call as the D-Bus face makes (bits 0-2: FE_FACE_*) */
	FE_SELECT,        /* p: port (bit 0) the next operations talk to */
};

enum { FE_MODE_MODEL, FE_MODE_NORMAL, FE_MODE_SAFE_REQUESTED, FE_MODE_DFU };
enum { FE_AT_ZERO, FE_AT_ACKED, FE_AT_ALL, FE_AT_HALF };
enum {
	FE_ACK_LAST_DATA, /* the end of the last DATA healerd sent */
	FE_ACK_AGAIN,     /* the last ACK again (a duplicate) */
	FE_ACK_FIRST,     /* the end of the oldest DATA sent since the last ACK */
	FE_ACK_ALL,       /* the module's size */
	FE_ACK_ZERO,
	FE_ACK_STEP,   /* the last ACK plus 64 times bits 3-7 */
	FE_ACK_BEFORE, /* the end of the last DATA less one */
	FE_ACK_RAW,    /* then 4 bytes, little-endian */
};
enum { FE_APP_HEARTBEAT, FE_APP_TINKER, FE_APP_TRAVEL, FE_APP_SENSOR, FE_APP_NONE };
enum {
	FE_FACE_LIST,
	FE_FACE_GET,
	FE_FACE_PLAN,
	FE_FACE_HEAL,
	FE_FACE_HEAL_ALL,
	FE_FACE_RESET,
	FE_FACE_SUMMARY,
	FE_FACE_STORE_CHANGED,
};

#define FE_PORTS 2
#define FE_IDS   4
