#!/usr/bin/env python3
"""Writes an MQTT outbox holding a backlog, as healerd would have left it with the broker away.

    make-outbox.py DIR BYTES

DIR/outbox.log (the format of agent/daemon/mqtt-outbox-log.h, docs/mqtt-outbox.md) with heal-step
events of about 280 bytes, seq 1, 2, ..., until their payloads reach BYTES; no acked file
(nothing acknowledged).  DIR is made (mode 0700) when missing.  Prints the number of events.
"""
import datetime
import json
import os
import struct
import sys
import zlib


def main():
    out_dir, limit = sys.argv[1], int(sys.argv[2])
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)
    total = seq = 0
    with open(os.path.join(out_dir, "outbox.log"), "wb") as f:
        f.write(b"HOBX" + struct.pack("<I", 1))
        while True:
            device = "%024x" % (0xE00FCE68C2A7000000000000 + seq % 64)
            payload = json.dumps({
                "seq": seq + 1, "time": stamp, "event": "heal-step",
                "message_id": "7650209f1cc3415dbb88374f7f0f6ef6", "device": device,
                "port": "/dev/ttyUSB%d" % (seq % 64), "text": "plan step 2: system-part 2 v1100 (1.1.0)",
                "step": 2, "module": "system-part 2 v1100 (1.1.0)"}, separators=(",", ":")).encode()
            if total + len(payload) > limit:
                break
            seq += 1
            total += len(payload)
            head = struct.pack("<IQ", len(payload), seq)
            head += struct.pack("<I", zlib.crc32(head))
            body = head + payload
            f.write(body + struct.pack("<I", zlib.crc32(body)))
    print(seq)


if __name__ == "__main__":
    main()
