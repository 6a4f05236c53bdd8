/*
 * hostile-device: a device that speaks the link protocol (docs/link-protocol.md) and misbehaves on
 * purpose, for the security tests (issue 13, docs/security.md).  Its serial port is a pty linked at
 * PATH, as healer-sim's --link does, so healerd serves it like any device under its port globs.
 *
 *   hostile-device --link PATH [--mode normal|safe|heal] [--device-id HEX] [--id-churn]
 *                  [--log-flood N] [--log-text TEXT] [--error-text TEXT] [--platform N]
 *
 * Without a misbehaviour option it is a plausible device: HELLO at start and for every
 * HELLO_REQUEST, a describe for every DESCRIBE, PONG for PING.  --mode normal runs a valid
 * application; safe is safe mode asked for (nothing to heal); heal is safe mode for a failed
 * dependency (healerd plans a heal; BEGIN is refused with an ERROR frame).
 *
 *   --id-churn       every HELLO carries a new random device id, and after each describe it
 *                    "reboots" as another device (a HELLO with a new id): as many identities as
 *                    healerd asks describes for
 *   --device-id HEX  claim this id (24 hex digits) rather than a random one
 *   --log-flood N    once described, send N LOG frames as fast as the line takes them
 *   --log-text TEXT  once described, send one LOG with TEXT (C escapes, as g_strcompress() reads
 *                    them: \n \r \t \\ and octal, \033 for ESC)
 *   --error-text T   the text of the ERROR that answers BEGIN (same escapes)
 *
 * It prints "described" on stdout (once), and "flooded N" after a flood, so a test can follow it.
 * SIGTERM unplugs it: the link goes, the pty closes.  The frames are built and decoded with libhealer's link
 * codec (agent/lib/link-codec.h): nothing here knows the wire format.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "healer/module-format.h"
#include "link-codec.h"

typedef struct {
	int fd;
	guint8 mode; /* enum link_mode */
	guint8 safe_mode_reason;
	gboolean dependency_failed; /* --mode heal */
	guint16 platform;
	guint8 id[LINK_DEVICE_ID_SIZE];
	gboolean id_churn;
	guint log_flood;
	char *log_text;
	char *error_text;
	gboolean described; /* the first describe went out: the scripted LOGs follow */
	HealerLinkDecoder *decoder;
} Hostile;

static void G_GNUC_NORETURN
die(const char *what)
{
	fprintf(stderr, "hostile-device: %s: %s\n", what, g_strerror(errno));
	exit(1);
}

/* Writes all of it, waiting for the line (the pty's buffer) to take it, while reading nothing. */
static void
send_frame(Hostile *h, GBytes *frame)
{
	gsize len = 0;
	const guint8 *p = g_bytes_get_data(frame, &len);

	while (len > 0) {
		ssize_t n = write(h->fd, p, len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = {.fd = h->fd, .events = POLLOUT};
			poll(&pfd, 1, 100);
			continue;
		}
		if (n < 0)
			die("writing the line");
		p += n;
		len -= (gsize)n;
	}
}

static void
send_hello(Hostile *h)
{
	HealerLinkHello hello = {
	        .protocol_version = LINK_PROTOCOL_VERSION,
	        .mode = h->mode,
	        .safe_mode_reason = h->safe_mode_reason,
	        .reset_reason = LINK_RESET_POWER_ON,
	        .led = h->mode == LINK_MODE_NORMAL ? LINK_LED_BREATHING_CYAN : LINK_LED_BREATHING_MAGENTA,
	        .window = 4,
	        .platform_id = h->platform,
	        .max_data = 1024,
	};
	g_autoptr(GBytes) frame = NULL;

	if (h->id_churn) {
		for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++)
			h->id[i] = (guint8)g_random_int_range(0, 256);
	}
	memcpy(hello.device_id, h->id, sizeof h->id);
	frame = healer_link_build_hello(&hello);
	send_frame(h, frame);
}

/*
 * System parts 1 and 2 of the firmware build's release 1.0.0 (device-firmware/firmware.json) and an
 * application: valid, or (--mode heal) needing system part 2 v1100, which fails its dependency check.
 */
static void
send_describe(Hostile *h)
{
	g_autofree char *json =
	        g_strdup_printf("{\"p\":%u,\"m\":["
	                        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"1\",\"v\":1000,"
	                        "\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":1000}]},"
	                        "{\"s\":262144,\"l\":\"m\",\"vc\":30,\"vv\":30,\"f\":\"s\",\"n\":\"2\",\"v\":1000,"
	                        "\"d\":[{\"f\":\"s\",\"n\":\"1\",\"v\":1000}]},"
	                        "{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":%u,\"f\":\"u\",\"n\":\"1\",\"v\":4,"
	                        "\"d\":[{\"f\":\"s\",\"n\":\"2\",\"v\":%u}]}]}",
	                        h->platform, h->dependency_failed ? 26 : 30, h->dependency_failed ? 1100 : 1000);
	g_autoptr(GBytes) frame = healer_link_build_describe_reply(json, strlen(json), NULL);

	send_frame(h, frame);
}

static void
send_log(Hostile *h, const char *text)
{
	g_autoptr(GBytes) frame = healer_link_build_log(LINK_LOG_INFO, text, NULL);

	if (frame != NULL)
		send_frame(h, frame);
}

/* What follows the first describe: the scripted LOG frames. */
static void
after_describe(Hostile *h)
{
	if (h->described)
		return;
	h->described = TRUE;
	printf("described\n");
	if (h->log_text != NULL)
		send_log(h, h->log_text);
	for (guint i = 0; i < h->log_flood; i++) {
		g_autofree char *text = g_strdup_printf("flood line %u of %u", i + 1, h->log_flood);
		send_log(h, text);
	}
	if (h->log_flood > 0)
		printf("flooded %u\n", h->log_flood);
	fflush(stdout);
}

static void
on_frame(Hostile *h, const link_frame_t *f)
{
	g_autoptr(GBytes) reply = NULL;
	guint32 nonce = 0;

	switch (f->type) {
	case LINK_HELLO_REQUEST:
		send_hello(h);
		break;
	case LINK_DESCRIBE:
		send_describe(h);
		after_describe(h);
		if (h->id_churn)
			send_hello(h);
		break;
	case LINK_PING:
		if (healer_link_parse_ping(f, &nonce, NULL))
			reply = healer_link_build_pong(nonce);
		break;
	case LINK_BEGIN:
		reply = healer_link_build_error(MODULE_UPDATE_ERROR_GENERIC, LINK_BEGIN,
		                                h->error_text ? h->error_text : "this device takes no modules", NULL);
		break;
	case LINK_DATA:
	case LINK_FINISH:
		reply = healer_link_build_error(LINK_ERROR_NO_TRANSFER, f->type, "no transfer", NULL);
		break;
	default:
		break;
	}
	if (reply != NULL)
		send_frame(h, reply);
}

/* A pty whose device side is linked at `link_path`, as healer-sim makes its own. */
static void
open_pty(Hostile *h, const char *link_path)
{
	g_autofree char *tmp = g_strdup_printf("%s.new", link_path);
	struct termios tio;
	int slave;

	h->fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (h->fd < 0 || grantpt(h->fd) != 0 || unlockpt(h->fd) != 0)
		die("creating a pty");
	/* A serial line, not a terminal: raw both ways. */
	slave = open(ptsname(h->fd), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 || tcgetattr(slave, &tio) != 0)
		die("opening the pty's device side");
	cfmakeraw(&tio);
	if (tcsetattr(slave, TCSANOW, &tio) != 0)
		die("making the pty raw");
	unlink(tmp);
	if (symlink(ptsname(h->fd), tmp) != 0 || rename(tmp, link_path) != 0)
		die("linking the pty");
	/* The device side stays open (not closed, on purpose): the line stays up between healerd's opens. */
	fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK);
}

static const char *unplug_path;

static void
on_sigterm(int sig)
{
	(void)sig;
	unlink(unplug_path);
	_exit(0);
}

static gboolean
parse_id(const char *hex, guint8 *out)
{
	if (strlen(hex) != LINK_DEVICE_ID_SIZE * 2)
		return FALSE;
	for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++) {
		int hi = g_ascii_xdigit_value(hex[2 * i]), lo = g_ascii_xdigit_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return FALSE;
		out[i] = (guint8)(hi << 4 | lo);
	}
	return TRUE;
}

static void G_GNUC_NORETURN
usage(const char *why)
{
	fprintf(stderr,
	        "hostile-device: %s\n"
	        "usage: hostile-device --link PATH [--mode normal|safe|heal] [--device-id HEX] [--id-churn]\n"
	        "                      [--log-flood N] [--log-text TEXT] [--error-text TEXT] [--platform N]\n",
	        why);
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
	        {"link", required_argument, NULL, 'l'},
	        {"mode", required_argument, NULL, 'm'},
	        {"device-id", required_argument, NULL, 'i'},
	        {"id-churn", no_argument, NULL, 'c'},
	        {"log-flood", required_argument, NULL, 'f'},
	        {"log-text", required_argument, NULL, 't'},
	        {"error-text", required_argument, NULL, 'e'},
	        {"platform", required_argument, NULL, 'p'},
	        {NULL, 0, NULL, 0},
	};
	Hostile h = {.mode = LINK_MODE_NORMAL, .platform = 3};
	const char *link_path = NULL;
	gboolean have_id = FALSE;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'l':
			link_path = optarg;
			break;
		case 'm':
			if (g_str_equal(optarg, "normal")) {
				h.mode = LINK_MODE_NORMAL;
			} else if (g_str_equal(optarg, "safe")) {
				h.mode = LINK_MODE_SAFE;
				h.safe_mode_reason = LINK_SAFE_MODE_REQUESTED;
			} else if (g_str_equal(optarg, "heal")) {
				h.mode = LINK_MODE_SAFE;
				h.safe_mode_reason = LINK_SAFE_MODE_DEPENDENCIES;
				h.dependency_failed = TRUE;
			} else {
				usage("--mode takes normal, safe or heal");
			}
			break;
		case 'i':
			if (!parse_id(optarg, h.id))
				usage("--device-id takes 24 hex digits");
			have_id = TRUE;
			break;
		case 'c':
			h.id_churn = TRUE;
			break;
		case 'f':
			h.log_flood = (guint)g_ascii_strtoull(optarg, NULL, 10);
			break;
		case 't':
			h.log_text = g_strcompress(optarg);
			break;
		case 'e':
			h.error_text = g_strcompress(optarg);
			break;
		case 'p':
			h.platform = (guint16)g_ascii_strtoull(optarg, NULL, 10);
			break;
		default:
			usage("unknown option");
		}
	}
	if (link_path == NULL || optind != argc)
		usage(link_path == NULL ? "--link is required" : "unexpected argument");
	if (!have_id) {
		for (guint i = 0; i < LINK_DEVICE_ID_SIZE; i++)
			h.id[i] = (guint8)g_random_int_range(0, 256);
	}
	h.decoder = healer_link_decoder_new();
	open_pty(&h, link_path);
	unplug_path = link_path;
	signal(SIGTERM, on_sigterm);
	send_hello(&h); /* at boot, as every device */

	for (;;) {
		struct pollfd pfd = {.fd = h.fd, .events = POLLIN};
		guint8 buf[4096];
		ssize_t n;

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			die("poll");
		n = read(h.fd, buf, sizeof buf);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			die("reading the line");
		g_autoptr(GPtrArray) frames = healer_link_decoder_push(h.decoder, buf, (gsize)n);
		for (guint i = 0; i < frames->len; i++)
			on_frame(&h, &((HealerLinkFrame *)g_ptr_array_index(frames, i))->frame);
	}
}
