/*
 * The Particle client's polling policy (agent/daemon/particle-poll.c), a pure function: its
 * bounds, its back-off, what it learns, and on a simulated device (a clock of our own, no
 * sleeping) that it settles near the device's real time whichever way that moves.
 */
#include "particle-poll.h"

/* The documented particle-usb schedule, for comparison. */
static const guint pusb_schedule_ms[] = {50, 50, 100, 100, 250, 250, 500, 500, 1000};

static void
test_bounds(void)
{
	const guint64 estimates[] = {0, 1, 999, 1000, 1001, 250000, 999999, 1000000, 1000001, G_MAXUINT64};

	for (gsize i = 0; i < G_N_ELEMENTS(estimates); i++) {
		for (guint attempt = 0; attempt < 200; attempt++) {
			guint d = healer_particle_poll_delay_ms(estimates[i], attempt);
			/* At once only for the first CHECK of a wait shorter than a millisecond. */
			if (attempt == 0 && estimates[i] < 1000)
				g_assert_cmpuint(d, ==, 0);
			else
				g_assert_cmpuint(d, >=, HEALER_PARTICLE_POLL_MIN_MS);
			g_assert_cmpuint(d, <=, HEALER_PARTICLE_POLL_MAX_MS);
		}
		/* never overflows at the far end */
		g_assert_cmpuint(healer_particle_poll_delay_ms(estimates[i], G_MAXUINT), <=,
		                 HEALER_PARTICLE_POLL_MAX_MS);
	}
}

static void
test_schedule(void)
{
	/* First CHECK after E (in whole ms), then E/4, E/2, E, 2E, ... up to the ceiling. */
	g_assert_cmpuint(healer_particle_poll_delay_ms(8000, 0), ==, 8);
	g_assert_cmpuint(healer_particle_poll_delay_ms(8000, 1), ==, 2);
	g_assert_cmpuint(healer_particle_poll_delay_ms(8000, 2), ==, 4);
	g_assert_cmpuint(healer_particle_poll_delay_ms(8000, 3), ==, 8);
	g_assert_cmpuint(healer_particle_poll_delay_ms(8000, 4), ==, 16);
	g_assert_cmpuint(healer_particle_poll_delay_ms(8000, 12), ==, 1000);
	g_assert_cmpuint(healer_particle_poll_delay_ms(1500, 0), ==, 1);
	g_assert_cmpuint(healer_particle_poll_delay_ms(2999, 0), ==, 2);
	g_assert_cmpuint(healer_particle_poll_delay_ms(400, 0), ==, 0);
	g_assert_cmpuint(healer_particle_poll_delay_ms(999, 0), ==, 0);
	g_assert_cmpuint(healer_particle_poll_delay_ms(1000, 0), ==, 1);
	g_assert_cmpuint(healer_particle_poll_delay_ms(400, 4), ==, 1);
	g_assert_cmpuint(healer_particle_poll_delay_ms(400, 5), ==, 1);
	g_assert_cmpuint(healer_particle_poll_delay_ms(400, 6), ==, 3);
	g_assert_cmpuint(healer_particle_poll_delay_ms(400, 7), ==, 6);
	/* geometric: never shrinking after the first */
	for (guint attempt = 1; attempt < 40; attempt++)
		g_assert_cmpuint(healer_particle_poll_delay_ms(40000, attempt), <=,
		                 healer_particle_poll_delay_ms(40000, attempt + 1));
}

static void
test_learning(void)
{
	HealerParticlePoll poll;

	healer_particle_poll_init(&poll);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==,
	                 HEALER_PARTICLE_POLL_COLD_US);
	/* The first sample is the estimate; it took three polls, so it is taken whole. */
	healer_particle_poll_record(&poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER, 12000, 3);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==, 12000);
	/* Done at the first CHECK: it may have been sooner, 3/4 of it goes in, weighted 1/4. */
	healer_particle_poll_record(&poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER, 12000, 1);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==,
	                 (12000 * 3 + 9000) / 4);
	/* Types and phases apart. */
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 253, HEALER_PARTICLE_POLL_PHASE_BUFFER), ==,
	                 HEALER_PARTICLE_POLL_COLD_US);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 90, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==,
	                 HEALER_PARTICLE_POLL_COLD_US);
	/* A sample beyond the ceiling counts as the ceiling. */
	healer_particle_poll_record(&poll, 250, HEALER_PARTICLE_POLL_PHASE_HANDLER, 30000000, 9);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 250, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==,
	                 (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000);
}

static void
test_slots_replace_least_recent(void)
{
	HealerParticlePoll poll;

	healer_particle_poll_init(&poll);
	for (guint t = 0; t < HEALER_PARTICLE_POLL_SLOTS; t++)
		healer_particle_poll_record(&poll, (guint16)(1000 + t), HEALER_PARTICLE_POLL_PHASE_HANDLER, 5000 + t,
		                            2);
	/* 1000 used again: 1001 is now the least recent and gives way. */
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 1000, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==, 5000);
	healer_particle_poll_record(&poll, 7, HEALER_PARTICLE_POLL_PHASE_HANDLER, 3000, 2);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 7, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==, 3000);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 1000, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==, 5000);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 1001, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==,
	                 HEALER_PARTICLE_POLL_COLD_US);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 1002, HEALER_PARTICLE_POLL_PHASE_HANDLER), ==, 5002);
}

typedef struct {
	guint64 waited_us; /* from the start of the wait to the answer of the CHECK that found it done */
	guint polls;
} Wait;

/* A CHECK's round trip on the simulated bus; the device reads it halfway. */
#define ROUND_TRIP_US 400

/* One wait on a device that is done `device_us` after it began, polled as the policy says. */
static Wait
simulate(HealerParticlePoll *poll, guint64 device_us)
{
	guint64 estimate = healer_particle_poll_estimate_us(poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER);
	Wait w = {0, 0};
	guint64 sent;

	for (;;) {
		w.waited_us += (guint64)healer_particle_poll_delay_ms(estimate, w.polls) * 1000;
		sent = w.waited_us;
		w.waited_us += ROUND_TRIP_US;
		w.polls++;
		if (sent + ROUND_TRIP_US / 2 >= device_us)
			break;
	}
	/* Measured to when the CHECK went out, as the client does. */
	healer_particle_poll_record(poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER, sent, w.polls);
	return w;
}

static guint64
simulate_pusb(guint64 device_us)
{
	guint64 waited = 0;

	for (guint i = 0; waited < device_us; i++)
		waited += (guint64)pusb_schedule_ms[MIN(i, G_N_ELEMENTS(pusb_schedule_ms) - 1)] * 1000;
	return waited;
}

static void
test_settles(void)
{
	/* Device times: a fast handler, a flash write per chunk, a slow erase. */
	const guint64 device_times_us[] = {300, 3000, 7000, 40000, 1900000};

	for (gsize i = 0; i < G_N_ELEMENTS(device_times_us); i++) {
		guint64 t = device_times_us[i];
		HealerParticlePoll poll;
		guint64 waited = 0, polls = 0;

		healer_particle_poll_init(&poll);
		for (guint n = 0; n < 20; n++)
			(void)simulate(&poll, t);
		/* Then 100 more, measured: late by at most about a quarter (plus the 1 ms grain), few polls. */
		for (guint n = 0; n < 100; n++) {
			Wait w = simulate(&poll, t);
			waited += w.waited_us;
			polls += w.polls;
		}
		g_test_message("device %" G_GUINT64_FORMAT " us: waited %" G_GUINT64_FORMAT " us and %.2f polls a wait "
		               "(particle-usb's schedule: %" G_GUINT64_FORMAT " us)",
		               t, waited / 100, polls / 100.0, simulate_pusb(t));
		/* Beyond the ceiling a device is found within one ceiling's poll. */
		g_assert_cmpuint(waited / 100, <=,
		                 t + MIN(t / 2, (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000) + 1000 +
		                         2 * ROUND_TRIP_US);
		g_assert_cmpuint(polls, <=, 100 * (t < (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000 ? 3 : 4));
		g_assert_cmpuint(waited / 100, <=, simulate_pusb(t));
	}
}

static void
test_follows_a_change(void)
{
	HealerParticlePoll poll;
	Wait w;

	healer_particle_poll_init(&poll);
	for (guint n = 0; n < 30; n++)
		(void)simulate(&poll, 40000);
	/* The device got fast: the estimate comes down within a few dozen requests. */
	for (guint n = 0; n < 40; n++)
		w = simulate(&poll, 2000);
	g_assert_cmpuint(w.waited_us, <=, 4000);
	g_assert_cmpuint(healer_particle_poll_estimate_us(&poll, 253, HEALER_PARTICLE_POLL_PHASE_HANDLER), <=, 4000);
	/* And slow again: found by the back-off at once, learned within a few. */
	w = simulate(&poll, 40000);
	g_assert_cmpuint(w.polls, <=, 8);
	for (guint n = 0; n < 20; n++)
		w = simulate(&poll, 40000);
	g_assert_cmpuint(w.waited_us, <=, 60000);
	g_assert_cmpuint(w.polls, <=, 3);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/particle-poll/bounds", test_bounds);
	g_test_add_func("/particle-poll/schedule", test_schedule);
	g_test_add_func("/particle-poll/learning", test_learning);
	g_test_add_func("/particle-poll/slots", test_slots_replace_least_recent);
	g_test_add_func("/particle-poll/settles", test_settles);
	g_test_add_func("/particle-poll/follows-a-change", test_follows_a_change);
	return g_test_run();
}
