#!/usr/bin/env python3
"""What a subscriber saw of one gateway's topics: counts, throughput, latency.

    mqtt-sub-stats.py SUB_OUT [--from SECONDS] [--to SECONDS] [--device-events]

SUB_OUT holds lines "ARRIVAL RETAINED TOPIC PAYLOAD" (bench-lib.sh's bench_sub_start: mosquitto_sub
-F '%U %r %t %p', ARRIVAL in CLOCK_REALTIME seconds).  Only messages arriving in [--from, --to]
count; messages the broker replayed from its retained store at a subscription are left out.
Prints one line of KEY=VALUE:

  events, unique, dups     messages on .../events, distinct seq among them, repeats
  first, last, span        arrival of the first and the last event (seconds), and between them
  rate                     events per second over the span
  lat_p50, lat_p95, lat_max, lat_n
                           arrival - the event's "time", in ms, over events that name a device
                           (--device-events) or over all; "time" has milliseconds (truncated), so
                           each latency reads 0 to 1 ms high
  devices, status          messages on .../devices/+ and .../status
  status_pending           "outbox_pending" of the last status that arrived
  succeeded, max_seq       heal-succeeded events; the highest seq
"""
import argparse
import datetime
import json


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sub_out")
    ap.add_argument("--from", dest="t_from", type=float, default=0.0)
    ap.add_argument("--to", dest="t_to", type=float, default=float("inf"))
    ap.add_argument("--device-events", action="store_true")
    a = ap.parse_args()
    seqs, arrivals, lat = [], [], []
    n_devices = n_status = succeeded = 0
    status_pending = -1
    with open(a.sub_out, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if len(parts) < 4:
                continue
            arrival, retained, topic, payload = float(parts[0]), parts[1], parts[2], parts[3]
            if arrival < a.t_from or arrival > a.t_to or retained == "1":
                continue
            if topic.endswith("/status"):
                n_status += 1
                try:
                    status_pending = json.loads(payload)["mqtt"]["outbox_pending"]
                except (ValueError, KeyError, TypeError):
                    pass
                continue
            if "/devices/" in topic:
                n_devices += 1
                continue
            if not topic.endswith("/events"):
                continue
            o = json.loads(payload)
            seqs.append(o["seq"])
            arrivals.append(arrival)
            if o["event"] == "heal-succeeded":
                succeeded += 1
            if a.device_events and o.get("device") is None:
                continue
            t = datetime.datetime.strptime(o["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
            lat.append((arrival - t) * 1000.0)
    first = min(arrivals) if arrivals else float("nan")
    last = max(arrivals) if arrivals else float("nan")
    span = last - first if arrivals else float("nan")
    out = {
        "events": len(seqs),
        "unique": len(set(seqs)),
        "dups": len(seqs) - len(set(seqs)),
        "first": "%.6f" % first,
        "last": "%.6f" % last,
        "span": "%.3f" % span,
        "rate": "%.0f" % (len(seqs) / span) if arrivals and span > 0 else "nan",
        "lat_p50": "%.1f" % percentile(lat, 50),
        "lat_p95": "%.1f" % percentile(lat, 95),
        "lat_max": "%.1f" % (max(lat) if lat else float("nan")),
        "lat_n": len(lat),
        "devices": n_devices,
        "status": n_status,
        "status_pending": status_pending,
        "succeeded": succeeded,
        "max_seq": max(seqs) if seqs else 0,
    }
    print(" ".join("%s=%s" % kv for kv in out.items()))


if __name__ == "__main__":
    main()
