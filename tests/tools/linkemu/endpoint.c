/*
 * The ends of the line: an existing tty, a new pty exposed as a symlink
 * (a port appearing in healerd's ports directory), or a command (sb/rb)
 * with its stdin on a new pty, which is also its controlling terminal.
 * Every pty is raw (cfmakeraw): a serial line, not a terminal, so no echo,
 * no line editing, no CR/LF games.
 *
 * A command's stdout is a pipe, not the pty: on a pty, tcflush(TCIOFLUSH)
 * throws away what the process wrote and the master has not read yet, and
 * lrzsz's rb does exactly that as it exits, right after its last ACK (a
 * real UART's tcdrain would have sent it first).  Over a pty, sb lost that
 * ACK in about one run out of three and waited forever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "linkemu.h"

bool
linkemu_endpoint_parse(linkemu_endpoint_t *ep, const char *spec, char *err, size_t err_len)
{
	static const struct {
		const char *prefix;
		linkemu_kind_t kind;
	} kinds[] = {{"tty:", LINKEMU_TTY}, {"pty:", LINKEMU_PTY}, {"cmd:", LINKEMU_CMD}};

	memset(ep, 0, sizeof *ep);
	ep->fd = ep->read_fd = ep->slave_fd = -1;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		size_t n = strlen(kinds[i].prefix);
		if (strncmp(spec, kinds[i].prefix, n) == 0) {
			ep->kind = kinds[i].kind;
			ep->arg = spec + n;
			if (ep->arg[0] == '\0') {
				snprintf(err, err_len, "'%s': nothing after '%s'", spec, kinds[i].prefix);
				return false;
			}
			return true;
		}
	}
	snprintf(err, err_len, "'%s' is not tty:PATH, pty:PATH or cmd:COMMAND", spec);
	return false;
}

bool
linkemu_make_raw(int fd)
{
	struct termios tio;

	if (tcgetattr(fd, &tio) != 0)
		return false;
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	return tcsetattr(fd, TCSANOW, &tio) == 0;
}

static void
set_nonblocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A new raw pty: master in ep->fd, our hold on the device side in ep->slave_fd. */
static bool
new_pty(linkemu_endpoint_t *ep)
{
	const char *name;

	ep->fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ep->fd < 0 || grantpt(ep->fd) != 0 || unlockpt(ep->fd) != 0 || (name = ptsname(ep->fd)) == NULL) {
		fprintf(stderr, "linkemu: creating a pty: %s\n", strerror(errno));
		return false;
	}
	snprintf(ep->slave, sizeof ep->slave, "%s", name);
	ep->slave_fd = open(ep->slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ep->slave_fd < 0 || !linkemu_make_raw(ep->slave_fd)) {
		fprintf(stderr, "linkemu: %s: %s\n", ep->slave, strerror(errno));
		return false;
	}
	set_nonblocking(ep->fd);
	return true;
}

/* Replaces PATH atomically, so a watcher never sees a half-made link. */
static bool
link_pty(linkemu_endpoint_t *ep)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof tmp, "%s.linkemu-new", ep->arg);
	unlink(tmp);
	if (symlink(ep->slave, tmp) != 0 || rename(tmp, ep->arg) != 0) {
		fprintf(stderr, "linkemu: linking %s to %s: %s\n", ep->arg, ep->slave, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
}

static bool
spawn(linkemu_endpoint_t *ep)
{
	int out[2];

	if (pipe2(out, O_CLOEXEC) != 0) {
		fprintf(stderr, "linkemu: pipe: %s\n", strerror(errno));
		return false;
	}
	ep->pid = fork();
	if (ep->pid < 0) {
		fprintf(stderr, "linkemu: fork: %s\n", strerror(errno));
		return false;
	}
	if (ep->pid == 0) {
		sigset_t none;
		int fd;

		/* Its own session, with the pty as its terminal: an unplug hangs it up as a real one would. */
		setsid();
		fd = open(ep->slave, O_RDWR);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(out[1], 1) < 0) {
			fprintf(stderr, "linkemu: %s: %s\n", ep->slave, strerror(errno));
			_exit(127);
		}
		if (fd > 1)
			close(fd);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", ep->arg, (char *)NULL);
		fprintf(stderr, "linkemu: /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	/* Only the command holds the write end: its exit is the pipe's end of file. */
	close(out[1]);
	ep->read_fd = out[0];
	set_nonblocking(ep->read_fd);
	return true;
}

bool
linkemu_endpoint_open(linkemu_endpoint_t *ep)
{
	switch (ep->kind) {
	case LINKEMU_TTY:
		ep->fd = open(ep->arg, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (ep->fd < 0) {
			fprintf(stderr, "linkemu: %s: %s\n", ep->arg, strerror(errno));
			return false;
		}
		if (!linkemu_make_raw(ep->fd)) {
			fprintf(stderr, "linkemu: %s: not a tty: %s\n", ep->arg, strerror(errno));
			return false;
		}
		ep->read_fd = ep->fd;
		return true;
	case LINKEMU_PTY:
		if (!new_pty(ep) || !link_pty(ep))
			return false;
		ep->read_fd = ep->fd;
		return true;
	case LINKEMU_CMD:
		return new_pty(ep) && spawn(ep);
	}
	return false;
}

void
linkemu_endpoint_close(linkemu_endpoint_t *ep)
{
	if (ep->kind == LINKEMU_PTY && ep->fd >= 0) {
		char target[sizeof ep->slave];
		ssize_t n = readlink(ep->arg, target, sizeof target - 1);
		/* Someone may have put another port there since: leave theirs alone. */
		if (n > 0 && (target[n] = '\0', strcmp(target, ep->slave) == 0))
			unlink(ep->arg);
	}
	if (ep->read_fd >= 0 && ep->read_fd != ep->fd)
		close(ep->read_fd);
	if (ep->fd >= 0)
		close(ep->fd);
	if (ep->slave_fd >= 0)
		close(ep->slave_fd);
	ep->fd = ep->read_fd = ep->slave_fd = -1;
}
