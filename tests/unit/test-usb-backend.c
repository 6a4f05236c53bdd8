/*
 * The USB backend (usb-backend.c, usb-context.c, usb-match.c, usb-claim.c)
 * against unmodified libusb on a umockdev testbed: USB devices described by
 * their sysfs attributes and descriptors, a /dev/bus/usb node each, and an
 * ioctl handler for the nodes a family opens (it answers USBDEVFS_GETDRIVER:
 * which kernel driver holds an interface, and records every request).
 *
 *   - the devices there at start are enumerated before start() returns; a
 *     device no row matches is ignored with one debug record;
 *   - hot plug: a device plugged in, pulled and plugged in again under
 *     another device address keeps its physical id usb:1-1.4;
 *   - matching by vendor id, product id under a mask and interface class;
 *   - an interface a kernel driver (cdc_acm) holds is never claimed nor
 *     detached: the family's refusal is one warning naming interface and driver;
 *   - [usb] ignore leaves a device alone; a family's "detached" lets it go;
 *   - the engine shows a USB device with its physical id as its port;
 *   - family_at: which family holds a physical id, while it does (a peer backend asks);
 *   - the fallback without libusb's hotplug lists devices again on a rescan.
 *
 * Runs under umockdev's preload library: main() re-executes the test through
 * umockdev-wrapper when it is not loaded.  No pty here (umockdev 0.17.16 breaks
 * ioctl() on real device nodes while a testbed exists).
 */
#include <errno.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <string.h>
#include <umockdev.h>
#include <unistd.h>

#include "engine.h"
#include "events.h"
#include "healer-error.h"
#include "store.h"
#include "supply.h"
#include "test-util.h"
#include "usb-backend.h"
#include "usb-claim.h"

#define ROOT_PATH "/devices/pci0000:00/0000:00:14.0/usb1"
#define HUB_PATH  ROOT_PATH "/1-1"
#define DFU_PATH  HUB_PATH "/1-1.4"
#define CDC_PATH  HUB_PATH "/1-1.2"
#define FTDI_PATH HUB_PATH "/1-1.3"

#define WAIT_S 20 /* a guard against a test that would hang, not a timing assertion */

/* ---- the emulated devices ------------------------------------------------ */

typedef struct {
	guint8 class_, subclass, protocol;
	const char *driver; /* the kernel driver bound to it, or NULL */
} TestInterface;

typedef struct {
	const char *path; /* under /sys */
	guint devnum;
	guint16 vendor, product;
	guint8 device_class;
	guint n_interfaces;
	TestInterface interfaces[4];
} TestDevice;

static const TestDevice root_hub = {ROOT_PATH, 1, 0x1d6b, 0x0002, 0x09, 1, {{0x09, 0x00, 0x00, "hub"}}};
static const TestDevice hub = {HUB_PATH, 2, 0x05e3, 0x0608, 0x09, 1, {{0x09, 0x00, 0x00, "hub"}}};
/* A Particle Photon in DFU mode: one DFU interface (class fe, subclass 01, protocol 02). */
static const TestDevice dfu = {DFU_PATH, 5, 0x2b04, 0xd006, 0x00, 1, {{0xfe, 0x01, 0x02, NULL}}};
/* A Photon in normal mode: CDC ACM (held by cdc_acm) on 0 and 1, the vendor control interface on 2. */
static const TestDevice cdc = {
        CDC_PATH,
        3,
        0x2b04,
        0xc006,
        0xef,
        3,
        {{0x02, 0x02, 0x01, "cdc_acm"}, {0x0a, 0x00, 0x00, "cdc_acm"}, {0xff, 0xff, 0xff, NULL}}};
/* A serial adapter no family serves. */
static const TestDevice ftdi = {FTDI_PATH, 4, 0x0403, 0x6001, 0x00, 1, {{0xff, 0xff, 0xff, "ftdi_sio"}}};

/* The descriptors sysfs gives (the device's, then its one configuration), in hex. */
static char *
descriptors_hex(const TestDevice *d)
{
	guint8 bytes[18 + 9 + 4 * 9];
	gsize n = 0;
	guint16 total = 9 + 9 * d->n_interfaces;
	GString *hex = g_string_new(NULL);

	bytes[n++] = 18, bytes[n++] = 1, bytes[n++] = 0x00, bytes[n++] = 0x02;
	bytes[n++] = d->device_class, bytes[n++] = 0, bytes[n++] = 0, bytes[n++] = 64;
	bytes[n++] = d->vendor & 0xff, bytes[n++] = d->vendor >> 8;
	bytes[n++] = d->product & 0xff, bytes[n++] = d->product >> 8;
	bytes[n++] = 0x51, bytes[n++] = 0x02, bytes[n++] = 0, bytes[n++] = 0, bytes[n++] = 0, bytes[n++] = 1;
	bytes[n++] = 9, bytes[n++] = 2, bytes[n++] = total & 0xff, bytes[n++] = total >> 8;
	bytes[n++] = (guint8)d->n_interfaces, bytes[n++] = 1, bytes[n++] = 0, bytes[n++] = 0x80, bytes[n++] = 50;
	for (guint i = 0; i < d->n_interfaces; i++) {
		const TestInterface *in = &d->interfaces[i];
		bytes[n++] = 9, bytes[n++] = 4, bytes[n++] = (guint8)i, bytes[n++] = 0, bytes[n++] = 0;
		bytes[n++] = in->class_, bytes[n++] = in->subclass, bytes[n++] = in->protocol, bytes[n++] = 0;
	}
	for (gsize i = 0; i < n; i++)
		g_string_append_printf(hex, "%02X", bytes[i]);
	return g_string_free(hex, FALSE);
}

/* Adds the device (an "add" uevent libusb's hotplug sees) and its interfaces, with `devnum` as its address. */
static void
plug(UMockdevTestbed *tb, const TestDevice *d, guint devnum)
{
	g_autofree char *hex = descriptors_hex(d);
	g_autofree char *name = g_path_get_basename(d->path);
	g_autofree char *device = NULL;
	g_autoptr(GError) error = NULL;

	/* Interfaces first: everything libusb or a family reads is there once the device arrives. */
	for (guint i = 0; i < d->n_interfaces; i++) {
		const TestInterface *in = &d->interfaces[i];
		g_autofree char *driver = in->driver != NULL ? g_strdup_printf("L: driver=../../../../../../../bus/usb/"
		                                                               "drivers/%s\n",
		                                                               in->driver)
		                                             : g_strdup("");
		g_autofree char *text = g_strdup_printf("P: %s/%s:1.%u\n"
		                                        "E: SUBSYSTEM=usb\n"
		                                        "E: DEVTYPE=usb_interface\n"
		                                        "E: INTERFACE=%u/%u/%u\n"
		                                        "A: bInterfaceNumber=%02x\\n\n"
		                                        "A: bInterfaceClass=%02x\\n\n"
		                                        "%s",
		                                        d->path, name, i, in->class_, in->subclass, in->protocol, i,
		                                        in->class_, driver);
		g_assert_true(umockdev_testbed_add_from_string(tb, text, &error));
		g_assert_no_error(error);
	}
	device = g_strdup_printf("P: %s\n"
	                         "N: bus/usb/001/%03u\n"
	                         "E: SUBSYSTEM=usb\n"
	                         "E: DEVTYPE=usb_device\n"
	                         "E: DEVNAME=/dev/bus/usb/001/%03u\n"
	                         "E: BUSNUM=001\n"
	                         "E: DEVNUM=%03u\n"
	                         "E: PRODUCT=%x/%x/251\n"
	                         "A: busnum=1\\n\n"
	                         "A: devnum=%u\\n\n"
	                         "A: idVendor=%04x\\n\n"
	                         "A: idProduct=%04x\\n\n"
	                         "A: speed=12\\n\n"
	                         "A: bConfigurationValue=1\\n\n"
	                         "A: bNumConfigurations=1\\n\n"
	                         "A: dev=189:%u\\n\n"
	                         "H: descriptors=%s\n",
	                         d->path, devnum, devnum, devnum, d->vendor, d->product, devnum, d->vendor, d->product,
	                         devnum - 1, hex);
	g_assert_true(umockdev_testbed_add_from_string(tb, device, &error));
	g_assert_no_error(error);
}

static void
unplug(UMockdevTestbed *tb, const TestDevice *d)
{
	g_autofree char *syspath = g_strconcat("/sys", d->path, NULL);
	g_autofree char *name = g_path_get_basename(d->path);

	umockdev_testbed_uevent(tb, syspath, "remove");
	/* Its interfaces too: umockdev removes a device's own directory and bus link only. */
	for (guint i = 0; i < d->n_interfaces; i++) {
		g_autofree char *interface = g_strdup_printf("%s/%s:1.%u", syspath, name, i);
		umockdev_testbed_remove_device(tb, interface);
	}
	umockdev_testbed_remove_device(tb, syspath);
}

/* ---- usbfs: the ioctls libusb makes on an opened node --------------------- */

typedef struct {
	const TestDevice *device;
	UMockdevIoctlBase *handler;
	GMutex lock;      /* the handler runs on umockdev's thread */
	GArray *requests; /* gulong: every ioctl request, in order */
	guint claimed;    /* a bit per interface claimed */
} TestNode;

static gboolean
on_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user_data)
{
	TestNode *node = user_data;
	gulong request = umockdev_ioctl_client_get_request(client);
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
	g_autoptr(GError) error = NULL;

	(void)base;
	g_mutex_lock(&node->lock);
	g_array_append_val(node->requests, request);
	if (request == USBDEVFS_GETDRIVER) {
		g_autoptr(UMockdevIoctlData) data =
		        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_getdriver), &error);
		struct usbdevfs_getdriver *getdriver = (struct usbdevfs_getdriver *)data->data;
		const char *driver = getdriver->interface < node->device->n_interfaces
		                             ? node->device->interfaces[getdriver->interface].driver
		                             : NULL;
		g_assert_no_error(error);
		if (driver == NULL) {
			umockdev_ioctl_client_complete(client, -1, ENODATA);
		} else {
			g_strlcpy(getdriver->driver, driver, sizeof getdriver->driver);
			umockdev_ioctl_client_complete(client, 0, 0);
		}
	} else if (request == USBDEVFS_CLAIMINTERFACE || request == USBDEVFS_RELEASEINTERFACE) {
		g_autoptr(UMockdevIoctlData) data = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), &error);
		guint32 number = *(guint32 *)data->data;
		g_assert_no_error(error);
		/* As the kernel: a bound interface is not claimed. */
		if (number < node->device->n_interfaces && node->device->interfaces[number].driver != NULL) {
			umockdev_ioctl_client_complete(client, -1, EBUSY);
		} else {
			if (request == USBDEVFS_CLAIMINTERFACE)
				node->claimed |= 1u << number;
			umockdev_ioctl_client_complete(client, 0, 0);
		}
	} else {
		/* GET_CAPABILITIES and the rest: not a usbfs libusb needs here. */
		umockdev_ioctl_client_complete(client, -1, ENOTTY);
	}
	g_mutex_unlock(&node->lock);
	return TRUE;
}

static TestNode *
test_node_attach(UMockdevTestbed *tb, const TestDevice *d, guint devnum)
{
	TestNode *node = g_new0(TestNode, 1);
	g_autofree char *dev = g_strdup_printf("/dev/bus/usb/001/%03u", devnum);
	g_autoptr(GError) error = NULL;

	node->device = d;
	g_mutex_init(&node->lock);
	node->requests = g_array_new(FALSE, FALSE, sizeof(gulong));
	node->handler = umockdev_ioctl_base_new();
	g_signal_connect(node->handler, "handle-ioctl", G_CALLBACK(on_ioctl), node);
	g_assert_true(umockdev_testbed_attach_ioctl(tb, dev, node->handler, &error));
	g_assert_no_error(error);
	return node;
}

static gboolean
test_node_saw(TestNode *node, gulong request)
{
	gboolean saw = FALSE;

	g_mutex_lock(&node->lock);
	for (guint i = 0; i < node->requests->len; i++)
		saw = saw || g_array_index(node->requests, gulong, i) == request;
	g_mutex_unlock(&node->lock);
	return saw;
}

static void
test_node_free(TestNode *node)
{
	g_object_unref(node->handler);
	g_array_unref(node->requests);
	g_mutex_clear(&node->lock);
	g_free(node);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestNode, test_node_free)

/* ---- a family for the tests ----------------------------------------------- */

#define TEST_TYPE_USB_DEVICE (test_usb_device_get_type())
G_DECLARE_FINAL_TYPE(TestUsbDevice, test_usb_device, TEST, USB_DEVICE, HealerDevice)

struct _TestUsbDevice {
	HealerDevice parent_instance;
	char *id;
	HealerDeviceState *state;
	guint8 address; /* the libusb device address it was made for */
	guint8 interface_number, interface_class;
	gboolean closed;
};

G_DEFINE_FINAL_TYPE(TestUsbDevice, test_usb_device, HEALER_TYPE_DEVICE)

static const char *
t_get_id(HealerDevice *device)
{
	return TEST_USB_DEVICE(device)->id;
}

static guint16
t_get_platform_id(HealerDevice *device)
{
	(void)device;
	return 6;
}

static const HealerDeviceState *
t_get_state(HealerDevice *device)
{
	return TEST_USB_DEVICE(device)->state;
}

static const char *
t_get_state_json(HealerDevice *device)
{
	(void)device;
	return "[]";
}

static gboolean
t_lookup_module(HealerDevice *device, guint function, guint index, guint16 *version)
{
	(void)device, (void)function, (void)index, (void)version;
	return FALSE;
}

static void
t_get_health(HealerDevice *device, HealerDeviceHealth *health)
{
	(void)device;
	health->running = TRUE;
	health->mode = "dfu";
	health->safe_mode_reason = "none";
	health->boot_mode = "dfu";
	health->boot_reason = "none";
	health->reset_reason = "unknown";
	health->led = "";
	health->has_app = TRUE;
	health->app_valid = TRUE;
}

static void
t_install_async(HealerDevice *device, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                gpointer user_data)
{
	(void)device, (void)module, (void)func, (void)user_data;
	g_assert_not_reached();
}

static gboolean
t_is_busy(HealerDevice *device)
{
	(void)device;
	return FALSE;
}

static void
t_get_progress(HealerDevice *device, guint64 *done, guint64 *total)
{
	(void)device;
	*done = *total = 0;
}

static void
t_nothing(HealerDevice *device)
{
	(void)device;
}

static void
t_close(HealerDevice *device)
{
	TEST_USB_DEVICE(device)->closed = TRUE;
}

static void
test_usb_device_finalize(GObject *object)
{
	TestUsbDevice *self = TEST_USB_DEVICE(object);

	g_free(self->id);
	healer_device_state_free(self->state);
	G_OBJECT_CLASS(test_usb_device_parent_class)->finalize(object);
}

static void
test_usb_device_class_init(TestUsbDeviceClass *klass)
{
	HealerDeviceClass *device_class = HEALER_DEVICE_CLASS(klass);

	G_OBJECT_CLASS(klass)->finalize = test_usb_device_finalize;
	device_class->get_id = t_get_id;
	device_class->get_platform_id = t_get_platform_id;
	device_class->get_state = t_get_state;
	device_class->get_state_json = t_get_state_json;
	device_class->lookup_module = t_lookup_module;
	device_class->get_health = t_get_health;
	device_class->install_async = t_install_async;
	device_class->is_busy = t_is_busy;
	device_class->get_progress = t_get_progress;
	device_class->reset = t_nothing;
	device_class->refresh = t_nothing;
	device_class->close = t_close;
}

static void
test_usb_device_init(TestUsbDevice *self)
{
	(void)self;
}

static gboolean
emit_identified(gpointer user_data)
{
	healer_device_emit_identified(user_data);
	return G_SOURCE_REMOVE;
}

/*
 * The family: takes the interface that matched (opened and claimed as a family does it, then let go
 * at once: a node umockdev emulates always polls writable, so an open handle would keep the main
 * loop busy) and reports an id at once.
 */
static HealerDevice *
test_family_new(const HealerUsbCandidate *candidate, GError **error)
{
	libusb_device_handle *handle = healer_usb_open_claimed(candidate->device, candidate->physical_id,
	                                                       candidate->interface->bInterfaceNumber, error);
	TestUsbDevice *self;

	if (handle == NULL)
		return NULL;
	libusb_release_interface(handle, candidate->interface->bInterfaceNumber);
	libusb_close(handle);
	self = g_object_new(TEST_TYPE_USB_DEVICE, "port", candidate->physical_id, "physical-id", candidate->physical_id,
	                    "family", candidate->match->family, "transport-name", "usb", "flags",
	                    (guint)HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET, NULL);
	self->id = g_strdup_printf("test-%04x", candidate->descriptor->idProduct);
	self->state = healer_device_state_new(6);
	self->address = libusb_get_device_address(candidate->device);
	self->interface_number = candidate->interface->bInterfaceNumber;
	self->interface_class = candidate->interface->bInterfaceClass;
	g_idle_add_full(G_PRIORITY_DEFAULT, emit_identified, g_object_ref(self), g_object_unref);
	return HEALER_DEVICE(self);
}

/* Particle devices in DFU mode (any product 0xd0xx), by their DFU interface. */
static const HealerUsbMatch dfu_row = {"test-dfu", 0x2b04, 0xd000, 0xf000, 0xfe, 0x01, 0x02, test_family_new};
/* Particle devices in normal mode, by their CDC communications interface (which cdc_acm holds). */
static const HealerUsbMatch cdc_row = {"test-cdc", 0x2b04, 0xc000, 0xf000, 0x02, 0x02, 0x01, test_family_new};

/* ---- the fixture ------------------------------------------------------------ */

typedef struct {
	UMockdevTestbed *tb;
	HealerConfig *config;
	HealerUsbBackend *backend;
	GMainLoop *loop;
	GPtrArray *added;   /* HealerDevice* (references), in order */
	GPtrArray *removed; /* HealerDevice* (references), in order */
	GPtrArray *why;     /* char*: device-removed's why ("" for NULL) */
	GPtrArray *notes;   /* char*: records of NOTE and PORT_REFUSED events, "LEVEL text" */
	guint subscription;
} Fixture;

static void
on_added(HealerBackend *backend, HealerDevice *device, gpointer user_data)
{
	Fixture *f = user_data;

	(void)backend;
	g_ptr_array_add(f->added, g_object_ref(device));
	g_main_loop_quit(f->loop);
}

static void
on_removed(HealerBackend *backend, HealerDevice *device, const char *why, gpointer user_data)
{
	Fixture *f = user_data;

	(void)backend;
	g_ptr_array_add(f->removed, g_object_ref(device));
	g_ptr_array_add(f->why, g_strdup(why != NULL ? why : ""));
	g_main_loop_quit(f->loop);
}

static void
on_event(const HealerEvent *event, gpointer user_data)
{
	Fixture *f = user_data;

	if ((event->kind == HEALER_EVENT_NOTE || event->kind == HEALER_EVENT_PORT_REFUSED) && event->text != NULL)
		g_ptr_array_add(f->notes, g_strdup_printf("%s %s",
		                                          event->priority == G_LOG_LEVEL_DEBUG     ? "debug"
		                                          : event->priority == G_LOG_LEVEL_INFO    ? "info"
		                                          : event->priority == G_LOG_LEVEL_WARNING ? "warning"
		                                                                                   : "other",
		                                          event->text));
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	(void)data;
	f->tb = umockdev_testbed_new();
	f->config = healer_config_new_defaults();
	f->loop = g_main_loop_new(NULL, FALSE);
	f->added = g_ptr_array_new_with_free_func(g_object_unref);
	f->removed = g_ptr_array_new_with_free_func(g_object_unref);
	f->why = g_ptr_array_new_with_free_func(g_free);
	f->notes = g_ptr_array_new_with_free_func(g_free);
	f->subscription = healer_event_stream_subscribe(healer_events(), on_event, f);
	plug(f->tb, &root_hub, root_hub.devnum);
	plug(f->tb, &hub, hub.devnum);
}

/* The backend on the testbed as it is now, not started; `flags`: usb-context.h's. */
static void
make_backend(Fixture *f, HealerUsbContextFlags flags)
{
	g_autoptr(GError) error = NULL;

	f->backend = healer_usb_backend_new(f->config, flags, &error);
	g_assert_no_error(error);
	healer_usb_backend_add_match(f->backend, &dfu_row);
	healer_usb_backend_add_match(f->backend, &cdc_row);
	g_signal_connect(f->backend, "device-added", G_CALLBACK(on_added), f);
	g_signal_connect(f->backend, "device-removed", G_CALLBACK(on_removed), f);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	(void)data;
	if (f->backend != NULL) {
		healer_backend_stop(HEALER_BACKEND(f->backend));
		g_object_unref(f->backend);
	}
	healer_event_stream_unsubscribe(healer_events(), f->subscription);
	g_ptr_array_unref(f->added);
	g_ptr_array_unref(f->removed);
	g_ptr_array_unref(f->why);
	g_ptr_array_unref(f->notes);
	g_main_loop_unref(f->loop);
	healer_config_free(f->config);
	g_object_unref(f->tb);
}

static gboolean
on_wait_too_long(gpointer user_data)
{
	(void)user_data;
	g_error("no device came or went within %u s", WAIT_S);
	return G_SOURCE_REMOVE;
}

/* Runs the main loop until `array` holds `n` entries (libusb's hotplug thread delivers through the source). */
static void
wait_for(Fixture *f, GPtrArray *array, guint n)
{
	guint guard = g_timeout_add_seconds(WAIT_S, on_wait_too_long, NULL);

	while (array->len < n)
		g_main_loop_run(f->loop);
	g_source_remove(guard);
}

/* How many records contain `text`. */
static guint
count_notes(Fixture *f, const char *text)
{
	guint n = 0;

	for (guint i = 0; i < f->notes->len; i++)
		n += strstr(g_ptr_array_index(f->notes, i), text) != NULL;
	return n;
}

static void
dump_notes(Fixture *f)
{
	for (guint i = 0; i < f->notes->len; i++)
		g_test_message("record: %s", (const char *)g_ptr_array_index(f->notes, i));
}

/* ---- the tests -------------------------------------------------------------- */

/* The devices there at start are served before start() returns; the others are named once, at debug level. */
static void
test_enumerate_at_start(Fixture *f, gconstpointer data)
{
	g_autoptr(TestNode) node = NULL;
	TestUsbDevice *device;

	(void)data;
	plug(f->tb, &ftdi, ftdi.devnum);
	plug(f->tb, &dfu, dfu.devnum);
	node = test_node_attach(f->tb, &dfu, dfu.devnum);
	make_backend(f, HEALER_USB_CONTEXT_FLAG_NONE);
	g_assert_true(healer_usb_context_has_hotplug(healer_usb_backend_get_context(f->backend)));
	/* Linux libusb keeps its timeouts in a timerfd: the source needs no timer. */
	g_assert_true(healer_usb_context_timeouts_on_fds(healer_usb_backend_get_context(f->backend)));
	healer_backend_start(HEALER_BACKEND(f->backend));
	dump_notes(f);
	g_assert_cmpuint(f->added->len, ==, 1);
	device = TEST_USB_DEVICE(g_ptr_array_index(f->added, 0));
	g_assert_cmpstr(healer_device_get_physical_id(HEALER_DEVICE(device)), ==, "usb:1-1.4");
	g_assert_cmpstr(healer_device_get_port(HEALER_DEVICE(device)), ==, "usb:1-1.4");
	g_assert_cmpstr(healer_device_get_family(HEALER_DEVICE(device)), ==, "test-dfu");
	g_assert_cmpuint(device->address, ==, 5);
	g_assert_cmpuint(device->interface_number, ==, 0);
	g_assert_cmpuint(device->interface_class, ==, 0xfe);
	/* It asked whether a driver holds interface 0 (none), then claimed it. */
	g_assert_true(test_node_saw(node, USBDEVFS_GETDRIVER));
	g_assert_cmpuint(node->claimed, ==, 1);
	g_assert_cmpuint(count_notes(f, "info usb:1-1.4: USB device 2b04:d006 served by the test-dfu family "
	                                "(interface 0, class fe/01/02)"),
	                 ==, 1);
	/* Not in the table: one debug record each (the hubs too), nothing served. */
	g_assert_cmpuint(
	        count_notes(f, "debug usb:1-1.3: USB device 0403:6001 (class 00) ignored: no family serves it"), ==, 1);
	g_assert_cmpuint(count_notes(f, "debug usb:1-1: USB device 05e3:0608 (class 09) ignored"), ==, 1);
	g_assert_cmpuint(count_notes(f, "debug usb:1: USB device 1d6b:0002 (class 09) ignored"), ==, 1);
	g_assert_cmpuint(count_notes(f, "usb:1-1.3"), ==, 1);
}

/* Plugged in, pulled, plugged in again at another address: the same physical id each time. */
static void
test_hotplug(Fixture *f, gconstpointer data)
{
	g_autoptr(TestNode) first = NULL;
	g_autoptr(TestNode) second = NULL;
	HealerDevice *device;

	(void)data;
	make_backend(f, HEALER_USB_CONTEXT_FLAG_NONE);
	healer_backend_start(HEALER_BACKEND(f->backend));
	g_assert_cmpuint(f->added->len, ==, 0);

	plug(f->tb, &dfu, 5);
	first = test_node_attach(f->tb, &dfu, 5);
	wait_for(f, f->added, 1);
	device = g_ptr_array_index(f->added, 0);
	g_assert_cmpstr(healer_device_get_physical_id(device), ==, "usb:1-1.4");
	g_assert_cmpuint(TEST_USB_DEVICE(device)->address, ==, 5);
	/* What a peer backend asks before it opens a port of that device (its CDC tty): who holds it. */
	g_assert_cmpstr(healer_backend_family_at(HEALER_BACKEND(f->backend), "usb:1-1.4"), ==, "test-dfu");
	g_assert_null(healer_backend_family_at(HEALER_BACKEND(f->backend), "usb:1-1.3"));

	unplug(f->tb, &dfu);
	wait_for(f, f->removed, 1);
	g_assert_null(healer_backend_family_at(HEALER_BACKEND(f->backend), "usb:1-1.4"));
	g_assert_true(g_ptr_array_index(f->removed, 0) == device);
	g_assert_cmpstr(g_ptr_array_index(f->why, 0), ==, "detached");
	g_assert_true(TEST_USB_DEVICE(device)->closed);

	/* Back in the same socket: another device address, the same physical id. */
	plug(f->tb, &dfu, 6);
	second = test_node_attach(f->tb, &dfu, 6);
	wait_for(f, f->added, 2);
	device = g_ptr_array_index(f->added, 1);
	g_assert_cmpstr(healer_device_get_physical_id(device), ==, "usb:1-1.4");
	g_assert_cmpstr(healer_device_get_port(device), ==, "usb:1-1.4");
	g_assert_cmpuint(TEST_USB_DEVICE(device)->address, ==, 6);
	g_assert_cmpuint(second->claimed, ==, 1);

	/* A device no family serves, plugged in: one debug record, nothing added. */
	plug(f->tb, &ftdi, ftdi.devnum);
	unplug(f->tb, &dfu);
	wait_for(f, f->removed, 2);
	dump_notes(f);
	g_assert_cmpuint(f->added->len, ==, 2);
	g_assert_cmpuint(
	        count_notes(f, "debug usb:1-1.3: USB device 0403:6001 (class 00) ignored: no family serves it"), ==, 1);
}

/*
 * A family that needs an interface cdc_acm holds is refused, with one warning naming the interface and
 * the driver; nothing claims or detaches it (no CLAIMINTERFACE, DISCONNECT_CLAIM or USBDEVFS_IOCTL).
 */
static void
test_kernel_driver_not_claimed(Fixture *f, gconstpointer data)
{
	g_autoptr(TestNode) node = NULL;

	(void)data;
	plug(f->tb, &cdc, cdc.devnum);
	node = test_node_attach(f->tb, &cdc, cdc.devnum);
	make_backend(f, HEALER_USB_CONTEXT_FLAG_NONE);
	healer_backend_start(HEALER_BACKEND(f->backend));
	dump_notes(f);
	g_assert_cmpuint(f->added->len, ==, 0);
	g_assert_cmpuint(count_notes(f, "warning usb:1-1.2: USB device 2b04:c006 not served by the test-cdc family: "
	                                "usb:1-1.2: interface 0 is held by the kernel driver cdc_acm: healerd does "
	                                "not take interfaces from kernel drivers"),
	                 ==, 1);
	g_assert_true(test_node_saw(node, USBDEVFS_GETDRIVER));
	g_assert_false(test_node_saw(node, USBDEVFS_CLAIMINTERFACE));
	g_assert_false(test_node_saw(node, USBDEVFS_DISCONNECT_CLAIM));
	g_assert_false(test_node_saw(node, USBDEVFS_IOCTL));
	g_assert_cmpuint(node->claimed, ==, 0);
}

/* [usb] ignore, by physical id or by vendor and product id: left alone, one info record. */
static void
test_ignore(Fixture *f, gconstpointer data)
{
	const char *by_port[] = {"usb:1-1.4", NULL};
	const char *by_ids[] = {"usb:2B04:D006", NULL};
	const char *const *lists[] = {by_port, by_ids};

	(void)data;
	plug(f->tb, &dfu, dfu.devnum);
	for (guint i = 0; i < G_N_ELEMENTS(lists); i++) {
		g_strfreev(f->config->usb_ignore);
		f->config->usb_ignore = g_strdupv((char **)lists[i]);
		g_ptr_array_set_size(f->notes, 0);
		make_backend(f, HEALER_USB_CONTEXT_FLAG_NONE);
		healer_backend_start(HEALER_BACKEND(f->backend));
		dump_notes(f);
		g_assert_cmpuint(f->added->len, ==, 0);
		g_assert_cmpuint(
		        count_notes(f, "info usb:1-1.4: USB device 2b04:d006 left alone: [usb] ignore lists it"), ==,
		        1);
		healer_backend_stop(HEALER_BACKEND(f->backend));
		g_clear_object(&f->backend);
	}
}

/* A family that says its device is gone: removed ("detached") and not made again while it stays plugged. */
static void
test_family_detached(Fixture *f, gconstpointer data)
{
	g_autoptr(TestNode) node = NULL;
	HealerDevice *device;

	(void)data;
	plug(f->tb, &dfu, dfu.devnum);
	node = test_node_attach(f->tb, &dfu, dfu.devnum);
	make_backend(f, HEALER_USB_CONTEXT_FLAG_NONE);
	healer_backend_start(HEALER_BACKEND(f->backend));
	g_assert_cmpuint(f->added->len, ==, 1);
	device = g_ptr_array_index(f->added, 0);
	g_assert_cmpstr(healer_backend_family_at(HEALER_BACKEND(f->backend), "usb:1-1.4"), ==, "test-dfu");
	healer_device_emit_detached(device);
	g_assert_cmpuint(f->removed->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(f->why, 0), ==, "detached");
	g_assert_true(TEST_USB_DEVICE(device)->closed);
	/* Let go: nobody holds it now. */
	g_assert_null(healer_backend_family_at(HEALER_BACKEND(f->backend), "usb:1-1.4"));
	/* libusb still lists it: a rescan makes nothing. */
	healer_usb_context_rescan(healer_usb_backend_get_context(f->backend));
	g_assert_cmpuint(f->added->len, ==, 1);
}

/* Without libusb's hotplug: the devices there at start, then whatever a rescan finds came or went. */
static void
test_fallback(Fixture *f, gconstpointer data)
{
	g_autoptr(TestNode) first = NULL;
	g_autoptr(TestNode) second = NULL;
	HealerUsbContext *context;
	guint guard;

	(void)data;
	plug(f->tb, &dfu, 5);
	first = test_node_attach(f->tb, &dfu, 5);
	make_backend(f, HEALER_USB_CONTEXT_FLAG_NO_HOTPLUG);
	context = healer_usb_backend_get_context(f->backend);
	g_assert_false(healer_usb_context_has_hotplug(context));
	healer_backend_start(HEALER_BACKEND(f->backend));
	dump_notes(f);
	g_assert_cmpuint(count_notes(f, "info USB: libusb has no hotplug here"), ==, 1);
	g_assert_cmpuint(f->added->len, ==, 1);

	unplug(f->tb, &dfu);
	/*
	 * libusb's own list follows the testbed's uevents, and libusb wakes the source for each (as it
	 * does for any event: no callback is registered): rescan after each wakeup until it is gone.
	 */
	guard = g_timeout_add_seconds(WAIT_S, on_wait_too_long, NULL);
	while (f->removed->len < 1) {
		g_main_context_iteration(NULL, TRUE);
		healer_usb_context_rescan(context);
	}
	g_assert_cmpstr(healer_device_get_physical_id(g_ptr_array_index(f->removed, 0)), ==, "usb:1-1.4");

	plug(f->tb, &dfu, 7);
	second = test_node_attach(f->tb, &dfu, 7);
	while (f->added->len < 2) {
		g_main_context_iteration(NULL, TRUE);
		healer_usb_context_rescan(context);
	}
	g_source_remove(guard);
	g_assert_cmpstr(healer_device_get_physical_id(g_ptr_array_index(f->added, 1)), ==, "usb:1-1.4");
	g_assert_cmpuint(TEST_USB_DEVICE(g_ptr_array_index(f->added, 1))->address, ==, 7);
}

/* The engine serves a USB device like any other: its port (what healerctl devices shows) is the physical id. */
static void
test_engine_shows_physical_id(Fixture *f, gconstpointer data)
{
	g_autofree char *state = test_tmpdir_new();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(TestNode) node = NULL;
	g_autoptr(GPtrArray) devices = NULL;
	g_autoptr(GPtrArray) after = NULL;
	g_autoptr(GError) error = NULL;
	const HealerDeviceInfo *info;
	guint guard;

	(void)data;
	g_free(f->config->state_dir);
	f->config->state_dir = g_strdup(state);
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	supply = healer_supply_new(f->config, store, NULL);
	engine = healer_engine_new(f->config, supply);
	plug(f->tb, &dfu, dfu.devnum);
	node = test_node_attach(f->tb, &dfu, dfu.devnum);
	make_backend(f, HEALER_USB_CONTEXT_FLAG_NONE);
	healer_engine_add_backend(engine, HEALER_BACKEND(f->backend));
	healer_engine_start(engine);
	/* The family reports its id from an idle callback: the engine announces it then. */
	guard = g_timeout_add_seconds(WAIT_S, on_wait_too_long, NULL);
	do {
		g_clear_pointer(&devices, g_ptr_array_unref);
		g_main_context_iteration(NULL, TRUE);
		devices = healer_engine_list_devices(engine);
	} while (devices->len == 0);
	g_source_remove(guard);
	info = g_ptr_array_index(devices, 0);
	g_assert_cmpstr(info->id, ==, "test-d006");
	g_assert_cmpstr(info->port, ==, "usb:1-1.4");
	g_assert_cmpstr(info->transport, ==, "usb");

	unplug(f->tb, &dfu);
	wait_for(f, f->removed, 1);
	after = healer_engine_list_devices(engine);
	g_assert_cmpuint(after->len, ==, 0);
	g_clear_pointer(&engine, healer_engine_free);
	test_tmpdir_free(g_steal_pointer(&state));
}

/* Physical ids and selectors on devices libusb lists. */
static void
test_selectors(Fixture *f, gconstpointer data)
{
	g_autoptr(HealerUsbContext) context = NULL;
	g_autoptr(GError) error = NULL;
	libusb_device **list = NULL;
	ssize_t n;
	gboolean found = FALSE;

	(void)data;
	plug(f->tb, &dfu, dfu.devnum);
	context = healer_usb_context_new(HEALER_USB_CONTEXT_FLAG_NONE, &error);
	g_assert_no_error(error);
	n = libusb_get_device_list(healer_usb_context_get_libusb(context), &list);
	g_assert_cmpint(n, ==, 3);
	for (ssize_t i = 0; i < n; i++) {
		g_autofree char *id = healer_usb_physical_id(list[i]);
		struct libusb_device_descriptor descriptor;
		HealerUsbSelector by_port, by_ids, other_port, parent;

		if (!g_str_equal(id, "usb:1-1.4"))
			continue;
		found = TRUE;
		libusb_get_device_descriptor(list[i], &descriptor);
		g_assert_true(healer_usb_selector_parse("usb:1-1.4", &by_port, NULL));
		g_assert_true(healer_usb_selector_parse("usb:2b04:D006", &by_ids, NULL));
		g_assert_true(healer_usb_selector_parse("usb:1-1.5", &other_port, NULL));
		g_assert_true(healer_usb_selector_parse("usb:1-1", &parent, NULL));
		g_assert_true(healer_usb_selector_matches(&by_port, list[i], &descriptor));
		g_assert_true(healer_usb_selector_matches(&by_ids, list[i], &descriptor));
		g_assert_false(healer_usb_selector_matches(&other_port, list[i], &descriptor));
		g_assert_false(healer_usb_selector_matches(&parent, list[i], &descriptor));
		/* No driver holds the DFU interface; sysfs names none. */
		g_assert_null(healer_usb_interface_driver(list[i], 0));
	}
	libusb_free_device_list(list, 1);
	g_assert_true(found);
}

/*
 * healerctl probe usb:...: the device at a physical id, or with a vendor and product id, found as the
 * backend finds it, with its interfaces' kernel drivers and the family that serves it (the Particle
 * family, by its control interface); a selector that names nothing, and one that is malformed, each said.
 */
static void
test_probe(Fixture *f, gconstpointer data)
{
	const char *healerctl = test_program("HEALERCTL");
	g_autoptr(TestNode) node = NULL;

	(void)data;
	plug(f->tb, &cdc, cdc.devnum);
	node = test_node_attach(f->tb, &cdc, cdc.devnum);
	{
		const char *argv[] = {healerctl, "probe", "usb:1-1.2", NULL};
		g_auto(TestRun) run = {0};
		test_run(&run, argv);
		g_test_message("%s%s", run.out, run.err);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(
		        strstr(run.out, "usb:1-1.2\n  USB device:   2b04:c006 (bus 1, address 3), class ef\n"));
		g_assert_nonnull(strstr(run.out, "    0: class 02/02/01, held by the kernel driver cdc_acm\n"
		                                 "    1: class 0a/00/00, held by the kernel driver cdc_acm\n"
		                                 "    2: class ff/ff/ff, no kernel driver\n"));
		/* Its control interface is the Particle family's (probe reads it no further). */
		g_assert_nonnull(
		        strstr(run.out, "  Family:       particle (interface 2, class ff/ff/ff): healerd serves it\n"));
	}
	{
		const char *argv[] = {healerctl, "probe", "--json", "usb:2b04:c006", NULL};
		g_auto(TestRun) run = {0};
		test_run(&run, argv);
		g_assert_cmpint(run.exit_status, ==, 0);
		g_assert_nonnull(strstr(run.out, "\"port\":\"usb:1-1.2\""));
		g_assert_nonnull(strstr(run.out, "\"vendor_id\":11012"));
		g_assert_nonnull(strstr(run.out, "\"driver\":\"cdc_acm\""));
		g_assert_nonnull(strstr(run.out, "\"family\":\"particle\""));
	}
	{
		const char *argv[] = {healerctl, "probe", "usb:1-1.4", NULL};
		g_auto(TestRun) run = {0};
		test_run(&run, argv);
		g_assert_cmpint(run.exit_status, ==, 1);
		g_assert_cmpstr(run.err, ==, "healerctl probe: no USB device is plugged in at usb:1-1.4\n");
	}
	{
		const char *argv[] = {healerctl, "probe", "usb:1-1.4.", NULL};
		g_auto(TestRun) run = {0};
		test_run(&run, argv);
		g_assert_cmpint(run.exit_status, ==, 2);
		g_assert_nonnull(strstr(run.err, "'usb:1-1.4.': expected a port number 1..255 after '.'"));
	}
}

/* The match table's rules, without libusb. */
static void
test_match_rows(void)
{
	struct libusb_device_descriptor d = {.idVendor = 0x2b04, .idProduct = 0xd00c};
	struct libusb_interface_descriptor dfu_if = {
	        .bInterfaceClass = 0xfe, .bInterfaceSubClass = 0x01, .bInterfaceProtocol = 0x02};
	struct libusb_interface_descriptor other_if = {.bInterfaceClass = 0xff};
	HealerUsbMatch any = {"any", 0x2b04, 0xd00c, 0xffff, HEALER_USB_ANY, HEALER_USB_ANY, HEALER_USB_ANY, NULL};
	guint n = 99;

	g_assert_true(healer_usb_match_matches(&dfu_row, &d, &dfu_if));
	g_assert_false(healer_usb_match_matches(&dfu_row, &d, &other_if));
	g_assert_false(healer_usb_match_matches(&cdc_row, &d, &dfu_if)); /* 0xd00c is not under 0xc000/0xf000 */
	g_assert_true(healer_usb_match_matches(&any, &d, &other_if));
	d.idProduct = 0xd00d;
	g_assert_false(healer_usb_match_matches(&any, &d, &other_if)); /* the whole product id */
	d.idVendor = 0x2b05;
	d.idProduct = 0xd00c;
	g_assert_false(healer_usb_match_matches(&dfu_row, &d, &dfu_if));
	/* The built-in table: rows with a family and a constructor each. */
	for (const HealerUsbMatch *rows = healer_usb_builtin_matches(&n); n > 0; n--, rows++) {
		g_assert_nonnull(rows->family);
		g_assert_nonnull(rows->new_device);
	}
	g_assert_cmpuint(n, ==, 0);
}

/* umockdev's preload library must be in the process before anything opens /sys or /dev. */
static void
reexec_under_umockdev(char **argv)
{
	const char *preload = g_getenv("LD_PRELOAD");
	g_autoptr(GStrvBuilder) args = g_strv_builder_new();
	g_auto(GStrv) argv2 = NULL;
	g_autofree char *asan = NULL;

	if (preload != NULL && strstr(preload, "libumockdev-preload") != NULL)
		return;
	/* AddressSanitizer wants to be first; the sanitize setup's runtime is fine after umockdev's. */
	asan = g_strdup_printf("%s%sverify_asan_link_order=0", g_getenv("ASAN_OPTIONS") ?: "",
	                       g_getenv("ASAN_OPTIONS") ? ":" : "");
	g_setenv("ASAN_OPTIONS", asan, TRUE);
	g_strv_builder_add(args, "umockdev-wrapper");
	/* The valgrind setup's wrapper (HEALER_TEST_WRAPPER) goes inside: this process is about to be replaced. */
	if (g_getenv("HEALER_TEST_WRAPPER") != NULL) {
		g_auto(GStrv) wrapper = g_strsplit(g_getenv("HEALER_TEST_WRAPPER"), " ", -1);
		for (guint i = 0; wrapper[i] != NULL; i++) {
			g_strv_builder_add(args, wrapper[i]);
			if (i == 0 && g_str_has_suffix(wrapper[0], "valgrind")) {
				g_autofree char *supp = g_strdup_printf("--suppressions=%s/tests/unit/umockdev.supp",
				                                        g_getenv("HEALER_SOURCE_DIR"));
				g_strv_builder_add(args, supp);
			}
		}
	}
	g_strv_builder_addv(args, (const char **)argv);
	argv2 = g_strv_builder_end(args);
	execvp(argv2[0], argv2);
	g_printerr("cannot run umockdev-wrapper (package umockdev; scripts/setup.sh installs it): %s\n",
	           g_strerror(errno));
	exit(1);
}

/* The records are what the events say (on_event()): only criticals reach the log, and fail the test. */
static GLogWriterOutput
quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return g_log_writer_default(level, fields, n_fields, user_data);
	return G_LOG_WRITER_HANDLED;
}

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main(int argc, char **argv)
{
	reexec_under_umockdev(argv);
	g_test_init(&argc, &argv, NULL);
	g_log_set_writer_func(quiet_writer, NULL, NULL);
	g_test_add_func("/usb-backend/match-rows", test_match_rows);
	ADD("/usb-backend/selectors", test_selectors);
	ADD("/usb-backend/enumerate-at-start", test_enumerate_at_start);
	ADD("/usb-backend/hotplug", test_hotplug);
	ADD("/usb-backend/kernel-driver-not-claimed", test_kernel_driver_not_claimed);
	ADD("/usb-backend/ignore", test_ignore);
	ADD("/usb-backend/family-detached", test_family_detached);
	ADD("/usb-backend/fallback", test_fallback);
	ADD("/usb-backend/engine-shows-physical-id", test_engine_shows_physical_id);
	ADD("/usb-backend/probe", test_probe);
	return g_test_run();
}
