"""Recorded sessions as an unlabelled training set (the reader the fine-tuning work uses).

    data = SessionDataset("S.mcap")               # every complete frame of the first camera, random access
    frame = data[i]                               # DepthFrame, joints_xyz None: a session has no ground truth
    sample = data.crop(i)                         # normalised hand crop around the recorded predicted palm, or None

A session holds the tracker's own predictions next to each frame. They are PSEUDO-LABELS: estimates of a model,
useful to find and centre the hand and as weak targets, never ground truth; they are kept apart from
`DepthFrame.joints_xyz` (meta[META_PREDICTION]) and from `SessionCrop.pseudo_joints_norm` so that no training or
evaluation code can take them for labels by accident. Crops are made by the project's one crop code (crop.py), the
same the tracker and the synthetic data use, so train and serve cannot drift.

Opening indexes the file: one pass that decompresses every chunk once (about a second per GB of raw depth); a
session cut short by a crash is read up to its last complete frame.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .. import skeleton
from ..closing import ClosedByWith
from ..crop import DEFAULT_CUBE_MM, DEFAULT_SIZE, CropWindow, crop_and_normalise, normalise_joints
from ..frame import DepthFrame
from ..recording.reader import META_PREDICTION, SessionReader

LOG = logging.getLogger("handtrack")


@dataclass
class SessionCrop:
    crop: np.ndarray                 # (size, size) float32, normalised depth in [-1, 1]
    window: CropWindow               # where it came from
    pseudo_joints_norm: np.ndarray   # (21, 3) the PREDICTED joints, normalised to the crop (a pseudo-label)
    presence: float                  # the tracker's presence score for the prediction, 0..1
    frame_id: str


class SessionDataset(ClosedByWith):
    def __init__(self, path: str | os.PathLike, camera: str | int | None = None, min_presence: float | None = None):
        """min_presence: keep only frames whose recorded prediction found a hand with at least this presence
        (None: every frame, with or without a prediction)."""
        self.reader = SessionReader(path)
        self.camera = self.reader.camera(camera)
        self.intrinsics = self.reader.cameras[self.camera].intrinsics
        offsets, presences = [], []
        for offset, frame in self.reader.scan(self.camera):
            prediction = frame.meta.get(META_PREDICTION)
            presences.append(prediction["presence"] if prediction and prediction["present"] else None)
            offsets.append(offset)
        keep = [i for i, p in enumerate(presences) if min_presence is None or (p is not None and p >= min_presence)]
        self._offsets = [offsets[i] for i in keep]
        self.truncated = self.reader.truncated
        # Frames lost in damaged chunks: how many, and which (runs of session frame numbers). Said once here,
        # since a training run would otherwise learn from a session with holes without knowing.
        self.gaps = list(self.reader.gaps.get(self.camera, []))
        self.lost_frames = self.reader.lost_frames(self.camera)
        if self.lost_frames:
            LOG.warning("%s: %d frames of %s lost in %d damaged chunks (frames %s); the rest is read",
                        self.reader.path.name, self.lost_frames, self.camera, self.reader.corrupt_chunks,
                        ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in self.gaps))

    def __len__(self) -> int:
        return len(self._offsets)

    def __getitem__(self, i: int) -> DepthFrame:
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} of a session with {len(self)} frames")
        return self.reader.frame_at(self._offsets[i], self.camera)

    def __iter__(self) -> Iterator[DepthFrame]:
        for i in range(len(self)):
            yield self[i]

    def crop(self, i: int, cube_mm: float = DEFAULT_CUBE_MM, size: int = DEFAULT_SIZE) -> SessionCrop | None:
        """The normalised crop of frame i around the palm centre of its recorded prediction; None if the tracker
        found no hand in that frame."""
        frame = self[i]
        prediction = frame.meta.get(META_PREDICTION)
        if not prediction or not prediction["present"] or prediction["joints_mm"] is None:
            return None
        joints = prediction["joints_mm"]
        crop, window = crop_and_normalise(frame.depth_mm, frame.intrinsics, skeleton.palm_centre(joints),
                                          cube_mm, size)
        return SessionCrop(crop, window, normalise_joints(joints, window.center, cube_mm), prediction["presence"],
                           frame.frame_id)

    def close(self) -> None:
        self.reader.close()
