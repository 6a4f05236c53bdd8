/*
 * http-fetcher.h in healerd: libcurl lives in healerd-http.so
 * (http-module.h), loaded on the first fetch, so a gateway that never
 * fetches never maps it.  This file keeps the options until then, hands
 * out the fetch ids, and forwards everything to the module's engine.
 *
 * The load happens on the main loop, on the first fetch: one dlopen() of a
 * local file and the libraries it needs, once per process.  When it fails
 * (a module missing from the install, or one from another build), every
 * fetch fails with that error, "URL: cannot load PATH: dlerror()", reaching
 * `done` from the main loop like any other error, and the next fetch tries
 * the load again: the upstream's retries report it as the catalog's or a
 * module's problem, and pick up a module installed later.
 */
#include "http-fetcher.h"

#include "healer-loadable.h"
#include "http-module.h"

/* A fetch that failed before reaching the engine: its error, on its way to `done`. */
typedef struct {
	HealerHttpFetcher *fetcher;
	guint id;
	GSource *source;
	HealerHttpDoneFunc done;
	gpointer user_data;
	GError *error;
} Failed;

struct _HealerHttpFetcher {
	HealerHttpOptions options;
	GMainContext *context;
	const HealerHttpFuncs *funcs; /* NULL until the module is loaded */
	HealerHttpEngine *engine;
	GHashTable *failed; /* id -> Failed*, waiting for their idle source */
	guint next_id;
};

static void
failed_free(gpointer data)
{
	Failed *f = data;

	if (f->source != NULL) {
		g_source_destroy(f->source);
		g_source_unref(f->source);
	}
	g_clear_error(&f->error);
	g_free(f);
}

static gboolean
on_failed(gpointer user_data)
{
	Failed *f = user_data;
	HealerHttpFetcher *fetcher = f->fetcher;

	/* Out of the table first: `done` may cancel, start fetches or free the fetcher. */
	g_hash_table_steal(fetcher->failed, GUINT_TO_POINTER(f->id));
	f->done(NULL, f->error, f->user_data);
	/* Our own source: returning G_SOURCE_REMOVE destroys it. */
	g_source_unref(g_steal_pointer(&f->source));
	failed_free(f);
	return G_SOURCE_REMOVE;
}

static guint
next_id(HealerHttpFetcher *fetcher)
{
	guint id;

	/* Ids are never reused while one is live: 2^32 fetches later, skip those still out. */
	do {
		id = fetcher->next_id++;
		if (fetcher->next_id == 0)
			fetcher->next_id = 1;
	} while (g_hash_table_contains(fetcher->failed, GUINT_TO_POINTER(id)));
	return id;
}

/* The engine, creating it (and loading the module) on the first call. */
static HealerHttpEngine *
get_engine(HealerHttpFetcher *fetcher, GError **error)
{
	if (fetcher->engine != NULL)
		return fetcher->engine;
	fetcher->funcs = healer_loadable_get(HEALER_HTTP_MODULE, HEALER_HTTP_GETTER, HEALER_HTTP_ABI_VERSION, error);
	if (fetcher->funcs == NULL)
		return NULL;
	/* The engine's sources go to the context the fetcher was made in, as its guarantees say. */
	g_main_context_push_thread_default(fetcher->context);
	fetcher->engine = fetcher->funcs->engine_new(&fetcher->options, error);
	g_main_context_pop_thread_default(fetcher->context);
	return fetcher->engine;
}

static guint
fail_fetch(HealerHttpFetcher *fetcher, guint id, const char *url, GError *cause, HealerHttpDoneFunc done,
           gpointer user_data)
{
	Failed *f = g_new0(Failed, 1);

	f->fetcher = fetcher;
	f->id = id;
	f->done = done;
	f->user_data = user_data;
	/* "URL: cause", as every fetch error reads */
	f->error = g_error_new(cause->domain, cause->code, "%s: %s", url, cause->message);
	f->source = g_idle_source_new();
	g_source_set_callback(f->source, on_failed, f, NULL);
	g_source_set_static_name(f->source, "healer-http-failed");
	g_source_attach(f->source, fetcher->context);
	g_hash_table_insert(fetcher->failed, GUINT_TO_POINTER(id), f);
	return id;
}

HealerHttpFetcher *
healer_http_fetcher_new(const HealerHttpOptions *options)
{
	HealerHttpFetcher *fetcher = g_new0(HealerHttpFetcher, 1);

	if (options != NULL) {
		fetcher->options = *options;
		fetcher->options.ca_file = g_strdup(options->ca_file);
		fetcher->options.proxy = g_strdup(options->proxy);
	}
	fetcher->context = g_main_context_ref_thread_default();
	fetcher->failed = g_hash_table_new_full(NULL, NULL, NULL, failed_free);
	fetcher->next_id = 1;
	return fetcher;
}

void
healer_http_fetcher_free(HealerHttpFetcher *fetcher)
{
	if (fetcher == NULL)
		return;
	/* Silent, as promised: failed fetches still waiting are dropped with their sources. */
	g_hash_table_unref(fetcher->failed);
	/* The engine defers its own free when called from one of its `done`s. */
	if (fetcher->engine != NULL)
		fetcher->funcs->engine_free(fetcher->engine);
	g_main_context_unref(fetcher->context);
	g_free(fetcher->options.ca_file);
	g_free(fetcher->options.proxy);
	g_free(fetcher);
}

guint
healer_http_fetch_to_memory(HealerHttpFetcher *fetcher, const char *url, const char *etag, const char *last_modified,
                            guint64 max_size, HealerHttpDoneFunc done, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	HealerHttpEngine *engine;
	guint id;

	g_return_val_if_fail(fetcher != NULL && url != NULL && done != NULL, 0);
	id = next_id(fetcher);
	engine = get_engine(fetcher, &error);
	if (engine == NULL)
		return fail_fetch(fetcher, id, url, error, done, user_data);
	fetcher->funcs->fetch_to_memory(engine, id, url, etag, last_modified, max_size, done, user_data);
	return id;
}

guint
healer_http_fetch_to_file(HealerHttpFetcher *fetcher, const char *url, const char *partial_path, guint64 expected_size,
                          HealerHttpDoneFunc done, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	HealerHttpEngine *engine;
	guint id;

	g_return_val_if_fail(fetcher != NULL && url != NULL && partial_path != NULL && done != NULL, 0);
	id = next_id(fetcher);
	engine = get_engine(fetcher, &error);
	if (engine == NULL)
		return fail_fetch(fetcher, id, url, error, done, user_data);
	fetcher->funcs->fetch_to_file(engine, id, url, partial_path, expected_size, done, user_data);
	return id;
}

void
healer_http_fetcher_cancel(HealerHttpFetcher *fetcher, guint id)
{
	g_return_if_fail(fetcher != NULL);
	if (g_hash_table_remove(fetcher->failed, GUINT_TO_POINTER(id)))
		return;
	if (fetcher->engine != NULL)
		fetcher->funcs->cancel(fetcher->engine, id);
}

guint
healer_http_fetcher_get_n_running(HealerHttpFetcher *fetcher)
{
	g_return_val_if_fail(fetcher != NULL, 0);
	return fetcher->engine != NULL ? fetcher->funcs->get_n_running(fetcher->engine) : 0;
}

guint
healer_http_fetcher_get_max_running_seen(HealerHttpFetcher *fetcher)
{
	g_return_val_if_fail(fetcher != NULL, 0);
	return fetcher->engine != NULL ? fetcher->funcs->get_max_running_seen(fetcher->engine) : 0;
}
