"""The demo's scene: a right hand going smoothly through natural gestures in front of a person, as a function of time.

Everything is a pure function of t (seconds), periodic with `loop_seconds`, so frame k of the demo is always the
same picture and the loop has no seam. The gestures are written out below as joint angles (degrees) rather than
drawn from the training code's pose prior, which the runtime may not import; tests check them against that prior.
The person (torso, head, upper arm) follows the layout of training/synth/scene.py: it faces the camera, the hand is
held up in front of the right shoulder, the torso sits beside it at least ~12 cm behind the palm, a wall behind.

Rendering keeps what does not move (torso, head, wall: most of the pixels, and the full-frame plane) in a background
image made once; each frame copies it and z-buffers only the moving capsules (hand, forearm, upper arm) over it.
"""
from __future__ import annotations

import numpy as np

from ..camera import NYU, Intrinsics
from ..errors import HandtrackError
from ..handmodel import kinematics, params, surface
from ..handmodel.kinematics import axis_angle_to_matrix, matrix_to_axis_angle
from ..handmodel.render import render_capsules, render_planes

PART_BODY = surface.SCENE_PART
PART_WALL = surface.SCENE_PART + 2


def hand_articulation(thumb, index, middle, ring, pinky) -> np.ndarray:
    """Articulation (21,) in radians from degrees: thumb (cmc flex, cmc abd, mcp flex, mcp abd, ip flex), then per
    finger (mcp abd, mcp flex, pip flex, dip flex), as params.POSE_NAMES orders them."""
    return np.deg2rad(np.array([*thumb, *index, *middle, *ring, *pinky], dtype=np.float64))


_CURLED = (0, 70, 80, 40)  # a finger folded into the palm
_CURLED_PINKY = (0, 70, 75, 40)
_THUMB_OVER = (20, 20, 20, 0, 40)  # the thumb laid over the curled index and middle fingers
# The thumb angles were searched for so that its tip lands where the gesture puts it (over the curled fingers in a
# fist, on the index tip in a pinch), then checked by eye from the front and both sides. All but "point" and
# "victory" are at least as likely under the NYU-fitted pose prior of the training data as 1 in 1000 of its own
# samples (tests/test_sources.py checks it); those two are far outside it, because NYU holds almost no hands with
# one or two fingers out, so the shipped models have seen few such poses. They stay in the loop because people make
# them all the time; `gestures=` picks a subset.
GESTURES: dict[str, np.ndarray] = {
    "open": hand_articulation((0, 15, 5, 0, 5), (6, 5, 8, 5), (0, 5, 8, 5), (-6, 5, 8, 5), (-12, 8, 10, 5)),
    "relaxed": hand_articulation((15, 5, 10, 0, 15), (2, 20, 30, 15), (0, 25, 35, 20), (-2, 30, 40, 20), (-5, 35, 45, 25)),
    "fist": hand_articulation(_THUMB_OVER, _CURLED, _CURLED, _CURLED, _CURLED_PINKY),
    "point": hand_articulation(_THUMB_OVER, (0, 5, 5, 5), _CURLED, _CURLED, _CURLED_PINKY),
    "victory": hand_articulation(_THUMB_OVER, (12, 5, 5, 5), (-8, 5, 5, 5), _CURLED, _CURLED_PINKY),
    "pinch": hand_articulation((10, 25, 20, 0, 10), (0, 40, 50, 25), (0, 20, 25, 15), (-4, 15, 20, 10), (-8, 15, 20, 10)),
    "spread": hand_articulation((-15, -10, 0, 0, 0), (18, 0, 3, 2), (2, 0, 3, 2), (-14, 0, 3, 2), (-22, 0, 3, 2)),
    "grasp": hand_articulation((25, 25, 15, 0, 20), (0, 40, 55, 30), (0, 45, 55, 30), (0, 45, 55, 30), (0, 50, 55, 30)),
}
SEQUENCE = ("open", "relaxed", "fist", "point", "victory", "pinch", "spread", "grasp")


def _smootherstep(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero velocity and acceleration at both ends, so gestures blend without jerks."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def _rot(axis: int, angle: float) -> np.ndarray:
    r = np.zeros(3)
    r[axis] = angle
    return axis_angle_to_matrix(r)


class DemoScene:
    """The hand, the person and the wall at time t, rendered into a camera of any intrinsics (default: the
    640x480 PrimeSense/Kinect calibration of NYU)."""

    def __init__(self, intrinsics: Intrinsics = NYU, loop_seconds: float = 24.0, gestures=SEQUENCE,
                 hold: float = 0.45, shape: np.ndarray | None = None, palm_mm=(-60.0, 20.0, 520.0),
                 library: dict[str, np.ndarray] | None = None):
        """library: more gestures (name -> articulation, radians) that `gestures` may name beside GESTURES."""
        self.library = {**GESTURES, **(library or {})}
        unknown = [g for g in gestures if g not in self.library]
        if unknown or not gestures:
            raise HandtrackError(f"unknown demo gesture(s) {', '.join(map(repr, unknown))}: "
                                 f"choose from {', '.join(self.library)}")
        self.K = intrinsics
        self.loop_seconds = float(loop_seconds)
        self.gestures = tuple(gestures)
        self.hold = hold  # fraction of each gesture's slot spent holding it before blending into the next
        self.shape = params.default_shape() if shape is None else np.asarray(shape, np.float64)
        self.palm = np.asarray(palm_mm, np.float64)
        self._rest = axis_angle_to_matrix(params.rest_pose()[params.ROT])
        self._palm_local = kinematics.palm_centre_local(self.shape)
        self.shoulder, body = self._body()
        self.background, self.background_labels = self._render_static(body)

    # --- motion -----------------------------------------------------------------------------------------
    def _wave(self, t: float, cycles: int, phase: float) -> float:
        """A sine with a whole number of cycles per loop: every motion ends where it began."""
        return float(np.sin(2 * np.pi * cycles * t / self.loop_seconds + phase))

    def articulation(self, t: float) -> np.ndarray:
        n = len(self.gestures)
        u = (t % self.loop_seconds) / (self.loop_seconds / n)
        i = int(u) % n
        a, b = self.library[self.gestures[i]], self.library[self.gestures[(i + 1) % n]]
        w = _smootherstep(((u - int(u)) - self.hold) / (1.0 - self.hold))
        return (1 - w) * a + w * b

    def pose_at(self, t: float) -> np.ndarray:
        """Pose vector (29,) at time t: the gesture of the moment, the palm wandering over ~18 x 10 x 14 cm and the
        hand turning up to ~35 deg (yaw), 20 deg (pitch) and 20 deg (roll) about its rest view, palm to camera."""
        w = self._wave
        R = (_rot(2, np.deg2rad(20) * w(t, 1, 2.0)) @ _rot(0, np.deg2rad(20) * w(t, 3, 0.0))
             @ _rot(1, np.deg2rad(35) * w(t, 2, 0.3)) @ self._rest)
        palm = self.palm + np.array([90 * w(t, 2, 0.0), 50 * w(t, 3, 0.5), 70 * w(t, 1, 1.0)])
        pose = np.zeros(params.NUM_POSE)
        pose[params.ROT] = matrix_to_axis_angle(R)
        pose[params.ARTIC] = self.articulation(t)
        pose[params.WRIST] = np.deg2rad([15 * w(t, 2, 1.3), 10 * w(t, 3, 2.1)])
        pose[params.TRANS] = palm - R @ self._palm_local
        return pose

    # --- geometry ---------------------------------------------------------------------------------------
    def _body(self) -> tuple[np.ndarray, np.ndarray]:
        """The static part of the person: torso and head capsules, and the shoulder the upper arm hangs from."""
        shoulder = self.palm + np.array([-20.0, 150.0, 300.0])
        r_torso = 155.0
        # The torso's front stays >= 16 cm behind the nearest the palm comes (its z swings by 7 cm).
        top = np.array([shoulder[0] + 170.0, shoulder[1] + 60.0,
                        max(shoulder[2] + 60.0, self.palm[2] + 230.0 + r_torso)])
        bottom = top + np.array([0.0, 560.0, 10.0])
        head = top + np.array([0.0, -225.0, 5.0])
        caps = np.array([[*top, *bottom, r_torso, r_torso * 0.95], [*head, *head, 92.0, 92.0]])
        return shoulder, caps

    def _render_static(self, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        depth = np.zeros((self.K.height, self.K.width), np.float32)
        labels = np.zeros((self.K.height, self.K.width), np.int16)
        render_planes(np.array([[0.0, 0.0, 1.0, self.palm[2] + 1300.0]]), self.K, np.array([PART_WALL]), depth, labels)
        render_capsules(body, self.K, np.full(len(body), PART_BODY), depth, labels)
        return depth, labels

    def moving_capsules(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Capsules (N, 8) and part labels of everything that moves (hand, forearm, upper arm), and the joints."""
        kin = kinematics.forward(pose, self.shape)
        caps, parts = surface.capsules(kin)
        elbow = kin.point(kinematics.FOREARM_BONE, np.array([0.0, kin.length[kinematics.FOREARM_BONE], 0.0]))
        upper_arm = np.array([[*elbow, *self.shoulder, 38.0, 46.0]])
        return (np.concatenate([caps, upper_arm]), np.concatenate([parts, [PART_BODY]]).astype(np.int16),
                kin.joints)

    def render(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(depth mm float32, part labels int16, joints (21, 3) mm, pose (29,)) at time t."""
        pose = self.pose_at(t)
        caps, parts, joints = self.moving_capsules(pose)
        depth, labels = self.background.copy(), self.background_labels.copy()
        render_capsules(caps, self.K, parts, depth, labels)
        return depth, labels, joints, pose
