#include "dfu-device.h"

#include <json-c/json.h>
#include <string.h>

#include "describe.h"
#include "dfu-descriptor.h"
#include "dfu-download-plan.h"
#include "dfu-protocol.h"
#include "dfuse-layout.h"
#include "healer-error.h"
#include "healer-text.h"
#include "module-reader.h"
#include "particle-usb-ids.h"
#include "usb-claim.h"

/* A Gen 4 user part's header lies on a 4 KiB boundary below its fixed end (particle-usb-ids.h). */
#define FIXED_END_STEP 4096

typedef enum {
	READ_NONE,
	READ_SERIAL,  /* the serial number string */
	READ_LAYOUTS, /* alternate setting `alt`'s string */
	READ_IDLE,    /* to dfuIDLE before the first UPLOAD */
	READ_SLOTS,   /* the header at slot `slot` (`probe_address`) */
	READ_DONE,
	READ_FAILED,
} ReadState;

typedef enum {
	OP_NONE,
	OP_ERASE,
	OP_WRITE,
	OP_VERIFY,
	OP_REREAD, /* reading the headers again: the install is done when they are in */
	OP_LEAVE,
} OpState;

struct _HealerDfuDevice {
	HealerDevice parent_instance;
	HealerDfuClient *client; /* NULL once closed or gone */
	guint16 vendor_id;
	guint16 product_id;
	HealerUsbIdentity identity;
	HealerDfuFunctional functional;
	guint8 serial_index;
	GArray *alt_strings; /* guint8: iInterface of each alternate setting, in order */
	GPtrArray *layouts;  /* HealerDfuseLayout* (NULL: unreadable), one per alternate setting */
	GPtrArray *layout_texts;
	char *serial; /* as the device reports it */
	char *id;

	/* Reading what it holds. */
	ReadState read;
	guint alt;
	gsize slot;
	guint32 probe_address;
	guint scan_next;          /* FIXED_END: the 4 KiB steps of the slot not read yet (read top down) */
	gboolean partial;         /* after an install: only the slots the module may have changed are read */
	HealerDescribe *reading;  /* built while the slots are read */
	HealerDescribe *describe; /* the last complete read */
	char *describe_json;      /* the describe with "details": healer_dfu_device_to_json() */
	HealerDeviceState *state; /* built when first asked */
	GError *read_error;

	/* The install in flight. */
	OpState op;
	GBytes *module;
	guint32 address;
	HealerDfuPlan *plan;
	gsize next; /* the erase sector or block to send next */
	guint64 done;
	HealerDeviceInstallFunc op_func;
	gpointer op_user_data;
	guint32 last_address; /* where the last install started: the leave's address */
};

G_DEFINE_FINAL_TYPE(HealerDfuDevice, healer_dfu_device, HEALER_TYPE_DEVICE)

static void read_next(HealerDfuDevice *self);
static void start_reading(HealerDfuDevice *self);

static const HealerDfuseLayout *
flash_layout(HealerDfuDevice *self)
{
	/* Alternate setting 0 is the internal flash on every device served (particle-usb-ids.h slots: alt 0). */
	return self->layouts->len > 0 ? g_ptr_array_index(self->layouts, 0) : NULL;
}

/* ---- the device goes, or fails -------------------------------------------------------------------- */

static void
finish_op(HealerDfuDevice *self, GError *error)
{
	HealerDeviceInstallFunc func = self->op_func;
	gpointer user_data = self->op_user_data;

	self->op = OP_NONE;
	self->op_func = NULL;
	g_clear_pointer(&self->module, g_bytes_unref);
	g_clear_pointer(&self->plan, healer_dfu_plan_free);
	if (func != NULL)
		func(HEALER_DEVICE(self), error, user_data);
	if (error != NULL)
		g_error_free(error);
}

static void
disconnect(HealerDfuDevice *self)
{
	g_clear_pointer(&self->client, healer_dfu_client_close);
}

/* The client said the device is gone: the install in flight failed, then the device is detached. */
static void
gone(HealerDfuDevice *self, const GError *error)
{
	g_autoptr(HealerDfuDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	disconnect(self);
	if (self->op != OP_NONE)
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_IO, "device went away: %s", error->message));
	healer_device_emit_detached(HEALER_DEVICE(self));
}

static gboolean
is_gone(const GError *error)
{
	return g_error_matches(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND);
}

/* ---- reading what it holds ------------------------------------------------------------------------ */

static void
read_failed(HealerDfuDevice *self, const GError *error)
{
	g_autofree char *line = NULL;
	g_autofree char *escaped = NULL;

	self->read = READ_FAILED;
	g_clear_pointer(&self->reading, healer_describe_free);
	g_clear_error(&self->read_error);
	self->read_error = g_error_copy(error);
	escaped = healer_text_escape(error->message, -1);
	line = g_strdup_printf("cannot read the device in DFU mode: %s", escaped);
	healer_device_emit_log(HEALER_DEVICE(self), line);
	if (self->op == OP_REREAD)
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "reading its modules again: %s",
		                            error->message));
}

/* The modules' validity, as Device OS would report it: only the dependencies can be judged from headers. */
static void
judge_modules(HealerDescribe *describe)
{
	for (guint i = 0; i < describe->modules->len; i++) {
		HealerDescribeModule *m = &g_array_index(describe->modules, HealerDescribeModule, i);
		g_autoptr(GArray) unmet = healer_describe_module_unmet_dependencies(describe, m);

		m->validity_checked = MODULE_VALIDATION_DEPENDENCIES;
		m->validity_passed = unmet->len == 0 ? MODULE_VALIDATION_DEPENDENCIES : 0;
	}
}

/* The describe, with the family's own details beside its "m" (what `healerctl device` shows). */
static char *
build_state_json(HealerDfuDevice *self)
{
	json_object *o = healer_describe_to_json(self->describe);
	char *text;

	json_object_object_add(o, "details", healer_dfu_device_to_json(self));
	text = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static void
read_complete(HealerDfuDevice *self)
{
	g_autoptr(HealerDfuDevice) hold G_GNUC_UNUSED = g_object_ref(self);

	judge_modules(self->reading);
	g_clear_pointer(&self->describe, healer_describe_free);
	self->describe = g_steal_pointer(&self->reading);
	g_clear_pointer(&self->state, healer_device_state_free);
	g_free(self->describe_json);
	self->describe_json = build_state_json(self);
	g_clear_error(&self->read_error);
	self->read = READ_DONE;
	if (self->op == OP_REREAD)
		finish_op(self, NULL);
	if (self->client != NULL)
		healer_device_emit_identified(HEALER_DEVICE(self));
}

/* A header read at a slot: a module of this platform, starting there. */
static HealerModule *
header_at(HealerDfuDevice *self, GBytes *data, guint32 address)
{
	gsize len = 0;
	const guint8 *bytes = g_bytes_get_data(data, &len);
	HealerModule *module = healer_module_parse_header(bytes, len, NULL);

	if (module != NULL &&
	    (module->start_address != address ||
	     (self->identity.platform != NULL && module->platform_id != self->identity.platform->id))) {
		healer_module_free(module);
		return NULL;
	}
	return module;
}

static void
add_module(HealerDfuDevice *self, const HealerParticleSlot *slot, const HealerModule *module)
{
	HealerDescribeModule m = {
	        .has_info = TRUE,
	        .function = module->function,
	        .index = module->index,
	        .version = module->version,
	        .store = MODULE_STORE_MAIN,
	        .max_size = slot->max_size,
	};

	/* Two slots for one module (ALTERNATIVE): the newer wins. */
	for (guint i = 0; i < self->reading->modules->len; i++) {
		HealerDescribeModule *old = &g_array_index(self->reading->modules, HealerDescribeModule, i);
		if (old->function == m.function && old->index == m.index) {
			if (old->version >= m.version)
				return;
			g_array_remove_index(self->reading->modules, i);
			break;
		}
	}
	m.dependencies = g_array_new(FALSE, TRUE, sizeof(HealerDescribeDependency));
	for (guint i = 0; i < module->dependencies->len; i++) {
		const HealerModuleDependency *d = &g_array_index(module->dependencies, HealerModuleDependency, i);
		HealerDescribeDependency dep = {.function = d->function, .index = d->index, .version = d->version};
		g_array_append_val(m.dependencies, dep);
	}
	g_array_append_val(self->reading->modules, m);
}

/* Whether a slot can be read here: a header to read, in a readable part of the flash. */
static gboolean
slot_readable(HealerDfuDevice *self, const HealerParticleSlot *slot)
{
	const HealerDfuseLayout *layout = flash_layout(self);

	if (slot->alt != 0 || (slot->flags & (HEALER_PARTICLE_SLOT_NO_HEADER | HEALER_PARTICLE_SLOT_ENCRYPTED)) != 0)
		return FALSE;
	return layout != NULL &&
	       healer_dfuse_layout_check_range(layout, slot->address, HEALER_PARTICLE_HEADER_READ_SIZE,
	                                       HEALER_DFUSE_READABLE, NULL);
}

/* Whether the slot (or one holding the same module) overlaps what the install in flight wrote. */
static gboolean
slot_touched(HealerDfuDevice *self, const HealerParticleSlot *slot)
{
	gsize n = 0;
	const HealerParticleSlot *slots = healer_particle_slots(self->identity.platform->id, &n);
	guint64 start = self->address;
	guint64 end = start + (self->module != NULL ? g_bytes_get_size(self->module) : 0);

	for (gsize i = 0; i < n; i++) {
		const HealerParticleSlot *other = &slots[i];
		if (other->function != slot->function || other->index != slot->index)
			continue;
		if (other->address < end && start < (guint64)other->address + other->max_size)
			return TRUE;
	}
	return FALSE;
}

static const HealerParticleSlot *
current_slot(HealerDfuDevice *self)
{
	gsize n = 0;
	const HealerParticleSlot *slots =
	        self->identity.platform != NULL ? healer_particle_slots(self->identity.platform->id, &n) : NULL;

	return self->slot < n ? &slots[self->slot] : NULL;
}

/* The first address to read at a slot: its start, or for FIXED_END the top 4 KiB boundary. */
static guint32
slot_first_address(const HealerParticleSlot *slot)
{
	if (slot->flags & HEALER_PARTICLE_SLOT_FIXED_END)
		return slot->address + slot->max_size - FIXED_END_STEP;
	return slot->address;
}

static void on_header(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data);

/* Steps of a FIXED_END slot read per round: a small application is found in the first. */
#define SCAN_CHUNK 16

/*
 * A Gen 4 user part ends at its slot's end and starts at a 4 KiB step below it: the next steps
 * down, each read by one UPLOAD after one SET_ADDRESS_POINTER (a block number per step: the
 * device's wTransferSize is that step).
 */
static void
scan_fixed_end(HealerDfuDevice *self, const HealerParticleSlot *slot)
{
	guint16 blocks[SCAN_CHUNK];
	guint n = MIN(SCAN_CHUNK, self->scan_next);

	for (guint i = 0; i < n; i++)
		blocks[i] = (guint16)(HEALER_DFUSE_FIRST_DATA_BLOCK + self->scan_next - 1 - i);
	self->scan_next -= n;
	healer_dfu_client_read_blocks_async(self->client, slot->address, blocks, n, HEALER_PARTICLE_HEADER_READ_SIZE,
	                                    on_header, self);
}

static void
on_header(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;
	const HealerParticleSlot *slot = current_slot(self);
	g_autoptr(HealerModule) module = NULL;

	(void)client;
	if (error != NULL) {
		if (is_gone(error))
			gone(self, error);
		else
			read_failed(self, error);
		return;
	}
	if (slot->flags & HEALER_PARTICLE_SLOT_FIXED_END) {
		/* The steps just read, top down: the first with a module starting there is it. */
		gsize len = 0;
		const guint8 *bytes = g_bytes_get_data(data, &len);
		guint n = (guint)(len / HEALER_PARTICLE_HEADER_READ_SIZE);
		for (guint i = 0; i < n; i++) {
			guint32 at = slot->address + (self->scan_next + n - 1 - i) * FIXED_END_STEP;
			g_autoptr(GBytes) one = g_bytes_new_static(bytes + i * HEALER_PARTICLE_HEADER_READ_SIZE,
			                                           HEALER_PARTICLE_HEADER_READ_SIZE);
			module = header_at(self, one, at);
			if (module != NULL)
				break;
		}
		if (module == NULL && self->scan_next > 0) {
			scan_fixed_end(self, slot);
			return;
		}
	} else {
		module = header_at(self, data, self->probe_address);
	}
	if (module != NULL)
		add_module(self, slot, module);
	self->slot++;
	read_next(self);
}

static void
on_read_idle(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;

	(void)client;
	(void)data;
	if (error != NULL) {
		if (is_gone(error))
			gone(self, error);
		else
			read_failed(self, error);
		return;
	}
	self->read = READ_SLOTS;
	self->slot = 0;
	read_next(self);
}

static void
on_string(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;
	g_autofree char *text = NULL;

	(void)client;
	if (error != NULL) {
		if (is_gone(error))
			gone(self, error);
		else
			read_failed(self, error);
		return;
	}
	text = g_strndup(g_bytes_get_data(data, NULL), g_bytes_get_size(data));
	if (self->read == READ_SERIAL) {
		g_autofree char *id = healer_usb_id_from_serial(text);
		g_free(self->serial);
		self->serial = g_steal_pointer(&text);
		if (g_strcmp0(id, self->id) != 0) {
			g_free(self->id);
			self->id = g_steal_pointer(&id);
			healer_device_emit_identity_changed(HEALER_DEVICE(self));
			if (self->client == NULL)
				return; /* let go by a handler */
		}
		self->read = READ_LAYOUTS;
		self->alt = 0;
	} else {
		g_autoptr(GError) layout_error = NULL;
		HealerDfuseLayout *layout = healer_dfuse_layout_parse(text, -1, &layout_error);
		if (layout == NULL) {
			g_autofree char *escaped = healer_text_escape(layout_error->message, -1);
			g_autofree char *line = g_strdup_printf("alternate setting %u: %s", self->alt, escaped);
			healer_device_emit_log(HEALER_DEVICE(self), line);
		}
		g_ptr_array_add(self->layouts, layout);
		g_ptr_array_add(self->layout_texts, g_steal_pointer(&text));
		self->alt++;
	}
	read_next(self);
}

static void
read_next(HealerDfuDevice *self)
{
	const HealerParticleSlot *slot;

	if (self->client == NULL)
		return;
	switch (self->read) {
	case READ_SERIAL:
		if (self->serial_index == 0) {
			GError error = {HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
			                (char *)"the device has no serial number: it cannot be told from another"};
			read_failed(self, &error);
			return;
		}
		healer_dfu_client_read_string_async(self->client, self->serial_index, on_string, self);
		return;
	case READ_LAYOUTS:
		if (self->alt < self->alt_strings->len) {
			guint8 index = g_array_index(self->alt_strings, guint8, self->alt);
			if (index != 0) {
				healer_dfu_client_read_string_async(self->client, index, on_string, self);
				return;
			}
			g_ptr_array_add(self->layouts, NULL);
			g_ptr_array_add(self->layout_texts, g_strdup(""));
			self->alt++;
			read_next(self);
			return;
		}
		self->read = READ_IDLE;
		healer_dfu_client_reach_idle_async(self->client, on_read_idle, self);
		return;
	case READ_SLOTS:
		while ((slot = current_slot(self)) != NULL &&
		       (!slot_readable(self, slot) || (self->partial && !slot_touched(self, slot))))
			self->slot++;
		if (slot == NULL) {
			read_complete(self);
			return;
		}
		if ((slot->flags & HEALER_PARTICLE_SLOT_FIXED_END) &&
		    self->functional.transfer_size == FIXED_END_STEP) {
			self->scan_next = slot->max_size / FIXED_END_STEP;
			scan_fixed_end(self, slot);
			return;
		}
		self->probe_address = slot_first_address(slot);
		healer_dfu_client_read_async(self->client, self->probe_address, HEALER_PARTICLE_HEADER_READ_SIZE,
		                             on_header, self);
		return;
	default:
		return;
	}
}

/* Reads the module headers again (the layouts and the id stay). */
/* A copy of `m` (its dependencies too). */
static HealerDescribeModule
module_copy(const HealerDescribeModule *m)
{
	HealerDescribeModule copy = *m;

	copy.dependencies = g_array_copy(m->dependencies);
	return copy;
}

/*
 * Reads the module headers again (the layouts and the id stay).  After an install, only the slots
 * the module may have changed (those of its function and index, and any it overlaps): what the
 * others held is kept.
 */
static void
start_reading(HealerDfuDevice *self)
{
	g_clear_pointer(&self->reading, healer_describe_free);
	self->reading = healer_describe_new(self->identity.platform != NULL ? self->identity.platform->id : 0);
	self->partial = self->op == OP_REREAD && self->describe != NULL && self->identity.platform != NULL;
	for (guint i = 0; self->partial && i < self->describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(self->describe->modules, HealerDescribeModule, i);
		gsize n = 0;
		const HealerParticleSlot *slots = healer_particle_slots(self->identity.platform->id, &n);
		gboolean touched = FALSE;
		for (gsize j = 0; j < n && !touched; j++)
			touched = slots[j].function == m->function && slots[j].index == m->index &&
			          slot_touched(self, &slots[j]);
		if (!touched) {
			HealerDescribeModule copy = module_copy(m);
			g_array_append_val(self->reading->modules, copy);
		}
	}
	if (self->layouts->len < self->alt_strings->len || self->id == NULL) {
		self->read = self->id == NULL ? READ_SERIAL : READ_LAYOUTS;
		g_ptr_array_set_size(self->layouts, 0);
		g_ptr_array_set_size(self->layout_texts, 0);
		self->alt = 0;
	} else {
		self->read = READ_IDLE;
		healer_dfu_client_reach_idle_async(self->client, on_read_idle, self);
		return;
	}
	read_next(self);
}

/* ---- installing ------------------------------------------------------------------------------------ */

static void install_next(HealerDfuDevice *self);

static void
op_failed(HealerDfuDevice *self, const GError *error)
{
	if (is_gone(error)) {
		gone(self, error);
		return;
	}
	finish_op(self, g_error_copy(error));
}

static void
on_verified(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;
	gsize len = 0, got = 0;
	const guint8 *want = g_bytes_get_data(self->module, &len);
	const guint8 *have = data != NULL ? g_bytes_get_data(data, &got) : NULL;

	(void)client;
	if (error != NULL) {
		op_failed(self, error);
		return;
	}
	for (gsize i = 0; i < len; i++) {
		if (i >= got || have[i] != want[i]) {
			finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED,
			                            "verify by UPLOAD: the byte at 0x%08" G_GINT64_MODIFIER
			                            "x reads 0x%02x, 0x%02x was written",
			                            (gint64)self->address + (gint64)i, i < got ? have[i] : 0, want[i]));
			return;
		}
	}
	/* Written and read back: what the device holds now is read again, for the engine's check. */
	self->op = OP_REREAD;
	start_reading(self);
}

static void
on_op_step(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;

	(void)client;
	(void)data;
	if (error != NULL) {
		op_failed(self, error);
		return;
	}
	if (self->op == OP_WRITE) {
		HealerDfuBlock block;
		healer_dfu_plan_get_block(self->plan, self->next - 1, &block);
		self->done += block.length;
		healer_device_emit_progress(HEALER_DEVICE(self));
		if (self->client == NULL)
			return;
	}
	install_next(self);
}

static void
install_next(HealerDfuDevice *self)
{
	if (self->op == OP_ERASE && self->next < self->plan->erase->len) {
		const HealerDfuseSector *sector = &g_array_index(self->plan->erase, HealerDfuseSector, self->next++);
		healer_dfu_client_erase_async(self->client, sector->start, on_op_step, self);
		return;
	}
	if (self->op == OP_ERASE) {
		self->op = OP_WRITE;
		self->next = 0;
	}
	if (self->op == OP_WRITE && self->next < self->plan->n_blocks) {
		HealerDfuBlock block;
		g_autoptr(GBytes) bytes = NULL;
		healer_dfu_plan_get_block(self->plan, self->next++, &block);
		bytes = g_bytes_new_from_bytes(self->module, block.offset, block.length);
		healer_dfu_client_write_async(self->client, block.address, bytes, on_op_step, self);
		return;
	}
	/* Read back where the layout allows it (a write-only segment cannot be). */
	self->op = OP_VERIFY;
	if (healer_dfuse_layout_check_range(flash_layout(self), self->address, g_bytes_get_size(self->module),
	                                    HEALER_DFUSE_READABLE, NULL)) {
		healer_dfu_client_read_async(self->client, self->address, g_bytes_get_size(self->module), on_verified,
		                             self);
		return;
	}
	healer_device_emit_log(HEALER_DEVICE(self), "the module's segment is not readable: not verified by UPLOAD");
	self->op = OP_REREAD;
	start_reading(self);
}

/* Left DFU for a module only Device OS writes: the step runs again once the device is back in normal mode. */
static void
on_left_for_module(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;

	(void)client;
	(void)data;
	if (error != NULL) {
		op_failed(self, error);
		return;
	}
	finish_op(self, healer_device_mode_switch_new("leaving DFU mode to install it over control requests"));
	/* Manifesting: it resets on its own and re-enumerates; the backend sees it go (hotplug). */
	self->op = OP_LEAVE;
}

static void
dfu_install_async(HealerDevice *device, const HealerDeviceModule *module, HealerDeviceInstallFunc func,
                  gpointer user_data)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);
	gsize len = 0;
	const guint8 *bytes = g_bytes_get_data(module->bytes, &len);
	g_autoptr(HealerModule) header = NULL;
	g_autoptr(GError) error = NULL;
	const HealerDfuseLayout *layout = flash_layout(self);

	g_return_if_fail(self->op == OP_NONE);
	self->op_func = func;
	self->op_user_data = user_data;
	self->module = g_bytes_ref(module->bytes);
	self->done = 0;
	self->op = OP_ERASE;
	self->next = 0;
	if (self->client == NULL) {
		finish_op(self, g_error_new_literal(HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "the device is gone"));
		return;
	}
	header = healer_module_parse_header(bytes, len, &error);
	if (header == NULL) {
		finish_op(self, g_error_new(HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "the module's header: %s",
		                            error->message));
		return;
	}
	/*
	 * A Particle bootloader is read-only over DFU: Device OS writes it (control requests), so the
	 * device leaves DFU mode for normal mode, where the Particle family takes the same step.
	 */
	if (self->identity.mode == HEALER_USB_MODE_DFU && header->function == MODULE_FUNCTION_BOOTLOADER) {
		const HealerDfuseLayout *first = flash_layout(self);
		guint32 leave_at = self->last_address;
		if (leave_at == 0 && first != NULL && first->segments->len > 0)
			leave_at = g_array_index(first->segments, HealerDfuseSegment, 0).start;
		healer_device_emit_log(device, "a bootloader is written by Device OS, not DFU: leaving DFU mode");
		self->op = OP_LEAVE;
		healer_dfu_client_leave_async(self->client, leave_at, on_left_for_module, self);
		return;
	}
	if (self->identity.platform != NULL && header->platform_id != self->identity.platform->id) {
		finish_op(self,
		          g_error_new(HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		                      "the module is for platform %u, the device is a %s (%u)", header->platform_id,
		                      self->identity.platform->name, self->identity.platform->id));
		return;
	}
	if (layout == NULL) {
		finish_op(self, g_error_new_literal(HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		                                    "alternate setting 0 has no readable DfuSe memory layout"));
		return;
	}
	/* At the address its header gives, as particle-cli writes it; the layout refuses what is not writable. */
	self->address = header->start_address;
	self->plan = healer_dfuse_download_plan_new(layout, self->address, len, self->functional.transfer_size, &error);
	if (self->plan == NULL) {
		finish_op(self,
		          g_error_new(HEALER_ERROR, error->code, "cannot write %" G_GSIZE_FORMAT " bytes at 0x%08x: %s",
		                      len, self->address, error->message));
		return;
	}
	self->last_address = self->address;
	/* dfuIDLE first (CLRSTATUS, ABORT): from there every erase and block follows without a check. */
	healer_dfu_client_reach_idle_async(self->client, on_op_step, self);
}

/* ---- leaving DFU ------------------------------------------------------------------------------------ */

static void
on_left(HealerDfuClient *client, GBytes *data, const GError *error, gpointer user_data)
{
	HealerDfuDevice *self = user_data;

	(void)client;
	(void)data;
	/* Left: it stays "leaving" until libusb says it is gone (it resets on its own). */
	if (error != NULL)
		self->op = OP_NONE;
	if (error != NULL && is_gone(error)) {
		gone(self, error);
		return;
	}
	if (error != NULL) {
		g_autofree char *escaped = healer_text_escape(error->message, -1);
		g_autofree char *line = g_strdup_printf("cannot leave DFU mode: %s", escaped);
		healer_device_emit_log(HEALER_DEVICE(self), line);
		return;
	}
	/* Manifesting: it resets on its own and re-enumerates; the backend sees it go (hotplug). */
	healer_device_emit_log(HEALER_DEVICE(self), "leaving DFU mode");
}

/*
 * Leaves DFU mode: the device manifests and resets, and comes back as another USB device (normal
 * mode for a Particle device, DFU again for the ST ROM).  Only when idle: an install is never cut.
 */
static void
dfu_reset(HealerDevice *device)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);
	const HealerDfuseLayout *layout = flash_layout(self);
	guint32 address = self->last_address;

	if (self->client == NULL || self->op != OP_NONE || healer_dfu_client_is_busy(self->client))
		return;
	if (address == 0 && layout != NULL && layout->segments->len > 0)
		address = g_array_index(layout->segments, HealerDfuseSegment, 0).start;
	self->op = OP_LEAVE;
	healer_dfu_client_leave_async(self->client, address, on_left, self);
}

static void
dfu_refresh(HealerDevice *device)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);

	if (self->client == NULL || self->op != OP_NONE || healer_dfu_client_is_busy(self->client))
		return;
	start_reading(self);
}

static void
dfu_close(HealerDevice *device)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);

	self->op_func = NULL;
	self->op = OP_NONE;
	disconnect(self);
}

/* ---- what it is ------------------------------------------------------------------------------------- */

static const char *
dfu_get_id(HealerDevice *device)
{
	return HEALER_DFU_DEVICE(device)->id;
}

static guint16
dfu_get_platform_id(HealerDevice *device)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);

	return self->identity.platform != NULL ? self->identity.platform->id : 0;
}

static const HealerDeviceState *
dfu_get_state(HealerDevice *device)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);

	if (self->state == NULL && self->describe != NULL)
		self->state = healer_device_state_new_from_describe(self->describe);
	return self->state;
}

static const char *
dfu_get_state_json(HealerDevice *device)
{
	return HEALER_DFU_DEVICE(device)->describe_json;
}

static gboolean
dfu_lookup_module(HealerDevice *device, guint function, guint index, guint16 *version)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);
	const HealerDescribeModule *m =
	        self->describe != NULL ? healer_describe_find(self->describe, function, index) : NULL;

	if (m == NULL)
		return FALSE;
	*version = m->version;
	return TRUE;
}

/* The application the bootloader would start: the user part in the slot it prefers (the first listed). */
static const HealerDescribeModule *
find_app(HealerDfuDevice *self)
{
	if (self->describe == NULL)
		return NULL;
	for (guint i = 0; i < self->describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(self->describe->modules, HealerDescribeModule, i);
		if (m->function == MODULE_FUNCTION_USER_PART)
			return m;
	}
	return NULL;
}

static void
dfu_get_health(HealerDevice *device, HealerDeviceHealth *health)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);
	const HealerDescribeModule *app = find_app(self);

	/* In its bootloader, nothing of the application runs: the engine plans from the headers alone. */
	health->running = FALSE;
	health->mode = self->identity.mode == HEALER_USB_MODE_ROM_DFU ? "rom-dfu" : "dfu";
	health->safe_mode_reason = "none";
	health->boot_mode = health->mode;
	health->boot_reason = "in its DFU bootloader";
	health->reset_reason = "unknown";
	health->led = "";
	health->has_app = app != NULL;
	health->app_valid = app != NULL && healer_describe_module_valid(app);
	/* Any module's, as the bootloader and system parts check them at boot: a system part whose
	 * dependency is unmet puts the device in safe mode as surely as the application's. */
	health->app_dependencies_failed = FALSE;
	for (guint i = 0; app != NULL && i < self->describe->modules->len; i++) {
		const HealerDescribeModule *m = &g_array_index(self->describe->modules, HealerDescribeModule, i);
		if (healer_describe_module_dependency_failed(m))
			health->app_dependencies_failed = TRUE;
	}
}

static gboolean
dfu_is_busy(HealerDevice *device)
{
	/* Leaving counts: the engine does not judge a device on its way out of DFU mode. */
	return HEALER_DFU_DEVICE(device)->op != OP_NONE;
}

static void
dfu_get_progress(HealerDevice *device, guint64 *done, guint64 *total)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(device);

	*done = self->done;
	*total = self->module != NULL ? g_bytes_get_size(self->module) : 0;
}

static void
healer_dfu_device_dispose(GObject *object)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(object);

	self->op_func = NULL;
	disconnect(self);
	G_OBJECT_CLASS(healer_dfu_device_parent_class)->dispose(object);
}

static void
healer_dfu_device_finalize(GObject *object)
{
	HealerDfuDevice *self = HEALER_DFU_DEVICE(object);

	g_clear_pointer(&self->module, g_bytes_unref);
	g_clear_pointer(&self->plan, healer_dfu_plan_free);
	g_clear_pointer(&self->reading, healer_describe_free);
	g_clear_pointer(&self->describe, healer_describe_free);
	g_clear_pointer(&self->state, healer_device_state_free);
	g_clear_error(&self->read_error);
	g_free(self->describe_json);
	g_array_unref(self->alt_strings);
	g_ptr_array_unref(self->layouts);
	g_ptr_array_unref(self->layout_texts);
	g_free(self->serial);
	g_free(self->id);
	G_OBJECT_CLASS(healer_dfu_device_parent_class)->finalize(object);
}

static void
healer_dfu_device_class_init(HealerDfuDeviceClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	HealerDeviceClass *device_class = HEALER_DEVICE_CLASS(klass);

	object_class->dispose = healer_dfu_device_dispose;
	object_class->finalize = healer_dfu_device_finalize;
	device_class->get_id = dfu_get_id;
	device_class->get_platform_id = dfu_get_platform_id;
	device_class->get_state = dfu_get_state;
	device_class->get_state_json = dfu_get_state_json;
	device_class->lookup_module = dfu_lookup_module;
	device_class->get_health = dfu_get_health;
	device_class->install_async = dfu_install_async;
	device_class->is_busy = dfu_is_busy;
	device_class->get_progress = dfu_get_progress;
	device_class->reset = dfu_reset;
	device_class->refresh = dfu_refresh;
	device_class->close = dfu_close;
}

static void
healer_dfu_device_init(HealerDfuDevice *self)
{
	self->alt_strings = g_array_new(FALSE, FALSE, sizeof(guint8));
	self->layouts = g_ptr_array_new_with_free_func((GDestroyNotify)healer_dfuse_layout_free);
	self->layout_texts = g_ptr_array_new_with_free_func(g_free);
}

/*
 * The functional descriptor: after the interface's descriptors, which libusb gives with the
 * alternate setting it follows (a DfuSe device puts it after the last one), or after the
 * configuration's on some devices.
 */
static gboolean
find_functional(const HealerUsbCandidate *candidate, HealerDfuFunctional *out, GError **error)
{
	const struct libusb_config_descriptor *config = candidate->config;
	guint8 number = candidate->interface->bInterfaceNumber;

	for (guint i = 0; i < config->bNumInterfaces; i++) {
		const struct libusb_interface *iface = &config->interface[i];
		for (int a = 0; a < iface->num_altsetting; a++) {
			const struct libusb_interface_descriptor *alt = &iface->altsetting[a];
			if (alt->bInterfaceNumber == number && alt->extra_length > 0 &&
			    healer_dfu_functional_find(alt->extra, (gsize)alt->extra_length, out, error))
				return TRUE;
			if (alt->bInterfaceNumber == number && alt->extra_length > 0)
				return FALSE; /* there, but unreadable: the parser's error */
		}
	}
	if (config->extra_length > 0)
		return healer_dfu_functional_find(config->extra, (gsize)config->extra_length, out, error);
	g_set_error_literal(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND,
	                    "no DFU functional descriptor after the interface or the configuration");
	return FALSE;
}

HealerDevice *
healer_dfu_device_new_usb(const HealerUsbCandidate *candidate, GError **error)
{
	const struct libusb_device_descriptor *descriptor = candidate->descriptor;
	guint8 number = candidate->interface->bInterfaceNumber;
	HealerUsbIdentity identity;
	HealerDfuFunctional functional;
	libusb_device_handle *handle;
	HealerDfuDevice *self;
	guint flags;

	if (!healer_usb_identify(descriptor->idVendor, descriptor->idProduct, &identity) ||
	    identity.mode == HEALER_USB_MODE_NORMAL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA, "%04x:%04x is no DFU device healerd knows",
		            descriptor->idVendor, descriptor->idProduct);
		return NULL;
	}
	if (!find_functional(candidate, &functional, error)) {
		g_prefix_error(error, "interface %u: no usable DFU functional descriptor: ", number);
		return NULL;
	}
	if (!healer_dfu_functional_is_dfuse(&functional)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "interface %u speaks DFU %x.%02x, not DfuSe: healerd installs by address only", number,
		            functional.dfu_version >> 8, functional.dfu_version & 0xff);
		return NULL;
	}
	handle = healer_usb_open_claimed(candidate->device, candidate->physical_id, number, error);
	if (handle == NULL)
		return NULL;
	/*
	 * REENUMERATES_AFTER_RESET: leaving DFU resets it into another USB device (another product id,
	 * another device address).  ID_CHANGES_ACROSS_MODES for the ST ROM only: its serial number is
	 * the chip's, not the id the application reports, so at the physical id of a device that was
	 * reset it is that device.  A Particle bootloader's serial number is the Particle device id,
	 * the same id the device has in normal mode: no flag, and another id there is another device.
	 */
	flags = HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET | HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET;
	if (identity.mode == HEALER_USB_MODE_ROM_DFU)
		flags |= HEALER_DEVICE_FLAG_ID_CHANGES_ACROSS_MODES;
	self = g_object_new(HEALER_TYPE_DFU_DEVICE, "port", candidate->physical_id, "physical-id",
	                    candidate->physical_id, "family", "dfu", "transport-name", "usb", "flags", flags, NULL);
	self->vendor_id = descriptor->idVendor;
	self->product_id = descriptor->idProduct;
	self->identity = identity;
	self->functional = functional;
	self->serial_index = descriptor->iSerialNumber;
	for (guint i = 0; i < candidate->config->bNumInterfaces; i++) {
		const struct libusb_interface *iface = &candidate->config->interface[i];
		if (iface->num_altsetting == 0 || iface->altsetting[0].bInterfaceNumber != number)
			continue;
		for (int a = 0; a < iface->num_altsetting; a++)
			g_array_append_val(self->alt_strings, iface->altsetting[a].iInterface);
	}
	self->client =
	        healer_dfu_client_new(candidate->context, candidate->device, handle, number, functional.transfer_size);
	start_reading(self);
	return HEALER_DEVICE(self);
}

HealerDfuClient *
healer_dfu_device_get_client(HealerDfuDevice *self)
{
	return self->client;
}

gboolean
healer_dfu_device_is_ready(HealerDfuDevice *self)
{
	return self->describe != NULL;
}

const GError *
healer_dfu_device_get_error(HealerDfuDevice *self)
{
	return self->read_error;
}

json_object *
healer_dfu_device_to_json(HealerDfuDevice *self)
{
	json_object *o = json_object_new_object();
	json_object *alts = json_object_new_array();
	g_autofree char *ids = g_strdup_printf("%04x:%04x", self->vendor_id, self->product_id);
	g_autofree char *attributes = healer_dfu_attributes_to_string(self->functional.attributes);

	json_object_object_add(o, "usb_id", json_object_new_string(ids));
	json_object_object_add(o, "mode", json_object_new_string(healer_usb_mode_to_string(self->identity.mode)));
	json_object_object_add(
	        o, "platform",
	        json_object_new_string(self->identity.platform != NULL ? self->identity.platform->name : ""));
	json_object_object_add(o, "platform_id",
	                       json_object_new_int(self->identity.platform != NULL ? self->identity.platform->id : 0));
	json_object_object_add(o, "serial", json_object_new_string(self->serial != NULL ? self->serial : ""));
	json_object_object_add(o, "transfer_size", json_object_new_int(self->functional.transfer_size));
	json_object_object_add(o, "attributes", json_object_new_string(attributes));
	for (guint i = 0; i < self->layout_texts->len; i++)
		json_object_array_add(alts, json_object_new_string(g_ptr_array_index(self->layout_texts, i)));
	json_object_object_add(o, "alternate_settings", alts);
	return o;
}
