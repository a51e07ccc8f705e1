"""The depth frame and what travels with it, in one place for every module that makes or reads frames.

Readers (datasets/), sources (sources/) and recordings (recording/) all produce a `DepthFrame`; the tracker, the
recorder and the stream consume it. What a source learns about each frame (its index, arrival and sensor time,
where it came from) rides in `DepthFrame.meta` under the META_* keys below, and what it learns about the stream as
a whole is its `StreamInfo`. Keeping these here, rather than with their first user, lets the recorder read and
write frames without importing the sources or the dataset readers that in turn use it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .camera import Intrinsics

# Keys every source writes into DepthFrame.meta.
META_INDEX = "frame_index"    # int: frames captured since connect(), from 0, counting dropped ones
META_HOST_TIME = "host_time"  # float: time.monotonic() seconds when the frame reached this process
META_SENSOR_TIME = "sensor_time"  # float | None: the device's own timestamp in seconds (its clock, its epoch)
META_SENSOR_FRAME = "sensor_frame"  # int | None: the device's own frame counter, where it has one
META_SOURCE = "source"        # str: the name of the source that delivered the frame


@dataclass
class DepthFrame:
    """A depth frame in the project's conventions.

    depth_mm: (H, W) float32, millimetres, 0 = no measurement.
    joints_xyz: (J, 3) mm in the OpenCV camera frame (x right, y down, z forward), or None when unlabelled.
    joint_set: name of the joint set of `joints_xyz` (a key of skeleton.JOINT_SETS), or None.
    meta: what the source knows about this frame (the META_* keys above, and whatever else a source adds).
    """
    depth_mm: np.ndarray
    intrinsics: Intrinsics
    joints_xyz: np.ndarray | None = None
    joint_set: str | None = None
    frame_id: str = ""
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StreamInfo:
    """What a source learned when it opened its device: the depth camera and its mode."""
    intrinsics: Intrinsics
    fps: float | None
    device: str                 # human-readable, e.g. "Intel RealSense D435 (serial 123456)"
    depth_unit_mm: float | None = None  # millimetres per raw depth unit, where the device has raw units


def frame_time(frame: DepthFrame) -> float:
    """The frame's time in seconds: the sensor's clock where the source gives one (the steadiest for
    filtering), else when the frame reached this process, else now."""
    meta = frame.meta if isinstance(frame.meta, dict) else {}
    for key in (META_SENSOR_TIME, META_HOST_TIME):
        if meta.get(key) is not None:
            return float(meta[key])
    return time.monotonic()
