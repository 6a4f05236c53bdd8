#include "usb-sysfs.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* A USB device's directory has idVendor; its interfaces' ("1-1.4:1.0") do not. */
#define USB_DEVICE_ATTRIBUTE "idVendor"

void
healer_usb_tty_parent_clear(HealerUsbTtyParent *parent)
{
	g_clear_pointer(&parent->physical_id, g_free);
}

static const char *
root_or_default(const char *sysfs_root)
{
	return sysfs_root != NULL ? sysfs_root : HEALER_SYSFS_ROOT;
}

/* realpath() into GLib's allocator; NULL when it does not resolve. */
static char *
resolve(const char *path)
{
	char *real = realpath(path, NULL);
	char *out;

	if (real == NULL)
		return NULL;
	out = g_strdup(real);
	free(real);
	return out;
}

/* A four-digit hex attribute (idVendor, idProduct); FALSE when missing or malformed. */
static gboolean
read_hex16(const char *dir, const char *name, guint16 *out)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *text = NULL;
	guint64 value;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return FALSE;
	g_strstrip(text);
	if (!g_ascii_string_to_unsigned(text, 16, 0, 0xffff, &value, NULL))
		return FALSE;
	*out = (guint16)value;
	return TRUE;
}

/* "1-1.4" -> "usb:1-1.4"; a root hub's "usb1" -> "usb:1" (usb-match.c's healer_usb_physical_id). */
static char *
physical_id_for_name(const char *name)
{
	if (g_str_has_prefix(name, "usb") && g_ascii_isdigit(name[3]))
		return g_strdup_printf("usb:%s", name + 3);
	return g_strdup_printf("usb:%s", name);
}

gboolean
healer_usb_sysfs_tty_parent(const char *sysfs_root, const char *tty_name, HealerUsbTtyParent *out)
{
	const char *root = root_or_default(sysfs_root);
	g_autofree char *link = NULL;
	g_autofree char *real_root = resolve(root);
	g_autofree char *dir = NULL;

	if (tty_name == NULL || *tty_name == '\0' || strchr(tty_name, '/') != NULL || real_root == NULL)
		return FALSE;
	link = g_build_filename(root, "class", "tty", tty_name, "device", NULL);
	dir = resolve(link);
	/* Up from the interface (or the usb-serial port below it) to the device, never out of sysfs. */
	while (dir != NULL && g_str_has_prefix(dir, real_root) && strlen(dir) > strlen(real_root)) {
		g_autofree char *attribute = g_build_filename(dir, USB_DEVICE_ATTRIBUTE, NULL);
		g_autofree char *name = g_path_get_basename(dir);
		char *up;

		if (strchr(name, ':') == NULL && g_file_test(attribute, G_FILE_TEST_IS_REGULAR)) {
			HealerUsbTtyParent parent = {0};
			if (!read_hex16(dir, "idVendor", &parent.vendor_id) ||
			    !read_hex16(dir, "idProduct", &parent.product_id))
				return FALSE;
			parent.physical_id = physical_id_for_name(name);
			*out = parent;
			return TRUE;
		}
		up = g_path_get_dirname(dir);
		g_free(dir);
		dir = up;
	}
	return FALSE;
}

/* Adds the names in `dir` that start with "tty" (not "tty" itself) to `names`. */
static void
add_ttys_in(GPtrArray *names, const char *dir)
{
	g_autoptr(GDir) entries = g_dir_open(dir, 0, NULL);
	const char *name;

	while (entries != NULL && (name = g_dir_read_name(entries)) != NULL) {
		if (g_str_has_prefix(name, "tty") && name[3] != '\0' &&
		    !g_ptr_array_find_with_equal_func(names, name, g_str_equal, NULL))
			g_ptr_array_add(names, g_strdup(name));
	}
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
healer_usb_sysfs_ttys(const char *sysfs_root, const char *physical_id)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *link = NULL, *device_dir = NULL, *prefix = NULL;
	g_autoptr(GDir) entries = NULL;
	const char *name;

	if (physical_id == NULL || !g_str_has_prefix(physical_id, "usb:") || strchr(physical_id, '/') != NULL ||
	    physical_id[4] == '\0')
		return names;
	link = g_build_filename(root_or_default(sysfs_root), "bus", "usb", "devices", physical_id + 4, NULL);
	device_dir = resolve(link);
	if (device_dir == NULL)
		return names;
	/* Its interfaces: "1-1.4:1.0", "1-1.4:1.1", ... */
	prefix = g_strdup_printf("%s:", physical_id + 4);
	entries = g_dir_open(device_dir, 0, NULL);
	while (entries != NULL && (name = g_dir_read_name(entries)) != NULL) {
		g_autofree char *interface = NULL, *tty_dir = NULL;

		if (!g_str_has_prefix(name, prefix))
			continue;
		interface = g_build_filename(device_dir, name, NULL);
		tty_dir = g_build_filename(interface, "tty", NULL);
		add_ttys_in(names, tty_dir);   /* CDC ACM: IFACE/tty/ttyACM0 */
		add_ttys_in(names, interface); /* usb-serial: IFACE/ttyUSB0 */
	}
	g_ptr_array_sort(names, compare_names);
	return names;
}

char *
healer_usb_sysfs_tty_name_for_port(const char *port)
{
	g_autofree char *real = NULL;
	struct stat st;

	/* A character device is named by its number, as udev names it (/sys/dev/char/MAJOR:MINOR -> .../tty/NAME):
	 * a node that is a link to another (a test bed's pty behind /dev/ttyACM0) keeps its own name. */
	if (stat(port, &st) == 0 && S_ISCHR(st.st_mode)) {
		g_autofree char *link =
		        g_strdup_printf(HEALER_SYSFS_ROOT "/dev/char/%u:%u", major(st.st_rdev), minor(st.st_rdev));
		g_autofree char *device = resolve(link);
		if (device != NULL)
			return g_path_get_basename(device);
	}
	real = resolve(port);
	return g_path_get_basename(real != NULL ? real : port);
}
