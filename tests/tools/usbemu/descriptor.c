/*
 * What a device says about itself in each mode: its USB descriptors and strings, and the sysfs
 * record (umockdev-record text) the testbed turns into /sys/devices/... for libusb and libudev.
 *
 * DFU mode: one configuration, interface 0 with an alternate setting per memory (class 0xFE,
 * subclass 1, protocol 2, the memory's DfuSe layout as iInterface) and the DFU functional
 * descriptor after the last one, as the ST and Particle bootloaders lay it out.  Normal mode
 * (Particle): CDC ACM and the vendor control interface.  Hubs: a hub interface and its
 * interrupt endpoint.
 */
#include <string.h>

#include "usbemu.h"

#define USB_DT_DEVICE         0x01
#define USB_DT_CONFIG         0x02
#define USB_DT_INTERFACE      0x04
#define USB_DT_ENDPOINT       0x05
#define USB_DT_IAD            0x0b
#define USB_DT_CS_INTERFACE   0x24
#define USB_DT_DFU_FUNCTIONAL 0x21

#define ROOT_HUB_VENDOR_ID  0x1d6b /* Linux Foundation */
#define ROOT_HUB_PRODUCT_ID 0x0002 /* 2.0 root hub */
#define HUB_VENDOR_ID       0x05e3 /* an ordinary 7-port USB 2.0 hub */
#define HUB_PRODUCT_ID      0x0608

static void
put_u16(GByteArray *out, uint16_t value)
{
	uint8_t bytes[2] = {value & 0xff, value >> 8};
	g_byte_array_append(out, bytes, 2);
}

static void
put_bytes(GByteArray *out, size_t n, const uint8_t *bytes)
{
	g_byte_array_append(out, bytes, (guint)n);
}

#define PUT(out, ...)                                                                                                  \
	do {                                                                                                           \
		const uint8_t bytes_[] = {__VA_ARGS__};                                                                \
		put_bytes((out), sizeof bytes_, bytes_);                                                               \
	} while (0)

static GBytes *
device_descriptor(const UsbemuIdentity *id, uint16_t vendor_id, bool has_strings)
{
	GByteArray *out = g_byte_array_new();

	PUT(out, 18, USB_DT_DEVICE);
	put_u16(out, 0x0200); /* bcdUSB */
	PUT(out, id->device_class, id->device_subclass, id->device_protocol, 64);
	put_u16(out, vendor_id);
	put_u16(out, id->product_id);
	put_u16(out, id->bcd_device);
	if (has_strings)
		PUT(out, 1, 2, 3, 1); /* iManufacturer, iProduct, iSerialNumber, bNumConfigurations */
	else
		PUT(out, 0, 0, 0, 1);
	return g_byte_array_free_to_bytes(out);
}

/* The configuration descriptor's header; wTotalLength is filled in by finish_configuration(). */
static GByteArray *
start_configuration(uint8_t n_interfaces, uint8_t configuration_string)
{
	GByteArray *out = g_byte_array_new();

	/* Self-powered, 100 mA: what the Particle and ST bootloaders say. */
	PUT(out, 9, USB_DT_CONFIG, 0, 0, n_interfaces, 1, configuration_string, 0xc0, 0x32);
	return out;
}

static GBytes *
finish_configuration(GByteArray *out)
{
	out->data[2] = out->len & 0xff;
	out->data[3] = out->len >> 8;
	return g_byte_array_free_to_bytes(out);
}

static void
build_dfu(UsbemuDevice *device, UsbemuIdentity *id)
{
	const UsbemuModel *model = device->model;
	GByteArray *config = start_configuration(1, model->configuration_string);

	id->product_id = model->dfu_product_id;
	id->bcd_device = model->bcd_device;
	id->product = model->dfu_product;
	if (model->configuration_name != NULL)
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(model->configuration_string),
		                    g_strdup(model->configuration_name));
	for (unsigned alt = 0; alt < device->n_memories; alt++) {
		uint8_t string = (uint8_t)(model->first_interface_string + alt);

		PUT(config, 9, USB_DT_INTERFACE, 0, (uint8_t)alt, 0, 0xfe, 0x01, 0x02, string);
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(string), g_strdup(device->memories[alt].layout));
	}
	PUT(config, 9, USB_DT_DFU_FUNCTIONAL, model->dfu_attributes);
	put_u16(config, 255); /* wDetachTimeOut, ms */
	put_u16(config, model->transfer_size);
	put_u16(config, 0x011a); /* bcdDFUVersion: DfuSe */
	if (model->device_state_string != NULL)
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(0xfa), g_strdup(model->device_state_string));
	id->configuration = finish_configuration(config);
	id->n_interfaces = 1;
	id->alternate_settings[0] = (uint8_t)device->n_memories;
}

static void
build_normal(UsbemuDevice *device, UsbemuIdentity *id)
{
	const UsbemuModel *model = device->model;
	GByteArray *config;

	id->product_id = model->normal_product_id;
	id->bcd_device = model->normal_bcd_device;
	id->product = model->normal_product;
	/* A composite device with interface association descriptors. */
	id->device_class = 0xef;
	id->device_subclass = 0x02;
	id->device_protocol = 0x01;
	if (model->normal_layout == USBEMU_NORMAL_CONTROL_ONLY) {
		config = start_configuration(1, 0);
		PUT(config, 9, USB_DT_INTERFACE, 0, 0, 0, 0xff, 0xff, 0xff, 4);
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(4),
		                    g_strdup_printf("%s Control Interface", model->normal_product));
		id->n_interfaces = 1;
	} else {
		config = start_configuration(3, 0);
		/* CDC ACM: the association, the communications interface and its class descriptors. */
		PUT(config, 8, USB_DT_IAD, 0, 2, 0x02, 0x02, 0x01, 0);
		PUT(config, 9, USB_DT_INTERFACE, 0, 0, 1, 0x02, 0x02, 0x01, 0);
		PUT(config, 5, USB_DT_CS_INTERFACE, 0x00, 0x10, 0x01); /* header, CDC 1.10 */
		PUT(config, 5, USB_DT_CS_INTERFACE, 0x01, 0x00, 0x01); /* call management */
		PUT(config, 4, USB_DT_CS_INTERFACE, 0x02, 0x02);       /* ACM: line coding */
		PUT(config, 5, USB_DT_CS_INTERFACE, 0x06, 0x00, 0x01); /* union: 0 controls 1 */
		PUT(config, 7, USB_DT_ENDPOINT, 0x82, 0x03, 8, 0, 0xff);
		/* The data interface and its bulk endpoints. */
		PUT(config, 9, USB_DT_INTERFACE, 1, 0, 2, 0x0a, 0x00, 0x00, 0);
		PUT(config, 7, USB_DT_ENDPOINT, 0x01, 0x02, 64, 0, 0);
		PUT(config, 7, USB_DT_ENDPOINT, 0x81, 0x02, 64, 0, 0);
		/* The vendor interface Particle's control requests go to (no endpoints). */
		PUT(config, 9, USB_DT_INTERFACE, 2, 0, 0, 0xff, 0xff, 0xff, 0);
		id->n_interfaces = 3;
	}
	id->configuration = finish_configuration(config);
	for (unsigned i = 0; i < id->n_interfaces; i++)
		id->alternate_settings[i] = 1;
}

static void
build_hub(UsbemuDevice *device, UsbemuIdentity *id)
{
	GByteArray *config = start_configuration(1, 0);
	bool root = device->devpath[0] == '0';

	id->product_id = root ? ROOT_HUB_PRODUCT_ID : HUB_PRODUCT_ID;
	id->bcd_device = root ? 0x0601 : 0x6077;
	id->device_class = 0x09;
	id->device_protocol = 0x01; /* single TT */
	config->data[7] = 0xe0;     /* self-powered, remote wakeup */
	config->data[8] = 0;
	PUT(config, 9, USB_DT_INTERFACE, 0, 0, 1, 0x09, 0x00, 0x00, 0);
	PUT(config, 7, USB_DT_ENDPOINT, 0x81, 0x03, root ? 4 : 1, 0, 0x0c);
	id->configuration = finish_configuration(config);
	id->n_interfaces = 1;
	id->alternate_settings[0] = 1;
}

static uint16_t
vendor_id_of(const UsbemuDevice *device)
{
	if (device->model != NULL)
		return device->model->vendor_id;
	return device->devpath[0] == '0' ? ROOT_HUB_VENDOR_ID : HUB_VENDOR_ID;
}

void
usbemu_identity_build(UsbemuDevice *device)
{
	UsbemuIdentity *id = &device->identity;

	usbemu_identity_clear(id);
	id->strings = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	switch (device->mode) {
	case USBEMU_MODE_DFU:
		build_dfu(device, id);
		break;
	case USBEMU_MODE_NORMAL:
		build_normal(device, id);
		break;
	case USBEMU_MODE_HUB:
		build_hub(device, id);
		break;
	}
	if (device->model != NULL) {
		id->manufacturer = device->model->manufacturer;
		id->serial = device->serial;
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(1), g_strdup(id->manufacturer));
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(2), g_strdup(id->product));
		g_hash_table_insert(id->strings, GUINT_TO_POINTER(3), g_strdup(id->serial));
	}
	id->device_descriptor = device_descriptor(id, vendor_id_of(device), device->model != NULL);
}

void
usbemu_identity_clear(UsbemuIdentity *identity)
{
	g_clear_pointer(&identity->device_descriptor, g_bytes_unref);
	g_clear_pointer(&identity->configuration, g_bytes_unref);
	g_clear_pointer(&identity->strings, g_hash_table_unref);
	memset(identity, 0, sizeof *identity);
}

static char *
hex_of(GBytes *first, GBytes *second)
{
	GString *hex = g_string_new(NULL);
	GBytes *parts[] = {first, second};

	for (unsigned i = 0; i < G_N_ELEMENTS(parts); i++) {
		gsize n;
		const uint8_t *bytes = g_bytes_get_data(parts[i], &n);
		for (gsize j = 0; j < n; j++)
			g_string_append_printf(hex, "%02X", bytes[j]);
	}
	return g_string_free(hex, FALSE);
}

char *
usbemu_sysfs_record(const UsbemuDevice *device, uint8_t devnum)
{
	const UsbemuIdentity *id = &device->identity;
	const uint8_t *config = g_bytes_get_data(id->configuration, NULL);
	unsigned minor = (device->busnum - 1u) * 128u + devnum - 1u;
	uint16_t vendor_id = vendor_id_of(device);
	g_autofree char *descriptors = hex_of(id->device_descriptor, id->configuration);
	GString *record = g_string_new(NULL);

	/* P: and E: lines are the device path and its uevent properties; A: lines sysfs attributes,
	 * whose values end in a newline as the kernel's do (written "\n"), H: a binary one. */
	g_string_append_printf(record,
	                       "P: %s\n"
	                       "E: SUBSYSTEM=usb\n"
	                       "E: DEVTYPE=usb_device\n"
	                       "E: DEVNAME=/dev/bus/usb/%03u/%03u\n"
	                       "E: PRODUCT=%x/%x/%x\n"
	                       "E: TYPE=%u/%u/%u\n"
	                       "E: BUSNUM=%03u\n"
	                       "E: DEVNUM=%03u\n"
	                       "E: MAJOR=189\n"
	                       "E: MINOR=%u\n",
	                       device->syspath + strlen("/sys"), device->busnum, devnum, vendor_id, id->product_id,
	                       id->bcd_device, id->device_class, id->device_subclass, id->device_protocol,
	                       device->busnum, devnum, minor);
	g_string_append_printf(record,
	                       "A: busnum=%u\\n\n"
	                       "A: devnum=%u\\n\n"
	                       "A: devpath=%s\\n\n"
	                       "A: idVendor=%04x\\n\n"
	                       "A: idProduct=%04x\\n\n"
	                       "A: bcdDevice=%04x\\n\n"
	                       "A: bDeviceClass=%02x\\n\n"
	                       "A: bDeviceSubClass=%02x\\n\n"
	                       "A: bDeviceProtocol=%02x\\n\n"
	                       "A: bMaxPacketSize0=64\\n\n"
	                       "A: bNumConfigurations=1\\n\n"
	                       "A: bConfigurationValue=1\\n\n"
	                       "A: bNumInterfaces=%2u\\n\n"
	                       "A: bmAttributes=%02x\\n\n"
	                       "A: speed=%s\\n\n"
	                       "A: version= 2.00\\n\n"
	                       "A: maxchild=%u\\n\n"
	                       "A: dev=189:%u\\n\n",
	                       device->busnum, devnum, device->devpath, vendor_id, id->product_id, id->bcd_device,
	                       id->device_class, id->device_subclass, id->device_protocol, config[4], config[7],
	                       device->mode == USBEMU_MODE_HUB ? "480" : "12",
	                       device->mode == USBEMU_MODE_HUB ? 7u : 0u, minor);
	if (id->manufacturer != NULL)
		g_string_append_printf(record, "A: manufacturer=%s\\n\n", id->manufacturer);
	if (id->product != NULL)
		g_string_append_printf(record, "A: product=%s\\n\n", id->product);
	if (id->serial != NULL && !device->no_sysfs_serial)
		g_string_append_printf(record, "A: serial=%s\\n\n", id->serial);
	g_string_append_printf(record, "H: descriptors=%s\n", descriptors);
	return g_string_free(record, FALSE);
}

/* One interface of the configuration, as sysfs shows it under the device. */
static char *
interface_record(const UsbemuDevice *device, unsigned number, uint8_t class, uint8_t subclass, uint8_t protocol,
                 unsigned n_endpoints)
{
	const UsbemuIdentity *id = &device->identity;

	return g_strdup_printf("P: %s/%s:1.%u\n"
	                       "E: SUBSYSTEM=usb\n"
	                       "E: DEVTYPE=usb_interface\n"
	                       "E: PRODUCT=%x/%x/%x\n"
	                       "E: TYPE=%u/%u/%u\n"
	                       "E: INTERFACE=%u/%u/%u\n"
	                       "A: bInterfaceNumber=%02x\\n\n"
	                       "A: bAlternateSetting= 0\\n\n"
	                       "A: bInterfaceClass=%02x\\n\n"
	                       "A: bInterfaceSubClass=%02x\\n\n"
	                       "A: bInterfaceProtocol=%02x\\n\n"
	                       "A: bNumEndpoints=%02x\\n\n",
	                       device->syspath + strlen("/sys"), device->port_path, number, device->model->vendor_id,
	                       id->product_id, id->bcd_device, id->device_class, id->device_subclass,
	                       id->device_protocol, class, subclass, protocol, number, class, subclass, protocol,
	                       n_endpoints);
}

GPtrArray *
usbemu_sysfs_child_records(const UsbemuDevice *device, bool make_node, char **tty_syspath, char **tty_devnode)
{
	GPtrArray *records = g_ptr_array_new_with_free_func(g_free);
	unsigned minor = device->index - 1;
	g_autofree char *node_line = NULL;

	*tty_syspath = NULL;
	*tty_devnode = NULL;
	if (device->mode != USBEMU_MODE_NORMAL)
		return records;
	if (device->model->normal_layout == USBEMU_NORMAL_CONTROL_ONLY) {
		g_ptr_array_add(records, interface_record(device, 0, 0xff, 0xff, 0xff, 0));
		return records;
	}
	g_ptr_array_add(records, interface_record(device, 0, 0x02, 0x02, 0x01, 1));
	g_ptr_array_add(records, interface_record(device, 1, 0x0a, 0x00, 0x00, 2));
	g_ptr_array_add(records, interface_record(device, 2, 0xff, 0xff, 0xff, 0));
	/* cdc_acm's tty under the communications interface; the testbed backs its node with a pty. */
	*tty_syspath = g_strdup_printf("%s/%s:1.0/tty/ttyACM%u", device->syspath, device->port_path, minor);
	*tty_devnode = g_strdup_printf("/dev/ttyACM%u", minor);
	node_line = g_strdup_printf("N: ttyACM%u\n", minor);
	g_ptr_array_add(records, g_strdup_printf("P: %s\n"
	                                         "%s"
	                                         "E: SUBSYSTEM=tty\n"
	                                         "E: DEVNAME=%s\n"
	                                         "E: MAJOR=166\n"
	                                         "E: MINOR=%u\n"
	                                         "A: dev=166:%u\\n\n",
	                                         *tty_syspath + strlen("/sys"), make_node ? node_line : "",
	                                         *tty_devnode, minor, minor));
	return records;
}
