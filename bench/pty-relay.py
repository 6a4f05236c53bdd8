#!/usr/bin/env python3
"""Serial ports for healerd that a benchmark plugs devices into, timing the frames.

    pty-relay.py --ports DIR --count N [--sims DIR] --control FIFO

Makes N ptys, linked at DIR/dev1..devN, raw like a serial line, for healerd to
open.  Until device I is plugged, what healerd sends on port I is read and
dropped (a port with nothing behind it).  "plug I" on the control FIFO opens
the simulator's port SIMS/devI and from then on copies bytes both ways as they
come (no pacing of its own: the simulator paces the line), noting the time
each frame ends in each direction.  For each plugged device it prints, on
stdout, one line per milestone, the first of its kind after the plug:

    I EVENT SECONDS        (CLOCK_REALTIME; EVENT one of the names below)

    HELLO       device -> healerd, the HELLO the device sent at boot
    DESCRIBE    healerd -> device
    DESCRIBE_REPLY  device -> healerd (its last byte)
    BEGIN       healerd -> device
    UPDATE_READY    device -> healerd
    DATA        healerd -> device: the first DATA frame

"probes I" on the control FIFO prints "I PROBES COUNT": the frames healerd
sent on port I while nothing was plugged.  Runs until killed.
"""
import argparse
import errno
import os
import selectors
import signal
import sys
import termios
import time
import tty

NAMES = {0x01: "HELLO", 0x02: "DESCRIBE_REPLY", 0x05: "UPDATE_READY", 0x41: "DESCRIBE", 0x42: "BEGIN",
         0x43: "DATA"}


class Port:
    def __init__(self, index):
        self.index = index
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave, termios.TCSANOW)
        os.set_blocking(self.master, False)
        self.sim = None
        self.to_host = bytearray()  # bytes for healerd (written to master)
        self.to_sim = bytearray()
        self.partial = {"up": bytearray(), "down": bytearray()}  # frame bytes seen so far
        self.seen = set()
        self.probes = 0


def frame_type(encoded):
    """The first byte of a COBS-encoded frame, decoded (0 when it is a zero)."""
    if len(encoded) < 2:
        return None
    return 0 if encoded[0] == 1 else encoded[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--sims")
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out = sys.stdout
    sel = selectors.DefaultSelector()
    ports = {}
    for i in range(1, a.count + 1):
        p = Port(i)
        ports[i] = p
        link = os.path.join(a.ports, "dev%d" % i)
        tmp = link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(p.slave), tmp)
        os.rename(tmp, link)
        sel.register(p.master, selectors.EVENT_READ, ("host", p))
    control = os.open(a.control, os.O_RDWR | os.O_NONBLOCK)  # RDWR: never EOF when a writer closes
    sel.register(control, selectors.EVENT_READ, ("control", None))
    pending = b""

    def note(p, direction, data, now):
        """Frames ending in `data` (direction "up": device -> healerd)."""
        buf = p.partial[direction]
        start = 0
        while True:
            end = data.find(b"\0", start)
            chunk = data[start:end if end >= 0 else len(data)]
            if len(buf) < 8:
                buf += chunk[:8 - len(buf)]
            if end < 0:
                return
            head = bytes(buf)
            buf.clear()
            start = end + 1
            if not head:
                continue  # a lone delimiter
            t = frame_type(head)
            if p.sim is None:
                p.probes += 1
                continue
            name = NAMES.get(t)
            if name is not None and name not in p.seen:
                p.seen.add(name)
                out.write("%d %s %.6f\n" % (p.index, name, now))
                out.flush()

    def update(fd, p, which):
        events = selectors.EVENT_READ
        if (which == "host" and p.to_host) or (which == "sim" and p.to_sim):
            events |= selectors.EVENT_WRITE
        sel.modify(fd, events, (which, p))

    def flush(fd, buf):
        while buf:
            try:
                n = os.write(fd, buf)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:
                    buf.clear()
                    return
                raise
            del buf[:n]

    while True:
        for key, mask in sel.select():
            which, p = key.data
            fd = key.fd
            now = time.time()
            if which == "control":
                try:
                    pending += os.read(control, 4096)
                except BlockingIOError:
                    continue
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    words = line.decode().split()
                    if len(words) == 2 and words[0] == "plug":
                        q = ports[int(words[1])]
                        q.sim = os.open(os.path.join(a.sims, "dev%d" % q.index), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                        tty.setraw(q.sim, termios.TCSANOW)
                        sel.register(q.sim, selectors.EVENT_READ, ("sim", q))
                    elif len(words) == 2 and words[0] == "probes":
                        q = ports[int(words[1])]
                        out.write("%d PROBES %d\n" % (q.index, q.probes))
                        out.flush()
                continue
            if mask & selectors.EVENT_WRITE:
                flush(fd, p.to_host if which == "host" else p.to_sim)
            if mask & selectors.EVENT_READ:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    data = None
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if data == b"":
                    # The other side is gone for good (a simulator ended): stop watching it.
                    sel.unregister(fd)
                    if which == "sim":
                        p.sim = -1
                    continue
                if data:
                    if which == "host":
                        note(p, "down", data, now)
                        if p.sim is not None and p.sim >= 0:
                            p.to_sim += data
                            flush(p.sim, p.to_sim)
                            update(p.sim, p, "sim")
                    else:
                        p.to_host += data
                        flush(p.master, p.to_host)
                        note(p, "up", data, time.time())
                        update(p.master, p, "host")
            update(fd, p, which)


if __name__ == "__main__":
    main()
