/*
 * Particle's USB control-request ("service request") protocol, the parts that are bytes and
 * names: the setup packets of INIT/CHECK/SEND/RECV/RESET and the raw 0x50 requests, the
 * variable-length service reply, the request types healing uses, and the result codes a device
 * answers with (Device OS system_error_t).  No USB here: the daemon's Particle client sends what
 * these build on the main loop, and usbemu's Particle model answers with the same codec.
 *
 * Facts: docs/particle.md, "The control-request protocol".
 */
#pragma once

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

/* bmRequestType: vendor, recipient device (no interface is claimed for these). */
#define HEALER_PARTICLE_REQUEST_TYPE_IN  0xC0
#define HEALER_PARTICLE_REQUEST_TYPE_OUT 0x40

/* The service requests (bRequest); 0x01..0x0F are reserved for them on the device. */
typedef enum {
	HEALER_PARTICLE_SERVICE_INIT = 1,  /* IN, wIndex = request type, wValue = payload size */
	HEALER_PARTICLE_SERVICE_CHECK = 2, /* IN, wIndex = request id */
	HEALER_PARTICLE_SERVICE_SEND = 3,  /* OUT, wIndex = request id, data = a payload chunk */
	HEALER_PARTICLE_SERVICE_RECV = 4,  /* IN, wIndex = request id, wLength = a reply chunk */
	HEALER_PARTICLE_SERVICE_RESET = 5, /* IN, wIndex = request id, or 0: every request */
} HealerParticleService;

/* "INIT" ... "RESET"; NULL for another number. */
const char *healer_particle_service_to_string(guint service);

/* The one raw vendor request the device knows (no service protocol), and its wIndex values. */
#define HEALER_PARTICLE_RAW_REQUEST        0x50
#define HEALER_PARTICLE_RAW_DEVICE_ID      20 /* IN: the device id in hex */
#define HEALER_PARTICLE_RAW_SYSTEM_VERSION 30 /* IN: "6.2.0", cut at the first NUL */
#define HEALER_PARTICLE_RAW_RESET          40 /* OUT: immediate hard reset */

/* INIT, CHECK and RESET are stalled with a wLength below this; it is also their wLength. */
#define HEALER_PARTICLE_MIN_WLENGTH 64
/* The most a SEND or RECV carries (a host's choice: particle-usb's, under USB's 4096-byte control transfer). */
#define HEALER_PARTICLE_MAX_CHUNK 4096
/* The most payload a request carries (wValue is 16 bits). */
#define HEALER_PARTICLE_MAX_PAYLOAD 65535
/* Payloads up to this use a buffer the device holds ready: INIT answers OK, not PENDING. */
#define HEALER_PARTICLE_POOLED_PAYLOAD 64
/* Requests a device serves at once; INIT beyond them is answered BUSY. */
#define HEALER_PARTICLE_MAX_ACTIVE 4

/* The service reply's status. */
typedef enum {
	HEALER_PARTICLE_STATUS_OK = 0,
	HEALER_PARTICLE_STATUS_ERROR = 1,
	HEALER_PARTICLE_STATUS_PENDING = 2,
	HEALER_PARTICLE_STATUS_BUSY = 3,
	HEALER_PARTICLE_STATUS_NO_MEMORY = 4,
	HEALER_PARTICLE_STATUS_NOT_FOUND = 5,
} HealerParticleStatus;

/* "OK" ... "NOT_FOUND"; NULL for another number. */
const char *healer_particle_status_to_string(guint status);

/* The reply to INIT, CHECK and RESET: little-endian u32 field flags, u16 status, then the fields flagged. */
#define HEALER_PARTICLE_REPLY_FIELD_STATUS 0x01
#define HEALER_PARTICLE_REPLY_FIELD_ID     0x02
#define HEALER_PARTICLE_REPLY_FIELD_SIZE   0x04
#define HEALER_PARTICLE_REPLY_FIELD_RESULT 0x08
#define HEALER_PARTICLE_REPLY_MAX_SIZE     16 /* every field present */

typedef struct {
	guint32 fields; /* HEALER_PARTICLE_REPLY_FIELD_*: which members below were present */
	guint16 status; /* HealerParticleStatus, or a number this build does not know */
	guint16 id;     /* the request id (INIT) */
	guint32 size;   /* bytes of reply payload to RECV */
	gint32 result;  /* the handler's result: 0, or a HealerParticleResult */
} HealerParticleReply;

/*
 * Reads a service reply; FALSE with HEALER_ERROR_INVALID_DATA saying what is wrong (too short for
 * the fields it flags, no STATUS field, unknown field bits, an unknown status, id 0) and where.
 * Bytes after the flagged fields are ignored, as the device's own hosts ignore them.
 */
gboolean healer_particle_reply_parse(const guint8 *data, gsize len, HealerParticleReply *reply, GError **error);

/* Writes `reply` (the fields it flags, STATUS always) into `out`; returns the length (<=
 * HEALER_PARTICLE_REPLY_MAX_SIZE). */
gsize healer_particle_reply_write(const HealerParticleReply *reply, guint8 out[HEALER_PARTICLE_REPLY_MAX_SIZE]);

/* The setup packet of a service request (wLength: 64 for INIT/CHECK/RESET, the chunk for SEND/RECV). */
typedef struct {
	guint8 request_type;
	guint8 request;
	guint16 value;
	guint16 index;
	guint16 length;
} HealerParticleSetup;

HealerParticleSetup healer_particle_setup_init(guint16 request_type, guint16 payload_size);
HealerParticleSetup healer_particle_setup_check(guint16 id);
HealerParticleSetup healer_particle_setup_send(guint16 id, guint16 chunk);
HealerParticleSetup healer_particle_setup_recv(guint16 id, guint16 chunk);
HealerParticleSetup healer_particle_setup_reset(guint16 id);

/* The request types (ctrl_request_type) healing uses. */
typedef enum {
	HEALER_PARTICLE_REQUEST_GET_DEVICE_ID = 20,
	HEALER_PARTICLE_REQUEST_GET_SYSTEM_VERSION = 30,
	HEALER_PARTICLE_REQUEST_RESET = 40,
	HEALER_PARTICLE_REQUEST_DFU_MODE = 50,
	HEALER_PARTICLE_REQUEST_SAFE_MODE = 60,
	HEALER_PARTICLE_REQUEST_GET_DEVICE_MODE = 72,
	HEALER_PARTICLE_REQUEST_GET_PROTECTED_STATE = 76,
	HEALER_PARTICLE_REQUEST_GET_MODULE_INFO = 90,
	HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE = 250,
	HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE = 251,
	HEALER_PARTICLE_REQUEST_CANCEL_FIRMWARE_UPDATE = 252,
	HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA = 253,
} HealerParticleRequestType;

/* "GET_MODULE_INFO", ...; NULL for a type this build does not use. */
const char *healer_particle_request_type_to_string(guint type);

/* Results (Device OS system_error_t) the daemon acts on or names; any other is shown as its number. */
typedef enum {
	HEALER_PARTICLE_RESULT_OK = 0,
	HEALER_PARTICLE_RESULT_ERROR = -100,
	HEALER_PARTICLE_RESULT_BUSY = -110,
	HEALER_PARTICLE_RESULT_NOT_SUPPORTED = -120,
	HEALER_PARTICLE_RESULT_NOT_ALLOWED = -130,
	HEALER_PARTICLE_RESULT_CANCELLED = -140,
	HEALER_PARTICLE_RESULT_ABORTED = -150,
	HEALER_PARTICLE_RESULT_TIMEOUT = -160,
	HEALER_PARTICLE_RESULT_NOT_FOUND = -170,
	HEALER_PARTICLE_RESULT_ALREADY_EXISTS = -180,
	HEALER_PARTICLE_RESULT_TOO_LARGE = -190,
	HEALER_PARTICLE_RESULT_LIMIT_EXCEEDED = -200,
	HEALER_PARTICLE_RESULT_INVALID_STATE = -210,
	HEALER_PARTICLE_RESULT_IO = -220,
	HEALER_PARTICLE_RESULT_NETWORK = -230,
	HEALER_PARTICLE_RESULT_PROTOCOL = -240,
	HEALER_PARTICLE_RESULT_INTERNAL = -250,
	HEALER_PARTICLE_RESULT_NO_MEMORY = -260,
	HEALER_PARTICLE_RESULT_INVALID_ARGUMENT = -270,
	HEALER_PARTICLE_RESULT_BAD_DATA = -280,
	HEALER_PARTICLE_RESULT_OUT_OF_RANGE = -290,
	HEALER_PARTICLE_RESULT_OTA_MODULE_NOT_FOUND = -1300,
	HEALER_PARTICLE_RESULT_OTA_UNSUPPORTED_MODULE = -1310,
	HEALER_PARTICLE_RESULT_OTA_VALIDATION_FAILED = -1320,
	HEALER_PARTICLE_RESULT_OTA_INTEGRITY_CHECK_FAILED = -1330,
	HEALER_PARTICLE_RESULT_OTA_DEPENDENCY_CHECK_FAILED = -1340,
	HEALER_PARTICLE_RESULT_OTA_INVALID_ADDRESS = -1350,
	HEALER_PARTICLE_RESULT_OTA_INVALID_SIZE = -1351,
	HEALER_PARTICLE_RESULT_OTA_INVALID_PLATFORM = -1360,
	HEALER_PARTICLE_RESULT_OTA_INVALID_FORMAT = -1370,
	HEALER_PARTICLE_RESULT_OTA_UPDATES_DISABLED = -1380,
	HEALER_PARTICLE_RESULT_OTA = -1390,
	HEALER_PARTICLE_RESULT_PROTECTED = -1801,
	HEALER_PARTICLE_RESULT_KEY_MISMATCH = -1802,
	HEALER_PARTICLE_RESULT_INVALID_SIGNATURE = -1803,
} HealerParticleResult;

/* A request's payload or a reply: `message` (one of particle-control.pb-c.h's) encoded, as GBytes. */
GBytes *healer_particle_message_pack(const ProtobufCMessage *message);

/* "OTA_DEPENDENCY_CHECK_FAILED", ...; NULL for a code not in the list. */
const char *healer_particle_result_to_string(gint32 result);
/*
 * What a technician reads: "the device is protected (Device Protection): ..." for -1801 and
 * "the application disabled updates ..." for -1380, with what to do; the name and number
 * otherwise ("OUT_OF_RANGE (-290)", "result -12345").  Newly allocated.
 */
char *healer_particle_result_describe(gint32 result);

G_END_DECLS
