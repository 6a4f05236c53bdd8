#include "upstream.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-c/json.h>

#include "backoff.h"
#include "healer-error.h"
#include "healer-file.h"
#include "http-fetcher.h"
#include "events.h"
#include "json-autoptr.h"
#include "module-checksums.h"

#define MAX_CATALOG_BYTES   (16 * 1024 * 1024)
#define MAX_SIGNATURE_BYTES 1024
#define MAX_MODULE_BYTES    (64 * 1024 * 1024)

typedef struct {
	HealerUpstream *upstream;
	char *sha;      /* hex */
	guint fetch_id; /* a transfer is under way */
	guint retry_source;
	guint attempt; /* failures so far */
	char *problem; /* the last failure and when the next try is, or NULL */
} Want;

typedef struct {
	HealerUpstreamRefreshDone done;
	gpointer user_data;
} RefreshWaiter;

struct _HealerUpstream {
	const HealerConfig *config;
	HealerSupply *supply;
	char *url;
	char *state_path;    /* <state-dir>/upstream.json: url, etag, last_modified of the last accepted catalog */
	char *downloads_dir; /* <state-dir>/downloads */
	HealerHttpFetcher *fetcher;
	HealerUpstreamChangedFunc changed_func;
	gpointer changed_data;

	/* The catalog */
	char *etag, *last_modified;
	guint catalog_fetch;  /* fetch id of catalog.json or catalog.json.sig, 0: none */
	GBytes *catalog_json; /* between the catalog and its signature */
	char *catalog_etag, *catalog_last_modified;
	GArray *waiters; /* RefreshWaiter */
	guint refresh_source;
	guint catalog_attempt;
	char *catalog_problem; /* the last catalog fetch's failure and the next try, or NULL */
	guint64 serial;        /* of the catalog accepted from here, 0: none */
	char *key_id;          /* its key */
	guint n_modules;

	GHashTable *wants; /* sha hex -> Want* */
};

static void refresh_now(HealerUpstream *u);
static void start_want(Want *want);

static void
emit_changed(HealerUpstream *u)
{
	if (u->changed_func != NULL)
		u->changed_func(u, u->changed_data);
}

static guint
retry_delay_s(HealerUpstream *u, guint attempt)
{
	guint64 ms = healer_backoff_delay_ms(attempt, (guint64)u->config->upstream_retry_min_s * 1000,
	                                     (guint64)u->config->upstream_retry_max_s * 1000, g_random_int());

	return (guint)MAX(1, (ms + 999) / 1000);
}

/* ---- state --------------------------------------------------------------- */

static void
load_state(HealerUpstream *u)
{
	g_autoptr(json_object) root = json_object_from_file(u->state_path);
	json_object *val;

	if (root == NULL || !json_object_is_type(root, json_type_object))
		return;
	/* Validators belong to the URL they came from. */
	if (!json_object_object_get_ex(root, "url", &val) || g_strcmp0(json_object_get_string(val), u->url) != 0)
		return;
	if (json_object_object_get_ex(root, "etag", &val) && json_object_is_type(val, json_type_string))
		u->etag = g_strdup(json_object_get_string(val));
	if (json_object_object_get_ex(root, "last_modified", &val) && json_object_is_type(val, json_type_string))
		u->last_modified = g_strdup(json_object_get_string(val));
	/* The validators only help while the trust still holds that catalog. */
	if (json_object_object_get_ex(root, "key_id", &val) && json_object_is_type(val, json_type_string)) {
		g_autoptr(GPtrArray) held = healer_trust_list_catalogs(healer_supply_get_trust(u->supply));
		guint64 serial =
		        json_object_object_get_ex(root, "serial", &val) ? (guint64)json_object_get_int64(val) : 0;
		const char *key_id = json_object_get_string(json_object_object_get(root, "key_id"));

		for (guint i = 0; i < held->len; i++) {
			const HealerTrustedCatalog *tc = g_ptr_array_index(held, i);
			if (strcmp(tc->key_id, key_id) == 0 && tc->catalog->serial == serial) {
				u->serial = serial;
				u->key_id = g_strdup(key_id);
				u->n_modules = tc->catalog->modules->len;
			}
		}
	}
}

static void
save_state(HealerUpstream *u)
{
	g_autoptr(json_object) root = json_object_new_object();
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) error = NULL;
	const char *text;

	json_object_object_add(root, "url", json_object_new_string(u->url));
	json_object_object_add(root, "etag", u->etag ? json_object_new_string(u->etag) : NULL);
	json_object_object_add(root, "last_modified",
	                       u->last_modified ? json_object_new_string(u->last_modified) : NULL);
	json_object_object_add(root, "key_id", u->key_id ? json_object_new_string(u->key_id) : NULL);
	json_object_object_add(root, "serial", json_object_new_int64((gint64)u->serial));
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	bytes = g_bytes_new(text, strlen(text));
	if (!healer_file_write_atomic(u->state_path, bytes, &error))
		g_warning("cannot save %s: %s", u->state_path, error->message);
}

/* base + "/" + each segment of `path` percent-encoded. */
static char *
url_for(HealerUpstream *u, const char *path)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);
	g_autoptr(GString) out = g_string_new(u->url);

	for (guint i = 0; parts[i] != NULL; i++) {
		g_autofree char *escaped = g_uri_escape_string(parts[i], NULL, FALSE);
		g_string_append_c(out, '/');
		g_string_append(out, escaped);
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* ---- the catalog ----------------------------------------------------------- */

static gboolean
on_refresh_timer(gpointer user_data)
{
	HealerUpstream *u = user_data;

	u->refresh_source = 0;
	refresh_now(u);
	return G_SOURCE_REMOVE;
}

static void
schedule_refresh(HealerUpstream *u, guint seconds)
{
	if (u->refresh_source != 0)
		g_source_remove(u->refresh_source);
	u->refresh_source = seconds > 0 ? g_timeout_add_seconds(seconds, on_refresh_timer, u) : 0;
}

static void
refresh_finished(HealerUpstream *u, const HealerUpstreamRefreshResult *result, const GError *error)
{
	g_autoptr(GArray) waiters = u->waiters;

	u->waiters = g_array_new(FALSE, TRUE, sizeof(RefreshWaiter));
	u->catalog_fetch = 0;
	g_clear_pointer(&u->catalog_json, g_bytes_unref);
	g_clear_pointer(&u->catalog_etag, g_free);
	g_clear_pointer(&u->catalog_last_modified, g_free);
	g_clear_pointer(&u->catalog_problem, g_free);
	if (error != NULL) {
		guint delay = retry_delay_s(u, ++u->catalog_attempt);
		healer_emit(HEALER_EVENT_UPSTREAM_FAILED, NULL, NULL, u->url, -1, G_LOG_LEVEL_WARNING,
		            "upstream catalog: %s; next try in %u s", error->message, delay);
		u->catalog_problem = g_strdup_printf("%s; next try in %u s", error->message, delay);
		schedule_refresh(u, delay);
	} else {
		u->catalog_attempt = 0;
		schedule_refresh(u, u->config->upstream_refresh_s);
	}
	emit_changed(u);
	for (guint i = 0; i < waiters->len; i++) {
		RefreshWaiter *w = &g_array_index(waiters, RefreshWaiter, i);
		w->done(result, error, w->user_data);
	}
}

static void
on_signature(const HealerHttpResult *res, const GError *error, gpointer user_data)
{
	HealerUpstream *u = user_data;
	g_autofree char *source = g_strdup_printf("%s/catalog.json", u->url);
	g_autoptr(GError) offer_error = NULL;
	HealerUpstreamRefreshResult result = {.status = 200};
	const HealerTrustedCatalog *tc;
	guint64 serial_before = 0;

	if (error != NULL) {
		/* No signature is an unsigned catalog: the trust decides (refused unless allow-unsigned). */
		if (!g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND)) {
			refresh_finished(u, NULL, error);
			return;
		}
	}
	serial_before = u->serial;
	tc = healer_supply_offer_catalog(u->supply, u->catalog_json, error == NULL ? res->body : NULL, source,
	                                 &offer_error);
	if (tc == NULL) {
		/* Validators are not kept, so the next refresh fetches it whole again. */
		healer_emit(HEALER_EVENT_CATALOG_REJECTED, NULL, NULL, source, -1, G_LOG_LEVEL_WARNING,
		            "%s: catalog not accepted: %s", source, offer_error->message);
		refresh_finished(u, NULL, offer_error);
		return;
	}
	u->serial = tc->catalog->serial;
	u->n_modules = tc->catalog->modules->len;
	g_free(u->key_id);
	u->key_id = g_strdup(tc->key_id);
	g_free(u->etag);
	u->etag = g_strdup(u->catalog_etag);
	g_free(u->last_modified);
	u->last_modified = g_strdup(u->catalog_last_modified);
	save_state(u);
	result.changed = serial_before != tc->catalog->serial;
	result.serial = u->serial;
	result.n_modules = u->n_modules;
	refresh_finished(u, &result, NULL);
}

static void
on_catalog(const HealerHttpResult *res, const GError *error, gpointer user_data)
{
	HealerUpstream *u = user_data;
	g_autofree char *sig_url = NULL;

	if (error != NULL) {
		refresh_finished(u, NULL, error);
		return;
	}
	if (res->status == 304) {
		HealerUpstreamRefreshResult result = {.status = 304, .serial = u->serial, .n_modules = u->n_modules};
		g_debug("upstream catalog not modified");
		refresh_finished(u, &result, NULL);
		return;
	}
	u->catalog_json = g_bytes_ref(res->body);
	u->catalog_etag = g_strdup(res->etag);
	u->catalog_last_modified = g_strdup(res->last_modified);
	sig_url = url_for(u, "catalog.json.sig");
	u->catalog_fetch =
	        healer_http_fetch_to_memory(u->fetcher, sig_url, NULL, NULL, MAX_SIGNATURE_BYTES, on_signature, u);
}

static void
refresh_now(HealerUpstream *u)
{
	g_autofree char *url = NULL;

	if (u->catalog_fetch != 0)
		return;
	url = url_for(u, "catalog.json");
	/* Without a catalog from this upstream held, ask for it whole. */
	u->catalog_fetch =
	        healer_http_fetch_to_memory(u->fetcher, url, u->serial > 0 ? u->etag : NULL,
	                                    u->serial > 0 ? u->last_modified : NULL, MAX_CATALOG_BYTES, on_catalog, u);
}

void
healer_upstream_refresh(HealerUpstream *u, HealerUpstreamRefreshDone done, gpointer user_data)
{
	if (done != NULL) {
		RefreshWaiter w = {done, user_data};
		g_array_append_val(u->waiters, w);
	}
	refresh_now(u);
}

/* ---- modules --------------------------------------------------------------- */

static void
want_free(Want *want)
{
	if (want->fetch_id != 0)
		healer_http_fetcher_cancel(want->upstream->fetcher, want->fetch_id);
	if (want->retry_source != 0)
		g_source_remove(want->retry_source);
	g_free(want->sha);
	g_free(want->problem);
	g_free(want);
}

static char *
partial_path(HealerUpstream *u, const char *sha)
{
	g_autofree char *name = g_strconcat(sha, ".part", NULL);

	return g_build_filename(u->downloads_dir, name, NULL);
}

static gboolean
on_want_retry(gpointer user_data)
{
	Want *want = user_data;

	want->retry_source = 0;
	start_want(want);
	return G_SOURCE_REMOVE;
}

static void
want_failed(Want *want, const char *url, const char *why)
{
	HealerUpstream *u = want->upstream;
	guint delay = retry_delay_s(u, ++want->attempt);

	g_free(want->problem);
	want->problem = g_strdup_printf("%s; next try in %u s", why, delay);
	healer_emit(HEALER_EVENT_UPSTREAM_FAILED, NULL, NULL, url, -1, G_LOG_LEVEL_WARNING,
	            "fetching module %s: %s (attempt %u); next try in %u s", want->sha, why, want->attempt, delay);
	want->retry_source = g_timeout_add_seconds(delay, on_want_retry, want);
	emit_changed(u);
}

/* Size and SHA-256 of the downloaded file against the catalog. */
static gboolean
check_download(const char *path, const HealerCatalogModule *module, char **why)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	guint8 digest[HEALER_SHA256_SIZE];
	g_autoptr(GError) error = NULL;

	if (!g_file_get_contents(path, &data, &len, &error)) {
		*why = g_strdup(error->message);
		return FALSE;
	}
	if (len != module->size) {
		*why = g_strdup_printf("downloaded %" G_GSIZE_FORMAT " bytes, the catalog says %" G_GUINT64_FORMAT, len,
		                       module->size);
		return FALSE;
	}
	healer_sha256((const guint8 *)data, len, digest);
	if (memcmp(digest, module->sha256, HEALER_SHA256_SIZE) != 0) {
		g_autofree char *got = healer_sha256_to_hex(digest);
		*why = g_strdup_printf("SHA-256 mismatch: got %s", got);
		return FALSE;
	}
	return TRUE;
}

static void
on_module_fetched(const HealerHttpResult *res, const GError *error, gpointer user_data)
{
	Want *want = user_data;
	HealerUpstream *u = want->upstream;
	g_autofree char *path = partial_path(u, want->sha);
	guint8 sha[HEALER_SHA256_SIZE];
	const HealerCatalogModule *module = NULL;
	g_autofree char *url = NULL, *why = NULL, *source = NULL;
	g_autoptr(GPtrArray) paths = g_ptr_array_new();
	g_autoptr(GError) store_error = NULL;

	want->fetch_id = 0;
	if (healer_sha256_from_hex(want->sha, sha))
		module = healer_trust_find_module(healer_supply_get_trust(u->supply), sha, NULL);
	url = module != NULL ? url_for(u, module->path) : g_strdup(u->url);
	if (module == NULL) {
		want_failed(want, url, "no longer listed in a trusted catalog");
		return;
	}
	if (error != NULL) {
		/* What arrived stays: the next try resumes it with Range. */
		want_failed(want, url, error->message);
		return;
	}
	if (!check_download(path, module, &why)) {
		/* A bad file is not resumed: start over. */
		g_unlink(path);
		want_failed(want, url, why);
		return;
	}
	source = g_strdup_printf("upstream %s", url);
	g_ptr_array_add(paths, path);
	if (!healer_store_import_all(healer_supply_get_store(u->supply), paths, source, NULL, &store_error)) {
		want_failed(want, url, store_error->message);
		return;
	}
	g_unlink(path);
	healer_emit(HEALER_EVENT_MODULE_FETCHED, NULL, NULL, url, -1, G_LOG_LEVEL_INFO,
	            "fetched %s (%" G_GUINT64_FORMAT " bytes%s) and stored it", url, module->size,
	            res->resumed_from > 0 ? ", resumed" : "");
	/* Removing it frees `want`; the store's changed function has told the engine already. */
	g_hash_table_remove(u->wants, want->sha);
	emit_changed(u);
}

static void
start_want(Want *want)
{
	HealerUpstream *u = want->upstream;
	guint8 sha[HEALER_SHA256_SIZE];
	const HealerCatalogModule *module = NULL;
	g_autofree char *url = NULL, *path = NULL;

	if (healer_sha256_from_hex(want->sha, sha))
		module = healer_trust_find_module(healer_supply_get_trust(u->supply), sha, NULL);
	if (module == NULL) {
		want_failed(want, u->url, "not listed in any trusted catalog");
		return;
	}
	url = url_for(u, module->path);
	path = partial_path(u, want->sha);
	want->fetch_id = healer_http_fetch_to_file(u->fetcher, url, path, module->size, on_module_fetched, want);
}

void
healer_upstream_want(HealerUpstream *u, const guint8 sha256[32])
{
	g_autofree char *sha = healer_sha256_to_hex(sha256);
	Want *want;

	if (g_hash_table_contains(u->wants, sha) || healer_store_lookup(healer_supply_get_store(u->supply), sha))
		return;
	want = g_new0(Want, 1);
	want->upstream = u;
	want->sha = g_steal_pointer(&sha);
	g_hash_table_insert(u->wants, want->sha, want);
	start_want(want);
}

guint64
healer_upstream_get_serial(HealerUpstream *u)
{
	return u->serial;
}

const char *
healer_upstream_get_catalog_problem(HealerUpstream *u)
{
	return u->catalog_problem;
}

const char *
healer_upstream_get_problem(HealerUpstream *u, const guint8 sha256[32])
{
	g_autofree char *sha = healer_sha256_to_hex(sha256);
	Want *want = g_hash_table_lookup(u->wants, sha);

	return want != NULL ? want->problem : NULL;
}

gboolean
healer_upstream_is_wanted(HealerUpstream *u, const guint8 sha256[32])
{
	g_autofree char *sha = healer_sha256_to_hex(sha256);

	return g_hash_table_contains(u->wants, sha);
}

/* ---- life ----------------------------------------------------------------- */

HealerUpstream *
healer_upstream_new(const HealerConfig *config, HealerSupply *supply)
{
	HealerUpstream *u;
	HealerHttpOptions options = {
	        .ca_file = config->upstream_ca_file,
	        .proxy = config->upstream_proxy,
	        .max_parallel = config->upstream_max_parallel,
	        .max_bytes_per_second = config->upstream_max_bytes_per_s,
	        .transfer_timeout_s = config->upstream_transfer_timeout_s,
	        .allow_http = config->upstream_allow_insecure_http,
	};

	if (config->upstream_url == NULL)
		return NULL;
	u = g_new0(HealerUpstream, 1);
	u->config = config;
	u->supply = supply;
	u->url = g_strdup(config->upstream_url);
	u->state_path = g_build_filename(config->state_dir, "upstream.json", NULL);
	u->downloads_dir = g_build_filename(config->state_dir, "downloads", NULL);
	if (g_mkdir_with_parents(u->downloads_dir, 0750) != 0)
		g_warning("cannot create %s: %s", u->downloads_dir, g_strerror(errno));
	u->fetcher = healer_http_fetcher_new(&options);
	u->waiters = g_array_new(FALSE, TRUE, sizeof(RefreshWaiter));
	u->wants = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)want_free);
	load_state(u);
	return u;
}

void
healer_upstream_free(HealerUpstream *u)
{
	if (u == NULL)
		return;
	if (u->refresh_source != 0)
		g_source_remove(u->refresh_source);
	g_hash_table_unref(u->wants);
	/* Silent: no callback runs after this. */
	healer_http_fetcher_free(u->fetcher);
	g_array_unref(u->waiters);
	g_clear_pointer(&u->catalog_json, g_bytes_unref);
	g_free(u->catalog_etag);
	g_free(u->catalog_last_modified);
	g_free(u->etag);
	g_free(u->last_modified);
	g_free(u->key_id);
	g_free(u->catalog_problem);
	g_free(u->url);
	g_free(u->state_path);
	g_free(u->downloads_dir);
	g_free(u);
}

void
healer_upstream_set_changed_func(HealerUpstream *u, HealerUpstreamChangedFunc func, gpointer user_data)
{
	u->changed_func = func;
	u->changed_data = user_data;
}

const char *
healer_upstream_get_url(HealerUpstream *u)
{
	return u->url;
}

void
healer_upstream_start(HealerUpstream *u)
{
	/* Loud, as allow-unsigned is: a gateway in the field must not run like this unnoticed. */
	if (u->config->upstream_allow_insecure_http)
		healer_emit(HEALER_EVENT_INSECURE_UPSTREAM, NULL, NULL, u->url, -1, G_LOG_LEVEL_WARNING,
		            "allow-insecure-http is ON: %s may be fetched over plain http (and redirects "
		            "to http:// followed), so anyone on the network path can withhold new catalogs "
		            "or replay old ones; never on a gateway in the field",
		            u->url);
	g_info("upstream %s: fetching the catalog", u->url);
	refresh_now(u);
}
