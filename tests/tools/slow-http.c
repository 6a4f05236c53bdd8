/*
 * slow-http: an HTTP server that answers every request, and then trickles
 * the body: the slow upstream of issue 13 (a server that keeps a transfer
 * alive without ever finishing it).
 *
 *     slow-http BYTES_PER_SECOND BODY_BYTES
 *
 * Listens on a free port of 127.0.0.1, prints that port and a newline on
 * stdout when ready.  Each connection gets its request read up to the blank
 * line, then at once "200 OK" with Content-Length: BODY_BYTES, then the body
 * one byte every 1/BYTES_PER_SECOND s, for as long as the client stays.
 * At 2 bytes/s it never drops below curl's stall check (1 byte/s).  Put
 * nginx in front (proxy_buffering off) for TLS.  Runs until killed.
 */
#include <gio/gio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static guint64 interval_us;
static guint64 body_bytes;

/* Each connection in its own thread (GThreadedSocketService): blocking calls are fine here. */
static gboolean
on_run(GThreadedSocketService *service, GSocketConnection *connection, GObject *source, gpointer user_data)
{
	GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(connection));
	GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(connection));
	g_autoptr(GString) head = g_string_new(NULL);
	g_autofree char *answer = NULL;

	(void)service;
	(void)source;
	(void)user_data;
	while (strstr(head->str, "\r\n\r\n") == NULL) {
		char c;
		if (g_input_stream_read(in, &c, 1, NULL, NULL) != 1 || head->len > 65536)
			return TRUE;
		g_string_append_c(head, c);
	}
	answer = g_strdup_printf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	                         "Content-Length: %" G_GUINT64_FORMAT "\r\nConnection: close\r\n\r\n",
	                         body_bytes);
	if (!g_output_stream_write_all(out, answer, strlen(answer), NULL, NULL, NULL))
		return TRUE;
	for (guint64 i = 0; i < body_bytes; i++) {
		if (!g_output_stream_write_all(out, " ", 1, NULL, NULL, NULL) ||
		    !g_output_stream_flush(out, NULL, NULL))
			return TRUE;
		g_usleep(interval_us);
	}
	return TRUE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSocketService) service = NULL;
	g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
	g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
	g_autoptr(GSocketAddress) bound = NULL;
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	guint64 rate = 0;

	if (argc != 3 || !g_ascii_string_to_unsigned(argv[1], 10, 1, 1000000, &rate, NULL) ||
	    !g_ascii_string_to_unsigned(argv[2], 10, 1, G_MAXUINT64, &body_bytes, NULL)) {
		fprintf(stderr, "usage: slow-http BYTES_PER_SECOND BODY_BYTES\n");
		return 2;
	}
	interval_us = G_USEC_PER_SEC / rate;
	signal(SIGPIPE, SIG_IGN); /* a client that goes away ends its thread's loop, not the server */
	/* Enough threads for every client a test makes (healerd's parallel downloads, curl, nginx). */
	service = g_threaded_socket_service_new(32);
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(service), address, G_SOCKET_TYPE_STREAM,
	                                   G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error)) {
		fprintf(stderr, "slow-http: %s\n", error->message);
		return 1;
	}
	g_signal_connect(service, "run", G_CALLBACK(on_run), NULL);
	g_socket_service_start(service);
	printf("%u\n", g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
	fflush(stdout);
	g_main_loop_run(loop);
	return 0;
}
