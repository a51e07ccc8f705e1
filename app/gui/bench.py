"""`handtrack bench gui`: what the GUI costs tracking, and how fast it displays (needs a display: xvfb-run).

Three runs of the same TrackingWorker, each after a warm-up:
  headless   the unpaced demo (every frame, as fast as it renders) tracked with no window: the tracker's throughput
  gui        the same with the main window open and drawing (its own timer, as a user sees it)
  paced      the live-like demo at 30 FPS with the window: capture, tracking and display rates as a user sees them
The cost is 1 - gui / headless tracking FPS. Display FPS counts new tracked frames drawn per second.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time

from handtrack.inference.errors import HandtrackError


def add_parser(bsub: argparse._SubParsersAction) -> None:
    g = bsub.add_parser("gui", help="tracking FPS with and without the GUI, and display FPS (run under xvfb-run)")
    g.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (after a warm-up)")
    g.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    g.add_argument("--model", default="crossingnets")
    g.add_argument("--size", default="1500x950", help="window size WxH")
    g.add_argument("--json", type=argparse.FileType("w"), help="write the results here")
    g.set_defaults(run=run)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measure(app, worker, window, warmup: float, seconds: float) -> dict:
    """Run the Qt event loop (or just wait, headless) and count what happened in the measured span."""
    def run_for(s: float) -> None:
        if app is None:
            time.sleep(s)
            return
        from PySide6 import QtCore
        QtCore.QTimer.singleShot(int(s * 1000), lambda: app.exit(0))  # quit() would close the window
        app.exec()

    run_for(warmup)
    if worker.error or worker.source_state != "connected":
        raise HandtrackError(f"the source did not run: {worker.error or worker.source_state}")
    tracked0, shown0 = worker.tracked, window.shown_count if window else 0
    captured0 = worker.source.stats["captured"]
    cpu0, t0 = _cpu_s(), time.perf_counter()
    run_for(seconds)
    elapsed = time.perf_counter() - t0
    out = {"tracking_fps": round((worker.tracked - tracked0) / elapsed, 1),
           "capture_fps": round((worker.source.stats["captured"] - captured0) / elapsed, 1),
           "process_cpu_cores": round((_cpu_s() - cpu0) / elapsed, 2), "seconds": round(elapsed, 2)}
    if window is not None:
        out["display_fps"] = round((window.shown_count - shown0) / elapsed, 1)
    return out


def run(args: argparse.Namespace) -> int:
    from handtrack.app.commands.bench import machine_info
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import TrackerOptions

    from .main import make_app, open_window
    from .worker import TrackingSettings, TrackingWorker

    settings = TrackingSettings(TrackerOptions(model=args.model))
    results = {}

    worker = TrackingWorker(open_source("demo", realtime=False), settings).start()
    try:
        results["headless"] = _measure(None, worker, None, args.warmup, args.seconds)
    finally:
        worker.stop()
    print(f"headless: tracking {results['headless']['tracking_fps']} FPS")

    app = make_app()
    for name, source in (("gui", open_source("demo", realtime=False)), ("paced", open_source("demo", fps=30.0))):
        window = open_window(source, settings, args.size)
        try:
            results[name] = _measure(app, window.worker, window, args.warmup, args.seconds)
        finally:
            window.close()
        r = results[name]
        print(f"{name}: capture {r['capture_fps']} FPS, tracking {r['tracking_fps']} FPS, display {r['display_fps']} FPS")

    headless, gui = results["headless"]["tracking_fps"], results["gui"]["tracking_fps"]
    results["gui_cost"] = round(1 - gui / headless, 3) if headless else None
    results.update(target="gui", platform=os.environ.get("QT_QPA_PLATFORM") or "xcb",
                   display=os.environ.get("DISPLAY"), **machine_info())
    print(f"the GUI costs tracking {100 * results['gui_cost']:.1f} % of its headless throughput "
          f"({gui} vs {headless} FPS); display {results['gui']['display_fps']} FPS unpaced, "
          f"{results['paced']['display_fps']} FPS on the 30 FPS demo")
    if args.json:
        json.dump(results, args.json, indent=2)
    return 0
