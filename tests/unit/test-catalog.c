/*
 * The signed catalog (agent/lib/catalog.c, docs/catalog.md): build, sign and
 * verify the firmware build's modules; every way a catalog is refused; the
 * trusted-keys directory; the build's development-signed catalog; and
 * healer-publish's commands and exit codes.
 */
#include <string.h>

#include <glib/gstdio.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "catalog-publish.h"
#include "catalog.h"
#include "healer-error.h"
#include "test-util.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

typedef struct {
	char *dir;
	char *private_path;
	GPtrArray *keys; /* EVP_PKEY*: the one trusted public key */
	EVP_PKEY *private_key;
	GBytes *json;
	GBytes *sig;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *keys_dir = NULL, *public_path = NULL;
	g_autoptr(HealerReleaseTable) table = NULL;

	(void)data;
	f->dir = test_tmpdir_new();
	keys_dir = g_build_filename(f->dir, "trusted", NULL);
	g_assert_cmpint(g_mkdir(keys_dir, 0755), ==, 0);
	f->private_path = g_build_filename(f->dir, "publisher.pem", NULL);
	public_path = g_build_filename(keys_dir, "publisher.pem", NULL);
	g_assert_true(healer_catalog_write_key_pair(f->private_path, public_path, &error));
	g_assert_no_error(error);
	g_assert_true(healer_catalog_load_trusted_keys(keys_dir, &f->keys, warnings, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(f->keys->len, ==, 1);
	g_assert_cmpuint(warnings->len, ==, 0);
	f->private_key = healer_catalog_load_private_key(f->private_path, &error);
	g_assert_no_error(error);

	table = healer_release_table_new_from_file(g_getenv("HEALER_RELEASE_TABLE"), &error);
	g_assert_no_error(error);
	f->json = healer_catalog_build_from_directory(g_getenv("HEALER_FIRMWARE_MODULES"), 7, table, &error);
	g_assert_no_error(error);
	f->sig = healer_catalog_sign(f->json, f->private_key, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(f->sig), ==, HEALER_CATALOG_SIGNATURE_SIZE);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	g_bytes_unref(f->json);
	g_bytes_unref(f->sig);
	EVP_PKEY_free(f->private_key);
	g_ptr_array_unref(f->keys);
	g_free(f->private_path);
	test_tmpdir_free(f->dir);
}

static HealerCatalog *
load(GBytes *json, GBytes *sig, GPtrArray *keys, guint64 min_serial, gboolean allow_unsigned, GError **error)
{
	gsize len = 0, sig_len = 0;
	const guint8 *data = g_bytes_get_data(json, &len);
	const guint8 *sig_data = sig != NULL ? g_bytes_get_data(sig, &sig_len) : NULL;

	return healer_catalog_load_verified(data, len, sig_data, sig_len, keys, min_serial, allow_unsigned, error);
}

static void
expect_rejected(HealerCatalog *catalog, GError *error, const char *message)
{
	g_assert_null(catalog);
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
	if (strstr(error->message, message) == NULL)
		g_error("expected '%s' in '%s'", message, error->message);
}

/* Every module names its file, whose size and SHA-256 match; the releases are the table's. */
static void
test_round_trip(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerCatalog) catalog = load(f->json, f->sig, f->keys, 7, FALSE, &error);
	const char *modules_dir = g_getenv("HEALER_FIRMWARE_MODULES");
	gboolean found_100 = FALSE;

	(void)data;
	g_assert_no_error(error);
	g_assert_nonnull(catalog);
	g_assert_cmpuint(catalog->serial, ==, 7);
	g_assert_true(g_str_has_suffix(catalog->created, "Z"));
	g_assert_cmpuint(catalog->modules->len, >=, 15);
	for (guint i = 0; i < catalog->modules->len; i++) {
		const HealerCatalogModule *module = g_ptr_array_index(catalog->modules, i);
		g_autofree char *path = g_build_filename(modules_dir, module->path, NULL);
		g_autoptr(GBytes) contents = test_read_file(path);
		guint8 digest[HEALER_SHA256_SIZE];

		g_assert_cmpuint(g_bytes_get_size(contents), ==, module->size);
		healer_sha256(g_bytes_get_data(contents, NULL), g_bytes_get_size(contents), digest);
		g_assert_cmpmem(digest, sizeof(digest), module->sha256, sizeof(module->sha256));
		if (g_strcmp0(module->path, "1.0.0/system-part1.bin") == 0) {
			g_assert_cmpstr(module->release, ==, "1.0.0");
			g_assert_false(module->prerelease);
			g_assert_cmpuint(module->index, ==, 1);
			found_100 = TRUE;
		}
	}
	g_assert_true(found_100);
	g_assert_cmpuint(catalog->releases->len, >=, 5);
	for (guint i = 0; i < catalog->releases->len; i++) {
		const HealerCatalogRelease *release = g_ptr_array_index(catalog->releases, i);
		g_assert_cmpuint(release->modules->len, >=, 3);
	}
}

static void
test_unsigned(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerCatalog) catalog = load(f->json, NULL, f->keys, 0, FALSE, &error);
	g_autoptr(HealerCatalog) allowed = NULL;

	(void)data;
	expect_rejected(catalog, error, "catalog is unsigned");
	g_clear_error(&error);
	/* The development switch: accepted, and still parsed and serial-checked. */
	allowed = load(f->json, NULL, f->keys, 0, TRUE, &error);
	g_assert_no_error(error);
	g_assert_nonnull(allowed);
	g_assert_null(load(f->json, NULL, NULL, 8, TRUE, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
}

static void
test_unknown_key(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) other = healer_catalog_generate_key(&error);
	g_autoptr(GPtrArray) other_keys = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	g_autoptr(GPtrArray) no_keys = g_ptr_array_new();
	g_autoptr(GBytes) other_sig = NULL;
	HealerCatalog *catalog;

	(void)data;
	g_assert_no_error(error);
	/* Signed by a key nobody trusts. */
	other_sig = healer_catalog_sign(f->json, other, &error);
	g_assert_no_error(error);
	catalog = load(f->json, other_sig, f->keys, 0, FALSE, &error);
	expect_rejected(catalog, error, "signed by an unknown key");
	g_clear_error(&error);
	/* Our signature, but the trusted key is another one. */
	g_ptr_array_add(other_keys, g_steal_pointer(&other));
	catalog = load(f->json, f->sig, other_keys, 0, FALSE, &error);
	expect_rejected(catalog, error, "signed by an unknown key");
	g_clear_error(&error);
	catalog = load(f->json, f->sig, no_keys, 0, FALSE, &error);
	expect_rejected(catalog, error, "signed by an unknown key");
	g_clear_error(&error);
	/* allow_unsigned does not let a bad signature through. */
	catalog = load(f->json, other_sig, f->keys, 0, TRUE, &error);
	expect_rejected(catalog, error, "signed by an unknown key");
}

static void
test_tampered(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	const guint8 *orig = g_bytes_get_data(f->json, &len);
	g_autofree guint8 *copy = g_memdup2(orig, len);
	g_autofree guint8 *sig = g_memdup2(g_bytes_get_data(f->sig, NULL), HEALER_CATALOG_SIGNATURE_SIZE);
	const char *serial = g_strstr_len((const char *)copy, (gssize)len, "\"serial\": 7");
	HealerCatalog *catalog;

	(void)data;
	g_assert_nonnull(serial);
	/* One byte of the catalog: a higher serial. */
	copy[serial - (const char *)copy + 10] = '9';
	catalog =
	        healer_catalog_load_verified(copy, len, sig, HEALER_CATALOG_SIGNATURE_SIZE, f->keys, 0, FALSE, &error);
	expect_rejected(catalog, error, "signed by an unknown key");
	g_clear_error(&error);
	/* A byte appended (whitespace, still the same JSON). */
	{
		g_autofree guint8 *longer = g_malloc(len + 1);
		memcpy(longer, orig, len);
		longer[len] = ' ';
		catalog = healer_catalog_load_verified(longer, len + 1, sig, HEALER_CATALOG_SIGNATURE_SIZE, f->keys, 0,
		                                       FALSE, &error);
		expect_rejected(catalog, error, "signed by an unknown key");
		g_clear_error(&error);
	}
	/* One bit of the signature. */
	sig[20] ^= 0x01;
	catalog =
	        healer_catalog_load_verified(orig, len, sig, HEALER_CATALOG_SIGNATURE_SIZE, f->keys, 0, FALSE, &error);
	expect_rejected(catalog, error, "signed by an unknown key");
	g_clear_error(&error);
	/* A truncated signature. */
	catalog = healer_catalog_load_verified(orig, len, sig, 63, f->keys, 0, FALSE, &error);
	expect_rejected(catalog, error, "63 bytes");
}

static void
test_lower_serial(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	HealerCatalog *catalog = load(f->json, f->sig, f->keys, 8, FALSE, &error);

	(void)data;
	expect_rejected(catalog, error, "older than the last accepted catalog: serial 7 < 8");
}

/* A catalog with one module, path and release as given. */
static char *
small_catalog(const char *serial, const char *path, const char *release_modules)
{
	return g_strdup_printf(
	        "{\"format\": \"healer-catalog\", \"format_version\": 1, \"serial\": %s, "
	        "\"created\": \"2026-01-31T12:00:00Z\", \"modules\": [{\"platform_id\": 3, "
	        "\"function\": \"system-part\", \"index\": 1, \"version\": 1000, \"release\": null, "
	        "\"prerelease\": false, \"size\": 10, \"sha256\": \"" SHA_A "\", \"module_sha256\": \"" SHA_A
	        "\", \"dependencies\": [{\"function\": \"system-part\", \"index\": 2, \"version\": 900}], "
	        "\"path\": \"%s\"}], "
	        "\"releases\": [{\"name\": \"1.0.0\", \"modules\": [%s]}]}",
	        serial, path, release_modules);
}

static void
expect_parse_error(const char *json, const char *message)
{
	g_autoptr(GError) error = NULL;
	HealerCatalog *catalog =
	        healer_catalog_load_verified((const guint8 *)json, strlen(json), NULL, 0, NULL, 0, TRUE, &error);

	if (catalog != NULL)
		g_error("accepted, expected '%s': %s", message, json);
	expect_rejected(catalog, error, message);
}

static void
expect_path_error(const char *path, const char *message)
{
	g_autofree char *json = small_catalog("1", path, "\"" SHA_A "\"");

	expect_parse_error(json, message);
}

static void
test_malformed(void)
{
	g_autofree char *good = small_catalog("18446744073709551615", "1.0.0/system-part1.bin", "\"" SHA_A "\"");
	g_autofree char *unknown_sha = small_catalog("1", "a.bin", "\"" SHA_A "\", \"bb\"");
	g_autofree char *absent_sha =
	        small_catalog("1", "a.bin", "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"");
	g_autofree char *negative = small_catalog("-1", "a.bin", "");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerCatalog) catalog =
	        healer_catalog_load_verified((const guint8 *)good, strlen(good), NULL, 0, NULL, 0, TRUE, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(catalog->serial, ==, G_MAXUINT64);
	g_assert_cmpuint(catalog->modules->len, ==, 1);
	g_assert_null(((HealerCatalogModule *)g_ptr_array_index(catalog->modules, 0))->release);
	{
		const HealerCatalogModule *m = g_ptr_array_index(catalog->modules, 0);
		g_autoptr(HealerInventoryEntry) entry = healer_catalog_module_to_inventory_entry(m, "/base");
		const HealerModuleDependency *dep = &g_array_index(entry->dependencies, HealerModuleDependency, 0);

		g_assert_cmpuint(m->dependencies->len, ==, 1);
		g_assert_cmpstr(entry->path, ==, "/base/1.0.0/system-part1.bin");
		g_assert_cmpuint(entry->dependencies->len, ==, 1);
		g_assert_cmpuint(dep->function, ==, MODULE_FUNCTION_SYSTEM_PART);
		g_assert_cmpuint(dep->index, ==, 2);
		g_assert_cmpuint(dep->version, ==, 900);
		g_assert_true(healer_catalog_find(catalog, m->sha256) == m);
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "\"version\": 900");
		memcpy(p + 11, "\"9\"", 3);
		expect_parse_error(s, "modules[0].dependencies[0].version: expected an integer 0..65535");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "\"function\": \"system-part\", \"index\": 2");
		memcpy(p + 13, "nonsense-xx", 11);
		expect_parse_error(s, "modules[0].dependencies[0].function: unknown module function");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "\"module_sha256\": \"");
		p[18] = 'A';
		expect_parse_error(s, "modules[0].module_sha256: expected 64 lowercase hex digits");
	}

	expect_parse_error("{\"format\": \"healer-catalog\",", "not valid JSON");
	expect_parse_error("{} {}", "trailing data");
	expect_parse_error("[]", "top level: expected an object");
	expect_parse_error("{\"format\": \"healer-release-table\"}", "format: expected \"healer-catalog\"");
	expect_parse_error("{\"format\": \"healer-catalog\", \"format_version\": 2}", "format_version: expected 1");
	expect_parse_error(unknown_sha, "releases[0] (1.0.0).modules[1]: expected 64 lowercase hex digits");
	expect_parse_error(absent_sha, "releases[0] (1.0.0).modules[0]: bbbb");
	expect_parse_error(negative, "serial: -1 is not a non-negative integer");
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "\"index\": 1");
		p[9] = 'x';
		expect_parse_error(s, "not valid JSON");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "\"version\": 1000");
		memcpy(p + 11, "\"10\"", 4);
		expect_parse_error(s, "modules[0].version: expected an integer 0..65535");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "system-part\"");
		memcpy(p, "system-pary", 11);
		expect_parse_error(s, "modules[0].function: unknown module function \"system-pary\"");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, SHA_A);
		p[3] = 'A';
		expect_parse_error(s, "modules[0].sha256: expected 64 lowercase hex digits");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "\"prerelease\"");
		memcpy(p, "\"prereleasf\"", 12);
		expect_parse_error(s, "modules[0]: unknown key \"prereleasf\"");
	}
	{
		g_autofree char *s = g_strdup(good);
		char *p = strstr(s, "2026-01-31T12:00:00Z");
		p[19] = ' ';
		expect_parse_error(s, "created: \"2026-01-31T12:00:00 \" is not an ISO-8601 UTC time");
	}
	expect_path_error("../x", "modules[0].path: \"../x\" has a '..' component");
	expect_path_error("a/../../x", "has a '..' component");
	expect_path_error("/etc/passwd", "modules[0].path: \"/etc/passwd\" is absolute");
	expect_path_error("", "modules[0].path: \"\" is empty");
	expect_path_error("a//b", "has an empty component");
	expect_path_error("a/./b", "has a '.' component");
	expect_path_error("a\\\\b", "contains a backslash");
	expect_path_error("a\\u0000b", "modules[0].path: expected a string without NUL characters");
}

/* `text` with the first `find` replaced by `replace` (which must be there). */
static char *
replace_once(const char *text, const char *find, const char *replace)
{
	const char *at = strstr(text, find);

	if (at == NULL)
		g_error("'%s' not in %s", find, text);
	return g_strdup_printf("%.*s%s%s", (int)(at - text), text, replace, at + strlen(find));
}

#define DEP "{\"function\": \"system-part\", \"index\": 2, \"version\": 900}"

/*
 * Every field a catalog file can get wrong, one fault at a time in an otherwise good catalog: each is
 * INVALID_DATA naming the field (the catalog a user publishes or a gateway fetches is read here).
 */
static void
test_malformed_fields(void)
{
	g_autofree char *good = small_catalog("1", "1.0.0/system-part1.bin", "\"" SHA_A "\"");
	g_autoptr(GString) many_deps = g_string_new("\"dependencies\": [");
	static const char module_end[] = "\"path\": \"1.0.0/system-part1.bin\"}";
	const struct {
		const char *find, *replace, *message;
	} cases[] = {
	        {"\"dependencies\": [" DEP "]", "\"dependencies\": {}", "modules[0].dependencies: expected an array"},
	        {"\"dependencies\": [" DEP "]", "\"dependencies\": [5]",
	         "modules[0].dependencies[0]: expected an object"},
	        {DEP, "{\"function\": 7, \"index\": 2, \"version\": 900}",
	         "modules[0].dependencies[0].function: expected a string"},
	        {DEP, "{\"function\": \"system-part\", \"index\": 256, \"version\": 900}",
	         "modules[0].dependencies[0].index: 256 is outside 0..255"},
	        {"\"dependencies\": [" DEP "], ", "",
	         "modules[0].dependencies: missing (an array, empty when the module has none)"},
	        {"\"platform_id\": 3", "\"platform_id\": 65536", "modules[0].platform_id: 65536 is outside 0..65535"},
	        {"\"function\": \"system-part\", \"index\": 1", "\"function\": 3, \"index\": 1",
	         "modules[0].function: expected a string"},
	        {"\"index\": 1,", "\"index\": 256,", "modules[0].index: 256 is outside 0..255"},
	        {"\"release\": null, ", "", "modules[0].release: missing (expected a string or null)"},
	        {"\"release\": null", "\"release\": \"\"", "modules[0].release: expected a non-empty string or null"},
	        {"\"prerelease\": false", "\"prerelease\": 0", "modules[0].prerelease: expected a boolean"},
	        {"\"size\": 10", "\"size\": -10", "modules[0].size: -10 is not a non-negative integer"},
	        {"\"modules\": [{\"platform_id\"", "\"modules\": [5, {\"platform_id\"",
	         "modules[0]: expected an object"},
	        {"\"created\": \"2026-01-31T12:00:00Z\", ", "", "created: missing (expected a string)"},
	        {"\"created\"", "\"key_id\": \"ABCDEF0123456789\", \"created\"",
	         "key_id: expected 16 lowercase hex digits (a key id)"},
	        {"\"releases\": [{\"name\": \"1.0.0\", \"modules\": [\"" SHA_A "\"]}]", "\"releases\": 5",
	         "releases: expected an array"},
	        {"\"releases\": [{", "\"releases\": [5, {", "releases[0]: expected an object"},
	        {"{\"name\": \"1.0.0\", ", "{", "releases[0].name: missing (expected a string)"},
	        {"\"name\": \"1.0.0\"", "\"name\": \"one\"", "releases[0].name: \"one\" is not a semantic version"},
	        {"\"modules\": [\"" SHA_A "\"]", "\"modules\": \"" SHA_A "\"",
	         "releases[0] (1.0.0).modules: expected an array"},
	        {"\"modules\": [\"" SHA_A "\"]", "\"modules\": [\"" SHA_A "\", \"" SHA_A "\"]",
	         "releases[0] (1.0.0).modules[1]: " SHA_A " is listed twice"},
	        {"{\"name\": \"1.0.0\", \"modules\": [\"" SHA_A "\"]}",
	         "{\"name\": \"1.0.0\", \"modules\": []}, {\"name\": \"1.0.0\", \"modules\": []}",
	         "releases[1].name: \"1.0.0\" is listed twice"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *json = replace_once(good, cases[i].find, cases[i].replace);
		expect_parse_error(json, cases[i].message);
	}

	/* The root's "modules" not an array: the unknown key check comes first, so the array goes whole. */
	{
		const char *start = strstr(good, "\"modules\": [{");
		const char *end = strstr(good, module_end) + strlen(module_end) + 1;
		g_autofree char *json = g_strdup_printf("%.*s\"modules\": 5%s", (int)(start - good), good, end);
		expect_parse_error(json, "modules: expected an array");
	}
	/* The same module path twice. */
	{
		const char *start = strstr(good, "{\"platform_id\"");
		const char *end = strstr(good, module_end) + strlen(module_end);
		g_autofree char *module = g_strndup(start, (gsize)(end - start));
		g_autofree char *twice = g_strdup_printf("%s, %s", module, module);
		g_autofree char *json = replace_once(good, module, twice);
		expect_parse_error(json, "modules[1].path: \"1.0.0/system-part1.bin\" is listed twice");
	}
	/* More dependencies than a module can declare. */
	for (guint i = 0; i <= HEALER_CATALOG_MAX_DEPENDENCIES; i++)
		g_string_append_printf(many_deps, "%s" DEP, i ? ", " : "");
	g_string_append(many_deps, "]");
	{
		g_autofree char *json = replace_once(good, "\"dependencies\": [" DEP "]", many_deps->str);
		expect_parse_error(json, "modules[0].dependencies: more than 16");
	}
	/* A NUL byte inside, where a C string would end: the whole length is read, and refused. */
	{
		g_autoptr(GError) error = NULL;
		gsize len = strlen(good);
		g_autofree char *copy = g_strdup(good);
		HealerCatalog *catalog;

		copy[len - 2] = '\0';
		catalog = healer_catalog_load_verified((const guint8 *)copy, len, NULL, 0, NULL, 0, TRUE, &error);
		expect_rejected(catalog, error, "not valid JSON: contains a NUL byte");
	}
}

static void
write_public_pem(const char *path, EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	g_assert_cmpint(PEM_write_bio_PUBKEY(bio, key), ==, 1);
	len = BIO_get_mem_data(bio, &data);
	test_write_file(path, (const guint8 *)data, (gsize)len);
	BIO_free(bio);
}

/* RSA and EC keys, garbage and non-*.pem files in the trusted-keys directory: warned about and skipped. */
static void
test_trusted_keys_dir(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *rsa_path = g_build_filename(dir, "a-rsa.pem", NULL);
	g_autofree char *ec_path = g_build_filename(dir, "b-ec.pem", NULL);
	g_autofree char *junk_path = g_build_filename(dir, "c-junk.pem", NULL);
	g_autofree char *ed_path = g_build_filename(dir, "d-ed25519.pem", NULL);
	g_autofree char *ed_private = g_build_filename(dir, "d-ed25519.key", NULL);
	g_autofree char *readme = g_build_filename(dir, "README", NULL);
	g_autofree char *missing = g_build_filename(dir, "no-such-dir", NULL);
	g_autoptr(EVP_PKEY) rsa = EVP_RSA_gen(2048);
	g_autoptr(EVP_PKEY) ec = EVP_EC_gen("P-256");
	g_autoptr(GPtrArray) keys = NULL;
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GError) error = NULL;

	g_assert_nonnull(rsa);
	g_assert_nonnull(ec);
	write_public_pem(rsa_path, rsa);
	write_public_pem(ec_path, ec);
	test_write_file(junk_path, (const guint8 *)"not a key\n", 10);
	test_write_file(readme, (const guint8 *)"keys\n", 5);
	g_assert_true(healer_catalog_write_key_pair(ed_private, ed_path, &error));
	g_assert_no_error(error);

	g_assert_true(healer_catalog_load_trusted_keys(dir, &keys, warnings, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(keys->len, ==, 1);
	g_assert_cmpint(EVP_PKEY_id(g_ptr_array_index(keys, 0)), ==, EVP_PKEY_ED25519);
	g_assert_cmpuint(warnings->len, ==, 3);
	g_assert_nonnull(strstr(g_ptr_array_index(warnings, 0), "a-rsa.pem: not an Ed25519 key (RSA), skipped"));
	g_assert_nonnull(strstr(g_ptr_array_index(warnings, 1), "b-ec.pem: not an Ed25519 key"));
	g_assert_nonnull(strstr(g_ptr_array_index(warnings, 2), "c-junk.pem: not a PEM public key"));
	g_clear_pointer(&keys, g_ptr_array_unref);

	g_assert_false(healer_catalog_load_trusted_keys(missing, &keys, NULL, &error));
	g_assert_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* The firmware build's catalog verifies with the development public key, and lies in the modules directory. */
static void
test_build_catalog(void)
{
	g_autofree char *modules = g_strdup(g_getenv("HEALER_FIRMWARE_MODULES"));
	g_autofree char *json_path = g_build_filename(modules, "catalog.json", NULL);
	g_autofree char *sig_path = g_build_filename(modules, "catalog.json.sig", NULL);
	g_autofree char *pub_path = g_build_filename(g_getenv("HEALER_SOURCE_DIR"), "device-firmware", "keys",
	                                             "development-DO-NOT-USE-IN-PRODUCTION.pub.pem", NULL);
	g_autoptr(GBytes) json = test_read_file(json_path);
	g_autoptr(GBytes) sig = test_read_file(sig_path);
	g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func((GDestroyNotify)EVP_PKEY_free);
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerCatalog) catalog = NULL;
	EVP_PKEY *key = healer_catalog_load_public_key(pub_path, &error);

	g_assert_no_error(error);
	g_ptr_array_add(keys, key);
	catalog = load(json, sig, keys, 1, FALSE, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(catalog->serial, ==, 1);
	g_assert_cmpuint(catalog->modules->len, >=, 15);
	g_assert_cmpuint(catalog->releases->len, >=, 5);

	/* A publisher's directory with files that are not modules: no catalog, the first named, the rest counted. */
	{
		char *dir = test_tmpdir_new();
		g_autofree char *a = g_build_filename(dir, "a.bin", NULL);
		g_autofree char *b = g_build_filename(dir, "b.bin", NULL);
		g_autofree char *c = g_build_filename(dir, "c.bin", NULL);
		g_autoptr(GBytes) built = NULL;

		test_write_file(a, (const guint8 *)"not a module", 12);
		test_write_file(b, (const guint8 *)"", 0);
		test_write_file(c, (const guint8 *)"nor this", 8);
		built = healer_catalog_build_from_directory(dir, 1, NULL, &error);
		g_assert_null(built);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA);
		if (!g_str_has_prefix(error->message, a) || !g_str_has_suffix(error->message, " (and 2 more problems)"))
			g_error("expected '%s: ... (and 2 more problems)', got '%s'", a, error->message);
		test_tmpdir_free(dir);
	}
}

static void
run_publish(TestRun *run, int expected_status, const char *expected_err, const char *const *argv)
{
	test_run(run, argv);
	if (run->exit_status != expected_status || (expected_err != NULL && strstr(run->err, expected_err) == NULL))
		g_error("%s %s: exit %d (expected %d), stderr: %s", argv[0], argv[1], run->exit_status, expected_status,
		        run->err);
}

static void
test_publish_cli(void)
{
	const char *publish = test_program("HEALER_PUBLISH");
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *keys = g_build_filename(dir, "keys", NULL);
	g_autofree char *other_keys = g_build_filename(dir, "other-keys", NULL);
	g_autofree char *private_path = g_build_filename(dir, "publisher.key", NULL);
	g_autofree char *public_path = g_build_filename(keys, "publisher.pem", NULL);
	g_autofree char *other_private = g_build_filename(dir, "other.key", NULL);
	g_autofree char *other_public = g_build_filename(other_keys, "other.pem", NULL);
	g_autofree char *output = g_build_filename(dir, "out", "catalog.json", NULL);
	g_autofree char *sig_path = g_strconcat(output, ".sig", NULL);
	const char *modules = g_getenv("HEALER_FIRMWARE_MODULES");
	const char *releases = g_getenv("HEALER_RELEASE_TABLE");
	GStatBuf st;

	g_assert_cmpint(g_mkdir(keys, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(other_keys, 0755), ==, 0);
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "keygen", "--private", private_path, "--public", public_path, NULL};
		run_publish(&run, 0, NULL, argv);
		g_assert_cmpint(g_stat(private_path, &st), ==, 0);
		g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "keygen", "--private", other_private, "--public", other_public, NULL};
		run_publish(&run, 0, NULL, argv);
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish,      "catalog",    "--modules", modules,    "--serial", "3", "--key",
		                      private_path, "--releases", releases,    "--output", output,     NULL};
		run_publish(&run, 0, NULL, argv);
		g_assert_true(g_file_test(sig_path, G_FILE_TEST_IS_REGULAR));
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "verify",       "--catalog", output, "--keys",
		                      keys,    "--min-serial", "3",         NULL};
		run_publish(&run, 0, NULL, argv);
		g_assert_nonnull(strstr(run.out, "signature good, serial 3"));
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "verify",       "--catalog", output, "--keys",
		                      keys,    "--min-serial", "4",         NULL};
		run_publish(&run, 1, "serial 3 < 4", argv);
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "verify", "--catalog", output, "--keys", other_keys, NULL};
		run_publish(&run, 1, "signed by an unknown key", argv);
	}
	g_assert_cmpint(g_unlink(sig_path), ==, 0);
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "verify", "--catalog", output, "--keys", keys, NULL};
		run_publish(&run, 1, "catalog is unsigned", argv);
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "verify", "--catalog", output, "--keys", keys, "--allow-unsigned", NULL};
		run_publish(&run, 0, "WARNING", argv);
		g_assert_nonnull(strstr(run.out, "UNSIGNED"));
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "catalog",    "--modules", modules, "--serial", "x",
		                      "--key", private_path, "--output",  output,  NULL};
		run_publish(&run, 2, "--serial", argv);
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "sign", NULL};
		run_publish(&run, 2, "unknown command \"sign\"", argv);
	}
	{
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "verify", "--catalog", output, NULL};
		run_publish(&run, 2, "needs --catalog FILE and --keys DIR", argv);
	}
	{
		/* A public key is not a signing key. */
		g_auto(TestRun) run = {0};
		const char *argv[] = {publish, "catalog",   "--modules", modules, "--serial", "1",
		                      "--key", public_path, "--output",  output,  NULL};
		run_publish(&run, 1, "not a PEM private key", argv);
	}
	test_tmpdir_free(g_steal_pointer(&dir));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/catalog/round-trip", Fixture, NULL, fixture_set_up, test_round_trip, fixture_tear_down);
	g_test_add("/catalog/unsigned", Fixture, NULL, fixture_set_up, test_unsigned, fixture_tear_down);
	g_test_add("/catalog/unknown-key", Fixture, NULL, fixture_set_up, test_unknown_key, fixture_tear_down);
	g_test_add("/catalog/tampered", Fixture, NULL, fixture_set_up, test_tampered, fixture_tear_down);
	g_test_add("/catalog/lower-serial", Fixture, NULL, fixture_set_up, test_lower_serial, fixture_tear_down);
	g_test_add_func("/catalog/malformed", test_malformed);
	g_test_add_func("/catalog/malformed-fields", test_malformed_fields);
	g_test_add_func("/catalog/trusted-keys-dir", test_trusted_keys_dir);
	g_test_add_func("/catalog/build-catalog", test_build_catalog);
	g_test_add_func("/catalog/publish-cli", test_publish_cli);
	return g_test_run();
}
