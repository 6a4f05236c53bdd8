#include "dfu-descriptor.h"

#include "healer-error.h"

#define FUNCTIONAL_SIZE_1_0 7
#define FUNCTIONAL_SIZE_1_1 9

static guint16
read_u16(const guint8 *p)
{
	return (guint16)(p[0] | p[1] << 8);
}

static gboolean
parse_functional(const guint8 *d, gsize offset, HealerDfuFunctional *out, GError **error)
{
	HealerDfuFunctional f = {.offset = offset, .length = d[0]};

	if (f.length != FUNCTIONAL_SIZE_1_0 && f.length != FUNCTIONAL_SIZE_1_1)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "DFU functional descriptor at offset %" G_GSIZE_FORMAT
		                   ": bLength %u, expected 7 (DFU "
		                   "1.0) or 9",
		                   offset, f.length);
	f.attributes = d[2];
	f.detach_timeout_ms = read_u16(d + 3);
	f.transfer_size = read_u16(d + 5);
	f.dfu_version = f.length == FUNCTIONAL_SIZE_1_1 ? read_u16(d + 7) : HEALER_DFU_VERSION_1_0;
	if (f.transfer_size == 0)
		return healer_fail(error, HEALER_ERROR_INVALID_DATA,
		                   "DFU functional descriptor at offset %" G_GSIZE_FORMAT
		                   ": wTransferSize 0 (no block could be sent)",
		                   offset);
	*out = f;
	return TRUE;
}

gboolean
healer_dfu_functional_find(const guint8 *data, gsize len, HealerDfuFunctional *out, GError **error)
{
	g_autoptr(GString) seen = g_string_new(NULL);
	gsize pos = 0;

	while (pos < len) {
		const guint8 *d = data + pos;
		gsize left = len - pos;

		if (left < 2)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "descriptor at offset %" G_GSIZE_FORMAT ": 1 byte left of %" G_GSIZE_FORMAT
			                   ", a descriptor needs 2 (bLength, bDescriptorType)",
			                   pos, len);
		if (d[0] < 2)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "descriptor at offset %" G_GSIZE_FORMAT
			                   " (type 0x%02x): bLength %u, at least 2",
			                   pos, d[1], d[0]);
		if (d[0] > left)
			return healer_fail(error, HEALER_ERROR_INVALID_DATA,
			                   "descriptor at offset %" G_GSIZE_FORMAT
			                   " (type 0x%02x): bLength %u runs past the "
			                   "end of the %" G_GSIZE_FORMAT " bytes",
			                   pos, d[1], d[0], len);
		if (d[1] == HEALER_DFU_FUNCTIONAL_DESCRIPTOR_TYPE)
			return parse_functional(d, pos, out, error);
		g_string_append_printf(seen, "%s0x%02x", seen->len ? ", " : "", d[1]);
		pos += d[0];
	}
	return healer_fail(error, HEALER_ERROR_NOT_FOUND,
	                   "no DFU functional descriptor (type 0x21) in %" G_GSIZE_FORMAT " bytes of descriptors%s%s%s",
	                   len, seen->len ? " (types " : "", seen->str, seen->len ? ")" : "");
}

gboolean
healer_dfu_functional_is_dfuse(const HealerDfuFunctional *functional)
{
	return functional->dfu_version == HEALER_DFU_VERSION_DFUSE;
}

char *
healer_dfu_attributes_to_string(guint attributes)
{
	static const struct {
		guint bit;
		const char *name;
	} names[] = {
	        {HEALER_DFU_ATTR_CAN_DOWNLOAD, "can-download"},
	        {HEALER_DFU_ATTR_CAN_UPLOAD, "can-upload"},
	        {HEALER_DFU_ATTR_MANIFESTATION_TOLERANT, "manifestation-tolerant"},
	        {HEALER_DFU_ATTR_WILL_DETACH, "will-detach"},
	};
	g_autoptr(GString) out = g_string_new(NULL);

	if (attributes == 0)
		return g_strdup("none");
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (attributes & names[i].bit)
			g_string_append_printf(out, "%s%s", out->len ? "|" : "", names[i].name);
	}
	if (attributes & ~HEALER_DFU_ATTRS_KNOWN)
		g_string_append_printf(out, "%s0x%02x", out->len ? "|" : "", attributes & ~HEALER_DFU_ATTRS_KNOWN);
	return g_string_free(g_steal_pointer(&out), FALSE);
}
