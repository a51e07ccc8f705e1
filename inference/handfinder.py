"""Finding the hand before the pose network runs: a learned detector on the whole frame that says where the palm
is and which hand it is, and a presence net on the crop that says whether it holds a hand (models
`handfinder_*.onnx`, trained by `handtrack train detect`).

The detector reads the frame subsampled to ~160x120 in metres and answers, per cell of a stride-4 grid, how
likely the palm centre lies there, its sub-cell position and depth, and whether it is a left hand. The two best
peaks are reported (several hands may be in view). Unlike the nearest-object rule it sees the arm and the body
around a hand, so a torso nearer than the hand or a forearm beside an edge-on hand does not capture the crop, and
the side of the body the arm comes from tells a right hand from a left one.

The presence net reads the tracker's normalised crop and gives a calibrated probability that it holds a hand
(vs torso, head, forearm, wall, clutter, a hand cut by the crop's edge, a hand of impossible size).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .camera import Intrinsics, deproject
from .errors import HandtrackError
from .model import OnnxModel

DETECTOR_ROWS = 120  # the frame is subsampled to about this many rows, whatever the sensor's resolution
NEIGHBOURS = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Candidate:
    uv: np.ndarray      # (2,) palm centre, full-frame pixels
    z_mm: float         # palm depth
    score: float        # 0..1, how sure the detector is that a palm centre is here
    left: float         # 0..1, probability that it is a left hand

    def centre(self, K: Intrinsics) -> np.ndarray:
        return deproject(self.uv, self.z_mm, K)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class DetectorModel(OnnxModel):
    def __init__(self, path, threads: int = 1):
        super().__init__(path, threads, role="detector")
        extra = self.info.extra
        try:
            self.grid = int(extra["grid_stride"])
            self.multiple = int(extra.get("input_multiple", self.grid))  # the frame is cut to whole blocks of this
            self.max_depth_mm = float(extra["max_depth_mm"])
        except (KeyError, TypeError, ValueError) as exc:
            raise HandtrackError(f"{self.path}: detector metadata lacks {exc}") from exc

    def frame_input(self, depth_mm: np.ndarray) -> tuple[np.ndarray, int]:
        """The subsampled frame in metres (rows and columns cut to whole cells) and the subsampling step."""
        step = max(1, int(round(depth_mm.shape[0] / DETECTOR_ROWS)))
        d = depth_mm[::step, ::step]
        h, w = (d.shape[0] // self.multiple) * self.multiple, (d.shape[1] // self.multiple) * self.multiple
        if h == 0 or w == 0:
            raise HandtrackError(f"a {depth_mm.shape[1]}x{depth_mm.shape[0]} frame is too small for the detector")
        d = d[:h, :w].astype(np.float32)
        if step > 1:
            # A pixel missing at the sample (scattered dropout, NaN from a filter) takes the one half a step
            # further into its block, so that a few percent of lost pixels do not riddle the hand with holes.
            alt = depth_mm[step // 2::step, step // 2::step][:h, :w]
            if alt.shape == d.shape:
                d = np.where(d > 0, d, alt).astype(np.float32)
        d[d > self.max_depth_mm] = 0.0
        return d * np.float32(1e-3), step

    def detect(self, depth_mm: np.ndarray, top: int = 2, min_score: float = 0.05) -> list[Candidate]:
        """Up to `top` palm candidates, best first, each a local maximum of the palm map above `min_score`."""
        x, step = self.frame_input(depth_mm)
        maps = self.run(x[None, None])[0][0]  # (5, gh, gw)
        score = _sigmoid(maps[0])
        # A peak is the largest value of its 3x3 neighbourhood (grey dilation: the neighbourhood's maximum).
        peaks = np.argwhere((score >= cv2.dilate(score, NEIGHBOURS)) & (score >= min_score))
        order = np.argsort(-score[peaks[:, 0], peaks[:, 1]])[:top]
        out = []
        for i, j in peaks[order]:
            # The sub-cell offsets were trained in [0, 1): clipped, a peak stays inside its own cell.
            u = (j + np.clip(maps[2, i, j], 0.0, 0.999)) * self.grid * step
            v = (i + np.clip(maps[3, i, j], 0.0, 0.999)) * self.grid * step
            # Handedness was trained on the cells around the palm: read it there, weighted by the palm map.
            near = (slice(max(i - 1, 0), i + 2), slice(max(j - 1, 0), j + 2))
            left = float(np.average(maps[1][near], weights=score[near]))
            out.append(Candidate(np.array([u, v]), float(maps[4, i, j]) * 1000.0, float(score[i, j]),
                                 float(_sigmoid(left))))
        return out


class PresenceModel(OnnxModel):
    def __init__(self, path, threads: int = 1):
        super().__init__(path, threads, role="presence")

    def probability(self, crop: np.ndarray) -> float:
        """p(hand) for one normalised crop (S, S)."""
        S = self.info.input_size
        if crop.shape[-2:] != (S, S):
            raise HandtrackError(f"{self.path.name} takes {S}x{S} crops, got {crop.shape[-2:]}")
        return float(self.run(np.asarray(crop, dtype=np.float32).reshape(1, 1, S, S))[0].reshape(-1)[0])
