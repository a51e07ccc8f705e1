"""SemiHand's label correction with our skeleton: the user's bone lengths, held fixed, imposed on a pseudo-label
along the kinematic chain from the wrist out (each child keeps the predicted direction from its parent, at the
user's length). The correction's residual, how far that moves the joints, says how implausible the pseudo-label's
proportions are for this hand; with the disagreement under perturbation it decides which pseudo-labels to keep.

The user's bone lengths are estimated from the session itself: the per-bone median over the pseudo-labels of the
frames the model agrees with itself on.
"""
from __future__ import annotations

import numpy as np

from handtrack.inference import skeleton


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(N, 21, 3) joints -> (21,) median length of the bone ending at each joint (0 for the wrist)."""
    parents = np.array(skeleton.PARENTS[1:])
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents], axis=-1)
    return np.concatenate([[0.0], np.median(lengths, axis=0)])


def correct(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(N, 21, 3) pseudo-labels -> the same with the given bone lengths, wrist fixed, root first."""
    out = np.array(joints, dtype=np.float64, copy=True)
    for j in range(1, skeleton.NUM_JOINTS):  # PARENTS lists every parent before its children
        p = skeleton.PARENTS[j]
        d = joints[:, j] - joints[:, p]
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        out[:, j] = out[:, p] + d * lengths[j]
    return out

