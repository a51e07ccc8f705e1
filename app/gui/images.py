"""The GUI's pictures as numpy BGR images (opencv and the runtime's draw helpers; no Qt here).

Depth crops are shown in their normalised form (what the model sees: -1 = the cube's near face, +1 = the far face
and the background) with the same colour map as the live depth, and the skeleton is drawn on a crop through the
crop's own pinhole camera (`CropWindow.intrinsics`), so joints land where the crop shows them.
"""
from __future__ import annotations

import cv2
import numpy as np

from handtrack.inference.camera import Intrinsics, project
from handtrack.inference.crop import crop_window, denormalise_joints
from handtrack.inference.draw import colorize_depth, draw_cube, draw_points, draw_skeleton
from handtrack.inference.tracker import HandResult

NO_SURFACE = 0.99  # normalised depth at or beyond this is the background (+1)


def depth_view(depth_mm: np.ndarray, K: Intrinsics, result: HandResult | None, cube_mm: float,
               near_mm: float, far_mm: float, truth_mm: np.ndarray | None = None) -> np.ndarray:
    """The live depth (turbo colour map over the depth range, missing = black) with the crop cube's outline and
    the 2D skeleton coloured per finger; `truth_mm` (the demo's ground-truth joints) as small white dots."""
    img = colorize_depth(depth_mm, near_mm, far_mm)
    if result is not None and result.present and result.uv is not None:
        draw_cube(img, result.centre_mm, cube_mm, K, color=(255, 255, 255))
        draw_skeleton(img, result.uv, radius=4, thickness=2)
    if truth_mm is not None:
        draw_points(img, project(truth_mm, K), color=(255, 255, 255), radius=2)
    return img


def ground_truth(frame) -> np.ndarray | None:
    """The frame's canonical 21 ground-truth joints (the demo source has them), or None."""
    if frame.joint_set == "canonical21" and frame.joints_xyz is not None:
        return np.asarray(frame.joints_xyz, dtype=np.float64)
    return None


def colorize_crop(norm: np.ndarray) -> np.ndarray:
    """A normalised crop in the live view's colours (near = red .. far = blue); background black."""
    norm = np.asarray(norm, dtype=np.float32)
    # colorize_depth takes positive depths with 0 = missing: shift [-1, 1) to [1, 3).
    return colorize_depth(np.where(norm < NO_SURFACE, norm + 2.0, 0.0), 1.0, 3.0)


def crop_joints_uv(joints_norm: np.ndarray, centre_mm: np.ndarray, K: Intrinsics, cube_mm: float,
                   size: int) -> np.ndarray:
    """Crop pixel coordinates of normalised joints, for a crop of `size` around `centre_mm`."""
    window = crop_window(centre_mm, K, cube_mm, size)
    return project(denormalise_joints(joints_norm, centre_mm, cube_mm), window.intrinsics(K))


def crop_tile(norm: np.ndarray, joints_uv: np.ndarray | None = None, scale: int = 2) -> np.ndarray:
    """A normalised crop, enlarged `scale` times, with the skeleton (crop pixels) over it."""
    S = norm.shape[-1]
    tile = cv2.resize(colorize_crop(norm), (S * scale, S * scale), interpolation=cv2.INTER_NEAREST)
    if joints_uv is not None:
        draw_skeleton(tile, (np.asarray(joints_uv) + 0.5) * scale - 0.5, radius=3, thickness=2)
    return tile


def difference_tile(synth: np.ndarray, crop: np.ndarray, scale: int = 2) -> tuple[np.ndarray, float]:
    """|synthesized - input| where either shows surface (inferno: black = they agree), and its mean there."""
    surface = (synth < NO_SURFACE) | (crop < NO_SURFACE)
    diff = np.abs(synth - crop)
    mean = float(diff[surface].mean()) if surface.any() else 0.0
    gray = np.clip(diff / 1.0, 0, 1) * 255  # a difference of half the cube (1.0 normalised) saturates
    img = cv2.applyColorMap(gray.astype(np.uint8), cv2.COLORMAP_INFERNO)
    img[~surface] = 0
    S = crop.shape[-1]
    img = cv2.resize(img, (S * scale, S * scale), interpolation=cv2.INTER_NEAREST)
    return img, mean


def placeholder(width: int, height: int, text: str) -> np.ndarray:
    """A dark tile with a centred line of text (a panel with nothing to show yet says why)."""
    img = np.full((height, width, 3), 32, np.uint8)
    font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    lines = text.split("\n")
    for i, line in enumerate(lines):
        (w, h), _ = cv2.getTextSize(line, font, size, thick)
        y = height // 2 + (i - (len(lines) - 1) / 2) * (h + 8)
        cv2.putText(img, line, ((width - w) // 2, int(y + h / 2)), font, size, (200, 200, 200), thick, cv2.LINE_AA)
    return img
