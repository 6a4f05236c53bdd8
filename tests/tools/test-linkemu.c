/*
 * linkemu's self-test: what goes in comes out, paced, corrupted exactly as
 * its seed says, and cut where it was told.  Timing is printed and checked
 * only from below (nothing arrives faster than the line allows): a loaded
 * machine makes it slower, never faster, so slowness never fails a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "test-util.h"

#define PAYLOAD 10240

typedef struct {
	GSubprocess *process;
	int out_fd; /* its stdout: "ready", "unplugged", "plugged" */
	char *stats;
} Emu;

static guint
line_timeout_ms(void)
{
	return g_getenv("HEALER_UNDER_VALGRIND") != NULL ? 60000 : 10000;
}

/* The next line linkemu prints (without the newline); fails the test after timeout_ms. */
static char *
emu_read_line(Emu *emu, guint timeout_ms)
{
	GString *line = g_string_new(NULL);
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

	for (;;) {
		struct pollfd p = {.fd = emu->out_fd, .events = POLLIN};
		gint64 left = deadline - g_get_monotonic_time();
		char c;
		ssize_t n;

		if (left <= 0)
			g_error("linkemu said nothing for %u ms (so far: '%s')", timeout_ms, line->str);
		if (poll(&p, 1, (int)(left / 1000) + 1) <= 0)
			continue;
		n = read(emu->out_fd, &c, 1);
		if (n <= 0)
			g_error("linkemu closed its stdout (so far: '%s')", line->str);
		if (c == '\n')
			return g_string_free(line, FALSE);
		g_string_append_c(line, c);
	}
}

static void
emu_expect_line(Emu *emu, const char *expected)
{
	g_autofree char *line = emu_read_line(emu, line_timeout_ms());

	g_assert_cmpstr(line, ==, expected);
}

/* Starts linkemu with `args` (NULL-terminated) and waits for "ready". */
static Emu *
emu_start(const char *dir, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
	const char *wrapper = g_getenv("HEALER_TEST_WRAPPER");
	g_autoptr(GError) error = NULL;
	Emu *emu = g_new0(Emu, 1);

	if (wrapper != NULL && *wrapper != '\0') {
		g_auto(GStrv) words = NULL;
		g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, NULL));
		for (guint i = 0; words[i] != NULL; i++)
			g_ptr_array_add(argv, g_strdup(words[i]));
	}
	emu->stats = g_build_filename(dir, "stats.json", NULL);
	g_ptr_array_add(argv, g_strdup(test_program("LINKEMU")));
	g_ptr_array_add(argv, g_strdup_printf("--stats=%s", emu->stats));
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, g_strdup(args[i]));
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, test_die_with_parent, NULL, NULL);
	emu->process = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	emu->out_fd = g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(g_subprocess_get_stdout_pipe(emu->process)));
	emu_expect_line(emu, "ready");
	return emu;
}

/* Waits for linkemu to end (after SIGTERM when `terminate`); returns its counters and frees it. */
static json_object *
emu_finish(Emu *emu, gboolean terminate, int expected_status)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	json_object *stats;

	if (terminate)
		g_subprocess_send_signal(emu->process, SIGTERM);
	g_subprocess_wait(emu->process, NULL, &error);
	g_assert_no_error(error);
	g_assert_true(g_subprocess_get_if_exited(emu->process));
	g_assert_cmpint(g_subprocess_get_exit_status(emu->process), ==, expected_status);
	g_assert_true(g_file_get_contents(emu->stats, &text, NULL, &error));
	g_assert_no_error(error);
	g_test_message("linkemu: %s", g_strstrip(text));
	stats = json_tokener_parse(text);
	g_assert_nonnull(stats);
	g_object_unref(emu->process);
	g_free(emu->stats);
	g_free(emu);
	return stats;
}

static gint64
stat_of(json_object *stats, const char *direction, const char *key)
{
	json_object *dir = NULL, *v = NULL;

	if (direction == NULL)
		g_assert_true(json_object_object_get_ex(stats, key, &v));
	else
		g_assert_true(json_object_object_get_ex(stats, direction, &dir) &&
		              json_object_object_get_ex(dir, key, &v));
	return json_object_get_int64(v);
}

static int
open_port(const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	g_assert_cmpint(fd, >=, 0);
	return fd;
}

static void
write_all(int fd, const guint8 *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 100);
			continue;
		}
		g_assert_cmpint(n, >, 0);
		data += n;
		len -= (gsize)n;
	}
}

/*
 * Reads into buf until `want` bytes came or nothing came for quiet_ms;
 * *last_us is when the last byte was read.
 */
static gsize
read_until(int fd, guint8 *buf, gsize want, guint quiet_ms, gint64 *last_us)
{
	gsize got = 0;

	while (got < want) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, (int)quiet_ms) <= 0 || (p.revents & POLLIN) == 0)
			break;
		n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += (gsize)n;
		if (last_us != NULL)
			*last_us = g_get_monotonic_time();
	}
	return got;
}

static guint8 *
make_payload(gsize len, guint32 seed)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
	guint8 *data = g_malloc(len);

	for (gsize i = 0; i < len; i++)
		data[i] = (guint8)g_rand_int(rand);
	return data;
}

static guint
quiet_ms(void)
{
	return g_getenv("HEALER_UNDER_VALGRIND") != NULL ? 3000 : 500;
}

/* 10 KB each way at once at 115200 baud: whole, in order, and no faster than 8N1 allows. */
static void
test_pacing(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *host = g_build_filename(dir, "host", NULL);
	g_autofree char *dev = g_build_filename(dir, "dev", NULL);
	g_autofree char *host_end = g_strdup_printf("pty:%s", host);
	g_autofree char *dev_end = g_strdup_printf("pty:%s", dev);
	const char *args[] = {"--baud", "115200", host_end, dev_end, NULL};
	g_autofree guint8 *down = make_payload(PAYLOAD, 1), *up = make_payload(PAYLOAD, 2);
	g_autofree guint8 *got_down = g_malloc(PAYLOAD), *got_up = g_malloc(PAYLOAD);
	gsize n_down = 0, n_up = 0;
	gint64 start, last_down = 0, last_up = 0;
	double line_s = PAYLOAD * 10.0 / 115200;
	Emu *emu = emu_start(dir, args);
	int h = open_port(host), d = open_port(dev);
	json_object *stats;

	start = g_get_monotonic_time();
	write_all(h, down, PAYLOAD);
	write_all(d, up, PAYLOAD);
	/* Both directions are read as they arrive: full duplex, each paced on its own. */
	while (n_down < PAYLOAD || n_up < PAYLOAD) {
		gsize before = n_down + n_up;
		n_down += read_until(d, got_down + n_down, PAYLOAD - n_down, 1, &last_down);
		n_up += read_until(h, got_up + n_up, PAYLOAD - n_up, 1, &last_up);
		if (n_down + n_up == before && g_get_monotonic_time() - start > 60 * G_USEC_PER_SEC)
			break;
	}
	g_assert_cmpuint(n_down, ==, PAYLOAD);
	g_assert_cmpuint(n_up, ==, PAYLOAD);
	g_assert_cmpmem(got_down, PAYLOAD, down, PAYLOAD);
	g_assert_cmpmem(got_up, PAYLOAD, up, PAYLOAD);
	g_test_message("%d bytes each way at 115200 baud: %.3f s and %.3f s (the line: %.3f s)", PAYLOAD,
	               (double)(last_down - start) / 1e6, (double)(last_up - start) / 1e6, line_s);
	/* Never faster than the line: the last byte cannot arrive before its 10240th slot ends. */
	g_assert_cmpfloat((double)(last_down - start) / 1e6, >=, line_s * 0.999);
	g_assert_cmpfloat((double)(last_up - start) / 1e6, >=, line_s * 0.999);
	close(h);
	close(d);
	stats = emu_finish(emu, TRUE, 0);
	g_assert_cmpint(stat_of(stats, "to_device", "out"), ==, PAYLOAD);
	g_assert_cmpint(stat_of(stats, "to_host", "out"), ==, PAYLOAD);
	g_assert_cmpint(stat_of(stats, "to_device", "bit_errors"), ==, 0);
	json_object_put(stats);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* One byte over 50 ms of latency takes at least 50 ms plus its own 10 bits. */
static void
test_latency(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *host = g_build_filename(dir, "host", NULL);
	g_autofree char *dev = g_build_filename(dir, "dev", NULL);
	g_autofree char *host_end = g_strdup_printf("pty:%s", host);
	g_autofree char *dev_end = g_strdup_printf("pty:%s", dev);
	const char *args[] = {"--baud", "9600", "--latency-ms", "50", host_end, dev_end, NULL};
	Emu *emu = emu_start(dir, args);
	int h = open_port(host), d = open_port(dev);
	guint8 byte = 0x5A, got = 0;
	gint64 start, last = 0;

	start = g_get_monotonic_time();
	write_all(h, &byte, 1);
	g_assert_cmpuint(read_until(d, &got, 1, 5000, &last), ==, 1);
	g_assert_cmpuint(got, ==, byte);
	g_test_message("one byte, 9600 baud, 50 ms latency: %.2f ms", (double)(last - start) / 1000);
	g_assert_cmpint(last - start, >=, 50000 + 1041);
	close(h);
	close(d);
	json_object_put(emu_finish(emu, TRUE, 0));
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Sends PAYLOAD bytes through a line with `args`; returns what arrived and the counters. */
static GBytes *
send_through(const char *const *options, json_object **stats_out)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *host = g_build_filename(dir, "host", NULL);
	g_autofree char *dev = g_build_filename(dir, "dev", NULL);
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	g_autofree guint8 *data = make_payload(PAYLOAD, 3);
	guint8 *got = g_malloc(PAYLOAD);
	gsize n;
	Emu *emu;
	int h, d;

	for (guint i = 0; options[i] != NULL; i++)
		g_ptr_array_add(args, g_strdup(options[i]));
	g_ptr_array_add(args, g_strdup_printf("pty:%s", host));
	g_ptr_array_add(args, g_strdup_printf("pty:%s", dev));
	g_ptr_array_add(args, NULL);
	emu = emu_start(dir, (const char *const *)args->pdata);
	h = open_port(host);
	d = open_port(dev);
	write_all(h, data, PAYLOAD);
	n = read_until(d, got, PAYLOAD, quiet_ms(), NULL);
	close(h);
	close(d);
	*stats_out = emu_finish(emu, TRUE, 0);
	g_assert_cmpint(stat_of(*stats_out, "to_device", "in"), ==, PAYLOAD);
	g_assert_cmpint(stat_of(*stats_out, "to_device", "out"), ==, (gint64)n);
	test_tmpdir_free(g_steal_pointer(&dir));
	return g_bytes_new_take(got, n);
}

/* Bit errors: about rate x bits flipped, exactly as many as linkemu counted, the same for the same seed. */
static void
test_bit_errors(void)
{
	const char *seed7[] = {"--baud", "0", "--bit-error-rate", "1e-3", "--seed", "7", NULL};
	const char *seed8[] = {"--baud", "0", "--bit-error-rate", "1e-3", "--seed", "8", NULL};
	g_autofree guint8 *sent = make_payload(PAYLOAD, 3);
	json_object *stats, *stats_again, *stats_other;
	g_autoptr(GBytes) got = send_through(seed7, &stats);
	g_autoptr(GBytes) again = send_through(seed7, &stats_again);
	g_autoptr(GBytes) other = send_through(seed8, &stats_other);
	const guint8 *p;
	gsize len;
	guint bits = 0, bytes = 0;

	p = g_bytes_get_data(got, &len);
	g_assert_cmpuint(len, ==, PAYLOAD);
	for (gsize i = 0; i < len; i++) {
		bits += (guint)__builtin_popcount(p[i] ^ sent[i]);
		bytes += p[i] != sent[i];
	}
	g_test_message("seed 7, 1e-3 per bit: %u bits flipped in %u bytes (expected about %.0f bits)", bits, bytes,
	               PAYLOAD * 8 * 1e-3);
	/* 81.9 expected, standard deviation 9: this band is over five of them wide each way. */
	g_assert_cmpuint(bits, >=, 35);
	g_assert_cmpuint(bits, <=, 130);
	g_assert_cmpint(stat_of(stats, "to_device", "bit_errors"), ==, bits);
	g_assert_cmpint(stat_of(stats, "to_device", "bytes_corrupted"), ==, bytes);
	g_assert_cmpint(stat_of(stats, "to_device", "drops"), ==, 0);
	g_assert_true(g_bytes_equal(got, again));
	g_assert_false(g_bytes_equal(got, other));
	json_object_put(stats);
	json_object_put(stats_again);
	json_object_put(stats_other);
}

/* Drops: the bytes that arrive are the ones sent, in order, minus exactly the ones counted. */
static void
test_drops(void)
{
	const char *options[] = {"--baud", "0", "--drop-rate", "0.01", "--seed", "3", NULL};
	g_autofree guint8 *sent = make_payload(PAYLOAD, 3);
	json_object *stats;
	g_autoptr(GBytes) got = send_through(options, &stats);
	gint64 drops = stat_of(stats, "to_device", "drops");
	gsize len, j = 0;
	const guint8 *p = g_bytes_get_data(got, &len);

	g_test_message("seed 3, 1%% drops: %" G_GINT64_FORMAT " of %d bytes lost", drops, PAYLOAD);
	g_assert_cmpint(drops, >=, 50);
	g_assert_cmpint(drops, <=, 160);
	g_assert_cmpuint(len, ==, PAYLOAD - (gsize)drops);
	/* A subsequence of what was sent (greedy matching finds one if there is one). */
	for (gsize i = 0; i < PAYLOAD && j < len; i++)
		if (sent[i] == p[j])
			j++;
	g_assert_cmpuint(j, ==, len);
	json_object_put(stats);
}

/* Unplug after N bytes to the device: exactly N arrive, then the host's port is gone. */
static void
test_unplug_at_offset(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *host = g_build_filename(dir, "host", NULL);
	g_autofree char *dev = g_build_filename(dir, "dev", NULL);
	g_autofree char *host_end = g_strdup_printf("pty:%s", host);
	g_autofree char *dev_end = g_strdup_printf("pty:%s", dev);
	const char *args[] = {"--baud",    "115200", "--unplug-after", "1000", "--unplug-direction",
	                      "to-device", host_end, dev_end,          NULL};
	g_autofree guint8 *data = make_payload(3000, 4);
	g_autofree guint8 *got = g_malloc(3000);
	Emu *emu = emu_start(dir, args);
	int h = open_port(host), d = open_port(dev);
	struct stat st;
	struct pollfd p = {.fd = h, .events = POLLIN};
	json_object *stats;
	guint8 byte;

	write_all(h, data, 3000);
	emu_expect_line(emu, "unplugged");
	g_assert_cmpuint(read_until(d, got, 3000, quiet_ms(), NULL), ==, 1000);
	g_assert_cmpmem(got, 1000, data, 1000);
	g_assert_cmpint(lstat(host, &st), ==, -1);
	g_assert_cmpint(errno, ==, ENOENT);
	/* The host's open port hangs up, as a USB serial adapter pulled out does. */
	g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
	g_assert_true(p.revents & (POLLHUP | POLLERR));
	/* End of file (a hung-up tty) or EIO, as healerd's serial transport expects. */
	errno = 0;
	g_assert_cmpint(read(h, &byte, 1), <=, 0);
	g_assert_true(errno == 0 || errno == EIO);
	close(h);
	close(d);
	stats = emu_finish(emu, TRUE, 0);
	g_assert_cmpint(stat_of(stats, "to_device", "out"), ==, 1000);
	g_assert_cmpint(stat_of(stats, NULL, "unplugs"), ==, 1);
	json_object_put(stats);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* Unplug at a time, plug back in: a new pty at the same path carries bytes again. */
static void
test_unplug_replug(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *host = g_build_filename(dir, "host", NULL);
	g_autofree char *dev = g_build_filename(dir, "dev", NULL);
	g_autofree char *host_end = g_strdup_printf("pty:%s", host);
	g_autofree char *dev_end = g_strdup_printf("pty:%s", dev);
	const char *args[] = {"--baud", "921600", "--unplug-at-ms", "100", "--replug-after-ms",
	                      "200",    host_end, dev_end,          NULL};
	g_autofree guint8 *data = make_payload(500, 5);
	guint8 got[500];
	Emu *emu = emu_start(dir, args);
	int h, d = open_port(dev);
	struct stat st;
	json_object *stats;

	emu_expect_line(emu, "unplugged");
	g_assert_cmpint(lstat(host, &st), ==, -1);
	emu_expect_line(emu, "plugged");
	g_assert_cmpint(lstat(host, &st), ==, 0);
	h = open_port(host);
	write_all(h, data, sizeof got);
	g_assert_cmpuint(read_until(d, got, sizeof got, quiet_ms(), NULL), ==, sizeof got);
	g_assert_cmpmem(got, sizeof got, data, sizeof got);
	close(h);
	close(d);
	stats = emu_finish(emu, TRUE, 0);
	g_assert_cmpint(stat_of(stats, NULL, "unplugs"), ==, 1);
	g_assert_cmpint(stat_of(stats, NULL, "replugs"), ==, 1);
	json_object_put(stats);
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* cmd: endpoints talk over the line, and linkemu ends when they do, with their status. */
static void
test_commands(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *host = g_build_filename(dir, "host", NULL);
	g_autofree char *host_end = g_strdup_printf("pty:%s", host);
	g_autofree char *out = g_build_filename(dir, "out", NULL);
	g_autofree char *receiver = g_strdup_printf("cmd:head -c 5 > '%s'", out);
	const char *echo_args[] = {"--baud", "921600", host_end, "cmd:cat", NULL};
	const char *pair_args[] = {"--baud", "115200", "cmd:printf hello", receiver, NULL};
	const char *fail_args[] = {"--baud", "115200", "cmd:exit 3", "cmd:true", NULL};
	g_autofree guint8 *data = make_payload(2000, 6);
	g_autofree guint8 *got = g_malloc(2000);
	g_autofree char *text = NULL;
	Emu *emu = emu_start(dir, echo_args);
	int h = open_port(host);
	json_object *stats;

	/* Through the line to cat and back. */
	write_all(h, data, 2000);
	g_assert_cmpuint(read_until(h, got, 2000, quiet_ms(), NULL), ==, 2000);
	g_assert_cmpmem(got, 2000, data, 2000);
	close(h);
	json_object_put(emu_finish(emu, TRUE, 0));

	emu = emu_start(dir, pair_args);
	stats = emu_finish(emu, FALSE, 0);
	g_assert_true(g_file_get_contents(out, &text, NULL, NULL));
	g_assert_cmpstr(text, ==, "hello");
	g_assert_cmpint(stat_of(stats, "to_device", "out"), ==, 5);
	json_object_put(stats);

	emu = emu_start(dir, fail_args);
	json_object_put(emu_finish(emu, FALSE, 3));
	test_tmpdir_free(g_steal_pointer(&dir));
}

/*
 * A command's last bytes arrive even when it flushes its terminal as it
 * exits, as lrzsz's rb does right after its final ACK (on a pty that flush
 * discarded bytes the master had not read yet; sb then waited forever).
 */
static void
test_command_flush_at_exit(void)
{
	g_autofree char *dir = test_tmpdir_new();
	g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
	g_autofree char *writer = g_strdup_printf("cmd:'%s' --write-and-flush", self);
	const char *args[] = {"--baud", "115200", writer, "cmd:sleep 0.1", NULL};

	for (int i = 0; i < 10; i++) {
		json_object *stats = emu_finish(emu_start(dir, args), FALSE, 0);
		g_assert_cmpint(stat_of(stats, "to_device", "out"), ==, 1);
		json_object_put(stats);
	}
	test_tmpdir_free(g_steal_pointer(&dir));
}

/* The command of test_command_flush_at_exit(): one byte, then drain and flush, as rb exits. */
static int
write_and_flush(void)
{
	if (write(1, "\x06", 1) != 1)
		return 1;
	tcdrain(0);
	tcflush(0, TCIOFLUSH);
	return 0;
}

static void
expect_usage_error(const char *const *argv, int status, const char *message)
{
	g_auto(TestRun) run = {0};

	test_run(&run, argv);
	g_assert_cmpint(run.exit_status, ==, status);
	if (strstr(run.err, message) == NULL)
		g_error("expected '%s' in: %s", message, run.err);
}

static void
test_usage(void)
{
	const char *linkemu = test_program("LINKEMU");
	const char *none[] = {linkemu, NULL};
	const char *baud[] = {linkemu, "--baud", "fast", "pty:/tmp/a", "pty:/tmp/b", NULL};
	const char *ber[] = {linkemu, "--bit-error-rate", "2", "pty:/tmp/a", "pty:/tmp/b", NULL};
	const char *kind[] = {linkemu, "serial:/dev/ttyS0", "pty:/tmp/b", NULL};
	const char *dir[] = {linkemu, "--unplug-after", "10", "--unplug-direction", "up", "pty:/a", "pty:/b", NULL};
	const char *replug[] = {linkemu, "--replug-after-ms", "10", "pty:/tmp/a", "pty:/tmp/b", NULL};
	const char *missing[] = {linkemu, "tty:/nonexistent/tty", "cmd:true", NULL};
	const char *help[] = {linkemu, "--help", NULL};
	g_auto(TestRun) run = {0};

	expect_usage_error(none, 2, "expected two endpoints");
	expect_usage_error(baud, 2, "--baud: 'fast' is not a whole number");
	expect_usage_error(ber, 2, "--bit-error-rate: '2' is not a probability in 0..1");
	expect_usage_error(kind, 2, "'serial:/dev/ttyS0' is not tty:PATH, pty:PATH or cmd:COMMAND");
	expect_usage_error(dir, 2, "--unplug-direction: 'up' is not to-device or to-host");
	expect_usage_error(replug, 2, "--replug-after-ms needs --unplug-after or --unplug-at-ms");
	expect_usage_error(missing, 1, "/nonexistent/tty: No such file or directory");
	test_run(&run, help);
	g_assert_cmpint(run.exit_status, ==, 0);
	g_assert_nonnull(strstr(run.out, "usage: linkemu"));
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--write-and-flush") == 0)
		return write_and_flush();
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/linkemu/usage", test_usage);
	g_test_add_func("/linkemu/pacing", test_pacing);
	g_test_add_func("/linkemu/latency", test_latency);
	g_test_add_func("/linkemu/bit-errors", test_bit_errors);
	g_test_add_func("/linkemu/drops", test_drops);
	g_test_add_func("/linkemu/unplug-at-offset", test_unplug_at_offset);
	g_test_add_func("/linkemu/unplug-replug", test_unplug_replug);
	g_test_add_func("/linkemu/commands", test_commands);
	g_test_add_func("/linkemu/command-flush-at-exit", test_command_flush_at_exit);
	return g_test_run();
}
