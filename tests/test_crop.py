import numpy as np
import pytest

from handtrack.inference import camera
from handtrack.inference.crop import (crop_and_normalise, crop_depth, crop_window, denormalise_joints,
                                      normalise_depth, normalise_joints)


def test_centre_projects_to_crop_centre_and_cube_spans_crop():
    K = camera.NYU
    w = crop_window(np.array([50.0, -20.0, 600.0]), K, 250.0, 128)
    c = w.image_to_crop(camera.project(np.array([50.0, -20.0, 600.0]), K))
    assert c == pytest.approx([63.5, 63.5])
    # the cube's left/top faces land half a pixel outside the first crop pixel centre
    edge = w.image_to_crop(camera.project(np.array([50.0 - 125.0, -20.0 - 125.0, 600.0]), K))
    assert edge == pytest.approx([-0.5, -0.5], abs=1e-6)
    # round trip image <-> crop
    uv = np.array([[100.0, 200.0], [400.5, 33.25]])
    assert w.crop_to_image(w.image_to_crop(uv)) == pytest.approx(uv)


def test_crop_intrinsics_agree_with_the_pixel_mapping():
    K = camera.SR305
    w = crop_window(np.array([0.0, 0.0, 500.0]), K)
    pts = np.array([[10.0, 20.0, 480.0], [-40.0, 5.0, 530.0]])
    np.testing.assert_allclose(camera.project(pts, w.intrinsics(K)), w.image_to_crop(camera.project(pts, K)))


def test_crop_reads_the_sample_grid_and_pads_outside():
    K = camera.NYU
    depth = np.arange(480 * 640, dtype=np.float32).reshape(480, 640)
    w = crop_window(np.array([-200.0, 0.0, 400.0]), K)  # reaches past the left border
    crop = crop_depth(depth, w)
    us, vs = w.sample_grid()
    inside = (us >= 0) & (us < 640)
    assert (crop[:, ~inside] == 0).all()
    np.testing.assert_array_equal(crop[:, inside], depth[np.ix_(vs, us[inside])])


def test_normalisation_conventions():
    raw = np.array([[0.0, 500.0, 600.0, 725.0, 800.0, 400.0]], np.float32)
    n = normalise_depth(raw, 600.0, 250.0)
    np.testing.assert_allclose(n, [[1.0, -0.8, 0.0, 1.0, 1.0, -1.0]])
    joints = np.array([[10.0, 20.0, 630.0]])
    c = np.array([0.0, 0.0, 600.0])
    assert denormalise_joints(normalise_joints(joints, c, 250), c, 250) == pytest.approx(joints)


def test_bad_centre_is_a_clear_error():
    with pytest.raises(ValueError, match="crop centre"):
        crop_and_normalise(np.zeros((480, 640)), camera.NYU, np.array([0.0, 0.0, np.nan]))
