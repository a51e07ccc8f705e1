"""`handtrack doctor`: what this machine, a source and a model look like to handtrack, in plain lines. The first
thing to run when the tracker does not see your hand.

    handtrack doctor                                  # the demo and the default model
    handtrack doctor --source realsense --frames 60
    handtrack doctor --source recordings/ --depth-unit 1 --intrinsics d435 --json doctor.json

Each line starts with "ok", "note" or "PROBLEM". Nothing here stops at the first problem: every check runs and
says what it found. Exit code 0 when there is no problem, 1 when there is one.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from handtrack.app.commands.source_args import add_source_options, source_options
from handtrack.inference.errors import HandtrackError
from handtrack.inference.report import write_json
from handtrack.models_onnx import DEFAULT_MODEL

PLAUSIBLE_MEDIAN_MM = (150.0, 5000.0)  # the median valid depth of a frame with a person in it lies in here


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check a source and a model and say, in plain lines, what was found",
                       description="Probe a source and a model: depth unit and range, camera intrinsics, frame "
                                   "rate, whether a hand is seen, the model's metadata, onnxruntime's providers.")
    p.add_argument("--source", default="demo", help="a source spec as for every command (default demo)")
    add_source_options(p)
    p.add_argument("--model", default=DEFAULT_MODEL, help="a shipped model name or a *_pose.onnx path")
    p.add_argument("--frames", type=int, default=30, help="frames to look at (default %(default)s)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the findings as JSON")
    p.set_defaults(run=run)


class Report:
    def __init__(self):
        self.lines: list[dict] = []

    def add(self, level: str, topic: str, text: str, **data) -> None:
        self.lines.append({"level": level, "topic": topic, "text": text, **data})
        print(f"{level:<8}{topic:<9}{text}", flush=True)

    @property
    def problems(self) -> int:
        return sum(line["level"] == "PROBLEM" for line in self.lines)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        raise HandtrackError("--frames must be at least 1")
    report = Report()
    _machine(report)
    tracker = _model(report, args.model)
    frames = _source(report, args)
    if tracker is not None and frames:
        _hand(report, tracker, frames)
    report.add("ok" if not report.problems else "PROBLEM", "verdict",
               "nothing wrong found" if not report.problems else f"{report.problems} problem(s) above")
    if args.json:
        write_json(args.json, {"source": args.source, "model": args.model, "lines": report.lines})
    return 1 if report.problems else 0


def _machine(report: Report) -> None:
    import onnxruntime as ort
    from importlib.metadata import PackageNotFoundError, version

    try:
        mine = version("handtrack")
    except PackageNotFoundError:
        mine = "unknown"
    report.add("ok", "machine", f"handtrack {mine}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
                                f"onnxruntime {ort.__version__} (providers: {', '.join(ort.get_available_providers())})")


def _model(report: Report, model: str):
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    try:
        tracker = HandTracker(TrackerOptions(model=model, smoothing=None))
    except HandtrackError as exc:
        report.add("PROBLEM", "model", str(exc))
        return None
    info = tracker.pose_model.info
    precision = info.extra.get("precision", "float32")
    report.add("ok", "model", f"{tracker.pose_model.path} ({info.method}, version {info.version}, {precision}): "
                              f"{info.input_size}x"
                              f"{info.input_size} crops of a {info.cube_mm:g} mm cube -> {len(info.joint_names)} "
                              f"joints ({info.joint_set})", version=info.version)
    refiner = getattr(tracker, "centre_model", None)
    report.add("ok" if refiner is not None else "note", "model",
               "centre refiner beside it" if refiner is not None else "no centre refiner beside it: crops are "
                                                                      "centred by the depth rules alone")
    if tracker.detector is None:
        report.add("note", "model", "no hand finder: the nearest object is taken for the hand")
    else:
        report.add("ok", "model", f"hand finder {tracker.detector.info.version} loaded (detector and presence net)")
    return tracker


def _source(report: Report, args) -> list:
    from handtrack.inference.sources import open_source

    try:
        source = open_source(args.source, **source_options(args)).connect()
    except HandtrackError as exc:
        report.add("PROBLEM", "source", str(exc))
        return []
    frames, start = [], time.monotonic()
    try:
        info = source.info
        K = info.intrinsics
        unit = f", {info.depth_unit_mm:g} mm per raw unit" if info.depth_unit_mm else ""
        report.add("ok", "source", f"{source.name}: {info.device}; {K.width}x{K.height}, fx {K.fx:.1f} fy {K.fy:.1f} "
                                   f"cx {K.cx:.1f} cy {K.cy:.1f}; nominal {info.fps or '?'} FPS{unit}")
        for frame in source:
            frames.append(frame)
            if len(frames) >= args.frames:
                break
    except HandtrackError as exc:
        report.add("PROBLEM", "source", f"stopped after {len(frames)} frames: {exc}")
    finally:
        seconds = time.monotonic() - start
        skipped = source.stats.get("skipped", 0)
        source.disconnect()
    if not frames:
        report.add("PROBLEM", "source", "delivered no frame")
        return []
    rate = f"{(len(frames) - 1) / seconds:.1f} frames/s as read" if seconds > 0 and len(frames) > 1 else "one frame"
    report.add("ok", "source", f"{len(frames)} frames, {rate}" + (f"; {skipped} unreadable frames skipped"
                                                                   if skipped else ""))
    depth = np.stack([f.depth_mm for f in frames])
    valid = depth[depth > 0]
    share = valid.size / depth.size
    if not valid.size:
        report.add("PROBLEM", "depth", "every pixel is 0 (no depth): is the camera covered, or the file empty?")
        return frames
    lo, median, hi = np.percentile(valid, [1, 50, 99])
    level = "ok" if PLAUSIBLE_MEDIAN_MM[0] <= median <= PLAUSIBLE_MEDIAN_MM[1] else "PROBLEM"
    text = f"{share:.0%} of pixels have depth; 1 / 50 / 99 % at {lo:.0f} / {median:.0f} / {hi:.0f} mm"
    if level == "PROBLEM":
        text += (f" (a median outside {PLAUSIBLE_MEDIAN_MM[0]:.0f}-{PLAUSIBLE_MEDIAN_MM[1]:.0f} mm usually means "
                 f"the wrong depth unit: --depth-unit)")
    report.add(level, "depth", text, median_mm=float(median), valid_share=share)
    return frames


def _hand(report: Report, tracker, frames: list) -> None:
    results = [tracker.process(f) for f in frames]
    present = [r for r in results if r.present]
    unit = tracker.unit_check
    if unit is not None and unit.factor not in (None, 1.0):
        report.add("PROBLEM", "hand", unit.message)
    elif unit is not None and unit.hint():
        report.add("PROBLEM", "hand", unit.hint())
    if not present:
        why = ", ".join(f"{k} {v}" for k, v in sorted(tracker.stats.items()) if k != "frames")
        report.add("PROBLEM", "hand", f"no hand in any of {len(frames)} frames ({why}). Hold one hand up, "
                                      "0.3-1.2 m from the camera, nearer than your body")
        return
    hands = sorted({r.handedness for r in present})
    report.add("ok", "hand", f"a hand in {len(present)} of {len(frames)} frames ({' and '.join(hands)}), mean "
                             f"presence {np.mean([r.presence for r in present]):.2f}, plausibility "
                             f"{np.mean([r.plausibility for r in present]):.2f}, at "
                             f"{np.median([r.centre_mm[2] for r in present]):.0f} mm",
               present=len(present), frames=len(frames))
    ms = [r.latency_ms.get("total", 0.0) for r in results]
    report.add("ok", "speed", f"tracking took {np.median(ms):.1f} ms a frame (median; {1000 / max(np.median(ms), 1e-3):.0f} "
                              "frames/s on this machine)")
