/*
 * The D-Bus face: io.healerd.Healer1 with an object per device.  It only
 * observes the engine and forwards calls to it; it decides nothing but who
 * may call what.
 */
#pragma once

#include <gio/gio.h>

#include "engine.h"
#include "store.h"
#include "supply.h"
#include "upstream.h"

G_BEGIN_DECLS

typedef struct _HealerDBusFace HealerDBusFace;

/*
 * Owns the bus name; quits `loop` if the name cannot be had or is lost.  The engine for devices and
 * heals; the store (modules held), the supply (imports, sources) and the upstream (NULL: none;
 * refreshes) for where modules come from.  Takes none: all outlive the face.
 */
HealerDBusFace *healer_dbus_face_new(HealerEngine *engine, HealerStore *store, HealerSupply *supply,
                                     HealerUpstream *upstream, GBusType bus_type, GMainLoop *loop);
gboolean healer_dbus_face_lost_name(HealerDBusFace *face);
void healer_dbus_face_free(HealerDBusFace *face);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDBusFace, healer_dbus_face_free)

G_END_DECLS
