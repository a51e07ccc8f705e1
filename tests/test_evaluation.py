"""Metrics on hand-made numbers, and the published MURAUER NYU results reproduced from its prediction files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from handtrack.inference.datasets import nyu
from handtrack.inference.errors import HandtrackError
from handtrack.inference.skeleton import NYU14_FROM_36, NYU14_NAMES
from handtrack.training import evaluation

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "murauer").is_dir() or not (DATA / "nyu").is_dir(),
                                reason=f"shared NYU/MURAUER reference data not found under {DATA}")


def test_joint_errors_are_euclidean_per_joint():
    true = np.zeros((2, 2, 3))
    pred = np.array([[[3, 4, 0], [0, 0, 0]], [[1, 2, 2], [0, 0, -5]]], dtype=float)
    np.testing.assert_allclose(evaluation.joint_errors(pred, true), [[5, 0], [3, 5]])
    with pytest.raises(HandtrackError, match="must both be"):
        evaluation.joint_errors(pred[:1], true)


def test_summary_uses_the_worst_joint_of_each_frame():
    # Per-frame max errors 5, 20, 20.5, 90 mm.
    errors_per_frame = np.array([[5.0, 1.0], [20.0, 3.0], [2.0, 20.5], [90.0, 0.0]])
    pred = np.zeros((4, 2, 3))
    pred[..., 0] = errors_per_frame
    s = evaluation.evaluate(pred, np.zeros_like(pred), ["a", "b"])
    assert s.frames == 4 and s.mean_error_mm == pytest.approx(errors_per_frame.mean())
    np.testing.assert_allclose(s.per_joint_error_mm, errors_per_frame.mean(axis=0))
    assert s.thresholds_mm.tolist() == list(range(81))
    assert s.fraction_within(4) == 0 and s.fraction_within(5) == 0.25
    assert s.fraction_within(20) == 0.5  # inclusive at 20, and 20.5 is not within it
    assert s.fraction_within(21) == 0.75 and s.fraction_within(80) == 0.75  # 90 mm never counts
    assert np.all(np.diff(s.fraction) >= 0)
    d = s.to_dict()
    assert d["per_joint_error_mm"] == {"a": pytest.approx(29.25), "b": pytest.approx(6.125)}
    assert d["joints"] == 2 and len(d["max_error_curve"]["fraction"]) == 81


def test_plot_is_written(tmp_path):
    rng = np.random.default_rng(0)
    pred, true = rng.normal(0, 10, (50, 3, 3)), np.zeros((50, 3, 3))
    s = evaluation.evaluate(pred, true, ["x", "y", "z"])
    evaluation.plot_summaries({"a": s, "b": s}, tmp_path / "p.png", title="t")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def nyu_test_labels_xyz():
    return nyu.load_joints14_xyz_from_uvd(DATA / "nyu" / "test_joints14_uvd.txt")


@needs_data
@pytest.mark.parametrize("name, mean_mm, within20, within40", [
    ("nyu_test_pred_n72757_xyz.txt", 9.47, 0.661, 0.907),
    ("nyu_test_pred_n100_xyz.txt", 12.17, 0.439, 0.849),
])
def test_murauer_nyu_numbers_are_reproduced(nyu_test_labels_xyz, name, mean_mm, within20, within40):
    pred = nyu.load_predictions_xyz(DATA / "murauer" / name)
    s = evaluation.evaluate(pred, nyu_test_labels_xyz, NYU14_NAMES)
    assert s.frames == 8252
    assert s.mean_error_mm == pytest.approx(mean_mm, abs=0.005)
    assert s.fraction_within(20) == pytest.approx(within20, abs=0.0005)
    assert s.fraction_within(40) == pytest.approx(within40, abs=0.0005)


@needs_data
def test_predictions_left_in_y_up_score_far_worse(nyu_test_labels_xyz):
    # Guards the y flip: comparing NYU's y-up predictions with y-down labels must not go unnoticed.
    stored = nyu.read_joint_table(DATA / "murauer" / "nyu_test_pred_n72757_xyz.txt", 14)
    assert evaluation.evaluate(stored, nyu_test_labels_xyz).mean_error_mm > 50


@needs_data
def test_reprojection_check_on_the_real_frame(tmp_path):
    frame = nyu.load_frame(DATA / "nyu" / "test_depth_1_0000001.png", DATA / "nyu" / "test_joints36_xyz_0000001.json")
    labels_uv = nyu.load_joints14_uvd(DATA / "nyu" / "test_joints14_uvd.txt")[0]
    report = evaluation.reprojection_check(frame, labels_uv, NYU14_FROM_36)
    assert report["reprojection_max_px"] < 0.01
    offset = report["surface_offset_mm"]
    assert offset["count"] == 36
    # Joints sit inside the fingers and palm: behind the visible surface, by less than a hand is thick.
    assert 5 < offset["median"] < 20 and offset["min"] > 0 and offset["max"] < 45
    image = evaluation.draw_overlay(frame.depth_mm, np.asarray(report["joints_uv"]), [list(range(6))],
                                    [(0, 0, 255)], labels_uv)
    assert image.ndim == 3 and image.shape[1] > 640 and image.dtype == np.uint8
