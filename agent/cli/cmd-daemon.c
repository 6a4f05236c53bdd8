/*
 * healerctl's verbs that ask healerd over D-Bus and report:
 *
 *   healerctl status [--json]
 *   healerctl devices [--json]
 *   healerctl device ID [--json]
 *   healerctl plan ID [--json]
 *   healerctl modules [--json]
 *   healerctl import PATH [--json]
 *
 * The JSON they print is what healerd sent (GetDevices, ListModules,
 * Plan), so a script sees exactly the daemon's view.  heal and flash are in
 * cmd-heal.c, monitor in cmd-monitor.c; see docs/dbus-api.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "cli-options.h"
#include "client.h"
#include "describe.h"
#include "device-details.h"
#include "healer-error.h"
#include "healer-json.h"
#include "printable.h"
#include "healerctl.h"
#include "import-dir.h"
#include "json-autoptr.h"
#include "module-names.h"

/* Under a D-Bus verb's options in --help. */
#define DAEMON_VERB_HELP                                                                                               \
	"Asks healerd over D-Bus (the system bus unless --session).\n"                                                 \
	"Exit status: see healerctl(1): 0 ok, 1 failed, 2 usage, 3 not found or no plan, 4 permission denied, "        \
	"5 healerd not running, 6 busy."

/*
 * Each verb's command line.  The titles of those without arguments start with
 * " - " (after "[OPTION…]" in --help), as they always have.
 */
static const HealerctlJsonVerb status_verb = {
        .verb = "status",
        .title = " - healerd's version, its devices by state, its module store",
        .help = DAEMON_VERB_HELP,
        .json_help = "Print a JSON object",
        .usage = "status [--json]",
        .n_arguments = 0,
};
static const HealerctlJsonVerb devices_verb = {
        .verb = "devices",
        .title = " - the devices healerd serves",
        .help = DAEMON_VERB_HELP,
        .json_help = "Print healerd's JSON array (GetDevices)",
        .usage = "devices [--json]",
        .n_arguments = 0,
};
static const HealerctlJsonVerb device_verb = {
        .verb = "device",
        .title = "ID - a device's details and its modules' dependencies",
        .help = DAEMON_VERB_HELP,
        .json_help = "Print the device's object from GetDevices, with \"dependencies\" added",
        .usage = "device ID [--json]",
        .n_arguments = 1,
};
static const HealerctlJsonVerb modules_verb = {
        .verb = "modules",
        .title = " - the modules in healerd's store",
        .help = DAEMON_VERB_HELP,
        .json_help = "Print healerd's JSON array (ListModules)",
        .usage = "modules [--json]",
        .n_arguments = 0,
};
static const HealerctlJsonVerb import_verb = {
        .verb = "import",
        .title = "PATH - import a signed bundle (directory or tar archive), a module file or a directory into "
                 "healerd's store",
        .help = DAEMON_VERB_HELP,
        .json_help = "Print {\"added\": N, \"rejected\": [...]}",
        .usage = "import PATH [--json]",
        .n_arguments = 1,
};
static const HealerctlJsonVerb refresh_verb = {
        .verb = "refresh",
        .title = " - fetch the upstream catalog now",
        .help = DAEMON_VERB_HELP,
        .json_help = "Print {\"changed\", \"serial\", \"modules\"}",
        .usage = "refresh [--json]",
        .n_arguments = 0,
};

/* ---- tables ---- */

typedef struct {
	guint n_columns;
	GPtrArray *cells; /* char*, row by row */
} Table;

static Table *
table_new(guint n_columns, const char *const *headings)
{
	Table *t = g_new0(Table, 1);

	t->n_columns = n_columns;
	t->cells = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < n_columns; i++)
		g_ptr_array_add(t->cells, g_strdup(headings[i]));
	return t;
}

static void
table_free(Table *t)
{
	g_ptr_array_unref(t->cells);
	g_free(t);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Table, table_free)

/*
 * Takes the strings.  Every cell is made printable (healerctl_printable()): what healerd sends may hold what a
 * device sent (an error's text), and a terminal must not take it for escape sequences.
 */
static void
table_add(Table *t, char **row)
{
	for (guint i = 0; i < t->n_columns; i++) {
		g_ptr_array_add(t->cells, healerctl_printable(row[i]));
		g_free(row[i]);
	}
}

/* Text from healerd, printable (healerctl_printable()); `keep` owns the copies. */
static const char *
shown(GPtrArray *keep, const char *text)
{
	g_ptr_array_add(keep, healerctl_printable(text));
	return g_ptr_array_index(keep, keep->len - 1);
}

static void
table_print(const Table *t, const char *indent)
{
	g_autofree guint *width = g_new0(guint, t->n_columns);

	for (guint i = 0; i < t->cells->len; i++) {
		guint len = (guint)g_utf8_strlen(g_ptr_array_index(t->cells, i), -1);
		width[i % t->n_columns] = MAX(width[i % t->n_columns], len);
	}
	for (guint i = 0; i < t->cells->len; i++) {
		const char *cell = g_ptr_array_index(t->cells, i);
		guint col = i % t->n_columns;
		if (col == 0)
			fputs(indent, stdout);
		if (col + 1 == t->n_columns) {
			printf("%s\n", cell);
		} else {
			guint pad = width[col] - (guint)g_utf8_strlen(cell, -1) + 2;
			printf("%s%*s", cell, (int)pad, "");
		}
	}
}

/* ---- GetDevices ---- */

static json_object *
get_devices(HealerctlClient *client, int *status)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	json_object *devices;

	if (!healer_dbus_healer1_call_get_devices_sync(client->manager, &text, NULL, &error)) {
		*status = healerctl_fail(client, error);
		return NULL;
	}
	devices = healerctl_parse_json(client, "a device list", text);
	if (devices != NULL && !json_object_is_type(devices, json_type_array)) {
		fprintf(stderr, "healerctl %s: healerd sent a device list that is not a JSON array\n", client->verb);
		g_clear_pointer(&devices, json_object_put);
	}
	if (devices == NULL)
		*status = HEALER_EXIT_FAILED;
	return devices;
}

static const char *const state_order[] = {"healthy", "healing",  "queued",     "safe-mode", "blocked",
                                          "failed",  "attached", "identified", "detached"};

/* The Sources property: trusted keys, accepted catalogs, the upstream. */
static void
print_sources(json_object *sources)
{
	json_object *catalogs = NULL, *upstream = NULL;

	if (sources == NULL)
		return;
	printf("Trusted keys:   %" G_GINT64_FORMAT "%s\n", healerctl_json_int(sources, "trusted_keys", 0),
	       json_object_get_boolean(json_object_object_get(sources, "allow_unsigned"))
	               ? " (allow-unsigned is ON: unsigned modules are accepted)"
	               : "");
	if (json_object_object_get_ex(sources, "catalogs", &catalogs) && json_object_array_length(catalogs) > 0) {
		for (size_t i = 0; i < json_object_array_length(catalogs); i++) {
			json_object *c = json_object_array_get_idx(catalogs, i);
			printf("%s%s serial %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT " modules, from %s\n",
			       i == 0 ? "Catalogs:       " : "                ",
			       healerctl_json_string(c, "key_id", "?"), healerctl_json_int(c, "serial", 0),
			       healerctl_json_int(c, "modules", 0), healerctl_json_string(c, "source", "?"));
		}
	} else {
		printf("Catalogs:       none accepted (healerctl import BUNDLE, or [upstream] url)\n");
	}
	if (json_object_object_get_ex(sources, "upstream", &upstream) && upstream != NULL) {
		const char *problem = healerctl_json_string(upstream, "problem", NULL);
		printf("Upstream:       %s", healerctl_json_string(upstream, "url", "?"));
		if (problem != NULL)
			printf(" (failing: %s)\n", problem);
		else if (healerctl_json_int(upstream, "serial", 0) > 0)
			printf(" (catalog serial %" G_GINT64_FORMAT ")\n", healerctl_json_int(upstream, "serial", 0));
		else
			printf(" (no catalog yet)\n");
	} else {
		printf("Upstream:       none\n");
	}
}

int
healerctl_status(int argc, char **argv)
{
	gboolean json = FALSE;
	g_auto(HealerctlClient) client = {0};
	g_autoptr(json_object) devices = NULL;
	g_autoptr(GHashTable) counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GString) by_state = g_string_new(NULL);
	g_autoptr(json_object) states = json_object_new_object();
	g_autoptr(json_object) sources = NULL;
	const char *version;
	const char *mqtt;
	int status = HEALER_EXIT_OK;

	if ((status = healerctl_options_parse_json_verb(&status_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_connect(&client, "status")) != HEALER_EXIT_OK)
		return status;
	if ((devices = get_devices(&client, &status)) == NULL)
		return status;

	for (size_t i = 0; i < json_object_array_length(devices); i++) {
		const char *state = healerctl_json_string(json_object_array_get_idx(devices, i), "state", "unknown");
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(counts, state));
		g_hash_table_replace(counts, g_strdup(state), GUINT_TO_POINTER(n + 1));
	}
	/* Known states in their order, then any others. */
	for (guint i = 0; i < G_N_ELEMENTS(state_order); i++) {
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(counts, state_order[i]));
		if (n == 0)
			continue;
		g_string_append_printf(by_state, "%s%u %s", by_state->len ? ", " : "", n, state_order[i]);
		json_object_object_add(states, state_order[i], json_object_new_int((int)n));
		g_hash_table_remove(counts, state_order[i]);
	}
	{
		GHashTableIter iter;
		gpointer key, value;
		g_hash_table_iter_init(&iter, counts);
		while (g_hash_table_iter_next(&iter, &key, &value)) {
			g_string_append_printf(by_state, "%s%u %s", by_state->len ? ", " : "", GPOINTER_TO_UINT(value),
			                       (const char *)key);
			json_object_object_add(states, key, json_object_new_int((int)GPOINTER_TO_UINT(value)));
		}
	}

	version = healer_dbus_healer1_get_version(client.manager);
	mqtt = healer_dbus_healer1_get_mqtt(client.manager);
	{
		const char *text = healer_dbus_healer1_get_sources(client.manager);
		if (text != NULL && *text != '\0')
			sources = json_tokener_parse(text);
	}
	if (json) {
		g_autoptr(json_object) o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_string(version ? version : ""));
		json_object_object_add(
		        o, "bus", json_object_new_string(client.bus_type == G_BUS_TYPE_SESSION ? "session" : "system"));
		json_object_object_add(o, "devices",
		                       json_object_new_int64(healer_dbus_healer1_get_devices(client.manager)));
		json_object_object_add(o, "healing",
		                       json_object_new_int64(healer_dbus_healer1_get_healing(client.manager)));
		json_object_object_add(o, "store_modules",
		                       json_object_new_int64(healer_dbus_healer1_get_store_modules(client.manager)));
		json_object_object_add(o, "states", json_object_get(states));
		json_object_object_add(o, "sources", sources != NULL ? json_object_get(sources) : NULL);
		json_object_object_add(o, "mqtt", mqtt != NULL && *mqtt != '\0' ? json_object_new_string(mqtt) : NULL);
		healerctl_print_json(o, TRUE);
		return HEALER_EXIT_OK;
	}
	printf("healerd:        %s (%s bus)\n", version ? version : "?",
	       client.bus_type == G_BUS_TYPE_SESSION ? "session" : "system");
	printf("Devices:        %u%s%s%s\n", healer_dbus_healer1_get_devices(client.manager), by_state->len ? " (" : "",
	       by_state->str, by_state->len ? ")" : "");
	printf("Healing:        %u\n", healer_dbus_healer1_get_healing(client.manager));
	printf("Store modules:  %u\n", healer_dbus_healer1_get_store_modules(client.manager));
	print_sources(sources);
	printf("MQTT:           %s\n", mqtt != NULL && *mqtt != '\0' ? mqtt : "off ([mqtt] broker is not set)");
	return HEALER_EXIT_OK;
}

/* The platform's name, else its number. */
static char *
platform_text(json_object *dev)
{
	const char *name = healerctl_json_string(dev, "platform", "");

	if (*name != '\0')
		return g_strdup(name);
	return g_strdup_printf("%" G_GINT64_FORMAT, healerctl_json_int(dev, "platform_id", 0));
}

/* "usb:1-1.4 (ttyACM0)": a USB device with the ttys that are its own (docs/particle.md). */
static char *
port_text(json_object *dev)
{
	GString *s = g_string_new(healerctl_json_string(dev, "port", ""));
	json_object *ttys = NULL;

	if (json_object_object_get_ex(dev, "ttys", &ttys) && json_object_is_type(ttys, json_type_array) &&
	    json_object_array_length(ttys) > 0) {
		g_string_append(s, " (");
		for (size_t i = 0; i < json_object_array_length(ttys); i++)
			g_string_append_printf(s, "%s%s", i > 0 ? ", " : "",
			                       json_object_get_string(json_object_array_get_idx(ttys, i)));
		g_string_append(s, ")");
	}
	return g_string_free(s, FALSE);
}

int
healerctl_devices(int argc, char **argv)
{
	gboolean json = FALSE;
	const char *headings[] = {"ID", "PORT", "PLATFORM", "MODE", "STATE", "PROGRESS", "NOTE"};
	g_auto(HealerctlClient) client = {0};
	g_autoptr(json_object) devices = NULL;
	g_autoptr(Table) table = table_new(G_N_ELEMENTS(headings), headings);
	int status = HEALER_EXIT_OK;

	if ((status = healerctl_options_parse_json_verb(&devices_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_connect(&client, "devices")) != HEALER_EXIT_OK)
		return status;
	if ((devices = get_devices(&client, &status)) == NULL)
		return status;
	if (json) {
		healerctl_print_json(devices, TRUE);
		return HEALER_EXIT_OK;
	}
	if (json_object_array_length(devices) == 0) {
		printf("no devices attached (healerd watches the ports in [serial] ports of healerd.conf, and USB "
		       "devices unless [usb] enable=false)\n");
		return HEALER_EXIT_OK;
	}
	for (size_t i = 0; i < json_object_array_length(devices); i++) {
		json_object *dev = json_object_array_get_idx(devices, i);
		const char *state = healerctl_json_string(dev, "state", "");
		const char *note = healerctl_json_string(dev, "current_step", "");
		char *row[7];

		if (g_strcmp0(state, "healing") != 0 || *note == '\0')
			note = healerctl_json_string(dev, "detail", "");
		if (*note == '\0')
			note = healerctl_json_string(dev, "last_error", "");
		row[0] = g_strdup(healerctl_json_string(dev, "id", "?"));
		row[1] = port_text(dev);
		row[2] = platform_text(dev);
		row[3] = g_strdup(healerctl_json_string(dev, "mode", ""));
		row[4] = g_strdup(state);
		row[5] = g_strcmp0(state, "healing") == 0
		                 ? g_strdup_printf("%" G_GINT64_FORMAT "%%", healerctl_json_int(dev, "progress", 0))
		                 : g_strdup("-");
		row[6] = g_strdup(note);
		table_add(table, row);
	}
	table_print(table, "");
	return HEALER_EXIT_OK;
}

/* ---- device ID ---- */

static const char *
function_name(guint function)
{
	const char *name = healer_module_function_to_string(function);

	return name ? name : "?";
}

/* [{"module", "needs", "met"}] for every dependency of every module. */
static json_object *
dependencies_json(const HealerDescribe *describe)
{
	json_object *out = json_object_new_array();

	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		g_autofree char *name = g_strdup_printf("%s %u", function_name(m->function), m->index);
		for (guint d = 0; m->has_info && d < m->dependencies->len; d++) {
			const HealerDescribeDependency *dep =
			        &g_array_index(m->dependencies, HealerDescribeDependency, d);
			const HealerDescribeModule *have = healer_describe_find(describe, dep->function, dep->index);
			g_autofree char *text = healer_describe_dependency_to_string(dep);
			json_object *o;

			if (dep->function == MODULE_FUNCTION_NONE)
				continue;
			o = json_object_new_object();
			json_object_object_add(o, "module", json_object_new_string(name));
			json_object_object_add(o, "needs", json_object_new_string(text));
			json_object_object_add(o, "met",
			                       json_object_new_boolean(have != NULL && have->version >= dep->version));
			json_object_array_add(out, o);
		}
	}
	return out;
}

/* The module table, as `particle serial inspect` and healerctl probe show it. */
static void
print_modules(const HealerDescribe *describe)
{
	for (guint i = 0; i < describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		if (!m->has_info) {
			printf("    (empty slot)\n");
			continue;
		}
		printf("    %-12s %u  v%-5u %s\n", function_name(m->function), m->index, m->version,
		       healer_describe_module_valid(m)               ? "valid"
		       : healer_describe_module_dependency_failed(m) ? "FAILED dependencies"
		                                                     : "FAILED checks");
		for (guint d = 0; d < m->dependencies->len; d++) {
			const HealerDescribeDependency *dep =
			        &g_array_index(m->dependencies, HealerDescribeDependency, d);
			const HealerDescribeModule *have = healer_describe_find(describe, dep->function, dep->index);
			g_autofree char *text = NULL;
			gboolean met = have != NULL && have->version >= dep->version;

			if (dep->function == MODULE_FUNCTION_NONE)
				continue;
			text = healer_describe_dependency_to_string(dep);
			if (met)
				printf("        needs %-28s PASS\n", text);
			else if (have != NULL)
				printf("        needs %-28s FAIL (has v%u)\n", text, have->version);
			else
				printf("        needs %-28s FAIL (missing)\n", text);
		}
	}
}

static char *
format_time(guint64 seconds)
{
	g_autoptr(GDateTime) t = NULL;

	if (seconds == 0)
		return g_strdup("never");
	t = g_date_time_new_from_unix_local((gint64)seconds);
	return t ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
}

int
healerctl_device(int argc, char **argv)
{
	gboolean json = FALSE;
	g_auto(HealerctlClient) client = {0};
	g_autoptr(HealerDBusHealer1Device) dev = NULL;
	g_autoptr(HealerDescribe) describe = NULL;
	g_autoptr(GError) parse_error = NULL;
	g_autofree char *last_heal = NULL;
	g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(json_object) devices = NULL;
	g_autofree char *details = NULL;
	gboolean module_table = FALSE;
	json_object *found = NULL;
	const char *modules, *reason, *id;
	int status = HEALER_EXIT_OK;

	if ((status = healerctl_options_parse_json_verb(&device_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_connect(&client, "device")) != HEALER_EXIT_OK)
		return status;
	if ((dev = healerctl_client_find_device(&client, argv[1], &status)) == NULL)
		return status;
	id = healer_dbus_healer1_device_get_id(dev);
	modules = healer_dbus_healer1_device_get_modules(dev);
	if (modules != NULL && *modules != '\0')
		describe = healer_describe_parse(modules, strlen(modules), &parse_error);
	/* GetDevices' object: the properties' values, and what only it has (ttys, the family's details). */
	if ((devices = get_devices(&client, &status)) == NULL)
		return status;
	for (size_t i = 0; i < json_object_array_length(devices) && found == NULL; i++) {
		json_object *d = json_object_array_get_idx(devices, i);
		if (g_strcmp0(healerctl_json_string(d, "id", NULL), id) == 0)
			found = d;
	}
	if (found == NULL) {
		fprintf(stderr, "healerctl device: device %s went away\n", id);
		return HEALER_EXIT_NOT_FOUND;
	}

	if (json) {
		if (describe != NULL)
			json_object_object_add(found, "dependencies", dependencies_json(describe));
		healerctl_print_json(found, TRUE);
		return HEALER_EXIT_OK;
	}

	reason = shown(keep, healer_dbus_healer1_device_get_safe_mode_reason(dev));
	last_heal = format_time(healer_dbus_healer1_device_get_last_heal(dev));
	/* Every string healerd sent is escaped: the error's text, say, may be what a device sent. */
	printf("Device:       %s\n", shown(keep, id));
	printf("Port:         %s (%s)\n", shown(keep, healer_dbus_healer1_device_get_port(dev)),
	       shown(keep, healer_dbus_healer1_device_get_transport(dev)));
	{
		const char *name = healer_dbus_healer1_device_get_platform_name(dev);
		printf("Platform:     %s (%u)\n", name && *name ? shown(keep, name) : "unknown",
		       healer_dbus_healer1_device_get_platform_id(dev));
	}
	printf("Mode:         %s%s%s%s\n", shown(keep, healer_dbus_healer1_device_get_mode(dev)),
	       *reason && g_strcmp0(reason, "none") != 0 ? " (" : "",
	       *reason && g_strcmp0(reason, "none") != 0 ? reason : "",
	       *reason && g_strcmp0(reason, "none") != 0 ? ")" : "");
	printf("LED:          %s\n", shown(keep, healer_dbus_healer1_device_get_led(dev)));
	printf("State:        %s\n", shown(keep, healer_dbus_healer1_device_get_state(dev)));
	if (g_strcmp0(healer_dbus_healer1_device_get_state(dev), "healing") == 0)
		printf("Progress:     %u%% %s\n", healer_dbus_healer1_device_get_progress(dev),
		       shown(keep, healer_dbus_healer1_device_get_current_step(dev)));
	if (healer_dbus_healer1_device_get_last_error(dev) && *healer_dbus_healer1_device_get_last_error(dev))
		printf("Last error:   %s\n", shown(keep, healer_dbus_healer1_device_get_last_error(dev)));
	printf("Last heal:    %s\n", last_heal);
	details = healerctl_device_details_format(found, &module_table);
	fputs(details, stdout);
	/* A family's own module table (a Particle device's module info) says more than the describe's. */
	if (module_table)
		return HEALER_EXIT_OK;
	if (describe != NULL) {
		printf("Modules:\n");
		print_modules(describe);
	} else if (parse_error != NULL) {
		printf("Modules:      (unreadable describe: %s)\n", shown(keep, parse_error->message));
	} else {
		printf("Modules:      (not described yet)\n");
	}
	return HEALER_EXIT_OK;
}

/* ---- plan ID ---- */

int
healerctl_plan_remote(const char *id, gboolean json)
{
	g_auto(HealerctlClient) client = {0};
	g_autoptr(HealerDBusHealer1Device) dev = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	g_autoptr(json_object) plan = NULL;
	json_object *steps = NULL;
	int status;

	if ((status = healerctl_client_connect(&client, "plan")) != HEALER_EXIT_OK)
		return status;
	if ((dev = healerctl_client_find_device(&client, id, &status)) == NULL)
		return status;
	if (!healer_dbus_healer1_device_call_plan_sync(dev, &text, NULL, &error))
		return healerctl_fail(&client, error);
	if ((plan = healerctl_parse_json(&client, "a plan", text)) == NULL)
		return HEALER_EXIT_FAILED;
	if (json) {
		healerctl_print_json(plan, TRUE);
		return HEALER_EXIT_OK;
	}
	if ((steps = healer_json_lookup_type(plan, "steps", json_type_array)) == NULL) {
		fprintf(stderr, "healerctl plan: healerd sent a plan without \"steps\"\n");
		return HEALER_EXIT_FAILED;
	}
	if (json_object_array_length(steps) == 0) {
		printf("nothing to do: the installed user part's dependencies are met\n");
		return HEALER_EXIT_OK;
	}
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		json_object *s = json_object_array_get_idx(steps, i);
		const char *release = healerctl_json_string(s, "release", NULL);
		const char *sha = healerctl_json_string(s, "sha256", "");
		g_autofree char *what = NULL;
		json_object *function = NULL;

		if ((function = healer_json_lookup_type(s, "function", json_type_int)) != NULL)
			what = g_strdup(function_name((guint)json_object_get_int(function)));
		else
			what = g_strdup(healerctl_json_string(s, "function", "?"));
		printf("%zu. %s %" G_GINT64_FORMAT " v%" G_GINT64_FORMAT "%s%s%s  sha256 %.12s\n", i + 1, what,
		       healerctl_json_int(s, "index", 0), healerctl_json_int(s, "version", 0), release ? " (" : "",
		       release ? release : "", release ? ")" : "", sha);
	}
	printf("total: %" G_GINT64_FORMAT " bytes in %zu step%s (one module per reset)\n",
	       healerctl_json_int(plan, "bytes", 0), json_object_array_length(steps),
	       json_object_array_length(steps) == 1 ? "" : "s");
	return HEALER_EXIT_OK;
}

/* ---- modules ---- */

int
healerctl_modules(int argc, char **argv)
{
	gboolean json = FALSE;
	const char *headings[] = {"FUNCTION", "INDEX", "VERSION", "RELEASE", "PLATFORM", "SIZE", "SHA256"};
	g_auto(HealerctlClient) client = {0};
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	g_autoptr(json_object) modules = NULL;
	g_autoptr(Table) table = table_new(G_N_ELEMENTS(headings), headings);
	int status = HEALER_EXIT_OK;

	if ((status = healerctl_options_parse_json_verb(&modules_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_connect(&client, "modules")) != HEALER_EXIT_OK)
		return status;
	if (!healer_dbus_healer1_call_list_modules_sync(client.manager, &text, NULL, &error))
		return healerctl_fail(&client, error);
	if ((modules = healerctl_parse_json(&client, "a module list", text)) == NULL)
		return HEALER_EXIT_FAILED;
	if (json) {
		healerctl_print_json(modules, TRUE);
		return HEALER_EXIT_OK;
	}
	if (!json_object_is_type(modules, json_type_array) || json_object_array_length(modules) == 0) {
		printf("the store is empty (healerctl import PATH adds modules)\n");
		return HEALER_EXIT_OK;
	}
	for (size_t i = 0; i < json_object_array_length(modules); i++) {
		json_object *m = json_object_array_get_idx(modules, i);
		json_object *function = NULL;
		const HealerPlatform *platform =
		        healer_platform_lookup((guint16)healerctl_json_int(m, "platform_id", 0));
		char *row[7];

		if ((function = healer_json_lookup_type(m, "function", json_type_int)) != NULL)
			row[0] = g_strdup(function_name((guint)json_object_get_int(function)));
		else
			row[0] = g_strdup(healerctl_json_string(m, "function", "?"));
		row[1] = g_strdup_printf("%" G_GINT64_FORMAT, healerctl_json_int(m, "index", 0));
		row[2] = g_strdup_printf("%" G_GINT64_FORMAT, healerctl_json_int(m, "version", 0));
		row[3] = g_strdup(healerctl_json_string(m, "release", "-"));
		row[4] = platform ? g_strdup(platform->name)
		                  : g_strdup_printf("%" G_GINT64_FORMAT, healerctl_json_int(m, "platform_id", 0));
		row[5] = g_strdup_printf("%" G_GINT64_FORMAT, healerctl_json_int(m, "size", 0));
		row[6] = g_strndup(healerctl_json_string(m, "sha256", ""), 12);
		table_add(table, row);
	}
	table_print(table, "");
	return HEALER_EXIT_OK;
}

/* ---- import PATH ---- */

int
healerctl_import(int argc, char **argv)
{
	gboolean json = FALSE;
	g_auto(HealerctlClient) client = {0};
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) rejected = NULL;
	g_autofree char *path = NULL;
	g_autoptr(GUnixFDList) fd_list = NULL;
	struct stat st;
	guint added = 0;
	int fd, status = HEALER_EXIT_OK;

	if ((status = healerctl_options_parse_json_verb(&import_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	path = g_canonicalize_filename(argv[1], NULL);
	/*
	 * healerd reads what we open, with our rights, wherever it is (its own /tmp and /home are
	 * private to the service): the descriptor goes over the bus, the path only names it.
	 */
	fd = g_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0) {
		return healerctl_print_open_error("import", path, errno);
	}
	if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		fprintf(stderr, "healerctl import: %s: not a regular file or a directory\n", path);
		close(fd);
		return HEALER_EXIT_FAILED;
	}
	if ((status = healerctl_client_connect(&client, "import")) != HEALER_EXIT_OK) {
		close(fd);
		return status;
	}
	/* A bundle of many modules is verified whole before healerd answers. */
	g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(client.manager), 30 * 60 * 1000);
	if (S_ISDIR(st.st_mode) && geteuid() != 0) {
		/* healerd takes a directory from root only (it would read it with its own rights). */
		g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);
		gboolean ok = healerctl_import_directory(&client, fd, path, &added, list, &error);
		close(fd);
		if (!ok)
			return healerctl_fail(&client, error);
		g_ptr_array_add(list, NULL);
		rejected = (GStrv)g_ptr_array_free(g_steal_pointer(&list), FALSE);
	} else {
		fd_list = g_unix_fd_list_new_from_array(&fd, 1); /* takes the descriptor */
		if (!healer_dbus_healer1_call_import_fd_sync(client.manager, g_variant_new_handle(0), path, fd_list,
		                                             &added, &rejected, NULL, NULL, &error))
			return healerctl_fail(&client, error);
	}
	if (json) {
		g_autoptr(json_object) o = json_object_new_object();
		json_object *list = json_object_new_array();
		for (guint i = 0; rejected != NULL && rejected[i] != NULL; i++)
			json_object_array_add(list, json_object_new_string(rejected[i]));
		json_object_object_add(o, "added", json_object_new_int64(added));
		json_object_object_add(o, "rejected", list);
		healerctl_print_json(o, TRUE);
	} else {
		printf("%u new module%s added to the store\n", added, added == 1 ? "" : "s");
		for (guint i = 0; rejected != NULL && rejected[i] != NULL; i++)
			printf("rejected %s\n", rejected[i]);
	}
	return rejected != NULL && rejected[0] != NULL ? HEALER_EXIT_FAILED : HEALER_EXIT_OK;
}

/* ---- refresh ---- */

int
healerctl_refresh(int argc, char **argv)
{
	gboolean json = FALSE;
	g_auto(HealerctlClient) client = {0};
	g_autoptr(GError) error = NULL;
	gboolean changed = FALSE;
	guint64 serial = 0;
	guint modules = 0;
	int status = HEALER_EXIT_OK;

	if ((status = healerctl_options_parse_json_verb(&refresh_verb, &json, &argc, &argv)) != HEALER_EXIT_OK)
		return status;
	if ((status = healerctl_client_connect(&client, "refresh")) != HEALER_EXIT_OK)
		return status;
	/*
	 * No timeout of our own: healerd answers once the catalog and its signature are fetched or have
	 * failed, each transfer bounded by [upstream] transfer-timeout-seconds, so the error it gives
	 * ("URL: no complete answer within 120 s") is the one shown, whatever the site configured.
	 */
	g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(client.manager), G_MAXINT);
	if (!healer_dbus_healer1_call_refresh_sync(client.manager, &changed, &serial, &modules, NULL, &error))
		return healerctl_fail(&client, error);
	if (json) {
		g_autoptr(json_object) o = json_object_new_object();
		json_object_object_add(o, "changed", json_object_new_boolean(changed));
		json_object_object_add(o, "serial", json_object_new_uint64(serial));
		json_object_object_add(o, "modules", json_object_new_int64(modules));
		healerctl_print_json(o, TRUE);
	} else {
		printf("upstream catalog serial %" G_GUINT64_FORMAT ", %u module%s%s\n", serial, modules,
		       modules == 1 ? "" : "s", changed ? " (new)" : " (unchanged)");
	}
	return HEALER_EXIT_OK;
}
