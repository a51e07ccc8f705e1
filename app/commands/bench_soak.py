"""`handtrack bench soak`: the tracker running for a long time with everything attached, watched for drift.

The unpaced demo is tracked as fast as it goes. Each result is published on a ZeroMQ PUB socket, which a
subscriber in its own process reads, and recorded with the frame by the session writer. Every `--every`
seconds one sample is taken: the process's resident memory (RSS), the frames per second since the last sample,
and the recorder's and publisher's counts. A healthy run is flat: no growth in memory, no decline in rate.

The recording is rotated every `--rotate` seconds (the finished file is deleted), so an hour of 640x480 depth
at 150 frames/s does not fill the disk. The writer's state starts afresh with each file, the process does not.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SUBSCRIBER = """
import sys, zmq
ctx = zmq.Context(); sub = ctx.socket(zmq.SUB); sub.setsockopt(zmq.SUBSCRIBE, b""); sub.connect(sys.argv[1])
n = 0
while sub.poll(10000):  # the publisher has gone quiet for 10 s: the soak is over
    sub.recv(); n += 1
print(n)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=60.0, help="how long to run (default %(default)s)")
    p.add_argument("--every", type=float, default=30.0, help="seconds between samples (default %(default)s)")
    p.add_argument("--rotate", type=float, default=60.0, help="seconds per recording file (default %(default)s)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the series as JSON")
    p.add_argument("--png", type=Path, metavar="OUT", help="plot RSS and FPS over time")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run(args: argparse.Namespace) -> int:
    from handtrack.app.stream import build_message, encode, open_output
    from handtrack.inference.errors import HandtrackError
    from handtrack.inference.recording import SessionWriter
    from handtrack.inference.report import machine_info, write_json
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    if not args.minutes > 0 or not args.every > 0 or not args.rotate > 0:
        raise HandtrackError("--minutes, --every and --rotate must be positive")
    tracker = HandTracker(TrackerOptions())
    out = open_output("zmq://127.0.0.1:0")
    subscriber = subprocess.Popen([sys.executable, "-c", SUBSCRIBER, out.endpoint], stdout=subprocess.PIPE)
    folder = Path(tempfile.mkdtemp(prefix="handtrack-soak-"))
    samples, writer, files = [], None, 0
    start = last = time.monotonic()
    frames_at_last, recorded = 0, 0
    end = start + args.minutes * 60.0
    try:
        with open_source("demo", realtime=False) as source:
            time.sleep(0.5)  # let the subscriber connect: a PUB socket drops what nobody listens to
            opened = start
            for seq, frame in enumerate(source):
                result = tracker.process(frame)  # the frame itself goes to the recorder with its result
                now = time.monotonic()
                out.send(encode(build_message(result, seq), out.encoding))
                if writer is None or now - opened >= args.rotate:
                    if writer is not None:
                        writer.close()
                        recorded += writer.stats["frames"]
                        writer.path.unlink(missing_ok=True)
                    files += 1
                    writer = SessionWriter(folder / f"soak_{files:04d}.mcap", source.info, model="murauer")
                    opened = now
                writer.write(frame, result)
                if now - last >= args.every:
                    fps = (seq + 1 - frames_at_last) / (now - last)
                    samples.append({"minutes": round((now - start) / 60.0, 3), "rss_mb": round(rss_mb(), 1),
                                    "fps": round(fps, 1), "published": out.sent, "publish_dropped": out.dropped,
                                    "recorded": recorded + writer.stats["frames"],
                                    "record_dropped": writer.stats.get("dropped", 0)})
                    print(f"{samples[-1]['minutes']:7.2f} min  RSS {samples[-1]['rss_mb']:7.1f} MB  "
                          f"{fps:6.1f} frames/s  published {out.sent}  recorded {samples[-1]['recorded']}",
                          flush=True)
                    last, frames_at_last = now, seq + 1
                if now >= end:
                    break
    finally:
        if writer is not None:
            writer.close()
            writer.path.unlink(missing_ok=True)
        out.close()
        try:
            received = int(subscriber.communicate(timeout=30)[0] or 0)
        except (subprocess.TimeoutExpired, ValueError):
            subscriber.kill()
            received = -1
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()
    rss = np.array([s["rss_mb"] for s in samples])
    fps = np.array([s["fps"] for s in samples])
    half = len(samples) // 2
    result = {"target": "soak", "minutes": args.minutes, "samples": samples, "subscriber_received": received,
              "files": files, "rss_mb_first_last": [float(rss[0]), float(rss[-1])] if len(rss) else None,
              "fps_first_half_second_half": [float(fps[:half].mean()), float(fps[half:].mean())] if half else None,
              **machine_info()}
    if len(rss):
        print(f"soak {args.minutes:g} min: RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB (max {rss.max():.0f}), "
              f"{fps.mean():.0f} frames/s mean (min {fps.min():.0f}); the subscriber received {received} messages")
    if args.json:
        write_json(args.json, result)
    if args.png and samples:
        _plot(samples, args.png)
    return 0


def _plot(samples: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["minutes"] for s in samples]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.plot(t, [s["rss_mb"] for s in samples])
    a.set_xlabel("minutes")
    a.set_ylabel("RSS (MB)")
    a.set_ylim(bottom=0)
    b.plot(t, [s["fps"] for s in samples])
    b.set_xlabel("minutes")
    b.set_ylabel("frames/s")
    b.set_ylim(bottom=0)
    fig.suptitle("handtrack bench soak: unpaced demo, ZeroMQ subscriber and recorder attached")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
