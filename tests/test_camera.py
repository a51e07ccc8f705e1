"""The pinhole model: project and deproject invert each other in any batch shape, one point takes the same
numbers as many, and the ray slopes agree with deproject while keeping float32."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from handtrack.inference.camera import NYU, SR305, deproject, project, ray_slopes


def points(shape, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(0.0, 150.0, shape + (3,))
    xyz[..., 2] = rng.uniform(200.0, 1500.0, shape)
    return xyz


@pytest.mark.parametrize("shape", [(), (21,), (4, 5)])
def test_project_and_deproject_invert_each_other_in_any_batch_shape(shape):
    xyz = points(shape)
    uv = project(xyz, SR305)
    assert uv.shape == shape + (2,) and uv.dtype == np.float64
    back = deproject(uv, xyz[..., 2], SR305)
    assert back.shape == shape + (3,)
    np.testing.assert_allclose(back, xyz, rtol=0, atol=1e-9)


def test_the_formula_and_its_principal_point():
    np.testing.assert_array_equal(project([0.0, 0.0, 700.0], NYU), [NYU.cx, NYU.cy])
    u, v = project([100.0, -50.0, 500.0], NYU)
    assert u == NYU.fx * 100.0 / 500.0 + NYU.cx and v == NYU.fy * -50.0 / 500.0 + NYU.cy


def test_one_point_gives_the_numbers_of_the_batch_path_to_the_bit():
    xyz = points((50,), seed=1)
    batch_uv = project(xyz, SR305)
    assert all(np.array_equal(project(p, SR305), q) for p, q in zip(xyz, batch_uv))
    batch_xyz = deproject(batch_uv, xyz[:, 2], SR305)
    assert all(np.array_equal(deproject(q, p[2], SR305), r) for p, q, r in zip(xyz, batch_uv, batch_xyz))


def test_a_point_on_the_camera_plane_projects_to_infinity_not_an_exception():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.all(np.isinf(project([10.0, 10.0, 0.0], NYU)))
        assert np.all(np.isnan(project([0.0, 0.0, 0.0], NYU)))


def test_depth_broadcasts_against_the_pixels():
    uv = np.array([[0.0, 0.0], [639.0, 479.0]])
    np.testing.assert_array_equal(deproject(uv, 800.0, NYU)[:, 2], [800.0, 800.0])


def test_ray_slopes_deproject_a_grid_and_keep_float32():
    us, vs = np.arange(0, 640, 8, dtype=np.float32), np.arange(0, 480, 8, dtype=np.float32)
    xz, yz = ray_slopes(us, vs, NYU)
    assert xz.shape == us.shape and yz.shape == vs.shape and xz.dtype == yz.dtype == np.float32
    grid = np.stack(np.meshgrid(us, vs), -1)
    expected = deproject(grid, 1.0, NYU)
    np.testing.assert_allclose(xz[None, :].repeat(len(vs), 0), expected[..., 0], rtol=1e-6)
    np.testing.assert_allclose(yz[:, None].repeat(len(us), 1), expected[..., 1], rtol=1e-6)
