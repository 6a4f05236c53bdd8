/*
 * One physical device, several ports (usb-sysfs.c, serial-backend.c, backend.c's peers):
 *
 *   - the sysfs walk on a sysfs of the test's own (a temp dir laid out as Linux lays out /sys):
 *     a CDC-ACM tty and a usb-serial tty lead to their USB device ("usb:1-1.2", its ids), a
 *     UART's and an unknown tty to none; a USB device's ttys are listed from its interfaces;
 *   - the serial backend's rule, on a pty the fake sysfs places under a USB device: a port of a
 *     device a peer backend's family holds is never opened (one record says why, once), whichever
 *     arrives first (a port served before the peer adds the device is let go); a Particle
 *     device's port (2b04) is left alone unless [serial] ports names it exactly.
 */
#define _GNU_SOURCE /* posix_openpt, grantpt, unlockpt, ptsname */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "device-json.h"
#include "json-autoptr.h"
#include "events.h"
#include "serial-backend.h"
#include "test-util.h"
#include "usb-sysfs.h"

#define WAIT_S 20 /* a guard against a hang, not a timing assertion */

#define USB_DEVICES "devices/pci0000:00/0000:00:14.0/usb1"

/* ---- a fake sysfs -------------------------------------------------------- */

static void
write_text(const char *path, const char *text)
{
	g_autofree char *dir = g_path_get_dirname(path);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void
make_dir(const char *root, const char *relative)
{
	g_autofree char *path = g_build_filename(root, relative, NULL);

	g_assert_cmpint(g_mkdir_with_parents(path, 0755), ==, 0);
}

/* ROOT/relative -> ROOT/target (an absolute link: realpath() resolves it inside ROOT). */
static void
make_link(const char *root, const char *relative, const char *target)
{
	g_autofree char *path = g_build_filename(root, relative, NULL);
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *to = g_build_filename(root, target, NULL);

	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_cmpint(symlink(to, path), ==, 0);
}

/* A USB device at PATH under the hub ("1-1/1-1.2") with its ids, in the bus's list by its name. */
static void
add_usb_device(const char *root, const char *path, const char *vendor, const char *product)
{
	g_autofree char *dir = g_build_filename(root, USB_DEVICES, path, NULL);
	g_autofree char *v = g_build_filename(dir, "idVendor", NULL);
	g_autofree char *p = g_build_filename(dir, "idProduct", NULL);
	g_autofree char *name = g_path_get_basename(path);
	g_autofree char *bus = g_build_filename("bus/usb/devices", name, NULL);
	g_autofree char *target = g_build_filename(USB_DEVICES, path, NULL);

	write_text(v, vendor);
	write_text(p, product);
	make_link(root, bus, target);
}

/* tty TTY as CDC ACM makes it: IFACE/tty/TTY, class/tty/TTY/device -> IFACE. */
static void
add_acm_tty(const char *root, const char *device, const char *interface, const char *tty)
{
	g_autofree char *name = g_path_get_basename(device);
	g_autofree char *iface = g_strdup_printf("%s/%s/%s:%s", USB_DEVICES, device, name, interface);
	g_autofree char *node = g_strdup_printf("%s/tty/%s", iface, tty);
	g_autofree char *class_link = g_strdup_printf("class/tty/%s/device", tty);

	make_dir(root, node);
	make_link(root, class_link, iface);
}

static char *
fake_sysfs_new(void)
{
	char *root = test_tmpdir_new();

	add_usb_device(root, "1-1", "05e3\n", "0608\n"); /* a hub: the walk must stop below it */
	/* A Photon: CDC ACM on interface 0 (ttyACM0), its data interface 1, the vendor interface 2. */
	add_usb_device(root, "1-1/1-1.2", "2b04\n", "c006\n");
	add_acm_tty(root, "1-1/1-1.2", "1.0", "ttyACM0");
	make_dir(root, USB_DEVICES "/1-1/1-1.2/1-1.2:1.1");
	make_dir(root, USB_DEVICES "/1-1/1-1.2/1-1.2:1.2");
	/* An FTDI adapter: usb-serial puts the port below the interface, IFACE/ttyUSB0/tty/ttyUSB0. */
	add_usb_device(root, "1-1/1-1.3", "0403\n", "6001\n");
	make_dir(root, USB_DEVICES "/1-1/1-1.3/1-1.3:1.0/ttyUSB0/tty/ttyUSB0");
	make_link(root, "class/tty/ttyUSB0/device", USB_DEVICES "/1-1/1-1.3/1-1.3:1.0/ttyUSB0");
	/* A UART: no USB device above it. */
	make_dir(root, "devices/platform/serial8250/tty/ttyS0");
	make_link(root, "class/tty/ttyS0/device", "devices/platform/serial8250");
	return root;
}

static void
test_tty_parent(void)
{
	g_autofree char *root = fake_sysfs_new();
	g_auto(HealerUsbTtyParent) acm = {0};
	g_auto(HealerUsbTtyParent) ftdi = {0};
	HealerUsbTtyParent none = {0};

	g_assert_true(healer_usb_sysfs_tty_parent(root, "ttyACM0", &acm));
	g_assert_cmpstr(acm.physical_id, ==, "usb:1-1.2");
	g_assert_cmphex(acm.vendor_id, ==, 0x2b04);
	g_assert_cmphex(acm.product_id, ==, 0xc006);
	g_assert_true(healer_usb_sysfs_tty_parent(root, "ttyUSB0", &ftdi));
	g_assert_cmpstr(ftdi.physical_id, ==, "usb:1-1.3");
	g_assert_cmphex(ftdi.vendor_id, ==, 0x0403);
	/* Not on USB, not known, not a name. */
	g_assert_false(healer_usb_sysfs_tty_parent(root, "ttyS0", &none));
	g_assert_false(healer_usb_sysfs_tty_parent(root, "ttyACM9", &none));
	g_assert_false(healer_usb_sysfs_tty_parent(root, "../ttyACM0", &none));
	g_assert_false(healer_usb_sysfs_tty_parent(root, "", &none));
	g_assert_null(none.physical_id);
	test_tmpdir_free(g_steal_pointer(&root));
}

static void
test_tty_parent_bad_ids(void)
{
	g_autofree char *root = fake_sysfs_new();
	g_autofree char *vendor = g_build_filename(root, USB_DEVICES, "1-1/1-1.2/idVendor", NULL);
	HealerUsbTtyParent none = {0};

	/* A malformed attribute is no answer rather than a wrong one. */
	write_text(vendor, "not hex\n");
	g_assert_false(healer_usb_sysfs_tty_parent(root, "ttyACM0", &none));
	g_assert_null(none.physical_id);
	test_tmpdir_free(g_steal_pointer(&root));
}

static void
test_device_ttys(void)
{
	g_autofree char *root = fake_sysfs_new();
	g_autoptr(GPtrArray) photon = NULL, ftdi = NULL, hub = NULL, unknown = NULL, bad = NULL;

	add_acm_tty(root, "1-1/1-1.2", "1.3", "ttyACM1"); /* a second CDC function: both listed, sorted */
	photon = healer_usb_sysfs_ttys(root, "usb:1-1.2");
	g_assert_cmpuint(photon->len, ==, 2);
	g_assert_cmpstr(g_ptr_array_index(photon, 0), ==, "ttyACM0");
	g_assert_cmpstr(g_ptr_array_index(photon, 1), ==, "ttyACM1");
	ftdi = healer_usb_sysfs_ttys(root, "usb:1-1.3");
	g_assert_cmpuint(ftdi->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(ftdi, 0), ==, "ttyUSB0");
	/* The hub has no tty of its own: its children's are not its. */
	hub = healer_usb_sysfs_ttys(root, "usb:1-1");
	g_assert_cmpuint(hub->len, ==, 0);
	unknown = healer_usb_sysfs_ttys(root, "usb:2-1");
	g_assert_cmpuint(unknown->len, ==, 0);
	bad = healer_usb_sysfs_ttys(root, "usb:../../1-1.2");
	g_assert_cmpuint(bad->len, ==, 0);
	test_tmpdir_free(g_steal_pointer(&root));
}

/* GetDevices' object lists the USB device's ttys with the device: one physical device, one entry. */
static void
test_device_json_ttys(void)
{
	char *ttys[] = {(char *)"ttyACM0", NULL};
	char *none[] = {NULL};
	char empty[] = "";
	char id[] = "0123456789abcdef01234567";
	char usb_port[] = "usb:1-1.2", tty_port[] = "/dev/ttyUSB0";
#define INFO(port_, ttys_)                                                                                             \
	{.id = id,                                                                                                     \
	 .port = port_,                                                                                                \
	 .transport = empty,                                                                                           \
	 .platform_name = empty,                                                                                       \
	 .mode = empty,                                                                                                \
	 .led = empty,                                                                                                 \
	 .state = empty,                                                                                               \
	 .detail = empty,                                                                                              \
	 .safe_mode_reason = empty,                                                                                    \
	 .modules_json = empty,                                                                                        \
	 .ttys = ttys_,                                                                                                \
	 .current_step = empty,                                                                                        \
	 .last_error = empty}
	HealerDeviceInfo info = INFO(usb_port, ttys);
	HealerDeviceInfo serial = INFO(tty_port, none);
#undef INFO
	g_autoptr(json_object) with = healer_device_info_to_json(&info);
	g_autoptr(json_object) without = healer_device_info_to_json(&serial);
	json_object *list = NULL;

	g_assert_true(json_object_object_get_ex(with, "ttys", &list));
	g_assert_cmpuint(json_object_array_length(list), ==, 1);
	g_assert_cmpstr(json_object_get_string(json_object_array_get_idx(list, 0)), ==, "ttyACM0");
	g_assert_true(json_object_object_get_ex(without, "ttys", &list));
	g_assert_cmpuint(json_object_array_length(list), ==, 0);
	/* No state JSON: modules [], details null (present, so a script can tell "none" from "old healerd"). */
	g_assert_true(json_object_object_get_ex(without, "details", &list));
	g_assert_null(list);
	g_assert_true(json_object_object_get_ex(without, "modules", &list));
	g_assert_cmpuint(json_object_array_length(list), ==, 0);
}

/* The family's "details" beside the describe's "m" reach GetDevices; a details that is no object does not. */
static void
test_device_json_details(void)
{
	char empty[] = "";
	char state[] = "{\"p\":6,\"m\":[{\"f\":\"s\"}],\"details\":{\"install_route\":\"control\"}}";
	char odd[] = "{\"p\":6,\"m\":[],\"details\":\"text\"}";
	HealerDeviceInfo info = {.id = empty,
	                         .port = empty,
	                         .transport = empty,
	                         .platform_name = empty,
	                         .mode = empty,
	                         .led = empty,
	                         .state = empty,
	                         .detail = empty,
	                         .safe_mode_reason = empty,
	                         .modules_json = state,
	                         .current_step = empty,
	                         .last_error = empty};
	g_autoptr(json_object) o = healer_device_info_to_json(&info);
	g_autoptr(json_object) o2 = NULL;
	json_object *value = NULL;

	g_assert_true(json_object_object_get_ex(o, "modules", &value));
	g_assert_cmpuint(json_object_array_length(value), ==, 1);
	g_assert_true(json_object_object_get_ex(o, "details", &value));
	g_assert_cmpstr(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN), ==,
	                "{\"install_route\":\"control\"}");
	info.modules_json = odd;
	o2 = healer_device_info_to_json(&info);
	g_assert_true(json_object_object_get_ex(o2, "details", &value));
	g_assert_null(value);
}

/* ---- the serial backend's rule ------------------------------------------- */

/* A device of another family, as the USB backend's would be. */
#define TEST_TYPE_DEVICE (test_device_get_type())
G_DECLARE_FINAL_TYPE(TestDevice, test_device, TEST, DEVICE, HealerDevice)
struct _TestDevice {
	HealerDevice parent_instance;
};
G_DEFINE_FINAL_TYPE(TestDevice, test_device, HEALER_TYPE_DEVICE)
static void
test_device_class_init(TestDeviceClass *klass)
{
	(void)klass;
}
static void
test_device_init(TestDevice *self)
{
	(void)self;
}

/* A peer backend that holds one physical id once told to. */
#define TEST_TYPE_BACKEND (test_backend_get_type())
G_DECLARE_FINAL_TYPE(TestBackend, test_backend, TEST, BACKEND, HealerBackend)
struct _TestBackend {
	HealerBackend parent_instance;
	char *held; /* the physical id its "particle" device is at, or NULL */
};
G_DEFINE_FINAL_TYPE(TestBackend, test_backend, HEALER_TYPE_BACKEND)
static void
test_backend_start(HealerBackend *backend)
{
	(void)backend;
}
static const char *
test_backend_family_at(HealerBackend *backend, const char *physical_id)
{
	return g_strcmp0(TEST_BACKEND(backend)->held, physical_id) == 0 ? "particle" : NULL;
}
static void
test_backend_finalize(GObject *object)
{
	g_free(TEST_BACKEND(object)->held);
	G_OBJECT_CLASS(test_backend_parent_class)->finalize(object);
}
static void
test_backend_class_init(TestBackendClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = test_backend_finalize;
	HEALER_BACKEND_CLASS(klass)->start = test_backend_start;
	HEALER_BACKEND_CLASS(klass)->stop = test_backend_start;
	HEALER_BACKEND_CLASS(klass)->family_at = test_backend_family_at;
}
static void
test_backend_init(TestBackend *self)
{
	(void)self;
}

/* The peer serves a device at `physical_id` now, and says so. */
static void
test_backend_plug(TestBackend *self, const char *physical_id)
{
	g_autoptr(HealerDevice) device = g_object_new(TEST_TYPE_DEVICE, "port", physical_id, "physical-id", physical_id,
	                                              "family", "particle", "transport-name", "usb", NULL);

	g_free(self->held);
	self->held = g_strdup(physical_id);
	healer_backend_emit_device_added(HEALER_BACKEND(self), device);
}

typedef struct {
	char *sysfs;      /* the fake sysfs */
	char *dir;        /* where the port's link is */
	char *port;       /* DIR/ttyACM0 -> the pty's slave */
	int master;       /* the pty's master: what a device would read */
	int slave;        /* held open, so the master reads EAGAIN, not EIO, while the backend has none */
	guint added;      /* the serial backend's device-added */
	guint removed;    /* ... and device-removed */
	GPtrArray *notes; /* the records about the port */
	guint subscription;
	HealerConfig *config;
	HealerSerialBackend *serial;
	TestBackend *peer;
} Fixture;

static void
on_event(const HealerEvent *event, gpointer user_data)
{
	Fixture *f = user_data;

	if (event->kind == HEALER_EVENT_NOTE && g_strcmp0(event->port, f->port) == 0)
		g_ptr_array_add(f->notes, g_strdup(event->text));
}

static void
on_added(HealerBackend *backend, HealerDevice *device, gpointer user_data)
{
	(void)backend;
	(void)device;
	((Fixture *)user_data)->added++;
}

static void
on_removed(HealerBackend *backend, HealerDevice *device, const char *why, gpointer user_data)
{
	(void)backend;
	(void)device;
	(void)why;
	((Fixture *)user_data)->removed++;
}

/*
 * A pty placed in the fake sysfs as the CDC-ACM tty of a USB device with vendor `vendor`;
 * [serial] ports is DIR/tty* (`exact`: DIR/ttyACM0 itself).
 */
static void
fixture_set_up(Fixture *f, const char *vendor, gboolean exact)
{
	const char *name;
	g_autofree char *pts = NULL;
	g_autofree char *glob = NULL;

	memset(f, 0, sizeof *f);
	f->sysfs = test_tmpdir_new();
	f->dir = test_tmpdir_new();
	f->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	g_assert_cmpint(f->master, >=, 0);
	g_assert_cmpint(grantpt(f->master), ==, 0);
	g_assert_cmpint(unlockpt(f->master), ==, 0);
	name = ptsname(f->master);
	f->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	g_assert_cmpint(f->slave, >=, 0);
	f->port = g_build_filename(f->dir, "ttyACM0", NULL);
	g_assert_cmpint(symlink(name, f->port), ==, 0);
	/* The sysfs knows the tty by the name its path resolves to: "/dev/pts/5" -> "5". */
	pts = healer_usb_sysfs_tty_name_for_port(f->port);
	add_usb_device(f->sysfs, "1-1.2", vendor, "c006\n");
	add_acm_tty(f->sysfs, "1-1.2", "1.0", pts);
	f->notes = g_ptr_array_new_with_free_func(g_free);
	f->subscription = healer_event_stream_subscribe(healer_events(), on_event, f);
	f->config = healer_config_new_defaults();
	glob = exact ? g_strdup(f->port) : g_build_filename(f->dir, "tty*", NULL);
	g_strfreev(f->config->serial_ports);
	f->config->serial_ports = g_new0(char *, 2);
	f->config->serial_ports[0] = g_steal_pointer(&glob);
	f->config->serial_watch = FALSE;
	f->serial = healer_serial_backend_new(f->config);
	healer_serial_backend_set_sysfs_root(f->serial, f->sysfs);
	f->peer = g_object_new(TEST_TYPE_BACKEND, "name", "usb", NULL);
	healer_backend_add_peer(HEALER_BACKEND(f->serial), HEALER_BACKEND(f->peer));
	g_signal_connect(f->serial, "device-added", G_CALLBACK(on_added), f);
	g_signal_connect(f->serial, "device-removed", G_CALLBACK(on_removed), f);
}

static void
fixture_tear_down(Fixture *f)
{
	healer_backend_stop(HEALER_BACKEND(f->serial));
	g_clear_object(&f->serial);
	g_clear_object(&f->peer);
	/* Transports are freed from idle callbacks. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	healer_event_stream_unsubscribe(healer_events(), f->subscription);
	healer_config_free(f->config);
	g_ptr_array_unref(f->notes);
	close(f->slave);
	close(f->master);
	test_tmpdir_free(f->sysfs);
	test_tmpdir_free(f->dir);
	g_free(f->port);
}

/* Whether anything was written into the port (a link frame would be). */
static gboolean
port_was_written(Fixture *f)
{
	char byte;
	ssize_t n = read(f->master, &byte, 1);

	return n > 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static gboolean
on_timeout(gpointer user_data)
{
	(void)user_data;
	g_error("timed out");
	return G_SOURCE_REMOVE;
}

/* Until the backend wrote into the port (its link device says hello). */
static void
wait_written(Fixture *f)
{
	guint guard = g_timeout_add_seconds(WAIT_S, on_timeout, NULL);
	GPollFD pfd = {.fd = f->master, .events = G_IO_IN};

	while (g_poll(&pfd, 1, 0) == 0)
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(guard);
}

static void
test_held_port_left_alone(void)
{
	Fixture f;

	fixture_set_up(&f, "1234\n", FALSE);
	f.peer->held = g_strdup("usb:1-1.2");
	healer_backend_start(HEALER_BACKEND(f.serial));
	g_assert_cmpuint(f.added, ==, 0);
	g_assert_cmpuint(f.notes->len, ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f.notes, 0), "usb:1-1.2"));
	g_assert_nonnull(strstr(g_ptr_array_index(f.notes, 0), "particle family holds"));
	/* Scanned again: still alone, and not said again. */
	healer_backend_stop(HEALER_BACKEND(f.serial));
	healer_backend_start(HEALER_BACKEND(f.serial));
	g_assert_cmpuint(f.added, ==, 0);
	g_assert_cmpuint(f.notes->len, ==, 1);
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_false(port_was_written(&f));
	fixture_tear_down(&f);
}

static void
test_port_first_then_device(void)
{
	Fixture f;

	fixture_set_up(&f, "1234\n", FALSE);
	healer_backend_start(HEALER_BACKEND(f.serial));
	/* Nobody holds its USB device: served as a link device (it says hello into the port). */
	g_assert_cmpuint(f.added, ==, 1);
	g_assert_cmpuint(f.notes->len, ==, 0);
	wait_written(&f);
	/* The USB backend's family takes the device: the port is let go, and said why. */
	test_backend_plug(f.peer, "usb:1-1.2");
	g_assert_cmpuint(f.removed, ==, 1);
	g_assert_cmpuint(f.notes->len, ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f.notes, 0), "particle family holds"));
	/* Drained what was written before; nothing after. */
	while (port_was_written(&f))
		;
	healer_backend_stop(HEALER_BACKEND(f.serial));
	healer_backend_start(HEALER_BACKEND(f.serial));
	g_assert_cmpuint(f.added, ==, 1);
	fixture_tear_down(&f);
}

static void
test_another_device_keeps_port(void)
{
	Fixture f;

	fixture_set_up(&f, "1234\n", FALSE);
	healer_backend_start(HEALER_BACKEND(f.serial));
	g_assert_cmpuint(f.added, ==, 1);
	/* A device elsewhere is none of this port's business. */
	test_backend_plug(f.peer, "usb:1-1.7");
	g_assert_cmpuint(f.removed, ==, 0);
	g_assert_cmpuint(f.notes->len, ==, 0);
	fixture_tear_down(&f);
}

static void
test_particle_port_left_alone(void)
{
	Fixture f;

	/* Before the USB backend has seen the device: its vendor says whose it is. */
	fixture_set_up(&f, "2b04\n", FALSE);
	healer_backend_start(HEALER_BACKEND(f.serial));
	g_assert_cmpuint(f.added, ==, 0);
	g_assert_cmpuint(f.notes->len, ==, 1);
	g_assert_nonnull(strstr(g_ptr_array_index(f.notes, 0), "Particle device usb:1-1.2"));
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_false(port_was_written(&f));
	fixture_tear_down(&f);
}

static void
test_particle_port_named_exactly(void)
{
	Fixture f;

	/* [serial] ports names it by its path: the operator means it (a link-protocol Particle app). */
	fixture_set_up(&f, "2b04\n", TRUE);
	healer_backend_start(HEALER_BACKEND(f.serial));
	g_assert_cmpuint(f.added, ==, 1);
	g_assert_cmpuint(f.notes->len, ==, 0);
	/* ... unless a family holds its USB device: then no configuration sends frames into it. */
	test_backend_plug(f.peer, "usb:1-1.2");
	g_assert_cmpuint(f.removed, ==, 1);
	fixture_tear_down(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/usb-sysfs/tty-parent", test_tty_parent);
	g_test_add_func("/usb-sysfs/tty-parent-bad-ids", test_tty_parent_bad_ids);
	g_test_add_func("/usb-sysfs/device-ttys", test_device_ttys);
	g_test_add_func("/usb-sysfs/device-json-ttys", test_device_json_ttys);
	g_test_add_func("/usb-sysfs/device-json-details", test_device_json_details);
	g_test_add_func("/usb-sysfs/serial/held-port-left-alone", test_held_port_left_alone);
	g_test_add_func("/usb-sysfs/serial/port-first-then-device", test_port_first_then_device);
	g_test_add_func("/usb-sysfs/serial/another-device-keeps-port", test_another_device_keeps_port);
	g_test_add_func("/usb-sysfs/serial/particle-port-left-alone", test_particle_port_left_alone);
	g_test_add_func("/usb-sysfs/serial/particle-port-named-exactly", test_particle_port_named_exactly);
	return g_test_run();
}
