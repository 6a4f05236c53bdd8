#include "backend.h"

typedef struct {
	char *name;
	GPtrArray *peers; /* HealerBackend*, not referenced: each removes itself from the others' when it goes */
} HealerBackendPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(HealerBackend, healer_backend, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_NAME,
	N_PROPS,
};

enum {
	SIGNAL_DEVICE_ADDED,
	SIGNAL_DEVICE_REMOVED,
	N_SIGNALS,
};

static GParamSpec *props[N_PROPS];
static guint signals[N_SIGNALS];

#define PRIV(self) ((HealerBackendPrivate *)healer_backend_get_instance_private(self))

static void
healer_backend_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	HealerBackendPrivate *priv = PRIV(HEALER_BACKEND(object));

	switch (prop_id) {
	case PROP_NAME:
		g_free(priv->name);
		priv->name = g_value_dup_string(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
healer_backend_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	HealerBackendPrivate *priv = PRIV(HEALER_BACKEND(object));

	switch (prop_id) {
	case PROP_NAME:
		g_value_set_string(value, priv->name);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void on_peer_device_added(HealerBackend *peer, HealerDevice *device, gpointer user_data);

/* It leaves its peers: no more of their devices reach it, and they no longer ask it. */
static void
healer_backend_dispose(GObject *object)
{
	HealerBackend *self = HEALER_BACKEND(object);
	HealerBackendPrivate *priv = PRIV(self);

	while (priv->peers->len > 0) {
		HealerBackend *peer = g_ptr_array_steal_index(priv->peers, priv->peers->len - 1);
		g_signal_handlers_disconnect_by_func(peer, on_peer_device_added, self);
		g_signal_handlers_disconnect_by_func(self, on_peer_device_added, peer);
		g_ptr_array_remove(PRIV(peer)->peers, self);
	}
	G_OBJECT_CLASS(healer_backend_parent_class)->dispose(object);
}

static void
healer_backend_finalize(GObject *object)
{
	g_ptr_array_unref(PRIV(HEALER_BACKEND(object))->peers);
	g_free(PRIV(HEALER_BACKEND(object))->name);
	G_OBJECT_CLASS(healer_backend_parent_class)->finalize(object);
}

static void
healer_backend_class_init(HealerBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->set_property = healer_backend_set_property;
	object_class->get_property = healer_backend_get_property;
	object_class->dispose = healer_backend_dispose;
	object_class->finalize = healer_backend_finalize;
	props[PROP_NAME] = g_param_spec_string("name", NULL, NULL, NULL,
	                                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);
	signals[SIGNAL_DEVICE_ADDED] = g_signal_new("device-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
	                                            NULL, NULL, NULL, G_TYPE_NONE, 1, HEALER_TYPE_DEVICE);
	signals[SIGNAL_DEVICE_REMOVED] =
	        g_signal_new("device-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
	                     G_TYPE_NONE, 2, HEALER_TYPE_DEVICE, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
healer_backend_init(HealerBackend *self)
{
	PRIV(self)->peers = g_ptr_array_new();
}

const char *
healer_backend_get_name(HealerBackend *self)
{
	g_return_val_if_fail(HEALER_IS_BACKEND(self), NULL);
	return PRIV(self)->name;
}

void
healer_backend_start(HealerBackend *self)
{
	g_return_if_fail(HEALER_IS_BACKEND(self));
	HEALER_BACKEND_GET_CLASS(self)->start(self);
}

void
healer_backend_stop(HealerBackend *self)
{
	g_return_if_fail(HEALER_IS_BACKEND(self));
	HEALER_BACKEND_GET_CLASS(self)->stop(self);
}

gboolean
healer_backend_allow_record(HealerBackend *self, HealerDevice *device, const char *device_id)
{
	HealerBackendClass *klass;

	g_return_val_if_fail(HEALER_IS_BACKEND(self), TRUE);
	klass = HEALER_BACKEND_GET_CLASS(self);
	return klass->allow_record == NULL || klass->allow_record(self, device, device_id);
}

void
healer_backend_emit_device_added(HealerBackend *self, HealerDevice *device)
{
	g_signal_emit(self, signals[SIGNAL_DEVICE_ADDED], 0, device);
}

void
healer_backend_emit_device_removed(HealerBackend *self, HealerDevice *device, const char *why)
{
	g_signal_emit(self, signals[SIGNAL_DEVICE_REMOVED], 0, device, why);
}

GStrv
healer_backend_get_ttys(HealerBackend *self, HealerDevice *device)
{
	HealerBackendClass *klass;
	GStrv ttys = NULL;

	g_return_val_if_fail(HEALER_IS_BACKEND(self), g_new0(char *, 1));
	klass = HEALER_BACKEND_GET_CLASS(self);
	if (klass->get_ttys != NULL)
		ttys = klass->get_ttys(self, device);
	return ttys != NULL ? ttys : g_new0(char *, 1);
}

const char *
healer_backend_family_at(HealerBackend *self, const char *physical_id)
{
	HealerBackendClass *klass;

	g_return_val_if_fail(HEALER_IS_BACKEND(self), NULL);
	klass = HEALER_BACKEND_GET_CLASS(self);
	return klass->family_at != NULL && physical_id != NULL ? klass->family_at(self, physical_id) : NULL;
}

/* `peer` (the emitter) added a device: `user_data` hears of it. */
static void
on_peer_device_added(HealerBackend *peer, HealerDevice *device, gpointer user_data)
{
	HealerBackend *self = user_data;
	HealerBackendClass *klass = HEALER_BACKEND_GET_CLASS(self);

	if (klass->peer_device_added != NULL)
		klass->peer_device_added(self, peer, device);
}

void
healer_backend_add_peer(HealerBackend *self, HealerBackend *peer)
{
	g_return_if_fail(HEALER_IS_BACKEND(self));
	g_return_if_fail(HEALER_IS_BACKEND(peer));
	if (self == peer || g_ptr_array_find(PRIV(self)->peers, peer, NULL))
		return;
	g_ptr_array_add(PRIV(self)->peers, peer);
	g_ptr_array_add(PRIV(peer)->peers, self);
	/* After the engine's handlers (connected when it was given the backend): it knows the device first. */
	g_signal_connect_after(peer, "device-added", G_CALLBACK(on_peer_device_added), self);
	g_signal_connect_after(self, "device-added", G_CALLBACK(on_peer_device_added), peer);
}

const char *
healer_backend_peer_family_at(HealerBackend *self, const char *physical_id)
{
	GPtrArray *peers;

	g_return_val_if_fail(HEALER_IS_BACKEND(self), NULL);
	peers = PRIV(self)->peers;
	for (guint i = 0; i < peers->len; i++) {
		const char *family = healer_backend_family_at(g_ptr_array_index(peers, i), physical_id);
		if (family != NULL)
			return family;
	}
	return NULL;
}
