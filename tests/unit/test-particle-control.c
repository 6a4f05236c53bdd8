/*
 * Particle's control-request codec (particle-control.h): the service reply written and read back
 * for every combination of fields, byte for byte against the wire layout, each refusal with its
 * whole message, the setup packets field by field, and every name and the texts a technician
 * reads for Device Protection and disabled updates.
 */
#include <string.h>

#include "healer-error.h"
#include "particle-control.h"

static void
expect_error(gboolean ok, GError **error, const char *message)
{
	g_assert_false(ok);
	g_assert_error(*error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr((*error)->message, ==, message);
	g_clear_error(error);
}

/* ---- the service reply ------------------------------------------------------------------------ */

static void
test_reply_bytes(void)
{
	/* Every field, each value with distinct bytes, so a byte out of place shows. */
	HealerParticleReply reply = {
	        .fields = 0x0F,
	        .status = HEALER_PARTICLE_STATUS_PENDING,
	        .id = 0x1234,
	        .size = 0x05060708,
	        .result = HEALER_PARTICLE_RESULT_PROTECTED,
	};
	const guint8 expected[] = {0x0F, 0x00, 0x00, 0x00, 0x02, 0x00, 0x34, 0x12,
	                           0x08, 0x07, 0x06, 0x05, 0xF7, 0xF8, 0xFF, 0xFF};
	guint8 out[HEALER_PARTICLE_REPLY_MAX_SIZE];
	HealerParticleReply back;

	g_assert_cmpuint(healer_particle_reply_write(&reply, out), ==, sizeof(expected));
	g_assert_cmpmem(out, sizeof(expected), expected, sizeof(expected));
	g_assert_true(healer_particle_reply_parse(expected, sizeof(expected), &back, NULL));
	g_assert_cmpuint(back.fields, ==, 0x0F);
	g_assert_cmpuint(back.status, ==, HEALER_PARTICLE_STATUS_PENDING);
	g_assert_cmpuint(back.id, ==, 0x1234);
	g_assert_cmpuint(back.size, ==, 0x05060708);
	g_assert_cmpint(back.result, ==, -1801);
}

static void
test_reply_round_trip(void)
{
	/* Every subset of ID, SIZE, RESULT, with STATUS, and every status. */
	for (guint32 extra = 0; extra < 8; extra++) {
		for (guint status = 0; status <= HEALER_PARTICLE_STATUS_NOT_FOUND; status++) {
			HealerParticleReply reply = {
			        .fields = HEALER_PARTICLE_REPLY_FIELD_STATUS | extra << 1,
			        .status = (guint16)status,
			        .id = 0xBEEF,
			        .size = 0xCAFEF00D,
			        .result = -1340,
			};
			guint8 out[HEALER_PARTICLE_REPLY_MAX_SIZE];
			gsize expected_len = 6 + ((extra & 1) ? 2 : 0) + ((extra & 2) ? 4 : 0) + ((extra & 4) ? 4 : 0);
			gsize len = healer_particle_reply_write(&reply, out);
			HealerParticleReply back;
			g_autoptr(GError) error = NULL;

			g_assert_cmpuint(len, ==, expected_len);
			g_assert_true(healer_particle_reply_parse(out, len, &back, &error));
			g_assert_no_error(error);
			g_assert_cmpuint(back.fields, ==, reply.fields);
			g_assert_cmpuint(back.status, ==, status);
			g_assert_cmpuint(back.id, ==, (extra & 1) ? 0xBEEF : 0);
			g_assert_cmpuint(back.size, ==, (extra & 2) ? 0xCAFEF00D : 0);
			g_assert_cmpint(back.result, ==, (extra & 4) ? -1340 : 0);
		}
	}
}

static void
test_reply_write_normalises(void)
{
	/* STATUS is always written; bits the protocol does not have never are. */
	HealerParticleReply reply = {.fields = 0xF0 | HEALER_PARTICLE_REPLY_FIELD_RESULT, .status = 0, .result = 7};
	const guint8 expected[] = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00};
	guint8 out[HEALER_PARTICLE_REPLY_MAX_SIZE];

	g_assert_cmpuint(healer_particle_reply_write(&reply, out), ==, sizeof(expected));
	g_assert_cmpmem(out, sizeof(expected), expected, sizeof(expected));
}

static void
test_reply_trailing_bytes(void)
{
	/* A device's hosts read the flagged fields and ignore the rest of the 64-byte data stage. */
	guint8 data[HEALER_PARTICLE_MIN_WLENGTH];
	HealerParticleReply back;

	memset(data, 0xAA, sizeof(data));
	memcpy(data, (const guint8[]){0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00}, 8);
	g_assert_true(healer_particle_reply_parse(data, sizeof(data), &back, NULL));
	g_assert_cmpuint(back.fields, ==, 0x03);
	g_assert_cmpuint(back.status, ==, HEALER_PARTICLE_STATUS_OK);
	g_assert_cmpuint(back.id, ==, 7);
	g_assert_cmpuint(back.size, ==, 0);
	g_assert_cmpint(back.result, ==, 0);
}

static void
test_reply_refusals(void)
{
	const guint8 three[] = {0x01, 0x00, 0x00};
	const guint8 unknown_bit[] = {0x11, 0x00, 0x00, 0x00, 0x00, 0x00};
	const guint8 high_bit[] = {0x01, 0x00, 0x00, 0x80, 0x00, 0x00};
	const guint8 no_status[] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00};
	const guint8 no_status_byte[] = {0x01, 0x00, 0x00, 0x00, 0x00};
	const guint8 all_short[] = {0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
	                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const guint8 result_short[] = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	const guint8 status_6[] = {0x01, 0x00, 0x00, 0x00, 0x06, 0x00};
	const guint8 status_high[] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x01};
	const guint8 id_zero[] = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	g_autoptr(GError) error = NULL;
	HealerParticleReply back;

	expect_error(healer_particle_reply_parse(NULL, 0, &back, &error), &error,
	             "service reply: 0 byte(s), shorter than its 4-byte field flags");
	expect_error(healer_particle_reply_parse(three, sizeof(three), &back, &error), &error,
	             "service reply: 3 byte(s), shorter than its 4-byte field flags");
	expect_error(healer_particle_reply_parse(unknown_bit, sizeof(unknown_bit), &back, &error), &error,
	             "service reply: field flags 0x00000011 name fields this protocol does not have (known: 0x0f)");
	expect_error(healer_particle_reply_parse(high_bit, sizeof(high_bit), &back, &error), &error,
	             "service reply: field flags 0x80000001 name fields this protocol does not have (known: 0x0f)");
	expect_error(healer_particle_reply_parse(no_status, sizeof(no_status), &back, &error), &error,
	             "service reply: field flags 0x00000002 lack STATUS, which every reply carries");
	expect_error(healer_particle_reply_parse(no_status_byte, sizeof(no_status_byte), &back, &error), &error,
	             "service reply: 5 byte(s), but its field flags 0x01 need 6");
	expect_error(healer_particle_reply_parse(all_short, sizeof(all_short), &back, &error), &error,
	             "service reply: 15 byte(s), but its field flags 0x0f need 16");
	expect_error(healer_particle_reply_parse(result_short, sizeof(result_short), &back, &error), &error,
	             "service reply: 9 byte(s), but its field flags 0x09 need 10");
	expect_error(healer_particle_reply_parse(status_6, sizeof(status_6), &back, &error), &error,
	             "service reply: unknown status 6 at byte 4");
	expect_error(healer_particle_reply_parse(status_high, sizeof(status_high), &back, &error), &error,
	             "service reply: unknown status 256 at byte 4");
	expect_error(healer_particle_reply_parse(id_zero, sizeof(id_zero), &back, &error), &error,
	             "service reply: request id 0 at byte 6 (ids start at 1)");
}

/* ---- setup packets ---------------------------------------------------------------------------- */

static void
assert_setup(HealerParticleSetup s, guint8 request_type, guint8 request, guint16 value, guint16 index, guint16 length)
{
	g_assert_cmphex(s.request_type, ==, request_type);
	g_assert_cmpuint(s.request, ==, request);
	g_assert_cmphex(s.value, ==, value);
	g_assert_cmphex(s.index, ==, index);
	g_assert_cmpuint(s.length, ==, length);
}

static void
test_setup_packets(void)
{
	/* INIT: the request type in wIndex and the payload size in wValue; distinct values catch a swap. */
	assert_setup(healer_particle_setup_init(HEALER_PARTICLE_REQUEST_GET_MODULE_INFO, 0), 0xC0, 1, 0, 90, 64);
	assert_setup(healer_particle_setup_init(HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA, 1027), 0xC0, 1, 1027, 253,
	             64);
	assert_setup(healer_particle_setup_init(0xABCD, 0xFFFF), 0xC0, 1, 0xFFFF, 0xABCD, 64);
	assert_setup(healer_particle_setup_check(0x1234), 0xC0, 2, 0, 0x1234, 64);
	assert_setup(healer_particle_setup_send(0x1234, 4096), 0x40, 3, 0, 0x1234, 4096);
	assert_setup(healer_particle_setup_send(7, 1), 0x40, 3, 0, 7, 1);
	assert_setup(healer_particle_setup_recv(0x4321, 4096), 0xC0, 4, 0, 0x4321, 4096);
	assert_setup(healer_particle_setup_recv(9, 33), 0xC0, 4, 0, 9, 33);
	assert_setup(healer_particle_setup_reset(0), 0xC0, 5, 0, 0, 64);
	assert_setup(healer_particle_setup_reset(0x00FF), 0xC0, 5, 0, 0xFF, 64);

	g_assert_cmphex(HEALER_PARTICLE_REQUEST_TYPE_IN, ==, 0xC0);
	g_assert_cmphex(HEALER_PARTICLE_REQUEST_TYPE_OUT, ==, 0x40);
	g_assert_cmphex(HEALER_PARTICLE_RAW_REQUEST, ==, 0x50);
	g_assert_cmpuint(HEALER_PARTICLE_RAW_SYSTEM_VERSION, ==, 30);
	g_assert_cmpuint(HEALER_PARTICLE_RAW_RESET, ==, 40);
}

/* ---- names -------------------------------------------------------------------------------------- */

static void
test_names(void)
{
	const char *services[] = {NULL, "INIT", "CHECK", "SEND", "RECV", "RESET"};
	const char *statuses[] = {"OK", "ERROR", "PENDING", "BUSY", "NO_MEMORY", "NOT_FOUND"};
	const struct {
		guint type;
		const char *name;
	} types[] = {
	        {20, "GET_DEVICE_ID"},
	        {30, "GET_SYSTEM_VERSION"},
	        {40, "RESET"},
	        {50, "DFU_MODE"},
	        {60, "SAFE_MODE"},
	        {72, "GET_DEVICE_MODE"},
	        {76, "GET_PROTECTED_STATE"},
	        {90, "GET_MODULE_INFO"},
	        {250, "START_FIRMWARE_UPDATE"},
	        {251, "FINISH_FIRMWARE_UPDATE"},
	        {252, "CANCEL_FIRMWARE_UPDATE"},
	        {253, "FIRMWARE_UPDATE_DATA"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(services); i++)
		g_assert_cmpstr(healer_particle_service_to_string(i), ==, services[i]);
	g_assert_null(healer_particle_service_to_string(G_N_ELEMENTS(services)));
	g_assert_null(healer_particle_service_to_string(G_MAXUINT));
	for (guint i = 0; i < G_N_ELEMENTS(statuses); i++)
		g_assert_cmpstr(healer_particle_status_to_string(i), ==, statuses[i]);
	g_assert_null(healer_particle_status_to_string(G_N_ELEMENTS(statuses)));
	g_assert_null(healer_particle_status_to_string(G_MAXUINT));
	for (guint i = 0; i < G_N_ELEMENTS(types); i++)
		g_assert_cmpstr(healer_particle_request_type_to_string(types[i].type), ==, types[i].name);
	g_assert_null(healer_particle_request_type_to_string(0));
	g_assert_null(healer_particle_request_type_to_string(91));
}

static void
test_results(void)
{
	const struct {
		gint32 code;
		const char *name;
	} results[] = {
	        {0, "OK"},
	        {-100, "ERROR"},
	        {-110, "BUSY"},
	        {-120, "NOT_SUPPORTED"},
	        {-130, "NOT_ALLOWED"},
	        {-140, "CANCELLED"},
	        {-150, "ABORTED"},
	        {-160, "TIMEOUT"},
	        {-170, "NOT_FOUND"},
	        {-180, "ALREADY_EXISTS"},
	        {-190, "TOO_LARGE"},
	        {-200, "LIMIT_EXCEEDED"},
	        {-210, "INVALID_STATE"},
	        {-220, "IO"},
	        {-230, "NETWORK"},
	        {-240, "PROTOCOL"},
	        {-250, "INTERNAL"},
	        {-260, "NO_MEMORY"},
	        {-270, "INVALID_ARGUMENT"},
	        {-280, "BAD_DATA"},
	        {-290, "OUT_OF_RANGE"},
	        {-1300, "OTA_MODULE_NOT_FOUND"},
	        {-1310, "OTA_UNSUPPORTED_MODULE"},
	        {-1320, "OTA_VALIDATION_FAILED"},
	        {-1330, "OTA_INTEGRITY_CHECK_FAILED"},
	        {-1340, "OTA_DEPENDENCY_CHECK_FAILED"},
	        {-1350, "OTA_INVALID_ADDRESS"},
	        {-1351, "OTA_INVALID_SIZE"},
	        {-1360, "OTA_INVALID_PLATFORM"},
	        {-1370, "OTA_INVALID_FORMAT"},
	        {-1380, "OTA_UPDATES_DISABLED"},
	        {-1390, "OTA"},
	        {-1801, "PROTECTED"},
	        {-1802, "KEY_MISMATCH"},
	        {-1803, "INVALID_SIGNATURE"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(results); i++) {
		g_autofree char *described = healer_particle_result_describe(results[i].code);
		g_assert_cmpstr(healer_particle_result_to_string(results[i].code), ==, results[i].name);
		if (results[i].code != -1801 && results[i].code != -1380) {
			g_autofree char *expected = g_strdup_printf("%s (%d)", results[i].name, results[i].code);
			g_assert_cmpstr(described, ==, expected);
		}
	}
	g_assert_null(healer_particle_result_to_string(1));
	g_assert_null(healer_particle_result_to_string(-12345));
	g_assert_null(healer_particle_result_to_string(G_MININT32));
}

static void
test_result_texts(void)
{
	g_autofree char *protected = healer_particle_result_describe(HEALER_PARTICLE_RESULT_PROTECTED);
	g_autofree char *disabled = healer_particle_result_describe(HEALER_PARTICLE_RESULT_OTA_UPDATES_DISABLED);
	g_autofree char *unknown = healer_particle_result_describe(-12345);
	g_autofree char *positive = healer_particle_result_describe(42);
	g_autofree char *range = healer_particle_result_describe(HEALER_PARTICLE_RESULT_OUT_OF_RANGE);

	g_assert_cmpstr(protected, ==,
	                "the device is protected (Device Protection, PROTECTED -1801): it accepts firmware only "
	                "from the Particle cloud or after service mode is entered with the product's "
	                "credentials; healerd will not retry");
	g_assert_cmpstr(disabled, ==,
	                "the application disabled updates (System.disableUpdates(), OTA_UPDATES_DISABLED -1380): "
	                "put the device in safe mode or DFU mode (hold MODE through a reset) or change the "
	                "application; healerd will not retry");
	g_assert_cmpstr(unknown, ==, "result -12345");
	g_assert_cmpstr(positive, ==, "result 42");
	g_assert_cmpstr(range, ==, "OUT_OF_RANGE (-290)");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/particle-control/reply/bytes", test_reply_bytes);
	g_test_add_func("/particle-control/reply/round-trip", test_reply_round_trip);
	g_test_add_func("/particle-control/reply/write-normalises", test_reply_write_normalises);
	g_test_add_func("/particle-control/reply/trailing-bytes", test_reply_trailing_bytes);
	g_test_add_func("/particle-control/reply/refusals", test_reply_refusals);
	g_test_add_func("/particle-control/setup", test_setup_packets);
	g_test_add_func("/particle-control/names", test_names);
	g_test_add_func("/particle-control/results", test_results);
	g_test_add_func("/particle-control/result-texts", test_result_texts);
	return g_test_run();
}
