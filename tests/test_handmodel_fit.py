"""Keypoint sets on the hand model, fit-to-joints, and the NYU pose prior."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handtrack.inference import skeleton
from handtrack.inference.handmodel import kinematics, params
from handtrack.inference.handmodel.fit import articulation_jacobian, fit_to_joints
from handtrack.inference.handmodel.keypoints import KeypointSet, get_keypoint_set, keypoints
from handtrack.training.synth.pose_prior import GaussianMixture, PosePrior, load_nyu_xyz

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
# Median fit residual on all 8252 NYU frames: 1.80 mm with the 36 joints, 1.36 mm with the 14 (1.81 / 1.47 mm on
# the 20 frames tested here).
NYU36_MEDIAN_RESIDUAL_MM = 2.2
NYU14_MEDIAN_RESIDUAL_MM = 1.8


def random_hands(rng: np.random.Generator, n: int):
    """Articulations uniform within the joint limits, any orientation, a moderate shape, the wrist 400-800 mm in
    front of the camera."""
    pose = np.zeros((n, params.NUM_POSE))
    pose[:, params.ARTIC] = rng.uniform(params.POSE_LOWER[params.ARTIC], params.POSE_UPPER[params.ARTIC],
                                        (n, params.NUM_ARTIC))
    axis = rng.normal(size=(n, 3))
    pose[:, params.ROT] = axis / np.linalg.norm(axis, axis=1, keepdims=True) * rng.uniform(0, np.pi, (n, 1))
    pose[:, params.TRANS] = rng.uniform([-150, -100, 400], [150, 100, 800], (n, 3))
    shape = rng.uniform(0.9, 1.1, (n, params.NUM_SHAPE))
    return pose, shape


def test_canonical_and_msra_keypoints_are_the_model_joints():
    pose, shape = random_hands(np.random.default_rng(0), 5)
    kin = kinematics.forward(pose, shape)
    np.testing.assert_allclose(keypoints(kin, "canonical21"), kin.joints, atol=1e-9)
    np.testing.assert_allclose(keypoints(kin, "msra21"), kin.joints[:, list(skeleton.MSRA21_TO_CANONICAL)], atol=1e-9)
    icvl = keypoints(kin, "icvl16")
    np.testing.assert_allclose(icvl[:, 0], skeleton.palm_centre(kin.joints), atol=1e-9)


def test_every_joint_set_has_its_names():
    for name, names in skeleton.JOINT_SETS.items():
        ks = get_keypoint_set(name)
        assert ks.names == names
        assert ((ks.bone >= 0) & (ks.bone < len(kinematics.BONE_NAMES))).all()


def test_nyu14_is_the_nyu36_subset_and_json_round_trips():
    kin = kinematics.forward(params.rest_pose())
    np.testing.assert_allclose(keypoints(kin, "nyu14"), keypoints(kin, "nyu36")[list(skeleton.NYU14_FROM_36)])
    ks = get_keypoint_set("nyu36")
    back = KeypointSet.from_json_dict(json.loads(json.dumps(ks.to_json_dict())), skeleton.NYU36_NAMES)
    np.testing.assert_allclose(keypoints(kin, back), keypoints(kin, ks), atol=0.01)


def test_articulation_jacobian_matches_finite_differences():
    pose, shape = random_hands(np.random.default_rng(1), 3)
    ks = get_keypoint_set("nyu36")
    kin = kinematics.forward(pose, shape)
    points = keypoints(kin, ks)
    analytic = articulation_jacobian(kin, ks, points)
    eps = 1e-6
    for i in range(params.NUM_ARTIC):
        bumped = pose.copy()
        bumped[:, params.ARTIC.start + i] += eps
        numeric = (keypoints(kinematics.forward(bumped, shape), ks) - points) / eps
        np.testing.assert_allclose(analytic[..., i], numeric, atol=1e-3, err_msg=params.POSE_NAMES[6 + i])


@pytest.mark.parametrize("joint_set, tolerance_mm", [("canonical21", 1.0), ("nyu36", 3.0)])
def test_fit_recovers_a_random_pose(joint_set, tolerance_mm):
    pose, shape = random_hands(np.random.default_rng(2), 24)
    targets = keypoints(kinematics.forward(pose, shape), joint_set)
    fit = fit_to_joints(targets, joint_set)
    assert fit.pose.shape == (24, params.NUM_POSE) and fit.shape.shape == (24, params.NUM_SHAPE)
    assert fit.residual_mm.max() < tolerance_mm
    assert np.all(fit.pose[:, params.WRIST] == 0)
    assert np.all(fit.pose[:, params.ARTIC] >= params.POSE_LOWER[params.ARTIC])
    assert np.all(fit.pose[:, params.ARTIC] <= params.POSE_UPPER[params.ARTIC])
    assert np.all((fit.shape >= params.SHAPE_LOWER) & (fit.shape <= params.SHAPE_UPPER))
    # The 21 canonical joints of the fitted hand, not just the fitted points, are where they were.
    joints_fit = kinematics.forward(fit.pose, fit.shape).joints
    assert np.median(np.linalg.norm(joints_fit - kinematics.forward(pose, shape).joints, axis=-1)) < tolerance_mm


def test_fit_with_fixed_shape_ignores_nan_targets():
    pose, shape = random_hands(np.random.default_rng(3), 8)
    targets = keypoints(kinematics.forward(pose, shape), "canonical21")
    targets[:, [4, 8]] = np.nan            # two fingertips unseen
    targets[0, 1:] = np.nan                # a hand with only its wrist: nothing to fit, but no crash
    fit = fit_to_joints(targets, "canonical21", shape=shape, fit_shape=False)
    assert np.isnan(fit.per_joint[:, [4, 8]]).all()
    assert np.isfinite(fit.residual_mm).all()
    assert fit.residual_mm[1:].max() < 1.0
    np.testing.assert_array_equal(fit.shape, shape)


@pytest.mark.skipif(not (DATA / "nyu" / "test_joints36_uvd.npz").is_file(), reason="no ../shared/data/nyu")
def test_fit_to_real_nyu_frames():
    xyz = load_nyu_xyz(DATA)[::413]      # 20 frames over both subjects
    assert len(xyz) == 20
    fit = fit_to_joints(xyz, "nyu36")
    assert np.median(fit.residual_mm) < NYU36_MEDIAN_RESIDUAL_MM
    fit14 = fit_to_joints(xyz[:, list(skeleton.NYU14_FROM_36)], "nyu14")
    assert np.median(fit14.residual_mm) < NYU14_MEDIAN_RESIDUAL_MM


def test_prior_samples_are_natural():
    prior = PosePrior.load()
    artic, shape = prior.sample(np.random.default_rng(7), 3000)
    assert artic.shape == (3000, params.NUM_ARTIC) and shape.shape == (3000, params.NUM_SHAPE)
    assert np.all((artic >= params.POSE_LOWER[params.ARTIC]) & (artic <= params.POSE_UPPER[params.ARTIC]))
    assert np.all((shape >= params.SHAPE_LOWER) & (shape <= params.SHAPE_UPPER))
    again, _ = prior.sample(np.random.default_rng(7), 3000)
    np.testing.assert_array_equal(artic, again)
    # Fingers flex together: the PIP flexions of neighbouring fingers correlate, and so do PIP and DIP.
    name = {n: i for i, n in enumerate(params.POSE_NAMES[params.ARTIC])}
    corr = np.corrcoef(artic, rowvar=False)
    assert corr[name["index_pip_flex"], name["middle_pip_flex"]] > 0.3
    assert corr[name["middle_pip_flex"], name["ring_pip_flex"]] > 0.3
    assert corr[name["ring_pip_flex"], name["ring_dip_flex"]] > 0.3


def test_gaussian_mixture_finds_two_clusters():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 0.5, (600, 2)), rng.normal(4, 1.0, (400, 2))])
    gm = GaussianMixture.fit(X, 2, rng)
    order = np.argsort(gm.means[:, 0])
    np.testing.assert_allclose(gm.weights[order], [0.6, 0.4], atol=0.03)
    np.testing.assert_allclose(gm.means[order], [[-3, -3], [4, 4]], atol=0.2)
    assert gm.sample(rng, 10).shape == (10, 2)
