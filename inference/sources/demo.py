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

from ..camera import NYU, Intrinsics
from ..errors import HandtrackError
from ..frame import META_SENSOR_FRAME, META_SENSOR_TIME, DepthFrame, StreamInfo
from .base import DeviceInfo, EndOfStream, resolve_intrinsics
from .capture import Backend
from .demo_scene import SEQUENCE, DemoScene
from .pacing import Pacer


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
        # More than a frame behind (a busy host): start the schedule anew rather than rush out late frames.
        self._pacer = Pacer(resync_after_s=1.0 / self.fps)

    def open(self) -> StreamInfo:
        if self.scene is None:  # the static background is the only costly part of opening; keep it across opens
            self.scene = DemoScene(self.intrinsics, self.loop_seconds, self.gestures)
        self._k = 0
        self._pacer.restart()
        return StreamInfo(self.intrinsics, self.fps, "synthetic right hand (handtrack demo)")

    def grab(self, timeout: float) -> DepthFrame | None:
        if self.frames is not None and self._k >= self.frames:
            raise EndOfStream(self.name)
        k = self._k
        t = k / self.fps
        if self.live and not self._pacer.wait(t, timeout):
            return None
        depth, _, joints, pose = self.scene.render(t)
        self._k += 1
        return DepthFrame(depth, self.intrinsics, joints, "canonical21", frame_id=f"demo/{k:06d}",
                          meta={META_SENSOR_TIME: t, META_SENSOR_FRAME: k, "pose": pose})

    def close(self) -> None:
        pass


def enumerate_devices() -> list[DeviceInfo]:
    return [DeviceInfo("demo", "demo", "synthetic right hand (no camera needed)", "demo")]
