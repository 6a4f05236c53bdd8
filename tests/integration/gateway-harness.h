/* What the end-to-end tests share: a private system bus, healerctl runs, simulated devices. */
#pragma once

#include <gio/gio.h>

#include "link-codec.h"
#include "sim-client.h"
#include "test-util.h"

#define BUS_NAME     "io.healerd.Healer1"
#define MANAGER_PATH "/io/healerd/Healer1"

/* ---- the private bus ---- */

typedef struct {
	char *dir; /* world-searchable, so nobody reaches the socket */
	GSubprocess *process;
	char *address;
} Bus;

/*
 * A dbus-daemon with the system bus's default policy plus the project's
 * policy file, unchanged; DBUS_SYSTEM_BUS_ADDRESS points at it.
 */
void bus_start(Bus *bus);
/*
 * The same with `extra` (policy XML) after the project's file, overriding it: a looser bus
 * configuration elsewhere, against which healerd's own checks must hold.
 */
void bus_start_with_policy(Bus *bus, const char *extra);
void bus_stop(Bus *bus);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Bus, bus_stop)
GDBusConnection *bus_connect(const Bus *bus);
/* Whether io.healerd.Healer1 has an owner on the bus. */
gboolean has_owner(GDBusConnection *c);
/*
 * Waits until healerd owns its name on `bus` (it may judge its first device before it takes the
 * name, so a healerctl call right after a device event can find nobody there); fails the test
 * after `timeout_ms`.
 */
void bus_wait_for_healerd(const Bus *bus, guint timeout_ms);
gboolean have_dbus_daemon(void);

/* ---- running healerctl ---- */

void log_run(const TestRun *run, const char *what);
/* healerctl ARGS... (NULL-terminated), wrapped like every command the tests run. */
void healerctl(TestRun *run, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* ---- simulated devices ---- */

typedef struct {
	SimDevice *sim;
	char *id;
	char *link;
	HealerLinkHello hello;
	char *describe_json;
} Device;

void device_clear(Device *d);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Device, device_clear)
/* A device on DIR/ports/NAME; its HELLO and describe are kept, its line let go for healerd. */
void start_device(Device *d, const char *dir, const char *name, const char *release, const char *app);
/* With healerd stopped: the device runs its application, every module valid. */
void assert_runs(Device *d);
