#include "particle-device.h"

#include <string.h>

#include "backoff.h"
#include "describe.h"
#include "healer-error.h"
#include "healer-text.h"
#include "module-names.h"
#include "module-reader.h"
#include "particle-client.h"
#include "particle-control.h"
#include "particle-control.pb-c.h"
#include "particle-module-info.h"
#include "particle-usb-ids.h"
#include "usb-claim.h"

/* GET_DEVICE_MODE's answers (Device OS's DeviceMode): it does not report safe mode. */
#define DEVICE_MODE_UNKNOWN   (-1)
#define DEVICE_MODE_NORMAL    0
#define DEVICE_MODE_LISTENING 1

/* START erases the OTA area before it answers: seconds on a Gen 2 device. */
#define START_TIMEOUT_MS HEALER_PARTICLE_REQUEST_TIMEOUT_MS
/* The file format START names: the module as it is (BIN); compressed (MINIZ) is not sent. */
#define FORMAT_BIN 0
/* A chunk size no Device OS answers beyond (it answers 1024): the DATA request's payload stays small. */
#define MAX_CHUNK_SIZE 4096
/*
 * Identifying it (open, then the first module info) is tried again after a failure, on a back-off
 * from 0.5 s doubling to 8 s, this many times (about 15 s in all): a device still booting or busy
 * with another host gets its chance, one that never answers is reported unreadable, not retried
 * for ever.  Plugged in again it is a new device object and starts over.
 */
#define IDENTIFY_RETRIES     5
#define IDENTIFY_BACKOFF_MIN 500
#define IDENTIFY_BACKOFF_MAX 8000

typedef enum {
	OP_NONE,
	OP_START,
	OP_DATA,
	OP_FINISH,
	OP_DFU_MODE, /* asked to reboot into DFU mode for the step (a mode switch) */
	OP_RESET,    /* asked to reset: busy until it goes */
} OpState;

struct _HealerParticleDevice {
	HealerDevice parent_instance;
	HealerParticleClient *client; /* NULL once closed or gone */
	guint16 vendor_id;
	guint16 product_id;
	HealerUsbIdentity identity;
	char *serial;        /* as the device reports it */
	guint8 serial_index; /* iSerialNumber: read from the device when sysfs had no serial number */
	char *id;
	char *system_version; /* Device OS, "2.2.0", or NULL (it did not say) */

	/* Reading what it holds: module info and device mode, both asked at once. */
	gboolean reading;
	guint reads_pending;
	gboolean announced_id;     /* identity-changed was emitted for `id` */
	gboolean opened;           /* the client's open (version, RESET(0)) succeeded */
	guint identify_failures;   /* opens and first reads that failed in a row */
	guint retry_source;        /* the back-off's timer before the next attempt, or 0 */
	gboolean retry_after_read; /* the timer fired while a failed read still had an answer out */
	char *unreadable;          /* why it could not be identified, once given up on; else NULL */
	HealerParticleModuleInfo *pending_info;
	int pending_mode;
	HealerParticleModuleInfo *info; /* the last complete read */
	int device_mode;                /* DEVICE_MODE_*: as GET_DEVICE_MODE last said */
	HealerDeviceState *state;       /* built when first asked */
	char *state_json;
	GError *read_error;

	/* Its health, judged from `info` (strings static or owned below). */
	HealerDeviceHealth health;
	char *boot_reason;

	/* The install in flight. */
	OpState op;
	GBytes *module;
	guint8 module_function;
	gsize offset; /* bytes sent and acknowledged */
	guint32 chunk_size;
	HealerDeviceInstallFunc op_func;
	gpointer op_user_data;
};

G_DEFINE_FINAL_TYPE(HealerParticleDevice, healer_particle_device, HEALER_TYPE_DEVICE)

/* ---- the install route, per platform ---------------------------------------------------------------- */

/* 0: not set; otherwise the route + 1.  Index 0 is the default for every platform. */
static guint8 install_routes[256];

gboolean
healer_particle_install_route_from_string(const char *text, HealerParticleInstallRoute *route)
{
	if (g_strcmp0(text, "control") == 0)
		*route = HEALER_PARTICLE_INSTALL_CONTROL;
	else if (g_strcmp0(text, "dfu") == 0)
		*route = HEALER_PARTICLE_INSTALL_DFU;
	else
		return FALSE;
	return TRUE;
}

const char *
healer_particle_install_route_to_string(HealerParticleInstallRoute route)
{
	return route == HEALER_PARTICLE_INSTALL_DFU ? "dfu" : "control";
}

void
healer_particle_device_set_install_route(guint16 platform_id, HealerParticleInstallRoute route)
{
	g_return_if_fail(platform_id < G_N_ELEMENTS(install_routes));
	install_routes[platform_id] = (guint8)(route + 1);
}

HealerParticleInstallRoute
healer_particle_device_get_install_route(guint16 platform_id)
{
	if (platform_id != 0 && platform_id < G_N_ELEMENTS(install_routes) && install_routes[platform_id] != 0)
		return (HealerParticleInstallRoute)(install_routes[platform_id] - 1);
	return install_routes[0] != 0 ? (HealerParticleInstallRoute)(install_routes[0] - 1)
	                              : HEALER_PARTICLE_INSTALL_CONTROL;
}

/* ---- the device goes, or fails -------------------------------------------------------------------- */

static void
finish_op(HealerParticleDevice *self, GError *error)
{
	HealerDeviceInstallFunc func = self->op_func;
	gpointer user_data = self->op_user_data;

	self->op = OP_NONE;
	self->op_func = NULL;
	g_clear_pointer(&self->module, g_bytes_unref);
	if (func != NULL)
		func(HEALER_DEVICE(self), error, user_data);
	if (error != NULL)
		g_error_free(error);
}

static gboolean
is_gone(const GError *error)
{
	return g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
}

/* The client said the device is gone: what was in flight failed, then the device is detached. */
static void
gone(HealerParticleDevice *self, const GError *error)
{
	g_autoptr(HealerParticleDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	g_clear_pointer(&self->client, healer_particle_client_close);
	g_clear_handle_id(&self->retry_source, g_source_remove);
	self->reading = FALSE;
	if (self->op != OP_NONE && self->op_func != NULL)
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "device went away: %s", error->message));
	self->op = OP_NONE;
	healer_device_emit_detached(HEALER_DEVICE(self));
}

static void
log_line(HealerParticleDevice *self, const char *what, const char *message)
{
	g_autofree char *escaped = healer_text_escape(message, -1);
	g_autofree char *line = g_strdup_printf("%s: %s", what, escaped);

	healer_device_emit_log(HEALER_DEVICE(self), line);
}

/* ---- its health, from the module info --------------------------------------------------------------- */

/* The application: the main store's user part (the first listed). */
static const HealerParticleModule *
find_app(const HealerParticleModuleInfo *info)
{
	for (guint i = 0; info != NULL && i < info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(info->modules, i);
		if (m->function == MODULE_FUNCTION_USER_PART)
			return m;
	}
	return NULL;
}

/*
 * Why it is in safe mode, in the order a heal cares: a corrupt module first (a dependency on it
 * cannot be judged), then dependencies, then what healerd does not touch.
 */
static const char *
safe_mode_reason(guint32 failed)
{
	static const guint order[] = {HEALER_PARTICLE_CHECK_INTEGRITY, HEALER_PARTICLE_CHECK_DEPENDENCIES,
	                              HEALER_PARTICLE_CHECK_RANGE,     HEALER_PARTICLE_CHECK_PLATFORM,
	                              HEALER_PARTICLE_CHECK_PRODUCT,   HEALER_PARTICLE_CHECK_DEPENDENCIES_FULL};

	for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
		if (failed & order[i])
			return healer_particle_check_to_string(order[i]);
	}
	return failed != 0 ? "unknown" : "none";
}

/*
 * What a heal may fix: a dependency failure (a module is missing or too old), and a corrupt module
 * other than the application (the store may have it).  A range, platform or product failure is a
 * wrong module: reported, never touched, so nothing is healed while one stands.
 */
static void
judge(HealerParticleDevice *self)
{
	const HealerParticleModule *app = find_app(self->info);
	HealerDeviceHealth *health = &self->health;
	guint32 all_failed = 0;
	gboolean healable = FALSE, untouchable = FALSE;
	g_autoptr(GString) why = g_string_new(NULL);

	for (guint i = 0; i < self->info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(self->info->modules, i);
		guint32 failed = healer_particle_module_failed(m);
		g_autofree char *text = NULL;

		if (failed == 0)
			continue;
		all_failed |= failed;
		if (failed & HEALER_PARTICLE_CHECK_DEPENDENCIES)
			healable = TRUE;
		if ((failed & HEALER_PARTICLE_CHECK_INTEGRITY) && m->function != MODULE_FUNCTION_USER_PART)
			healable = TRUE;
		if (failed & ~(guint32)(HEALER_PARTICLE_CHECK_DEPENDENCIES | HEALER_PARTICLE_CHECK_INTEGRITY |
		                        HEALER_PARTICLE_CHECK_DEPENDENCIES_FULL))
			untouchable = TRUE;
		text = healer_particle_module_describe_failure(self->info, m);
		g_string_append_printf(why, "%s%s %u v%u: %s", why->len > 0 ? "; " : "",
		                       healer_module_function_to_string(m->function), m->index, m->version,
		                       text != NULL ? text : "failed");
	}
	g_free(self->boot_reason);
	self->boot_reason = all_failed != 0 ? healer_text_escape(why->str, -1) : g_strdup("every module passed");
	health->running = all_failed == 0;
	health->mode = all_failed != 0 ? "safe" : self->device_mode == DEVICE_MODE_LISTENING ? "listening" : "normal";
	health->safe_mode_reason = safe_mode_reason(all_failed);
	health->boot_mode = health->mode;
	health->boot_reason = self->boot_reason;
	/* The control requests do not say why it last reset. */
	health->reset_reason = "unknown";
	health->led = "";
	health->has_app = app != NULL;
	health->app_valid = app != NULL && all_failed == 0;
	health->app_dependencies_failed = app != NULL && healable && !untouchable;
}

/*
 * The state the resolver plans over.  A module that failed its integrity check is no module: its
 * position is left empty, and each application gains a dependency on it at the version it had, so
 * the plan puts one there again (the store's, that version or newer) even when only another
 * system module depends on it.  That is how this family says "reinstall that module" with the
 * resolver's words alone; the engine needs no word of it.
 */
static HealerDeviceState *
build_state(HealerParticleDevice *self)
{
	HealerDeviceState *state =
	        healer_particle_module_info_to_state(self->info, healer_device_get_platform_id(HEALER_DEVICE(self)));

	for (guint i = 0; i < self->info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(self->info->modules, i);

		if (!(healer_particle_module_failed(m) & HEALER_PARTICLE_CHECK_INTEGRITY) ||
		    m->function == MODULE_FUNCTION_USER_PART)
			continue;
		for (guint k = 0; k < state->modules->len; k++) {
			HealerInstalledModule *installed = &g_array_index(state->modules, HealerInstalledModule, k);
			if (installed->function == m->function && installed->index == m->index) {
				g_clear_pointer(&installed->dependencies, g_array_unref);
				g_array_remove_index(state->modules, k);
				break;
			}
		}
		for (guint k = 0; k < state->modules->len; k++) {
			const HealerInstalledModule *app = &g_array_index(state->modules, HealerInstalledModule, k);
			if (app->function == MODULE_FUNCTION_USER_PART)
				healer_device_state_add_dependency(state, app->function, app->index, m->function,
				                                   m->index, m->version);
		}
	}
	return state;
}

/* The module info as a describe's modules ("m"), for the faces, and the family's own details. */
static char *
build_state_json(HealerParticleDevice *self)
{
	g_autoptr(HealerDescribe) describe = healer_describe_new(healer_device_get_platform_id(HEALER_DEVICE(self)));
	json_object *o;
	char *text;

	for (guint i = 0; i < self->info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(self->info->modules, i);
		HealerDescribeModule d = {
		        .has_info = TRUE,
		        .function = m->function,
		        .index = m->index,
		        .version = m->version,
		        .store = MODULE_STORE_MAIN,
		        .max_size = m->max_size,
		        .validity_checked = (guint16)m->checked,
		        .validity_passed = (guint16)m->passed,
		        .has_hash = m->has_hash,
		};

		memcpy(d.sha256, m->hash, sizeof d.sha256);
		d.dependencies = g_array_new(FALSE, TRUE, sizeof(HealerDescribeDependency));
		for (guint k = 0; k < m->dependencies->len; k++) {
			const HealerModuleDependency *dep = &g_array_index(m->dependencies, HealerModuleDependency, k);
			HealerDescribeDependency dd = {
			        .function = dep->function, .index = dep->index, .version = dep->version};
			g_array_append_val(d.dependencies, dd);
		}
		g_array_append_val(describe->modules, d);
	}
	o = healer_describe_to_json(describe);
	json_object_object_add(o, "details", healer_particle_device_to_json(self));
	text = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

/* ---- reading what it holds ------------------------------------------------------------------------ */

static void identify_failed(HealerParticleDevice *self, const char *what, const GError *error);
static void on_opened(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error,
                      gpointer user_data);

static void
read_failed(HealerParticleDevice *self, const GError *error)
{
	self->reading = FALSE;
	g_clear_pointer(&self->pending_info, healer_particle_module_info_free);
	g_clear_error(&self->read_error);
	self->read_error = g_error_copy(error);
	/* Never read yet: it is not identified, so it is tried again. */
	if (self->info == NULL && self->unreadable == NULL) {
		identify_failed(self, "cannot read its module info", error);
		return;
	}
	log_line(self, "cannot read its module info", error->message);
}

static void
read_complete(HealerParticleDevice *self)
{
	g_autoptr(HealerParticleDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	self->reading = FALSE;
	g_clear_pointer(&self->info, healer_particle_module_info_free);
	self->info = g_steal_pointer(&self->pending_info);
	self->device_mode = self->pending_mode;
	g_clear_pointer(&self->state, healer_device_state_free);
	g_clear_error(&self->read_error);
	g_clear_pointer(&self->unreadable, g_free);
	self->identify_failures = 0;
	judge(self);
	g_free(self->state_json);
	self->state_json = build_state_json(self);
	if (!self->announced_id) {
		/* Who it is was known at attach; said now, from the main loop, with what it holds. */
		self->announced_id = TRUE;
		healer_device_emit_identity_changed(HEALER_DEVICE(self));
		if (self->client == NULL)
			return;
	}
	healer_device_emit_identified(HEALER_DEVICE(self));
}

static void start_reading(HealerParticleDevice *self);

static void
read_step_done(HealerParticleDevice *self)
{
	if (--self->reads_pending == 0 && self->retry_after_read) {
		/* The retry waited for the failed read's last answer (a new read restarts the count). */
		self->retry_after_read = FALSE;
		start_reading(self);
		return;
	}
	if (self->reads_pending > 0 || !self->reading)
		return;
	if (self->pending_info == NULL)
		return; /* failed: said by read_failed() */
	read_complete(self);
}

static void
on_module_info(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;
	g_autoptr(GError) local = NULL;
	gsize len = 0;
	const guint8 *data;

	(void)client;
	if (error != NULL && is_gone(error)) {
		gone(self, error);
		return;
	}
	if (error != NULL) {
		read_failed(self, error);
	} else if (result != HEALER_PARTICLE_RESULT_OK) {
		g_autofree char *text = healer_particle_result_describe(result);
		local = g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "GET_MODULE_INFO answered %s", text);
		read_failed(self, local);
	} else {
		data = g_bytes_get_data(reply, &len);
		self->pending_info = healer_particle_module_info_parse(data, len, &local);
		if (self->pending_info == NULL) {
			g_prefix_error(&local, "its GET_MODULE_INFO reply: ");
			read_failed(self, local);
		}
	}
	read_step_done(self);
}

static void
on_device_mode(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	(void)client;
	if (error != NULL && is_gone(error)) {
		gone(self, error);
		return;
	}
	/* Older Device OS does not know the request: the mode stays unknown (not listening), nothing fails. */
	if (error == NULL && result == HEALER_PARTICLE_RESULT_OK && reply != NULL) {
		gsize len = 0;
		const guint8 *data = g_bytes_get_data(reply, &len);
		Healer__Particle__DeviceModeReply *mode = healer__particle__device_mode_reply__unpack(NULL, len, data);
		if (mode != NULL) {
			self->pending_mode = (int)mode->mode;
			healer__particle__device_mode_reply__free_unpacked(mode, NULL);
		}
	}
	read_step_done(self);
}

static void
start_reading(HealerParticleDevice *self)
{
	if (self->client == NULL || self->reading)
		return;
	self->reading = TRUE;
	self->reads_pending = 2;
	self->pending_mode = DEVICE_MODE_UNKNOWN;
	g_clear_pointer(&self->pending_info, healer_particle_module_info_free);
	/* Both at once (the device serves four requests at a time): identified as soon as both are in. */
	healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_GET_MODULE_INFO, NULL,
	                                     HEALER_PARTICLE_REQUEST_TIMEOUT_MS, on_module_info, self);
	if (self->client != NULL)
		healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_GET_DEVICE_MODE, NULL,
		                                     HEALER_PARTICLE_TRANSFER_TIMEOUT_MS, on_device_mode, self);
}

static void
on_opened(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	(void)result;
	(void)reply;
	if (error != NULL && is_gone(error)) {
		gone(self, error);
		return;
	}
	if (error != NULL) {
		g_clear_error(&self->read_error);
		self->read_error = g_error_copy(error);
		identify_failed(self, "cannot open it (system version, then RESET of every request)", error);
		return;
	}
	self->opened = TRUE;
	g_free(self->system_version);
	self->system_version = g_strdup(healer_particle_client_get_system_version(client));
	start_reading(self);
}

/* The iSerialNumber string, read because sysfs had none: the id, then the open as usual. */
static void
on_serial(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;
	g_autoptr(GError) local = NULL;
	g_autofree char *serial = NULL;

	(void)result;
	if (error != NULL && is_gone(error)) {
		gone(self, error);
		return;
	}
	if (error == NULL && reply != NULL)
		serial = g_strndup(g_bytes_get_data(reply, NULL), g_bytes_get_size(reply));
	self->id = serial != NULL ? healer_usb_id_from_serial(serial) : NULL;
	if (self->id == NULL) {
		if (error == NULL)
			local = g_error_new(HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
			                    "string %u is no serial number (a Particle device's is its device id)",
			                    self->serial_index);
		identify_failed(self, "cannot read its USB serial number", error != NULL ? error : local);
		return;
	}
	self->serial = g_steal_pointer(&serial);
	healer_particle_client_open_async(client, on_opened, self);
}

static gboolean
on_identify_retry(gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	self->retry_source = 0;
	if (self->client == NULL)
		return G_SOURCE_REMOVE;
	if (self->id == NULL)
		healer_particle_client_read_string_async(self->client, self->serial_index, on_serial, self);
	else if (!self->opened)
		healer_particle_client_open_async(self->client, on_opened, self);
	else if (self->reads_pending > 0)
		self->retry_after_read = TRUE;
	else
		start_reading(self);
	return G_SOURCE_REMOVE;
}

/*
 * Given up: it is announced all the same (its id is the USB serial number's), unreadable, so the
 * faces show it and why; the engine heals nothing without its module info.
 */
static void
give_up(HealerParticleDevice *self, const char *what, const GError *error)
{
	g_autofree char *why = g_strdup_printf("%s: %s", what, error->message);
	g_autofree char *line = g_strdup_printf("giving up after %u attempts: unreadable (unplug it and plug it in "
	                                        "again, or refresh it, to try again)",
	                                        self->identify_failures);

	log_line(self, line, why);
	/* Shown as health's boot reason: escaped, as every string the device may have put there. */
	g_free(self->unreadable);
	self->unreadable = healer_text_escape(why, -1);
	/* Without its serial number it has no id: it cannot be announced, only said. */
	if (self->id == NULL)
		return;
	if (!self->announced_id) {
		self->announced_id = TRUE;
		healer_device_emit_identity_changed(HEALER_DEVICE(self));
		if (self->client == NULL)
			return;
	}
	healer_device_emit_identified(HEALER_DEVICE(self));
}

/* Opening it or its first module info failed: once more after a back-off, or given up on. */
static void
identify_failed(HealerParticleDevice *self, const char *what, const GError *error)
{
	g_autofree char *line = NULL;
	guint64 delay;

	self->identify_failures++;
	if (self->identify_failures > IDENTIFY_RETRIES) {
		give_up(self, what, error);
		return;
	}
	delay = healer_backoff_delay_ms(self->identify_failures - 1, IDENTIFY_BACKOFF_MIN, IDENTIFY_BACKOFF_MAX,
	                                g_random_int());
	line = g_strdup_printf("%s (attempt %u of %u; again in %" G_GUINT64_FORMAT " ms)", what,
	                       self->identify_failures, IDENTIFY_RETRIES + 1, delay);
	log_line(self, line, error->message);
	g_clear_handle_id(&self->retry_source, g_source_remove);
	self->retry_source = g_timeout_add((guint)delay, on_identify_retry, self);
}

/* ---- installing ------------------------------------------------------------------------------------ */

static void send_next(HealerParticleDevice *self);

/* A device result that ends the install: protected and updates disabled say what to do, without a retry. */
static GError *
result_error(const char *what, gint32 result)
{
	g_autofree char *text = healer_particle_result_describe(result);
	HealerError code =
	        result == HEALER_PARTICLE_RESULT_PROTECTED || result == HEALER_PARTICLE_RESULT_OTA_UPDATES_DISABLED
	                ? HEALER_ERROR_PERMISSION_DENIED
	                : HEALER_ERROR_FAILED;

	return g_error_new(HEALER_ERROR, code, "%s: %s", what, text);
}

static void
op_transport_failed(HealerParticleDevice *self, const char *what, const GError *error)
{
	if (is_gone(error)) {
		gone(self, error);
		return;
	}
	finish_op(self, g_error_new(error->domain, error->code, "%s: %s", what, error->message));
}

/*
 * Ends the operation when a request of it did not succeed: `error` (the transport; `what` names the
 * request) or a result other than OK (`refused` says what the device refused).  FALSE: it succeeded.
 */
static gboolean
op_request_failed(HealerParticleDevice *self, const char *what, const char *refused, gint32 result, const GError *error)
{
	if (error != NULL) {
		op_transport_failed(self, what, error);
		return TRUE;
	}
	if (result != HEALER_PARTICLE_RESULT_OK) {
		finish_op(self, result_error(refused, result));
		return TRUE;
	}
	return FALSE;
}

static void
on_dfu_mode(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	(void)client;
	(void)reply;
	if (op_request_failed(self, "asking it to reboot into DFU mode (DFU_MODE)",
	                      "asking it to reboot into DFU mode (DFU_MODE)", result, error))
		return;
	/* It reboots into its DFU bootloader about a second from now: the step runs again there. */
	finish_op(self, healer_device_mode_switch_new("rebooting into DFU mode to install it"));
	self->op = OP_RESET;
}

static void
switch_to_dfu(HealerParticleDevice *self, const char *why)
{
	healer_device_emit_log(HEALER_DEVICE(self), why);
	self->op = OP_DFU_MODE;
	healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_DFU_MODE, NULL,
	                                     HEALER_PARTICLE_REQUEST_TIMEOUT_MS, on_dfu_mode, self);
}

static void
on_finished(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	(void)client;
	(void)reply;
	if (op_request_failed(self, "FINISH", "the device refused the module at FINISH", result, error))
		return;
	/* Staged: it applies the module as it resets, and comes back as another USB device (the engine waits for it).
	 */
	healer_device_emit_log(HEALER_DEVICE(self), "module staged: the device resets to apply it");
	finish_op(self, NULL);
	self->op = OP_RESET;
}

static void
on_data(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;
	gsize len = g_bytes_get_size(self->module);
	gsize n = MIN((gsize)self->chunk_size, len - self->offset);

	(void)client;
	(void)reply;
	/* The texts are made only for a failure: this runs for every chunk of every module. */
	if (error != NULL || result != HEALER_PARTICLE_RESULT_OK) {
		g_autofree char *what = g_strdup_printf("DATA at byte %" G_GSIZE_FORMAT, self->offset);
		g_autofree char *refused = g_strdup_printf("the device refused %s", what);
		op_request_failed(self, what, refused, result, error);
		return;
	}
	self->offset += n;
	healer_device_emit_progress(HEALER_DEVICE(self));
	if (self->client == NULL || self->op != OP_DATA)
		return;
	send_next(self);
}

/* The next DATA chunk, or FINISH once every byte is in. */
static void
send_next(HealerParticleDevice *self)
{
	gsize len = 0;
	const guint8 *bytes = g_bytes_get_data(self->module, &len);

	if (self->offset < len) {
		Healer__Particle__FirmwareUpdateDataRequest request =
		        HEALER__PARTICLE__FIRMWARE_UPDATE_DATA_REQUEST__INIT;
		g_autoptr(GBytes) payload = NULL;

		request.data.data = (guint8 *)bytes + self->offset;
		request.data.len = MIN((gsize)self->chunk_size, len - self->offset);
		payload = healer_particle_message_pack(&request.base);
		self->op = OP_DATA;
		healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_FIRMWARE_UPDATE_DATA,
		                                     payload, HEALER_PARTICLE_REQUEST_TIMEOUT_MS, on_data, self);
		return;
	}
	{
		Healer__Particle__FinishFirmwareUpdateRequest request =
		        HEALER__PARTICLE__FINISH_FIRMWARE_UPDATE_REQUEST__INIT;
		g_autoptr(GBytes) payload = healer_particle_message_pack(&request.base);

		self->op = OP_FINISH;
		healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_FINISH_FIRMWARE_UPDATE,
		                                     payload, HEALER_PARTICLE_REQUEST_TIMEOUT_MS, on_finished, self);
	}
}

static void
on_started(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;
	Healer__Particle__StartFirmwareUpdateReply *started;
	gsize len = 0;
	const guint8 *data;

	(void)client;
	/* A Device OS that cannot take a module over control requests may still take it in DFU mode (not a bootloader).
	 */
	if (error == NULL &&
	    (result == HEALER_PARTICLE_RESULT_NOT_SUPPORTED ||
	     result == HEALER_PARTICLE_RESULT_OTA_UNSUPPORTED_MODULE) &&
	    self->module_function != MODULE_FUNCTION_BOOTLOADER) {
		g_autofree char *text = healer_particle_result_describe(result);
		g_autofree char *why = g_strdup_printf("START answered %s: installing it over DFU instead", text);
		switch_to_dfu(self, why);
		return;
	}
	if (op_request_failed(self, "START", "the device refused the module at START", result, error))
		return;
	data = reply != NULL ? g_bytes_get_data(reply, &len) : NULL;
	started = healer__particle__start_firmware_update_reply__unpack(NULL, len, data);
	self->chunk_size = started != NULL ? started->chunk_size : 0;
	if (started != NULL)
		healer__particle__start_firmware_update_reply__free_unpacked(started, NULL);
	if (self->chunk_size == 0 || self->chunk_size > MAX_CHUNK_SIZE) {
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		                            "START's reply names chunk size %u (1 to %u expected)", self->chunk_size,
		                            MAX_CHUNK_SIZE));
		return;
	}
	send_next(self);
}

static void
particle_install_async(HealerDevice *device, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                       gpointer user_data)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);
	gsize len = g_bytes_get_size(module->bytes);
	guint16 platform = healer_device_get_platform_id(device);

	g_return_if_fail(self->op == OP_NONE);
	self->op_func = func;
	self->op_user_data = user_data;
	self->module = g_bytes_ref(module->bytes);
	self->module_function = module->function;
	self->offset = 0;
	self->chunk_size = 0;
	self->op = OP_START;
	if (self->client == NULL) {
		finish_op(self, g_error_new_literal(HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "the device is gone"));
		return;
	}
	if (len == 0) {
		finish_op(self,
		          g_error_new_literal(HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT, "the module is empty"));
		return;
	}
	/* DFU cannot write a bootloader (read-only there): always over control requests. */
	if (module->function != MODULE_FUNCTION_BOOTLOADER &&
	    healer_particle_device_get_install_route(platform) == HEALER_PARTICLE_INSTALL_DFU) {
		const HealerPlatform *p = healer_platform_lookup(platform);
		g_autofree char *why =
		        g_strdup_printf("the [particle] install route for %s is dfu: rebooting into DFU mode",
		                        p != NULL ? p->name : "this platform");
		switch_to_dfu(self, why);
		return;
	}
	{
		Healer__Particle__StartFirmwareUpdateRequest request =
		        HEALER__PARTICLE__START_FIRMWARE_UPDATE_REQUEST__INIT;
		g_autoptr(GBytes) payload = NULL;

		request.size = (uint32_t)len;
		request.format = FORMAT_BIN;
		payload = healer_particle_message_pack(&request.base);
		healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_START_FIRMWARE_UPDATE,
		                                     payload, START_TIMEOUT_MS, on_started, self);
	}
}

/* ---- reset, refresh, close ---------------------------------------------------------------------------- */

static void
on_raw_reset(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	(void)client;
	(void)result;
	(void)reply;
	/* A transfer error is the device going: the backend sees it leave. */
	if (error != NULL && !is_gone(error))
		log_line(self, "cannot reset it", error->message);
}

static void
on_reset(HealerParticleClient *client, gint32 result, GBytes *reply, const GError *error, gpointer user_data)
{
	HealerParticleDevice *self = user_data;

	(void)reply;
	if (error != NULL && is_gone(error))
		return;
	/* Refused or unanswered: the raw hard reset, which every Device OS since 0.6 knows. */
	if (error != NULL || result != HEALER_PARTICLE_RESULT_OK)
		healer_particle_client_raw_out_async(client, HEALER_PARTICLE_RAW_RESET, on_raw_reset, self);
}

static void
particle_reset(HealerDevice *device)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	if (self->client == NULL || (self->op != OP_NONE && self->op != OP_RESET))
		return;
	self->op = OP_RESET;
	healer_device_emit_log(device, "resetting");
	healer_particle_client_request_async(self->client, HEALER_PARTICLE_REQUEST_RESET, NULL,
	                                     HEALER_PARTICLE_TRANSFER_TIMEOUT_MS, on_reset, self);
}

static void
particle_refresh(HealerDevice *device)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	if (self->op != OP_NONE || self->retry_source != 0 || self->client == NULL)
		return;
	if (self->unreadable != NULL) {
		/* Given up on: asked again, it gets its attempts again. */
		g_clear_pointer(&self->unreadable, g_free);
		self->identify_failures = 0;
		on_identify_retry(self);
		return;
	}
	if (self->opened)
		start_reading(self);
}

static void
particle_close(HealerDevice *device)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	self->op_func = NULL;
	self->op = OP_NONE;
	self->reading = FALSE;
	g_clear_handle_id(&self->retry_source, g_source_remove);
	g_clear_pointer(&self->client, healer_particle_client_close);
}

/* ---- what it is ------------------------------------------------------------------------------------- */

static const char *
particle_get_id(HealerDevice *device)
{
	return HEALER_PARTICLE_DEVICE(device)->id;
}

static guint16
particle_get_platform_id(HealerDevice *device)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	return self->identity.platform != NULL ? self->identity.platform->id : 0;
}

static const HealerDeviceState *
particle_get_state(HealerDevice *device)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	if (self->state == NULL && self->info != NULL)
		self->state = build_state(self);
	return self->state;
}

static const char *
particle_get_state_json(HealerDevice *device)
{
	return HEALER_PARTICLE_DEVICE(device)->state_json;
}

static gboolean
particle_lookup_module(HealerDevice *device, guint function, guint index, guint16 *version)
{
	const HealerDeviceState *state = particle_get_state(device);
	const HealerInstalledModule *m = state != NULL ? healer_device_state_find(state, function, index) : NULL;

	/* A corrupt module is not in the state: it does not count as the step taking effect. */
	if (m == NULL)
		return FALSE;
	*version = m->version;
	return TRUE;
}

static void
particle_get_health(HealerDevice *device, HealerDeviceHealth *health)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	if (self->info == NULL && self->unreadable != NULL) {
		*health = (HealerDeviceHealth){.mode = "unreadable",
		                               .safe_mode_reason = "none",
		                               .boot_mode = "unreadable",
		                               .boot_reason = self->unreadable,
		                               .reset_reason = "unknown",
		                               .led = ""};
		return;
	}
	if (self->info == NULL) {
		*health = (HealerDeviceHealth){.mode = "normal",
		                               .safe_mode_reason = "none",
		                               .boot_mode = "normal",
		                               .boot_reason = "not read yet",
		                               .reset_reason = "unknown",
		                               .led = ""};
		return;
	}
	*health = self->health;
}

static gboolean
particle_is_busy(HealerDevice *device)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	/* Resetting counts: the engine does not judge a device on its way out. */
	return self->op != OP_NONE || self->reading;
}

static void
particle_get_progress(HealerDevice *device, guint64 *done, guint64 *total)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(device);

	*done = self->offset;
	*total = self->module != NULL ? g_bytes_get_size(self->module) : 0;
}

static void
healer_particle_device_dispose(GObject *object)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(object);

	self->op_func = NULL;
	g_clear_handle_id(&self->retry_source, g_source_remove);
	g_clear_pointer(&self->client, healer_particle_client_close);
	G_OBJECT_CLASS(healer_particle_device_parent_class)->dispose(object);
}

static void
healer_particle_device_finalize(GObject *object)
{
	HealerParticleDevice *self = HEALER_PARTICLE_DEVICE(object);

	g_clear_pointer(&self->module, g_bytes_unref);
	g_clear_pointer(&self->pending_info, healer_particle_module_info_free);
	g_clear_pointer(&self->info, healer_particle_module_info_free);
	g_clear_pointer(&self->state, healer_device_state_free);
	g_clear_error(&self->read_error);
	g_free(self->state_json);
	g_free(self->boot_reason);
	g_free(self->unreadable);
	g_free(self->system_version);
	g_free(self->serial);
	g_free(self->id);
	G_OBJECT_CLASS(healer_particle_device_parent_class)->finalize(object);
}

static void
healer_particle_device_class_init(HealerParticleDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	HealerDeviceClass *device_class = HEALER_DEVICE_CLASS(klass);

	object_class->dispose = healer_particle_device_dispose;
	object_class->finalize = healer_particle_device_finalize;
	device_class->get_id = particle_get_id;
	device_class->get_platform_id = particle_get_platform_id;
	device_class->get_state = particle_get_state;
	device_class->get_state_json = particle_get_state_json;
	device_class->lookup_module = particle_lookup_module;
	device_class->get_health = particle_get_health;
	device_class->install_async = particle_install_async;
	device_class->is_busy = particle_is_busy;
	device_class->get_progress = particle_get_progress;
	device_class->reset = particle_reset;
	device_class->refresh = particle_refresh;
	device_class->close = particle_close;
}

static void
healer_particle_device_init(HealerParticleDevice *self)
{
	self->device_mode = DEVICE_MODE_UNKNOWN;
}

HealerDevice *
healer_particle_device_new_usb(const HealerUsbCandidate *candidate, GError **error)
{
	const struct libusb_device_descriptor *descriptor = candidate->descriptor;
	HealerUsbIdentity identity;
	libusb_device_handle *handle;
	HealerParticleDevice *self;
	g_autofree char *serial = NULL;
	g_autofree char *id = NULL;

	if (!healer_usb_identify(descriptor->idVendor, descriptor->idProduct, &identity) ||
	    identity.mode != HEALER_USB_MODE_NORMAL || identity.platform == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%04x:%04x is no Particle device running Device OS that healerd knows",
		            descriptor->idVendor, descriptor->idProduct);
		return NULL;
	}
	/*
	 * The kernel read the serial number at enumeration: no request to the device, no wait.  Where
	 * sysfs has none (a kernel or a container without it), the device is asked for its
	 * iSerialNumber string before anything else (on_serial()).
	 */
	serial = healer_usb_read_serial(candidate->device);
	id = serial != NULL ? healer_usb_id_from_serial(serial) : NULL;
	if (id == NULL && (serial != NULL || descriptor->iSerialNumber == 0)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "%s: no USB serial number (a Particle device's is its device id): it cannot be told "
		            "apart from another",
		            candidate->physical_id);
		return NULL;
	}
	/* Vendor requests to the device: no interface is claimed (the CDC ACM ones stay cdc_acm's). */
	handle = healer_usb_open(candidate->device, candidate->physical_id, error);
	if (handle == NULL)
		return NULL;
	/*
	 * REENUMERATES_AFTER_RESET: a reset (after an install, into DFU mode) brings it back as another
	 * USB device.  Its id is the hardware's in every mode (the DFU bootloader reports the same
	 * serial number): no ID_CHANGES_ACROSS_MODES.  An install is staged and applied at the reset:
	 * no INSTALL_NEEDS_RESET.
	 */
	self = g_object_new(HEALER_TYPE_PARTICLE_DEVICE, "port", candidate->physical_id, "physical-id",
	                    candidate->physical_id, "family", "particle", "transport-name", "usb", "flags",
	                    (guint)HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET, NULL);
	self->vendor_id = descriptor->idVendor;
	self->product_id = descriptor->idProduct;
	self->identity = identity;
	self->serial = g_steal_pointer(&serial);
	self->id = g_steal_pointer(&id);
	self->client = healer_particle_client_new(candidate->context, handle,
	                                          (identity.quirks & HEALER_USB_QUIRK_CONTROL_OUT_NEEDS_DATA) != 0);
	self->serial_index = descriptor->iSerialNumber;
	if (self->id == NULL)
		healer_particle_client_read_string_async(self->client, self->serial_index, on_serial, self);
	else
		healer_particle_client_open_async(self->client, on_opened, self);
	return HEALER_DEVICE(self);
}

gboolean
healer_particle_device_is_ready(HealerParticleDevice *self)
{
	return self->info != NULL;
}

const GError *
healer_particle_device_get_error(HealerParticleDevice *self)
{
	return self->read_error;
}

static json_object *
checks_to_json(guint32 bits)
{
	json_object *a = json_object_new_array();

	for (guint bit = 1; bit != 0 && bit <= 0x80000000u; bit <<= 1) {
		const char *name;
		if (!(bits & bit))
			continue;
		name = healer_particle_check_to_string(bit);
		if (name != NULL) {
			json_object_array_add(a, json_object_new_string(name));
		} else {
			g_autofree char *hex = g_strdup_printf("0x%x", bit);
			json_object_array_add(a, json_object_new_string(hex));
		}
		if (bit == 0x80000000u)
			break;
	}
	return a;
}

json_object *
healer_particle_device_to_json(HealerParticleDevice *self)
{
	json_object *o = json_object_new_object();
	json_object *modules = json_object_new_array();
	g_autofree char *ids = g_strdup_printf("%04x:%04x", self->vendor_id, self->product_id);
	HealerDeviceHealth health;

	particle_get_health(HEALER_DEVICE(self), &health);
	json_object_object_add(o, "usb_id", json_object_new_string(ids));
	json_object_object_add(o, "serial", json_object_new_string(self->serial != NULL ? self->serial : ""));
	json_object_object_add(
	        o, "platform",
	        json_object_new_string(self->identity.platform != NULL ? self->identity.platform->name : ""));
	json_object_object_add(o, "device_os",
	                       self->system_version != NULL ? json_object_new_string(self->system_version) : NULL);
	json_object_object_add(o, "mode", json_object_new_string(health.mode));
	json_object_object_add(o, "safe_mode_reason", json_object_new_string(health.safe_mode_reason));
	json_object_object_add(o, "unreadable",
	                       self->unreadable != NULL ? json_object_new_string(self->unreadable) : NULL);
	json_object_object_add(
	        o, "install_route",
	        json_object_new_string(healer_particle_install_route_to_string(
	                healer_particle_device_get_install_route(particle_get_platform_id(HEALER_DEVICE(self))))));
	json_object_object_add(o, "module_info_format",
	                       self->info != NULL ? json_object_new_string(healer_particle_module_info_format_to_string(
	                                                    self->info->format))
	                                          : NULL);
	for (guint i = 0; self->info != NULL && i < self->info->modules->len; i++) {
		const HealerParticleModule *m = g_ptr_array_index(self->info->modules, i);
		json_object *jm = json_object_new_object();
		g_autofree char *failure = healer_particle_module_describe_failure(self->info, m);
		g_autofree char *escaped = failure != NULL ? healer_text_escape(failure, -1) : NULL;
		const char *function = healer_module_function_to_string(m->function);

		json_object_object_add(jm, "function", json_object_new_string(function != NULL ? function : "unknown"));
		json_object_object_add(jm, "index", json_object_new_int(m->index));
		json_object_object_add(jm, "version", json_object_new_int(m->version));
		json_object_object_add(jm, "size", json_object_new_int64(m->size));
		json_object_object_add(jm, "max_size", json_object_new_int64(m->max_size));
		json_object_object_add(jm, "checked", checks_to_json(m->checked));
		json_object_object_add(jm, "passed", checks_to_json(m->passed & m->checked));
		json_object_object_add(jm, "failed", checks_to_json(healer_particle_module_failed(m)));
		json_object_object_add(jm, "failure", escaped != NULL ? json_object_new_string(escaped) : NULL);
		json_object_array_add(modules, jm);
	}
	json_object_object_add(o, "modules", modules);
	return o;
}
