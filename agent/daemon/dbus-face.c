#include "dbus-face.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <grp.h>
#include <json-c/json.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json-autoptr.h"

#include "caller-file.h"
#include "device-json.h"
#include "events.h"
#include "healer-dbus.h"
#include "healer-error.h"
#include "module-names.h"
#include "upstream.h"

#define BUS_NAME         "io.healerd.Healer1"
#define ROOT_PATH        "/io/healerd/Healer1"
#define PRIVILEGED_GROUP "healer"

struct _HealerDBusFace {
	HealerEngine *engine;
	HealerStore *store;
	HealerSupply *supply;
	HealerUpstream *upstream; /* NULL: no [upstream] url */
	GMainLoop *loop;
	guint owner_id;
	gboolean lost_name;
	GDBusConnection *connection;
	GDBusObjectManagerServer *manager;
	HealerDBusHealer1 *healer;
	GHashTable *objects; /* device id -> HealerDBusObjectSkeleton* */
	guint subscription;  /* to healer_events() */
};

/* ---- who may change things ---------------------------------------------- */

/* `fd`: a file descriptor that came with the call (ImportFd), owned by the function; -1 otherwise. */
typedef void (*AuthorizedFunc)(HealerDBusFace *face, GDBusMethodInvocation *invocation, const char *arg, int fd);

typedef struct {
	HealerDBusFace *face;
	GDBusMethodInvocation *invocation;
	AuthorizedFunc func;
	char *arg;
	int fd;
} AuthRequest;

static gboolean
uid_is_privileged(uid_t uid)
{
	struct passwd *pw;
	struct group *gr;
	gid_t groups[256];
	int n = G_N_ELEMENTS(groups);

	/* root, and the user healerd runs as (its own service user, or the developer on a session bus). */
	if (uid == 0 || uid == getuid())
		return TRUE;
	pw = getpwuid(uid);
	gr = getgrnam(PRIVILEGED_GROUP);
	if (pw == NULL || gr == NULL || getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return FALSE;
	for (int i = 0; i < n; i++) {
		if (groups[i] == gr->gr_gid)
			return TRUE;
	}
	return FALSE;
}

/*
 * Whether healerd may read a path for this caller with its own rights: root reads everything
 * anyway, and healerd's own user reads what healerd does.  Everyone else passes descriptors it
 * opened itself (docs/dbus-api.md, "What healerd reads for a caller").
 */
#define CALLER_READS_ALL "healer-caller-reads-all"

static gboolean
caller_reads_all(uid_t uid)
{
	return uid == 0 || uid == getuid();
}

static gboolean
invocation_reads_all(GDBusMethodInvocation *invocation)
{
	return GPOINTER_TO_INT(g_object_get_data(G_OBJECT(invocation), CALLER_READS_ALL));
}

static void
on_caller_uid(GObject *source, GAsyncResult *result, gpointer user_data)
{
	AuthRequest *req = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	guint32 uid = G_MAXUINT32;

	if (reply != NULL)
		g_variant_get(reply, "(u)", &uid);
	if (reply != NULL && uid_is_privileged(uid)) {
		g_object_set_data(G_OBJECT(req->invocation), CALLER_READS_ALL, GINT_TO_POINTER(caller_reads_all(uid)));
		req->func(req->face, req->invocation, req->arg, req->fd);
		req->fd = -1; /* the function owns it now */
	} else
		/* Named, so a caller (and a test on a permissive bus) sees which call healerd itself refused. */
		g_dbus_method_invocation_return_error(req->invocation, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED,
		                                      "only root and members of group '%s' may call %s",
		                                      PRIVILEGED_GROUP,
		                                      g_dbus_method_invocation_get_method_name(req->invocation));
	if (req->fd >= 0)
		close(req->fd);
	g_object_unref(req->invocation);
	g_free(req->arg);
	g_free(req);
}

/* The bus policy already limits these calls; the daemon checks the caller again itself. */
static void
authorize_with_fd(HealerDBusFace *self, GDBusMethodInvocation *invocation, AuthorizedFunc func, const char *arg, int fd)
{
	AuthRequest *req = g_new0(AuthRequest, 1);

	req->fd = fd;
	req->face = self;
	req->invocation = g_object_ref(invocation);
	req->func = func;
	req->arg = g_strdup(arg);
	g_dbus_connection_call(self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
	                       "org.freedesktop.DBus", "GetConnectionUnixUser",
	                       g_variant_new("(s)", g_dbus_method_invocation_get_sender(invocation)),
	                       G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_caller_uid, req);
}

static void
authorize(HealerDBusFace *self, GDBusMethodInvocation *invocation, AuthorizedFunc func, const char *arg)
{
	authorize_with_fd(self, invocation, func, arg, -1);
}

/* ---- devices --------------------------------------------------------------- */

static char *
object_path(const char *device_id)
{
	return g_strdup_printf(ROOT_PATH "/devices/%s", device_id);
}

static const char *
device_id_of(GDBusMethodInvocation *invocation)
{
	const char *path = g_dbus_method_invocation_get_object_path(invocation);
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void
update_device(HealerDBusFace *self, HealerDBusHealer1Device *iface, const HealerDeviceInfo *info)
{
	healer_dbus_healer1_device_set_id(iface, info->id);
	healer_dbus_healer1_device_set_port(iface, info->port);
	healer_dbus_healer1_device_set_transport(iface, info->transport);
	healer_dbus_healer1_device_set_platform_id(iface, info->platform_id);
	healer_dbus_healer1_device_set_platform_name(iface, info->platform_name);
	healer_dbus_healer1_device_set_mode(iface, info->mode);
	healer_dbus_healer1_device_set_led(iface, info->led);
	healer_dbus_healer1_device_set_state(iface, info->state);
	healer_dbus_healer1_device_set_safe_mode_reason(iface, info->safe_mode_reason);
	healer_dbus_healer1_device_set_modules(iface, info->modules_json);
	healer_dbus_healer1_device_set_progress(iface, info->progress);
	healer_dbus_healer1_device_set_current_step(iface, info->current_step);
	healer_dbus_healer1_device_set_last_error(iface, info->last_error);
	healer_dbus_healer1_device_set_last_heal(iface, info->last_heal);
	(void)self;
}

static void
update_manager(HealerDBusFace *self)
{
	g_autoptr(GPtrArray) devices = NULL;

	if (self->healer == NULL)
		return; /* no bus yet */
	devices = healer_engine_list_devices(self->engine);
	healer_dbus_healer1_set_devices(self->healer, devices->len);
	healer_dbus_healer1_set_healing(self->healer, healer_engine_count_healing(self->engine));
	healer_dbus_healer1_set_store_modules(self->healer, healer_store_get_n_entries(self->store));
	{
		g_autoptr(json_object) sources = healer_supply_sources_to_json(self->supply);
		const char *text = json_object_to_json_string_ext(sources, JSON_C_TO_STRING_PLAIN |
		                                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
		/* Set only when it changed: every set emits PropertiesChanged. */
		if (g_strcmp0(healer_dbus_healer1_get_sources(self->healer), text) != 0)
			healer_dbus_healer1_set_sources(self->healer, text);
	}
}

static void
heal_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *arg, int fd)
{
	(void)fd;
	g_autoptr(GError) error = NULL;

	(void)arg;
	if (!healer_engine_heal(self->engine, device_id_of(invocation), &error))
		g_dbus_method_invocation_return_gerror(invocation, error);
	else
		g_dbus_method_invocation_return_value(invocation, NULL);
}

typedef struct {
	HealerDBusFace *face;
	GDBusMethodInvocation *invocation;
	int fd;
	char *name; /* escaped */
} FlashCall;

static void
on_app_read(GObject *source, GAsyncResult *result, gpointer user_data)
{
	FlashCall *call = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = healer_fd_read_all_finish(result, &error);

	(void)source;
	if (bytes == NULL || !healer_engine_flash_app_bytes(call->face->engine, device_id_of(call->invocation), bytes,
	                                                    call->name, NULL, NULL, &error))
		g_dbus_method_invocation_return_gerror(call->invocation, error);
	else
		g_dbus_method_invocation_return_value(call->invocation, NULL);
	close(call->fd);
	g_free(call->name);
	g_free(call);
}

/* The application file is read in a worker (it may be large, on slow storage), then flashed. */
static void
flash_from_fd(HealerDBusFace *self, GDBusMethodInvocation *invocation, int fd, char *name)
{
	FlashCall *call = g_new0(FlashCall, 1);

	call->face = self;
	call->invocation = invocation;
	call->fd = fd;
	call->name = name;
	healer_fd_read_all_async(fd, name, HEALER_STORE_MAX_MODULE_SIZE, on_app_read, call);
}

static void
flash_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *path, int fd)
{
	g_autoptr(GError) error = NULL;

	(void)fd;
	if (!invocation_reads_all(invocation)) {
		g_dbus_method_invocation_return_error(
		        invocation, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED,
		        "FlashApp takes a path only from root (healerd would read it with its own rights, not "
		        "yours): pass the file opened for reading with FlashAppFd, as healerctl flash does");
		return;
	}
	/* Opened without blocking: a FIFO is refused at once, not waited on with the main loop. */
	fd = healer_caller_open_path(path, FALSE, NULL, &error);
	if (fd < 0) {
		g_dbus_method_invocation_return_gerror(invocation, error);
		return;
	}
	flash_from_fd(self, invocation, fd, healer_caller_name(path));
}

static void
flash_fd_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *name, int fd)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *safe_name = healer_caller_name(name);

	if (!healer_caller_check_fd(fd, safe_name, FALSE, NULL, &error)) {
		g_dbus_method_invocation_return_gerror(invocation, error);
		close(fd);
		return;
	}
	flash_from_fd(self, invocation, fd, g_steal_pointer(&safe_name));
}

/* The descriptor that came with a call (the handle at index `handle` of `fd_list`), or -1 with the error sent. */
static int
received_fd(GDBusMethodInvocation *invocation, GUnixFDList *fd_list, GVariant *fd_handle)
{
	g_autoptr(GError) error = NULL;
	int fd = -1;

	if (fd_list != NULL)
		fd = g_unix_fd_list_get(fd_list, g_variant_get_handle(fd_handle), &error);
	if (fd < 0)
		g_dbus_method_invocation_return_error(invocation, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                                      "no file descriptor came with the call%s%s", error ? ": " : "",
		                                      error ? error->message : "");
	return fd;
}

static gboolean
on_flash_app_fd(HealerDBusHealer1Device *iface, GDBusMethodInvocation *invocation, GUnixFDList *fd_list,
                GVariant *fd_handle, const char *name, gpointer user_data)
{
	int fd = received_fd(invocation, fd_list, fd_handle);

	(void)iface;
	if (fd >= 0)
		authorize_with_fd(user_data, invocation, flash_fd_authorized, name, fd);
	return TRUE;
}

static void
reset_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *arg, int fd)
{
	(void)fd;
	g_autoptr(GError) error = NULL;

	(void)arg;
	if (!healer_engine_reset(self->engine, device_id_of(invocation), &error))
		g_dbus_method_invocation_return_gerror(invocation, error);
	else
		g_dbus_method_invocation_return_value(invocation, NULL);
}

static gboolean
on_heal(HealerDBusHealer1Device *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	(void)iface;
	authorize(user_data, invocation, heal_authorized, NULL);
	return TRUE;
}

static gboolean
on_flash_app(HealerDBusHealer1Device *iface, GDBusMethodInvocation *invocation, const char *path, gpointer user_data)
{
	(void)iface;
	authorize(user_data, invocation, flash_authorized, path);
	return TRUE;
}

static gboolean
on_reset(HealerDBusHealer1Device *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	(void)iface;
	authorize(user_data, invocation, reset_authorized, NULL);
	return TRUE;
}

static gboolean
on_plan(HealerDBusHealer1Device *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	HealerDBusFace *self = user_data;
	g_autoptr(GError) error = NULL;
	g_autofree char *plan = healer_engine_plan(self->engine, device_id_of(invocation), &error);

	if (plan == NULL)
		g_dbus_method_invocation_return_gerror(invocation, error);
	else
		healer_dbus_healer1_device_complete_plan(iface, invocation, plan);
	return TRUE;
}

static void
on_device_added(HealerDBusFace *self, const char *device_id)
{
	g_autoptr(HealerDeviceInfo) info = healer_engine_get_device(self->engine, device_id);
	g_autofree char *path = object_path(device_id);
	g_autoptr(HealerDBusObjectSkeleton) object = NULL;
	g_autoptr(HealerDBusHealer1Device) iface = NULL;

	/* Without a bus (yet) there is nothing to export to; on_bus_acquired exports every device. */
	if (self->manager == NULL || info == NULL || g_hash_table_contains(self->objects, device_id))
		return;
	object = healer_dbus_object_skeleton_new(path);
	iface = healer_dbus_healer1_device_skeleton_new();
	update_device(self, iface, info);
	g_signal_connect(iface, "handle-heal", G_CALLBACK(on_heal), self);
	g_signal_connect(iface, "handle-flash-app", G_CALLBACK(on_flash_app), self);
	g_signal_connect(iface, "handle-flash-app-fd", G_CALLBACK(on_flash_app_fd), self);
	g_signal_connect(iface, "handle-reset", G_CALLBACK(on_reset), self);
	g_signal_connect(iface, "handle-plan", G_CALLBACK(on_plan), self);
	healer_dbus_object_skeleton_set_healer1_device(object, iface);
	g_dbus_object_manager_server_export(self->manager, G_DBUS_OBJECT_SKELETON(object));
	g_hash_table_insert(self->objects, g_strdup(device_id), g_steal_pointer(&object));
	update_manager(self);
}

static void
on_device_changed(HealerDBusFace *self, const char *device_id)
{
	HealerDBusObject *object = g_hash_table_lookup(self->objects, device_id);
	g_autoptr(HealerDeviceInfo) info = NULL;
	g_autoptr(HealerDBusHealer1Device) iface = NULL;

	if (object == NULL) {
		on_device_added(self, device_id);
		return;
	}
	info = healer_engine_get_device(self->engine, device_id);
	iface = healer_dbus_object_get_healer1_device(object);
	if (info != NULL && iface != NULL)
		update_device(self, iface, info);
	update_manager(self);
}

static void
on_device_removed(HealerDBusFace *self, const char *device_id)
{
	g_autofree char *path = object_path(device_id);

	if (g_hash_table_remove(self->objects, device_id))
		g_dbus_object_manager_server_unexport(self->manager, path);
	update_manager(self);
}

static void
on_heal_progress(HealerDBusFace *self, const HealerEvent *event)
{
	if (self->healer != NULL)
		healer_dbus_healer1_emit_heal_progress(self->healer, event->device_id, (guint)event->step, event->total,
		                                       event->module, event->progress);
}

static void
on_heal_finished(HealerDBusFace *self, const HealerEvent *event)
{
	if (self->healer != NULL)
		healer_dbus_healer1_emit_heal_finished(self->healer, event->device_id, event->success, event->reason);
	update_manager(self);
}

static void
on_sources_changed(HealerDBusFace *self)
{
	if (self->healer != NULL)
		update_manager(self);
}

/* The D-Bus face's observer of the event stream: objects, properties and signals. */
static void
on_event(const HealerEvent *event, gpointer user_data)
{
	HealerDBusFace *self = user_data;

	switch (event->kind) {
	case HEALER_EVENT_DEVICE_ADDED:
		on_device_added(self, event->device_id);
		break;
	case HEALER_EVENT_DEVICE_CHANGED:
		on_device_changed(self, event->device_id);
		break;
	case HEALER_EVENT_DEVICE_REMOVED:
		on_device_removed(self, event->device_id);
		break;
	case HEALER_EVENT_HEAL_PROGRESS:
		on_heal_progress(self, event);
		break;
	case HEALER_EVENT_HEAL_FINISHED:
		on_heal_finished(self, event);
		break;
	case HEALER_EVENT_SOURCES_CHANGED:
		on_sources_changed(self);
		break;
	case HEALER_EVENT_MQTT_STATE:
		if (self->healer != NULL && g_strcmp0(healer_dbus_healer1_get_mqtt(self->healer), event->reason) != 0)
			healer_dbus_healer1_set_mqtt(self->healer, event->reason != NULL ? event->reason : "");
		break;
	default:
		break;
	}
}

/* ---- the manager ----------------------------------------------------------- */

static gboolean
on_get_devices(HealerDBusHealer1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	HealerDBusFace *self = user_data;
	g_autoptr(GPtrArray) devices = healer_engine_list_devices(self->engine);
	json_object *array = json_object_new_array();

	for (guint i = 0; i < devices->len; i++)
		json_object_array_add(array, healer_device_info_to_json(g_ptr_array_index(devices, i)));
	healer_dbus_healer1_complete_get_devices(
	        iface, invocation,
	        json_object_to_json_string_ext(array, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(array);
	return TRUE;
}

static gboolean
on_list_modules(HealerDBusHealer1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	HealerDBusFace *self = user_data;
	g_autoptr(GPtrArray) entries = healer_store_list(self->store);
	json_object *array = json_object_new_array();

	for (guint i = 0; i < entries->len; i++) {
		const HealerStoreEntry *e = g_ptr_array_index(entries, i);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "sha256", json_object_new_string(e->sha256));
		json_object_object_add(o, "size", json_object_new_int64((gint64)e->size));
		json_object_object_add(o, "platform_id", json_object_new_int(e->platform_id));
		json_object_object_add(o, "function",
		                       json_object_new_string(healer_module_function_to_string(e->function)));
		json_object_object_add(o, "index", json_object_new_int(e->index));
		json_object_object_add(o, "version", json_object_new_int(e->version));
		json_object_object_add(o, "release", e->release ? json_object_new_string(e->release) : NULL);
		json_object_array_add(array, o);
	}
	healer_dbus_healer1_complete_list_modules(
	        iface, invocation,
	        json_object_to_json_string_ext(array, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(array);
	return TRUE;
}

static void
heal_all_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *arg, int fd)
{
	(void)fd;
	g_autoptr(GPtrArray) started = healer_engine_heal_all(self->engine);

	(void)arg;
	g_ptr_array_add(started, NULL);
	healer_dbus_healer1_complete_heal_all(self->healer, invocation, (const char *const *)started->pdata);
}

typedef struct {
	HealerDBusFace *face;
	GDBusMethodInvocation *invocation;
	int fd; /* ImportFd: the caller's descriptor, open until the import is done; -1 otherwise */
} PendingCall;

static void
on_imported(const HealerSupplyImportResult *result, const GError *error, gpointer user_data)
{
	PendingCall *call = user_data;

	if (error != NULL) {
		g_dbus_method_invocation_return_gerror(call->invocation, error);
	} else {
		g_ptr_array_add(result->rejected, NULL);
		if (call->fd >= 0)
			healer_dbus_healer1_complete_import_fd(call->face->healer, call->invocation, NULL,
			                                       result->added,
			                                       (const char *const *)result->rejected->pdata);
		else
			healer_dbus_healer1_complete_import_modules(call->face->healer, call->invocation, result->added,
			                                            (const char *const *)result->rejected->pdata);
		g_ptr_array_remove_index(result->rejected, result->rejected->len - 1);
		update_manager(call->face);
	}
	if (call->fd >= 0)
		close(call->fd);
	g_free(call);
}

/* The caller opened it: healerd reads through that descriptor only, never reopening it. */
static void
import_fd_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *name, int fd)
{
	PendingCall *call;
	g_autoptr(GError) error = NULL;
	g_autofree char *safe_name = healer_caller_name(name);
	struct stat st;
	int own;

	if (!healer_caller_check_fd(fd, safe_name, TRUE, &st, &error)) {
		g_dbus_method_invocation_return_gerror(invocation, error);
		close(fd);
		return;
	}
	/* openat() under a directory descriptor checks healerd's rights, not the caller's. */
	if (S_ISDIR(st.st_mode) && !invocation_reads_all(invocation)) {
		g_dbus_method_invocation_return_error(
		        invocation, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED,
		        "%s: a directory is imported for root only (healerd would open the files in it with its own "
		        "rights, not yours): import its module files one by one, or pack a bundle directory as an "
		        "archive (tar -cf bundle.tar -C DIR .)",
		        safe_name);
		close(fd);
		return;
	}
	/* The supply closes its own duplicate; this one goes with the reply (on_imported). */
	own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (own < 0) {
		int err = errno;
		g_dbus_method_invocation_return_error(invocation, HEALER_ERROR, HEALER_ERROR_IO, "%s: %s", safe_name,
		                                      g_strerror(err));
		close(fd);
		return;
	}
	call = g_new0(PendingCall, 1);
	call->face = self;
	call->invocation = invocation;
	call->fd = fd;
	healer_supply_import_fd_async(self->supply, own, safe_name, on_imported, call);
}

static gboolean
on_import_fd(HealerDBusHealer1 *iface, GDBusMethodInvocation *invocation, GUnixFDList *fd_list, GVariant *fd_handle,
             const char *name, gpointer user_data)
{
	int fd = received_fd(invocation, fd_list, fd_handle);

	(void)iface;
	if (fd >= 0)
		authorize_with_fd(user_data, invocation, import_fd_authorized, name, fd);
	return TRUE;
}

static void
import_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *path, int fd)
{
	PendingCall *call;

	(void)fd;
	if (!invocation_reads_all(invocation)) {
		g_dbus_method_invocation_return_error(
		        invocation, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED,
		        "ImportModules takes a path only from root (healerd would read it with its own rights, not "
		        "yours): pass the file opened for reading with ImportFd, as healerctl import does");
		return;
	}
	/* The invocation is kept by the pending call; the face outlives it (freed after the loop ends). */
	call = g_new0(PendingCall, 1);
	call->face = self;
	call->invocation = invocation;
	call->fd = -1;
	healer_supply_import_async(self->supply, path, on_imported, call);
}

static void
on_refreshed(const HealerUpstreamRefreshResult *result, const GError *error, gpointer user_data)
{
	PendingCall *call = user_data;

	if (error != NULL)
		g_dbus_method_invocation_return_gerror(call->invocation, error);
	else
		healer_dbus_healer1_complete_refresh(call->face->healer, call->invocation, result->changed,
		                                     result->serial, result->n_modules);
	g_free(call);
}

static void
refresh_authorized(HealerDBusFace *self, GDBusMethodInvocation *invocation, const char *arg, int fd)
{
	(void)fd;
	HealerUpstream *upstream = self->upstream;
	PendingCall *call;

	(void)arg;
	if (upstream == NULL) {
		g_dbus_method_invocation_return_error(invocation, HEALER_ERROR, HEALER_ERROR_NOT_FOUND,
		                                      "no upstream is configured ([upstream] url in healerd.conf)");
		return;
	}
	call = g_new0(PendingCall, 1);
	call->face = self;
	call->invocation = invocation;
	call->fd = -1;
	healer_upstream_refresh(upstream, on_refreshed, call);
}

static gboolean
on_refresh(HealerDBusHealer1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	(void)iface;
	authorize(user_data, invocation, refresh_authorized, NULL);
	return TRUE;
}

static gboolean
on_heal_all(HealerDBusHealer1 *iface, GDBusMethodInvocation *invocation, gpointer user_data)
{
	(void)iface;
	authorize(user_data, invocation, heal_all_authorized, NULL);
	return TRUE;
}

static gboolean
on_import_modules(HealerDBusHealer1 *iface, GDBusMethodInvocation *invocation, const char *path, gpointer user_data)
{
	(void)iface;
	authorize(user_data, invocation, import_authorized, path);
	return TRUE;
}

static void
on_bus_acquired(GDBusConnection *connection, const char *name, gpointer user_data)
{
	HealerDBusFace *self = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) devices = NULL;

	(void)name;
	self->connection = g_object_ref(connection);
	self->manager = g_dbus_object_manager_server_new(ROOT_PATH);
	self->healer = healer_dbus_healer1_skeleton_new();
	healer_dbus_healer1_set_version(self->healer, HEALER_VERSION);
	g_signal_connect(self->healer, "handle-get-devices", G_CALLBACK(on_get_devices), self);
	g_signal_connect(self->healer, "handle-list-modules", G_CALLBACK(on_list_modules), self);
	g_signal_connect(self->healer, "handle-heal-all", G_CALLBACK(on_heal_all), self);
	g_signal_connect(self->healer, "handle-import-modules", G_CALLBACK(on_import_modules), self);
	g_signal_connect(self->healer, "handle-refresh", G_CALLBACK(on_refresh), self);
	g_signal_connect(self->healer, "handle-import-fd", G_CALLBACK(on_import_fd), self);
	if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(self->healer), connection, ROOT_PATH, &error))
		g_warning("cannot export " ROOT_PATH ": %s", error->message);
	g_dbus_object_manager_server_set_connection(self->manager, connection);
	devices = healer_engine_list_devices(self->engine);
	for (guint i = 0; i < devices->len; i++)
		on_device_added(self, ((HealerDeviceInfo *)g_ptr_array_index(devices, i))->id);
	update_manager(self);
}

static void
on_name_acquired(GDBusConnection *connection, const char *name, gpointer user_data)
{
	(void)connection;
	(void)user_data;
	g_info("serving D-Bus name %s", name);
}

static void
on_name_lost(GDBusConnection *connection, const char *name, gpointer user_data)
{
	HealerDBusFace *self = user_data;

	if (connection == NULL) {
		/* No bus (yet): healing goes on; only the API is missing. */
		g_warning("no D-Bus connection: serving devices without the %s API", name);
		return;
	}
	/* Another healerd has it: two daemons on the same ports would fight. */
	g_critical("lost or could not own the D-Bus name %s (is another healerd running, or does the bus policy not "
	           "allow this user to own it?)",
	           name);
	self->lost_name = TRUE;
	g_main_loop_quit(self->loop);
}

HealerDBusFace *
healer_dbus_face_new(HealerEngine *engine, HealerStore *store, HealerSupply *supply, HealerUpstream *upstream,
                     GBusType bus_type, GMainLoop *loop)
{
	HealerDBusFace *self = g_new0(HealerDBusFace, 1);

	healer_error_register_dbus_names();
	self->engine = engine;
	self->store = store;
	self->supply = supply;
	self->upstream = upstream;
	self->loop = loop;
	self->objects = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->subscription = healer_event_stream_subscribe(healer_events(), on_event, self);
	self->owner_id = g_bus_own_name(bus_type, BUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, on_bus_acquired,
	                                on_name_acquired, on_name_lost, self, NULL);
	return self;
}

gboolean
healer_dbus_face_lost_name(HealerDBusFace *self)
{
	return self->lost_name;
}

void
healer_dbus_face_free(HealerDBusFace *self)
{
	if (self == NULL)
		return;
	healer_event_stream_unsubscribe(healer_events(), self->subscription);
	g_bus_unown_name(self->owner_id);
	g_hash_table_destroy(self->objects);
	if (self->healer != NULL)
		g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(self->healer));
	g_clear_object(&self->healer);
	g_clear_object(&self->manager);
	g_clear_object(&self->connection);
	g_free(self);
}
