"""Analytic depth rendering of tapered capsules (and planes) by ray casting.

Every camera ray is (x, y, 1) with x = (u - cx)/fx, y = (v - cy)/fy, so the ray parameter t *is* the depth z.
A tapered capsule is the convex hull of two spheres; the first point where a ray enters it is the nearest of
the ray's hits on sphere a, sphere b and the band of the cone tangent to both, where each hit counts only on
the part of the surface that belongs to the hull. All (capsule, pixel) pairs inside each capsule's projected
bounding box are solved by a small compiled kernel (numba) and merged with a z-buffer, so the cost scales with the
area the primitives cover, not with the image size. Occlusion is exact; so is the geometry in any window of a sensor
(pass `Intrinsics.window(...)`), which is how crops are rendered directly.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..camera import Intrinsics

NEAR_MM = 1.0


def _bounding_boxes(caps: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Integer pixel ranges [u0, u1) x [v0, v1) covered by each capsule (its two spheres' 3D boxes), clipped."""
    a, b, r = caps[:, 0:3], caps[:, 3:6], caps[:, 6:8]
    lo = np.minimum(a - r[:, :1], b - r[:, 1:])
    hi = np.maximum(a + r[:, :1], b + r[:, 1:])
    z0 = np.maximum(lo[:, 2], NEAR_MM)
    z1 = np.maximum(hi[:, 2], NEAR_MM)
    umin = K.fx * np.minimum(lo[:, 0] / z0, lo[:, 0] / z1) + K.cx
    umax = K.fx * np.maximum(hi[:, 0] / z0, hi[:, 0] / z1) + K.cx
    vmin = K.fy * np.minimum(lo[:, 1] / z0, lo[:, 1] / z1) + K.cy
    vmax = K.fy * np.maximum(hi[:, 1] / z0, hi[:, 1] / z1) + K.cy
    box = np.stack([np.ceil(umin), np.floor(umax) + 1, np.ceil(vmin), np.floor(vmax) + 1], -1)
    box = np.clip(box, 0, [K.width, K.width, K.height, K.height]).astype(np.int64)
    box[hi[:, 2] <= NEAR_MM] = 0  # entirely behind the camera
    return box


@njit(cache=True, nogil=True)
def _disc_radius(x, y, z, r, fx, fy):
    """Upper bound (px) on the image radius of a sphere; huge when the sphere reaches the camera plane."""
    if z - r <= NEAR_MM:
        return 1e9
    return max(fx, fy) * r * (x * x + y * y + z * z) / (z * z * (z - r)) + 1.0


@njit(cache=True, nogil=True)
def _zbuffer(caps, box, parts, fx, fy, cx, cy, depth, lab):
    """Write each capsule's nearest hits into depth (float32, 0 = empty) and lab, keeping the nearest surface.

    Ray (x, y, 1). End spheres |t d - c|^2 = r^2 (nearest root). Cone band tangent to both spheres: with the
    unit axis w, h = (p - a).w and s = sin(half angle) = (ra - rb)/L, hull points satisfy
    (1 - s^2) |p - a|_perp^2 = (ra - s h)^2 for h in [ra s, L + rb s]; no band exists when one sphere
    swallows the other.
    """
    for i in range(caps.shape[0]):
        a0, a1, a2, b0, b1, b2, ra, rb = caps[i]
        ca = a0 * a0 + a1 * a1 + a2 * a2 - ra * ra
        cb = b0 * b0 + b1 * b1 + b2 * b2 - rb * rb
        w0, w1, w2 = b0 - a0, b1 - a1, b2 - a2
        length = np.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
        band = length > 1e-9 and abs(ra - rb) < length
        if band:
            w0, w1, w2 = w0 / length, w1 / length, w2 / length
        s = (ra - rb) / length if band else 0.0
        k2 = 1.0 - s * s
        h0 = -(a0 * w0 + a1 * w1 + a2 * w2)
        rs = ra - s * h0
        C = k2 * (a0 * a0 + a1 * a1 + a2 * a2 - h0 * h0) - rs * rs
        h_lo, h_hi = ra * s, length + rb * s
        # Cheap 2D rejection: the projected hull lies within the 2D hull of the two spheres' projected discs
        # (radius bounded by f r |c|^2 / (z^2 (z - r)), which covers the perspective elongation off-axis).
        pa0, pa1, qa = fx * a0 / a2 + cx, fy * a1 / a2 + cy, _disc_radius(a0, a1, a2, ra, fx, fy)
        pb0, pb1, qb = fx * b0 / b2 + cx, fy * b1 / b2 + cy, _disc_radius(b0, b1, b2, rb, fx, fy)
        e0, e1 = pb0 - pa0, pb1 - pa1
        inv_e2 = 1.0 / max(e0 * e0 + e1 * e1, 1e-12)
        for v in range(box[i, 2], box[i, 3]):
            y = (v - cy) / fy
            for u in range(box[i, 0], box[i, 1]):
                f = min(max(((u - pa0) * e0 + (v - pa1) * e1) * inv_e2, 0.0), 1.0)
                g0, g1, rr = u - pa0 - f * e0, v - pa1 - f * e1, qa + f * (qb - qa)
                if g0 * g0 + g1 * g1 > rr * rr:
                    continue
                x = (u - cx) / fx
                dd = x * x + y * y + 1.0
                dca = x * a0 + y * a1 + a2
                best = np.inf
                entered_band = False
                if band:
                    hd = x * w0 + y * w1 + w2
                    A = k2 * dd - hd * hd
                    B = 2.0 * (k2 * (-dca - h0 * hd) + s * hd * rs)
                    disc = B * B - 4.0 * A * C
                    if disc >= 0.0 and abs(A) > 1e-12:
                        sq = np.sqrt(disc)
                        t_lo = (-B - sq) / (2.0 * A)
                        t_hi = (-B + sq) / (2.0 * A)
                        if t_lo > t_hi:
                            t_lo, t_hi = t_hi, t_lo
                        h = h0 + t_lo * hd
                        if t_lo > 0.0 and h_lo <= h <= h_hi and ra - s * h >= 0.0:
                            best = t_lo
                            # Entering through the band: the end spheres cannot be nearer.
                            entered_band = A > 0.0
                        else:
                            h = h0 + t_hi * hd
                            if t_hi > 0.0 and h_lo <= h <= h_hi and ra - s * h >= 0.0:
                                best = t_hi
                if not entered_band:
                    disc = dca * dca - dd * ca
                    if disc >= 0.0:
                        best = min(best, (dca - np.sqrt(disc)) / dd)
                    dcb = x * b0 + y * b1 + b2
                    disc = dcb * dcb - dd * cb
                    if disc >= 0.0:
                        best = min(best, (dcb - np.sqrt(disc)) / dd)
                if NEAR_MM < best < np.inf:
                    old = depth[v, u]
                    if old == 0.0 or best < old:
                        depth[v, u] = best
                        lab[v, u] = parts[i]


def render_capsules(caps: np.ndarray, K: Intrinsics, parts: np.ndarray | None = None,
                    depth: np.ndarray | None = None, labels: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffer capsules (N, 8) [a, b, ra, rb] (camera frame, mm) into a K.height x K.width image.

    Returns depth (float32 mm, 0 where nothing was hit) and part labels (int16; `parts` per capsule, default
    1-based capsule index). Pass `depth`/`labels` from an earlier call (0 = empty) to draw over them; they are
    updated in place.
    """
    caps = np.ascontiguousarray(caps, dtype=np.float64).reshape(-1, 8)
    shape = (K.height, K.width)
    depth = np.zeros(shape, np.float32) if depth is None else depth
    labels = np.zeros(shape, np.int16) if labels is None else labels
    parts = np.arange(1, len(caps) + 1, dtype=np.int16) if parts is None else np.asarray(parts, np.int16)
    _zbuffer(caps, _bounding_boxes(caps, K), parts, K.fx, K.fy, K.cx, K.cy, depth, labels)
    return depth, labels


@njit(cache=True, nogil=True)
def _zbuffer_planes(planes, parts, fx, fy, cx, cy, max_depth, depth, lab):
    for i in range(planes.shape[0]):
        nx, ny, nz, dist = planes[i]
        for v in range(depth.shape[0]):
            y = (v - cy) / fy
            for u in range(depth.shape[1]):
                denom = nx * (u - cx) / fx + ny * y + nz
                if denom == 0.0:
                    continue
                t = dist / denom
                if NEAR_MM < t < max_depth:
                    old = depth[v, u]
                    if old == 0.0 or t < old:
                        depth[v, u] = t
                        lab[v, u] = parts[i]


def render_planes(planes: np.ndarray, K: Intrinsics, parts: np.ndarray, depth: np.ndarray,
                  labels: np.ndarray, max_depth: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Add infinite planes n.p = dist (rows [nx, ny, nz, dist], camera frame) to a depth/label image, in place."""
    planes = np.ascontiguousarray(planes, dtype=np.float64).reshape(-1, 4)
    _zbuffer_planes(planes, np.asarray(parts, np.int16), K.fx, K.fy, K.cx, K.cy, float(max_depth), depth, labels)
    return depth, labels
