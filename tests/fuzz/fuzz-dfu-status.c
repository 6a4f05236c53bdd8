/*
 * The DFU replies a device sends to the host's IN requests, on arbitrary bytes: GETSTATUS
 * (6 bytes), GETSTATE (1 byte) and DfuSe's GET_COMMANDS (UPLOAD of block 0).  Each parser accepts
 * exactly the inputs the specification allows and reports their fields as sent; a refusal
 * leaves the caller's struct alone; every accepted value has a name.
 */
#include "fuzz-target.h"

#include <string.h>

#include "dfu-protocol.h"
#include "healer-error.h"

static void
check_status(const uint8_t *data, size_t size)
{
	static const HealerDfuStatus sentinel = {.status = 99, .poll_timeout_ms = 7, .state = 99, .string_index = 3};
	HealerDfuStatus st = sentinel;
	g_autoptr(GError) error = NULL;
	gboolean valid =
	        size == HEALER_DFU_STATUS_SIZE && data[0] <= HEALER_DFU_STATUS_LAST && data[4] <= HEALER_DFU_STATE_LAST;

	g_assert_cmpint(healer_dfu_status_parse(data, size, &st, &error), ==, valid);
	if (!valid) {
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		/* Field by field: a struct copy need not copy padding. */
		g_assert_cmpuint(st.status, ==, sentinel.status);
		g_assert_cmpuint(st.poll_timeout_ms, ==, sentinel.poll_timeout_ms);
		g_assert_cmpuint(st.state, ==, sentinel.state);
		g_assert_cmpuint(st.string_index, ==, sentinel.string_index);
		return;
	}
	g_assert_no_error(error);
	g_assert_cmpuint(st.status, ==, data[0]);
	g_assert_cmpuint(st.poll_timeout_ms, ==, data[1] | data[2] << 8 | data[3] << 16);
	g_assert_cmpuint(st.state, ==, data[4]);
	g_assert_cmpuint(st.string_index, ==, data[5]);
	g_assert_nonnull(healer_dfu_status_to_string(st.status));
	g_assert_nonnull(healer_dfu_status_describe(st.status));
	g_assert_nonnull(healer_dfu_state_to_string(st.state));
	g_assert_cmpint(healer_dfu_status_check(&st, &error), ==,
	                st.status == HEALER_DFU_STATUS_OK && st.state != HEALER_DFU_STATE_ERROR);
	g_assert_true(error == NULL || g_error_matches(error, HEALER_ERROR, HEALER_ERROR_FAILED));
}

static void
check_state(const uint8_t *data, size_t size)
{
	HealerDfuState state = 99;
	g_autoptr(GError) error = NULL;
	gboolean valid = size == 1 && data[0] <= HEALER_DFU_STATE_LAST;

	g_assert_cmpint(healer_dfu_state_parse(data, size, &state, &error), ==, valid);
	g_assert_true(valid == (error == NULL));
	g_assert_cmpuint(state, ==, valid ? data[0] : 99);
}

static void
check_commands(const uint8_t *data, size_t size)
{
	HealerDfuseCommands commands = {.n_codes = 99};
	g_autoptr(GError) error = NULL;
	gboolean seen[256] = {FALSE};
	guint distinct = 0;
	gboolean valid;

	for (size_t i = 1; i < size; i++) {
		if (!seen[data[i]])
			distinct++;
		seen[data[i]] = TRUE;
	}
	valid = size >= 1 && data[0] == HEALER_DFUSE_GET_COMMANDS && distinct <= HEALER_DFUSE_MAX_COMMANDS;
	g_assert_cmpint(healer_dfuse_commands_parse(data, size, &commands, &error), ==, valid);
	if (!valid) {
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		g_assert_cmpuint(commands.n_codes, ==, 99);
		return;
	}
	g_assert_cmpuint(commands.n_codes, ==, distinct);
	for (guint code = 0; code < 256; code++)
		g_assert_cmpint(healer_dfuse_commands_supports(&commands, (guint8)code), ==, seen[code]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;

	if (!initialized) {
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}
	check_status(data, size);
	check_state(data, size);
	check_commands(data, size);
	return 0;
}
