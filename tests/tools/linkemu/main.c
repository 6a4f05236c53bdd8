/*
 * linkemu: relays bytes between two endpoints as a serial line would, so
 * tests and benchmarks can put healerd (or sb/rb) and a device behind a
 * link of a given speed, latency and quality, and pull its plug.
 *
 *   linkemu [OPTION]... HOST-END DEVICE-END
 *
 * The first endpoint is the host's side: the one an unplug removes.  The
 * directions are named after where bytes go: to-device (first to second)
 * and to-host.  Each direction is paced on its own (full duplex).  Prints
 * "ready" on stdout once both endpoints exist, "unplugged" and "plugged"
 * when that happens, and one JSON line of counters at exit (stderr, or
 * --stats FILE).  One poll loop, no threads: the next wake-up is the next
 * byte's arrival time, read with CLOCK_MONOTONIC at nanosecond precision.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "linkemu.h"

enum { TO_DEVICE = 0, TO_HOST = 1 };
static const char *const direction_names[] = {"to_device", "to_host"};

static struct {
	/* Options. */
	unsigned baud;
	double latency_ms;
	double bit_error_rate, drop_rate;
	uint64_t seed;
	uint64_t unplug_after; /* 0: not by bytes */
	int unplug_direction;
	double unplug_at_ms;    /* < 0: not by time */
	double replug_after_ms; /* < 0: stays unplugged */
	const char *stats_path;
	uint64_t tick_ns;
	FILE *trace; /* --trace: one line per read and per delivery */

	linkemu_endpoint_t ends[2]; /* [0] host side, [1] device side */
	linkemu_line_t lines[2];    /* [TO_DEVICE] reads ends[0], writes ends[1]; [TO_HOST] the reverse */
	bool blocked[2];            /* the receiving end of this direction took no more: wait for POLLOUT */
	int signal_fd;

	uint64_t ready_ns, first_byte_ns, last_byte_ns;
	bool unplugged, unplug_spent;
	uint64_t replug_at_ns;
	unsigned unplugs, replugs;
	bool quit;
	int status;
} emu = {
        .baud = 115200,
        .seed = 1,
        .unplug_at_ms = -1,
        .replug_after_ms = -1,
        .tick_ns = 100000,
        .signal_fd = -1,
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: linkemu [OPTION]... HOST-END DEVICE-END\n"
	             "Relays bytes between two endpoints as a serial line (8N1) would.\n"
	             "\n"
	             "Endpoints (the first is the host's side, the one an unplug pulls):\n"
	             "  tty:PATH    open an existing tty or pty (e.g. a healer-sim's --link)\n"
	             "  pty:PATH    create a pty and link its device side at PATH (a port appearing)\n"
	             "  cmd:COMMAND run COMMAND (/bin/sh -c) with stdin and stdout on a new pty\n"
	             "\n"
	             "Options:\n"
	             "  --baud N               line rate, each direction: N/10 bytes per second (default 115200;\n"
	             "                         0: no pacing)\n"
	             "  --latency-ms MS        one-way latency added to every byte (default 0; fractions allowed)\n"
	             "  --bit-error-rate P     probability that a data bit is flipped, 0..1 (default 0)\n"
	             "  --drop-rate P          probability that a byte is lost, 0..1 (default 0)\n"
	             "  --seed N               seed of the errors and drops (default 1): same seed, same run\n"
	             "  --unplug-after N       unplug once N bytes were delivered in --unplug-direction\n"
	             "  --unplug-direction D   to-device (default) or to-host\n"
	             "  --unplug-at-ms MS      unplug MS after \"ready\"\n"
	             "  --replug-after-ms MS   plug back in MS after the unplug (a new pty at the same path)\n"
	             "  --stats FILE           write the counters there (one JSON line) instead of stderr\n"
	             "  --tick-us N            deliver bytes in batches at most N us late (default 100)\n"
	             "  --trace FILE           log every read and delivery: seconds since ready, in|out,\n"
	             "                         direction, byte count, the first 8 bytes in hex\n"
	             "  --help                 this text\n"
	             "\n"
	             "Prints \"ready\" on stdout when both endpoints exist, \"unplugged\" and \"plugged\" when\n"
	             "that happens.  Runs until SIGTERM or SIGINT, or until every cmd: endpoint has ended;\n"
	             "exits 0, the first failing command's status, 1 on an error, 2 on a usage error.\n");
}

static _Noreturn void
bad_option(const char *option, const char *value, const char *want)
{
	fprintf(stderr, "linkemu: %s: '%s' is not %s\n", option, value, want);
	usage(stderr);
	exit(2);
}

static uint64_t
parse_count(const char *option, const char *text, uint64_t min, uint64_t max)
{
	char *end = NULL;
	unsigned long long v;
	char want[96];

	errno = 0;
	v = strtoull(text, &end, 10);
	if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 || v < min || v > max) {
		snprintf(want, sizeof want, "a whole number in %" PRIu64 "..%" PRIu64, min, max);
		bad_option(option, text, want);
	}
	return v;
}

static double
parse_real(const char *option, const char *text, double max, const char *want)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (text[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 || v > max)
		bad_option(option, text, want);
	return v;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
ms_to_ns(double ms)
{
	return (uint64_t)llround(ms * 1e6);
}

/* ---- tracing: what a serial sniffer would show, for the benchmarks' protocol timings ---- */

static void
trace(const char *what, int d, const uint8_t *bytes, size_t n, uint64_t now)
{
	if (emu.trace == NULL)
		return;
	fprintf(emu.trace, "%.6f %s %s %zu ", ((double)now - (double)emu.ready_ns) / 1e9, what, direction_names[d], n);
	for (size_t i = 0; i < n && i < 8; i++)
		fprintf(emu.trace, "%02x", bytes[i]);
	fputc('\n', emu.trace);
}

/* ---- unplug --------------------------------------------------------------- */

static void
unplug(void)
{
	linkemu_endpoint_close(&emu.ends[0]);
	/* What was on the wire either way is gone with the cable. */
	linkemu_line_discard(&emu.lines[TO_DEVICE]);
	linkemu_line_discard(&emu.lines[TO_HOST]);
	emu.blocked[TO_DEVICE] = emu.blocked[TO_HOST] = false;
	emu.unplugged = emu.unplug_spent = true;
	emu.unplugs++;
	printf("unplugged\n");
	fflush(stdout);
	if (emu.replug_after_ms >= 0)
		emu.replug_at_ns = now_ns() + ms_to_ns(emu.replug_after_ms);
}

static void
replug(void)
{
	emu.replug_at_ns = 0;
	if (!linkemu_endpoint_open(&emu.ends[0])) {
		emu.status = 1;
		emu.quit = true;
		return;
	}
	emu.unplugged = false;
	emu.replugs++;
	printf("plugged\n");
	fflush(stdout);
}

/* ---- relaying --------------------------------------------------------------- */

static bool
end_is_open(int i)
{
	return emu.ends[i].fd >= 0;
}

/* A tty endpoint went away (the device process died): nothing sensible is left to emulate. */
static void
lost_end(int i, const char *why)
{
	fprintf(stderr, "linkemu: %s: %s\n", emu.ends[i].arg, why);
	linkemu_endpoint_close(&emu.ends[i]);
	emu.status = 1;
	emu.quit = true;
}

/* Writes what has arrived at the receiving end of direction d. */
static void
deliver(int d, uint64_t now)
{
	linkemu_line_t *line = &emu.lines[d];
	int to = d == TO_DEVICE ? 1 : 0;

	if (!end_is_open(to)) {
		linkemu_line_discard(line);
		return;
	}
	emu.blocked[d] = false;
	for (;;) {
		const uint8_t *bytes;
		size_t n = linkemu_line_ready(line, now, &bytes);
		bool limit = emu.unplug_after > 0 && !emu.unplug_spent && d == emu.unplug_direction;
		ssize_t w;

		if (limit && n > emu.unplug_after - line->count.out)
			n = (size_t)(emu.unplug_after - line->count.out);
		if (n == 0)
			return;
		w = write(emu.ends[to].fd, bytes, n);
		if (w > 0) {
			trace("out", d, bytes, (size_t)w, now);
			linkemu_line_consume(line, (size_t)w);
			emu.last_byte_ns = now;
			if (limit && line->count.out == emu.unplug_after) {
				unplug();
				return;
			}
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			emu.blocked[d] = true;
			return;
		}
		if (emu.ends[to].kind == LINKEMU_CMD) {
			/* The command is gone: what was still travelling to it has nobody to arrive at. */
			linkemu_endpoint_close(&emu.ends[to]);
			linkemu_line_discard(line);
			return;
		}
		lost_end(to, w < 0 ? strerror(errno) : "write refused");
		return;
	}
}

/* Reads what end i sent, stamped with the time now. */
static void
take_input(int i, uint64_t now)
{
	linkemu_endpoint_t *ep = &emu.ends[i];
	linkemu_line_t *line = &emu.lines[i == 0 ? TO_DEVICE : TO_HOST];
	uint8_t buf[4096];

	for (;;) {
		size_t room = linkemu_line_room(line);
		ssize_t n;

		/* While unplugged, the device talks to no one: its bytes are read and lost. */
		if (emu.unplugged)
			room = sizeof buf;
		if (room == 0)
			return;
		n = read(ep->read_fd, buf, room < sizeof buf ? room : sizeof buf);
		if (n > 0) {
			if (emu.first_byte_ns == 0)
				emu.first_byte_ns = now;
			if (emu.unplugged) {
				line->count.in += (uint64_t)n;
				line->count.lost += (uint64_t)n;
			} else {
				trace("in", i == 0 ? TO_DEVICE : TO_HOST, buf, (size_t)n, now);
				linkemu_line_push(line, buf, (size_t)n, now);
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (ep->kind != LINKEMU_CMD) {
			/* EOF or EIO on a tty: whatever was on its other side died. */
			lost_end(i, n == 0 ? "end of file" : "hung up");
			return;
		}
		/* The command closed its stdout: it has said all it will; once it has exited too, it is gone. */
		close(ep->read_fd);
		ep->read_fd = -1;
		if (ep->pid == 0)
			linkemu_endpoint_close(ep);
		return;
	}
}

static void
reap_children(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < 2; i++) {
			linkemu_endpoint_t *ep = &emu.ends[i];
			if (ep->kind != LINKEMU_CMD || ep->pid != pid)
				continue;
			ep->pid = 0;
			ep->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			if (ep->exit_status != 0 && emu.status == 0)
				emu.status = ep->exit_status;
			/* Gone once its stdout has ended too (what it wrote last is still in the pipe). */
			if (ep->read_fd < 0)
				linkemu_endpoint_close(ep);
		}
	}
}

static void
on_signal(void)
{
	struct signalfd_siginfo info;

	while (read(emu.signal_fd, &info, sizeof info) == sizeof info) {
		if (info.ssi_signo == SIGCHLD)
			reap_children();
		else
			emu.quit = true;
	}
}

/* With cmd: endpoints, the run ends when every command has ended and what they said has arrived. */
static bool
finished(void)
{
	bool any_cmd = false;

	for (int i = 0; i < 2; i++) {
		if (emu.ends[i].kind != LINKEMU_CMD)
			continue;
		any_cmd = true;
		if (end_is_open(i))
			return false;
	}
	return any_cmd && emu.lines[TO_DEVICE].len == 0 && emu.lines[TO_HOST].len == 0;
}

static void
timed_events(uint64_t now)
{
	if (!emu.unplug_spent && emu.unplug_at_ms >= 0 && now >= emu.ready_ns + ms_to_ns(emu.unplug_at_ms))
		unplug();
	if (emu.unplugged && emu.replug_at_ns != 0 && now >= emu.replug_at_ns)
		replug();
}

/* How long to sleep: until the next byte is due (at least a tick), an unplug or a replug. */
static int64_t
next_timeout_ns(uint64_t now)
{
	uint64_t wake = UINT64_MAX;

	for (int d = 0; d < 2; d++)
		if (!emu.blocked[d] && linkemu_line_next_due(&emu.lines[d]) < wake)
			wake = linkemu_line_next_due(&emu.lines[d]);
	if (wake != UINT64_MAX)
		wake = wake > now + emu.tick_ns ? wake : now + emu.tick_ns;
	if (!emu.unplug_spent && emu.unplug_at_ms >= 0 && emu.ready_ns + ms_to_ns(emu.unplug_at_ms) < wake)
		wake = emu.ready_ns + ms_to_ns(emu.unplug_at_ms);
	if (emu.replug_at_ns != 0 && emu.replug_at_ns < wake)
		wake = emu.replug_at_ns;
	if (wake == UINT64_MAX)
		return -1;
	return wake > now ? (int64_t)(wake - now) : 0;
}

static void
loop(void)
{
	while (!emu.quit) {
		struct pollfd fds[5];
		int who[5]; /* the endpoint read from; -1 signals, -2 room to write (the next deliver() uses it) */
		nfds_t n = 0;
		int64_t timeout;
		struct timespec ts;
		uint64_t now = now_ns();

		timed_events(now);
		deliver(TO_DEVICE, now);
		deliver(TO_HOST, now);
		if (emu.quit || finished())
			return;

		fds[n] = (struct pollfd){.fd = emu.signal_fd, .events = POLLIN};
		who[n++] = -1;
		for (int i = 0; i < 2; i++) {
			linkemu_endpoint_t *ep = &emu.ends[i];
			int from = i == 0 ? TO_DEVICE : TO_HOST;
			/* Not polled when its line is full: a hang-up we cannot read yet would wake us in a loop. */
			if (ep->read_fd >= 0 && (emu.unplugged || linkemu_line_room(&emu.lines[from]) > 0)) {
				fds[n] = (struct pollfd){.fd = ep->read_fd, .events = POLLIN};
				who[n++] = i;
			}
			if (ep->fd >= 0 && emu.blocked[1 - from]) {
				fds[n] = (struct pollfd){.fd = ep->fd, .events = POLLOUT};
				who[n++] = -2;
			}
		}
		timeout = next_timeout_ns(now);
		ts.tv_sec = timeout / 1000000000;
		ts.tv_nsec = timeout % 1000000000;
		if (ppoll(fds, n, timeout < 0 ? NULL : &ts, NULL) < 0 && errno != EINTR) {
			fprintf(stderr, "linkemu: poll: %s\n", strerror(errno));
			emu.status = 1;
			return;
		}
		now = now_ns();
		for (nfds_t k = 0; k < n; k++) {
			if (fds[k].revents == 0)
				continue;
			if (who[k] == -1)
				on_signal();
			else if (who[k] >= 0 && emu.ends[who[k]].read_fd == fds[k].fd)
				take_input(who[k], now);
		}
	}
}

/* ---- counters ----------------------------------------------------------------- */

static double
since_ready_s(uint64_t t)
{
	return t == 0 ? -1.0 : ((double)t - (double)emu.ready_ns) / 1e9;
}

static void
write_stats(void)
{
	char text[1024];
	size_t len = 0;
	FILE *out = stderr;
	char tmp[PATH_MAX];

	len += (size_t)snprintf(text + len, sizeof text - len, "{");
	for (int d = 0; d < 2; d++) {
		const linkemu_counters_t *c = &emu.lines[d].count;
		len += (size_t)snprintf(text + len, sizeof text - len,
		                        "\"%s\":{\"in\":%" PRIu64 ",\"out\":%" PRIu64 ",\"bit_errors\":%" PRIu64
		                        ",\"bytes_corrupted\":%" PRIu64 ",\"drops\":%" PRIu64 ",\"lost\":%" PRIu64 "},",
		                        direction_names[d], c->in, c->out, c->bit_errors, c->bytes_corrupted, c->drops,
		                        c->lost);
	}
	snprintf(text + len, sizeof text - len,
	         "\"unplugs\":%u,\"replugs\":%u,\"first_byte_s\":%.6f,\"last_byte_s\":%.6f,\"seconds\":%.6f}\n",
	         emu.unplugs, emu.replugs, since_ready_s(emu.first_byte_ns), since_ready_s(emu.last_byte_ns),
	         since_ready_s(now_ns()));
	if (emu.stats_path != NULL) {
		/* Whole or not at all: a script may be waiting for the file. */
		snprintf(tmp, sizeof tmp, "%s.tmp", emu.stats_path);
		out = fopen(tmp, "w");
		if (out == NULL) {
			fprintf(stderr, "linkemu: %s: %s\n", tmp, strerror(errno));
			emu.status = emu.status ? emu.status : 1;
			out = stderr;
		}
	}
	fputs(text, out);
	if (out != stderr) {
		if (fclose(out) != 0 || rename(tmp, emu.stats_path) != 0) {
			fprintf(stderr, "linkemu: %s: %s\n", emu.stats_path, strerror(errno));
			emu.status = emu.status ? emu.status : 1;
		}
	}
}

/* ---- main ------------------------------------------------------------------------ */

static void
parse_options(int argc, char **argv)
{
	static const struct option options[] = {
	        {"baud", required_argument, NULL, 'b'},
	        {"latency-ms", required_argument, NULL, 'l'},
	        {"bit-error-rate", required_argument, NULL, 'e'},
	        {"drop-rate", required_argument, NULL, 'd'},
	        {"seed", required_argument, NULL, 's'},
	        {"unplug-after", required_argument, NULL, 'u'},
	        {"unplug-direction", required_argument, NULL, 'D'},
	        {"unplug-at-ms", required_argument, NULL, 'U'},
	        {"replug-after-ms", required_argument, NULL, 'r'},
	        {"stats", required_argument, NULL, 'S'},
	        {"tick-us", required_argument, NULL, 't'},
	        {"trace", required_argument, NULL, 'T'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	char err[256];
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			emu.baud = (unsigned)parse_count("--baud", optarg, 0, 100000000);
			break;
		case 'l':
			emu.latency_ms = parse_real("--latency-ms", optarg, 3600000, "a number of ms >= 0");
			break;
		case 'e':
			emu.bit_error_rate = parse_real("--bit-error-rate", optarg, 1, "a probability in 0..1");
			break;
		case 'd':
			emu.drop_rate = parse_real("--drop-rate", optarg, 1, "a probability in 0..1");
			break;
		case 's':
			emu.seed = parse_count("--seed", optarg, 0, UINT64_MAX);
			break;
		case 'u':
			emu.unplug_after = parse_count("--unplug-after", optarg, 1, UINT64_MAX);
			break;
		case 'D':
			if (strcmp(optarg, "to-device") == 0)
				emu.unplug_direction = TO_DEVICE;
			else if (strcmp(optarg, "to-host") == 0)
				emu.unplug_direction = TO_HOST;
			else
				bad_option("--unplug-direction", optarg, "to-device or to-host");
			break;
		case 'U':
			emu.unplug_at_ms = parse_real("--unplug-at-ms", optarg, 1e9, "a number of ms >= 0");
			break;
		case 'r':
			emu.replug_after_ms = parse_real("--replug-after-ms", optarg, 1e9, "a number of ms >= 0");
			break;
		case 'S':
			emu.stats_path = optarg;
			break;
		case 't':
			emu.tick_ns = 1000 * parse_count("--tick-us", optarg, 0, 1000000);
			break;
		case 'T':
			emu.trace = fopen(optarg, "w");
			if (emu.trace == NULL) {
				fprintf(stderr, "linkemu: --trace: %s: %s\n", optarg, strerror(errno));
				exit(1);
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "linkemu: expected two endpoints (HOST-END DEVICE-END), got %d\n", argc - optind);
		usage(stderr);
		exit(2);
	}
	for (int i = 0; i < 2; i++) {
		if (!linkemu_endpoint_parse(&emu.ends[i], argv[optind + i], err, sizeof err)) {
			fprintf(stderr, "linkemu: %s\n", err);
			usage(stderr);
			exit(2);
		}
	}
	if (emu.unplug_after > 0 && emu.unplug_at_ms >= 0) {
		fprintf(stderr, "linkemu: --unplug-after and --unplug-at-ms: choose one\n");
		exit(2);
	}
	if (emu.replug_after_ms >= 0 && emu.unplug_after == 0 && emu.unplug_at_ms < 0) {
		fprintf(stderr, "linkemu: --replug-after-ms needs --unplug-after or --unplug-at-ms\n");
		exit(2);
	}
	if (emu.replug_after_ms >= 0 && emu.ends[0].kind == LINKEMU_CMD) {
		fprintf(stderr, "linkemu: --replug-after-ms: a cmd: host end cannot be plugged back in\n");
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	sigset_t mask;

	parse_options(argc, argv);
	for (int d = 0; d < 2; d++)
		linkemu_line_init(&emu.lines[d], emu.baud, ms_to_ns(emu.latency_ms), emu.bit_error_rate, emu.drop_rate,
		                  emu.seed, (unsigned)d);

	/* Signals arrive as readable bytes in the poll set, so no handler races the loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	emu.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (emu.signal_fd < 0) {
		fprintf(stderr, "linkemu: signalfd: %s\n", strerror(errno));
		return 1;
	}
	/* Wake-ups a few us apart need the kernel not to round them up to its default 50 us slack. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	for (int i = 0; i < 2; i++) {
		if (!linkemu_endpoint_open(&emu.ends[i])) {
			emu.status = 1;
			goto out;
		}
	}
	emu.ready_ns = now_ns();
	printf("ready\n");
	fflush(stdout);
	loop();

out:
	for (int i = 0; i < 2; i++) {
		linkemu_endpoint_t *ep = &emu.ends[i];
		linkemu_endpoint_close(ep);
		if (ep->kind == LINKEMU_CMD && ep->pid > 0) {
			int status;
			kill(ep->pid, SIGTERM);
			waitpid(ep->pid, &status, 0);
		}
	}
	for (int d = 0; d < 2; d++)
		linkemu_line_discard(&emu.lines[d]);
	if (emu.ready_ns != 0)
		write_stats();
	if (emu.trace != NULL && fclose(emu.trace) != 0) {
		fprintf(stderr, "linkemu: --trace: %s\n", strerror(errno));
		emu.status = emu.status ? emu.status : 1;
	}
	for (int d = 0; d < 2; d++)
		linkemu_line_free(&emu.lines[d]);
	return emu.status;
}
