"""`handtrack bench` (no target): the tracker's per-stage latency, end-to-end FPS and peak memory.

Frames are read into memory first, so the figures are the tracker's own (decode, localise, crop, infer, post),
not the source's. Each frame set runs twice through a fresh tracker: a warm-up pass, then the timed pass.
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STAGES = ("decode", "localise", "crop", "infer", "post", "total")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", help="model name or .onnx (repeatable; default: every shipped model)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="onnxruntime threads to measure with")
    p.add_argument("--frames", type=int, default=1000, help="timed frames per frame set")
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder (real frames)")
    p.add_argument("--headless-frames", type=int, default=600,
                   help="frames for the headless memory run (`handtrack --stream`, one per source); 0: skip it")
    p.add_argument("--json", type=Path, help="write the results here")


def frame_sets(data: Path, n: int) -> dict[str, list]:
    """name -> frames: the demo source's first n frames, and the real frames (cycled to n)."""
    from handtrack.inference.datasets import nyu, realsense_png

    from handtrack.inference.sources import open_source

    sets: dict[str, list] = {}
    with open_source("demo", realtime=False) as source:  # every frame, as fast as it renders
        sets["demo"] = [source.read() for _ in range(n)]
    nyu_png = data / "nyu" / "test_depth_1_0000001.png"
    if nyu_png.is_file():
        sets["nyu"] = [nyu.load_frame(nyu_png, data / "nyu" / "test_joints36_xyz_0000001.json")]
    sr305 = sorted((data / "realsense_sr305").glob("*.png"))
    if sr305:
        sets["sr305"] = [realsense_png.load_frame(p) for p in sr305]
    return sets


def _summary(latencies: list[dict]) -> dict:
    out = {}
    for stage in STAGES:
        v = np.array([lat.get(stage, 0.0) for lat in latencies])
        out[stage] = {"median_ms": round(float(np.median(v)), 4), "p99_ms": round(float(np.percentile(v, 99)), 4),
                      "mean_ms": round(float(v.mean()), 4)}
    return out


def bench_one(model: str, threads: int, frames: list, n: int) -> dict:
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    tracker = HandTracker(TrackerOptions(model=model, threads=threads))
    for k in range(min(n, 100)):  # warm-up: first inference, page faults, caches
        tracker.process(frames[k % len(frames)], k / 90.0)
    tracker = HandTracker(TrackerOptions(model=model, threads=threads))
    latencies, present = [], 0
    start = time.perf_counter()
    for k in range(n):
        r = tracker.process(frames[k % len(frames)], k / 90.0)
        latencies.append(r.latency_ms)
        present += r.present
    wall = time.perf_counter() - start
    return {"model": model, "threads": threads, "frames": n, "fps_end_to_end": round(n / wall, 1),
            "present_fraction": round(present / n, 3), "stages": _summary(latencies),
            "finder": finder_cost(tracker, frames, n)}


def finder_cost(tracker, frames: list, n: int) -> dict:
    """The hand finder's own cost per frame: the detector on the whole frame (it runs whenever no hand is being
    tracked: every frame of a scene without one) and the presence net on a crop (every frame with a hand)."""
    from handtrack.inference.crop import crop_and_normalise
    from handtrack.inference.tracker import decode_depth

    if tracker.detector is None:
        return {}
    times: dict[str, list[float]] = {"detector": [], "presence": []}
    for k in range(n):
        f = frames[k % len(frames)]
        depth = decode_depth(f.depth_mm, f.intrinsics)
        t0 = time.perf_counter()
        cands = tracker.detector.detect(depth, top=1)
        t1 = time.perf_counter()
        times["detector"].append((t1 - t0) * 1e3)
        if cands:
            crop, _ = crop_and_normalise(depth, f.intrinsics, cands[0].centre(f.intrinsics), tracker.cube_mm,
                                         tracker.input_size)
            t2 = time.perf_counter()
            tracker.presence_model.probability(crop)
            times["presence"].append((time.perf_counter() - t2) * 1e3)
    return {name: {"median_ms": round(float(np.median(v)), 4), "p99_ms": round(float(np.percentile(v, 99)), 4)}
            for name, v in times.items() if v}


# Runs `handtrack` in a fresh interpreter and prints its VmHWM (peak resident memory of this process image) at
# exit. ru_maxrss of a child would not do: Linux carries the parent's RSS at fork into it, and this benchmark
# holds every frame set in memory.
_PEAK_RSS_CHILD = """
import atexit, sys
def _report():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            print('VmHWM_kB', line.split()[1], file=sys.stderr)
atexit.register(_report)
from handtrack.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def headless_peak_rss(source: str, model: str, frames: int) -> dict:
    """Peak RSS of a headless tracker: `handtrack --stream` as its own process, stdout discarded."""
    import subprocess
    import sys

    argv = ["stream", "--source", source, "--model", model, "--frames", str(frames), "--unpaced", "--threads", "1"]
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS_CHILD, *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=600)
    lines = done.stderr.strip().splitlines()
    peak = [int(line.split()[1]) for line in lines if line.startswith("VmHWM_kB")]
    if done.returncode != 0 or not peak:
        return {"source": source, "error": [line for line in lines if not line.startswith("VmHWM_kB")][-1:]}
    return {"source": source, "max_frames": frames, "peak_rss_mb": round(peak[0] / 1024, 1),
            "command": "handtrack " + " ".join(argv)}


def run(args: argparse.Namespace) -> int:
    import cv2

    from handtrack.inference.report import machine_info, write_json
    from handtrack.models_onnx import shipped

    cv2.setNumThreads(1)
    models = args.model or shipped()
    sets = frame_sets(args.data, args.frames)
    results = []
    for model in models:
        for name, frames in sets.items():
            for threads in args.threads:
                r = {"frames_from": name, **bench_one(model, threads, frames, args.frames)}
                results.append(r)
                s = r["stages"]
                print(f"{model:<14} {name:<6} threads {threads}: {r['fps_end_to_end']:>7.1f} FPS end to end | "
                      + " ".join(f"{k} {s[k]['median_ms']:.3f}/{s[k]['p99_ms']:.3f}" for k in STAGES)
                      + " ms (median/p99)" + "".join(f" | {k} {v['median_ms']:.3f}/{v['p99_ms']:.3f}"
                                                     for k, v in r["finder"].items()))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (this process: tracker, models and the frames in memory)")
    headless = []
    if args.headless_frames > 0:
        # The SR305 folder first (no renderer), then the demo (it renders every frame with numba).
        for source in [str(args.data / "realsense_sr305"), "demo"]:
            h = headless_peak_rss(source, models[0], args.headless_frames)
            headless.append(h)
            print(f"headless tracker (handtrack --stream, {source}): "
                  + (f"peak RSS {h['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in h else f"failed: {h['error']}"))
    report = {"target": "tracker", "results": results, "peak_rss_mb": round(peak_mb, 1),
              "headless": headless, **machine_info()}
    if args.json:
        write_json(args.json, report)
    return 0
