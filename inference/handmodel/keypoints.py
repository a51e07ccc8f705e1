"""Benchmark joint sets as named points on the hand model.

Every keypoint of a joint set (canonical 21, NYU-36/14, ICVL-16, MSRA-21) is attached to one bone of the
kinematic tree with a local offset: `along` is the position along the bone as a fraction of its length (so it
follows the shape's length factors), and `x_mm`, `z_mm` are offsets along the bone's own x and z axes in mm at
the reference hand size (scaled by the shape's `size`; on the palm x also by `palm_width`, as the knuckles are).
A model that predicts one set can therefore be scored on another, and fitting the model to any set's labels
(`handmodel.fit`) recovers the same pose parameters.

- canonical21 and msra21 are the anatomical joint centres, i.e. bone origins and digit tips, exactly
  `Kinematics.joints` (MSRA names the same points in another order).
- nyu36 is calibrated against the real NYU poses (`training.synth.pose_prior.calibrate_nyu_keypoints`) and
  read from `keypoints_nyu.json` beside this file; nyu14 is its evaluation subset.
- icvl16 is defined anatomically and NOT calibrated (no ICVL labels are shipped): the palm point is the palm
  centre of `skeleton.palm_centre`, each digit's root / mid / tip is its MCP / next joint (PIP, thumb IP) / tip.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import skeleton
from ..errors import HandtrackError
from .kinematics import BONE_NAMES, DIGITS, PALM_BONE, Kinematics, digit_bones, forward, palm_centre_local
from .params import NUM_POSE

NYU_JSON = Path(__file__).with_name("keypoints_nyu.json")
# A keypoint this close to the origin of a digit's first bone (or on the palm) moves rigidly with the palm:
# such points seed the global rotation of a fit by Kabsch alignment.
_RIGID_RADIUS_MM = 12.0


@dataclass(frozen=True)
class KeypointSet:
    """Where each named keypoint sits on the model: (J,) bone index, fraction along it, and (J, 2) x/z mm."""
    name: str
    names: tuple[str, ...]
    bone: np.ndarray
    along: np.ndarray
    offset_mm: np.ndarray

    def __post_init__(self):
        n = len(self.names)
        for what, dtype, shape in (("bone", np.int64, (n,)), ("along", np.float64, (n,)),
                                   ("offset_mm", np.float64, (n, 2))):
            arr = np.array(getattr(self, what), dtype=dtype)  # a private, read-only copy: sets are cached
            if arr.shape != shape:
                raise ValueError(f"keypoint set {self.name}: {what} has shape {arr.shape}, expected {shape}")
            arr.setflags(write=False)
            object.__setattr__(self, what, arr)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index, name: str, names: tuple[str, ...] | None = None) -> "KeypointSet":
        """The points `index` of this set, in that order, as set `name` (renamed to `names` if given)."""
        index = list(index)
        return KeypointSet(name, names or tuple(self.names[i] for i in index), self.bone[index], self.along[index],
                           self.offset_mm[index])

    def reference_local(self) -> np.ndarray:
        """(J, 3) each keypoint in its bone's frame, for the reference hand."""
        lengths = _reference_lengths()[self.bone]
        return np.stack([self.offset_mm[:, 0], self.along * lengths, self.offset_mm[:, 1]], -1)

    def palm_rigid(self) -> np.ndarray:
        """(J,) bool: keypoints that move (almost) rigidly with the palm, whatever the articulation."""
        first_segments = [digit_bones(d)[0] for d in DIGITS]
        near_origin = np.linalg.norm(self.reference_local(), axis=-1) < _RIGID_RADIUS_MM
        return (self.bone == PALM_BONE) | (np.isin(self.bone, first_segments) & near_origin)

    # --- JSON (the calibrated NYU set) --------------------------------------------------------------------
    def to_json_dict(self, note: str = "", extra: dict | None = None) -> dict:
        points = {n: {"bone": BONE_NAMES[b], "along": round(float(a), 4), "x_mm": round(float(o[0]), 2),
                      "z_mm": round(float(o[1]), 2)}
                  for n, b, a, o in zip(self.names, self.bone, self.along, self.offset_mm)}
        return {"joint_set": self.name, "note": note, **(extra or {}), "points": points}

    @classmethod
    def from_json_dict(cls, d: dict, names: tuple[str, ...]) -> "KeypointSet":
        pts = d["points"]
        missing = [n for n in names if n not in pts]
        if missing:
            raise HandtrackError(f"keypoint file for {d.get('joint_set')} lacks points {', '.join(missing)}")
        return cls(d["joint_set"], tuple(names), np.array([BONE_NAMES.index(pts[n]["bone"]) for n in names]),
                   np.array([float(pts[n]["along"]) for n in names]),
                   np.array([[float(pts[n]["x_mm"]), float(pts[n]["z_mm"])] for n in names]))


def keypoints(kin: Kinematics, joint_set: str | KeypointSet) -> np.ndarray:
    """(..., J, 3) camera-frame keypoints of a joint set (a name from skeleton.JOINT_SETS, or a KeypointSet)."""
    ks = get_keypoint_set(joint_set) if isinstance(joint_set, str) else joint_set
    local = offset_scales(kin, ks.bone) * np.stack([ks.offset_mm[:, 0], ks.along, ks.offset_mm[:, 1]], -1)
    R = kin.R[..., ks.bone, :, :]
    return kin.origin[..., ks.bone, :] + np.einsum("...jik,...jk->...ji", R, local)


def offset_scales(kin: Kinematics, bones: np.ndarray) -> np.ndarray:
    """(..., len(bones), 3) factors turning (x_mm, along, z_mm) into a point in each bone's frame for this shape:
    the size (times the palm width for x on the palm, as kinematics.forward places the knuckles), the bone
    length, the size."""
    size = kin.shape[..., 0, None]
    x_scale = size * np.where(bones == PALM_BONE, kin.shape[..., 1, None], 1.0)
    return np.stack([x_scale, kin.length[..., bones], np.broadcast_to(size, x_scale.shape)], -1)


def get_keypoint_set(name: str) -> KeypointSet:
    if name not in _BUILDERS:
        raise HandtrackError(f"unknown joint set {name!r}; known: {', '.join(_BUILDERS)}")
    return _BUILDERS[name]()


@lru_cache(maxsize=1)
def _reference_lengths() -> np.ndarray:
    return forward(np.zeros(NUM_POSE)).length


# --- the sets ------------------------------------------------------------------------------------------------
def _joint_point(j: int) -> tuple[int, float]:
    """Canonical joint j as (bone, along): the wrist and bone origins at 0, digit tips at the end of the last."""
    if j == skeleton.WRIST:
        return PALM_BONE, 0.0
    digit, k = skeleton.joint_finger(j), (j - 1) % 4
    bones = digit_bones(digit)
    return (bones[k], 0.0) if k < 3 else (bones[2], 1.0)


def _anatomical(name: str, names: tuple[str, ...], points: list[tuple[int, float]],
                offsets: np.ndarray | None = None) -> KeypointSet:
    bone, along = zip(*points)
    return KeypointSet(name, names, bone, along, np.zeros((len(names), 2)) if offsets is None else offsets)


@lru_cache(maxsize=None)
def _canonical21() -> KeypointSet:
    return _anatomical("canonical21", skeleton.JOINT_NAMES, [_joint_point(j) for j in range(skeleton.NUM_JOINTS)])


@lru_cache(maxsize=None)
def _msra21() -> KeypointSet:
    return _canonical21().subset(skeleton.MSRA21_TO_CANONICAL, "msra21", skeleton.MSRA21_NAMES)


@lru_cache(maxsize=None)
def _icvl16() -> KeypointSet:
    # The palm centre (mean of the wrist and the four MCPs) is a fixed point of the palm bone.
    centre = palm_centre_local()
    palm = (PALM_BONE, centre[1] / _reference_lengths()[PALM_BONE])
    thumb = [skeleton.FINGER_JOINTS["thumb"][k] for k in (1, 2, 3)]  # MCP, IP, tip
    fingers = [skeleton.FINGER_JOINTS[f][k] for f in skeleton.FINGERS[1:] for k in (0, 1, 3)]  # MCP, PIP, tip
    offsets = np.zeros((16, 2))
    offsets[0, 0] = centre[0]
    return _anatomical("icvl16", skeleton.ICVL16_NAMES, [palm] + [_joint_point(j) for j in thumb + fingers],
                       offsets)


@lru_cache(maxsize=None)
def _nyu36() -> KeypointSet:
    if not NYU_JSON.is_file():
        raise HandtrackError(f"no calibrated NYU keypoints at {NYU_JSON}; run `handtrack data fit-prior`")
    return KeypointSet.from_json_dict(json.loads(NYU_JSON.read_text()), skeleton.NYU36_NAMES)


@lru_cache(maxsize=None)
def _nyu14() -> KeypointSet:
    return _nyu36().subset(skeleton.NYU14_FROM_36, "nyu14")


_BUILDERS = {"canonical21": _canonical21, "nyu36": _nyu36, "nyu14": _nyu14, "icvl16": _icvl16, "msra21": _msra21}
assert set(_BUILDERS) == set(skeleton.JOINT_SETS)


def reload_nyu() -> None:
    """Forget the cached NYU sets (after the calibration rewrote the JSON)."""
    _nyu36.cache_clear()
    _nyu14.cache_clear()
