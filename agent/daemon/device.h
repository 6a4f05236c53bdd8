/*
 * A device, whatever protocol it speaks: what the engine knows of every
 * family (the link protocol over a serial port today; DFU and Particle's
 * USB control requests next).  A family is a subclass filling in the class's
 * functions; a backend (backend.h) finds devices and makes them.  The engine
 * reads identity, state and health through this class and drives installs and
 * resets through it, and never learns which family a device belongs to.
 *
 * Identity: `id` is who the device says it is (stable across ports, resets and
 * healerd restarts; the engine's key); the physical id names where it is
 * plugged (the USB port path, or the tty when there is no such thing), which a
 * device that re-enumerates after a reset keeps while its port and product id
 * change (and, with ID_CHANGES_ACROSS_MODES, its id); `port` is what the
 * faces and records show.
 */
#pragma once

#include <glib-object.h>

#include "resolver.h"

G_BEGIN_DECLS

#define HEALER_TYPE_DEVICE (healer_device_get_type())
G_DECLARE_DERIVABLE_TYPE(HealerDevice, healer_device, HEALER, DEVICE, GObject)

typedef enum {
	HEALER_DEVICE_FLAG_NONE = 0,
	/* After a reset it comes back as another device node (another USB product id, another port). */
	HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET = 1 << 0,
	/* An interrupted install continues from the bytes the device already holds. */
	HEALER_DEVICE_FLAG_RESUMES_TRANSFER = 1 << 1,
	/*
	 * The id it reports, or its lack of one, belongs to the mode it is in, not to the hardware (a
	 * bootloader that identifies by a USB serial, or not at all): found at the physical id of a
	 * device the engine waits for after a reset, it is that device.  Without it, another id there
	 * is another device.
	 */
	HEALER_DEVICE_FLAG_ID_CHANGES_ACROSS_MODES = 1 << 2,
	/*
	 * An install writes the module where it is and the device stays as it is (a bootloader in DFU
	 * mode): it reports its new state at once, with no reset, and runs what it holds only after a
	 * reset, which the engine asks for once when a heal's last step is in.
	 */
	HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET = 1 << 3,
} HealerDeviceFlags;

/* How the device is doing, in words every face shows as they are.  Strings are the device's (transfer none). */
typedef struct {
	gboolean running;             /* its application runs */
	const char *mode;             /* what it runs, in the family's words ("normal", "safe", "dfu") */
	const char *safe_mode_reason; /* why it is in safe mode; "none" when it is not */
	/* What it ran and why it would not run its application, as it said when it last booted. */
	const char *boot_mode;
	const char *boot_reason;
	const char *reset_reason; /* why it last booted */
	const char *led;          /* what its status light shows, or "" */
	/* Its application: present, passed every check, and whether its dependencies failed theirs. */
	gboolean has_app;
	gboolean app_valid;
	gboolean app_dependencies_failed;
} HealerDeviceHealth;

/*
 * error NULL: the module is installed and the device came back and reported its state again.
 * HEALER_ERROR_PERMISSION_DENIED: the device refuses it in a way no retry changes (a protected
 * device, updates disabled by its application): the engine ends the heal at once, showing the message.
 */
typedef void (*HealerDeviceInstallFunc)(HealerDevice *device, const GError *error, gpointer user_data);

/*
 * An install's answer when the device wrote nothing but switches to another mode that takes the
 * module (a Particle device asked to reboot into its DFU bootloader, a DFU bootloader asked for a
 * module only its application writes): it resets and comes back as another device (it has
 * REENUMERATES_AFTER_RESET), and the engine runs the same step again there, once (a second switch
 * for one step fails the heal).  Not a failure: no attempt is spent on it.  In its own error domain,
 * not HEALER_ERROR: it never reaches a face.
 */
GQuark healer_device_mode_switch_quark(void);
G_GNUC_PRINTF(1, 2)
GError *healer_device_mode_switch_new(const char *format, ...);
gboolean healer_device_error_is_mode_switch(const GError *error);

/* One module to install: bytes, and what it is (the caller knows it from the store). */
typedef struct {
	GBytes *bytes;
	const guint8 *sha256; /* HEALER_SHA256_SIZE bytes, or NULL: computed */
	guint8 function;      /* enum module_function */
	guint8 index;
	guint16 version;
} HealerDeviceModule;

struct _HealerDeviceClass {
	GObjectClass parent_class;

	/* Identity.  NULL until the device said who it is (and, with ID_CHANGES_ACROSS_MODES, when it cannot say). */
	const char *(*get_id)(HealerDevice *self);
	/* The platform it said it is (0 until it said). */
	guint16 (*get_platform_id)(HealerDevice *self);

	/*
	 * State: NULL until it reported what it holds (transfer none, valid until the next report).
	 * A family may build it when first asked: whether there is one is get_state_json() != NULL.
	 */
	const HealerDeviceState *(*get_state)(HealerDevice *self);
	/* The report as the device sent it, for the faces (JSON, no control character): NULL exactly until it reported.
	 */
	const char *(*get_state_json)(HealerDevice *self);
	/* The version it runs at (function, index), as it reported it: FALSE when it has none there. */
	gboolean (*lookup_module)(HealerDevice *self, guint function, guint index, guint16 *version);

	/* Health: only meaningful once get_id() is set. */
	void (*get_health)(HealerDevice *self, HealerDeviceHealth *health);

	/*
	 * Installs one module and waits for the device to come back and report again; `func` runs
	 * once, from the main loop, before any signal the same event causes (the engine moves its job
	 * on before it judges the device again).  One at a time: is_busy() says whether one is under
	 * way, get_progress() how far (bytes the device acknowledged, of the module's).
	 */
	void (*install_async)(HealerDevice *self, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
	                      gpointer user_data);
	gboolean (*is_busy)(HealerDevice *self);
	void (*get_progress)(HealerDevice *self, guint64 *done, guint64 *total);

	/* Asks it to reset (it reports again when back) / to report its identity and state again. */
	void (*reset)(HealerDevice *self);
	void (*refresh)(HealerDevice *self);
	/* Lets go of it now: no signal follows, an install in flight is dropped without its callback. */
	void (*close)(HealerDevice *self);
};

/*
 * Signals (all on the main loop):
 *   "identified"       it reported who it is and what it holds (at attach and after every boot)
 *   "identity-changed" another id answers here now (the first time too): what the last one reported
 *                      is dropped and an install in flight has failed; a handler may close the device
 *   "changed"          its health changed (mode, LED)
 *   "log" (text)       it logged a line; the text is escaped (healer_text_escape()), safe to show
 *   "progress"         bytes of the module in flight were acknowledged
 *   "detached"         it is gone (unplugged, its line closed); no signal follows
 */

const char *healer_device_get_id(HealerDevice *self);
const char *healer_device_get_physical_id(HealerDevice *self);
const char *healer_device_get_port(HealerDevice *self);
/* The family ("link") and the transport the faces show ("serial"). */
const char *healer_device_get_family(HealerDevice *self);
const char *healer_device_get_transport_name(HealerDevice *self);
HealerDeviceFlags healer_device_get_flags(HealerDevice *self);
gboolean healer_device_has_flag(HealerDevice *self, HealerDeviceFlags flag);
/* The last line it logged (escaped), or NULL. */
const char *healer_device_get_last_log(HealerDevice *self);

guint16 healer_device_get_platform_id(HealerDevice *self);
const HealerDeviceState *healer_device_get_state(HealerDevice *self);
/* Whether it reported its state yet (without building it). */
gboolean healer_device_has_state(HealerDevice *self);
const char *healer_device_get_state_json(HealerDevice *self);
gboolean healer_device_lookup_module(HealerDevice *self, guint function, guint index, guint16 *version);
void healer_device_get_health(HealerDevice *self, HealerDeviceHealth *health);
void healer_device_install_async(HealerDevice *self, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                                 gpointer user_data);
gboolean healer_device_is_busy(HealerDevice *self);
void healer_device_get_progress(HealerDevice *self, guint64 *done, guint64 *total);
void healer_device_reset(HealerDevice *self);
void healer_device_refresh(HealerDevice *self);
void healer_device_close(HealerDevice *self);

/*
 * One handler for the signals of every device at once, for a part that serves many (the engine, a
 * backend): each function set in `funcs` runs at every emission of its signal by any HealerDevice,
 * before the handlers connected to that device, in the order the watches were made (an emission
 * hook); a part tells its own devices from others' by its own table.  A handler connected to each
 * device costs the device a closure and a handler entry, about 280 bytes a signal; a watch costs
 * the devices nothing.  `funcs` is copied; NULL members are not watched.
 */
typedef struct {
	void (*identified)(HealerDevice *device, gpointer user_data);
	void (*identity_changed)(HealerDevice *device, gpointer user_data);
	void (*changed)(HealerDevice *device, gpointer user_data);
	void (*log)(HealerDevice *device, const char *text, gpointer user_data);
	void (*progress)(HealerDevice *device, gpointer user_data);
	void (*detached)(HealerDevice *device, gpointer user_data);
} HealerDeviceWatchFuncs;

typedef struct _HealerDeviceWatch HealerDeviceWatch;

HealerDeviceWatch *healer_device_watch_new(const HealerDeviceWatchFuncs *funcs, gpointer user_data);
/* No function of it runs after this returns. */
void healer_device_watch_free(HealerDeviceWatch *watch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HealerDeviceWatch, healer_device_watch_free)

/* For families: emit the signals above. */
void healer_device_emit_identified(HealerDevice *self);
void healer_device_emit_identity_changed(HealerDevice *self);
void healer_device_emit_changed(HealerDevice *self);
void healer_device_emit_log(HealerDevice *self, const char *text);
void healer_device_emit_progress(HealerDevice *self);
void healer_device_emit_detached(HealerDevice *self);

G_END_DECLS
