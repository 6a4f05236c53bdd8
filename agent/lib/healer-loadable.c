/*
 * healer-loadable.h: GModule over dlopen(), one table per module file.
 */
#include "healer-loadable.h"

#include <errno.h>
#include <gmodule.h>
#include <unistd.h>

#include "healer-error.h"

#ifndef HEALER_MODULE_INSTALL_DIR
#error "meson.build defines HEALER_MODULE_INSTALL_DIR"
#endif

static GMutex lock;
static GHashTable *loaded; /* file name -> table (gconstpointer); guarded by `lock` */

const char *
healer_loadable_dir(void)
{
	const char *dir = g_getenv(HEALER_MODULE_DIR_ENV);

	return dir != NULL && dir[0] != '\0' ? dir : HEALER_MODULE_INSTALL_DIR;
}

static gconstpointer
load(const char *file_name, const char *getter, guint abi_version, GError **error)
{
	g_autofree char *path = g_build_filename(healer_loadable_dir(), file_name, NULL);
	gconstpointer (*get_table)(void) = NULL;
	const guint *table;
	GModule *module;

	/*
	 * Checked first so that a missing file (a partial install) says so plainly;
	 * dlopen()'s own message follows in any case.
	 */
	if (access(path, R_OK) != 0) {
		int saved = errno;
		g_set_error(error, HEALER_ERROR, saved == ENOENT ? HEALER_ERROR_NOT_FOUND : HEALER_ERROR_FAILED,
		            "cannot load %s: %s", path, g_strerror(saved));
		return NULL;
	}
	/*
	 * BIND_LOCAL: the module's libraries stay out of the global namespace, so
	 * nothing loaded later binds to them by accident.  No BIND_LAZY: an
	 * unresolved symbol fails here, as an error, not later as a crash.
	 */
	module = g_module_open(path, G_MODULE_BIND_LOCAL);
	if (module == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "cannot load %s: %s", path, g_module_error());
		return NULL;
	}
	if (!g_module_symbol(module, getter, (gpointer *)&get_table) || get_table == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED, "cannot load %s: %s", path, g_module_error());
		g_module_close(module);
		return NULL;
	}
	table = get_table();
	if (table == NULL || *table != abi_version) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_FAILED,
		            "cannot load %s: it has interface version %u, this program needs %u (a module from "
		            "another build?)",
		            path, table != NULL ? *table : 0, abi_version);
		g_module_close(module);
		return NULL;
	}
	/* libcurl and OpenSSL register exit handlers and keep global state: unloading is never safe. */
	g_module_make_resident(module);
	g_debug("loaded %s", path);
	return table;
}

gconstpointer
healer_loadable_get(const char *file_name, const char *getter, guint abi_version, GError **error)
{
	gconstpointer table;

	g_return_val_if_fail(file_name != NULL && getter != NULL, NULL);
	g_mutex_lock(&lock);
	if (loaded == NULL)
		loaded = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	table = g_hash_table_lookup(loaded, file_name);
	if (table == NULL) {
		table = load(file_name, getter, abi_version, error);
		if (table != NULL)
			g_hash_table_insert(loaded, g_strdup(file_name), (gpointer)table);
	}
	g_mutex_unlock(&lock);
	return table;
}
