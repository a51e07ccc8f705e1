"""AWH's depth regulariser: our hand model drawn from predicted joints and compared with the observed crop.

The hand is drawn as spheres along every bone of the 21-joint skeleton (radii of the hand model's capsules,
training/.. inference/handmodel/geometry.py, scaled by the hand's size) plus three that fill the palm, and ray cast
into the crop in its normalised units with the crop's own perspective, so the comparison needs no labels:

    depth term       |rendered - observed| where both show the hand (moves joints in depth)
    silhouette term  |soft coverage - observed hand| near the drawn hand (moves joints sideways)

"Observed hand" is any pixel nearer than the cube's back face within `margin_mm` of the drawn hand, so the body
behind and the far forearm do not count. Everything is torch, differentiable in the joints.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from handtrack.inference import skeleton
from handtrack.inference.handmodel.geometry import RADII

SPHERES_PER_BONE = 4
_WRIST_RADIUS_MM = 18.0
_PALM_RADIUS_MM = 16.0
_PALM_FILL = ((0, 5, 9), (0, 9, 13), (0, 13, 17))  # triangles whose centroids get a sphere


def joint_radii_mm() -> np.ndarray:
    """(21,) radius of the hand model at each joint (reference hand): the digits' capsule radii, base to tip."""
    r = np.full(skeleton.NUM_JOINTS, _WRIST_RADIUS_MM)
    for finger, joints in skeleton.FINGER_JOINTS.items():
        r[list(joints)] = RADII[finger]
    return r


def sphere_set(joints: torch.Tensor, radii_mm: torch.Tensor, half_mm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 21, 3) normalised joints -> sphere centres (B, M, 3) and radii (M,) in normalised units."""
    t = torch.linspace(0.0, 1.0, SPHERES_PER_BONE)
    parents = torch.tensor([p for p, _ in skeleton.BONES])
    children = torch.tensor([c for _, c in skeleton.BONES])
    a, b = joints[:, parents], joints[:, children]                      # (B, 20, 3)
    centres = a[:, :, None] + (b - a)[:, :, None] * t[None, None, :, None]  # (B, 20, K, 3)
    radii = radii_mm[parents][:, None] + (radii_mm[children] - radii_mm[parents])[:, None] * t[None]
    fill = torch.stack([joints[:, list(tri)].mean(1) for tri in _PALM_FILL], 1)
    centres = torch.cat([centres.reshape(len(joints), -1, 3), fill], 1)
    radii = torch.cat([radii.reshape(-1), torch.full((len(_PALM_FILL),), _PALM_RADIUS_MM)])
    return centres, radii / half_mm


def render(joints: torch.Tensor, centre_mm: torch.Tensor, radii_mm: torch.Tensor, cube_mm: float, size: int,
           sharpness_px: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ray cast the spheres into a size x size crop: (depth (B, S, S), normalised, +1 where nothing; soft
    coverage (B, S, S) in 0..1; distance from each pixel to the nearest sphere's rim (B, S, S), normalised)."""
    half = cube_mm / 2
    centres, r = sphere_set(joints, radii_mm, half)
    # The crop's perspective: a point at depth Zc + z*half appears at Zc / (Zc + z*half) of its offset, in the
    # crop's units, where Zc is the crop centre's depth.
    zc = centre_mm[:, 2, None] / half                                    # (B, 1)
    xc, yc = centre_mm[:, 0, None] / half, centre_mm[:, 1, None] / half
    depth_of = zc + centres[..., 2]
    u = zc * ((xc + centres[..., 0]) / depth_of - xc / zc)              # (B, M)
    v = zc * ((yc + centres[..., 1]) / depth_of - yc / zc)
    rr = r[None] * zc / depth_of                                         # projected radii
    grid = (torch.arange(size, dtype=joints.dtype) + 0.5) / size * 2 - 1
    du = grid[None, None, None, :] - u[..., None, None]                  # (B, M, 1, S)
    dv = grid[None, None, :, None] - v[..., None, None]                  # (B, M, S, 1)
    d2 = du ** 2 + dv ** 2                                               # (B, M, S, S)
    inside = d2 < rr[..., None, None] ** 2
    surface = centres[..., 2, None, None] - torch.sqrt(torch.clamp(rr[..., None, None] ** 2 - d2, min=1e-8))
    surface = torch.where(inside, surface, torch.ones_like(surface))
    depth = surface.min(1).values.clamp(-1.0, 1.0)
    rim = torch.sqrt(d2 + 1e-12) - rr[..., None, None]                   # < 0 inside
    sigma = sharpness_px * 2.0 / size
    coverage = 1.0 - torch.prod(1.0 - torch.sigmoid(-rim / sigma), dim=1)
    return depth, coverage, rim.min(1).values


def depth_regulariser(joints: torch.Tensor, crops: torch.Tensor, centre_mm: torch.Tensor, cube_mm: float,
                      size: int = 64, size_factor: float = 1.0, margin_mm: float = 15.0) -> dict[str, torch.Tensor]:
    """AWH's regulariser for predicted normalised joints (B, 21, 3) on their observed crops (B, 1, S, S):
    {"depth": mean L1 on pixels both call hand, "silhouette": mean L1 of coverage near the hand}."""
    observed = F.interpolate(crops, size=(size, size), mode="nearest")[:, 0]
    radii = torch.from_numpy(joint_radii_mm() * size_factor).to(joints.dtype)
    depth, coverage, rim = render(joints.float(), centre_mm.float(), radii.float(), cube_mm, size)
    seen = (observed < 0.999).float()
    near = (rim.detach() < margin_mm / (cube_mm / 2)).float()
    both = seen * (depth.detach() < 0.999).float()
    l_depth = ((depth - observed).abs() * both).sum() / both.sum().clamp(min=1.0)
    l_sil = ((coverage - seen).abs() * near).sum() / near.sum().clamp(min=1.0)
    return {"depth": l_depth, "silhouette": l_sil}
