#include "backoff.h"

guint64
healer_backoff_ceiling_ms(guint attempt, guint64 min_ms, guint64 max_ms)
{
	guint64 base = MAX(min_ms, 1);

	if (max_ms < min_ms)
		max_ms = min_ms;
	/* base * 2^attempt > max_ms, computed without overflowing */
	if (attempt >= 64 || base > (max_ms >> attempt))
		return max_ms;
	return MAX(base << attempt, min_ms);
}

/* x + floor((y - x) * r / 2^32) in 64-bit arithmetic: (y - x) split in halves. */
static guint64
pick(guint64 x, guint64 y, guint32 r)
{
	guint64 span, high, low;

	if (y <= x)
		return x;
	span = y - x;
	high = span >> 32;
	low = span & G_MAXUINT32;
	/* high * r < 2^64 and the sum is below span */
	return x + high * r + ((low * r) >> 32);
}

guint64
healer_backoff_delay_ms(guint attempt, guint64 min_ms, guint64 max_ms, guint32 random)
{
	guint64 ceiling = healer_backoff_ceiling_ms(attempt, min_ms, max_ms);

	return pick(MAX(min_ms, ceiling / 2), ceiling, random);
}

guint64
healer_backoff_delay_full_jitter_ms(guint attempt, guint64 min_ms, guint64 max_ms, guint32 random)
{
	guint64 ceiling = healer_backoff_ceiling_ms(attempt, min_ms, max_ms);

	return pick(min_ms, ceiling, random);
}
