#!/usr/bin/env python3
"""A stand-in for systemd's notify socket: logs each sd_notify datagram.

    notify-listen.py SOCKET_PATH LOG

Binds an AF_UNIX datagram socket at SOCKET_PATH and writes every message to
LOG as "SECONDS FIELD=VALUE ..." (CLOCK_REALTIME, newlines inside a message
shown as '|'), until killed.
"""
import os
import signal
import socket
import sys
import time


def main():
    path, log_path = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    with open(log_path, "w", buffering=1) as log:
        while True:
            data = s.recv(65536)
            log.write("%.6f %s\n" % (time.time(), data.decode(errors="replace").strip().replace("\n", "|")))


if __name__ == "__main__":
    main()
