/*
 * `healerctl import DIR` for a user other than root (docs/dbus-api.md, "What healerd reads for a
 * caller"): healerd takes a directory descriptor from root only, since it would open the files
 * under it with its own rights.  So healerctl reads the directory with the user's rights and
 * hands healerd only what the user could read:
 *
 *   - a directory bundle (it holds catalog.json) is packed, as it is, into a tar archive in memory
 *     (a memfd) and imported as one archive: still all or nothing;
 *   - a plain directory is imported file by file, each file as a descriptor healerctl opened.
 */
#pragma once

#include <glib.h>

#include "client.h"

G_BEGIN_DECLS

/*
 * Imports the directory open as `dir_fd` (borrowed), `path` naming it.  Adds to `added` and to
 * `rejected` ("FILE: reason", also for files healerctl itself could not open).  FALSE with an
 * error when healerd refused the whole import (a bundle's fault) or could not be reached.
 */
gboolean healerctl_import_directory(HealerctlClient *client, int dir_fd, const char *path, guint *added,
                                    GPtrArray *rejected, GError **error);

G_END_DECLS
