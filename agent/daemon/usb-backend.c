#include "usb-backend.h"

#include "events.h"
#include "healer-error.h"
#include "module-names.h"
#include "particle-device.h"
#include "port-guard.h"
#include "usb-sysfs.h"

typedef enum {
	ENTRY_SERVED,    /* a family serves it */
	ENTRY_UNMATCHED, /* no family serves it (or it has no active configuration) */
	ENTRY_IGNORED,   /* [usb] ignore lists it */
	ENTRY_REFUSED,   /* its family could not serve it (said once) */
	ENTRY_GUARDED,   /* the port guard ignores its physical id for now: served again when that ends */
	ENTRY_LET_GO,    /* its family said it is gone while libusb still lists it: served again once replugged */
} EntryState;

/* A device libusb listed, served or not: kept until libusb says it left. */
typedef struct {
	libusb_device *usb; /* a reference */
	char *physical_id;
	EntryState state;
	HealerDevice *device; /* ENTRY_SERVED: the family's device (a reference), else NULL */
} Entry;

struct _HealerUsbBackend {
	HealerBackend parent_instance;
	HealerConfig *config;
	HealerUsbContext *context;
	GPtrArray *added_matches; /* const HealerUsbMatch*: tried before the built-in rows */
	GArray *ignore;           /* HealerUsbSelector: [usb] ignore */
	HealerPortGuard *guard;   /* identities and records per physical id */
	GHashTable *entries;      /* libusb_device* -> Entry* */
	gboolean started;
};

G_DEFINE_FINAL_TYPE(HealerUsbBackend, healer_usb_backend, HEALER_TYPE_BACKEND)

static void
entry_free(Entry *entry)
{
	g_clear_object(&entry->device);
	libusb_unref_device(entry->usb);
	g_free(entry->physical_id);
	g_free(entry);
}

static Entry *
entry_for_device(HealerUsbBackend *self, HealerDevice *device)
{
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->entries);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Entry *entry = value;
		if (entry->device == device)
			return entry;
	}
	return NULL;
}

/* The entry's device is closed (no more of its signals reach us) and the engine hears of it. */
static void
let_go(HealerUsbBackend *self, Entry *entry, EntryState state, const char *why)
{
	g_autoptr(HealerDevice) device = g_steal_pointer(&entry->device);

	entry->state = state;
	if (device == NULL)
		return;
	g_signal_handlers_disconnect_by_data(device, self);
	healer_device_close(device);
	healer_backend_emit_device_removed(HEALER_BACKEND(self), device, why);
}

static void
on_detached(HealerDevice *device, gpointer user_data)
{
	HealerUsbBackend *self = user_data;
	Entry *entry = entry_for_device(self, device);

	if (entry != NULL)
		let_go(self, entry, ENTRY_LET_GO, "detached");
}

/* Runs after the engine's handler: the device that answered before is detached first, then counted. */
static void
on_identity_changed(HealerDevice *device, gpointer user_data)
{
	HealerUsbBackend *self = user_data;
	Entry *entry = entry_for_device(self, device);

	if (entry == NULL ||
	    healer_port_guard_note_identity(self->guard, entry->physical_id, healer_device_get_id(device)))
		return;
	/* Too many ids at this physical id: left alone for a while (the guard said why). */
	let_go(self, entry, ENTRY_GUARDED, NULL);
}

static const HealerUsbMatch *
find_match(HealerUsbBackend *self, const struct libusb_device_descriptor *descriptor,
           const struct libusb_config_descriptor *config, const struct libusb_interface_descriptor **interface)
{
	const HealerUsbMatch *match = healer_usb_match_find((const HealerUsbMatch *const *)self->added_matches->pdata,
	                                                    self->added_matches->len, descriptor, config, interface);
	const HealerUsbMatch *builtin;
	guint n_builtin;
	g_autoptr(GPtrArray) rows = NULL;

	if (match != NULL)
		return match;
	builtin = healer_usb_builtin_matches(&n_builtin);
	rows = g_ptr_array_sized_new(n_builtin);
	for (guint i = 0; i < n_builtin; i++)
		g_ptr_array_add(rows, (gpointer)&builtin[i]);
	return healer_usb_match_find((const HealerUsbMatch *const *)rows->pdata, rows->len, descriptor, config,
	                             interface);
}

static gboolean
is_ignored(HealerUsbBackend *self, libusb_device *usb, const struct libusb_device_descriptor *descriptor)
{
	for (guint i = 0; i < self->ignore->len; i++) {
		if (healer_usb_selector_matches(&g_array_index(self->ignore, HealerUsbSelector, i), usb, descriptor))
			return TRUE;
	}
	return FALSE;
}

/* The family whose row matches makes the device, and the engine is given it; or one record says why not. */
static void
serve(HealerUsbBackend *self, Entry *entry)
{
	struct libusb_device_descriptor descriptor;
	struct libusb_config_descriptor *config = NULL;
	const struct libusb_interface_descriptor *interface = NULL;
	const HealerUsbMatch *match;
	HealerUsbCandidate candidate;
	g_autoptr(GError) error = NULL;
	g_autofree char *interface_text = NULL;
	HealerDevice *device;

	/* Read from what libusb cached at enumeration: no request to the device. */
	libusb_get_device_descriptor(entry->usb, &descriptor);
	if (is_ignored(self, entry->usb, &descriptor)) {
		entry->state = ENTRY_IGNORED;
		healer_emit(HEALER_EVENT_NOTE, NULL, entry->physical_id, NULL, -1, G_LOG_LEVEL_INFO,
		            "%s: USB device %04x:%04x left alone: [usb] ignore lists it", entry->physical_id,
		            descriptor.idVendor, descriptor.idProduct);
		return;
	}
	if (healer_port_guard_is_ignored(self->guard, entry->physical_id)) {
		entry->state = ENTRY_GUARDED;
		g_debug("%s: ignored for now (too many device ids on it)", entry->physical_id);
		return;
	}
	/* An unconfigured device (bConfigurationValue 0) has no interfaces to match. */
	if (libusb_get_active_config_descriptor(entry->usb, &config) != 0)
		config = NULL;
	match = find_match(self, &descriptor, config, &interface);
	if (match == NULL) {
		entry->state = ENTRY_UNMATCHED;
		healer_emit(HEALER_EVENT_NOTE, NULL, entry->physical_id, NULL, -1, G_LOG_LEVEL_DEBUG,
		            "%s: USB device %04x:%04x (class %02x) ignored: no family serves it%s", entry->physical_id,
		            descriptor.idVendor, descriptor.idProduct, descriptor.bDeviceClass,
		            config == NULL ? " (it has no active configuration)" : "");
		libusb_free_config_descriptor(config);
		return;
	}
	candidate = (HealerUsbCandidate){
	        .context = self->context,
	        .device = entry->usb,
	        .descriptor = &descriptor,
	        .config = config,
	        .interface = interface,
	        .physical_id = entry->physical_id,
	        .match = match,
	};
	device = match->new_device(&candidate, &error);
	/* What the record says of the interface, before its descriptor goes. */
	interface_text = g_strdup_printf("interface %u, class %02x/%02x/%02x", interface->bInterfaceNumber,
	                                 interface->bInterfaceClass, interface->bInterfaceSubClass,
	                                 interface->bInterfaceProtocol);
	libusb_free_config_descriptor(config);
	if (device == NULL) {
		entry->state = ENTRY_REFUSED;
		healer_emit(HEALER_EVENT_PORT_REFUSED, NULL, entry->physical_id, NULL, -1, G_LOG_LEVEL_WARNING,
		            "%s: USB device %04x:%04x not served by the %s family: %s", entry->physical_id,
		            descriptor.idVendor, descriptor.idProduct, match->family, error->message);
		return;
	}
	if (g_strcmp0(healer_device_get_port(device), entry->physical_id) != 0) {
		/* The engine keys records and faces by port: a family must use the physical id. */
		g_critical("%s: the %s family made a device on port %s", entry->physical_id, match->family,
		           healer_device_get_port(device));
		healer_device_close(device);
		g_object_unref(device);
		entry->state = ENTRY_REFUSED;
		return;
	}
	entry->state = ENTRY_SERVED;
	entry->device = device;
	g_signal_connect(device, "detached", G_CALLBACK(on_detached), self);
	g_signal_connect_after(device, "identity-changed", G_CALLBACK(on_identity_changed), self);
	healer_emit(HEALER_EVENT_NOTE, NULL, entry->physical_id, NULL, -1, G_LOG_LEVEL_INFO,
	            "%s: USB device %04x:%04x served by the %s family (%s)", entry->physical_id, descriptor.idVendor,
	            descriptor.idProduct, match->family, interface_text);
	healer_backend_emit_device_added(HEALER_BACKEND(self), device);
}

static void
arrived(HealerUsbBackend *self, libusb_device *usb)
{
	Entry *entry = g_new0(Entry, 1);

	entry->usb = libusb_ref_device(usb);
	entry->physical_id = healer_usb_physical_id(usb);
	g_hash_table_insert(self->entries, usb, entry);
	serve(self, entry);
}

static void
left(HealerUsbBackend *self, libusb_device *usb)
{
	Entry *entry = g_hash_table_lookup(self->entries, usb);

	if (entry == NULL)
		return;
	let_go(self, entry, ENTRY_LET_GO, "detached");
	g_hash_table_remove(self->entries, usb);
}

static void
on_usb_device(HealerUsbContext *context, libusb_device *usb, gboolean is_arrival, gpointer user_data)
{
	(void)context;
	if (is_arrival)
		arrived(user_data, usb);
	else
		left(user_data, usb);
}

/* The guard's ignore period for a physical id is over: what is plugged there is served again. */
static void
on_port_unignored(const char *port, gpointer user_data)
{
	HealerUsbBackend *self = user_data;
	g_autoptr(GPtrArray) again = g_ptr_array_new();
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->entries);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Entry *entry = value;
		if (entry->state == ENTRY_GUARDED && g_str_equal(entry->physical_id, port))
			g_ptr_array_add(again, entry);
	}
	for (guint i = 0; i < again->len; i++)
		serve(self, g_ptr_array_index(again, i));
}

static void
usb_start(HealerBackend *backend)
{
	HealerUsbBackend *self = HEALER_USB_BACKEND(backend);
	g_autoptr(GError) error = NULL;

	if (self->started)
		return;
	self->started = TRUE;
	if (!healer_usb_context_has_hotplug(self->context))
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_INFO,
		            "USB: libusb has no hotplug here: devices are listed again whenever a node under "
		            "/dev/bus/usb comes or goes");
	if (!healer_usb_context_timeouts_on_fds(self->context))
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_INFO,
		            "USB: libusb's timeouts are not file descriptors here: healerd sets a timer for "
		            "libusb while a transfer with a timeout is in flight");
	if (!healer_usb_context_watch(self->context, on_usb_device, self, &error))
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
		            "USB: cannot watch USB devices, none is served: %s", error->message);
}

static void
usb_stop(HealerBackend *backend)
{
	HealerUsbBackend *self = HEALER_USB_BACKEND(backend);
	GHashTableIter iter;
	gpointer value;

	if (!self->started)
		return;
	self->started = FALSE;
	healer_usb_context_unwatch(self->context);
	g_hash_table_iter_init(&iter, self->entries);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Entry *entry = value;
		if (entry->device != NULL) {
			g_signal_handlers_disconnect_by_data(entry->device, self);
			healer_device_close(entry->device);
		}
	}
	g_hash_table_remove_all(self->entries);
}

/* Limited per physical id as journald limits a service. */
static gboolean
usb_allow_record(HealerBackend *backend, HealerDevice *device, const char *device_id)
{
	HealerUsbBackend *self = HEALER_USB_BACKEND(backend);

	return healer_port_guard_allow_record(self->guard, healer_device_get_port(device), device_id);
}

/* The family of the device served at `physical_id`: another backend leaves that device's ports alone. */
static const char *
usb_family_at(HealerBackend *backend, const char *physical_id)
{
	HealerUsbBackend *self = HEALER_USB_BACKEND(backend);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->entries);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Entry *entry = value;
		if (entry->state == ENTRY_SERVED && g_str_equal(entry->physical_id, physical_id))
			return healer_device_get_family(entry->device);
	}
	return NULL;
}

/* A USB device's ttys (the CDC-ACM port of a Particle device), read from sysfs when asked: cdc_acm
 * makes them after the device arrives, so they are not known when it is added. */
static GStrv
usb_get_ttys(HealerBackend *backend, HealerDevice *device)
{
	const char *physical_id = healer_device_get_physical_id(device);
	g_autoptr(GPtrArray) ttys = NULL;

	(void)backend;
	if (physical_id == NULL)
		return NULL;
	ttys = healer_usb_sysfs_ttys(NULL, physical_id);
	g_ptr_array_set_free_func(ttys, NULL);
	g_ptr_array_add(ttys, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&ttys), FALSE);
}

static void
healer_usb_backend_dispose(GObject *object)
{
	HealerUsbBackend *self = HEALER_USB_BACKEND(object);

	usb_stop(HEALER_BACKEND(self));
	g_clear_pointer(&self->guard, healer_port_guard_free);
	g_clear_pointer(&self->context, healer_usb_context_unref);
	G_OBJECT_CLASS(healer_usb_backend_parent_class)->dispose(object);
}

static void
healer_usb_backend_finalize(GObject *object)
{
	HealerUsbBackend *self = HEALER_USB_BACKEND(object);

	g_hash_table_unref(self->entries);
	g_ptr_array_unref(self->added_matches);
	g_array_unref(self->ignore);
	G_OBJECT_CLASS(healer_usb_backend_parent_class)->finalize(object);
}

static void
healer_usb_backend_class_init(HealerUsbBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	HealerBackendClass *backend_class = HEALER_BACKEND_CLASS(klass);

	object_class->dispose = healer_usb_backend_dispose;
	object_class->finalize = healer_usb_backend_finalize;
	backend_class->start = usb_start;
	backend_class->stop = usb_stop;
	backend_class->allow_record = usb_allow_record;
	backend_class->family_at = usb_family_at;
	backend_class->get_ttys = usb_get_ttys;
}

static void
healer_usb_backend_init(HealerUsbBackend *self)
{
	self->entries = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)entry_free);
	self->added_matches = g_ptr_array_new();
	self->ignore = g_array_new(FALSE, FALSE, sizeof(HealerUsbSelector));
}

/* [particle] install and install.PLATFORM, checked when the configuration was loaded. */
static void
apply_particle_routes(const HealerConfig *config)
{
	HealerParticleInstallRoute route;

	if (healer_particle_install_route_from_string(config->particle_install, &route))
		healer_particle_device_set_install_route(0, route);
	for (guint i = 0; config->particle_install_platforms != NULL && config->particle_install_platforms[i] != NULL;
	     i++) {
		g_auto(GStrv) pair = g_strsplit(config->particle_install_platforms[i], "=", 2);
		const HealerPlatform *platform = pair[0] != NULL ? healer_platform_lookup_name(pair[0]) : NULL;
		if (platform != NULL && pair[1] != NULL && healer_particle_install_route_from_string(pair[1], &route))
			healer_particle_device_set_install_route(platform->id, route);
	}
}

HealerUsbBackend *
healer_usb_backend_new(HealerConfig *config, HealerUsbContextFlags flags, GError **error)
{
	g_autoptr(HealerUsbContext) context = healer_usb_context_new(flags, error);
	HealerUsbBackend *self;

	if (context == NULL)
		return NULL;
	self = g_object_new(HEALER_TYPE_USB_BACKEND, "name", "usb", NULL);
	self->config = config;
	self->context = g_steal_pointer(&context);
	self->guard = healer_port_guard_new(config->device_ids_per_minute, on_port_unignored, self);
	apply_particle_routes(config);
	for (guint i = 0; config->usb_ignore != NULL && config->usb_ignore[i] != NULL; i++) {
		HealerUsbSelector selector;
		/* Checked when the configuration was loaded. */
		if (healer_usb_selector_parse(config->usb_ignore[i], &selector, NULL))
			g_array_append_val(self->ignore, selector);
	}
	return self;
}

void
healer_usb_backend_add_match(HealerUsbBackend *self, const HealerUsbMatch *match)
{
	g_return_if_fail(HEALER_IS_USB_BACKEND(self));
	g_ptr_array_add(self->added_matches, (gpointer)match);
}

HealerUsbContext *
healer_usb_backend_get_context(HealerUsbBackend *self)
{
	g_return_val_if_fail(HEALER_IS_USB_BACKEND(self), NULL);
	return self->context;
}
