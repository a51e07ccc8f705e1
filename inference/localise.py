"""The depth rules for finding the hand: nearest-object depth slicing, then centre-of-mass refinement inside the
hand cube (DeepPrior++ practice, docs/REFERENCE section 3); tracking from the previous palm; and lifting a
detected palm (`handfinder.py`) to 3D with the observed depth. The learned detector comes first in the tracker;
the nearest-object rule is its fallback.

Detection works on a subsampled image (every `stride`-th pixel), which keeps it well under a millisecond on
640x480 input; the hand stays dozens of pixels wide at that resolution out to 1.5 m.

    1. near = the nearest valid depth (a low percentile, so a few flying pixels do not set it)
    2. for slab in near + step, near + 2 step, ...: connected components of the pixels nearer than the slab;
       the first component whose metric area exceeds `min_area_mm2` is the hand candidate (a hand held out is
       the nearest sizeable object; a speck of noise or a fingertip alone is too small)
    3. centre = mean 3D point of the candidate; then `iterations` times: the mean of all valid points inside
       the cube around the centre (so the centre moves onto the hand's mass even when the first component
       caught only the fingers)

With a seed (the previous frame's palm), step 3 starts from the seed and detection is skipped unless the cube
around it holds too little surface, which is how tracking survives a body or a second hand coming nearer.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .camera import Intrinsics, deproject, ray_slopes


@dataclass(frozen=True)
class LocaliserOptions:
    cube_mm: float = 250.0
    stride: int = 4               # detection reads every stride-th pixel in u and v
    slab_step_mm: float = 25.0    # depth slices grow by this much
    max_slabs: int = 20
    min_area_mm2: float = 2500.0  # a hand seen from any side covers more than this (50 x 50 mm)
    iterations: int = 5
    min_depth_mm: float = 100.0   # nearer than any depth camera measures: treated as invalid
    max_depth_mm: float = 2000.0  # a hand further away is too small to track


@dataclass(frozen=True)
class Localisation:
    centre: np.ndarray | None  # (3,) mm, camera frame; None: no hand found
    points: int                # valid (subsampled) points inside the final cube
    method: str                # "detect", "track" or "none"


NONE = Localisation(None, 0, "none")


def _points(depth: np.ndarray, K: Intrinsics, stride: int, opts: LocaliserOptions) -> tuple[np.ndarray, np.ndarray]:
    """Subsampled depth (h, w) with invalid -> 0, and the per-pixel rays' x/z, y/z factors."""
    d = depth[::stride, ::stride]
    d = np.where((d >= opts.min_depth_mm) & (d <= opts.max_depth_mm), d, 0).astype(np.float32)
    return d, _rays(K, stride, depth.shape)


@lru_cache(maxsize=8)
def _rays(K: Intrinsics, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """(2, h, w) x/z and y/z of every stride-th pixel: the same for every frame of a camera, so made once."""
    us = np.arange(0, shape[1], stride, dtype=np.float32)
    vs = np.arange(0, shape[0], stride, dtype=np.float32)
    rays = np.stack(np.meshgrid(*ray_slopes(us, vs, K)), 0)
    rays.flags.writeable = False  # shared between calls
    return rays


def _footprint(rays: np.ndarray, centre: np.ndarray, half: float) -> tuple[slice, slice]:
    """The rows and columns of the subsampled image where the cube around `centre` can appear: between the
    slopes of its sides seen from its near and far faces. Everything outside is outside the cube."""
    near, far = max(centre[2] - half, 1.0), centre[2] + half
    x_lo, x_hi = (centre[0] - half) / np.array([near, far]), (centre[0] + half) / np.array([near, far])
    y_lo, y_hi = (centre[1] - half) / np.array([near, far]), (centre[1] + half) / np.array([near, far])
    xs, ys = rays[0, 0], rays[1, :, 0]  # ascending: x/z along a row, y/z down a column
    u0, u1 = np.searchsorted(xs, x_lo.min()), np.searchsorted(xs, x_hi.max(), side="right")
    v0, v1 = np.searchsorted(ys, y_lo.min()), np.searchsorted(ys, y_hi.max(), side="right")
    return slice(v0, v1), slice(u0, u1)


def _cube_mean(d: np.ndarray, rays: np.ndarray, centre: np.ndarray, half: float) -> tuple[np.ndarray | None, int]:
    """Mean 3D point of the valid points inside the cube, read only inside the cube's image footprint."""
    rows, cols = _footprint(rays, centre, half)
    d = d[rows, cols]
    x = rays[0, rows, cols] * d
    y = rays[1, rows, cols] * d
    inside = (d > 0) & (np.abs(d - centre[2]) < half) & (np.abs(x - centre[0]) < half) & (np.abs(y - centre[1]) < half)
    n = int(inside.sum())
    if n == 0:
        return None, 0
    return np.array([x[inside].mean(), y[inside].mean(), d[inside].mean()], dtype=np.float64), n


def _refine(d: np.ndarray, rays: np.ndarray, centre: np.ndarray, opts: LocaliserOptions) -> tuple[np.ndarray | None, int]:
    n = 0
    for _ in range(opts.iterations):
        new, n = _cube_mean(d, rays, centre, opts.cube_mm / 2)
        if new is None:
            return None, 0
        moved = np.linalg.norm(new - centre)
        centre = new
        if moved < 1.0:
            break
    return centre, n


def _min_points(opts: LocaliserOptions, K: Intrinsics, z: float) -> int:
    """Subsampled pixels a surface of min_area_mm2 covers at depth z."""
    px_area = (z / K.fx) * (z / K.fy) * opts.stride ** 2
    return max(4, int(opts.min_area_mm2 / px_area))


def detect(depth: np.ndarray, K: Intrinsics, opts: LocaliserOptions = LocaliserOptions()) -> Localisation:
    d, rays = _points(depth, K, opts.stride, opts)
    valid = d[d > 0]
    if valid.size < 4:
        return NONE
    near = float(np.partition(valid, max(0, int(valid.size * 0.002)))[max(0, int(valid.size * 0.002))])
    for k in range(1, opts.max_slabs + 1):
        mask = ((d > 0) & (d < near + k * opts.slab_step_mm)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count <= 1:
            continue
        areas = stats[1:, cv2.CC_STAT_AREA]
        need = _min_points(opts, K, near + k * opts.slab_step_mm / 2)
        big = np.nonzero(areas >= need)[0]
        if big.size == 0:
            continue
        # Several sizeable blobs in the same slab: take the nearest one (its minimum depth).
        best, best_z = None, np.inf
        for b in big + 1:
            z = d[labels == b].min()
            if z < best_z:
                best, best_z = b, z
        sel = labels == best
        z = d[sel]
        start = np.array([(rays[0][sel] * z).mean(), (rays[1][sel] * z).mean(), z.mean()])
        centre, n = _refine(d, rays, start, opts)
        if centre is None:
            return NONE
        return Localisation(centre, n, "detect")
    return NONE


def track(depth: np.ndarray, K: Intrinsics, seed: np.ndarray, opts: LocaliserOptions = LocaliserOptions(),
          refine: bool = True) -> Localisation:
    """The centre of mass in the cube around the previous palm, or NONE if the cube holds too little surface.
    With `refine` False the seed itself is the centre, and only the surface in the cube around it is counted
    (one pass over the image instead of up to `iterations`; for a caller that keeps the seed anyway)."""
    d, rays = _points(depth, K, opts.stride, opts)
    seed = np.asarray(seed, dtype=np.float64)
    if refine:
        centre, n = _refine(d, rays, seed, opts)
    else:
        centre, n = (seed, _cube_mean(d, rays, seed, opts.cube_mm / 2)[1])
    if centre is not None and n >= _min_points(opts, K, centre[2]):
        return Localisation(centre, n, "track")
    return NONE


def palm_from_detection(depth: np.ndarray, K: Intrinsics, uv: np.ndarray, z_mm: float, window_px: int = 6,
                        tolerance_mm: float = 100.0, behind_mm: float = 10.0) -> np.ndarray:
    """A detected palm (pixel and regressed depth) as a 3D centre: the depth observed around the pixel (median of
    the valid values near the regressed one) plus `behind_mm`, since the palm centre lies inside the hand, behind
    the surface the camera sees. The regression alone is centimetres off; the observation is not. Where nothing
    near is observed (a hole), the regressed depth stays."""
    u, v = int(round(uv[0])), int(round(uv[1]))
    patch = depth[max(v - window_px, 0):v + window_px + 1, max(u - window_px, 0):u + window_px + 1]
    near = patch[(patch > 0) & (np.abs(patch - z_mm) < tolerance_mm)]
    z = float(np.median(near)) + behind_mm if near.size else float(z_mm)
    return deproject(uv, z, K)


def palm_on_nearest_surface(depth: np.ndarray, K: Intrinsics, uv: np.ndarray, window_px: int = 6,
                            band_mm: float = 30.0, behind_mm: float = 10.0) -> np.ndarray | None:
    """A detected palm pixel lifted onto the nearest surface observed around it (the median of the valid values
    within `band_mm` of the nearest one, plus `behind_mm`), or None in a hole. A far, small hand seen edge-on can
    leave its regressed depth nearer the body behind it than the hand itself (measured: 140 mm off at 1.1 m), and
    palm_from_detection then lifts it onto the body; this is the other reading, for the tracker to judge."""
    u, v = int(round(uv[0])), int(round(uv[1]))
    patch = depth[max(v - window_px, 0):v + window_px + 1, max(u - window_px, 0):u + window_px + 1]
    valid = patch[patch > 0]
    if not valid.size:
        return None
    nearest = float(valid.min())
    return deproject(uv, float(np.median(valid[valid < nearest + band_mm])) + behind_mm, K)


def localise(depth: np.ndarray, K: Intrinsics, seed: np.ndarray | None = None,
             opts: LocaliserOptions = LocaliserOptions()) -> Localisation:
    """The hand's cube centre in `depth` (mm, 0 = missing): from `seed` when it still finds a hand there,
    otherwise by detection."""
    if seed is not None:
        loc = track(depth, K, seed, opts)
        if loc.centre is not None:
            return loc
    return detect(depth, K, opts)
