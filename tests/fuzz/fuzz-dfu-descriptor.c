/*
 * The DFU functional descriptor search on arbitrary bytes (the class-specific descriptors libusb
 * hands over with a USB interface): an accepted descriptor lies inside the input where the walk
 * from the start reaches it, has a known length and a usable transfer size; a refusal leaves the
 * caller's struct alone.
 */
#include "fuzz-target.h"

#include <string.h>

#include "dfu-descriptor.h"
#include "healer-error.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static gboolean initialized = FALSE;
	static const HealerDfuFunctional sentinel = {.offset = 12345, .transfer_size = 4321};
	HealerDfuFunctional f = sentinel;
	g_autoptr(GError) error = NULL;
	g_autofree char *attributes = NULL;
	gsize pos = 0;

	if (!initialized) {
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		initialized = TRUE;
	}

	if (!healer_dfu_functional_find(data, size, &f, &error)) {
		g_assert_nonnull(error);
		g_assert_true(g_error_matches(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA) ||
		              g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND));
		g_assert_cmpuint(f.offset, ==, sentinel.offset);
		g_assert_cmpuint(f.transfer_size, ==, sentinel.transfer_size);
		return 0;
	}
	g_assert_null(error);
	g_assert_true(f.length == 7 || f.length == 9);
	g_assert_cmpuint(f.offset + f.length, <=, size);
	g_assert_cmpuint(data[f.offset], ==, f.length);
	g_assert_cmpuint(data[f.offset + 1], ==, HEALER_DFU_FUNCTIONAL_DESCRIPTOR_TYPE);
	g_assert_cmpuint(f.attributes, ==, data[f.offset + 2]);
	g_assert_cmpuint(f.transfer_size, ==, data[f.offset + 5] | data[f.offset + 6] << 8);
	g_assert_cmpuint(f.transfer_size, >, 0);
	if (f.length == 9)
		g_assert_cmpuint(f.dfu_version, ==, data[f.offset + 7] | data[f.offset + 8] << 8);
	else
		g_assert_cmpuint(f.dfu_version, ==, HEALER_DFU_VERSION_1_0);
	/* The walk from the start reaches it, past descriptors of other types only. */
	while (pos < f.offset) {
		g_assert_cmpuint(data[pos], >=, 2);
		g_assert_cmpuint(data[pos + 1], !=, HEALER_DFU_FUNCTIONAL_DESCRIPTOR_TYPE);
		pos += data[pos];
	}
	g_assert_cmpuint(pos, ==, f.offset);
	attributes = healer_dfu_attributes_to_string(f.attributes);
	g_assert_nonnull(attributes);
	(void)healer_dfu_functional_is_dfuse(&f);
	return 0;
}
