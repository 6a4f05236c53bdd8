#include "module-reader.h"

#include "healer-error.h"
#include "module-names.h"

/* Little-endian reads; callers have checked the bounds. */
static guint16
read_u16(const guint8 *p)
{
	return (guint16)(p[0] | p[1] << 8);
}

static guint32
read_u32(const guint8 *p)
{
	return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static guint32
read_u32_be(const guint8 *p)
{
	return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | (guint32)p[3];
}

static void
extension_free(gpointer data)
{
	HealerModuleExtension *ext = data;

	g_bytes_unref(ext->body);
	g_free(ext);
}

void
healer_module_free(HealerModule *module)
{
	if (module == NULL)
		return;
	g_array_unref(module->dependencies);
	g_ptr_array_unref(module->prefix_extensions);
	g_ptr_array_unref(module->suffix_extensions);
	g_ptr_array_unref(module->faults);
	g_free(module->name);
	g_free(module);
}

static HealerModule *
module_new(void)
{
	HealerModule *module = g_new0(HealerModule, 1);

	module->dependencies = g_array_new(FALSE, TRUE, sizeof(HealerModuleDependency));
	module->prefix_extensions = g_ptr_array_new_with_free_func(extension_free);
	module->suffix_extensions = g_ptr_array_new_with_free_func(extension_free);
	module->faults = g_ptr_array_new_with_free_func(g_free);
	return module;
}

G_GNUC_PRINTF(2, 3)
static void
add_fault(HealerModule *module, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_ptr_array_add(module->faults, g_strdup_vprintf(format, args));
	va_end(args);
}

gboolean
healer_module_is_valid(const HealerModule *module)
{
	/* A header alone says nothing of the checksums. */
	return !module->header_only && module->faults->len == 0;
}

/* ---- locating the prefix -------------------------------------------- */

/* The order devices and Particle's reader try them in. */
static const gsize prefix_offsets[] = {
        MODULE_PREFIX_OFFSET_PLAIN,   MODULE_PREFIX_OFFSET_STM32_VECTORS, MODULE_PREFIX_OFFSET_NRF52_VECTORS,
        MODULE_PREFIX_OFFSET_REALTEK, MODULE_PREFIX_OFFSET_CORE,          MODULE_PREFIX_OFFSET_BLUZ,
};

static gboolean
dependency_slot_plausible(const guint8 *slot)
{
	if (slot[0] > MODULE_FUNCTION_MAX)
		return FALSE;
	/* An empty slot is all zeros. */
	return slot[0] != MODULE_FUNCTION_NONE || (slot[1] == 0 && read_u16(slot + 2) == 0);
}

static gboolean
starts_with_vector_table(const guint8 *image, gsize avail)
{
	return avail >= 4 && (read_u32(image) & MODULE_VECTOR_SP_MASK) == MODULE_VECTOR_SP_VALUE;
}

/*
 * How plausible a prefix at `offset` of an image is; -1 when it cannot be a
 * prefix at all.  The hard rules and the points follow what devices and
 * Particle's reader look at: sane addresses and function, empty dependency
 * slots that are really empty, a known platform and flags, a length that
 * fits the bytes present, and an offset that matches the platform's family.
 */
static int
score_prefix(const guint8 *image, gsize avail, gsize offset)
{
	const guint8 *p = image + offset;
	guint32 start, end;
	guint16 platform_id;
	guint8 function, flags;
	const HealerPlatform *platform;
	guint64 length;
	int score = 0;

	if (offset + MODULE_PREFIX_SIZE > avail)
		return -1;
	start = read_u32(p + MODULE_PREFIX_OFF_START_ADDRESS);
	end = read_u32(p + MODULE_PREFIX_OFF_END_ADDRESS);
	function = p[MODULE_PREFIX_OFF_FUNCTION];
	flags = p[MODULE_PREFIX_OFF_FLAGS];
	platform_id = read_u16(p + MODULE_PREFIX_OFF_PLATFORM_ID);
	if (end <= start)
		return -1;
	if (function == MODULE_FUNCTION_NONE || function > MODULE_FUNCTION_MAX)
		return -1;
	if (!dependency_slot_plausible(p + MODULE_PREFIX_OFF_DEPENDENCY) ||
	    !dependency_slot_plausible(p + MODULE_PREFIX_OFF_DEPENDENCY2))
		return -1;
	length = (guint64)end - start + MODULE_CRC_SIZE;
	/* The module must at least hold its own header and the smallest suffix. */
	if (length < offset + MODULE_PREFIX_SIZE + MODULE_SUFFIX_BASE_SIZE + MODULE_CRC_SIZE)
		return -1;

	platform = healer_platform_lookup(platform_id);
	if (platform != NULL)
		score++;
	if ((flags & ~MODULE_FLAGS_KNOWN) == 0)
		score++;
	if (length <= avail)
		score++;
	if (length == avail || ((flags & MODULE_FLAG_COMBINED) && length < avail))
		score++;

	switch (offset) {
	case MODULE_PREFIX_OFFSET_PLAIN:
		score++;
		break;
	case MODULE_PREFIX_OFFSET_STM32_VECTORS:
		if (starts_with_vector_table(image, avail) && platform != NULL && platform->generation == 2)
			score++;
		break;
	case MODULE_PREFIX_OFFSET_NRF52_VECTORS:
		if (starts_with_vector_table(image, avail) && platform != NULL && platform->generation == 3)
			score++;
		break;
	case MODULE_PREFIX_OFFSET_REALTEK:
		if (platform != NULL && platform->generation == 4)
			score++;
		break;
	case MODULE_PREFIX_OFFSET_CORE:
		if (platform_id == 0)
			score++;
		break;
	case MODULE_PREFIX_OFFSET_BLUZ:
		if (platform_id == 103)
			score++;
		break;
	default:
		break;
	}
	return score;
}

static gboolean
find_prefix(const guint8 *image, gsize avail, gsize *offset_out, GError **error)
{
	int best = -1;

	for (gsize i = 0; i < G_N_ELEMENTS(prefix_offsets); i++) {
		int score = score_prefix(image, avail, prefix_offsets[i]);
		if (score > best) {
			best = score;
			*offset_out = prefix_offsets[i];
		}
	}
	if (best < 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "no module prefix found (tried offsets 0, 0x184, 0x200, 0x20, 0x10c, 0xc0 "
		            "of %" G_GSIZE_FORMAT " bytes)",
		            avail);
		return FALSE;
	}
	return TRUE;
}

/* ---- extensions ------------------------------------------------------ */

/*
 * Walks TLVs in image[pos, limit).  Stops after an END extension when
 * stop_at_end, or when `limit` is reached exactly.  Returns the position
 * after the last extension, or 0 with a fault recorded.
 */
static gsize
walk_extensions(HealerModule *module, const guint8 *image, gsize pos, gsize limit, gboolean stop_at_end, GPtrArray *out,
                gboolean *saw_end, const char *where)
{
	*saw_end = FALSE;
	while (pos < limit) {
		HealerModuleExtension *ext;
		guint16 type, length;

		if (limit - pos < MODULE_EXTENSION_HEADER_SIZE) {
			add_fault(module,
			          "bad %s extension at offset %" G_GSIZE_FORMAT ": %" G_GSIZE_FORMAT
			          " bytes left, too few for an extension header",
			          where, module->file_offset + pos, limit - pos);
			return 0;
		}
		type = read_u16(image + pos);
		length = read_u16(image + pos + 2);
		if (type == MODULE_EXTENSION_INVALID) {
			add_fault(module, "bad %s extension at offset %" G_GSIZE_FORMAT ": type 0xffff (invalid)",
			          where, module->file_offset + pos);
			return 0;
		}
		if (length < MODULE_EXTENSION_HEADER_SIZE || length > limit - pos) {
			add_fault(module, "bad %s extension at offset %" G_GSIZE_FORMAT ": length %u %s", where,
			          module->file_offset + pos, length,
			          length < MODULE_EXTENSION_HEADER_SIZE ? "is shorter than its header"
			                                                : "runs past the end of its area");
			return 0;
		}
		ext = g_new0(HealerModuleExtension, 1);
		ext->type = type;
		ext->length = length;
		ext->offset = pos;
		ext->body =
		        g_bytes_new(image + pos + MODULE_EXTENSION_HEADER_SIZE, length - MODULE_EXTENSION_HEADER_SIZE);
		g_ptr_array_add(out, ext);
		pos += length;
		if (type == MODULE_EXTENSION_END) {
			*saw_end = TRUE;
			if (stop_at_end)
				return pos;
		}
	}
	return pos;
}

/* Reads what the known extensions say into the module's fields. */
static void
apply_extension(HealerModule *module, const HealerModuleExtension *ext)
{
	gsize size = 0;
	const guint8 *body = g_bytes_get_data(ext->body, &size);
	gsize at = module->file_offset + ext->offset;

	switch (ext->type) {
	case MODULE_EXTENSION_PRODUCT_DATA:
		if (ext->length != MODULE_EXTENSION_PRODUCT_DATA_LENGTH) {
			add_fault(module,
			          "bad product-data extension at offset %" G_GSIZE_FORMAT ": length %u, expected %u",
			          at, ext->length, MODULE_EXTENSION_PRODUCT_DATA_LENGTH);
			return;
		}
		/* Body: 0xFFFF padding, u16 product id, u16 product version (as in release binaries). */
		module->has_product = TRUE;
		module->product_id = read_u16(body + 2);
		module->product_version = read_u16(body + 4);
		break;
	case MODULE_EXTENSION_DEPENDENCY: {
		HealerModuleDependency dep = {0};
		if (ext->length != MODULE_EXTENSION_DEPENDENCY_LENGTH) {
			add_fault(module,
			          "bad dependency extension at offset %" G_GSIZE_FORMAT ": length %u, expected %u", at,
			          ext->length, MODULE_EXTENSION_DEPENDENCY_LENGTH);
			return;
		}
		dep.function = body[0];
		dep.index = body[1];
		dep.version = read_u16(body + 2);
		dep.target = read_u32(body + 4);
		dep.from_extension = TRUE;
		if (dep.function == MODULE_FUNCTION_NONE || dep.function > MODULE_FUNCTION_MAX) {
			add_fault(module, "bad dependency extension at offset %" G_GSIZE_FORMAT ": function %u", at,
			          dep.function);
			return;
		}
		g_array_append_val(module->dependencies, dep);
		break;
	}
	case MODULE_EXTENSION_DYNAMIC_LOCATION:
		if (ext->length != MODULE_EXTENSION_DYNAMIC_LOCATION_LENGTH)
			add_fault(module,
			          "bad dynamic-location extension at offset %" G_GSIZE_FORMAT
			          ": length %u, expected %u",
			          at, ext->length, MODULE_EXTENSION_DYNAMIC_LOCATION_LENGTH);
		break;
	case MODULE_EXTENSION_HASH:
		if (size < 2 || body[1] + 2u > size)
			add_fault(module, "bad hash extension at offset %" G_GSIZE_FORMAT ": hash length does not fit",
			          at);
		break;
	case MODULE_EXTENSION_NAME:
		g_free(module->name);
		/* An empty NAME has no body at all (GBytes may hand back NULL): an empty name. */
		module->name = size > 0 ? g_strndup((const char *)body, size) : g_strdup("");
		if (!g_utf8_validate(module->name, -1, NULL)) {
			add_fault(module, "bad name extension at offset %" G_GSIZE_FORMAT ": not UTF-8", at);
			g_clear_pointer(&module->name, g_free);
		}
		break;
	default:
		/* Other types are carried as they are; devices ignore ones they do not know. */
		break;
	}
}

/* ---- one module ------------------------------------------------------ */

static void
read_prefix(HealerModule *module, const guint8 *p)
{
	module->start_address = read_u32(p + MODULE_PREFIX_OFF_START_ADDRESS);
	module->end_address = read_u32(p + MODULE_PREFIX_OFF_END_ADDRESS);
	module->mcu_target = p[MODULE_PREFIX_OFF_RESERVED];
	module->flags = p[MODULE_PREFIX_OFF_FLAGS];
	module->version = read_u16(p + MODULE_PREFIX_OFF_VERSION);
	module->platform_id = read_u16(p + MODULE_PREFIX_OFF_PLATFORM_ID);
	module->function = p[MODULE_PREFIX_OFF_FUNCTION];
	module->index = p[MODULE_PREFIX_OFF_INDEX];
	for (guint slot = 0; slot < MODULE_PREFIX_DEPENDENCY_SLOTS; slot++) {
		const guint8 *d = p + MODULE_PREFIX_OFF_DEPENDENCY + slot * MODULE_DEPENDENCY_SIZE;
		HealerModuleDependency dep = {.function = d[0], .index = d[1], .version = read_u16(d + 2)};
		if (dep.function != MODULE_FUNCTION_NONE)
			g_array_append_val(module->dependencies, dep);
	}
}

static void
read_prefix_extensions(HealerModule *module, const guint8 *image, gsize *pos, gsize limit)
{
	gboolean saw_end = FALSE;
	gsize end;

	end = walk_extensions(module, image, *pos, limit, TRUE, module->prefix_extensions, &saw_end, "prefix");
	if (end == 0)
		return;
	if (!saw_end) {
		add_fault(module, "prefix extensions at offset %" G_GSIZE_FORMAT " do not end with an END extension",
		          module->file_offset + *pos);
		return;
	}
	for (guint i = 0; i < module->prefix_extensions->len; i++)
		apply_extension(module, g_ptr_array_index(module->prefix_extensions, i));
	*pos = end;
}

static void
read_compressed_header(HealerModule *module, const guint8 *image, gsize *pos, gsize limit)
{
	const guint8 *h = image + *pos;

	if (limit - *pos < MODULE_COMPRESSED_HEADER_SIZE) {
		add_fault(module,
		          "COMPRESSED module has no room for its %u-byte compression header at offset %" G_GSIZE_FORMAT,
		          MODULE_COMPRESSED_HEADER_SIZE, module->file_offset + *pos);
		return;
	}
	module->compressed_header_present = TRUE;
	module->compressed.header_size = read_u16(h);
	module->compressed.method = h[2];
	module->compressed.window_bits = h[3];
	module->compressed.original_size = read_u32(h + 4);
	if (module->compressed.header_size < MODULE_COMPRESSED_HEADER_SIZE ||
	    module->compressed.header_size > limit - *pos) {
		add_fault(module, "bad compression header at offset %" G_GSIZE_FORMAT ": header size %u",
		          module->file_offset + *pos, module->compressed.header_size);
		return;
	}
	if (module->compressed.method != MODULE_COMPRESSION_RAW_DEFLATE)
		add_fault(module,
		          "bad compression header at offset %" G_GSIZE_FORMAT
		          ": method %u (only 0, raw Deflate, exists)",
		          module->file_offset + *pos, module->compressed.method);
	if (module->compressed.window_bits != 0 &&
	    (module->compressed.window_bits < 8 || module->compressed.window_bits > 15))
		add_fault(module, "bad compression header at offset %" G_GSIZE_FORMAT ": window bits %u (8..15 or 0)",
		          module->file_offset + *pos, module->compressed.window_bits);
	*pos += module->compressed.header_size;
}

/*
 * The suffix is read backwards from the module's end: CRC, size, SHA-256,
 * reserved, and product id/version when the base is 40 bytes.  Larger
 * suffixes hold extensions below the base; the product then comes from a
 * PRODUCT_DATA extension when the base is 36 bytes.
 */
static void
read_suffix(HealerModule *module, const guint8 *image, gsize body_start)
{
	gsize len = module->length;
	gsize suffix_end = len - MODULE_CRC_SIZE;
	gsize size;
	gsize base;

	size = module->suffix_size = read_u16(image + len - MODULE_SUFFIX_FROM_END_SIZE);
	memcpy(module->sha256_stored, image + len - MODULE_SUFFIX_FROM_END_SHA256, HEALER_SHA256_SIZE);
	if (size < MODULE_SUFFIX_BASE_SIZE || size > suffix_end - body_start) {
		add_fault(module,
		          "suffix size %" G_GSIZE_FORMAT " at offset %" G_GSIZE_FORMAT
		          " is out of range (%u..%" G_GSIZE_FORMAT ")",
		          size, module->file_offset + len - MODULE_SUFFIX_FROM_END_SIZE, MODULE_SUFFIX_BASE_SIZE,
		          suffix_end - body_start);
		module->payload_size = suffix_end > module->payload_offset ? suffix_end - module->payload_offset : 0;
		return;
	}
	base = size;
	if (size > MODULE_SUFFIX_PRODUCT_SIZE) {
		gboolean saw_end = FALSE;
		gsize pos;

		/* Extensions run until an END, or until only the 36-byte base is left. */
		pos = walk_extensions(module, image, suffix_end - size, suffix_end - MODULE_SUFFIX_BASE_SIZE, TRUE,
		                      module->suffix_extensions, &saw_end, "suffix");
		if (pos == 0)
			return;
		base = suffix_end - pos;
		if (base != MODULE_SUFFIX_BASE_SIZE && base != MODULE_SUFFIX_PRODUCT_SIZE) {
			add_fault(module,
			          "suffix extensions leave %" G_GSIZE_FORMAT " bytes for the suffix base "
			          "(must be 36 or 40) at offset %" G_GSIZE_FORMAT,
			          base, module->file_offset + pos);
			return;
		}
		for (guint i = 0; i < module->suffix_extensions->len; i++)
			apply_extension(module, g_ptr_array_index(module->suffix_extensions, i));
	} else if (size != MODULE_SUFFIX_BASE_SIZE && size != MODULE_SUFFIX_PRODUCT_SIZE) {
		add_fault(module,
		          "suffix size %" G_GSIZE_FORMAT " at offset %" G_GSIZE_FORMAT
		          " is neither 36, 40 nor larger with extensions",
		          size, module->file_offset + len - MODULE_SUFFIX_FROM_END_SIZE);
		return;
	}
	if (base == MODULE_SUFFIX_PRODUCT_SIZE) {
		module->has_product = TRUE;
		module->product_id = read_u16(image + len - MODULE_SUFFIX_FROM_END_PRODUCT_ID);
		module->product_version = read_u16(image + len - MODULE_SUFFIX_FROM_END_PRODUCT_VERSION);
	}
	if (suffix_end - size >= module->payload_offset)
		module->payload_size = suffix_end - size - module->payload_offset;
	else
		add_fault(module, "suffix of %" G_GSIZE_FORMAT " bytes overlaps the module header", size);
}

static void
check_integrity(HealerModule *module, const guint8 *image)
{
	gsize len = module->length;

	module->crc_stored = read_u32_be(image + len - MODULE_CRC_SIZE);
	module->crc_computed = healer_crc32(image, len - MODULE_CRC_SIZE);
	module->crc_ok = module->crc_stored == module->crc_computed;
	if (!module->crc_ok)
		add_fault(module, "CRC-32 stored 0x%08x computed 0x%08x", module->crc_stored, module->crc_computed);

	if (module->flags & MODULE_FLAG_DROP_MODULE_INFO) {
		/* These images hash their payload only: prefix and suffix are not flashed. */
		gsize from = module->prefix_offset + MODULE_PREFIX_SIZE;
		gsize to = from;
		/* A bad suffix size was already reported; hash nothing rather than run off the image. */
		if (module->suffix_size <= len - MODULE_CRC_SIZE && len - MODULE_CRC_SIZE - module->suffix_size > from)
			to = len - MODULE_CRC_SIZE - module->suffix_size;
		healer_sha256(image + from, to - from, module->sha256_computed);
	} else {
		healer_sha256(image, len - MODULE_SUFFIX_FROM_END_SHA256, module->sha256_computed);
	}
	module->sha_ok = memcmp(module->sha256_stored, module->sha256_computed, HEALER_SHA256_SIZE) == 0;
	if (!module->sha_ok) {
		g_autofree char *stored = healer_sha256_to_hex(module->sha256_stored);
		g_autofree char *computed = healer_sha256_to_hex(module->sha256_computed);
		add_fault(module, "SHA-256 stored %s computed %s", stored, computed);
	}
}

static void
check_flags(HealerModule *module)
{
	if (module->flags & ~MODULE_FLAGS_KNOWN)
		add_fault(module, "unknown flag bits 0x%02x", module->flags & ~MODULE_FLAGS_KNOWN);
	if ((module->flags & MODULE_FLAG_DROP_MODULE_INFO) && module->prefix_offset != 0)
		add_fault(module, "DROP_MODULE_INFO needs the prefix at offset 0, found at 0x%" G_GSIZE_MODIFIER "x",
		          module->prefix_offset);
	if ((module->flags & MODULE_FLAG_COMPRESSED) && module->function != MODULE_FUNCTION_SYSTEM_PART &&
	    module->function != MODULE_FUNCTION_USER_PART && module->function != MODULE_FUNCTION_ASSET)
		add_fault(module, "COMPRESSED is only allowed for system-part, user-part and asset modules, not %s",
		          healer_module_function_to_string(module->function));
	for (guint i = 0; i < module->dependencies->len; i++) {
		const HealerModuleDependency *dep = &g_array_index(module->dependencies, HealerModuleDependency, i);
		if (dep->function > MODULE_FUNCTION_MAX)
			add_fault(module, "dependency %u names unknown function %u", i + 1, dep->function);
	}
}

static HealerModule *
parse_one(const guint8 *data, gsize len, gsize file_offset, GError **error)
{
	g_autoptr(HealerModule) module = module_new();
	const guint8 *image = data + file_offset;
	gsize avail = len - file_offset;
	gsize prefix_offset = 0;
	gsize pos;
	guint64 length;

	if (!find_prefix(image, avail, &prefix_offset, error)) {
		g_prefix_error(error, "at offset %" G_GSIZE_FORMAT ": ", file_offset);
		return NULL;
	}
	module->file_offset = file_offset;
	module->prefix_offset = prefix_offset;
	read_prefix(module, image + prefix_offset);
	length = (guint64)module->end_address - module->start_address + MODULE_CRC_SIZE;
	if (length > avail) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "truncated at %" G_GSIZE_FORMAT " of %" G_GUINT64_FORMAT " bytes "
		            "(module at offset %" G_GSIZE_FORMAT ": end 0x%08x - start 0x%08x + 4)",
		            avail, length, file_offset, module->end_address, module->start_address);
		return NULL;
	}
	module->length = (gsize)length;

	pos = prefix_offset + MODULE_PREFIX_SIZE;
	if (module->flags & MODULE_FLAG_PREFIX_EXTENSIONS)
		read_prefix_extensions(module, image, &pos, module->length - MODULE_CRC_SIZE - MODULE_SUFFIX_BASE_SIZE);
	if (module->flags & MODULE_FLAG_COMPRESSED)
		read_compressed_header(module, image, &pos, module->length - MODULE_CRC_SIZE - MODULE_SUFFIX_BASE_SIZE);
	module->payload_offset = pos;
	read_suffix(module, image, pos);
	check_flags(module);
	check_integrity(module, image);
	return g_steal_pointer(&module);
}

GPtrArray *
healer_module_parse(const guint8 *data, gsize len, GError **error)
{
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_module_free);
	gsize offset = 0;

	if (len == 0) {
		g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "empty file");
		return NULL;
	}
	for (;;) {
		HealerModule *module = parse_one(data, len, offset, error);
		if (module == NULL)
			return NULL;
		g_ptr_array_add(modules, module);
		offset += module->length;
		if (!(module->flags & MODULE_FLAG_COMBINED))
			break;
		if (offset == len) {
			add_fault(module, "COMBINED flag set but no module follows at offset %" G_GSIZE_FORMAT, offset);
			break;
		}
	}
	if (offset < len) {
		HealerModule *last = g_ptr_array_index(modules, modules->len - 1);
		add_fault(last,
		          "%" G_GSIZE_FORMAT " unexpected bytes after the module end at offset %" G_GSIZE_FORMAT
		          " (length is end - start + 4 = %" G_GSIZE_FORMAT ")",
		          len - offset, offset, last->length);
	}
	return g_steal_pointer(&modules);
}

HealerModule *
healer_module_parse_header(const guint8 *data, gsize len, GError **error)
{
	g_autoptr(HealerModule) module = module_new();
	gsize prefix_offset = 0;

	if (!find_prefix(data, len, &prefix_offset, error))
		return NULL;
	module->header_only = TRUE;
	module->prefix_offset = prefix_offset;
	read_prefix(module, data + prefix_offset);
	module->length = (gsize)((guint64)module->end_address - module->start_address + MODULE_CRC_SIZE);
	check_flags(module);
	return g_steal_pointer(&module);
}

GPtrArray *
healer_module_parse_file(const char *path, GError **error)
{
	g_autoptr(GMappedFile) mapped = NULL;
	g_autoptr(GError) local_error = NULL;
	GPtrArray *modules;

	mapped = g_mapped_file_new(path, FALSE, &local_error);
	if (mapped == NULL) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "%s", local_error->message);
		return NULL;
	}
	modules = healer_module_parse((const guint8 *)g_mapped_file_get_contents(mapped),
	                              g_mapped_file_get_length(mapped), error);
	if (modules == NULL)
		g_prefix_error(error, "%s: ", path);
	return modules;
}

char *
healer_module_dependency_to_string(const HealerModuleDependency *dep)
{
	const char *function = healer_module_function_to_string(dep->function);
	g_autofree char *unknown = NULL;

	if (function == NULL)
		function = unknown = g_strdup_printf("function %u", dep->function);
	if (dep->from_extension && dep->target != 0)
		return g_strdup_printf("%s %u >= %u (MCU target 0x%x)", function, dep->index, dep->version,
		                       dep->target);
	return g_strdup_printf("%s %u >= %u", function, dep->index, dep->version);
}
