"""In-plane transforms of crops and of the joints in them, as differentiable torch ops (SemiHand's T).

A transform is a rotation by theta about the crop centre's viewing ray followed by a shift (tx, ty), in the
crop's normalised units (the crop spans [-1, 1]). On joints it is [x', y'] = R(theta) [x, y] + t with z kept: the
crop's image coordinates are the joints' x and y up to the perspective within one cube (a few per cent), which is
what SemiHand's 2D transforms assume too. Crops are resampled with nearest neighbours so that no depth between
the hand and the background is invented at the hand's edge; uncovered pixels are background (+1).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def sample_transforms(n: int, rng: np.random.Generator, max_deg: float, max_shift: float) -> torch.Tensor:
    """(n, 3) [theta (rad), tx, ty]: uniform rotations within +-max_deg and shifts within +-max_shift."""
    theta = rng.uniform(-max_deg, max_deg, n) * math.pi / 180.0
    shift = rng.uniform(-max_shift, max_shift, (n, 2))
    return torch.from_numpy(np.column_stack([theta, shift]).astype(np.float32))


def _rotation(params: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(params[:, 0]), torch.sin(params[:, 0])
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2)


def transform_crops(crops: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) normalised crops moved by T: the output at q shows the input at R^T (q - t)."""
    R = _rotation(params)
    Rt = R.transpose(1, 2)
    theta = torch.cat([Rt, -(Rt @ params[:, 1:, None])], 2)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    # grid_sample pads with zeros; shifting by -1 makes that the background value (+1) after shifting back
    return F.grid_sample(crops - 1.0, grid, mode="nearest", padding_mode="zeros", align_corners=False) + 1.0


def transform_joints(joints: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) normalised joints moved by T (x, y rotated and shifted, z kept)."""
    xy = joints[..., :2] @ _rotation(params).transpose(1, 2) + params[:, None, 1:]
    return torch.cat([xy, joints[..., 2:]], -1)


def invert_joints(joints: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """T^-1 on joints: what the joints of T(x) say about x."""
    xy = (joints[..., :2] - params[:, None, 1:]) @ _rotation(params)
    return torch.cat([xy, joints[..., 2:]], -1)


def strong_augment(crops: torch.Tensor, joints: torch.Tensor, rng: np.random.Generator,
                   max_deg: float = 30.0, max_shift: float = 0.12, dropout: float = 0.03
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """SemiHand's diversity augmentation of the labelled (synthetic) side: a larger rotation and shift, and
    scattered missing pixels such as real sensors drop."""
    params = sample_transforms(len(crops), rng, max_deg, max_shift)
    out = transform_crops(crops, params)
    holes = torch.from_numpy(rng.random(out.shape) < rng.uniform(0, dropout))
    return out.masked_fill(holes, 1.0), transform_joints(joints, params)
