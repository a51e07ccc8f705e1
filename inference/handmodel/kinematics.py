"""Forward kinematics of the hand model, vectorised over any batch of poses and shapes.

The skeleton is a tree of 17 bones, each a rigid frame (rotation R, origin o) with a length along its local y:
the palm (the hand frame itself, origin at the wrist), three segments per finger and the thumb, and the forearm.
Every other quantity (the 21 canonical joints, dataset keypoints, surface primitives) is read off these frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import geometry as G
from .params import ARTIC, NUM_POSE, NUM_SHAPE, ROT, TRANS, WRIST

DIGITS = ("thumb", "index", "middle", "ring", "pinky")
BONE_NAMES: tuple[str, ...] = ("palm",) + tuple(f"{d}_{k}" for d in DIGITS for k in (1, 2, 3)) + ("forearm",)
PALM_BONE = 0
FOREARM_BONE = 16


_LAST_SEGMENTS = np.array([3, 6, 9, 12, 15])
# Canonical joint j -> row of [bone origins 0..15, tips of the five digits].
_CANONICAL_ORDER = np.array([0] + [r for d in range(5) for r in (1 + 3 * d, 2 + 3 * d, 3 + 3 * d, 16 + d)])


def digit_bones(digit: str) -> tuple[int, int, int]:
    i = DIGITS.index(digit)
    return (1 + 3 * i, 2 + 3 * i, 3 + 3 * i)


@dataclass
class Kinematics:
    """Bone frames of a batch of hands, in the camera frame (mm)."""
    R: np.ndarray       # (..., 17, 3, 3) bone rotation; columns are the bone's x, y (along), z axes
    origin: np.ndarray  # (..., 17, 3)
    length: np.ndarray  # (..., 17)
    shape: np.ndarray   # (..., NUM_SHAPE)

    @property
    def joints(self) -> np.ndarray:
        """(..., 21, 3) canonical joints: the wrist, then per digit its three bone origins and its tip."""
        tips = self.origin[..., _LAST_SEGMENTS, :] + self.R[..., _LAST_SEGMENTS, :, :][..., 1] * self.length[..., _LAST_SEGMENTS, None]
        return np.concatenate([self.origin[..., :16, :], tips], axis=-2)[..., _CANONICAL_ORDER, :]

    def point(self, bone: int, local: np.ndarray) -> np.ndarray:
        """Points given in a bone's local frame (..., 3) -> camera frame."""
        return self.origin[..., bone, :] + np.einsum("...ij,...j->...i", self.R[..., bone, :, :], local)


def _rot(a: np.ndarray, i: int, j: int) -> np.ndarray:
    """Rotation by angle a (any batch shape) in the plane of axes i -> j."""
    a = np.asarray(a, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(a.shape + (3, 3))
    R[..., 3 - i - j, 3 - i - j] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def rot_x(a: np.ndarray) -> np.ndarray:
    return _rot(a, 1, 2)


def rot_z(a: np.ndarray) -> np.ndarray:
    return _rot(a, 0, 1)


def rot_abd(a: np.ndarray) -> np.ndarray:
    """Abduction: rotation about the palm normal, positive towards the thumb (radial, +x)."""
    return rot_z(-np.asarray(a))


def axis_angle_to_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues' formula, batched: (..., 3) -> (..., 3, 3)."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    k = r / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = np.zeros_like(kx)
    Kx = np.stack([np.stack([z, -kz, ky], -1), np.stack([kz, z, -kx], -1), np.stack([-ky, kx, z], -1)], -2)
    th = theta[..., None]
    return np.eye(3) + np.sin(th) * Kx + (1 - np.cos(th)) * (Kx @ Kx)


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Inverse of axis_angle_to_matrix, batched (stable near 0 and pi)."""
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
    theta = np.arccos(cos)
    v = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    sin = np.sin(theta)
    axis = v / np.maximum(2 * sin, 1e-12)[..., None]
    # Near pi the antisymmetric part vanishes: take the axis from the symmetric part instead.
    near_pi = theta > np.pi - 1e-3
    if np.any(near_pi):
        B = (R[near_pi] + np.eye(3)) / 2
        diag = np.clip(np.diagonal(B, axis1=-2, axis2=-1), 0, None)
        ax = np.sqrt(diag)
        i = np.argmax(diag, axis=-1)
        col = B[np.arange(len(i)), :, i]
        ax = col / np.maximum(np.linalg.norm(col, axis=-1, keepdims=True), 1e-12)
        sign = np.sign(np.sum(ax * v[near_pi], -1, keepdims=True))
        axis[near_pi] = ax * np.where(sign == 0, 1, sign)
    return axis * theta[..., None]


def palm_centre_local(shape: np.ndarray | None = None) -> np.ndarray:
    """Palm centre (mean of the wrist and the four finger MCPs, as skeleton.palm_centre) in the hand frame.

    It does not depend on the articulation, which lets a scene place the palm without running kinematics."""
    shape = np.ones(NUM_SHAPE) if shape is None else np.asarray(shape, dtype=np.float64)
    mcps = np.array([G.MCP[f] for f in ("index", "middle", "ring", "pinky")])
    scale = np.stack([shape[..., 0] * shape[..., 1], shape[..., 0], shape[..., 0]], -1)
    return mcps.sum(0) * scale / 5.0


_THUMB_FRAME = G.thumb_rest_frame()
_SPLAY = {f: rot_abd(np.deg2rad(G.REST_SPLAY_DEG[f])) for f in G.REST_SPLAY_DEG}
_FOREARM_FLIP = np.diag([-1.0, -1.0, 1.0])  # the forearm's y points proximally


def forward(pose: np.ndarray, shape: np.ndarray | None = None) -> Kinematics:
    """Bone frames for pose (..., 29) and shape (..., 8) (default: the reference hand)."""
    pose = np.asarray(pose, dtype=np.float64)
    batch = pose.shape[:-1]
    if pose.shape[-1] != NUM_POSE:
        raise ValueError(f"pose has {pose.shape[-1]} values, expected {NUM_POSE}")
    shape = np.ones(batch + (NUM_SHAPE,)) if shape is None else np.broadcast_to(shape, batch + (NUM_SHAPE,))
    size, palm_w = shape[..., 0], shape[..., 1]
    art = pose[..., ARTIC]
    R = np.empty(batch + (17, 3, 3))
    o = np.empty(batch + (17, 3))
    L = np.zeros(batch + (17,))
    R[..., PALM_BONE, :, :] = np.eye(3)
    o[..., PALM_BONE, :] = 0.0
    L[..., PALM_BONE] = G.MCP["middle"][1] * size

    def chain(first_bone, base_R, base_o, lengths, angles):
        # angles: (abd, flex) at the base joint, then flex at the next two joints.
        Rk = base_R @ rot_abd(angles[0]) @ rot_x(angles[1])
        ok = base_o
        for k in range(3):
            b = first_bone + k
            R[..., b, :, :] = Rk
            o[..., b, :] = ok
            L[..., b] = lengths[k]
            ok = ok + Rk[..., :, 1] * lengths[k][..., None]
            if k < 2:
                Rk = Rk @ rot_x(angles[2 + k])

    # Thumb: CMC (flex, abd), MCP (flex, abd), IP (flex). The MCP abduction rides on the proximal segment.
    t_len = [np.asarray(G.PHALANX["thumb"][k]) * size * shape[..., 2] for k in range(3)]
    t_cmc = np.asarray(G.THUMB_CMC) * np.stack([size * palm_w, size, size], -1)
    Rm = _THUMB_FRAME @ rot_z(art[..., 1]) @ rot_x(art[..., 0])
    R[..., 1, :, :] = Rm
    o[..., 1, :] = t_cmc
    L[..., 1] = t_len[0]
    o2 = t_cmc + Rm[..., :, 1] * t_len[0][..., None]
    Rp = Rm @ rot_z(art[..., 3]) @ rot_x(art[..., 2])
    R[..., 2, :, :] = Rp
    o[..., 2, :] = o2
    L[..., 2] = t_len[1]
    R[..., 3, :, :] = Rp @ rot_x(art[..., 4])
    o[..., 3, :] = o2 + Rp[..., :, 1] * t_len[1][..., None]
    L[..., 3] = t_len[2]

    for i, f in enumerate(("index", "middle", "ring", "pinky")):
        a = art[..., 5 + 4 * i:9 + 4 * i]
        lengths = [G.PHALANX[f][k] * size * shape[..., 3 + i] for k in range(3)]
        base_o = np.asarray(G.MCP[f]) * np.stack([size * palm_w, size, size], -1)
        chain(4 + 3 * i, _SPLAY[f], base_o, lengths, [a[..., 0], a[..., 1], a[..., 2], a[..., 3]])

    R[..., FOREARM_BONE, :, :] = rot_x(-pose[..., WRIST][..., 0]) @ rot_z(pose[..., WRIST][..., 1]) @ _FOREARM_FLIP
    o[..., FOREARM_BONE, :] = 0.0
    L[..., FOREARM_BONE] = G.FOREARM_LENGTH * size

    # Hand frame -> camera frame.
    Rg = axis_angle_to_matrix(pose[..., ROT])
    R = Rg[..., None, :, :] @ R
    o = np.einsum("...ij,...bj->...bi", Rg, o) + pose[..., None, TRANS]
    return Kinematics(R=R, origin=o, length=L, shape=np.asarray(shape))
