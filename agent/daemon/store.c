#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-c/json.h>

#include "healer-error.h"
#include "healer-file.h"
#include "events.h"
#include "healer-json.h"
#include "json-autoptr.h"
#include "module-inventory.h"
#include "module-checksums.h"
#include "module-names.h"
#include "module-reader.h"
#include "store-layout.h"

#define MAX_MODULE_FILE_SIZE HEALER_STORE_MAX_MODULE_SIZE

/* What the store knows of a source file it has looked at, so a re-scan of an
 * unchanged file neither reads it again nor reports it again. */
typedef struct {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char *sha256; /* when it was a valid module */
	char *reason; /* when it was rejected */
} SeenFile;

struct _HealerStore {
	char *state_dir;
	char *dir;
	char *index_path;
	GPtrArray *entries; /* HealerStoreEntry*, owned, in import order */
	GHashTable *by_sha; /* sha256 -> HealerStoreEntry* (borrowed from entries) */
	GPtrArray *retired; /* entries taken out of the store; freed with it */
	GPtrArray *tables;  /* HealerReleaseTable* */
	GHashTable *seen;   /* source path -> SeenFile* */
	HealerStoreChangedFunc changed_func;
	gpointer changed_data;
	HealerStoreAdmitFunc admit_func;
	gpointer admit_data;
	HealerStoreReleaseFunc release_func;
	gpointer release_data;
	GHashTable *shared; /* sha256 -> SharedModule*: modules being flashed */
};

/* A module's verified bytes and how many holders flash them (healer_store_acquire_module()). */
typedef struct {
	GBytes *bytes;
	guint holders;
} SharedModule;

static void
shared_module_free(SharedModule *m)
{
	g_bytes_unref(m->bytes);
	g_free(m);
}

static void
entry_free(HealerStoreEntry *entry)
{
	g_free(entry->sha256);
	g_free(entry->path);
	g_free(entry->release);
	g_free(entry->source);
	g_free(entry);
}

static void
seen_file_free(SeenFile *seen)
{
	g_free(seen->sha256);
	g_free(seen->reason);
	g_free(seen);
}

void
healer_store_free(HealerStore *store)
{
	if (store == NULL)
		return;
	g_hash_table_unref(store->by_sha);
	g_ptr_array_unref(store->entries);
	g_ptr_array_unref(store->retired);
	g_ptr_array_unref(store->tables);
	g_hash_table_unref(store->seen);
	g_hash_table_unref(store->shared);
	g_free(store->state_dir);
	g_free(store->dir);
	g_free(store->index_path);
	g_free(store);
}

const char *
healer_store_get_directory(HealerStore *store)
{
	return store->dir;
}

void
healer_store_set_changed_func(HealerStore *store, HealerStoreChangedFunc func, gpointer user_data)
{
	store->changed_func = func;
	store->changed_data = user_data;
}

static void
emit_changed(HealerStore *store)
{
	if (store->changed_func != NULL)
		store->changed_func(store, store->changed_data);
}

static HealerError
errno_to_code(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return HEALER_ERROR_NOT_FOUND;
	case EACCES:
	case EPERM:
		return HEALER_ERROR_PERMISSION_DENIED;
	default:
		return HEALER_ERROR_IO;
	}
}

/*
 * Reads a whole file of at most `max` bytes.  On failure `reason` says why
 * in a few words ("No such file or directory", "larger than 64 MiB").
 */
static GBytes *
read_file(const char *path, gsize max, struct stat *st_out, HealerError *code, char **reason)
{
	int fd = g_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	struct stat st;
	g_autofree guint8 *data = NULL;
	gsize done = 0;

	if (fd < 0) {
		int err = errno;
		*code = errno_to_code(err);
		*reason = g_strdup(g_strerror(err));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		int err = errno;
		*code = errno_to_code(err);
		*reason = g_strdup(g_strerror(err));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*code = HEALER_ERROR_INVALID_DATA;
		*reason = g_strdup("not a regular file");
		close(fd);
		return NULL;
	}
	if ((guint64)st.st_size > max) {
		*code = HEALER_ERROR_INVALID_DATA;
		*reason = g_strdup_printf("%" G_GUINT64_FORMAT " bytes, larger than any module", (guint64)st.st_size);
		close(fd);
		return NULL;
	}
	data = g_malloc((gsize)st.st_size + 1);
	while (done < (gsize)st.st_size) {
		ssize_t n = read(fd, data + done, (gsize)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : 0;
			*code = HEALER_ERROR_IO;
			*reason = g_strdup(n < 0 ? g_strerror(err) : "file shrank while being read");
			close(fd);
			return NULL;
		}
		done += (gsize)n;
	}
	close(fd);
	if (st_out != NULL)
		*st_out = st;
	return g_bytes_new_take(g_steal_pointer(&data), done);
}

static char *
sha256_hex_of(GBytes *bytes)
{
	guint8 digest[HEALER_SHA256_SIZE];
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);

	healer_sha256(data != NULL ? data : (const guint8 *)"", len, digest);
	return healer_sha256_to_hex(digest);
}

/*
 * Checks that `bytes` hold exactly one valid module.  Returns it, or NULL
 * with `reason` set.
 */
static HealerModule *
check_module(GBytes *bytes, char **reason)
{
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) modules = healer_module_parse(data, len, &error);
	HealerModule *module;

	if (modules == NULL) {
		*reason = g_strdup_printf("not a module: %s", error->message);
		return NULL;
	}
	module = g_ptr_array_index(modules, 0);
	if (modules->len > 1 || (module->flags & MODULE_FLAG_COMBINED)) {
		*reason = g_strdup_printf("a COMBINED file of %u modules: store its modules as separate files",
		                          modules->len);
		return NULL;
	}
	if (!healer_module_is_valid(module)) {
		g_autoptr(GString) s = g_string_new("invalid module: ");
		for (guint i = 0; i < module->faults->len; i++)
			g_string_append_printf(s, "%s%s", i > 0 ? "; " : "",
			                       (const char *)g_ptr_array_index(module->faults, i));
		*reason = g_string_free(g_steal_pointer(&s), FALSE);
		return NULL;
	}
	return g_ptr_array_steal_index(modules, 0);
}

static char *
release_name(HealerStore *store, guint function, guint16 version)
{
	for (guint i = 0; i < store->tables->len; i++) {
		char *name = healer_release_table_label(g_ptr_array_index(store->tables, i), function, version);
		if (name != NULL)
			return name;
	}
	return NULL;
}

static HealerStoreEntry *
entry_new(HealerStore *store, const char *sha, guint64 size, const HealerModule *module, const char *source)
{
	HealerStoreEntry *entry = g_new0(HealerStoreEntry, 1);

	entry->sha256 = g_strdup(sha);
	entry->path = healer_store_layout_module_path(store->dir, sha);
	entry->size = size;
	entry->platform_id = module->platform_id;
	entry->function = module->function;
	entry->index = module->index;
	entry->version = module->version;
	entry->release = release_name(store, module->function, module->version);
	/* No release table knows it: the catalog that let it in may. */
	if (entry->release == NULL && store->release_func != NULL)
		entry->release = store->release_func(sha, store->release_data);
	entry->source = g_strdup(source);
	return entry;
}

static void
add_entry(HealerStore *store, HealerStoreEntry *entry)
{
	g_ptr_array_add(store->entries, entry);
	g_hash_table_insert(store->by_sha, entry->sha256, entry);
}

static json_object *
json_string_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static gboolean
write_index(HealerStore *store, GError **error)
{
	g_autoptr(json_object) array = json_object_new_array();
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(GError) local_error = NULL;
	const char *text;

	for (guint i = 0; i < store->entries->len; i++) {
		const HealerStoreEntry *entry = g_ptr_array_index(store->entries, i);
		const char *function = healer_module_function_to_string(entry->function);
		json_object *obj = json_object_new_object();

		json_object_object_add(obj, "sha256", json_object_new_string(entry->sha256));
		json_object_object_add(obj, "size", json_object_new_int64((gint64)entry->size));
		json_object_object_add(obj, "platform_id", json_object_new_int(entry->platform_id));
		json_object_object_add(obj, "function",
		                       function != NULL ? json_object_new_string(function)
		                                        : json_object_new_int(entry->function));
		json_object_object_add(obj, "index", json_object_new_int(entry->index));
		json_object_object_add(obj, "version", json_object_new_int(entry->version));
		json_object_object_add(obj, "release", json_string_or_null(entry->release));
		json_object_object_add(obj, "source", json_string_or_null(entry->source));
		json_object_array_add(array, obj);
	}
	text = json_object_to_json_string_ext(array, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	bytes = g_bytes_new_static(text, strlen(text));
	if (!healer_file_write_atomic(store->index_path, bytes, &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot write the store index %s: %s",
		            store->index_path, local_error->message);
		return FALSE;
	}
	return TRUE;
}

/* Renames a bad file to FILE.corrupt, for a technician to look at. */
static void
set_aside(const char *path)
{
	g_autofree char *corrupt = g_strconcat(path, ".corrupt", NULL);

	if (g_rename(path, corrupt) != 0 && errno != ENOENT)
		g_unlink(path);
}

static void
retire_entry(HealerStore *store, HealerStoreEntry *entry, const char *why)
{
	g_autoptr(GError) error = NULL;
	guint i = 0;

	healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, entry->path, -1, G_LOG_LEVEL_WARNING,
	            "store file %s %s; removed from the store", entry->path, why);
	set_aside(entry->path);
	g_hash_table_remove(store->by_sha, entry->sha256);
	if (g_ptr_array_find(store->entries, entry, &i))
		g_ptr_array_add(store->retired, g_ptr_array_steal_index(store->entries, i));
	if (!write_index(store, &error))
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING, "%s", error->message);
}

/* --- opening ------------------------------------------------------------- */

/* "function": a module function's name (as index.json is written) or, in older indexes, its number. */
static gboolean
get_function(json_object *obj, guint8 *function, GError **error)
{
	json_object *val = NULL;
	gint64 n = -1;

	if (!json_object_object_get_ex(obj, "function", &val))
		return healer_json_fail(error, "function: missing (expected a module function)");
	if (json_object_is_type(val, json_type_string))
		n = healer_module_function_from_string(json_object_get_string(val));
	else if (json_object_is_type(val, json_type_int))
		n = json_object_get_int64(val);
	if (n < 1 || n > G_MAXUINT8)
		return healer_json_fail(error, "function: %s is not a module function",
		                        json_object_to_json_string(val));
	*function = (guint8)n;
	return TRUE;
}

/* One index element; NULL with `error` set (naming the member) when malformed. */
static HealerStoreEntry *
entry_from_json(HealerStore *store, json_object *obj, GError **error)
{
	HealerStoreEntry *entry;
	const char *sha = NULL, *release = NULL, *source = NULL;
	guint64 size = 0, platform_id = 0, index = 0, version = 0;
	guint8 function = 0;

	if (!healer_json_value_object(obj, "entry", error) ||
	    !healer_json_get_hex(obj, "sha256", "", 32, HEALER_JSON_HEX_LOWER, NULL, error) ||
	    !healer_json_get_string(obj, "sha256", "", &sha, error) ||
	    !healer_json_get_uint(obj, "size", "", G_MAXINT64, &size, error) ||
	    !healer_json_get_uint(obj, "platform_id", "", G_MAXUINT16, &platform_id, error) ||
	    !healer_json_get_uint(obj, "index", "", G_MAXUINT8, &index, error) ||
	    !healer_json_get_uint(obj, "version", "", G_MAXUINT16, &version, error) ||
	    !get_function(obj, &function, error) ||
	    !healer_json_get_string_or_null(obj, "release", "", &release, error) ||
	    !healer_json_get_string_or_null(obj, "source", "", &source, error))
		return NULL;
	entry = g_new0(HealerStoreEntry, 1);
	entry->sha256 = g_strdup(sha);
	entry->path = healer_store_layout_module_path(store->dir, sha);
	entry->size = size;
	entry->platform_id = (guint16)platform_id;
	entry->function = function;
	entry->index = (guint8)index;
	entry->version = (guint16)version;
	entry->release = g_strdup(release);
	entry->source = g_strdup(source);
	return entry;
}

/* Checks an indexed entry's file; FALSE (logged, file set aside) when it is missing or altered. */
static gboolean
check_entry_file(HealerStoreEntry *entry)
{
	HealerError code = HEALER_ERROR_IO;
	g_autofree char *reason = NULL;
	g_autofree char *sha = NULL;
	g_autoptr(GBytes) bytes = read_file(entry->path, MAX_MODULE_FILE_SIZE, NULL, &code, &reason);

	if (bytes == NULL) {
		healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, entry->path, -1, G_LOG_LEVEL_WARNING,
		            "store file %s: %s; dropped from the index", entry->path, reason);
		if (code != HEALER_ERROR_NOT_FOUND)
			set_aside(entry->path);
		return FALSE;
	}
	sha = sha256_hex_of(bytes);
	if (g_bytes_get_size(bytes) != entry->size || strcmp(sha, entry->sha256) != 0) {
		healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, entry->path, -1, G_LOG_LEVEL_WARNING,
		            "store file %s was altered (%" G_GSIZE_FORMAT " bytes, SHA-256 %s); dropped "
		            "from the index and set aside as .corrupt",
		            entry->path, g_bytes_get_size(bytes), sha);
		set_aside(entry->path);
		return FALSE;
	}
	return TRUE;
}

/* Loads index.json; TRUE in `dirty` when it must be rewritten. */
static void
load_index(HealerStore *store, gboolean *dirty)
{
	g_autofree char *text = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) root = NULL;
	enum json_tokener_error jerr = json_tokener_success;

	if (!g_file_get_contents(store->index_path, &text, NULL, &error)) {
		if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
			healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, store->index_path, -1, G_LOG_LEVEL_WARNING,
			            "store index unreadable (%s); rebuilding it", error->message);
			set_aside(store->index_path);
		}
		*dirty = TRUE;
		return;
	}
	root = json_tokener_parse_verbose(text, &jerr);
	if (root == NULL || !json_object_is_type(root, json_type_array)) {
		healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, store->index_path, -1, G_LOG_LEVEL_WARNING,
		            "store index %s is not a JSON array (%s); set aside as .corrupt and rebuilt "
		            "from the store's files",
		            store->index_path, root == NULL ? json_tokener_error_desc(jerr) : "another JSON value");
		set_aside(store->index_path);
		*dirty = TRUE;
		return;
	}
	for (size_t i = 0; i < json_object_array_length(root); i++) {
		g_autoptr(GError) problem = NULL;
		HealerStoreEntry *entry = entry_from_json(store, json_object_array_get_idx(root, i), &problem);

		if (entry == NULL) {
			healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, store->index_path, -1, G_LOG_LEVEL_WARNING,
			            "store index %s: entry %zu dropped: %s", store->index_path, i, problem->message);
			*dirty = TRUE;
			continue;
		}
		if (g_hash_table_contains(store->by_sha, entry->sha256) || !check_entry_file(entry)) {
			entry_free(entry);
			*dirty = TRUE;
			continue;
		}
		add_entry(store, entry);
	}
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Files the index does not name: GLib's temp files of an interrupted atomic
 * write are removed; module files (copied before a crash kept the index from
 * naming them) are re-indexed when sound, set aside otherwise.
 */
static void
scan_store_dir(HealerStore *store, gboolean *dirty)
{
	g_autoptr(GDir) dir = g_dir_open(store->dir, 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, compare_strings);

	for (guint i = 0; i < names->len; i++) {
		const char *n = g_ptr_array_index(names, i);
		g_autofree char *path = g_build_filename(store->dir, n, NULL);
		g_autofree char *reason = NULL;
		g_autofree char *sha = NULL;
		g_autoptr(GBytes) bytes = NULL;
		g_autoptr(HealerModule) module = NULL;
		HealerError code;

		/* "<name>.XXXXXX": g_file_set_contents()'s temp file. */
		if (healer_store_layout_is_temp_name(n)) {
			if (!g_str_has_suffix(n, ".corrupt")) {
				g_unlink(path);
				continue;
			}
		}
		if (!healer_store_layout_is_module_name(n))
			continue;
		{
			g_autofree char *sha_name = g_strndup(n, 64);
			if (g_hash_table_contains(store->by_sha, sha_name))
				continue;
		}
		bytes = read_file(path, MAX_MODULE_FILE_SIZE, NULL, &code, &reason);
		if (bytes != NULL) {
			sha = sha256_hex_of(bytes);
			if (strncmp(sha, n, 64) != 0)
				reason = g_strdup_printf("content's SHA-256 is %s, not its name", sha);
			else
				module = check_module(bytes, &reason);
		}
		if (module == NULL) {
			healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, path, -1, G_LOG_LEVEL_WARNING,
			            "store file %s is not in the index and is unusable (%s); set aside as "
			            ".corrupt",
			            path, reason);
			set_aside(path);
			continue;
		}
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, path, -1, G_LOG_LEVEL_INFO,
		            "store file %s was missing from the index; indexed again", path);
		add_entry(store, entry_new(store, sha, g_bytes_get_size(bytes), module, NULL));
		*dirty = TRUE;
	}
}

static gboolean
make_dir(const char *path, GError **error)
{
	if (g_mkdir_with_parents(path, 0750) != 0) {
		int err = errno;
		g_set_error(error, HEALER_ERROR, errno_to_code(err), "cannot create %s: %s", path, g_strerror(err));
		return FALSE;
	}
	return TRUE;
}

HealerStore *
healer_store_open(const char *state_dir, GError **error)
{
	g_autoptr(HealerStore) store = g_new0(HealerStore, 1);
	gboolean dirty = FALSE;

	store->state_dir = g_strdup(state_dir);
	store->dir = healer_store_layout_store_dir(state_dir);
	store->index_path = healer_store_layout_index_path(store->dir);
	store->entries = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
	store->by_sha = g_hash_table_new(g_str_hash, g_str_equal);
	store->shared = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)shared_module_free);
	store->retired = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
	store->tables = g_ptr_array_new_with_free_func((GDestroyNotify)healer_release_table_free);
	store->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)seen_file_free);

	if (!make_dir(state_dir, error) || !make_dir(store->dir, error))
		return NULL;
	load_index(store, &dirty);
	scan_store_dir(store, &dirty);
	if (dirty && !write_index(store, error))
		return NULL;
	return g_steal_pointer(&store);
}

/* --- release tables ------------------------------------------------------ */

gboolean
healer_store_add_release_table(HealerStore *store, HealerReleaseTable *table, GError **error)
{
	gboolean changed = FALSE;

	g_ptr_array_add(store->tables, table);
	for (guint i = 0; i < store->entries->len; i++) {
		HealerStoreEntry *entry = g_ptr_array_index(store->entries, i);
		g_autofree char *name = release_name(store, entry->function, entry->version);
		if (g_strcmp0(name, entry->release) != 0) {
			g_free(entry->release);
			entry->release = g_steal_pointer(&name);
			changed = TRUE;
		}
	}
	return !changed || write_index(store, error);
}

/* --- importing ----------------------------------------------------------- */

typedef enum {
	IMPORT_ADDED,
	IMPORT_PRESENT,
	IMPORT_REJECTED, /* the file is not a module we store; `reason` says why */
	IMPORT_FAILED,   /* the store could not be written; `error` set */
} ImportResult;

static gboolean
seen_matches(const SeenFile *seen, const struct stat *st)
{
	return seen->dev == st->st_dev && seen->ino == st->st_ino && seen->size == st->st_size &&
	       seen->mtime.tv_sec == st->st_mtim.tv_sec && seen->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       seen->ctime.tv_sec == st->st_ctim.tv_sec && seen->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void
remember(HealerStore *store, const char *path, const struct stat *st, const char *sha, const char *reason)
{
	SeenFile *seen = g_new0(SeenFile, 1);

	seen->dev = st->st_dev;
	seen->ino = st->st_ino;
	seen->size = st->st_size;
	seen->mtime = st->st_mtim;
	seen->ctime = st->st_ctim;
	seen->sha256 = g_strdup(sha);
	seen->reason = g_strdup(reason);
	g_hash_table_insert(store->seen, g_strdup(path), seen);
}

/*
 * Imports the bytes of one file, `path` naming it (in messages and as the entry's source).  `st`
 * (the file's stat, or NULL when it came from a caller's descriptor) lets a later scan of the same,
 * unchanged file skip it.
 */
static ImportResult
import_bytes_one(HealerStore *store, const char *path, GBytes *bytes, const struct stat *st, char **sha_out,
                 char **reason, GError **error)
{
	g_autoptr(HealerModule) module = NULL;
	g_autofree char *sha = sha256_hex_of(bytes);
	g_autoptr(GError) local_error = NULL;
	HealerStoreEntry *entry;

	if (g_hash_table_contains(store->by_sha, sha)) {
		if (st != NULL)
			remember(store, path, st, sha, NULL);
		if (sha_out != NULL)
			*sha_out = g_steal_pointer(&sha);
		return IMPORT_PRESENT;
	}
	module = check_module(bytes, reason);
	if (module == NULL) {
		if (st != NULL)
			remember(store, path, st, NULL, *reason);
		return IMPORT_REJECTED;
	}
	if (store->admit_func != NULL &&
	    !store->admit_func(sha, g_bytes_get_size(bytes), path, reason, store->admit_data)) {
		if (st != NULL)
			remember(store, path, st, NULL, *reason);
		return IMPORT_REJECTED;
	}

	entry = entry_new(store, sha, g_bytes_get_size(bytes), module, path);
	if (!healer_file_write_atomic(entry->path, bytes, &local_error)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot store %s: %s", path, local_error->message);
		entry_free(entry);
		return IMPORT_FAILED;
	}
	add_entry(store, entry);
	if (st != NULL)
		remember(store, path, st, sha, NULL);
	if (sha_out != NULL)
		*sha_out = g_steal_pointer(&sha);
	return IMPORT_ADDED;
}

/*
 * Imports one file.  `fresh` is TRUE when the verdict was reached now rather
 * than remembered from an earlier scan of the same, unchanged file.
 */
static ImportResult
import_one(HealerStore *store, const char *path, char **sha_out, char **reason, gboolean *fresh, GError **error)
{
	struct stat st;
	SeenFile *seen = g_hash_table_lookup(store->seen, path);
	g_autoptr(GBytes) bytes = NULL;
	HealerError code;

	*fresh = TRUE;
	if (seen != NULL && g_stat(path, &st) == 0 && seen_matches(seen, &st)) {
		if (seen->reason != NULL) {
			*reason = g_strdup(seen->reason);
			*fresh = FALSE;
			return IMPORT_REJECTED;
		}
		if (g_hash_table_contains(store->by_sha, seen->sha256)) {
			if (sha_out != NULL)
				*sha_out = g_strdup(seen->sha256);
			*fresh = FALSE;
			return IMPORT_PRESENT;
		}
	}

	bytes = read_file(path, MAX_MODULE_FILE_SIZE, &st, &code, reason);
	if (bytes == NULL)
		return IMPORT_REJECTED; /* not remembered: unreadable files are tried again */
	return import_bytes_one(store, path, bytes, &st, sha_out, reason, error);
}

/* What a single import's outcome means to its caller: the index written when it added a module. */
static gboolean
finish_single_import(HealerStore *store, ImportResult outcome, const char *name, const char *reason, GError **error)
{
	switch (outcome) {
	case IMPORT_PRESENT:
		return TRUE;
	case IMPORT_ADDED:
		if (!write_index(store, error))
			return FALSE;
		emit_changed(store);
		return TRUE;
	case IMPORT_REJECTED:
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: %s", name, reason);
		return FALSE;
	case IMPORT_FAILED:
		return FALSE;
	}
	g_assert_not_reached();
}

gboolean
healer_store_import_file(HealerStore *store, const char *path, char **sha_out, GError **error)
{
	g_autofree char *reason = NULL;
	gboolean fresh = FALSE;
	ImportResult outcome = import_one(store, path, sha_out, &reason, &fresh, error);

	return finish_single_import(store, outcome, path, reason, error);
}

gboolean
healer_store_import_bytes(HealerStore *store, const char *name, GBytes *bytes, char **sha_out, GError **error)
{
	g_autofree char *reason = NULL;
	ImportResult outcome = import_bytes_one(store, name, bytes, NULL, sha_out, &reason, error);

	return finish_single_import(store, outcome, name, reason, error);
}

/*
 * The end of a batch import: the index written once when anything was added; the first failure
 * (a file's, else the index's) propagated, and then nothing counts as added.
 */
static guint
finish_batch_import(HealerStore *store, guint added, GError *failure /* transfer full */, GError **error)
{
	if (added > 0) {
		g_autoptr(GError) index_error = NULL;
		if (!write_index(store, &index_error) && failure == NULL)
			failure = g_steal_pointer(&index_error);
		emit_changed(store);
	}
	if (failure != NULL) {
		g_propagate_error(error, failure);
		return 0;
	}
	return added;
}

guint
healer_store_import_many(HealerStore *store, GPtrArray *names, GPtrArray *contents, GPtrArray *rejected_out,
                         GError **error)
{
	g_autoptr(GError) failure = NULL;
	guint added = 0;

	g_return_val_if_fail(names->len == contents->len, 0);
	for (guint i = 0; i < names->len && failure == NULL; i++) {
		const char *name = g_ptr_array_index(names, i);
		g_autofree char *reason = NULL;

		switch (import_bytes_one(store, name, g_ptr_array_index(contents, i), NULL, NULL, &reason, &failure)) {
		case IMPORT_ADDED:
			added++;
			break;
		case IMPORT_REJECTED:
			if (rejected_out != NULL)
				g_ptr_array_add(rejected_out, g_strdup_printf("%s: %s", name, reason));
			break;
		case IMPORT_PRESENT:
		case IMPORT_FAILED:
			break;
		}
	}
	return finish_batch_import(store, added, g_steal_pointer(&failure), error);
}

/* Every file to import under `dir`, sorted; unreadable subdirectories are warnings. */
static gboolean
collect_files(const char *dir, GPtrArray *files, GPtrArray *warnings, GError **error)
{
	g_autoptr(GError) local_error = NULL;
	g_autoptr(GDir) d = g_dir_open(dir, 0, &local_error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	if (d == NULL) {
		g_set_error(error, HEALER_ERROR,
		            g_error_matches(local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ? HEALER_ERROR_NOT_FOUND
		                                                                           : HEALER_ERROR_IO,
		            "cannot read module directory: %s", local_error->message);
		return FALSE;
	}
	while ((name = g_dir_read_name(d)) != NULL) {
		if (name[0] == '.' || healer_module_file_name_is_metadata(name))
			continue;
		g_ptr_array_add(names, g_strdup(name));
	}
	g_ptr_array_sort(names, compare_strings);

	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
		struct stat st;

		if (g_lstat(path, &st) != 0)
			continue; /* gone since listed */
		if (S_ISDIR(st.st_mode)) {
			g_autoptr(GError) sub_error = NULL;
			if (!collect_files(path, files, warnings, &sub_error))
				g_ptr_array_add(warnings, g_strdup_printf("%s: %s", path, sub_error->message));
			continue;
		}
		if (S_ISLNK(st.st_mode) && (g_stat(path, &st) != 0 || !S_ISREG(st.st_mode)))
			continue; /* dangling, or a link to a directory (which could loop) */
		if (S_ISREG(st.st_mode))
			g_ptr_array_add(files, g_steal_pointer(&path));
	}
	return TRUE;
}

guint
healer_store_import_directory(HealerStore *store, const char *dir, GPtrArray *warnings_out, GError **error)
{
	g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) failure = NULL;
	guint added = 0;

	if (!collect_files(dir, files, warnings, error))
		return 0;
	for (guint i = 0; i < files->len; i++) {
		const char *path = g_ptr_array_index(files, i);
		g_autofree char *reason = NULL;
		gboolean fresh = TRUE;

		switch (import_one(store, path, NULL, &reason, &fresh, &failure)) {
		case IMPORT_ADDED:
			added++;
			break;
		case IMPORT_PRESENT:
			break;
		case IMPORT_REJECTED:
			if (fresh)
				healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, path, -1, G_LOG_LEVEL_WARNING,
				            "%s: %s; skipped, not stored", path, reason);
			g_ptr_array_add(warnings, g_strdup_printf("%s: %s", path, reason));
			break;
		case IMPORT_FAILED:
			break;
		}
		if (failure != NULL)
			break;
	}
	if (warnings_out != NULL) {
		for (guint i = 0; i < warnings->len; i++)
			g_ptr_array_add(warnings_out, g_strdup(g_ptr_array_index(warnings, i)));
	}
	return finish_batch_import(store, added, g_steal_pointer(&failure), error);
}

void
healer_store_set_admit_func(HealerStore *store, HealerStoreAdmitFunc func, gpointer user_data)
{
	store->admit_func = func;
	store->admit_data = user_data;
}

void
healer_store_set_release_func(HealerStore *store, HealerStoreReleaseFunc func, gpointer user_data)
{
	store->release_func = func;
	store->release_data = user_data;
}

void
healer_store_forget_rejections(HealerStore *store)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, store->seen);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		if (((SeenFile *)value)->reason != NULL)
			g_hash_table_iter_remove(&iter);
	}
}

/*
 * Takes an entry added by this batch back out: its file removed, not set aside (it was never used).
 * The entries array owns it: removing it from there frees it, so that comes last.
 */
static void
undo_entry(HealerStore *store, HealerStoreEntry *entry)
{
	g_hash_table_remove(store->by_sha, entry->sha256);
	g_unlink(entry->path);
	g_ptr_array_remove(store->entries, entry);
}

gboolean
healer_store_import_all(HealerStore *store, GPtrArray *paths, const char *source, guint *added_out, GError **error)
{
	g_autoptr(GPtrArray) checked = g_ptr_array_new_with_free_func(g_free); /* sha per path, NULL: present */
	g_autoptr(GPtrArray) modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_module_free);
	g_autoptr(GPtrArray) contents = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	g_autoptr(GPtrArray) added = g_ptr_array_new();
	g_autoptr(GError) local_error = NULL;

	if (added_out != NULL)
		*added_out = 0;
	/* Everything checked before anything is written. */
	for (guint i = 0; i < paths->len; i++) {
		const char *path = g_ptr_array_index(paths, i);
		HealerError code = HEALER_ERROR_INVALID_DATA;
		g_autofree char *reason = NULL;
		g_autoptr(GBytes) bytes = read_file(path, MAX_MODULE_FILE_SIZE, NULL, &code, &reason);
		g_autofree char *sha = NULL;
		HealerModule *module;

		if (bytes == NULL) {
			g_set_error(error, HEALER_ERROR, code, "%s: %s", path, reason);
			return FALSE;
		}
		sha = sha256_hex_of(bytes);
		module = check_module(bytes, &reason);
		if (module == NULL) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: %s", path, reason);
			return FALSE;
		}
		g_ptr_array_add(modules, module);
		if (store->admit_func != NULL &&
		    !store->admit_func(sha, g_bytes_get_size(bytes), path, &reason, store->admit_data)) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%s: %s", path, reason);
			return FALSE;
		}
		g_ptr_array_add(checked, g_hash_table_contains(store->by_sha, sha) ? NULL : g_steal_pointer(&sha));
		g_ptr_array_add(contents, g_steal_pointer(&bytes));
	}
	for (guint i = 0; i < paths->len && local_error == NULL; i++) {
		const char *sha = g_ptr_array_index(checked, i);
		HealerStoreEntry *entry;

		if (sha == NULL || g_hash_table_contains(store->by_sha, sha))
			continue; /* stored already (or twice in this batch) */
		entry = entry_new(store, sha, g_bytes_get_size(g_ptr_array_index(contents, i)),
		                  g_ptr_array_index(modules, i), source);
		if (!healer_file_write_atomic(entry->path, g_ptr_array_index(contents, i), &local_error)) {
			entry_free(entry);
			break;
		}
		add_entry(store, entry);
		g_ptr_array_add(added, entry);
	}
	if (local_error == NULL && added->len > 0)
		write_index(store, &local_error);
	if (local_error != NULL) {
		/* The store as it was: nothing of this batch stays. */
		for (guint i = 0; i < added->len; i++)
			undo_entry(store, g_ptr_array_index(added, i));
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_IO, "cannot write the store (nothing was imported): %s",
		            local_error->message);
		return FALSE;
	}
	if (added_out != NULL)
		*added_out = added->len;
	if (added->len > 0)
		emit_changed(store);
	return TRUE;
}

/* --- reading ------------------------------------------------------------- */

GPtrArray *
healer_store_list(HealerStore *store)
{
	GPtrArray *list = g_ptr_array_sized_new(store->entries->len);

	for (guint i = 0; i < store->entries->len; i++)
		g_ptr_array_add(list, g_ptr_array_index(store->entries, i));
	return list;
}

guint
healer_store_get_n_entries(HealerStore *store)
{
	return store->entries->len;
}

const HealerStoreEntry *
healer_store_lookup(HealerStore *store, const char *sha_hex)
{
	g_autofree char *lower = g_ascii_strdown(sha_hex, -1);

	return g_hash_table_lookup(store->by_sha, lower);
}

GBytes *
healer_store_read_verified(HealerStore *store, const HealerStoreEntry *entry, GError **error)
{
	HealerStoreEntry *live = g_hash_table_lookup(store->by_sha, entry->sha256);
	HealerError code = HEALER_ERROR_IO;
	g_autofree char *reason = NULL;
	g_autofree char *sha = NULL;
	g_autofree char *why = NULL;
	g_autoptr(GBytes) bytes = NULL;

	if (live != entry) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "module %s is no longer in the store",
		            entry->sha256);
		return NULL;
	}
	bytes = read_file(entry->path, MAX_MODULE_FILE_SIZE, NULL, &code, &reason);
	if (bytes == NULL) {
		g_set_error(error, HEALER_ERROR, code == HEALER_ERROR_NOT_FOUND ? code : HEALER_ERROR_INVALID_DATA,
		            "store file %s: %s", entry->path, reason);
		why = g_strdup_printf("cannot be read (%s)", reason);
		retire_entry(store, live, why);
		emit_changed(store);
		return NULL;
	}
	sha = sha256_hex_of(bytes);
	if (g_bytes_get_size(bytes) != entry->size || strcmp(sha, entry->sha256) != 0) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "store file %s was altered: SHA-256 %s, expected %s", entry->path, sha, entry->sha256);
		why = g_strdup_printf("was altered (SHA-256 %s)", sha);
		retire_entry(store, live, why);
		emit_changed(store);
		return NULL;
	}
	return g_steal_pointer(&bytes);
}

gboolean
healer_store_verify_entry(HealerStore *store, const HealerStoreEntry *entry, GError **error)
{
	g_autoptr(GBytes) bytes = healer_store_read_verified(store, entry, error);

	return bytes != NULL;
}

GBytes *
healer_store_acquire_module(HealerStore *store, const char *sha_hex, GError **error)
{
	g_autofree char *lower = g_ascii_strdown(sha_hex, -1);
	SharedModule *m = g_hash_table_lookup(store->shared, lower);

	if (m == NULL) {
		const HealerStoreEntry *entry = g_hash_table_lookup(store->by_sha, lower);
		GBytes *bytes;

		if (entry == NULL) {
			g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "module %s is not in the store",
			            lower);
			return NULL;
		}
		/*
		 * On the main loop: reading and hashing a 256 KiB module from the
		 * page cache takes about 0.2 ms, once per heal batch, not per device.
		 */
		bytes = healer_store_read_verified(store, entry, error);
		if (bytes == NULL)
			return NULL;
		m = g_new0(SharedModule, 1);
		m->bytes = bytes;
		g_hash_table_insert(store->shared, g_steal_pointer(&lower), m);
	}
	m->holders++;
	return m->bytes;
}

void
healer_store_release_module(HealerStore *store, const char *sha_hex)
{
	g_autofree char *lower = g_ascii_strdown(sha_hex, -1);
	SharedModule *m = g_hash_table_lookup(store->shared, lower);

	g_return_if_fail(m != NULL && m->holders > 0);
	if (--m->holders == 0)
		g_hash_table_remove(store->shared, lower);
}
