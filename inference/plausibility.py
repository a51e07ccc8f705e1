"""Per-joint plausibility of a 3D hand pose against the depth image it came from: a model-free confidence.

A joint inside a finger must sit a little BEHIND the surface the camera sees at its pixel: never in front of
it (there would be no skin in front of the joint), and not much further behind than a hand is thick. For
joint j at (x, y, z) mm, projecting to pixel (u, v) = (fx x / z + cx, fy y / z + cy):

    d_obs = min { depth[v', u'] > 0 : |u' - round(u)| <= r, |v' - round(v)| <= r }   (r = window // 2)
    res_j = z - d_obs                      positive: the joint lies behind the visible surface
    e_j   = max(0, -front_tol - res_j) + max(0, res_j - max_thickness)
    s_j   = exp(-0.5 * (e_j / softness)^2)                       in (0, 1]

with front_tol = 10 mm, max_thickness = 40 mm, softness = 10 mm by default. The window minimum makes the score
robust to single-pixel noise and holes and, at a finger's silhouette, picks the finger rather than the
background behind it. s_j = 0 when the joint is not finite, not in front of the camera, projects outside the
image, or its window holds no valid depth. A joint that projects onto the background (or a far body) has a
surface far BEHIND it, i.e. a large negative residual, and scores ~0 through the same formula.
The frame score is the mean of the s_j.

What it can and cannot say: a high score means the depth supports the joint; a joint hidden behind other
fingers (self-occlusion) also scores low, because the camera cannot confirm it. Cost: one gather of
J x window^2 pixels, ~20 us for 21 joints.
"""
from __future__ import annotations

import numpy as np

from .camera import Intrinsics

FRONT_TOL_MM = 10.0
MAX_THICKNESS_MM = 40.0
SOFTNESS_MM = 10.0
WINDOW = 5


def surface_residual(joints_xyz: np.ndarray, depth_mm: np.ndarray, K: Intrinsics, window: int = WINDOW) -> np.ndarray:
    """(J,) joint depth minus the nearest observed depth around its pixel, mm; NaN where there is none.

    The "nearest" surface is the one closest to the camera among the valid pixels of a window x window
    neighbourhood of the projected pixel (see the module docstring).
    """
    xyz = np.asarray(joints_xyz, dtype=np.float64).reshape(-1, 3)
    h, w = depth_mm.shape
    out = np.full(len(xyz), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = xyz[:, 2]
        u = K.fx * xyz[:, 0] / z + K.cx
        v = K.fy * xyz[:, 1] / z + K.cy
        # Comparisons with NaN are False, so non-finite joints fall out here too.
        ok = (z > 0) & (u > -0.5) & (u < w - 0.5) & (v > -0.5) & (v < h - 0.5)
    if not ok.any():
        return out
    r = window // 2
    offsets = np.arange(-r, r + 1)
    rows = np.rint(v[ok]).astype(np.intp)[:, None] + offsets  # (n, window)
    cols = np.rint(u[ok]).astype(np.intp)[:, None] + offsets
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    patch = depth_mm[np.clip(rows, 0, h - 1)[:, :, None], np.clip(cols, 0, w - 1)[:, None, :]]
    nearest = np.where(inside & (patch > 0), patch, np.inf).min(axis=(1, 2))
    out[ok] = np.where(np.isfinite(nearest), z[ok] - nearest, np.nan)
    return out


def residual_score(residual_mm: np.ndarray, front_tol: float = FRONT_TOL_MM,
                   max_thickness: float = MAX_THICKNESS_MM, softness: float = SOFTNESS_MM) -> np.ndarray:
    """Surface residuals (mm, NaN = unknown) -> scores in [0, 1] (NaN -> 0)."""
    res = np.asarray(residual_mm, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        excess = np.maximum(0.0, -front_tol - res) + np.maximum(0.0, res - max_thickness)
        score = np.exp(-0.5 * (excess / softness) ** 2)
    return np.nan_to_num(score, nan=0.0)


def joint_plausibility(joints_xyz: np.ndarray, depth_mm: np.ndarray, K: Intrinsics, *, window: int = WINDOW,
                       front_tol: float = FRONT_TOL_MM, max_thickness: float = MAX_THICKNESS_MM,
                       softness: float = SOFTNESS_MM) -> np.ndarray:
    """(J, 3) joints in mm (camera frame) and an (H, W) depth image in mm (0 = missing) -> (J,) scores in [0, 1]."""
    return residual_score(surface_residual(joints_xyz, depth_mm, K, window), front_tol, max_thickness, softness)


def frame_plausibility(joint_scores: np.ndarray) -> float:
    """One number per frame: the mean joint score (0 for no joints)."""
    scores = np.asarray(joint_scores, dtype=np.float64)
    return float(scores.mean()) if scores.size else 0.0
