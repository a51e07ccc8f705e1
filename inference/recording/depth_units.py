"""Float millimetres -> raw 16-bit depth units, exactly or not at all: one pass, compiled (numba), GIL released.

A camera source turns its raw units into millimetres as `units.astype(float32) * float32(unit)`. Recording goes the
other way: a frame is stored as units only if multiplying them back gives every pixel bit for bit; otherwise the
caller stores float32 millimetres. Done with numpy this takes six passes over the image (~2.7 ms at 848x480 on the
development machine, a quarter of a frame's time at 90 FPS); this kernel does it in one and stops at the first pixel
that does not fit.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _to_units(depth, unit, out) -> bool:
    h, w = depth.shape
    for i in range(h):
        for j in range(w):
            d = depth[i, j]
            u = np.rint(d / unit)
            if not (u >= 0.0 and u <= 65535.0):  # also False for NaN
                return False
            k = np.uint16(u)
            if np.float32(k) * unit != d:
                return False
            out[i, j] = k
    return True


def to_units(depth_mm: np.ndarray, unit_mm: float) -> np.ndarray | None:
    """uint16 units u with u.astype(float32) * float32(unit_mm) == depth_mm exactly, or None if there are none."""
    if depth_mm.dtype != np.float32 or depth_mm.ndim != 2:
        return None
    out = np.empty(depth_mm.shape, dtype=np.uint16)
    return out if _to_units(depth_mm, np.float32(unit_mm), out) else None
