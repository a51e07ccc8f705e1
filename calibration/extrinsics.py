"""Extrinsics files: where the depth camera sits relative to a robot's base frame.

One JSON object says how to carry a point from the camera's optical frame (REP-103: x right, y down, z forward)
into a named base frame:  p_base = R @ p_camera + t.  R and t are the camera's pose in the base frame, the same
transform ROS tf returns for lookup_transform(base_frame, camera_frame).

    {
      "format": "handtrack-extrinsics", "version": 1,
      "camera_frame": "camera_depth_optical_frame",
      "base_frame": "base_link",
      "units": "m",                                   # of the translation: "m", "cm" or "mm"
      "rotation": [[0, 0, 1], [-1, 0, 0], [0, -1, 0]],  # 3x3, rows of R ...
      "quaternion": {"x": -0.5, "y": 0.5, "z": -0.5, "w": 0.5},  # ... or a unit quaternion (give one of the two)
      "translation": [0.10, 0.0, 0.60],
      "comment": "free text"                          # optional
    }

Every check failure is a one-line HandtrackError naming the file and what is wrong: unknown or missing keys, frame
names that are not ROS names, a rotation that is not orthonormal or is a reflection (det -1), a quaternion that is
not of unit length, non-finite numbers, unknown units, and a translation so large that its unit is probably wrong.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError

FORMAT = "handtrack-extrinsics"
VERSION = 1
UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001}  # metres per unit
KEYS = {"format", "version", "camera_frame", "base_frame", "units", "rotation", "quaternion", "translation",
        "comment"}
REQUIRED = ("format", "version", "camera_frame", "base_frame", "units", "translation")
# Hand-typed or printed matrices carry ~6 decimals; more disagreement than this means a wrong matrix, not rounding.
ORTHONORMAL_TOLERANCE = 1e-4
QUATERNION_NORM_TOLERANCE = 1e-3
# A camera further than this from its robot's base is almost surely a translation in mm labelled "m".
MAX_TRANSLATION_M = 50.0
FRAME_NAME = re.compile(r"^/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")  # ROS 2 frame/topic name rules


@dataclass(frozen=True)
class Extrinsics:
    camera_frame: str
    base_frame: str
    rotation: np.ndarray        # (3, 3) proper rotation, camera axes expressed in the base frame
    translation_m: np.ndarray   # (3,) camera origin in the base frame, metres

    def camera_mm_to_base_m(self, points_mm: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points in mm -> the same points in the base frame, metres."""
        return np.asarray(points_mm, dtype=np.float64) * 1e-3 @ self.rotation.T + self.translation_m

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "camera_frame": self.camera_frame,
                "base_frame": self.base_frame, "units": "m", "rotation": self.rotation.tolist(),
                "translation": self.translation_m.tolist()}


def load_extrinsics(path: str | os.PathLike) -> Extrinsics:
    """Read and validate an extrinsics file (see the module docstring); one-line HandtrackError if it is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HandtrackError(f"extrinsics file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HandtrackError(f"cannot read extrinsics file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise HandtrackError(f"extrinsics file {path} is not valid JSON: {exc}") from None
    try:
        return parse_extrinsics(data)
    except HandtrackError as exc:
        raise HandtrackError(f"extrinsics file {path}: {exc}") from None


def parse_extrinsics(data) -> Extrinsics:
    """Validate the decoded JSON of an extrinsics file."""
    if not isinstance(data, dict):
        raise HandtrackError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise HandtrackError(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(KEYS))})")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise HandtrackError(f"missing key(s) {', '.join(missing)}")
    if data["format"] != FORMAT:
        raise HandtrackError(f"format is {data['format']!r}, expected {FORMAT!r}")
    if data["version"] != VERSION:
        raise HandtrackError(f"version {data['version']!r} is not supported (this handtrack reads version {VERSION})")
    camera_frame = _frame_name(data, "camera_frame")
    base_frame = _frame_name(data, "base_frame")
    if camera_frame == base_frame:
        raise HandtrackError(f"camera_frame and base_frame are both {camera_frame!r}")
    units = data["units"]
    if units not in UNITS_M:
        raise HandtrackError(f"units {units!r} unknown; use one of {', '.join(UNITS_M)}")
    if ("rotation" in data) == ("quaternion" in data):
        raise HandtrackError("give exactly one of 'rotation' (3x3) and 'quaternion' ({x, y, z, w})")
    rotation = _rotation(data["rotation"]) if "rotation" in data else _quaternion(data["quaternion"])
    translation = _numbers(data["translation"], (3,), "translation") * UNITS_M[units]
    # The largest component first: the norm of a vector near the float limit overflows (with numpy's warning).
    biggest = float(np.abs(translation).max())
    distance = biggest if biggest > MAX_TRANSLATION_M else float(np.linalg.norm(translation))
    if distance > MAX_TRANSLATION_M:
        raise HandtrackError(f"translation is {distance:.3g} m long (units {units!r}); more than "
                             f"{MAX_TRANSLATION_M:g} m usually means the wrong units")
    return Extrinsics(camera_frame, base_frame, rotation, translation)


def _frame_name(data: dict, key: str) -> str:
    name = data[key]
    if not isinstance(name, str) or not FRAME_NAME.match(name):
        raise HandtrackError(f"{key} {name!r} is not a frame name (letters, digits, '_' and '/', "
                             "not starting with a digit)")
    return name


def _numbers(value, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        if isinstance(value, (str, bytes)):
            raise ValueError
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HandtrackError(f"{what} must be numbers of shape {shape}, got {value!r}") from None
    if array.shape != shape:
        raise HandtrackError(f"{what} has shape {array.shape}, expected {shape}")
    if not np.isfinite(array).all():
        raise HandtrackError(f"{what} contains a non-finite number")
    return array


def _rotation(value) -> np.ndarray:
    R = _numbers(value, (3, 3), "rotation")
    error = float(np.abs(R.T @ R - np.eye(3)).max())
    if error > ORTHONORMAL_TOLERANCE:
        raise HandtrackError(f"rotation is not orthonormal (max |R^T R - I| = {error:.2g} > "
                             f"{ORTHONORMAL_TOLERANCE:g})")
    if np.linalg.det(R) < 0:
        raise HandtrackError("rotation has determinant -1: a reflection, not a rotation (check the axis "
                             "conventions: the camera frame is x right, y down, z forward)")
    return R


def _quaternion(value) -> np.ndarray:
    if not isinstance(value, dict) or set(value) != {"x", "y", "z", "w"}:
        raise HandtrackError(f"quaternion must be an object with keys x, y, z, w, got {value!r}")
    q = _numbers([value[k] for k in "xyzw"], (4,), "quaternion")
    norm = float(np.linalg.norm(q))
    if not math.isclose(norm, 1.0, abs_tol=QUATERNION_NORM_TOLERANCE):
        raise HandtrackError(f"quaternion has length {norm:.4g}; expected a unit quaternion")
    x, y, z, w = q / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
