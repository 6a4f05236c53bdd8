#include "usb-context.h"

#include <gio/gio.h>
#include <poll.h>
#include <string.h>

#include "healer-error.h"

/* Device nodes come in bursts (a hub and its devices): the fallback lists devices once they settle. */
#define SETTLE_MS 50

/* Where usbfs device nodes live: /dev/bus/usb/BBB/DDD. */
#define USBFS_DIR "/dev/bus/usb"

typedef struct {
	libusb_device *device; /* a reference */
	gboolean arrived;
} PendingEvent;

typedef struct {
	GSource source;
	HealerUsbContext *usb; /* not a reference: the context destroys its source before it goes */
} UsbSource;

struct _HealerUsbContext {
	gatomicrefcount ref;
	libusb_context *ctx;
	GSource *source;          /* libusb's file descriptors, and its timer where it needs one */
	GHashTable *fds;          /* fd -> the source's tag for it */
	gboolean timeouts_on_fds; /* libusb_pollfds_handle_timeouts(): no timer needed */
	gboolean hotplug;         /* libusb's hotplug (else the /dev/bus/usb fallback) */

	/* Watching. */
	HealerUsbDeviceFunc func; /* NULL: nobody watches */
	gpointer user_data;
	gboolean hotplug_registered;
	libusb_hotplug_callback_handle hotplug_handle;
	GQueue pending;      /* PendingEvent*: queued by libusb's callbacks, handed on after libusb returns */
	gboolean delivering; /* deliver_pending() is running (a watcher's call may make libusb run callbacks) */
	GHashTable *known;   /* libusb_device* (a reference) -> itself: reported arrived, not yet left */

	/* The fallback. */
	GHashTable *monitors; /* directory path -> GFileMonitor* */
	guint settle_source;
};

/* ---- libusb's log ------------------------------------------------------- */

static void LIBUSB_CALL
on_libusb_log(libusb_context *ctx, enum libusb_log_level level, const char *text)
{
	gsize len = strlen(text);

	(void)ctx;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	/* Its warnings are about devices healerd may not even serve: worth a record, not a warning. */
	if (level == LIBUSB_LOG_LEVEL_ERROR || level == LIBUSB_LOG_LEVEL_WARNING)
		g_info("%.*s", (int)len, text);
	else
		g_debug("%.*s", (int)len, text);
}

/* ---- the source --------------------------------------------------------- */

/* Milliseconds until libusb must be called for a timeout (0: now), or -1: none pending or none needed. */
static gint
next_timeout_ms(HealerUsbContext *self)
{
	struct timeval tv;
	gint64 ms;

	if (self->timeouts_on_fds || libusb_get_next_timeout(self->ctx, &tv) != 1)
		return -1;
	/* Rounded up: woken a little late rather than early and again. */
	ms = (gint64)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
	return (gint)MIN(ms, (gint64)G_MAXINT);
}

static gboolean
usb_source_prepare(GSource *source, gint *timeout)
{
	HealerUsbContext *self = ((UsbSource *)source)->usb;

	*timeout = next_timeout_ms(self);
	return *timeout == 0;
}

static gboolean
usb_source_check(GSource *source)
{
	HealerUsbContext *self = ((UsbSource *)source)->usb;
	GHashTableIter iter;
	gpointer tag;

	g_hash_table_iter_init(&iter, self->fds);
	while (g_hash_table_iter_next(&iter, NULL, &tag)) {
		if (g_source_query_unix_fd(source, tag) != 0)
			return TRUE;
	}
	return next_timeout_ms(self) == 0;
}

static void deliver_pending(HealerUsbContext *self);

static gboolean
usb_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
	HealerUsbContext *self = ((UsbSource *)source)->usb;
	struct timeval zero = {0, 0};
	int r;

	(void)callback;
	(void)user_data;
	healer_usb_context_ref(self);
	/* Transfers complete and their callbacks run here; hotplug callbacks queue their devices. */
	r = libusb_handle_events_timeout_completed(self->ctx, &zero, NULL);
	if (r < 0 && r != LIBUSB_ERROR_INTERRUPTED)
		g_debug("libusb_handle_events: %s", libusb_strerror(r));
	deliver_pending(self);
	healer_usb_context_unref(self);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs usb_source_funcs = {
        .prepare = usb_source_prepare,
        .check = usb_source_check,
        .dispatch = usb_source_dispatch,
};

static GIOCondition
poll_to_condition(short events)
{
	GIOCondition condition = 0;

	if (events & POLLIN)
		condition |= G_IO_IN;
	if (events & POLLOUT)
		condition |= G_IO_OUT;
	if (events & POLLPRI)
		condition |= G_IO_PRI;
	/* Errors and hang-ups are always reported: a device that went away shows as one. */
	return condition | G_IO_ERR | G_IO_HUP;
}

static void
add_fd(HealerUsbContext *self, int fd, short events)
{
	gpointer old = g_hash_table_lookup(self->fds, GINT_TO_POINTER(fd));

	if (old != NULL)
		g_source_remove_unix_fd(self->source, old);
	g_hash_table_replace(self->fds, GINT_TO_POINTER(fd),
	                     g_source_add_unix_fd(self->source, fd, poll_to_condition(events)));
}

/* libusb opened a device (its usbfs node) or made an internal descriptor: polled from now on. */
static void LIBUSB_CALL
on_pollfd_added(int fd, short events, void *user_data)
{
	add_fd(user_data, fd, events);
}

/* libusb closed one (a device closed, or gone): no longer polled. */
static void LIBUSB_CALL
on_pollfd_removed(int fd, void *user_data)
{
	HealerUsbContext *self = user_data;
	gpointer tag = g_hash_table_lookup(self->fds, GINT_TO_POINTER(fd));

	if (tag == NULL)
		return;
	g_source_remove_unix_fd(self->source, tag);
	g_hash_table_remove(self->fds, GINT_TO_POINTER(fd));
}

/* ---- arrivals and departures -------------------------------------------- */

static void
pending_event_free(PendingEvent *event)
{
	libusb_unref_device(event->device);
	g_free(event);
}

/* One report per device and direction: libusb may report an arrival twice (at registration and from its thread). */
static void
report(HealerUsbContext *self, libusb_device *device, gboolean arrived)
{
	if (self->func == NULL)
		return;
	if (arrived) {
		if (g_hash_table_contains(self->known, device))
			return;
		libusb_ref_device(device);
		g_hash_table_add(self->known, device);
		self->func(self, device, TRUE, self->user_data);
	} else {
		if (!g_hash_table_contains(self->known, device))
			return;
		/* Forgotten first, so a watcher's call that runs libusb's callbacks sees the table as it is. */
		g_hash_table_steal(self->known, device);
		self->func(self, device, FALSE, self->user_data);
		libusb_unref_device(device);
	}
}

/*
 * Hands on what libusb's callbacks queued, now that libusb has returned; in order, including what
 * a watcher's call makes libusb queue meanwhile.
 */
static void
deliver_pending(HealerUsbContext *self)
{
	PendingEvent *event;

	if (self->delivering)
		return;
	self->delivering = TRUE;
	while ((event = g_queue_pop_head(&self->pending)) != NULL) {
		report(self, event->device, event->arrived);
		pending_event_free(event);
	}
	self->delivering = FALSE;
}

/* Runs inside libusb (registration, or libusb_handle_events()): queue only, no request from here. */
static int LIBUSB_CALL
on_hotplug(libusb_context *ctx, libusb_device *device, libusb_hotplug_event event, void *user_data)
{
	HealerUsbContext *self = user_data;
	PendingEvent *pending = g_new0(PendingEvent, 1);

	(void)ctx;
	pending->device = libusb_ref_device(device);
	pending->arrived = event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
	g_queue_push_tail(&self->pending, pending);
	return 0; /* stay registered */
}

void
healer_usb_context_rescan(HealerUsbContext *self)
{
	libusb_device **list = NULL;
	ssize_t n;
	g_autoptr(GHashTable) present = g_hash_table_new(NULL, NULL);
	g_autoptr(GPtrArray) gone = g_ptr_array_new();
	GHashTableIter iter;
	gpointer key;

	if (self->func == NULL)
		return;
	n = libusb_get_device_list(self->ctx, &list);
	if (n < 0) {
		g_info("USB: cannot list devices: %s", libusb_strerror((int)n));
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		g_hash_table_add(present, list[i]);
	g_hash_table_iter_init(&iter, self->known);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		if (!g_hash_table_contains(present, key))
			g_ptr_array_add(gone, key);
	}
	for (guint i = 0; i < gone->len; i++)
		report(self, g_ptr_array_index(gone, i), FALSE);
	for (ssize_t i = 0; i < n && self->func != NULL; i++)
		report(self, list[i], TRUE);
	libusb_free_device_list(list, 1);
}

/* ---- the fallback: /dev/bus/usb ----------------------------------------- */

static void watch_directory(HealerUsbContext *self, const char *path);

static gboolean
on_settled(gpointer user_data)
{
	HealerUsbContext *self = user_data;

	self->settle_source = 0;
	healer_usb_context_rescan(self);
	return G_SOURCE_REMOVE;
}

static void
on_directory_changed(GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event, gpointer user_data)
{
	HealerUsbContext *self = user_data;

	(void)monitor;
	(void)other;
	/* A new bus directory (a host controller bound): its device nodes are watched too. */
	if (event == G_FILE_MONITOR_EVENT_CREATED &&
	    g_file_query_file_type(file, G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL) == G_FILE_TYPE_DIRECTORY) {
		g_autofree char *path = g_file_get_path(file);
		watch_directory(self, path);
	}
	if (event != G_FILE_MONITOR_EVENT_CREATED && event != G_FILE_MONITOR_EVENT_DELETED &&
	    event != G_FILE_MONITOR_EVENT_MOVED_IN && event != G_FILE_MONITOR_EVENT_MOVED_OUT)
		return;
	if (self->settle_source != 0)
		g_source_remove(self->settle_source);
	self->settle_source = g_timeout_add(SETTLE_MS, on_settled, self);
}

static void
watch_directory(HealerUsbContext *self, const char *path)
{
	g_autoptr(GFile) dir = g_file_new_for_path(path);
	g_autoptr(GError) error = NULL;
	GFileMonitor *monitor;

	if (g_hash_table_contains(self->monitors, path))
		return;
	monitor = g_file_monitor_directory(dir, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
	if (monitor == NULL) {
		g_info("USB: cannot watch %s (devices plugged in later are not seen): %s", path, error->message);
		return;
	}
	g_signal_connect(monitor, "changed", G_CALLBACK(on_directory_changed), self);
	g_hash_table_insert(self->monitors, g_strdup(path), monitor);
}

/* /dev/bus/usb and each bus directory in it; only existing ones (GLib polls for missing paths). */
static void
watch_usbfs(HealerUsbContext *self)
{
	g_autoptr(GDir) dir = g_dir_open(USBFS_DIR, 0, NULL);
	const char *name;

	if (dir == NULL) {
		g_info("USB: %s does not exist: no USB devices now, and none plugged in later are seen (libusb has "
		       "no hotplug here)",
		       USBFS_DIR);
		return;
	}
	watch_directory(self, USBFS_DIR);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(USBFS_DIR, name, NULL);
		if (g_file_test(path, G_FILE_TEST_IS_DIR))
			watch_directory(self, path);
	}
}

/* ---- the context -------------------------------------------------------- */

HealerUsbContext *
healer_usb_context_new(HealerUsbContextFlags flags, GError **error)
{
	static gsize log_set = 0;
	HealerUsbContext *self;
	libusb_context *ctx = NULL;
	const struct libusb_pollfd **pollfds;
	int r;

	if (g_once_init_enter(&log_set)) {
		libusb_set_log_cb(NULL, on_libusb_log, LIBUSB_LOG_CB_GLOBAL);
		g_once_init_leave(&log_set, 1);
	}
	r = libusb_init(&ctx);
	if (r < 0) {
		healer_fail(error, HEALER_ERROR_FAILED, "libusb_init: %s", libusb_strerror(r));
		return NULL;
	}
	/* Warnings and errors only, unless LIBUSB_DEBUG asks for more (libusb then ignores this). */
	libusb_set_option(ctx, LIBUSB_OPTION_LOG_LEVEL, LIBUSB_LOG_LEVEL_WARNING);

	self = g_new0(HealerUsbContext, 1);
	g_atomic_ref_count_init(&self->ref);
	self->ctx = ctx;
	self->timeouts_on_fds = libusb_pollfds_handle_timeouts(ctx) != 0;
	self->hotplug = libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) && !(flags & HEALER_USB_CONTEXT_FLAG_NO_HOTPLUG);
	self->fds = g_hash_table_new(NULL, NULL);
	self->known = g_hash_table_new(NULL, NULL);
	self->monitors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	g_queue_init(&self->pending);

	self->source = g_source_new(&usb_source_funcs, sizeof(UsbSource));
	((UsbSource *)self->source)->usb = self;
	g_source_set_name(self->source, "libusb");
	/* Descriptors libusb made at init, then the notifiers for those to come. */
	pollfds = libusb_get_pollfds(ctx);
	for (gsize i = 0; pollfds != NULL && pollfds[i] != NULL; i++)
		add_fd(self, pollfds[i]->fd, pollfds[i]->events);
	libusb_free_pollfds(pollfds);
	libusb_set_pollfd_notifiers(ctx, on_pollfd_added, on_pollfd_removed, self);
	g_source_attach(self->source, NULL);
	return self;
}

HealerUsbContext *
healer_usb_context_ref(HealerUsbContext *self)
{
	g_atomic_ref_count_inc(&self->ref);
	return self;
}

void
healer_usb_context_unref(HealerUsbContext *self)
{
	if (self == NULL || !g_atomic_ref_count_dec(&self->ref))
		return;
	healer_usb_context_unwatch(self);
	g_source_destroy(self->source);
	g_source_unref(self->source);
	/* libusb_exit() closes its own descriptors: nothing to remove from a source that is gone. */
	libusb_set_pollfd_notifiers(self->ctx, NULL, NULL, NULL);
	libusb_exit(self->ctx);
	g_hash_table_unref(self->fds);
	g_hash_table_unref(self->known);
	g_hash_table_unref(self->monitors);
	g_free(self);
}

libusb_context *
healer_usb_context_get_libusb(HealerUsbContext *self)
{
	return self->ctx;
}

gboolean
healer_usb_context_has_hotplug(HealerUsbContext *self)
{
	return self->hotplug;
}

gboolean
healer_usb_context_timeouts_on_fds(HealerUsbContext *self)
{
	return self->timeouts_on_fds;
}

gboolean
healer_usb_context_watch(HealerUsbContext *self, HealerUsbDeviceFunc func, gpointer user_data, GError **error)
{
	g_return_val_if_fail(self->func == NULL, FALSE);
	self->func = func;
	self->user_data = user_data;
	if (!self->hotplug) {
		watch_usbfs(self);
		healer_usb_context_rescan(self);
		return TRUE;
	}
	/* The devices there now arrive from inside the registration (queued), then from the source. */
	{
		int r = libusb_hotplug_register_callback(
		        self->ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
		        LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
		        LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, self, &self->hotplug_handle);
		if (r < 0) {
			g_queue_clear_full(&self->pending, (GDestroyNotify)pending_event_free);
			self->func = NULL;
			return healer_fail(error, HEALER_ERROR_FAILED, "libusb_hotplug_register_callback: %s",
			                   libusb_strerror(r));
		}
	}
	self->hotplug_registered = TRUE;
	deliver_pending(self);
	return TRUE;
}

void
healer_usb_context_unwatch(HealerUsbContext *self)
{
	GHashTableIter iter;
	gpointer key;

	if (self->hotplug_registered) {
		libusb_hotplug_deregister_callback(self->ctx, self->hotplug_handle);
		self->hotplug_registered = FALSE;
	}
	if (self->settle_source != 0) {
		g_source_remove(self->settle_source);
		self->settle_source = 0;
	}
	g_hash_table_remove_all(self->monitors);
	g_queue_clear_full(&self->pending, (GDestroyNotify)pending_event_free);
	g_hash_table_iter_init(&iter, self->known);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		libusb_unref_device(key);
		g_hash_table_iter_remove(&iter);
	}
	self->func = NULL;
	self->user_data = NULL;
}
