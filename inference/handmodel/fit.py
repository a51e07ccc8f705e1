"""Fit the hand model to 3D joints (inverse kinematics), batched Levenberg-Marquardt in numpy.

Unknowns per hand: the global rotation (as a small increment on a running rotation matrix, so the axis-angle
singularity at pi never bites), the wrist translation, the 21 articulation angles and optionally the 8 shape
factors. Keypoints are rigid in their bone frames, so the Jacobian is analytic for the global part (a rigid
motion) and for the articulation (each angle is a hinge: w x (p - c)); only the shape factors, which scale
bones, are differenced, all perturbed hands going through one vectorised `kinematics.forward` call. Hands are
fitted in chunks; a hand that has converged drops out of its chunk's batch.

Joint limits are respected by projection (clipping after each step) with bound-active parameters frozen in the
step; weak priors (articulation towards 0, shape towards 1) keep the problem well posed where the targets do
not determine a parameter (the DIPs from NYU-14, a finger with missing joints). The two forearm angles do not
move any joint and stay 0. NaN targets are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import thumb_rest_frame
from .keypoints import KeypointSet, get_keypoint_set, keypoints
from .kinematics import PALM_BONE, Kinematics, axis_angle_to_matrix, forward, matrix_to_axis_angle
from .params import ARTIC, NUM_ARTIC, NUM_POSE, NUM_SHAPE, POSE_LOWER, POSE_UPPER, ROT, SHAPE_LOWER, \
    SHAPE_UPPER, TRANS

_FD_STEP = 1e-6
_MU_INIT, _MU_MIN, _MU_MAX = 1e-3, 1e-9, 1e9


@dataclass
class FitResult:
    pose: np.ndarray          # (B, 29)
    shape: np.ndarray         # (B, 8)
    residual_mm: np.ndarray   # (B,) mean distance over the joints that had targets
    per_joint: np.ndarray     # (B, J) distance per joint, NaN where the target was NaN


@dataclass(frozen=True)
class FitOptions:
    iterations: int = 30
    fit_shape: bool = True
    # Prior weights in mm^2 per unit^2: a 1 rad articulation angle costs as much as 1 mm^2 of summed joint error
    # by default (negligible where joints constrain it); a shape factor 0.1 off costs 2 mm^2.
    artic_prior: float = 1.0
    shape_prior: float = 200.0
    chunk: int = 256
    tolerance: float = 1e-6  # a hand has converged when a step improves its cost by less than this fraction


def fit_to_joints(targets: np.ndarray, joint_set: str | KeypointSet, shape: np.ndarray | None = None,
                  fit_shape: bool = True, iterations: int = 30, init_artic: np.ndarray | None = None,
                  progress: bool = False, **options) -> FitResult:
    """Fit pose (and shape) to targets (B, J, 3) in mm, camera frame, of `joint_set`.

    shape: (8,) or (B, 8) starting shape (default the reference hand); held fixed when fit_shape is False.
    init_artic: (21,) or (B, 21) starting articulation (default the open hand). The global pose is always
    initialised by Kabsch alignment of the palm-rigid keypoints of the starting hand to the targets.
    options: the other FitOptions fields (artic_prior, shape_prior, chunk, tolerance).
    """
    ks = get_keypoint_set(joint_set) if isinstance(joint_set, str) else joint_set
    opts = FitOptions(iterations=iterations, fit_shape=fit_shape, **options)
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 3 or targets.shape[1:] != (len(ks), 3):
        raise ValueError(f"targets have shape {targets.shape}, expected (B, {len(ks)}, 3) for {ks.name}")
    B = len(targets)
    shape0 = np.broadcast_to(np.ones(NUM_SHAPE) if shape is None else shape, (B, NUM_SHAPE)).astype(np.float64)
    artic0 = np.broadcast_to(np.zeros(NUM_ARTIC) if init_artic is None else init_artic, (B, NUM_ARTIC))
    pose, shape_out = np.zeros((B, NUM_POSE)), shape0.copy()
    starts = range(0, B, opts.chunk)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=f"fit {ks.name}", unit="chunk")
    for s in starts:
        sl = slice(s, s + opts.chunk)
        pose[sl], shape_out[sl] = _fit_chunk(targets[sl], ks, artic0[sl].copy(), shape0[sl].copy(), opts)
    per_joint = np.linalg.norm(keypoints(forward(pose, shape_out), ks) - targets, axis=-1)
    seen = np.isfinite(per_joint)
    with np.errstate(invalid="ignore", divide="ignore"):
        residual = np.where(seen, per_joint, 0.0).sum(-1) / seen.sum(-1)
    return FitResult(pose, shape_out, residual, per_joint)


# --- one chunk ------------------------------------------------------------------------------------------
def _fit_chunk(targets, ks, artic, shape, opts):
    valid = np.isfinite(targets).all(-1)
    w = valid.astype(np.float64)                    # (B, J) per-joint weight: 0 ignores a NaN target
    tgt = np.where(valid[..., None], targets, 0.0)
    R, t = _init_global(tgt, w, ks, artic, shape)
    n_free = NUM_ARTIC + (NUM_SHAPE if opts.fit_shape else 0)
    lower = np.concatenate([POSE_LOWER[ARTIC], SHAPE_LOWER])[:n_free]
    upper = np.concatenate([POSE_UPPER[ARTIC], SHAPE_UPPER])[:n_free]
    x = np.concatenate([artic, shape], -1)[:, :n_free]
    prior_w = np.concatenate([np.full(NUM_ARTIC, opts.artic_prior), np.full(NUM_SHAPE, opts.shape_prior)])[:n_free]
    prior_c = np.concatenate([np.zeros(NUM_ARTIC), np.ones(NUM_SHAPE)])[:n_free]
    mu = np.full(len(x), _MU_INIT)
    active = np.arange(len(x))  # hands still improving; converged ones drop out of the batch

    for _ in range(opts.iterations):
        if active.size == 0:
            break
        a = active
        fixed = None if opts.fit_shape else shape[a]
        points, jac = _hand_points_and_jacobian(x[a], fixed, ks)
        c0 = _cost(points, R[a], t[a], tgt[a], w[a], x[a], prior_w, prior_c)
        A, g = _normal_equations(points, jac, R[a], t[a], tgt[a], w[a], x[a], prior_w, prior_c)
        dx = _lm_step(A, g, mu[a], x[a], lower, upper)
        R1 = R[a] @ axis_angle_to_matrix(dx[:, 0:3])
        t1 = t[a] + dx[:, 3:6]
        x1 = np.clip(x[a] + dx[:, 6:], lower, upper)
        c1 = _cost(_hand_points(x1, fixed, ks), R1, t1, tgt[a], w[a], x1, prior_w, prior_c)
        better = c1 < c0
        R[a[better]], t[a[better]], x[a[better]] = R1[better], t1[better], x1[better]
        mu[a] = np.clip(np.where(better, mu[a] / 3, mu[a] * 4), _MU_MIN, _MU_MAX)
        converged = (better & (c0 - c1 <= opts.tolerance * c0)) | (mu[a] >= _MU_MAX)
        active = a[~converged]

    pose = np.zeros((len(x), NUM_POSE))
    pose[:, ROT] = matrix_to_axis_angle(R)
    pose[:, TRANS] = t
    pose[:, ARTIC] = x[:, :NUM_ARTIC]
    return pose, (x[:, NUM_ARTIC:] if opts.fit_shape else shape)


def _cost(points, R, t, tgt, w, x, prior_w, prior_c):
    """Half the weighted squared joint error plus the priors, per hand."""
    res = (R[:, None] @ points[..., None])[..., 0] + t[:, None] - tgt
    return 0.5 * ((w * (res ** 2).sum(-1)).sum(-1) + ((x - prior_c) ** 2 * prior_w).sum(-1))


def _hand_pose(artic: np.ndarray) -> np.ndarray:
    """Articulation (..., 21) -> full pose with identity global transform and the forearm at 0."""
    pose = np.zeros(artic.shape[:-1] + (NUM_POSE,))
    pose[..., ARTIC] = artic
    return pose


def _hand_kinematics(x, fixed_shape):
    """Kinematics in the hand frame for free parameters x (B, ..., n_free); the shape comes from x unless it is
    held fixed (fixed_shape (B, 8))."""
    if fixed_shape is None:
        return forward(_hand_pose(x[..., :NUM_ARTIC]), x[..., NUM_ARTIC:])
    shape = fixed_shape.reshape((len(fixed_shape),) + (1,) * (x.ndim - 2) + (NUM_SHAPE,))
    return forward(_hand_pose(x), np.broadcast_to(shape, x.shape[:-1] + (NUM_SHAPE,)))


def _hand_points(x, fixed_shape, ks):
    return keypoints(_hand_kinematics(x, fixed_shape), ks)


def _hand_points_and_jacobian(x, fixed_shape, ks):
    """Hand-frame keypoints (B, J, 3) and their Jacobian (B, J, 3, n_free): analytic for the articulation,
    forward differences for the shape factors (all perturbed hands in one forward call)."""
    n_shape = x.shape[-1] - NUM_ARTIC
    xs = np.repeat(x[:, None, :], n_shape + 1, axis=1)
    xs[:, 1:, NUM_ARTIC:] += _FD_STEP * np.eye(n_shape)
    kin = _hand_kinematics(xs, fixed_shape)
    pts = keypoints(kin, ks)                                           # (B, 1 + n_shape, J, 3)
    base = Kinematics(kin.R[:, 0], kin.origin[:, 0], kin.length[:, 0], kin.shape[:, 0])
    jac_artic = articulation_jacobian(base, ks, pts[:, 0])
    jac_shape = np.moveaxis((pts[:, 1:] - pts[:, :1]) / _FD_STEP, 1, -1)
    return pts[:, 0], np.concatenate([jac_artic, jac_shape], -1)


# Each articulation angle as (first bone it moves, its rotation axis). The axes restate kinematics.forward's
# parameterisation (rot_x: flexion about the bone's x; abduction = rot_z(-a) about the palm normal; thumb CMC
# abduction about the thumb rest frame's z; thumb MCP abduction about the metacarpal's z);
# tests/test_handmodel_fit.py checks them against finite differences of forward().
_AXIS_BONE_X, _AXIS_BONE_Z, _AXIS_PALM_NEG_Z, _AXIS_THUMB_REST_Z = range(4)
_ARTIC_JOINTS = [(1, _AXIS_BONE_X, 1), (1, _AXIS_THUMB_REST_Z, 1), (2, _AXIS_BONE_X, 2), (2, _AXIS_BONE_Z, 1),
                 (3, _AXIS_BONE_X, 3)] + [
    j for f in range(4) for j in ((4 + 3 * f, _AXIS_PALM_NEG_Z, 0), (4 + 3 * f, _AXIS_BONE_X, 4 + 3 * f),
                                  (5 + 3 * f, _AXIS_BONE_X, 5 + 3 * f), (6 + 3 * f, _AXIS_BONE_X, 6 + 3 * f))]
_MOVED_BONE = np.array([j[0] for j in _ARTIC_JOINTS])
_THUMB_REST_Z = thumb_rest_frame()[:, 2]


def articulation_jacobian(kin: Kinematics, ks: KeypointSet, points: np.ndarray) -> np.ndarray:
    """d keypoints / d articulation (B, J, 3, 21): a hinge with axis w through c moves a point p by w x (p - c),
    for every keypoint on the hinge's bone or further out along the same digit."""
    R = kin.R
    axes = np.empty(R.shape[:-3] + (NUM_ARTIC, 3))
    for i, (_, kind, b) in enumerate(_ARTIC_JOINTS):
        if kind == _AXIS_BONE_X:
            axes[..., i, :] = R[..., b, :, 0]
        elif kind == _AXIS_BONE_Z:
            axes[..., i, :] = R[..., b, :, 2]
        elif kind == _AXIS_PALM_NEG_Z:
            axes[..., i, :] = -R[..., PALM_BONE, :, 2]
        else:
            axes[..., i, :] = R[..., PALM_BONE, :, :] @ _THUMB_REST_Z
    centres = kin.origin[..., _MOVED_BONE, :]                          # (B, 21, 3)
    # Digit bones are numbered consecutively (1-3 thumb, 4-6 index, ...): same digit and not proximal.
    same_digit = (ks.bone[:, None] - 1) // 3 == (_MOVED_BONE[None, :] - 1) // 3
    moves = same_digit & (ks.bone[:, None] >= _MOVED_BONE[None, :])     # (J, 21)
    lever = points[..., :, None, :] - centres[..., None, :, :]          # (B, J, 21, 3)
    jac = np.cross(np.broadcast_to(axes[..., None, :, :], lever.shape), lever) * moves[..., None]
    return np.moveaxis(jac, -2, -1)


def _normal_equations(points, jac, R, t, tgt, w, x, prior_w, prior_c):
    """J^T J and J^T r over [rotation increment (3), translation (3), free parameters], priors included."""
    Rb = R[:, None]                                                    # (B, 1, 3, 3)
    cam = (Rb @ points[..., None])[..., 0]
    res = cam + t[:, None] - tgt                                       # (B, J, 3)
    # d(R exp([d]) p)/dd = -R [p]x = -[R p]x R ; d/dt = I ; d/dx = R dp/dx.
    J_rot = -_skew(cam) @ Rb                                           # (B, J, 3, 3)
    J_t = np.broadcast_to(np.eye(3), J_rot.shape)
    J_x = Rb @ jac                                                     # (B, J, 3, n)
    B, n_j = w.shape
    Jm = np.concatenate([J_rot, J_t, J_x], -1).reshape(B, 3 * n_j, -1)
    sw = np.repeat(w, 3, axis=1)[..., None]                            # per-row weight
    A = np.swapaxes(Jm * sw, 1, 2) @ Jm
    g = (np.swapaxes(Jm * sw, 1, 2) @ res.reshape(B, -1, 1))[..., 0]
    A[:, 6:, 6:] += np.diag(prior_w)
    g[:, 6:] += prior_w * (x - prior_c)
    return A, g


def _lm_step(A, g, mu, x, lower, upper):
    """Damped Gauss-Newton step; parameters held at a bound by the gradient are frozen for this step."""
    P = A.shape[-1]
    frozen = np.zeros(g.shape, bool)
    frozen[:, 6:] = ((x <= lower + 1e-9) & (g[:, 6:] > 0)) | ((x >= upper - 1e-9) & (g[:, 6:] < 0))
    diag = np.diagonal(A, axis1=1, axis2=2)
    M = A + (mu[:, None] * (diag + 1e-6))[:, :, None] * np.eye(P)
    keep = ~frozen
    M = M * (keep[:, :, None] & keep[:, None, :]) + np.eye(P) * frozen[:, :, None]
    return np.linalg.solve(M, -(g * keep)[..., None])[..., 0]


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros_like(v[..., 0])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1), np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


# --- initialisation -----------------------------------------------------------------------------------
def _init_global(tgt, w, ks, artic, shape):
    """Rotation (B, 3, 3) and translation (B, 3) aligning the starting hand's palm-rigid keypoints to the targets."""
    kin = forward(_hand_pose(artic), shape)
    src = keypoints(kin, ks)
    rigid = ks.palm_rigid()
    wr = w * rigid
    # Too few palm points seen: align everything that was seen instead (a rougher start, still a start).
    few = (wr > 0).sum(-1) < 3
    wr[few] = w[few]
    return kabsch(src, tgt, wr)


def kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted rigid alignment, batched: R (B, 3, 3), t (B, 3) minimising sum w |R src + t - dst|^2."""
    wn = w / np.maximum(w.sum(-1, keepdims=True), 1e-12)
    cs = np.einsum("bk,bki->bi", wn, src)
    cd = np.einsum("bk,bki->bi", wn, dst)
    H = np.einsum("bk,bki,bkj->bij", wn, src - cs[:, None], dst - cd[:, None])
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.transpose(0, 2, 1) @ U.transpose(0, 2, 1)))
    D = np.zeros_like(H)
    D[:, 0, 0], D[:, 1, 1], D[:, 2, 2] = 1, 1, np.where(d == 0, 1, d)
    R = Vt.transpose(0, 2, 1) @ D @ U.transpose(0, 2, 1)
    return R, cd - np.einsum("bij,bj->bi", R, cs)
