/*
 * Between http-fetcher.c (in healerd) and healerd-http.so
 * (agent/modules/http-curl.c), the module that holds every libcurl call:
 * healerd loads it with healer_loadable_get() on its first fetch, so a
 * gateway without an [upstream] url never maps libcurl and the ~25
 * libraries it needs.
 *
 * The engine is the fetcher of http-fetcher.h minus the ids, which the
 * caller picks: they stay unique across a failed load and a later
 * successful one.  Its guarantees are http-fetcher.h's.
 */
#pragma once

#include "http-fetcher.h"

G_BEGIN_DECLS

#define HEALER_HTTP_MODULE      "healerd-http.so"
#define HEALER_HTTP_GETTER      "healer_http_module_get_funcs"
#define HEALER_HTTP_ABI_VERSION 2 /* 2: HealerHttpOptions gained transfer_timeout_s and allow_http */

typedef struct _HealerHttpEngine HealerHttpEngine;

typedef struct {
	guint abi_version; /* HEALER_HTTP_ABI_VERSION; first, as healer-loadable.h requires */

	/* `options` is copied, with its defaults filled in. */
	HealerHttpEngine *(*engine_new)(const HealerHttpOptions *options, GError **error);
	/* healer_http_fetcher_free(); may be called from a `done` */
	void (*engine_free)(HealerHttpEngine *engine);
	/* healer_http_fetch_to_memory() and _to_file() with the caller's `id` (not 0, not in use) */
	void (*fetch_to_memory)(HealerHttpEngine *engine, guint id, const char *url, const char *etag,
	                        const char *last_modified, guint64 max_size, HealerHttpDoneFunc done,
	                        gpointer user_data);
	void (*fetch_to_file)(HealerHttpEngine *engine, guint id, const char *url, const char *partial_path,
	                      guint64 expected_size, HealerHttpDoneFunc done, gpointer user_data);
	void (*cancel)(HealerHttpEngine *engine, guint id);
	guint (*get_n_running)(HealerHttpEngine *engine);
	guint (*get_max_running_seen)(HealerHttpEngine *engine);
} HealerHttpFuncs;

G_END_DECLS
