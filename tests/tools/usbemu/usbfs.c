/*
 * usbfs, as libusb's Linux backend uses it, on umockdev's ioctl emulation: every open file of a
 * device node is a UMockdevIoctlClient whose ioctls arrive here (on umockdev's worker thread).
 *
 * - Control transfers come as SUBMITURB (libusb never uses USBDEVFS_CONTROL while sysfs is there,
 *   but it is answered too); the device model answers at once and the URB waits in the client's
 *   queue for REAPURBNDELAY.  Every URB is completed exactly once: at once, but for one the device
 *   never answers (an RTL872x Particle's OUT request without a data stage), which waits for the
 *   host's timeout to discard it (DISCARDURB: -ENOENT) or the unplug (-ESHUTDOWN).
 * - The node is a FIFO, kept full (not writable) while no URB can be reaped and emptied (POLLOUT)
 *   while one can: libusb polls the node for POLLOUT, and a plain file would always be writable
 *   and make it spin (pitfall 6 of the umockdev spike).
 * - Interfaces are claimed per open file, as the kernel does: a second file claiming one, or
 *   sending a control request to one, gets EBUSY (after a wait, below on_retry()).
 * - Once unplugged, an instance's files get ENODEV for everything but reaping what completed.
 *
 * Files opened on other /dev nodes (a pty, /dev/null) go to the testbed's default handler,
 * which in umockdev 0.17.16 answers ENOTTY to every ioctl (pitfall 7): usbemu replaces it with
 * one that has the client run the real ioctl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "usbemu.h"

#define CLIENT_KEY     "usbemu-client"
#define USB_SPEED_FULL 2

static UsbemuClient *
client_of(UMockdevIoctlClient *client)
{
	return g_object_get_data(G_OBJECT(client), CLIENT_KEY);
}

/* Makes the node writable exactly while one of its files has a URB to reap. */
static void
update_ready(UsbemuInstance *instance)
{
	static const uint8_t page[4096];
	uint8_t drain[4096];
	bool ready = false;

	for (GList *l = instance->clients; l != NULL && !ready; l = l->next)
		ready = !g_queue_is_empty(&((UsbemuClient *)l->data)->reapable);
	if (ready == instance->fifo_ready || instance->fifo_fd < 0)
		return;
	/* The pipe is one page (bus.c): one write fills it, one read empties it. */
	if (ready) {
		while (read(instance->fifo_fd, drain, sizeof drain) > 0)
			;
	} else {
		while (write(instance->fifo_fd, page, sizeof page) > 0)
			;
	}
	instance->fifo_ready = ready;
}

static void
client_free(UsbemuClient *uc)
{
	g_queue_clear_full(&uc->reapable, g_object_unref);
	g_queue_clear_full(&uc->hung, g_object_unref);
	g_free(uc);
}

void
usbemu_instance_maybe_free(UsbemuInstance *instance)
{
	UsbemuDevice *device = instance->device;

	if (!instance->gone || instance->clients != NULL)
		return;
	device->retired = g_list_remove(device->retired, instance);
	if (instance->fifo_fd >= 0)
		close(instance->fifo_fd);
	g_free(instance->devnode);
	g_free(instance->fifo_path);
	g_free(instance);
}

static void complete_hung(UsbemuClient *uc, GList *link, int status);

void
usbemu_instance_set_unplugged(UsbemuInstance *instance)
{
	/* The device is gone: URBs it never completed end as the kernel ends them on a disconnect. */
	for (GList *l = instance->clients; l != NULL; l = l->next) {
		UsbemuClient *uc = l->data;
		while (uc->hung.head != NULL)
			complete_hung(uc, uc->hung.head, -ESHUTDOWN);
	}
	instance->plugged = false;
	memset(instance->claimed_by, 0, sizeof instance->claimed_by);
	update_ready(instance);
}

/*
 * The file was closed: umockdev read the end of its socket and let go of the client object.
 * (umockdev 0.17.16 emits neither client-vanished, pitfall 5, nor notify::connected: the
 * stream's closing notifies nothing.)  Its claims go, and URBs it never reaped.
 */
static void
client_gone(gpointer data)
{
	UsbemuClient *uc = data;
	UsbemuInstance *instance;

	g_mutex_lock(&usbemu.lock);
	instance = uc->instance;
	if (instance != NULL) {
		for (unsigned i = 0; i < USBEMU_MAX_INTERFACES; i++) {
			if (instance->claimed_by[i] == uc)
				instance->claimed_by[i] = NULL;
		}
		instance->clients = g_list_remove(instance->clients, uc);
		g_queue_clear_full(&uc->reapable, g_object_unref);
		g_queue_clear_full(&uc->hung, g_object_unref);
		update_ready(instance);
		usbemu_instance_maybe_free(instance);
	}
	g_mutex_unlock(&usbemu.lock);
	client_free(uc);
}

/* A file opened on the node. */
static void
on_client_connected(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user_data)
{
	UsbemuDevice *device = user_data;
	const char *devnode = umockdev_ioctl_client_get_devnode(client);
	UsbemuClient *uc = g_new0(UsbemuClient, 1);

	(void)base;
	g_queue_init(&uc->reapable);
	g_queue_init(&uc->hung);
	g_mutex_lock(&usbemu.lock);
	/* A file opened just before an unplug finds the device gone. */
	if (device->current != NULL && g_strcmp0(device->current->devnode, devnode) == 0) {
		uc->instance = device->current;
		device->current->clients = g_list_prepend(device->current->clients, uc);
	}
	g_mutex_unlock(&usbemu.lock);
	g_object_set_data_full(G_OBJECT(client), CLIENT_KEY, uc, client_gone);
}

static bool
client_alive(const UsbemuClient *uc)
{
	return uc != NULL && uc->instance != NULL && uc->instance->plugged && !usbemu.closing;
}

/* The kernel's claim rule: an interface belongs to the first file that claims (or uses) it. */
static int
claim(UsbemuClient *uc, unsigned interface)
{
	UsbemuInstance *instance = uc->instance;

	if (interface >= instance->device->identity.n_interfaces)
		return ENOENT;
	if (instance->claimed_by[interface] != NULL && instance->claimed_by[interface] != uc)
		return EBUSY;
	instance->claimed_by[interface] = uc;
	return 0;
}

static int
resolve_u32(UMockdevIoctlData *arg, uint32_t *value)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(UMockdevIoctlData) data = umockdev_ioctl_data_resolve(arg, 0, sizeof(uint32_t), &error);

	if (data == NULL)
		return EFAULT;
	memcpy(value, data->data, sizeof *value);
	return 0;
}

static int
submit_urb(UsbemuClient *uc, UMockdevIoctlData *arg)
{
	UsbemuDevice *device = uc->instance->device;
	g_autoptr(GError) error = NULL;
	g_autoptr(UMockdevIoctlData) urb_data =
	        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), &error);
	g_autoptr(UMockdevIoctlData) buffer = NULL;
	struct usbdevfs_urb *urb;
	uint8_t *setup;
	uint16_t length;
	int r;

	if (urb_data == NULL)
		return EFAULT;
	urb = (struct usbdevfs_urb *)urb_data->data;
	/* Only endpoint 0 exists for transfers: bulk and interrupt endpoints are not emulated. */
	if (urb->type != USBDEVFS_URB_TYPE_CONTROL)
		return ENOENT;
	if (urb->buffer_length < 8)
		return EINVAL;
	buffer = umockdev_ioctl_data_resolve(urb_data, offsetof(struct usbdevfs_urb, buffer), (gsize)urb->buffer_length,
	                                     &error);
	if (buffer == NULL)
		return EFAULT;
	setup = buffer->data;
	length = (uint16_t)(setup[6] | setup[7] << 8);
	if (8 + length > urb->buffer_length)
		return EINVAL;
	/* A request to an interface uses it: the kernel claims it for this file, or refuses. */
	if ((setup[0] & 0x1f) == 1 && setup[4] < device->identity.n_interfaces) {
		int e = claim(uc, setup[4]);
		if (e != 0)
			return e;
	}
	r = usbemu_control(device, setup, setup + 8);
	if (r == USBEMU_CONTROL_HANG) {
		/* Submitted, never completed: the host's timeout discards it (DISCARDURB). */
		g_queue_push_tail(&uc->hung, g_steal_pointer(&urb_data));
		return 0;
	}
	urb->status = r < 0 ? r : 0;
	urb->actual_length = r < 0 ? 0 : r; /* the data stage only, as the kernel counts it */
	g_queue_push_tail(&uc->reapable, g_steal_pointer(&urb_data));
	update_ready(uc->instance);
	return 0;
}

static void
reap_urb(UsbemuClient *uc, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(UMockdevIoctlData) urb_data = uc != NULL ? g_queue_pop_head(&uc->reapable) : NULL;
	g_autoptr(UMockdevIoctlData) pointer = NULL;

	if (urb_data == NULL) {
		umockdev_ioctl_client_complete(client, -1, client_alive(uc) ? EAGAIN : ENODEV);
		return;
	}
	if (uc->instance != NULL)
		update_ready(uc->instance);
	/* The argument is where the client wants the URB's address: point it at its own URB, whose
	 * status, length and data go back with it. */
	pointer = umockdev_ioctl_data_resolve(arg, 0, sizeof(void *), &error);
	if (pointer == NULL) {
		umockdev_ioctl_client_complete(client, -1, EFAULT);
		return;
	}
	umockdev_ioctl_data_set_ptr(pointer, 0, urb_data);
	umockdev_ioctl_client_complete(client, 0, 0);
}

static int
control_transfer(UsbemuClient *uc, UMockdevIoctlData *arg, long *result)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(UMockdevIoctlData) transfer =
	        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_ctrltransfer), &error);
	g_autoptr(UMockdevIoctlData) data = NULL;
	struct usbdevfs_ctrltransfer *c;
	uint8_t setup[8 + 4096];
	int r;

	if (transfer == NULL)
		return EFAULT;
	c = (struct usbdevfs_ctrltransfer *)transfer->data;
	if (c->wLength > 4096)
		return EINVAL;
	setup[0] = c->bRequestType;
	setup[1] = c->bRequest;
	setup[2] = c->wValue & 0xff;
	setup[3] = c->wValue >> 8;
	setup[4] = c->wIndex & 0xff;
	setup[5] = c->wIndex >> 8;
	setup[6] = c->wLength & 0xff;
	setup[7] = c->wLength >> 8;
	if (c->wLength > 0) {
		data = umockdev_ioctl_data_resolve(transfer, offsetof(struct usbdevfs_ctrltransfer, data), c->wLength,
		                                   &error);
		if (data == NULL)
			return EFAULT;
		memcpy(setup + 8, data->data, c->wLength);
	}
	if ((setup[0] & 0x1f) == 1 && setup[4] < uc->instance->device->identity.n_interfaces) {
		int e = claim(uc, setup[4]);
		if (e != 0)
			return e;
	}
	r = usbemu_control(uc->instance->device, setup, setup + 8);
	/* The kernel waits for the timeout and gives up; this thread cannot wait: at once. */
	if (r == USBEMU_CONTROL_HANG)
		return ETIMEDOUT;
	if (r < 0)
		return -r;
	if (data != NULL && (setup[0] & 0x80))
		memcpy(data->data, setup + 8, (size_t)r);
	*result = r;
	return 0;
}

static int
set_interface(UsbemuClient *uc, UMockdevIoctlData *arg)
{
	UsbemuDevice *device = uc->instance->device;
	g_autoptr(GError) error = NULL;
	g_autoptr(UMockdevIoctlData) data =
	        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_setinterface), &error);
	struct usbdevfs_setinterface *set;
	int e;

	if (data == NULL)
		return EFAULT;
	set = (struct usbdevfs_setinterface *)data->data;
	if ((e = claim(uc, set->interface)) != 0)
		return e;
	if (set->altsetting >= device->identity.alternate_settings[set->interface])
		return EINVAL;
	if (device->mode == USBEMU_MODE_DFU) {
		device->alternate = (uint8_t)set->altsetting;
		usbemu_trace("%s event alternate=%u", device->label, set->altsetting);
	}
	return 0;
}

/* Completes a hung URB with `status`, to be reaped. */
static void
complete_hung(UsbemuClient *uc, GList *link, int status)
{
	UMockdevIoctlData *urb_data = link->data;
	struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;

	urb->status = status;
	urb->actual_length = 0;
	g_queue_unlink(&uc->hung, link);
	g_queue_push_tail_link(&uc->reapable, link);
}

static int
discard_urb(UsbemuClient *uc, UMockdevIoctlData *arg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(UMockdevIoctlData) target = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), &error);

	if (target == NULL)
		return EFAULT;
	for (GList *l = uc->hung.head; l != NULL; l = l->next) {
		if (((UMockdevIoctlData *)l->data)->client_addr == target->client_addr) {
			/* As the kernel: the discarded URB completes with -ENOENT. */
			complete_hung(uc, l, -ENOENT);
			update_ready(uc->instance);
			return 0;
		}
	}
	return EINVAL;
}

/* One usbfs ioctl of a live file; returns an errno (0: success, *result the return value). */
static int
usbfs_ioctl(UsbemuClient *uc, UMockdevIoctlClient *client, gulong request, UMockdevIoctlData *arg, long *result)
{
	UsbemuInstance *instance = uc->instance;
	uint32_t value;
	int e;

	*result = 0;
	switch (request) {
	case USBDEVFS_GET_CAPABILITIES: {
		g_autoptr(GError) error = NULL;
		g_autoptr(UMockdevIoctlData) data = umockdev_ioctl_data_resolve(arg, 0, sizeof(uint32_t), &error);
		uint32_t caps = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
		                USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_REAP_AFTER_DISCONNECT;
		if (data == NULL)
			return EFAULT;
		memcpy(data->data, &caps, sizeof caps);
		return 0;
	}
	case USBDEVFS_CLAIMINTERFACE:
		return (e = resolve_u32(arg, &value)) != 0 ? e : claim(uc, value);
	case USBDEVFS_DISCONNECT_CLAIM: {
		g_autoptr(GError) error = NULL;
		g_autoptr(UMockdevIoctlData) data =
		        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_disconnect_claim), &error);
		if (data == NULL)
			return EFAULT;
		return claim(uc, ((struct usbdevfs_disconnect_claim *)data->data)->interface);
	}
	case USBDEVFS_RELEASEINTERFACE:
		if ((e = resolve_u32(arg, &value)) != 0)
			return e;
		if (value >= USBEMU_MAX_INTERFACES || instance->claimed_by[value] != uc)
			return EINVAL;
		instance->claimed_by[value] = NULL;
		return 0;
	case USBDEVFS_SETINTERFACE:
		return set_interface(uc, arg);
	case USBDEVFS_SETCONFIGURATION:
		if ((e = resolve_u32(arg, &value)) != 0)
			return e;
		return value <= 1 ? 0 : EINVAL;
	case USBDEVFS_CLEAR_HALT:
	case USBDEVFS_RESETEP:
		return 0;
	case USBDEVFS_RESET:
		/* A bus reset: a device waiting for one after manifestation resets now. */
		if (instance->device->mode == USBEMU_MODE_DFU &&
		    instance->device->state == DFU_STATE_MANIFEST_WAIT_RESET)
			usbemu_bus_schedule_reset(instance->device, instance->device->next_mode, 0);
		else if (instance->device->mode == USBEMU_MODE_DFU)
			usbemu_dfu_reset_state(instance->device);
		return 0;
	case USBDEVFS_GETDRIVER:
	case USBDEVFS_IOCTL:
		return ENODATA; /* no kernel driver is bound to any interface */
	case USBDEVFS_GET_SPEED:
		*result = USB_SPEED_FULL;
		return 0;
	case USBDEVFS_CONNECTINFO: {
		g_autoptr(GError) error = NULL;
		g_autoptr(UMockdevIoctlData) data =
		        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_connectinfo), &error);
		struct usbdevfs_connectinfo info = {.devnum = instance->devnum, .slow = 0};
		if (data == NULL)
			return EFAULT;
		memcpy(data->data, &info, sizeof info);
		return 0;
	}
	case USBDEVFS_CONTROL:
		return control_transfer(uc, arg, result);
	case USBDEVFS_SUBMITURB:
		return submit_urb(uc, arg);
	case USBDEVFS_DISCARDURB:
		/* Only a URB the device never completed is left to discard: the rest completed at once. */
		return discard_urb(uc, arg);
	default:
		(void)client;
		return ENOTTY;
	}
}

/*
 * An ioctl that found its interface claimed by another file waits a while before it gets EBUSY:
 * a file closed in one process is only let go of when umockdev's worker reads the end of its
 * socket, where the kernel releases it in close() itself, and a program started after another
 * ended must not see that one's claims.  Retried from the main loop.
 */
#define CLAIM_WAIT_US  (2 * G_USEC_PER_SEC)
#define CLAIM_RETRY_MS 5

typedef struct {
	UMockdevIoctlClient *client;
	int64_t since;
} Waiting;

static GQueue waiting = G_QUEUE_INIT;
static guint retry_source;

/* Carries out one ioctl; false if it must wait for a claim. */
static bool
handle(UMockdevIoctlClient *client, int64_t since)
{
	gulong request = umockdev_ioctl_client_get_request(client);
	UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
	UsbemuClient *uc = client_of(client);
	long result = 0;
	int e;

	if (request == USBDEVFS_REAPURBNDELAY || request == USBDEVFS_REAPURB) {
		/* REAPURB would block; libusb never uses it, and waiting is not possible here. */
		reap_urb(uc, client, arg);
		return true;
	}
	if (!client_alive(uc)) {
		umockdev_ioctl_client_complete(client, -1, ENODEV);
		return true;
	}
	e = usbfs_ioctl(uc, client, request, arg, &result);
	if (e == EBUSY && usbemu_now_us() - since < CLAIM_WAIT_US)
		return false;
	if (e == EBUSY)
		usbemu_trace("%s event busy: an interface is claimed by another open file (%s)",
		             uc->instance->device->label, uc->instance->devnode);
	umockdev_ioctl_client_complete(client, e == 0 ? result : -1, e);
	return true;
}

static gboolean
on_retry(gpointer user_data)
{
	GQueue done = G_QUEUE_INIT;
	Waiting *w;

	(void)user_data;
	g_mutex_lock(&usbemu.lock);
	for (GList *l = waiting.head; l != NULL;) {
		GList *next = l->next;
		w = l->data;
		if (handle(w->client, w->since)) {
			g_queue_unlink(&waiting, l);
			g_queue_push_tail_link(&done, l);
		}
		l = next;
	}
	if (g_queue_is_empty(&waiting))
		retry_source = 0;
	g_mutex_unlock(&usbemu.lock);
	/* Outside the lock: the last reference may finalize the client (client_gone). */
	while ((w = g_queue_pop_head(&done)) != NULL) {
		g_object_unref(w->client);
		g_free(w);
	}
	return retry_source != 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static gboolean
on_handle_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user_data)
{
	(void)base;
	(void)user_data;
	g_mutex_lock(&usbemu.lock);
	if (!handle(client, usbemu_now_us())) {
		Waiting *w = g_new(Waiting, 1);

		w->client = g_object_ref(client);
		w->since = usbemu_now_us();
		g_queue_push_tail(&waiting, w);
		if (retry_source == 0)
			retry_source = g_timeout_add(CLAIM_RETRY_MS, on_retry, NULL);
	}
	g_mutex_unlock(&usbemu.lock);
	return TRUE;
}

/* usbfs' read() gives the descriptors; nothing uses it while sysfs has them: refused. */
static gboolean
on_handle_read_write(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user_data)
{
	(void)base;
	(void)user_data;
	umockdev_ioctl_client_complete(client, -1, EINVAL);
	return TRUE;
}

UMockdevIoctlBase *
usbemu_usbfs_handler_new(UsbemuDevice *device)
{
	UMockdevIoctlBase *handler = g_object_new(UMOCKDEV_TYPE_IOCTL_BASE, NULL);

	g_signal_connect(handler, "handle-ioctl", G_CALLBACK(on_handle_ioctl), device);
	g_signal_connect(handler, "handle-read", G_CALLBACK(on_handle_read_write), device);
	g_signal_connect(handler, "handle-write", G_CALLBACK(on_handle_read_write), device);
	g_signal_connect(handler, "client-connected", G_CALLBACK(on_client_connected), device);
	return handler;
}

/* Pitfall 7: the client runs the ioctl on the real file itself. */
static gboolean
on_passthrough_ioctl(UMockdevIoctlBase *base, UMockdevIoctlClient *client, gpointer user_data)
{
	g_autoptr(GError) error = NULL;
	int client_errno = 0;
	int r;

	(void)base;
	(void)user_data;
	r = umockdev_ioctl_client_execute(client, &client_errno, &error);
	if (error != NULL)
		umockdev_ioctl_client_complete(client, -1, EIO);
	else
		umockdev_ioctl_client_complete(client, r, r < 0 ? client_errno : 0);
	return TRUE;
}

bool
usbemu_usbfs_install_passthrough(GError **error)
{
	g_autofree char *socket_path = g_build_filename(usbemu.root_dir, "ioctl", "_default", NULL);
	UMockdevIoctlBase *handler;

	/* The testbed listens there already; a new socket at the path takes the new connections. */
	if (unlink(socket_path) != 0 && errno != ENOENT) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s", socket_path, g_strerror(saved));
		return false;
	}
	handler = g_object_new(UMOCKDEV_TYPE_IOCTL_BASE, NULL);
	g_signal_connect(handler, "handle-ioctl", G_CALLBACK(on_passthrough_ioctl), NULL);
	if (!umockdev_testbed_attach_ioctl(usbemu.testbed, "_default", handler, error)) {
		g_object_unref(handler);
		return false;
	}
	g_object_unref(handler); /* the testbed holds it */
	return true;
}
