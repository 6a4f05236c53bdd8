/*
 * One direction of the emulated line: a queue of bytes, each stamped with
 * the time it reaches the far end.
 *
 * Pacing is a schedule, not a sleep per byte: a byte read at time t starts
 * on the wire when the wire is free (its slot: the end of the previous
 * byte's slot, or t if the line was idle) and has arrived 10 bit times later
 * (8N1), plus the fixed latency.  The writer delivers a byte no earlier
 * than that; when it wakes late, it catches up without moving the schedule,
 * so lateness never adds up.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linkemu.h"

#define QUEUE_BYTES 65536u /* per direction; beyond it the sender is held back by the pty's own buffer */
#define NS_PER_S    1000000000ull

/* ---- PRNG ------------------------------------------------------------------- */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Each (seed, stream) pair gives its own sequence, so adding drops does not change where bits flip. */
void
linkemu_rng_seed(linkemu_rng_t *rng, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);

	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&x);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
linkemu_rng_next(linkemu_rng_t *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/*
 * Trials before the next success at probability p (geometric): drawing the
 * gap once instead of a coin per bit keeps 1e-6 cheap and gives the same
 * distribution.
 */
static uint64_t
geometric_gap(linkemu_rng_t *rng, double p)
{
	double u = ((double)(linkemu_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
	double gap;

	if (p >= 1.0)
		return 0;
	gap = floor(log(u) / log1p(-p));
	return gap >= 1e18 ? UINT64_MAX / 2 : (uint64_t)gap;
}

/* ---- the line ---------------------------------------------------------------- */

void
linkemu_line_init(linkemu_line_t *line, unsigned baud, uint64_t latency_ns, double bit_error_rate, double drop_rate,
                  uint64_t seed, unsigned direction)
{
	memset(line, 0, sizeof *line);
	line->baud = baud;
	line->latency_ns = latency_ns;
	line->bit_error_rate = bit_error_rate;
	line->drop_rate = drop_rate;
	line->cap = QUEUE_BYTES;
	line->data = malloc(line->cap);
	line->due_ns = malloc(line->cap * sizeof line->due_ns[0]);
	if (line->data == NULL || line->due_ns == NULL)
		abort();
	linkemu_rng_seed(&line->bit_rng, seed, 2 * direction);
	linkemu_rng_seed(&line->drop_rng, seed, 2 * direction + 1);
	line->next_bit_error = bit_error_rate > 0 ? geometric_gap(&line->bit_rng, bit_error_rate) : UINT64_MAX;
	line->next_drop = drop_rate > 0 ? geometric_gap(&line->drop_rng, drop_rate) : UINT64_MAX;
}

void
linkemu_line_free(linkemu_line_t *line)
{
	free(line->data);
	free(line->due_ns);
	line->data = NULL;
	line->due_ns = NULL;
}

size_t
linkemu_line_room(const linkemu_line_t *line)
{
	return line->cap - line->len;
}

/* When the k-th byte of a busy period has fully crossed the wire: k * 10 bits / baud, exact to the ns. */
static uint64_t
busy_ns(const linkemu_line_t *line, uint64_t k)
{
	uint64_t bits = 10; /* 8N1: start bit, 8 data bits, stop bit */

	return k / line->baud * bits * NS_PER_S + k % line->baud * bits * NS_PER_S / line->baud;
}

/* The flips and drops a byte meets on the way; false when it is lost. */
static bool
impair(linkemu_line_t *line, uint8_t *byte)
{
	uint8_t before = *byte;

	if (line->byte_pos++ == line->next_drop) {
		line->next_drop += 1 + geometric_gap(&line->drop_rng, line->drop_rate);
		line->count.drops++;
		return false;
	}
	while (line->next_bit_error < line->bit_pos + 8) {
		*byte ^= (uint8_t)(1u << (line->next_bit_error - line->bit_pos));
		line->count.bit_errors++;
		line->next_bit_error += 1 + geometric_gap(&line->bit_rng, line->bit_error_rate);
	}
	line->bit_pos += 8;
	if (*byte != before)
		line->count.bytes_corrupted++;
	return true;
}

void
linkemu_line_push(linkemu_line_t *line, const uint8_t *bytes, size_t n, uint64_t now_ns)
{
	for (size_t i = 0; i < n && line->len < line->cap; i++) {
		uint8_t byte = bytes[i];
		uint64_t arrives = now_ns;

		line->count.in++;
		if (line->baud > 0) {
			/* The wire went idle after the last byte: this one starts a new busy period now. */
			if (line->busy_bytes == 0 || line->busy_start_ns + busy_ns(line, line->busy_bytes) <= now_ns) {
				line->busy_start_ns = now_ns;
				line->busy_bytes = 0;
			}
			line->busy_bytes++;
			arrives = line->busy_start_ns + busy_ns(line, line->busy_bytes);
		}
		/* A dropped byte took its slot on the wire all the same. */
		if (!impair(line, &byte))
			continue;
		size_t at = (line->head + line->len) % line->cap;
		line->data[at] = byte;
		line->due_ns[at] = arrives + line->latency_ns;
		line->len++;
	}
}

uint64_t
linkemu_line_next_due(const linkemu_line_t *line)
{
	return line->len > 0 ? line->due_ns[line->head] : UINT64_MAX;
}

size_t
linkemu_line_ready(const linkemu_line_t *line, uint64_t now_ns, const uint8_t **bytes)
{
	size_t run = line->cap - line->head < line->len ? line->cap - line->head : line->len;
	size_t n = 0;

	/* Due times never decrease along the queue, so the ready bytes are a prefix. */
	while (n < run && line->due_ns[line->head + n] <= now_ns)
		n++;
	*bytes = line->data + line->head;
	return n;
}

void
linkemu_line_consume(linkemu_line_t *line, size_t n)
{
	line->head = (line->head + n) % line->cap;
	line->len -= n;
	line->count.out += n;
}

void
linkemu_line_discard(linkemu_line_t *line)
{
	line->count.lost += line->len;
	line->head = line->len = 0;
}
