#include "healer-json.h"

#include <string.h>

#include "healer-error.h"
#include "healer-text.h"
#include "json-autoptr.h"

json_object *
healer_json_parse(const guint8 *data, gsize len, const char *what, GError **error)
{
	g_autoptr(json_tokener) tok = json_tokener_new();
	g_autoptr(json_object) root = NULL;

	/* json-c takes an int length. */
	if (len > G_MAXINT) {
		healer_json_fail(error, "%s is too large", what);
		return NULL;
	}
	/* json-c would end a string at a NUL; a document holding one is not what it seems. */
	if (memchr(data, '\0', len) != NULL) {
		healer_json_fail(error, "not valid JSON: contains a NUL byte");
		return NULL;
	}
	root = json_tokener_parse_ex(tok, (const char *)data, (int)len);
	if (root == NULL || json_tokener_get_parse_end(tok) < len) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);

		healer_json_fail(error, "not valid JSON at byte %" G_GSIZE_FORMAT ": %s",
		                 json_tokener_get_parse_end(tok),
		                 jerr == json_tokener_success ? "trailing data" : json_tokener_error_desc(jerr));
		return NULL;
	}
	return g_steal_pointer(&root);
}

gboolean
healer_json_check_format(json_object *root, const char *format, gint64 version, GError **error)
{
	json_object *val = NULL;
	const char *s = NULL;

	if (!json_object_is_type(root, json_type_object))
		return healer_json_fail(error, "top level: expected an object");
	if (!json_object_object_get_ex(root, "format", &val) || !healer_json_value_string(val, "format", &s, NULL) ||
	    strcmp(s, format) != 0)
		return healer_json_fail(error, "format: expected \"%s\"", format);
	if (!json_object_object_get_ex(root, "format_version", &val) || !json_object_is_type(val, json_type_int) ||
	    json_object_get_int64(val) != version)
		return healer_json_fail(error, "format_version: expected %" G_GINT64_FORMAT, version);
	return TRUE;
}

gboolean
healer_json_check_keys(json_object *obj, const char *where, const char *const *allowed, GError **error)
{
	json_object_object_foreach (obj, key, val) {
		(void)val;
		if (!g_strv_contains(allowed, key)) {
			/* A key from outside: shown escaped, as every outside text is (healer-text.h). */
			g_autofree char *name = healer_text_escape(key, -1);

			return healer_json_fail(error, "%s: unknown key \"%s\"",
			                        where != NULL && *where ? where : "top level", name);
		}
	}
	return TRUE;
}

char *
healer_json_path(const char *where, const char *key)
{
	if (where == NULL || where[0] == '\0')
		return g_strdup(key);
	return g_strdup_printf("%s.%s", where, key);
}

char *
healer_json_path_index(const char *where, gsize index)
{
	return g_strdup_printf("%s[%" G_GSIZE_FORMAT "]", where != NULL ? where : "", index);
}

/* ---- what a value should be, in words ------------------------------------------------------- */

static char *
uint_words(guint64 max)
{
	if (max == G_MAXUINT64)
		return g_strdup("a non-negative integer");
	return g_strdup_printf("an integer 0..%" G_GUINT64_FORMAT, max);
}

/* Every 32-byte value healerd's documents hold in hex is a SHA-256: the message says so. */
static char *
hex_words(gsize n_bytes, HealerJsonHexFlags flags)
{
	return g_strdup_printf("%" G_GSIZE_FORMAT " %shex digits%s", n_bytes * 2,
	                       (flags & HEALER_JSON_HEX_LOWER) != 0 ? "lowercase " : "",
	                       n_bytes == 32 ? ", a SHA-256" : "");
}

/* ---- values --------------------------------------------------------------------------------- */

gboolean
healer_json_value_object(json_object *val, const char *path, GError **error)
{
	if (!json_object_is_type(val, json_type_object))
		return healer_json_fail(error, "%s: expected an object", path);
	return TRUE;
}

gboolean
healer_json_value_array(json_object *val, const char *path, gsize max_len, GError **error)
{
	if (!json_object_is_type(val, json_type_array))
		return healer_json_fail(error, "%s: expected an array", path);
	if (json_object_array_length(val) > max_len)
		return healer_json_fail(error, "%s: more than %" G_GSIZE_FORMAT " elements", path, max_len);
	return TRUE;
}

gboolean
healer_json_value_string(json_object *val, const char *path, const char **out, GError **error)
{
	const char *s;

	if (!json_object_is_type(val, json_type_string))
		return healer_json_fail(error, "%s: expected a string", path);
	s = json_object_get_string(val);
	/* "\u0000" parses; C code reading the string would see a shorter one. */
	if ((size_t)json_object_get_string_len(val) != strlen(s))
		return healer_json_fail(error, "%s: expected a string without NUL characters", path);
	*out = s;
	return TRUE;
}

gboolean
healer_json_value_uint(json_object *val, const char *path, guint64 max, guint64 *out, GError **error)
{
	guint64 n;

	if (!json_object_is_type(val, json_type_int)) {
		g_autofree char *words = uint_words(max);

		return healer_json_fail(error, "%s: expected %s", path, words);
	}
	if (json_object_get_int64(val) < 0) {
		if (max == G_MAXUINT64)
			return healer_json_fail(error, "%s: %s is not a non-negative integer", path,
			                        json_object_to_json_string(val));
		return healer_json_fail(error, "%s: %s is outside 0..%" G_GUINT64_FORMAT, path,
		                        json_object_to_json_string(val), max);
	}
	/* json-c keeps integers above INT64_MAX as uint64: read them whole. */
	n = json_object_get_uint64(val);
	if (n > max)
		return healer_json_fail(error, "%s: %s is outside 0..%" G_GUINT64_FORMAT, path,
		                        json_object_to_json_string(val), max);
	*out = n;
	return TRUE;
}

gboolean
healer_json_value_bool(json_object *val, const char *path, gboolean *out, GError **error)
{
	if (!json_object_is_type(val, json_type_boolean))
		return healer_json_fail(error, "%s: expected a boolean", path);
	*out = json_object_get_boolean(val);
	return TRUE;
}

gboolean
healer_json_value_hex(json_object *val, const char *path, gsize n_bytes, HealerJsonHexFlags flags, guint8 *out,
                      GError **error)
{
	g_autofree char *words = hex_words(n_bytes, flags);
	const char *s;

	if (!json_object_is_type(val, json_type_string))
		return healer_json_fail(error, "%s: expected a string of %s", path, words);
	s = json_object_get_string(val);
	if ((gsize)json_object_get_string_len(val) != n_bytes * 2 || strlen(s) != n_bytes * 2)
		return healer_json_fail(error, "%s: expected %s", path, words);
	for (gsize i = 0; i < n_bytes * 2; i++) {
		gboolean lower_digit = g_ascii_isdigit(s[i]) || (s[i] >= 'a' && s[i] <= 'f');

		if (!g_ascii_isxdigit(s[i]) || ((flags & HEALER_JSON_HEX_LOWER) != 0 && !lower_digit))
			return healer_json_fail(error, "%s: expected %s", path, words);
	}
	for (gsize i = 0; out != NULL && i < n_bytes; i++)
		out[i] = (guint8)(g_ascii_xdigit_value(s[2 * i]) << 4 | g_ascii_xdigit_value(s[2 * i + 1]));
	return TRUE;
}

/* ---- members -------------------------------------------------------------------------------- */

/*
 * The member `key` of `obj` into *val; FALSE when absent.  `obj` must be an object: the callers
 * checked it (healer_json_value_object) before reading its members.
 */
static gboolean
member(json_object *obj, const char *key, json_object **val)
{
	*val = NULL;
	return json_object_object_get_ex(obj, key, val);
}

static gboolean
missing(GError **error, const char *path, const char *words)
{
	return healer_json_fail(error, "%s: missing (expected %s)", path, words);
}

gboolean
healer_json_get_object(json_object *obj, const char *key, const char *where, json_object **out, GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	if (!member(obj, key, &val))
		return missing(error, path, "an object");
	if (!healer_json_value_object(val, path, error))
		return FALSE;
	*out = val;
	return TRUE;
}

gboolean
healer_json_get_optional_array(json_object *obj, const char *key, const char *where, gsize max_len, json_object **out,
                               gboolean *found, GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	*found = member(obj, key, &val);
	if (!*found)
		return TRUE;
	if (!healer_json_value_array(val, path, max_len, error))
		return FALSE;
	*out = val;
	return TRUE;
}

gboolean
healer_json_get_array(json_object *obj, const char *key, const char *where, gsize max_len, json_object **out,
                      GError **error)
{
	gboolean found;

	if (!healer_json_get_optional_array(obj, key, where, max_len, out, &found, error))
		return FALSE;
	if (!found) {
		g_autofree char *path = healer_json_path(where, key);

		return missing(error, path, "an array");
	}
	return TRUE;
}

gboolean
healer_json_get_optional_string(json_object *obj, const char *key, const char *where, const char **out, gboolean *found,
                                GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	*found = member(obj, key, &val);
	if (!*found)
		return TRUE;
	return healer_json_value_string(val, path, out, error);
}

gboolean
healer_json_get_string(json_object *obj, const char *key, const char *where, const char **out, GError **error)
{
	gboolean found;

	if (!healer_json_get_optional_string(obj, key, where, out, &found, error))
		return FALSE;
	if (!found) {
		g_autofree char *path = healer_json_path(where, key);

		return missing(error, path, "a string");
	}
	return TRUE;
}

gboolean
healer_json_get_string_or_null(json_object *obj, const char *key, const char *where, const char **out, GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	if (!member(obj, key, &val))
		return missing(error, path, "a string or null");
	if (val == NULL) {
		*out = NULL;
		return TRUE;
	}
	if (!json_object_is_type(val, json_type_string))
		return healer_json_fail(error, "%s: expected a string or null", path);
	return healer_json_value_string(val, path, out, error);
}

gboolean
healer_json_get_optional_uint(json_object *obj, const char *key, const char *where, guint64 max, guint64 *out,
                              gboolean *found, GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	*found = member(obj, key, &val);
	if (!*found)
		return TRUE;
	return healer_json_value_uint(val, path, max, out, error);
}

gboolean
healer_json_get_uint(json_object *obj, const char *key, const char *where, guint64 max, guint64 *out, GError **error)
{
	gboolean found;

	if (!healer_json_get_optional_uint(obj, key, where, max, out, &found, error))
		return FALSE;
	if (!found) {
		g_autofree char *path = healer_json_path(where, key);
		g_autofree char *words = uint_words(max);

		return missing(error, path, words);
	}
	return TRUE;
}

gboolean
healer_json_get_bool(json_object *obj, const char *key, const char *where, gboolean *out, GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	if (!member(obj, key, &val))
		return missing(error, path, "a boolean");
	return healer_json_value_bool(val, path, out, error);
}

gboolean
healer_json_get_optional_hex(json_object *obj, const char *key, const char *where, gsize n_bytes,
                             HealerJsonHexFlags flags, guint8 *out, gboolean *found, GError **error)
{
	g_autofree char *path = healer_json_path(where, key);
	json_object *val;

	*found = member(obj, key, &val);
	if (!*found)
		return TRUE;
	return healer_json_value_hex(val, path, n_bytes, flags, out, error);
}

gboolean
healer_json_get_hex(json_object *obj, const char *key, const char *where, gsize n_bytes, HealerJsonHexFlags flags,
                    guint8 *out, GError **error)
{
	gboolean found;

	if (!healer_json_get_optional_hex(obj, key, where, n_bytes, flags, out, &found, error))
		return FALSE;
	if (!found) {
		g_autofree char *path = healer_json_path(where, key);
		g_autofree char *words = hex_words(n_bytes, flags);

		return missing(error, path, words);
	}
	return TRUE;
}

/* ---- lenient look-ups ----------------------------------------------------------------------- */

json_object *
healer_json_lookup_type(json_object *obj, const char *key, json_type type)
{
	json_object *val = NULL;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &val) || !json_object_is_type(val, type))
		return NULL;
	return val;
}

const char *
healer_json_lookup_string(json_object *obj, const char *key)
{
	json_object *val = healer_json_lookup_type(obj, key, json_type_string);

	return val != NULL ? json_object_get_string(val) : NULL;
}
