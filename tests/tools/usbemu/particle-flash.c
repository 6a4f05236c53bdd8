/*
 * What a Particle device's flash holds, read as Device OS reads it: the module in each of the
 * platform's slots (libhealer's particle-usb-ids.h), found by its header (module-reader.h), and the
 * checks Device OS runs on it for GET_MODULE_INFO and before it takes an update:
 *
 * - integrity: the module's suffix checks out (CRC-32 and SHA-256 over its bytes);
 * - range: it starts and ends inside its slot;
 * - platform: its platform id is the device's;
 * - dependencies: each dependency is met by another module in flash that passes integrity, range
 *   and platform, with the same function and index and at least the version.
 *
 * A slot that keeps no header (the Gen 3 SoftDevice, DROP_MODULE_INFO) is read from the prefix
 * usbemu kept when it wrote the module (STATE-DIR/prefix-0xADDRESS.bin), as Device OS learns the
 * radio stack's version from the SoftDevice itself; it passes integrity when the slot is not erased.
 * The flash is the DFU model's internal flash (memories[0]).  Called with usbemu.lock held.
 */
#include <string.h>

#include "healer-error.h"
#include "module-reader.h"
#include "particle-usb-ids.h"
#include "particle.h"

#define ALL_CHECKS                                                                                                     \
	(HEALER_PARTICLE_CHECK_INTEGRITY | HEALER_PARTICLE_CHECK_DEPENDENCIES | HEALER_PARTICLE_CHECK_RANGE |          \
	 HEALER_PARTICLE_CHECK_PLATFORM)
#define FIXED_END_STEP 4096u

/* A module found in a slot. */
typedef struct {
	const HealerParticleSlot *slot;
	HealerModule *header; /* the prefix as read (header only) */
	uint32_t start;       /* where it is in flash */
	uint32_t size;        /* its length, CRC included */
	bool integrity, range, platform;
	uint8_t sha256[32];
	bool has_sha256;
} Found;

static void
found_free(gpointer data)
{
	Found *f = data;

	healer_module_free(f->header);
	g_free(f);
}

static UsbemuMemory *
flash_of(UsbemuDevice *device)
{
	return &device->memories[0];
}

static const uint8_t *
flash_at(UsbemuMemory *flash, uint32_t address, uint32_t length)
{
	if (address < flash->base || address - flash->base > flash->size ||
	    length > flash->size - (address - flash->base))
		return NULL;
	return flash->bytes + (address - flash->base);
}

static char *
prefix_path(const UsbemuDevice *device, uint32_t address)
{
	g_autofree char *name = g_strdup_printf("prefix-0x%08x.bin", address);

	return g_build_filename(device->state_dir, name, NULL);
}

static bool
erased(const uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (bytes[i] != 0xff)
			return false;
	}
	return true;
}

/* The header-less slot's module: the prefix usbemu kept, if the slot holds something. */
static Found *
read_dropped(UsbemuDevice *device, const HealerParticleSlot *slot)
{
	g_autofree char *path = prefix_path(device, slot->address);
	g_autofree char *prefix = NULL;
	const uint8_t *bytes = flash_at(flash_of(device), slot->address, 16);
	gsize n = 0;
	HealerModule *header;
	Found *f;

	if (bytes == NULL || erased(bytes, 16) || !g_file_get_contents(path, &prefix, &n, NULL))
		return NULL;
	header = healer_module_parse_header((const guint8 *)prefix, n, NULL);
	if (header == NULL)
		return NULL;
	f = g_new0(Found, 1);
	f->slot = slot;
	f->header = header;
	f->start = slot->address;
	f->size = (uint32_t)header->length;
	f->integrity = true;
	return f;
}

static Found *
read_at(UsbemuDevice *device, const HealerParticleSlot *slot, uint32_t address)
{
	UsbemuMemory *flash = flash_of(device);
	uint32_t available = flash->base + flash->size - address;
	const uint8_t *bytes = flash_at(flash, address, 1);
	HealerModule *header;
	Found *f;

	if (bytes == NULL)
		return NULL;
	header = healer_module_parse_header(bytes, MIN(available, HEALER_PARTICLE_HEADER_READ_SIZE), NULL);
	/* A module is where its header says it starts; anything else is bytes of another one. */
	if (header == NULL || header->start_address != address || header->function != slot->function) {
		healer_module_free(header);
		return NULL;
	}
	f = g_new0(Found, 1);
	f->slot = slot;
	f->header = header;
	f->start = address;
	f->size = (uint32_t)MIN(header->length, G_MAXUINT32);
	if (header->length <= available) {
		g_autoptr(GPtrArray) modules = healer_module_parse(bytes, header->length, NULL);
		if (modules != NULL && modules->len > 0) {
			HealerModule *whole = g_ptr_array_index(modules, 0);
			f->integrity = whole->crc_ok && whole->sha_ok;
		}
		g_autoptr(GChecksum) sha = g_checksum_new(G_CHECKSUM_SHA256);
		gsize len = sizeof f->sha256;
		g_checksum_update(sha, bytes, header->length);
		g_checksum_get_digest(sha, f->sha256, &len);
		f->has_sha256 = true;
	}
	return f;
}

/* Every module in the platform's slots, in slot order, each with its own checks done. */
static GPtrArray *
find_modules(UsbemuDevice *device)
{
	GPtrArray *found = g_ptr_array_new_with_free_func(found_free);
	gsize n_slots;
	const HealerParticleSlot *slots = healer_particle_slots(device->model->platform_id, &n_slots);

	for (gsize i = 0; i < n_slots; i++) {
		const HealerParticleSlot *slot = &slots[i];
		uint64_t slot_end = (uint64_t)slot->address + slot->max_size;
		Found *f = NULL;

		if (slot->flags & HEALER_PARTICLE_SLOT_ENCRYPTED)
			continue;
		if (slot->flags & HEALER_PARTICLE_SLOT_NO_HEADER)
			f = read_dropped(device, slot);
		else if (slot->flags & HEALER_PARTICLE_SLOT_FIXED_END) {
			for (uint64_t a = slot->address; a < slot_end && f == NULL; a += FIXED_END_STEP)
				f = read_at(device, slot, (uint32_t)a);
		} else
			f = read_at(device, slot, slot->address);
		if (f == NULL)
			continue;
		f->range = f->start >= slot->address && (uint64_t)f->start + f->size <= slot_end;
		f->platform = f->header->platform_id == device->model->platform_id;
		g_ptr_array_add(found, f);
	}
	return found;
}

static bool
dependency_met(GPtrArray *found, const Found *self, const HealerModuleDependency *dep)
{
	for (guint i = 0; i < found->len; i++) {
		const Found *other = g_ptr_array_index(found, i);

		if (other != self && other->integrity && other->range && other->platform &&
		    other->header->function == dep->function && other->header->index == dep->index &&
		    other->header->version >= dep->version)
			return true;
	}
	return false;
}

static bool
dependencies_met(GPtrArray *found, const Found *f)
{
	for (guint d = 0; d < f->header->dependencies->len; d++) {
		const HealerModuleDependency *dep = &g_array_index(f->header->dependencies, HealerModuleDependency, d);
		if (dep->function != MODULE_FUNCTION_NONE && !dependency_met(found, f, dep))
			return false;
	}
	return true;
}

GPtrArray *
usbemu_flash_modules(UsbemuDevice *device)
{
	g_autoptr(GPtrArray) found = find_modules(device);
	GPtrArray *modules = g_ptr_array_new_with_free_func((GDestroyNotify)healer_particle_module_free);

	for (guint i = 0; i < found->len; i++) {
		const Found *f = g_ptr_array_index(found, i);
		HealerParticleModule *m =
		        healer_particle_module_new(f->header->function, f->header->index, f->header->version);

		m->size = f->size;
		m->max_size = f->slot->max_size;
		m->checked = ALL_CHECKS;
		m->passed = (f->integrity ? HEALER_PARTICLE_CHECK_INTEGRITY : 0) |
		            (dependencies_met(found, f) ? HEALER_PARTICLE_CHECK_DEPENDENCIES : 0) |
		            (f->range ? HEALER_PARTICLE_CHECK_RANGE : 0) |
		            (f->platform ? HEALER_PARTICLE_CHECK_PLATFORM : 0);
		m->has_hash = f->has_sha256;
		memcpy(m->hash, f->sha256, sizeof m->hash);
		for (guint d = 0; d < f->header->dependencies->len; d++) {
			const HealerModuleDependency *dep =
			        &g_array_index(f->header->dependencies, HealerModuleDependency, d);
			if (dep->function != MODULE_FUNCTION_NONE)
				healer_particle_module_add_dependency(m, dep->function, dep->index, dep->version);
		}
		g_ptr_array_add(modules, m);
	}
	return modules;
}

GBytes *
usbemu_flash_module_info(UsbemuDevice *device, HealerParticleModuleInfoFormat format)
{
	g_autoptr(GPtrArray) modules = usbemu_flash_modules(device);

	/* libhealer's codec: the emulator and the daemon read and write one format. */
	return healer_particle_module_info_encode(modules, format);
}

/*
 * Device OS' version string from system part 1's module version.  The mapping is a release
 * table on Particle's side (2202 is 2.2.0, 6200 is 6.2.0); usbemu takes thousands, hundreds and
 * the rest: major.minor.0, which is right for the versions its tests use.
 */
char *
usbemu_flash_system_version(UsbemuDevice *device)
{
	g_autoptr(GPtrArray) found = find_modules(device);

	for (guint i = 0; i < found->len; i++) {
		const Found *f = g_ptr_array_index(found, i);

		if (f->header->function == MODULE_FUNCTION_SYSTEM_PART && f->header->index == 1) {
			guint v = f->header->version;
			if (v >= 1000)
				return g_strdup_printf("%u.%u.0", v / 1000, v / 100 % 10);
			return g_strdup_printf("0.%u.%u", v / 100, v % 100);
		}
	}
	return NULL;
}

/* The slot a module goes to: its function and index, and its start inside the slot. */
static const HealerParticleSlot *
slot_for(UsbemuDevice *device, const HealerModule *module)
{
	gsize n_slots;
	const HealerParticleSlot *slots = healer_particle_slots(device->model->platform_id, &n_slots);

	for (gsize i = 0; i < n_slots; i++) {
		const HealerParticleSlot *slot = &slots[i];
		if (slot->function == module->function && slot->index == module->index &&
		    module->start_address >= slot->address &&
		    (uint64_t)module->start_address + module->length <= (uint64_t)slot->address + slot->max_size)
			return &slots[i];
	}
	return NULL;
}

int32_t
usbemu_flash_validate(UsbemuDevice *device, GBytes *bytes, char **why)
{
	gsize len;
	const uint8_t *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) parsed = healer_module_parse(data, len, &error);
	g_autoptr(GPtrArray) found = NULL;
	HealerModule *module;
	Found candidate = {0};

	if (parsed == NULL || parsed->len != 1) {
		*why = g_strdup_printf("not one module: %s", error != NULL ? error->message : "several");
		return HEALER_PARTICLE_RESULT_OTA_INVALID_FORMAT;
	}
	module = g_ptr_array_index(parsed, 0);
	if (!module->crc_ok || !module->sha_ok || module->length != len) {
		*why = g_strdup("integrity: the module's CRC-32 or SHA-256 does not match");
		return HEALER_PARTICLE_RESULT_OTA_INTEGRITY_CHECK_FAILED;
	}
	if (module->platform_id != device->model->platform_id) {
		*why = g_strdup_printf("platform %u, the device is %u", module->platform_id,
		                       device->model->platform_id);
		return HEALER_PARTICLE_RESULT_OTA_INVALID_PLATFORM;
	}
	candidate.slot = slot_for(device, module);
	if (candidate.slot == NULL) {
		*why = g_strdup_printf("no slot holds a %s %u at 0x%08x..0x%08x",
		                       healer_module_function_to_string(module->function), module->index,
		                       module->start_address, module->end_address);
		return HEALER_PARTICLE_RESULT_OTA_INVALID_ADDRESS;
	}
	/* Its dependencies, against the modules that stay: the one it replaces goes. */
	found = find_modules(device);
	for (guint i = 0; i < found->len;) {
		const Found *f = g_ptr_array_index(found, i);
		if (f->header->function == module->function && f->header->index == module->index)
			g_ptr_array_remove_index(found, i);
		else
			i++;
	}
	candidate.header = module;
	if (!dependencies_met(found, &candidate)) {
		*why = g_strdup("dependencies: a module it needs is not in flash in the version it needs");
		return HEALER_PARTICLE_RESULT_OTA_DEPENDENCY_CHECK_FAILED;
	}
	*why = NULL;
	return HEALER_PARTICLE_RESULT_OK;
}

/* Programs `len` bytes at `address`, erasing the pages they cover first (the bootloader's copy). */
static bool
program(UsbemuMemory *flash, uint32_t address, const uint8_t *data, size_t len)
{
	uint8_t *target = (uint8_t *)flash_at(flash, address, (uint32_t)len);

	if (target == NULL)
		return false;
	for (size_t i = 0; i < len;) {
		const UsbemuSegment *segment = usbemu_memory_segment_at(flash, address + (uint32_t)i);
		uint32_t page = segment->start +
		                (address + (uint32_t)i - segment->start) / segment->page_size * segment->page_size;
		memset(flash->bytes + (page - flash->base), 0xff, segment->page_size);
		i = page + segment->page_size - address;
	}
	memcpy(target, data, len);
	return true;
}

/* Writes a module at its start address; a DROP_MODULE_INFO one without its prefix, kept aside. */
static bool
install(UsbemuDevice *device, const uint8_t *data, gsize len, const HealerModule *module, GError **error)
{
	UsbemuMemory *flash = flash_of(device);
	bool drop = (module->flags & MODULE_FLAG_DROP_MODULE_INFO) != 0 && module->prefix_offset == 0;

	if (drop) {
		g_autofree char *path = prefix_path(device, module->start_address);
		if (!g_file_set_contents(path, (const char *)data, MODULE_PREFIX_SIZE, error))
			return false;
		data += MODULE_PREFIX_SIZE;
		len -= MODULE_PREFIX_SIZE;
	}
	if (!program(flash, module->start_address, data, len)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_DATA,
		            "the module at 0x%08x..0x%08x is outside the device's %s (0x%08x, %u bytes)",
		            module->start_address, module->end_address, flash->name, flash->base, flash->size);
		return false;
	}
	usbemu_memory_sync(flash);
	usbemu_trace("%s particle flash %s %u version %u written at 0x%08x (%zu bytes)", device->label,
	             healer_module_function_to_string(module->function), module->index, module->version,
	             module->start_address, (size_t)len);
	return true;
}

void
usbemu_flash_install(UsbemuDevice *device, GBytes *bytes)
{
	gsize len;
	const uint8_t *data = g_bytes_get_data(bytes, &len);
	g_autoptr(GPtrArray) parsed = healer_module_parse(data, len, NULL);
	g_autoptr(GError) error = NULL;

	/* FINISH validated it: it parses. */
	if (parsed == NULL || !install(device, data, len, g_ptr_array_index(parsed, 0), &error))
		g_printerr("usbemu: %s: the bootloader cannot install the update: %s\n", device->label,
		           error != NULL ? error->message : "it does not parse");
}

bool
usbemu_flash_write_file(UsbemuDevice *device, const char *path, GError **error)
{
	g_autofree char *contents = NULL;
	gsize len;
	g_autoptr(GPtrArray) parsed = NULL;

	if (!g_file_get_contents(path, &contents, &len, error))
		return false;
	parsed = healer_module_parse((const guint8 *)contents, len, error);
	if (parsed == NULL) {
		g_prefix_error(error, "--modules %s: ", path);
		return false;
	}
	for (guint i = 0; i < parsed->len; i++) {
		const HealerModule *module = g_ptr_array_index(parsed, i);
		if (!install(device, (const guint8 *)contents + module->file_offset, module->length, module, error)) {
			g_prefix_error(error, "--modules %s: ", path);
			return false;
		}
	}
	return true;
}
