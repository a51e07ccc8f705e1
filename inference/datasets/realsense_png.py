"""Depth frames stored as single-channel uint16 PNGs with a fixed depth unit (RealSense, ICVL, our recordings).

A pixel value p means p * depth_unit_mm millimetres; 0 means no measurement. RealSense cameras report their own
unit (the SR305 uses 1/8 mm; the D400 series 1 mm by default), so the unit is always an explicit argument.
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from ..camera import SR305, Intrinsics
from ..errors import HandtrackError
from ..frame import DepthFrame

SR305_DEPTH_UNIT_MM = 0.125


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 8192  # no depth camera comes near; a larger image is refused before it is decoded


def png_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header (its first 24 bytes), or None if the file is not a PNG. Reading the
    header first means a huge image is refused without decoding gigabytes of pixels."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise HandtrackError(f"cannot read depth image {path} ({exc.strerror or exc})") from None
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def load_depth_png(path: str | Path, depth_unit_mm: float, expected: tuple[int, int] | None = None) -> np.ndarray:
    """A uint16 single-channel PNG -> (H, W) float32 depth in mm, 0 = missing. expected: the (width, height)
    the image must have, checked on the header before decoding."""
    size = png_size(path)
    if size is not None and (max(size) > MAX_SIDE or (expected is not None and size != tuple(expected))):
        want = f"the camera is {expected[0]}x{expected[1]}" if expected else f"at most {MAX_SIDE} pixels a side"
        raise HandtrackError(f"{path} is {size[0]}x{size[1]} but {want}")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise HandtrackError(f"cannot read depth image {path} (missing or not an image)")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise HandtrackError(f"{path} is not a 16-bit single-channel depth PNG "
                             f"(got {raw.dtype} with shape {raw.shape})")
    return raw.astype(np.float32) * np.float32(depth_unit_mm)


def save_depth_png(path: str | Path, depth_mm: np.ndarray, depth_unit_mm: float) -> None:
    """The inverse of load_depth_png (depths are rounded to the unit; beyond 65535 units they saturate)."""
    units = np.rint(np.asarray(depth_mm, dtype=np.float64) / depth_unit_mm)
    if not cv2.imwrite(str(path), np.clip(units, 0, 65535).astype(np.uint16)):
        raise HandtrackError(f"cannot write depth image {path}")


def load_frame(path: str | Path, intrinsics: Intrinsics = SR305,
               depth_unit_mm: float = SR305_DEPTH_UNIT_MM) -> DepthFrame:
    """One unlabelled frame; the defaults fit the SR305 recordings in ../shared/data/realsense_sr305."""
    path = Path(path)
    depth = load_depth_png(path, depth_unit_mm, expected=(intrinsics.width, intrinsics.height))
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise HandtrackError(f"{path} is {depth.shape[1]}x{depth.shape[0]} but the camera is "
                             f"{intrinsics.width}x{intrinsics.height}")
    return DepthFrame(depth, intrinsics, frame_id=path.stem, meta={"path": str(path), "depth_unit_mm": depth_unit_mm})


def natural_key(path: Path) -> list:
    """Sort key that compares digit runs as numbers: "x_30.png" before "x_110.png", "P2" before "P10"."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", Path(path).as_posix())]


class DepthPngFolder:
    """The uint16 PNGs of one folder, in natural name order, as unlabelled DepthFrames."""

    def __init__(self, folder: str | Path, intrinsics: Intrinsics = SR305,
                 depth_unit_mm: float = SR305_DEPTH_UNIT_MM, pattern: str = "*.png"):
        self.folder = Path(folder)
        self.paths = sorted(self.folder.glob(pattern), key=natural_key)
        if not self.paths:
            raise HandtrackError(f"no {pattern} files in {self.folder}")
        self.intrinsics = intrinsics
        self.depth_unit_mm = depth_unit_mm

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> DepthFrame:
        return load_frame(self.paths[i], self.intrinsics, self.depth_unit_mm)

    def __iter__(self):
        return (self[i] for i in range(len(self)))
