#include "serial-backend.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "events.h"
#include "link-device.h"
#include "particle-usb-ids.h"
#include "port-guard.h"
#include "port-watcher.h"
#include "usb-sysfs.h"

struct _HealerSerialBackend {
	HealerBackend parent_instance;
	HealerConfig *config;
	HealerPortWatcher *watcher; /* NULL until started */
	HealerPortGuard *guard;     /* identities and records per port */
	GHashTable *devices;        /* port (the device's own string) -> HealerDevice* (a reference) */
	HealerDeviceWatch *watch;   /* "detached" and "identity-changed" of every device; NULL until one is served */
	char *sysfs_root;           /* NULL: /sys (tests give a directory of their own) */
	GHashTable *left_alone;     /* port -> why it is not opened, as last recorded (one record per reason) */
};

G_DEFINE_FINAL_TYPE(HealerSerialBackend, healer_serial_backend, HEALER_TYPE_BACKEND)

static void
rescan(HealerSerialBackend *self)
{
	if (self->watcher != NULL)
		healer_port_watcher_rescan(self->watcher);
}

/* Whether the watch heard one of ours: the device in the table for its port. */
static gboolean
is_ours(HealerSerialBackend *self, HealerDevice *device)
{
	return g_hash_table_lookup(self->devices, healer_device_get_port(device)) == device;
}

/* The device leaves the table (closed, and its signals no longer reach us) and the engine hears of it. */
static void
remove_device(HealerSerialBackend *self, const char *port, const char *why)
{
	g_autoptr(HealerDevice) device = NULL;

	if (!g_hash_table_steal_extended(self->devices, port, NULL, (gpointer *)&device))
		return;
	healer_device_close(device);
	healer_backend_emit_device_removed(HEALER_BACKEND(self), device, why);
}

static void
on_detached(HealerDevice *device, gpointer user_data)
{
	HealerSerialBackend *self = user_data;
	g_autofree char *port = NULL;

	if (!is_ours(self, device))
		return;
	port = g_strdup(healer_device_get_port(device));
	remove_device(self, port, "detached");
	/* The device may have come back on another port already, or its port may be in use now. */
	rescan(self);
}

/* After the engine's function (its watch is older): the device that answered before is detached, then counted. */
static void
on_identity_changed(HealerDevice *device, gpointer user_data)
{
	HealerSerialBackend *self = user_data;
	g_autofree char *port = NULL;

	if (!is_ours(self, device))
		return;
	port = g_strdup(healer_device_get_port(device));
	if (healer_port_guard_note_identity(self->guard, port, healer_device_get_id(device)))
		return;
	/* Too many ids on the port: it is let go (the guard said why), closed now, no more frames from it. */
	remove_device(self, port, NULL);
}

static const HealerDeviceWatchFuncs serial_watch = {
        .detached = on_detached,
        .identity_changed = on_identity_changed,
};

/* Where the port is plugged: its device in sysfs (a USB interface, a UART), else the port itself (a pty). */
static char *
physical_id_for(const char *port)
{
	struct stat st;
	g_autofree char *link = NULL;
	char *real;

	if (stat(port, &st) != 0 || !S_ISCHR(st.st_mode))
		return g_strdup(port);
	link = g_strdup_printf("/sys/dev/char/%u:%u/device", major(st.st_rdev), minor(st.st_rdev));
	real = realpath(link, NULL);
	if (real == NULL)
		return g_strdup(port);
	{
		char *out = g_strdup(real);
		free(real);
		return out;
	}
}

/*
 * Why `port` must not be opened (a newly allocated sentence), or NULL when it may: it is a tty of a
 * USB device another family holds (that family speaks to the device; its application may read this
 * port, and link frames would reach it), or of a Particle device, which the Particle family serves
 * over USB whether or not it has arrived yet there (so the order the two arrive in does not matter),
 * unless [serial] ports names the port by its exact path.
 */
static char *
why_left_alone(HealerSerialBackend *self, const char *port)
{
	g_autofree char *tty = healer_usb_sysfs_tty_name_for_port(port);
	g_auto(HealerUsbTtyParent) parent = {0};
	const char *family;

	if (!healer_usb_sysfs_tty_parent(self->sysfs_root, tty, &parent))
		return NULL;
	family = healer_backend_peer_family_at(HEALER_BACKEND(self), parent.physical_id);
	if (family != NULL && g_strcmp0(family, "link") != 0)
		return g_strdup_printf("a port of USB device %s (%04x:%04x), which the %s family holds: its "
		                       "application may read this port, so healerd sends nothing into it",
		                       parent.physical_id, parent.vendor_id, parent.product_id, family);
	if (parent.vendor_id == HEALER_USB_VENDOR_PARTICLE &&
	    (self->config->serial_ports == NULL ||
	     !g_strv_contains((const char *const *)self->config->serial_ports, port)))
		return g_strdup_printf("the USB serial port of Particle device %s (%04x:%04x), which is served over "
		                       "USB: its application may read this port, so healerd sends nothing into it "
		                       "(name the port by its exact path in [serial] ports to serve it over the link "
		                       "protocol)",
		                       parent.physical_id, parent.vendor_id, parent.product_id);
	return NULL;
}

/* One record for each port and reason; FALSE when the port may be opened. */
static gboolean
leave_alone(HealerSerialBackend *self, const char *port)
{
	g_autofree char *why = why_left_alone(self, port);

	if (why == NULL) {
		g_hash_table_remove(self->left_alone, port);
		return FALSE;
	}
	if (g_strcmp0(g_hash_table_lookup(self->left_alone, port), why) != 0) {
		healer_emit(HEALER_EVENT_NOTE, NULL, port, NULL, -1, G_LOG_LEVEL_INFO, "%s: not opened: %s", port, why);
		g_hash_table_replace(self->left_alone, g_strdup(port), g_steal_pointer(&why));
	}
	return TRUE;
}

void
healer_serial_backend_attach_transport(HealerSerialBackend *self, const char *port, HealerTransport *transport)
{
	HealerLinkTimeouts timeouts = {.response_timeout_ms = self->config->response_timeout_s * 1000,
	                               .reset_timeout_ms = self->config->reset_timeout_s * 1000};
	g_autofree char *physical_id = NULL;
	HealerDevice *device;

	if (healer_port_guard_is_ignored(self->guard, port)) {
		g_debug("%s: ignored for now (too many device ids on it)", port);
		healer_transport_close(transport);
		return;
	}
	if (g_hash_table_contains(self->devices, port)) {
		healer_transport_close(transport);
		g_return_if_reached();
	}
	physical_id = physical_id_for(port);
	device = HEALER_DEVICE(healer_link_device_new(port, physical_id, "serial", transport, &timeouts));
	/*
	 * Our watch is made with the first device we serve, so after the engine's, which is made with the
	 * engine that hears of this device (device-added): the engine's functions run first.
	 */
	if (self->watch == NULL)
		self->watch = healer_device_watch_new(&serial_watch, self);
	g_hash_table_insert(self->devices, (gpointer)healer_device_get_port(device), device);
	healer_backend_emit_device_added(HEALER_BACKEND(self), device);
}

static void
attach(HealerSerialBackend *self, const char *port)
{
	HealerTransportCallbacks callbacks = {0};
	g_autoptr(GError) error = NULL;
	HealerTransport *transport;

	if (healer_port_guard_is_ignored(self->guard, port)) {
		g_debug("%s: ignored for now (too many device ids on it)", port);
		return;
	}
	if (leave_alone(self, port))
		return;
	transport = healer_serial_transport_open(port, self->config->baud, &callbacks, NULL, &error);
	if (transport == NULL) {
		/* Reported once per cause; a port in use is tried again shortly. */
		healer_port_watcher_refused(self->watcher, port, error);
		return;
	}
	healer_serial_backend_attach_transport(self, port, transport);
}

static void
on_ports(GPtrArray *paths, gpointer user_data)
{
	HealerSerialBackend *self = user_data;
	GHashTableIter iter;
	gpointer key;
	g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < paths->len; i++) {
		const char *path = g_ptr_array_index(paths, i);
		if (!g_hash_table_contains(self->devices, path))
			attach(self, path);
	}
	g_hash_table_iter_init(&iter, self->devices);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_ptr_array_find_with_equal_func(paths, key, g_str_equal, NULL))
			g_ptr_array_add(gone, g_strdup(key));
	}
	/* Its path went before its line said so (two adapters pulled at once): said here, its line closed now. */
	for (guint i = 0; i < gone->len; i++)
		remove_device(self, g_ptr_array_index(gone, i), "detached: its port is gone");
}

/*
 * A peer (the USB backend) serves a device now: a port of ours that is part of it (it came first)
 * is let go at once, and left alone from now on.
 */
static void
serial_peer_device_added(HealerBackend *backend, HealerBackend *peer, HealerDevice *device)
{
	HealerSerialBackend *self = HEALER_SERIAL_BACKEND(backend);
	g_autoptr(GPtrArray) ports = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter iter;
	gpointer key;

	(void)peer;
	(void)device;
	g_hash_table_iter_init(&iter, self->devices);
	while (g_hash_table_iter_next(&iter, &key, NULL))
		g_ptr_array_add(ports, g_strdup(key));
	for (guint i = 0; i < ports->len; i++) {
		const char *port = g_ptr_array_index(ports, i);
		if (leave_alone(self, port))
			remove_device(self, port, "let go: its USB device is served by another family");
	}
}

/* A port ignored for its many device ids is served again. */
static void
on_port_unignored(const char *port, gpointer user_data)
{
	(void)port;
	rescan(user_data);
}

static void
serial_start(HealerBackend *backend)
{
	HealerSerialBackend *self = HEALER_SERIAL_BACKEND(backend);

	if (self->watcher != NULL)
		return;
	self->watcher = healer_port_watcher_new((const char *const *)self->config->serial_ports,
	                                        self->config->serial_watch, on_ports, self);
	healer_port_watcher_rescan(self->watcher);
}

static void
serial_stop(HealerBackend *backend)
{
	HealerSerialBackend *self = HEALER_SERIAL_BACKEND(backend);
	GHashTableIter iter;
	gpointer value;

	g_clear_pointer(&self->watcher, healer_port_watcher_free);
	g_clear_pointer(&self->watch, healer_device_watch_free);
	g_hash_table_iter_init(&iter, self->devices);
	while (g_hash_table_iter_next(&iter, NULL, &value))
		healer_device_close(value);
	g_hash_table_remove_all(self->devices);
}

/* Limited per port as journald limits a service. */
static gboolean
serial_allow_record(HealerBackend *backend, HealerDevice *device, const char *device_id)
{
	HealerSerialBackend *self = HEALER_SERIAL_BACKEND(backend);

	return healer_port_guard_allow_record(self->guard, healer_device_get_port(device), device_id);
}

static void
healer_serial_backend_dispose(GObject *object)
{
	HealerSerialBackend *self = HEALER_SERIAL_BACKEND(object);

	if (self->devices != NULL)
		serial_stop(HEALER_BACKEND(self));
	g_clear_pointer(&self->guard, healer_port_guard_free);
	G_OBJECT_CLASS(healer_serial_backend_parent_class)->dispose(object);
}

static void
healer_serial_backend_finalize(GObject *object)
{
	HealerSerialBackend *self = HEALER_SERIAL_BACKEND(object);

	g_hash_table_unref(self->devices);
	g_hash_table_unref(self->left_alone);
	g_free(self->sysfs_root);
	G_OBJECT_CLASS(healer_serial_backend_parent_class)->finalize(object);
}

static void
healer_serial_backend_class_init(HealerSerialBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	HealerBackendClass *backend_class = HEALER_BACKEND_CLASS(klass);

	object_class->dispose = healer_serial_backend_dispose;
	object_class->finalize = healer_serial_backend_finalize;
	backend_class->start = serial_start;
	backend_class->stop = serial_stop;
	backend_class->allow_record = serial_allow_record;
	backend_class->peer_device_added = serial_peer_device_added;
}

static void
healer_serial_backend_init(HealerSerialBackend *self)
{
	self->devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_object_unref);
	self->left_alone = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

HealerSerialBackend *
healer_serial_backend_new(HealerConfig *config)
{
	HealerSerialBackend *self = g_object_new(HEALER_TYPE_SERIAL_BACKEND, "name", "serial", NULL);

	self->config = config;
	self->guard = healer_port_guard_new(config->device_ids_per_minute, on_port_unignored, self);
	return self;
}

void
healer_serial_backend_set_sysfs_root(HealerSerialBackend *self, const char *sysfs_root)
{
	g_return_if_fail(HEALER_IS_SERIAL_BACKEND(self));
	g_free(self->sysfs_root);
	self->sysfs_root = g_strdup(sysfs_root);
}
