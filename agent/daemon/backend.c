#include "backend.h"

typedef struct {
	char *name;
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

static void
healer_backend_finalize(GObject *object)
{
	g_free(PRIV(HEALER_BACKEND(object))->name);
	G_OBJECT_CLASS(healer_backend_parent_class)->finalize(object);
}

static void
healer_backend_class_init(HealerBackendClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->set_property = healer_backend_set_property;
	object_class->get_property = healer_backend_get_property;
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
	(void)self;
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
