/*
 * What the tests that run usbemu (tests/tools/usbemu) share: a directory per test with usbemu's trace
 * file and control FIFO, usbemu's command line with the valgrind setup's wrapper where it belongs, the
 * trace and output checks, and Particle module files.  The tests keep what is theirs: the devices, the
 * program run under usbemu, what it must print.
 *
 * A test:
 *
 *   g_test_add(path, UsbemuFixture, NULL, usbemu_fixture_set_up, test_fn, usbemu_fixture_tear_down);
 *   ...
 *   g_autoptr(UsbemuCommand) cmd = usbemu_command_new(f, USBEMU_COMMAND_CONTROL);
 *   usbemu_command_add(cmd, "--particle=photon");       // device options
 *   usbemu_command_add_printf(cmd, "--state=%s", f->state);
 *   usbemu_command_add(cmd, "--");
 *   usbemu_command_add_test_wrapper(cmd);                // the program under test runs under valgrind
 *   usbemu_command_add(cmd, test_program("SOME_CLIENT"));
 *   g_assert_cmpint(usbemu_command_run(cmd, &out), ==, 0);
 *   trace = usbemu_read_trace(f);
 *   usbemu_assert_contains(trace, "particle INIT type=GET_DEVICE_ID");
 *
 * A test with more state embeds an UsbemuFixture and calls the set-up and tear-down from its own.
 * Link with usbemu_harness_dep (tests/tools/meson.build: a directory that comes after tests/tools can
 * use it); the test's environment needs USBEMU (and HEALER_SOURCE_DIR for the wrapper's
 * suppressions), as test_env and usbemu_env give.
 */
#pragma once

#include <gio/gio.h>

/* ---- the fixture ------------------------------------------------------------------------------ */

typedef struct {
	char *dir;     /* a fresh directory, removed with its contents at tear-down */
	char *state;   /* dir/state: device 1's --state (not made: usbemu makes it); a test may replace it */
	char *trace;   /* dir/trace.txt: usbemu's --trace */
	char *control; /* dir/control: a FIFO for usbemu's --control */
	/* The FIFO held open read-write: commands written before usbemu reads them stay in it, and usbemu
	 * never sees its end when a writer under it closes it. */
	int control_fd;
} UsbemuFixture;

/* For g_test_add(): `data` is not used. */
void usbemu_fixture_set_up(UsbemuFixture *f, gconstpointer data);
void usbemu_fixture_tear_down(UsbemuFixture *f, gconstpointer data);

/* Writes a control command (a line; usbemu takes those written before it starts before COMMAND runs). */
void usbemu_control(UsbemuFixture *f, const char *command);

/* dir/name, newly allocated. */
char *usbemu_path(const UsbemuFixture *f, const char *name);

/* state/internal-flash.bin, newly allocated. */
char *usbemu_flash_path(const UsbemuFixture *f);

/* Whether device 1's internal flash (starting at `flash_base`) holds the file `module` at `address`, byte for byte. */
gboolean usbemu_flash_holds(const UsbemuFixture *f, guint32 flash_base, const char *module, guint32 address);

/* Flips the lowest bit of the byte at `offset` in device 1's internal flash file: a corrupt module. */
void usbemu_flash_corrupt(const UsbemuFixture *f, gsize offset);

/* ---- usbemu's command line ------------------------------------------------------------------------ */

typedef enum {
	USBEMU_COMMAND_DEFAULT = 0,
	/* --control=FIFO after --trace. */
	USBEMU_COMMAND_CONTROL = 1 << 0,
	/* usbemu itself under $HEALER_TEST_WRAPPER (the tests of usbemu): umockdev's preload is given from
	 * the start, as usbemu would run itself again under it and so leave valgrind; a run that answers
	 * valgrind's error status (99) fails the test with the output. */
	USBEMU_COMMAND_WRAP_USBEMU = 1 << 1,
	/* Runs in the fixture's directory. */
	USBEMU_COMMAND_IN_DIR = 1 << 2,
} UsbemuCommandFlags;

typedef struct _UsbemuCommand UsbemuCommand;

/*
 * [wrapper] usbemu --trace=TRACE [--control=FIFO]; with `f` NULL no --trace or --control (usbemu's
 * own usage errors) and no directory.  Its children get SIGKILL when the test dies.
 */
UsbemuCommand *usbemu_command_new(const UsbemuFixture *f, UsbemuCommandFlags flags);
void usbemu_command_free(UsbemuCommand *cmd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(UsbemuCommand, usbemu_command_free)

void usbemu_command_add(UsbemuCommand *cmd, const char *word);
void usbemu_command_add_printf(UsbemuCommand *cmd, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Each word of a NULL-terminated array; `words` may be NULL. */
void usbemu_command_add_words(UsbemuCommand *cmd, const char *const *words);

/*
 * The valgrind setup's wrapper ($HEALER_TEST_WRAPPER; nothing when unset), for the program under test
 * that runs under usbemu, after "--": usbemu is the test's tool, that program is what valgrind must
 * see.  It runs with umockdev's preload library loaded, hence tests/unit/umockdev.supp.
 */
void usbemu_command_add_test_wrapper(UsbemuCommand *cmd);

/* An environment variable for usbemu and what it runs. */
void usbemu_command_setenv(UsbemuCommand *cmd, const char *name, const char *value);

/*
 * Runs it to its end; its exit status, and in *output (may be NULL) what it printed, stdout and stderr
 * merged.  The output goes to the test's log.  Fails the test if usbemu cannot start or is killed.
 */
int usbemu_command_run(UsbemuCommand *cmd, char **output);

/* The command line, each word shell-quoted: a wrapper for healerd (HealerdProcess.wrapper). */
char *usbemu_command_to_shell(const UsbemuCommand *cmd);

/* ---- what came out ------------------------------------------------------------------------------ */

/* The trace usbemu wrote; fails the test if there is none. */
char *usbemu_read_trace(const UsbemuFixture *f);

/*
 * Waits until the trace (written a line at a time while usbemu runs) holds `needle` at least `count`
 * times, looking again every 10 ms; fails the test, showing the trace, after `timeout_ms`.  For a test
 * whose COMMAND (healerd) keeps running while it checks.
 */
void usbemu_wait_trace(const UsbemuFixture *f, const char *needle, guint count, guint timeout_ms);

/* How often `needle` is in `text` (overlapping ones too). */
guint usbemu_count(const char *text, const char *needle);

/* Fail the test, showing `text`, unless `needle` is in it (is not in it). */
void usbemu_assert_contains(const char *text, const char *needle);
void usbemu_assert_lacks(const char *text, const char *needle);

/* ---- Particle modules ----------------------------------------------------------------------------- */

typedef struct {
	guint8 function, index;
	guint16 version;
} UsbemuModuleDep;

/*
 * A module made by libhealer's writer (module-writer.h), in the fixture's directory as `name`; its path,
 * newly allocated.  The payload is `size` pseudo-random bytes from version and index: the same on every
 * run, and no block of it repeats, so a misplaced block shows.  Up to 8 dependencies.
 */
char *usbemu_write_module(const UsbemuFixture *f, const char *name, guint16 platform, guint32 start, guint8 function,
                          guint8 index, guint16 version, gsize size, const UsbemuModuleDep *deps, guint n_deps);
