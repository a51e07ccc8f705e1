"""Pinhole intrinsics and the small pure functions that move points between pixels and millimetres.

Frame: OpenCV optical (x right, y down, z forward), units mm. Pixel centres sit at integer coordinates.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Intrinsics":
        return cls(float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"]), int(d["width"]), int(d["height"]))

    def scaled(self, s: float) -> "Intrinsics":
        """The same camera at s times the resolution."""
        return Intrinsics(self.fx * s, self.fy * s, (self.cx + 0.5) * s - 0.5, (self.cy + 0.5) * s - 0.5,
                          round(self.width * s), round(self.height * s))

    def window(self, u0: int, v0: int, width: int, height: int) -> "Intrinsics":
        """The sub-window of this camera whose top-left pixel is (u0, v0): same rays, shifted principal point."""
        return replace(self, cx=self.cx - u0, cy=self.cy - v0, width=int(width), height=int(height))

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)


# Published calibrations (REFERENCE.md section 5 and 7; the SR305 one is read from the shared data README).
NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)
ICVL = Intrinsics(241.42, 241.42, 160.0, 120.0, 320, 240)
MSRA = ICVL
SR305 = Intrinsics(476.0068, 476.0068, 313.683, 242.755, 640, 480)
# D435 depth at 848x480: HFOV ~87 deg gives fx ~ 848 / (2 tan(43.5 deg)) ~ 447; REFERENCE quotes ~430 px.
D435_848 = Intrinsics(430.0, 430.0, 424.0, 240.0, 848, 480)

PRESETS: dict[str, Intrinsics] = {"nyu": NYU, "icvl": ICVL, "msra": MSRA, "sr305": SR305, "d435": D435_848}


def project(xyz: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Camera points to pixels: u = fx x / z + cx, v = fy y / z + cy.

    Args:
        xyz: (..., 3) points in mm, camera frame; z > 0 in front of the camera (z = 0 gives inf or nan).
        K: the camera.

    Returns:
        (..., 2) pixel coordinates (u, v), float64.

    One point, (3,), is computed in Python floats: the tracker projects single points (its crop centres) several
    times a frame, and numpy's per-call overhead would cost it several times the arithmetic. The results are
    bit-identical to the array path's.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim == 1:
        x, y, z = xyz.tolist()
        if z:  # z = 0 takes the array path, which answers inf / nan as it does for arrays
            return np.array((K.fx * x / z + K.cx, K.fy * y / z + K.cy))
    # Column by column: numpy's inner loops run along the last axis, and a length-2 one (broadcasting (fx, fy)
    # against (..., 2)) is several times slower on large arrays.
    uv = np.empty(xyz.shape[:-1] + (2,))
    z = xyz[..., 2]
    np.add(K.fx * xyz[..., 0] / z, K.cx, out=uv[..., 0])
    np.add(K.fy * xyz[..., 1] / z, K.cy, out=uv[..., 1])
    return uv


def deproject(uv: np.ndarray, z: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Pixels and their depths to camera points: x = (u - cx) z / fx, y = (v - cy) z / fy.

    Args:
        uv: (..., 2) pixel coordinates (u, v).
        z: (...) depths in mm (broadcast against uv's leading shape).
        K: the camera.

    Returns:
        (..., 3) points in mm, camera frame, float64.

    One pixel, (2,) with a scalar depth, is computed in Python floats, as in project().
    """
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if uv.ndim == 1 and z.ndim == 0:
        (u, v), d = uv.tolist(), float(z)
        return np.array(((u - K.cx) * d / K.fx, (v - K.cy) * d / K.fy, d))
    shape = np.broadcast_shapes(uv.shape[:-1], z.shape)
    xyz = np.empty(shape + (3,))
    xyz[..., 0] = (uv[..., 0] - K.cx) * z / K.fx
    xyz[..., 1] = (uv[..., 1] - K.cy) * z / K.fy
    xyz[..., 2] = z
    return xyz


def uvd_to_xyz(uvd: np.ndarray, K: Intrinsics) -> np.ndarray:
    """(..., 3) rows of (u, v, depth mm) -> (..., 3) xyz mm."""
    uvd = np.asarray(uvd, dtype=np.float64)
    return deproject(uvd[..., :2], uvd[..., 2], K)


def xyz_to_uvd(xyz: np.ndarray, K: Intrinsics) -> np.ndarray:
    xyz = np.asarray(xyz, dtype=np.float64)
    return np.concatenate([project(xyz, K), xyz[..., 2:3]], axis=-1)


def depth_to_points(depth_mm: np.ndarray, K: Intrinsics, mask: np.ndarray | None = None) -> np.ndarray:
    """Valid pixels (depth > 0, and inside `mask` if given) of a depth image -> (N, 3) points in mm."""
    v, u = np.nonzero((depth_mm > 0) if mask is None else (mask & (depth_mm > 0)))
    return deproject(np.stack([u, v], axis=-1), depth_mm[v, u], K)


def ray_slopes(us: np.ndarray, vs: np.ndarray, K: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """The rays through a grid of pixels, as slopes: the point at depth z on the ray through pixel (us[i], vs[j])
    is (xz[i] z, yz[j] z, z). Separable, so a whole depth image deprojects with one product per axis.

    Args:
        us: (W,) pixel columns.
        vs: (H,) pixel rows.
        K: the camera.

    Returns:
        xz: (W,) x / z = (u - cx) / fx, and yz: (H,) y / z = (v - cy) / fy, in the inputs' float type (float32
        columns and rows give float32 slopes, for depth images kept in float32 to halve the memory traffic).
    """
    return (us - K.cx) / K.fx, (vs - K.cy) / K.fy
