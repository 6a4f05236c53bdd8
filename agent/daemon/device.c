#include "device.h"

#include <string.h>

typedef struct {
	char *physical_id;
	char *port;
	const char *family;         /* interned: a handful of names shared by every device */
	const char *transport_name; /* interned */
	HealerDeviceFlags flags;
	char *last_log;
} HealerDevicePrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE(HealerDevice, healer_device, G_TYPE_OBJECT)

enum {
	PROP_0,
	PROP_PHYSICAL_ID,
	PROP_PORT,
	PROP_FAMILY,
	PROP_TRANSPORT_NAME,
	PROP_FLAGS,
	N_PROPS,
};

enum {
	SIGNAL_IDENTIFIED,
	SIGNAL_IDENTITY_CHANGED,
	SIGNAL_CHANGED,
	SIGNAL_LOG,
	SIGNAL_PROGRESS,
	SIGNAL_DETACHED,
	N_SIGNALS,
};

static GParamSpec *props[N_PROPS];
static guint signals[N_SIGNALS];

#define PRIV(self) ((HealerDevicePrivate *)healer_device_get_instance_private(self))

static void
healer_device_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	HealerDevicePrivate *priv = PRIV(HEALER_DEVICE(object));

	switch (prop_id) {
	case PROP_PHYSICAL_ID:
		g_free(priv->physical_id);
		priv->physical_id = g_value_dup_string(value);
		break;
	case PROP_PORT:
		g_free(priv->port);
		priv->port = g_value_dup_string(value);
		break;
	case PROP_FAMILY:
		priv->family = g_intern_string(g_value_get_string(value));
		break;
	case PROP_TRANSPORT_NAME:
		priv->transport_name = g_intern_string(g_value_get_string(value));
		break;
	case PROP_FLAGS:
		priv->flags = g_value_get_uint(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
healer_device_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	HealerDevicePrivate *priv = PRIV(HEALER_DEVICE(object));

	switch (prop_id) {
	case PROP_PHYSICAL_ID:
		g_value_set_string(value, priv->physical_id);
		break;
	case PROP_PORT:
		g_value_set_string(value, priv->port);
		break;
	case PROP_FAMILY:
		g_value_set_string(value, priv->family);
		break;
	case PROP_TRANSPORT_NAME:
		g_value_set_string(value, priv->transport_name);
		break;
	case PROP_FLAGS:
		g_value_set_uint(value, priv->flags);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
healer_device_finalize(GObject *object)
{
	HealerDevicePrivate *priv = PRIV(HEALER_DEVICE(object));

	g_free(priv->physical_id);
	g_free(priv->port);
	g_free(priv->last_log);
	G_OBJECT_CLASS(healer_device_parent_class)->finalize(object);
}

static void
healer_device_class_init(HealerDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

	object_class->set_property = healer_device_set_property;
	object_class->get_property = healer_device_get_property;
	object_class->finalize = healer_device_finalize;
	props[PROP_PHYSICAL_ID] = g_param_spec_string("physical-id", NULL, NULL, NULL, flags);
	props[PROP_PORT] = g_param_spec_string("port", NULL, NULL, NULL, flags);
	props[PROP_FAMILY] = g_param_spec_string("family", NULL, NULL, NULL, flags);
	props[PROP_TRANSPORT_NAME] = g_param_spec_string("transport-name", NULL, NULL, NULL, flags);
	props[PROP_FLAGS] = g_param_spec_uint("flags", NULL, NULL, 0, G_MAXUINT, 0, flags);
	g_object_class_install_properties(object_class, N_PROPS, props);

	signals[SIGNAL_IDENTIFIED] = g_signal_new("identified", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
	                                          NULL, NULL, G_TYPE_NONE, 0);
	signals[SIGNAL_IDENTITY_CHANGED] = g_signal_new("identity-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
	                                                0, NULL, NULL, NULL, G_TYPE_NONE, 0);
	signals[SIGNAL_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                                       NULL, G_TYPE_NONE, 0);
	signals[SIGNAL_LOG] = g_signal_new("log", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
	                                   G_TYPE_NONE, 1, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE);
	signals[SIGNAL_PROGRESS] = g_signal_new("progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                                        NULL, G_TYPE_NONE, 0);
	signals[SIGNAL_DETACHED] = g_signal_new("detached", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
	                                        NULL, G_TYPE_NONE, 0);
}

static void
healer_device_init(HealerDevice *self)
{
	(void)self;
}

const char *
healer_device_get_physical_id(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return PRIV(self)->physical_id;
}

const char *
healer_device_get_port(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return PRIV(self)->port;
}

const char *
healer_device_get_family(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return PRIV(self)->family;
}

const char *
healer_device_get_transport_name(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return PRIV(self)->transport_name;
}

HealerDeviceFlags
healer_device_get_flags(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), HEALER_DEVICE_FLAG_NONE);
	return PRIV(self)->flags;
}

gboolean
healer_device_has_flag(HealerDevice *self, HealerDeviceFlags flag)
{
	return (healer_device_get_flags(self) & flag) == flag;
}

const char *
healer_device_get_last_log(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return PRIV(self)->last_log;
}

#define CLASS(self) HEALER_DEVICE_GET_CLASS(self)

const char *
healer_device_get_id(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return CLASS(self)->get_id(self);
}

guint16
healer_device_get_platform_id(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), 0);
	return CLASS(self)->get_platform_id(self);
}

const HealerDeviceState *
healer_device_get_state(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return CLASS(self)->get_state(self);
}

gboolean
healer_device_has_state(HealerDevice *self)
{
	return healer_device_get_state_json(self) != NULL;
}

const char *
healer_device_get_state_json(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), NULL);
	return CLASS(self)->get_state_json(self);
}

gboolean
healer_device_lookup_module(HealerDevice *self, guint function, guint index, guint16 *version)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), FALSE);
	return CLASS(self)->lookup_module(self, function, index, version);
}

void
healer_device_get_health(HealerDevice *self, HealerDeviceHealth *health)
{
	g_return_if_fail(HEALER_IS_DEVICE(self));
	memset(health, 0, sizeof *health);
	CLASS(self)->get_health(self, health);
}

void
healer_device_install_async(HealerDevice *self, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                            gpointer user_data)
{
	g_return_if_fail(HEALER_IS_DEVICE(self));
	CLASS(self)->install_async(self, module, func, user_data);
}

gboolean
healer_device_is_busy(HealerDevice *self)
{
	g_return_val_if_fail(HEALER_IS_DEVICE(self), FALSE);
	return CLASS(self)->is_busy(self);
}

void
healer_device_get_progress(HealerDevice *self, guint64 *done, guint64 *total)
{
	g_return_if_fail(HEALER_IS_DEVICE(self));
	*done = *total = 0;
	CLASS(self)->get_progress(self, done, total);
}

void
healer_device_reset(HealerDevice *self)
{
	g_return_if_fail(HEALER_IS_DEVICE(self));
	CLASS(self)->reset(self);
}

void
healer_device_refresh(HealerDevice *self)
{
	g_return_if_fail(HEALER_IS_DEVICE(self));
	CLASS(self)->refresh(self);
}

void
healer_device_close(HealerDevice *self)
{
	g_return_if_fail(HEALER_IS_DEVICE(self));
	CLASS(self)->close(self);
}

G_DEFINE_QUARK(healer - device - mode - switch - quark, healer_device_mode_switch)

GError *
healer_device_mode_switch_new(const char *format, ...)
{
	va_list args;
	g_autofree char *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	return g_error_new_literal(healer_device_mode_switch_quark(), 0, message);
}

gboolean
healer_device_error_is_mode_switch(const GError *error)
{
	return error != NULL && error->domain == healer_device_mode_switch_quark();
}

void
healer_device_emit_identified(HealerDevice *self)
{
	g_signal_emit(self, signals[SIGNAL_IDENTIFIED], 0);
}

void
healer_device_emit_identity_changed(HealerDevice *self)
{
	g_signal_emit(self, signals[SIGNAL_IDENTITY_CHANGED], 0);
}

void
healer_device_emit_changed(HealerDevice *self)
{
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

void
healer_device_emit_log(HealerDevice *self, const char *text)
{
	HealerDevicePrivate *priv = PRIV(self);

	if (priv->last_log != text) {
		g_free(priv->last_log);
		priv->last_log = g_strdup(text);
	}
	g_signal_emit(self, signals[SIGNAL_LOG], 0, priv->last_log);
}

void
healer_device_emit_progress(HealerDevice *self)
{
	g_signal_emit(self, signals[SIGNAL_PROGRESS], 0);
}

void
healer_device_emit_detached(HealerDevice *self)
{
	g_signal_emit(self, signals[SIGNAL_DETACHED], 0);
}

struct _HealerDeviceWatch {
	HealerDeviceWatchFuncs funcs;
	gpointer user_data;
	gulong hooks[N_SIGNALS]; /* 0: that signal is not watched */
	gpointer klass;          /* HealerDeviceClass, referenced: its signals exist while the hooks do */
};

static gboolean
on_emission(GSignalInvocationHint *hint, guint n_values, const GValue *values, gpointer data)
{
	HealerDeviceWatch *watch = data;
	HealerDevice *device = g_value_get_object(&values[0]);
	const HealerDeviceWatchFuncs *f = &watch->funcs;

	(void)n_values;
	if (hint->signal_id == signals[SIGNAL_IDENTIFIED])
		f->identified(device, watch->user_data);
	else if (hint->signal_id == signals[SIGNAL_IDENTITY_CHANGED])
		f->identity_changed(device, watch->user_data);
	else if (hint->signal_id == signals[SIGNAL_CHANGED])
		f->changed(device, watch->user_data);
	else if (hint->signal_id == signals[SIGNAL_LOG])
		f->log(device, g_value_get_string(&values[1]), watch->user_data);
	else if (hint->signal_id == signals[SIGNAL_PROGRESS])
		f->progress(device, watch->user_data);
	else if (hint->signal_id == signals[SIGNAL_DETACHED])
		f->detached(device, watch->user_data);
	return TRUE; /* stays until healer_device_watch_free() */
}

HealerDeviceWatch *
healer_device_watch_new(const HealerDeviceWatchFuncs *funcs, gpointer user_data)
{
	HealerDeviceWatch *watch = g_new0(HealerDeviceWatch, 1);
	const gboolean wanted[N_SIGNALS] = {
	        [SIGNAL_IDENTIFIED] = funcs->identified != NULL,
	        [SIGNAL_IDENTITY_CHANGED] = funcs->identity_changed != NULL,
	        [SIGNAL_CHANGED] = funcs->changed != NULL,
	        [SIGNAL_LOG] = funcs->log != NULL,
	        [SIGNAL_PROGRESS] = funcs->progress != NULL,
	        [SIGNAL_DETACHED] = funcs->detached != NULL,
	};

	watch->funcs = *funcs;
	watch->user_data = user_data;
	/* The signals are made when the class is: perhaps before any device is. */
	watch->klass = g_type_class_ref(HEALER_TYPE_DEVICE);
	for (guint i = 0; i < N_SIGNALS; i++) {
		if (wanted[i])
			watch->hooks[i] = g_signal_add_emission_hook(signals[i], 0, on_emission, watch, NULL);
	}
	return watch;
}

void
healer_device_watch_free(HealerDeviceWatch *watch)
{
	if (watch == NULL)
		return;
	for (guint i = 0; i < N_SIGNALS; i++) {
		if (watch->hooks[i] != 0)
			g_signal_remove_emission_hook(signals[i], watch->hooks[i]);
	}
	g_type_class_unref(watch->klass);
	g_free(watch);
}
