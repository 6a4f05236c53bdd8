/*
 * What may enter healerd's store (agent/daemon/trust.c, supply.c): only
 * modules a catalog signed by a trusted key lists; bundles all or nothing,
 * each fault with its own message and the store (index, files, catalogs)
 * exactly as before; the serial rule per key; kept catalogs verified again
 * after a restart; allow-unsigned loud but working.
 */
#include <string.h>

#include <glib/gstdio.h>

#include "bundle.h"
#include "catalog-publish.h"
#include "catalog.h"
#include "config.h"
#include "healer-error.h"
#include "healer-file.h"
#include "journal.h"
#include "store.h"
#include "supply.h"
#include "test-util.h"
#include "trust.h"
#include "upstream.h"

/* Every record logged, "MESSAGE_ID|MESSAGE": warnings are part of what is tested, not fatal. */
static GPtrArray *logged;

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	const char *id = "", *message = "";

	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "MESSAGE_ID") == 0)
			id = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return g_log_writer_default(level, fields, n_fields, user_data);
	g_ptr_array_add(logged, g_strdup_printf("%s|%s", id, message));
	return G_LOG_WRITER_HANDLED;
}

static guint
count_logged(const char *message_id, const char *needle)
{
	guint n = 0;

	for (guint i = 0; i < logged->len; i++) {
		const char *line = g_ptr_array_index(logged, i);
		if (g_str_has_prefix(line, message_id) && strstr(line, needle) != NULL)
			n++;
	}
	return n;
}

typedef struct {
	char *dir;
	char *keys;    /* a directory with the development public key */
	char *modules; /* the firmware build's modules directory (a bundle) */
	HealerConfig *config;
	HealerStore *store;
	HealerTrust *trust;
	HealerSupply *supply;
} Fixture;

static void
open_daemon(Fixture *f, gboolean allow_unsigned)
{
	g_autoptr(GError) error = NULL;
	const char *dirs[] = {f->keys, NULL};

	f->store = healer_store_open(f->config->state_dir, &error);
	g_assert_no_error(error);
	f->trust = healer_trust_new(f->config->state_dir, dirs, allow_unsigned, &error);
	g_assert_no_error(error);
	f->supply = healer_supply_new(f->config, f->store, f->trust);
}

static void
close_daemon(Fixture *f)
{
	g_clear_pointer(&f->supply, healer_supply_free);
	g_clear_pointer(&f->trust, healer_trust_free);
	g_clear_pointer(&f->store, healer_store_free);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autofree char *pub = g_build_filename(test_program("HEALER_SOURCE_DIR"), "device-firmware", "keys",
	                                        "development-DO-NOT-USE-IN-PRODUCTION.pub.pem", NULL);
	g_autofree char *copy = NULL;
	g_autoptr(GBytes) key = test_read_file(pub);

	(void)data;
	f->dir = test_tmpdir_new();
	f->keys = g_build_filename(f->dir, "keys", NULL);
	g_mkdir(f->keys, 0755);
	copy = g_build_filename(f->keys, "development.pem", NULL);
	test_write_file(copy, g_bytes_get_data(key, NULL), g_bytes_get_size(key));
	f->modules = g_strdup(test_program("HEALER_FIRMWARE_MODULES"));
	f->config = healer_config_new_defaults();
	g_free(f->config->state_dir);
	f->config->state_dir = g_build_filename(f->dir, "state", NULL);
	g_strfreev(f->config->module_dirs);
	f->config->module_dirs = g_new0(char *, 1);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	close_daemon(f);
	healer_config_free(f->config);
	g_free(f->keys);
	g_free(f->modules);
	test_tmpdir_free(f->dir);
}

/* ---- importing, synchronously ---- */

typedef struct {
	gboolean done;
	guint added;
	guint rejected;
	GError *error;
} ImportOutcome;

static void
on_imported(const HealerSupplyImportResult *result, const GError *error, gpointer user_data)
{
	ImportOutcome *out = user_data;

	out->done = TRUE;
	if (error != NULL) {
		out->error = g_error_copy(error);
		return;
	}
	out->added = result->added;
	out->rejected = result->rejected->len;
}

static ImportOutcome
import(Fixture *f, const char *path)
{
	ImportOutcome out = {0};

	healer_supply_import_async(f->supply, path, on_imported, &out);
	while (!out.done)
		g_main_context_iteration(NULL, TRUE);
	return out;
}

/* Everything the store and the trust hold: the whole state directory, and the store's own count. */
static char *
snapshot(Fixture *f)
{
	g_autofree char *tree = test_tree_snapshot(f->config->state_dir);

	return g_strdup_printf("%sentries %u\n", tree, healer_store_get_n_entries(f->store));
}

/* The state directory is as `before` (a snapshot()): files, sizes, SHA-256, index, entry count. */
static void
assert_unchanged(Fixture *f, const char *before, const char *what)
{
	g_autofree char *count = g_strdup_printf("entries %u\n", healer_store_get_n_entries(f->store));

	g_assert_true(g_str_has_suffix(before, count));
	{
		g_autofree char *tree = g_strndup(before, strlen(before) - strlen(count));
		test_assert_tree_unchanged(tree, f->config->state_dir, what);
	}
}

static void
expect_rejected(Fixture *f, const char *path, const char *message)
{
	g_autofree char *before = snapshot(f);
	ImportOutcome out = import(f, path);
	g_autofree char *staging = g_build_filename(f->config->state_dir, "staging", NULL);
	g_autoptr(GDir) dir = NULL;

	if (out.error == NULL)
		g_error("%s: accepted (%u added), expected '%s'", path, out.added, message);
	g_assert_error(out.error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	if (strstr(out.error->message, message) == NULL)
		g_error("%s: expected '%s' in '%s'", path, message, out.error->message);
	g_test_message("rejected as expected: %s", out.error->message);
	g_error_free(out.error);
	assert_unchanged(f, before, path);
	/* Nothing left half unpacked. */
	dir = g_dir_open(staging, 0, NULL);
	g_assert_nonnull(dir);
	g_assert_null(g_dir_read_name(dir));
}

/* ---- bundles made for the tests ---- */

static GBytes *
read_from_modules(const HealerCatalogModule *module, gpointer user_data, GError **error)
{
	g_autofree char *path = g_build_filename(user_data, module->path, NULL);
	g_autofree char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, error))
		return NULL;
	return g_bytes_new_take(g_steal_pointer(&data), len);
}

/* A catalog of the firmware build's modules with `serial`, signed with `key` (NULL: the development key). */
static void
make_catalog(Fixture *f, guint64 serial, EVP_PKEY *key, GBytes **json, GBytes **sig)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *table_path = g_build_filename(f->modules, "releases.json", NULL);
	g_autoptr(HealerReleaseTable) table = healer_release_table_new_from_file(table_path, &error);
	g_autofree char *dev_path = g_build_filename(test_program("HEALER_SOURCE_DIR"), "device-firmware", "keys",
	                                             "development-DO-NOT-USE-IN-PRODUCTION.pem", NULL);
	g_autoptr(EVP_PKEY) dev = NULL;

	g_assert_no_error(error);
	if (key == NULL) {
		dev = healer_catalog_load_private_key(dev_path, &error);
		g_assert_no_error(error);
		key = dev;
	}
	{
		g_autofree char *key_id = healer_catalog_key_id(key);
		*json = healer_catalog_build_from_directory_for_key(f->modules, serial, table, key_id, &error);
	}
	g_assert_no_error(error);
	*sig = healer_catalog_sign(*json, key, &error);
	g_assert_no_error(error);
}

/* Writes a bundle of the release's modules (NULL: all) to `dest`. */
static void
make_bundle(Fixture *f, const char *dest, guint64 serial, EVP_PKEY *key, const char *release)
{
	g_autoptr(GBytes) json = NULL, sig = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerCatalog) catalog = NULL;
	g_autoptr(GPtrArray) selected = NULL;

	make_catalog(f, serial, key, &json, &sig);
	catalog = healer_catalog_parse(g_bytes_get_data(json, NULL), g_bytes_get_size(json), &error);
	g_assert_no_error(error);
	selected = healer_catalog_select(catalog, -1, release, &error);
	g_assert_no_error(error);
	g_assert_true(healer_bundle_write(dest, json, sig, catalog, selected, read_from_modules, f->modules, &error));
	g_assert_no_error(error);
}

static void
xor_byte(const char *path, gsize offset, guint8 mask)
{
	g_autoptr(GBytes) bytes = test_read_file(path);
	g_autofree guint8 *data = g_memdup2(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));

	g_assert_cmpuint(offset, <, g_bytes_get_size(bytes));
	data[offset] ^= mask;
	test_write_file(path, data, g_bytes_get_size(bytes));
}

static void
flip_byte(const char *path, gsize offset)
{
	xor_byte(path, offset, 0x55);
}

/* ---- tests ---- */

/* No trusted key: a directory of valid modules is refused, each file with the reason. */
static void
test_untrusted_refused(Fixture *f, gconstpointer data)
{
	g_autofree char *plain = g_build_filename(f->dir, "plain", NULL);
	g_autofree char *empty_keys = g_build_filename(f->dir, "no-keys", NULL);
	g_autoptr(GError) error = NULL;
	const char *dirs[] = {empty_keys, NULL};
	g_autofree char *before = NULL;
	ImportOutcome out;

	(void)data;
	g_mkdir(empty_keys, 0755);
	f->store = healer_store_open(f->config->state_dir, &error);
	g_assert_no_error(error);
	f->trust = healer_trust_new(f->config->state_dir, dirs, FALSE, &error);
	g_assert_no_error(error);
	f->supply = healer_supply_new(f->config, f->store, f->trust);
	/* The modules without their catalog. */
	test_copy_tree(f->modules, plain, NULL);
	{
		g_autofree char *catalog = g_build_filename(plain, "catalog.json", NULL);
		g_unlink(catalog);
	}
	before = snapshot(f);
	out = import(f, plain);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, ==, 0);
	g_assert_cmpuint(out.rejected, >=, 15);
	g_assert_cmpuint(healer_store_get_n_entries(f->store), ==, 0);
	assert_unchanged(f, before, "a directory of modules no trusted catalog lists");
	/* The bundle itself: its catalog is signed by a key this gateway does not trust. */
	expect_rejected(f, f->modules, "catalog is signed by an unknown key");
}

/* The firmware build's directory is a bundle: accepted whole; again: nothing changes. */
static void
test_bundle_directory(Fixture *f, gconstpointer data)
{
	g_autofree char *before = NULL;
	ImportOutcome out;
	g_autoptr(GPtrArray) held = NULL;
	const HealerTrustedCatalog *tc;

	(void)data;
	open_daemon(f, FALSE);
	out = import(f, f->modules);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, >=, 15);
	held = healer_trust_list_catalogs(f->trust);
	g_assert_cmpuint(held->len, ==, 1);
	tc = g_ptr_array_index(held, 0);
	g_assert_cmpuint(out.added, ==, tc->catalog->modules->len);
	before = snapshot(f);
	out = import(f, f->modules);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, ==, 0);
	assert_unchanged(f, before, "importing the same bundle again");
}

/* A .tar and a .tar.gz bundle of one release; a plain module file is admitted once its catalog is held. */
static void
test_bundle_archives(Fixture *f, gconstpointer data)
{
	g_autofree char *tar = g_build_filename(f->dir, "release-2.1.0.tar", NULL);
	g_autofree char *tgz = g_build_filename(f->dir, "all.tar.gz", NULL);
	g_autofree char *app = g_build_filename(f->modules, "apps", "sensor.bin", NULL);
	g_autofree char *before = NULL;
	ImportOutcome out;
	guint after_tar;

	(void)data;
	open_daemon(f, FALSE);
	make_bundle(f, tar, 1, NULL, "2.1.0");
	make_bundle(f, tgz, 1, NULL, NULL);
	/* A module file alone: no catalog held yet lists it. */
	before = snapshot(f);
	out = import(f, app);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, ==, 0);
	g_assert_cmpuint(out.rejected, ==, 1);
	assert_unchanged(f, before, "a module no trusted catalog lists");
	/* A file that is no module at all. */
	{
		g_autofree char *text = g_build_filename(f->dir, "notes.txt", NULL);
		test_write_file(text, (const guint8 *)"not firmware\n", 13);
		out = import(f, text);
		g_assert_no_error(out.error);
		g_assert_cmpuint(out.added, ==, 0);
		g_assert_cmpuint(out.rejected, ==, 1);
		assert_unchanged(f, before, "a file that is not a module");
	}
	out = import(f, tar);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, >=, 3);
	after_tar = healer_store_get_n_entries(f->store);
	out = import(f, tgz);
	g_assert_no_error(out.error);
	g_assert_cmpuint(healer_store_get_n_entries(f->store), >, after_tar);
	out = import(f, tar);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, ==, 0);
}

/* Tampered module, tampered catalog, wrong key, older serial, truncated archive: each its own message. */
static void
test_bundle_faults(Fixture *f, gconstpointer data)
{
	g_autofree char *good = g_build_filename(f->dir, "good.tar", NULL);
	g_autofree char *newer = g_build_filename(f->dir, "newer", NULL);
	g_autofree char *older = g_build_filename(f->dir, "older.tar", NULL);
	g_autofree char *tampered = g_build_filename(f->dir, "tampered", NULL);
	g_autofree char *bad_catalog = g_build_filename(f->dir, "bad-catalog", NULL);
	g_autofree char *foreign = g_build_filename(f->dir, "foreign.tar", NULL);
	g_autofree char *foreign_tgz = g_build_filename(f->dir, "foreign.tar.gz", NULL);
	g_autofree char *unsigned_dir = g_build_filename(f->dir, "unsigned", NULL);
	g_autofree char *truncated = g_build_filename(f->dir, "truncated.tar", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) other_key = healer_catalog_generate_key(&error);
	g_autoptr(GBytes) whole = NULL;
	ImportOutcome out;

	(void)data;
	g_assert_no_error(error);
	open_daemon(f, FALSE);
	make_bundle(f, good, 5, NULL, "1.2.0");
	make_bundle(f, newer, 7, NULL, "2.0.0");
	make_bundle(f, older, 6, NULL, "2.0.0");
	make_bundle(f, tampered, 7, NULL, "2.0.0");
	make_bundle(f, bad_catalog, 7, NULL, "2.0.0");
	make_bundle(f, foreign, 9, other_key, "2.0.0");
	make_bundle(f, foreign_tgz, 9, other_key, "2.0.0");
	make_bundle(f, unsigned_dir, 7, NULL, "2.0.0");

	out = import(f, good);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, >=, 3);

	/* One byte of one module. */
	{
		g_autofree char *module = g_build_filename(tampered, "2.0.0", "system-part1.bin", NULL);
		flip_byte(module, 1000);
	}
	expect_rejected(f, tampered, "2.0.0/system-part1.bin: SHA-256 mismatch");
	/* One byte of the catalog. */
	{
		g_autofree char *catalog = g_build_filename(bad_catalog, "catalog.json", NULL);
		g_autoptr(GBytes) text = test_read_file(catalog);
		const char *at = g_strstr_len(g_bytes_get_data(text, NULL), g_bytes_get_size(text), "\"serial\": 7");
		g_assert_nonnull(at);
		/* Serial 7 becomes 6: still a valid catalog, no longer the one signed. */
		xor_byte(catalog, (gsize)(at - (const char *)g_bytes_get_data(text, NULL)) + 10, 0x01);
	}
	expect_rejected(f, bad_catalog, "catalog was altered after signing: the signature of trusted key");
	/* Signed with a key this gateway does not trust, in each archive format. */
	expect_rejected(f, foreign, "catalog is signed by an unknown key");
	expect_rejected(f, foreign, "(not among the trusted keys)");
	expect_rejected(f, foreign_tgz, "catalog is signed by an unknown key");
	/* No signature at all (allow-unsigned is off). */
	{
		g_autofree char *sig = g_build_filename(unsigned_dir, "catalog.json.sig", NULL);
		g_assert_cmpint(g_unlink(sig), ==, 0);
	}
	expect_rejected(f, unsigned_dir, "catalog is unsigned (and unsigned catalogs are not allowed)");
	/* Accept serial 7, then an older catalog from the same key is a replay. */
	out = import(f, newer);
	g_assert_no_error(out.error);
	expect_rejected(f, older, "catalog is older than the last accepted catalog: serial 6 < 7");
	/* An archive cut short. */
	whole = test_read_file(good);
	test_write_file(truncated, g_bytes_get_data(whole, NULL), g_bytes_get_size(whole) * 2 / 3);
	expect_rejected(f, truncated, "truncated.tar");
}

/*
 * A catalog signed by the trusted key with the serial already accepted but other contents (here: made
 * a second later, and a bundle of another release) is refused, in a bundle and offered alone as an
 * upstream's would be, and the held catalog and the store stay byte for byte as they were.  The same
 * catalog again is no change.  Only the serial rule's equal-serial check can refuse it: its signature
 * is good and its serial is not lower.
 */
static void
test_same_serial_other_contents(Fixture *f, gconstpointer data)
{
	g_autofree char *first = g_build_filename(f->dir, "first.tar", NULL);
	g_autofree char *second = g_build_filename(f->dir, "second.tar", NULL);
	g_autoptr(GBytes) json = NULL, sig = NULL, other_json = NULL, other_sig = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) held = NULL;
	g_autofree char *before = NULL;
	g_autofree char *kept = NULL;
	g_autofree char *epoch = g_strdup(g_getenv("SOURCE_DATE_EPOCH"));
	const HealerTrustedCatalog *tc;
	ImportOutcome out;

	(void)data;
	open_daemon(f, FALSE);
	make_catalog(f, 5, NULL, &json, &sig);
	make_bundle(f, first, 5, NULL, "1.2.0");
	g_setenv("SOURCE_DATE_EPOCH", "1764000001", TRUE);
	make_catalog(f, 5, NULL, &other_json, &other_sig);
	make_bundle(f, second, 5, NULL, "2.0.0");
	g_setenv("SOURCE_DATE_EPOCH", epoch, TRUE);
	g_assert_false(g_bytes_equal(json, other_json));

	out = import(f, first);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, >=, 3);
	held = healer_trust_list_catalogs(f->trust);
	g_assert_cmpuint(held->len, ==, 1);
	tc = g_ptr_array_index(held, 0);
	kept = g_strdup_printf("%s/catalogs/%s.json", f->config->state_dir, tc->key_id);
	{
		g_autoptr(GBytes) on_disk = test_read_file(kept);
		g_assert_true(g_bytes_equal(on_disk, json));
	}

	expect_rejected(f, second, "catalog has serial 5, already accepted with other contents (key ");
	expect_rejected(f, second, "): a publisher must raise the serial");
	g_assert_cmpuint(count_logged(HEALER_MSG_CATALOG_REJECTED, "already accepted with other contents"), >=, 2);

	/* The catalog alone, as a module directory's or an upstream's is offered. */
	before = snapshot(f);
	g_assert_null(healer_supply_offer_catalog(f->supply, other_json, other_sig, "test", &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_nonnull(strstr(error->message, "catalog has serial 5, already accepted with other contents (key "));
	g_clear_error(&error);
	assert_unchanged(f, before, "offering a same-serial catalog with other contents");
	g_clear_pointer(&held, g_ptr_array_unref);
	held = healer_trust_list_catalogs(f->trust);
	g_assert_cmpuint(held->len, ==, 1);
	tc = g_ptr_array_index(held, 0);
	g_assert_true(g_bytes_equal(tc->json, json));
	g_assert_cmpuint(tc->catalog->serial, ==, 5);

	/* The same bytes with the same serial are no change, not a refusal. */
	g_assert_nonnull(healer_supply_offer_catalog(f->supply, json, sig, "test", &error));
	g_assert_no_error(error);
	assert_unchanged(f, before, "offering the held catalog again");
}

/*
 * A catalog over 16 MiB (a module directory's catalog.json is read whole) is refused by its size
 * before it is checked further; one of exactly 16 MiB is checked further (here refused as unsigned):
 * the bound is where it is said to be.  Either way the state directory is untouched.
 */
static void
test_catalog_over_limit(Fixture *f, gconstpointer data)
{
	const gsize limit = 16 * 1024 * 1024;
	g_autofree guint8 *big = g_malloc(limit + 1);
	g_autoptr(GBytes) over = NULL, at = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *before = NULL;

	(void)data;
	memset(big, ' ', limit + 1);
	big[limit - 1] = 'x';
	over = g_bytes_new_static(big, limit + 1);
	at = g_bytes_new_static(big, limit);
	open_daemon(f, FALSE);
	before = snapshot(f);
	g_assert_null(healer_supply_offer_catalog(f->supply, over, NULL, "big", &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_cmpstr(error->message, ==, "catalog is 16777217 bytes, more than the 16777216 allowed");
	g_clear_error(&error);
	assert_unchanged(f, before, "a catalog over the limit");
	g_assert_null(healer_supply_offer_catalog(f->supply, at, NULL, "big", &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	g_assert_null(strstr(error->message, "more than"));
	g_clear_error(&error);
	assert_unchanged(f, before, "a catalog at the limit");
}

/*
 * A module directory (config module-dirs) whose catalog is refused: altered after signing, then signed
 * but with the serial already held and other contents.  healerd logs why and stores nothing the
 * refused catalog would have admitted: the state directory is as before the directory was read.
 */
static void
test_module_dir_refused(Fixture *f, gconstpointer data)
{
	g_autofree char *dir = g_build_filename(f->dir, "module-dir", NULL);
	g_autofree char *catalog = NULL, *sig = NULL;
	g_autoptr(GBytes) json = NULL, signature = NULL;
	g_autofree char *before = NULL;
	ImportOutcome out;

	(void)data;
	test_copy_tree(f->modules, dir, NULL);
	catalog = g_build_filename(dir, "catalog.json", NULL);
	sig = g_build_filename(dir, "catalog.json.sig", NULL);
	g_strfreev(f->config->module_dirs);
	f->config->module_dirs = g_new0(char *, 2);
	f->config->module_dirs[0] = g_strdup(dir);

	/* Altered after signing: one byte of the serial. */
	{
		g_autoptr(GBytes) text = test_read_file(catalog);
		const char *at = g_strstr_len(g_bytes_get_data(text, NULL), g_bytes_get_size(text), "\"serial\": 1");
		g_assert_nonnull(at);
		xor_byte(catalog, (gsize)(at - (const char *)g_bytes_get_data(text, NULL)) + 10, 0x02);
	}
	open_daemon(f, FALSE);
	before = snapshot(f);
	healer_supply_start(f->supply);
	g_assert_cmpuint(
	        count_logged(HEALER_MSG_CATALOG_REJECTED, "catalog not accepted: catalog was altered after signing"),
	        ==, 1);
	assert_unchanged(f, before, "a module directory with an altered catalog");
	close_daemon(f);

	/* The build's own catalog (serial 1) held; the directory's is serial 1 too, made a second later. */
	open_daemon(f, FALSE);
	out = import(f, f->modules);
	g_assert_no_error(out.error);
	g_clear_pointer(&before, g_free);
	g_setenv("SOURCE_DATE_EPOCH", "1764000001", TRUE);
	make_catalog(f, 1, NULL, &json, &signature);
	g_setenv("SOURCE_DATE_EPOCH", "1764000000", TRUE);
	test_write_file(catalog, g_bytes_get_data(json, NULL), g_bytes_get_size(json));
	test_write_file(sig, g_bytes_get_data(signature, NULL), g_bytes_get_size(signature));
	before = snapshot(f);
	healer_supply_start(f->supply);
	g_assert_cmpuint(
	        count_logged(HEALER_MSG_CATALOG_REJECTED,
	                     "catalog not accepted: catalog has serial 1, already accepted with other contents"),
	        ==, 1);
	assert_unchanged(f, before, "a module directory with a same-serial catalog of other contents");
}

/* Catalogs accepted are kept and verified again at the next start; an altered one is ignored. */
static void
test_kept_catalogs(Fixture *f, gconstpointer data)
{
	g_autoptr(GPtrArray) held = NULL;
	g_autofree char *kept = NULL;
	ImportOutcome out;

	(void)data;
	open_daemon(f, FALSE);
	out = import(f, f->modules);
	g_assert_no_error(out.error);
	close_daemon(f);

	open_daemon(f, FALSE);
	held = healer_trust_list_catalogs(f->trust);
	g_assert_cmpuint(held->len, ==, 1);
	kept = g_strdup_printf("%s/catalogs/%s.json", f->config->state_dir,
	                       ((HealerTrustedCatalog *)g_ptr_array_index(held, 0))->key_id);
	g_clear_pointer(&held, g_ptr_array_unref);
	close_daemon(f);

	flip_byte(kept, 40);
	open_daemon(f, FALSE);
	held = healer_trust_list_catalogs(f->trust);
	g_assert_cmpuint(held->len, ==, 0);
}

/* allow-unsigned: modules no catalog lists are admitted (and logged as such). */
static void
test_allow_unsigned(Fixture *f, gconstpointer data)
{
	g_autofree char *app = g_build_filename(f->modules, "apps", "sensor.bin", NULL);
	ImportOutcome out;

	(void)data;
	open_daemon(f, TRUE);
	g_assert_cmpuint(count_logged(HEALER_MSG_UNSIGNED_ALLOWED, "allow-unsigned is ON"), ==, 1);
	out = import(f, app);
	g_assert_no_error(out.error);
	g_assert_cmpuint(out.added, ==, 1);
	g_assert_cmpuint(count_logged(HEALER_MSG_UNSIGNED_ALLOWED, "sensor.bin"), ==, 1);
}

/* ---- what the engine plans from and makes local ---- */

/* The planning set's entry with this whole-file SHA-256, or NULL. */
static const HealerInventoryEntry *
planned(HealerSupply *supply, const guint8 sha256[HEALER_SHA256_SIZE])
{
	HealerModuleInventory *inventory = healer_supply_get_planning_set(supply)->inventory;

	for (guint i = 0; i < inventory->entries->len; i++) {
		const HealerInventoryEntry *e = g_ptr_array_index(inventory->entries, i);
		if (memcmp(e->sha256, sha256, HEALER_SHA256_SIZE) == 0)
			return e;
	}
	return NULL;
}

static void
add_step(HealerPlan *plan, const HealerInventoryEntry *entry)
{
	HealerPlanStep step = {.entry = entry, .bytes = entry->size};

	g_array_append_val(plan->steps, step);
}

/*
 * A catalog is trusted and one of its modules stored: the planning set holds the stored module
 * and, with an upstream, the listed one the store lacks (its path the upstream URL).  Making a plan
 * local answers per step: ready (stored), fetching (asked of upstream), blocked with the reason
 * (upstream cannot have it; or there is no upstream).
 */
static void
test_make_local(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) json = NULL, sig = NULL;
	g_autoptr(GPtrArray) held = NULL;
	g_autoptr(HealerUpstream) upstream = NULL;
	g_autoptr(HealerPlan) plan = healer_plan_new();
	g_autoptr(GArray) steps = NULL;
	g_autofree char *stored_path = NULL, *stored_sha = NULL, *url = NULL;
	const HealerTrustedCatalog *tc;
	const HealerCatalogModule *stored, *listed;
	const HealerInventoryEntry *stored_entry, *listed_entry;
	HealerInventoryEntry unlisted = {.path = (char *)"unlisted.bin"};
	const HealerSupplyStep *step;

	(void)data;
	f->config->upstream_url = g_strdup("http://127.0.0.1:9/modules");
	open_daemon(f, FALSE);
	make_catalog(f, 1, NULL, &json, &sig);
	g_assert_nonnull(healer_supply_offer_catalog(f->supply, json, sig, "test", &error));
	g_assert_no_error(error);
	held = healer_trust_list_catalogs(f->trust);
	tc = g_ptr_array_index(held, 0);
	g_assert_cmpuint(tc->catalog->modules->len, >=, 2);
	stored = g_ptr_array_index(tc->catalog->modules, 0);
	listed = g_ptr_array_index(tc->catalog->modules, 1);
	stored_path = g_build_filename(f->modules, stored->path, NULL);
	g_assert_true(healer_store_import_file(f->store, stored_path, &stored_sha, &error));
	g_assert_no_error(error);
	memset(unlisted.sha256, 0xab, sizeof(unlisted.sha256));

	/* Without an upstream: the store's module alone is planned with. */
	g_assert_nonnull(planned(f->supply, stored->sha256));
	g_assert_null(planned(f->supply, listed->sha256));

	upstream = healer_upstream_new(f->config, f->supply);
	g_assert_nonnull(upstream);
	healer_supply_set_upstream(f->supply, upstream);
	stored_entry = planned(f->supply, stored->sha256);
	listed_entry = planned(f->supply, listed->sha256);
	g_assert_nonnull(stored_entry);
	g_assert_nonnull(listed_entry);
	url = g_strdup_printf("http://127.0.0.1:9/modules/%s", listed->path);
	g_assert_cmpstr(listed_entry->path, ==, url);
	g_assert_null(planned(f->supply, unlisted.sha256));

	add_step(plan, stored_entry);
	add_step(plan, listed_entry);
	add_step(plan, &unlisted);
	steps = healer_supply_make_local(f->supply, plan);
	g_assert_cmpuint(steps->len, ==, 3);
	step = &g_array_index(steps, HealerSupplyStep, 0);
	g_assert_cmpstr(healer_supply_step_state_to_string(step->state), ==, "ready");
	g_assert_null(step->reason);
	step = &g_array_index(steps, HealerSupplyStep, 1);
	g_assert_cmpstr(healer_supply_step_state_to_string(step->state), ==, "fetching");
	g_assert_null(step->reason);
	g_assert_true(healer_upstream_is_wanted(upstream, listed->sha256));
	step = &g_array_index(steps, HealerSupplyStep, 2);
	g_assert_cmpstr(healer_supply_step_state_to_string(step->state), ==, "blocked");
	g_assert_true(g_str_has_prefix(step->reason, "not listed in any trusted catalog; next try in "));
	g_clear_pointer(&steps, g_array_unref);

	/* No upstream: what the store lacks cannot come, and says so. */
	healer_supply_set_upstream(f->supply, NULL);
	stored_entry = planned(f->supply, stored->sha256);
	g_array_set_size(plan->steps, 0);
	add_step(plan, stored_entry);
	add_step(plan, &unlisted);
	steps = healer_supply_make_local(f->supply, plan);
	g_assert_cmpuint(steps->len, ==, 2);
	step = &g_array_index(steps, HealerSupplyStep, 0);
	g_assert_cmpint(step->state, ==, HEALER_SUPPLY_STEP_READY);
	step = &g_array_index(steps, HealerSupplyStep, 1);
	g_assert_cmpint(step->state, ==, HEALER_SUPPLY_STEP_BLOCKED);
	g_assert_cmpstr(step->reason, ==, "not in the store, and no upstream is configured");
	/* Before the upstream goes: the supply must not reach it after. */
	g_clear_pointer(&upstream, healer_upstream_free);
}

/*
 * A heal keeps the planning set its plan was made from: a module stored meanwhile and the set
 * dropped, the held set still holds what it held (its entries are the plan's steps), and the next
 * one is built afresh with the new module in it.
 */
static void
test_planning_set_held(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) json = NULL, sig = NULL;
	g_autoptr(GPtrArray) held = NULL;
	g_autoptr(HealerPlanningSet) kept = NULL;
	g_autofree char *first_path = NULL, *second_path = NULL;
	const HealerTrustedCatalog *tc;
	const HealerCatalogModule *first, *second;
	const HealerInventoryEntry *entry;
	HealerPlanningSet *now;

	(void)data;
	open_daemon(f, FALSE);
	make_catalog(f, 1, NULL, &json, &sig);
	g_assert_nonnull(healer_supply_offer_catalog(f->supply, json, sig, "test", &error));
	g_assert_no_error(error);
	held = healer_trust_list_catalogs(f->trust);
	tc = g_ptr_array_index(held, 0);
	g_assert_cmpuint(tc->catalog->modules->len, >=, 2);
	first = g_ptr_array_index(tc->catalog->modules, 0);
	second = g_ptr_array_index(tc->catalog->modules, 1);
	first_path = g_build_filename(f->modules, first->path, NULL);
	second_path = g_build_filename(f->modules, second->path, NULL);
	g_assert_true(healer_store_import_file(f->store, first_path, NULL, &error));
	g_assert_no_error(error);

	/* Asked twice without a change: the same set. */
	now = healer_supply_get_planning_set(f->supply);
	g_assert_true(now == healer_supply_get_planning_set(f->supply));
	g_assert_cmpuint(now->inventory->entries->len, ==, 1);
	kept = healer_planning_set_ref(now);
	entry = g_ptr_array_index(kept->inventory->entries, 0);

	g_assert_true(healer_store_import_file(f->store, second_path, NULL, &error));
	g_assert_no_error(error);
	healer_supply_drop_planning_set(f->supply);
	now = healer_supply_get_planning_set(f->supply);
	g_assert_true(now != kept);
	g_assert_cmpuint(now->inventory->entries->len, ==, 2);
	g_assert_nonnull(planned(f->supply, second->sha256));
	/* The held one is as it was, its entry whole. */
	g_assert_cmpuint(kept->inventory->entries->len, ==, 1);
	g_assert_true(g_ptr_array_index(kept->inventory->entries, 0) == entry);
	g_assert_cmpmem(entry->sha256, HEALER_SHA256_SIZE, first->sha256, HEALER_SHA256_SIZE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* Catalogs built in one test with the same serial must be the same bytes, however slow the run. */
	g_setenv("SOURCE_DATE_EPOCH", "1764000000", TRUE);
	logged = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
#define ADD(name, func) g_test_add(name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
	ADD("/supply/untrusted-refused", test_untrusted_refused);
	ADD("/supply/bundle-directory", test_bundle_directory);
	ADD("/supply/bundle-archives", test_bundle_archives);
	ADD("/supply/bundle-faults", test_bundle_faults);
	ADD("/supply/same-serial-other-contents", test_same_serial_other_contents);
	ADD("/supply/catalog-over-limit", test_catalog_over_limit);
	ADD("/supply/module-dir-refused", test_module_dir_refused);
	ADD("/supply/kept-catalogs", test_kept_catalogs);
	ADD("/supply/allow-unsigned", test_allow_unsigned);
	ADD("/supply/make-local", test_make_local);
	ADD("/supply/planning-set-held", test_planning_set_held);
	return g_test_run();
}
