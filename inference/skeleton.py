"""Joint sets: the canonical 21-joint hand and the benchmark joint sets, by name.

The canonical order is MediaPipe's (wrist, then thumb, index, middle, ring, pinky, each from the palm out).
Benchmark joint sets (NYU-36/14, ICVL-16, MSRA-21) are listed here by name and order only; where each of
their points sits on a hand is defined on the parametric model (`handmodel.keypoints`), so a model that
predicts one set can be scored on another.
"""
from __future__ import annotations

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")

JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
NUM_JOINTS = len(JOINT_NAMES)
WRIST = 0
# Joint indices of each finger, from the palm out (4 per finger; the wrist is the root of all five).
FINGER_JOINTS: dict[str, tuple[int, int, int, int]] = {
    f: tuple(range(1 + 4 * i, 5 + 4 * i)) for i, f in enumerate(FINGERS)  # type: ignore[misc]
}
PARENTS: tuple[int, ...] = (-1,) + tuple(
    WRIST if k == 0 else 1 + 4 * i + k - 1 for i in range(5) for k in range(4)
)
# Bones as (parent, child) pairs, used for drawing and for bone-length statistics.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)
# The palm centre used to centre crops: mean of the wrist and the four finger MCPs.
PALM_JOINTS = (0, 5, 9, 13, 17)
FINGER_COLORS_BGR: dict[str, tuple[int, int, int]] = {
    "thumb": (60, 60, 230), "index": (60, 200, 240), "middle": (80, 200, 80),
    "ring": (230, 160, 40), "pinky": (200, 80, 200),
}


def joint_finger(j: int) -> str | None:
    """Name of the finger a canonical joint belongs to (None for the wrist)."""
    return None if j == WRIST else FINGERS[(j - 1) // 4]


def palm_centre(joints: np.ndarray) -> np.ndarray:
    """Palm centre of (..., 21, 3) canonical joints."""
    return np.asarray(joints)[..., PALM_JOINTS, :].mean(axis=-2)


# --- NYU (36 joints; the 14 evaluation joints are a subset) --------------------------------------------
# For each finger (little, ring, middle, index, thumb): six points from the tip inwards, two per segment;
# then six palm points. Semantics checked against the real poses in ../shared/data/nyu.
_NYU_FINGERS = ("little", "ring", "middle", "index", "thumb")
NYU36_NAMES: tuple[str, ...] = tuple(
    f"{f}_{p}" for f in _NYU_FINGERS for p in ("knu3_a", "knu3_b", "knu2_a", "knu2_b", "knu1_a", "knu1_b")
) + tuple(f"palm_{i}" for i in range(1, 7))
NYU14_FROM_36: tuple[int, ...] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)
NYU14_NAMES: tuple[str, ...] = tuple(NYU36_NAMES[i] for i in NYU14_FROM_36)
NYU14_PALM = 13  # index of the palm centre (NYU joint 32) within the 14: the crop centre of MURAUER/DeepPrior++

# --- ICVL (16 joints): palm, then thumb, index, middle, ring, little as (root, mid, tip) -----------------
ICVL16_NAMES: tuple[str, ...] = ("palm",) + tuple(
    f"{f}_{p}" for f in ("thumb", "index", "middle", "ring", "little") for p in ("root", "mid", "tip")
)

# --- MSRA (21 joints): wrist, then index, middle, ring, little, thumb as (MCP, PIP, DIP, tip) -------------
MSRA21_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{f}_{p}" for f in ("index", "middle", "ring", "little", "thumb") for p in ("mcp", "pip", "dip", "tip")
)
# MSRA index -> canonical index (both sets name the same anatomical points, the thumb's MCP..tip being
# our CMC..tip).
MSRA21_TO_CANONICAL: tuple[int, ...] = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 1, 2, 3, 4)

JOINT_SETS: dict[str, tuple[str, ...]] = {
    "canonical21": JOINT_NAMES,
    "nyu36": NYU36_NAMES,
    "nyu14": NYU14_NAMES,
    "icvl16": ICVL16_NAMES,
    "msra21": MSRA21_NAMES,
}
