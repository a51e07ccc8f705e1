"""Pictures for people: colour-mapped depth and a 2D skeleton overlay (opencv only)."""
from __future__ import annotations

import cv2
import numpy as np

from . import skeleton


def colorize_depth(depth_mm: np.ndarray, near: float | None = None, far: float | None = None) -> np.ndarray:
    """BGR image of a depth map (turbo colour map, near = blue); missing pixels are black.

    Without limits, the range is taken from the valid pixels (2nd-98th percentile). Written as three OpenCV
    passes (the GUI colours every live frame: numpy's float temporaries made this 2.5 ms a frame, now ~0.7)."""
    d = np.asarray(depth_mm, dtype=np.float32)
    valid = d > 0
    if near is None or far is None:
        vals = d[valid]
        lo, hi = (np.percentile(vals, [2, 98]) if vals.size else (0.0, 1.0))
        near = lo if near is None else near
        far = hi if far is None else far
    near, far = float(near), float(far)
    scale = 255.0 / max(far - near, 1e-6)
    # 255 at `near` down to 0 at `far`; clipped first so that nothing outside the range wraps around.
    index = cv2.convertScaleAbs(np.clip(d, near, max(far, near)), alpha=-scale, beta=far * scale)
    img = cv2.applyColorMap(index, cv2.COLORMAP_TURBO)
    return cv2.bitwise_and(img, img, mask=valid.view(np.uint8))


def draw_skeleton(img: np.ndarray, uv: np.ndarray, radius: int = 3, thickness: int = 2) -> np.ndarray:
    """Draw 21 canonical joints (pixel coordinates) with bones coloured per finger, in place."""
    uv = np.asarray(uv, dtype=np.float64)
    if not np.all(np.isfinite(uv)):
        return img
    pts = np.round(uv).astype(int)
    for parent, child in skeleton.BONES:
        color = skeleton.FINGER_COLORS_BGR[skeleton.joint_finger(child)]
        cv2.line(img, tuple(pts[parent]), tuple(pts[child]), color, thickness, cv2.LINE_AA)
    for j, p in enumerate(pts):
        finger = skeleton.joint_finger(j)
        color = (255, 255, 255) if finger is None else skeleton.FINGER_COLORS_BGR[finger]
        cv2.circle(img, tuple(p), radius, color, -1, cv2.LINE_AA)
    return img


def draw_points(img: np.ndarray, uv: np.ndarray, color=(255, 255, 255), radius: int = 3) -> np.ndarray:
    """Draw any joint set as dots, in place."""
    for p in np.round(np.asarray(uv)[np.all(np.isfinite(uv), axis=-1)]).astype(int):
        cv2.circle(img, tuple(p), radius, color, -1, cv2.LINE_AA)
    return img


# The 12 edges of a cube as pairs of indices into cube_corners().
CUBE_EDGES = ((0, 1), (2, 3), (0, 2), (1, 3), (4, 5), (6, 7), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7))


def cube_corners(centre_mm: np.ndarray, cube_mm: float) -> np.ndarray:
    """(8, 3) corners of the hand cube (side `cube_mm`, axis-aligned in the camera frame) around `centre_mm`."""
    h = cube_mm / 2
    return np.array([[x, y, z] for z in (-h, h) for y in (-h, h) for x in (-h, h)]) + np.asarray(centre_mm)


def draw_cube(img: np.ndarray, centre_mm: np.ndarray, cube_mm: float, K, color=(255, 255, 255),
              thickness: int = 1) -> np.ndarray:
    """Draw the outline of the hand cube around `centre_mm`, in place: the 12 edges of its projection, so the
    front and back faces show the depth extent."""
    from .camera import project

    corners = cube_corners(centre_mm, cube_mm)
    if np.any(corners[:, 2] <= 1.0):
        return img  # the cube reaches behind the camera: no sensible projection
    pts = np.round(project(corners, K)).astype(int)
    for a, b in CUBE_EDGES:
        cv2.line(img, tuple(pts[a]), tuple(pts[b]), color, thickness, cv2.LINE_AA)
    return img
