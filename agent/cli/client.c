#include "client.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "healer-error.h"
#include "healer-json.h"
#include "json-autoptr.h"

static GBusType chosen_bus = G_BUS_TYPE_NONE;

gboolean
healerctl_option_bus(const char *option_name, const char *value, gpointer data, GError **error)
{
	(void)value;
	(void)data;
	(void)error;
	chosen_bus = g_str_equal(option_name, "--session") ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM;
	return TRUE;
}

static gboolean
bus_type(GBusType *out)
{
	const char *env = g_getenv("HEALERCTL_BUS");

	if (chosen_bus != G_BUS_TYPE_NONE) {
		*out = chosen_bus;
		return TRUE;
	}
	if (env == NULL || *env == '\0' || g_str_equal(env, "system")) {
		*out = G_BUS_TYPE_SYSTEM;
		return TRUE;
	}
	if (g_str_equal(env, "session")) {
		*out = G_BUS_TYPE_SESSION;
		return TRUE;
	}
	return FALSE;
}

void
healerctl_client_clear(HealerctlClient *client)
{
	g_clear_object(&client->objects);
	g_clear_object(&client->manager);
	g_clear_object(&client->connection);
}

static void
print_not_running(const HealerctlClient *client)
{
	if (client->bus_type == G_BUS_TYPE_SESSION)
		fprintf(stderr,
		        "healerctl %s: healerd is not running on the session bus (start it with: healerd --session)\n",
		        client->verb);
	else
		fprintf(stderr, "healerctl %s: healerd is not running (start it with: systemctl start healerd)\n",
		        client->verb);
}

int
healerctl_client_connect(HealerctlClient *client, const char *verb)
{
	g_autoptr(GError) error = NULL;

	/* Registers the io.healerd.Error.* names, so the daemon's errors come back in HEALER_ERROR. */
	(void)healer_error_quark();
	client->verb = verb;
	if (!bus_type(&client->bus_type)) {
		fprintf(stderr, "healerctl %s: HEALERCTL_BUS must be 'system' or 'session', not '%s'\n", verb,
		        g_getenv("HEALERCTL_BUS"));
		return HEALER_EXIT_USAGE;
	}
	client->connection = g_bus_get_sync(client->bus_type, NULL, &error);
	if (client->connection == NULL) {
		print_not_running(client);
		fprintf(stderr, "  (cannot connect to the %s bus: %s)\n",
		        client->bus_type == G_BUS_TYPE_SESSION ? "session" : "system", error->message);
		return HEALER_EXIT_NO_DAEMON;
	}
	/* Starts healerd by D-Bus activation where it is installed for it. */
	client->manager = healer_dbus_healer1_proxy_new_sync(client->connection, G_DBUS_PROXY_FLAGS_NONE,
	                                                     HEALERCTL_BUS_NAME, HEALERCTL_MANAGER_PATH, NULL, &error);
	if (client->manager == NULL)
		return healerctl_fail(client, error);
	{
		g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(client->manager));
		if (owner == NULL) {
			print_not_running(client);
			return HEALER_EXIT_NO_DAEMON;
		}
	}
	/* Long heals and imports: the daemon answers at once, but a big import takes a while. */
	g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(client->manager), 120 * 1000);
	return HEALER_EXIT_OK;
}

int
healerctl_client_load_devices(HealerctlClient *client)
{
	g_autoptr(GError) error = NULL;

	if (client->objects != NULL)
		return HEALER_EXIT_OK;
	client->objects = healer_dbus_object_manager_client_new_sync(
	        client->connection, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, HEALERCTL_BUS_NAME,
	        HEALERCTL_MANAGER_PATH, NULL, &error);
	if (client->objects == NULL)
		return healerctl_fail(client, error);
	return HEALER_EXIT_OK;
}

HealerDBusHealer1Device *
healerctl_client_find_device(HealerctlClient *client, const char *id, int *exit_code)
{
	GList *objects;
	g_autoptr(GPtrArray) by_prefix = g_ptr_array_new();
	HealerDBusHealer1Device *found = NULL;

	*exit_code = healerctl_client_load_devices(client);
	if (*exit_code != HEALER_EXIT_OK)
		return NULL;
	objects = g_dbus_object_manager_get_objects(client->objects);
	for (GList *l = objects; l != NULL && found == NULL; l = l->next) {
		HealerDBusHealer1Device *dev = healer_dbus_object_peek_healer1_device(HEALER_DBUS_OBJECT(l->data));
		const char *dev_id, *port;

		if (dev == NULL)
			continue;
		dev_id = healer_dbus_healer1_device_get_id(dev);
		port = healer_dbus_healer1_device_get_port(dev);
		if (g_strcmp0(dev_id, id) == 0 || g_strcmp0(port, id) == 0)
			found = dev;
		else if (port != NULL && strchr(id, '/') == NULL && g_str_has_suffix(port, id) &&
		         port[strlen(port) - strlen(id) - 1] == '/')
			g_ptr_array_add(by_prefix, dev); /* the port's name: ttyACM0 for /dev/ttyACM0 */
		else if (dev_id != NULL && *id != '\0' && g_str_has_prefix(dev_id, id))
			g_ptr_array_add(by_prefix, dev);
	}
	if (found == NULL && by_prefix->len == 1)
		found = g_ptr_array_index(by_prefix, 0);
	if (found != NULL) {
		g_object_ref(found);
	} else if (by_prefix->len > 1) {
		g_autoptr(GString) names = g_string_new(NULL);
		for (guint i = 0; i < by_prefix->len; i++)
			g_string_append_printf(names, "%s%s", i ? ", " : "",
			                       healer_dbus_healer1_device_get_id(g_ptr_array_index(by_prefix, i)));
		fprintf(stderr, "healerctl %s: '%s' matches several devices (%s): give more of the id\n", client->verb,
		        id, names->str);
		*exit_code = HEALER_EXIT_USAGE;
	} else {
		fprintf(stderr, "healerctl %s: no device '%s' is attached (healerctl devices lists them)\n",
		        client->verb, id);
		*exit_code = HEALER_EXIT_NOT_FOUND;
	}
	g_list_free_full(objects, g_object_unref);
	return found;
}

/* io.healerd.Error.* to HEALER_ERROR, for an error whose name was not registered. */
static gboolean
healer_code_of(const GError *error, HealerError *code)
{
	g_autofree char *name = NULL;

	if (error->domain == HEALER_ERROR) {
		*code = (HealerError)error->code;
		return TRUE;
	}
	if (!g_dbus_error_is_remote_error(error))
		return FALSE;
	name = g_dbus_error_get_remote_error(error);
	for (int c = HEALER_ERROR_FAILED; c <= HEALER_ERROR_IO; c++) {
		if (g_strcmp0(name, healer_error_to_dbus_name((HealerError)c)) == 0) {
			*code = (HealerError)c;
			return TRUE;
		}
	}
	return FALSE;
}

int
healerctl_error_exit_code(const GError *error)
{
	HealerError code;

	if (healer_code_of(error, &code)) {
		g_autoptr(GError) local = g_error_new_literal(HEALER_ERROR, code, "");
		return healer_error_to_exit_code(local);
	}
	if (error->domain == G_DBUS_ERROR) {
		switch (error->code) {
		case G_DBUS_ERROR_SERVICE_UNKNOWN:
		case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
		case G_DBUS_ERROR_NO_SERVER:
		case G_DBUS_ERROR_DISCONNECTED:
		case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
		case G_DBUS_ERROR_SPAWN_FORK_FAILED:
		case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
		case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
		case G_DBUS_ERROR_SPAWN_FAILED:
		case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
		case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
		case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
		case G_DBUS_ERROR_SPAWN_FILE_INVALID:
		case G_DBUS_ERROR_SPAWN_NO_MEMORY:
			return HEALER_EXIT_NO_DAEMON;
		case G_DBUS_ERROR_ACCESS_DENIED:
		case G_DBUS_ERROR_AUTH_FAILED:
			return HEALER_EXIT_PERMISSION;
		case G_DBUS_ERROR_UNKNOWN_OBJECT:
		case G_DBUS_ERROR_UNKNOWN_INTERFACE:
			return HEALER_EXIT_NOT_FOUND;
		case G_DBUS_ERROR_INVALID_ARGS:
			return HEALER_EXIT_USAGE;
		default:
			return HEALER_EXIT_FAILED;
		}
	}
	if (error->domain == G_IO_ERROR) {
		switch (error->code) {
		case G_IO_ERROR_CLOSED:
		case G_IO_ERROR_BROKEN_PIPE:
		case G_IO_ERROR_CONNECTION_REFUSED:
			return HEALER_EXIT_NO_DAEMON;
		case G_IO_ERROR_PERMISSION_DENIED:
			return HEALER_EXIT_PERMISSION;
		default:
			return HEALER_EXIT_FAILED;
		}
	}
	return HEALER_EXIT_FAILED;
}

int
healerctl_fail(const HealerctlClient *client, const GError *error)
{
	g_autoptr(GError) copy = g_error_copy(error);
	int exit_code = healerctl_error_exit_code(error);
	HealerError code = HEALER_ERROR_FAILED;
	gboolean ours = healer_code_of(error, &code);
	const char *verb = client->verb;

	g_dbus_error_strip_remote_error(copy);
	switch (exit_code) {
	case HEALER_EXIT_NO_DAEMON:
		print_not_running(client);
		break;
	case HEALER_EXIT_PERMISSION:
		/* The bus policy's refusal and healerd's own say the same thing; the bus's text is noise. */
		fprintf(stderr, "healerctl %s: permission denied: run as root or as a member of group healer\n", verb);
		break;
	case HEALER_EXIT_BUSY:
		fprintf(stderr, "healerctl %s: busy: %s (wait for it to finish; healerctl monitor shows when)\n", verb,
		        copy->message);
		break;
	default:
		if (ours && code == HEALER_ERROR_NO_PLAN)
			fprintf(stderr, "healerctl %s: no plan: %s\n", verb, copy->message);
		else if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_TIMEOUT) ||
		         g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
		         g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
			fprintf(stderr,
			        "healerctl %s: healerd did not answer in time (journalctl -u healerd may say why)\n",
			        verb);
		else if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD))
			fprintf(stderr, "healerctl %s: %s (is healerd the same version as healerctl %s?)\n", verb,
			        copy->message, HEALER_VERSION);
		else
			fprintf(stderr, "healerctl %s: %s\n", verb, copy->message);
		break;
	}
	return exit_code;
}

json_object *
healerctl_parse_json(const HealerctlClient *client, const char *what, const char *text)
{
	g_autoptr(json_tokener) tok = json_tokener_new();
	json_object *obj;

	if (text == NULL)
		text = "";
	obj = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		fprintf(stderr, "healerctl %s: healerd sent %s that is not JSON: %s\n", client->verb, what,
		        json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

const char *
healerctl_json_string(json_object *obj, const char *key, const char *fallback)
{
	const char *s = healer_json_lookup_string(obj, key);

	return s != NULL ? s : fallback;
}

gint64
healerctl_json_int(json_object *obj, const char *key, gint64 fallback)
{
	json_object *v = NULL;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return fallback;
	return json_object_get_int64(v);
}

gboolean
healerctl_stdout_is_terminal(void)
{
	const char *term = g_getenv("TERM");

	return isatty(STDOUT_FILENO) && term != NULL && g_strcmp0(term, "dumb") != 0;
}

void
healerctl_iterate_until(const gboolean *done)
{
	while (!*done)
		g_main_context_iteration(NULL, TRUE);
}
