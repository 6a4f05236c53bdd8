/*
 * The HAL on a Linux host: flash is a file with NOR semantics, the serial
 * port is a pty (paced to a baud rate and delayed by a latency when asked),
 * and a reset starts the firmware again from power-on RAM with its flash as
 * it was, keeping the pty open as a USB-serial adapter would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* SHA256_Transform(): OpenSSL 3 marks the block-level API deprecated but keeps it; it is the one
 * that takes an intermediate state, which is what a board's hash engine is asked for. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <zlib.h>

#include "hal.h"
#include "healer/link-protocol.h"
#include "sim.h"
#include "sim-gcov.h"

#define RING_SIZE 65536u

typedef struct {
	uint8_t data[RING_SIZE];
	uint64_t due_us[RING_SIZE]; /* when each byte has crossed the line */
	size_t head, len;
	uint64_t last_serialised_us;
	/*
	 * The line's schedule since it last went busy: byte k (from 1) is out at
	 * busy_start_us + k x 10 / baud s, kept as whole microseconds plus a
	 * remainder in 1/baud us, so no rounding builds up and no byte divides.
	 */
	uint64_t busy_start_us;
	uint64_t busy_us;
	uint32_t busy_rem;
} ring_t;

/*
 * The board: what a reset does not touch (flash, the serial line and the
 * bytes on it, the reset reason).  It is mapped outside the program's .data
 * and .bss, which a reset puts back as they were at power-on (sim_run()).
 */
typedef struct {
	sim_config_t config;
	uint8_t *flash; /* the flash file, mapped: reads and writes are memory accesses, as on silicon */
	int master_fd;
	int slave_fd; /* held open so the master never sees a hang-up while no host is attached */
	uint8_t reset_reason;
	bool safe_mode_requested;
	uint64_t latency_us;
	ring_t rx, tx;
	uint8_t led;
	sigjmp_buf power_on; /* where the firmware starts, in sim_run() */
	uint8_t *ram_image;  /* .data and .bss as they were before the firmware first ran */
	size_t ram_size;
} board_t;

static board_t *sim;

/* The program's writable data, .data then .bss (glibc's crt1.o and the GNU linker define them). */
extern char __data_start[], _end[];

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
die(const char *what)
{
	fprintf(stderr, "healer-sim: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- flash ------------------------------------------------------------ */

static bool
in_flash(uint32_t addr, size_t len)
{
	const hal_board_t *b = hal_board();

	return addr >= b->flash_start && len <= b->flash_size && addr - b->flash_start <= b->flash_size - len;
}

int
hal_flash_read(uint32_t addr, void *buf, size_t len)
{
	if (!in_flash(addr, len))
		return -1;
	memcpy(buf, sim->flash + (addr - hal_board()->flash_start), len);
	return 0;
}

/* Real flash takes time to program and erase; a power cut lands inside it. */
static void
flash_busy(size_t len)
{
	if (sim->config.flash_us_per_kib > 0)
		usleep((useconds_t)((uint64_t)len * sim->config.flash_us_per_kib / 1024u));
}

int
hal_flash_program(uint32_t addr, const void *data, size_t len)
{
	const uint8_t *src = data;
	uint8_t *dst;

	if (!in_flash(addr, len))
		return -1;
	dst = sim->flash + (addr - hal_board()->flash_start);
	/* NOR: programming only clears bits.  4 KiB at a time, so a kill lands between pages too. */
	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;
		flash_busy(n);
		for (size_t i = 0; i < n; i++)
			dst[off + i] &= src[off + i];
	}
	return 0;
}

int
hal_flash_erase(uint32_t addr, size_t len)
{
	const hal_board_t *b = hal_board();
	uint32_t end = addr + (uint32_t)len;
	bool start_ok = false, end_ok = false;

	for (unsigned i = 0; i < b->n_sectors; i++) {
		start_ok |= b->sectors[i].start == addr;
		end_ok |= b->sectors[i].start + b->sectors[i].size == end;
	}
	if (!start_ok || !end_ok || !in_flash(addr, len))
		return -1;
	for (size_t off = 0; off < len; off += 4096) {
		flash_busy(4096);
		memset(sim->flash + (addr - b->flash_start + off), 0xFF, 4096);
	}
	return 0;
}

int
sim_flash_create(const char *path)
{
	char tmp[4096];
	uint8_t ones[4096];
	int fd;

	snprintf(tmp, sizeof tmp, "%s.new", path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	memset(ones, 0xFF, sizeof ones);
	for (uint32_t off = 0; off < hal_board()->flash_size; off += sizeof ones) {
		if (write(fd, ones, sizeof ones) != sizeof ones) {
			close(fd);
			return -1;
		}
	}
	if (fsync(fd) != 0 || close(fd) != 0)
		return -1;
	return rename(tmp, path);
}

/* ---- serial ------------------------------------------------------------- */

static void
ring_push(ring_t *r, const uint8_t *bytes, size_t n, uint64_t now)
{
	/* 8N1: ten bits a byte; at 921600 baud 10.85 us, so whole microseconds and a remainder. */
	uint32_t baud = sim->config.baud;
	uint64_t byte_us = baud > 0 ? 10000000u / baud : 0;
	uint32_t byte_rem = baud > 0 ? 10000000u % baud : 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t serialised;
		size_t at = (r->head + r->len) % RING_SIZE;

		if (r->last_serialised_us <= now) {
			/* The line was idle: this byte starts a new schedule. */
			r->busy_start_us = now;
			r->busy_us = 0;
			r->busy_rem = 0;
		}
		r->busy_us += byte_us;
		r->busy_rem += byte_rem;
		if (baud > 0 && r->busy_rem >= baud) {
			r->busy_us++;
			r->busy_rem -= baud;
		}
		serialised = r->busy_start_us + r->busy_us;

		r->last_serialised_us = serialised;
		r->data[at] = bytes[i];
		r->due_us[at] = serialised + sim->latency_us;
		r->len++;
	}
}

/*
 * Bytes at the front that have arrived by `now`.  Due times never decrease
 * along the ring (a schedule starts when the last one is over, the latency is
 * fixed), so the first byte not yet due is found by bisection.
 */
static size_t
ring_ready(const ring_t *r, uint64_t now)
{
	size_t lo = 0, hi = r->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->due_us[(r->head + mid) % RING_SIZE] <= now)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
ring_drop(ring_t *r, size_t n)
{
	r->head = (r->head + n) % RING_SIZE;
	r->len -= n;
}

/* How many of the first n bytes lie in one piece from the head, before the ring wraps. */
static size_t
ring_span(const ring_t *r, size_t n)
{
	return RING_SIZE - r->head < n ? RING_SIZE - r->head : n;
}

/*
 * When the other side of a ring has something to act on: its first frame
 * delimiter has crossed the line, or, with none in it, its last byte has (the
 * line went idle).  A UART port wakes its core the same way (DMA reception
 * with a character-match or idle-line interrupt), not once a byte.
 */
static uint64_t
ring_next_event(const ring_t *r)
{
	size_t first = ring_span(r, r->len);
	const uint8_t *delimiter;
	size_t at;

	if (r->len == 0)
		return UINT64_MAX;
	delimiter = memchr(r->data + r->head, LINK_FRAME_DELIMITER, first);
	if (delimiter == NULL && first < r->len)
		delimiter = memchr(r->data, LINK_FRAME_DELIMITER, r->len - first);
	at = delimiter != NULL ? ((size_t)(delimiter - r->data) + RING_SIZE - r->head) % RING_SIZE : r->len - 1;
	return r->due_us[(r->head + at) % RING_SIZE];
}

static void
sleep_until(uint64_t due)
{
	struct timespec ts = {.tv_sec = (time_t)(due / 1000000u), .tv_nsec = (long)(due % 1000000u) * 1000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Moves bytes whose time has come out to the pty. */
static void
tx_pump(void)
{
	size_t ready = ring_ready(&sim->tx, now_us());

	while (ready > 0) {
		size_t chunk = ring_span(&sim->tx, ready);
		ssize_t n = write(sim->master_fd, sim->tx.data + sim->tx.head, chunk);
		if (n > 0) {
			ring_drop(&sim->tx, (size_t)n);
			ready -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* Nobody is reading: wait a little, then the line drops them, as a UART would. */
			struct pollfd p = {.fd = sim->master_fd, .events = POLLOUT};
			if (poll(&p, 1, 1000) > 0)
				continue;
		}
		ring_drop(&sim->tx, ready);
		return;
	}
}

/* Takes what the host wrote into the line, stamped with when it will have crossed it. */
static void
rx_fill(void)
{
	uint8_t buf[4096];
	uint64_t now = now_us();

	while (sim->rx.len < RING_SIZE) {
		size_t room = RING_SIZE - sim->rx.len;
		ssize_t n = read(sim->master_fd, buf, room < sizeof buf ? room : sizeof buf);
		if (n <= 0)
			return;
		ring_push(&sim->rx, buf, (size_t)n, now);
	}
}

size_t
hal_serial_read(uint8_t *buf, size_t max)
{
	size_t ready, n;

	rx_fill();
	ready = ring_ready(&sim->rx, now_us());
	n = ready < max ? ready : max;
	{
		size_t first = ring_span(&sim->rx, n);
		memcpy(buf, sim->rx.data + sim->rx.head, first);
		memcpy(buf + first, sim->rx.data, n - first);
	}
	ring_drop(&sim->rx, n);
	return n;
}

void
hal_serial_write(const uint8_t *data, size_t len)
{
	while (len > 0) {
		size_t room = RING_SIZE - sim->tx.len, n = len < room ? len : room;

		if (n == 0) {
			/* The line is full: wait for its oldest byte to leave. */
			sleep_until(sim->tx.due_us[sim->tx.head]);
			tx_pump();
			continue;
		}
		ring_push(&sim->tx, data, n, now_us());
		data += n;
		len -= n;
	}
	tx_pump();
}

void
hal_serial_flush(void)
{
	while (sim->tx.len > 0) {
		sleep_until(sim->tx.due_us[(sim->tx.head + sim->tx.len - 1) % RING_SIZE]);
		tx_pump();
	}
}

uint32_t
hal_millis(void)
{
	return (uint32_t)(now_us() / 1000u);
}

/*
 * Sleeps until a frame (or the end of a burst) has arrived for the
 * firmware, or timeout_ms passed.  Meanwhile the line runs here: bytes the
 * host writes are taken in as they come (so their arrival times are right)
 * and the device's bytes leave when they are due, without waking the
 * firmware for either.  One wakeup per event, not one a millisecond while
 * bytes are in flight.
 */
void
hal_wait_event(uint32_t timeout_ms)
{
	uint64_t deadline = now_us() + (uint64_t)timeout_ms * 1000u;

	for (;;) {
		struct pollfd p = {.fd = sim->master_fd, .events = POLLIN};
		uint64_t now, rx_due, tx_due, wake;
		struct timespec ts;

		sim_gcov_exit_if_stopped();
		tx_pump();
		now = now_us();
		rx_due = ring_next_event(&sim->rx);
		if (rx_due <= now || deadline <= now)
			return;
		tx_due = ring_next_event(&sim->tx);
		wake = deadline < rx_due ? deadline : rx_due;
		wake = tx_due < wake ? tx_due : wake;
		if (wake <= now)
			continue; /* a device byte fell due meanwhile */
		if (sim->rx.len == RING_SIZE) {
			/* Nothing more fits: let the host's bytes wait in the pty. */
			sleep_until(wake);
			continue;
		}
		ts.tv_sec = (time_t)((wake - now) / 1000000u);
		ts.tv_nsec = (long)((wake - now) % 1000000u) * 1000;
		if (ppoll(&p, 1, &ts, NULL) > 0)
			rx_fill();
	}
}

/* ---- engines ------------------------------------------------------------ */

/*
 * The sim board's hash and CRC engines are the host's (OpenSSL uses the
 * CPU's SHA extensions where it has them): a real device hashes on its own
 * core, while 64 simulators hashing in software at the same reset took both
 * of a gateway's cores from the healerd they stand beside (bench/README.md).
 */
bool
hal_sha256_blocks(uint32_t state[8], const uint8_t *blocks, size_t count)
{
	SHA256_CTX ctx;

	if (sim == NULL || sim->config.no_engines)
		return false;
	_Static_assert(sizeof ctx.h == 8 * sizeof(uint32_t), "SHA256_CTX holds H0..H7 as 32-bit words");
	memset(&ctx, 0, sizeof ctx);
	memcpy(ctx.h, state, sizeof ctx.h);
	for (size_t i = 0; i < count; i++)
		SHA256_Transform(&ctx, blocks + 64 * i);
	memcpy(state, ctx.h, sizeof ctx.h);
	return true;
}

bool
hal_crc32_update(uint32_t *crc, const void *data, size_t len)
{
	if (sim == NULL || sim->config.no_engines)
		return false;
	*crc = (uint32_t)crc32_z(*crc, data, len);
	return true;
}

/* ---- reset, LED, diagnostics ------------------------------------------- */

uint8_t
hal_reset_reason(void)
{
	return sim->reset_reason;
}

bool
hal_safe_mode_requested(void)
{
	return sim->safe_mode_requested;
}

/*
 * Copies the program's RAM.  Byte by byte and not instrumented: under
 * AddressSanitizer the region holds the redzones between globals, which a
 * checked memcpy() would report.
 */
__attribute__((no_sanitize("address"))) static void
ram_copy(volatile uint8_t *dst, const volatile uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = src[i];
}

/* A UART starts empty: what the host sent during the reset is gone, and so is a reply not yet sent. */
static void
line_restart(void)
{
	uint8_t junk[4096];

	sim->rx.head = sim->rx.len = 0;
	sim->tx.head = sim->tx.len = 0;
	while (read(sim->master_fd, junk, sizeof junk) > 0)
		;
}

/*
 * A reset without leaving the process: what an MCU's startup code does
 * (.data from its image, .bss zeroed, main again) and the firmware cannot
 * tell apart from re-executing the simulator, which it did before at
 * ~0.7 ms a reset on a VM, most of it glibc's start-up asking the
 * hypervisor for CPU features (bench/README.md, heal-profile).
 */
void
hal_reset(uint8_t reason, bool request_safe_mode)
{
	board_t *board = sim;

	hal_serial_flush();
	fprintf(stderr, "healer-sim: reset (reason %u)\n", reason);
	sim_gcov_flush(); /* the counters are in the RAM put back next */
	ram_copy((volatile uint8_t *)__data_start, board->ram_image, board->ram_size);
	board->reset_reason = reason;
	board->safe_mode_requested = request_safe_mode;
	board->led = 0xFF;
	line_restart();
	siglongjmp(board->power_on, 1);
}

void
hal_panic(const char *why)
{
	fprintf(stderr, "healer-sim: PANIC: %s\n", why);
	hal_led_set(LINK_LED_RED_SOS);
	/* The SOS blinks for a while before the watchdog resets the device. */
	sleep(1);
	hal_reset(LINK_RESET_PANIC, false);
}

void
hal_led_set(uint8_t led)
{
	static const char *const names[] = {"off",           "breathing cyan",  "breathing magenta", "blinking magenta",
	                                    "blinking blue", "blinking yellow", "red SOS",           "breathing green"};

	if (led != sim->led)
		fprintf(stderr, "healer-sim: LED %s\n", led < 8 ? names[led] : "?");
	sim->led = led;
}

void
hal_debug(const char *text)
{
	fprintf(stderr, "healer-sim: %s\n", text);
}

/* ---- start ------------------------------------------------------------- */

static void
open_pty(const char *link_path)
{
	struct termios tio;
	char tmp[4096];

	sim->master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sim->master_fd < 0 || grantpt(sim->master_fd) != 0 || unlockpt(sim->master_fd) != 0)
		die("creating a pty");
	sim->slave_fd = open(ptsname(sim->master_fd), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sim->slave_fd < 0)
		die("opening the pty's device side");
	/* A serial line, not a terminal: no echo, no line editing, no translation. */
	if (tcgetattr(sim->slave_fd, &tio) != 0)
		die("reading the pty's settings");
	cfmakeraw(&tio);
	if (tcsetattr(sim->slave_fd, TCSANOW, &tio) != 0)
		die("making the pty raw");
	snprintf(tmp, sizeof tmp, "%s.new", link_path);
	unlink(tmp);
	if (symlink(ptsname(sim->master_fd), tmp) != 0 || rename(tmp, link_path) != 0)
		die("linking the pty");
}

void
sim_hal_start(const sim_config_t *config)
{
	char path[4096];
	int flash_fd;

	sim_gcov_start();
	/* Mapped, not in .bss: a reset must not put the board back, and 1 MiB of rings stay untouched. */
	sim = mmap(NULL, sizeof *sim, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sim == MAP_FAILED)
		die("allocating the board");
	sim->config = *config;
	sim->latency_us = (uint64_t)config->latency_ms * 1000u;
	sim->led = 0xFF;
	sim->reset_reason = LINK_RESET_POWER_ON;
	sim->safe_mode_requested = config->safe_mode;
	snprintf(path, sizeof path, "%s/flash.bin", config->state_dir);
	flash_fd = open(path, O_RDWR | O_CLOEXEC);
	if (flash_fd < 0)
		die(path);
	/* Shared: every write is in the file at once, so a kill -9 leaves the flash as it was then. */
	sim->flash = mmap(NULL, hal_board()->flash_size, PROT_READ | PROT_WRITE, MAP_SHARED, flash_fd, 0);
	if (sim->flash == MAP_FAILED)
		die(path);
	close(flash_fd); /* the mapping keeps the file */
	open_pty(config->link_path);
	fcntl(sim->master_fd, F_SETFL, fcntl(sim->master_fd, F_GETFL) | O_NONBLOCK);
	line_restart();
}

void
sim_run(void (*power_on)(void))
{
	/* Every reset comes back here, with the RAM as it is now. */
	if (sigsetjmp(sim->power_on, 0) == 0) {
		sim->ram_size = (size_t)(_end - __data_start);
		sim->ram_image = mmap(NULL, sim->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (sim->ram_image == MAP_FAILED)
			die("keeping the power-on RAM");
		ram_copy(sim->ram_image, (volatile uint8_t *)__data_start, sim->ram_size);
	}
	power_on();
	abort();
}
