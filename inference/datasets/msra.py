"""MSRA Hand Gesture dataset (Sun et al., CVPR 2015): cropped float depth in .bin files and joint.txt.

Layout: <root>/P<subject>/<gesture>/ with 000000_depth.bin, 000001_depth.bin, ... and one joint.txt.
- *_depth.bin: six int32 (img_width, img_height, left, top, right, bottom), then float32 depth in mm of the
  bounding box only, row by row ((bottom - top) x (right - left) values); everything outside the box is empty.
- joint.txt: the frame count on the first line, then one line per frame of 21 joints x (x, y, z) mm, with y UP
  and z NEGATED (the hand lies at negative z). Joint order: wrist, then index, middle, ring, little, thumb, each
  as (MCP, PIP, DIP, tip).
Camera: 320x240, f = 241.42, principal point at the image centre (camera.MSRA).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..camera import MSRA
from ..errors import HandtrackError
from ..frame import DepthFrame
from ..skeleton import MSRA21_NAMES
from .realsense_png import natural_key

NUM_JOINTS = len(MSRA21_NAMES)
_HEADER = np.dtype("<i4")
# MSRA stores (x, y up, -z); multiplying by this gives our (x, y down, z forward) and back.
_TO_OPENCV = np.array([1.0, -1.0, -1.0])


def load_depth_bin(path: str | Path) -> np.ndarray:
    """A *_depth.bin file -> (img_height, img_width) float32 mm, 0 outside the stored box."""
    buf = Path(path).read_bytes()
    if len(buf) < 6 * 4:
        raise HandtrackError(f"{path} is too short for an MSRA depth header ({len(buf)} bytes)")
    width, height, left, top, right, bottom = (int(v) for v in np.frombuffer(buf, _HEADER, count=6))
    if not (0 <= left <= right <= width and 0 <= top <= bottom <= height):
        raise HandtrackError(f"{path}: box ({left}, {top}, {right}, {bottom}) does not fit a {width}x{height} image")
    box = np.frombuffer(buf, "<f4", offset=6 * 4)
    if box.size != (bottom - top) * (right - left):
        raise HandtrackError(f"{path} holds {box.size} depth values, its box needs {(bottom - top) * (right - left)}")
    depth = np.zeros((height, width), dtype=np.float32)
    depth[top:bottom, left:right] = box.reshape(bottom - top, right - left)
    return depth


def save_depth_bin(path: str | Path, depth_mm: np.ndarray) -> None:
    """The inverse of load_depth_bin: stores the bounding box of the non-zero pixels (for fixtures and exports)."""
    depth = np.asarray(depth_mm, dtype=np.float32)
    rows, cols = np.nonzero(depth > 0)
    top, bottom = (int(rows.min()), int(rows.max()) + 1) if rows.size else (0, 0)
    left, right = (int(cols.min()), int(cols.max()) + 1) if cols.size else (0, 0)
    header = np.array([depth.shape[1], depth.shape[0], left, top, right, bottom], dtype=_HEADER)
    Path(path).write_bytes(header.tobytes() + depth[top:bottom, left:right].astype("<f4").tobytes())


def load_joints(path: str | Path) -> np.ndarray:
    """joint.txt -> (frames, 21, 3) xyz mm in our frame."""
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise HandtrackError(f"{path} is empty")
    try:
        count = int(lines[0])
        table = np.array([line.split() for line in lines[1:]], dtype=np.float64)
    except ValueError:
        raise HandtrackError(f"{path} is not an MSRA joint file (a frame count, then numbers)") from None
    if table.shape != (count, 3 * NUM_JOINTS):
        raise HandtrackError(f"{path}: header says {count} frames; found {table.shape[0]} lines of "
                             f"{table.shape[1] if table.ndim == 2 else '?'} numbers, expected {3 * NUM_JOINTS} each")
    return table.reshape(count, NUM_JOINTS, 3) * _TO_OPENCV


def save_joints(path: str | Path, joints_xyz: np.ndarray) -> None:
    """The inverse of load_joints (our frame in, MSRA's stored frame out)."""
    stored = np.asarray(joints_xyz, dtype=np.float64).reshape(-1, NUM_JOINTS, 3) * _TO_OPENCV
    lines = [str(len(stored))] + [" ".join(f"{v:.6f}" for v in frame.ravel()) for frame in stored]
    Path(path).write_text("\n".join(lines) + "\n")


class MSRADataset:
    """Every gesture folder (one holding joint.txt) under root, in natural order (P0/1, P0/2, ..., P8/Y)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        folders = sorted((p.parent for p in self.root.rglob("joint.txt")), key=natural_key)
        if not folders:
            raise HandtrackError(f"no MSRA gesture folders (with joint.txt) under {self.root}")
        self.items: list[tuple[Path, int, np.ndarray]] = []  # (folder, frame number, joints)
        for folder in folders:
            joints = load_joints(folder / "joint.txt")
            self.items.extend((folder, n, j) for n, j in enumerate(joints))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> DepthFrame:
        folder, n, joints = self.items[i]
        path = folder / f"{n:06d}_depth.bin"
        depth = load_depth_bin(path)
        if depth.shape != (MSRA.height, MSRA.width):
            raise HandtrackError(f"{path} is {depth.shape[1]}x{depth.shape[0]}, MSRA frames are 320x240")
        frame_id = f"{folder.relative_to(self.root).as_posix()}/{n:06d}"
        return DepthFrame(depth, MSRA, joints, "msra21", frame_id=frame_id, meta={"path": str(path), "index": i})

    def __iter__(self):
        return (self[i] for i in range(len(self)))
