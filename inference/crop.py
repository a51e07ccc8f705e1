"""Hand-cube crop and depth normalisation: the one implementation, used by training and by the runtime.

A cube of `cube_mm` around a centre c (mm, camera frame) is projected at the centre's depth and sampled
(nearest neighbour) into a size x size crop. Each axis has its own scale so the crop spans exactly the cube in
millimetres even when fx != fy. Sampling is separable, so a crop is a gather of whole sensor rows and
columns: `sample_grid` says which sensor pixels a crop reads (the synthetic pipeline renders exactly those).

Normalisation (MURAUER / DeepPrior++): depth -> (d - c_z) / (cube/2); missing (0) and background (beyond the
cube's far face) -> +1; clipped to [-1, 1]. Joints -> (xyz - c) / (cube/2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Intrinsics, project

DEFAULT_CUBE_MM = 250.0
DEFAULT_SIZE = 128


@dataclass(frozen=True)
class CropWindow:
    """Where a crop came from: centre (mm), cube size (mm), and the pixel mapping image <-> crop."""
    center: np.ndarray  # (3,) mm, camera frame
    cube_mm: float
    size: int
    uc: float  # projected centre, image pixels
    vc: float
    sx: float  # crop pixels per image pixel, per axis
    sy: float

    def image_to_crop(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        half = (self.size - 1) / 2
        return np.stack([(uv[..., 0] - self.uc) * self.sx + half, (uv[..., 1] - self.vc) * self.sy + half], -1)

    def crop_to_image(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        half = (self.size - 1) / 2
        return np.stack([(xy[..., 0] - half) / self.sx + self.uc, (xy[..., 1] - half) / self.sy + self.vc], -1)

    def intrinsics(self, K: Intrinsics) -> Intrinsics:
        """The crop seen as a pinhole camera of its own (exact for the continuous mapping)."""
        half = (self.size - 1) / 2
        return Intrinsics(K.fx * self.sx, K.fy * self.sy, (K.cx - self.uc) * self.sx + half,
                          (K.cy - self.vc) * self.sy + half, self.size, self.size)

    def sample_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Integer sensor columns (size,) and rows (size,) that the crop reads (may lie outside the image)."""
        x = np.arange(self.size, dtype=np.float64) - (self.size - 1) / 2
        us = np.floor(x / self.sx + (self.uc + 0.5)).astype(np.intp)
        vs = np.floor(x / self.sy + (self.vc + 0.5)).astype(np.intp)
        return us, vs


def crop_window(center: np.ndarray, K: Intrinsics, cube_mm: float = DEFAULT_CUBE_MM,
                size: int = DEFAULT_SIZE) -> CropWindow:
    center = np.asarray(center, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(center)) or center[2] <= 0:
        raise ValueError(f"crop centre must be finite and in front of the camera, got {center.tolist()}")
    uc, vc = project(center, K).tolist()
    z = float(center[2])
    return CropWindow(center, float(cube_mm), int(size), uc, vc,
                      sx=size * z / (K.fx * cube_mm), sy=size * z / (K.fy * cube_mm))


def crop_depth(depth_mm: np.ndarray, window: CropWindow) -> np.ndarray:
    """Raw crop in mm (float32, 0 = missing); pixels outside the image read as missing."""
    h, w = depth_mm.shape
    us, vs = window.sample_grid()
    if us[0] >= 0 and us[-1] < w and vs[0] >= 0 and vs[-1] < h:  # the usual case: all inside the image
        return depth_mm[vs[:, None], us[None, :]].astype(np.float32, copy=False)
    cols_ok = (us >= 0) & (us < w)
    rows_ok = (vs >= 0) & (vs < h)
    out = np.zeros((window.size, window.size), dtype=np.float32)
    out[np.ix_(rows_ok, cols_ok)] = depth_mm[np.ix_(vs[rows_ok], us[cols_ok])]
    return out


def normalise_depth(raw_mm: np.ndarray, center_z: float, cube_mm: float) -> np.ndarray:
    half = cube_mm / 2
    d = (raw_mm.astype(np.float32) - np.float32(center_z)) / np.float32(half)
    d[(raw_mm <= 0) | (d > 1)] = 1.0
    return np.clip(d, -1.0, 1.0, out=d)


def denormalise_depth(norm: np.ndarray, center_z: float, cube_mm: float) -> np.ndarray:
    """Normalised crop -> mm, with background (+1) as 0 (missing)."""
    d = np.asarray(norm, dtype=np.float32) * np.float32(cube_mm / 2) + np.float32(center_z)
    d[np.asarray(norm) >= 1.0] = 0
    return d


def crop_and_normalise(depth_mm: np.ndarray, K: Intrinsics, center: np.ndarray,
                       cube_mm: float = DEFAULT_CUBE_MM, size: int = DEFAULT_SIZE) -> tuple[np.ndarray, CropWindow]:
    window = crop_window(center, K, cube_mm, size)
    return normalise_depth(crop_depth(depth_mm, window), window.center[2], cube_mm), window


def normalise_joints(xyz: np.ndarray, center: np.ndarray, cube_mm: float) -> np.ndarray:
    return (np.asarray(xyz, dtype=np.float64) - np.asarray(center, dtype=np.float64)) / (cube_mm / 2)


def denormalise_joints(norm: np.ndarray, center: np.ndarray, cube_mm: float) -> np.ndarray:
    return np.asarray(norm, dtype=np.float64) * (cube_mm / 2) + np.asarray(center, dtype=np.float64)
