/*
 * The D-Bus face: io.healerd.Healer1 with an object per device.  It only
 * observes the engine and forwards calls to it; it decides nothing but who
 * may call what.
 */
#pragma once

#include <gio/gio.h>

#include "engine.h"

G_BEGIN_DECLS

typedef struct _HealerDBusFace HealerDBusFace;

/* Owns the bus name; quits `loop` if the name cannot be had or is lost. */
HealerDBusFace *healer_dbus_face_new(HealerEngine *engine, GBusType bus_type, GMainLoop *loop);
gboolean healer_dbus_face_lost_name(HealerDBusFace *face);
void healer_dbus_face_free(HealerDBusFace *face);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDBusFace, healer_dbus_face_free)

G_END_DECLS
