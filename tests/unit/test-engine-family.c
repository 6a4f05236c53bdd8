/*
 * The engine through the family interface alone (device.h, backend.h): a fake
 * family whose devices re-enumerate after a reset (HEALER_DEVICE_FLAG_
 * REENUMERATES_AFTER_RESET, as a USB device that comes back in DFU or under
 * another product id does) and a fake backend that adds and removes them.
 *
 *   - a step installed on such a device is checked on the device that comes
 *     back with the same id, on another port, and the heal finishes there;
 *   - a device that does not come back within the reset timeout fails the step;
 *   - with one job slot, a second device to heal is reported queued while the first heals;
 *   - the engine hears its devices through one watch: it connects no handler to any device.
 */
#include <glib/gstdio.h>

#include "backend.h"
#include "device.h"
#include "engine.h"
#include "events.h"
#include "module-writer.h"
#include "store.h"
#include "supply.h"
#include "test-util.h"

#define PLATFORM  6
#define DEVICE_ID "00112233445566778899aabb"
#define SECOND_ID "ffeeddccbbaa998877665544"

/* ---- the fake family ---------------------------------------------------- */

#define FAKE_TYPE_DEVICE (fake_device_get_type())
G_DECLARE_FINAL_TYPE(FakeDevice, fake_device, FAKE, DEVICE, HealerDevice)

struct _FakeDevice {
	HealerDevice parent_instance;
	const char *id; /* DEVICE_ID unless a test plugs a second one */
	HealerDeviceState *state;
	gboolean healed; /* runs its application with its dependencies met */
	guint installs;
	HealerDeviceInstallFunc func;
	gpointer user_data;
	GSourceFunc staged; /* what happens to it once staged (the backend's), and its data */
	gpointer staged_data;
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

/* Staged: the device resets now, and goes (the backend removes it; the test decides whether it returns). */
static gboolean
fake_staged(gpointer user_data)
{
	FakeDevice *self = user_data;
	HealerDeviceInstallFunc func = self->func;

	self->func = NULL;
	func(HEALER_DEVICE(self), NULL, self->user_data);
	if (self->staged != NULL)
		g_idle_add(self->staged, self->staged_data);
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
	self->func = func;
	self->user_data = user_data;
	g_idle_add(fake_staged, g_object_ref(self));
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
	device_class->reset = fake_nothing;
	device_class->refresh = fake_nothing;
	device_class->close = fake_nothing;
}

static void
fake_device_init(FakeDevice *self)
{
	(void)self;
}

/* On `port`: system-part 1 v1 (in safe mode: its application needs v2), or v2 (healed). */
static FakeDevice *
fake_device_new(const char *port, gboolean healed)
{
	FakeDevice *self = g_object_new(FAKE_TYPE_DEVICE, "port", port, "physical-id", "usb-1-1", "family", "fake",
	                                "transport-name", "fake", "flags",
	                                (guint)HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET, NULL);

	self->id = DEVICE_ID;
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
	FakeDevice *device; /* the one plugged in now, or NULL */
	gboolean comes_back;
	FakeDevice *first;    /* the first device, kept to count its installs */
	HealerEngine *engine; /* to see what it counts while the device is away */
	guint healing_while_away;
	FakeDevice *second; /* with `plug_second`: another device in safe mode, plugged after the first */
	gboolean plug_second;
	char *second_state_while_away; /* what the engine says of the second while the first is away */
	char *second_detail_while_away;
};

G_DEFINE_FINAL_TYPE(FakeBackend, fake_backend, HEALER_TYPE_BACKEND)

static gboolean
emit_identified(gpointer user_data)
{
	healer_device_emit_identified(user_data);
	return G_SOURCE_REMOVE;
}

static void
plug(FakeBackend *self, FakeDevice *device)
{
	self->device = device;
	healer_backend_emit_device_added(HEALER_BACKEND(self), HEALER_DEVICE(device));
	g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, emit_identified, g_object_ref(device), g_object_unref);
}

/* The old node goes after its reset; the device returns as another one, on another port (or never). */
static gboolean
reenumerate(gpointer user_data)
{
	FakeBackend *self = user_data;
	g_autoptr(FakeDevice) gone = g_steal_pointer(&self->device);
	guint n_ids = 0;
	g_autofree guint *ids = g_signal_list_ids(HEALER_TYPE_DEVICE, &n_ids);

	/* The engine serves it (announced, healing) through its watch: no handler on the device itself. */
	for (guint i = 0; i < n_ids; i++)
		g_assert_false(g_signal_has_handler_pending(gone, ids[i], 0, FALSE));
	healer_backend_emit_device_removed(HEALER_BACKEND(self), HEALER_DEVICE(gone), "detached");
	/* The heal still holds its job slot while its device is away. */
	self->healing_while_away = healer_engine_count_healing(self->engine);
	if (self->second != NULL) {
		g_autoptr(GPtrArray) devices = healer_engine_list_devices(self->engine);

		for (guint i = 0; i < devices->len; i++) {
			const HealerDeviceInfo *info = g_ptr_array_index(devices, i);

			if (g_str_equal(info->id, SECOND_ID)) {
				self->second_state_while_away = g_strdup(info->state);
				self->second_detail_while_away = g_strdup(info->detail);
			}
		}
	}
	if (self->comes_back)
		plug(self, fake_device_new("/dev/fake-dfu1", TRUE));
	return G_SOURCE_REMOVE;
}

static void
fake_start(HealerBackend *backend)
{
	FakeBackend *self = FAKE_BACKEND(backend);

	self->first = fake_device_new("/dev/fake0", FALSE);
	self->first->staged = reenumerate;
	self->first->staged_data = self;
	plug(self, g_object_ref(self->first));
	if (self->plug_second) {
		self->second = fake_device_new("/dev/fake1", FALSE);
		self->second->id = SECOND_ID;
		healer_backend_emit_device_added(backend, HEALER_DEVICE(self->second));
		g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, emit_identified, g_object_ref(self->second), g_object_unref);
	}
}

static void
fake_stop(HealerBackend *backend)
{
	g_clear_object(&FAKE_BACKEND(backend)->device);
	g_clear_object(&FAKE_BACKEND(backend)->second);
}

static void
fake_backend_finalize(GObject *object)
{
	g_clear_object(&FAKE_BACKEND(object)->device);
	g_clear_object(&FAKE_BACKEND(object)->first);
	g_clear_object(&FAKE_BACKEND(object)->second);
	g_free(FAKE_BACKEND(object)->second_state_while_away);
	g_free(FAKE_BACKEND(object)->second_detail_while_away);
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
	(void)self;
}

/* ---- the tests ---------------------------------------------------------- */

typedef struct {
	GMainLoop *loop;
	gboolean finished, success; /* of the first device's heal */
	char *message;
	gboolean second; /* a second device is plugged: both heals must end */
	gboolean second_finished;
	char *second_state_while_away, *second_detail_while_away;
} Seen;

static void
on_event(const HealerEvent *event, gpointer user_data)
{
	Seen *seen = user_data;

	if (event->kind != HEALER_EVENT_HEAL_FINISHED)
		return;
	if (seen->second && g_strcmp0(event->device_id, SECOND_ID) == 0) {
		seen->second_finished = TRUE;
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

static void
run_heal(gboolean comes_back, Seen *seen, GPtrArray **devices)
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
	g_free(config->state_dir);
	config->state_dir = g_strdup(state);
	config->reset_timeout_s = 1;
	config->max_attempts = 1;
	store = healer_store_open(state, &error);
	g_assert_no_error(error);
	g_assert_true(healer_store_import_bytes(store, "system-part1.bin", module, NULL, &error));
	g_assert_no_error(error);
	backend->comes_back = comes_back;
	backend->plug_second = seen->second;
	if (seen->second)
		config->max_concurrent_jobs = 1;
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
	/* The module went to the first device, once; the one that came back only reported. */
	g_assert_cmpuint(backend->first->installs, ==, 1);
	g_assert_cmpuint(backend->healing_while_away, ==, 1);
	seen->second_state_while_away = g_steal_pointer(&backend->second_state_while_away);
	seen->second_detail_while_away = g_steal_pointer(&backend->second_detail_while_away);
	*devices = healer_engine_list_devices(engine);
	g_clear_pointer(&engine, healer_engine_free);
	test_tmpdir_free(g_steal_pointer(&state));
}

/* The step is checked on the device that came back under its id, on another port: the heal ends there. */
static void
test_step_checked_where_the_device_returns(void)
{
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	Seen seen = {.loop = loop};
	g_autoptr(GPtrArray) devices = NULL;
	const HealerDeviceInfo *info;

	run_heal(TRUE, &seen, &devices);
	g_assert_true(seen.finished);
	g_assert_cmpstr(seen.message, ==, "the application runs");
	g_assert_true(seen.success);
	g_assert_cmpuint(devices->len, ==, 1);
	info = g_ptr_array_index(devices, 0);
	g_assert_cmpstr(info->id, ==, DEVICE_ID);
	g_assert_cmpstr(info->port, ==, "/dev/fake-dfu1");
	g_assert_cmpstr(info->state, ==, "healthy");
	g_assert_cmpstr(info->transport, ==, "fake");
	g_free(seen.message);
}

/* A device that does not come back within the reset timeout fails the step (here: the heal, 1 attempt). */
static void
test_device_that_does_not_return(void)
{
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	Seen seen = {.loop = loop};
	g_autoptr(GPtrArray) devices = NULL;

	run_heal(FALSE, &seen, &devices);
	g_assert_true(seen.finished);
	g_assert_false(seen.success);
	g_assert_cmpstr(seen.message, ==,
	                "installing system-part 1 v2: device did not come back within 1 s (gave up after 1 attempts)");
	g_assert_cmpuint(devices->len, ==, 0);
	g_free(seen.message);
}

/* One job slot, two devices to heal: the second is queued (not in safe-mode) until the first heal ends. */
static void
test_second_device_queued_for_a_job_slot(void)
{
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	Seen seen = {.loop = loop, .second = TRUE};
	g_autoptr(GPtrArray) devices = NULL;

	run_heal(TRUE, &seen, &devices);
	g_assert_true(seen.finished);
	g_assert_true(seen.success);
	g_assert_true(seen.second_finished);
	g_assert_cmpstr(seen.second_state_while_away, ==, "queued");
	g_assert_cmpstr(seen.second_detail_while_away, ==, "waiting for a free heal job slot");
	g_free(seen.message);
	g_free(seen.second_state_while_away);
	g_free(seen.second_detail_while_away);
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
	g_test_add_func("/engine-family/step-checked-where-the-device-returns",
	                test_step_checked_where_the_device_returns);
	g_test_add_func("/engine-family/device-that-does-not-return", test_device_that_does_not_return);
	g_test_add_func("/engine-family/second-device-queued-for-a-job-slot", test_second_device_queued_for_a_job_slot);
	return g_test_run();
}
