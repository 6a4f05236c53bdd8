/*
 * What a D-Bus caller must never do to healerd (issue 13, findings 3 and 4; docs/security.md):
 *
 * - /security/callers/descriptors: a member of group healer hands ImportFd an O_PATH descriptor
 *   of a root mode-600 file and a write-only descriptor of a file it cannot read; asks
 *   ImportModules for that file by path; hands it a directory descriptor.  Each is refused with
 *   a message naming the cause, and healerd never obtains a descriptor on those files (neither by
 *   their path nor by reopening /proc/self/fd).  A name with control characters comes back
 *   escaped, and an overlong one cut.
 * - /security/callers/import-directory-as-member: `healerctl import DIR` by that member reads the
 *   directory itself: a plain directory file by file (a file it cannot read is named, and healerd
 *   never opens it), a directory bundle packed as a tar archive and imported whole.
 * - /security/callers/flash-fifo: FlashApp of a FIFO (and FlashAppFd of one) is refused at once,
 *   naming the path and what it is, while `healerctl status` keeps answering.
 * - /security/callers/import-tree: ImportModules of 20,000 small files in nested directories (and
 *   FIFOs, a directory nested too deep) is walked in a worker: status answers within 1 s
 *   throughout, one summary record and no record per file, a bounded reply, RSS back to baseline.
 *
 * Every test also asserts the harness's checks (attack-harness.h).  The member of group healer is
 * a real user (healerd asks the group database): the test creates group healer and user
 * healer-member when they are missing, so it must run as root, as the CI does.
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack-harness.h"
#include "healer-error.h"

#define MEMBER        "healer-member"
#define MEMBER_GROUP  "nogroup"
#define TREE_DIRS     20 /* TREE_DIRS x TREE_DIRS directories ... */
#define TREE_FILES    50 /* ... of TREE_FILES files each: 20,000 */
#define TREE_FIFOS    3
#define SLOW_CALL_MS  (120 * 1000)
#define SETTLE_MS     10000
#define DEVICE_WAIT_S 60

/* ---- a member of group healer -------------------------------------------- */

static void
run_or_fail(const char *const *argv)
{
	g_auto(TestRun) run = {0};
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_assert_true(g_spawn_sync("/", (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &run.out, &run.err,
	                           &status, &error));
	g_assert_no_error(error);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		g_error("%s failed: %s", argv[0], run.err);
}

/* Group healer and a user in it (and in no other group that matters), created when missing. */
static void
ensure_member(void)
{
	/* healerd checks the caller's groups in the group database: only a real user can be a member. */
	g_assert_cmpuint(getuid(), ==, 0);
	if (system("getent group healer >/dev/null") != 0) {
		const char *argv[] = {"groupadd", "--system", "healer", NULL};
		run_or_fail(argv);
	}
	if (system("getent passwd " MEMBER " >/dev/null") != 0) {
		const char *argv[] = {
		        "useradd",  "--system", "--no-create-home", "--no-user-group",   "--gid", MEMBER_GROUP,
		        "--groups", "healer",   "--shell",          "/usr/sbin/nologin", MEMBER,  NULL};
		run_or_fail(argv);
	}
	g_assert_cmpint(system("id -nG " MEMBER " | grep -qw healer"), ==, 0);
}

/* ARGS... run as the member of group healer (its own groups only). */
static void
as_member(TestRun *run, const char *first, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GString) what = g_string_new("(" MEMBER ")");
	g_autoptr(GError) error = NULL;
	int status = 0;
	va_list ap;

	g_ptr_array_add(argv, (gpointer) "setpriv");
	g_ptr_array_add(argv, (gpointer) "--reuid=" MEMBER);
	g_ptr_array_add(argv, (gpointer) "--regid=" MEMBER_GROUP);
	g_ptr_array_add(argv, (gpointer) "--init-groups");
	va_start(ap, first);
	for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
		g_ptr_array_add(argv, (gpointer)a);
		g_string_append_printf(what, " %s", a);
	}
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	g_assert_true(g_spawn_sync("/", (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &run->out,
	                           &run->err, &status, &error));
	g_assert_no_error(error);
	run->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	log_run(run, what->str);
}

static void
assert_contains(const char *text, const char *part)
{
	if (text == NULL || strstr(text, part) == NULL)
		g_error("expected \"%s\" in:\n%s", part, text ? text : "(nothing)");
}

/*
 * healerd never held a descriptor on `path`: strace -y decorates every descriptor an open returns
 * with the file it is on, so this also catches a reopen through /proc/self/fd/N, which the
 * harness's check by name does not see.
 */
static void
assert_never_reopened(Attack *a, const char *path)
{
	g_autofree char *text = NULL;
	g_autofree char *decorated = g_strdup_printf("</%s>", path + 1);
	g_auto(GStrv) lines = NULL;

	g_assert_true(g_file_get_contents(a->opens_log, &text, NULL, NULL));
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		const char *result = strstr(lines[i], ") = ");
		if (result != NULL && strstr(result, decorated) != NULL)
			g_error("healerd opened %s, which the caller could not read: %s", path, lines[i]);
	}
}

/* A directory everyone may enter (the caller must reach the files it is refused). */
static char *
open_dir_new(void)
{
	char *dir = test_tmpdir_new();

	g_assert_cmpint(g_chmod(dir, 0755), ==, 0);
	return dir;
}

static char *
copy_module(const char *dir, const char *name, int mode)
{
	g_autofree char *app = g_build_filename(test_program("HEALER_FIRMWARE_MODULES"), "apps", "sensor.bin", NULL);
	g_autoptr(GBytes) bytes = test_read_file(app);
	char *path = g_build_filename(dir, name, NULL);

	test_write_file(path, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
	return path;
}

/* ---- ImportFd: the caller's descriptor, and nothing else ------------------------ */

static void
test_descriptors(void)
{
	Attack a = {0};
	AttackProbe *probe;
	g_autofree char *modules = test_tmpdir_new();
	g_autofree char *dir = open_dir_new();
	g_autofree char *secret = copy_module(dir, "secret.bin", 0600);
	g_autofree char *write_only = g_build_filename(dir, "write-only.txt", NULL);
	g_autofree char *readable = copy_module(dir, "readable.bin", 0644);
	g_autofree char *long_name = g_strnfill(10000, 'n');
	const char *fd_caller = test_program("HEALER_FD_CALLER");

	ensure_member();
	test_write_file(write_only, (const guint8 *)"root's secret\n", 14);
	g_assert_cmpint(g_chmod(write_only, 0622), ==, 0); /* others may write it, not read it */
	attack_setup(&a, modules, NULL);
	probe = attack_probe_start(&a);

	/* The precondition: the member cannot read the secret itself. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, fd_caller, "ImportFd", "rdonly", secret, NULL);
		g_assert_cmpint(run.exit_status, ==, 2);
		assert_contains(run.err, "Permission denied");
	}
	/* O_PATH needs no read permission; healerd used to reopen it through /proc/self/fd. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, fd_caller, "ImportFd", "opath", secret, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.out, "io.healerd.Error.InvalidArgument");
		assert_contains(run.out, "the descriptor was opened with O_PATH, not for reading");
	}
	{
		g_auto(TestRun) run = {0};
		as_member(&run, fd_caller, "ImportFd", "wronly", write_only, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.out, "the descriptor is open for writing only, not for reading");
	}
	/* A path is read with healerd's rights: only root and healerd's own user may pass one. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, "gdbus", "call", "--system", "--dest", BUS_NAME, "--object-path", MANAGER_PATH,
		          "--method", "io.healerd.Healer1.ImportModules", secret, NULL);
		g_assert_cmpint(run.exit_status, !=, 0);
		assert_contains(run.err, "io.healerd.Error.PermissionDenied");
		assert_contains(run.err, "ImportModules takes a path only from root");
	}
	/* Under a directory descriptor healerd would open the files with its own rights. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, fd_caller, "ImportFd", "rdonly", dir, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.out, "io.healerd.Error.PermissionDenied");
		assert_contains(run.out, "a directory is imported for root only");
	}
	/* What the member can read it may import; the name it gives comes back escaped and bounded. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, fd_caller, "ImportFd", "rdonly", readable, "x\n\033]0;pwned\007 healerd[info]: forged",
		          NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		/* g_variant_print() doubles the backslashes healerd wrote. */
		assert_contains(run.out, "x\\\\n\\\\x1b]0;pwned\\\\x07 healerd[info]: forged: ");
		g_assert_null(strstr(run.out, "\\u001b"));
	}
	{
		g_auto(TestRun) run = {0};
		as_member(&run, fd_caller, "ImportFd", "rdonly", readable, long_name, NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		assert_contains(run.out, "... (10000 bytes, cut)");
		g_assert_cmpuint(strlen(run.out), <, 6000);
	}

	attack_probe_finish(probe);
	{
		const char *never[] = {secret, write_only, NULL};
		attack_assert_unharmed(&a, never, SETTLE_MS);
	}
	assert_never_reopened(&a, secret);
	assert_never_reopened(&a, write_only);
	attack_teardown(&a);
	g_unlink(secret);
	g_unlink(write_only);
	g_unlink(readable);
	test_tmpdir_free(g_steal_pointer(&dir));
	test_tmpdir_free(g_steal_pointer(&modules));
}

/* ---- healerctl import DIR by a member: healerctl reads, healerd gets descriptors ---------- */

static void
test_import_directory_as_member(void)
{
	Attack a = {0};
	AttackProbe *probe;
	g_autofree char *modules = test_tmpdir_new();
	g_autofree char *dir = open_dir_new();
	g_autofree char *plain = g_build_filename(dir, "plain", NULL);
	g_autofree char *bundle = g_build_filename(dir, "bundle", NULL);
	g_autofree char *readable = NULL, *secret = NULL;
	g_autofree char *secret_rejected = NULL;

	ensure_member();
	g_assert_cmpint(g_mkdir(plain, 0755), ==, 0);
	readable = copy_module(plain, "readable.bin", 0644);
	secret = copy_module(plain, "secret.bin", 0600);
	/* The firmware build's modules directory is a signed directory bundle (its catalog.json). */
	test_copy_tree(test_program("HEALER_FIRMWARE_MODULES"), bundle, NULL);
	{
		g_autofree char *chmod = g_strdup_printf("chmod -R a+rX '%s'", bundle);
		g_assert_cmpint(system(chmod), ==, 0);
	}
	attack_setup(&a, modules, NULL);
	/*
	 * A directory bundle: packed by healerctl, imported whole by healerd.  The first tar archive
	 * maps libarchive and its libraries into healerd for good: the baseline is taken after it.
	 */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, test_program("HEALERCTL"), "import", bundle, "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0); /* 1 if any file was rejected */
		g_assert_null(strstr(run.out, "\"added\":0,"));
		assert_contains(run.out, "\"added\":");
	}

	attack_rebaseline(&a);
	probe = attack_probe_start(&a);

	/* A plain directory: each file the member can open is imported, each other one named. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, test_program("HEALERCTL"), "import", plain, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_null(strstr(run.out, "readable.bin")); /* the bundle's catalog lists it: stored */
		secret_rejected = g_strdup_printf("rejected %s: Permission denied", secret);
		assert_contains(run.out, secret_rejected);
	}
	/* Again: adds nothing, and leaves nothing behind. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, test_program("HEALERCTL"), "import", bundle, "--json", NULL);
		g_assert_cmpint(run.exit_status, ==, 0);
		assert_contains(run.out, "\"added\":0,");
	}

	attack_probe_finish(probe);
	{
		const char *never[] = {secret, NULL};
		attack_assert_unharmed(&a, never, SETTLE_MS);
	}
	assert_never_reopened(&a, secret);
	attack_teardown(&a);
	test_tmpdir_free(g_steal_pointer(&dir));
	test_tmpdir_free(g_steal_pointer(&modules));
}

/* ---- FlashApp of a FIFO --------------------------------------------------------- */

static void
wait_for_device(GDBusConnection *c, const char *object_path)
{
	gint64 deadline = g_get_monotonic_time() + DEVICE_WAIT_S * G_USEC_PER_SEC;

	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply =
		        g_dbus_connection_call_sync(c, BUS_NAME, object_path, "org.freedesktop.DBus.Properties", "Get",
		                                    g_variant_new("(ss)", "io.healerd.Healer1.Device", "Id"), NULL,
		                                    G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
		if (reply != NULL)
			return;
		if (g_get_monotonic_time() > deadline)
			g_error("no device object %s after %d s: %s", object_path, DEVICE_WAIT_S, error->message);
		g_usleep(100000);
	}
}

static void
test_flash_fifo(void)
{
	Attack a = {0};
	g_auto(Device) device = {0};
	g_autoptr(GDBusConnection) c = NULL;
	g_autofree char *modules = test_tmpdir_new();
	g_autofree char *dir = open_dir_new();
	g_autofree char *fifo = g_build_filename(dir, "app.bin", NULL);
	g_autofree char *object_path = NULL;
	AttackProbe *probe;

	ensure_member();
	g_assert_cmpint(mkfifo(fifo, 0666), ==, 0);
	attack_setup(&a, modules, NULL);
	start_device(&device, a.dir, "dev0", "2.0.0", "sensor");
	c = bus_connect(&a.bus);
	object_path = g_strdup_printf(MANAGER_PATH "/devices/%s", device.id);
	wait_for_device(c, object_path);
	attack_rebaseline(&a);
	probe = attack_probe_start(&a);

	/* Root may pass a path: opened without blocking, a FIFO is refused at once. */
	{
		g_autoptr(GError) error = NULL;
		g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
		        c, BUS_NAME, object_path, "io.healerd.Healer1.Device", "FlashApp", g_variant_new("(s)", fifo),
		        NULL, G_DBUS_CALL_FLAGS_NONE, SLOW_CALL_MS, NULL, &error);
		g_autofree char *expected = g_strdup_printf("%s: is a FIFO, not a regular file", fifo);

		g_assert_null(reply);
		g_assert_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT);
		assert_contains(error->message, expected);
	}
	/* A member may not pass a path at all. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, "gdbus", "call", "--system", "--dest", BUS_NAME, "--object-path", object_path,
		          "--method", "io.healerd.Healer1.Device.FlashApp", fifo, NULL);
		g_assert_cmpint(run.exit_status, !=, 0);
		assert_contains(run.err, "FlashApp takes a path only from root");
	}
	/* Its own descriptor on a FIFO is refused the same way, before anything is read. */
	{
		g_auto(TestRun) run = {0};
		as_member(&run, test_program("HEALER_FD_CALLER"), "FlashAppFd", "rdonly", fifo, device.id, NULL);
		g_assert_cmpint(run.exit_status, ==, 1);
		assert_contains(run.out, "is a FIFO, not a regular file");
	}

	attack_probe_finish(probe);
	attack_assert_unharmed(&a, NULL, SETTLE_MS);
	attack_teardown(&a);
	g_unlink(fifo);
	test_tmpdir_free(g_steal_pointer(&dir));
	test_tmpdir_free(g_steal_pointer(&modules));
}

/* ---- ImportModules of a big tree ------------------------------------------------------ */

static void
make_tree(const char *root)
{
	for (guint i = 0; i < TREE_DIRS; i++) {
		for (guint j = 0; j < TREE_DIRS; j++) {
			g_autofree char *sub = g_strdup_printf("%s/d%02u/e%02u", root, i, j);
			g_assert_cmpint(g_mkdir_with_parents(sub, 0755), ==, 0);
			for (guint k = 0; k < TREE_FILES; k++) {
				g_autofree char *file = g_strdup_printf("%s/f%02u.bin", sub, k);
				g_assert_true(g_file_set_contents(file, "not a module\n", -1, NULL));
			}
		}
	}
	for (guint i = 0; i < TREE_FIFOS; i++) {
		g_autofree char *fifo = g_strdup_printf("%s/fifo%u.bin", root, i);
		g_assert_cmpint(mkfifo(fifo, 0644), ==, 0);
	}
	/* Deeper than any module tree: not entered. */
	{
		g_autofree char *deep = g_strdup_printf("%s/1/2/3/4/5/6/7/8/9/10", root);
		g_autofree char *file = g_build_filename(deep, "deep.bin", NULL);
		g_assert_cmpint(g_mkdir_with_parents(deep, 0755), ==, 0);
		g_assert_true(g_file_set_contents(file, "too deep\n", -1, NULL));
	}
}

typedef struct {
	GVariant *reply;
	GError *error;
	gboolean done;
} CallResult;

static void
on_call_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	CallResult *r = user_data;

	r->reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &r->error);
	r->done = TRUE;
}

static void
test_import_tree(void)
{
	Attack a = {0};
	g_autoptr(GDBusConnection) c = NULL;
	g_autofree char *modules = test_tmpdir_new();
	g_autofree char *tree = test_tmpdir_new();
	g_autofree char *summary = NULL;
	g_autofree char *expected = NULL;
	g_autoptr(GPtrArray) lines = NULL;
	g_autofree const char **rejected = NULL;
	CallResult r = {0};
	AttackProbe *probe;
	guint added = 99;
	gsize n_rejected = 0;

	make_tree(tree);
	attack_setup(&a, modules, NULL);
	c = bus_connect(&a.bus);
	probe = attack_probe_start(&a);

	g_dbus_connection_call(c, BUS_NAME, MANAGER_PATH, "io.healerd.Healer1", "ImportModules",
	                       g_variant_new("(s)", tree), G_VARIANT_TYPE("(uas)"), G_DBUS_CALL_FLAGS_NONE,
	                       SLOW_CALL_MS, NULL, on_call_done, &r);
	while (!r.done)
		g_main_context_iteration(NULL, TRUE);
	g_assert_no_error(r.error);

	attack_probe_finish(probe);
	g_variant_get(r.reply, "(u^a&s)", &added, &rejected);
	g_assert_cmpuint(added, ==, 0);
	/* The first files by name, then one line for the rest: a bounded reply. */
	n_rejected = g_strv_length((char **)rejected);
	g_assert_cmpuint(n_rejected, ==, 101);
	assert_contains(rejected[0], "not a module");
	assert_contains(rejected[100], "more files skipped, not listed here");

	/* One summary record for the whole tree; none per file. */
	{
		const char *all[] = {"import of ", tree, ": scanned ", NULL};
		const char *per_file[] = {"skipped, not stored", NULL};
		lines = healerd_process_lines(a.healerd, all);
		g_assert_cmpuint(lines->len, ==, 1);
		g_assert_cmpuint(healerd_process_count(a.healerd, per_file), ==, 0);
	}
	summary = g_strdup(g_ptr_array_index(lines, 0));
	g_test_message("%s", summary);
	expected = g_strdup_printf("scanned %u files, imported 0, skipped %u: %u not modules, 0 not listed in a "
	                           "trusted catalog, %u not regular files",
	                           TREE_DIRS * TREE_DIRS * TREE_FILES, TREE_DIRS * TREE_DIRS * TREE_FILES + TREE_FIFOS,
	                           TREE_DIRS * TREE_DIRS * TREE_FILES, TREE_FIFOS);
	assert_contains(summary, expected);
	assert_contains(summary, "1 directories too deep");

	attack_assert_unharmed(&a, NULL, SETTLE_MS);
	attack_teardown(&a);
	g_variant_unref(r.reply);
	test_tmpdir_free(g_steal_pointer(&tree));
	test_tmpdir_free(g_steal_pointer(&modules));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	healer_error_quark(); /* io.healerd.Error.* come back as HEALER_ERROR codes */
	g_test_add_func("/security/callers/descriptors", test_descriptors);
	g_test_add_func("/security/callers/import-directory-as-member", test_import_directory_as_member);
	g_test_add_func("/security/callers/flash-fifo", test_flash_fifo);
	g_test_add_func("/security/callers/import-tree", test_import_tree);
	return g_test_run();
}
