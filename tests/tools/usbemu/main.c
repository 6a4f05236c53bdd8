/*
 * usbemu: runs a command with emulated USB devices in DFU mode attached.
 *
 *   usbemu [--trace FILE] [--control FIFO] DEVICE... -- COMMAND [ARG...]
 *   DEVICE: --dfu MODEL --state DIR [--serial SERIAL]
 *
 * COMMAND runs under umockdev's preload, so unmodified programs (dfu-util, healerd, anything on
 * libusb) see the devices; usbemu exits with its status.  A device's memories are files in its
 * state directory, so a later run finds what an earlier one wrote.  The control FIFO takes faults
 * and plug events, one command a line.  docs/testing.md ("usbemu") has the whole story.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "module-names.h"
#include "particle.h"

#define PRELOAD_LIBRARY "libumockdev-preload.so.0"

typedef struct {
	const UsbemuModel *model;
	const char *option; /* "--dfu" or "--particle", for messages */
	char *state_dir;
	char *serial;
	/* Device OS (Particle models): */
	char **modules;  /* --modules: files written into a new flash */
	int module_info; /* --module-info: HealerParticleModuleInfoFormat, -1 for the platform's */
	bool protected_device;
	bool updates_disabled;
	bool no_sysfs_serial; /* --no-sysfs-serial: the serial number only as the string descriptor */
	int mode;             /* --mode: UsbemuMode, -1 for the option's default */
	double time_scale;    /* --time-scale, 0 for 1 */
} DeviceSpec;

static struct {
	char *trace_path;
	char *control_path;
	GArray *specs; /* DeviceSpec */
	char **command;

	int control_fd;
	bool control_created;
	GString *control_pending;
	guint control_source;
	GPid child;
	int child_status;
	GMainLoop *loop;
} opt = {.control_fd = -1};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: usbemu [--trace FILE] [--control FIFO] DEVICE... -- COMMAND [ARG...]\n"
	        "  DEVICE: --dfu MODEL --state DIR [--serial SERIAL]\n"
	        "        | --particle PLATFORM --state DIR [--modules FILE,...] [--module-info old|new]\n"
	        "                     [--protected] [--updates-disabled] [--no-sysfs-serial] [--mode normal|dfu] "
	        "[--serial SERIAL]\n"
	        "                     [--time-scale F]\n"
	        "Runs COMMAND under umockdev's preload with emulated USB devices in DFU mode attached,\n"
	        "device i at port 1-1.i (then 1-2.1 ...), and exits with COMMAND's status.\n"
	        "\n"
	        "  --dfu MODEL       a device (usbemu --list-models), in DFU mode\n"
	        "  --particle PLATFORM  a Particle device running Device OS (photon, p1, electron, argon,\n"
	        "                    boron, bsom, p2, msom): model particle-PLATFORM, in normal mode\n"
	        "  --modules F,...   module files written at their start addresses into a new flash\n"
	        "  --module-info old|new  GET_MODULE_INFO's format (default: old on Gen 2, new on others)\n"
	        "  --protected       Device Protection: OTA answers -1801, DFU segments read \"b\"\n"
	        "  --updates-disabled  START_FIRMWARE_UPDATE answers -1380\n"
	        "  --no-sysfs-serial its serial number only as its string descriptor, not in sysfs\n"
	        "  --mode normal|dfu the mode it starts in\n"
	        "  --time-scale F    multiplies every modelled Device OS time (handlers, resets)\n"
	        "  --state DIR       its memories (one file each), serial number and model\n"
	        "  --serial SERIAL   its USB serial number (default: kept in DIR, made up the first time)\n"
	        "  --trace FILE      one line per control transfer and per event\n"
	        "  --control FIFO    commands, one a line (created if missing):\n"
	        "                      unplug N | replug N | dfu N | reboot N | busy N MS | stall N [REQUEST [SKIP]]\n"
	        "\n"
	        "Exit status: COMMAND's (128 + signal if it was killed), 125 for usbemu's own errors,\n"
	        "126 if COMMAND cannot run, 127 if it is not found.\n");
}

static void
list_models(void)
{
	const UsbemuModel *m;

	for (unsigned i = 0; (m = usbemu_model_get(i)) != NULL; i++) {
		printf("%s: %s\n  DFU mode %04x:%04x \"%s\", wTransferSize %u", m->name, m->description, m->vendor_id,
		       m->dfu_product_id, m->dfu_product, m->transfer_size);
		if (m->normal_layout != USBEMU_NORMAL_NONE)
			printf("; after leaving DFU %04x:%04x \"%s\"", m->vendor_id, m->normal_product_id,
			       m->normal_product);
		printf("\n");
		if (m->platform_id != 0)
			printf("  Device OS in normal mode: platform %u (--particle %s)%s\n", m->platform_id,
			       m->name + strlen("particle-"),
			       m->out_hangs_without_data ? "; an OUT request without a data stage never completes"
			                                 : "");
		for (unsigned alt = 0; m->layouts[alt] != NULL; alt++)
			printf("  alt %u: %s\n", alt, m->layouts[alt]);
		printf("  from: %s\n", m->source);
	}
}

static bool fail(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static bool
fail(GError **error, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_propagate_error(error, g_error_new_valist(G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, format, args));
	va_end(args);
	return false;
}

static bool
serial_valid(const char *serial)
{
	size_t n = strlen(serial);

	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!g_ascii_isalnum(serial[i]) && strchr("-_.", serial[i]) == NULL)
			return false;
	}
	return true;
}

/* The options of a Device OS device: --modules, --mode, --module-info, --time-scale, --protected, --updates-disabled.
 */
static bool
parse_particle_option(DeviceSpec *spec, unsigned which, const char *value, GError **error)
{
	char *end;

	switch (which) {
	case 0:
		g_strfreev(spec->modules);
		spec->modules = g_strsplit(value, ",", -1);
		for (unsigned i = 0; spec->modules[i] != NULL; i++) {
			if (spec->modules[i][0] == '\0')
				return fail(error, "--modules '%s': an empty file name", value);
		}
		return true;
	case 1:
		if (strcmp(value, "normal") == 0)
			spec->mode = USBEMU_MODE_NORMAL;
		else if (strcmp(value, "dfu") == 0)
			spec->mode = USBEMU_MODE_DFU;
		else
			return fail(error, "--mode '%s': normal or dfu", value);
		return true;
	case 2:
		if (strcmp(value, "old") == 0)
			spec->module_info = HEALER_PARTICLE_MODULE_INFO_OLD;
		else if (strcmp(value, "new") == 0)
			spec->module_info = HEALER_PARTICLE_MODULE_INFO_NEW;
		else
			return fail(error, "--module-info '%s': old or new", value);
		return true;
	case 3:
		spec->time_scale = g_ascii_strtod(value, &end);
		if (end == value || *end != '\0' || !(spec->time_scale > 0) || spec->time_scale > 1000)
			return fail(error, "--time-scale '%s': a number above 0, at most 1000", value);
		return true;
	case 4:
		spec->protected_device = true;
		return true;
	case 5:
		spec->updates_disabled = true;
		return true;
	default:
		spec->no_sysfs_serial = true;
		return true;
	}
}

/* Returns the index of "--" ending the options, or -1 on an error. */
static int
parse_args(int argc, char **argv, GError **error)
{
	DeviceSpec *last = NULL;
	int i;

	opt.specs = g_array_new(FALSE, TRUE, sizeof(DeviceSpec));
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = NULL;
		const char *names[] = {"--trace",          "--control",    "--dfu",       "--state",
		                       "--serial",         "--particle",   "--modules",   "--mode",
		                       "--module-info",    "--time-scale", "--protected", "--updates-disabled",
		                       "--no-sysfs-serial"};
		const unsigned first_flag = 10;
		unsigned which = G_N_ELEMENTS(names);

		if (strcmp(arg, "--") == 0)
			break;
		for (unsigned n = first_flag; n < G_N_ELEMENTS(names); n++) {
			if (strcmp(arg, names[n]) == 0)
				which = n;
		}
		for (unsigned n = 0; n < first_flag && which == G_N_ELEMENTS(names); n++) {
			size_t len = strlen(names[n]);
			if (strcmp(arg, names[n]) == 0) {
				if (i + 1 >= argc) {
					fail(error, "%s needs a value", names[n]);
					return -1;
				}
				which = n;
				value = argv[++i];
			} else if (strncmp(arg, names[n], len) == 0 && arg[len] == '=') {
				which = n;
				value = arg + len + 1;
			}
		}
		switch (which) {
		case 0:
			opt.trace_path = g_strdup(value);
			break;
		case 1:
			opt.control_path = g_strdup(value);
			break;
		case 2: {
			DeviceSpec spec = {
			        .model = usbemu_model_find(value), .option = "--dfu", .module_info = -1, .mode = -1};
			if (spec.model == NULL) {
				g_autoptr(GString) known = g_string_new(NULL);
				const UsbemuModel *m;
				for (unsigned n = 0; (m = usbemu_model_get(n)) != NULL; n++)
					g_string_append_printf(known, "%s%s", n > 0 ? ", " : "", m->name);
				fail(error, "--dfu %s: no such model (models: %s)", value, known->str);
				return -1;
			}
			g_array_append_val(opt.specs, spec);
			last = &g_array_index(opt.specs, DeviceSpec, opt.specs->len - 1);
			break;
		}
		case 5: {
			g_autofree char *name = g_strconcat("particle-", value, NULL);
			DeviceSpec spec = {.model = usbemu_model_find(name),
			                   .option = "--particle",
			                   .module_info = -1,
			                   .mode = -1};
			if (spec.model == NULL || spec.model->platform_id == 0) {
				g_autoptr(GString) known = g_string_new(NULL);
				const UsbemuModel *m;
				for (unsigned n = 0; (m = usbemu_model_get(n)) != NULL; n++) {
					if (m->platform_id != 0)
						g_string_append_printf(known, "%s%s", known->len > 0 ? ", " : "",
						                       m->name + strlen("particle-"));
				}
				fail(error, "--particle %s: no such platform (platforms: %s)", value, known->str);
				return -1;
			}
			g_array_append_val(opt.specs, spec);
			last = &g_array_index(opt.specs, DeviceSpec, opt.specs->len - 1);
			break;
		}
		case 3:
		case 4:
		case 6:
		case 7:
		case 8:
		case 9:
		case 10:
		case 11:
		case 12:
			if (last == NULL) {
				fail(error, "%s%s%s: comes after the --dfu MODEL or --particle PLATFORM it belongs to",
				     names[which], value != NULL ? " " : "", value != NULL ? value : "");
				return -1;
			}
			if (which >= 6 && last->model->platform_id == 0) {
				fail(error, "%s: the %s runs no Device OS", names[which], last->model->name);
				return -1;
			}
			if (which >= 6) {
				if (!parse_particle_option(last, which - 6, value, error))
					return -1;
				break;
			}
			if (which == 3) {
				g_free(last->state_dir);
				last->state_dir = g_strdup(value);
			} else {
				if (!serial_valid(value)) {
					fail(error, "--serial '%s': 1 to 64 letters, digits, '-', '_' or '.'", value);
					return -1;
				}
				g_free(last->serial);
				last->serial = g_strdup(value);
			}
			break;
		default:
			fail(error, "unknown option '%s'", arg);
			return -1;
		}
	}
	if (opt.specs->len == 0) {
		fail(error, "no device: give at least one --dfu MODEL --state DIR");
		return -1;
	}
	for (unsigned n = 0; n < opt.specs->len; n++) {
		if (g_array_index(opt.specs, DeviceSpec, n).state_dir == NULL) {
			fail(error, "device %u (%s %s) has no --state DIR", n + 1,
			     g_array_index(opt.specs, DeviceSpec, n).option,
			     g_array_index(opt.specs, DeviceSpec, n).model->name);
			return -1;
		}
	}
	if (i >= argc - 1) {
		fail(error, "no COMMAND: put it after '--'");
		return -1;
	}
	return i;
}

static char *
read_state_text(const char *dir, const char *name, GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(GError) local = NULL;
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, &local)) {
		if (!g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			g_propagate_error(error, g_steal_pointer(&local));
		return NULL;
	}
	return g_strstrip(text);
}

static bool
write_state_text(const char *dir, const char *name, const char *text, GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *line = g_strconcat(text, "\n", NULL);

	return g_file_set_contents(path, line, -1, error);
}

static char *
make_serial(const UsbemuModel *model)
{
	const char *digits = model->serial_upper_case ? "0123456789ABCDEF" : "0123456789abcdef";
	char *serial = g_malloc0(model->serial_length + 1);

	for (unsigned i = 0; i < model->serial_length; i++)
		serial[i] = digits[g_random_int_range(0, 16)];
	return serial;
}

/* Device OS: its options, and the modules of --modules in a new flash (a kept one stays as it is). */
static bool
particle_open(UsbemuDevice *device, const DeviceSpec *spec, GError **error)
{
	const HealerPlatform *platform = healer_platform_lookup(device->model->platform_id);
	UsbemuParticle *particle = usbemu_particle_new();

	device->particle = particle;
	particle->module_info_format = spec->module_info >= 0 ? (HealerParticleModuleInfoFormat)spec->module_info
	                               : platform != NULL && platform->generation == 2
	                                       ? HEALER_PARTICLE_MODULE_INFO_OLD
	                                       : HEALER_PARTICLE_MODULE_INFO_NEW;
	particle->protected_device = spec->protected_device;
	particle->updates_disabled = spec->updates_disabled;
	if (spec->time_scale > 0)
		particle->timing.scale = spec->time_scale;
	if (spec->modules == NULL)
		return true;
	if (!device->memories[0].fresh) {
		usbemu_trace("%s event modules: the flash in %s is kept from an earlier run", device->label,
		             device->state_dir);
		return true;
	}
	for (unsigned i = 0; spec->modules[i] != NULL; i++) {
		if (!usbemu_flash_write_file(device, spec->modules[i], error))
			return false;
	}
	return true;
}

/* The state directory: locked for this run, the model it belongs to, the serial, the memories. */
static bool
device_open(UsbemuDevice *device, const DeviceSpec *spec, GError **error)
{
	const UsbemuModel *model = spec->model;
	g_autofree char *lock_path = g_build_filename(spec->state_dir, ".lock", NULL);
	g_autofree char *stored_model = NULL;
	g_autofree char *stored_serial = NULL;
	GError *local = NULL;

	device->model = model;
	device->state_dir = g_strdup(spec->state_dir);
	device->label = g_strdup_printf("dev%u", device->index);
	if (g_mkdir_with_parents(spec->state_dir, 0755) != 0)
		return fail(error, "--state %s: %s", spec->state_dir, g_strerror(errno));
	device->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (device->lock_fd < 0)
		return fail(error, "%s: %s", lock_path, g_strerror(errno));
	if (flock(device->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return fail(error, "--state %s: in use by another usbemu (or another device of this one)",
		            spec->state_dir);

	stored_model = read_state_text(spec->state_dir, "model", &local);
	if (local == NULL && stored_model != NULL && strcmp(stored_model, model->name) != 0)
		return fail(error, "--state %s holds a %s, not a %s", spec->state_dir, stored_model, model->name);
	if (local == NULL && stored_model == NULL)
		write_state_text(spec->state_dir, "model", model->name, &local);
	if (local == NULL)
		stored_serial = read_state_text(spec->state_dir, "serial", &local);
	if (local != NULL) {
		g_propagate_error(error, local);
		return false;
	}
	if (spec->serial != NULL)
		device->serial = g_strdup(spec->serial);
	else if (stored_serial != NULL && serial_valid(stored_serial))
		device->serial = g_steal_pointer(&stored_serial);
	else
		device->serial = make_serial(model);
	device->no_sysfs_serial = spec->no_sysfs_serial;
	if ((stored_serial == NULL || strcmp(stored_serial, device->serial) != 0) &&
	    !write_state_text(spec->state_dir, "serial", device->serial, error))
		return false;

	for (device->n_memories = 0; model->layouts[device->n_memories] != NULL; device->n_memories++)
		;
	device->memories = g_new0(UsbemuMemory, device->n_memories);
	for (unsigned i = 0; i < device->n_memories; i++) {
		if (!usbemu_memory_parse_layout(model->layouts[i], &device->memories[i], error) ||
		    !usbemu_memory_open(&device->memories[i], spec->state_dir, error))
			return false;
		if (spec->protected_device)
			usbemu_memory_protect(&device->memories[i]);
	}
	device->next_mode = spec->mode >= 0                           ? (UsbemuMode)spec->mode
	                    : strcmp(spec->option, "--particle") == 0 ? USBEMU_MODE_NORMAL
	                                                              : USBEMU_MODE_DFU;
	if (model->platform_id != 0)
		return particle_open(device, spec, error);
	return true;
}

/* Each state directory once (two devices cannot share one: the lock would say so, later). */
static bool
check_distinct_states(GError **error)
{
	for (unsigned a = 0; a < opt.specs->len; a++) {
		for (unsigned b = a + 1; b < opt.specs->len; b++) {
			g_autofree char *pa =
			        g_canonicalize_filename(g_array_index(opt.specs, DeviceSpec, a).state_dir, NULL);
			g_autofree char *pb =
			        g_canonicalize_filename(g_array_index(opt.specs, DeviceSpec, b).state_dir, NULL);
			if (strcmp(pa, pb) == 0)
				return fail(error, "devices %u and %u have the same --state %s", a + 1, b + 1, pa);
		}
	}
	return true;
}

static UsbemuDevice *
device_by_number(const char *word, GString *problem)
{
	char *end;
	unsigned long n = word != NULL ? strtoul(word, &end, 10) : 0;

	if (word == NULL || *end != '\0' || n < 1 || n > usbemu.devices->len) {
		g_string_printf(problem, "'%s' is not a device number (1 to %u)", word != NULL ? word : "",
		                usbemu.devices->len);
		return NULL;
	}
	return g_ptr_array_index(usbemu.devices, n - 1);
}

static int
request_by_name(const char *word)
{
	static const char *const names[] = {"DETACH",    "DNLOAD",   "UPLOAD", "GETSTATUS",
	                                    "CLRSTATUS", "GETSTATE", "ABORT"};

	for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
		if (g_ascii_strcasecmp(word, names[i]) == 0)
			return (int)i;
	}
	/* Device OS' service requests (a device in normal mode): numbers of their own. */
	for (unsigned i = HEALER_PARTICLE_SERVICE_INIT; i <= HEALER_PARTICLE_SERVICE_RESET; i++) {
		if (g_ascii_strcasecmp(word, healer_particle_service_to_string(i)) == 0)
			return USBEMU_STALL_PARTICLE + (int)i;
	}
	return -1;
}

static bool
parse_uint(const char *word, unsigned long max, unsigned long *value)
{
	char *end;

	if (word == NULL || !g_ascii_isdigit(word[0]))
		return false;
	*value = strtoul(word, &end, 10);
	return *end == '\0' && *value <= max;
}

/* One control command; what it did, or why not, goes to the trace (and errors to stderr). */
static void
control_command(const char *line)
{
	g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
	g_autoptr(GString) problem = g_string_new(NULL);
	g_autoptr(GError) error = NULL;
	const char *w[5] = {NULL};
	unsigned n = 0;
	UsbemuDevice *device;
	unsigned long value;

	for (unsigned i = 0; words[i] != NULL && n < G_N_ELEMENTS(w); i++) {
		if (words[i][0] != '\0')
			w[n++] = words[i];
	}
	if (n == 0 || w[0][0] == '#')
		return;
	device = device_by_number(w[1], problem);
	if (device == NULL) {
		/* problem says why */
	} else if (strcmp(w[0], "unplug") == 0 && n == 2) {
		if (device->current == NULL)
			g_string_printf(problem, "device %s is unplugged already", w[1]);
		else
			usbemu_bus_unplug(device);
	} else if (strcmp(w[0], "replug") == 0 && n == 2) {
		if (device->current != NULL)
			g_string_printf(problem, "device %s is plugged in", w[1]);
		else if (!usbemu_bus_plug(device, device->next_mode, &error))
			g_string_printf(problem, "%s", error->message);
	} else if (strcmp(w[0], "dfu") == 0 && n == 2) {
		if (device->current == NULL || device->mode != USBEMU_MODE_NORMAL)
			g_string_printf(problem, "device %s is not plugged in in normal mode", w[1]);
		else {
			usbemu_bus_unplug(device);
			if (!usbemu_bus_plug(device, USBEMU_MODE_DFU, &error))
				g_string_printf(problem, "%s", error->message);
		}
	} else if (strcmp(w[0], "reboot") == 0 && n == 2) {
		/* A reset now: whatever Device OS was doing is lost, an install in progress too. */
		if (device->current == NULL)
			g_string_printf(problem, "device %s is unplugged", w[1]);
		else {
			UsbemuMode mode = device->model->normal_layout == USBEMU_NORMAL_NONE ? USBEMU_MODE_DFU
			                                                                     : USBEMU_MODE_NORMAL;
			usbemu_bus_unplug(device);
			if (!usbemu_bus_plug(device, mode, &error))
				g_string_printf(problem, "%s", error->message);
		}
	} else if (strcmp(w[0], "busy") == 0 && n == 3) {
		if (!parse_uint(w[2], 0xffffff, &value)) {
			g_string_printf(problem, "'%s' is not a poll timeout in ms (0 to 16777215)", w[2]);
		} else {
			g_mutex_lock(&usbemu.lock);
			device->poll_timeout_ms = (uint32_t)value;
			g_mutex_unlock(&usbemu.lock);
		}
	} else if (strcmp(w[0], "stall") == 0 && n >= 2 && n <= 4) {
		int request = n >= 3 ? request_by_name(w[2]) : -1;
		unsigned long skip = 0;

		if (n >= 3 && request < 0)
			g_string_printf(problem,
			                "'%s' is not a DFU request (DNLOAD, UPLOAD, GETSTATUS, ...) or a Particle one "
			                "(INIT, CHECK, SEND, RECV, RESET)",
			                w[2]);
		else if (n == 4 && !parse_uint(w[3], 1000000, &skip))
			g_string_printf(problem, "'%s' is not a count of requests to let through", w[3]);
		else {
			g_mutex_lock(&usbemu.lock);
			device->stall_armed = true;
			device->stall_request = request;
			device->stall_skip = (unsigned)skip;
			g_mutex_unlock(&usbemu.lock);
		}
	} else {
		g_string_printf(
		        problem,
		        "unknown command (unplug N, replug N, dfu N, reboot N, busy N MS, stall N [REQUEST [SKIP]])");
	}
	if (problem->len > 0) {
		g_printerr("usbemu: control: '%s': %s\n", line, problem->str);
		usbemu_trace("control \"%s\" error: %s", line, problem->str);
	} else {
		usbemu_trace("control \"%s\" ok", line);
	}
}

/* Takes what the FIFO holds now and runs every complete line. */
static void
control_drain(void)
{
	char buffer[4096];
	ssize_t n;
	char *newline;

	while ((n = read(opt.control_fd, buffer, sizeof buffer)) > 0)
		g_string_append_len(opt.control_pending, buffer, n);
	while ((newline = strchr(opt.control_pending->str, '\n')) != NULL) {
		g_autofree char *line =
		        g_strndup(opt.control_pending->str, (gsize)(newline - opt.control_pending->str));
		g_string_erase(opt.control_pending, 0, newline - opt.control_pending->str + 1);
		control_command(g_strstrip(line));
	}
}

static gboolean
on_control_readable(int fd, GIOCondition condition, gpointer user_data)
{
	(void)fd;
	(void)condition;
	(void)user_data;
	control_drain();
	return G_SOURCE_CONTINUE;
}

static bool
control_open(GError **error)
{
	struct stat st;

	if (stat(opt.control_path, &st) != 0) {
		if (errno != ENOENT || mkfifo(opt.control_path, 0600) != 0)
			return fail(error, "--control %s: %s", opt.control_path, g_strerror(errno));
		opt.control_created = true;
	} else if (!S_ISFIFO(st.st_mode)) {
		return fail(error, "--control %s: not a FIFO", opt.control_path);
	}
	/* Read-write: no end of file each time a writer closes it. */
	opt.control_fd = open(opt.control_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (opt.control_fd < 0)
		return fail(error, "--control %s: %s", opt.control_path, g_strerror(errno));
	opt.control_pending = g_string_new(NULL);
	/* Commands written before COMMAND starts take effect before it does. */
	control_drain();
	opt.control_source = g_unix_fd_add(opt.control_fd, G_IO_IN, on_control_readable, NULL);
	return true;
}

static void
child_setup(gpointer user_data)
{
	(void)user_data;
	/* usbemu killed: the command goes too, rather than talking to a testbed that is gone. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void
on_child_exit(GPid pid, gint status, gpointer user_data)
{
	(void)user_data;
	g_spawn_close_pid(pid);
	if (WIFEXITED(status))
		opt.child_status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		opt.child_status = 128 + WTERMSIG(status);
	else
		opt.child_status = USBEMU_EXIT_FAILURE;
	opt.child = 0;
	g_main_loop_quit(opt.loop);
}

static gboolean
on_signal(gpointer user_data)
{
	(void)user_data;
	if (opt.child != 0)
		kill(opt.child, SIGTERM);
	return G_SOURCE_CONTINUE;
}

static bool
under_preload(void)
{
	const char *preload = g_getenv("LD_PRELOAD");

	return preload != NULL && strstr(preload, PRELOAD_LIBRARY) != NULL;
}

/*
 * The testbed sends uevents through libudev, which must see the testbed's sysfs: so usbemu runs
 * under the preload too (its own files are not under /dev or /sys, which is all the preload
 * redirects), and COMMAND inherits it.
 */
static void
reexec_under_preload(char **argv)
{
	const char *preload = g_getenv("LD_PRELOAD");
	const char *asan = g_getenv("ASAN_OPTIONS");
	g_autofree char *new_preload = preload != NULL && *preload != '\0'
	                                       ? g_strconcat(PRELOAD_LIBRARY, ":", preload, NULL)
	                                       : g_strdup(PRELOAD_LIBRARY);
	/* A sanitized program refuses to start with a preload loaded before its runtime. */
	g_autofree char *new_asan = asan != NULL && *asan != '\0' ? g_strconcat(asan, ":verify_asan_link_order=0", NULL)
	                                                          : g_strdup("verify_asan_link_order=0");

	g_setenv("LD_PRELOAD", new_preload, TRUE);
	g_setenv("ASAN_OPTIONS", new_asan, TRUE);
	execv("/proc/self/exe", argv);
	g_printerr("usbemu: cannot run itself again under %s: %s\n", PRELOAD_LIBRARY, g_strerror(errno));
}

static int
spawn_command(void)
{
	g_autoptr(GError) error = NULL;

	if (!g_spawn_async(NULL, opt.command, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, child_setup, NULL,
	                   &opt.child, &error)) {
		g_printerr("usbemu: %s: %s\n", opt.command[0], error->message);
		if (g_error_matches(error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT))
			return USBEMU_EXIT_NOT_FOUND;
		return USBEMU_EXIT_CANNOT_RUN;
	}
	g_child_watch_add(opt.child, on_child_exit, NULL);
	return 0;
}

static void
shut_down(void)
{
	if (opt.control_source != 0)
		g_source_remove(opt.control_source);
	if (opt.control_fd >= 0)
		close(opt.control_fd);
	if (opt.control_created)
		unlink(opt.control_path);
	g_mutex_lock(&usbemu.lock);
	/* Late ioctls (a grandchild still running) get ENODEV from here on. */
	usbemu.closing = true;
	for (unsigned i = 0; usbemu.devices != NULL && i < usbemu.devices->len; i++) {
		UsbemuDevice *device = g_ptr_array_index(usbemu.devices, i);
		for (unsigned m = 0; m < device->n_memories; m++)
			usbemu_memory_sync(&device->memories[m]);
	}
	g_mutex_unlock(&usbemu.lock);
	/* Stops the testbed's listeners and removes its directory. */
	g_clear_object(&usbemu.testbed);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int end, status;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--list-models") == 0) {
		list_models();
		return 0;
	}
	end = parse_args(argc, argv, &error);
	if (end < 0 || !check_distinct_states(&error)) {
		g_printerr("usbemu: %s\n", error->message);
		usage(stderr);
		return USBEMU_EXIT_FAILURE;
	}
	opt.command = argv + end + 1;
	if (g_getenv("UMOCKDEV_DIR") != NULL) {
		g_printerr("usbemu: already inside a umockdev testbed (UMOCKDEV_DIR=%s)\n", g_getenv("UMOCKDEV_DIR"));
		return USBEMU_EXIT_FAILURE;
	}
	if (!under_preload()) {
		reexec_under_preload(argv);
		return USBEMU_EXIT_FAILURE;
	}

	usbemu.start_us = usbemu_now_us();
	usbemu.devices = g_ptr_array_new();
	if (opt.trace_path != NULL && !usbemu_trace_open(opt.trace_path, &error))
		goto failed;
	for (unsigned i = 0; i < opt.specs->len; i++) {
		UsbemuDevice *device = g_new0(UsbemuDevice, 1);

		device->index = i + 1;
		device->lock_fd = -1;
		g_ptr_array_add(usbemu.devices, device);
		if (!device_open(device, &g_array_index(opt.specs, DeviceSpec, i), &error))
			goto failed;
	}

	usbemu.testbed = umockdev_testbed_new();
	usbemu.root_dir = umockdev_testbed_get_root_dir(usbemu.testbed);
	if (!usbemu_usbfs_install_passthrough(&error) || !usbemu_bus_init(&error))
		goto failed;
	opt.loop = g_main_loop_new(NULL, FALSE);
	if (opt.control_path != NULL && !control_open(&error))
		goto failed;

	g_unix_signal_add(SIGTERM, on_signal, NULL);
	g_unix_signal_add(SIGINT, on_signal, NULL);
	g_unix_signal_add(SIGHUP, on_signal, NULL);
	status = spawn_command();
	if (status == 0) {
		g_main_loop_run(opt.loop);
		status = opt.child_status;
	}
	usbemu_trace("exit status=%d", status);
	shut_down();
	usbemu_trace_close();
	return status;

failed:
	g_printerr("usbemu: %s\n", error->message);
	shut_down();
	usbemu_trace_close();
	return USBEMU_EXIT_FAILURE;
}
