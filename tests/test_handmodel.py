"""Kinematics and surface of the parametric hand."""
import numpy as np
import pytest

from handtrack.inference import skeleton
from handtrack.inference.handmodel import geometry as G
from handtrack.inference.handmodel import kinematics as K
from handtrack.inference.handmodel import params as P
from handtrack.inference.handmodel import surface


def _random_pose(rng, n):
    pose = P.rest_pose((n,))
    pose[:, P.ARTIC] = rng.uniform(P.POSE_LOWER[P.ARTIC], P.POSE_UPPER[P.ARTIC], (n, P.NUM_ARTIC))
    pose[:, P.ROT] = rng.normal(0, 1.5, (n, 3))
    return pose


def test_rest_pose_faces_the_camera_fingers_up():
    j = K.forward(P.rest_pose()).joints
    assert j.shape == (21, 3)
    assert j[12, 1] < j[0, 1] - 150  # middle tip well above the wrist (image y is down)
    assert j[4, 0] > j[20, 0]  # right hand, palm to camera: the thumb is on the image's right


def test_bone_lengths_do_not_depend_on_articulation_or_rotation():
    rng = np.random.default_rng(0)
    shape = np.array([1.1, 0.95, 1.0, 1.05, 0.9, 1.0, 1.0, 1.0])
    j = K.forward(_random_pose(rng, 50), shape).joints
    j0 = K.forward(P.rest_pose(), shape).joints
    for parent, child in skeleton.BONES:
        lengths = np.linalg.norm(j[:, child] - j[:, parent], axis=-1)
        assert lengths == pytest.approx(np.linalg.norm(j0[child] - j0[parent]), abs=1e-9)
    mid = [9, 10, 11, 12]
    expected = np.array(G.PHALANX["middle"]) * 1.1 * 0.9
    assert np.linalg.norm(np.diff(j0[mid], axis=0), axis=-1) == pytest.approx(expected)


def test_flexion_bends_fingers_towards_the_palm():
    pose = P.rest_pose()
    pose[P.POSE_NAMES.index("index_pip_flex")] = np.pi / 2
    j = K.forward(pose).joints
    # palm faces the camera (-z), so a flexed index tip comes towards the camera
    assert j[8, 2] < j[6, 2] - 15


def test_axis_angle_round_trip():
    rng = np.random.default_rng(1)
    r = rng.normal(0, 1.2, (200, 3))
    R = K.axis_angle_to_matrix(r)
    np.testing.assert_allclose(K.axis_angle_to_matrix(K.matrix_to_axis_angle(R)), R, atol=1e-9)
    near_pi = np.array([[np.pi - 1e-5, 0, 0], [0, 0, np.pi]])
    Rp = K.axis_angle_to_matrix(near_pi)
    np.testing.assert_allclose(K.axis_angle_to_matrix(K.matrix_to_axis_angle(Rp)), Rp, atol=1e-6)


def test_palm_centre_local_matches_kinematics():
    rng = np.random.default_rng(2)
    pose = _random_pose(rng, 5)
    shape = rng.uniform(0.9, 1.1, (5, P.NUM_SHAPE))
    kin = K.forward(pose, shape)
    expected = np.einsum("nij,nj->ni", K.axis_angle_to_matrix(pose[:, P.ROT]), K.palm_centre_local(shape))
    np.testing.assert_allclose(skeleton.palm_centre(kin.joints), expected + pose[:, P.TRANS], atol=1e-9)


def test_fingertips_lie_just_inside_the_surface():
    kin = K.forward(P.rest_pose())
    caps, parts = surface.capsules(kin)
    j = kin.joints
    for tip, digit in zip((4, 8, 12, 16, 20), K.DIGITS):
        cap = caps[parts == surface.PART_DIGIT[digit]][-1]
        depth_inside = cap[7] - np.linalg.norm(j[tip] - cap[3:6])
        assert 0 < depth_inside < 0.3 * cap[7]


def test_batched_shapes():
    kin = K.forward(P.rest_pose((3, 4)))
    caps, parts = surface.capsules(kin)
    assert kin.joints.shape == (3, 4, 21, 3)
    assert caps.shape[:2] == (3, 4) and caps.shape[-1] == 8 and len(parts) == caps.shape[2]
