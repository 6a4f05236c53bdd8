/*
 * The JSON helper (agent/lib/healer-json.h): each getter's success, wrong type, missing member and
 * bound, every failure HEALER_ERROR_INVALID_DATA naming the value's path.
 */
#include <string.h>

#include "healer-error.h"
#include "healer-json.h"
#include "json-autoptr.h"

/* The object of `text` (which must parse); the caller owns it. */
static json_object *
parse(const char *text)
{
	g_autoptr(GError) error = NULL;
	json_object *obj = healer_json_parse((const guint8 *)text, strlen(text), "test document", &error);

	g_assert_no_error(error);
	g_assert_nonnull(obj);
	return obj;
}

/* `ok` is FALSE and `error` is INVALID_DATA with exactly `message`; clears `error`. */
static void
expect_fail(gboolean ok, GError **error, const char *message)
{
	g_assert_false(ok);
	g_assert_error(*error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr((*error)->message, ==, message);
	g_clear_error(error);
}

static void
test_parse(void)
{
	static const char nul[] = "{\"a\": 1}\0 ";
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) good = parse(" {\"a\": [1, 2]} ");
	json_object *bad;

	g_assert_true(json_object_is_type(good, json_type_object));
	bad = healer_json_parse((const guint8 *)nul, sizeof nul - 1, "doc", &error);
	g_assert_null(bad);
	expect_fail(FALSE, &error, "not valid JSON: contains a NUL byte");
	bad = healer_json_parse((const guint8 *)"{} {}", 5, "doc", &error);
	g_assert_null(bad);
	expect_fail(FALSE, &error, "not valid JSON at byte 3: trailing data");
	bad = healer_json_parse((const guint8 *)"{\"a\":", 5, "doc", &error);
	g_assert_null(bad);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_true(g_str_has_prefix(error->message, "not valid JSON at byte 5: "));
	g_clear_error(&error);
	bad = healer_json_parse((const guint8 *)"{}", (gsize)G_MAXINT + 1, "test document", &error);
	g_assert_null(bad);
	expect_fail(FALSE, &error, "test document is too large");
}

static void
test_format_and_keys(void)
{
	static const char *const keys[] = {"format", "format_version", "x", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) good = parse("{\"format\": \"f\", \"format_version\": 2, \"x\": 1}");
	g_autoptr(json_object) array = parse("[]");
	g_autoptr(json_object) other = parse("{\"format\": \"g\", \"format_version\": 2}");
	g_autoptr(json_object) version = parse("{\"format\": \"f\", \"format_version\": \"2\"}");
	g_autoptr(json_object) extra = parse("{\"format\": \"f\", \"format_version\": 2, \"y\\u0001\": 1}");

	g_assert_true(healer_json_check_format(good, "f", 2, &error));
	g_assert_no_error(error);
	g_assert_true(healer_json_check_keys(good, "", keys, &error));
	g_assert_no_error(error);
	expect_fail(healer_json_check_format(array, "f", 2, &error), &error, "top level: expected an object");
	expect_fail(healer_json_check_format(other, "f", 2, &error), &error, "format: expected \"f\"");
	expect_fail(healer_json_check_format(version, "f", 2, &error), &error, "format_version: expected 2");
	expect_fail(healer_json_check_format(good, "f", 3, &error), &error, "format_version: expected 3");
	/* A key from outside is escaped in the message. */
	expect_fail(healer_json_check_keys(extra, "", keys, &error), &error, "top level: unknown key \"y\\x01\"");
	expect_fail(healer_json_check_keys(extra, "a[2]", keys, &error), &error, "a[2]: unknown key \"y\\x01\"");
}

static void
test_paths(void)
{
	g_autofree char *top = healer_json_path("", "a");
	g_autofree char *top_null = healer_json_path(NULL, "a");
	g_autofree char *inner = healer_json_path("r[3]", "a");
	g_autofree char *index = healer_json_path_index("r[3].m", 1);

	g_assert_cmpstr(top, ==, "a");
	g_assert_cmpstr(top_null, ==, "a");
	g_assert_cmpstr(inner, ==, "r[3].a");
	g_assert_cmpstr(index, ==, "r[3].m[1]");
}

static void
test_uint(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) obj = parse("{\"a\": 255, \"big\": 18446744073709551615, \"neg\": -1, \"s\": \"1\", "
	                                   "\"d\": 1.0, \"n\": null, \"over\": 256}");
	guint64 v = 7;
	gboolean found = TRUE;

	g_assert_true(healer_json_get_uint(obj, "a", "r[1]", 255, &v, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(v, ==, 255);
	g_assert_true(healer_json_get_uint(obj, "big", "", G_MAXUINT64, &v, &error));
	g_assert_cmpuint(v, ==, G_MAXUINT64);
	expect_fail(healer_json_get_uint(obj, "over", "r[1]", 255, &v, &error), &error,
	            "r[1].over: 256 is outside 0..255");
	expect_fail(healer_json_get_uint(obj, "big", "r[1]", G_MAXUINT32, &v, &error), &error,
	            "r[1].big: 18446744073709551615 is outside 0..4294967295");
	expect_fail(healer_json_get_uint(obj, "neg", "r[1]", 255, &v, &error), &error,
	            "r[1].neg: -1 is outside 0..255");
	expect_fail(healer_json_get_uint(obj, "neg", "", G_MAXUINT64, &v, &error), &error,
	            "neg: -1 is not a non-negative integer");
	expect_fail(healer_json_get_uint(obj, "s", "r[1]", 255, &v, &error), &error,
	            "r[1].s: expected an integer 0..255");
	expect_fail(healer_json_get_uint(obj, "d", "r[1]", 255, &v, &error), &error,
	            "r[1].d: expected an integer 0..255");
	expect_fail(healer_json_get_uint(obj, "n", "", G_MAXUINT64, &v, &error), &error,
	            "n: expected a non-negative integer");
	expect_fail(healer_json_get_uint(obj, "gone", "r[1]", 255, &v, &error), &error,
	            "r[1].gone: missing (expected an integer 0..255)");
	g_assert_cmpuint(v, ==, G_MAXUINT64); /* untouched by the failures */
	g_assert_true(healer_json_get_optional_uint(obj, "gone", "", 255, &v, &found, &error));
	g_assert_no_error(error);
	g_assert_false(found);
	g_assert_true(healer_json_get_optional_uint(obj, "a", "", 255, &v, &found, &error));
	g_assert_true(found);
	g_assert_cmpuint(v, ==, 255);
	expect_fail(healer_json_get_optional_uint(obj, "over", "x", 255, &v, &found, &error), &error,
	            "x.over: 256 is outside 0..255");
}

static void
test_string(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) obj = parse("{\"a\": \"text\", \"nul\": \"a\\u0000b\", \"i\": 1, \"n\": null}");
	const char *s = NULL;
	gboolean found = TRUE;

	g_assert_true(healer_json_get_string(obj, "a", "m[0]", &s, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(s, ==, "text");
	expect_fail(healer_json_get_string(obj, "i", "m[0]", &s, &error), &error, "m[0].i: expected a string");
	expect_fail(healer_json_get_string(obj, "n", "m[0]", &s, &error), &error, "m[0].n: expected a string");
	expect_fail(healer_json_get_string(obj, "nul", "m[0]", &s, &error), &error,
	            "m[0].nul: expected a string without NUL characters");
	expect_fail(healer_json_get_string(obj, "gone", "m[0]", &s, &error), &error,
	            "m[0].gone: missing (expected a string)");
	g_assert_true(healer_json_get_optional_string(obj, "gone", "", &s, &found, &error));
	g_assert_false(found);
	g_assert_cmpstr(s, ==, "text");

	g_assert_true(healer_json_get_string_or_null(obj, "n", "", &s, &error));
	g_assert_null(s);
	g_assert_true(healer_json_get_string_or_null(obj, "a", "", &s, &error));
	g_assert_cmpstr(s, ==, "text");
	expect_fail(healer_json_get_string_or_null(obj, "i", "", &s, &error), &error, "i: expected a string or null");
	expect_fail(healer_json_get_string_or_null(obj, "gone", "", &s, &error), &error,
	            "gone: missing (expected a string or null)");

	g_assert_cmpstr(healer_json_lookup_string(obj, "a"), ==, "text");
	g_assert_null(healer_json_lookup_string(obj, "i"));
	g_assert_null(healer_json_lookup_string(obj, "gone"));
	g_assert_null(healer_json_lookup_string(NULL, "a"));
}

static void
test_bool(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) obj = parse("{\"t\": true, \"f\": false, \"i\": 0}");
	gboolean b = FALSE;

	g_assert_true(healer_json_get_bool(obj, "t", "", &b, &error));
	g_assert_true(b);
	g_assert_true(healer_json_get_bool(obj, "f", "", &b, &error));
	g_assert_false(b);
	g_assert_no_error(error);
	expect_fail(healer_json_get_bool(obj, "i", "m[2]", &b, &error), &error, "m[2].i: expected a boolean");
	expect_fail(healer_json_get_bool(obj, "gone", "m[2]", &b, &error), &error,
	            "m[2].gone: missing (expected a boolean)");
}

static void
test_array_and_object(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) obj = parse("{\"a\": [1, 2, 3], \"o\": {\"k\": 1}, \"s\": \"x\"}");
	json_object *out = NULL;
	gboolean found = TRUE;

	g_assert_true(healer_json_get_array(obj, "a", "", 3, &out, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(json_object_array_length(out), ==, 3);
	expect_fail(healer_json_get_array(obj, "a", "m[0]", 2, &out, &error), &error, "m[0].a: more than 2 elements");
	expect_fail(healer_json_get_array(obj, "o", "m[0]", 2, &out, &error), &error, "m[0].o: expected an array");
	expect_fail(healer_json_get_array(obj, "gone", "m[0]", 2, &out, &error), &error,
	            "m[0].gone: missing (expected an array)");
	out = NULL;
	g_assert_true(healer_json_get_optional_array(obj, "gone", "", 2, &out, &found, &error));
	g_assert_false(found);
	g_assert_null(out);
	expect_fail(healer_json_get_optional_array(obj, "s", "", 2, &out, &found, &error), &error,
	            "s: expected an array");

	g_assert_true(healer_json_get_object(obj, "o", "", &out, &error));
	g_assert_no_error(error);
	g_assert_true(json_object_object_get_ex(out, "k", NULL));
	expect_fail(healer_json_get_object(obj, "a", "r", &out, &error), &error, "r.a: expected an object");
	expect_fail(healer_json_get_object(obj, "gone", "r", &out, &error), &error,
	            "r.gone: missing (expected an object)");
	expect_fail(healer_json_value_object(NULL, "r[1]", &error), &error, "r[1]: expected an object");

	g_assert_true(healer_json_lookup_type(obj, "o", json_type_object) != NULL);
	g_assert_null(healer_json_lookup_type(obj, "o", json_type_array));
}

static void
test_hex(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) obj = parse("{\"lower\": \"00ff10ab\", \"upper\": \"00FF10AB\", \"short\": \"00ff10\", "
	                                   "\"bad\": \"00ff10ag\", \"nul\": \"00ff\\u000010ab\", \"i\": 7}");
	const guint8 want[4] = {0x00, 0xff, 0x10, 0xab};
	guint8 out[4] = {0};
	gboolean found = TRUE;

	g_assert_true(healer_json_get_hex(obj, "lower", "", 4, HEALER_JSON_HEX_LOWER, out, &error));
	g_assert_no_error(error);
	g_assert_cmpmem(out, 4, want, 4);
	memset(out, 0, sizeof out);
	g_assert_true(healer_json_get_hex(obj, "upper", "", 4, HEALER_JSON_HEX_ANY_CASE, out, &error));
	g_assert_cmpmem(out, 4, want, 4);
	g_assert_true(healer_json_get_hex(obj, "lower", "", 4, HEALER_JSON_HEX_LOWER, NULL, &error));
	expect_fail(healer_json_get_hex(obj, "upper", "m[1]", 4, HEALER_JSON_HEX_LOWER, out, &error), &error,
	            "m[1].upper: expected 8 lowercase hex digits");
	expect_fail(healer_json_get_hex(obj, "short", "m[1]", 4, HEALER_JSON_HEX_ANY_CASE, out, &error), &error,
	            "m[1].short: expected 8 hex digits");
	expect_fail(healer_json_get_hex(obj, "lower", "m[1]", 3, HEALER_JSON_HEX_ANY_CASE, out, &error), &error,
	            "m[1].lower: expected 6 hex digits");
	expect_fail(healer_json_get_hex(obj, "bad", "m[1]", 4, HEALER_JSON_HEX_ANY_CASE, out, &error), &error,
	            "m[1].bad: expected 8 hex digits");
	expect_fail(healer_json_get_hex(obj, "nul", "m[1]", 4, HEALER_JSON_HEX_ANY_CASE, out, &error), &error,
	            "m[1].nul: expected 8 hex digits");
	expect_fail(healer_json_get_hex(obj, "i", "m[1]", 4, HEALER_JSON_HEX_LOWER, out, &error), &error,
	            "m[1].i: expected a string of 8 lowercase hex digits");
	expect_fail(healer_json_get_hex(obj, "gone", "m[1]", 32, HEALER_JSON_HEX_LOWER, out, &error), &error,
	            "m[1].gone: missing (expected 64 lowercase hex digits, a SHA-256)");
	g_assert_cmpmem(out, 4, want, 4); /* untouched by the failures */
	g_assert_true(healer_json_get_optional_hex(obj, "gone", "", 4, HEALER_JSON_HEX_LOWER, out, &found, &error));
	g_assert_false(found);
	expect_fail(healer_json_get_optional_hex(obj, "bad", "", 4, HEALER_JSON_HEX_LOWER, out, &found, &error), &error,
	            "bad: expected 8 lowercase hex digits");
}

/* healer_fail(): the one printf-style raiser, any code, FALSE; a NULL error is allowed. */
static void
test_fail(void)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(healer_fail(&error, HEALER_ERROR_NOT_FOUND, "%s %d", "no release", 3));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "no release 3");
	g_assert_false(healer_fail(NULL, HEALER_ERROR_IO, "ignored"));
	g_clear_error(&error);
	expect_fail(healer_json_fail(&error, "a[%d]: bad", 2), &error, "a[2]: bad");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/json/parse", test_parse);
	g_test_add_func("/json/format-and-keys", test_format_and_keys);
	g_test_add_func("/json/paths", test_paths);
	g_test_add_func("/json/uint", test_uint);
	g_test_add_func("/json/string", test_string);
	g_test_add_func("/json/bool", test_bool);
	g_test_add_func("/json/array-and-object", test_array_and_object);
	g_test_add_func("/json/hex", test_hex);
	g_test_add_func("/json/fail", test_fail);
	return g_test_run();
}
