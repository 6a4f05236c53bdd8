/*
 * The engine: every attached device, what state it is in, and the heal
 * job each one that needs it runs.  The faces (journal, systemd, D-Bus, and
 * next MQTT) observe its events (events.h) and call into it; they decide nothing.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

#include "backend.h"
#include "config.h"
#include "supply.h"

G_BEGIN_DECLS

typedef enum {
	HEALER_STATUS_ATTACHED,   /* a backend gave it, not yet identified */
	HEALER_STATUS_IDENTIFIED, /* HELLO and describe in, not yet judged */
	HEALER_STATUS_HEALTHY,
	HEALER_STATUS_SAFE_MODE, /* in safe mode for a reason healing does not fix, or with auto-heal off */
	HEALER_STATUS_QUEUED,    /* needs a heal, waiting for a free job slot (max-concurrent-jobs) */
	HEALER_STATUS_HEALING,
	HEALER_STATUS_BLOCKED, /* needs a module the store lacks */
	HEALER_STATUS_FAILED,
	HEALER_STATUS_DETACHED,
} HealerStatus;

const char *healer_status_to_string(HealerStatus status);

typedef struct _HealerEngine HealerEngine;

/*
 * Takes neither: both must outlive the engine.  Plans are made from the supply's planning set,
 * their modules made local and read through it (supply.h, planning-set.h).
 */
HealerEngine *healer_engine_new(HealerConfig *config, HealerSupply *supply);
/* Starts the backends and serving their devices. */
void healer_engine_start(HealerEngine *engine);
void healer_engine_free(HealerEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerEngine, healer_engine_free)

/*
 * Devices come from backends (backend.h): the engine serves every device
 * `backend` (a reference is taken) adds, from healer_engine_start() on (at
 * once when started already).  The serial backend (serial-backend.h) is the
 * first; tests and fuzzers attach their own transports through it.
 */
void healer_engine_add_backend(HealerEngine *engine, HealerBackend *backend);

/* error NULL: done.  device_id is the device the call named. */
typedef void (*HealerEngineDoneFunc)(HealerEngine *engine, const char *device_id, const GError *error,
                                     gpointer user_data);

/*
 * Installs the application in `app_path` on a device: first whatever system
 * modules its dependencies need, then the application, so the device never
 * drops into safe mode.  Fails at once (NOT_FOUND, BUSY, INVALID_ARGUMENT,
 * NO_PLAN) or reports through `func` when the job ends.
 */
gboolean healer_engine_flash_app(HealerEngine *engine, const char *device_id, const char *app_path,
                                 HealerEngineDoneFunc func, gpointer user_data, GError **error);
/*
 * The same with the application's bytes, read already (through a caller's descriptor, in a
 * worker); `app_path` only names it.  healer_engine_flash_app() opens app_path without blocking
 * (a FIFO is refused, not waited on) and reads it before calling this.
 */
gboolean healer_engine_flash_app_bytes(HealerEngine *engine, const char *device_id, GBytes *app_bytes,
                                       const char *app_path, HealerEngineDoneFunc func, gpointer user_data,
                                       GError **error);

/* What the faces see of a device: a snapshot, owned by the caller. */
typedef struct {
	char *id;
	char *port;
	char *transport;
	guint16 platform_id;
	char *platform_name;
	char *mode;
	char *led;
	char *state;
	char *detail;
	char *safe_mode_reason;
	char *modules_json; /* the describe as the device sent it */
	GStrv ttys;         /* the ttys of its USB device ("ttyACM0"; usb-sysfs.h), never served apart; empty */
	guint progress;     /* 0..100 over the running job */
	char *current_step;
	char *last_error;
	guint64 last_heal; /* seconds since the epoch, 0 if never */
} HealerDeviceInfo;

void healer_device_info_free(HealerDeviceInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDeviceInfo, healer_device_info_free)

/*
 * Faces observe the engine through the event stream (events.h): it emits
 * DEVICE_ADDED / _CHANGED / _REMOVED, HEAL_PROGRESS, HEAL_FINISHED,
 * SOURCES_CHANGED and STATUS, and the journal records of its devices and heals.
 * A face unsubscribes before the engine is freed.
 */
/* Devices that said who they are; NULL / empty before. */
HealerDeviceInfo *healer_engine_get_device(HealerEngine *engine, const char *device_id);
GPtrArray *healer_engine_list_devices(HealerEngine *engine);
guint healer_engine_count_healing(HealerEngine *engine);

/* Starts a heal now, auto-heal or not; a device that needs none finishes at once. */
gboolean healer_engine_heal(HealerEngine *engine, const char *device_id, GError **error);
/* Starts a heal on every device that needs one; returns their ids. */
GPtrArray *healer_engine_heal_all(HealerEngine *engine);
/* What a heal would install now, as JSON: {"steps": [...], "bytes": N}. */
char *healer_engine_plan(HealerEngine *engine, const char *device_id, GError **error);
gboolean healer_engine_reset(HealerEngine *engine, const char *device_id, GError **error);

/* The store gained modules, a catalog was accepted, or a fetch changed: blocked and waiting devices are planned again.
 */
void healer_engine_store_changed(HealerEngine *engine);
/* "4 devices: 3 healthy, 1 healing" */
char *healer_engine_summary(HealerEngine *engine);

G_END_DECLS
