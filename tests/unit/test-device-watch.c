/*
 * agent/daemon/device.c: a watch (healer_device_watch_new()), one handler for a signal of every device.
 *
 *   - watches run in the order they were made, before the handlers connected to the device itself
 *     (the serial backend counts a new id after the engine detached the old one);
 *   - each function gets the device and, for "log", its text; signals with no function set are not watched;
 *   - a watch connects nothing to the devices (what makes it cheaper than a handler on each), and nothing
 *     of it runs once freed;
 *   - a watch made before any device exists (the engine is made before its backends find any) works.
 */
#include "device.h"

/* ---- a family that only emits ------------------------------------------- */

#define QUIET_TYPE_DEVICE (quiet_device_get_type())
G_DECLARE_FINAL_TYPE(QuietDevice, quiet_device, QUIET, DEVICE, HealerDevice)

struct _QuietDevice {
	HealerDevice parent_instance;
};

G_DEFINE_FINAL_TYPE(QuietDevice, quiet_device, HEALER_TYPE_DEVICE)

static void
quiet_device_class_init(QuietDeviceClass *klass)
{
	(void)klass;
}

static void
quiet_device_init(QuietDevice *self)
{
	(void)self;
}

static HealerDevice *
quiet_device_new(const char *port)
{
	return g_object_new(QUIET_TYPE_DEVICE, "port", port, "physical-id", port, "family", "quiet", NULL);
}

/* ---- what ran, in order ------------------------------------------------- */

typedef struct {
	GString *calls; /* "name:port ..." */
} Seen;

static void
note(Seen *seen, const char *what, HealerDevice *device)
{
	g_string_append_printf(seen->calls, "%s%s:%s", seen->calls->len > 0 ? " " : "", what,
	                       healer_device_get_port(device));
}

static void
first_identity_changed(HealerDevice *device, gpointer user_data)
{
	note(user_data, "first", device);
}

static void
second_identity_changed(HealerDevice *device, gpointer user_data)
{
	note(user_data, "second", device);
}

static void
handler_identity_changed(HealerDevice *device, gpointer user_data)
{
	note(user_data, "handler", device);
}

static void
on_log(HealerDevice *device, const char *text, gpointer user_data)
{
	g_autofree char *what = g_strdup_printf("log(%s)", text);

	note(user_data, what, device);
}

static void
on_detached(HealerDevice *device, gpointer user_data)
{
	note(user_data, "detached", device);
}

/* ---- the tests ---------------------------------------------------------- */

static void
test_order(void)
{
	static const HealerDeviceWatchFuncs first_funcs = {.identity_changed = first_identity_changed};
	static const HealerDeviceWatchFuncs second_funcs = {.identity_changed = second_identity_changed};
	Seen seen = {.calls = g_string_new(NULL)};
	/* Made before any device: the engine's watch is. */
	HealerDeviceWatch *first = healer_device_watch_new(&first_funcs, &seen);
	g_autoptr(HealerDevice) a = quiet_device_new("a");
	g_autoptr(HealerDevice) b = quiet_device_new("b");
	HealerDeviceWatch *second = healer_device_watch_new(&second_funcs, &seen);

	g_signal_connect(a, "identity-changed", G_CALLBACK(handler_identity_changed), &seen);
	healer_device_emit_identity_changed(a);
	healer_device_emit_identity_changed(b);
	g_assert_cmpstr(seen.calls->str, ==, "first:a second:a handler:a first:b second:b");

	/* Freed: nothing of it runs; the other watch still does. */
	g_string_truncate(seen.calls, 0);
	healer_device_watch_free(first);
	healer_device_emit_identity_changed(b);
	g_assert_cmpstr(seen.calls->str, ==, "second:b");
	healer_device_watch_free(second);
	g_signal_handlers_disconnect_by_data(a, &seen);
	g_string_free(seen.calls, TRUE);
}

static void
test_functions_and_arguments(void)
{
	static const HealerDeviceWatchFuncs funcs = {.log = on_log, .detached = on_detached};
	Seen seen = {.calls = g_string_new(NULL)};
	g_autoptr(HealerDevice) device = quiet_device_new("ttyACM0");
	g_autoptr(HealerDeviceWatch) watch G_GNUC_UNUSED = healer_device_watch_new(&funcs, &seen);

	/* Signals it has no function for reach nothing (and crash nothing). */
	healer_device_emit_identified(device);
	healer_device_emit_changed(device);
	healer_device_emit_progress(device);
	healer_device_emit_identity_changed(device);
	healer_device_emit_log(device, "booted");
	healer_device_emit_detached(device);
	g_assert_cmpstr(seen.calls->str, ==, "log(booted):ttyACM0 detached:ttyACM0");
	g_string_free(seen.calls, TRUE);
}

/* What makes a watch cheap: no handler (closure, handler entry) on any device, however many it hears. */
static void
test_connects_nothing_to_devices(void)
{
	static const HealerDeviceWatchFuncs funcs = {
	        .identity_changed = first_identity_changed, .log = on_log, .detached = on_detached};
	Seen seen = {.calls = g_string_new(NULL)};
	g_autoptr(HealerDeviceWatch) watch G_GNUC_UNUSED = healer_device_watch_new(&funcs, &seen);
	g_autoptr(HealerDevice) device = quiet_device_new("a");
	guint n_ids = 0;
	g_autofree guint *ids = g_signal_list_ids(HEALER_TYPE_DEVICE, &n_ids);

	g_assert_cmpuint(n_ids, ==, 6);
	for (guint i = 0; i < n_ids; i++)
		g_assert_false(g_signal_has_handler_pending(device, ids[i], 0, FALSE));
	healer_device_emit_detached(device);
	g_assert_cmpstr(seen.calls->str, ==, "detached:a");
	g_string_free(seen.calls, TRUE);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/device-watch/order", test_order);
	g_test_add_func("/device-watch/functions-and-arguments", test_functions_and_arguments);
	g_test_add_func("/device-watch/connects-nothing-to-devices", test_connects_nothing_to_devices);
	return g_test_run();
}
