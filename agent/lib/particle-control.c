#include "particle-control.h"

#include <string.h>

#include "healer-error.h"
#include "name-table.h"

static const char *const service_names[] = {NULL, "INIT", "CHECK", "SEND", "RECV", "RESET"};
static const char *const status_names[] = {"OK", "ERROR", "PENDING", "BUSY", "NO_MEMORY", "NOT_FOUND"};

const char *
healer_particle_service_to_string(guint service)
{
	return NAME_OR_NULL(service_names, service);
}

const char *
healer_particle_status_to_string(guint status)
{
	return NAME_OR_NULL(status_names, status);
}

static guint32
read_le32(const guint8 *p)
{
	return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static guint16
read_le16(const guint8 *p)
{
	return (guint16)(p[0] | p[1] << 8);
}

static void
write_le32(guint8 *p, guint32 v)
{
	p[0] = (guint8)v;
	p[1] = (guint8)(v >> 8);
	p[2] = (guint8)(v >> 16);
	p[3] = (guint8)(v >> 24);
}

static void
write_le16(guint8 *p, guint16 v)
{
	p[0] = (guint8)v;
	p[1] = (guint8)(v >> 8);
}

#define KNOWN_FIELDS                                                                                                   \
	(HEALER_PARTICLE_REPLY_FIELD_STATUS | HEALER_PARTICLE_REPLY_FIELD_ID | HEALER_PARTICLE_REPLY_FIELD_SIZE |      \
	 HEALER_PARTICLE_REPLY_FIELD_RESULT)

gboolean
healer_particle_reply_parse(const guint8 *data, gsize len, HealerParticleReply *reply, GError **error)
{
	gsize need = 6, at = 6;

	memset(reply, 0, sizeof(*reply));
	if (len < 4)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "service reply: %zu byte(s), shorter than its 4-byte field flags", len);
	reply->fields = read_le32(data);
	if ((reply->fields & ~(guint32)KNOWN_FIELDS) != 0)
		return healer_fail(
		        error, HEALER_ERROR_INVALID_DATA,
		        "service reply: field flags 0x%08x name fields this protocol does not have (known: 0x%02x)",
		        reply->fields, KNOWN_FIELDS);
	if (!(reply->fields & HEALER_PARTICLE_REPLY_FIELD_STATUS))
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "service reply: field flags 0x%08x lack STATUS, which every reply carries",
		                   reply->fields);
	if (reply->fields & HEALER_PARTICLE_REPLY_FIELD_ID)
		need += 2;
	if (reply->fields & HEALER_PARTICLE_REPLY_FIELD_SIZE)
		need += 4;
	if (reply->fields & HEALER_PARTICLE_REPLY_FIELD_RESULT)
		need += 4;
	if (len < need)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "service reply: %zu byte(s), but its field flags 0x%02x need %zu", len,
		                   reply->fields, need);
	reply->status = read_le16(data + 4);
	if (healer_particle_status_to_string(reply->status) == NULL)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA, "service reply: unknown status %u at byte 4",
		                   reply->status);
	if (reply->fields & HEALER_PARTICLE_REPLY_FIELD_ID) {
		reply->id = read_le16(data + at);
		if (reply->id == 0)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "service reply: request id 0 at byte %zu (ids start at 1)", at);
		at += 2;
	}
	if (reply->fields & HEALER_PARTICLE_REPLY_FIELD_SIZE) {
		reply->size = read_le32(data + at);
		at += 4;
	}
	if (reply->fields & HEALER_PARTICLE_REPLY_FIELD_RESULT)
		reply->result = (gint32)read_le32(data + at);
	return TRUE;
}

gsize
healer_particle_reply_write(const HealerParticleReply *reply, guint8 out[HEALER_PARTICLE_REPLY_MAX_SIZE])
{
	guint32 fields = (reply->fields & KNOWN_FIELDS) | HEALER_PARTICLE_REPLY_FIELD_STATUS;
	gsize at = 6;

	write_le32(out, fields);
	write_le16(out + 4, reply->status);
	if (fields & HEALER_PARTICLE_REPLY_FIELD_ID) {
		write_le16(out + at, reply->id);
		at += 2;
	}
	if (fields & HEALER_PARTICLE_REPLY_FIELD_SIZE) {
		write_le32(out + at, reply->size);
		at += 4;
	}
	if (fields & HEALER_PARTICLE_REPLY_FIELD_RESULT) {
		write_le32(out + at, (guint32)reply->result);
		at += 4;
	}
	return at;
}

static HealerParticleSetup
setup(guint8 request_type, guint8 request, guint16 value, guint16 index, guint16 length)
{
	return (HealerParticleSetup){
	        .request_type = request_type, .request = request, .value = value, .index = index, .length = length};
}

HealerParticleSetup
healer_particle_setup_init(guint16 request_type, guint16 payload_size)
{
	return setup(HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_SERVICE_INIT, payload_size, request_type,
	             HEALER_PARTICLE_MIN_WLENGTH);
}

HealerParticleSetup
healer_particle_setup_check(guint16 id)
{
	return setup(HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_SERVICE_CHECK, 0, id,
	             HEALER_PARTICLE_MIN_WLENGTH);
}

HealerParticleSetup
healer_particle_setup_send(guint16 id, guint16 chunk)
{
	return setup(HEALER_PARTICLE_REQUEST_TYPE_OUT, HEALER_PARTICLE_SERVICE_SEND, 0, id, chunk);
}

HealerParticleSetup
healer_particle_setup_recv(guint16 id, guint16 chunk)
{
	return setup(HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_SERVICE_RECV, 0, id, chunk);
}

HealerParticleSetup
healer_particle_setup_reset(guint16 id)
{
	return setup(HEALER_PARTICLE_REQUEST_TYPE_IN, HEALER_PARTICLE_SERVICE_RESET, 0, id,
	             HEALER_PARTICLE_MIN_WLENGTH);
}

const char *
healer_particle_request_type_to_string(guint type)
{
	switch (type) {
	case HEALER_PARTICLE_REQUEST_GET_DEVICE_ID:
		return "GET_DEVICE_ID";
	case HEALER_PARTICLE_REQUEST_GET_SYSTEM_VERSION:
		return "GET_SYSTEM_VERSION";
	case HEALER_PARTICLE_REQUEST_RESET:
		return "RESET";
	case HEALER_PARTICLE_REQUEST_DFU_MODE:
		return "DFU_MODE";
	case HEALER_PARTICLE_REQUEST_SAFE_MODE:
		return "SAFE_MODE";
	case HEALER_PARTICLE_REQUEST_GET_DEVICE_MODE:
		return "GET_DEVICE_MODE";
	case HEALER_PARTICLE_REQUEST_GET_PROTECTED_STATE:
		return "GET_PROTECTED_STATE";
	case HEALER_PARTICLE_REQUEST_GET_MODULE_INFO:
		return "GET_MODULE_INFO";
	case HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE:
		return "START_FIRMWARE_UPDATE";
	case HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE:
		return "FINISH_FIRMWARE_UPDATE";
	case HEALER_PARTICLE_REQUEST_CANCEL_FIRMWARE_UPDATE:
		return "CANCEL_FIRMWARE_UPDATE";
	case HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA:
		return "FIRMWARE_UPDATE_DATA";
	default:
		return NULL;
	}
}

typedef struct {
	gint32 code;
	const char *name;
} ResultName;

static const ResultName result_names[] = {
        {HEALER_PARTICLE_RESULT_OK, "OK"},
        {HEALER_PARTICLE_RESULT_ERROR, "ERROR"},
        {HEALER_PARTICLE_RESULT_BUSY, "BUSY"},
        {HEALER_PARTICLE_RESULT_NOT_SUPPORTED, "NOT_SUPPORTED"},
        {HEALER_PARTICLE_RESULT_NOT_ALLOWED, "NOT_ALLOWED"},
        {HEALER_PARTICLE_RESULT_CANCELLED, "CANCELLED"},
        {HEALER_PARTICLE_RESULT_ABORTED, "ABORTED"},
        {HEALER_PARTICLE_RESULT_TIMEOUT, "TIMEOUT"},
        {HEALER_PARTICLE_RESULT_NOT_FOUND, "NOT_FOUND"},
        {HEALER_PARTICLE_RESULT_ALREADY_EXISTS, "ALREADY_EXISTS"},
        {HEALER_PARTICLE_RESULT_TOO_LARGE, "TOO_LARGE"},
        {HEALER_PARTICLE_RESULT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
        {HEALER_PARTICLE_RESULT_INVALID_STATE, "INVALID_STATE"},
        {HEALER_PARTICLE_RESULT_IO, "IO"},
        {HEALER_PARTICLE_RESULT_NETWORK, "NETWORK"},
        {HEALER_PARTICLE_RESULT_PROTOCOL, "PROTOCOL"},
        {HEALER_PARTICLE_RESULT_INTERNAL, "INTERNAL"},
        {HEALER_PARTICLE_RESULT_NO_MEMORY, "NO_MEMORY"},
        {HEALER_PARTICLE_RESULT_INVALID_ARGUMENT, "INVALID_ARGUMENT"},
        {HEALER_PARTICLE_RESULT_BAD_DATA, "BAD_DATA"},
        {HEALER_PARTICLE_RESULT_OUT_OF_RANGE, "OUT_OF_RANGE"},
        {HEALER_PARTICLE_RESULT_OTA_MODULE_NOT_FOUND, "OTA_MODULE_NOT_FOUND"},
        {HEALER_PARTICLE_RESULT_OTA_UNSUPPORTED_MODULE, "OTA_UNSUPPORTED_MODULE"},
        {HEALER_PARTICLE_RESULT_OTA_VALIDATION_FAILED, "OTA_VALIDATION_FAILED"},
        {HEALER_PARTICLE_RESULT_OTA_INTEGRITY_CHECK_FAILED, "OTA_INTEGRITY_CHECK_FAILED"},
        {HEALER_PARTICLE_RESULT_OTA_DEPENDENCY_CHECK_FAILED, "OTA_DEPENDENCY_CHECK_FAILED"},
        {HEALER_PARTICLE_RESULT_OTA_INVALID_ADDRESS, "OTA_INVALID_ADDRESS"},
        {HEALER_PARTICLE_RESULT_OTA_INVALID_SIZE, "OTA_INVALID_SIZE"},
        {HEALER_PARTICLE_RESULT_OTA_INVALID_PLATFORM, "OTA_INVALID_PLATFORM"},
        {HEALER_PARTICLE_RESULT_OTA_INVALID_FORMAT, "OTA_INVALID_FORMAT"},
        {HEALER_PARTICLE_RESULT_OTA_UPDATES_DISABLED, "OTA_UPDATES_DISABLED"},
        {HEALER_PARTICLE_RESULT_OTA, "OTA"},
        {HEALER_PARTICLE_RESULT_PROTECTED, "PROTECTED"},
        {HEALER_PARTICLE_RESULT_KEY_MISMATCH, "KEY_MISMATCH"},
        {HEALER_PARTICLE_RESULT_INVALID_SIGNATURE, "INVALID_SIGNATURE"},
};

const char *
healer_particle_result_to_string(gint32 result)
{
	for (guint i = 0; i < G_N_ELEMENTS(result_names); i++)
		if (result_names[i].code == result)
			return result_names[i].name;
	return NULL;
}

char *
healer_particle_result_describe(gint32 result)
{
	const char *name = healer_particle_result_to_string(result);

	switch (result) {
	case HEALER_PARTICLE_RESULT_PROTECTED:
		return g_strdup(
		        "the device is protected (Device Protection, PROTECTED -1801): it accepts firmware only "
		        "from the Particle cloud or after service mode is entered with the product's "
		        "credentials; healerd will not retry");
	case HEALER_PARTICLE_RESULT_OTA_UPDATES_DISABLED:
		return g_strdup(
		        "the application disabled updates (System.disableUpdates(), OTA_UPDATES_DISABLED -1380): "
		        "put the device in safe mode or DFU mode (hold MODE through a reset) or change the "
		        "application; healerd will not retry");
	default:
		break;
	}
	if (name != NULL)
		return g_strdup_printf("%s (%d)", name, result);
	return g_strdup_printf("result %d", result);
}

GBytes *
healer_particle_message_pack(const ProtobufCMessage *message)
{
	gsize size = protobuf_c_message_get_packed_size(message);
	/* A message with no field set packs to 0 bytes: g_malloc(0) would give NULL. */
	guint8 *bytes = g_malloc(MAX(size, 1));

	protobuf_c_message_pack(message, bytes);
	return g_bytes_new_take(bytes, size);
}
