"""Per-joint plausibility of a 3D hand pose against the depth image it came from: a model-free confidence.

A joint inside a finger must sit a little BEHIND the surface the camera sees at its pixel: never in front of
it (there would be no skin in front of the joint), and not much further behind than a hand is thick. For
joint j at (x, y, z) mm, projecting to pixel (u, v) = (fx x / z + cx, fy y / z + cy):

    d_obs = min { depth[v', u'] > 0 : |u' - round(u)| <= r, |v' - round(v)| <= r }   (r = window // 2)
    res_j = z - d_obs                      positive: the joint lies behind the visible surface
    e_j   = max(0, -front_tol - res_j) + max(0, res_j - max_thickness)
    s_j   = exp(-0.5 * (e_j / softness)^2)                       in (0, 1]

with front_tol = 10 mm, max_thickness = 40 mm, softness = 10 mm by default (front_tol + max_thickness must be
>= 0). Why these: the 36 ground-truth joints of the real NYU test frame 1 lie 3.6..36.8 mm (median 12 mm)
behind the surface (`handtrack eval reprojection`), the wrist points deepest; all of them score 1.

The window minimum makes the score robust to single-pixel noise and holes and, at a finger's silhouette,
picks the finger rather than the background behind it. s_j = 0 when the joint is not finite, not in front of
the camera, projects outside the image, or its window holds no valid depth. A joint that projects onto the
background (or a far body) has a surface far BEHIND it, i.e. a large negative residual, and scores ~0
through the same formula. The frame score is the mean of the s_j.

What it can and cannot say: a high score means the depth supports the joint; a joint hidden behind other
fingers (self-occlusion) also scores low, because the camera cannot confirm it. Cost: one gather of
J x window^2 pixels, ~35 us for 21 joints on one core (numpy call overhead dominates).
"""
from __future__ import annotations

import numpy as np

from .camera import Intrinsics, project

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
    out = np.full(len(xyz), np.nan)
    z = xyz[:, 2]
    # NaN fails every comparison, so non-finite joints drop out here or at the image bounds just below.
    front = (z > 0) & (z < np.inf)
    u, v = project(xyz[front], K).T
    h, w = depth_mm.shape
    inside = (u > -0.5) & (u < w - 0.5) & (v > -0.5) & (v < h - 0.5)
    if not inside.any():
        return out
    r = window // 2
    offsets = np.arange(-r, r + 1)
    # Clipping a window that pokes out of the image only repeats its own edge pixels: the minimum is unchanged.
    # (np.minimum/np.maximum rather than np.clip: several times cheaper on arrays this small.)
    rows = np.minimum(np.maximum(np.rint(v[inside]).astype(np.intp)[:, None] + offsets, 0), h - 1)
    cols = np.minimum(np.maximum(np.rint(u[inside]).astype(np.intp)[:, None] + offsets, 0), w - 1)
    patch = depth_mm[rows[:, :, None], cols[:, None, :]].reshape(len(rows), -1)
    nearest = np.where(patch > 0, patch, np.inf).min(axis=1)
    nearest[nearest == np.inf] = np.nan
    joints = np.flatnonzero(front)[inside]
    out[joints] = z[joints] - nearest
    return out


def residual_score(residual_mm: np.ndarray, front_tol: float = FRONT_TOL_MM,
                   max_thickness: float = MAX_THICKNESS_MM, softness: float = SOFTNESS_MM) -> np.ndarray:
    """Surface residuals (mm, NaN = unknown) -> scores in [0, 1] (NaN -> 0)."""
    res = np.asarray(residual_mm, dtype=np.float64)
    # max(0, a, b) equals max(0, a) + max(0, b) here since at most one of a, b is positive
    # (front_tol + max_thickness >= 0); np.maximum keeps NaN, which becomes a 0 score below.
    excess = np.maximum(np.maximum(-front_tol - res, res - max_thickness), 0.0)
    score = np.exp(-0.5 * (excess / softness) ** 2)
    score[np.isnan(score)] = 0.0
    return score


def joint_plausibility(joints_xyz: np.ndarray, depth_mm: np.ndarray, K: Intrinsics, *, window: int = WINDOW,
                       front_tol: float = FRONT_TOL_MM, max_thickness: float = MAX_THICKNESS_MM,
                       softness: float = SOFTNESS_MM) -> np.ndarray:
    """(J, 3) joints in mm (camera frame) and an (H, W) depth image in mm (0 = missing) -> (J,) scores in [0, 1]."""
    return residual_score(surface_residual(joints_xyz, depth_mm, K, window), front_tol, max_thickness, softness)


def frame_plausibility(joint_scores: np.ndarray) -> float:
    """One number per frame: the mean joint score (0 for no joints)."""
    scores = np.asarray(joint_scores, dtype=np.float64)
    return float(scores.mean()) if scores.size else 0.0
