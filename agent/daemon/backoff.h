/*
 * Retry delays: exponential backoff with jitter, as a pure function of the
 * attempt number and a random number the caller passes in (so it can be
 * tested, and so the caller chooses the generator: g_random_int()).
 *
 * For attempt a (0 for the first retry), with lo = min_ms and hi = max_ms
 * (hi is raised to lo when it is below it):
 *
 *     ceiling(a) = min(hi, max(lo, 1) * 2^a)       saturating, never overflows
 *     pick(x, y, r) = x + floor((y - x) * r / 2^32)  x <= pick < y, or x when y <= x
 *
 *     equal jitter: delay = pick(max(lo, ceiling / 2), ceiling, random)
 *                   so  max(lo, ceiling/2) <= delay < ceiling  (delay = ceiling when they meet)
 *     full jitter:  delay = pick(lo, ceiling, random)
 *                   so  lo <= delay < ceiling
 *
 * Equal jitter keeps at least half the ceiling between attempts (a steady,
 * predictable pace for one client); full jitter spreads many clients that
 * failed together (a fleet of gateways after an outage) the most.  Neither
 * ever returns less than min_ms or more than max_ms.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* min(max_ms, max(min_ms, 1) * 2^attempt), at least min_ms: the delay with no jitter. */
guint64 healer_backoff_ceiling_ms(guint attempt, guint64 min_ms, guint64 max_ms);

/* Equal jitter: a delay in [max(min_ms, ceiling/2), ceiling). */
guint64 healer_backoff_delay_ms(guint attempt, guint64 min_ms, guint64 max_ms, guint32 random);

/* Full jitter: a delay in [min_ms, ceiling). */
guint64 healer_backoff_delay_full_jitter_ms(guint attempt, guint64 min_ms, guint64 max_ms, guint32 random);

G_END_DECLS
