/*
 * Coverage of the firmware run by healer-sim (scripts/coverage.sh: meson -Db_coverage=true, which
 * defines HEALER_SIM_GCOV for the simulator).  Two things would lose gcov's counters: a reset puts
 * .data and .bss back as they were at power-on, and gcov's counters live there; and the tests stop
 * simulators with SIGTERM, which ends a process without the exit handler that writes them.  So a
 * coverage build writes the counters out before each reset, and turns SIGTERM into exit(0) at the
 * next wait for an event.  Other builds: no-ops, and SIGTERM as ever.
 */
#ifndef HEALER_SIM_GCOV_H
#define HEALER_SIM_GCOV_H

#ifdef HEALER_SIM_GCOV
/* Installs the SIGTERM and SIGINT handler (once, before the firmware first runs). */
void sim_gcov_start(void);
/* Writes the counters to the .gcda files (merged with what is there): before a reset. */
void sim_gcov_flush(void);
/* Exits (writing the counters) if a SIGTERM or SIGINT has arrived. */
void sim_gcov_exit_if_stopped(void);
#else
static inline void
sim_gcov_start(void)
{
}
static inline void
sim_gcov_flush(void)
{
}
static inline void
sim_gcov_exit_if_stopped(void)
{
}
#endif

#endif
