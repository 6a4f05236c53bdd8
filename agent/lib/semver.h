/*
 * Semantic versions (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]) as release names
 * use them, with semver 2.0.0 precedence.  Written by hand: GLib has no
 * semver type and the rules fit in a page.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean healer_semver_valid(const char *version);
/* <0, 0, >0 like strcmp, by semver precedence; both must be valid. */
int healer_semver_compare(const char *a, const char *b);
gboolean healer_semver_is_prerelease(const char *version);

G_END_DECLS
