/*
 * The HAL on a Linux host: flash is a file with NOR semantics, the serial
 * port is a pty (paced to a baud rate and delayed by a latency when asked),
 * and a reset re-executes the simulator with its flash as it was, keeping
 * the pty open as a USB-serial adapter would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hal.h"
#include "healer/link-protocol.h"
#include "sim.h"

#define RING_SIZE 65536u

typedef struct {
	uint8_t data[RING_SIZE];
	uint64_t due_us[RING_SIZE]; /* when each byte has crossed the line */
	size_t head, len;
	uint64_t last_serialised_us;
} ring_t;

static struct {
	sim_config_t config;
	int flash_fd;
	int master_fd;
	int slave_fd; /* held open so the master never sees a hang-up while no host is attached */
	uint8_t reset_reason;
	bool safe_mode_requested;
	uint64_t byte_us;
	uint64_t latency_us;
	ring_t rx, tx;
	uint8_t led;
} sim;

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
	return pread(sim.flash_fd, buf, len, addr - hal_board()->flash_start) == (ssize_t)len ? 0 : -1;
}

/* Real flash takes time to program and erase; a power cut lands inside it. */
static void
flash_busy(size_t len)
{
	if (sim.config.flash_us_per_kib > 0)
		usleep((useconds_t)((uint64_t)len * sim.config.flash_us_per_kib / 1024u));
}

int
hal_flash_program(uint32_t addr, const void *data, size_t len)
{
	uint8_t cur[4096];
	const uint8_t *src = data;

	if (!in_flash(addr, len))
		return -1;
	/* NOR: programming only clears bits. */
	for (size_t off = 0; off < len; off += sizeof cur) {
		size_t n = len - off < sizeof cur ? len - off : sizeof cur;
		off_t at = (off_t)(addr - hal_board()->flash_start + off);
		if (pread(sim.flash_fd, cur, n, at) != (ssize_t)n)
			return -1;
		for (size_t i = 0; i < n; i++)
			cur[i] &= src[off + i];
		flash_busy(n);
		if (pwrite(sim.flash_fd, cur, n, at) != (ssize_t)n)
			return -1;
	}
	return 0;
}

int
hal_flash_erase(uint32_t addr, size_t len)
{
	const hal_board_t *b = hal_board();
	uint8_t ones[4096];
	uint32_t end = addr + (uint32_t)len;
	bool start_ok = false, end_ok = false;

	for (unsigned i = 0; i < b->n_sectors; i++) {
		start_ok |= b->sectors[i].start == addr;
		end_ok |= b->sectors[i].start + b->sectors[i].size == end;
	}
	if (!start_ok || !end_ok || !in_flash(addr, len))
		return -1;
	memset(ones, 0xFF, sizeof ones);
	for (size_t off = 0; off < len; off += sizeof ones) {
		flash_busy(sizeof ones);
		if (pwrite(sim.flash_fd, ones, sizeof ones, (off_t)(addr - b->flash_start + off)) != sizeof ones)
			return -1;
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
ring_push(ring_t *r, uint8_t byte, uint64_t now)
{
	uint64_t serialised = (r->last_serialised_us > now ? r->last_serialised_us : now) + sim.byte_us;

	r->last_serialised_us = serialised;
	r->data[(r->head + r->len) % RING_SIZE] = byte;
	r->due_us[(r->head + r->len) % RING_SIZE] = serialised + sim.latency_us;
	r->len++;
}

/* Bytes at the front that have arrived by `now`. */
static size_t
ring_ready(const ring_t *r, uint64_t now)
{
	size_t n = 0;

	while (n < r->len && r->due_us[(r->head + n) % RING_SIZE] <= now)
		n++;
	return n;
}

static void
ring_drop(ring_t *r, size_t n)
{
	r->head = (r->head + n) % RING_SIZE;
	r->len -= n;
}

/* Moves bytes whose time has come out to the pty. */
static void
tx_pump(void)
{
	uint64_t now = now_us();
	size_t ready = ring_ready(&sim.tx, now);

	while (ready > 0) {
		size_t chunk = RING_SIZE - sim.tx.head < ready ? RING_SIZE - sim.tx.head : ready;
		ssize_t n = write(sim.master_fd, sim.tx.data + sim.tx.head, chunk);
		if (n > 0) {
			ring_drop(&sim.tx, (size_t)n);
			ready -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* Nobody is reading: wait a little, then the line drops them, as a UART would. */
			struct pollfd p = {.fd = sim.master_fd, .events = POLLOUT};
			if (poll(&p, 1, 1000) > 0)
				continue;
		}
		ring_drop(&sim.tx, ready);
		return;
	}
}

static void
rx_fill(void)
{
	uint8_t buf[4096];
	uint64_t now = now_us();

	while (sim.rx.len < RING_SIZE) {
		size_t room = RING_SIZE - sim.rx.len;
		ssize_t n = read(sim.master_fd, buf, room < sizeof buf ? room : sizeof buf);
		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n; i++)
			ring_push(&sim.rx, buf[i], now);
	}
}

size_t
hal_serial_read(uint8_t *buf, size_t max)
{
	size_t ready, n;

	rx_fill();
	ready = ring_ready(&sim.rx, now_us());
	n = ready < max ? ready : max;
	for (size_t i = 0; i < n; i++)
		buf[i] = sim.rx.data[(sim.rx.head + i) % RING_SIZE];
	ring_drop(&sim.rx, n);
	return n;
}

void
hal_serial_write(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		while (sim.tx.len == RING_SIZE) {
			tx_pump();
			if (sim.tx.len == RING_SIZE)
				usleep(1000);
		}
		ring_push(&sim.tx, data[i], now_us());
	}
	tx_pump();
}

void
hal_serial_flush(void)
{
	while (sim.tx.len > 0) {
		uint64_t now = now_us(), due = sim.tx.due_us[sim.tx.head];
		if (due > now)
			usleep((useconds_t)(due - now));
		tx_pump();
	}
}

uint32_t
hal_millis(void)
{
	return (uint32_t)(now_us() / 1000u);
}

void
hal_wait_event(uint32_t timeout_ms)
{
	uint64_t now = now_us();
	uint64_t wake = now + (uint64_t)timeout_ms * 1000u;
	struct pollfd p = {.fd = sim.master_fd, .events = POLLIN};
	int timeout;

	if (sim.rx.len > 0 && sim.rx.due_us[sim.rx.head] < wake)
		wake = sim.rx.due_us[sim.rx.head];
	if (sim.tx.len > 0 && sim.tx.due_us[sim.tx.head] < wake)
		wake = sim.tx.due_us[sim.tx.head];
	timeout = wake > now ? (int)((wake - now + 999) / 1000) : 0;
	if (sim.rx.len == RING_SIZE)
		usleep((useconds_t)timeout * 1000u);
	else
		poll(&p, 1, timeout);
	tx_pump();
}

/* ---- reset, LED, diagnostics ------------------------------------------- */

uint8_t
hal_reset_reason(void)
{
	return sim.reset_reason;
}

bool
hal_safe_mode_requested(void)
{
	return sim.safe_mode_requested;
}

static void
keep_across_exec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags >= 0)
		fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
}

void
hal_reset(uint8_t reason, bool request_safe_mode)
{
	char value[32];

	hal_serial_flush();
	/* Bytes already sent to the device while it resets are lost, as on hardware. */
	snprintf(value, sizeof value, "%d", sim.master_fd);
	setenv("HEALER_SIM_MASTER_FD", value, 1);
	snprintf(value, sizeof value, "%d", sim.slave_fd);
	setenv("HEALER_SIM_SLAVE_FD", value, 1);
	snprintf(value, sizeof value, "%u", reason);
	setenv("HEALER_SIM_RESET_REASON", value, 1);
	setenv("HEALER_SIM_SAFE_MODE", request_safe_mode ? "1" : "0", 1);
	keep_across_exec(sim.master_fd);
	keep_across_exec(sim.slave_fd);
	close(sim.flash_fd);
	fprintf(stderr, "healer-sim: reset (reason %u)\n", reason);
	execv("/proc/self/exe", sim.config.argv);
	die("re-executing on reset");
	abort();
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

	if (led != sim.led)
		fprintf(stderr, "healer-sim: LED %s\n", led < 8 ? names[led] : "?");
	sim.led = led;
}

void
hal_debug(const char *text)
{
	fprintf(stderr, "healer-sim: %s\n", text);
}

/* ---- start ------------------------------------------------------------- */

static int
env_fd(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? atoi(v) : -1;
}

static void
open_pty(const char *link_path)
{
	struct termios tio;
	char tmp[4096];

	sim.master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sim.master_fd < 0 || grantpt(sim.master_fd) != 0 || unlockpt(sim.master_fd) != 0)
		die("creating a pty");
	sim.slave_fd = open(ptsname(sim.master_fd), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sim.slave_fd < 0)
		die("opening the pty's device side");
	/* A serial line, not a terminal: no echo, no line editing, no translation. */
	if (tcgetattr(sim.slave_fd, &tio) != 0)
		die("reading the pty's settings");
	cfmakeraw(&tio);
	if (tcsetattr(sim.slave_fd, TCSANOW, &tio) != 0)
		die("making the pty raw");
	snprintf(tmp, sizeof tmp, "%s.new", link_path);
	unlink(tmp);
	if (symlink(ptsname(sim.master_fd), tmp) != 0 || rename(tmp, link_path) != 0)
		die("linking the pty");
}

void
sim_hal_start(const sim_config_t *config, bool after_reset)
{
	char path[4096];

	sim.config = *config;
	sim.byte_us = config->baud > 0 ? 10000000u / config->baud : 0; /* 8N1: ten bits a byte */
	sim.latency_us = (uint64_t)config->latency_ms * 1000u;
	sim.led = 0xFF;
	snprintf(path, sizeof path, "%s/flash.bin", config->state_dir);
	sim.flash_fd = open(path, O_RDWR | O_CLOEXEC);
	if (sim.flash_fd < 0)
		die(path);

	if (after_reset) {
		sim.master_fd = env_fd("HEALER_SIM_MASTER_FD");
		sim.slave_fd = env_fd("HEALER_SIM_SLAVE_FD");
		sim.reset_reason =
		        (uint8_t)atoi(getenv("HEALER_SIM_RESET_REASON") ? getenv("HEALER_SIM_RESET_REASON") : "0");
		sim.safe_mode_requested =
		        getenv("HEALER_SIM_SAFE_MODE") && strcmp(getenv("HEALER_SIM_SAFE_MODE"), "1") == 0;
		if (fcntl(sim.master_fd, F_GETFD) < 0 || fcntl(sim.slave_fd, F_GETFD) < 0)
			die("taking over the pty after a reset");
		fcntl(sim.master_fd, F_SETFD, FD_CLOEXEC);
		fcntl(sim.slave_fd, F_SETFD, FD_CLOEXEC);
	} else {
		sim.reset_reason = LINK_RESET_POWER_ON;
		sim.safe_mode_requested =
		        getenv("HEALER_SIM_SAFE_MODE") && strcmp(getenv("HEALER_SIM_SAFE_MODE"), "1") == 0;
		open_pty(config->link_path);
	}
	fcntl(sim.master_fd, F_SETFL, fcntl(sim.master_fd, F_GETFL) | O_NONBLOCK);
	/* A UART starts empty: what the host sent during the reset is gone. */
	{
		uint8_t junk[4096];
		while (read(sim.master_fd, junk, sizeof junk) > 0)
			;
	}
	unsetenv("HEALER_SIM_MASTER_FD");
	unsetenv("HEALER_SIM_SLAVE_FD");
	unsetenv("HEALER_SIM_RESET_REASON");
	unsetenv("HEALER_SIM_SAFE_MODE");
}
