/*
 * linkemu: an emulated serial line between two endpoints (see main.c for
 * the command line).  Plain C and poll, no GLib: it is a tool for tests and
 * benchmarks, and its timing should not depend on a main loop's
 * millisecond timers.
 */
#ifndef LINKEMU_H
#define LINKEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- line.c: one direction of the line ---------------------------------- */

/* xoshiro256**: small, fast, and the same sequence everywhere for a seed. */
typedef struct {
	uint64_t s[4];
} linkemu_rng_t;

void linkemu_rng_seed(linkemu_rng_t *rng, uint64_t seed, uint64_t stream);
uint64_t linkemu_rng_next(linkemu_rng_t *rng);

typedef struct {
	uint64_t in;              /* bytes read from the sending end */
	uint64_t out;             /* bytes written to the receiving end */
	uint64_t bit_errors;      /* bits flipped */
	uint64_t bytes_corrupted; /* bytes with at least one flipped bit */
	uint64_t drops;           /* bytes lost on the line (they took their slot, then vanished) */
	uint64_t lost;            /* bytes thrown away by an unplug, or still queued at exit */
} linkemu_counters_t;

typedef struct {
	/* Settings. */
	unsigned baud; /* 0: no pacing */
	uint64_t latency_ns;
	double bit_error_rate;
	double drop_rate;

	/* Bytes read, each with the time it reaches the far end. */
	uint8_t *data;
	uint64_t *due_ns;
	size_t cap, head, len;

	/*
	 * The schedule.  While the line is busy, the k-th byte since it last
	 * went idle ends its slot at busy_start + k * 10 s / baud, computed
	 * from k each time so rounding never accumulates.
	 */
	uint64_t busy_start_ns;
	uint64_t busy_bytes;

	/* Impairments: the distance to the next event is drawn geometrically. */
	linkemu_rng_t bit_rng, drop_rng;
	uint64_t bit_pos, next_bit_error; /* data bits that crossed the line; index of the next flip */
	uint64_t byte_pos, next_drop;     /* bytes that crossed the line; index of the next drop */

	linkemu_counters_t count;
} linkemu_line_t;

void linkemu_line_init(linkemu_line_t *line, unsigned baud, uint64_t latency_ns, double bit_error_rate,
                       double drop_rate, uint64_t seed, unsigned direction);
void linkemu_line_free(linkemu_line_t *line);
size_t linkemu_line_room(const linkemu_line_t *line);
/* Puts bytes read at `now_ns` on the line (at most linkemu_line_room()). */
void linkemu_line_push(linkemu_line_t *line, const uint8_t *bytes, size_t n, uint64_t now_ns);
/* When the byte at the front arrives (UINT64_MAX: nothing queued). */
uint64_t linkemu_line_next_due(const linkemu_line_t *line);
/* The bytes at the front that have arrived by now_ns, as one contiguous run (may be shorter at the ring's end). */
size_t linkemu_line_ready(const linkemu_line_t *line, uint64_t now_ns, const uint8_t **bytes);
/* The first n ready bytes were written to the receiving end. */
void linkemu_line_consume(linkemu_line_t *line, size_t n);
/* Throws away what is queued (counted as lost), e.g. at an unplug. */
void linkemu_line_discard(linkemu_line_t *line);

/* ---- endpoint.c: the two ends --------------------------------------------- */

typedef enum {
	LINKEMU_TTY, /* tty:PATH, an existing tty or pty to open */
	LINKEMU_PTY, /* pty:PATH, a new pty whose device side is linked at PATH */
	LINKEMU_CMD, /* cmd:COMMAND, run by /bin/sh with stdin on a new pty, stdout into a pipe */
} linkemu_kind_t;

typedef struct {
	linkemu_kind_t kind;
	const char *arg; /* the path or command */
	int fd;          /* what linkemu writes to: the tty, or the pty's master; -1 while closed */
	int read_fd;     /* what it reads: the same, or a command's stdout pipe; -1 once it ended */
	int slave_fd;    /* our own hold on a pty's device side, so its master never sees a hang-up */
	char slave[64];  /* the pty's device side, /dev/pts/N */
	pid_t pid;       /* LINKEMU_CMD: the child, 0 once reaped */
	int exit_status; /* LINKEMU_CMD: as a shell reports it (128 + signal when killed) */
} linkemu_endpoint_t;

/* Parses "tty:PATH", "pty:PATH" or "cmd:COMMAND"; false with a message in err. */
bool linkemu_endpoint_parse(linkemu_endpoint_t *ep, const char *spec, char *err, size_t err_len);
/* Opens or creates it; false with a message on stderr. */
bool linkemu_endpoint_open(linkemu_endpoint_t *ep);
/* Closes it; a pty's symlink is removed if it still names our pty. */
void linkemu_endpoint_close(linkemu_endpoint_t *ep);
/* Sets the raw mode of a serial line (cfmakeraw) on a tty fd. */
bool linkemu_make_raw(int fd);

#endif
