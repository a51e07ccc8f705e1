"""Parameter layout of the hand model: pose (global + articulation) and shape, with anatomical limits.

Hand frame (right hand): origin at the wrist joint, x radial (towards the thumb), y distal (towards the middle
finger), z palmar (out of the palm). Angles in radians. Flexion is positive towards the palm; abduction is a
rotation about the palm normal, positive towards the thumb side, relative to the finger's rest splay.
"""
from __future__ import annotations

import numpy as np

# --- pose vector ------------------------------------------------------------------------------------------
GLOBAL_NAMES = ("rot_x", "rot_y", "rot_z", "tx", "ty", "tz")  # axis-angle hand->camera, wrist position in mm
THUMB_NAMES = ("thumb_cmc_flex", "thumb_cmc_abd", "thumb_mcp_flex", "thumb_mcp_abd", "thumb_ip_flex")
FINGER_DOF = ("mcp_abd", "mcp_flex", "pip_flex", "dip_flex")
FINGER_NAMES = tuple(f"{f}_{d}" for f in ("index", "middle", "ring", "pinky") for d in FINGER_DOF)
WRIST_NAMES = ("wrist_flex", "wrist_dev")  # orientation of the forearm only; does not move the 21 joints

POSE_NAMES: tuple[str, ...] = GLOBAL_NAMES + THUMB_NAMES + FINGER_NAMES + WRIST_NAMES
NUM_POSE = len(POSE_NAMES)  # 29: 6 global + 21 articulation (the hand's 27 DOF) + 2 forearm
GLOBAL = slice(0, 6)
ROT = slice(0, 3)
TRANS = slice(3, 6)
ARTIC = slice(6, 6 + len(THUMB_NAMES) + len(FINGER_NAMES))  # the 21 finger/thumb angles
WRIST = slice(ARTIC.stop, ARTIC.stop + 2)
NUM_ARTIC = ARTIC.stop - ARTIC.start

_d = np.deg2rad
# Anatomical range of motion (degrees), from standard clinical ranges (e.g. AAOS tables): finger MCP flexion
# ~90, hyperextension ~30; PIP ~110; DIP ~80-90; MCP abduction ~+-20 about the rest splay; thumb CMC flexion
# /abduction ~+-40 about our rest pose, thumb MCP ~60, IP ~80 with ~20 hyperextension.
_LIMITS_DEG = {
    "thumb_cmc_flex": (-35, 55), "thumb_cmc_abd": (-40, 40), "thumb_mcp_flex": (-20, 70),
    "thumb_mcp_abd": (-15, 15), "thumb_ip_flex": (-25, 90),
    "mcp_abd": (-22, 22), "mcp_flex": (-30, 95), "pip_flex": (-8, 115), "dip_flex": (-15, 90),
    "wrist_flex": (-70, 70), "wrist_dev": (-25, 35),
}


def _limit(name: str) -> tuple[float, float]:
    key = name if name in _LIMITS_DEG else name.split("_", 1)[1]
    lo, hi = _LIMITS_DEG[key]
    return float(_d(lo)), float(_d(hi))


POSE_LOWER = np.array([-np.inf] * 6 + [_limit(n)[0] for n in POSE_NAMES[6:]])
POSE_UPPER = np.array([np.inf] * 6 + [_limit(n)[1] for n in POSE_NAMES[6:]])

# --- shape vector -----------------------------------------------------------------------------------------
# Multiplicative factors around an adult reference hand (1.0 everywhere). `size` scales everything; the others
# scale one dimension on top of it.
SHAPE_NAMES: tuple[str, ...] = ("size", "palm_width", "len_thumb", "len_index", "len_middle", "len_ring",
                                "len_pinky", "thickness")
NUM_SHAPE = len(SHAPE_NAMES)
SHAPE_LOWER = np.array([0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.75])
SHAPE_UPPER = np.array([1.3, 1.2, 1.25, 1.25, 1.25, 1.25, 1.25, 1.3])


def rest_pose(batch: tuple[int, ...] = (), wrist_mm=(0.0, 0.0, 600.0)) -> np.ndarray:
    """Open flat hand, palm facing the camera, fingers up (hand y = camera -y), wrist at `wrist_mm`."""
    p = np.zeros(batch + (NUM_POSE,))
    # Rotating the hand frame by pi about camera x maps y (distal) to -y (up) and z (palmar) to -z (to camera).
    p[..., 0] = np.pi
    p[..., TRANS] = wrist_mm
    return p


def default_shape(batch: tuple[int, ...] = ()) -> np.ndarray:
    return np.ones(batch + (NUM_SHAPE,))


def clip_pose(pose: np.ndarray) -> np.ndarray:
    return np.clip(pose, POSE_LOWER, POSE_UPPER)


def clip_shape(shape: np.ndarray) -> np.ndarray:
    return np.clip(shape, SHAPE_LOWER, SHAPE_UPPER)
