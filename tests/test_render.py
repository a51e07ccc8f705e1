"""The analytic renderer against closed forms and an independent sphere-tracing of the capsule distance field."""
import numpy as np
import pytest

from handtrack.inference.camera import Intrinsics
from handtrack.inference.handmodel.render import render_capsules, render_planes

K = Intrinsics(220.0, 220.0, 24.0, 18.0, 48, 36)


def _round_cone_sdf(p, a, b, ra, rb):
    """Signed distance to the convex hull of spheres (a, ra), (b, rb), by minimising over the axis parameter."""
    s = np.linspace(0.0, 1.0, 301)
    centres = a + s[:, None] * (b - a)
    radii = ra + s * (rb - ra)
    d = np.linalg.norm(p[..., None, :] - centres, axis=-1) - radii
    return d.min(-1)


def _sphere_trace(cap, K):
    a, b, ra, rb = cap[:3], cap[3:6], cap[6], cap[7]
    v, u = np.mgrid[0:K.height, 0:K.width]
    rays = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones(u.shape)], -1).reshape(-1, 3)
    unit = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    t = np.zeros(len(unit))
    for _ in range(80):
        d = _round_cone_sdf(unit * t[:, None], a, b, ra, rb)
        t += np.maximum(d, 0.0)
    hit = _round_cone_sdf(unit * t[:, None], a, b, ra, rb) < 0.02
    return np.where(hit, t * unit[:, 2], 0.0).reshape(K.height, K.width)


def test_sphere_matches_closed_form():
    depth, labels = render_capsules(np.array([[0, 0, 500, 0, 0, 500, 40, 40]], float), K)
    v, u = int(K.cy), int(K.cx)
    assert depth[v, u] == pytest.approx(460.0, abs=1e-3)
    assert labels[v, u] == 1
    # silhouette radius of a sphere seen straight on: f * r / sqrt(z^2 - r^2)
    r_px = K.fx * 40 / np.sqrt(500**2 - 40**2)
    row = depth[v] > 0
    assert row.sum() == pytest.approx(2 * r_px, abs=2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tapered_capsule_matches_sphere_tracing(seed):
    rng = np.random.default_rng(seed)
    a = np.array([rng.uniform(-30, 30), rng.uniform(-20, 20), rng.uniform(450, 550)])
    b = a + rng.normal(0, 40, 3)
    cap = np.array([*a, *b, rng.uniform(8, 20), rng.uniform(5, 15)])
    ours, _ = render_capsules(cap[None], K)
    ref = _sphere_trace(cap, K)
    both = (ours > 0) & (ref > 0)
    assert both.sum() > 50
    err = np.abs(ours[both] - ref[both])
    # Sphere tracing converges slowly on grazing rays at the silhouette, so judge the bulk, not the worst pixel.
    assert np.median(err) < 0.01 and np.percentile(err, 95) < 0.05 and err.max() < 1.0
    # silhouettes agree but for pixels right on the edge
    assert ((ours > 0) != (ref > 0)).sum() <= 0.02 * both.sum() + 4


def test_nearer_surface_wins_and_labels_follow():
    caps = np.array([[0, 0, 600, 0, 0, 600, 50, 50], [0, 0, 500, 0, 0, 500, 10, 10]], float)
    depth, labels = render_capsules(caps, K, parts=np.array([7, 3]))
    assert labels[int(K.cy), int(K.cx)] == 3 and depth[int(K.cy), int(K.cx)] == pytest.approx(490, abs=1e-3)
    assert labels[int(K.cy), int(K.cx) + 12] == 7


def test_window_renders_the_same_rays():
    cap = np.array([[-20, 5, 400, 30, -10, 420, 15, 10]], float)
    full, _ = render_capsules(cap, K)
    sub, _ = render_capsules(cap, K.window(10, 7, 30, 25))
    assert sub.any()
    np.testing.assert_array_equal(full[7:32, 10:40], sub)


def test_plane_and_behind_camera():
    depth = np.zeros((K.height, K.width), np.float32)
    labels = np.zeros((K.height, K.width), np.int16)
    render_planes(np.array([[0, 0, 1, 900.0]]), K, np.array([5]), depth, labels)
    assert np.allclose(depth, 900.0) and (labels == 5).all()
    behind, _ = render_capsules(np.array([[0, 0, -300, 0, 0, -200, 50, 50]], float), K)
    assert not behind.any()
