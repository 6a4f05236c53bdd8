/*
 * GET_MODULE_INFO replies (particle-module-info.h): both formats, written by
 * healer_particle_module_info_encode() and by hand here from the wire format (so the test does not
 * only agree with itself), the old format's types and validity mapped onto functions and checks,
 * other stores left out, failures computed and described, the plan state with its dependencies,
 * and every refusal with its whole message.
 */
#include <string.h>

#include "healer-error.h"
#include "healer/module-format.h"
#include "module-reader.h"
#include "particle-module-info.h"

#define PHOTON 6
#define BORON  13

static void
expect_refused(const GByteArray *bytes, const char *message)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerParticleModuleInfo) info = healer_particle_module_info_parse(bytes->data, bytes->len, &error);

	g_assert_null(info);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr(error->message, ==, message);
}

static HealerParticleModuleInfo *
parse_ok(const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;
	HealerParticleModuleInfo *info = healer_particle_module_info_parse(data, len, &error);

	g_assert_no_error(error);
	g_assert_nonnull(info);
	return info;
}

static HealerParticleModuleInfo *
parse_bytes(GBytes *bytes)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	return parse_ok(data, len);
}

static const HealerParticleModule *
module_at(const HealerParticleModuleInfo *info, guint i)
{
	g_assert_cmpuint(i, <, info->modules->len);
	return g_ptr_array_index(info->modules, i);
}

static void
assert_module(const HealerParticleModule *m, guint function, guint index, guint version, guint32 checked,
              guint32 passed)
{
	g_assert_cmpuint(m->function, ==, function);
	g_assert_cmpuint(m->index, ==, index);
	g_assert_cmpuint(m->version, ==, version);
	g_assert_cmphex(m->checked, ==, checked);
	g_assert_cmphex(m->passed, ==, passed);
}

static void
assert_dependency(const HealerParticleModule *m, guint k, guint function, guint index, guint version)
{
	const HealerModuleDependency *d;

	g_assert_cmpuint(k, <, m->dependencies->len);
	d = &g_array_index(m->dependencies, HealerModuleDependency, k);
	g_assert_cmpuint(d->function, ==, function);
	g_assert_cmpuint(d->index, ==, index);
	g_assert_cmpuint(d->version, ==, version);
}

static void
assert_failure(const HealerParticleModuleInfo *info, guint i, const char *expected)
{
	g_autofree char *text = healer_particle_module_describe_failure(info, module_at(info, i));

	g_assert_cmpstr(text, ==, expected);
}

/* ---- protobuf by hand ------------------------------------------------------------------------- */

static void
pb_varint(GByteArray *b, guint64 v)
{
	do {
		guint8 byte = (guint8)(v & 0x7F);
		v >>= 7;
		if (v != 0)
			byte |= 0x80;
		g_byte_array_append(b, &byte, 1);
	} while (v != 0);
}

static void
pb_uint(GByteArray *b, guint field, guint64 v)
{
	pb_varint(b, (guint64)field << 3 | 0);
	pb_varint(b, v);
}

static void
pb_fixed32(GByteArray *b, guint field, guint32 v)
{
	guint8 le[4] = {(guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24)};

	pb_varint(b, (guint64)field << 3 | 5);
	g_byte_array_append(b, le, 4);
}

static void
pb_bytes(GByteArray *b, guint field, const guint8 *data, gsize len)
{
	pb_varint(b, (guint64)field << 3 | 2);
	pb_varint(b, len);
	g_byte_array_append(b, data, (guint)len);
}

/* Appends `sub` as field `field` and frees it. */
static void
pb_message(GByteArray *b, guint field, GByteArray *sub)
{
	pb_bytes(b, field, sub->data, sub->len);
	g_byte_array_unref(sub);
}

/* {type=1, index=2, version=3}: both formats' dependency messages. */
static GByteArray *
pb_dependency(guint type, guint index, guint64 version)
{
	GByteArray *d = g_byte_array_new();

	pb_uint(d, 1, type);
	pb_uint(d, 2, index);
	pb_uint(d, 3, version);
	return d;
}

static GByteArray *
pb_old_module(guint64 type, guint64 index, guint64 version, guint32 size, guint32 validity)
{
	GByteArray *m = g_byte_array_new();

	pb_uint(m, 1, type);
	pb_uint(m, 2, index);
	pb_uint(m, 3, version);
	pb_uint(m, 4, size);
	if (validity != 0)
		pb_uint(m, 5, validity);
	return m;
}

static GByteArray *
pb_new_module(guint64 type, guint64 index, guint64 version, guint store, guint32 checked, guint32 passed)
{
	GByteArray *m = g_byte_array_new();

	pb_uint(m, 1, type);
	pb_uint(m, 2, index);
	pb_uint(m, 3, version);
	if (store != 0)
		pb_uint(m, 4, store);
	pb_fixed32(m, 6, checked);
	pb_fixed32(m, 7, passed);
	return m;
}

/* ---- names -------------------------------------------------------------------------------------- */

static void
test_names(void)
{
	g_assert_cmpstr(healer_particle_module_info_format_to_string(HEALER_PARTICLE_MODULE_INFO_OLD), ==, "old");
	g_assert_cmpstr(healer_particle_module_info_format_to_string(HEALER_PARTICLE_MODULE_INFO_NEW), ==, "new");
	g_assert_cmpstr(healer_particle_check_to_string(0x02), ==, "integrity");
	g_assert_cmpstr(healer_particle_check_to_string(0x04), ==, "dependencies");
	g_assert_cmpstr(healer_particle_check_to_string(0x08), ==, "range");
	g_assert_cmpstr(healer_particle_check_to_string(0x10), ==, "platform");
	g_assert_cmpstr(healer_particle_check_to_string(0x20), ==, "product");
	g_assert_cmpstr(healer_particle_check_to_string(0x40), ==, "dependencies-full");
	g_assert_null(healer_particle_check_to_string(0));
	g_assert_null(healer_particle_check_to_string(0x01));
	g_assert_null(healer_particle_check_to_string(0x06));
	g_assert_null(healer_particle_check_to_string(0x80));
}

/* ---- the old format ----------------------------------------------------------------------------- */

/* A Photon whose application needs Device OS 2.2.0 while it runs 1.1.2: dependency safe mode. */
static GPtrArray *
photon_in_safe_mode(void)
{
	GPtrArray *modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);
	HealerParticleModule *m;
	const guint32 both = HEALER_PARTICLE_CHECK_INTEGRITY | HEALER_PARTICLE_CHECK_DEPENDENCIES;

	m = healer_particle_module_new(MODULE_FUNCTION_BOOTLOADER, 0, 1100);
	m->checked = m->passed = both;
	m->size = 16384;
	g_ptr_array_add(modules, m);
	m = healer_particle_module_new(MODULE_FUNCTION_SYSTEM_PART, 1, 1102);
	m->checked = m->passed = both;
	m->size = 262144;
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_BOOTLOADER, 0, 1000);
	g_ptr_array_add(modules, m);
	m = healer_particle_module_new(MODULE_FUNCTION_SYSTEM_PART, 2, 1102);
	m->checked = m->passed = both;
	m->size = 262144;
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_SYSTEM_PART, 1, 1102);
	g_ptr_array_add(modules, m);
	m = healer_particle_module_new(MODULE_FUNCTION_USER_PART, 1, 6);
	m->checked = both;
	m->passed = HEALER_PARTICLE_CHECK_INTEGRITY;
	m->size = 4242;
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_SYSTEM_PART, 2, 2202);
	g_ptr_array_add(modules, m);
	return modules;
}

static void
check_photon(const HealerParticleModuleInfo *info, HealerParticleModuleInfoFormat format)
{
	const guint32 both = HEALER_PARTICLE_CHECK_INTEGRITY | HEALER_PARTICLE_CHECK_DEPENDENCIES;

	g_assert_cmpint(info->format, ==, format);
	g_assert_cmpuint(info->modules->len, ==, 4);
	assert_module(module_at(info, 0), MODULE_FUNCTION_BOOTLOADER, 0, 1100, both, both);
	assert_module(module_at(info, 1), MODULE_FUNCTION_SYSTEM_PART, 1, 1102, both, both);
	assert_module(module_at(info, 2), MODULE_FUNCTION_SYSTEM_PART, 2, 1102, both, both);
	assert_module(module_at(info, 3), MODULE_FUNCTION_USER_PART, 1, 6, both, HEALER_PARTICLE_CHECK_INTEGRITY);
	g_assert_cmpuint(module_at(info, 1)->size, ==, 262144);
	g_assert_cmpuint(module_at(info, 3)->size, ==, 4242);
	assert_dependency(module_at(info, 1), 0, MODULE_FUNCTION_BOOTLOADER, 0, 1000);
	assert_dependency(module_at(info, 2), 0, MODULE_FUNCTION_SYSTEM_PART, 1, 1102);
	assert_dependency(module_at(info, 3), 0, MODULE_FUNCTION_SYSTEM_PART, 2, 2202);
	g_assert_cmpuint(module_at(info, 0)->dependencies->len, ==, 0);
	g_assert_cmphex(healer_particle_module_failed(module_at(info, 3)), ==, HEALER_PARTICLE_CHECK_DEPENDENCIES);
	g_assert_cmphex(healer_particle_module_failed(module_at(info, 2)), ==, 0);
	g_assert_true(healer_particle_module_info_has_dependency_failure(info));
	assert_failure(info, 0, NULL);
	assert_failure(info, 3, "dependency check failed: needs system-part 2 version >= 2202 (has 1102)");
}

static void
test_old_encoded(void)
{
	g_autoptr(GPtrArray) modules = photon_in_safe_mode();
	g_autoptr(GBytes) bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_OLD);
	g_autoptr(HealerParticleModuleInfo) info = parse_bytes(bytes);

	check_photon(info, HEALER_PARTICLE_MODULE_INFO_OLD);
	/* The old format carries no hash and no size limit. */
	for (guint i = 0; i < info->modules->len; i++) {
		g_assert_false(module_at(info, i)->has_hash);
		g_assert_cmpuint(module_at(info, i)->max_size, ==, 0);
	}
}

static void
test_old_by_hand(void)
{
	/* Every old type, each with a dependency of the next old type, and both validity bits. */
	const guint expected_function[] = {0,
	                                   MODULE_FUNCTION_BOOTLOADER,
	                                   MODULE_FUNCTION_SYSTEM_PART,
	                                   MODULE_FUNCTION_USER_PART,
	                                   MODULE_FUNCTION_MONO_FIRMWARE,
	                                   MODULE_FUNCTION_NCP_FIRMWARE,
	                                   MODULE_FUNCTION_RADIO_STACK};
	g_autoptr(GByteArray) reply = g_byte_array_new();
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	const guint32 both = HEALER_PARTICLE_CHECK_INTEGRITY | HEALER_PARTICLE_CHECK_DEPENDENCIES;

	for (guint type = 1; type <= 6; type++) {
		GByteArray *m = pb_old_module(type, type + 10, 100 * type, 1000 * type, type == 3 ? 0x01 : 0);
		pb_message(m, 6, pb_dependency(type % 6 + 1, 0, 7 * type));
		pb_message(reply, 1, m);
	}
	/* A user part failing both checks, its dependency slot 2 empty (type 0): dropped. */
	{
		GByteArray *m = pb_old_module(3, 2, 9, 512, 0x03);
		pb_message(m, 6, pb_dependency(2, 1, 300));
		pb_message(m, 6, pb_dependency(0, 0, 0));
		pb_message(reply, 1, m);
	}
	info = parse_ok(reply->data, reply->len);
	g_assert_cmpint(info->format, ==, HEALER_PARTICLE_MODULE_INFO_OLD);
	g_assert_cmpuint(info->modules->len, ==, 7);
	for (guint type = 1; type <= 6; type++) {
		const HealerParticleModule *m = module_at(info, type - 1);
		assert_module(m, expected_function[type], type + 10, 100 * type, both,
		              type == 3 ? HEALER_PARTICLE_CHECK_DEPENDENCIES : both);
		g_assert_cmpuint(m->size, ==, 1000 * type);
		g_assert_cmpuint(m->dependencies->len, ==, 1);
		assert_dependency(m, 0, expected_function[type % 6 + 1], 0, 7 * type);
	}
	assert_module(module_at(info, 6), MODULE_FUNCTION_USER_PART, 2, 9, both, 0);
	g_assert_cmpuint(module_at(info, 6)->dependencies->len, ==, 1);
	assert_dependency(module_at(info, 6), 0, MODULE_FUNCTION_SYSTEM_PART, 1, 300);

	assert_failure(info, 2, "integrity check failed (its CRC does not match: the module is corrupt)");
	/* The system part listed is index 12 (indexes are type + 10): none at index 1. */
	assert_failure(info, 6,
	               "dependency check failed: needs system-part 1 version >= 300 (has none); "
	               "integrity check failed (its CRC does not match: the module is corrupt)");
	g_assert_true(healer_particle_module_info_has_dependency_failure(info));
}

static void
test_old_wins(void)
{
	/* A reply with both fields is read in the old format, as particle-usb reads it. */
	g_autoptr(GByteArray) reply = g_byte_array_new();
	g_autoptr(HealerParticleModuleInfo) info = NULL;

	pb_message(reply, 2, pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 6000, 0, 0x1E, 0x1E));
	pb_message(reply, 1, pb_old_module(2, 1, 1102, 0, 0));
	info = parse_ok(reply->data, reply->len);
	g_assert_cmpint(info->format, ==, HEALER_PARTICLE_MODULE_INFO_OLD);
	g_assert_cmpuint(info->modules->len, ==, 1);
	g_assert_cmpuint(module_at(info, 0)->version, ==, 1102);
}

static void
test_old_encode_leaves_out(void)
{
	/* Resource, settings and asset have no old type; range failures no old bit. */
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	HealerParticleModule *m;

	g_ptr_array_add(modules, healer_particle_module_new(MODULE_FUNCTION_RESOURCE, 0, 1));
	m = healer_particle_module_new(MODULE_FUNCTION_SYSTEM_PART, 1, 4000);
	m->checked = 0x1E;
	m->passed = 0x1E & ~(guint32)HEALER_PARTICLE_CHECK_RANGE;
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_ASSET, 0, 1);
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_BOOTLOADER, 0, 3000);
	g_ptr_array_add(modules, m);
	g_ptr_array_add(modules, healer_particle_module_new(MODULE_FUNCTION_ASSET, 0, 1));
	bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_OLD);
	info = parse_bytes(bytes);
	g_assert_cmpuint(info->modules->len, ==, 1);
	assert_module(module_at(info, 0), MODULE_FUNCTION_SYSTEM_PART, 1, 4000, 0x06, 0x06);
	g_assert_cmpuint(module_at(info, 0)->dependencies->len, ==, 1);
	assert_dependency(module_at(info, 0), 0, MODULE_FUNCTION_BOOTLOADER, 0, 3000);
}

/* ---- the new format ----------------------------------------------------------------------------- */

static void
test_new_encoded(void)
{
	g_autoptr(GPtrArray) modules = photon_in_safe_mode();
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	HealerParticleModule *sp1 = g_ptr_array_index(modules, 1);

	sp1->has_hash = TRUE;
	for (guint i = 0; i < sizeof(sp1->hash); i++)
		sp1->hash[i] = (guint8)(0xA0 + i);
	sp1->max_size = 393216;
	bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_NEW);
	info = parse_bytes(bytes);
	check_photon(info, HEALER_PARTICLE_MODULE_INFO_NEW);
	g_assert_true(module_at(info, 1)->has_hash);
	g_assert_cmpmem(module_at(info, 1)->hash, 32, sp1->hash, 32);
	g_assert_cmpuint(module_at(info, 1)->max_size, ==, 393216);
	g_assert_false(module_at(info, 0)->has_hash);
	g_assert_cmpuint(module_at(info, 0)->max_size, ==, 0);
}

static void
test_new_round_trip_checks(void)
{
	/* Every check bit survives the new format, passed or failed, unknown ones too. */
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	HealerParticleModule *m = healer_particle_module_new(MODULE_FUNCTION_ASSET, 255, 65535);

	m->checked = 0xFFFFFFFF;
	m->passed = 0x80000001;
	m->size = 0xFFFFFFFF;
	g_ptr_array_add(modules, m);
	bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_NEW);
	info = parse_bytes(bytes);
	assert_module(module_at(info, 0), MODULE_FUNCTION_ASSET, 255, 65535, 0xFFFFFFFF, 0x80000001);
	g_assert_cmpuint(module_at(info, 0)->size, ==, 0xFFFFFFFF);
	g_assert_cmphex(healer_particle_module_failed(module_at(info, 0)), ==, 0x7FFFFFFE);
}

static void
test_new_by_hand_stores(void)
{
	/* A Boron on 6.1.1 listing its factory and backup stores too: only the main store is kept. */
	g_autoptr(GByteArray) reply = g_byte_array_new();
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	guint8 hash[32];
	GByteArray *m;

	for (guint i = 0; i < sizeof(hash); i++)
		hash[i] = (guint8)i;
	m = pb_new_module(MODULE_FUNCTION_BOOTLOADER, 0, 2300, 0, 0x1E, 0x1E);
	pb_bytes(m, 8, hash, sizeof(hash));
	pb_uint(m, 5, 49152);
	pb_uint(m, 11, 41000);
	pb_message(reply, 2, m);
	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 1 /* factory */, 0x1E, 0x1E);
	pb_message(reply, 2, m);
	m = pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 6101, 0, 0x1E, 0x1E);
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_BOOTLOADER, 0, 2300));
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_RADIO_STACK, 0, 202));
	{
		/* asset_dependencies and security: read past, not kept. */
		GByteArray *asset = g_byte_array_new();
		GByteArray *security = g_byte_array_new();
		pb_bytes(asset, 1, hash, sizeof(hash));
		pb_bytes(asset, 2, (const guint8 *)"tracker.bin", 11);
		pb_message(m, 10, asset);
		pb_uint(security, 1, 1);
		pb_message(m, 12, security);
		pb_uint(m, 99, 12345); /* a field this build does not know */
	}
	pb_message(reply, 2, m);
	m = pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 5000, 2 /* backup */, 0x1E, 0x02);
	pb_message(reply, 2, m);
	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 3, 0, 0x1E, 0x1A);
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_SYSTEM_PART, 1, 6200));
	pb_message(reply, 2, m);
	m = pb_new_module(MODULE_FUNCTION_RADIO_STACK, 0, 202, 3 /* scratchpad */, 0, 0);
	pb_message(reply, 2, m);

	info = parse_ok(reply->data, reply->len);
	g_assert_cmpint(info->format, ==, HEALER_PARTICLE_MODULE_INFO_NEW);
	g_assert_cmpuint(info->modules->len, ==, 3);
	assert_module(module_at(info, 0), MODULE_FUNCTION_BOOTLOADER, 0, 2300, 0x1E, 0x1E);
	g_assert_true(module_at(info, 0)->has_hash);
	g_assert_cmpmem(module_at(info, 0)->hash, 32, hash, 32);
	g_assert_cmpuint(module_at(info, 0)->max_size, ==, 49152);
	g_assert_cmpuint(module_at(info, 0)->size, ==, 41000);
	assert_module(module_at(info, 1), MODULE_FUNCTION_SYSTEM_PART, 1, 6101, 0x1E, 0x1E);
	g_assert_cmpuint(module_at(info, 1)->dependencies->len, ==, 2);
	assert_dependency(module_at(info, 1), 0, MODULE_FUNCTION_BOOTLOADER, 0, 2300);
	assert_dependency(module_at(info, 1), 1, MODULE_FUNCTION_RADIO_STACK, 0, 202);
	assert_module(module_at(info, 2), MODULE_FUNCTION_USER_PART, 1, 3, 0x1E, 0x1A);
	/* The backup store's older system part does not stand in for the main one. */
	assert_failure(info, 2, "dependency check failed: needs system-part 1 version >= 6200 (has 6101)");
	/*
	 * The radio stack is in the scratchpad only, yet the system part passed: the device's own
	 * verdict stands, nothing is recomputed over it.
	 */
	assert_failure(info, 1, NULL);
	g_assert_true(healer_particle_module_info_has_dependency_failure(info));
}

/* ---- failures ----------------------------------------------------------------------------------- */

static HealerParticleModule *
add_module(GPtrArray *modules, guint function, guint index, guint16 version, guint32 checked, guint32 passed)
{
	HealerParticleModule *m = healer_particle_module_new(function, index, version);

	m->checked = checked;
	m->passed = passed;
	g_ptr_array_add(modules, m);
	return m;
}

static void
test_describe_failures(void)
{
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	HealerParticleModule *m;

	add_module(modules, MODULE_FUNCTION_BOOTLOADER, 0, 1100, 0x1E, 0x1E);
	add_module(modules, MODULE_FUNCTION_SYSTEM_PART, 1, 1102, 0x1E, 0x1E);
	/* 0: two unmet (an older one, a missing one), one met; the met one is not named. */
	m = add_module(modules, MODULE_FUNCTION_USER_PART, 1, 6, 0x1E, 0x1A);
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_SYSTEM_PART, 1, 2202);
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_BOOTLOADER, 0, 1100);
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_SYSTEM_PART, 3, 2202);
	/* 3: integrity, range and platform. */
	add_module(modules, MODULE_FUNCTION_SYSTEM_PART, 2, 1102, 0x1E, 0x04);
	/* 4: the device says dependencies failed, but what it lists meets them. */
	m = add_module(modules, MODULE_FUNCTION_NCP_FIRMWARE, 0, 7, 0x1E, 0x1A);
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_BOOTLOADER, 0, 1000);
	/* 5: product, dependencies-full and a bit nobody defines. */
	add_module(modules, MODULE_FUNCTION_RADIO_STACK, 0, 202, 0xFE, 0x1E);
	/* 6: only an unknown bit. */
	add_module(modules, MODULE_FUNCTION_MONO_FIRMWARE, 0, 1, 0x01, 0x00);
	/* 7: a dependency on its own position is not met by itself. */
	m = add_module(modules, MODULE_FUNCTION_SYSTEM_PART, 4, 10, 0x04, 0x00);
	healer_particle_module_add_dependency(m, MODULE_FUNCTION_SYSTEM_PART, 4, 5);
	/* 8: passed checks it did not run mean nothing; nothing failed. */
	add_module(modules, MODULE_FUNCTION_SYSTEM_PART, 5, 10, 0x00, 0xFF);

	bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_NEW);
	info = parse_bytes(bytes);
	assert_failure(info, 0, NULL);
	assert_failure(info, 2,
	               "dependency check failed: needs system-part 1 version >= 2202 (has 1102), "
	               "needs system-part 3 version >= 2202 (has none)");
	assert_failure(info, 3,
	               "integrity check failed (its CRC does not match: the module is corrupt); "
	               "range check failed (the module does not fit its flash slot); "
	               "platform check failed (the module is for another platform)");
	assert_failure(info, 4,
	               "dependency check failed (the modules the device lists meet every dependency it reports)");
	assert_failure(info, 5,
	               "product check failed; full dependency check failed (it would break another module's "
	               "dependency); unknown check(s) 0x80 failed");
	assert_failure(info, 6, "unknown check(s) 0x1 failed");
	assert_failure(info, 7, "dependency check failed: needs system-part 4 version >= 5 (has none)");
	assert_failure(info, 8, NULL);
	g_assert_true(healer_particle_module_info_has_dependency_failure(info));
}

static void
test_dependency_failure_flag(void)
{
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;

	/* Integrity and dependencies-full failures are not dependency safe mode. */
	add_module(modules, MODULE_FUNCTION_SYSTEM_PART, 1, 1102, 0x5E, 0x1C);
	/* Dependencies passed, or not checked at all. */
	add_module(modules, MODULE_FUNCTION_USER_PART, 1, 6, 0x1E, 0x1E);
	add_module(modules, MODULE_FUNCTION_USER_PART, 2, 6, 0x00, 0x00);
	bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_NEW);
	info = parse_bytes(bytes);
	g_assert_false(healer_particle_module_info_has_dependency_failure(info));
}

/* ---- the plan's state --------------------------------------------------------------------------- */

static void
test_to_state(void)
{
	g_autoptr(GPtrArray) modules = photon_in_safe_mode();
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	g_autoptr(HealerDeviceState) state = NULL;
	const HealerInstalledModule *m;
	HealerParticleModule *duplicate = healer_particle_module_new(MODULE_FUNCTION_SYSTEM_PART, 2, 9999);

	/* A second entry for a position: the first is the one the device runs. */
	healer_particle_module_add_dependency(duplicate, MODULE_FUNCTION_BOOTLOADER, 0, 1);
	g_ptr_array_add(modules, duplicate);
	bytes = healer_particle_module_info_encode(modules, HEALER_PARTICLE_MODULE_INFO_OLD);
	info = parse_bytes(bytes);
	state = healer_particle_module_info_to_state(info, PHOTON);

	g_assert_cmpuint(state->platform_id, ==, PHOTON);
	g_assert_cmpuint(state->modules->len, ==, 4);
	m = healer_device_state_find(state, MODULE_FUNCTION_BOOTLOADER, 0);
	g_assert_nonnull(m);
	g_assert_cmpuint(m->version, ==, 1100);
	g_assert_cmpuint(m->dependencies->len, ==, 0);
	m = healer_device_state_find(state, MODULE_FUNCTION_SYSTEM_PART, 2);
	g_assert_nonnull(m);
	g_assert_cmpuint(m->version, ==, 1102);
	g_assert_cmpuint(m->dependencies->len, ==, 1);
	g_assert_cmpuint(g_array_index(m->dependencies, HealerModuleDependency, 0).function, ==,
	                 MODULE_FUNCTION_SYSTEM_PART);
	g_assert_cmpuint(g_array_index(m->dependencies, HealerModuleDependency, 0).index, ==, 1);
	g_assert_cmpuint(g_array_index(m->dependencies, HealerModuleDependency, 0).version, ==, 1102);
	m = healer_device_state_find(state, MODULE_FUNCTION_USER_PART, 1);
	g_assert_nonnull(m);
	g_assert_cmpuint(m->version, ==, 6);
	g_assert_cmpuint(m->dependencies->len, ==, 1);
	g_assert_cmpuint(g_array_index(m->dependencies, HealerModuleDependency, 0).version, ==, 2202);
	g_assert_false(m->has_sha256);
	/* What the resolver then sees: the application's dependency unmet, the rest met. */
	g_assert_false(healer_device_state_dependency_met(state, MODULE_FUNCTION_SYSTEM_PART, 2, 2202));
	g_assert_true(healer_device_state_dependency_met(state, MODULE_FUNCTION_SYSTEM_PART, 1, 1102));
	{
		HealerGoal goal = {.kind = HEALER_GOAL_HEAL};
		g_autoptr(GError) error = NULL;
		g_assert_false(healer_goal_met(state, &goal, &error));
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NO_PLAN);
	}
}

static void
test_to_state_boron(void)
{
	g_autoptr(GByteArray) reply = g_byte_array_new();
	g_autoptr(HealerParticleModuleInfo) info = NULL;
	g_autoptr(HealerDeviceState) state = NULL;
	GByteArray *m = pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 6101, 0, 0x1E, 0x1E);

	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_BOOTLOADER, 0, 2300));
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_NONE, 0, 0));
	pb_message(reply, 2, m);
	pb_message(reply, 2, pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 5000, 1, 0, 0));
	info = parse_ok(reply->data, reply->len);
	state = healer_particle_module_info_to_state(info, BORON);
	g_assert_cmpuint(state->platform_id, ==, BORON);
	g_assert_cmpuint(state->modules->len, ==, 1);
	g_assert_cmpuint(healer_device_state_find(state, MODULE_FUNCTION_SYSTEM_PART, 1)->version, ==, 6101);
	g_assert_cmpuint(healer_device_state_find(state, MODULE_FUNCTION_SYSTEM_PART, 1)->dependencies->len, ==, 1);
}

/* ---- refusals ------------------------------------------------------------------------------------ */

/* A new-format reply of three fine modules and `bad` as modules[3]. */
static GByteArray *
new_reply_with(GByteArray *bad)
{
	GByteArray *reply = g_byte_array_new();

	pb_message(reply, 2, pb_new_module(MODULE_FUNCTION_BOOTLOADER, 0, 2300, 0, 0x1E, 0x1E));
	pb_message(reply, 2, pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 6101, 0, 0x1E, 0x1E));
	pb_message(reply, 2, pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 0, 0x1E, 0x1E));
	pb_message(reply, 2, bad);
	return reply;
}

static GByteArray *
old_reply_with(GByteArray *bad)
{
	GByteArray *reply = g_byte_array_new();

	pb_message(reply, 1, pb_old_module(1, 0, 1100, 0, 0));
	pb_message(reply, 1, bad);
	return reply;
}

static void
test_refusals_new(void)
{
	struct {
		GByteArray *reply;
		const char *message;
	} cases[] = {
	        {new_reply_with(pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 2, 70000, 0, 0, 0)),
	         "module info (new format): modules[3]: version 70000 is over 65535"},
	        {new_reply_with(pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 256, 1, 0, 0, 0)),
	         "module info (new format): modules[3]: index 256 is over 255"},
	        {new_reply_with(pb_new_module(0, 0, 1, 0, 0, 0)),
	         "module info (new format): modules[3]: type 0 is not a module function (1 resource ... 9 asset)"},
	        {new_reply_with(pb_new_module(10, 0, 1, 0, 0, 0)),
	         "module info (new format): modules[3]: type 10 is not a module function (1 resource ... 9 asset)"},
	        /* Other stores are checked too, though not kept. */
	        {new_reply_with(pb_new_module(MODULE_FUNCTION_USER_PART, 1, 65536, 1, 0, 0)),
	         "module info (new format): modules[3]: version 65536 is over 65535"},
	};
	g_autoptr(GByteArray) bad_dep_type = NULL;
	g_autoptr(GByteArray) bad_dep_version = NULL;
	g_autoptr(GByteArray) bad_dep_index = NULL;
	g_autoptr(GByteArray) short_hash = NULL;
	g_autoptr(GByteArray) long_hash = NULL;
	guint8 hash[33] = {0};
	GByteArray *m;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		expect_refused(cases[i].reply, cases[i].message);
		g_byte_array_unref(cases[i].reply);
	}

	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 0, 0x1E, 0x1A);
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_SYSTEM_PART, 1, 1));
	pb_message(m, 9, pb_dependency(12, 1, 1));
	bad_dep_type = new_reply_with(m);
	expect_refused(bad_dep_type, "module info (new format): modules[3].dependencies[1]: type 12 is not a module "
	                             "function (1 resource ... 9 asset)");
	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 0, 0x1E, 0x1A);
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_SYSTEM_PART, 1, 70000));
	bad_dep_version = new_reply_with(m);
	expect_refused(bad_dep_version,
	               "module info (new format): modules[3].dependencies[0]: version 70000 is over 65535");
	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 0, 0x1E, 0x1A);
	pb_message(m, 9, pb_dependency(MODULE_FUNCTION_SYSTEM_PART, 300, 1));
	bad_dep_index = new_reply_with(m);
	expect_refused(bad_dep_index, "module info (new format): modules[3].dependencies[0]: index 300 is over 255");
	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 0, 0x1E, 0x1E);
	pb_bytes(m, 8, hash, 20);
	short_hash = new_reply_with(m);
	expect_refused(short_hash, "module info (new format): modules[3]: hash of 20 byte(s), a SHA-256 has 32");
	m = pb_new_module(MODULE_FUNCTION_USER_PART, 1, 6, 0, 0x1E, 0x1E);
	pb_bytes(m, 8, hash, 33);
	long_hash = new_reply_with(m);
	expect_refused(long_hash, "module info (new format): modules[3]: hash of 33 byte(s), a SHA-256 has 32");
}

static void
test_refusals_old(void)
{
	g_autoptr(GByteArray) type0 = old_reply_with(pb_old_module(0, 0, 1, 0, 0));
	g_autoptr(GByteArray) type7 = old_reply_with(pb_old_module(7, 0, 1, 0, 0));
	g_autoptr(GByteArray) version = old_reply_with(pb_old_module(2, 1, 70000, 0, 0));
	g_autoptr(GByteArray) index = old_reply_with(pb_old_module(2, 256, 1, 0, 0));
	g_autoptr(GByteArray) validity = old_reply_with(pb_old_module(2, 1, 1, 0, 0x04));
	g_autoptr(GByteArray) dep_type = NULL;
	GByteArray *m;

	expect_refused(type0, "module info (old format): modules[1]: type 0 is not in the old format's enum "
	                      "(1 bootloader ... 6 radio stack)");
	expect_refused(type7, "module info (old format): modules[1]: type 7 is not in the old format's enum "
	                      "(1 bootloader ... 6 radio stack)");
	expect_refused(version, "module info (old format): modules[1]: version 70000 is over 65535");
	expect_refused(index, "module info (old format): modules[1]: index 256 is over 255");
	expect_refused(validity, "module info (old format): modules[1]: validity 0x4 has bits the old format does "
	                         "not define (0x01 integrity, 0x02 dependencies)");
	m = pb_old_module(3, 1, 6, 0, 0x02);
	pb_message(m, 6, pb_dependency(9, 1, 1));
	dep_type = old_reply_with(m);
	expect_refused(dep_type, "module info (old format): modules[1].dependencies[0]: type 9 is not in the old "
	                         "format's enum (1 bootloader ... 6 radio stack)");
}

static void
test_refusals_structure(void)
{
	g_autoptr(GByteArray) empty = g_byte_array_new();
	g_autoptr(GByteArray) factory_only = g_byte_array_new();
	g_autoptr(GByteArray) truncated = g_byte_array_new();
	g_autoptr(GByteArray) wrong_wire_type = g_byte_array_new();
	g_autoptr(GByteArray) bad_varint = g_byte_array_new();
	g_autoptr(GByteArray) no_entries = g_byte_array_new();

	expect_refused(empty, "module info (new format): no module in the main store");
	pb_message(factory_only, 2, pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 1, 1, 0, 0));
	pb_message(factory_only, 2, pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 1, 2, 0, 0));
	expect_refused(factory_only, "module info (new format): no module in the main store");
	/* A length that runs past the end. */
	pb_message(truncated, 2, pb_new_module(MODULE_FUNCTION_SYSTEM_PART, 1, 1, 0, 0, 0));
	g_byte_array_set_size(truncated, truncated->len - 1);
	expect_refused(truncated, "module info: 17 byte(s) that do not decode as a GetModuleInfo reply");
	/* modules as a varint. */
	pb_uint(wrong_wire_type, 2, 5);
	expect_refused(wrong_wire_type, "module info: 2 byte(s) that do not decode as a GetModuleInfo reply");
	/* A varint of eleven bytes. */
	g_byte_array_append(bad_varint, (const guint8[]){0x08}, 1);
	for (guint i = 0; i < 11; i++)
		g_byte_array_append(bad_varint, (const guint8[]){0xFF}, 1);
	expect_refused(bad_varint, "module info: 12 byte(s) that do not decode as a GetModuleInfo reply");
	/* Only fields this build does not know. */
	pb_uint(no_entries, 7, 1);
	expect_refused(no_entries, "module info (new format): no module in the main store");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/particle-module-info/names", test_names);
	g_test_add_func("/particle-module-info/old/encoded", test_old_encoded);
	g_test_add_func("/particle-module-info/old/by-hand", test_old_by_hand);
	g_test_add_func("/particle-module-info/old/wins", test_old_wins);
	g_test_add_func("/particle-module-info/old/encode-leaves-out", test_old_encode_leaves_out);
	g_test_add_func("/particle-module-info/new/encoded", test_new_encoded);
	g_test_add_func("/particle-module-info/new/round-trip-checks", test_new_round_trip_checks);
	g_test_add_func("/particle-module-info/new/by-hand-stores", test_new_by_hand_stores);
	g_test_add_func("/particle-module-info/failures/describe", test_describe_failures);
	g_test_add_func("/particle-module-info/failures/dependency-flag", test_dependency_failure_flag);
	g_test_add_func("/particle-module-info/state/photon", test_to_state);
	g_test_add_func("/particle-module-info/state/boron", test_to_state_boron);
	g_test_add_func("/particle-module-info/refusals/new", test_refusals_new);
	g_test_add_func("/particle-module-info/refusals/old", test_refusals_old);
	g_test_add_func("/particle-module-info/refusals/structure", test_refusals_structure);
	return g_test_run();
}
