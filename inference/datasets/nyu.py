"""NYU Hand Pose Dataset (Tompson et al. 2014): the folder layout and the small benchmark files.

A split folder (`train/` or `test/`) holds, per Kinect camera c in 1..3 and frame n from 1:
  depth_<c>_<n:07d>.png        depth in mm packed in two 8-bit channels: (G << 8) | B, 0 = missing
  synthdepth_<c>_<n:07d>.png   the fitted hand model rendered the same way
  joint_data.mat               joint_xyz, joint_uvd: (3 cameras, frames, 36, 3); xyz in mm with y UP
The benchmark files that circulate without the images (copies in ../shared/data/nyu):
  test_joints14_uvd.txt        one frame per line: 14 joints x (u, v, depth mm)
  test_joints36_uvd.npz        key "uvd": (frames, 36, 3) float32
  test_joints36_xyz_<n>.json   {"joints_xyz": 36 x (x, y, z)}, y up
Published predictions use the same one-frame-per-line text layout as the 14-joint labels (xyz, y up).

Everything returned here is in the project's frame (OpenCV: x right, y down, z forward), mm.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..camera import NYU, uvd_to_xyz
from ..errors import HandtrackError, require
from ..frame import DepthFrame
from ..skeleton import NYU14_FROM_36

NUM_JOINTS = 36
NUM_EVAL_JOINTS = len(NYU14_FROM_36)
SPLITS = ("train", "test")


def y_up_to_opencv(xyz: np.ndarray) -> np.ndarray:
    """NYU's y-up xyz <-> our y-down frame (the flip is its own inverse)."""
    out = np.array(xyz, dtype=np.float64)
    out[..., 1] *= -1
    return out


def decode_depth(img_bgr: np.ndarray) -> np.ndarray:
    """An NYU depth image as OpenCV loads it (H, W, 3 uint8, BGR) -> (H, W) float32 mm."""
    return ((img_bgr[:, :, 1].astype(np.uint16) << 8) | img_bgr[:, :, 0]).astype(np.float32)


def encode_depth(depth_mm: np.ndarray) -> np.ndarray:
    """The inverse of decode_depth (for fixtures and exports): mm -> BGR uint8 with R = 0."""
    d = np.clip(np.rint(depth_mm), 0, 65535).astype(np.uint16)
    return np.dstack([d & 0xFF, d >> 8, np.zeros_like(d)]).astype(np.uint8)


def load_depth_png(path: str | Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise HandtrackError(f"cannot read NYU depth image {path} (missing or not an image)")
    return decode_depth(img)


def read_joint_table(path: str | Path, num_joints: int, what: str | None = None) -> np.ndarray:
    """A text file of one frame per line, num_joints x 3 numbers -> (frames, num_joints, 3) float64.

    The layout of the NYU labels and of every published NYU prediction. Malformed input (a short line, a word,
    a NaN) raises HandtrackError naming the file and the first bad line, since these files are typed by hand
    or cut with shell tools more often than one would hope.
    """
    path = Path(path)
    what = what or path.name
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise HandtrackError(f"cannot read {what}: {exc.strerror or exc} ({path})") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise HandtrackError(f"{what} is empty ({path})")
    expected = num_joints * 3
    rows = [line.split() for line in lines]
    for n, row in enumerate(rows, start=1):
        if len(row) != expected:
            raise HandtrackError(f"{what} line {n} has {len(row)} numbers, expected {expected} "
                                 f"({num_joints} joints x 3)")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        n, word = _first_non_number(rows)
        raise HandtrackError(f"{what} line {n} has a non-numeric value {word!r}") from None
    bad = ~np.isfinite(table).all(axis=1)
    if bad.any():
        raise HandtrackError(f"{what} line {int(np.argmax(bad)) + 1} has a NaN or infinite value")
    return table.reshape(len(rows), num_joints, 3)


def _first_non_number(rows: list[list[str]]) -> tuple[int, str]:
    for n, row in enumerate(rows, start=1):
        for word in row:
            try:
                float(word)
            except ValueError:
                return n, word
    return 0, ""


def load_joints14_uvd(path: str | Path) -> np.ndarray:
    """test_joints14_uvd.txt -> (frames, 14, 3) rows of (u, v, depth mm)."""
    return read_joint_table(path, NUM_EVAL_JOINTS)


def load_joints14_xyz_from_uvd(path: str | Path) -> np.ndarray:
    """The 14-joint uvd labels deprojected with the NYU camera -> (frames, 14, 3) xyz mm, OpenCV frame."""
    return uvd_to_xyz(load_joints14_uvd(path), NYU)


def load_predictions_xyz(path: str | Path, num_joints: int = NUM_EVAL_JOINTS, what: str | None = None) -> np.ndarray:
    """A published NYU prediction file (xyz mm, y up, one frame per line) -> (frames, J, 3), OpenCV frame."""
    return y_up_to_opencv(read_joint_table(path, num_joints, what))


def load_joints36_uvd(path: str | Path) -> np.ndarray:
    """test_joints36_uvd.npz -> (frames, 36, 3) float64 (u, v, depth mm)."""
    with np.load(path) as npz:
        if "uvd" not in npz.files:
            raise HandtrackError(f"{path} has no 'uvd' array (has {', '.join(npz.files)})")
        uvd = npz["uvd"].astype(np.float64)
    if uvd.ndim != 3 or uvd.shape[1:] != (NUM_JOINTS, 3):
        raise HandtrackError(f"{path}: 'uvd' has shape {uvd.shape}, expected (frames, {NUM_JOINTS}, 3)")
    return uvd


def load_frame_json(path: str | Path) -> np.ndarray:
    """test_joints36_xyz_<n>.json -> (36, 3) xyz mm, OpenCV frame."""
    xyz = np.asarray(json.loads(Path(path).read_text())["joints_xyz"], dtype=np.float64)
    if xyz.shape != (NUM_JOINTS, 3):
        raise HandtrackError(f"{path}: joints_xyz has shape {xyz.shape}, expected ({NUM_JOINTS}, 3)")
    return y_up_to_opencv(xyz)


def load_frame(depth_png: str | Path, joints_json: str | Path | None = None) -> DepthFrame:
    """One loose NYU frame (camera 1 intrinsics), labelled with all 36 joints if a frame JSON is given."""
    joints = None if joints_json is None else load_frame_json(joints_json)
    return DepthFrame(load_depth_png(depth_png), NYU, joints, "nyu36" if joints is not None else None,
                      frame_id=Path(depth_png).stem, meta={"path": str(depth_png)})


class NYUDataset:
    """The frames of one split folder of the original release, with their 36 joints.

    root: the folder holding train/ and test/. camera: 1..3 (1 is the frontal camera every benchmark uses).
    kind: "depth" (the sensor) or "synthdepth" (the fitted model rendered; MURAUER's synthetic twin).
    """

    def __init__(self, root: str | Path, split: str = "test", camera: int = 1, kind: str = "depth"):
        if split not in SPLITS:
            raise HandtrackError(f"NYU split must be one of {', '.join(SPLITS)}, got {split!r}")
        if camera not in (1, 2, 3):
            raise HandtrackError(f"NYU camera must be 1, 2 or 3, got {camera}")
        if kind not in ("depth", "synthdepth"):
            raise HandtrackError(f"NYU image kind must be 'depth' or 'synthdepth', got {kind!r}")
        self.folder = Path(root) / split
        self.camera = camera
        self.kind = kind
        self.joints_xyz = self._load_labels(self.folder / "joint_data.mat", camera)

    @staticmethod
    def _load_labels(mat_path: Path, camera: int) -> np.ndarray:
        if not mat_path.is_file():
            raise HandtrackError(f"no NYU labels at {mat_path} (expected <root>/<split>/joint_data.mat)")
        sio = require("scipy.io", extra="train", feature="reading NYU joint_data.mat")
        # Only the xyz array: the training split's uvd twin alone is ~190 MB.
        mat = sio.loadmat(str(mat_path), variable_names=["joint_xyz"])
        if "joint_xyz" not in mat:
            raise HandtrackError(f"{mat_path} has no joint_xyz array")
        xyz = np.asarray(mat["joint_xyz"], dtype=np.float64)
        if xyz.ndim != 4 or xyz.shape[0] < camera or xyz.shape[2:] != (NUM_JOINTS, 3):
            raise HandtrackError(f"{mat_path}: joint_xyz has shape {xyz.shape}, "
                                 f"expected (cameras, frames, {NUM_JOINTS}, 3)")
        return y_up_to_opencv(xyz[camera - 1])

    def depth_path(self, i: int) -> Path:
        return self.folder / f"{self.kind}_{self.camera}_{i + 1:07d}.png"

    def __len__(self) -> int:
        return len(self.joints_xyz)

    def __getitem__(self, i: int) -> DepthFrame:
        if not 0 <= i < len(self):
            raise IndexError(i)
        path = self.depth_path(i)
        return DepthFrame(load_depth_png(path), NYU, self.joints_xyz[i], "nyu36",
                          frame_id=path.stem, meta={"path": str(path), "index": i})

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class NYUPngFolder:
    """Loose NYU frames (depth packed in G and B, as the release stores them) in natural name order, without
    labels: a folder of `*depth_*.png` but no joint_data.mat, like ../shared/data/nyu."""

    def __init__(self, folder: str | Path, pattern: str = "*depth_*.png"):
        from .realsense_png import natural_key

        self.folder = Path(folder)
        self.paths = sorted(self.folder.glob(pattern), key=natural_key)
        if not self.paths:
            raise HandtrackError(f"no {pattern} files in {self.folder}")

    @staticmethod
    def looks_like(path: Path) -> bool:
        """A PNG with the NYU packing: 8-bit, three channels."""
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        return img is not None and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> DepthFrame:
        return load_frame(self.paths[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))
