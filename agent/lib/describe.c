#include "describe.h"

#include <string.h>

#include "healer-error.h"
#include "json-autoptr.h"
#include "module-names.h"

G_GNUC_PRINTF(3, 4)
static gboolean
fail(GError **error, const char *path, const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "describe: %s: %s", path, message);
	return FALSE;
}

static void
module_clear(gpointer data)
{
	HealerDescribeModule *module = data;

	g_clear_pointer(&module->dependencies, g_array_unref);
}

void
healer_describe_free(HealerDescribe *describe)
{
	if (describe == NULL)
		return;
	g_clear_pointer(&describe->modules, g_array_unref);
	g_free(describe);
}

/*
 * An integer member 0..max.  *found says whether it was there; a missing
 * required member is an error.
 */
static gboolean
get_uint(json_object *obj, const char *key, const char *where, gboolean required, guint64 max, guint64 *value,
         gboolean *found, GError **error)
{
	g_autofree char *path = *where ? g_strdup_printf("%s.%s", where, key) : g_strdup(key);
	json_object *member = NULL;
	int64_t v;

	*found = json_object_object_get_ex(obj, key, &member);
	if (!*found) {
		if (required)
			return fail(error, path, "missing");
		return TRUE;
	}
	if (!json_object_is_type(member, json_type_int))
		return fail(error, path, "expected an integer 0..%" G_GUINT64_FORMAT, max);
	/* json-c keeps integers above INT64_MAX as uint64; get_int64 saturates them, which the range check catches. */
	v = json_object_get_int64(member);
	if (v < 0 || (guint64)v > max)
		return fail(error, path, "%s is outside 0..%" G_GUINT64_FORMAT, json_object_to_json_string(member),
		            max);
	*value = (guint64)v;
	return TRUE;
}

/* A string member; NULL (and no error) when absent and not required. */
static gboolean
get_string(json_object *obj, const char *key, const char *where, gboolean required, const char **value, GError **error)
{
	g_autofree char *path = g_strdup_printf("%s.%s", where, key);
	json_object *member = NULL;

	*value = NULL;
	if (!json_object_object_get_ex(obj, key, &member)) {
		if (required)
			return fail(error, path, "missing");
		return TRUE;
	}
	if (!json_object_is_type(member, json_type_string))
		return fail(error, path, "expected a string");
	*value = json_object_get_string(member);
	return TRUE;
}

/* "f": a describe function character. */
static gboolean
parse_function(json_object *obj, const char *where, guint8 *function, GError **error)
{
	g_autofree char *path = g_strdup_printf("%s.f", where);
	const char *s;
	int f;

	if (!get_string(obj, "f", where, TRUE, &s, error))
		return FALSE;
	/* "_": Device OS prints it for SETTINGS (and, on some versions, ASSET); it reads back as SETTINGS. */
	if (strcmp(s, "_") == 0) {
		*function = MODULE_FUNCTION_SETTINGS;
		return TRUE;
	}
	f = strlen(s) == 1 ? healer_module_function_from_string(s) : -1;
	if (f < 0)
		return fail(error, path, "\"%s\" is not a module function (b, s, u, m, a, c, r, t, n or _)", s);
	*function = (guint8)f;
	return TRUE;
}

/* "n": the index, a decimal number 0..255 as a string (Device OS prints it so on purpose). */
static gboolean
parse_index(json_object *obj, const char *where, guint8 *index, GError **error)
{
	g_autofree char *path = g_strdup_printf("%s.n", where);
	json_object *member = NULL;
	const char *s;
	gsize len;
	guint v = 0;

	if (!json_object_object_get_ex(obj, "n", &member))
		return fail(error, path, "missing");
	if (!json_object_is_type(member, json_type_string))
		return fail(error, path, "expected a string holding a number 0..255");
	s = json_object_get_string(member);
	len = (gsize)json_object_get_string_len(member);
	/* Canonical decimal only: 1 to 3 digits, no sign, no leading zero, no NUL inside. */
	if (len < 1 || len > 3 || (len > 1 && s[0] == '0'))
		return fail(error, path, "expected a string holding a number 0..255");
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return fail(error, path, "expected a string holding a number 0..255");
		v = v * 10 + (guint)(s[i] - '0');
	}
	if (v > 255)
		return fail(error, path, "expected a string holding a number 0..255");
	*index = (guint8)v;
	return TRUE;
}

static gboolean
parse_dependency(json_object *obj, const char *where, HealerDescribeDependency *dep, GError **error)
{
	guint64 v = 0;
	gboolean found;

	if (!json_object_is_type(obj, json_type_object))
		return fail(error, where, "expected an object");
	if (!parse_function(obj, where, &dep->function, error) || !parse_index(obj, where, &dep->index, error) ||
	    !get_uint(obj, "v", where, TRUE, G_MAXUINT16, &v, &found, error))
		return FALSE;
	dep->version = (guint16)v;
	/* "_":"" (firmware up to about 1.5) and anything else are ignored. */
	return TRUE;
}

static gboolean
parse_store(json_object *obj, const char *where, guint8 *store, GError **error)
{
	static const char *const stores[] = {
	        [MODULE_STORE_MAIN] = "m",
	        [MODULE_STORE_FACTORY] = "f",
	        [MODULE_STORE_BACKUP] = "b",
	        [MODULE_STORE_SCRATCHPAD] = "t",
	};
	g_autofree char *path = g_strdup_printf("%s.l", where);
	const char *s;

	if (!get_string(obj, "l", where, TRUE, &s, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(stores); i++) {
		if (strcmp(s, stores[i]) == 0) {
			*store = (guint8)i;
			return TRUE;
		}
	}
	return fail(error, path, "\"%s\" is not a module store (m, f, b or t)", s);
}

static gboolean
parse_hash(const char *s, guint8 sha256[32])
{
	if (strlen(s) != 64)
		return FALSE;
	for (guint i = 0; i < 32; i++) {
		int hi = g_ascii_xdigit_value(s[2 * i]), lo = g_ascii_xdigit_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return FALSE;
		sha256[i] = (guint8)(hi << 4 | lo);
	}
	return TRUE;
}

static gboolean
parse_module(json_object *obj, const char *where, HealerDescribeModule *module, GError **error)
{
	json_object *deps = NULL;
	const char *hash = NULL;
	gboolean has_f, has_n, has_v, found;
	guint64 v = 0;

	if (!json_object_is_type(obj, json_type_object))
		return fail(error, where, "expected an object");
	if (!get_uint(obj, "s", where, TRUE, G_MAXUINT32, &v, &found, error))
		return FALSE;
	module->max_size = (guint32)v;
	if (!parse_store(obj, where, &module->store, error))
		return FALSE;
	if (!get_uint(obj, "vc", where, TRUE, G_MAXUINT16, &v, &found, error))
		return FALSE;
	module->validity_checked = (guint16)v;
	if (!get_uint(obj, "vv", where, TRUE, G_MAXUINT16, &v, &found, error))
		return FALSE;
	module->validity_passed = (guint16)v;

	if (!get_string(obj, "u", where, FALSE, &hash, error))
		return FALSE;
	if (hash != NULL) {
		g_autofree char *path = g_strdup_printf("%s.u", where);
		if (!parse_hash(hash, module->sha256))
			return fail(error, path, "expected 64 hexadecimal digits (a SHA-256)");
		module->has_hash = TRUE;
	}

	/* "f", "n" and "v" describe the module in the slot; an empty slot has none of them. */
	has_f = json_object_object_get_ex(obj, "f", NULL);
	has_n = json_object_object_get_ex(obj, "n", NULL);
	has_v = json_object_object_get_ex(obj, "v", NULL);
	if (has_f || has_n || has_v) {
		if (!parse_function(obj, where, &module->function, error) ||
		    !parse_index(obj, where, &module->index, error) ||
		    !get_uint(obj, "v", where, TRUE, G_MAXUINT16, &v, &found, error))
			return FALSE;
		module->version = (guint16)v;
		module->has_info = TRUE;
	}

	if (json_object_object_get_ex(obj, "d", &deps)) {
		g_autofree char *path = g_strdup_printf("%s.d", where);
		gsize n;

		if (!json_object_is_type(deps, json_type_array))
			return fail(error, path, "expected an array");
		n = json_object_array_length(deps);
		for (gsize i = 0; i < n; i++) {
			g_autofree char *dep_path = g_strdup_printf("%s.d[%" G_GSIZE_FORMAT "]", where, i);
			HealerDescribeDependency dep = {0};

			if (!parse_dependency(json_object_array_get_idx(deps, i), dep_path, &dep, error))
				return FALSE;
			g_array_append_val(module->dependencies, dep);
		}
	}
	return TRUE;
}

HealerDescribe *
healer_describe_parse(const char *data, gsize len, GError **error)
{
	g_autoptr(json_tokener) tok = json_tokener_new();
	g_autoptr(json_object) root = NULL;
	g_autoptr(HealerDescribe) describe = g_new0(HealerDescribe, 1);
	json_object *modules = NULL;
	guint64 v = 0;
	gboolean found;
	gsize end, n;

	describe->modules = g_array_new(FALSE, TRUE, sizeof(HealerDescribeModule));
	g_array_set_clear_func(describe->modules, module_clear);
	if (len > G_MAXINT) {
		fail(error, "top level", "%" G_GSIZE_FORMAT " bytes is too large", len);
		return NULL;
	}
	json_tokener_set_flags(tok,
	                       JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, data, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* Trailing white space (a newline after the object) is fine; anything else is not. */
	while (root != NULL && end < len && g_ascii_isspace(data[end]))
		end++;
	if (root == NULL || end < len) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "describe: not valid JSON at byte %" G_GSIZE_FORMAT ": %s", json_tokener_get_parse_end(tok),
		            root != NULL || jerr == json_tokener_success ? "trailing data"
		            : jerr == json_tokener_continue              ? "unexpected end of input"
		                                                         : json_tokener_error_desc(jerr));
		return NULL;
	}
	if (!json_object_is_type(root, json_type_object)) {
		fail(error, "top level", "expected an object");
		return NULL;
	}
	if (!get_uint(root, "p", "", TRUE, G_MAXUINT16, &v, &found, error))
		return NULL;
	describe->platform_id = (guint16)v;
	if (!json_object_object_get_ex(root, "m", &modules)) {
		fail(error, "m", "missing");
		return NULL;
	}
	if (!json_object_is_type(modules, json_type_array)) {
		fail(error, "m", "expected an array");
		return NULL;
	}
	n = json_object_array_length(modules);
	for (gsize i = 0; i < n; i++) {
		g_autofree char *path = g_strdup_printf("m[%" G_GSIZE_FORMAT "]", i);
		HealerDescribeModule module = {0};

		module.dependencies = g_array_new(FALSE, TRUE, sizeof(HealerDescribeDependency));
		/* Appended first, so the array frees it on failure too. */
		g_array_append_val(describe->modules, module);
		if (!parse_module(json_object_array_get_idx(modules, i), path,
		                  &g_array_index(describe->modules, HealerDescribeModule, i), error))
			return NULL;
	}
	return g_steal_pointer(&describe);
}

/* ---- back to JSON ------------------------------------------------------------ */

static json_object *
index_string(guint index)
{
	char buf[4];

	g_snprintf(buf, sizeof buf, "%u", index);
	return json_object_new_string(buf);
}

static const char *
function_char(guint function)
{
	const char *c = healer_module_function_to_describe_char(function);

	return c != NULL ? c : "_";
}

json_object *
healer_describe_to_json(const HealerDescribe *describe)
{
	static const char *const stores[] = {"m", "f", "b", "t"};
	json_object *root = json_object_new_object();
	json_object *modules = json_object_new_array();

	json_object_object_add(root, "p", json_object_new_int(describe->platform_id));
	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		json_object *obj = json_object_new_object();
		json_object *deps = json_object_new_array();

		json_object_object_add(obj, "s", json_object_new_int64(m->max_size));
		json_object_object_add(
		        obj, "l", json_object_new_string(m->store < G_N_ELEMENTS(stores) ? stores[m->store] : "m"));
		json_object_object_add(obj, "vc", json_object_new_int(m->validity_checked));
		json_object_object_add(obj, "vv", json_object_new_int(m->validity_passed));
		if (m->has_hash) {
			char hex[65];
			for (guint b = 0; b < 32; b++)
				g_snprintf(hex + 2 * b, 3, "%02X", m->sha256[b]);
			json_object_object_add(obj, "u", json_object_new_string(hex));
		}
		if (m->has_info) {
			json_object_object_add(obj, "f", json_object_new_string(function_char(m->function)));
			json_object_object_add(obj, "n", index_string(m->index));
			json_object_object_add(obj, "v", json_object_new_int(m->version));
		}
		for (guint d = 0; d < m->dependencies->len; d++) {
			const HealerDescribeDependency *dep =
			        &g_array_index(m->dependencies, HealerDescribeDependency, d);
			json_object *dobj = json_object_new_object();

			json_object_object_add(dobj, "f", json_object_new_string(function_char(dep->function)));
			json_object_object_add(dobj, "n", index_string(dep->index));
			json_object_object_add(dobj, "v", json_object_new_int(dep->version));
			json_object_array_add(deps, dobj);
		}
		json_object_object_add(obj, "d", deps);
		json_object_array_add(modules, obj);
	}
	json_object_object_add(root, "m", modules);
	return root;
}

char *
healer_describe_to_string(const HealerDescribe *describe)
{
	g_autoptr(json_object) obj = healer_describe_to_json(describe);

	return g_strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
}

/* ---- queries ------------------------------------------------------------------- */

const HealerDescribeModule *
healer_describe_find(const HealerDescribe *describe, guint function, guint index)
{
	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);

		if (m->has_info && m->store == MODULE_STORE_MAIN && m->function == function && m->index == index)
			return m;
	}
	return NULL;
}

gboolean
healer_describe_module_dependency_failed(const HealerDescribeModule *module)
{
	return (module->validity_checked & MODULE_VALIDATION_DEPENDENCIES) != 0 &&
	       (module->validity_passed & MODULE_VALIDATION_DEPENDENCIES) == 0;
}

gboolean
healer_describe_module_valid(const HealerDescribeModule *module)
{
	return module->validity_checked != 0 && module->validity_checked == module->validity_passed;
}

GArray *
healer_describe_module_unmet_dependencies(const HealerDescribe *describe, const HealerDescribeModule *module)
{
	GArray *unmet = g_array_new(FALSE, TRUE, sizeof(HealerDescribeUnmet));

	for (guint i = 0; i < module->dependencies->len; i++) {
		const HealerDescribeDependency *dep = &g_array_index(module->dependencies, HealerDescribeDependency, i);
		const HealerDescribeModule *have;
		HealerDescribeUnmet u = {.dependency = *dep};

		if (dep->function == MODULE_FUNCTION_NONE)
			continue;
		have = healer_describe_find(describe, dep->function, dep->index);
		if (have != NULL && have->version >= dep->version)
			continue;
		if (have != NULL) {
			u.installed = TRUE;
			u.installed_version = have->version;
		}
		g_array_append_val(unmet, u);
	}
	return unmet;
}

char *
healer_describe_dependency_to_string(const HealerDescribeDependency *dep)
{
	const char *name = healer_module_function_to_string(dep->function);

	if (name == NULL)
		return g_strdup_printf("function %u %u >= %u", dep->function, dep->index, dep->version);
	return g_strdup_printf("%s %u >= %u", name, dep->index, dep->version);
}
