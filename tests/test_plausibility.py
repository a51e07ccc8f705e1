"""Per-joint plausibility: the formula on a synthetic plane, and ground truth vs corrupted poses on real NYU depth."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handtrack.inference.camera import NYU, Intrinsics, deproject
from handtrack.inference.datasets import nyu
from handtrack.inference.plausibility import (frame_plausibility, joint_plausibility, residual_score,
                                              surface_residual)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nyu"
needs_nyu = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared NYU reference data not found at {DATA}")

K = Intrinsics(200.0, 200.0, 32.0, 24.0, 64, 48)


def _plane(z_mm: float = 500.0) -> np.ndarray:
    return np.full((K.height, K.width), z_mm, np.float32)


def _joint_at(u: float, v: float, z: float) -> np.ndarray:
    return deproject(np.array([[u, v]]), np.array([z]), K)


@pytest.mark.parametrize("z, expected", [
    (500.0, 1.0),                    # on the surface
    (530.0, 1.0),                    # inside the hand
    (490.0, 1.0),                    # at the front tolerance
    (480.0, np.exp(-0.5)),           # 20 mm in front: 10 mm past the tolerance = one softness
    (560.0, np.exp(-0.5 * 2 ** 2)),  # 60 mm behind: 20 mm past the thickness
])
def test_score_follows_the_documented_formula(z, expected):
    assert joint_plausibility(_joint_at(30, 20, z), _plane(), K)[0] == pytest.approx(expected)


def test_window_minimum_bridges_holes_and_prefers_the_nearer_surface():
    depth = _plane(900.0)
    depth[18:23, 28:33] = 500.0   # a 5x5 "finger" patch in front of a far background
    depth[20, 30] = 0.0           # a hole right under the joint
    assert surface_residual(_joint_at(30, 20, 510), depth, K)[0] == pytest.approx(10.0)
    # At the patch's corner the window still sees the finger, not the background.
    assert surface_residual(_joint_at(32, 22, 510), depth, K)[0] == pytest.approx(10.0)
    # Two pixels past the patch, the 3x3 window only sees background: the joint floats in front of it.
    assert surface_residual(_joint_at(35, 20, 510), depth, K, window=3)[0] == pytest.approx(-390.0)


def test_unusable_joints_and_depth_score_zero_without_raising():
    joints = np.array([[np.nan, 0, 500], [0, 0, 0], [0, 0, -100], [np.inf, 0, 500],
                       [1e6, 0, 500], [0, 0, np.inf], [0, 0, 500]], dtype=float)
    scores = joint_plausibility(joints, _plane(), K)
    np.testing.assert_array_equal(scores, [0, 0, 0, 0, 0, 0, 1])
    assert np.isnan(surface_residual(joints, _plane(), K)[:6]).all()
    assert not joint_plausibility(joints, np.zeros((K.height, K.width), np.float32), K).any()
    assert joint_plausibility(np.zeros((0, 3)), _plane(), K).shape == (0,)
    assert frame_plausibility([]) == 0.0
    assert residual_score(np.array([np.nan]))[0] == 0.0


def test_scores_are_bounded_for_arbitrary_poses():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0, 1500, (K.height, K.width)).astype(np.float32)
    scores = joint_plausibility(rng.normal(0, 300, (500, 3)) + [0, 0, 600], depth, K)
    assert scores.shape == (500,) and scores.min() >= 0 and scores.max() <= 1


# --- the real NYU frame -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def frame():
    return nyu.load_frame(DATA / "test_depth_1_0000001.png", DATA / "test_joints36_xyz_0000001.json")


def _shift_pixels(joints: np.ndarray, du: float) -> np.ndarray:
    out = joints.copy()
    out[:, 0] += du * out[:, 2] / NYU.fx
    return out


@needs_nyu
def test_ground_truth_scores_high(frame):
    scores = joint_plausibility(frame.joints_xyz, frame.depth_mm, NYU)
    assert scores.min() > 0.9 and frame_plausibility(scores) > 0.95  # measured: 1.0 for all 36 joints


@needs_nyu
def test_corrupted_poses_score_clearly_lower(frame):
    joints, depth = frame.joints_xyz, frame.depth_mm
    truth = frame_plausibility(joint_plausibility(joints, depth, NYU))
    toward = frame_plausibility(joint_plausibility(joints - [0, 0, 40], depth, NYU))
    away = frame_plausibility(joint_plausibility(joints + [0, 0, 80], depth, NYU))
    assert toward < truth - 0.4  # measured 0.33
    assert away < 0.05           # measured 0.0001


@needs_nyu
def test_joints_moved_off_the_hand_score_zero(frame):
    # 30 px to the left moves the little finger (the hand's left edge) onto the background; joints of other
    # fingers land on their neighbours and stay plausible: the score checks the surface, not the anatomy.
    scores = joint_plausibility(_shift_pixels(frame.joints_xyz, -30), frame.depth_mm, NYU)
    little = slice(0, 6)
    assert scores[little].max() < 0.01
    assert frame_plausibility(scores) < 0.8  # measured 0.67
