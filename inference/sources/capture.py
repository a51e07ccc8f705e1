"""CaptureSource: the FrameSource every backend is served through.

A backend only knows its device: `open()` it, `grab()` the next frame, `close()` it. CaptureSource adds what every
source needs the same way: a background capture thread (so the reader never waits on USB or a renderer), the
bounded hand-over buffer, the frame counter and host timestamps, and, for live devices, reconnection with
exponential back-off when the device is unplugged and comes back. Tests drive all of it through a fake backend.
"""
from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

from ..errors import HandtrackError
from ..frame import META_HOST_TIME, META_INDEX, META_SENSOR_FRAME, META_SENSOR_TIME, META_SOURCE, DepthFrame, StreamInfo
from .base import (CONNECTED, DISCONNECTED, FAILED, FINISHED, LOST, RECONNECTING, DeviceLost, EndOfStream, FrameSource,
                   SkipFrame, SourceTimeout)
from .buffer import FrameBuffer

LOG = logging.getLogger("handtrack")


class Backend(ABC):
    """One device, recording or generator. Methods are called from one thread at a time.

    live: frames come at the device's pace and may be dropped for a slow reader; otherwise every frame is
    delivered in order. reconnectable: a lost device may come back (live hardware)."""

    name: str = "backend"
    live: bool = True
    reconnectable: bool = False

    @abstractmethod
    def open(self) -> StreamInfo:
        """Open the device and start its stream; raise DeviceMissing (a HandtrackError) if it is not there."""

    @abstractmethod
    def grab(self, timeout: float) -> DepthFrame | None:
        """The next frame, or None if none came within `timeout` s. Raise DeviceLost when the device went away
        and EndOfStream after the last frame of a recording. Meta may carry sensor time and frame number."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; must not raise, also after a failed or partial open()."""


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: initial, initial * factor, ... capped at maximum (seconds)."""
    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.initial * self.factor ** attempt, self.maximum)


StateCallback = Callable[[str, "str | None"], None]


class CaptureSource(FrameSource):
    """Serves a Backend as a FrameSource through a capture thread (see the module docstring).

    buffer_frames: frames held between the thread and the reader: 1 for live sources (the newest frame wins),
    a few for playback (read-ahead; the thread waits when they are full). on_state(state, error) is called from
    the capture thread on every change of state or error message (a GUI can show "camera lost, reconnecting").
    """

    def __init__(self, backend: Backend, *, buffer_frames: int | None = None, backoff: Backoff | None = None,
                 grab_timeout: float = 0.25, on_state: StateCallback | None = None):
        self._make_buffer = lambda: FrameBuffer(buffer_frames or (1 if backend.live else 4),
                                                drop_oldest=backend.live)
        self.backend = backend
        self.live = backend.live
        self.backoff = backoff or Backoff()
        self.grab_timeout = grab_timeout
        self.on_state = on_state
        self._buffer = self._make_buffer()
        self._state = DISCONNECTED
        self._error: str | None = None
        self._info: StreamInfo | None = None
        self._stop = threading.Event()
        self._skip_reasons: set[str] = set()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = {"captured": 0, "dropped": 0, "reconnects": 0, "skipped": 0}

    # --- the FrameSource protocol ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.backend.name  # a backend may sharpen it on open ("realsense" -> "realsense:<serial>")

    @property
    def state(self) -> str:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def info(self) -> StreamInfo:
        if self._info is None:
            raise HandtrackError(f"{self.name} is not connected (call connect() first)")
        return self._info

    def connect(self) -> "CaptureSource":
        with self._lock:
            if self._thread is not None:
                return self
            # Opened here, in the caller's thread, so a missing device is an exception the caller sees at once.
            try:
                self._info = self.backend.open()
            except BaseException:
                self.backend.close()  # whatever a partial open left behind
                raise
            self._stop.clear()
            self._buffer = self._make_buffer()
            self.stats = {"captured": 0, "dropped": 0, "reconnects": 0, "skipped": 0}
            self._set_state(CONNECTED, None)
            self._thread = threading.Thread(target=self._run, name=f"capture {self.name}", daemon=True)
            self._thread.start()
            return self

    def read(self, timeout: float | None = 10.0) -> DepthFrame:
        if self._state == DISCONNECTED:
            raise HandtrackError(f"{self.name} is not connected (call connect() first)")
        frame = self._buffer.get(timeout)
        if frame is not None:
            return frame
        if self._stop.is_set() or self._state == DISCONNECTED:
            raise HandtrackError(f"{self.name} was disconnected")
        if self._state == FINISHED:
            # The last frame may have been put after the wait above gave up and before the state changed: the state
            # changes after the last put, so one more look now cannot miss it.
            frame = self._buffer.poll()
            if frame is not None:
                return frame
            raise EndOfStream(self.name)
        if self._state == FAILED:
            raise HandtrackError(f"{self.name} stopped: {self._error}")
        why = f"{self._state}: {self._error}" if self._error else self._state
        raise SourceTimeout(f"no frame from {self.name} within {timeout:g} s ({why})")

    def latest(self) -> DepthFrame | None:
        return self._buffer.poll()

    def disconnect(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stop.set()
            self._buffer.close()
            thread.join(timeout=5.0)
            self.backend.close()
            self._set_state(DISCONNECTED, None)

    # --- the capture thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self.backend.grab(self.grab_timeout)
                except DeviceLost as exc:
                    if not self._recover(exc):
                        break
                    continue
                except SkipFrame as exc:
                    self._skip(exc)
                    continue
                if frame is not None:
                    self._deliver(frame)
        except EndOfStream:
            if self.stats["captured"] == 0 and self.stats["skipped"]:
                self._set_state(FAILED, f"no readable frame: all {self.stats['skipped']} were skipped "
                                        f"({', '.join(sorted(self._skip_reasons))})")
            else:
                self._set_state(FINISHED, None)
        except Exception as exc:  # noqa: BLE001 - the reader must learn why capture stopped, whatever it was
            self._set_state(FAILED, str(exc) or type(exc).__name__)
        finally:
            self._buffer.close()

    def _skip(self, exc: SkipFrame) -> None:
        """Count an unreadable frame; say why the first time each kind of fault is met."""
        self.stats["skipped"] += 1
        if exc.reason not in self._skip_reasons:
            self._skip_reasons.add(exc.reason)
            LOG.warning("%s: skipping unreadable frames (%s); they are counted, not tracked", self.name, exc)

    def _deliver(self, frame: DepthFrame) -> None:
        meta = frame.meta
        meta.setdefault(META_HOST_TIME, time.monotonic())
        meta.setdefault(META_SENSOR_TIME, None)
        meta.setdefault(META_SENSOR_FRAME, None)
        meta[META_INDEX] = self.stats["captured"]
        meta[META_SOURCE] = self.name
        self.stats["captured"] += 1
        self.stats["dropped"] += self._buffer.put(frame, self._stop)

    def _recover(self, lost: DeviceLost) -> bool:
        """Close the lost device and reopen it with exponential back-off; False if told to stop first."""
        self._set_state(LOST, str(lost))
        self.backend.close()
        if not self.backend.reconnectable:
            raise lost
        attempt = 0
        self._set_state(RECONNECTING, str(lost))
        while not self._stop.wait(self.backoff.delay(attempt)):
            try:
                self._info = self.backend.open()
            except HandtrackError as exc:
                self.backend.close()
                self._set_state(RECONNECTING, str(exc))
                attempt += 1
                continue
            self.stats["reconnects"] += 1
            self._set_state(CONNECTED, None)
            return True
        return False

    def _set_state(self, state: str, error: str | None) -> None:
        changed = (state, error) != (self._state, self._error)
        self._state, self._error = state, error
        if changed and self.on_state is not None:
            self.on_state(state, error)
