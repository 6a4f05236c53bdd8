/*
 * fd-caller: calls healerd's ImportFd or FlashAppFd with a descriptor opened in a chosen way, as
 * a hostile or careless caller would (the security tests run it as a member of group healer).
 *
 *     fd-caller ImportFd MODE PATH [NAME]
 *     fd-caller FlashAppFd MODE PATH DEVICE_ID [NAME]
 *
 * MODE: rdonly, wronly or opath (how PATH is opened; O_NONBLOCK always, so a FIFO opens).
 * NAME (default PATH) is the name passed with the descriptor.  On the system bus
 * (DBUS_SYSTEM_BUS_ADDRESS).  Prints "ok" and ImportFd's answer, or "error: NAME: MESSAGE";
 * exits 0 when the call succeeded, 1 when healerd answered with an error, 2 on a usage error
 * or when PATH cannot be opened.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	g_autoptr(GDBusConnection) bus = NULL;
	g_autoptr(GUnixFDList) fds = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *object = NULL;
	const char *method, *mode, *path, *name;
	gboolean flash;
	int flags, fd;

	if (argc < 4) {
		fprintf(stderr, "usage: fd-caller ImportFd|FlashAppFd rdonly|wronly|opath PATH [DEVICE_ID] [NAME]\n");
		return 2;
	}
	method = argv[1];
	mode = argv[2];
	path = argv[3];
	flash = strcmp(method, "FlashAppFd") == 0;
	if (flash && argc < 5) {
		fprintf(stderr, "fd-caller: FlashAppFd needs a device id\n");
		return 2;
	}
	name = argc > (flash ? 5 : 4) ? argv[flash ? 5 : 4] : path;
	flags = strcmp(mode, "wronly") == 0 ? O_WRONLY : strcmp(mode, "opath") == 0 ? O_PATH : O_RDONLY;
	fd = open(path, flags | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fd-caller: %s: %s\n", path, g_strerror(errno));
		return 2;
	}
	fds = g_unix_fd_list_new_from_array(&fd, 1);
	bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
	if (bus == NULL) {
		fprintf(stderr, "fd-caller: %s\n", error->message);
		return 2;
	}
	object = flash ? g_strdup_printf("/io/healerd/Healer1/devices/%s", argv[4]) : g_strdup("/io/healerd/Healer1");
	reply = g_dbus_connection_call_with_unix_fd_list_sync(
	        bus, "io.healerd.Healer1", object, flash ? "io.healerd.Healer1.Device" : "io.healerd.Healer1", method,
	        g_variant_new("(hs)", 0, name), NULL, G_DBUS_CALL_FLAGS_NONE, 60000, fds, NULL, NULL, &error);
	if (reply == NULL) {
		g_autofree char *remote = g_dbus_error_get_remote_error(error);
		g_dbus_error_strip_remote_error(error);
		printf("error: %s: %s\n", remote ? remote : "?", error->message);
		return 1;
	}
	{
		g_autofree char *text = g_variant_print(reply, FALSE);
		printf("ok %s\n", text);
	}
	return 0;
}
