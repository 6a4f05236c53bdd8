/*
 * The upstream repository (docs/upstream.md): a static HTTP(S) tree
 * [upstream] url with catalog.json, catalog.json.sig and the modules at the
 * catalog's paths.
 *
 * The catalog is fetched at start, every refresh-interval-seconds and on
 * demand, with a conditional GET (the ETag and Last-Modified of the last
 * accepted fetch are kept in <state-dir>/upstream.json), and offered to the
 * trust: nothing is used unless a trusted key signed it.
 *
 * Modules are fetched when a plan needs one the store lacks
 * (healer_upstream_want()): into <state-dir>/downloads/<sha256>.part,
 * resumed with Range after a cut, checked against the catalog's size and
 * SHA-256, then stored.  A failed fetch is retried after an exponential
 * backoff with jitter between retry-min-seconds and retry-max-seconds; the
 * problem is reported (healer_upstream_get_problem()) so a device waiting
 * on it says why.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "supply.h"

G_BEGIN_DECLS

typedef struct _HealerUpstream HealerUpstream;

/* Something a waiting device would report changed: a fetch failed, a retry began, a module arrived. */
typedef void (*HealerUpstreamChangedFunc)(HealerUpstream *upstream, gpointer user_data);

/* NULL when [upstream] url is not set. */
HealerUpstream *healer_upstream_new(const HealerConfig *config, HealerSupply *supply);
void healer_upstream_free(HealerUpstream *upstream);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerUpstream, healer_upstream_free)

void healer_upstream_set_changed_func(HealerUpstream *upstream, HealerUpstreamChangedFunc func, gpointer user_data);
const char *healer_upstream_get_url(HealerUpstream *upstream);

/* Fetches the catalog now, then every refresh interval. */
void healer_upstream_start(HealerUpstream *upstream);

typedef struct {
	guint status;     /* 200 (a new catalog was fetched and accepted or was the same), 304 (not modified) */
	gboolean changed; /* a catalog the trust did not hold before was accepted */
	guint64 serial;   /* the serial of the catalog held from upstream (0: none) */
	guint n_modules;  /* its modules */
} HealerUpstreamRefreshResult;

typedef void (*HealerUpstreamRefreshDone)(const HealerUpstreamRefreshResult *result, const GError *error,
                                          gpointer user_data);

/* Fetches the catalog now (callers during a fetch share its result). `done` may be NULL. */
void healer_upstream_refresh(HealerUpstream *upstream, HealerUpstreamRefreshDone done, gpointer user_data);

/*
 * Asks for the module with this whole-file SHA-256 (it must be listed in a
 * catalog the trust accepted).  Returns at once; the module enters the
 * store when it arrives (the store's changed function says so).  Asking
 * again while it is on its way, or waiting for a retry, changes nothing.
 */
void healer_upstream_want(HealerUpstream *upstream, const guint8 sha256[32]);

/* Why a wanted module is not here yet ("https://…: connection refused; next try in 37 s"), or NULL. */
const char *healer_upstream_get_problem(HealerUpstream *upstream, const guint8 sha256[32]);
/* The serial of the catalog accepted from upstream; 0: none yet. */
guint64 healer_upstream_get_serial(HealerUpstream *upstream);
/* Why the last catalog fetch failed ("…: connection refused; next try in 5 s"), or NULL. */
const char *healer_upstream_get_catalog_problem(HealerUpstream *upstream);
/* Whether the module is wanted and not yet stored. */
gboolean healer_upstream_is_wanted(HealerUpstream *upstream, const guint8 sha256[32]);

G_END_DECLS
