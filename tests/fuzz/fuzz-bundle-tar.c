/*
 * The bundle reader's tar path (healer_bundle_open on an archive,
 * docs/bundles.md) on arbitrary bytes: libarchive's headers, then every
 * check of bundle.c on them (names, types, the limits on names, entries
 * and declared sizes, duplicates), the unsigned catalog and bundle.json
 * read from the archive, the listing check and the staging of modules.
 * Unsigned catalogs are allowed so that inputs reach past the signature
 * into staging (a signature cannot be fuzzed into being).
 *
 * Whatever it accepts must hold only catalog modules, each staged with its
 * catalog size and SHA-256 inside the staging directory; whatever it
 * refuses must say why and leave nothing staged.  Seeds: corpus/bundle-tar/
 * (make-bundle-tar-seeds.c).
 */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz-target.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bundle.h"
#include "healer-loadable.h"

/* Entries in `dir`, not counting "." and "..". */
static guint
count_entries(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	guint n = 0;

	while (d != NULL && g_dir_read_name(d) != NULL)
		n++;
	return n;
}

static void
check_staged(const HealerBundle *bundle)
{
	for (guint i = 0; i < bundle->modules->len; i++) {
		const HealerBundleModule *m = g_ptr_array_index(bundle->modules, i);
		g_autofree char *data = NULL;
		gsize len = 0;
		guint8 digest[HEALER_SHA256_SIZE];

		g_assert(g_ptr_array_find(bundle->catalog->modules, m->module, NULL));
		g_assert(g_str_has_prefix(m->staged_path, bundle->staging_dir));
		g_assert(g_file_get_contents(m->staged_path, &data, &len, NULL));
		g_assert(len == m->module->size);
		healer_sha256((const guint8 *)data, len, digest);
		g_assert(memcmp(digest, m->module->sha256, sizeof(digest)) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *staging = NULL;
	static GPtrArray *no_keys = NULL;
	g_autoptr(HealerBundle) bundle = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *path = NULL;
	int fd;

	if (staging == NULL) {
		/* A critical or warning from the library is a bug: crash so the fuzzer reports it. */
		g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
		/* healer-archive.so from this build tree unless the environment says otherwise. */
		g_setenv(HEALER_MODULE_DIR_ENV, FUZZ_MODULE_DIR, FALSE);
		staging = g_dir_make_tmp("fuzz-bundle-tar-XXXXXX", NULL);
		g_assert(staging != NULL);
		no_keys = g_ptr_array_new();
	}

	/* A file, as healerd reads a bundle, without touching the disk. */
	fd = memfd_create("bundle", MFD_CLOEXEC);
	g_assert(fd >= 0);
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		g_assert(n > 0);
		done += (size_t)n;
	}
	path = g_strdup_printf("/proc/self/fd/%d", fd);

	bundle = healer_bundle_open(path, no_keys, TRUE, staging, &error);
	close(fd);
	if (bundle == NULL) {
		g_assert(error != NULL && error->message[0] != '\0');
		g_assert(count_entries(staging) == 0);
		return 0;
	}
	g_assert(error == NULL);
	g_assert(bundle->catalog != NULL && bundle->modules != NULL);
	check_staged(bundle);
	g_clear_pointer(&bundle, healer_bundle_free);
	g_assert(count_entries(staging) == 0);
	return 0;
}
