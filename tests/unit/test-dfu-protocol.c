/*
 * DFU 1.1 and DfuSe bytes (dfu-protocol.h, dfu-descriptor.h): every name, the GETSTATUS,
 * GETSTATE and GET_COMMANDS replies read and each of their refusals with its whole message, the
 * DfuSe command payloads byte for byte, and the functional descriptor found among others
 * (the STM32F4 ROM's and Particle's as devices send them) and refused when malformed.
 */
#include <string.h>

#include "dfu-descriptor.h"
#include "dfu-protocol.h"
#include "healer-error.h"

/* `error` is read after `ok` was computed (an argument's value could be taken before the call ran). */
static void
expect_error(gboolean ok, GError **error, int code, const char *message)
{
	g_assert_false(ok);
	g_assert_error(*error, HEALER_ERROR, code);
	g_assert_cmpstr((*error)->message, ==, message);
}

/* ---- names ------------------------------------------------------------------------------------ */

static void
test_names(void)
{
	const char *requests[] = {"DETACH", "DNLOAD", "UPLOAD", "GETSTATUS", "CLRSTATUS", "GETSTATE", "ABORT"};
	const char *states[] = {"appIDLE",          "appDETACH",   "dfuIDLE",
	                        "dfuDNLOAD-SYNC",   "dfuDNBUSY",   "dfuDNLOAD-IDLE",
	                        "dfuMANIFEST-SYNC", "dfuMANIFEST", "dfuMANIFEST-WAIT-RESET",
	                        "dfuUPLOAD-IDLE",   "dfuERROR"};
	const char *statuses[] = {"OK",         "errTARGET",       "errFILE",     "errWRITE",
	                          "errERASE",   "errCHECK_ERASED", "errPROG",     "errVERIFY",
	                          "errADDRESS", "errNOTDONE",      "errFIRMWARE", "errVENDOR",
	                          "errUSBR",    "errPOR",          "errUNKNOWN",  "errSTALLEDPKT"};

	for (guint i = 0; i < G_N_ELEMENTS(requests); i++)
		g_assert_cmpstr(healer_dfu_request_to_string(i), ==, requests[i]);
	g_assert_null(healer_dfu_request_to_string(G_N_ELEMENTS(requests)));
	g_assert_cmpint(HEALER_DFU_REQUEST_GETSTATUS, ==, 3);
	g_assert_cmpint(HEALER_DFU_REQUEST_TYPE_OUT, ==, 0x21);
	g_assert_cmpint(HEALER_DFU_REQUEST_TYPE_IN, ==, 0xA1);

	for (guint i = 0; i < G_N_ELEMENTS(states); i++)
		g_assert_cmpstr(healer_dfu_state_to_string(i), ==, states[i]);
	g_assert_null(healer_dfu_state_to_string(G_N_ELEMENTS(states)));
	g_assert_cmpint(HEALER_DFU_STATE_LAST + 1, ==, G_N_ELEMENTS(states));

	for (guint i = 0; i < G_N_ELEMENTS(statuses); i++) {
		g_assert_cmpstr(healer_dfu_status_to_string(i), ==, statuses[i]);
		g_assert_nonnull(healer_dfu_status_describe(i));
	}
	g_assert_null(healer_dfu_status_to_string(G_N_ELEMENTS(statuses)));
	g_assert_null(healer_dfu_status_describe(G_N_ELEMENTS(statuses)));
	g_assert_cmpint(HEALER_DFU_STATUS_LAST + 1, ==, G_N_ELEMENTS(statuses));
	g_assert_cmpstr(healer_dfu_status_describe(HEALER_DFU_STATUS_ERR_ERASE), ==, "memory erase failed");

	g_assert_cmpstr(healer_dfuse_command_to_string(0x00), ==, "GET_COMMANDS");
	g_assert_cmpstr(healer_dfuse_command_to_string(0x21), ==, "SET_ADDRESS_POINTER");
	g_assert_cmpstr(healer_dfuse_command_to_string(0x41), ==, "ERASE");
	g_assert_cmpstr(healer_dfuse_command_to_string(0x92), ==, "READ_UNPROTECT");
	g_assert_cmpstr(healer_dfuse_command_to_string(0xFA), ==, "PARTICLE_ENTER_SAFE_MODE");
	g_assert_null(healer_dfuse_command_to_string(0x42));
}

/* ---- GETSTATUS, GETSTATE ---------------------------------------------------------------------- */

static void
test_status_parse(void)
{
	const guint8 idle[] = {0x00, 0x64, 0x00, 0x00, 0x02, 0x00};
	/* Every byte of the poll timeout distinct, so a byte out of place shows. */
	const guint8 erase_failed[] = {0x04, 0x01, 0x02, 0x03, 0x0A, 0x07};
	const guint8 busy_max[] = {0x00, 0xFF, 0xFF, 0xFF, 0x04, 0xFF};
	HealerDfuStatus st;

	g_assert_true(healer_dfu_status_parse(idle, sizeof(idle), &st, NULL));
	g_assert_cmpint(st.status, ==, HEALER_DFU_STATUS_OK);
	g_assert_cmpuint(st.poll_timeout_ms, ==, 100);
	g_assert_cmpint(st.state, ==, HEALER_DFU_STATE_DFU_IDLE);
	g_assert_cmpuint(st.string_index, ==, 0);
	g_assert_true(healer_dfu_status_check(&st, NULL));

	g_assert_true(healer_dfu_status_parse(erase_failed, sizeof(erase_failed), &st, NULL));
	g_assert_cmpint(st.status, ==, HEALER_DFU_STATUS_ERR_ERASE);
	g_assert_cmpuint(st.poll_timeout_ms, ==, 0x030201);
	g_assert_cmpint(st.state, ==, HEALER_DFU_STATE_ERROR);
	g_assert_cmpuint(st.string_index, ==, 7);

	g_assert_true(healer_dfu_status_parse(busy_max, sizeof(busy_max), &st, NULL));
	g_assert_cmpuint(st.poll_timeout_ms, ==, 0xFFFFFF);
	g_assert_cmpint(st.state, ==, HEALER_DFU_STATE_DNBUSY);
	g_assert_cmpuint(st.string_index, ==, 255);
	g_assert_true(healer_dfu_status_check(&st, NULL));

	/* The last status and the last state are still accepted. */
	{
		const guint8 last[] = {0x0F, 0, 0, 0, 0x0A, 0};
		g_assert_true(healer_dfu_status_parse(last, sizeof(last), &st, NULL));
		g_assert_cmpint(st.status, ==, HEALER_DFU_STATUS_ERR_STALLEDPKT);
	}
}

static void
test_status_refusals(void)
{
	const guint8 bytes[8] = {0x00, 0x64, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
	const guint8 bad_status[] = {0x10, 0, 0, 0, 0x02, 0};
	const guint8 bad_state[] = {0x00, 0, 0, 0, 0x0B, 0};
	const guint8 bad_both[] = {0xFF, 0, 0, 0, 0xFF, 0};
	const gsize lengths[] = {0, 1, 5, 7, 8};
	HealerDfuStatus st = {.status = 99, .poll_timeout_ms = 12345, .state = 99, .string_index = 42};
	const HealerDfuStatus untouched = st;

	for (gsize i = 0; i < G_N_ELEMENTS(lengths); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *want =
		        g_strdup_printf("GETSTATUS reply: %" G_GSIZE_FORMAT " bytes, expected 6 (bStatus, "
		                        "bwPollTimeout[3], bState, iString)",
		                        lengths[i]);
		expect_error(healer_dfu_status_parse(bytes, lengths[i], &st, &error), &error, HEALER_ERROR_INVALID_DATA,
		             want);
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_status_parse(bad_status, sizeof(bad_status), &st, &error), &error,
		             HEALER_ERROR_INVALID_DATA,
		             "GETSTATUS reply: byte 0 (bStatus) 16 is not a DFU status (OK 0 .. errSTALLEDPKT 15)");
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(
		        healer_dfu_status_parse(bad_state, sizeof(bad_state), &st, &error), &error,
		        HEALER_ERROR_INVALID_DATA,
		        "GETSTATUS reply: byte 4 (bState): state 11 is not a DFU state (appIDLE 0 .. dfuERROR 10)");
	}
	{
		/* The status is checked first. */
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_status_parse(bad_both, sizeof(bad_both), &st, &error), &error,
		             HEALER_ERROR_INVALID_DATA,
		             "GETSTATUS reply: byte 0 (bStatus) 255 is not a DFU status (OK 0 .. errSTALLEDPKT 15)");
	}
	/* A refused reply leaves the caller's struct alone. */
	g_assert_cmpuint(st.status, ==, untouched.status);
	g_assert_cmpuint(st.poll_timeout_ms, ==, untouched.poll_timeout_ms);
	g_assert_cmpuint(st.state, ==, untouched.state);
	g_assert_cmpuint(st.string_index, ==, untouched.string_index);
}

static void
test_status_check(void)
{
	HealerDfuStatus erase = {HEALER_DFU_STATUS_ERR_ERASE, 0, HEALER_DFU_STATE_ERROR, 0};
	HealerDfuStatus error_state = {HEALER_DFU_STATUS_OK, 0, HEALER_DFU_STATE_ERROR, 0};
	HealerDfuStatus error_status = {HEALER_DFU_STATUS_ERR_ADDRESS, 0, HEALER_DFU_STATE_DNLOAD_IDLE, 0};
	HealerDfuStatus fine = {HEALER_DFU_STATUS_OK, 0, HEALER_DFU_STATE_MANIFEST, 0};

	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_status_check(&erase, &error), &error, HEALER_ERROR_FAILED,
		             "device reports errERASE (memory erase failed) in state dfuERROR");
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_status_check(&error_state, &error), &error, HEALER_ERROR_FAILED,
		             "device reports OK (no error) in state dfuERROR");
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_status_check(&error_status, &error), &error, HEALER_ERROR_FAILED,
		             "device reports errADDRESS (address out of range) in state dfuDNLOAD-IDLE");
	}
	g_assert_true(healer_dfu_status_check(&fine, NULL));
}

static void
test_state_parse(void)
{
	const guint8 two[] = {0x02, 0x02};
	const guint8 eleven[] = {0x0B};
	HealerDfuState state = 99;

	for (guint8 s = 0; s <= HEALER_DFU_STATE_LAST; s++) {
		g_assert_true(healer_dfu_state_parse(&s, 1, &state, NULL));
		g_assert_cmpint(state, ==, s);
	}
	state = 99;
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_state_parse(two, 0, &state, &error), &error, HEALER_ERROR_INVALID_DATA,
		             "GETSTATE reply: 0 bytes, expected 1");
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_state_parse(two, 2, &state, &error), &error, HEALER_ERROR_INVALID_DATA,
		             "GETSTATE reply: 2 bytes, expected 1");
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfu_state_parse(eleven, 1, &state, &error), &error, HEALER_ERROR_INVALID_DATA,
		             "GETSTATE reply: state 11 is not a DFU state (appIDLE 0 .. dfuERROR 10)");
	}
	g_assert_cmpint(state, ==, 99);
}

/* ---- DfuSe commands --------------------------------------------------------------------------- */

static void
test_dfuse_builders(void)
{
	guint8 out[HEALER_DFUSE_COMMAND_MAX_SIZE];
	const guint8 set_address[] = {0x21, 0x00, 0x00, 0x02, 0x08};
	const guint8 erase[] = {0x41, 0x00, 0x40, 0x0A, 0x08};
	const guint8 erase_high[] = {0x41, 0x78, 0x56, 0x34, 0xF2};

	g_assert_cmpuint(healer_dfuse_build_set_address(0x08020000, out), ==, 5);
	g_assert_cmpmem(out, 5, set_address, 5);
	g_assert_cmpuint(healer_dfuse_build_erase_sector(0x080A4000, out), ==, 5);
	g_assert_cmpmem(out, 5, erase, 5);
	g_assert_cmpuint(healer_dfuse_build_erase_sector(0xF2345678, out), ==, 5);
	g_assert_cmpmem(out, 5, erase_high, 5);
	g_assert_cmpuint(healer_dfuse_build_read_unprotect(out), ==, 1);
	g_assert_cmpuint(out[0], ==, 0x92);
	g_assert_cmpuint(healer_dfuse_build_particle_enter_safe_mode(out), ==, 1);
	g_assert_cmpuint(out[0], ==, 0xFA);
	g_assert_cmpint(HEALER_DFUSE_FIRST_DATA_BLOCK, ==, 2);
}

static void
test_dfuse_commands(void)
{
	const guint8 stm32[] = {0x00, 0x21, 0x41, 0x92};
	const guint8 repeated[] = {0x00, 0x21, 0x21, 0x41, 0x21};
	const guint8 only_get[] = {0x00};
	const guint8 wrong_first[] = {0x21, 0x41};
	guint8 too_many[1 + HEALER_DFUSE_MAX_COMMANDS + 1];
	HealerDfuseCommands commands = {.n_codes = 77};

	g_assert_true(healer_dfuse_commands_parse(stm32, sizeof(stm32), &commands, NULL));
	g_assert_cmpuint(commands.n_codes, ==, 3);
	g_assert_cmpmem(commands.codes, 3, stm32 + 1, 3);
	g_assert_true(healer_dfuse_commands_supports(&commands, HEALER_DFUSE_ERASE));
	g_assert_false(healer_dfuse_commands_supports(&commands, HEALER_DFUSE_PARTICLE_ENTER_SAFE_MODE));

	g_assert_true(healer_dfuse_commands_parse(repeated, sizeof(repeated), &commands, NULL));
	g_assert_cmpuint(commands.n_codes, ==, 2);
	g_assert_cmpuint(commands.codes[0], ==, 0x21);
	g_assert_cmpuint(commands.codes[1], ==, 0x41);

	g_assert_true(healer_dfuse_commands_parse(only_get, sizeof(only_get), &commands, NULL));
	g_assert_cmpuint(commands.n_codes, ==, 0);

	commands.n_codes = 77;
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfuse_commands_parse(stm32, 0, &commands, &error), &error,
		             HEALER_ERROR_INVALID_DATA,
		             "GET_COMMANDS reply: empty, expected 0x00 and the supported command codes");
	}
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfuse_commands_parse(wrong_first, sizeof(wrong_first), &commands, &error), &error,
		             HEALER_ERROR_INVALID_DATA,
		             "GET_COMMANDS reply: byte 0 is 0x21, expected 0x00 (GET_COMMANDS)");
	}
	too_many[0] = 0;
	for (guint i = 1; i < sizeof(too_many); i++)
		too_many[i] = (guint8)(0x80 + i);
	{
		g_autoptr(GError) error = NULL;
		expect_error(healer_dfuse_commands_parse(too_many, sizeof(too_many), &commands, &error), &error,
		             HEALER_ERROR_INVALID_DATA,
		             "GET_COMMANDS reply: byte 33 (0xa1) is past the 32 command codes a reply may list");
	}
	g_assert_cmpuint(commands.n_codes, ==, 77);
	/* Exactly the maximum is fine. */
	g_assert_true(healer_dfuse_commands_parse(too_many, sizeof(too_many) - 1, &commands, NULL));
	g_assert_cmpuint(commands.n_codes, ==, HEALER_DFUSE_MAX_COMMANDS);
}

/* ---- the functional descriptor ---------------------------------------------------------------- */

/* The STM32F4 ROM bootloader's (dfu-util device-logs/stm32f4discovery.lsusb): 0x0B, 255 ms, 2048, 1.1a. */
static const guint8 stm32_rom_functional[] = {0x09, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A, 0x01};

static void
test_functional_alone(void)
{
	HealerDfuFunctional f;

	g_assert_true(healer_dfu_functional_find(stm32_rom_functional, sizeof(stm32_rom_functional), &f, NULL));
	g_assert_cmpuint(f.offset, ==, 0);
	g_assert_cmpuint(f.length, ==, 9);
	g_assert_cmpuint(f.attributes, ==, 0x0B);
	g_assert_cmpuint(f.detach_timeout_ms, ==, 255);
	g_assert_cmpuint(f.transfer_size, ==, 2048);
	g_assert_cmpuint(f.dfu_version, ==, HEALER_DFU_VERSION_DFUSE);
	g_assert_true(healer_dfu_functional_is_dfuse(&f));
	g_assert_true(f.attributes & HEALER_DFU_ATTR_CAN_DOWNLOAD);
	g_assert_true(f.attributes & HEALER_DFU_ATTR_CAN_UPLOAD);
	g_assert_false(f.attributes & HEALER_DFU_ATTR_MANIFESTATION_TOLERANT);
	g_assert_true(f.attributes & HEALER_DFU_ATTR_WILL_DETACH);
}

static void
test_functional_among_others(void)
{
	/*
	 * A Particle Gen 3 bootloader's (Device OS usbd_dfu.h: 0x0B, 4096, 0x011A) behind a
	 * class-specific descriptor and an endpoint descriptor, then one more after it.
	 */
	const guint8 extra[] = {0x05, 0x24, 0x00, 0x10, 0x01,                         /* CS_INTERFACE */
	                        0x07, 0x05, 0x81, 0x02, 0x40, 0x00, 0x00,             /* endpoint */
	                        0x09, 0x21, 0x0B, 0xE8, 0x03, 0x00, 0x10, 0x1A, 0x01, /* DFU */
	                        0x04, 0x24, 0x02, 0x06};
	/* DFU 1.0: seven bytes, no bcdDFUVersion; a manifestation-tolerant device with reserved bits. */
	const guint8 dfu10[] = {0x03, 0x44, 0x00, 0x07, 0x21, 0xF5, 0x10, 0x27, 0x40, 0x00};
	/* DFU 1.1 plain. */
	const guint8 dfu11[] = {0x09, 0x21, 0x07, 0x00, 0x00, 0x00, 0x04, 0x10, 0x01};
	HealerDfuFunctional f;

	g_assert_true(healer_dfu_functional_find(extra, sizeof(extra), &f, NULL));
	g_assert_cmpuint(f.offset, ==, 12);
	g_assert_cmpuint(f.detach_timeout_ms, ==, 1000);
	g_assert_cmpuint(f.transfer_size, ==, 4096);
	g_assert_true(healer_dfu_functional_is_dfuse(&f));

	g_assert_true(healer_dfu_functional_find(dfu10, sizeof(dfu10), &f, NULL));
	g_assert_cmpuint(f.offset, ==, 3);
	g_assert_cmpuint(f.length, ==, 7);
	g_assert_cmpuint(f.attributes, ==, 0xF5);
	g_assert_cmpuint(f.detach_timeout_ms, ==, 10000);
	g_assert_cmpuint(f.transfer_size, ==, 64);
	g_assert_cmpuint(f.dfu_version, ==, HEALER_DFU_VERSION_1_0);
	g_assert_false(healer_dfu_functional_is_dfuse(&f));

	g_assert_true(healer_dfu_functional_find(dfu11, sizeof(dfu11), &f, NULL));
	g_assert_cmpuint(f.transfer_size, ==, 1024);
	g_assert_cmpuint(f.dfu_version, ==, 0x0110);
	g_assert_false(healer_dfu_functional_is_dfuse(&f));
}

static void
test_functional_refusals(void)
{
	static const struct {
		const char *name;
		guint8 bytes[24];
		gsize len;
		int code;
		const char *message;
	} cases[] = {
	        {"empty",
	         {0},
	         0,
	         HEALER_ERROR_NOT_FOUND,
	         "no DFU functional descriptor (type 0x21) in 0 bytes of descriptors"},
	        {"others only",
	         {0x05, 0x24, 0x00, 0x10, 0x01, 0x07, 0x05, 0x81, 0x02, 0x40, 0x00, 0x00},
	         12,
	         HEALER_ERROR_NOT_FOUND,
	         "no DFU functional descriptor (type 0x21) in 12 bytes of descriptors (types 0x24, 0x05)"},
	        {"one byte left",
	         {0x02, 0x24, 0x09},
	         3,
	         HEALER_ERROR_INVALID_DATA,
	         "descriptor at offset 2: 1 byte left of 3, a descriptor needs 2 (bLength, bDescriptorType)"},
	        {"bLength 0",
	         {0x00, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A, 0x01},
	         9,
	         HEALER_ERROR_INVALID_DATA,
	         "descriptor at offset 0 (type 0x21): bLength 0, at least 2"},
	        {"bLength 1 after another",
	         {0x02, 0x24, 0x01, 0x21},
	         4,
	         HEALER_ERROR_INVALID_DATA,
	         "descriptor at offset 2 (type 0x21): bLength 1, at least 2"},
	        {"past the end",
	         {0x05, 0x24, 0x00, 0x10, 0x01, 0x09, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08},
	         12,
	         HEALER_ERROR_INVALID_DATA,
	         "descriptor at offset 5 (type 0x21): bLength 9 runs past the end of the 12 bytes"},
	        {"other past the end",
	         {0x09, 0x24, 0x00},
	         3,
	         HEALER_ERROR_INVALID_DATA,
	         "descriptor at offset 0 (type 0x24): bLength 9 runs past the end of the 3 bytes"},
	        {"bLength 6",
	         {0x06, 0x21, 0x0B, 0xFF, 0x00, 0x00},
	         6,
	         HEALER_ERROR_INVALID_DATA,
	         "DFU functional descriptor at offset 0: bLength 6, expected 7 (DFU 1.0) or 9"},
	        {"bLength 8",
	         {0x08, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A},
	         8,
	         HEALER_ERROR_INVALID_DATA,
	         "DFU functional descriptor at offset 0: bLength 8, expected 7 (DFU 1.0) or 9"},
	        {"bLength 10",
	         {0x0A, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x08, 0x1A, 0x01, 0x00},
	         10,
	         HEALER_ERROR_INVALID_DATA,
	         "DFU functional descriptor at offset 0: bLength 10, expected 7 (DFU 1.0) or 9"},
	        {"wTransferSize 0",
	         {0x03, 0x44, 0x00, 0x09, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x00, 0x1A, 0x01},
	         12,
	         HEALER_ERROR_INVALID_DATA,
	         "DFU functional descriptor at offset 3: wTransferSize 0 (no block could be sent)"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		HealerDfuFunctional f = {.transfer_size = 4321};

		g_test_message("%s", cases[i].name);
		expect_error(healer_dfu_functional_find(cases[i].bytes, cases[i].len, &f, &error), &error,
		             cases[i].code, cases[i].message);
		g_assert_cmpuint(f.transfer_size, ==, 4321);
	}
}

static void
test_functional_attributes_names(void)
{
	const struct {
		guint attributes;
		const char *name;
	} cases[] = {
	        {0x00, "none"},
	        {0x0B, "can-download|can-upload|will-detach"},
	        {0x04, "manifestation-tolerant"},
	        {0x1F, "can-download|can-upload|manifestation-tolerant|will-detach|0x10"},
	        {0xF0, "0xf0"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *name = healer_dfu_attributes_to_string(cases[i].attributes);
		g_assert_cmpstr(name, ==, cases[i].name);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dfu-protocol/names", test_names);
	g_test_add_func("/dfu-protocol/status/parse", test_status_parse);
	g_test_add_func("/dfu-protocol/status/refusals", test_status_refusals);
	g_test_add_func("/dfu-protocol/status/check", test_status_check);
	g_test_add_func("/dfu-protocol/state", test_state_parse);
	g_test_add_func("/dfu-protocol/dfuse/builders", test_dfuse_builders);
	g_test_add_func("/dfu-protocol/dfuse/get-commands", test_dfuse_commands);
	g_test_add_func("/dfu-descriptor/alone", test_functional_alone);
	g_test_add_func("/dfu-descriptor/among-others", test_functional_among_others);
	g_test_add_func("/dfu-descriptor/refusals", test_functional_refusals);
	g_test_add_func("/dfu-descriptor/attribute-names", test_functional_attributes_names);
	return g_test_run();
}
