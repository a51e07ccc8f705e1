"""Pose targets of Crossing Nets: normalised crop joints <-> (root-relative pose, root offset).

The crop gives joints in the runtime's normalised units, (xyz - crop centre) / (cube / 2). As in the reference
implementation, the VAE models the pose relative to a root joint in units of 50 mm, and the root's offset from
the crop centre is kept apart (the last 3 numbers of the shared latent), also in units of 50 mm so that both
parts of the latent have about unit scale.
"""
from __future__ import annotations

import torch

from handtrack.inference import skeleton

ROOT = skeleton.JOINT_NAMES.index("middle_mcp")  # the joint nearest the palm centre the crop is centred on
POSE_SCALE_MM = 50.0


class PoseCodec:
    def __init__(self, cube_mm: float, num_joints: int = skeleton.NUM_JOINTS):
        self.to_pose_units = (cube_mm / 2) / POSE_SCALE_MM
        self.num_joints = num_joints

    def encode(self, joints_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, J, 3) normalised joints -> root-relative pose (B, 3J) and root offset (B, 3), both in 50 mm."""
        j = joints_norm * self.to_pose_units
        root = j[:, ROOT]
        return (j - root[:, None]).flatten(1), root

    def decode(self, pose: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Inverse of encode: (B, 3J), (B, 3) -> (B, J, 3) normalised joints."""
        return (pose.view(-1, self.num_joints, 3) + offset[:, None]) / self.to_pose_units
