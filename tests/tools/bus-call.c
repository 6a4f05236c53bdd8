/*
 * bus-call: calls one of healerd's methods and prints the D-Bus error name it answers with, so a
 * test can run a call as another user (setpriv) and still assert the exact name.
 *
 *     bus-call [--fd PATH] OBJECT_PATH INTERFACE.METHOD [ARGS]
 *
 * ARGS is the call's parameters in GVariant text form ("()" when left out), e.g. "('/tmp/x',)";
 * with --fd, PATH is opened read-only and passed as handle 0 ("(@h 0, 'name')").  On the system
 * bus (DBUS_SYSTEM_BUS_ADDRESS), on a connection of its own.  Prints "ok REPLY", or
 * "error NAME" and then the message (stripped of the name) on the next line; exits 0 when the
 * call succeeded, 1 when it failed, 2 on a usage error or when PATH cannot be opened.
 */
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
	g_autoptr(GVariant) args = NULL, reply = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *interface = NULL;
	const char *object, *dot;

	if (argc >= 3 && strcmp(argv[1], "--fd") == 0) {
		int fd = open(argv[2], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "bus-call: %s: %s\n", argv[2], g_strerror(errno));
			return 2;
		}
		fds = g_unix_fd_list_new_from_array(&fd, 1);
		argv += 2;
		argc -= 2;
	}
	if (argc < 3 || argc > 4 || (dot = strrchr(argv[2], '.')) == NULL) {
		fprintf(stderr, "usage: bus-call [--fd PATH] OBJECT_PATH INTERFACE.METHOD [ARGS]\n");
		return 2;
	}
	object = argv[1];
	interface = g_strndup(argv[2], (gsize)(dot - argv[2]));
	args = g_variant_parse(NULL, argc == 4 ? argv[3] : "()", NULL, NULL, &error);
	if (args == NULL || !g_variant_is_of_type(args, G_VARIANT_TYPE_TUPLE)) {
		fprintf(stderr, "bus-call: ARGS is not a GVariant tuple: %s\n", error ? error->message : argv[3]);
		return 2;
	}
	if (g_getenv("DBUS_SYSTEM_BUS_ADDRESS") == NULL) {
		fprintf(stderr, "bus-call: DBUS_SYSTEM_BUS_ADDRESS is not set\n");
		return 2;
	}
	bus = g_dbus_connection_new_for_address_sync(g_getenv("DBUS_SYSTEM_BUS_ADDRESS"),
	                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
	                                                     G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
	                                             NULL, NULL, &error);
	if (bus == NULL) {
		fprintf(stderr, "bus-call: %s\n", error->message);
		return 2;
	}
	reply = g_dbus_connection_call_with_unix_fd_list_sync(bus, "io.healerd.Healer1", object, interface, dot + 1,
	                                                      args, NULL, G_DBUS_CALL_FLAGS_NONE, 60000, fds, NULL,
	                                                      NULL, &error);
	if (reply == NULL) {
		g_autofree char *remote = g_dbus_error_get_remote_error(error);
		g_dbus_error_strip_remote_error(error);
		printf("error %s\n%s\n", remote ? remote : "(not a D-Bus error)", error->message);
		return 1;
	}
	{
		g_autofree char *text = g_variant_print(reply, FALSE);
		printf("ok %s\n", text);
	}
	return 0;
}
