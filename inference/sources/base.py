"""The one protocol every depth source speaks, and what each delivered frame carries.

A source is opened with `connect()`, hands out frames with `read()` (blocking: the next frame) or `latest()`
(never blocks: a frame not handed out before, or None), and is closed with `disconnect()`; it is also a context
manager and an iterator (iteration ends with the recording). Frames are the project's `DepthFrame` itself, so the
tracker and every other consumer take them unchanged; what a source adds lives in `DepthFrame.meta` under the META_*
keys of frame.py (a wrapper dataclass would have forced every consumer to unwrap).

Two kinds of source, told apart by `live`:
- live (cameras, the paced demo): the sensor sets the pace; a reader slower than the sensor gets the newest frame
  and the ones in between are dropped (counted in `stats["dropped"]`, visible as gaps in META_INDEX);
- playback (recordings, dataset folders, the unpaced demo): every frame is delivered, in order; the reader sets the
  pace and `latest()` returns the next frame if it is ready.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..camera import PRESETS, Intrinsics
from ..errors import HandtrackError
from ..frame import DepthFrame, StreamInfo

# Values of FrameSource.state.
DISCONNECTED = "disconnected"  # before connect() and after disconnect()
CONNECTED = "connected"        # frames are flowing
LOST = "lost"                  # the device went away (unplugged, stalled); `error` says what happened
RECONNECTING = "reconnecting"  # trying to open it again, with exponential back-off
FINISHED = "finished"          # a recording or dataset has no more frames
FAILED = "failed"              # an unexpected error stopped the capture; `error` says which
STATES = (DISCONNECTED, CONNECTED, LOST, RECONNECTING, FINISHED, FAILED)


class EndOfStream(Exception):
    """A recording or dataset has delivered its last frame (not an error: iteration simply stops)."""


class SkipFrame(Exception):
    """One frame of a source could not be read (a truncated, empty or foreign file): the capture counts it in
    `stats["skipped"]`, says why once per kind of fault, and goes on with the next frame."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class DeviceMissing(HandtrackError):
    """The device (or recording) is not there: not plugged in, wrong serial, no such file."""


class DeviceLost(HandtrackError):
    """A device that was streaming went away (unplugged, powered off, stopped sending frames)."""


class SourceTimeout(HandtrackError):
    """No frame arrived in the time a reader was willing to wait."""


@dataclass(frozen=True)
class DeviceInfo:
    """One device a backend can see. `spec` is the string `open_source` takes to open exactly this device."""
    backend: str
    id: str
    name: str
    spec: str


class FrameSource(ABC):
    """A stream of DepthFrames (mm, OpenCV camera frame) from a camera, a recording, a dataset or the demo."""

    name: str
    live: bool

    @property
    @abstractmethod
    def state(self) -> str:
        """One of STATES."""

    @property
    @abstractmethod
    def error(self) -> str | None:
        """Why the source is lost, reconnecting or failed (None while all is well)."""

    @property
    @abstractmethod
    def info(self) -> StreamInfo:
        """The camera and mode of the open stream (available after connect())."""

    @property
    def intrinsics(self) -> Intrinsics:
        return self.info.intrinsics

    @abstractmethod
    def connect(self) -> "FrameSource":
        """Open the device and start delivering frames; raises HandtrackError (one line) if it is not there."""

    @abstractmethod
    def read(self, timeout: float | None = 10.0) -> DepthFrame:
        """The next frame, waiting for it up to `timeout` seconds (None: forever).

        Raises EndOfStream after the last frame of a recording, SourceTimeout when nothing came in time."""

    @abstractmethod
    def latest(self) -> DepthFrame | None:
        """A frame not handed out before (for a live source the newest one), or None; never blocks."""

    @abstractmethod
    def disconnect(self) -> None:
        """Stop capturing and release the device; safe to call twice."""

    def __enter__(self) -> "FrameSource":
        if self.state == DISCONNECTED:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def __iter__(self):
        while True:
            try:
                yield self.read()
            except EndOfStream:
                return


def resolve_intrinsics(value: Intrinsics | str | None) -> Intrinsics | None:
    """An Intrinsics, or the name of a published calibration (camera.PRESETS), or None."""
    if value is None or isinstance(value, Intrinsics):
        return value
    if isinstance(value, str) and value.lower() in PRESETS:
        return PRESETS[value.lower()]
    raise HandtrackError(f"unknown camera {value!r}: pass an Intrinsics or one of {', '.join(PRESETS)}")
