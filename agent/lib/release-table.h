/*
 * The release table: which module versions make up each named release.
 * Module versions are opaque, monotonic numbers; the mapping to release
 * names is data (real numbering follows no formula), shipped by the
 * firmware build and, later, inside catalogs.  See docs/module-format.md.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HealerReleaseTable HealerReleaseTable;

HealerReleaseTable *healer_release_table_new_from_data(const char *data, gsize len, GError **error);
HealerReleaseTable *healer_release_table_new_from_file(const char *path, GError **error);
void healer_release_table_free(HealerReleaseTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerReleaseTable, healer_release_table_free)

guint healer_release_table_get_n_releases(const HealerReleaseTable *table);
/* Releases in semver order. */
const char *healer_release_table_get_name(const HealerReleaseTable *table, guint i);

/* The version of `function` in release `name`; FALSE if the table has none. */
gboolean healer_release_table_lookup(const HealerReleaseTable *table, const char *name, guint function,
                                     guint16 *version);

/*
 * The release(s) that ship `version` of `function`: "2.3.1", or a range
 * "2.2.0..2.3.1" when several releases share it (bootloaders often do).
 * NULL when no release does.
 */
char *healer_release_table_label(const HealerReleaseTable *table, guint function, guint16 version);

G_END_DECLS
