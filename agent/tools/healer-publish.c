/*
 * healer-publish: the publisher's side of the signed catalog (docs/catalog.md).
 *
 *   healer-publish keygen --private FILE --public FILE
 *   healer-publish pubkey --key PRIVATE.pem --output PUBLIC.pem
 *   healer-publish catalog --modules DIR --serial N --key PRIVATE.pem [--releases TABLE] --output CATALOG.json
 *   healer-publish verify --catalog FILE --keys DIR [--min-serial N] [--allow-unsigned]
 *
 * catalog writes CATALOG.json and its detached signature CATALOG.json.sig
 * (raw 64 bytes), each atomically; the hidden --stamp FILE (for the build's
 * custom_target) writes an empty FILE after them.  pubkey writes the public
 * key (SubjectPublicKeyInfo PEM, what a gateway's trusted-keys.d holds) of an
 * Ed25519 private key, so a build installs the key its catalog was signed
 * with.  Exit status: 0 done, 1 failed (or the catalog was rejected), 2 usage
 * error.
 */
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "catalog-publish.h"
#include "healer-error.h"
#include "healer-file.h"
#include "release-table.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static int
usage(const char *message)
{
	if (message != NULL)
		g_printerr("healer-publish: %s\n", message);
	g_printerr("usage: healer-publish keygen --private FILE --public FILE\n"
	           "       healer-publish pubkey --key PRIVATE.pem --output PUBLIC.pem\n"
	           "       healer-publish catalog --modules DIR --serial N --key PRIVATE.pem [--releases TABLE]\n"
	           "                              --output CATALOG.json\n"
	           "       healer-publish verify --catalog FILE --keys DIR [--min-serial N] [--allow-unsigned]\n");
	return EXIT_USAGE;
}

static int
failed(const GError *error)
{
	g_printerr("healer-publish: %s\n", error->message);
	return EXIT_FAILED;
}

/* Parses the subcommand's options; FALSE (message printed) on a usage error. */
static gboolean
parse_options(const char *name, const GOptionEntry *entries, int *argc, char ***argv)
{
	g_autoptr(GOptionContext) context = g_option_context_new(NULL);
	g_autoptr(GError) error = NULL;
	g_autofree char *prgname = g_strdup_printf("healer-publish %s", name);

	g_set_prgname(prgname);
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		usage(error->message);
		return FALSE;
	}
	if (*argc > 1) {
		g_autofree char *message = g_strdup_printf("unexpected argument \"%s\"", (*argv)[1]);
		usage(message);
		return FALSE;
	}
	return TRUE;
}

/* The Ed25519 private key at `path`, or NULL after saying why. */
static EVP_PKEY *
load_signing_key(const char *path)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = healer_catalog_load_private_key(path, &error);

	if (key == NULL) {
		failed(error);
		return NULL;
	}
	if (EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
		g_printerr("healer-publish: %s: not an Ed25519 private key\n", path);
		return NULL;
	}
	return g_steal_pointer(&key);
}

static int
cmd_keygen(int argc, char **argv)
{
	g_autofree char *private_path = NULL, *public_path = NULL;
	const GOptionEntry entries[] = {
	        {"private", 0, 0, G_OPTION_ARG_FILENAME, &private_path, "private key file to write (0600)", "FILE"},
	        {"public", 0, 0, G_OPTION_ARG_FILENAME, &public_path, "public key file to write", "FILE"},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GError) error = NULL;

	if (!parse_options("keygen", entries, &argc, &argv))
		return EXIT_USAGE;
	if (private_path == NULL || public_path == NULL)
		return usage("keygen needs --private FILE and --public FILE");
	if (strcmp(private_path, public_path) == 0)
		return usage("--private and --public must be different files");
	if (!healer_catalog_write_key_pair(private_path, public_path, &error))
		return failed(error);
	g_print("wrote private key %s and public key %s\n", private_path, public_path);
	return EXIT_OK;
}

static int
cmd_pubkey(int argc, char **argv)
{
	g_autofree char *key_path = NULL, *output = NULL, *parent = NULL, *id = NULL;
	const GOptionEntry entries[] = {
	        {"key", 0, 0, G_OPTION_ARG_FILENAME, &key_path, "Ed25519 private key (PEM)", "PRIVATE.pem"},
	        {"output", 0, 0, G_OPTION_ARG_FILENAME, &output, "public key file to write", "PUBLIC.pem"},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(GBytes) pem = NULL;
	BIO *bio;
	char *data = NULL;
	long len;

	if (!parse_options("pubkey", entries, &argc, &argv))
		return EXIT_USAGE;
	if (key_path == NULL || output == NULL)
		return usage("pubkey needs --key PRIVATE.pem and --output PUBLIC.pem");
	key = load_signing_key(key_path);
	if (key == NULL)
		return EXIT_FAILED;
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || !PEM_write_bio_PUBKEY(bio, key)) {
		BIO_free(bio);
		g_printerr("healer-publish: %s: cannot write the public key\n", key_path);
		return EXIT_FAILED;
	}
	len = BIO_get_mem_data(bio, &data);
	pem = g_bytes_new(data, (gsize)MAX(len, 0));
	BIO_free(bio);
	parent = g_path_get_dirname(output);
	if (g_mkdir_with_parents(parent, 0755) != 0) {
		g_printerr("healer-publish: %s: cannot create the directory: %s\n", parent, g_strerror(errno));
		return EXIT_FAILED;
	}
	if (!healer_file_write_atomic(output, pem, &error))
		return failed(error);
	id = healer_catalog_key_id(key);
	g_print("wrote public key %s (key id %s)\n", output, id);
	return EXIT_OK;
}

static gboolean
parse_serial(const char *text, const char *option, guint64 *out)
{
	g_autoptr(GError) error = NULL;

	if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, out, &error)) {
		g_autofree char *message = g_strdup_printf("%s: %s", option, error->message);
		usage(message);
		return FALSE;
	}
	return TRUE;
}

static int
cmd_catalog(int argc, char **argv)
{
	g_autofree char *modules = NULL, *serial_text = NULL, *key_path = NULL, *releases_path = NULL;
	g_autofree char *output = NULL, *stamp = NULL, *sig_path = NULL, *parent = NULL;
	const GOptionEntry entries[] = {
	        {"modules", 0, 0, G_OPTION_ARG_FILENAME, &modules, "directory of module files", "DIR"},
	        {"serial", 0, 0, G_OPTION_ARG_STRING, &serial_text, "serial number (higher than the last one)", "N"},
	        {"key", 0, 0, G_OPTION_ARG_FILENAME, &key_path, "Ed25519 private key (PEM)", "PRIVATE.pem"},
	        {"releases", 0, 0, G_OPTION_ARG_FILENAME, &releases_path, "release table", "TABLE"},
	        {"output", 0, 0, G_OPTION_ARG_FILENAME, &output, "catalog to write (and OUTPUT.sig)", "CATALOG.json"},
	        {"stamp", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &stamp, "touched when done (builds)", "FILE"},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerReleaseTable) table = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(GBytes) json = NULL, sig = NULL;
	guint64 serial = 0;

	if (!parse_options("catalog", entries, &argc, &argv))
		return EXIT_USAGE;
	if (modules == NULL || serial_text == NULL || key_path == NULL || output == NULL)
		return usage("catalog needs --modules DIR, --serial N, --key PRIVATE.pem and --output CATALOG.json");
	if (!parse_serial(serial_text, "--serial", &serial))
		return EXIT_USAGE;
	key = load_signing_key(key_path);
	if (key == NULL)
		return EXIT_FAILED;
	if (releases_path != NULL) {
		table = healer_release_table_new_from_file(releases_path, &error);
		if (table == NULL)
			return failed(error);
	}
	{
		g_autofree char *key_id = healer_catalog_key_id(key);
		json = healer_catalog_build_from_directory_for_key(modules, serial, table, key_id, &error);
	}
	if (json == NULL)
		return failed(error);
	sig = healer_catalog_sign(json, key, &error);
	if (sig == NULL)
		return failed(error);
	parent = g_path_get_dirname(output);
	if (g_mkdir_with_parents(parent, 0755) != 0) {
		g_printerr("healer-publish: %s: cannot create the directory: %s\n", parent, g_strerror(errno));
		return EXIT_FAILED;
	}
	/*
	 * The signature first: a reader that sees the new catalog with the old
	 * signature rejects it (and retries), never the reverse mix unnoticed.
	 */
	sig_path = g_strconcat(output, ".sig", NULL);
	if (!healer_file_write_atomic(sig_path, sig, &error) || !healer_file_write_atomic(output, json, &error))
		return failed(error);
	if (stamp != NULL) {
		g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
		if (!healer_file_write_atomic(stamp, empty, &error))
			return failed(error);
	}
	g_print("wrote %s (serial %" G_GUINT64_FORMAT ") and %s\n", output, serial, sig_path);
	return EXIT_OK;
}

static int
cmd_verify(int argc, char **argv)
{
	g_autofree char *catalog_path = NULL, *keys_dir = NULL, *min_text = NULL, *sig_path = NULL;
	gboolean allow_unsigned = FALSE;
	const GOptionEntry entries[] = {
	        {"catalog", 0, 0, G_OPTION_ARG_FILENAME, &catalog_path, "catalog (its signature is FILE.sig)", "FILE"},
	        {"keys", 0, 0, G_OPTION_ARG_FILENAME, &keys_dir, "directory of trusted *.pem public keys", "DIR"},
	        {"min-serial", 0, 0, G_OPTION_ARG_STRING, &min_text, "reject catalogs with a lower serial", "N"},
	        {"allow-unsigned", 0, 0, G_OPTION_ARG_NONE, &allow_unsigned,
	         "accept a catalog without .sig (DEVELOPMENT)", NULL},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) keys = NULL;
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(HealerCatalog) catalog = NULL;
	g_autofree char *json = NULL, *sig = NULL;
	gsize json_len = 0, sig_len = 0;
	guint64 min_serial = 0;

	if (!parse_options("verify", entries, &argc, &argv))
		return EXIT_USAGE;
	if (catalog_path == NULL || keys_dir == NULL)
		return usage("verify needs --catalog FILE and --keys DIR");
	if (min_text != NULL && !parse_serial(min_text, "--min-serial", &min_serial))
		return EXIT_USAGE;
	if (!healer_catalog_load_trusted_keys(keys_dir, &keys, warnings, &error))
		return failed(error);
	for (guint i = 0; i < warnings->len; i++)
		g_printerr("healer-publish: warning: %s\n", (const char *)g_ptr_array_index(warnings, i));
	if (keys->len == 0 && !allow_unsigned) {
		g_printerr("healer-publish: %s: no trusted Ed25519 public keys (*.pem)\n", keys_dir);
		return EXIT_FAILED;
	}
	if (!g_file_get_contents(catalog_path, &json, &json_len, &error))
		return failed(error);
	sig_path = g_strconcat(catalog_path, ".sig", NULL);
	if (!g_file_get_contents(sig_path, &sig, &sig_len, &error)) {
		if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return failed(error);
		g_clear_error(&error);
		g_clear_pointer(&sig, g_free);
	}
	if (allow_unsigned)
		g_printerr("healer-publish: WARNING: --allow-unsigned: an unsigned catalog will be accepted\n");
	catalog = healer_catalog_load_verified((const guint8 *)json, json_len, (const guint8 *)sig, sig_len, keys,
	                                       min_serial, allow_unsigned, &error);
	if (catalog == NULL) {
		g_printerr("healer-publish: %s: %s\n", catalog_path, error->message);
		return EXIT_FAILED;
	}
	g_print("%s: %s, serial %" G_GUINT64_FORMAT ", created %s, %u modules, %u releases\n", catalog_path,
	        sig != NULL ? "signature good" : "UNSIGNED", catalog->serial, catalog->created, catalog->modules->len,
	        catalog->releases->len);
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage(NULL);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(NULL);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (strcmp(argv[1], "pubkey") == 0)
		return cmd_pubkey(argc - 1, argv + 1);
	if (strcmp(argv[1], "catalog") == 0)
		return cmd_catalog(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	{
		g_autofree char *message = g_strdup_printf("unknown command \"%s\"", argv[1]);
		return usage(message);
	}
}
