/*
 * healerctl probe usb:BUS-PORT[.PORT...] | usb:VID:PID
 *
 * The USB device(s) a selector names, found through libusb as healerd's USB
 * backend finds them (usb-context.h, usb-match.h): where each is plugged (its
 * physical id, the port `healerctl devices` shows), what it is (vendor and
 * product id, address, its strings when it may be opened), its interfaces and
 * the kernel driver holding each, and which of this build's families would
 * serve it.  Nothing is claimed: reading strings is a request to the device,
 * which works beside healerd.
 */
#include "probe-usb.h"

#include <stdio.h>
#include <string.h>

#include "dfu-device.h"
#include "healer-error.h"
#include "json-autoptr.h"
#include "module-names.h"
#include "printable.h"
#include "usb-claim.h"
#include "usb-context.h"
#include "usb-match.h"

/* A string descriptor, or NULL when the device has none or did not give it. */
static char *
read_string(libusb_device_handle *handle, guint8 index)
{
	unsigned char text[256];
	int n;

	if (handle == NULL || index == 0)
		return NULL;
	n = libusb_get_string_descriptor_ascii(handle, index, text, sizeof text);
	if (n <= 0)
		return NULL;
	/* Printed as it came: control characters made harmless. */
	for (int i = 0; i < n; i++) {
		if (text[i] < 0x20 || text[i] == 0x7f)
			text[i] = '?';
	}
	return g_strndup((const char *)text, (gsize)n);
}

static json_object *
string_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

/* How long the family may take to read a device (its modules' headers, by UPLOAD). */
#define FAMILY_READ_TIMEOUT_S 10

typedef struct {
	gboolean identified, gone, late;
	char *problem; /* what the family logged when it could not read the device */
} FamilyWait;

static void
on_family_identified(HealerDevice *device, gpointer user_data)
{
	(void)device;
	((FamilyWait *)user_data)->identified = TRUE;
}

static void
on_family_detached(HealerDevice *device, gpointer user_data)
{
	(void)device;
	((FamilyWait *)user_data)->gone = TRUE;
}

static void
on_family_log(HealerDevice *device, const char *text, gpointer user_data)
{
	FamilyWait *wait = user_data;

	(void)device;
	if (g_str_has_prefix(text, "cannot read")) {
		g_free(wait->problem);
		wait->problem = g_strdup(text);
	}
}

static gboolean
on_family_deadline(gpointer user_data)
{
	((FamilyWait *)user_data)->late = TRUE;
	return G_SOURCE_REMOVE;
}

/*
 * What the DFU family reads of the device (through its own code: the device it would serve,
 * made and read as healerd makes and reads it): printed, or added to `o`.  The interface is
 * claimed for the time it takes, so a device healerd serves is refused here (busy): its state is
 * in `healerctl device ID` then.
 */
static void
probe_dfu(const HealerUsbCandidate *candidate, gboolean json, json_object *o)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerDevice) device = candidate->match->new_device(candidate, &error);
	FamilyWait wait = {0};
	guint deadline;

	if (device == NULL) {
		if (json)
			json_object_object_add(o, "dfu_error", json_object_new_string(error->message));
		else
			printf("  DFU:          not read: %s\n", error->message);
		return;
	}
	g_signal_connect(device, "identified", G_CALLBACK(on_family_identified), &wait);
	g_signal_connect(device, "detached", G_CALLBACK(on_family_detached), &wait);
	g_signal_connect(device, "log", G_CALLBACK(on_family_log), &wait);
	deadline = g_timeout_add_seconds(FAMILY_READ_TIMEOUT_S, on_family_deadline, &wait);
	while (!wait.identified && !wait.gone && !wait.late && wait.problem == NULL)
		g_main_context_iteration(NULL, TRUE);
	if (!wait.late)
		g_source_remove(deadline);
	g_signal_handlers_disconnect_by_data(device, &wait);
	if (json) {
		json_object *dfu = healer_dfu_device_to_json(HEALER_DFU_DEVICE(device));
		const char *state = healer_device_get_state_json(device);
		json_object_object_add(dfu, "id", string_or_null(healer_device_get_id(device)));
		json_object_object_add(dfu, "describe", wait.identified && state ? json_tokener_parse(state) : NULL);
		if (!wait.identified)
			json_object_object_add(dfu, "error",
			                       json_object_new_string(wait.problem ? wait.problem
			                                              : wait.gone  ? "the device went away"
			                                                           : "no answer in time"));
		json_object_object_add(o, "dfu", dfu);
	} else {
		g_autoptr(json_object) dfu = healer_dfu_device_to_json(HEALER_DFU_DEVICE(device));
		json_object *alts = NULL;
		const HealerPlatform *platform = healer_platform_lookup(healer_device_get_platform_id(device));
		HealerDeviceHealth health;
		healer_device_get_health(device, &health);
		printf("  DFU:          %s, id %s, platform %s, wTransferSize %d, %s\n", health.mode,
		       healer_device_get_id(device) ? healer_device_get_id(device) : "-",
		       platform != NULL ? platform->name : "unknown (a ROM bootloader)",
		       json_object_get_int(json_object_object_get(dfu, "transfer_size")),
		       json_object_get_string(json_object_object_get(dfu, "attributes")));
		if (json_object_object_get_ex(dfu, "alternate_settings", &alts)) {
			for (size_t i = 0; i < json_object_array_length(alts); i++) {
				g_autofree char *text =
				        healerctl_printable(json_object_get_string(json_object_array_get_idx(alts, i)));
				printf("    alt %zu:      %s\n", i, text);
			}
		}
		if (wait.identified && healer_device_get_state_json(device) != NULL) {
			const char *state = healer_device_get_state_json(device);
			g_autoptr(HealerDescribe) describe = healer_describe_parse(state, strlen(state), NULL);
			printf("  Modules:%s\n",
			       describe == NULL || describe->modules->len == 0 ? "      none found" : "");
			if (describe != NULL)
				healerctl_print_modules(describe);
		} else {
			printf("  Modules:      not read: %s\n", wait.problem ? wait.problem
			                                         : wait.gone  ? "the device went away"
			                                                      : "no answer in time");
		}
	}
	g_free(wait.problem);
	healer_device_close(device);
}

static void
probe_one(HealerUsbContext *context, libusb_device *device, const struct libusb_device_descriptor *descriptor,
          gboolean json, json_object *array)
{
	g_autofree char *physical_id = healer_usb_physical_id(device);
	struct libusb_config_descriptor *config = NULL;
	const struct libusb_interface_descriptor *matched = NULL;
	const HealerUsbMatch *builtin;
	const HealerUsbMatch *match;
	g_autoptr(GPtrArray) rows = g_ptr_array_new();
	g_autoptr(GPtrArray) drivers = g_ptr_array_new_with_free_func(g_free);
	libusb_device_handle *handle = NULL;
	g_autofree char *manufacturer = NULL, *product = NULL, *serial = NULL;
	int open_error;
	guint n_builtin;
	json_object *o = json_object_new_object();
	json_object *interfaces = json_object_new_array();

	if (libusb_get_active_config_descriptor(device, &config) != 0)
		config = NULL;
	builtin = healer_usb_builtin_matches(&n_builtin);
	for (guint i = 0; i < n_builtin; i++)
		g_ptr_array_add(rows, (gpointer)&builtin[i]);
	match = healer_usb_match_find((const HealerUsbMatch *const *)rows->pdata, rows->len, descriptor, config,
	                              &matched);
	open_error = libusb_open(device, &handle);
	manufacturer = read_string(handle, descriptor->iManufacturer);
	product = read_string(handle, descriptor->iProduct);
	serial = read_string(handle, descriptor->iSerialNumber);
	if (handle != NULL)
		libusb_close(handle);

	json_object_object_add(o, "port", json_object_new_string(physical_id));
	json_object_object_add(o, "bus", json_object_new_int(libusb_get_bus_number(device)));
	json_object_object_add(o, "address", json_object_new_int(libusb_get_device_address(device)));
	json_object_object_add(o, "vendor_id", json_object_new_int(descriptor->idVendor));
	json_object_object_add(o, "product_id", json_object_new_int(descriptor->idProduct));
	json_object_object_add(o, "manufacturer", string_or_null(manufacturer));
	json_object_object_add(o, "product", string_or_null(product));
	json_object_object_add(o, "serial", string_or_null(serial));
	for (guint i = 0; config != NULL && i < config->bNumInterfaces; i++) {
		const struct libusb_interface_descriptor *alt = &config->interface[i].altsetting[0];
		json_object *in = json_object_new_object();
		g_ptr_array_add(drivers, healer_usb_interface_driver(device, alt->bInterfaceNumber));
		json_object_object_add(in, "number", json_object_new_int(alt->bInterfaceNumber));
		json_object_object_add(in, "class", json_object_new_int(alt->bInterfaceClass));
		json_object_object_add(in, "subclass", json_object_new_int(alt->bInterfaceSubClass));
		json_object_object_add(in, "protocol", json_object_new_int(alt->bInterfaceProtocol));
		json_object_object_add(in, "driver", string_or_null(g_ptr_array_index(drivers, i)));
		json_object_array_add(interfaces, in);
	}
	json_object_object_add(o, "interfaces", interfaces);
	json_object_object_add(o, "family", match != NULL ? json_object_new_string(match->family) : NULL);
	if (match != NULL && g_str_equal(match->family, "dfu") && json) {
		HealerUsbCandidate candidate = {.context = context,
		                                .device = device,
		                                .descriptor = descriptor,
		                                .config = config,
		                                .interface = matched,
		                                .physical_id = physical_id,
		                                .match = match};
		probe_dfu(&candidate, json, o);
	}

	if (json) {
		json_object_array_add(array, o);
	} else {
		printf("%s\n  USB device:   %04x:%04x (bus %u, address %u), class %02x\n", physical_id,
		       descriptor->idVendor, descriptor->idProduct, libusb_get_bus_number(device),
		       libusb_get_device_address(device), descriptor->bDeviceClass);
		if (open_error == 0)
			printf("  Strings:      %s / %s / serial %s\n", manufacturer ? manufacturer : "-",
			       product ? product : "-", serial ? serial : "-");
		else
			printf("  Strings:      not read (cannot open it: %s)\n", libusb_strerror(open_error));
		printf("  Interfaces:%s\n", config == NULL ? "   none (no active configuration)" : "");
		for (guint i = 0; config != NULL && i < config->bNumInterfaces; i++) {
			const struct libusb_interface_descriptor *alt = &config->interface[i].altsetting[0];
			const char *driver = g_ptr_array_index(drivers, i);
			printf("    %u: class %02x/%02x/%02x, %s%s\n", alt->bInterfaceNumber, alt->bInterfaceClass,
			       alt->bInterfaceSubClass, alt->bInterfaceProtocol,
			       driver != NULL ? "held by the kernel driver " : "no kernel driver",
			       driver != NULL ? driver : "");
		}
		if (match == NULL) {
			printf("  Family:       none in this build serves it: healerd leaves it alone\n\n");
		} else {
			printf("  Family:       %s (interface %u, class %02x/%02x/%02x): healerd serves it\n",
			       match->family, matched->bInterfaceNumber, matched->bInterfaceClass,
			       matched->bInterfaceSubClass, matched->bInterfaceProtocol);
			if (g_str_equal(match->family, "dfu")) {
				HealerUsbCandidate candidate = {.context = context,
				                                .device = device,
				                                .descriptor = descriptor,
				                                .config = config,
				                                .interface = matched,
				                                .physical_id = physical_id,
				                                .match = match};
				probe_dfu(&candidate, json, o);
			}
			printf("\n");
		}
		json_object_put(o);
	}
	libusb_free_config_descriptor(config);
}

int
healerctl_probe_usb(const char *text, gboolean json, json_object *array)
{
	HealerUsbSelector selector;
	g_autoptr(GError) error = NULL;
	g_autoptr(HealerUsbContext) context = NULL;
	libusb_device **list = NULL;
	ssize_t n;
	guint found = 0;

	if (!healer_usb_selector_parse(text, &selector, &error)) {
		fprintf(stderr, "healerctl probe: %s\n", error->message);
		return HEALER_EXIT_USAGE;
	}
	context = healer_usb_context_new(HEALER_USB_CONTEXT_FLAG_NONE, &error);
	if (context == NULL) {
		fprintf(stderr, "healerctl probe: %s: %s\n", text, error->message);
		return HEALER_EXIT_FAILED;
	}
	n = libusb_get_device_list(healer_usb_context_get_libusb(context), &list);
	if (n < 0) {
		fprintf(stderr, "healerctl probe: %s: cannot list USB devices: %s\n", text, libusb_strerror((int)n));
		return HEALER_EXIT_FAILED;
	}
	for (ssize_t i = 0; i < n; i++) {
		struct libusb_device_descriptor descriptor;
		libusb_get_device_descriptor(list[i], &descriptor);
		if (!healer_usb_selector_matches(&selector, list[i], &descriptor))
			continue;
		probe_one(context, list[i], &descriptor, json, array);
		found++;
	}
	libusb_free_device_list(list, 1);
	if (found == 0) {
		fprintf(stderr, "healerctl probe: no USB device is %s %s\n",
		        selector.kind == HEALER_USB_SELECTOR_PORT ? "plugged in at" : "known as", text);
		return HEALER_EXIT_FAILED;
	}
	return HEALER_EXIT_OK;
}
