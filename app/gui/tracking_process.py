"""Tracking in a child process: the GUI's handle on a TrackingWorker that runs beside it, not inside it.

Why a process and not just a thread: the tracker and the demo's renderer are Python code around numpy and
onnxruntime, and so is the GUI (pyqtgraph, the drawing). In one process they take turns on one interpreter lock,
and drawing at 30 FPS cost tracking about 40 % of its throughput on a 2-core machine; the same amount of work in
another process cost it a fraction of that (measured with `handtrack bench gui` and a synthetic load, see
docs/gui.md). In its own process the tracker only shares the CPU, and a camera driver that crashes takes down the
tracking process, which the GUI reports, not the window.

The child runs the ordinary TrackingWorker (worker.py). Over one pipe it receives the GUI's requests and sends
  ("status", dict)      about 10 times a second: source state, errors, rates, latencies, recording progress
  ("snapshot", Snapshot) the newest tracked frame, only when the GUI has taken the previous one (one in flight),
                         so a slow display receives fewer frames and never a backlog
The snapshot's depth image (1.2 MB at 640x480) goes through shared memory, not the pipe: pickled and written to
the pipe 30 times a second, it took interpreter-lock time from the child's tracking and capture threads, while
shared memory costs one copy on each side. The one-in-flight rule makes a single buffer safe: the child writes
the next depth only after the GUI has copied the last one out and acknowledged it.
The GUI calls `poll()` from its display timer; nothing here blocks the GUI thread.
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError

from .worker import Snapshot, SourceSpec, TrackingSettings

STATUS_PERIOD_S = 0.1
STOP_TIMEOUT_S = 10.0


def _serve(conn, source, source_options: dict, settings: TrackingSettings) -> None:
    """The child process: a TrackingWorker driven by the GUI's requests, reporting back over `conn`."""
    from .worker import TrackingWorker

    worker = TrackingWorker(source, settings, source_options).start()
    sent_seq, may_send, last_status = 0, True, 0.0
    depth_out = SharedDepth()
    try:
        while True:
            while conn.poll(0.005):
                kind, *args = conn.recv()
                if kind == "stop":
                    return
                if kind == "ack":
                    may_send = True
                elif kind == "source":
                    worker.set_source(args[0], **args[1])
                elif kind == "settings":
                    worker.set_settings(args[0])
                elif kind == "record":
                    worker.start_recording(args[0]) if args[0] is not None else worker.stop_recording()
            snap = worker.latest
            if may_send and snap is not None and snap.seq != sent_seq:
                conn.send(("snapshot", depth_out.put(snap)))
                sent_seq, may_send = snap.seq, False
            now = time.monotonic()
            if now - last_status >= STATUS_PERIOD_S:
                conn.send(("status", _status(worker)))
                last_status = now
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the GUI went away: stop quietly
    finally:
        worker.stop()  # finishes a recording, so its file is complete
        try:
            conn.send(("status", _status(worker)))
        except (OSError, ValueError):
            pass
        depth_out.release(unlink=True)


class SharedDepth:
    """One depth image in a shared memory block: `put` (the child) writes a snapshot's depth there and returns the
    snapshot with a small reference in its place; `take` (the GUI) copies it back out. The child owns the block and
    makes a larger one when a frame does not fit (another source)."""

    def __init__(self):
        self._block: shared_memory.SharedMemory | None = None

    def put(self, snap):
        depth = np.ascontiguousarray(snap.frame.depth_mm, dtype=np.float32)
        if self._block is None or self._block.size < depth.nbytes:
            self.release(unlink=True)
            self._block = shared_memory.SharedMemory(create=True, size=max(depth.nbytes, 1))
        np.ndarray(depth.shape, np.float32, self._block.buf)[...] = depth
        reference = (self._block.name, depth.shape)
        return dataclasses.replace(snap, frame=dataclasses.replace(snap.frame, depth_mm=reference))

    def take(self, snap):
        name, shape = snap.frame.depth_mm
        if self._block is None or self._block.name != name:
            self.release(unlink=False)
            self._block = shared_memory.SharedMemory(name=name)
        depth = np.ndarray(shape, np.float32, self._block.buf).copy()
        return dataclasses.replace(snap, frame=dataclasses.replace(snap.frame, depth_mm=depth))

    def release(self, unlink: bool) -> None:
        block, self._block = self._block, None
        if block is not None:
            block.close()
            if unlink:
                try:
                    block.unlink()
                except FileNotFoundError:
                    pass


def _status(worker) -> dict:
    source, recorder = worker.source, worker.recorder
    return {
        "source_name": source.name if source is not None else None,
        "source_state": worker.source_state, "source_error": worker.source_error, "error": worker.error,
        "settings": worker.settings, "tracked": worker.tracked,
        "source_stats": dict(getattr(source, "stats", {})),  # captured, dropped, reconnects
        "capture_fps": worker.capture_rate.per_second(), "tracking_fps": worker.tracking_rate.per_second(),
        "latencies": list(worker.latencies),
        "recording": recorder is not None, "record_path": worker.record_path,
        "record_live": dict(recorder.stats) if recorder is not None else None,
        "record_stats": dict(worker.record_stats) if worker.record_stats is not None else None,
    }


class TrackingProcess:
    """Start a TrackingWorker in a child process and follow it. Same requests as TrackingWorker; what it reports
    is read by `poll()` (call it from the GUI's timer) into `latest` and `status`."""

    def __init__(self, source: SourceSpec | None = "demo", settings: TrackingSettings = TrackingSettings(),
                 source_options: dict | None = None):
        self.settings = settings          # the settings last asked for (the child's own are in status)
        self.latest: Snapshot | None = None
        self.status: dict = {"source_state": "starting", "source_error": None, "error": None, "tracked": 0,
                             "source_stats": {}, "capture_fps": 0.0, "tracking_fps": 0.0, "latencies": [],
                             "recording": False, "record_path": None, "record_live": None, "record_stats": None,
                             "source_name": None, "settings": settings}
        self._args = (source, dict(source_options or {}), settings)
        self._conn = None
        self._process = None
        self._depth_in = SharedDepth()
        self._local_errors: dict[str, str] = {}

    # --- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> "TrackingProcess":
        if self._process is None:
            # spawn, not fork: a forked child of a process running Qt and onnxruntime threads can deadlock.
            ctx = mp.get_context("spawn")
            self._conn, child = ctx.Pipe()
            self._process = ctx.Process(target=_serve, args=(child, *self._args), name="handtrack tracking",
                                        daemon=True)
            self._process.start()
            child.close()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the child to stop (it finishes a recording first) and wait for it; kill it if it does not end."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            self._conn.send(("stop",))
        except (OSError, ValueError):
            pass
        end = time.monotonic() + timeout
        while process.is_alive() and time.monotonic() < end:
            self.poll(wait=0.05)  # keep reading: the child's last status says how the recording ended
        if process.is_alive():
            process.kill()
        process.join(1.0)
        self.poll()
        self._conn.close()
        self._depth_in.release(unlink=False)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    # --- requests ---------------------------------------------------------------------------------------------
    def set_source(self, source: SourceSpec, **options) -> None:
        """Track another source; if the tracking process died (a crashing camera driver), start a new one."""
        self.latest = None
        if self._process is not None and not self._process.is_alive():
            self.stop()
            self._local_errors.pop("process", None)
            self._args = (source, dict(options), self.settings)
            self.start()
            return
        self._send("source", source, options)

    def set_settings(self, settings: TrackingSettings) -> None:
        self.settings = settings
        self._send("settings", settings)

    def start_recording(self, path: str | Path) -> None:
        self._send("record", Path(path))

    def stop_recording(self) -> None:
        self._send("record", None)

    def report(self, what: str, message: str) -> None:
        """An error the GUI itself hit (e.g. creating the recordings folder), shown like the worker's."""
        self._local_errors[what] = message

    def _send(self, *message) -> None:
        if self._process is None:
            raise HandtrackError("the tracking process is not running")
        try:
            self._conn.send(message)
        except (OSError, ValueError) as exc:
            self._local_errors["process"] = f"the tracking process is gone ({exc})"

    # --- what it reports --------------------------------------------------------------------------------------
    def poll(self, wait: float = 0.0, take_snapshots: bool = True) -> bool:
        """Read everything the child sent; True if a new snapshot arrived. Never blocks longer than `wait`.
        With take_snapshots=False the child is not asked for the next snapshot (status only: a headless reader)."""
        if self._conn is None or self._conn.closed:
            return False
        fresh = False
        try:
            while self._conn.poll(wait):
                wait = 0.0
                kind, payload = self._conn.recv()
                if kind == "snapshot":
                    self.latest, fresh = self._depth_in.take(payload), True
                elif kind == "status":
                    self.status = payload
        except (EOFError, OSError):
            pass
        if fresh and take_snapshots:
            try:
                self._conn.send(("ack",))
            except (OSError, ValueError):
                pass
        if self._process is not None and not self._process.is_alive():
            self._local_errors["process"] = f"the tracking process stopped (exit code {self._process.exitcode})"
            self.status = dict(self.status, source_state="failed")
        return fresh

    @property
    def error(self) -> str | None:
        parts = [e for e in (self.status.get("error"), *self._local_errors.values()) if e]
        return "; ".join(parts) or None

    @property
    def source_state(self) -> str:
        return self.status["source_state"]

    @property
    def source_error(self) -> str | None:
        return self.status["source_error"]

    @property
    def tracked(self) -> int:
        return self.status["tracked"]
