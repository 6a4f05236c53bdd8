#include "module-writer.h"

#include <zlib.h>

#include "healer-error.h"
#include "module-checksums.h"
#include "module-reader.h"

static void
put_u16(guint8 *p, guint16 v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void
put_u32(guint8 *p, guint32 v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static void
append_u16(GByteArray *out, guint16 v)
{
	guint8 b[2];

	put_u16(b, v);
	g_byte_array_append(out, b, sizeof b);
}

static void
append_u32(GByteArray *out, guint32 v)
{
	guint8 b[4];

	put_u32(b, v);
	g_byte_array_append(out, b, sizeof b);
}

static gboolean
append_extension(GByteArray *out, guint16 type, const guint8 *body, gsize body_len, GError **error)
{
	if (body_len > G_MAXUINT16 - MODULE_EXTENSION_HEADER_SIZE) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "extension 0x%04x body of %" G_GSIZE_FORMAT " bytes does not fit a 16-bit length", type,
		            body_len);
		return FALSE;
	}
	if (type == MODULE_EXTENSION_INVALID) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                    "extension type 0xffff is reserved as invalid");
		return FALSE;
	}
	append_u16(out, type);
	append_u16(out, (guint16)(body_len + MODULE_EXTENSION_HEADER_SIZE));
	g_byte_array_append(out, body, (guint)body_len);
	return TRUE;
}

static gboolean
append_extension_specs(GByteArray *out, GArray *specs, GError **error)
{
	for (guint i = 0; specs != NULL && i < specs->len; i++) {
		const HealerExtensionSpec *ext = &g_array_index(specs, HealerExtensionSpec, i);
		gsize size = 0;
		const guint8 *body = ext->body ? g_bytes_get_data(ext->body, &size) : NULL;
		if (ext->type == MODULE_EXTENSION_END) {
			g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
			                    "the END extension is written by the writer, not given");
			return FALSE;
		}
		if (!append_extension(out, ext->type, body, size, error))
			return FALSE;
	}
	return TRUE;
}

static GBytes *
deflate_raw(const guint8 *data, gsize len, GError **error)
{
	z_stream zs = {0};
	g_autoptr(GByteArray) out = g_byte_array_new();
	guint8 chunk[16384];
	int rc;

	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_FAILED, "zlib deflateInit2 failed");
		return NULL;
	}
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof chunk;
		rc = deflate(&zs, Z_FINISH);
		g_byte_array_append(out, chunk, (guint)(sizeof chunk - zs.avail_out));
	} while (rc == Z_OK);
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "zlib deflate failed (%d)", rc);
		return NULL;
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

static gboolean
check_spec(const HealerModuleSpec *spec, gsize image_len, GError **error)
{
	if (spec->function == MODULE_FUNCTION_NONE || spec->function > MODULE_FUNCTION_MAX) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "invalid module function %u",
		            spec->function);
		return FALSE;
	}
	if (spec->flags & ~(MODULE_FLAG_DROP_MODULE_INFO | MODULE_FLAG_ENCRYPTED | MODULE_FLAG_COMBINED)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "flags 0x%02x: only DROP_MODULE_INFO, ENCRYPTED and COMBINED are set by hand", spec->flags);
		return FALSE;
	}
	if ((spec->flags & MODULE_FLAG_DROP_MODULE_INFO) && spec->prefix_offset != 0) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                    "DROP_MODULE_INFO modules carry their prefix at offset 0");
		return FALSE;
	}
	if (spec->n_dependencies > G_N_ELEMENTS(spec->dependencies)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "at most %u dependencies",
		            (guint)G_N_ELEMENTS(spec->dependencies));
		return FALSE;
	}
	for (guint i = 0; i < spec->n_dependencies; i++) {
		guint f = spec->dependencies[i].function;
		if (f == MODULE_FUNCTION_NONE || f > MODULE_FUNCTION_MAX) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
			            "dependency %u has invalid function %u", i + 1, f);
			return FALSE;
		}
		if (i < MODULE_PREFIX_DEPENDENCY_SLOTS && spec->dependencies[i].target != 0) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
			            "dependency %u: an MCU target needs a dependency extension (the third or later)",
			            i + 1);
			return FALSE;
		}
	}
	if (spec->in_place ? spec->prefix_offset + MODULE_PREFIX_SIZE > image_len : spec->prefix_offset > image_len) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "prefix offset 0x%" G_GSIZE_MODIFIER "x is beyond the %" G_GSIZE_FORMAT "-byte image",
		            spec->prefix_offset, image_len);
		return FALSE;
	}
	return TRUE;
}

static gboolean
append_prefix_extensions(GByteArray *out, const HealerModuleSpec *spec, GError **error)
{
	for (guint i = MODULE_PREFIX_DEPENDENCY_SLOTS; i < spec->n_dependencies; i++) {
		guint8 body[8];
		body[0] = spec->dependencies[i].function;
		body[1] = spec->dependencies[i].index;
		put_u16(body + 2, spec->dependencies[i].version);
		put_u32(body + 4, spec->dependencies[i].target);
		if (!append_extension(out, MODULE_EXTENSION_DEPENDENCY, body, sizeof body, error))
			return FALSE;
	}
	if (spec->name != NULL &&
	    !append_extension(out, MODULE_EXTENSION_NAME, (const guint8 *)spec->name, strlen(spec->name), error))
		return FALSE;
	if (!append_extension_specs(out, spec->prefix_extensions, error))
		return FALSE;
	return append_extension(out, MODULE_EXTENSION_END, NULL, 0, error);
}

static gboolean
has_prefix_extensions(const HealerModuleSpec *spec)
{
	return spec->n_dependencies > MODULE_PREFIX_DEPENDENCY_SLOTS || spec->name != NULL ||
	       (spec->prefix_extensions != NULL && spec->prefix_extensions->len > 0);
}

/*
 * Suffix layout: without extensions, the 36-byte base or, with a product,
 * the 40-byte one.  With extensions they sit below the base; a product is
 * then a PRODUCT_DATA extension over a 36-byte base (as Gen 4 devices do),
 * otherwise an END closes them.
 */
static gboolean
append_suffix(GByteArray *out, const HealerModuleSpec *spec, gsize *suffix_start, GError **error)
{
	gboolean extensions = spec->suffix_extensions != NULL && spec->suffix_extensions->len > 0;
	gsize size;

	*suffix_start = out->len;
	if (extensions) {
		if (!append_extension_specs(out, spec->suffix_extensions, error))
			return FALSE;
		if (spec->has_product) {
			guint8 body[6];
			put_u16(body, MODULE_PRODUCT_NONE); /* padding, as release binaries carry it */
			put_u16(body + 2, spec->product_id);
			put_u16(body + 4, spec->product_version);
			if (!append_extension(out, MODULE_EXTENSION_PRODUCT_DATA, body, sizeof body, error))
				return FALSE;
		} else if (!append_extension(out, MODULE_EXTENSION_END, NULL, 0, error)) {
			return FALSE;
		}
	} else if (spec->has_product) {
		append_u16(out, (guint16)spec->product_id);
		append_u16(out, spec->product_version);
	}
	append_u16(out, 0); /* reserved */
	g_byte_array_set_size(out, out->len + MODULE_SHA256_SIZE);
	size = out->len + 2 - *suffix_start;
	if (size > G_MAXUINT16) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "suffix of %" G_GSIZE_FORMAT " bytes is too large", size);
		return FALSE;
	}
	append_u16(out, (guint16)size);
	return TRUE;
}

/* SHA-256 into the suffix, then CRC-32 appended or rewritten at the end. */
static void
stamp_checksums(guint8 *data, gsize len, gsize sha_from, gsize sha_to)
{
	guint32 crc;

	healer_sha256(data + sha_from, sha_to - sha_from, data + len - MODULE_SUFFIX_FROM_END_SHA256);
	crc = healer_crc32(data, len - MODULE_CRC_SIZE);
	data[len - 4] = crc >> 24;
	data[len - 3] = (crc >> 16) & 0xff;
	data[len - 2] = (crc >> 8) & 0xff;
	data[len - 1] = crc & 0xff;
}

GBytes *
healer_module_write(const HealerModuleSpec *spec, GBytes *image, GError **error)
{
	gsize image_len = 0;
	const guint8 *img = g_bytes_get_data(image, &image_len);
	g_autoptr(GByteArray) out = g_byte_array_new();
	g_autoptr(GBytes) compressed = NULL;
	const guint8 *payload;
	gsize payload_len, prefix_at, payload_at, suffix_start, total;
	guint8 flags = spec->flags;
	guint64 end_address;

	if (!check_spec(spec, image_len, error))
		return NULL;
	if (has_prefix_extensions(spec))
		flags |= MODULE_FLAG_PREFIX_EXTENSIONS;
	if (spec->compress)
		flags |= MODULE_FLAG_COMPRESSED;

	g_byte_array_append(out, img, (guint)spec->prefix_offset);
	prefix_at = out->len;
	g_byte_array_set_size(out, out->len + MODULE_PREFIX_SIZE); /* filled in below */
	if ((flags & MODULE_FLAG_PREFIX_EXTENSIONS) && !append_prefix_extensions(out, spec, error))
		return NULL;

	payload = img + spec->prefix_offset + (spec->in_place ? MODULE_PREFIX_SIZE : 0);
	payload_len = image_len - (gsize)(payload - img);
	if (spec->compress) {
		compressed = deflate_raw(payload, payload_len, error);
		if (compressed == NULL)
			return NULL;
		if (payload_len > G_MAXUINT32) {
			g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "payload too large");
			return NULL;
		}
		append_u16(out, MODULE_COMPRESSED_HEADER_SIZE);
		g_byte_array_append(out, (const guint8[]){MODULE_COMPRESSION_RAW_DEFLATE, 15}, 2);
		append_u32(out, (guint32)payload_len);
		payload = g_bytes_get_data(compressed, &payload_len);
	}
	payload_at = out->len;
	g_byte_array_append(out, payload, (guint)payload_len);
	if (!append_suffix(out, spec, &suffix_start, error))
		return NULL;
	total = out->len + MODULE_CRC_SIZE;
	end_address = (guint64)spec->start_address + total - MODULE_CRC_SIZE;
	if (end_address > G_MAXUINT32) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "module of %" G_GSIZE_FORMAT " bytes does not fit at 0x%08x", total, spec->start_address);
		return NULL;
	}

	{
		guint8 *p = out->data + prefix_at;
		put_u32(p + MODULE_PREFIX_OFF_START_ADDRESS, spec->start_address);
		put_u32(p + MODULE_PREFIX_OFF_END_ADDRESS, (guint32)end_address);
		p[MODULE_PREFIX_OFF_RESERVED] = spec->mcu_target;
		p[MODULE_PREFIX_OFF_FLAGS] = flags;
		put_u16(p + MODULE_PREFIX_OFF_VERSION, spec->version);
		put_u16(p + MODULE_PREFIX_OFF_PLATFORM_ID, spec->platform_id);
		p[MODULE_PREFIX_OFF_FUNCTION] = spec->function;
		p[MODULE_PREFIX_OFF_INDEX] = spec->index;
		memset(p + MODULE_PREFIX_OFF_DEPENDENCY, 0, 2 * MODULE_DEPENDENCY_SIZE);
		for (guint i = 0; i < MIN(spec->n_dependencies, MODULE_PREFIX_DEPENDENCY_SLOTS); i++) {
			guint8 *d = p + MODULE_PREFIX_OFF_DEPENDENCY + i * MODULE_DEPENDENCY_SIZE;
			d[0] = spec->dependencies[i].function;
			d[1] = spec->dependencies[i].index;
			put_u16(d + 2, spec->dependencies[i].version);
		}
	}

	g_byte_array_set_size(out, (guint)total);
	if (flags & MODULE_FLAG_DROP_MODULE_INFO)
		stamp_checksums(out->data, total, payload_at, suffix_start);
	else
		stamp_checksums(out->data, total, 0, total - MODULE_SUFFIX_FROM_END_SHA256);
	return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

gboolean
healer_module_restamp(guint8 *data, gsize len, GError **error)
{
	g_autoptr(GPtrArray) modules = NULL;
	const HealerModule *m;
	g_autoptr(GError) local_error = NULL;

	/* The checksums are about to be replaced: parse for the layout only. */
	modules = healer_module_parse(data, len, &local_error);
	if (modules == NULL) {
		g_propagate_error(error, g_steal_pointer(&local_error));
		return FALSE;
	}
	m = g_ptr_array_index(modules, 0);
	if (m->length != len) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "module is %" G_GSIZE_FORMAT " bytes but its header says %" G_GSIZE_FORMAT, len, m->length);
		return FALSE;
	}
	if (m->flags & MODULE_FLAG_DROP_MODULE_INFO)
		stamp_checksums(data, len, m->prefix_offset + MODULE_PREFIX_SIZE,
		                len - MODULE_CRC_SIZE - m->suffix_size);
	else
		stamp_checksums(data, len, 0, len - MODULE_SUFFIX_FROM_END_SHA256);
	return TRUE;
}

GBytes *
healer_module_combine(GPtrArray *modules, GError **error)
{
	g_autoptr(GByteArray) out = g_byte_array_new();

	if (modules->len < 2) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                    "combining needs at least two modules");
		return NULL;
	}
	for (guint i = 0; i < modules->len; i++) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(g_ptr_array_index(modules, i), &len);
		g_autoptr(GPtrArray) parsed = NULL;
		const HealerModule *m;
		gsize at = out->len;

		parsed = healer_module_parse(data, len, error);
		if (parsed == NULL) {
			g_prefix_error(error, "module %u: ", i + 1);
			return NULL;
		}
		m = g_ptr_array_index(parsed, 0);
		if (parsed->len != 1 || !healer_module_is_valid(m)) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
			            "module %u is not one valid module%s%s", i + 1, m->faults->len ? ": " : "",
			            m->faults->len ? (const char *)g_ptr_array_index(m->faults, 0) : "");
			return NULL;
		}
		g_byte_array_append(out, data, (guint)len);
		if (i + 1 < modules->len) {
			out->data[at + m->prefix_offset + MODULE_PREFIX_OFF_FLAGS] |= MODULE_FLAG_COMBINED;
			if (!healer_module_restamp(out->data + at, len, error))
				return NULL;
		}
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}
