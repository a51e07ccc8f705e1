"""Depth sensor models: the physics each preset claims (quantisation, noise, shadows, edges, ranges)."""
from dataclasses import replace

import numpy as np
import pytest

from handtrack.inference.camera import Intrinsics
from handtrack.training.synth import sensors
from handtrack.training.synth.sensors import (NYU_FAR_MM, PRIMESENSE, REALSENSE, SENSORS, SR305_MODEL,
                                              apply_sensor, get_sensor, shadow_margin_px)


def centre_window(model, width, height) -> Intrinsics:
    K = model.intrinsics
    return K.window(int(K.cx) - width // 2, int(K.cy) - height // 2, width, height)


def wall(K: Intrinsics, z_mm: float) -> np.ndarray:
    return np.full((K.height, K.width), z_mm, dtype=np.float32)


def box_scene(K: Intrinsics, z_box: float, z_wall: float, cols=(60, 100)) -> np.ndarray:
    """A wall with a box face in front of it covering the given columns of the middle rows."""
    depth = wall(K, z_wall)
    depth[20:-20, cols[0]:cols[1]] = z_box
    return depth


def geometry_only(model):
    """The model without its random parts: exactly the shadows, ranges, quantisation and rounding."""
    return replace(model, disparity_noise_px=0.0, edge_dropout=0.0, flying_pixels=0.0, holes_per_mpx=0.0)


def missing_run(row: np.ndarray, start: int, step: int, missing: float) -> int:
    """Length of the run of missing pixels from column `start` walking by `step` (+1 right, -1 left)."""
    n, u = 0, start
    while 0 <= u < row.size and row[u] == missing:
        n, u = n + 1, u + step
    return n


@pytest.mark.parametrize("name", list(SENSORS))
def test_deterministic_for_a_seed_and_input_untouched(name):
    model = get_sensor(name)
    K = centre_window(model, 160, 120)
    clean = box_scene(K, 600.0, 900.0)
    before = clean.copy()
    a = apply_sensor(clean, K, model, np.random.default_rng(7))
    b = apply_sensor(clean, K, model, np.random.default_rng(7))
    assert a.dtype == np.float32 and a.shape == clean.shape
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(clean, before)
    if model.disparity_noise_px:
        assert not np.array_equal(a, apply_sensor(clean, K, model, np.random.default_rng(8)))


def test_clean_model_is_exact_within_range():
    model = get_sensor("clean")
    K = centre_window(model, 100, 80)
    clean = np.random.default_rng(0).uniform(200, 3000, (K.height, K.width)).astype(np.float32)
    clean[:10] = 0  # rays that hit nothing
    clean[10:20] = 50_000  # beyond range
    out = apply_sensor(clean, K, model, np.random.default_rng(0))
    np.testing.assert_array_equal(out[20:], clean[20:])
    assert np.all(out[:20] == 0)


@pytest.mark.parametrize("z", [600.0, 1000.0])
def test_primesense_depth_steps_grow_as_z_squared(z):
    K = centre_window(PRIMESENSE, 64, 64)
    out = apply_sensor(wall(K, z), K, PRIMESENSE, np.random.default_rng(0))
    levels = np.unique(out)
    assert levels.size >= 3, "the noise should spread a flat wall over a few quantisation levels"
    measured = np.mean(np.diff(levels))
    expected = z**2 / (K.fx * abs(PRIMESENSE.baseline_mm) * 8)  # z^2 * (1/8 px) / (f b)
    assert measured == pytest.approx(expected, rel=0.2)


def test_primesense_depth_lies_on_the_disparity_lattice():
    model = replace(PRIMESENSE, depth_unit_mm=0.0)  # without the integer-mm rounding of the output
    K = centre_window(model, 64, 64)
    out = apply_sensor(wall(K, 1000.0), K, model, np.random.default_rng(0)).astype(np.float64)
    fb = K.fx * abs(model.baseline_mm)
    eighths = 8 * fb / out  # disparity in 1/8 px
    np.testing.assert_allclose(eighths, np.round(eighths), atol=1e-3)


@pytest.mark.parametrize("z", [500.0, 1000.0])
def test_realsense_noise_matches_the_rms_law(z):
    K = centre_window(REALSENSE, 120, 120)
    out = apply_sensor(wall(K, z), K, REALSENSE, np.random.default_rng(1))
    valid = out[out > 0]
    assert valid.size > 0.95 * out.size  # only the random small holes are missing on a flat wall
    expected = z**2 * REALSENSE.disparity_noise_px / (K.fx * REALSENSE.baseline_mm)
    assert valid.std() == pytest.approx(expected, rel=0.3)
    assert abs(valid.mean() - z) < 0.2 * expected + 0.5  # unbiased (up to the 1 mm unit)


@pytest.mark.parametrize("grain", [2, 4, 6])
def test_blotchy_noise_has_the_requested_std_and_is_correlated(grain):
    noise = sensors._blotchy_noise((200, 200), 2.0, grain, np.random.default_rng(0))
    assert noise.std() == pytest.approx(2.0, rel=0.1)
    lag1 = np.mean(noise[:, :-1] * noise[:, 1:]) / noise.var()
    assert 0.5 < lag1 < 1.0  # blotchy, not white


# Shadow sides as seen in real frames: right of the hand in the NYU and SR305 frames of ../shared/data; left for
# D4xx stereo, whose reference (left) imager sees beside an object's left edge what the right imager cannot.
@pytest.mark.parametrize("model, side", [(PRIMESENSE, "right"), (REALSENSE, "left"), (SR305_MODEL, "right")],
                         ids=lambda x: getattr(x, "name", x))
def test_shadow_band_side_and_width_follow_the_geometry(model, side):
    model = geometry_only(model)
    K = centre_window(model, 200, 100)
    z_box, z_wall, (left, right) = 600.0, 1000.0, (60, 100)
    out = apply_sensor(box_scene(K, z_box, z_wall, (left, right)), K, model, np.random.default_rng(0))
    expected = K.fx * abs(model.baseline_mm) * (1 / z_box - 1 / z_wall)
    miss = model.missing_value
    shadow_start, step, other_start = (left - 1, -1, right) if side == "left" else (right, 1, left - 1)
    rows = range(30, 70)
    widths = [missing_run(out[v], shadow_start, step, miss) for v in rows]
    assert np.median(widths) == pytest.approx(expected, abs=1.0)
    # The other side has no band beyond the edge rim.
    assert max(missing_run(out[v], other_start, -step, miss) for v in rows) <= model.edge_radius_px


@pytest.mark.parametrize("model", [PRIMESENSE, REALSENSE], ids=lambda m: m.name)
def test_shadow_band_survives_the_edge_artefacts(model):
    K = centre_window(model, 200, 100)
    z_box, z_wall, (left, right) = 600.0, 1000.0, (60, 100)
    out = apply_sensor(box_scene(K, z_box, z_wall, (left, right)), K, model, np.random.default_rng(0))
    expected = K.fx * abs(model.baseline_mm) * (1 / z_box - 1 / z_wall)
    span = int(expected) + 6
    beside = out[30:70, left - span:left] if model.baseline_mm > 0 else out[30:70, right:right + span]
    # Flying pixels may bridge into the band and dropouts widen it, by a pixel or so in each row.
    assert np.median(np.sum(beside == model.missing_value, axis=1)) == pytest.approx(expected, abs=2.0)


def test_rendering_a_margin_reproduces_the_full_frame_shadows():
    model = geometry_only(PRIMESENSE)
    full = model.intrinsics
    clean = box_scene(full, 600.0, 1000.0, cols=(300, 380))  # its shadow falls right of column 380
    expected = apply_sensor(clean, full, model, np.random.default_rng(0))
    u0, v0, w, h = 385, 100, 60, 200  # a window inside the shadow, not containing the box
    m = shadow_margin_px(model, full, 600.0, 1000.0)
    K_big = full.window(u0 - m, v0, w + 2 * m, h)
    big = apply_sensor(clean[v0:v0 + h, u0 - m:u0 + w + m], K_big, model, np.random.default_rng(0))
    np.testing.assert_array_equal(big[:, m:m + w], expected[v0:v0 + h, u0:u0 + w])
    # Without the margin the occluder is outside the window and the shadow is lost.
    K_small = full.window(u0, v0, w, h)
    small = apply_sensor(clean[v0:v0 + h, u0:u0 + w], K_small, model, np.random.default_rng(0))
    assert np.sum(small == model.missing_value) < np.sum(expected[v0:v0 + h, u0:u0 + w] == model.missing_value)


def test_flying_pixels_only_near_edges_and_between_the_surfaces():
    model = replace(REALSENSE, holes_per_mpx=0.0)
    K = centre_window(model, 200, 100)
    z_box, z_wall = 600.0, 1000.0
    clean = box_scene(K, z_box, z_wall)
    out = apply_sensor(clean, K, model, np.random.default_rng(3))
    flying = (out > 0) & (np.abs(out - clean) > 30.0)  # far beyond the noise (~1.5 mm at 0.6 m, ~4 mm at 1 m)
    assert flying.sum() > 10
    assert np.all((out[flying] > z_box) & (out[flying] < z_wall))
    v, u = np.nonzero(flying)
    # Box edges are at rows 20 / 80 and columns 60 / 100 (each edge touches the pixels on both sides).
    near_row_edge = (np.minimum(np.abs(v - 19.5), np.abs(v - 79.5)) <= model.edge_radius_px + 0.5)
    near_col_edge = (np.minimum(np.abs(u - 59.5), np.abs(u - 99.5)) <= model.edge_radius_px + 0.5)
    assert np.all(near_row_edge | near_col_edge)


def test_nyu_like_output_uses_2001_and_has_no_zeros():
    K = centre_window(PRIMESENSE, 200, 100)
    clean = box_scene(K, 700.0, 1100.0)
    clean[:, :30] = 0  # nothing
    clean[:, -30:] = 3000.0  # beyond the NYU range
    out = apply_sensor(clean, K, PRIMESENSE, np.random.default_rng(0))
    assert not np.any(out == 0)
    assert np.all(out[:, :30] == NYU_FAR_MM) and np.all(out[:, -30:] == NYU_FAR_MM)
    seen = out[out != NYU_FAR_MM]
    assert seen.size > 0.5 * out.size
    assert seen.min() >= PRIMESENSE.min_range_mm and seen.max() <= PRIMESENSE.max_range_mm
    plain = apply_sensor(clean, K, replace(PRIMESENSE, nyu_like=False), np.random.default_rng(0))
    np.testing.assert_array_equal(plain == 0, out == NYU_FAR_MM)


@pytest.mark.parametrize("model, z", [(REALSENSE, 150.0), (SR305_MODEL, 1600.0), (SR305_MODEL, 150.0),
                                      (PRIMESENSE, 2500.0), (PRIMESENSE, 400.0)], ids=str)
def test_beyond_range_is_missing(model, z):
    K = centre_window(model, 80, 60)
    out = apply_sensor(wall(K, z), K, model, np.random.default_rng(0))
    assert np.all(out == model.missing_value)


def test_realsense_invalid_band_at_the_left_border():
    model = geometry_only(REALSENSE)
    K = model.intrinsics
    out = apply_sensor(wall(K, 500.0), K, model, np.random.default_rng(0))
    band = K.fx * model.baseline_mm / 500.0  # columns whose match would lie left of the right image: 43
    assert np.all(out[:, : int(band)] == 0)
    assert np.all(out[:, int(band) + 1:] > 0)


def test_registry_and_argument_checks():
    assert set(SENSORS) == {"clean", "primesense", "realsense", "sr305"}
    assert all(get_sensor(n).name == n for n in SENSORS)
    with pytest.raises(KeyError, match="known"):
        get_sensor("kinect2")
    K = centre_window(REALSENSE, 40, 30)
    with pytest.raises(ValueError, match="labels"):
        apply_sensor(wall(K, 500.0), K, REALSENSE, np.random.default_rng(0), labels=np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="baseline"):
        replace(REALSENSE, baseline_mm=0.0)
    with pytest.raises(ValueError, match="even"):
        replace(REALSENSE, noise_grain_px=3)


def test_no_heavy_imports():
    import subprocess
    import sys

    code = "import sys, handtrack.training.synth.sensors; print(any(m in sys.modules for m in ('scipy', 'torch')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
