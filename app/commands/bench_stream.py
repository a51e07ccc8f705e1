"""`handtrack bench stream`: what streaming costs per frame, and how long a pose takes to reach a subscriber.

1. Overhead: the demo's frames are tracked first (untimed); then, per output kind, each result is turned into a
   message, encoded and sent (build / encode / send, median and p99, ms). ZeroMQ outputs have a subscriber in
   another process reading everything over loopback TCP, as in use; the file output writes a real temporary file.
2. Latency: the paced demo (a camera stand-in at 30 FPS) streams through the real loop (runner.Stream) to a ZeroMQ
   PUB socket; the subscriber process stamps each message on arrival. Frame arrival (the source's META_HOST_TIME,
   carried in the message) -> message built, and -> message received by the subscriber. CLOCK_MONOTONIC is one
   clock for every process on a Linux host, so the two processes' stamps compare directly.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
from handtrack.models_onnx import DEFAULT_MODEL

CALIBRATION = Path(__file__).resolve().parents[2] / "calibration" / "example_extrinsics.json"
TARGET_OVERHEAD_MS = 0.2
SUBSCRIBER_IDLE_S = 2.0  # the subscriber process ends after this long without a message


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", type=int, default=300, help="frames for the overhead part (unpaced demo)")
    p.add_argument("--latency-frames", type=int, default=150, help="frames for the latency part (paced demo)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--json", type=Path, help="write the results here")


def run(args: argparse.Namespace) -> int:
    import cv2

    from handtrack.inference.report import machine_info, write_json
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    cv2.setNumThreads(1)
    tracker = HandTracker(TrackerOptions(model=args.model))
    overhead = bench_overhead(tracker, args.frames)
    for name, r in overhead.items():
        total = r["total"]
        print(f"overhead {name:<18} build {r['build']['median_ms']:.4f} encode {r['encode']['median_ms']:.4f} "
              f"send {r['send']['median_ms']:.4f} | total {total['median_ms']:.4f} ms median, "
              f"{total['p99_ms']:.4f} p99 ({r['bytes']} bytes; target <= {TARGET_OVERHEAD_MS} ms: "
              f"{'met' if total['median_ms'] <= TARGET_OVERHEAD_MS else 'NOT met'})")
    latency = bench_latency(HandTracker(TrackerOptions(model=args.model)), args.latency_frames)
    for name in ("tracker", "arrival_to_built", "arrival_to_received"):
        s = latency[name]
        print(f"latency {name:<20} {s['median_ms']:.3f} ms median, {s['p99_ms']:.3f} p99")
    print(f"latency: {latency['received']} of {latency['published']} messages received")
    report = {"target": "stream", "overhead": overhead, "latency": latency,
              "target_overhead_ms": TARGET_OVERHEAD_MS, **machine_info()}
    if args.json:
        write_json(args.json, report)
    return 0


def _stats(values_ms) -> dict:
    v = np.asarray(values_ms, dtype=np.float64)
    return {"median_ms": round(float(np.median(v)), 5), "p99_ms": round(float(np.percentile(v, 99)), 5),
            "mean_ms": round(float(v.mean()), 5), "n": int(v.size)}


def bench_overhead(tracker, n: int) -> dict:
    from handtrack.app.stream import build_message, encode, open_output
    from handtrack.calibration.extrinsics import load_extrinsics
    from handtrack.inference.sources import open_source

    with open_source("demo", realtime=False, frames=n) as source:
        tracked = [tracker.process(frame) for frame in source]
    extrinsics = load_extrinsics(CALIBRATION)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {"zmq json": ("zmq://127.0.0.1:0", None), "zmq msgpack": ("zmq+msgpack://127.0.0.1:0", None),
                 "file json": (str(Path(tmp) / "bench.jsonl"), None),
                 "zmq json base frame": ("zmq://127.0.0.1:0", extrinsics)}
        for name, (spec, calibration) in cases.items():
            output = open_output(spec)
            subscriber = _Subscriber(output) if spec.startswith("zmq") else None
            times = {"build": [], "encode": [], "send": [], "total": []}
            size = 0
            for seq, result in enumerate(tracked):
                t0 = time.perf_counter()
                message = build_message(result, seq, extrinsics=calibration)
                t1 = time.perf_counter()
                payload = encode(message, output.encoding)
                t2 = time.perf_counter()
                output.send(payload)
                t3 = time.perf_counter()
                for key, value in (("build", t1 - t0), ("encode", t2 - t1), ("send", t3 - t2), ("total", t3 - t0)):
                    times[key].append(value * 1e3)
                size = max(size, len(payload))
            received = subscriber.finish() if subscriber else None
            output.close()
            results[name] = {k: _stats(v) for k, v in times.items()}
            results[name]["bytes"] = size
            if received is not None:
                results[name]["received"] = len(received)
    return results


def bench_latency(tracker, n: int) -> dict:
    from handtrack.app.stream import Stream, open_output
    from handtrack.inference.sources import open_source

    output = open_output("zmq://127.0.0.1:0")
    subscriber = _Subscriber(output)
    stream = Stream(tracker, [output], log=lambda line: None)
    with open_source("demo") as source:  # paced: frames arrive as from a camera, the tracker is never behind
        summary = stream.run(source, max_messages=n)
    received = subscriber.finish()
    output.close()
    tracker_ms = [r["latency_tracker_ms"] for r in received]
    built_ms = [r["end_to_end_ms"] for r in received]
    arrival_ms = [(r["received_s"] - r["host_s"]) * 1e3 for r in received]
    return {"published": summary.messages, "received": len(received), "tracker": _stats(tracker_ms),
            "arrival_to_built": _stats(built_ms), "arrival_to_received": _stats(arrival_ms)}


class _Subscriber:
    """A subscriber in another process, connected and subscribed to `output` before this returns (probe
    messages are sent until it has seen one: a PUB socket drops everything sent before a subscription arrives)."""

    def __init__(self, output):
        context = multiprocessing.get_context("spawn")  # a fresh process: no copied ZeroMQ state
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_subscribe, args=(output.endpoint, output.encoding, child),
                                        daemon=True)
        self._process.start()
        from handtrack.app.stream import encode

        probe = encode({"probe": True}, output.encoding)
        while not self._conn.poll(0.05):
            output.socket.send(probe)
        self._conn.recv()  # "subscribed"

    def finish(self) -> list[dict]:
        records = self._conn.recv()
        self._process.join(timeout=5)
        return records


def _subscribe(endpoint: str, encoding: str, conn) -> None:
    import msgpack
    import zmq

    decode = msgpack.unpackb if encoding == "msgpack" else json.loads
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(endpoint)
    records, subscribed = [], False
    while socket.poll(int(SUBSCRIBER_IDLE_S * 1000)):
        data = socket.recv()
        received = time.monotonic()
        message = decode(data)
        if message.get("probe"):
            if not subscribed:
                conn.send("subscribed")
                subscribed = True
            continue
        records.append({"seq": message["seq"], "host_s": message["stamp"]["host_monotonic_s"], "received_s": received,
                        "end_to_end_ms": message["latency_ms"]["end_to_end"],
                        "latency_tracker_ms": message["latency_ms"]["tracker"]})
    conn.send(records)
    socket.close(linger=0)
    context.term()
