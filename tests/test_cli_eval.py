"""`handtrack eval`: the published MURAUER numbers end to end, and one-line errors for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from handtrack.app.cli import main
from handtrack.inference.skeleton import NYU14_NAMES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELS = DATA / "nyu" / "test_joints14_uvd.txt"
PRED = DATA / "murauer" / "nyu_test_pred_n72757_xyz.txt"
pytestmark = pytest.mark.skipif(not LABELS.is_file() or not PRED.is_file(),
                                reason=f"shared NYU/MURAUER reference data not found under {DATA}")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("handtrack: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("name, mean_mm", [("nyu_test_pred_n72757_xyz.txt", 9.47),
                                           ("nyu_test_pred_n100_xyz.txt", 12.17)])
def test_eval_nyu_reproduces_murauer(tmp_path, capsys, name, mean_mm):
    out = tmp_path / "summary.json"
    assert main(["eval", "nyu", str(DATA / "murauer" / name), "--labels", str(LABELS), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["mean_error_mm"] == pytest.approx(mean_mm, abs=0.005)
    assert summary["frames"] == 8252 and summary["joints"] == 14
    assert list(summary["per_joint_error_mm"]) == list(NYU14_NAMES)
    curve = summary["max_error_curve"]
    assert curve["thresholds_mm"] == list(range(81)) and len(curve["fraction"]) == 81
    assert curve["fraction"][20] == summary["fraction_within_20mm"]
    assert summary["inputs"]["labels"] == str(LABELS.resolve())
    assert f"{mean_mm:.2f} mm" in capsys.readouterr().out


def test_eval_nyu_writes_a_plot(tmp_path):
    plot = tmp_path / "curve.png"
    assert main(["eval", "nyu", str(PRED), "--labels", str(LABELS), "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_truncated_predictions_give_exit_code_2_and_one_line(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("".join(PRED.read_text().splitlines(keepends=True)[:-1]))
    assert main(["eval", "nyu", str(short), "--labels", str(LABELS)]) == 2
    assert "short.txt has 8251 lines, test_joints14_uvd.txt has 8252" in _one_line_error(capsys)


def test_malformed_predictions_name_the_line(tmp_path, capsys):
    lines = PRED.read_text().splitlines()
    words = lines[2].split()
    words[5] = "oops"
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines[:2] + [" ".join(words)] + lines[3:]))
    assert main(["eval", "nyu", str(bad), "--labels", str(LABELS)]) == 2
    assert "bad.txt line 3 has a non-numeric value 'oops'" in _one_line_error(capsys)
    bad.write_text("\n".join(lines[:4] + [" ".join(lines[4].split()[:-3])] + lines[5:]))
    assert main(["eval", "nyu", str(bad), "--labels", str(LABELS)]) == 2
    assert "bad.txt line 5 has 39 numbers, expected 42" in _one_line_error(capsys)
    assert main(["eval", "nyu", str(tmp_path / "missing.txt"), "--labels", str(LABELS)]) == 2
    assert "cannot read missing.txt" in _one_line_error(capsys)


def test_eval_reprojection_on_the_real_frame(tmp_path, capsys):
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["eval", "reprojection", "--data", str(DATA), "--json", str(out), "--png", str(png)]) == 0
    report = json.loads(out.read_text())
    assert report["reprojection_max_px"] < 0.01
    assert 5 < report["surface_offset_mm"]["median"] < 20
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "surface offset" in capsys.readouterr().out


def test_eval_needs_a_target_and_existing_data(tmp_path, capsys):
    assert main(["eval"]) == 2
    assert "nyu" in _one_line_error(capsys)
    assert main(["eval", "reprojection", "--data", str(tmp_path)]) == 2
    assert "--data" in _one_line_error(capsys)


def test_eval_synthesis_scores_the_generator_and_the_hand_model(tmp_path, capsys):
    out = tmp_path / "synthesis.json"
    assert main(["eval", "synthesis", "--model", "crossingnets", "--n", "6", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["crops"] == 6 and r["generator_mm"] > 0
    # drawn from the true joints, our hand model explains the crop far better than from any estimate
    assert 0 < r["hand_model_on_true_joints_mm"] < r["hand_model_mm"]
    assert "generator (from the latent)" in capsys.readouterr().out
    assert main(["eval", "synthesis", "--model", "murauer", "--n", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["generator_mm"] is None  # MURAUER has no generator of its own
