"""The tracking worker: reads the source and runs the tracker (and the recorder) on a plain thread.

In the GUI it runs inside the tracking process (tracking_process.py), which relays the GUI's requests and sends
the snapshots on; tests and benchmarks drive it directly. It publishes each tracked frame as an immutable
`Snapshot` in one slot (`latest`), replacing the previous one: a reader that is slower than the tracker sees fewer
frames, never older ones, and the tracker never waits for it.

Requests (another source, other tracker settings, start or stop recording) are posted with the `set_*` /
`*_recording` methods and applied by the worker between two frames, so the source, the tracker and the recording
writer are only ever touched by the worker's thread. Opening a camera can take seconds: that happens on this
thread too. Every failure (no such device, a model that does not load, a lost camera, a full disk while
recording) ends up as one line in `error` or in the source's own `state` / `error`, never as an exception.

No Qt here: the worker is plain Python.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Union

import numpy as np

from handtrack.inference.errors import HandtrackError
from handtrack.inference.frame import DepthFrame
from handtrack.inference.result import HandResult
from handtrack.inference.sources import FrameSource, open_source
from handtrack.inference.sources.loop import FrameLoop
from handtrack.inference.tracker import HandTracker, TrackerOptions

LATENCY_HISTORY = 300  # frames of per-stage latency kept for the plot
# What names a source: a spec for open_source, a FrameSource, or a function that returns one (picklable, so a
# source can be named for another process).
SourceSpec = Union[str, FrameSource, Callable[..., FrameSource]]


@dataclass(frozen=True)
class TrackingSettings:
    """What the GUI's controls set. Depth outside [near_mm, far_mm] is ignored: masked out before tracking (and
    shown black), so the tracker sees exactly what the user sees."""
    tracker: TrackerOptions = TrackerOptions()
    near_mm: float = 0.0
    far_mm: float = 2000.0

    def tracker_options(self) -> TrackerOptions:
        return replace(self.tracker, max_depth_mm=self.far_mm)


@dataclass(frozen=True)
class Snapshot:
    """One tracked frame as the display receives it. `seq` grows by one per tracked frame."""
    seq: int
    frame: DepthFrame           # the depth the tracker saw (after the depth-range mask)
    result: HandResult
    cube_mm: float              # the tracker's crop cube for this frame
    model: str                  # the pose model that produced it


class Rate:
    """Events per second over a sliding window (for the FPS read-outs)."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)
            self._trim(self._times[-1])

    def per_second(self, now: float | None = None) -> float:
        with self._lock:
            now = time.monotonic() if now is None else now
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            # Rate over the span the window holds, so a read just after a burst does not overstate it.
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


def mask_depth_range(frame: DepthFrame, near_mm: float, far_mm: float) -> DepthFrame:
    """The frame with depth outside [near_mm, far_mm] set to 0 (missing); the same frame if nothing is outside."""
    depth = np.asarray(frame.depth_mm)
    if not isinstance(frame.depth_mm, np.ndarray) or depth.ndim != 2:
        return frame  # the tracker will skip it with its own reason
    outside = (depth < near_mm) | (depth > far_mm)
    if not outside.any():
        return frame
    masked = depth.copy()
    masked[outside] = 0
    return replace(frame, depth_mm=masked)


class TrackingWorker:
    """Source -> tracker (-> recording) on a background thread; see the module docstring."""

    def __init__(self, source: SourceSpec | None = "demo", settings: TrackingSettings = TrackingSettings(),
                 source_options: dict | None = None):
        self.latest: Snapshot | None = None
        self._errors: dict[str, str] = {}       # the worker's own errors by what failed: source, model, recording
        self.settings = settings
        self.source: FrameSource | None = None
        self.tracker: HandTracker | None = None
        self.capture_rate = Rate()
        self.tracking_rate = Rate()
        self.latencies: deque[dict] = deque(maxlen=LATENCY_HISTORY)
        self.tracked = 0                        # frames tracked since start()
        self.recorder = None                    # the SessionWriter while recording
        self.record_path: Path | None = None
        self.record_stats = None                # the writer's stats when the last recording stopped
        self._captured_seen = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: dict = {}
        if source is not None:
            self.set_source(source, **(source_options or {}))
        self.set_settings(settings)

    # --- requests from the GUI thread (applied by the worker between frames) ----------------------------------
    def set_source(self, source: SourceSpec, **options) -> None:
        """Switch to another source: a spec for open_source ("demo", "realsense:SERIAL", a file), a FrameSource,
        or a function that makes one."""
        self._post("source", (source, options))

    def set_settings(self, settings: TrackingSettings) -> None:
        self._post("settings", settings)

    def start_recording(self, path: str | Path) -> None:
        self._post("record", Path(path))

    def stop_recording(self) -> None:
        self._post("record", None)

    def _post(self, key: str, value) -> None:
        with self._lock:
            self._pending[key] = value
        self._wake.set()

    # --- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> "TrackingWorker":
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="tracking worker", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop tracking, finish a recording (its file stays complete) and release the source."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self._close_recording()
        self._close_source()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def source_state(self) -> str:
        return self.source.state if self.source is not None else "no source"

    @property
    def source_error(self) -> str | None:
        return self.source.error if self.source is not None else None

    @property
    def error(self) -> str | None:
        """What went wrong in the worker (opening a source, loading a model, recording), one line each, or None.
        Each part clears its own error when it next succeeds."""
        return "; ".join(self._errors.values()) or None

    def report(self, what: str, message: str) -> None:
        """Show an error that happened outside the worker under `what` (e.g. the GUI failing to make a folder)."""
        self._errors[what] = message

    @property
    def recording(self) -> bool:
        return self.recorder is not None

    # --- the worker thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        """Frames until a request comes (it sets `_wake`, which stops the sources' loop between two frames), then
        the request, and so on. A lost or reconnecting source is waited for (its state says so, the GUI shows it);
        one that finished or failed leaves the worker waiting for the next request."""
        while not self._stop.is_set():
            self._wake.clear()  # before taking the requests: one posted from here on wakes the loop again
            self._apply_pending()
            if self.source is not None and self.tracker is not None:
                try:
                    for _, frame in FrameLoop([self.source], self._wake):
                        self._track(frame)
                except HandtrackError as exc:
                    self._errors["source"] = str(exc)
            self._wake.wait()

    def _track(self, frame: DepthFrame) -> None:
        self._errors.pop("source", None)  # frames flow again
        self._count_captured()
        s = self.settings
        seen = mask_depth_range(frame, s.near_mm, s.far_mm)
        result = self.tracker.process(seen)
        self.latencies.append(result.latency_ms)
        self.tracked += 1
        self.tracking_rate.tick()
        self.latest = Snapshot(self.tracked, seen, result, self.tracker.cube_mm, self.settings.tracker.model)
        if self.recorder is not None:
            self._record(frame, result)

    def _count_captured(self) -> None:
        """Capture FPS counts every frame the source captured, also those dropped because tracking was busy."""
        captured = getattr(self.source, "stats", {}).get("captured", self._captured_seen + 1)
        now = time.monotonic()
        for _ in range(max(0, min(captured - self._captured_seen, 1000))):
            self.capture_rate.tick(now)
        self._captured_seen = captured

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if "source" in pending:
            self._open(*pending["source"])
        if "settings" in pending:
            self._configure(pending["settings"])
        if "record" in pending:
            self._close_recording()
            if pending["record"] is not None:
                self._open_recording(pending["record"])

    def _open(self, spec: SourceSpec, options: dict) -> None:
        self._close_recording()  # a recording belongs to one source
        self._close_source()
        self.latest = None
        self._errors.pop("source", None)
        try:
            if isinstance(spec, FrameSource):
                source = spec
            elif callable(spec):
                source = spec(**options)
            else:
                source = open_source(spec, **options)
            source.connect()
        except HandtrackError as exc:
            self._errors["source"] = f"cannot open {spec}: {exc}"
            return
        self.source, self._captured_seen = source, 0
        if self.tracker is not None:
            self.tracker.reset()

    def _configure(self, settings: TrackingSettings) -> None:
        try:
            tracker = HandTracker(settings.tracker_options())
        except (HandtrackError, ValueError) as exc:
            self._errors["model"] = f"cannot use model {settings.tracker.model}: {exc}"
            return  # keep tracking with the previous settings
        self.settings, self.tracker = settings, tracker
        self._errors.pop("model", None)

    def _close_source(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            source.disconnect()

    # --- recording --------------------------------------------------------------------------------------------
    def _open_recording(self, path: Path) -> None:
        if self.source is None or self.source.state != "connected":
            self._errors["recording"] = "nothing to record: the source is not connected"
            return
        try:
            from handtrack.inference.recording import SessionWriter
        except ImportError as exc:
            self._errors["recording"] = f"recording is not available in this installation ({exc})"
            return
        try:
            self.recorder = SessionWriter(path, info=self.source.info, model=self.settings.tracker.model,
                                          metadata={"source": self.source.name})
        except (HandtrackError, OSError) as exc:
            self._errors["recording"] = f"cannot record to {path}: {exc}"
            return
        self.record_path, self.record_stats = path, None
        self._errors.pop("recording", None)

    def _record(self, frame: DepthFrame, result: HandResult) -> None:
        try:
            self.recorder.write(frame, result)
        except (HandtrackError, OSError) as exc:
            self._errors["recording"] = f"recording stopped: {exc}"
            self._close_recording()
            return
        failure = self.recorder.stats.get("error")
        if failure:  # the writer's own thread hit a write error (a full disk): its message says so
            self._errors["recording"] = failure
            self._close_recording()

    def _close_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        try:
            recorder.close()
        except (HandtrackError, OSError) as exc:
            self._errors["recording"] = f"recording did not close cleanly: {exc}"
        self.record_stats = recorder.stats
