/*
 * healerd: finds devices in safe mode and heals them.
 *
 *   healerd [--config FILE] [--state-dir DIR] [--verbose]
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>

#include "config.h"
#include "dbus-face.h"
#include "engine.h"
#include "healer-error.h"
#include "events.h"
#include "journal.h"
#include "mqtt-face.h"
#include "notify.h"
#include "serial-backend.h"
#include "store.h"
#include "supply.h"
#include "upstream.h"
#include "usb-backend.h"

static gboolean
on_stop_signal(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_REMOVE;
}

static void
on_store_changed(HealerStore *store, gpointer user_data)
{
	(void)store;
	healer_engine_store_changed(user_data);
}

static void
on_supply_changed(HealerSupply *supply, gpointer user_data)
{
	(void)supply;
	healer_engine_store_changed(user_data);
}

static void
on_upstream_changed(HealerUpstream *upstream, gpointer user_data)
{
	(void)upstream;
	healer_engine_store_changed(user_data);
}

static void
load_release_tables(HealerStore *store, const HealerConfig *config)
{
	for (guint i = 0; config->release_tables != NULL && config->release_tables[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		HealerReleaseTable *table = healer_release_table_new_from_file(config->release_tables[i], &error);
		if (table == NULL || !healer_store_add_release_table(store, table, &error))
			g_warning("release table %s: %s", config->release_tables[i], error->message);
	}
}

/* USB devices too, when [usb] enable is on and libusb starts; without it healerd serves serial ports. */
static gboolean
add_usb_backend(HealerEngine *engine, HealerConfig *config)
{
	g_autoptr(HealerUsbBackend) usb = NULL;
	g_autoptr(GError) error = NULL;

	if (!config->usb_enable)
		return FALSE;
	usb = healer_usb_backend_new(config, HEALER_USB_CONTEXT_FLAG_NONE, &error);
	if (usb == NULL) {
		healer_emit(HEALER_EVENT_NOTE, NULL, NULL, NULL, -1, G_LOG_LEVEL_WARNING,
		            "USB devices are not served: %s (serial ports are; [usb] enable=false says no USB "
		            "without this record)",
		            error->message);
		return FALSE;
	}
	healer_engine_add_backend(engine, HEALER_BACKEND(usb));
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_autofree char *config_path = NULL, *state_dir = NULL;
	gboolean verbose = FALSE, version = FALSE, session = FALSE, no_bus = FALSE, usb = FALSE;
	const GOptionEntry entries[] = {
	        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
	         "Configuration file (default " HEALER_CONFIG_DEFAULT_PATH ", plus its healerd.conf.d/*.conf)", "FILE"},
	        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir, "Override [daemon] state-directory", "DIR"},
	        {"session", 0, 0, G_OPTION_ARG_NONE, &session, "Serve D-Bus on the session bus (development, demos)",
	         NULL},
	        {"no-bus", 0, 0, G_OPTION_ARG_NONE, &no_bus, "Serve no D-Bus API at all", NULL},
	        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL},
	        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
	        {NULL, 0, 0, 0, NULL, NULL, NULL},
	};
	g_autoptr(GOptionContext) context = g_option_context_new("- heal devices stuck in safe mode");
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerConfig) config = NULL;
	g_autoptr(HealerStore) store = NULL;
	g_autoptr(HealerTrust) trust = NULL;
	g_autoptr(HealerSupply) supply = NULL;
	g_autoptr(HealerUpstream) upstream = NULL;
	g_autoptr(HealerEngine) engine = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(HealerDBusFace) face = NULL;
	g_autoptr(HealerMqttFace) mqtt = NULL;

	setlocale(LC_ALL, "");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, &argc, &argv, &error)) {
		fprintf(stderr, "healerd: %s\n", error->message);
		return 2;
	}
	if (version) {
		printf("healerd %s\n", HEALER_VERSION);
		return 0;
	}
	config = healer_config_load(config_path, &error);
	if (config == NULL) {
		fprintf(stderr, "healerd: invalid configuration: %s\n", error->message);
		return 1;
	}
	if (state_dir != NULL) {
		g_free(config->state_dir);
		config->state_dir = g_steal_pointer(&state_dir);
	}
	healer_journal_setup(verbose ? G_LOG_LEVEL_DEBUG : config->log_level);

	/* First: a stop asked for while the store is seeded is handled once the loop runs, not fatal. */
	loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, on_stop_signal, loop);
	g_unix_signal_add(SIGINT, on_stop_signal, loop);

	/* Before the store and the catalogs: their first events are kept for the broker too. */
	if (config->mqtt_broker != NULL) {
		mqtt = healer_mqtt_face_new(config, healer_events(), &error);
		/* Healing never waits for MQTT: healerd serves on without it, and says why. */
		if (mqtt == NULL) {
			g_warning("MQTT is off: %s; healing goes on, fix it and restart healerd to publish again",
			          error->message);
			g_clear_error(&error);
		}
	}
	store = healer_store_open(config->state_dir, &error);
	if (store == NULL) {
		g_critical("cannot open the module store in %s: %s", config->state_dir, error->message);
		return 1;
	}
	load_release_tables(store, config);
	trust = healer_trust_new(config->state_dir, (const char *const *)config->trusted_key_dirs,
	                         config->allow_unsigned, &error);
	if (trust == NULL) {
		g_critical("cannot keep catalogs in %s: %s", config->state_dir, error->message);
		return 1;
	}
	supply = healer_supply_new(config, store, trust);
	healer_supply_start(supply);

	upstream = healer_upstream_new(config, supply);
	healer_supply_set_upstream(supply, upstream);
	engine = healer_engine_new(config, supply);
	{
		g_autoptr(HealerSerialBackend) serial = healer_serial_backend_new(config);
		healer_engine_add_backend(engine, HEALER_BACKEND(serial));
	}
	usb = add_usb_backend(engine, config);
	healer_store_set_changed_func(store, on_store_changed, engine);
	healer_supply_set_changed_func(supply, on_supply_changed, engine);
	if (upstream != NULL)
		healer_upstream_set_changed_func(upstream, on_upstream_changed, engine);
	if (!no_bus)
		face = healer_dbus_face_new(engine, store, supply, upstream,
		                            session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, loop);
	healer_engine_start(engine);
	if (mqtt != NULL)
		healer_mqtt_face_start(mqtt, engine, store, supply, upstream);
	if (upstream != NULL)
		healer_upstream_start(upstream);
	healer_notify_watchdog_start();
	healer_emit_event(.kind = HEALER_EVENT_DAEMON_READY);
	g_info("healerd %s serving %s%s; state in %s", HEALER_VERSION,
	       config->serial_ports && config->serial_ports[0] ? config->serial_ports[0] : "no ports",
	       usb ? " and USB devices" : "", config->state_dir);
	g_main_loop_run(loop);
	healer_emit_event(.kind = HEALER_EVENT_DAEMON_STOPPING);
	if (face != NULL && healer_dbus_face_lost_name(face)) {
		g_critical("stopping: the D-Bus name is taken or not allowed");
		return 1;
	}
	g_info("stopping");
	/* The broker hears "offline" from us (not the will): 2 s at most, then we go anyway. */
	if (mqtt != NULL)
		healer_mqtt_face_stop(mqtt, 2000);
	g_clear_pointer(&mqtt, healer_mqtt_face_free);
	/* The engine first: nothing may call into the upstream or the supply while they go. */
	g_clear_pointer(&face, healer_dbus_face_free);
	g_clear_pointer(&engine, healer_engine_free);
	healer_supply_set_upstream(supply, NULL);
	g_clear_pointer(&upstream, healer_upstream_free);
	g_clear_pointer(&supply, healer_supply_free);
	/*
	 * Transports are freed from idle callbacks (a device may be inside its own callback when its
	 * port goes): run them, so every port is closed properly and gets back the terminal settings it had.
	 */
	while (g_main_context_iteration(NULL, FALSE))
		;
	return 0;
}
