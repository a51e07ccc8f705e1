"""A recorded session (inference/recording) as a source: `open_source("S.mcap")`, or any path to a session file.

realtime=True (the default) replays at the pace it was recorded, behaving like the camera did (a live source: a
slow reader gets the newest frame and misses the ones in between); realtime=False delivers every frame, in order,
as fast as the reader takes them (benchmarks, re-tracking, training). `camera` picks the stream of a multi-camera
session (its id, e.g. "cam1", or its position; default the first).

Frames are bit-exact with what was recorded, with their recorded intrinsics and depth unit. The device's own
sensor time and frame counter stay in META_SENSOR_TIME / META_SENSOR_FRAME; the original host time and frame
index are under the recording's META_RECORDED_* keys (META_HOST_TIME and META_INDEX describe this replay). The
tracker's predictions made while recording are in meta[META_PREDICTION] (pseudo-labels); `joints_xyz` stays None
because a session has no ground truth.
"""
from __future__ import annotations

from pathlib import Path

from ..frame import META_SENSOR_TIME, DepthFrame, StreamInfo
from ..recording.reader import META_RECORDED_HOST_TIME, META_SESSION_FRAME, SessionReader
from .base import DeviceMissing, EndOfStream, SkipFrame
from .capture import Backend
from .pacing import Pacer

RESYNC_AFTER_S = 0.25  # a replay this far behind its schedule (a busy host) restarts the schedule, as a camera would


class SessionBackend(Backend):
    reconnectable = False

    def __init__(self, path: str | Path, realtime: bool = True, camera: str | int | None = None):
        self.path = Path(path)
        self.live = bool(realtime)
        self.camera_choice = camera
        self.name = f"session:{self.path.name}"
        self.reader: SessionReader | None = None
        self._frames = None
        self._next: DepthFrame | None = None
        self._pacer = Pacer(RESYNC_AFTER_S)

    def open(self) -> StreamInfo:
        self.close()
        if not self.path.is_file():
            raise DeviceMissing(f"no session at {self.path}")
        self.reader = SessionReader(self.path)
        cam = self.reader.camera(self.camera_choice)
        self.name = f"session:{self.path.name}:{cam}"
        self._frames = self.reader.frames(cam)
        self._next = None
        self._pacer.restart()
        self._seq, self._lost = 0, 0  # the next session frame number expected, and frames found missing
        info = self.reader.cameras[cam]
        return StreamInfo(info.intrinsics, info.fps, f"recording of {info.device} ({self.path.name}, {cam})",
                          info.depth_unit_mm)

    def grab(self, timeout: float) -> DepthFrame | None:
        if self._next is None:
            frame = next(self._frames, None)
            if frame is None:
                raise EndOfStream(self.name)
            seq = frame.meta.get(META_SESSION_FRAME)
            if seq is not None:  # the writer numbers each camera's frames 0, 1, 2, ...: a jump is a loss
                self._lost += max(seq - self._seq, 0)
                self._seq = seq + 1
            self._next = frame
        if self._lost:  # frames a damaged chunk held: each counted as a skipped frame, the reason said once
            self._lost -= 1
            raise SkipFrame("frames lost in a damaged part of the session",
                            f"{self.path.name}, before its frame {self._seq - 1}")
        recorded = _recorded_time(self._next)
        if self.live and recorded is not None and not self._pacer.wait(recorded, timeout):
            return None
        frame, self._next = self._next, None
        return frame

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def _recorded_time(frame: DepthFrame) -> float | None:
    """When the frame was captured on the recording's clock: its host arrival time, else the sensor's time."""
    for key in (META_RECORDED_HOST_TIME, META_SENSOR_TIME):
        if frame.meta.get(key) is not None:
            return float(frame.meta[key])
    return None
