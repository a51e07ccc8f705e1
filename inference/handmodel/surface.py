"""The hand's surface as tapered capsules (sphere-mesh style), read off the bone frames.

A tapered capsule is the convex hull of two spheres (a, ra) and (b, rb). Fingers are one capsule per phalanx,
the palm a fan of capsules from the wrist row to the knuckle row plus the thenar pad, then a wrist capsule and
the forearm. The renderer intersects camera rays with these analytically.
"""
from __future__ import annotations

import numpy as np

from . import geometry as G
from .kinematics import DIGITS, FOREARM_BONE, PALM_BONE, Kinematics

# Part labels written by the renderer (0 = nothing). Scene surfaces use SCENE_PART and above.
PART_PALM, PART_FOREARM = 1, 7
PART_DIGIT = {d: 2 + i for i, d in enumerate(DIGITS)}
SCENE_PART = 10
HAND_PARTS = (PART_PALM,) + tuple(PART_DIGIT.values())
FOREARM_PIECES = 4  # the forearm is split so each piece has a tight image bounding box (same surface)
# The fingertip joint sits this fraction of the tip radius inside the surface.
TIP_INSET = 0.85


def _palm_local(shape: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Palm capsule ends (..., P, 3) x2 and radii (..., P, 2) in the hand frame."""
    size, palm_w, thick = shape[..., 0], shape[..., 1], shape[..., 7]
    scale = np.stack([size * palm_w, size, size], -1)[..., None, :]
    knuckles = np.array([G.MCP[f] for f in ("pinky", "ring", "middle", "index")])
    knuckles = knuckles - np.array([0.0, 6.0, 0.0])  # stop short of the MCP spheres of the fingers
    s = np.linspace(0.0, 3.0, G.PALM_RAYS)
    i = np.minimum(s.astype(int), 2)
    knuckle_row = knuckles[i] + (s - i)[:, None] * (knuckles[i + 1] - knuckles[i])
    w0, w1 = np.asarray(G.PALM_WRIST_ROW)
    wrist_row = w0 + np.linspace(0, 1, G.PALM_RAYS)[:, None] * (w1 - w0)
    th_a, th_b, th_ra, th_rb = G.THENAR
    wa, wb, wr = G.WRIST_CAPSULE
    a = np.concatenate([wrist_row, [th_a, wa]]) * scale
    b = np.concatenate([knuckle_row, [th_b, wb]]) * scale
    r = np.array([[G.PALM_RADIUS] * 2] * G.PALM_RAYS + [[th_ra, th_rb], [wr, wr]])
    r = r * (size * thick)[..., None, None]
    return a, b, r


def capsules(kin: Kinematics, forearm: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Capsules (..., N, 8) as [ax, ay, az, bx, by, bz, ra, rb] in the camera frame, and their part labels (N,)."""
    shape = kin.shape
    size_thick = (shape[..., 0] * shape[..., 7])[..., None]
    ends_a, ends_b, radii, parts = [], [], [], []

    pa, pb, pr = _palm_local(shape)
    ends_a.append(_points(kin, PALM_BONE, pa))
    ends_b.append(_points(kin, PALM_BONE, pb))
    radii.append(pr)
    parts += [PART_PALM] * pa.shape[-2]

    for d_i, digit in enumerate(DIGITS):
        for k in range(3):
            b = 1 + 3 * d_i + k
            axis = kin.R[..., b, :, 1]
            r_a = G.RADII[digit][k] * size_thick[..., 0]
            r_b = G.RADII[digit][k + 1] * size_thick[..., 0]
            length = kin.length[..., b]
            if k == 2:
                length = length - TIP_INSET * r_b
            start = kin.origin[..., b, :]
            ends_a.append(start[..., None, :])
            ends_b.append((start + axis * length[..., None])[..., None, :])
            radii.append(np.stack([r_a, r_b], -1)[..., None, :])
            parts.append(PART_DIGIT[digit])

    if forearm:
        axis = kin.R[..., FOREARM_BONE, :, 1]
        start = kin.origin[..., FOREARM_BONE, :]
        r0, r1 = (r * size_thick[..., 0] for r in G.FOREARM_RADII)
        cuts = np.linspace(0, 1, FOREARM_PIECES + 1)
        length = kin.length[..., FOREARM_BONE][..., None]
        pts = start[..., None, :] + axis[..., None, :] * (cuts[:, None] * length[..., None])
        rad = r0[..., None] + (r1 - r0)[..., None] * cuts
        ends_a.append(pts[..., :-1, :])
        ends_b.append(pts[..., 1:, :])
        radii.append(np.stack([rad[..., :-1], rad[..., 1:]], -1))
        parts += [PART_FOREARM] * FOREARM_PIECES

    caps = np.concatenate([np.concatenate(ends_a, -2), np.concatenate(ends_b, -2), np.concatenate(radii, -2)], -1)
    return caps, np.asarray(parts, dtype=np.int16)


def _points(kin: Kinematics, bone: int, local: np.ndarray) -> np.ndarray:
    """(..., P, 3) local points of one bone -> camera frame."""
    return kin.origin[..., bone, None, :] + np.einsum("...ij,...pj->...pi", kin.R[..., bone, :, :], local)
