/*
 * healer-sim: one simulated device as a process.
 *
 *   healer-sim --state DIR [--release R] [--app NAME|FILE] [--link PATH]
 *              [--baud N] [--latency-ms N] [--firmware-dir DIR] [--safe-mode]
 *              [--flash-us-per-kib N] [--no-engines]
 *
 * Its flash is DIR/flash.bin, created on the first run with release R's
 * bootloader and system parts and the application installed ("factory
 * programming"); its serial port is a pty linked at PATH (default DIR/tty).
 * A reset starts the firmware again (RAM as at power-on) with its flash as
 * it was, in the same process.  It runs until killed
 * and logs to stderr.  --flash-us-per-kib makes flash writes and erases
 * take time, as on silicon, so a kill -9 can land in the middle of one.
 * Its board has SHA-256 and CRC-32 engines (the host's, through OpenSSL and
 * zlib); --no-engines leaves them out, so the firmware computes both in
 * software as a board without them does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hal.h"
#include "healer/module-format.h"
#include "module-check.h"
#include "sim.h"
#include "system.h"

static void
usage(FILE *out)
{
	fprintf(out, "usage: healer-sim --state DIR [--release R] [--app NAME|FILE] [--link PATH]\n"
	             "                  [--baud N] [--latency-ms N] [--firmware-dir DIR] [--safe-mode]\n"
	             "                  [--flash-us-per-kib N] [--no-engines]\n");
}

static unsigned
parse_unsigned(const char *text, const char *what, unsigned max)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (text[0] == '\0' || text[0] == '-' || *end != '\0' || errno != 0 || v > max) {
		fprintf(stderr, "healer-sim: %s: '%s' is not a number in 0..%u\n", what, text, max);
		exit(2);
	}
	return (unsigned)v;
}

/* A half-programmed device must not be left behind: the next run would boot it. */
static char manufacturing_flash[4096];

static void
discard_unfinished_flash(void)
{
	if (manufacturing_flash[0] != '\0')
		unlink(manufacturing_flash);
}

/*
 * Writes a module file into its slot, as a factory programmer would: a
 * page at a time, so no image-sized buffer sits in the RAM a reset copies.
 */
static void
program_module(const char *path)
{
	uint8_t page[4096];
	module_prefix_t prefix;
	const hal_slot_t *slot = NULL;
	uint8_t sha[32];
	size_t len = 0, n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		fprintf(stderr, "healer-sim: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	while ((n = fread(page, 1, sizeof page, f)) > 0) {
		if (slot == NULL) {
			if (n < MODULE_PREFIX_SIZE) {
				fprintf(stderr, "healer-sim: %s: too short for a module\n", path);
				exit(1);
			}
			slot = module_slot_for(page[MODULE_PREFIX_OFF_FUNCTION], page[MODULE_PREFIX_OFF_INDEX]);
			if (slot == NULL || hal_flash_erase(slot->start, slot->size) != 0)
				break;
		}
		if (len + n > slot->size || hal_flash_program(slot->start + (uint32_t)len, page, n) != 0) {
			slot = NULL;
			break;
		}
		len += n;
	}
	fclose(f);
	if (slot == NULL) {
		fprintf(stderr, "healer-sim: %s: %s\n", path,
		        len == 0 && n == 0 ? "too short for a module" : "no slot on this board takes it");
		exit(1);
	}
	if (!module_read_prefix(slot->start, &prefix) ||
	    !module_check_integrity(slot->start, &prefix, slot->size, sha, NULL)) {
		fprintf(stderr, "healer-sim: %s: not a valid module\n", path);
		exit(1);
	}
}

static void
manufacture(const char *state_dir, const char *firmware_dir, const char *release, const char *app)
{
	static const char *const parts[] = {"bootloader", "system-part1", "system-part2"};
	char path[4096];
	uint8_t info[4 + 12];

	(void)state_dir;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		snprintf(path, sizeof path, "%s/%s/%s.bin", firmware_dir, release, parts[i]);
		program_module(path);
	}
	if (app != NULL && strcmp(app, "none") != 0) {
		if (strchr(app, '/') != NULL || strstr(app, ".bin") != NULL)
			snprintf(path, sizeof path, "%s", app);
		else
			snprintf(path, sizeof path, "%s/apps/%s.bin", firmware_dir, app);
		program_module(path);
	}
	info[0] = SIM_DEVICE_INFO_MAGIC & 0xFF;
	info[1] = (SIM_DEVICE_INFO_MAGIC >> 8) & 0xFF;
	info[2] = (SIM_DEVICE_INFO_MAGIC >> 16) & 0xFF;
	info[3] = SIM_DEVICE_INFO_MAGIC >> 24;
	if (getrandom(info + 4, 12, 0) != 12) {
		fprintf(stderr, "healer-sim: no randomness for a device id\n");
		exit(1);
	}
	hal_flash_program(hal_board()->info_start, info, sizeof info);
}

/* mkdir -p: a state directory may be new, and so may its parents. */
static int
make_directories(const char *path)
{
	char partial[4096];
	size_t len = strlen(path);

	if (len >= sizeof partial) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (size_t i = 1; i <= len; i++) {
		if (path[i] == '/' || path[i] == '\0') {
			memcpy(partial, path, i);
			partial[i] = '\0';
			if (mkdir(partial, 0755) != 0 && errno != EEXIST)
				return -1;
		}
	}
	return 0;
}

static const char *
default_firmware_dir(void)
{
	struct stat st;

	if (stat(HEALER_BUILD_FIRMWARE_DIR, &st) == 0)
		return HEALER_BUILD_FIRMWARE_DIR;
	return HEALER_FIRMWARE_DIR;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
	        {"state", required_argument, NULL, 's'},
	        {"release", required_argument, NULL, 'r'},
	        {"app", required_argument, NULL, 'a'},
	        {"link", required_argument, NULL, 'l'},
	        {"baud", required_argument, NULL, 'b'},
	        {"latency-ms", required_argument, NULL, 'L'},
	        {"firmware-dir", required_argument, NULL, 'f'},
	        {"safe-mode", no_argument, NULL, 'S'},
	        {"flash-us-per-kib", required_argument, NULL, 'F'},
	        {"no-engines", no_argument, NULL, 'E'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *state_dir = NULL, *release = "1.0.0", *app = "tinker", *firmware_dir = NULL;
	char link_path[4096] = "";
	char flash_path[4096];
	sim_config_t config = {0};
	bool fresh;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			state_dir = optarg;
			break;
		case 'r':
			release = optarg;
			break;
		case 'a':
			app = optarg;
			break;
		case 'l':
			snprintf(link_path, sizeof link_path, "%s", optarg);
			break;
		case 'b':
			config.baud = parse_unsigned(optarg, "--baud", 100000000);
			break;
		case 'L':
			config.latency_ms = parse_unsigned(optarg, "--latency-ms", 60000);
			break;
		case 'f':
			firmware_dir = optarg;
			break;
		case 'F':
			config.flash_us_per_kib = parse_unsigned(optarg, "--flash-us-per-kib", 1000000);
			break;
		case 'S':
			config.safe_mode = true;
			break;
		case 'E':
			config.no_engines = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (state_dir == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (make_directories(state_dir) != 0) {
		fprintf(stderr, "healer-sim: %s: %s\n", state_dir, strerror(errno));
		return 1;
	}
	if (link_path[0] == '\0')
		snprintf(link_path, sizeof link_path, "%s/tty", state_dir);
	if (firmware_dir == NULL)
		firmware_dir = default_firmware_dir();

	snprintf(flash_path, sizeof flash_path, "%s/flash.bin", state_dir);
	fresh = access(flash_path, F_OK) != 0;
	config.state_dir = state_dir;
	config.link_path = link_path;
	if (fresh) {
		/* Factory programming happens with the flash open, before the first boot. */
		if (sim_flash_create(flash_path) != 0) {
			fprintf(stderr, "healer-sim: creating %s: %s\n", flash_path, strerror(errno));
			return 1;
		}
	}
	sim_hal_start(&config);
	if (fresh) {
		snprintf(manufacturing_flash, sizeof manufacturing_flash, "%s", flash_path);
		atexit(discard_unfinished_flash);
		manufacture(state_dir, firmware_dir, release, app);
		manufacturing_flash[0] = '\0';
	}
	fprintf(stderr, "healer-sim: device %s on %s%s\n", state_dir, link_path, fresh ? " (new)" : "");
	sim_run(system_main);
}
