/*
 * What every security test asserts about healerd while it is attacked (issue 13,
 * docs/security.md): it stays up; it answers `healerctl status` within 1 s during the attack; its
 * RSS returns to within 2 MiB of its baseline afterwards; it opens no file outside its state
 * directory for writing and reads nothing on a caller's behalf; the error a user sees names the
 * cause (each test checks that itself, with the text it expects).
 *
 * healerd runs on a private system bus (gateway-harness.h), as root, under strace, which records
 * every file it opens; the checks read that record.  The security suite is not run under valgrind
 * (RSS would be valgrind's, and strace would trace valgrind).
 */
#pragma once

#include "gateway-harness.h"
#include "healerd-process.h"

typedef struct _AttackProbe AttackProbe;

typedef struct {
	Bus bus;
	char *dir;       /* a temp dir: state/, ports/, healerd.conf, healerd.log */
	char *state_dir; /* DIR/state */
	char *ports_dir; /* DIR/ports: what healerd serves (a hostile device links its pty here) */
	char *opens_log; /* strace's record of healerd's opens: DIR/opens.log */
	HealerdProcess *healerd;
	guint64 baseline_kib; /* healerd's RSS once it has settled, before the attack */
	gboolean under_asan;  /* the sanitize setup: its allocator gets an allowance on top of 2 MiB */
	GPid healerd_pid;     /* found once healerd has exec'd under strace (attack_healerd_pid) */
} Attack;

/*
 * Starts the bus and healerd (module directory `module_dir`, may be NULL for none; `extra_config`
 * appended to the [healer] group, may hold further groups), waits until healerd owns its bus name
 * and has settled, and records its baseline RSS.
 */
void attack_setup(Attack *a, const char *module_dir, const char *extra_config);
/* Stops healerd (asserting it was still running) and the bus, removes the temp dir. */
void attack_teardown(Attack *a);

/* healerd's own pid (not strace's), and its VmRSS in KiB. */
GPid attack_healerd_pid(Attack *a);
guint64 attack_rss_kib(Attack *a);

/* Re-measures the baseline (after devices attached, say), when the attack starts later. */
void attack_rebaseline(Attack *a);

/* Fails the test unless healerd is still running. */
void attack_assert_alive(Attack *a);

/*
 * A thread that runs `healerctl status` every 250 ms until finished; finishing waits for at least
 * one run, asserts that every run exited 0 within 1 s, and returns the slowest in ms.
 */
AttackProbe *attack_probe_start(Attack *a);
guint attack_probe_finish(AttackProbe *probe);

/*
 * Waits (up to timeout_ms) for RSS to come back within 2 MiB of the baseline (plus 4 MiB for
 * AddressSanitizer's allocator in the sanitize setup); fails with both figures.
 */
void attack_assert_rss_settles(Attack *a, guint timeout_ms);

/*
 * Reads strace's record: fails if healerd opened for writing (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC)
 * anything outside its state directory, its ports and /dev/null, reopened a descriptor through
 * /proc/self/fd/N (that reads with healerd's rights, not the caller's), or opened (in any mode,
 * even failing) a path that is one of `never` (NULL-terminated; a file the caller could not read,
 * a symlink's target).
 */
void attack_assert_opens(Attack *a, const char *const *never);

/* All of the above after an attack: alive, RSS settled within timeout_ms, opens as above. */
void attack_assert_unharmed(Attack *a, const char *const *never, guint timeout_ms);
