"""Intel RealSense through pyrealsense2: live cameras and recordings (.bag, .db3).

Both open the depth sensor directly (not rs.pipeline): its frame callback copies each frame into a small buffer that
grab() reads. Live, that buffer keeps the newest frame (the USB thread never waits on us). For a recording, playback
is set to non-real-time and the callback blocks while the buffer is full, which holds librealsense's reader back:
every recorded frame arrives, in order, at the reader's pace.

Intrinsics and the depth unit always come from the device or the file (profile intrinsics, depth sensor scale); the
depth comes out as float32 mm with 0 = no measurement. librealsense's pixel convention (integer coordinates at pixel
centres) is the project's, so its fx, fy, ppx, ppy are used as they are; lens distortion is not modelled (the D400
depth stream has none) but its model name is kept in StreamInfo.device.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..errors import HandtrackError, require
from ..frame import META_HOST_TIME, META_SENSOR_FRAME, META_SENSOR_TIME, DepthFrame, StreamInfo
from .base import DeviceInfo, DeviceLost, DeviceMissing, EndOfStream
from .buffer import FrameBuffer
from .capture import Backend

MAX_FPS = 90  # the fastest depth mode of the D400 family; above it the tracker cannot keep up anyway


def load_pyrealsense2():
    return require("pyrealsense2", extra="camera", apt="libusb-1.0-0", feature="Intel RealSense cameras and recordings")


def choose_depth_profile(profiles, width: int | None = None, height: int | None = None, fps: int | None = None,
                         max_fps: int | None = MAX_FPS):
    """The best z16 depth mode: the highest frame rate up to max_fps, then the most pixels; width, height and fps
    narrow the choice when given. Raises HandtrackError listing the modes when none fits."""
    rs = load_pyrealsense2()
    depth = [p.as_video_stream_profile() for p in profiles
             if p.stream_type() == rs.stream.depth and p.format() == rs.format.z16 and p.is_video_stream_profile()]
    fits = [p for p in depth
            if (width is None or p.width() == width) and (height is None or p.height() == height)
            and (fps is None or p.fps() == fps) and (max_fps is None or p.fps() <= max_fps)]
    if not fits:
        modes = ", ".join(f"{w}x{h}@{f}" for w, h, f in sorted({(p.width(), p.height(), p.fps()) for p in depth}))
        wanted = f"{width or 'any'}x{height or 'any'}@{fps or f'<={max_fps}'}"
        raise HandtrackError(f"no RealSense depth mode {wanted} (the device has: {modes or 'none'})")
    return max(fits, key=lambda p: (p.fps(), p.width() * p.height()))


def intrinsics_of(profile) -> Intrinsics:
    i = profile.get_intrinsics()
    return Intrinsics(float(i.fx), float(i.fy), float(i.ppx), float(i.ppy), int(i.width), int(i.height))


def enumerate_devices() -> list[DeviceInfo]:
    """The RealSense cameras plugged in now (an empty list when there are none)."""
    rs = load_pyrealsense2()
    found = []
    for dev in rs.context().query_devices():
        serial = dev.get_info(rs.camera_info.serial_number) if dev.supports(rs.camera_info.serial_number) else ""
        name = dev.get_info(rs.camera_info.name) if dev.supports(rs.camera_info.name) else "RealSense"
        found.append(DeviceInfo("realsense", serial, name, f"realsense:{serial}" if serial else "realsense"))
    return found


class _DepthSensorStream(Backend):
    """What the camera and the recording share: the depth sensor's callback feeding grab()."""

    def __init__(self):
        self._sensor = None
        self._buffer: FrameBuffer | None = None
        self._closing = threading.Event()
        self._unit_mm = 1.0
        self._K: Intrinsics | None = None
        self._last_frame_time = 0.0

    def _start(self, sensor, profile) -> StreamInfo:
        rs = load_pyrealsense2()
        self._K = intrinsics_of(profile)
        # Metres per raw unit, as the device reports it (1 mm on D400 by default, 1/8 mm on the SR300/SR305).
        self._unit_mm = float(sensor.as_depth_sensor().get_depth_scale()) * 1000.0
        self._closing.clear()
        self._buffer = FrameBuffer(capacity=2 if self.live else 8, drop_oldest=self.live)
        try:
            sensor.open(profile)
            self._sensor = sensor
            sensor.start(self._on_frame)
        except RuntimeError as exc:
            raise HandtrackError(f"{self.name}: cannot start the depth stream ({exc})") from exc
        self._last_frame_time = time.monotonic()
        model = profile.get_intrinsics().model
        device_name = sensor.get_info(rs.camera_info.name) if sensor.supports(rs.camera_info.name) else "depth"
        return StreamInfo(self._K, float(profile.fps()), f"{self.name} ({device_name}, {profile.width()}x"
                          f"{profile.height()}@{profile.fps()}, distortion {model.name})", self._unit_mm)

    def _on_frame(self, frame) -> None:
        """librealsense's thread: copy the pixels out (the frame is recycled) and hand them over."""
        raw = np.asanyarray(frame.get_data()).copy()
        item = (raw, frame.get_timestamp(), frame.get_frame_number(), frame.get_frame_timestamp_domain().name,
                time.monotonic())
        self._buffer.put(item, self._closing)

    def grab(self, timeout: float) -> DepthFrame | None:
        item = self._buffer.get(timeout)
        if item is None:
            return self._idle()
        raw, stamp_ms, number, clock, host_time = item
        self._last_frame_time = time.monotonic()
        depth = raw.astype(np.float32) * np.float32(self._unit_mm)
        return DepthFrame(depth, self._K, frame_id=f"{self.name}/{number}",
                          meta={META_HOST_TIME: host_time, META_SENSOR_TIME: stamp_ms / 1000.0,
                                META_SENSOR_FRAME: int(number), "sensor_clock": clock,
                                "depth_unit_mm": self._unit_mm})

    def _idle(self) -> None:
        """Called when no frame came within grab's timeout: return None, or raise DeviceLost / EndOfStream."""
        return None

    def close(self) -> None:
        self._closing.set()
        if self._buffer is not None:
            self._buffer.close()
        sensor, self._sensor = self._sensor, None
        if sensor is not None:
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError:
                    pass  # already stopped, or the device is gone: nothing left to release


class RealSenseCamera(_DepthSensorStream):
    """A live RealSense camera (the first one found, or the one with `serial`)."""
    live = True
    reconnectable = True

    def __init__(self, serial: str | None = None, width: int | None = None, height: int | None = None,
                 fps: int | None = None, max_fps: int = MAX_FPS, stall_timeout: float = 2.0):
        super().__init__()
        self.serial = str(serial) if serial else None
        self.name = f"realsense:{self.serial}" if self.serial else "realsense"
        self.mode = dict(width=width, height=height, fps=fps, max_fps=max_fps)
        self.stall_timeout = stall_timeout
        self._ctx = None

    def open(self) -> StreamInfo:
        rs = load_pyrealsense2()
        self._ctx = rs.context()
        device = self._find(rs, self._ctx)
        # Once found, stick to this camera's serial, so a reconnection cannot pick up another one.
        self.serial = device.get_info(rs.camera_info.serial_number)
        self.name = f"realsense:{self.serial}"
        try:
            sensor = device.first_depth_sensor()
        except RuntimeError as exc:
            raise HandtrackError(f"RealSense camera {self.serial} has no depth sensor") from exc
        return self._start(sensor, choose_depth_profile(sensor.get_stream_profiles(), **self.mode))

    def _find(self, rs, ctx):
        # Only devices with a depth sensor (a T265 tracking camera, say, has none).
        devices = [d for d in ctx.query_devices() if any(s.is_depth_sensor() for s in d.query_sensors())]
        serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
        if self.serial is None and devices:
            return devices[0]
        if self.serial in serials:
            return devices[serials.index(self.serial)]
        if self.serial is None:
            raise DeviceMissing("no RealSense camera found: is it plugged in (USB 3), and may this user open it "
                                "(udev rules)?")
        raise DeviceMissing(f"no RealSense camera with serial {self.serial} "
                            f"(connected: {', '.join(serials) if serials else 'none'})")

    def _idle(self) -> None:
        # An unplugged camera just goes quiet; after stall_timeout without frames, find out whether it is gone.
        if time.monotonic() - self._last_frame_time < self.stall_timeout:
            return None
        rs = load_pyrealsense2()
        present = any(d.get_info(rs.camera_info.serial_number) == self.serial for d in self._ctx.query_devices())
        if not present:
            raise DeviceLost(f"RealSense camera {self.serial} was unplugged")
        raise DeviceLost(f"RealSense camera {self.serial} sent no frame for {self.stall_timeout:g} s")


class RealSenseRecording(_DepthSensorStream):
    """A RealSense recording (the ROS2 .db3 that librealsense 2.59's recorder writes, or an older ROS1 .bag), played
    back not in real time: every frame, in order, at the reader's pace."""
    live = False
    reconnectable = False

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.name = f"recording:{self.path.name}"
        self._ctx = None
        self._playback = None
        self._received = self._stopped_before = False
        self._opened_at = 0.0

    def open(self) -> StreamInfo:
        if not self.path.is_file():
            raise DeviceMissing(f"no RealSense recording at {self.path}")
        rs = load_pyrealsense2()
        self._ctx = rs.context()
        try:
            device = self._ctx.load_device(str(self.path))
        except RuntimeError as exc:
            raise HandtrackError(f"cannot read RealSense recording {self.path}: {exc}") from exc
        self._playback = device.as_playback()
        self._playback.set_real_time(False)
        try:
            sensor = device.first_depth_sensor()
        except RuntimeError as exc:
            raise HandtrackError(f"RealSense recording {self.path} has no depth stream") from exc
        self._received = self._stopped_before = False
        self._opened_at = time.monotonic()
        return self._start(sensor, choose_depth_profile(sensor.get_stream_profiles(), max_fps=None))

    def _on_frame(self, frame) -> None:
        self._received = True
        super()._on_frame(frame)

    def _idle(self) -> None:
        rs = load_pyrealsense2()
        stopped = self._playback.current_status() == rs.playback_status.stopped and not len(self._buffer)
        # Playback is 'stopped' also for a moment before it starts, so trust it only once a frame came (or after a
        # while), and only when two idle checks in a row see it, so a last frame still on its way is not cut off.
        started = self._received or time.monotonic() - self._opened_at > 2.0
        if stopped and started and self._stopped_before:
            raise EndOfStream(self.name)
        self._stopped_before = stopped and started
        return None

    def close(self) -> None:
        super().close()
        if self._ctx is not None:
            try:
                self._ctx.unload_device(str(self.path))
            except RuntimeError:
                pass
            self._ctx = None
