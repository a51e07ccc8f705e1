"""The one record every reader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera import Intrinsics


@dataclass
class DepthFrame:
    """A depth frame in the project's conventions.

    depth_mm: (H, W) float32, millimetres, 0 = no measurement.
    joints_xyz: (J, 3) mm in the OpenCV camera frame (x right, y down, z forward), or None when unlabelled.
    joint_set: name of the joint set of `joints_xyz` (a key of skeleton.JOINT_SETS), or None.
    """
    depth_mm: np.ndarray
    intrinsics: Intrinsics
    joints_xyz: np.ndarray | None = None
    joint_set: str | None = None
    frame_id: str = ""
    meta: dict = field(default_factory=dict)
