/* nftw() */
#define _XOPEN_SOURCE 700

#include "supply.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "bundle.h"
#include "caller-file.h"
#include "import-walk.h"
#include "healer-error.h"
#include "events.h"
#include "upstream.h"

struct _HealerSupply {
	const HealerConfig *config;
	HealerStore *store;
	HealerTrust *trust;
	char *staging_parent; /* <state-dir>/staging: bundles are unpacked and verified here */
	HealerSupplyChangedFunc changed_func;
	gpointer changed_data;
	GPtrArray *monitors; /* GFileMonitor* of the module directories */
	guint settle_source;
	HealerUpstream *upstream;    /* may be NULL: no [upstream] url */
	HealerPlanningSet *planning; /* NULL when it must be rebuilt */
};

static void
emit_changed(HealerSupply *supply)
{
	if (supply->changed_func != NULL)
		supply->changed_func(supply, supply->changed_data);
}

/* The store's admission check: listed in a trusted catalog, or the development switch (loudly). */
static gboolean
admit(const char *sha_hex, guint64 size, const char *path, char **reason, gpointer user_data)
{
	HealerSupply *supply = user_data;
	gboolean only_unsigned = FALSE;

	if (!healer_trust_admits(supply->trust, sha_hex, size, &only_unsigned, reason))
		return FALSE;
	if (only_unsigned)
		healer_emit(HEALER_EVENT_UNSIGNED_ALLOWED, NULL, NULL, path, -1, G_LOG_LEVEL_WARNING,
		            "%s (%s) is not listed in any trusted catalog; stored anyway because "
		            "allow-unsigned is on",
		            path, sha_hex);
	return TRUE;
}

/* A module's release as the trusted catalog that lists it says. */
static char *
release_of(const char *sha_hex, gpointer user_data)
{
	HealerSupply *supply = user_data;
	guint8 sha[HEALER_SHA256_SIZE];
	const HealerCatalogModule *module = NULL;

	if (healer_sha256_from_hex(sha_hex, sha))
		module = healer_trust_find_module(supply->trust, sha, NULL);
	return module != NULL ? g_strdup(module->release) : NULL;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

HealerSupply *
healer_supply_new(const HealerConfig *config, HealerStore *store, HealerTrust *trust)
{
	HealerSupply *supply = g_new0(HealerSupply, 1);

	supply->config = config;
	supply->store = store;
	supply->trust = trust;
	supply->staging_parent = g_build_filename(config->state_dir, "staging", NULL);
	/* What a crash left half unpacked is never used: start empty. */
	nftw(supply->staging_parent, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (g_mkdir_with_parents(supply->staging_parent, 0700) != 0)
		g_warning("cannot create %s: %s; bundles cannot be imported", supply->staging_parent,
		          g_strerror(errno));
	if (trust != NULL) {
		healer_store_set_admit_func(store, admit, supply);
		healer_store_set_release_func(store, release_of, supply);
	}
	return supply;
}

void
healer_supply_free(HealerSupply *supply)
{
	if (supply == NULL)
		return;
	if (supply->settle_source != 0)
		g_source_remove(supply->settle_source);
	if (supply->monitors != NULL) {
		for (guint i = 0; i < supply->monitors->len; i++)
			g_signal_handlers_disconnect_by_data(g_ptr_array_index(supply->monitors, i), supply);
		g_ptr_array_unref(supply->monitors);
	}
	if (supply->trust != NULL) {
		healer_store_set_admit_func(supply->store, NULL, NULL);
		healer_store_set_release_func(supply->store, NULL, NULL);
	}
	healer_supply_drop_planning_set(supply);
	g_free(supply->staging_parent);
	g_free(supply);
}

void
healer_supply_set_changed_func(HealerSupply *supply, HealerSupplyChangedFunc func, gpointer user_data)
{
	supply->changed_func = func;
	supply->changed_data = user_data;
}

HealerTrust *
healer_supply_get_trust(HealerSupply *supply)
{
	return supply->trust;
}

HealerStore *
healer_supply_get_store(HealerSupply *supply)
{
	return supply->store;
}

const HealerTrustedCatalog *
healer_supply_offer_catalog(HealerSupply *supply, GBytes *json, GBytes *sig, const char *source, GError **error)
{
	gboolean changed = FALSE;
	const HealerTrustedCatalog *tc = healer_trust_offer(supply->trust, json, sig, source, &changed, error);

	if (tc != NULL && changed) {
		/* Files refused before may be listed now. */
		healer_store_forget_rejections(supply->store);
		emit_changed(supply);
	}
	return tc;
}

/* ---- module directories --------------------------------------------------- */

static GBytes *
read_small(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, error))
		return NULL;
	return g_bytes_new_take(g_steal_pointer(&data), len);
}

/* A module directory's own catalog.json (+ .sig), if it has one. */
static void
offer_directory_catalog(HealerSupply *supply, const char *dir)
{
	g_autofree char *json_path = g_build_filename(dir, HEALER_BUNDLE_CATALOG, NULL);
	g_autofree char *sig_path = g_build_filename(dir, HEALER_BUNDLE_SIGNATURE, NULL);
	g_autoptr(GBytes) json = NULL, sig = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_file_test(json_path, G_FILE_TEST_EXISTS))
		return;
	json = read_small(json_path, &error);
	if (json != NULL && g_file_test(sig_path, G_FILE_TEST_EXISTS))
		sig = read_small(sig_path, &error);
	if (error == NULL && healer_supply_offer_catalog(supply, json, sig, dir, &error) != NULL)
		return;
	healer_emit(HEALER_EVENT_CATALOG_REJECTED, NULL, NULL, json_path, -1, G_LOG_LEVEL_WARNING,
	            "%s: catalog not accepted: %s", json_path, error->message);
}

static void
import_module_dirs(HealerSupply *supply)
{
	const HealerConfig *config = supply->config;

	for (guint i = 0; config->module_dirs != NULL && config->module_dirs[i] != NULL; i++) {
		g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GError) error = NULL;
		guint added;

		offer_directory_catalog(supply, config->module_dirs[i]);
		added = healer_store_import_directory(supply->store, config->module_dirs[i], warnings, &error);
		for (guint w = 0; w < warnings->len; w++)
			healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, NULL, -1, G_LOG_LEVEL_DEBUG,
			            "module directory %s: skipped %s", config->module_dirs[i],
			            (const char *)g_ptr_array_index(warnings, w));
		if (error != NULL)
			g_warning("module directory %s: %s", config->module_dirs[i], error->message);
		else
			healer_emit_count(HEALER_EVENT_MODULES_IMPORTED, NULL, added,
			                  "module directory %s: %u new module(s), %u skipped; the store holds %u",
			                  config->module_dirs[i], added, warnings->len,
			                  healer_store_get_n_entries(supply->store));
	}
}

static gboolean
on_module_dirs_settled(gpointer user_data)
{
	HealerSupply *supply = user_data;

	supply->settle_source = 0;
	import_module_dirs(supply);
	return G_SOURCE_REMOVE;
}

static void
on_module_dir_changed(GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event, gpointer user_data)
{
	HealerSupply *supply = user_data;

	(void)monitor;
	(void)file;
	(void)other;
	(void)event;
	/* A copy is many events: import once they settle. */
	if (supply->settle_source != 0)
		g_source_remove(supply->settle_source);
	supply->settle_source = g_timeout_add(500, on_module_dirs_settled, supply);
}

void
healer_supply_start(HealerSupply *supply)
{
	const HealerConfig *config = supply->config;

	import_module_dirs(supply);
	supply->monitors = g_ptr_array_new_with_free_func(g_object_unref);
	for (guint i = 0; config->module_dirs != NULL && config->module_dirs[i] != NULL; i++) {
		g_autoptr(GFile) dir = g_file_new_for_path(config->module_dirs[i]);
		g_autoptr(GError) error = NULL;
		GFileMonitor *monitor = g_file_monitor_directory(dir, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);

		if (monitor == NULL) {
			g_warning("not watching module directory %s: %s", config->module_dirs[i], error->message);
			continue;
		}
		g_signal_connect(monitor, "changed", G_CALLBACK(on_module_dir_changed), supply);
		g_ptr_array_add(supply->monitors, monitor);
	}
}

/* ---- imports ----------------------------------------------------------------- */

static gboolean
name_is_archive(const char *name)
{
	/* The usual names, so that a damaged bundle.tar gets the archive reader's message, not "not a module". */
	return g_str_has_suffix(name, ".tar") || g_str_has_suffix(name, ".tar.gz") || g_str_has_suffix(name, ".tgz") ||
	       g_str_has_suffix(name, ".tar.xz") || g_str_has_suffix(name, ".txz");
}

gboolean
healer_supply_is_bundle(const char *path)
{
	if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_autofree char *catalog = g_build_filename(path, HEALER_BUNDLE_CATALOG, NULL);
		return g_file_test(catalog, G_FILE_TEST_EXISTS);
	}
	/* By content first (docs/bundles.md: whatever its name, so a .tar.zst or a bundle saved as .bin is one). */
	return healer_bundle_file_is_archive(path) || name_is_archive(path);
}

typedef struct {
	HealerSupply *supply;
	int fd;          /* what is imported, read through itself only; closed when done */
	char *name;      /* what to call it in messages and records: the caller's path, escaped */
	GPtrArray *keys; /* EVP_PKEY*, referenced: the worker must not see the trust change under it */
	gboolean allow_unsigned;
	char *staging_parent;
	HealerSupplyImportDone done;
	gpointer user_data;
} ImportJob;

static void
import_job_free(ImportJob *job)
{
	if (job->fd >= 0)
		close(job->fd);
	g_free(job->name);
	if (job->keys != NULL)
		g_ptr_array_unref(job->keys);
	g_free(job->staging_parent);
	g_free(job);
}

/*
 * A walk parses thousands of files in a worker, whose malloc arena keeps the pages it freed (the
 * files' bytes themselves are in mappings of their own, caller-file.c): hand them back, so an
 * import leaves healerd's RSS where it was (issue 13).
 */
static void
give_back_memory(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void
finish(ImportJob *job, const HealerSupplyImportResult *result, const GError *error)
{
	job->done(result, error, job->user_data);
	import_job_free(job);
}

static void
open_bundle_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
	ImportJob *job = data;
	GError *error = NULL;
	HealerBundle *bundle;

	(void)source;
	(void)cancellable;
	bundle = healer_bundle_open_fd(job->fd, job->name, job->keys, job->allow_unsigned, job->staging_parent, &error);
	if (bundle == NULL)
		g_task_return_error(task, error);
	else
		g_task_return_pointer(task, bundle, (GDestroyNotify)healer_bundle_free);
}

/* Back on the main loop: the serial rule, then the catalog and the modules, all or nothing. */
static void
on_bundle_opened(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ImportJob *job = user_data;
	HealerSupply *supply = job->supply;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerBundle) bundle = g_task_propagate_pointer(G_TASK(res), &error);
	g_autoptr(GPtrArray) paths = g_ptr_array_new();
	g_autoptr(GPtrArray) rejected = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *label = NULL;
	HealerSupplyImportResult result = {.rejected = rejected};
	g_autoptr(GError) check_error = NULL;

	(void)source;
	if (bundle == NULL) {
		healer_emit(HEALER_EVENT_CATALOG_REJECTED, NULL, NULL, job->name, -1, G_LOG_LEVEL_WARNING,
		            "bundle rejected, nothing imported: %s", error->message);
		finish(job, NULL, error);
		return;
	}
	/* The trust may have moved on while the worker ran: check again before anything changes. */
	if (!healer_trust_check(supply->trust, bundle->catalog_json, bundle->catalog_sig, NULL, NULL, &check_error)) {
		g_autoptr(GError) e = g_error_new(HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: %s: %s", job->name,
		                                  HEALER_BUNDLE_CATALOG, check_error->message);
		healer_emit(HEALER_EVENT_CATALOG_REJECTED, NULL, NULL, job->name, -1, G_LOG_LEVEL_WARNING,
		            "bundle rejected, nothing imported: %s", e->message);
		finish(job, NULL, e);
		return;
	}
	if (healer_supply_offer_catalog(supply, bundle->catalog_json, bundle->catalog_sig, job->name, &error) == NULL) {
		finish(job, NULL, error);
		return;
	}
	for (guint i = 0; i < bundle->modules->len; i++) {
		HealerBundleModule *m = g_ptr_array_index(bundle->modules, i);
		g_ptr_array_add(paths, m->staged_path);
	}
	label = g_strdup_printf("bundle %s", job->name);
	if (!healer_store_import_all(supply->store, paths, label, &result.added, &error)) {
		finish(job, NULL, error);
		return;
	}
	result.catalog =
	        g_strdup_printf("serial %" G_GUINT64_FORMAT " (key %s)", bundle->catalog->serial, bundle->key_id);
	healer_emit_count(HEALER_EVENT_MODULES_IMPORTED, NULL, result.added,
	                  "bundle %s: catalog %s, %u module(s), %u new", job->name, result.catalog,
	                  bundle->modules->len, result.added);
	finish(job, &result, NULL);
	g_free(result.catalog);
}

/* One module file, read in a worker. */
static void
on_file_read(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ImportJob *job = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = healer_fd_read_all_finish(res, &error);
	g_autoptr(GPtrArray) rejected = g_ptr_array_new_with_free_func(g_free);
	HealerSupplyImportResult result = {.rejected = rejected};

	(void)source;
	if (bytes != NULL && healer_store_import_bytes(job->supply->store, job->name, bytes, NULL, &error))
		result.added = 1;
	/* Not a module, or one too large to be one: reported as rejected, as for directories. */
	if (g_error_matches(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA)) {
		g_ptr_array_add(rejected, g_strdup(error->message));
		g_clear_error(&error);
	}
	finish(job, error == NULL ? &result : NULL, error);
}

/* A plain directory, walked in a worker; its modules stored here; one summary record. */
static void
on_walked(GObject *source, GAsyncResult *res, gpointer user_data)
{
	ImportJob *job = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerImportWalk) walk = healer_import_walk_finish(res, &error);
	g_autoptr(GPtrArray) rejected = g_ptr_array_new_with_free_func(g_free);
	HealerSupplyImportResult result = {.rejected = rejected};
	guint refused = 0, skipped;

	(void)source;
	result.added = healer_store_import_many(job->supply->store, walk->names, walk->contents, rejected, &error);
	refused = rejected->len; /* valid modules no trusted catalog lists */
	skipped = healer_import_walk_skipped(walk);
	for (guint i = 0; i < walk->rejected->len && rejected->len < HEALER_WALK_MAX_REPORTED; i++)
		g_ptr_array_add(rejected, g_strdup(g_ptr_array_index(walk->rejected, i)));
	if (rejected->len > HEALER_WALK_MAX_REPORTED)
		g_ptr_array_set_size(rejected, HEALER_WALK_MAX_REPORTED);
	if (skipped + refused > rejected->len)
		g_ptr_array_add(rejected,
		                g_strdup_printf("%s: %u more files skipped, not listed here (healerd's journal "
		                                "has the counts)",
		                                job->name, skipped + refused - rejected->len));
	/* One record for the whole directory, however many files it held. */
	healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, job->name, -1,
	            skipped + refused > 0 || walk->stopped != NULL ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_INFO,
	            "import of %s: scanned %u files, imported %u, skipped %u: %u not modules, %u not listed "
	            "in a trusted catalog, %u not regular files, %u unreadable, %u too large, %u "
	            "directories too deep%s%s",
	            job->name, walk->scanned, result.added, skipped + refused, walk->not_modules, refused,
	            walk->not_regular, walk->unreadable, walk->too_large, walk->too_deep,
	            walk->stopped != NULL ? "; stopped early: " : "", walk->stopped != NULL ? walk->stopped : "");
	finish(job, error == NULL ? &result : NULL, error);
	g_clear_pointer(&walk, healer_import_walk_free);
	g_clear_pointer(&rejected, g_ptr_array_unref);
	give_back_memory();
}

static void
start_bundle(ImportJob *job)
{
	g_autoptr(GTask) task = g_task_new(NULL, NULL, on_bundle_opened, job);
	GPtrArray *keys = healer_trust_get_keys(job->supply->trust);

	job->keys = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	for (guint i = 0; i < keys->len; i++) {
		EVP_PKEY_up_ref(g_ptr_array_index(keys, i));
		g_ptr_array_add(job->keys, g_ptr_array_index(keys, i));
	}
	job->allow_unsigned = healer_trust_get_allow_unsigned(job->supply->trust);
	job->staging_parent = g_strdup(job->supply->staging_parent);
	g_task_set_task_data(task, job, NULL);
	g_task_run_in_thread(task, open_bundle_thread);
}

void
healer_supply_import_fd_async(HealerSupply *supply, int fd, const char *name, HealerSupplyImportDone done,
                              gpointer user_data)
{
	ImportJob *job = g_new0(ImportJob, 1);
	struct stat st;

	job->supply = supply;
	job->fd = fd;
	job->name = g_strdup(name);
	job->done = done;
	job->user_data = user_data;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (fstatat(fd, HEALER_BUNDLE_CATALOG, &st, AT_SYMLINK_NOFOLLOW) == 0)
			start_bundle(job);
		else
			healer_import_walk_async(job->fd, job->name, on_walked, job);
		return;
	}
	/* By content first, as healer_supply_is_bundle(); read through the descriptor, never reopened. */
	if (healer_bundle_fd_is_archive(job->fd) || name_is_archive(name))
		start_bundle(job);
	else
		healer_fd_read_all_async(job->fd, job->name, HEALER_STORE_MAX_MODULE_SIZE, on_file_read, job);
}

typedef struct {
	GError *error;
	HealerSupplyImportDone done;
	gpointer user_data;
} FailedImport;

static gboolean
report_failure(gpointer data)
{
	FailedImport *f = data;

	f->done(NULL, f->error, f->user_data);
	g_error_free(f->error);
	g_free(f);
	return G_SOURCE_REMOVE;
}

void
healer_supply_import_async(HealerSupply *supply, const char *path, HealerSupplyImportDone done, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *name = healer_caller_name(path);
	int fd = healer_caller_open_path(path, TRUE, NULL, &error);

	if (fd < 0) {
		FailedImport *f = g_new0(FailedImport, 1);
		f->error = g_steal_pointer(&error);
		f->done = done;
		f->user_data = user_data;
		g_idle_add(report_failure, f); /* `done` always after this returns */
		return;
	}
	healer_supply_import_fd_async(supply, fd, name, done, user_data);
}

/* ---- what the engine plans from, fetches and flashes ------------------- */

void
healer_supply_set_upstream(HealerSupply *supply, HealerUpstream *upstream)
{
	supply->upstream = upstream;
	healer_supply_drop_planning_set(supply);
}

HealerUpstream *
healer_supply_get_upstream(HealerSupply *supply)
{
	return supply->upstream;
}

void
healer_supply_drop_planning_set(HealerSupply *supply)
{
	g_clear_pointer(&supply->planning, healer_planning_set_unref);
}

HealerPlanningSet *
healer_supply_get_planning_set(HealerSupply *supply)
{
	if (supply->planning == NULL)
		supply->planning = healer_planning_set_new(
		        supply->store, supply->trust,
		        supply->upstream != NULL ? healer_upstream_get_url(supply->upstream) : NULL);
	return supply->planning;
}

const char *
healer_supply_step_state_to_string(HealerSupplyStepState state)
{
	static const char *const names[] = {"ready", "fetching", "blocked"};

	return state < G_N_ELEMENTS(names) ? names[state] : "unknown";
}

static void
supply_step_clear(gpointer data)
{
	g_free(((HealerSupplyStep *)data)->reason);
}

GArray *
healer_supply_make_local(HealerSupply *supply, const HealerPlan *plan)
{
	GArray *steps = g_array_sized_new(FALSE, TRUE, sizeof(HealerSupplyStep), plan->steps->len);

	g_array_set_clear_func(steps, supply_step_clear);
	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		g_autofree char *sha = healer_sha256_to_hex(step->entry->sha256);
		HealerSupplyStep answer = {.state = HEALER_SUPPLY_STEP_READY};
		const char *problem;

		if (healer_store_lookup(supply->store, sha) != NULL) {
			/* ready */
		} else if (supply->upstream == NULL) {
			answer.state = HEALER_SUPPLY_STEP_BLOCKED;
			answer.reason = g_strdup("not in the store, and no upstream is configured");
		} else {
			healer_upstream_want(supply->upstream, step->entry->sha256);
			problem = healer_upstream_get_problem(supply->upstream, step->entry->sha256);
			answer.state = problem != NULL ? HEALER_SUPPLY_STEP_BLOCKED : HEALER_SUPPLY_STEP_FETCHING;
			answer.reason = g_strdup(problem);
		}
		g_array_append_val(steps, answer);
	}
	return steps;
}

GBytes *
healer_supply_acquire_module(HealerSupply *supply, const char *sha_hex, GError **error)
{
	return healer_store_acquire_module(supply->store, sha_hex, error);
}

void
healer_supply_release_module(HealerSupply *supply, const char *sha_hex)
{
	healer_store_release_module(supply->store, sha_hex);
}

gboolean
healer_supply_import_app(HealerSupply *supply, const char *name, GBytes *bytes, char **sha_out, GError **error)
{
	if (!healer_store_import_bytes(supply->store, name, bytes, sha_out, error))
		return FALSE;
	healer_supply_drop_planning_set(supply);
	return TRUE;
}

const char *
healer_supply_get_upstream_problem(HealerSupply *supply)
{
	return supply->upstream != NULL ? healer_upstream_get_catalog_problem(supply->upstream) : NULL;
}

json_object *
healer_supply_sources_to_json(HealerSupply *supply)
{
	json_object *root = json_object_new_object();
	json_object *list = json_object_new_array();
	HealerTrust *trust = supply->trust;

	json_object_object_add(root, "trusted_keys",
	                       json_object_new_int(trust != NULL ? (int)healer_trust_get_keys(trust)->len : 0));
	json_object_object_add(root, "allow_unsigned",
	                       json_object_new_boolean(trust != NULL && healer_trust_get_allow_unsigned(trust)));
	if (trust != NULL) {
		g_autoptr(GPtrArray) held = healer_trust_list_catalogs(trust);
		for (guint i = 0; i < held->len; i++) {
			const HealerTrustedCatalog *tc = g_ptr_array_index(held, i);
			json_object *o = json_object_new_object();
			json_object_object_add(o, "key_id", json_object_new_string(tc->key_id));
			json_object_object_add(o, "serial", json_object_new_uint64(tc->catalog->serial));
			json_object_object_add(o, "created", json_object_new_string(tc->catalog->created));
			json_object_object_add(o, "modules", json_object_new_int((int)tc->catalog->modules->len));
			json_object_object_add(o, "source", json_object_new_string(tc->source));
			json_object_array_add(list, o);
		}
	}
	json_object_object_add(root, "catalogs", list);
	if (supply->upstream != NULL) {
		json_object *u = json_object_new_object();
		const char *problem = healer_upstream_get_catalog_problem(supply->upstream);
		json_object_object_add(u, "url", json_object_new_string(healer_upstream_get_url(supply->upstream)));
		json_object_object_add(u, "serial",
		                       json_object_new_uint64(healer_upstream_get_serial(supply->upstream)));
		json_object_object_add(u, "problem", problem != NULL ? json_object_new_string(problem) : NULL);
		json_object_object_add(root, "upstream", u);
	} else {
		json_object_object_add(root, "upstream", NULL);
	}
	return root;
}
