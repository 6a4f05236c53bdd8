/*
 * cut-proxy: a TCP relay that cuts connections, for tests of resumable
 * downloads.
 *
 *     cut-proxy TARGET_PORT CUT_CONNECTIONS CUT_AFTER_BYTES
 *
 * Listens on a free port of 127.0.0.1, prints that port and a newline on
 * stdout when ready, and relays each connection to 127.0.0.1:TARGET_PORT.
 * For the first CUT_CONNECTIONS connections, once CUT_AFTER_BYTES bytes went
 * from the server to the client, both sides are closed.  Later connections
 * are relayed whole.  Runs until killed.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 64

typedef struct {
	int client;
	int server;
	long long to_client; /* bytes relayed server -> client */
	long long limit;     /* cut after this many (-1: never) */
} Pair;

static Pair pairs[MAX_PAIRS];
static int n_pairs;

static void
die(const char *what)
{
	fprintf(stderr, "cut-proxy: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
close_pair(int i)
{
	close(pairs[i].client);
	close(pairs[i].server);
	pairs[i] = pairs[--n_pairs];
}

static int
connect_target(int port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Relays what `from` has; returns 0 to keep the pair, -1 to close it. */
static int
relay(Pair *p, int from_server)
{
	char buffer[16384];
	size_t want = sizeof buffer;
	ssize_t n;

	if (from_server && p->limit >= 0 && p->limit - p->to_client < (long long)want)
		want = (size_t)(p->limit - p->to_client);
	n = read(from_server ? p->server : p->client, buffer, want);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	if (write_all(from_server ? p->client : p->server, buffer, (size_t)n) != 0)
		return -1;
	if (from_server) {
		p->to_client += n;
		if (p->limit >= 0 && p->to_client >= p->limit) {
			fprintf(stderr, "cut-proxy: cut a connection after %lld bytes\n", p->to_client);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof addr;
	int target_port, listener, one = 1;
	long cut_connections;
	long long cut_after;
	long accepted = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: cut-proxy TARGET_PORT CUT_CONNECTIONS CUT_AFTER_BYTES\n");
		return 2;
	}
	target_port = atoi(argv[1]);
	cut_connections = atol(argv[2]);
	cut_after = atoll(argv[3]);
	signal(SIGPIPE, SIG_IGN);

	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0)
		die("socket");
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0)
		die("bind");
	if (getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
		die("getsockname");
	printf("%d\n", ntohs(addr.sin_port));
	fflush(stdout);

	for (;;) {
		struct pollfd fds[1 + 2 * MAX_PAIRS];
		int n = 0;

		fds[n++] = (struct pollfd){.fd = listener, .events = n_pairs < MAX_PAIRS ? POLLIN : 0};
		for (int i = 0; i < n_pairs; i++) {
			fds[n++] = (struct pollfd){.fd = pairs[i].client, .events = POLLIN};
			fds[n++] = (struct pollfd){.fd = pairs[i].server, .events = POLLIN};
		}
		if (poll(fds, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		/* pairs first (indexes shift when one closes: walk from the end) */
		for (int i = n_pairs - 1; i >= 0; i--) {
			short from_client = fds[1 + 2 * i].revents, from_server = fds[2 + 2 * i].revents;
			if ((from_server && relay(&pairs[i], 1) != 0) || (from_client && relay(&pairs[i], 0) != 0))
				close_pair(i);
		}
		if (fds[0].revents & POLLIN) {
			int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			int server;

			if (client < 0)
				continue;
			server = connect_target(target_port);
			if (server < 0) {
				close(client);
				continue;
			}
			pairs[n_pairs++] = (Pair){
			        .client = client,
			        .server = server,
			        .limit = accepted < cut_connections ? cut_after : -1,
			};
			accepted++;
		}
	}
}
