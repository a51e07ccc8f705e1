"""`handtrack-gui`: the desktop application.

    handtrack-gui                                   # the first camera found, else the demo
    handtrack-gui --source realsense --model crossingnets
    handtrack-gui --source demo --screenshot OUT.png --frames 60   # save a picture of the window and exit

Qt is imported only here and below, after a check that names the `gui` extra when PySide6 is missing; errors
that reach main() are one line on stderr and exit code 2, as in `handtrack`.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from handtrack.inference.errors import HandtrackError, require
from handtrack.models_onnx import DEFAULT_MODEL

SCREENSHOT_TIMEOUT_S = 120.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="handtrack-gui", description="Live 3D hand tracking on a depth camera: depth, "
                                "3D skeleton, synthesized depth, recording.")
    p.add_argument("--source", help="demo, realsense[:SERIAL], openni[:URI], a recording (.mcap, .bag, .db3, .oni) or "
                                    "a dataset folder (default: the first camera found, else the demo)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"a shipped model name (default {DEFAULT_MODEL}) or a *_pose.onnx path")
    p.add_argument("--hand", choices=("auto", "right", "left"), default="auto",
                   help="the hand to track; auto: the hand finder's detector says which (default)")
    p.add_argument("--record-dir", type=Path, default=Path("recordings"), help="where the Record button saves")
    p.add_argument("--size", default="1500x950", help="window size WxH")
    p.add_argument("--screenshot", type=Path, help="save a PNG of the whole window after --frames tracked frames, "
                                                    "then exit (the latent walk is captured from frames N/2 and N)")
    p.add_argument("--frames", type=int, default=60, help="tracked frames before --screenshot (default 60)")
    return p


def default_source() -> str:
    """The first camera the backends see, else the demo."""
    from handtrack.inference.sources import enumerate_devices

    cameras = [d for d in enumerate_devices() if d.backend != "demo"]
    return cameras[0].spec if cameras else "demo"


def make_app():
    """The QApplication (one per process), with the GUI's Qt bindings checked first."""
    require("PySide6", extra="gui", feature="handtrack-gui", apt="libegl1 libxkbcommon-x11-0")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    require("pyqtgraph", extra="gui", feature="handtrack-gui")
    require("OpenGL", extra="gui", feature="the 3D view")
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
                and os.environ.get("QT_QPA_PLATFORM", "") in ("", "xcb"):
            raise HandtrackError("no display (DISPLAY is not set): run it on a desktop, or headless with `xvfb-run -a` "
                                 "in front of the command")
        # pyqtgraph compiles its shaders once per process: every GL view must share the one context they live in.
        QtCore.QCoreApplication.setAttribute(QtCore.Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        app = QtWidgets.QApplication(["handtrack-gui"])
    return app


def open_window(source, settings, size: str = "1500x950", record_dir: Path = Path("recordings")):
    """Tracking started on `source` (a spec, or a picklable function returning a FrameSource) in its own process,
    and the main window showing it."""
    from .window import MainWindow
    from .tracking_process import TrackingProcess

    tracking = TrackingProcess(source, settings).start()
    window = MainWindow(tracking, source if isinstance(source, str) else getattr(source, "__name__", "custom"),
                        record_dir)
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise HandtrackError(f"--size takes WIDTHxHEIGHT, got {size!r}") from None
    window.resize(width, height)
    window.show()
    return window


def take_screenshot(app, window, path: Path, frames: int, timeout_s: float = SCREENSHOT_TIMEOUT_S) -> None:
    """Run until `frames` frames are tracked and shown, capture the latent walk's ends on the way (frames N/2 and
    N), then save the whole window. Raises HandtrackError if the frames do not come in time (after saving what the
    window shows, so the picture tells why)."""
    tracking = window.tracking
    end = time.monotonic() + timeout_s
    captured_a = stopped = False
    while time.monotonic() < end and window.shown_seq < frames:
        app.processEvents()
        stopped = tracking.source_state in ("failed", "finished") or (tracking.status["source_name"] is None
                                                                      and tracking.error is not None)
        if stopped:
            break  # no more frames will come
        if not captured_a and window.shown_seq >= frames // 2:
            captured_a = window.capture_walk("a")
        time.sleep(0.005)
    reached = window.shown_seq >= frames
    if reached:
        window.capture_walk("b")
    window.timer.stop()  # freeze the display on the last frame for the picture
    snap = window.snapshot
    if snap is not None:
        window.synthesis.show_result(snap.result, snap.frame.intrinsics, snap.cube_mm, snap.model)
    window.walk.show_at(0.5)
    window.latency.show_latencies(tracking.status["latencies"])
    window.confidence.show_result(snap.result if snap is not None else None)
    window.show_status()
    for _ in range(10):  # let every widget paint
        app.processEvents()
        time.sleep(0.01)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.screenshot().save(str(path)):
        raise HandtrackError(f"cannot write the screenshot to {path}")
    if not reached:
        why = tracking.error or tracking.source_error or tracking.source_state
        got = f"the source stopped after {max(window.shown_seq, 0)}" if stopped else \
            f"only {max(window.shown_seq, 0)} in {timeout_s:g} s"
        raise HandtrackError(f"{got} of {frames} frames ({why}); saved the window as it was to {path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except HandtrackError as exc:
        print(f"handtrack-gui: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    from handtrack.inference.tracker import TrackerOptions

    from .worker import TrackingSettings

    app = make_app()
    if args.frames < 1:
        raise HandtrackError("--frames must be at least 1")
    source = args.source or default_source()
    settings = TrackingSettings(TrackerOptions(model=args.model, hand=args.hand))
    window = open_window(source, settings, args.size, args.record_dir)
    try:
        if args.screenshot:
            take_screenshot(app, window, args.screenshot, args.frames)
            print(f"saved {args.screenshot} after {window.shown_seq} frames")
            return 0
        from PySide6 import QtCore

        # Ctrl-C in the terminal closes the window, from the event loop (Python only sees the signal while it runs
        # bytecode, hence the keep-alive timer).
        signal.signal(signal.SIGINT, lambda *_: QtCore.QTimer.singleShot(0, window.close))
        keepalive = QtCore.QTimer(interval=200)
        keepalive.timeout.connect(lambda: None)
        keepalive.start()
        return app.exec()
    finally:
        window.close()


if __name__ == "__main__":
    sys.exit(main())
