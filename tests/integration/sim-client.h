/*
 * Driving a simulated device from a test, through libhealer's link codec
 * and nothing else: start healer-sim, open its pty, send frames, wait for
 * the ones that answer, move a module across with a sliding window.
 * Synchronous and deadline-bound, as a test wants; the daemon does the
 * same asynchronously on its main loop.
 */
#pragma once

#include <gio/gio.h>

#include "describe.h"
#include "link-codec.h"

typedef struct {
	char *state_dir;
	GSubprocess *process;
	int fd;
	HealerLinkDecoder *decoder;
	GQueue frames;   /* HealerLinkFrame* received, not yet taken */
	GPtrArray *logs; /* char*: LOG texts seen */
	char **args;     /* the extra arguments, used again on a restart */
	char *link;      /* the pty's symlink: DIR/tty, or what --link named */
} SimDevice;

/* Starts healer-sim on state_dir (created on the first start); extra is NULL-terminated. */
SimDevice *sim_device_start(const char *state_dir, const char *const *extra);
/* kill -9: the device loses power wherever it is. */
void sim_device_kill(SimDevice *dev);
/* Starts the same device again (after a kill): power comes back. */
void sim_device_restart(SimDevice *dev);
/* Closes and reopens the host's side of the serial line: a cable pulled and plugged. */
void sim_device_reconnect(SimDevice *dev);
/* Lets go of the serial line (so another host, healerd, can have it). */
void sim_device_disconnect(SimDevice *dev);
/* The device id HELLO carried, as 24 hex digits. */
char *sim_hello_id(const HealerLinkHello *hello);
void sim_device_free(SimDevice *dev);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SimDevice, sim_device_free)

void sim_device_send(SimDevice *dev, GBytes *frame);
/* The next frame of `type` (earlier frames of other types are kept), or NULL after timeout_ms. */
HealerLinkFrame *sim_device_wait(SimDevice *dev, guint8 type, guint timeout_ms);
/* Waits for HELLO (a boot); fails the test after timeout_ms. */
void sim_device_wait_hello(SimDevice *dev, HealerLinkHello *hello, guint timeout_ms);
HealerDescribe *sim_device_describe(SimDevice *dev, char **json_out);
/* TRUE once a LOG containing `text` has arrived (waits up to timeout_ms). */
gboolean sim_device_wait_log(SimDevice *dev, const char *text, guint timeout_ms);
/*
 * A marker the device must answer: PING with a fresh nonce, then waits for
 * its PONG (fails the test after 10 s).  The device answers frames in order,
 * so on return every frame it sent before (a HELLO, a LOG) is in dev->frames
 * and dev->logs: "it said nothing of X" is then a fact, not a timed silence.
 */
void sim_device_sync(SimDevice *dev);
/* HELLO_REQUEST, then the next HELLO (fails the test after 10 s): the device's mode and last reset reason. */
void sim_device_request_hello(SimDevice *dev, HealerLinkHello *hello);

typedef struct {
	gint32 ready_status; /* UPDATE_READY status */
	guint32 held;        /* offset the device said it held */
	guint32 acked;       /* bytes acknowledged when the transfer stopped */
	guint64 bytes_sent;  /* DATA payload bytes sent */
	gboolean finished;   /* FINISH sent and UPDATE_RESULT received */
	gint32 result;       /* UPDATE_RESULT status */
} SimTransfer;

/*
 * Sends a module file: BEGIN, DATA with a window, FINISH.  Stops early,
 * without FINISH, once `stop_after` bytes are acknowledged (G_MAXUINT32:
 * never).  begin_override, when not NULL, replaces the BEGIN frame (to lie
 * about the module).
 */
void sim_device_transfer(SimDevice *dev, GBytes *module, guint32 stop_after, GBytes *begin_override,
                         SimTransfer *result);
GBytes *sim_begin_for(GBytes *module);
