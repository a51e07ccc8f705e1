"""PrimeSense / Kinect / Xtion / Orbbec-style cameras through OpenNI2 (the `openni` package), live and .oni recordings.

Intrinsics come from the stream's fields of view, as OpenNI2 itself converts depth to world coordinates:
fx = W / (2 tan(hfov / 2)), principal point at (W / 2, H / 2). A device or recording that does not report its
fields of view needs `intrinsics=` (an Intrinsics or a camera.PRESETS name); an explicit value always wins.
Depth comes in 1 mm or 100 um units (the pixel format says which) and leaves as float32 mm, 0 = no measurement.
Mirroring is switched off where the device has it on, so images are in the OpenCV camera frame, not a selfie view.

.oni recordings play in OpenNI2's manual mode (speed -1): the player moves on one frame each time we wait for a
frame, so none is dropped however slow the reader is.
"""
from __future__ import annotations

import math
import os
import sysconfig
import time
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..errors import HandtrackError, require
from ..frame import META_SENSOR_FRAME, META_SENSOR_TIME, DepthFrame, StreamInfo
from .base import DeviceInfo, DeviceLost, DeviceMissing, EndOfStream, resolve_intrinsics
from .capture import Backend

MAX_FPS = 90
_INSTALL_HINT = "apt-get install libopenni2-0 libopenni2-dev (or set OPENNI2_REDIST to the folder of libOpenNI2.so)"


def _library_dirs() -> list[str]:
    """Where libOpenNI2.so may be: $OPENNI2_REDIST, then the system's library folders, Debian's multiarch first."""
    dirs = [os.environ[v] for v in ("OPENNI2_REDIST", "OPENNI2_REDIST64") if os.environ.get(v)]
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs += [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"]
    dirs += ["/usr/lib", "/usr/local/lib", "/lib", "/lib64"]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def load_openni2():
    """The initialised `openni.openni2` module, or a one-line error naming what to install."""
    require("openni", extra="camera", apt="libopenni2-0", feature="OpenNI2 cameras")
    from openni import openni2
    if not openni2.is_initialized():
        try:
            # Note: the wrapper changes the working directory while it loads the library (OpenNI2 finds its
            # drivers relative to it), so this first call belongs in connect(), not in a capture thread.
            openni2.initialize(_library_dirs())
        except Exception as exc:  # the wrapper raises its own InitializationError, or OSError from ctypes
            raise HandtrackError(f"OpenNI2's library libOpenNI2.so was not found or failed to load; install it with "
                                 f"{_INSTALL_HINT}") from exc
    return openni2


def enumerate_devices() -> list[DeviceInfo]:
    """The OpenNI2 cameras plugged in now (an empty list when there are none)."""
    openni2 = load_openni2()
    uris = [u.decode() if isinstance(u, bytes) else str(u) for u in openni2.Device.enumerate_uris()]
    return [DeviceInfo("openni", uri, "OpenNI2 camera", f"openni:{uri}") for uri in uris]


def _depth_unit_mm(openni2, pixel_format) -> float | None:
    return {openni2.PIXEL_FORMAT_DEPTH_1_MM: 1.0, openni2.PIXEL_FORMAT_DEPTH_100_UM: 0.1}.get(pixel_format)


def choose_video_mode(openni2, modes, max_fps: int | None = MAX_FPS):
    """The best depth mode in mm or 100 um: highest frame rate up to max_fps, then the most pixels."""
    usable = [m for m in modes if _depth_unit_mm(openni2, m.pixelFormat) is not None
              and (max_fps is None or m.fps <= max_fps)]
    if not usable:
        return None
    return max(usable, key=lambda m: (m.fps, m.resolutionX * m.resolutionY))


def intrinsics_from_fov(width: int, height: int, hfov: float, vfov: float) -> Intrinsics:
    """OpenNI2's own depth-to-world model as pinhole intrinsics (fields of view in radians)."""
    return Intrinsics(width / (2 * math.tan(hfov / 2)), height / (2 * math.tan(vfov / 2)), width / 2, height / 2,
                      width, height)


class OpenNIBackend(Backend):
    """A live OpenNI2 camera (`uri` None: the first one) or, with `path`, an .oni recording."""

    def __init__(self, uri: str | None = None, path: str | Path | None = None,
                 intrinsics: Intrinsics | str | None = None, max_fps: int = MAX_FPS, stall_timeout: float = 2.0):
        self.uri = uri
        self.path = Path(path) if path is not None else None
        self.live = self.path is None
        self.reconnectable = self.live
        self.name = f"recording:{self.path.name}" if self.path else (f"openni:{uri}" if uri else "openni")
        self.intrinsics = resolve_intrinsics(intrinsics)
        self.max_fps = max_fps
        self.stall_timeout = stall_timeout
        self._device = self._stream = None
        self._unit_mm = 1.0
        self._K: Intrinsics | None = None
        self._frames_in_file: int | None = None
        self._delivered = 0
        self._last_frame_time = 0.0

    # --- opening ----------------------------------------------------------------------------------------
    def open(self) -> StreamInfo:
        openni2 = load_openni2()
        self._device = self._open_device(openni2)
        try:
            return self._start_depth(openni2)
        except Exception:
            self.close()
            raise

    def _open_device(self, openni2):
        OpenNIError = _openni_error()
        if self.path is not None:
            if not self.path.is_file():
                raise DeviceMissing(f"no OpenNI recording at {self.path}")
            try:
                device = openni2.Device.open_file(str(self.path).encode())
            except OpenNIError as exc:
                raise HandtrackError(f"cannot read OpenNI recording {self.path}: {_reason(exc)}") from exc
            # Manual mode: one frame per wait, none dropped; and stop at the end instead of looping.
            device.playback.set_speed(-1.0)
            device.playback.set_repeat_enabled(False)
            return device
        try:
            if self.uri:
                return openni2.Device(self.uri.encode())
            return openni2.Device.open_any()
        except OpenNIError as exc:
            if self.uri:
                raise DeviceMissing(f"cannot open OpenNI2 device {self.uri}: {_reason(exc)}") from exc
            raise DeviceMissing("no OpenNI2 camera found (PrimeSense, Kinect, Xtion): is it plugged in, and can "
                                "this user open it (udev rules)?") from exc

    def _start_depth(self, openni2) -> StreamInfo:
        if not self._device.has_sensor(openni2.SENSOR_DEPTH):
            raise HandtrackError(f"{self.name} has no depth sensor")
        stream = self._stream = self._device.create_depth_stream()
        if self.live:
            mode = choose_video_mode(openni2, stream.get_sensor_info().videoModes, self.max_fps)
            if mode is None:
                raise HandtrackError(f"{self.name} offers no depth mode in mm or 100 um up to {self.max_fps} FPS")
            current = stream.get_video_mode()
            if (mode.pixelFormat, mode.resolutionX, mode.resolutionY, mode.fps) != \
                    (current.pixelFormat, current.resolutionX, current.resolutionY, current.fps):
                try:
                    stream.set_video_mode(mode)
                except _openni_error() as exc:
                    raise HandtrackError(f"{self.name} refused the depth mode {mode.resolutionX}x"
                                         f"{mode.resolutionY}@{mode.fps}: {_reason(exc)}") from exc
        mode = stream.get_video_mode()
        self._unit_mm = _depth_unit_mm(openni2, mode.pixelFormat)
        if self._unit_mm is None:
            raise HandtrackError(f"{self.name} delivers depth as {mode.pixelFormat}, not in mm or 100 um")
        try:
            if stream.get_mirroring_enabled():
                stream.set_mirroring_enabled(False)
        except _openni_error():
            pass  # a device without mirroring: its images are already unmirrored
        self._K = self.intrinsics or self._intrinsics_from_device(stream, mode)
        if (self._K.width, self._K.height) != (mode.resolutionX, mode.resolutionY):
            raise HandtrackError(f"{self.name} streams {mode.resolutionX}x{mode.resolutionY} but the intrinsics given "
                                 f"are for {self._K.width}x{self._K.height}")
        if self.path is not None:
            self._frames_in_file = self._device.playback.get_number_of_frames(stream)
        self._delivered = 0
        stream.start()
        self._last_frame_time = time.monotonic()
        return StreamInfo(self._K, float(mode.fps), f"{self.name} ({mode.resolutionX}x{mode.resolutionY}@{mode.fps})",
                          self._unit_mm)

    def _intrinsics_from_device(self, stream, mode) -> Intrinsics:
        try:
            hfov, vfov = stream.get_horizontal_fov(), stream.get_vertical_fov()
        except _openni_error():
            hfov = vfov = 0.0
        if not (0 < hfov < math.pi and 0 < vfov < math.pi):
            raise HandtrackError(f"{self.name} does not report its field of view; pass intrinsics= (an Intrinsics "
                                 f"or a camera preset name)")
        return intrinsics_from_fov(mode.resolutionX, mode.resolutionY, hfov, vfov)

    # --- frames -----------------------------------------------------------------------------------------
    def grab(self, timeout: float) -> DepthFrame | None:
        openni2 = load_openni2()
        if self._frames_in_file is not None and self._delivered >= self._frames_in_file:
            raise EndOfStream(self.name)
        if openni2.wait_for_any_stream([self._stream], timeout) is None:
            return self._idle()
        frame = self._stream.read_frame()
        host_time = time.monotonic()
        self._last_frame_time = host_time
        # The buffer belongs to OpenNI2 and is reused: view it with its stride, then copy into our float image.
        raw = np.frombuffer(frame.get_buffer_as_uint16(), dtype=np.uint16)
        raw = raw.reshape(frame.height, frame.stride // 2)[:, :frame.width]
        depth = raw.astype(np.float32) * np.float32(self._unit_mm)
        self._delivered += 1
        return DepthFrame(depth, self._K, frame_id=f"{self.name}/{frame.frameIndex}",
                          meta={"host_time": host_time, META_SENSOR_TIME: frame.timestamp * 1e-6,
                                META_SENSOR_FRAME: int(frame.frameIndex), "depth_unit_mm": self._unit_mm})

    def _idle(self) -> None:
        quiet = time.monotonic() - self._last_frame_time
        if quiet < self.stall_timeout:
            return None
        if not self.live:
            # A recording whose frame count was not stored ends when the player stops producing.
            raise EndOfStream(self.name)
        who = f"OpenNI2 camera {self.uri}" if self.uri else "the OpenNI2 camera"
        raise DeviceLost(f"{who} sent no frame for {self.stall_timeout:g} s (unplugged?)")

    def close(self) -> None:
        stream, self._stream = self._stream, None
        device, self._device = self._device, None
        for step in ((stream.stop, stream.close) if stream is not None else ()) + \
                ((device.close,) if device is not None else ()):
            try:
                step()
            except Exception:  # noqa: BLE001 - releasing a device that is already gone must not fail
                pass


def _openni_error() -> type[Exception]:
    from openni.utils import OpenNIError  # only importable with the optional `openni` package, after load_openni2
    return OpenNIError


def _reason(exc) -> str:
    """OpenNIError carries OpenNI2's own message as bytes in its args; keep just that line."""
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, bytes) and arg:
            return arg.decode(errors="replace").strip()
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
