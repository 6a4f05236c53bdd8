/*
 * The bus the devices hang off, in the testbed: bus 1's root hub, a 7-port hub per seven devices
 * on its ports, and device i on port 1-H.P (H = (i - 1) / 7 + 1, P = (i - 1) % 7 + 1), so a
 * device's port path, the physical id a backend keys on, is the same across unplugs and
 * re-enumerations while its devnum changes (the next free one, as the kernel hands them out).
 *
 * Plugging in writes the node first (a FIFO, usbfs.c) and attaches its ioctl handler, then the
 * sysfs device, then sends the "add" uevent: a client that sees the device can open it.
 * Unplugging sends "remove" while sysfs still has the properties the event carries, then takes
 * the device away; files still open on the old node get ENODEV.  Main thread only, but for
 * usbemu_bus_schedule_reset(), which any thread may call with the lock held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "particle.h"

#define BUS              1
#define PORTS_PER_HUB    7
#define ROOT_HUB_SYSPATH "/sys/devices/pci0000:00/0000:00:14.0/usb1"
#define MAX_ROOT_PORTS   15

Usbemu usbemu;

static uint8_t
devnum_take(void)
{
	/* Round robin over 1..127, skipping those in use, as the kernel does. */
	for (unsigned tries = 0; tries < 127; tries++) {
		uint8_t devnum = usbemu.devnum_next;

		usbemu.devnum_next = devnum >= 127 ? 1 : (uint8_t)(devnum + 1);
		if (!usbemu.devnum_used[devnum]) {
			usbemu.devnum_used[devnum] = true;
			return devnum;
		}
	}
	return 0;
}

static UsbemuDevice *
hub_new(const char *label, const char *port_path, const char *syspath, const char *devpath)
{
	UsbemuDevice *hub = g_new0(UsbemuDevice, 1);

	hub->label = g_strdup(label);
	hub->busnum = BUS;
	hub->port_path = g_strdup(port_path);
	hub->syspath = g_strdup(syspath);
	hub->devpath = g_strdup(devpath);
	hub->mode = hub->next_mode = USBEMU_MODE_HUB;
	hub->handler = usbemu_usbfs_handler_new(hub);
	g_ptr_array_add(usbemu.hubs, hub);
	return hub;
}

bool
usbemu_bus_init(GError **error)
{
	unsigned n_hubs = (usbemu.devices->len + PORTS_PER_HUB - 1) / PORTS_PER_HUB;
	UsbemuDevice *root;

	if (n_hubs > MAX_ROOT_PORTS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "at most %u devices",
		            MAX_ROOT_PORTS * PORTS_PER_HUB);
		return false;
	}
	usbemu.hubs = g_ptr_array_new();
	usbemu.devnum_next = 1;
	root = hub_new("usb1", "usb1", ROOT_HUB_SYSPATH, "0");
	for (unsigned h = 1; h <= n_hubs; h++) {
		g_autofree char *port = g_strdup_printf("%u-%u", BUS, h);
		g_autofree char *syspath = g_strdup_printf("%s/%s", root->syspath, port);
		g_autofree char *devpath = g_strdup_printf("%u", h);
		hub_new(port, port, syspath, devpath);
	}
	for (unsigned i = 0; i < usbemu.devices->len; i++) {
		UsbemuDevice *device = g_ptr_array_index(usbemu.devices, i);
		UsbemuDevice *hub = g_ptr_array_index(usbemu.hubs, 1 + i / PORTS_PER_HUB);
		unsigned port = i % PORTS_PER_HUB + 1;

		device->busnum = BUS;
		device->port_path = g_strdup_printf("%s.%u", hub->port_path, port);
		device->syspath = g_strdup_printf("%s/%s", hub->syspath, device->port_path);
		device->devpath = g_strdup_printf("%s.%u", hub->devpath, port);
		device->handler = usbemu_usbfs_handler_new(device);
	}
	for (unsigned i = 0; i < usbemu.hubs->len; i++) {
		if (!usbemu_bus_plug(g_ptr_array_index(usbemu.hubs, i), USBEMU_MODE_HUB, error))
			return false;
	}
	for (unsigned i = 0; i < usbemu.devices->len; i++) {
		UsbemuDevice *device = g_ptr_array_index(usbemu.devices, i);
		if (!usbemu_bus_plug(device, device->next_mode, error))
			return false;
	}
	return true;
}

/* The node: a FIFO of one page, full (nothing to reap) to begin with. */
static int
make_node(const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	static const uint8_t page[4096];
	int fd;

	if (g_mkdir_with_parents(dir, 0755) != 0 || (mkfifo(path, 0666) != 0 && errno != EEXIST) ||
	    (fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s", path, g_strerror(saved));
		return -1;
	}
	/* Not fatal: with a bigger pipe, filling takes more writes. */
	(void)fcntl(fd, F_SETPIPE_SZ, (int)sizeof page);
	while (write(fd, page, sizeof page) > 0)
		;
	return fd;
}

static const char *
mode_name(UsbemuMode mode)
{
	return mode == USBEMU_MODE_DFU ? "dfu" : mode == USBEMU_MODE_NORMAL ? "normal" : "hub";
}

/* What is written to a CDC ACM tty arrives at the testbed's pty master: counted in the trace. */
static gboolean
on_tty_readable(int fd, GIOCondition condition, gpointer user_data)
{
	UsbemuDevice *device = user_data;
	uint8_t buffer[4096];
	ssize_t n = read(fd, buffer, sizeof buffer);

	(void)condition;
	if (n > 0) {
		usbemu_trace("%s tty read bytes=%zd", device->label, n);
		return G_SOURCE_CONTINUE;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return G_SOURCE_CONTINUE;
	/* EIO: no file has the tty open; the master polls readable until one does. Look again later. */
	device->tty_source = 0;
	return G_SOURCE_REMOVE;
}

static gboolean
on_tty_retry(gpointer user_data)
{
	UsbemuDevice *device = user_data;
	int fd;

	if (device->tty_source != 0)
		return G_SOURCE_CONTINUE;
	fd = umockdev_testbed_get_dev_fd(usbemu.testbed, device->tty_devnode);
	if (fd >= 0)
		device->tty_source = g_unix_fd_add(fd, G_IO_IN, on_tty_readable, device);
	return G_SOURCE_CONTINUE;
}

/* The interfaces in sysfs and, with CDC ACM, the tty a serial backend finds its USB parent from. */
static bool
plug_children(UsbemuDevice *device, GError **error)
{
	g_autofree char *tty_syspath = NULL;
	g_autofree char *tty_devnode = NULL;
	/* umockdev 0.17.16 keeps a tty's pty after the device is removed, and asserts when a node of the
	 * same name is made again: the first plug makes the node, later ones link it to the same pty. */
	g_autoptr(GPtrArray) records =
	        usbemu_sysfs_child_records(device, device->tty_pty == NULL, &tty_syspath, &tty_devnode);

	device->child_syspaths = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < records->len; i++) {
		const char *record = g_ptr_array_index(records, i);
		const char *end = strchr(record, '\n');
		g_autofree char *syspath = g_strdup_printf("/sys%.*s", (int)(end - record - 3), record + 3);

		if (!umockdev_testbed_add_from_string(usbemu.testbed, record, error)) {
			g_prefix_error(error, "%s: ", device->label);
			return false;
		}
		if (!umockdev_in_mock_environment())
			umockdev_testbed_uevent(usbemu.testbed, syspath, "add");
		g_ptr_array_add(device->child_syspaths, g_steal_pointer(&syspath));
	}
	if (tty_syspath != NULL) {
		/* The kernel's link from the tty to its interface, which a serial backend follows up to the USB
		 * device (the testbed makes none: umockdev links only the subsystem). */
		g_autofree char *link = g_build_filename(usbemu.root_dir, tty_syspath, "device", NULL);
		g_autofree char *target = g_strdup_printf("../../../%s:1.0", device->port_path);
		if (symlink(target, link) != 0 && errno != EEXIST) {
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s: %s", device->label,
			            link, g_strerror(errno));
			return false;
		}
	}
	if (tty_devnode != NULL) {
		g_autofree char *node = g_build_filename(usbemu.root_dir, tty_devnode, NULL);

		if (device->tty_pty == NULL)
			device->tty_pty = g_file_read_link(node, NULL);
		else if (symlink(device->tty_pty, node) != 0 && errno != EEXIST) {
			int saved = errno;
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s", node, g_strerror(saved));
			return false;
		}
		device->tty_devnode = g_steal_pointer(&tty_devnode);
		on_tty_retry(device);
		/* The master reads EIO while no file has the tty open: its source goes, and comes back. */
		device->tty_retry_source = g_timeout_add(100, on_tty_retry, device);
		usbemu_trace("%s event tty %s", device->label, device->tty_devnode);
	}
	return true;
}

static void
unplug_children(UsbemuDevice *device)
{
	if (device->tty_source != 0)
		g_source_remove(device->tty_source);
	if (device->tty_retry_source != 0)
		g_source_remove(device->tty_retry_source);
	device->tty_source = device->tty_retry_source = 0;
	g_clear_pointer(&device->tty_devnode, g_free);
	if (device->child_syspaths == NULL)
		return;
	/* Children first, as the kernel sends them. */
	for (guint i = device->child_syspaths->len; i-- > 0;) {
		const char *syspath = g_ptr_array_index(device->child_syspaths, i);
		umockdev_testbed_uevent(usbemu.testbed, syspath, "remove");
		/* Each one: removing the parent would leave their /sys/bus and /sys/class links behind. */
		umockdev_testbed_remove_device(usbemu.testbed, syspath);
	}
	g_clear_pointer(&device->child_syspaths, g_ptr_array_unref);
}

bool
usbemu_bus_plug(UsbemuDevice *device, UsbemuMode mode, GError **error)
{
	g_autofree char *record = NULL;
	const uint8_t *descriptor;
	UsbemuInstance *instance;
	uint8_t devnum = devnum_take();

	if (devnum == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "%s: no free device number on bus %u",
		            device->label, BUS);
		return false;
	}
	instance = g_new0(UsbemuInstance, 1);
	instance->device = device;
	instance->devnum = devnum;
	instance->devnode = g_strdup_printf("/dev/bus/usb/%03u/%03u", device->busnum, devnum);
	instance->fifo_path = g_build_filename(usbemu.root_dir, instance->devnode, NULL);
	instance->fifo_fd = make_node(instance->fifo_path, error);
	instance->plugged = true;
	if (instance->fifo_fd < 0 ||
	    !umockdev_testbed_attach_ioctl(usbemu.testbed, instance->devnode, device->handler, error)) {
		if (instance->fifo_fd >= 0)
			close(instance->fifo_fd);
		g_free(instance->devnode);
		g_free(instance->fifo_path);
		g_free(instance);
		usbemu.devnum_used[devnum] = false;
		return false;
	}

	g_mutex_lock(&usbemu.lock);
	device->mode = device->next_mode = mode;
	usbemu_identity_build(device);
	usbemu_dfu_reset_state(device);
	device->current = instance;
	record = usbemu_sysfs_record(device, devnum);
	g_mutex_unlock(&usbemu.lock);

	if (!umockdev_testbed_add_from_string(usbemu.testbed, record, error)) {
		g_prefix_error(error, "%s: ", device->label);
		return false;
	}
	/* The testbed sends "add" itself when it sees its own sysfs, as usbemu under the preload does. */
	if (!umockdev_in_mock_environment())
		umockdev_testbed_uevent(usbemu.testbed, device->syspath, "add");
	if (device->model != NULL && !plug_children(device, error))
		return false;
	descriptor = g_bytes_get_data(device->identity.device_descriptor, NULL);
	usbemu_trace("%s event plugged mode=%s port=%s devnum=%u id=%02x%02x:%02x%02x", device->label, mode_name(mode),
	             device->port_path, devnum, descriptor[9], descriptor[8], descriptor[11], descriptor[10]);
	return true;
}

void
usbemu_bus_unplug(UsbemuDevice *device)
{
	UsbemuInstance *instance;
	g_autoptr(GError) error = NULL;

	usbemu_bus_cancel_reset(device);
	g_mutex_lock(&usbemu.lock);
	instance = device->current;
	if (instance == NULL) {
		g_mutex_unlock(&usbemu.lock);
		return;
	}
	device->current = NULL;
	usbemu_instance_set_unplugged(instance);
	/* Power gone: Device OS' requests and an update in progress with it (particle.h). */
	usbemu_particle_reset(device);
	device->retired = g_list_prepend(device->retired, instance);
	for (unsigned i = 0; i < device->n_memories; i++)
		usbemu_memory_sync(&device->memories[i]);
	g_mutex_unlock(&usbemu.lock);

	unplug_children(device);
	umockdev_testbed_uevent(usbemu.testbed, device->syspath, "remove");
	if (!umockdev_testbed_detach_ioctl(usbemu.testbed, instance->devnode, &error))
		g_printerr("usbemu: %s: %s\n", instance->devnode, error->message);
	umockdev_testbed_remove_device(usbemu.testbed, device->syspath);
	usbemu_trace("%s event unplugged port=%s devnum=%u", device->label, device->port_path, instance->devnum);

	g_mutex_lock(&usbemu.lock);
	usbemu.devnum_used[instance->devnum] = false;
	instance->gone = true;
	usbemu_instance_maybe_free(instance);
	g_mutex_unlock(&usbemu.lock);
}

static gboolean
on_reset(gpointer user_data)
{
	UsbemuDevice *device = user_data;
	g_autoptr(GError) error = NULL;
	UsbemuMode mode;

	g_mutex_lock(&usbemu.lock);
	/* Replaced by a later reset while this one was being dispatched: that one does it. */
	if (device->reset_source != g_source_get_id(g_main_current_source())) {
		g_mutex_unlock(&usbemu.lock);
		return G_SOURCE_REMOVE;
	}
	device->reset_source = 0;
	mode = device->next_mode;
	g_mutex_unlock(&usbemu.lock);
	usbemu_bus_unplug(device);
	if (!usbemu_bus_plug(device, mode, &error))
		g_printerr("usbemu: %s: cannot come back after its reset: %s\n", device->label, error->message);
	return G_SOURCE_REMOVE;
}

void
usbemu_bus_schedule_reset(UsbemuDevice *device, UsbemuMode mode, unsigned delay_ms)
{
	device->next_mode = mode;
	if (device->reset_source != 0)
		g_source_remove(device->reset_source);
	device->reset_source = g_timeout_add(delay_ms, on_reset, device);
}

void
usbemu_bus_cancel_reset(UsbemuDevice *device)
{
	g_mutex_lock(&usbemu.lock);
	if (device->reset_source != 0)
		g_source_remove(device->reset_source);
	device->reset_source = 0;
	g_mutex_unlock(&usbemu.lock);
}
