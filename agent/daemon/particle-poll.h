/*
 * When to ask a Particle device again (CHECK) about a request it answered PENDING: a pure
 * policy, learned from how long this device took before, so that it can be tested without one.
 *
 * particle-usb polls on a fixed schedule (50, 50, 100, 100, 250, 250, 500, 500, 1000 ms), so a
 * request the device finishes in 2 ms costs 50 ms.  Here each wait is measured instead:
 *
 *   A device waits in two places: for a payload buffer after INIT (PHASE_BUFFER, payloads over
 *   64 bytes) and for its handler after the last SEND (PHASE_HANDLER).  For each request type and
 *   phase the policy keeps an estimate E (microseconds) of how long the device takes there, an
 *   exponential moving average (weight 1/4) of the observed times.  With elapsed the time from the
 *   start of the wait to when the CHECK that found it done was sent (its round trip is the bus's
 *   time, not the device's):
 *
 *     observed = elapsed                 when the first CHECK found it still PENDING (it took
 *                                        longer than E; elapsed overshoots by at most one poll)
 *     observed = elapsed * 3 / 4         when the first CHECK found it done (it took at most
 *                                        elapsed, maybe less: the estimate is allowed to shrink)
 *
 *   so E settles within about a quarter of the device's real time, whichever way it changes.
 *   Unknown (no sample yet): E = HEALER_PARTICLE_POLL_COLD_US.
 *
 *   The first CHECK goes E after the wait began; each later one (n = 1, 2, ...) after
 *   E / 4 * 2^(n-1): a device slower than estimated is found within about a quarter of E, and
 *   one much slower costs a geometric series of polls, not a flood.  Delays are whole milliseconds
 *   (rounded down: a timer's grain) bounded to
 *   HEALER_PARTICLE_POLL_MIN_MS .. HEALER_PARTICLE_POLL_MAX_MS (the schedule's own ceiling), but
 *   for the first CHECK when E is below a millisecond: that one goes at once (0), as the CHECK's
 *   own way to the device is then as long as the wait.
 *
 * docs/particle.md, "Polling", says the same for people.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HEALER_PARTICLE_POLL_MIN_MS 1
#define HEALER_PARTICLE_POLL_MAX_MS 1000
/* The estimate before anything was measured: a few milliseconds, then the back-off finds the rest. */
#define HEALER_PARTICLE_POLL_COLD_US 2000
/* Request types and phases remembered; the least recently used goes beyond it. */
#define HEALER_PARTICLE_POLL_SLOTS 32

typedef enum {
	HEALER_PARTICLE_POLL_PHASE_BUFFER,  /* INIT answered PENDING: the device allocates the payload buffer */
	HEALER_PARTICLE_POLL_PHASE_HANDLER, /* the payload is in (or there was none): the handler runs */
} HealerParticlePollPhase;

typedef struct {
	guint16 type;
	guint8 phase;
	gboolean used;
	guint64 estimate_us;
	guint64 samples;
	guint64 last_use; /* for replacing the least recently used slot */
} HealerParticlePollSlot;

typedef struct {
	HealerParticlePollSlot slots[HEALER_PARTICLE_POLL_SLOTS];
	guint64 clock; /* counts uses */
} HealerParticlePoll;

void healer_particle_poll_init(HealerParticlePoll *self);

/* E for `type` in `phase`, in microseconds (HEALER_PARTICLE_POLL_COLD_US when nothing was measured). */
guint64 healer_particle_poll_estimate_us(HealerParticlePoll *self, guint16 type, HealerParticlePollPhase phase);

/* The delay before CHECK number `attempt` (0: the first) of a wait whose estimate is `estimate_us`; 0 only for the
 * first. */
guint healer_particle_poll_delay_ms(guint64 estimate_us, guint attempt);

/*
 * A wait ended: the device was ready `elapsed_us` after it began, seen by CHECK number
 * `attempts` - 1 (1: the first CHECK found it ready).  Updates E for `type` in `phase`.
 */
void healer_particle_poll_record(HealerParticlePoll *self, guint16 type, HealerParticlePollPhase phase,
                                 guint64 elapsed_us, guint attempts);

G_END_DECLS
