/*
 * The describe parser on the two real describes of the reference (Particle
 * community threads: a Photon whose user part needs a newer system part 2,
 * an Argon whose user part needs system part 1 >= 2011), the round trip
 * through healer_describe_to_json(), and malformed describes, each refused
 * with the JSON path of its fault.
 */
#include <string.h>

#include "describe.h"
#include "healer-error.h"
#include "healer/module-format.h"

/* spark/status/safe-mode from a Photon: user part needs (s,2) >= 108, 100 is installed. */
static const char photon_json[] =
        "{\"p\":6,\"m\":[\n"
        " {\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":7,\"d\":[]},\n"
        " {\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":100,\"d\":[]},\n"
        " {\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":100,\"d\":[{\"f\":\"s\",\"n\":"
        "\"1\","
        "\"v\":100,\"_\":\"\"}]},\n"
        " {\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":"
        "\"153790B1DF94A332C290930076EFF123B0CB9D87AC11619491D58B6120185C80\",\"f\":\"u\",\"n\":\"1\",\"v\":4,\"d\":[{"
        "\"f\":\"s\",\"n\":\"2\",\"v\":108,\"_\":\"\"}]},\n"
        " {\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}],\n"
        " \"f\":[],\"v\":{}}";

/* The Argon on 1.5.2 whose app targets 2.0.1, from the fields the reference gives (store main, vc 30). */
static const char argon_json[] =
        "{\"p\":12,\"m\":["
        "{\"s\":49152,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":1005,\"d\":[]},"
        "{\"s\":671744,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1512,\"d\":[{\"f\":\"b\",\"n\":"
        "\"0\","
        "\"v\":501},{\"f\":\"a\",\"n\":\"0\",\"v\":202}]},"
        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"f\":\"u\",\"n\":\"1\",\"v\":6,\"d\":[{\"f\":\"s\",\"n\":\"1\","
        "\"v\":2011}]},"
        "{\"s\":1536000,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"c\",\"n\":\"0\",\"v\":5,\"d\":[]},"
        "{\"s\":192512,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"a\",\"n\":\"0\",\"v\":202,\"d\":[]}]}";

static HealerDescribe *
parse_ok(const char *json)
{
	g_autoptr(GError) error = NULL;
	HealerDescribe *d = healer_describe_parse(json, strlen(json), &error);

	g_assert_no_error(error);
	g_assert_nonnull(d);
	return d;
}

static void
assert_equal(const HealerDescribe *a, const HealerDescribe *b)
{
	g_assert_cmpuint(a->platform_id, ==, b->platform_id);
	g_assert_cmpuint(a->modules->len, ==, b->modules->len);
	for (guint i = 0; i < a->modules->len; i++) {
		const HealerDescribeModule *ma = &g_array_index(a->modules, HealerDescribeModule, i);
		const HealerDescribeModule *mb = &g_array_index(b->modules, HealerDescribeModule, i);

		g_assert_cmpint(ma->has_info, ==, mb->has_info);
		g_assert_cmpuint(ma->function, ==, mb->function);
		g_assert_cmpuint(ma->index, ==, mb->index);
		g_assert_cmpuint(ma->version, ==, mb->version);
		g_assert_cmpuint(ma->store, ==, mb->store);
		g_assert_cmpuint(ma->max_size, ==, mb->max_size);
		g_assert_cmpuint(ma->validity_checked, ==, mb->validity_checked);
		g_assert_cmpuint(ma->validity_passed, ==, mb->validity_passed);
		g_assert_cmpint(ma->has_hash, ==, mb->has_hash);
		g_assert_cmpmem(ma->sha256, 32, mb->sha256, 32);
		g_assert_cmpmem(ma->dependencies->data, ma->dependencies->len * sizeof(HealerDescribeDependency),
		                mb->dependencies->data, mb->dependencies->len * sizeof(HealerDescribeDependency));
	}
}

/* parse(to_json(d)) == d, and to_json is stable from then on. */
static void
assert_round_trip(const HealerDescribe *d)
{
	g_autofree char *text = healer_describe_to_string(d);
	g_autoptr(HealerDescribe) again = parse_ok(text);
	g_autofree char *text2 = healer_describe_to_string(again);

	assert_equal(d, again);
	g_assert_cmpstr(text, ==, text2);
}

static void
test_photon(void)
{
	g_autoptr(HealerDescribe) d = parse_ok(photon_json);
	const HealerDescribeModule *user, *sys2, *factory;
	g_autoptr(GArray) unmet = NULL;
	g_autoptr(GArray) none = NULL;
	const HealerDescribeUnmet *u;
	g_autofree char *dep = NULL;
	static const guint8 hash_start[] = {0x15, 0x37, 0x90, 0xB1};

	g_assert_cmpuint(d->platform_id, ==, 6);
	g_assert_cmpuint(d->modules->len, ==, 5);

	user = healer_describe_find(d, MODULE_FUNCTION_USER_PART, 1);
	g_assert_nonnull(user);
	g_assert_true(user == &g_array_index(d->modules, HealerDescribeModule, 3));
	g_assert_cmpuint(user->version, ==, 4);
	g_assert_cmpuint(user->max_size, ==, 131072);
	g_assert_cmpuint(user->validity_checked, ==, 30);
	g_assert_cmpuint(user->validity_passed, ==, 26);
	g_assert_true(user->has_hash);
	g_assert_cmpmem(user->sha256, 4, hash_start, 4);
	g_assert_cmpuint(user->sha256[31], ==, 0x80);
	g_assert_true(healer_describe_module_dependency_failed(user));
	g_assert_false(healer_describe_module_valid(user));
	g_assert_cmpuint(user->dependencies->len, ==, 1);

	unmet = healer_describe_module_unmet_dependencies(d, user);
	g_assert_cmpuint(unmet->len, ==, 1);
	u = &g_array_index(unmet, HealerDescribeUnmet, 0);
	g_assert_cmpuint(u->dependency.function, ==, MODULE_FUNCTION_SYSTEM_PART);
	g_assert_cmpuint(u->dependency.index, ==, 2);
	g_assert_cmpuint(u->dependency.version, ==, 108);
	g_assert_true(u->installed);
	g_assert_cmpuint(u->installed_version, ==, 100);
	dep = healer_describe_dependency_to_string(&u->dependency);
	g_assert_cmpstr(dep, ==, "system-part 2 >= 108");

	sys2 = healer_describe_find(d, MODULE_FUNCTION_SYSTEM_PART, 2);
	g_assert_nonnull(sys2);
	g_assert_cmpuint(sys2->version, ==, 100);
	g_assert_false(sys2->has_hash);
	g_assert_true(healer_describe_module_valid(sys2));
	g_assert_false(healer_describe_module_dependency_failed(sys2));
	none = healer_describe_module_unmet_dependencies(d, sys2);
	g_assert_cmpuint(none->len, ==, 0);

	/* The empty factory slot: no module info, not found as a main-store module. */
	factory = &g_array_index(d->modules, HealerDescribeModule, 4);
	g_assert_false(factory->has_info);
	g_assert_cmpuint(factory->store, ==, MODULE_STORE_FACTORY);
	g_assert_cmpuint(factory->validity_passed, ==, 0);
	g_assert_cmpuint(factory->function, ==, MODULE_FUNCTION_NONE);
	g_assert_null(healer_describe_find(d, MODULE_FUNCTION_USER_PART, 2));
	g_assert_null(healer_describe_find(d, MODULE_FUNCTION_SYSTEM_PART, 3));

	assert_round_trip(d);
}

static void
test_photon_to_json(void)
{
	g_autoptr(HealerDescribe) d = parse_ok(photon_json);
	g_autofree char *text = healer_describe_to_string(d);

	/* Device OS's key order; the cloud's "f"/"v" and the old "_" are not reproduced. */
	g_assert_cmpstr(
	        text, ==,
	        "{\"p\":6,\"m\":["
	        "{\"s\":16384,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":7,\"d\":[]},"
	        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":100,\"d\":[]},"
	        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":100,\"d\":[{\"f\":\"s\","
	        "\"n\":\"1\",\"v\":100}]},"
	        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":"
	        "\"153790B1DF94A332C290930076EFF123B0CB9D87AC11619491D58B6120185C80\",\"f\":\"u\",\"n\":\"1\",\"v\":4,"
	        "\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":108}]},"
	        "{\"s\":131072,\"l\":\"f\",\"vc\":30,\"vv\":0,\"d\":[]}]}");
}

static void
test_argon(void)
{
	g_autoptr(HealerDescribe) d = parse_ok(argon_json);
	const HealerDescribeModule *user, *sys, *radio;
	g_autoptr(GArray) unmet = NULL, sys_unmet = NULL;
	const HealerDescribeUnmet *u;

	g_assert_cmpuint(d->platform_id, ==, 12);
	g_assert_cmpuint(d->modules->len, ==, 5);
	user = healer_describe_find(d, MODULE_FUNCTION_USER_PART, 1);
	g_assert_nonnull(user);
	g_assert_cmpuint(user->version, ==, 6);
	g_assert_false(user->has_hash);
	g_assert_true(healer_describe_module_dependency_failed(user));
	unmet = healer_describe_module_unmet_dependencies(d, user);
	g_assert_cmpuint(unmet->len, ==, 1);
	u = &g_array_index(unmet, HealerDescribeUnmet, 0);
	g_assert_cmpuint(u->dependency.function, ==, MODULE_FUNCTION_SYSTEM_PART);
	g_assert_cmpuint(u->dependency.index, ==, 1);
	g_assert_cmpuint(u->dependency.version, ==, 2011);
	g_assert_true(u->installed);
	g_assert_cmpuint(u->installed_version, ==, 1512);

	sys = healer_describe_find(d, MODULE_FUNCTION_SYSTEM_PART, 1);
	g_assert_nonnull(sys);
	g_assert_cmpuint(sys->max_size, ==, 671744);
	g_assert_cmpuint(sys->dependencies->len, ==, 2);
	g_assert_cmpuint(g_array_index(sys->dependencies, HealerDescribeDependency, 1).function, ==,
	                 MODULE_FUNCTION_RADIO_STACK);
	sys_unmet = healer_describe_module_unmet_dependencies(d, sys);
	g_assert_cmpuint(sys_unmet->len, ==, 0);
	radio = healer_describe_find(d, MODULE_FUNCTION_RADIO_STACK, 0);
	g_assert_nonnull(radio);
	g_assert_cmpuint(radio->version, ==, 202);
	g_assert_nonnull(healer_describe_find(d, MODULE_FUNCTION_NCP_FIRMWARE, 0));
	g_assert_nonnull(healer_describe_find(d, MODULE_FUNCTION_BOOTLOADER, 0));

	assert_round_trip(d);
}

/* Extra keys, every function and store character, "n" dependencies, missing modules. */
static void
test_variants(void)
{
	static const char json[] =
	        "{\"p\":26,\"imei\":\"352753090000000\",\"iccid\":\"89014\",\"cellfw\":\"x\",\"m\":["
	        "{\"s\":1,\"l\":\"m\",\"vc\":0,\"vv\":0,\"f\":\"r\",\"n\":\"0\",\"v\":0,\"d\":[],\"p\":26},"
	        "{\"s\":4294967295,\"l\":\"f\",\"vc\":65535,\"vv\":65535,\"f\":\"m\",\"n\":\"255\",\"v\":65535},"
	        "{\"s\":2,\"l\":\"b\",\"vc\":30,\"vv\":28,\"f\":\"_\",\"n\":\"10\",\"v\":1,\"d\":[]},"
	        "{\"s\":3,\"l\":\"t\",\"vc\":30,\"vv\":30,\"f\":\"t\",\"n\":\"1\",\"v\":2,\"d\":[]},"
	        "{\"s\":4,\"l\":\"m\",\"vc\":30,\"vv\":26,\"u\":"
	        "\"00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\","
	        "\"f\":\"u\",\"n\":\"2\",\"v\":9,\"d\":[{\"f\":\"n\",\"n\":\"0\",\"v\":0},{\"f\":\"s\",\"n\":\"3\","
	        "\"v\":7},"
	        "{\"f\":\"c\",\"n\":\"0\",\"v\":1,\"x\":[1,2]}]},"
	        "{\"s\":5,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"n\",\"n\":\"0\",\"v\":0,\"d\":[]}"
	        "],\"f\":[\"digitalWrite\"],\"v\":{\"temp\":\"double\"}}\n\n";
	g_autoptr(HealerDescribe) d = parse_ok(json);
	const HealerDescribeModule *m;
	g_autoptr(GArray) unmet = NULL;

	g_assert_cmpuint(d->platform_id, ==, 26);
	g_assert_cmpuint(d->modules->len, ==, 6);
	m = &g_array_index(d->modules, HealerDescribeModule, 1);
	g_assert_cmpuint(m->max_size, ==, G_MAXUINT32);
	g_assert_cmpuint(m->function, ==, MODULE_FUNCTION_MONO_FIRMWARE);
	g_assert_cmpuint(m->index, ==, 255);
	g_assert_cmpuint(m->store, ==, MODULE_STORE_FACTORY);
	g_assert_cmpuint(m->dependencies->len, ==, 0);
	g_assert_cmpuint(g_array_index(d->modules, HealerDescribeModule, 2).function, ==, MODULE_FUNCTION_SETTINGS);
	g_assert_cmpuint(g_array_index(d->modules, HealerDescribeModule, 2).store, ==, MODULE_STORE_BACKUP);
	g_assert_cmpuint(g_array_index(d->modules, HealerDescribeModule, 3).function, ==, MODULE_FUNCTION_ASSET);
	g_assert_cmpuint(g_array_index(d->modules, HealerDescribeModule, 3).store, ==, MODULE_STORE_SCRATCHPAD);
	m = &g_array_index(d->modules, HealerDescribeModule, 4);
	g_assert_true(m->has_hash);
	g_assert_cmpuint(m->sha256[0], ==, 0x00);
	g_assert_cmpuint(m->sha256[15], ==, 0xFF);
	g_assert_cmpuint(m->sha256[31], ==, 0xFF);
	/* "n" dependencies are skipped; s3 is missing; c0 is missing too (not in the main store). */
	unmet = healer_describe_module_unmet_dependencies(d, m);
	g_assert_cmpuint(unmet->len, ==, 2);
	g_assert_false(g_array_index(unmet, HealerDescribeUnmet, 0).installed);
	g_assert_cmpuint(g_array_index(unmet, HealerDescribeUnmet, 0).dependency.index, ==, 3);
	g_assert_cmpuint(g_array_index(unmet, HealerDescribeUnmet, 1).dependency.function, ==,
	                 MODULE_FUNCTION_NCP_FIRMWARE);
	/* A present module whose vv misses integrity: not valid, but dependencies passed. */
	m = &g_array_index(d->modules, HealerDescribeModule, 2);
	g_assert_false(healer_describe_module_valid(m));
	g_assert_false(healer_describe_module_dependency_failed(m));
	/* vc 0: nothing checked, so nothing failed. */
	m = &g_array_index(d->modules, HealerDescribeModule, 0);
	g_assert_false(healer_describe_module_dependency_failed(m));
	g_assert_false(healer_describe_module_valid(m));

	assert_round_trip(d);
	{
		/* An empty module list is a describe too. */
		g_autoptr(HealerDescribe) empty = parse_ok("{\"m\":[],\"p\":0}");
		g_autofree char *text = healer_describe_to_string(empty);
		g_assert_cmpuint(empty->modules->len, ==, 0);
		g_assert_cmpstr(text, ==, "{\"p\":0,\"m\":[]}");
	}
}

static void
expect_error_len(const char *json, gsize len, const char *message)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDescribe) d = healer_describe_parse(json, len, &error);

	g_assert_null(d);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	if (strstr(error->message, message) == NULL)
		g_error("for %s: expected '%s' in '%s'", json, message, error->message);
}

static void
expect_error(const char *json, const char *message)
{
	expect_error_len(json, strlen(json), message);
}

#define M(body) "{\"p\":6,\"m\":[" body "]}"
#define GOOD    "{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1,\"d\":[]}"
#define DEP(d)  "{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"u\",\"n\":\"1\",\"v\":1,\"d\":[" d "]}"

static void
test_malformed(void)
{
	static const struct {
		const char *json;
		const char *message;
	} cases[] = {
	        {"", "not valid JSON at byte 0"},
	        {"{\"p\":6,", "not valid JSON at byte"},
	        {"{\"p\":6,\"m\":[]} x", "trailing data"},
	        {"{\"p\":6,\"m\":[],}", "not valid JSON"},
	        {"{p:6}", "not valid JSON"},
	        {"[]", "describe: top level: expected an object"},
	        {"\"6\"", "top level: expected an object"},
	        {"{\"m\":[]}", "describe: p: missing"},
	        {"{\"p\":\"6\",\"m\":[]}", "p: expected an integer 0..65535"},
	        {"{\"p\":6.5,\"m\":[]}", "p: expected an integer"},
	        {"{\"p\":-1,\"m\":[]}", "p: -1 is outside 0..65535"},
	        {"{\"p\":65536,\"m\":[]}", "p: 65536 is outside 0..65535"},
	        {"{\"p\":99999999999999999999999,\"m\":[]}", "p: "},
	        {"{\"p\":6}", "describe: m: missing"},
	        {"{\"p\":6,\"m\":{}}", "m: expected an array"},
	        {M("1"), "m[0]: expected an object"},
	        {M(GOOD "," GOOD ",null"), "m[2]: expected an object"},
	        {M("{\"l\":\"m\",\"vc\":30,\"vv\":30}"), "m[0].s: missing"},
	        {M("{\"s\":-5,\"l\":\"m\",\"vc\":30,\"vv\":30}"), "m[0].s: -5 is outside 0..4294967295"},
	        {M("{\"s\":4294967296,\"l\":\"m\",\"vc\":30,\"vv\":30}"), "m[0].s: 4294967296 is outside"},
	        {M("{\"s\":1,\"vc\":30,\"vv\":30}"), "m[0].l: missing"},
	        {M("{\"s\":1,\"l\":\"x\",\"vc\":30,\"vv\":30}"), "m[0].l: \"x\" is not a module store"},
	        {M("{\"s\":1,\"l\":\"mm\",\"vc\":30,\"vv\":30}"), "m[0].l: \"mm\" is not a module store"},
	        {M("{\"s\":1,\"l\":0,\"vc\":30,\"vv\":30}"), "m[0].l: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vv\":30}"), "m[0].vc: missing"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30}"), "m[0].vv: missing"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":true}"), "m[0].vv: expected an integer 0..65535"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":70000,\"vv\":30}"), "m[0].vc: 70000 is outside 0..65535"},
	        {M(GOOD ",{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"u\":\"abc\"}"), "m[1].u: expected 64 hex digits"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"u\":"
	           "\"153790B1DF94A332C290930076EFF123B0CB9D87AC11619491D58B6120185C8G\"}"),
	         "m[0].u: expected 64 hex digits"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"u\":7}"), "m[0].u: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"n\":\"1\",\"v\":1}"), "m[0].f: missing"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"v\":1}"), "m[0].n: missing"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\"}"), "m[0].v: missing"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"x\",\"n\":\"1\",\"v\":1}"),
	         "m[0].f: \"x\" is not a module function"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"system-part\",\"n\":\"1\",\"v\":1}"),
	         "m[0].f: \"system-part\" is not a module function"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":4,\"n\":\"1\",\"v\":1}"),
	         "m[0].f: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":1,\"v\":1}"),
	         "m[0].n: expected a string holding a number 0..255"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"256\",\"v\":1}"),
	         "m[0].n: expected a string holding a number 0..255"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"\",\"v\":1}"),
	         "m[0].n: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"-1\",\"v\":1}"),
	         "m[0].n: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"01\",\"v\":1}"),
	         "m[0].n: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\" 1\",\"v\":1}"),
	         "m[0].n: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\\u0000\",\"v\":1}"),
	         "m[0].n: expected a string"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":65536}"),
	         "m[0].v: 65536 is outside 0..65535"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":\"1\"}"),
	         "m[0].v: expected an integer"},
	        {M("{\"s\":1,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1,\"d\":{}}"),
	         "m[0].d: expected an array"},
	        {M(GOOD "," GOOD "," GOOD "," DEP("{\"f\":\"s\",\"n\":2,\"v\":108}")),
	         "m[3].d[0].n: expected a string holding a number 0..255"},
	        {M(DEP("{\"f\":\"s\",\"n\":\"2\",\"v\":108},[]")), "m[0].d[1]: expected an object"},
	        {M(DEP("{\"n\":\"2\",\"v\":108}")), "m[0].d[0].f: missing"},
	        {M(DEP("{\"f\":\"q\",\"n\":\"2\",\"v\":108}")), "m[0].d[0].f: \"q\" is not a module function"},
	        {M(DEP("{\"f\":\"s\",\"v\":108}")), "m[0].d[0].n: missing"},
	        {M(DEP("{\"f\":\"s\",\"n\":\"2\"}")), "m[0].d[0].v: missing"},
	        {M(DEP("{\"f\":\"s\",\"n\":\"2\",\"v\":-108}")), "m[0].d[0].v: -108 is outside 0..65535"},
	        {M(DEP("{\"f\":\"s\",\"n\":\"2\",\"v\":1e2}")), "m[0].d[0].v: expected an integer"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
		expect_error(cases[i].json, cases[i].message);
	/* Bytes after the object that are not white space, NUL included. */
	expect_error_len("{\"p\":6,\"m\":[]}\0{}", 17, "trailing data");
	/* Invalid UTF-8 in a string. */
	expect_error("{\"p\":6,\"m\":[],\"imei\":\"\xff\"}", "not valid JSON");
	/* A describe cut short, as a truncated reply would be. */
	for (gsize len = 0; len < strlen(photon_json) - 1; len += 7)
		expect_error_len(photon_json, len, "not valid JSON");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/describe/photon", test_photon);
	g_test_add_func("/describe/photon-to-json", test_photon_to_json);
	g_test_add_func("/describe/argon", test_argon);
	g_test_add_func("/describe/variants", test_variants);
	g_test_add_func("/describe/malformed", test_malformed);
	return g_test_run();
}
