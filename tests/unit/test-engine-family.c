/*
 * The engine through the family interface alone (device.h, backend.h): a fake
 * family whose devices re-enumerate after a reset (HEALER_DEVICE_FLAG_
 * REENUMERATES_AFTER_RESET, as a USB device that comes back in DFU or under
 * another product id does) and a fake backend that removes each after its
 * reset and plugs what the test says comes back (docs/architecture.md, "How a
 * returning device is matched"):
 *
 *   - the same id on another port and physical id: the step is checked there
 *     and the heal finishes there;
 *   - the same physical id, no id or another id, from a family that says its
 *     id changes across modes: it is the device, under its id;
 *   - the same physical id, another id, or no id, from a family that does not
 *     say so: another device, not taken for it; the step times out, and says
 *     what came instead;
 *   - a device matching one waiting job by id and another by physical id
 *     goes to the one its id names;
 *   - nothing comes back: the step fails after the reset timeout, naming the
 *     id and physical id it waited for and for how long;
 *   - with one job slot, a second device to heal is reported queued while the first heals;
 *   - a device that installs in place (HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET, a bootloader in DFU
 *     mode) is not waited for after a step: once its dependencies are met it is reset once, and
 *     the heal ends; unplugged during its install, it is installed again, whole, when it returns.
 *   - the engine hears its devices through one watch: it connects no handler to any device.
 *   - a device that switches mode for a step instead of installing it (healer_device_mode_switch_new():
 *     a Particle device rebooting into DFU mode) comes back in the other mode, where the same step
 *     runs again and is installed; a second switch for the same step fails the heal, saying so.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "backend.h"
#include "device.h"
#include "engine.h"
#include "events.h"
#include "healer-error.h"
#include "module-writer.h"
#include "store.h"
#include "supply.h"
#include "test-util.h"

#define PLATFORM   6
#define DEVICE_ID  "00112233445566778899aabb"
#define SECOND_ID  "ffeeddccbbaa998877665544"
#define OTHER_ID   "0123456789abcdef01234567"
#define PHYSICAL   "usb-1-1"
#define PHYSICAL_2 "usb-1-2"

/* What comes back after a device's reset, as the backend plugs it: it runs system-part 1 v2. */
typedef struct FakeReturnStruct {
	const char *id; /* what it reports; NULL: nothing */
	const char *physical_id;
	const char *port;
	gboolean id_changes; /* its family sets HEALER_DEVICE_FLAG_ID_CHANGES_ACROSS_MODES */
	/* It comes back in DFU mode (installs in place, not healed yet); it switches mode again when asked to install.
	 */
	gboolean in_place;
	gboolean switches;
	const struct FakeReturnStruct *then; /* what comes back after its own reset */
} FakeReturn;

/* ---- the fake family ---------------------------------------------------- */

#define FAKE_TYPE_DEVICE (fake_device_get_type())
G_DECLARE_FINAL_TYPE(FakeDevice, fake_device, FAKE, DEVICE, HealerDevice)

struct _FakeDevice {
	HealerDevice parent_instance;
	const char *id; /* NULL: it reports none */
	HealerDeviceState *state;
	gboolean healed; /* runs its application with its dependencies met */
	guint installs;
	HealerDeviceInstallFunc func;
	gpointer user_data;
	const FakeReturn *back; /* what comes back after its reset (NULL: nothing) */
	GSourceFunc staged;     /* what happens to it once staged (the backend's), and its data */
	gpointer staged_data;
	/* Installs in place (INSTALL_NEEDS_RESET): runs nothing until reset, reports the module at once. */
	gboolean in_place;
	gboolean unplug_during_install; /* its install ends with it unplugged */
	guint resets;
	gsize installed_size; /* the bytes its last install was given */
	gboolean switches;    /* an install switches mode (nothing written), then it resets */
	gboolean refuses;     /* an install is refused for good (HEALER_ERROR_PERMISSION_DENIED: protected) */
};

G_DEFINE_FINAL_TYPE(FakeDevice, fake_device, HEALER_TYPE_DEVICE)

static const char *
fake_get_id(HealerDevice *device)
{
	return FAKE_DEVICE(device)->id;
}

static guint16
fake_get_platform_id(HealerDevice *device)
{
	(void)device;
	return PLATFORM;
}

static const HealerDeviceState *
fake_get_state(HealerDevice *device)
{
	return FAKE_DEVICE(device)->state;
}

static const char *
fake_get_state_json(HealerDevice *device)
{
	(void)device;
	return "[]";
}

static gboolean
fake_lookup_module(HealerDevice *device, guint function, guint index, guint16 *version)
{
	const HealerInstalledModule *m = healer_device_state_find(FAKE_DEVICE(device)->state, function, index);

	if (m == NULL)
		return FALSE;
	*version = m->version;
	return TRUE;
}

static void
fake_get_health(HealerDevice *device, HealerDeviceHealth *health)
{
	FakeDevice *self = FAKE_DEVICE(device);

	if (self->in_place) {
		health->running = FALSE;
		health->mode = "dfu";
		health->safe_mode_reason = "none";
		health->boot_mode = health->mode;
		health->boot_reason = "in its bootloader";
		health->reset_reason = "unknown";
		health->led = "";
		health->has_app = TRUE;
		health->app_valid = self->healed;
		health->app_dependencies_failed = !self->healed;
		return;
	}
	health->running = self->healed;
	health->mode = self->healed ? "normal" : "safe-mode";
	health->safe_mode_reason = self->healed ? "none" : "dependencies";
	health->boot_mode = health->mode;
	health->boot_reason = health->safe_mode_reason;
	health->reset_reason = "power-on";
	health->led = "";
	health->has_app = TRUE;
	health->app_valid = self->healed;
	health->app_dependencies_failed = !self->healed;
}

/* Staged: the device resets now, and goes (the backend removes it and plugs what comes back, if anything). */
static gboolean
fake_staged(gpointer user_data)
{
	FakeDevice *self = user_data;
	HealerDeviceInstallFunc func = self->func;

	self->func = NULL;
	func(HEALER_DEVICE(self), NULL, self->user_data);
	g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, self->staged, g_object_ref(self), g_object_unref);
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

/* Written in place: it reports the module at once and stays; or it was unplugged midway. */
static gboolean
fake_written(gpointer user_data)
{
	FakeDevice *self = user_data;
	HealerDeviceInstallFunc func = self->func;

	self->func = NULL;
	if (self->unplug_during_install) {
		g_autoptr(GError) error = g_error_new_literal(HEALER_ERROR, HEALER_ERROR_IO, "device went away");
		func(HEALER_DEVICE(self), error, self->user_data);
		healer_device_emit_detached(HEALER_DEVICE(self));
	} else {
		self->healed = TRUE;
		healer_device_state_set(self->state, MODULE_FUNCTION_SYSTEM_PART, 1, 2);
		func(HEALER_DEVICE(self), NULL, self->user_data);
	}
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

/* Nothing written: it says it switches mode, and resets (the backend plugs what comes back). */
static gboolean
fake_switched(gpointer user_data)
{
	FakeDevice *self = user_data;
	HealerDeviceInstallFunc func = self->func;
	g_autoptr(GError) error = healer_device_mode_switch_new("rebooting into %s mode to install it",
	                                                        self->in_place ? "normal" : "DFU");

	self->func = NULL;
	func(HEALER_DEVICE(self), error, self->user_data);
	g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, self->staged, g_object_ref(self), g_object_unref);
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

/* Refused: protected, say; nothing written, and it stays. */
static gboolean
fake_refused(gpointer user_data)
{
	FakeDevice *self = user_data;
	HealerDeviceInstallFunc func = self->func;
	g_autoptr(GError) error =
	        g_error_new_literal(HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED, "the device is protected");

	self->func = NULL;
	func(HEALER_DEVICE(self), error, self->user_data);
	g_object_unref(self);
	return G_SOURCE_REMOVE;
}

static void
fake_install_async(HealerDevice *device, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                   gpointer user_data)
{
	FakeDevice *self = FAKE_DEVICE(device);

	g_assert_cmpuint(module->function, ==, MODULE_FUNCTION_SYSTEM_PART);
	g_assert_cmpuint(module->version, ==, 2);
	self->installs++;
	self->installed_size = g_bytes_get_size(module->bytes);
	self->func = func;
	self->user_data = user_data;
	g_idle_add(self->refuses    ? fake_refused
	           : self->switches ? fake_switched
	           : self->in_place ? fake_written
	                            : fake_staged,
	           g_object_ref(self));
}

static gboolean
fake_is_busy(HealerDevice *device)
{
	return FAKE_DEVICE(device)->func != NULL;
}

static void
fake_get_progress(HealerDevice *device, guint64 *done, guint64 *total)
{
	(void)device;
	*done = *total = 0;
}

static void
fake_nothing(HealerDevice *device)
{
	(void)device;
}

/* An in-place device resets into its application: it goes (the backend plugs what comes back). */
static void
fake_reset(HealerDevice *device)
{
	FakeDevice *self = FAKE_DEVICE(device);

	self->resets++;
	if (self->in_place && self->staged != NULL)
		g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, self->staged, g_object_ref(self), g_object_unref);
}

static void
fake_device_finalize(GObject *object)
{
	healer_device_state_free(FAKE_DEVICE(object)->state);
	G_OBJECT_CLASS(fake_device_parent_class)->finalize(object);
}

static void
fake_device_class_init(FakeDeviceClass *klass)
{
	HealerDeviceClass *device_class = HEALER_DEVICE_CLASS(klass);

	G_OBJECT_CLASS(klass)->finalize = fake_device_finalize;
	device_class->get_id = fake_get_id;
	device_class->get_platform_id = fake_get_platform_id;
	device_class->get_state = fake_get_state;
	device_class->get_state_json = fake_get_state_json;
	device_class->lookup_module = fake_lookup_module;
	device_class->get_health = fake_get_health;
	device_class->install_async = fake_install_async;
	device_class->is_busy = fake_is_busy;
	device_class->get_progress = fake_get_progress;
	device_class->reset = fake_reset;
	device_class->refresh = fake_nothing;
	device_class->close = fake_nothing;
}

static void
fake_device_init(FakeDevice *self)
{
	(void)self;
}

/* `id` (or none) on `port` at `physical_id`: system-part 1 v1 (in safe mode: its application needs v2), or v2. */
static FakeDevice *
fake_device_new(const char *id, const char *port, const char *physical_id, HealerDeviceFlags flags, gboolean healed)
{
	FakeDevice *self = g_object_new(FAKE_TYPE_DEVICE, "port", port, "physical-id", physical_id, "family", "fake",
	                                "transport-name", "fake", "flags",
	                                (guint)(HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET | flags), NULL);

	self->id = id;
	self->healed = healed;
	self->state = healer_device_state_new(PLATFORM);
	healer_device_state_set(self->state, MODULE_FUNCTION_SYSTEM_PART, 1, healed ? 2 : 1);
	healer_device_state_set(self->state, MODULE_FUNCTION_USER_PART, 1, 1);
	healer_device_state_add_dependency(self->state, MODULE_FUNCTION_USER_PART, 1, MODULE_FUNCTION_SYSTEM_PART, 1,
	                                   2);
	return self;
}

/* ---- the fake backend --------------------------------------------------- */

#define FAKE_TYPE_BACKEND (fake_backend_get_type())
G_DECLARE_FINAL_TYPE(FakeBackend, fake_backend, FAKE, BACKEND, HealerBackend)

struct _FakeBackend {
	HealerBackend parent_instance;
	GPtrArray *plugged;     /* FakeDevice*: plugged in now */
	const FakeReturn *back; /* what comes back after the first device's reset (NULL: nothing) */
	FakeDevice *first;      /* the first device, kept to count its installs */
	HealerEngine *engine;   /* to see what it counts while the device is away */
	guint healing_while_away;
	FakeDevice
	        *second; /* with `plug_second`: another device in safe mode (at PHYSICAL_2), plugged after the first */
	gboolean plug_second;
	const FakeReturn *second_back; /* what comes back after its reset (NULL: nothing) */
	char *second_state_while_away; /* what the engine says of the second while the first is away */
	char *second_detail_while_away;
	guint returned_installs; /* modules installed into devices that came back */
	/* The first device installs in place; with unplug_first its first install ends with it unplugged. */
	gboolean in_place;
	gboolean unplug_first;
	FakeDevice *replacement; /* what came back after that unplug */
	gboolean returned;       /* what `back` says came back after a reset */
	gboolean first_switches; /* the first device switches mode for its step */
	gboolean first_refuses;  /* the first device refuses its step for good */
	GPtrArray *all;          /* FakeDevice*: every device ever plugged */
};

G_DEFINE_FINAL_TYPE(FakeBackend, fake_backend, HEALER_TYPE_BACKEND)

static gboolean reenumerate(gpointer user_data);

static gboolean
emit_identified(gpointer user_data)
{
	healer_device_emit_identified(user_data);
	return G_SOURCE_REMOVE;
}

static void
plug(FakeBackend *self, FakeDevice *device)
{
	device->staged = reenumerate;
	device->staged_data = self;
	g_ptr_array_add(self->plugged, device);
	g_ptr_array_add(self->all, g_object_ref(device));
	healer_backend_emit_device_added(HEALER_BACKEND(self), HEALER_DEVICE(device));
	g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, emit_identified, g_object_ref(device), g_object_unref);
}

/* What the engine says of `id` now (its state and detail), if it lists it. */
static void
note_device(HealerEngine *engine, const char *id, char **state, char **detail)
{
	g_autoptr(GPtrArray) devices = healer_engine_list_devices(engine);

	for (guint i = 0; i < devices->len; i++) {
		const HealerDeviceInfo *info = g_ptr_array_index(devices, i);

		if (g_str_equal(info->id, id)) {
			*state = g_strdup(info->state);
			*detail = g_strdup(info->detail);
		}
	}
}

/* The old node goes after its reset; what comes back (if anything) is another node, maybe another port. */
static gboolean
reenumerate(gpointer user_data)
{
	FakeDevice *gone = user_data;
	FakeBackend *self = gone->staged_data;
	const FakeReturn *back = gone->back;
	guint n_ids = 0;
	g_autofree guint *ids = g_signal_list_ids(HEALER_TYPE_DEVICE, &n_ids);

	/*
	 * The engine serves it (announced, healing) through its watch: no handler on the device itself.
	 * This backend's own (fake_start() watches an in-place device's "detached") is blocked while
	 * the check looks, since blocked handlers do not count.
	 */
	g_signal_handlers_block_matched(gone, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, self);
	for (guint i = 0; i < n_ids; i++)
		g_assert_false(g_signal_has_handler_pending(gone, ids[i], 0, FALSE));
	g_signal_handlers_unblock_matched(gone, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, self);
	g_assert_true(g_ptr_array_find(self->plugged, gone, NULL));
	healer_backend_emit_device_removed(HEALER_BACKEND(self), HEALER_DEVICE(gone), "detached");
	if (gone == self->first) {
		/* The heal still holds its job slot while its device is away. */
		self->healing_while_away = healer_engine_count_healing(self->engine);
		if (self->second != NULL)
			note_device(self->engine, SECOND_ID, &self->second_state_while_away,
			            &self->second_detail_while_away);
	}
	g_ptr_array_remove(self->plugged, gone);
	if (back != NULL) {
		HealerDeviceFlags flags = (back->id_changes ? HEALER_DEVICE_FLAG_ID_CHANGES_ACROSS_MODES : 0) |
		                          (back->in_place ? HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET : 0);
		FakeDevice *device = fake_device_new(back->id, back->port, back->physical_id, flags, !back->in_place);
		device->in_place = back->in_place;
		device->switches = back->switches;
		device->back = back->then;
		plug(self, device);
	}
	return G_SOURCE_REMOVE;
}

static FakeDevice *
in_place_device_new(FakeBackend *self)
{
	FakeDevice *device =
	        fake_device_new(DEVICE_ID, "/dev/fake-dfu0", PHYSICAL, HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET, FALSE);

	device->in_place = TRUE;
	device->back = self->back;
	return device;
}

/* Unplugged during its install: gone, and plugged back at once (the same device, in DFU still). */
static void
on_in_place_detached(HealerDevice *device, gpointer user_data)
{
	FakeBackend *self = user_data;

	g_signal_handlers_disconnect_by_data(device, self);
	healer_backend_emit_device_removed(HEALER_BACKEND(self), device, "detached");
	g_ptr_array_remove(self->plugged, device);
	self->replacement = in_place_device_new(self);
	plug(self, g_object_ref(self->replacement));
}

static void
fake_start(HealerBackend *backend)
{
	FakeBackend *self = FAKE_BACKEND(backend);

	if (self->in_place) {
		self->first = in_place_device_new(self);
		self->first->unplug_during_install = self->unplug_first;
		g_signal_connect(self->first, "detached", G_CALLBACK(on_in_place_detached), self);
	} else {
		self->first = fake_device_new(DEVICE_ID, "/dev/fake0", PHYSICAL, 0, FALSE);
		self->first->switches = self->first_switches;
		self->first->refuses = self->first_refuses;
	}
	self->first->back = self->back;
	plug(self, g_object_ref(self->first));
	if (self->plug_second) {
		self->second = fake_device_new(SECOND_ID, "/dev/fake1", PHYSICAL_2, 0, FALSE);
		self->second->back = self->second_back;
		plug(self, g_object_ref(self->second));
	}
}

static void
fake_stop(HealerBackend *backend)
{
	FakeBackend *self = FAKE_BACKEND(backend);

	for (guint i = 0; i < self->plugged->len; i++) {
		FakeDevice *device = g_ptr_array_index(self->plugged, i);

		if (device != self->first && device != self->second)
			self->returned_installs += device->installs;
	}
	g_ptr_array_set_size(self->plugged, 0);
}

static void
fake_backend_finalize(GObject *object)
{
	FakeBackend *self = FAKE_BACKEND(object);

	g_ptr_array_unref(self->plugged);
	g_ptr_array_unref(self->all);
	g_clear_object(&self->first);
	g_clear_object(&self->second);
	g_clear_object(&self->replacement);
	g_free(self->second_state_while_away);
	g_free(self->second_detail_while_away);
	G_OBJECT_CLASS(fake_backend_parent_class)->finalize(object);
}

static void
fake_backend_class_init(FakeBackendClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = fake_backend_finalize;
	HEALER_BACKEND_CLASS(klass)->start = fake_start;
	HEALER_BACKEND_CLASS(klass)->stop = fake_stop;
}

static void
fake_backend_init(FakeBackend *self)
{
	self->plugged = g_ptr_array_new_with_free_func(g_object_unref);
	self->all = g_ptr_array_new_with_free_func(g_object_unref);
}

/* ---- the tests ---------------------------------------------------------- */

typedef struct {
	/* The test's: */
	GMainLoop *loop;
	const FakeReturn *back;        /* what comes back after the first device's reset (NULL: nothing) */
	gboolean second;               /* a second device is plugged: both heals must end */
	const FakeReturn *second_back; /* what comes back after its reset (NULL: nothing) */
	guint max_concurrent_jobs;
	guint max_attempts;     /* run_in_place(): 0 for 3 */
	gboolean first_refuses; /* run_in_place(): the first device, in normal mode, refuses its step for good */
	/* What was seen: */
	gboolean finished, success; /* of the first device's heal */
	char *message;
	gboolean second_finished, second_success;
	char *second_message;
	char *second_state_while_away, *second_detail_while_away;
	char *note;         /* the text of the last NOTE record */
	char *attached;     /* the text of the last DEVICE_ATTACHED record of DEVICE_ID */
	GPtrArray *devices; /* what the engine lists at the end */
} Seen;

static void
seen_clear(Seen *seen)
{
	g_free(seen->message);
	g_free(seen->second_message);
	g_free(seen->second_state_while_away);
	g_free(seen->second_detail_while_away);
	g_free(seen->note);
	g_free(seen->attached);
	g_clear_pointer(&seen->devices, g_ptr_array_unref);
	g_clear_pointer(&seen->loop, g_main_loop_unref);
}

static void
on_event(const HealerEvent *event, gpointer user_data)
{
	Seen *seen = user_data;

	if (event->kind == HEALER_EVENT_NOTE) {
		g_free(seen->note);
		seen->note = g_strdup(event->text);
	}
	if (event->kind == HEALER_EVENT_DEVICE_ATTACHED && g_strcmp0(event->device_id, DEVICE_ID) == 0) {
		g_free(seen->attached);
		seen->attached = g_strdup(event->text);
	}
	if (event->kind != HEALER_EVENT_HEAL_FINISHED)
		return;
	if (seen->second && g_strcmp0(event->device_id, SECOND_ID) == 0) {
		seen->second_finished = TRUE;
		seen->second_success = event->success;
		seen->second_message = g_strdup(event->reason);
		if (seen->finished)
			g_main_loop_quit(seen->loop);
		return;
	}
	g_assert_cmpstr(event->device_id, ==, DEVICE_ID);
	seen->finished = TRUE;
	seen->success = event->success;
	seen->message = g_strdup(event->reason);
	if (!seen->second || seen->second_finished)
		g_main_loop_quit(seen->loop);
}

static gboolean
on_timeout(gpointer user_data)
{
	(void)user_data;
	g_error("the heal did not finish in time");
	return G_SOURCE_REMOVE;
}

/* Heals the first device (and the second, with seen->second) until every heal has finished. */
static void
run_heal(Seen *seen)
{
	g_autofree char *state = test_tmpdir_new();
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(FakeBackend) backend = g_object_new(FAKE_TYPE_BACKEND, "name", "fake", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) image = g_bytes_new_static("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	HealerModuleSpec spec = {.start_address = 0x08020000,
	                         .platform_id = PLATFORM,
	                         .function = MODULE_FUNCTION_SYSTEM_PART,
	                         .index = 1,
	                         .version = 2};
	g_autoptr(GBytes) module = healer_module_write(&spec, image, &error);
	guint timeout, subscription;

	g_assert_no_error(error);
	seen->loop = g_main_loop_new(NULL, FALSE);
	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	config->reset_timeout_s = 1;
	config->max_attempts = 1;
	config->max_concurrent_jobs = seen->max_concurrent_jobs;
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	g_assert_true(healer_store_import_bytes(store, "system-part1.bin", module, NULL, &error));
	g_assert_no_error(error);
	backend->back = seen->back;
	backend->plug_second = seen->second;
	backend->second_back = seen->second_back;
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	backend->engine = engine;
	subscription = healer_event_stream_subscribe(healer_events(), on_event, seen);
	healer_engine_add_backend(engine, HEALER_BACKEND(backend));
	healer_engine_start(engine);
	timeout = g_timeout_add_seconds(30, on_timeout, NULL);
	g_main_loop_run(seen->loop);
	g_source_remove(timeout);
	healer_event_stream_unsubscribe(healer_events(), subscription);
	/* The module went to the first device, once, and to no device that came back: those only reported. */
	g_assert_cmpuint(backend->first->installs, ==, 1);
	if (seen->second && seen->max_concurrent_jobs == 0) {
		/* Two heals at once: the second's may have started by then, or not. */
		g_assert_cmpuint(backend->healing_while_away, >=, 1);
		g_assert_cmpuint(backend->second->installs, ==, 1);
	} else {
		g_assert_cmpuint(backend->healing_while_away, ==, 1);
	}
	seen->second_state_while_away = g_steal_pointer(&backend->second_state_while_away);
	seen->second_detail_while_away = g_steal_pointer(&backend->second_detail_while_away);
	seen->devices = healer_engine_list_devices(engine);
	g_clear_pointer(&engine, healer_engine_free);
	g_assert_cmpuint(backend->returned_installs, ==, 0);
	test_tmpdir_free(g_steal_pointer(&state));
}

/* The one device the engine lists at the end, which must be `id` on `port`, healthy. */
static void
assert_one_device(const Seen *seen, const char *id, const char *port)
{
	const HealerDeviceInfo *info;

	g_assert_cmpuint(seen->devices->len, ==, 1);
	info = g_ptr_array_index(seen->devices, 0);
	g_assert_cmpstr(info->id, ==, id);
	g_assert_cmpstr(info->port, ==, port);
	g_assert_cmpstr(info->state, ==, "healthy");
	g_assert_cmpstr(info->transport, ==, "fake");
}

/*
 * It comes back reporting its id on another port and another physical id (another hub): the step is
 * checked there, by id alone, and the heal ends there.
 */
static void
test_same_id_on_another_port(void)
{
	static const FakeReturn back = {.id = DEVICE_ID, .physical_id = "usb-2-3", .port = "/dev/fake-dfu1"};
	Seen seen = {.back = &back};

	run_heal(&seen);
	g_assert_true(seen.finished);
	g_assert_cmpstr(seen.message, ==, "the application runs");
	g_assert_true(seen.success);
	assert_one_device(&seen, DEVICE_ID, "/dev/fake-dfu1");
	g_assert_cmpstr(seen.attached, ==, "attached on /dev/fake-dfu1: platform 6, normal, reset reason power-on");
	seen_clear(&seen);
}

/*
 * It comes back where it was reset, reporting no id, and its family says its id changes across modes
 * (a bootloader that cannot identify): it is the device, under its id.
 */
static void
test_same_physical_id_no_id(void)
{
	static const FakeReturn back = {.physical_id = PHYSICAL, .port = "/dev/fake-dfu1", .id_changes = TRUE};
	Seen seen = {.back = &back};

	run_heal(&seen);
	g_assert_true(seen.success);
	g_assert_cmpstr(seen.message, ==, "the application runs");
	assert_one_device(&seen, DEVICE_ID, "/dev/fake-dfu1");
	g_assert_cmpstr(seen.attached, ==,
	                "attached on /dev/fake-dfu1: platform 6, normal, reset reason power-on (back at " PHYSICAL
	                " after its reset, reporting no id)");
	seen_clear(&seen);
}

/* Another id there (a bootloader identifying by its USB serial), from a family that says ids change: the device. */
static void
test_same_physical_id_another_id(void)
{
	static const FakeReturn back = {
	        .id = OTHER_ID, .physical_id = PHYSICAL, .port = "/dev/fake-dfu1", .id_changes = TRUE};
	Seen seen = {.back = &back};

	run_heal(&seen);
	g_assert_true(seen.success);
	g_assert_cmpstr(seen.message, ==, "the application runs");
	assert_one_device(&seen, DEVICE_ID, "/dev/fake-dfu1");
	g_assert_cmpstr(seen.attached, ==,
	                "attached on /dev/fake-dfu1: platform 6, normal, reset reason power-on (back at " PHYSICAL
	                " after its reset, reporting id " OTHER_ID ")");
	seen_clear(&seen);
}

/*
 * Another id where it was reset, from a family whose ids are the hardware's: another device (the one
 * there was swapped).  It is not taken for it: it is listed as itself, nothing is flashed into it, and the
 * step times out saying what came instead.
 */
static void
test_other_device_at_the_physical_id(void)
{
	static const FakeReturn back = {.id = OTHER_ID, .physical_id = PHYSICAL, .port = "/dev/fake-other"};
	Seen seen = {.back = &back};

	run_heal(&seen);
	g_assert_true(seen.finished);
	g_assert_false(seen.success);
	g_assert_cmpstr(seen.message, ==,
	                "installing system-part 1 v2: device " DEVICE_ID " (physical id " PHYSICAL
	                ") did not come back within 1 s; device " OTHER_ID " came at " PHYSICAL
	                " instead (gave up after 1 attempts)");
	g_assert_cmpstr(seen.note, ==,
	                "device " OTHER_ID " came at " PHYSICAL ", where device " DEVICE_ID
	                " was reset, and is another device: the heal of " DEVICE_ID
	                " waits for it by its id (up to 1 s after its reset)");
	assert_one_device(&seen, OTHER_ID, "/dev/fake-other");
	seen_clear(&seen);
}

/* No id where it was reset, from a family that does not say its ids change: nobody, not the device. */
static void
test_no_id_at_the_physical_id(void)
{
	static const FakeReturn back = {.physical_id = PHYSICAL, .port = "/dev/fake-other"};
	Seen seen = {.back = &back};

	run_heal(&seen);
	g_assert_true(seen.finished);
	g_assert_false(seen.success);
	g_assert_cmpstr(seen.message, ==,
	                "installing system-part 1 v2: device " DEVICE_ID " (physical id " PHYSICAL
	                ") did not come back within 1 s (gave up after 1 attempts)");
	g_assert_cmpuint(seen.devices->len, ==, 0);
	seen_clear(&seen);
}

/*
 * Both devices reset; at the second's physical id comes a device that may change ids across modes and
 * reports the first's id.  The id comes first: it is the first device, and the second times out.
 */
static void
test_id_before_physical_id(void)
{
	static const FakeReturn second_back = {
	        .id = DEVICE_ID, .physical_id = PHYSICAL_2, .port = "/dev/fake-dfu2", .id_changes = TRUE};
	Seen seen = {.second = TRUE, .second_back = &second_back};

	run_heal(&seen);
	g_assert_true(seen.success);
	g_assert_cmpstr(seen.message, ==, "the application runs");
	g_assert_true(seen.second_finished);
	g_assert_false(seen.second_success);
	g_assert_cmpstr(seen.second_message, ==,
	                "installing system-part 1 v2: device " SECOND_ID " (physical id " PHYSICAL_2
	                ") did not come back within 1 s; device " DEVICE_ID " came at " PHYSICAL_2
	                " instead (gave up after 1 attempts)");
	assert_one_device(&seen, DEVICE_ID, "/dev/fake-dfu2");
	seen_clear(&seen);
}

/*
 * Nothing comes back within the reset timeout: the step fails (here: the heal, 1 attempt), saying the id
 * and physical id it waited for, and how long.
 */
static void
test_device_that_does_not_return(void)
{
	Seen seen = {0};

	run_heal(&seen);
	g_assert_true(seen.finished);
	g_assert_false(seen.success);
	g_assert_cmpstr(seen.message, ==,
	                "installing system-part 1 v2: device " DEVICE_ID " (physical id " PHYSICAL
	                ") did not come back within 1 s (gave up after 1 attempts)");
	g_assert_cmpuint(seen.devices->len, ==, 0);
	seen_clear(&seen);
}

/* One job slot, two devices to heal: the second is queued (not in safe-mode) until the first heal ends. */
static void
test_second_device_queued_for_a_job_slot(void)
{
	static const FakeReturn back = {.id = DEVICE_ID, .physical_id = PHYSICAL, .port = "/dev/fake-dfu1"};
	Seen seen = {.back = &back, .second = TRUE, .max_concurrent_jobs = 1};

	run_heal(&seen);
	g_assert_true(seen.finished);
	g_assert_true(seen.success);
	g_assert_true(seen.second_finished);
	g_assert_cmpstr(seen.second_state_while_away, ==, "queued");
	g_assert_cmpstr(seen.second_detail_while_away, ==, "waiting for a free heal job slot");
	seen_clear(&seen);
}

/*
 * Heals a device that installs in place (a bootloader in DFU mode) until its heal has ended and what
 * comes back after its reset (normal mode, the same id) is plugged; with `unplug_first`, its first
 * install ends with it unplugged and it is plugged back at once.
 */
static void
run_in_place(Seen *seen, gboolean unplug_first, gboolean first_switches, FakeBackend **backend_out)
{
	g_autofree char *state = test_tmpdir_new();
	g_autoptr(HealerConfig) config = healer_config_new_defaults();
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	HealerEngine *engine;
	FakeBackend *backend = g_object_new(FAKE_TYPE_BACKEND, "name", "fake", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) image = g_bytes_new_static("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	HealerModuleSpec spec = {.start_address = 0x08020000,
	                         .platform_id = PLATFORM,
	                         .function = MODULE_FUNCTION_SYSTEM_PART,
	                         .index = 1,
	                         .version = 2};
	g_autoptr(GBytes) module = healer_module_write(&spec, image, &error);
	guint timeout, subscription;

	g_assert_no_error(error);
	seen->loop = g_main_loop_new(NULL, FALSE);
	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	config->reset_timeout_s = 1;
	config->max_attempts = seen->max_attempts != 0 ? seen->max_attempts : 3;
	config->retry_backoff_s = 1;
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	g_assert_true(healer_store_import_bytes(store, "system-part1.bin", module, NULL, &error));
	g_assert_no_error(error);
	backend->back = seen->back;
	backend->in_place = !first_switches && !seen->first_refuses;
	backend->first_refuses = seen->first_refuses;
	backend->unplug_first = unplug_first;
	backend->first_switches = first_switches;
	supply = healer_supply_new(config, store, NULL);
	engine = healer_engine_new(config, supply);
	backend->engine = engine;
	subscription = healer_event_stream_subscribe(healer_events(), on_event, seen);
	healer_engine_add_backend(engine, HEALER_BACKEND(backend));
	healer_engine_start(engine);
	timeout = g_timeout_add_seconds(30, on_timeout, NULL);
	g_main_loop_run(seen->loop);
	/* The heal has ended; the reset it asked for brings the device back in normal mode (if it succeeded). */
	while (seen->success &&
	       (backend->plugged->len == 0 || FAKE_DEVICE(g_ptr_array_index(backend->plugged, 0))->in_place))
		g_main_context_iteration(NULL, TRUE);
	g_source_remove(timeout);
	healer_event_stream_unsubscribe(healer_events(), subscription);
	/* Let the engine hear of the device that came back. */
	while (g_main_context_iteration(NULL, FALSE))
		;
	seen->devices = healer_engine_list_devices(engine);
	healer_engine_free(engine);
	g_assert_cmpuint(g_bytes_get_size(module), >, 0);
	g_object_set_data_full(G_OBJECT(backend), "module-size", GSIZE_TO_POINTER(g_bytes_get_size(module)), NULL);
	*backend_out = backend;
	test_tmpdir_free(g_steal_pointer(&state));
}

/* Installed in place, its dependencies met: reset once (not waited for as a step), and the heal ends. */
static void
test_in_place_reset_once(void)
{
	static const FakeReturn back = {.id = DEVICE_ID, .physical_id = PHYSICAL, .port = "/dev/fake0"};
	Seen seen = {.back = &back};
	g_autoptr(FakeBackend) backend = NULL;

	run_in_place(&seen, FALSE, FALSE, &backend);
	g_assert_true(seen.finished);
	g_assert_true(seen.success);
	g_assert_cmpstr(seen.message, ==, "its dependencies are met; reset to start its application");
	g_assert_cmpuint(backend->first->installs, ==, 1);
	g_assert_cmpuint(backend->first->resets, ==, 1);
	/* Back in normal mode, running: healthy, and nothing more is installed. */
	assert_one_device(&seen, DEVICE_ID, "/dev/fake0");
	seen_clear(&seen);
}

/* Unplugged during its install: the attempt fails; back, the module is installed again, whole, then reset. */
static void
test_in_place_unplugged_installs_again(void)
{
	static const FakeReturn back = {.id = DEVICE_ID, .physical_id = PHYSICAL, .port = "/dev/fake0"};
	Seen seen = {.back = &back};
	g_autoptr(FakeBackend) backend = NULL;
	gsize size;

	run_in_place(&seen, TRUE, FALSE, &backend);
	size = GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(backend), "module-size"));
	g_assert_true(seen.success);
	g_assert_cmpuint(backend->first->installs, ==, 1);
	g_assert_cmpuint(backend->first->resets, ==, 0);
	g_assert_nonnull(backend->replacement);
	g_assert_cmpuint(backend->replacement->installs, ==, 1);
	g_assert_cmpuint(backend->replacement->installed_size, ==, size);
	g_assert_cmpuint(backend->replacement->resets, ==, 1);
	assert_one_device(&seen, DEVICE_ID, "/dev/fake0");
	seen_clear(&seen);
}

/* Installs in `mode` of the devices plugged (NULL: all), after the first. */
static guint
installs_after_first(FakeBackend *backend, gboolean in_place)
{
	guint n = 0;

	for (guint i = 0; i < backend->all->len; i++) {
		FakeDevice *device = g_ptr_array_index(backend->all, i);
		if (device != backend->first && device->in_place == in_place)
			n += device->installs;
	}
	return n;
}

/*
 * The device switches to DFU mode for its step (nothing written) and comes back in DFU mode at the
 * same physical id with the same id: the step runs again there, is written in place, the device is
 * reset into normal mode, and the heal ends.
 */
static void
test_mode_switch_runs_the_step_again(void)
{
	static const FakeReturn normal = {.id = DEVICE_ID, .physical_id = PHYSICAL, .port = "/dev/fake0"};
	static const FakeReturn dfu = {
	        .id = DEVICE_ID, .physical_id = PHYSICAL, .port = "/dev/fake-dfu0", .in_place = TRUE, .then = &normal};
	Seen seen = {.back = &dfu};
	g_autoptr(FakeBackend) backend = NULL;

	run_in_place(&seen, FALSE, TRUE, &backend);
	g_assert_true(seen.finished);
	g_assert_cmpstr(seen.message, ==, "its dependencies are met; reset to start its application");
	g_assert_true(seen.success);
	/* Asked once in normal mode (it switched), written once in DFU mode, nothing in normal mode after. */
	g_assert_cmpuint(backend->first->installs, ==, 1);
	g_assert_cmpuint(installs_after_first(backend, TRUE), ==, 1);
	g_assert_cmpuint(installs_after_first(backend, FALSE), ==, 0);
	g_assert_nonnull(strstr(seen.note, "system-part 1 v2: rebooting into DFU mode to install it"));
	assert_one_device(&seen, DEVICE_ID, "/dev/fake0");
	seen_clear(&seen);
}

/* It switches mode for the step, and in the other mode switches back for the same step: the heal fails, saying so. */
static void
test_mode_switch_twice_fails(void)
{
	static const FakeReturn dfu = {
	        .id = DEVICE_ID, .physical_id = PHYSICAL, .port = "/dev/fake-dfu0", .in_place = TRUE, .switches = TRUE};
	Seen seen = {.back = &dfu, .max_attempts = 1};
	g_autoptr(FakeBackend) backend = NULL;

	run_in_place(&seen, FALSE, TRUE, &backend);
	g_assert_true(seen.finished);
	g_assert_false(seen.success);
	g_assert_nonnull(strstr(seen.message, "the device switched mode for it twice (rebooting into normal mode to "
	                                      "install it); it installs in neither mode"));
	g_assert_cmpuint(backend->first->installs, ==, 1);
	g_assert_cmpuint(installs_after_first(backend, TRUE), ==, 1);
	seen_clear(&seen);
}

/* A step the device refuses for good (PERMISSION_DENIED): the heal fails at once, with no retry, saying why. */
static void
test_refused_not_retried(void)
{
	Seen seen = {.first_refuses = TRUE};
	g_autoptr(FakeBackend) backend = NULL;

	run_in_place(&seen, FALSE, FALSE, &backend);
	g_assert_true(seen.finished);
	g_assert_false(seen.success);
	g_assert_cmpstr(seen.message, ==,
	                "installing system-part 1 v2: the device is protected (not retried: the device refuses it "
	                "until that changes)");
	/* Three attempts were allowed: one was made. */
	g_assert_cmpuint(backend->first->installs, ==, 1);
	seen_clear(&seen);
}

/* The engine's records (a failed heal is a warning) are not what is tested here: only criticals count. */
static GLogWriterOutput
quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return g_log_writer_default(level, fields, n_fields, user_data);
	return G_LOG_WRITER_HANDLED;
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_log_set_writer_func(quiet_writer, NULL, NULL);
	g_test_add_func("/engine-family/same-id-on-another-port", test_same_id_on_another_port);
	g_test_add_func("/engine-family/same-physical-id-no-id", test_same_physical_id_no_id);
	g_test_add_func("/engine-family/same-physical-id-another-id", test_same_physical_id_another_id);
	g_test_add_func("/engine-family/other-device-at-the-physical-id", test_other_device_at_the_physical_id);
	g_test_add_func("/engine-family/no-id-at-the-physical-id", test_no_id_at_the_physical_id);
	g_test_add_func("/engine-family/id-before-physical-id", test_id_before_physical_id);
	g_test_add_func("/engine-family/device-that-does-not-return", test_device_that_does_not_return);
	g_test_add_func("/engine-family/second-device-queued-for-a-job-slot", test_second_device_queued_for_a_job_slot);
	g_test_add_func("/engine-family/in-place/reset-once", test_in_place_reset_once);
	g_test_add_func("/engine-family/in-place/unplugged-installs-again", test_in_place_unplugged_installs_again);
	g_test_add_func("/engine-family/mode-switch/runs-the-step-again", test_mode_switch_runs_the_step_again);
	g_test_add_func("/engine-family/mode-switch/twice-fails", test_mode_switch_twice_fails);
	g_test_add_func("/engine-family/refused-not-retried", test_refused_not_retried);
	return g_test_run();
}
