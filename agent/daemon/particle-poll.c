#include "particle-poll.h"

#include <string.h>

void
healer_particle_poll_init(HealerParticlePoll *self)
{
	memset(self, 0, sizeof(*self));
}

static HealerParticlePollSlot *
find_slot(HealerParticlePoll *self, guint16 type, HealerParticlePollPhase phase)
{
	for (guint i = 0; i < HEALER_PARTICLE_POLL_SLOTS; i++) {
		HealerParticlePollSlot *slot = &self->slots[i];
		if (slot->used && slot->type == type && slot->phase == phase)
			return slot;
	}
	return NULL;
}

guint64
healer_particle_poll_estimate_us(HealerParticlePoll *self, guint16 type, HealerParticlePollPhase phase)
{
	HealerParticlePollSlot *slot = find_slot(self, type, phase);

	if (slot == NULL)
		return HEALER_PARTICLE_POLL_COLD_US;
	slot->last_use = ++self->clock;
	return slot->estimate_us;
}

static guint
clamp_ms(guint64 us)
{
	/*
	 * Rounded down: the samples are whole milliseconds of our timers, and rounding up would hold
	 * an estimate between 1 and 2 ms at 2 ms forever (3/4 of 2 ms is 1.5 ms, rounded up 2 again).
	 */
	guint64 ms = us / 1000;

	return (guint)CLAMP(ms, HEALER_PARTICLE_POLL_MIN_MS, HEALER_PARTICLE_POLL_MAX_MS);
}

guint
healer_particle_poll_delay_ms(guint64 estimate_us, guint attempt)
{
	guint64 us;

	if (estimate_us > (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000)
		estimate_us = (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000;
	/*
	 * A device that is ready sooner than a millisecond (a payload buffer) is asked at once: the
	 * CHECK's own way there is the wait.  Never twice in a row, so a device that is not ready
	 * after all costs one CHECK, not a busy loop.
	 */
	if (attempt == 0)
		return estimate_us < 1000 ? 0 : clamp_ms(estimate_us);
	/* E/4 * 2^(attempt-1), saturating at the ceiling long before the shift could overflow. */
	us = MAX(estimate_us / 4, 1);
	for (guint i = 1; i < attempt && us < (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000; i++)
		us *= 2;
	return clamp_ms(us);
}

void
healer_particle_poll_record(HealerParticlePoll *self, guint16 type, HealerParticlePollPhase phase, guint64 elapsed_us,
                            guint attempts)
{
	HealerParticlePollSlot *slot = find_slot(self, type, phase);
	guint64 observed = attempts <= 1 ? elapsed_us * 3 / 4 : elapsed_us;

	/* Nothing waits longer than the ceiling between polls, so no estimate needs to be larger. */
	observed = MIN(observed, (guint64)HEALER_PARTICLE_POLL_MAX_MS * 1000);
	if (slot == NULL) {
		slot = &self->slots[0];
		for (guint i = 0; i < HEALER_PARTICLE_POLL_SLOTS; i++) {
			if (!self->slots[i].used) {
				slot = &self->slots[i];
				break;
			}
			if (self->slots[i].last_use < slot->last_use)
				slot = &self->slots[i];
		}
		*slot = (HealerParticlePollSlot){.type = type, .phase = (guint8)phase, .used = TRUE};
		/* The first measurement is the estimate: nothing older to average it with. */
		slot->estimate_us = observed;
	} else {
		slot->estimate_us = (slot->estimate_us * 3 + observed) / 4;
	}
	slot->samples++;
	slot->last_use = ++self->clock;
}
