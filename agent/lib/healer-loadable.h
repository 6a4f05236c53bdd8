/*
 * Loadable modules: the parts of healerd that pull in large libraries it
 * needs only sometimes (libcurl for an [upstream] url, libarchive for tar
 * bundles) live in shared modules under HEALER_MODULE_INSTALL_DIR
 * (<libdir>/healerd), opened on first use, so a gateway that never fetches
 * or unpacks a bundle never maps those libraries (bench/README.md,
 * heal-resources).
 *
 * A module exports one function, GETTER, returning a table of function
 * pointers that starts with a guint ABI version; the version is the
 * table's layout, bumped on any change, so a module left over from another
 * build is refused rather than called.
 *
 * The environment variable HEALER_MODULE_DIR, when set and not empty,
 * replaces the install directory: the build-tree tests and benchmarks point
 * it at the build's agent/modules.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_MODULE_DIR_ENV "HEALER_MODULE_DIR"

/*
 * The function table of `file_name` (e.g. "healerd-http.so") in the module
 * directory, loading the module on the first call; later calls return the
 * same table.  A loaded module is never unloaded (the libraries it pulls in
 * keep global state and exit handlers).  Thread-safe.  The first call
 * blocks on dlopen() of a local file and its libraries.
 *
 * NULL on failure, with HEALER_ERROR_NOT_FOUND (the module is missing) or
 * HEALER_ERROR_FAILED (dlopen() failed otherwise, GETTER is missing, or the
 * ABI version differs), the message naming the file and the cause:
 * "cannot load /usr/lib/x86_64-linux-gnu/healerd/healerd-http.so: <dlerror()>".
 * A failed load is not remembered: the next call tries again, so a module
 * installed later is found without a restart.
 */
gconstpointer healer_loadable_get(const char *file_name, const char *getter, guint abi_version, GError **error);

/* The directory modules are loaded from (HEALER_MODULE_DIR or the install directory). */
const char *healer_loadable_dir(void);

G_END_DECLS
