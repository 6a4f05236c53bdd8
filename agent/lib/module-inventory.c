#include "module-inventory.h"

#include <string.h>

#include "healer-error.h"
#include "module-names.h"
#include "semver.h"

HealerInventoryEntry *
healer_inventory_entry_new(const char *path, guint16 platform_id, guint function, guint index, guint16 version,
                           gsize size)
{
	HealerInventoryEntry *entry = g_new0(HealerInventoryEntry, 1);

	entry->path = g_strdup(path);
	entry->platform_id = platform_id;
	entry->function = (guint8)function;
	entry->index = (guint8)index;
	entry->version = version;
	entry->size = size;
	entry->dependencies = g_array_new(FALSE, TRUE, sizeof(HealerModuleDependency));
	return entry;
}

void
healer_inventory_entry_add_dependency(HealerInventoryEntry *entry, guint function, guint index, guint16 version)
{
	HealerModuleDependency dep = {
	        .function = (guint8)function,
	        .index = (guint8)index,
	        .version = version,
	};

	g_array_append_val(entry->dependencies, dep);
}

void
healer_inventory_entry_free(HealerInventoryEntry *entry)
{
	if (entry == NULL)
		return;
	g_free(entry->path);
	g_free(entry->release);
	g_array_unref(entry->dependencies);
	g_free(entry);
}

/*
 * The release(s) shipping `version` of `function`: the name (or range) and
 * whether every one of them is a prerelease.  User parts number their own
 * versions, so they have no release.
 */
static void
name_release(HealerInventoryEntry *entry, const HealerReleaseTable *releases)
{
	guint matches = 0, prereleases = 0;

	if (releases == NULL || entry->function == MODULE_FUNCTION_USER_PART)
		return;
	for (guint i = 0; i < healer_release_table_get_n_releases(releases); i++) {
		const char *name = healer_release_table_get_name(releases, i);
		guint16 v;
		if (healer_release_table_lookup(releases, name, entry->function, &v) && v == entry->version) {
			matches++;
			if (healer_semver_is_prerelease(name))
				prereleases++;
		}
	}
	entry->release = healer_release_table_label(releases, entry->function, entry->version);
	entry->prerelease = matches > 0 && prereleases == matches;
}

HealerInventoryEntry *
healer_inventory_entry_new_from_file(const char *path, const HealerReleaseTable *releases, GError **error)
{
	g_autoptr(GMappedFile) mapped = NULL;
	g_autoptr(GError) local_error = NULL;

	mapped = g_mapped_file_new(path, FALSE, &local_error);
	if (mapped == NULL) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "%s", local_error->message);
		return NULL;
	}
	return healer_inventory_entry_new_from_data(path, (const guint8 *)g_mapped_file_get_contents(mapped),
	                                            g_mapped_file_get_length(mapped), releases, error);
}

HealerInventoryEntry *
healer_inventory_entry_new_from_data(const char *path, const guint8 *data, gsize len,
                                     const HealerReleaseTable *releases, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GPtrArray) modules = NULL;
	const HealerModule *m;
	HealerInventoryEntry *entry;

	modules = healer_module_parse(data, len, &local_error);
	if (modules == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: %s", path, local_error->message);
		return NULL;
	}
	if (modules->len > 1) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s: a COMBINED file of %u modules (plans send one module at a time)", path, modules->len);
		return NULL;
	}
	m = g_ptr_array_index(modules, 0);
	if (m->faults->len > 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: not a valid module: %s%s", path,
		            (const char *)g_ptr_array_index(m->faults, 0),
		            m->faults->len > 1 ? " (and more faults)" : "");
		return NULL;
	}
	if (m->flags & MODULE_FLAG_COMBINED) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s: a COMBINED module (plans send one module at a time)", path);
		return NULL;
	}

	entry = healer_inventory_entry_new(path, m->platform_id, m->function, m->index, m->version, len);
	for (guint i = 0; i < m->dependencies->len; i++)
		g_array_append_val(entry->dependencies, g_array_index(m->dependencies, HealerModuleDependency, i));
	healer_sha256(data, len, entry->sha256);
	memcpy(entry->module_sha256, m->sha256_stored, HEALER_SHA256_SIZE);
	name_release(entry, releases);
	return entry;
}

char *
healer_inventory_entry_to_string(const HealerInventoryEntry *entry)
{
	const char *function = healer_module_function_to_string(entry->function);
	g_autofree char *unknown = NULL;

	if (function == NULL)
		function = unknown = g_strdup_printf("function %u", entry->function);
	if (entry->release != NULL)
		return g_strdup_printf("%s %u v%u (%s%s)", function, entry->index, entry->version, entry->release,
		                       entry->prerelease ? ", prerelease" : "");
	return g_strdup_printf("%s %u v%u", function, entry->index, entry->version);
}

HealerModuleInventory *
healer_module_inventory_new(const char *source)
{
	HealerModuleInventory *inventory = g_new0(HealerModuleInventory, 1);

	inventory->source = g_strdup(source);
	inventory->entries = g_ptr_array_new_with_free_func((GDestroyNotify)healer_inventory_entry_free);
	inventory->warnings = g_ptr_array_new_with_free_func(g_free);
	return inventory;
}

void
healer_module_inventory_free(HealerModuleInventory *inventory)
{
	if (inventory == NULL)
		return;
	g_free(inventory->source);
	g_ptr_array_unref(inventory->entries);
	g_ptr_array_unref(inventory->warnings);
	g_free(inventory);
}

void
healer_module_inventory_add(HealerModuleInventory *inventory, HealerInventoryEntry *entry)
{
	g_ptr_array_add(inventory->entries, entry);
}

static void
add_file(HealerModuleInventory *inventory, const char *path, const HealerReleaseTable *releases)
{
	g_autoptr(GError) error = NULL;
	HealerInventoryEntry *entry = healer_inventory_entry_new_from_file(path, releases, &error);

	if (entry != NULL) {
		healer_module_inventory_add(inventory, entry);
		return;
	}
	/* INVALID_DATA messages already start with the path. */
	if (g_error_matches(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA))
		g_ptr_array_add(inventory->warnings, g_strdup(error->message));
	else
		g_ptr_array_add(inventory->warnings, g_strdup_printf("%s: %s", path, error->message));
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static gboolean
collect_files(const char *dir, GPtrArray *files, GPtrArray *warnings, GError **error)
{
	g_autoptr(GDir) d = NULL;
	g_autoptr(GError) local_error = NULL;
	const char *name;

	d = g_dir_open(dir, 0, &local_error);
	if (d == NULL) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "%s", local_error->message);
		return FALSE;
	}
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		gboolean is_link = g_file_test(path, G_FILE_TEST_IS_SYMLINK);

		if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
			g_autoptr(GError) sub_error = NULL;
			if (is_link)
				continue;
			if (!collect_files(path, files, warnings, &sub_error))
				g_ptr_array_add(warnings, g_strdup_printf("%s: %s", path, sub_error->message));
		} else if (g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
			if (!healer_module_file_name_is_metadata(name))
				g_ptr_array_add(files, g_steal_pointer(&path));
		}
	}
	return TRUE;
}

gboolean
healer_module_file_name_is_metadata(const char *name)
{
	return g_str_has_suffix(name, ".json") || g_str_has_suffix(name, ".json.sig");
}

HealerModuleInventory *
healer_module_inventory_load_dir(const char *dir, const HealerReleaseTable *releases, GError **error)
{
	g_autoptr(HealerModuleInventory) inventory = healer_module_inventory_new(dir);
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) local_error = NULL;

	if (!collect_files(dir, files, inventory->warnings, &local_error)) {
		g_set_error_literal(error, HEALER_ERROR, local_error->code, local_error->message);
		return NULL;
	}
	g_ptr_array_sort(files, compare_strings);
	g_ptr_array_sort(inventory->warnings, compare_strings);
	for (guint i = 0; i < files->len; i++)
		add_file(inventory, g_ptr_array_index(files, i), releases);
	return g_steal_pointer(&inventory);
}

HealerModuleInventory *
healer_module_inventory_load_files(const char *const *files, const HealerReleaseTable *releases)
{
	HealerModuleInventory *inventory = healer_module_inventory_new("the given files");

	for (guint i = 0; files != NULL && files[i] != NULL; i++)
		add_file(inventory, files[i], releases);
	return inventory;
}
