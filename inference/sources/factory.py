"""open_source(spec): one string names any source; enumerate_devices(): every device the backends can see."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

from ..errors import HandtrackError
from .base import DeviceInfo
from .capture import Backend, CaptureSource

SPECS_HELP = ("demo, realsense[:SERIAL], openni[:URI], a RealSense recording (.bag, .db3), an OpenNI recording (.oni), "
              "a handtrack session (.mcap, from `handtrack record`) or a dataset folder")
# Options that configure the capture itself rather than the device; every source takes them.
CAPTURE_OPTIONS = ("buffer_frames", "backoff", "grab_timeout", "on_state")


def open_source(spec: str | os.PathLike, **options) -> CaptureSource:
    """The source `spec` names, not yet connected (use `with open_source(...) as source:` or `.connect()`).

      "demo"                    synthetic hand with ground-truth joints (fps=30, realtime=True, frames=None, ...)
      "realsense[:SERIAL]"      live RealSense (serial=, width=, height=, fps=, max_fps=90)
      "openni[:URI]"            live OpenNI2 camera (uri=, intrinsics=, max_fps=90)
      "x.bag", "x.db3"          RealSense recording, every frame in order
      "x.oni"                   OpenNI2 recording, every frame in order (intrinsics= if it lacks its field of view)
      "S.mcap", any session     a recorded handtrack session (realtime=True, camera=None); any file that is an MCAP
                                file counts, whatever its name, so `record --out S` then open_source("S") works
      "some/folder"             NYU, ICVL, MSRA or a folder of depth PNGs (split=, intrinsics=, depth_unit_mm=, fps=)
    Every source also takes the capture options buffer_frames, backoff (a capture.Backoff), grab_timeout, on_state.
    """
    capture = {k: options.pop(k) for k in CAPTURE_OPTIONS if k in options}
    return CaptureSource(_backend(spec, options), **capture)


def _backend(spec: str | os.PathLike, options: dict) -> Backend:
    text = os.fspath(spec)
    kind, _, arg = text.partition(":")
    if text == "demo":
        from .demo import DemoBackend
        return _build(DemoBackend, "demo", options)
    if kind == "realsense" and not Path(text).exists():
        from .realsense import RealSenseCamera
        if arg:
            options.setdefault("serial", arg)
        return _build(RealSenseCamera, "realsense", options)
    if kind == "openni" and not Path(text).exists():
        from .openni import OpenNIBackend
        if arg:
            options.setdefault("uri", arg)
        return _build(OpenNIBackend, "openni", options, exclude=("path",))
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if suffix in (".bag", ".db3"):
        from .realsense import RealSenseRecording
        return _build(RealSenseRecording, "RealSense recording", dict(options, path=path))
    if suffix == ".oni":
        from .openni import OpenNIBackend
        return _build(OpenNIBackend, "OpenNI recording", dict(options, path=path), exclude=("uri", "max_fps"))
    if suffix == ".mcap" or (path.is_file() and _is_session_file(path)):
        from .session import SessionBackend
        return _build(SessionBackend, "session", dict(options, path=path))
    if path.is_dir():
        from .folder import FolderBackend
        return _build(FolderBackend, "dataset folder", dict(options, path=path))
    raise HandtrackError(f"unknown source {text!r}: use {SPECS_HELP}")


def _is_session_file(path: Path) -> bool:
    from ..recording.reader import is_session_file
    return is_session_file(path)


def _build(cls, what: str, options: dict, exclude: tuple[str, ...] = ()) -> Backend:
    """cls(**options), with a one-line error naming the options a source takes instead of a TypeError."""
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    allowed = [n for n in params if n != "self" and n not in exclude and params[n].kind != params[n].VAR_KEYWORD]
    unknown = [k for k in options if k in exclude or (k not in allowed and not takes_any)]
    if unknown:
        raise HandtrackError(f"the {what} source has no option {', '.join(map(repr, unknown))} "
                             f"(it takes: {', '.join(allowed + list(CAPTURE_OPTIONS))})")
    return cls(**options)


def enumerate_devices() -> list[DeviceInfo]:
    """Every device the installed backends can see, the demo first. A backend whose optional package or library is
    missing is skipped (enumerate it through its own module to get the error that says what to install)."""
    from . import demo, openni, realsense
    found = list(demo.enumerate_devices())
    for backend in (realsense, openni):
        try:
            found += backend.enumerate_devices()
        except HandtrackError:
            continue
    return found
