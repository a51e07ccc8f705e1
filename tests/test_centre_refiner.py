"""The centre refiner: trains and exports through the CLI on a few large-jitter synthetic crops, loads through
the runtime with its metadata, and the shipped one brings the tracker's crop closer to the palm on the demo."""
import json
from pathlib import Path

import numpy as np
import pytest

from handtrack.inference.model import CentreModel
from handtrack.inference.tracker import HandTracker, TrackerOptions


def test_train_and_export_through_the_cli(tmp_path):
    torch = pytest.importorskip("torch")
    from handtrack.app.cli import main
    from handtrack.training.synth.generator import SynthConfig, generate_shard

    data = tmp_path / "data"
    data.mkdir()
    generate_shard(data, 0, 160, 160, SynthConfig(sensor="primesense", seed=3, jitter_mm=30.0))
    threads = torch.get_num_threads()
    try:
        code = main(["train", "centre", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "3",
                     "--batch", "8", "--threads", "1", "--export", str(tmp_path), "--version", "test-1",
                     "--json", str(tmp_path / "r.json")])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["final"]["val_before_mm"] > 20.0  # the data really is jittered by ~30 mm per axis
    assert np.isfinite(result["final"]["val_error_mm"])
    model = CentreModel(tmp_path / "crossingnets_centre.onnx")
    assert model.info.role == "centre" and model.info.version == "test-1"
    offset = model.offset(np.zeros((128, 128), np.float32))
    assert offset.shape == (3,) and np.isfinite(offset).all()


def test_a_pose_model_is_refused_as_a_centre_model():
    from handtrack.inference.errors import HandtrackError
    from handtrack.models_onnx import resolve

    with pytest.raises(HandtrackError, match="'pose' model, expected a 'centre' model"):
        CentreModel(resolve("crossingnets", "pose"))


def test_the_shipped_refiner_moves_the_crop_towards_the_palm_on_the_demo():
    from handtrack.training.model_eval import eval_tracker_demo

    on = HandTracker(TrackerOptions(smoothing=None))
    assert on.centre_model is not None, "crossingnets_centre.onnx should ship beside the pose model"
    assert HandTracker(TrackerOptions(smoothing=None, centre_refine=False)).centre_model is None
    # The refiner alone on the centre of mass it was made for: no re-centred pass, tracking from the centre of mass
    # (the defaults re-centre on the predicted palm, which hides what the refiner adds).
    alone = dict(smoothing=None, refine_passes=0, recentre_found=False, track_from_palm=False, finder=False)
    with_refiner = eval_tracker_demo(TrackerOptions(**alone), frames=30, every=7)
    without = eval_tracker_demo(TrackerOptions(**alone, centre_refine=False), frames=30, every=7)
    assert with_refiner["crop_centre_error_mm"]["mean"] < without["crop_centre_error_mm"]["mean"]
    assert with_refiner["joint_error_mm"]["mean"] < without["joint_error_mm"]["mean"]
