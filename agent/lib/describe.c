#include "describe.h"

#include <string.h>

#include "healer-error.h"
#include "healer-json.h"
#include "json-autoptr.h"
#include "module-names.h"

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

/* "f": a describe function character. */
static gboolean
parse_function(json_object *obj, const char *where, guint8 *function, GError **error)
{
	g_autofree char *path = healer_json_path(where, "f");
	const char *s;
	int f;

	if (!healer_json_get_string(obj, "f", where, &s, error))
		return FALSE;
	/* "_": Device OS prints it for SETTINGS (and, on some versions, ASSET); it reads back as SETTINGS. */
	if (strcmp(s, "_") == 0) {
		*function = MODULE_FUNCTION_SETTINGS;
		return TRUE;
	}
	f = strlen(s) == 1 ? healer_module_function_from_string(s) : -1;
	if (f < 0)
		return healer_json_fail(error, "%s: \"%s\" is not a module function (b, s, u, m, a, c, r, t, n or _)",
		                        path, s);
	*function = (guint8)f;
	return TRUE;
}

/* "n": the index, a decimal number 0..255 as a string (Device OS prints it so on purpose). */
static gboolean
parse_index(json_object *obj, const char *where, guint8 *index, GError **error)
{
	g_autofree char *path = healer_json_path(where, "n");
	const char *s = NULL;
	gboolean found;
	gsize len;
	guint v = 0;

	if (!json_object_object_get_ex(obj, "n", NULL))
		return healer_json_fail(error, "%s: missing (expected a string holding a number 0..255)", path);
	(void)healer_json_get_optional_string(obj, "n", where, &s, &found, NULL);
	len = s != NULL ? strlen(s) : 0;
	/* Canonical decimal only: 1 to 3 digits, no sign, no leading zero (a NUL inside fails above). */
	if (s == NULL || len < 1 || len > 3 || (len > 1 && s[0] == '0'))
		return healer_json_fail(error, "%s: expected a string holding a number 0..255", path);
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return healer_json_fail(error, "%s: expected a string holding a number 0..255", path);
		v = v * 10 + (guint)(s[i] - '0');
	}
	if (v > 255)
		return healer_json_fail(error, "%s: expected a string holding a number 0..255", path);
	*index = (guint8)v;
	return TRUE;
}

static gboolean
parse_dependency(json_object *obj, const char *where, HealerDescribeDependency *dep, GError **error)
{
	guint64 v = 0;

	if (!healer_json_value_object(obj, where, error) || !parse_function(obj, where, &dep->function, error) ||
	    !parse_index(obj, where, &dep->index, error) ||
	    !healer_json_get_uint(obj, "v", where, G_MAXUINT16, &v, error))
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
	g_autofree char *path = healer_json_path(where, "l");
	const char *s;

	if (!healer_json_get_string(obj, "l", where, &s, error))
		return FALSE;
	for (guint i = 0; i < G_N_ELEMENTS(stores); i++) {
		if (strcmp(s, stores[i]) == 0) {
			*store = (guint8)i;
			return TRUE;
		}
	}
	return healer_json_fail(error, "%s: \"%s\" is not a module store (m, f, b or t)", path, s);
}

static gboolean
parse_module(json_object *obj, const char *where, HealerDescribeModule *module, GError **error)
{
	g_autofree char *deps_path = healer_json_path(where, "d");
	json_object *deps = NULL;
	gboolean has_f, has_n, has_v, found;
	guint64 size = 0, checked = 0, passed = 0, v = 0;

	if (!healer_json_value_object(obj, where, error) ||
	    !healer_json_get_uint(obj, "s", where, G_MAXUINT32, &size, error) ||
	    !parse_store(obj, where, &module->store, error) ||
	    !healer_json_get_uint(obj, "vc", where, G_MAXUINT16, &checked, error) ||
	    !healer_json_get_uint(obj, "vv", where, G_MAXUINT16, &passed, error))
		return FALSE;
	module->max_size = (guint32)size;
	module->validity_checked = (guint16)checked;
	module->validity_passed = (guint16)passed;
	/* "u": the module's SHA-256; Device OS prints it in capitals. */
	if (!healer_json_get_optional_hex(obj, "u", where, 32, HEALER_JSON_HEX_ANY_CASE, module->sha256, &found, error))
		return FALSE;
	module->has_hash = found;

	/* "f", "n" and "v" describe the module in the slot; an empty slot has none of them. */
	has_f = json_object_object_get_ex(obj, "f", NULL);
	has_n = json_object_object_get_ex(obj, "n", NULL);
	has_v = json_object_object_get_ex(obj, "v", NULL);
	if (has_f || has_n || has_v) {
		if (!parse_function(obj, where, &module->function, error) ||
		    !parse_index(obj, where, &module->index, error) ||
		    !healer_json_get_uint(obj, "v", where, G_MAXUINT16, &v, error))
			return FALSE;
		module->version = (guint16)v;
		module->has_info = TRUE;
	}

	if (!healer_json_get_optional_array(obj, "d", where, G_MAXSIZE, &deps, &found, error))
		return FALSE;
	for (gsize i = 0; found && i < json_object_array_length(deps); i++) {
		g_autofree char *dep_path = healer_json_path_index(deps_path, i);
		HealerDescribeDependency dep = {0};

		if (!parse_dependency(json_object_array_get_idx(deps, i), dep_path, &dep, error))
			return FALSE;
		g_array_append_val(module->dependencies, dep);
	}
	return TRUE;
}

HealerDescribe *
healer_describe_new(guint16 platform_id)
{
	HealerDescribe *describe = g_new0(HealerDescribe, 1);

	describe->platform_id = platform_id;
	describe->modules = g_array_new(FALSE, TRUE, sizeof(HealerDescribeModule));
	g_array_set_clear_func(describe->modules, module_clear);
	return describe;
}

static HealerDescribe *
parse_describe(const char *data, gsize len, GError **error)
{
	g_autoptr(json_tokener) tok = json_tokener_new();
	g_autoptr(json_object) root = NULL;
	g_autoptr(HealerDescribe) describe = healer_describe_new(0);
	json_object *modules = NULL;
	guint64 v = 0;
	gsize end;

	if (len > G_MAXINT) {
		healer_json_fail(error, "top level: %" G_GSIZE_FORMAT " bytes is too large", len);
		return NULL;
	}
	/* Not healer_json_parse(): a describe is checked more strictly (UTF-8) and may end in white space. */
	json_tokener_set_flags(tok,
	                       JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, data, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* Trailing white space (a newline after the object) is fine; anything else is not. */
	while (root != NULL && end < len && g_ascii_isspace(data[end]))
		end++;
	if (root == NULL || end < len) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		healer_json_fail(error, "not valid JSON at byte %" G_GSIZE_FORMAT ": %s",
		                 json_tokener_get_parse_end(tok),
		                 root != NULL || jerr == json_tokener_success ? "trailing data"
		                 : jerr == json_tokener_continue              ? "unexpected end of input"
		                                                              : json_tokener_error_desc(jerr));
		return NULL;
	}
	if (!healer_json_value_object(root, "top level", error) ||
	    !healer_json_get_uint(root, "p", "", G_MAXUINT16, &v, error) ||
	    !healer_json_get_array(root, "m", "", G_MAXSIZE, &modules, error))
		return NULL;
	describe->platform_id = (guint16)v;
	for (gsize i = 0; i < json_object_array_length(modules); i++) {
		g_autofree char *path = healer_json_path_index("m", i);
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

HealerDescribe *
healer_describe_parse(const char *data, gsize len, GError **error)
{
	HealerDescribe *describe = parse_describe(data, len, error);

	/* Every message names the document: "describe: m[0].s: missing (expected ...)". */
	if (describe == NULL)
		g_prefix_error(error, "describe: ");
	return describe;
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
