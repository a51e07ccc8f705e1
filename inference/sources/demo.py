"""`demo`: the source that needs no camera. A synthetic right hand (the project's hand model, ray cast by the numba
renderer) goes through natural gestures in front of a person, with its 21 ground-truth joints on every frame
(DepthFrame.joints_xyz, MediaPipe order, mm) so the tracker's accuracy can be checked live.

How it reaches >= 90 FPS at 640x480: every frame is rendered at the full sensor size, but only what moves is
rendered per frame. The torso, head and wall (most of the pixels, and the one primitive that costs a pass over the
whole image) are rendered once at connect(); each frame copies that background and z-buffers the ~30 moving capsules
(hand, forearm, upper arm), whose cost the renderer bounds by their image boxes. Measured on a 2-core machine shared
with a training run: ~2.1 ms a frame (0.8 ms pose and kinematics, 1.0 ms ray casting, the rest copies), ~420-470
frames/s through read(); rendering the whole scene from scratch would take ~2.8 ms instead of ~1 ms. That is several
times what is needed, so nothing is pre-rendered: a pre-rendered loop would cost 1.2 MB per frame (~2.6 GB for the
24 s loop at 90 FPS) and a long start-up, for no gain.

Timing: with realtime=True (the default) the demo behaves like a camera: frames are due at `fps` on the host clock,
a slow reader gets the newest and misses the rest. With realtime=False it is a playback source: every frame, in
order, as fast as the reader takes them (benchmarks, accuracy runs); `frames` then bounds the run. Frame k always
shows the scene at t = k / fps (its META_SENSOR_TIME), so runs are reproducible whatever the host's speed.
"""
from __future__ import annotations

import time

from ..camera import NYU, Intrinsics
from ..datasets.base import DepthFrame
from ..errors import HandtrackError
from .base import META_SENSOR_FRAME, META_SENSOR_TIME, DeviceInfo, EndOfStream, StreamInfo, resolve_intrinsics
from .capture import Backend
from .demo_scene import SEQUENCE, DemoScene


class DemoBackend(Backend):
    reconnectable = False

    def __init__(self, fps: float = 30.0, realtime: bool = True, intrinsics: Intrinsics | str = NYU,
                 loop_seconds: float = 24.0, frames: int | None = None, gestures=SEQUENCE):
        if not fps > 0:
            raise HandtrackError(f"demo fps must be positive, got {fps}")
        self.name = "demo"
        self.fps = float(fps)
        self.live = bool(realtime)
        self.intrinsics = resolve_intrinsics(intrinsics)
        self.loop_seconds = loop_seconds
        self.frames = frames
        self.gestures = tuple(gestures)
        self.scene: DemoScene | None = None
        self._k = 0
        self._t0 = 0.0

    def open(self) -> StreamInfo:
        if self.scene is None:  # the static background is the only costly part of opening; keep it across opens
            self.scene = DemoScene(self.intrinsics, self.loop_seconds, self.gestures)
        self._k = 0
        self._t0 = time.monotonic()
        return StreamInfo(self.intrinsics, self.fps, "synthetic right hand (handtrack demo)")

    def grab(self, timeout: float) -> DepthFrame | None:
        if self.frames is not None and self._k >= self.frames:
            raise EndOfStream(self.name)
        if self.live and not self._wait_for_due_time(timeout):
            return None
        k = self._k
        t = k / self.fps
        depth, _, joints, pose = self.scene.render(t)
        self._k += 1
        return DepthFrame(depth, self.intrinsics, joints, "canonical21", frame_id=f"demo/{k:06d}",
                          meta={META_SENSOR_TIME: t, META_SENSOR_FRAME: k, "pose": pose})

    def _wait_for_due_time(self, timeout: float) -> bool:
        now = time.monotonic()
        due = self._t0 + self._k / self.fps
        if due - now > timeout:
            time.sleep(timeout)
            return False
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0 / self.fps:
            # Behind by more than a frame (a busy host): restart the schedule here instead of rushing out a burst
            # of late frames, as a camera whose frames nobody collected would.
            self._t0 = now - self._k / self.fps
        return True

    def close(self) -> None:
        pass


def enumerate_devices() -> list[DeviceInfo]:
    return [DeviceInfo("demo", "demo", "synthetic right hand (no camera needed)", "demo")]
