/*
 *   healerctl monitor [--json]
 *
 * Prints healerd's events as they happen, one line each with a timestamp,
 * until Ctrl-C: devices added and removed, their properties changing, the
 * manager's properties, HealProgress, HealFinished, and healerd leaving or
 * coming back to the bus.  --json prints one JSON object per line.
 */
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

#include "cli-options.h"
#include "client.h"
#include "healer-error.h"
#include "printable.h"
#include "healerctl.h"
#include "json-autoptr.h"

typedef struct {
	HealerctlClient *client;
	gboolean json;
	gboolean done;
	gboolean daemon_present;
} Monitor;

static json_object *
variant_to_json(GVariant *v)
{
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
		return json_object_new_string(g_variant_get_string(v, NULL));
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
		return json_object_new_boolean(g_variant_get_boolean(v));
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT16))
		return json_object_new_int64(g_variant_get_uint16(v));
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
		return json_object_new_int64(g_variant_get_uint32(v));
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
		return json_object_new_int64(g_variant_get_int32(v));
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
		return json_object_new_int64((gint64)g_variant_get_uint64(v));
	if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64))
		return json_object_new_int64(g_variant_get_int64(v));
	{
		g_autofree char *text = g_variant_print(v, FALSE);
		return json_object_new_string(text);
	}
}

/* Name=value for a line: strings with spaces quoted, the describe summarised. */
static void
append_property(GString *line, const char *name, GVariant *v)
{
	g_string_append_printf(line, " %s=", name);
	if (g_str_equal(name, "Modules")) {
		g_string_append(line, "(new describe)");
	} else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
		const char *s = g_variant_get_string(v, NULL);
		if (*s == '\0' || strchr(s, ' ') != NULL)
			g_string_append_printf(line, "\"%s\"", s);
		else
			g_string_append(line, s);
	} else {
		g_autofree char *text = g_variant_print(v, FALSE);
		g_string_append(line, text);
	}
}

static void
emit(Monitor *m, const char *event, json_object *fields, const char *text)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	/* emit() takes `fields`: released on every path. */
	g_autoptr(json_object) owned = fields;

	(void)owned;
	if (m->json) {
		g_autofree char *iso = g_date_time_format_iso8601(now);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "time", json_object_new_string(iso));
		json_object_object_add(o, "event", json_object_new_string(event));
		if (fields != NULL) {
			json_object_object_foreach (fields, key, value)
				json_object_object_add(o, key, json_object_get(value));
		}
		healerctl_print_json(o, FALSE);
		json_object_put(o);
	} else {
		g_autofree char *clock = g_date_time_format(now, "%H:%M:%S");
		/* What healerd sent may hold what a device sent: no escape sequence reaches the terminal. */
		g_autofree char *safe = healerctl_printable(text);
		printf("%s.%03d  %s\n", clock, g_date_time_get_microsecond(now) / 1000, safe);
		fflush(stdout);
	}
}

static const char *
device_id_of(GDBusObject *object, HealerDBusHealer1Device *dev)
{
	const char *id = dev ? healer_dbus_healer1_device_get_id(dev) : NULL;
	const char *path = g_dbus_object_get_object_path(object);

	if (id != NULL && *id != '\0')
		return id;
	return strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
}

static void
on_object_added(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
	Monitor *m = user_data;
	HealerDBusHealer1Device *dev = healer_dbus_object_peek_healer1_device(HEALER_DBUS_OBJECT(object));
	json_object *fields = json_object_new_object();
	json_object *props = json_object_new_object();
	g_autofree char *text = NULL;
	const char *id = device_id_of(object, dev);

	(void)manager;
	if (dev != NULL) {
		g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(G_DBUS_PROXY(dev));
		for (guint i = 0; names != NULL && names[i] != NULL; i++) {
			g_autoptr(GVariant) v = g_dbus_proxy_get_cached_property(G_DBUS_PROXY(dev), names[i]);
			if (v != NULL)
				json_object_object_add(props, names[i], variant_to_json(v));
		}
		text = g_strdup_printf(
		        "device %s added on %s: mode %s, state %s", id, healer_dbus_healer1_device_get_port(dev),
		        healer_dbus_healer1_device_get_mode(dev), healer_dbus_healer1_device_get_state(dev));
	} else {
		text = g_strdup_printf("object %s added", g_dbus_object_get_object_path(object));
	}
	json_object_object_add(fields, "device", json_object_new_string(id));
	json_object_object_add(fields, "path", json_object_new_string(g_dbus_object_get_object_path(object)));
	json_object_object_add(fields, "properties", props);
	emit(m, "device-added", fields, text);
}

static void
on_object_removed(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
	Monitor *m = user_data;
	HealerDBusHealer1Device *dev = healer_dbus_object_peek_healer1_device(HEALER_DBUS_OBJECT(object));
	g_autofree char *owner = g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(manager));
	json_object *fields;
	const char *id = device_id_of(object, dev);
	g_autofree char *text = g_strdup_printf("device %s removed", id);

	/* healerd leaving takes every object with it (the name owner is gone first): said once, by on_name_owner. */
	if (owner == NULL)
		return;
	fields = json_object_new_object();
	json_object_object_add(fields, "device", json_object_new_string(id));
	json_object_object_add(fields, "path", json_object_new_string(g_dbus_object_get_object_path(object)));
	emit(m, "device-removed", fields, text);
}

static void
properties_changed(Monitor *m, const char *who, const char *id, GVariant *changed, const char *const *invalidated)
{
	json_object *fields = json_object_new_object();
	json_object *props = json_object_new_object();
	json_object *gone = json_object_new_array();
	g_autoptr(GString) line = g_string_new(NULL);
	GVariantIter iter;
	const char *name;
	GVariant *value;

	if (id != NULL)
		g_string_append_printf(line, "device %s:", id);
	else
		g_string_append(line, "healerd:");
	g_variant_iter_init(&iter, changed);
	while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
		append_property(line, name, value);
		json_object_object_add(props, name, variant_to_json(value));
		g_variant_unref(value);
	}
	for (guint i = 0; invalidated != NULL && invalidated[i] != NULL; i++) {
		g_string_append_printf(line, " %s=(invalidated)", invalidated[i]);
		json_object_array_add(gone, json_object_new_string(invalidated[i]));
	}
	json_object_object_add(fields, "object", json_object_new_string(who));
	if (id != NULL)
		json_object_object_add(fields, "device", json_object_new_string(id));
	json_object_object_add(fields, "properties", props);
	json_object_object_add(fields, "invalidated", gone);
	emit(m, "properties-changed", fields, line->str);
}

static void
on_device_properties_changed(GDBusObjectManagerClient *manager, GDBusObjectProxy *object, GDBusProxy *proxy,
                             GVariant *changed, const char *const *invalidated, gpointer user_data)
{
	HealerDBusHealer1Device *dev = healer_dbus_object_peek_healer1_device(HEALER_DBUS_OBJECT(object));

	(void)manager;
	(void)proxy;
	properties_changed(user_data, "device", device_id_of(G_DBUS_OBJECT(object), dev), changed, invalidated);
}

static void
on_manager_properties_changed(GDBusProxy *proxy, GVariant *changed, const char *const *invalidated, gpointer user_data)
{
	g_autofree char *owner = g_dbus_proxy_get_name_owner(proxy);

	/* healerd leaving invalidates every property: that is said once, by on_name_owner. */
	if (owner == NULL)
		return;
	properties_changed(user_data, "manager", NULL, changed, invalidated);
}

static void
on_heal_progress(HealerDBusHealer1 *manager, const char *device_id, guint step, guint steps, const char *module,
                 guint progress, gpointer user_data)
{
	json_object *fields = json_object_new_object();
	g_autofree char *text =
	        g_strdup_printf("heal progress %s: step %u/%u %s %u%%", device_id, step, steps, module, progress);

	(void)manager;
	json_object_object_add(fields, "device", json_object_new_string(device_id));
	json_object_object_add(fields, "step", json_object_new_int64(step));
	json_object_object_add(fields, "steps", json_object_new_int64(steps));
	json_object_object_add(fields, "module", json_object_new_string(module));
	json_object_object_add(fields, "progress", json_object_new_int64(progress));
	emit(user_data, "heal-progress", fields, text);
}

static void
on_heal_finished(HealerDBusHealer1 *manager, const char *device_id, gboolean success, const char *message,
                 gpointer user_data)
{
	json_object *fields = json_object_new_object();
	g_autofree char *text = g_strdup_printf("heal finished %s: %s%s%s", device_id, success ? "succeeded" : "FAILED",
	                                        *message ? ": " : "", message);

	(void)manager;
	json_object_object_add(fields, "device", json_object_new_string(device_id));
	json_object_object_add(fields, "success", json_object_new_boolean(success));
	json_object_object_add(fields, "message", json_object_new_string(message));
	emit(user_data, "heal-finished", fields, text);
}

static void
on_name_owner(GObject *object, GParamSpec *pspec, gpointer user_data)
{
	Monitor *m = user_data;
	g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(object));
	json_object *fields = json_object_new_object();
	gboolean present = owner != NULL;

	(void)pspec;
	if (present == m->daemon_present) {
		json_object_put(fields);
		return;
	}
	m->daemon_present = present;
	json_object_object_add(fields, "running", json_object_new_boolean(present));
	emit(m, "daemon", fields, present ? "healerd is on the bus" : "healerd left the bus");
}

static gboolean
on_stop(gpointer user_data)
{
	Monitor *m = user_data;

	m->done = TRUE;
	return G_SOURCE_CONTINUE;
}

/* monitor's command line. */
static const HealerctlJsonVerb monitor_verb = {
        .verb = "monitor",
        .title = "- print healerd's events until Ctrl-C",
        .help = "Exit status: 0 stopped by Ctrl-C, 2 usage, 5 healerd not running.",
        .json_help = "Print one JSON object per event, one per line",
        .usage = "monitor [--json]",
        .n_arguments = 0,
};

int
healerctl_monitor(int argc, char **argv)
{
	gboolean json = FALSE;
	g_auto(HealerctlClient) client = {0};
	Monitor m = {0};
	guint sigint, sigterm;
	int status;

	if ((status = healerctl_options_parse_json_verb(&monitor_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_connect(&client, "monitor")) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_load_devices(&client)) != HEALER_EXIT_OK)
		return status;
	m.client = &client;
	m.json = json;
	m.daemon_present = TRUE;
	g_signal_connect(client.objects, "object-added", G_CALLBACK(on_object_added), &m);
	g_signal_connect(client.objects, "object-removed", G_CALLBACK(on_object_removed), &m);
	g_signal_connect(client.objects, "interface-proxy-properties-changed", G_CALLBACK(on_device_properties_changed),
	                 &m);
	g_signal_connect(client.manager, "g-properties-changed", G_CALLBACK(on_manager_properties_changed), &m);
	g_signal_connect(client.manager, "heal-progress", G_CALLBACK(on_heal_progress), &m);
	g_signal_connect(client.manager, "heal-finished", G_CALLBACK(on_heal_finished), &m);
	g_signal_connect(client.manager, "notify::g-name-owner", G_CALLBACK(on_name_owner), &m);
	sigint = g_unix_signal_add(SIGINT, on_stop, &m);
	sigterm = g_unix_signal_add(SIGTERM, on_stop, &m);
	/* On stderr, also with --json: once it is printed, every event from here on is seen. */
	fprintf(stderr, "healerctl monitor: following healerd on the %s bus; Ctrl-C stops\n",
	        client.bus_type == G_BUS_TYPE_SESSION ? "session" : "system");

	healerctl_iterate_until(&m.done);

	g_source_remove(sigint);
	g_source_remove(sigterm);
	g_signal_handlers_disconnect_by_data(client.objects, &m);
	g_signal_handlers_disconnect_by_data(client.manager, &m);
	return HEALER_EXIT_OK;
}
