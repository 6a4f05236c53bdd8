/*
 * Typed, bounded reading of json-c values for every JSON document healerd reads (catalogs, bundle
 * manifests, release tables, a device's describe, the store's index).  A thin layer over json-c,
 * not a parser: it checks one value's type and bounds and, when they are wrong, raises
 * HEALER_ERROR_INVALID_DATA with a message that names the value's place in the document, so a
 * reader needs no error text of its own for the ordinary faults.
 *
 * Paths: a getter takes `where`, the path of the object it reads from ("releases[3]"; "" or NULL
 * at the top level), and names the member it reads: "releases[3].name: missing (expected a
 * string)".  The value getters (healer_json_value_*) take the value's own path instead.
 *
 * Messages (PATH is the value's path; these texts are what the tests assert):
 *   missing member      PATH: missing (expected WHAT)
 *   wrong type          PATH: expected WHAT             (a JSON null is a wrong type)
 *   integer too large   PATH: 70000 is outside 0..65535 (or "-1 is not a non-negative integer")
 *   array too long      PATH: more than N elements
 *   string with a NUL   PATH: expected a string without NUL characters
 *   bad hex             PATH: expected 64 lowercase hex digits
 * where WHAT is "a string", "an integer 0..MAX" ("a non-negative integer" when MAX is
 * G_MAXUINT64), "a boolean", "an array", "an object" or "N [lowercase ]hex digits" (with ", a
 * SHA-256" for 64 digits); a hex value of the wrong type says "expected a string of N ... digits".
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "healer-error.h"

G_BEGIN_DECLS

/* HEALER_ERROR_INVALID_DATA with a printf-style message; FALSE, for `return healer_json_fail(...)`. */
#define healer_json_fail(error, ...) healer_fail((error), HEALER_ERROR_INVALID_DATA, __VA_ARGS__)

/*
 * A whole document: exactly one JSON value, no NUL byte, no trailing data.  `what` names the
 * document in the one message that needs it ("catalog is too large" beyond G_MAXINT bytes).
 * Errors: "not valid JSON: contains a NUL byte", "not valid JSON at byte N: REASON".
 */
json_object *healer_json_parse(const guint8 *data, gsize len, const char *what, GError **error);

/*
 * The top level of a versioned document: an object whose "format" is `format` and whose
 * "format_version" is `version`.  Errors: "top level: expected an object", "format: expected
 * \"FORMAT\"", "format_version: expected VERSION".
 */
gboolean healer_json_check_format(json_object *root, const char *format, gint64 version, GError **error);

/*
 * Every member of `obj` is one of `allowed` (NULL-terminated); else "WHERE: unknown key \"KEY\""
 * ("top level" for a NULL or empty `where`; KEY escaped by healer_text_escape()).
 */
gboolean healer_json_check_keys(json_object *obj, const char *where, const char *const *allowed, GError **error);

/* "WHERE.KEY", or "KEY" when `where` is "" or NULL. */
char *healer_json_path(const char *where, const char *key);

/* "WHERE[INDEX]". */
char *healer_json_path_index(const char *where, gsize index);

/* ---- a value, named by its own path ------------------------------------------------------- */

gboolean healer_json_value_object(json_object *val, const char *path, GError **error);
/* An array of at most `max_len` elements (G_MAXSIZE: any). */
gboolean healer_json_value_array(json_object *val, const char *path, gsize max_len, GError **error);
/* A string without NUL characters; `*out` points into `val`. */
gboolean healer_json_value_string(json_object *val, const char *path, const char **out, GError **error);
/* An integer 0..max (json-c's uint64 range included when max allows it). */
gboolean healer_json_value_uint(json_object *val, const char *path, guint64 max, guint64 *out, GError **error);
gboolean healer_json_value_bool(json_object *val, const char *path, gboolean *out, GError **error);

typedef enum {
	HEALER_JSON_HEX_ANY_CASE = 0,
	HEALER_JSON_HEX_LOWER = 1 << 0, /* the canonical form: only 0-9 and a-f */
} HealerJsonHexFlags;

/* A string of exactly 2 * `n_bytes` hex digits; `out` (may be NULL: check only) gets the bytes. */
gboolean healer_json_value_hex(json_object *val, const char *path, gsize n_bytes, HealerJsonHexFlags flags, guint8 *out,
                               GError **error);

/* ---- a member of an object, required: a missing one is an error ----------------------------- */

gboolean healer_json_get_object(json_object *obj, const char *key, const char *where, json_object **out,
                                GError **error);
gboolean healer_json_get_array(json_object *obj, const char *key, const char *where, gsize max_len, json_object **out,
                               GError **error);
gboolean healer_json_get_string(json_object *obj, const char *key, const char *where, const char **out, GError **error);
gboolean healer_json_get_uint(json_object *obj, const char *key, const char *where, guint64 max, guint64 *out,
                              GError **error);
gboolean healer_json_get_bool(json_object *obj, const char *key, const char *where, gboolean *out, GError **error);
gboolean healer_json_get_hex(json_object *obj, const char *key, const char *where, gsize n_bytes,
                             HealerJsonHexFlags flags, guint8 *out, GError **error);
/* A member that must be present and is a string or null (`*out` NULL for null). */
gboolean healer_json_get_string_or_null(json_object *obj, const char *key, const char *where, const char **out,
                                        GError **error);

/* ---- a member that may be absent: TRUE with *found FALSE (and *out untouched) when it is ---- */

gboolean healer_json_get_optional_array(json_object *obj, const char *key, const char *where, gsize max_len,
                                        json_object **out, gboolean *found, GError **error);
gboolean healer_json_get_optional_string(json_object *obj, const char *key, const char *where, const char **out,
                                         gboolean *found, GError **error);
gboolean healer_json_get_optional_uint(json_object *obj, const char *key, const char *where, guint64 max, guint64 *out,
                                       gboolean *found, GError **error);
gboolean healer_json_get_optional_hex(json_object *obj, const char *key, const char *where, gsize n_bytes,
                                      HealerJsonHexFlags flags, guint8 *out, gboolean *found, GError **error);

/* ---- lenient look-ups, for documents this program wrote itself (a D-Bus reply, a state file) ---- */

/* The member's string, or NULL when it is absent or not a string. */
const char *healer_json_lookup_string(json_object *obj, const char *key);
/* The member when it is of `type`, or NULL. */
json_object *healer_json_lookup_type(json_object *obj, const char *key, json_type type);

G_END_DECLS
