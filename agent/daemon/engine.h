/*
 * The engine: every attached device, what state it is in, and the heal
 * job each one that needs it runs.  The faces (journal, and next D-Bus and
 * MQTT) observe it and call into it; they decide nothing.
 */
#pragma once

#include <glib.h>

#include "config.h"
#include "store.h"

G_BEGIN_DECLS

typedef enum {
	HEALER_STATUS_ATTACHED,   /* port open, waiting for HELLO */
	HEALER_STATUS_IDENTIFIED, /* HELLO and describe in, not yet judged */
	HEALER_STATUS_HEALTHY,
	HEALER_STATUS_SAFE_MODE, /* in safe mode for a reason healing does not fix, or waiting for a job slot */
	HEALER_STATUS_HEALING,
	HEALER_STATUS_BLOCKED, /* needs a module the store lacks */
	HEALER_STATUS_FAILED,
	HEALER_STATUS_DETACHED,
} HealerStatus;

const char *healer_status_to_string(HealerStatus status);

typedef struct _HealerEngine HealerEngine;

/* Takes neither: both must outlive the engine. */
HealerEngine *healer_engine_new(HealerConfig *config, HealerStore *store);
/* Starts watching ports and serving devices. */
void healer_engine_start(HealerEngine *engine);
void healer_engine_free(HealerEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerEngine, healer_engine_free)

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

/* The store gained modules: blocked devices are planned again. */
void healer_engine_store_changed(HealerEngine *engine);
/* "4 devices: 3 healthy, 1 healing" */
char *healer_engine_summary(HealerEngine *engine);

G_END_DECLS
