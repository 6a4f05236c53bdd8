/* Coverage builds of healer-sim only: see sim-gcov.h. */
#include "sim-gcov.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* libgcov's: writes every counter of the program to its .gcda file. */
extern void __gcov_dump(void);

/* In .bss, so a reset clears it: a stop asked for just before a reset is asked again by nobody,
 * which only costs that run's counters (the test that sent it is ending anyway). */
static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

void
sim_gcov_start(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the wait for an event (ppoll) returns at once with EINTR. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

void
sim_gcov_flush(void)
{
	/*
	 * gcov's own "already written" flag lives in .data too, and the reset puts it back as it was
	 * at power-on, unset: the next reset or the exit writes again, each adding its run's counts.
	 */
	__gcov_dump();
}

void
sim_gcov_exit_if_stopped(void)
{
	if (stop_requested)
		exit(0);
}
