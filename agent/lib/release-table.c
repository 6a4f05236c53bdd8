#include "release-table.h"

#include "json-autoptr.h"

#include "healer-error.h"
#include "healer/module-format.h"
#include "module-names.h"
#include "semver.h"

#define RELEASE_TABLE_FORMAT         "healer-release-table"
#define RELEASE_TABLE_FORMAT_VERSION 1

typedef struct {
	char *name;
	gboolean has[MODULE_FUNCTION_MAX + 1];
	guint16 version[MODULE_FUNCTION_MAX + 1];
} Release;

struct _HealerReleaseTable {
	GArray *releases; /* Release, sorted by semver precedence */
};

static void
release_clear(gpointer data)
{
	Release *release = data;

	g_free(release->name);
}

void
healer_release_table_free(HealerReleaseTable *table)
{
	if (table == NULL)
		return;
	g_array_unref(table->releases);
	g_free(table);
}

static gint
release_compare(gconstpointer a, gconstpointer b)
{
	return healer_semver_compare(((const Release *)a)->name, ((const Release *)b)->name);
}

G_GNUC_PRINTF(2, 3)
static gboolean
fail(GError **error, const char *format, ...)
{
	va_list args;
	g_autofree char *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, message);
	return FALSE;
}

static gboolean
parse_release(json_object *obj, guint i, Release *release, GError **error)
{
	json_object *name = NULL, *modules = NULL;

	if (!json_object_is_type(obj, json_type_object))
		return fail(error, "releases[%u]: expected an object", i);
	if (!json_object_object_get_ex(obj, "name", &name) || !json_object_is_type(name, json_type_string))
		return fail(error, "releases[%u].name: missing or not a string", i);
	if (!healer_semver_valid(json_object_get_string(name)))
		return fail(error, "releases[%u].name: \"%s\" is not a semantic version", i,
		            json_object_get_string(name));
	release->name = g_strdup(json_object_get_string(name));
	if (!json_object_object_get_ex(obj, "modules", &modules) || !json_object_is_type(modules, json_type_object))
		return fail(error, "releases[%u] (%s).modules: missing or not an object", i, release->name);
	json_object_object_foreach (modules, key, val) {
		int function = healer_module_function_from_string(key);
		int64_t v;
		if (function <= MODULE_FUNCTION_NONE || strlen(key) < 2)
			return fail(error, "releases[%u] (%s).modules: unknown module function \"%s\"", i,
			            release->name, key);
		if (!json_object_is_type(val, json_type_int))
			return fail(error, "releases[%u] (%s).modules.%s: expected an integer", i, release->name, key);
		v = json_object_get_int64(val);
		if (v < 0 || v > G_MAXUINT16)
			return fail(error, "releases[%u] (%s).modules.%s: %" G_GINT64_FORMAT " is outside 0..65535", i,
			            release->name, key, (gint64)v);
		release->has[function] = TRUE;
		release->version[function] = (guint16)v;
	}
	json_object_object_foreach (obj, okey, oval) {
		(void)oval;
		if (g_strcmp0(okey, "name") != 0 && g_strcmp0(okey, "modules") != 0)
			return fail(error, "releases[%u] (%s): unknown key \"%s\"", i, release->name, okey);
	}
	return TRUE;
}

/*
 * Devices compare module versions with >=, so the table is only usable if
 * semver order and module-version order agree: a later release never ships
 * a lower version, and two releases never share a system version.
 */
static gboolean
check_monotonic(const HealerReleaseTable *table, GError **error)
{
	for (guint f = 1; f <= MODULE_FUNCTION_MAX; f++) {
		const Release *prev = NULL;
		for (guint i = 0; i < table->releases->len; i++) {
			const Release *r = &g_array_index(table->releases, Release, i);
			if (!r->has[f])
				continue;
			if (prev != NULL && healer_semver_compare(prev->name, r->name) == 0)
				return fail(error, "release %s is listed twice", r->name);
			if (prev != NULL && (r->version[f] < prev->version[f] ||
			                     (f != MODULE_FUNCTION_BOOTLOADER && r->version[f] == prev->version[f])))
				return fail(
				        error,
				        "%s version %u of release %s does not rise above %u of the earlier release %s",
				        healer_module_function_to_string(f), r->version[f], r->name, prev->version[f],
				        prev->name);
			prev = r;
		}
	}
	return TRUE;
}

HealerReleaseTable *
healer_release_table_new_from_data(const char *data, gsize len, GError **error)
{
	g_autoptr(json_tokener) tok = json_tokener_new();
	json_object *root;
	json_object *format = NULL, *format_version = NULL, *releases = NULL;
	g_autoptr(HealerReleaseTable) table = g_new0(HealerReleaseTable, 1);
	gboolean ok = FALSE;

	table->releases = g_array_new(FALSE, TRUE, sizeof(Release));
	g_array_set_clear_func(table->releases, release_clear);
	if (len > G_MAXINT) {
		fail(error, "release table is too large");
		return NULL;
	}
	root = json_tokener_parse_ex(tok, data, (int)len);
	if (root == NULL || json_tokener_get_parse_end(tok) < len) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		fail(error, "not valid JSON at byte %" G_GSIZE_FORMAT ": %s", json_tokener_get_parse_end(tok),
		     jerr == json_tokener_success ? "trailing data" : json_tokener_error_desc(jerr));
		json_object_put(root);
		return NULL;
	}
	if (!json_object_is_type(root, json_type_object)) {
		fail(error, "top level: expected an object");
	} else if (!json_object_object_get_ex(root, "format", &format) ||
	           g_strcmp0(json_object_get_string(format), RELEASE_TABLE_FORMAT) != 0) {
		fail(error, "format: expected \"%s\"", RELEASE_TABLE_FORMAT);
	} else if (!json_object_object_get_ex(root, "format_version", &format_version) ||
	           !json_object_is_type(format_version, json_type_int) ||
	           json_object_get_int64(format_version) != RELEASE_TABLE_FORMAT_VERSION) {
		fail(error, "format_version: expected %d", RELEASE_TABLE_FORMAT_VERSION);
	} else if (!json_object_object_get_ex(root, "releases", &releases) ||
	           !json_object_is_type(releases, json_type_array)) {
		fail(error, "releases: missing or not an array");
	} else {
		ok = TRUE;
		for (size_t i = 0; ok && i < json_object_array_length(releases); i++) {
			Release release = {0};
			ok = parse_release(json_object_array_get_idx(releases, i), (guint)i, &release, error);
			g_array_append_val(table->releases, release);
		}
	}
	json_object_put(root);
	if (!ok)
		return NULL;
	g_array_sort(table->releases, release_compare);
	if (!check_monotonic(table, error))
		return NULL;
	return g_steal_pointer(&table);
}

HealerReleaseTable *
healer_release_table_new_from_file(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) local_error = NULL;
	HealerReleaseTable *table;

	if (!g_file_get_contents(path, &data, &len, &local_error)) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "%s", local_error->message);
		return NULL;
	}
	table = healer_release_table_new_from_data(data, len, error);
	if (table == NULL)
		g_prefix_error(error, "%s: ", path);
	return table;
}

guint
healer_release_table_get_n_releases(const HealerReleaseTable *table)
{
	return table->releases->len;
}

const char *
healer_release_table_get_name(const HealerReleaseTable *table, guint i)
{
	g_return_val_if_fail(i < table->releases->len, NULL);
	return g_array_index(table->releases, Release, i).name;
}

gboolean
healer_release_table_lookup(const HealerReleaseTable *table, const char *name, guint function, guint16 *version)
{
	if (function > MODULE_FUNCTION_MAX)
		return FALSE;
	for (guint i = 0; i < table->releases->len; i++) {
		const Release *r = &g_array_index(table->releases, Release, i);
		if (g_strcmp0(r->name, name) == 0 && r->has[function]) {
			*version = r->version[function];
			return TRUE;
		}
	}
	return FALSE;
}

char *
healer_release_table_describe(const HealerReleaseTable *table, guint function, guint16 version)
{
	const char *first = NULL, *last = NULL;

	if (table == NULL || function > MODULE_FUNCTION_MAX)
		return NULL;
	for (guint i = 0; i < table->releases->len; i++) {
		const Release *r = &g_array_index(table->releases, Release, i);
		if (r->has[function] && r->version[function] == version) {
			if (first == NULL)
				first = r->name;
			last = r->name;
		}
	}
	if (first == NULL)
		return NULL;
	if (first == last)
		return g_strdup(first);
	return g_strdup_printf("%s..%s", first, last);
}
