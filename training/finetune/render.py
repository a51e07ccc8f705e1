"""AWH's depth regulariser: our hand model placed at the predicted joints and compared with the observed crop.

The hand is drawn as spheres along every bone of the 21-joint skeleton (radii of the hand model's capsules,
inference/handmodel/geometry.py, times a thickness factor) plus three that fill the palm. The comparison goes
from the data to the model: every observed point of the crop near the hand, back-projected with the crop's own
perspective, should lie on the surface of its nearest sphere,

    l_depth = mean over those points of | |p - c_s| - r_s |,  s the sphere nearest p

in the crop's normalised units. Points on the forearm's side of the wrist (sleeves, watches, the arm) and points
farther than `margin_mm` from every sphere (the body, other objects) are left out. Drawing the model into the
image and comparing depth maps or silhouettes (tried first) was biased: started at the true joints of the user
domain, its gradient walked them 12-24 mm away, because what a thin sphere model cannot cover (thick fingers,
the sleeve) it pulls joints towards. From the data side, started at the true joints and with the thickness
fitted by `fit_thickness`, the drift is measured in docs/finetune.md.
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
THICKNESS = np.round(np.arange(0.8, 2.21, 0.1), 2)  # factors fit_thickness tries


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


def observed_points(crops: torch.Tensor, centre_mm: torch.Tensor, cube_mm: float, size: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The crops' pixels as 3D points in the crop's normalised frame: (B, size*size, 3) and a mask of the pixels
    that hold a surface inside the cube. A pixel at normalised image position (a, b) with normalised depth z
    lies at x = (a + xc) (zc + z) / zc - xc, with (xc, zc) the crop centre / (cube / 2)."""
    half = cube_mm / 2
    depth = F.interpolate(crops, size=(size, size), mode="nearest")[:, 0]   # (B, S, S)
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    zc = centre_mm[:, 2, None, None] / half
    xc, yc = centre_mm[:, 0, None, None] / half, centre_mm[:, 1, None, None] / half
    scale = (zc + depth) / zc
    x = (grid[None, None, :] + xc) * scale - xc
    y = (grid[None, :, None] + yc) * scale - yc
    points = torch.stack([x, y, depth], -1).reshape(len(crops), -1, 3)
    return points, (depth < 0.999).reshape(len(crops), -1)


def point_residuals(joints: torch.Tensor, points: torch.Tensor, seen: torch.Tensor, radii_mm: torch.Tensor,
                    cube_mm: float, margin_mm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per point, | |p - c| - r | to the nearest sphere surface (B, P), and the mask of points that count."""
    centres, r = sphere_set(joints, radii_mm, cube_mm / 2)
    signed = torch.cdist(points, centres) - r[None, None, :]                 # (B, P, M)
    nearest = signed.abs().min(-1).values
    wrist = joints[:, None, 0, :2]
    towards = joints[:, list(skeleton.PALM_JOINTS[1:]), :2].mean(1)[:, None] - wrist
    hand_side = ((points[..., :2] - wrist) * towards).sum(-1) > 0
    mask = seen & hand_side & (signed.min(-1).values.detach() < margin_mm / (cube_mm / 2))
    return nearest, mask


def depth_regulariser(joints: torch.Tensor, crops: torch.Tensor, centre_mm: torch.Tensor, cube_mm: float,
                      size: int = 48, thickness: float = 1.0, margin_mm: float = 20.0) -> torch.Tensor:
    """Mean distance (normalised units) from the observed hand points of each crop to the hand model placed at
    the normalised joints (B, 21, 3); differentiable in the joints."""
    points, seen = observed_points(crops.float(), centre_mm.float(), cube_mm, size)
    radii = torch.from_numpy((joint_radii_mm() * thickness).astype(np.float32))
    nearest, mask = point_residuals(joints.float(), points, seen, radii, cube_mm, margin_mm)
    m = mask.float()
    return (nearest * m).sum() / m.sum().clamp(min=1.0)


@torch.no_grad()
def fit_thickness(joints: torch.Tensor, crops: torch.Tensor, centre_mm: torch.Tensor, cube_mm: float) -> float:
    """The thickness factor (x the reference hand's radii) that best explains the observed points around the
    given joints (the session's pseudo-labels): a user's fingers are as thick as they are, and a model thinner
    than the hand pulls its joints towards the camera by the difference."""
    return float(min(THICKNESS, key=lambda t: float(depth_regulariser(joints, crops, centre_mm, cube_mm,
                                                                       thickness=float(t)))))
