"""`handtrack bench gui`: what the GUI costs tracking, and how fast it displays (needs a display: xvfb-run).

Three kinds of run of the same tracking process (tracking_process.py), each after a warm-up, alternating
`--repeats` times:
  headless   the unpaced demo (every frame, as fast as it renders) tracked with no window: the tracker's throughput
  gui        the same with the main window open and drawing (its own timer, as a user sees it)
  paced      the demo at its live 30 FPS with the window: capture, tracking and display rates as a user sees them
The cost is 1 - gui / headless tracking FPS, reported two ways: from the best run of each, and as the median over
the repeats of each headless/gui pair (adjacent in time, so a machine whose speed drifts affects both alike).
Display FPS counts new tracked frames drawn per second.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from functools import partial
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError
from handtrack.models_onnx import DEFAULT_MODEL


def add_parser(bsub: argparse._SubParsersAction) -> None:
    g = bsub.add_parser("gui", help="tracking FPS with and without the GUI, and display FPS (run under xvfb-run)")
    g.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (after a warm-up)")
    g.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    g.add_argument("--repeats", type=int, default=2, help="alternating headless/GUI runs; the best of each counts")
    g.add_argument("--model", default=DEFAULT_MODEL)
    g.add_argument("--size", default="1500x950", help="window size WxH")
    g.add_argument("--json", type=Path, help="write the results here")
    g.set_defaults(run=run)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(app, tracking, window, warmup: float, seconds: float) -> dict:
    """Run the Qt event loop (or, headless, only read the tracking process's reports) and count what happened in
    the measured span, from the counts the tracking process reports."""
    def run_for(s: float) -> None:
        if app is None:
            end = time.monotonic() + s
            while time.monotonic() < end:
                tracking.poll(wait=0.05, take_snapshots=False)  # headless: statuses only, no frames
            return
        from PySide6 import QtCore
        QtCore.QTimer.singleShot(int(s * 1000), lambda: app.exit(0))  # quit() would close the window
        app.exec()

    def counts() -> tuple[float, int, int]:
        tracking.poll(wait=0.3, take_snapshots=window is not None)  # a fresh status (sent every 0.1 s)
        st = tracking.status
        return time.perf_counter(), st["tracked"], st["source_stats"].get("captured", 0)

    run_for(warmup)
    if tracking.error or tracking.source_state != "connected":
        raise HandtrackError(f"the source did not run: {tracking.error or tracking.source_state}")
    shown0, cpu0 = (window.shown_count if window else 0), _cpu_s()
    t0, tracked0, captured0 = counts()
    run_for(seconds)
    t1, tracked1, captured1 = counts()
    elapsed = t1 - t0
    out = {"tracking_fps": round((tracked1 - tracked0) / elapsed, 1),
           "capture_fps": round((captured1 - captured0) / elapsed, 1),
           "gui_process_cpu_cores": round((_cpu_s() - cpu0) / elapsed, 2), "seconds": round(elapsed, 2)}
    if window is not None:
        out["display_fps"] = round((window.shown_count - shown0) / elapsed, 1)
    return out


def run(args: argparse.Namespace) -> int:
    from handtrack.inference.report import machine_info, write_json
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import TrackerOptions

    from .main import make_app, open_window
    from .tracking_process import TrackingProcess
    from .worker import TrackingSettings

    settings = TrackingSettings(TrackerOptions(model=args.model))
    unpaced_demo = partial(open_source, "demo", realtime=False)  # every frame, as fast as it renders
    app = make_app()
    runs: dict[str, list[dict]] = {"headless": [], "gui": [], "paced": []}
    # Headless and GUI runs alternate, and each keeps its best run: on a machine shared with other work the load
    # drifts, and the fastest run of each is the one least disturbed by it.
    for _ in range(args.repeats):
        tracking = TrackingProcess(unpaced_demo, settings).start()
        try:
            runs["headless"].append(_measure(None, tracking, None, args.warmup, args.seconds))
        finally:
            tracking.stop()
        print(f"headless: tracking {runs['headless'][-1]['tracking_fps']} FPS")
        for name, source in (("gui", unpaced_demo), ("paced", "demo")):
            window = open_window(source, settings, args.size)
            try:
                runs[name].append(_measure(app, window.tracking, window, args.warmup, args.seconds))
            finally:
                window.close()
            r = runs[name][-1]
            print(f"{name}: capture {r['capture_fps']} FPS, tracking {r['tracking_fps']} FPS, "
                  f"display {r['display_fps']} FPS")
    results = {name: max(rs, key=lambda r: r["tracking_fps"]) for name, rs in runs.items()}
    results["runs"] = runs

    headless, gui = results["headless"]["tracking_fps"], results["gui"]["tracking_fps"]
    results["gui_cost"] = round(1 - gui / headless, 3) if headless else None
    paired = sorted(1 - g["tracking_fps"] / h["tracking_fps"] for h, g in zip(runs["headless"], runs["gui"])
                    if h["tracking_fps"])
    results["gui_cost_paired"] = [round(c, 3) for c in paired]
    results["gui_cost_paired_median"] = round(float(np.median(paired)), 3) if paired else None
    results.update(target="gui", platform=os.environ.get("QT_QPA_PLATFORM") or "xcb",
                   display=os.environ.get("DISPLAY"), **machine_info())
    print(f"the GUI costs tracking {100 * results['gui_cost']:.1f} % of its headless throughput "
          f"({gui} vs {headless} FPS, best runs; median of the {len(paired)} pairs "
          f"{100 * results['gui_cost_paired_median']:.1f} %); display {results['gui']['display_fps']} FPS unpaced, "
          f"{results['paced']['display_fps']} FPS on the 30 FPS demo")
    if args.json:
        write_json(args.json, results)
    return 0
