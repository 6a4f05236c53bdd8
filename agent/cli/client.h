/*
 * What healerctl's D-Bus verbs share: which bus (--system, --session,
 * $HEALERCTL_BUS), connecting and checking that healerd owns its name,
 * finding a device by id, and turning every failure into a message that
 * says what to do next and a documented exit code.
 */
#pragma once

#include <gio/gio.h>
#include <json-c/json.h>

#include "healer-dbus.h"

G_BEGIN_DECLS

#define HEALERCTL_BUS_NAME     "io.healerd.Healer1"
#define HEALERCTL_MANAGER_PATH "/io/healerd/Healer1"

/* --system / --session, for every verb's option table (and before the verb). */
gboolean healerctl_option_bus(const char *option_name, const char *value, gpointer data, GError **error);
/* clang-format off */
#define HEALERCTL_BUS_OPTIONS \
	{"system", 0, G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, (gpointer)healerctl_option_bus, \
	 "Talk to healerd on the system bus (the default)", NULL}, \
	{"session", 0, G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, (gpointer)healerctl_option_bus, \
	 "Talk to healerd on the session bus (healerd --session; or HEALERCTL_BUS=session)", NULL}
/* clang-format on */

typedef struct {
	const char *verb; /* for messages: "healerctl VERB: ..." */
	GBusType bus_type;
	GDBusConnection *connection;
	HealerDBusHealer1 *manager;
	GDBusObjectManager *objects; /* only after healerctl_client_load_devices() */
} HealerctlClient;

void healerctl_client_clear(HealerctlClient *client);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HealerctlClient, healerctl_client_clear)

/* Connects to the bus and checks healerd is there; 0, or the exit code after printing why not. */
int healerctl_client_connect(HealerctlClient *client, const char *verb);
/* Loads the device objects (ObjectManager); 0 or an exit code (printed). */
int healerctl_client_load_devices(HealerctlClient *client);
/*
 * The device whose Id is `id`, or whose Id starts with `id` when only one
 * does, or whose Port is `id`.  NULL after printing why (and *exit_code set).
 */
HealerDBusHealer1Device *healerctl_client_find_device(HealerctlClient *client, const char *id, int *exit_code);

/* Prints "healerctl VERB: <what to do>" for `error` and returns its exit code. */
int healerctl_fail(const HealerctlClient *client, const GError *error);
/* The exit code for an error from a call (see healerctl(1)). */
int healerctl_error_exit_code(const GError *error);

/* Parses a JSON document healerd sent; NULL after printing why. */
json_object *healerctl_parse_json(const HealerctlClient *client, const char *what, const char *text);

/* A string member of a JSON object, or `fallback`. */
const char *healerctl_json_string(json_object *obj, const char *key, const char *fallback);
gint64 healerctl_json_int(json_object *obj, const char *key, gint64 fallback);

/* Whether stdout is a terminal that understands ANSI escapes. */
gboolean healerctl_stdout_is_terminal(void);

/* Runs the default main context until `*done` (or the loop is quit by a signal handler). */
void healerctl_iterate_until(const gboolean *done);

G_END_DECLS
