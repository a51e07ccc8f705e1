"""Random scenes like the real frames: a hand on its forearm and upper arm, in front of a torso, head, clutter and
a wall, at 0.35-1.1 m from the camera, seen from the views a camera sees.

Everything is sampled from one numpy Generator so a scene is a pure function of its seed. Scenes are plain
arrays (capsules + planes, camera frame, mm) so the same scene can be re-posed for other views.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import Intrinsics, deproject
from handtrack.inference.handmodel import kinematics, params, surface
from handtrack.inference.handmodel.kinematics import axis_angle_to_matrix, matrix_to_axis_angle

PART_BODY = surface.SCENE_PART        # torso, head, upper arm
PART_CLUTTER = surface.SCENE_PART + 1  # furniture-like blobs behind the person
PART_WALL = surface.SCENE_PART + 2


@dataclass
class Scene:
    pose: np.ndarray      # (29,) hand pose (camera frame)
    shape: np.ndarray     # (8,) hand shape factors
    joints: np.ndarray    # (21, 3) canonical joints, mm
    capsules: np.ndarray  # (N, 8) every capsule of the scene, hand first
    parts: np.ndarray     # (N,) part label per capsule
    planes: np.ndarray    # (M, 4) planes n.p = d
    plane_parts: np.ndarray

    def transformed(self, R: np.ndarray, t: np.ndarray) -> "Scene":
        """The same instant seen by a camera whose frame is p' = R p + t."""
        caps = self.capsules.copy()
        caps[:, 0:3] = caps[:, 0:3] @ R.T + t
        caps[:, 3:6] = caps[:, 3:6] @ R.T + t
        n = self.planes[:, :3] @ R.T
        d = self.planes[:, 3] + n @ t
        pose = self.pose.copy()
        pose[params.ROT] = matrix_to_axis_angle(R @ axis_angle_to_matrix(self.pose[params.ROT]))
        pose[params.TRANS] = R @ self.pose[params.TRANS] + t
        return Scene(pose, self.shape, self.joints @ R.T + t, caps, self.parts,
                     np.column_stack([n, d]), self.plane_parts)

    def mirrored(self) -> "Scene":
        """The mirror image in the camera's x (a right hand becomes a left hand). Capsules are symmetric, so
        mirroring their end points mirrors the surface; `pose` stays the right hand's (it has no left form)."""
        caps, planes, joints = self.capsules.copy(), self.planes.copy(), self.joints.copy()
        caps[:, [0, 3]] *= -1.0
        planes[:, 0] *= -1.0
        joints[:, 0] *= -1.0
        return Scene(self.pose, self.shape, joints, caps, self.parts, planes, self.plane_parts)

    def scaled(self, s: float) -> "Scene":
        """Everything s times larger and s times farther: the same image, every depth times s (what a wrong
        depth unit does to a frame)."""
        caps, planes = self.capsules * s, self.planes.copy()
        planes[:, 3] *= s
        return Scene(self.pose, self.shape, self.joints * s, caps, self.parts, planes, self.plane_parts)

    def without(self, parts: tuple[int, ...]) -> "Scene":
        """The scene with the capsules of these part labels removed (e.g. the hand, keeping the arm)."""
        keep = ~np.isin(self.parts, parts)
        return Scene(self.pose, self.shape, self.joints, self.capsules[keep], self.parts[keep], self.planes,
                     self.plane_parts)


def _rot(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def sample_orientation(rng: np.random.Generator) -> np.ndarray:
    """Hand-to-camera rotation over the views a camera sees: any yaw (palm, side or back towards the camera),
    moderate pitch, fingers mostly up (in-plane roll ~N(0, 35 deg), and any roll 15 % of the time)."""
    rest = axis_angle_to_matrix(params.rest_pose()[params.ROT])
    yaw = rng.uniform(-np.pi, np.pi)
    pitch = rng.uniform(-0.9, 0.9)
    roll = rng.uniform(-np.pi, np.pi) if rng.random() < 0.15 else rng.normal(0.0, np.deg2rad(35))
    return _rot(2, roll) @ _rot(0, pitch) @ _rot(1, yaw) @ rest


def sample_palm_position(rng: np.random.Generator, K: Intrinsics, z_range=(350.0, 1100.0)) -> np.ndarray:
    """Palm centre anywhere in the middle 80 % of the image at a depth in z_range (mm)."""
    z = rng.uniform(*z_range)
    u = rng.uniform(0.1, 0.9) * K.width
    v = rng.uniform(0.1, 0.9) * K.height
    return deproject((u, v), z, K)


def hand_pose(articulation: np.ndarray, shape: np.ndarray, R: np.ndarray, palm: np.ndarray,
              wrist: np.ndarray) -> np.ndarray:
    """Pose vector whose palm centre lands at `palm` with orientation R."""
    pose = np.zeros(params.NUM_POSE)
    pose[params.ROT] = matrix_to_axis_angle(R)
    pose[params.ARTIC] = articulation
    pose[params.WRIST] = wrist
    pose[params.TRANS] = palm - R @ kinematics.palm_centre_local(shape)
    return pose


def _body(rng: np.random.Generator, elbow: np.ndarray, palm_z: float) -> tuple[list, list]:
    """Upper arm from the elbow to a shoulder on a torso behind the hand, and a head on the torso."""
    direction = np.array([rng.normal(0, 0.5), -rng.uniform(0.2, 1.0), rng.uniform(0.3, 1.0)])
    shoulder = elbow + 280.0 * direction / np.linalg.norm(direction)
    r_torso = rng.uniform(135, 175)
    # The person faces the camera, so the torso's centre line is beside the right shoulder (image +x), and the
    # torso stays at least 80 mm behind the palm.
    cx = shoulder[0] + rng.uniform(140, 200)
    cz = max(shoulder[2] + 60.0, palm_z + 80.0 + r_torso)
    top = np.array([cx, shoulder[1] + 60.0, cz])
    bottom = top + np.array([rng.normal(0, 30), rng.uniform(450, 650), rng.normal(0, 40)])
    head = top + np.array([rng.normal(0, 15), -rng.uniform(200, 250), rng.normal(0, 20)])
    r_head = rng.uniform(85, 100)
    caps = [
        [*elbow, *shoulder, 38.0, rng.uniform(42, 50)],
        [*top, *bottom, r_torso, r_torso * rng.uniform(0.9, 1.05)],
        [*head, *head, r_head, r_head],
    ]
    return caps, [PART_BODY] * 3


def _clutter(rng: np.random.Generator, palm: np.ndarray) -> tuple[list, list]:
    caps = []
    for _ in range(rng.integers(0, 3)):
        a = palm + np.array([rng.uniform(-700, 700), rng.uniform(-400, 500), rng.uniform(350, 1200)])
        b = a + rng.normal(0, 200, 3)
        caps.append([*a, *b, rng.uniform(40, 200), rng.uniform(40, 200)])
    return caps, [PART_CLUTTER] * len(caps)


def sample_hand_pose(rng: np.random.Generator, K: Intrinsics, articulation: np.ndarray, shape: np.ndarray,
                     z_range=(350.0, 1100.0)) -> np.ndarray:
    """A pose vector with the given articulation, a random view and the palm somewhere the camera sees it."""
    R = sample_orientation(rng)
    palm = sample_palm_position(rng, K, z_range)
    wrist = rng.uniform(params.POSE_LOWER[params.WRIST], params.POSE_UPPER[params.WRIST]) * 0.6
    return hand_pose(articulation, shape, R, palm, wrist)


def build_scene(rng: np.random.Generator, pose: np.ndarray, shape: np.ndarray,
                body_probability: float = 0.85) -> Scene:
    """The hand in `pose` with, around it, the rest of the person (usually), clutter and a wall."""
    kin = kinematics.forward(pose, shape)
    palm = skeleton.palm_centre(kin.joints)
    caps, parts = surface.capsules(kin)
    caps, parts = [caps], [parts]
    if rng.random() < body_probability:
        elbow = kin.point(kinematics.FOREARM_BONE, np.array([0.0, kin.length[kinematics.FOREARM_BONE], 0.0]))
        body, body_parts = _body(rng, elbow, palm[2])
        caps.append(np.asarray(body))
        parts.append(np.asarray(body_parts, np.int16))
    extra, extra_parts = _clutter(rng, palm)
    if extra:
        caps.append(np.asarray(extra))
        parts.append(np.asarray(extra_parts, np.int16))
    # A wall facing the camera, slightly tilted, well behind everything.
    normal = _rot(0, rng.normal(0, 0.15)) @ _rot(1, rng.normal(0, 0.2)) @ np.array([0.0, 0.0, 1.0])
    wall = np.array([[*normal, rng.uniform(palm[2] + 900, 3500)]])
    return Scene(np.asarray(pose, np.float64), np.asarray(shape, np.float64), kin.joints, np.concatenate(caps),
                 np.concatenate(parts).astype(np.int16), wall, np.array([PART_WALL], np.int16))


def sample_scene(rng: np.random.Generator, K: Intrinsics, articulation: np.ndarray, shape: np.ndarray,
                 z_range=(350.0, 1100.0), body_probability: float = 0.85) -> Scene:
    pose = sample_hand_pose(rng, K, articulation, shape, z_range)
    return build_scene(rng, pose, shape, body_probability)


def orbit_view(rng: np.random.Generator, centre: np.ndarray, max_angle_deg: float = 60.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """A second camera looking at the same point from up to max_angle_deg away: returns (R, t) of p' = R p + t
    that keeps `centre` at the same place in the image (the camera orbits around it)."""
    angle = np.deg2rad(max_angle_deg) * np.sqrt(rng.uniform(0.1, 1.0))
    axis_dir = rng.uniform(0, 2 * np.pi)
    axis = np.array([np.cos(axis_dir), np.sin(axis_dir), 0.0])  # perpendicular to the viewing direction
    R = axis_angle_to_matrix(axis * angle)
    return R, centre - R @ centre
