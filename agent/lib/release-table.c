#include "release-table.h"

#include "json-autoptr.h"

#include "healer-error.h"
#include "healer-json.h"
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

static gboolean
parse_release(json_object *obj, guint i, Release *release, GError **error)
{
	static const char *const keys[] = {"name", "modules", NULL};
	g_autofree char *where = healer_json_path_index("releases", i);
	g_autofree char *named = NULL;
	json_object *modules = NULL;
	const char *name;

	if (!healer_json_value_object(obj, where, error) || !healer_json_get_string(obj, "name", where, &name, error))
		return FALSE;
	if (!healer_semver_valid(name))
		return healer_json_fail(error, "%s.name: \"%s\" is not a semantic version", where, name);
	release->name = g_strdup(name);
	/* From here on the release is named by its name too: "releases[3] (1.2.0).modules". */
	named = g_strdup_printf("%s (%s)", where, release->name);
	if (!healer_json_get_object(obj, "modules", named, &modules, error))
		return FALSE;
	json_object_object_foreach (modules, key, val) {
		g_autofree char *path = g_strdup_printf("%s.modules.%s", named, key);
		int function = healer_module_function_from_string(key);
		guint64 version = 0;

		if (function <= MODULE_FUNCTION_NONE || strlen(key) < 2)
			return healer_json_fail(error, "%s.modules: unknown module function \"%s\"", named, key);
		if (!healer_json_value_uint(val, path, G_MAXUINT16, &version, error))
			return FALSE;
		release->has[function] = TRUE;
		release->version[function] = (guint16)version;
	}
	return healer_json_check_keys(obj, named, keys, error);
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
				return healer_json_fail(error, "release %s is listed twice", r->name);
			if (prev != NULL && (r->version[f] < prev->version[f] ||
			                     (f != MODULE_FUNCTION_BOOTLOADER && r->version[f] == prev->version[f])))
				return healer_json_fail(
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
	g_autoptr(json_object) root = NULL;
	g_autoptr(HealerReleaseTable) table = g_new0(HealerReleaseTable, 1);
	json_object *releases = NULL;

	table->releases = g_array_new(FALSE, TRUE, sizeof(Release));
	g_array_set_clear_func(table->releases, release_clear);
	root = healer_json_parse((const guint8 *)data, len, "release table", error);
	if (root == NULL ||
	    !healer_json_check_format(root, RELEASE_TABLE_FORMAT, RELEASE_TABLE_FORMAT_VERSION, error) ||
	    !healer_json_get_array(root, "releases", "", G_MAXSIZE, &releases, error))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(releases); i++) {
		Release release = {0};
		gboolean ok = parse_release(json_object_array_get_idx(releases, i), (guint)i, &release, error);

		g_array_append_val(table->releases, release);
		if (!ok)
			return NULL;
	}
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
healer_release_table_label(const HealerReleaseTable *table, guint function, guint16 version)
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
