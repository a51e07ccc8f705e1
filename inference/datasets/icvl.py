"""ICVL Hand Posture Dataset (Tang et al. 2014): 320x240 uint16 PNG depth in mm and uvd label files.

Layout of the release:
  Training/labels.txt                 "<path> u1 v1 d1 ... u16 v16 d16" per line
  Training/Depth/<sequence>/image_<n>.png
  Testing/test_seq_1.txt, test_seq_2.txt   the same line format
  Testing/Depth/test_seq_1/image_<n>.png
Label paths are relative to the Depth folder beside the label file. Joints (16): palm, then thumb, index,
middle, ring, little as (root, mid, tip); (u, v) are image pixels (v down), so deprojecting them with the ICVL
camera lands directly in our y-down frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..camera import ICVL, uvd_to_xyz
from ..errors import HandtrackError
from ..frame import DepthFrame
from ..skeleton import ICVL16_NAMES
from .realsense_png import load_depth_png

NUM_JOINTS = len(ICVL16_NAMES)
SPLIT_LABELS = {"train": ("Training", ["labels.txt"]), "test": ("Testing", ["test_seq_1.txt", "test_seq_2.txt"])}


def load_labels(path: str | Path) -> tuple[list[str], np.ndarray]:
    """A label file -> (relative image paths, (frames, 16, 3) uvd)."""
    path = Path(path)
    names, rows = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) != 1 + 3 * NUM_JOINTS:
            raise HandtrackError(f"{path} line {n} has {len(words) - 1} numbers after the image path, "
                                 f"expected {3 * NUM_JOINTS}")
        try:
            rows.append([float(w) for w in words[1:]])
        except ValueError:
            raise HandtrackError(f"{path} line {n} has a non-numeric label") from None
        names.append(words[0])
    return names, np.asarray(rows, dtype=np.float64).reshape(-1, NUM_JOINTS, 3)


def load_frame(depth_png: str | Path, uvd: np.ndarray | None = None, frame_id: str | None = None) -> DepthFrame:
    """One ICVL image (uint16 mm), labelled if its 16 uvd joints are given."""
    joints = None if uvd is None else uvd_to_xyz(uvd, ICVL)
    return DepthFrame(load_depth_png(depth_png, depth_unit_mm=1.0), ICVL, joints,
                      "icvl16" if joints is not None else None, frame_id=frame_id or Path(depth_png).stem,
                      meta={"path": str(depth_png)})


class ICVLDataset:
    """The labelled frames of one or more ICVL label files.

    Either ICVLDataset.split(root, "train" | "test") for the release layout, or ICVLDataset([label files]).
    """

    def __init__(self, label_files: list[str | Path]):
        self.items: list[tuple[str, Path, np.ndarray]] = []  # (label path, image path, uvd)
        for label_file in map(Path, label_files):
            if not label_file.is_file():
                raise HandtrackError(f"no ICVL label file at {label_file}")
            depth_dir = label_file.parent / "Depth"
            names, uvd = load_labels(label_file)
            self.items.extend((name, depth_dir / name, joints) for name, joints in zip(names, uvd))

    @classmethod
    def split(cls, root: str | Path, split: str = "train") -> "ICVLDataset":
        if split not in SPLIT_LABELS:
            raise HandtrackError(f"ICVL split must be one of {', '.join(SPLIT_LABELS)}, got {split!r}")
        folder, files = SPLIT_LABELS[split]
        return cls([Path(root) / folder / f for f in files])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> DepthFrame:
        name, path, uvd = self.items[i]
        frame = load_frame(path, uvd, frame_id=name)
        frame.meta["index"] = i
        return frame

    def __iter__(self):
        return (self[i] for i in range(len(self)))
