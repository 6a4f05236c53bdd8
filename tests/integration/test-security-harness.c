/*
 * The attack harness checks itself: an idle healerd passes every check, and the checks fail when
 * what they look for happens (a test whose checks cannot fail would prove nothing).
 */
#include "attack-harness.h"

#include <glib/gstdio.h>

static void
test_idle_passes(void)
{
	Attack a = {0};
	AttackProbe *probe;

	attack_setup(&a, NULL, NULL);
	g_assert_cmpuint(a.baseline_kib, >, 0);
	probe = attack_probe_start(&a);
	g_usleep(1500000);
	g_assert_cmpuint(attack_probe_finish(probe), <=, 1000);
	attack_assert_unharmed(&a, NULL, 10000);
	attack_teardown(&a);
}

/* healerd reads its configuration: naming that file in `never` must fail the check. */
static void
test_opens_catches_a_read(void)
{
	if (g_test_subprocess()) {
		Attack a = {0};
		g_autofree char *config = NULL;

		attack_setup(&a, NULL, NULL);
		config = g_strdup(a.healerd->config);
		{
			const char *never[] = {config, NULL};
			attack_assert_opens(&a, never);
		}
		attack_teardown(&a);
		return;
	}
	g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr("*opened *healerd.conf, which it must never read*");
}

/* The same check on the record of another program: a write outside the state directory is caught. */
static void
test_opens_catches_a_write(void)
{
	if (g_test_subprocess()) {
		Attack a = {0};
		g_autofree char *outside = NULL;
		g_autofree char *line = NULL;
		g_autofree char *text = NULL;

		attack_setup(&a, NULL, NULL);
		outside = g_build_filename(a.dir, "outside", NULL);
		line = g_strdup_printf("4242  openat(AT_FDCWD, \"%s\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 7\n", outside);
		g_assert_true(g_file_get_contents(a.opens_log, &text, NULL, NULL));
		{
			g_autofree char *more = g_strconcat(text, line, NULL);
			g_assert_true(g_file_set_contents(a.opens_log, more, -1, NULL));
		}
		attack_assert_opens(&a, NULL);
		attack_teardown(&a);
		return;
	}
	g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr("*changed or opened for writing outside its state directory*outside*");
}

/* A descriptor reopened through /proc is caught, whoever's it was. */
static void
test_opens_catches_a_reopen(void)
{
	if (g_test_subprocess()) {
		Attack a = {0};
		g_autofree char *text = NULL;

		attack_setup(&a, NULL, NULL);
		g_assert_true(g_file_get_contents(a.opens_log, &text, NULL, NULL));
		{
			g_autofree char *more = g_strconcat(
			        text, "4242  openat(AT_FDCWD, \"/proc/self/fd/12\", O_RDONLY|O_CLOEXEC) = 13\n", NULL);
			g_assert_true(g_file_set_contents(a.opens_log, more, -1, NULL));
		}
		attack_assert_opens(&a, NULL);
		attack_teardown(&a);
		return;
	}
	g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr("*reopened a descriptor through its /proc path*/proc/self/fd/12*");
}

/* RSS far over the baseline fails the check. */
static void
test_rss_catches_growth(void)
{
	if (g_test_subprocess()) {
		Attack a = {0};

		attack_setup(&a, NULL, NULL);
		a.baseline_kib = 100; /* as if healerd had grown by megabytes since */
		attack_assert_rss_settles(&a, 500);
		attack_teardown(&a);
		return;
	}
	g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
	g_test_trap_assert_failed();
	g_test_trap_assert_stderr("*KiB over its baseline of 100 KiB*");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/security/harness/idle", test_idle_passes);
	g_test_add_func("/security/harness/opens-catches-a-read", test_opens_catches_a_read);
	g_test_add_func("/security/harness/opens-catches-a-write", test_opens_catches_a_write);
	g_test_add_func("/security/harness/opens-catches-a-reopen", test_opens_catches_a_reopen);
	g_test_add_func("/security/harness/rss-catches-growth", test_rss_catches_growth);
	return g_test_run();
}
