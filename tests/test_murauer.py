"""MURAUER end to end on a few dozen synthetic crops, the SR305 frames and the NYU frame: networks, both stages,
files, exact resume, one-line errors, export with parity, the exported model in the tracker, and torchrun.

Tiny step counts and one torch thread, so that the file runs in about a minute on two cores.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from handtrack.app.cli import main  # noqa: E402
from handtrack.inference.errors import HandtrackError  # noqa: E402
from handtrack.training.murauer.config import load_config, make_config  # noqa: E402
from handtrack.training.murauer.data import load_data, view_code  # noqa: E402
from handtrack.training.murauer.networks import DensePoseHead, Murauer  # noqa: E402
from handtrack.training.murauer.trainer import lr_factor, model_from_checkpoint  # noqa: E402
from handtrack.training.synth.generator import SynthConfig, generate_shard  # noqa: E402
from handtrack.training.synth.pose_prior import PosePrior  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[str, Path]:
    """Two-view PrimeSense crops (source) and SR305 crops of larger and smaller hands (target)."""
    root = tmp_path_factory.mktemp("murauer_data")
    prior = PosePrior.load()
    out = {}
    for name, n, config in (("source", 48, SynthConfig(views=2, seed=21)),
                            ("target", 32, SynthConfig(sensor="sr305", seed=22, size_factors=(0.85, 1.15)))):
        (root / name).mkdir()
        generate_shard(root / name, 0, n, n, config, prior)
        out[name] = root / name
    return out


def raw_config(shards, pretrain=3, adapt=3, real=True) -> dict:
    data = {"synthetic": [{"path": str(shards["source"])}], "val": {"path": str(shards["source"]), "limit": 16}}
    if real:
        data["real"] = [{"kind": "shards", "path": str(shards["target"]), "labelled_fraction": 0.25},
                        {"kind": "frames", "path": str(DATA / "realsense_sr305"), "limit": 2, "crops_per_frame": 2}]
        data["paired"] = [{"kind": "nyu", "path": str(DATA), "crops": 4}]
        data["real_val"] = {"path": str(shards["target"]), "limit": 16}
    return {"name": "tiny", "seed": 3, "threads": 1, "data": data,
            "stages": {"pretrain": {"steps": pretrain, "batch": 8, "warmup": 1},
                       "adapt": {"steps": adapt, "warmup": 1,
                                 "batch": {"synthetic": 4, "real_labelled": 2, "real_unlabelled": 4, "paired": 2}}},
            "log_every": 1, "val_every": 2, "ckpt_every": 2}


def write(path: Path, raw: dict) -> Path:
    path.write_text(json.dumps(raw))
    return path


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# --- networks -----------------------------------------------------------------------------------------------------

def test_dense_head_puts_each_joint_at_its_weighted_cells():
    """All weight on one cell, zero offsets: the joint sits at that cell's centre, with the predicted z."""
    head = DensePoseHead(channels=8, grid=4)
    feature = torch.zeros(1, 8, 4, 4)
    with torch.no_grad():
        head.body[-1].weight.zero_()
        bias = torch.zeros(21, 4)
        bias[:, 3] = 0.25                         # z
        head.body[-1].bias.copy_(bias.reshape(-1))
        out = head.body(feature)
    logits = torch.full((1, 21, 16), -1e4)
    logits[:, :, 5] = 0.0                         # row 1, column 1 of the 4x4 grid
    values = out.reshape(1, 21, 4, 16).clone()
    values[:, :, 0] = logits
    head.body = torch.nn.Identity()
    joints = head(values.reshape(1, 84, 4, 4))
    centre = (1 + 0.5) / 4 * 2 - 1
    assert torch.allclose(joints[0, :, 0], torch.full((21,), centre), atol=1e-5)
    assert torch.allclose(joints[0, :, 1], torch.full((21,), centre), atol=1e-5)
    assert torch.allclose(joints[0, :, 2], torch.full((21,), 0.25), atol=1e-5)


@pytest.mark.parametrize("head,block", [("dense", "basic"), ("fc", "bottleneck")])
def test_every_network_has_the_shapes_murauer_needs(head, block):
    model = Murauer(widths=(16, 16, 32, 32), depths=(1, 1, 1, 1), head=head, block=block, fc=64, view_width=32)
    x = torch.randn(2, 1, 128, 128)
    feature = model.f(x)
    assert model.p(feature).shape == (2, 21, 3)
    assert model.h(feature).shape == (2,)
    assert model.g(feature, torch.zeros(2, 12)).shape == (2, 1, 128, 128)
    assert torch.equal(model.m(feature), feature) and model.m.is_identity()  # m starts as the identity


def test_view_code_says_where_the_other_view_looks():
    R = np.eye(3)[None]
    code = view_code(R, np.array([[0.0, 0, 100]]), np.array([[0.0, 0, 500]]), np.array([[10.0, 0, 600]]), 250.0)
    assert code.shape == (1, 12)
    assert np.allclose(code[0, 9:], [10 / 125, 0, 0])


def test_learning_rate_warms_up_then_decays_to_zero():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10) == pytest.approx(0.0)


# --- training, export, tracking -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("murauer_run") / "run"
    config = write(out.parent / "tiny.json", raw_config(shards))
    code, stdout, _ = cli("train", "murauer", "--config", config, "--out", out, "--json", out.parent / "result.json")
    assert code == 0
    return out


def test_both_stages_train_every_loss_and_write_their_files(trained):
    for name in ("config.json", "last.pt", "final.pt", "pretrain_end.pt", "adapt_end.pt", "curves.png"):
        assert (trained / name).is_file(), name
    model, config = model_from_checkpoint(trained / "final.pt")
    history = torch.load(trained / "final.pt", weights_only=True)["history"]
    adapt = [r for r in history if r["stage"] == "adapt"]
    for loss in ("l_p", "l_c", "l_g", "l_m", "l_h"):
        assert all(np.isfinite(r[loss]) for r in adapt), loss
    assert "real_val_mm" in history[-1] and "val_mm" in history[-1]
    # the adversarial and paired losses moved m away from the identity
    x = torch.randn(1, model.f.channels, 16, 16)
    assert not torch.allclose(model.m(x), x) and not model.m.is_identity()


def test_a_frozen_backbone_adapts_only_the_mapping(trained, shards, tmp_path):
    """backbone_lr 0: f and p, batch-norm statistics included, end exactly as they started; m learns."""
    raw = raw_config(shards, pretrain=0, adapt=3)
    raw["init"] = str(trained / "pretrain_end.pt")
    raw["stages"]["adapt"]["backbone_lr"] = 0.0
    assert cli("train", "murauer", "--config", write(tmp_path / "frozen.json", raw), "--out", tmp_path / "f")[0] == 0
    before = torch.load(trained / "pretrain_end.pt", weights_only=True)["model"]
    after = torch.load(tmp_path / "f" / "final.pt", weights_only=True)["model"]
    for k in before:
        if k.startswith(("f.", "p.")):
            assert torch.equal(before[k], after[k]), k
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("m."))


def test_real_data_comes_from_shards_frames_and_pairs(shards):
    config = make_config(raw_config(shards))
    data = load_data(config["data"], 250.0, seed=0)
    assert len(data.synthetic) == 48 and len(data.views) == 48
    assert len(data.real_labelled) == 8                                # a quarter of the target keeps labels
    assert len(data.real_unlabelled) == 24 + 2 * 2                     # the rest, and 2 crops of 2 SR305 frames
    assert len(data.paired_real) == len(data.paired_synthetic) == 4
    # the pair shows the same hand: the synthetic crop's hand pixels overlap the real crop's
    real = data.paired_real.images(np.arange(4)).numpy() < 0.9
    synth = data.paired_synthetic.images(np.arange(4)).numpy() < 0.9
    assert (real & synth).sum() / max(synth.sum(), 1) > 0.5


@pytest.mark.slow
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(shards, tmp_path):
    raw = raw_config(shards, pretrain=2, adapt=2, real=False)
    straight = write(tmp_path / "a.json", raw)
    assert cli("train", "murauer", "--config", straight, "--out", tmp_path / "a")[0] == 0
    first = write(tmp_path / "b1.json", raw_config(shards, pretrain=2, adapt=0, real=False))
    assert cli("train", "murauer", "--config", first, "--out", tmp_path / "b")[0] == 0
    assert cli("train", "murauer", "--config", straight, "--out", tmp_path / "b", "--resume")[0] == 0
    a = torch.load(tmp_path / "a" / "final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "final.pt", weights_only=True)["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


def test_export_matches_torch_and_the_tracker_runs_the_exported_model(trained, tmp_path):
    code, stdout, _ = cli("export", "murauer", "--checkpoint", trained / "final.pt", "--out", tmp_path,
                          "--data", DATA, "--json", tmp_path / "export.json")
    assert code == 0
    report = json.loads((tmp_path / "export.json").read_text())
    assert max(report["parity_max_abs"].values()) <= report["tolerance"]
    assert (tmp_path / "murauer_centre.onnx").is_file()
    assert report["files"]["pose_fp32"].endswith("murauer_pose_fp32.onnx")   # parity was the float file's
    agreement = report["int8"]
    assert agreement["crops"] > 0 and np.isfinite(agreement["mean_joint_difference_mm"])

    import onnx
    from handtrack.inference.model import read_info
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import HandTracker, TrackerOptions
    info = read_info(tmp_path / "murauer_pose.onnx")
    assert info.method == "murauer" and info.training["steps"] == {"pretrain": 3, "adapt": 3}
    assert info.extra["precision"] == "int8" and read_info(tmp_path / "murauer_pose_fp32.onnx").extra == {}
    # int8 convolutions, except the last one (the head's per-cell output), whose weights stay float
    graph = onnx.load(str(tmp_path / "murauer_pose.onnx")).graph
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert all(c.input[1] in dequantized for c in convs[:-1]) and convs[-1].input[1] not in dequantized
    assert [convs[-1].name] == info.extra["kept_float"]
    for pose in ("murauer_pose.onnx", "murauer_pose_fp32.onnx"):
        tracker = HandTracker(TrackerOptions(model=str(tmp_path / pose)))
        assert tracker.centre_model is not None                     # the refiner shipped beside it is used
        with open_source("demo", frames=3, realtime=False) as source:
            results = list(tracker.track(source))
        assert len(results) == 3
        assert all(r.joints_mm is not None and r.joints_mm.shape == (21, 3) for r in results if r.present)


def test_an_int8_model_is_not_quantized_again(trained, tmp_path):
    from handtrack.training.murauer.export import export_checkpoint
    from handtrack.training.quantize import quantize_pose
    files = export_checkpoint(trained / "final.pt", tmp_path, precision="int8")
    with pytest.raises(HandtrackError, match="already quantized"):
        quantize_pose(files["pose"], tmp_path / "again.onnx", n_calibration=3)
    with pytest.raises(HandtrackError, match="precision must be"):
        export_checkpoint(trained / "final.pt", tmp_path, precision="fp16")


# --- errors -------------------------------------------------------------------------------------------------------

def test_bad_configs_and_checkpoints_get_one_line(shards, tmp_path):
    raw = raw_config(shards)
    raw["data"]["real"][0]["kind"] = "video"
    with pytest.raises(HandtrackError, match="kind 'video'"):
        load_config(write(tmp_path / "bad.json", raw))
    with pytest.raises(HandtrackError, match="unknown config key 'stages.pretrain.epochs'"):
        load_config(write(tmp_path / "typo.json", {"stages": {"pretrain": {"epochs": 3}}}))
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HandtrackError, match="not a handtrack checkpoint"):
        model_from_checkpoint(tmp_path / "x.pt")


def test_resuming_with_another_model_is_refused(trained, shards, tmp_path):
    import shutil
    shutil.copytree(trained, tmp_path / "run")
    raw = raw_config(shards)
    raw["model"] = {"widths": [16, 32, 64, 128]}
    code = main(["train", "murauer", "--config", str(write(tmp_path / "c.json", raw)), "--out",
                 str(tmp_path / "run"), "--resume"])
    assert code != 0


@pytest.mark.slow
def test_torchrun_with_two_processes_averages_the_gradients(shards, tmp_path):
    """Rank 0 draws the batches a single process draws, so its weights differ from the single-process run's
    only if rank 1's gradients were averaged in."""
    raw = raw_config(shards, pretrain=2, adapt=0, real=False)
    config = write(tmp_path / "ddp.json", raw)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "handtrack.app.cli", "train", "murauer", "--config", str(config), "--out", str(tmp_path / "ddp")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert cli("train", "murauer", "--config", config, "--out", tmp_path / "single")[0] == 0
    ddp = torch.load(tmp_path / "ddp" / "final.pt", weights_only=True)["model"]
    single = torch.load(tmp_path / "single" / "final.pt", weights_only=True)["model"]
    weights = [k for k in ddp if k.startswith("f.") and k.endswith("weight") and ddp[k].dim() == 4]
    assert any(not torch.allclose(ddp[k], single[k]) for k in weights)


@pytest.mark.slow
def test_the_experiment_scores_both_methods_and_continues_where_it_stopped(shards, tmp_path):
    args = ["train", "murauer-experiment", "--source", shards["source"], "--target", shards["target"],
            "--target-test", shards["target"], "--out", tmp_path / "exp", "--fractions", "0", "25",
            "--widths", "8", "8", "16", "16", "--fused", "16", "--pretrain-steps", "2", "--adapt-steps", "2",
            "--threads", "1", "--json", tmp_path / "exp.json", "--plot", tmp_path / "exp.png"]
    code, stdout, _ = cli(*args)
    assert code == 0
    results = json.loads((tmp_path / "exp.json").read_text())["results"]
    assert set(results) == {"baseline@0", "murauer@0", "baseline@25", "murauer@25"}
    assert all(np.isfinite(r["target_mean_error_mm"]) for r in results.values())
    assert (tmp_path / "exp.png").is_file()
    stamp = (tmp_path / "exp" / "murauer_25" / "final.pt").stat().st_mtime
    assert cli(*args)[0] == 0                     # a second run trains nothing again
    assert (tmp_path / "exp" / "murauer_25" / "final.pt").stat().st_mtime == stamp


def test_a_recorded_session_gives_unlabelled_crops_around_its_recorded_palms(shards, tmp_path):
    from handtrack.inference.recording.writer import SessionWriter
    from handtrack.inference.sources import open_source
    from handtrack.inference.frame import StreamInfo
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    tracker = HandTracker(TrackerOptions(model="crossingnets"))
    path = tmp_path / "s.mcap"
    with open_source("demo", frames=4, realtime=False) as source:
        frames = list(source)
    with SessionWriter(path, StreamInfo(frames[0].intrinsics, 30.0, "demo"), model="crossingnets") as writer:
        for frame in frames:
            writer.write(frame, tracker.process(frame))
    config = make_config({"data": {"synthetic": [{"path": str(shards["target"])}], "real": [
        {"kind": "session", "path": str(path), "crops_per_frame": 3, "min_presence": 0.0}]}})
    crops = load_data(config["data"], 250.0, seed=0).real_unlabelled
    assert crops.joints is None and len(crops) == 4 * 3
    hand = crops.images(np.arange(len(crops))).numpy() < 0.9
    assert hand.mean(axis=(1, 2, 3)).min() > 0.02        # every crop shows the hand


def test_murauer_ships_as_the_default_and_render_models_are_not_methods():
    from handtrack.inference.tracker import TrackerOptions
    from handtrack.models_onnx import DEFAULT_MODEL, shipped
    assert DEFAULT_MODEL == "murauer" and TrackerOptions().model == "murauer"
    assert shipped() == ["crossingnets", "murauer"]      # not "crossingnets_render_from" (a render model)


# --- handedness readout -------------------------------------------------------------------------------------------

def test_the_handedness_readout_folds_its_standardisation_into_its_weights():
    from handtrack.training.handedness import fit
    rng = np.random.default_rng(0)
    features = rng.normal(5.0, 10.0, (600, 8)).astype(np.float32)      # far from zero mean and unit spread
    left = features[:, 0] > 5.0
    weights, scores = fit(features, left, hidden=16, epochs=40)
    assert scores["held_out_accuracy"] > 0.9
    h = np.maximum(features @ weights["w1"] + weights["b1"], 0)         # what the grafted graph computes
    assert (((h @ weights["w2"] + weights["b2"])[:, 0] > 0) == left).mean() > 0.9


def test_which_hand_averages_what_is_said():
    from handtrack.inference.tracker import _which_hand
    assert _which_hand(None, None) is None
    assert _which_hand(0.9, None) == pytest.approx(0.9) and _which_hand(None, 0.2) == pytest.approx(0.2)
    assert _which_hand(0.9, 0.1) == pytest.approx(0.5) and _which_hand(0.8, 0.8) == pytest.approx(0.8)


def test_a_pose_file_learns_to_say_which_hand_and_the_tracker_reads_it(trained, tmp_path):
    from handtrack.inference.model import PoseModel
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import HandTracker, TrackerOptions
    from handtrack.training.detect.data import write_shard
    from handtrack.training.murauer.export import export_checkpoint

    files = export_checkpoint(trained / "final.pt", tmp_path, precision="fp32", centre_from="murauer")
    write_shard(tmp_path / "frames", 0, 40, 40, seed=11)
    out = tmp_path / "sided_pose.onnx"
    code, stdout, _ = cli("train", "handedness", "--pose", files["pose"], "--data", tmp_path / "frames",
                          "--out", out, "--epochs", "3", "--json", tmp_path / "h.json")
    assert code == 0 and "held-out crops" in stdout
    assert not PoseModel(files["pose"]).has_handedness                  # the input file is left as it was
    model = PoseModel(out)
    assert model.has_handedness and model.info.outputs == ("latent", "joints", "left")
    assert model.info.extra["handedness"]["train_crops"] > 0
    crop = np.random.default_rng(0).uniform(-1, 1, (128, 128)).astype(np.float32)
    latent, joints, p = model.predict_sided(crop)
    assert 0.0 <= p <= 1.0
    plain = PoseModel(files["pose"]).predict(crop)                      # the pose outputs are unchanged
    assert np.array_equal(latent, plain[0]) and np.array_equal(joints, plain[1])
    with pytest.raises(HandtrackError, match="no 'left' output"):
        PoseModel(files["pose"]).predict_sided(crop)
    code, _, stderr = cli("train", "handedness", "--pose", out, "--data", tmp_path / "frames")
    assert code != 0 and "already has a 'left' output" in stderr
    again = tmp_path / "again_pose.onnx"                                 # --replace: the old readout comes off
    code, _, _ = cli("train", "handedness", "--pose", out, "--data", tmp_path / "frames", "--out", again,
                     "--epochs", "2", "--replace", "--no-mirror")
    assert code == 0 and PoseModel(again).info.outputs == ("latent", "joints", "left")
    assert PoseModel(again).info.extra["handedness"]["mirrored_copies"] is False
    assert np.array_equal(PoseModel(again).predict(crop)[1], plain[1])
    (tmp_path / "sided_centre.onnx").write_bytes(files["centre"].read_bytes())
    # A few steps of training draw no hand: render and compare would rightly call its estimate no hand (and a
    # frame without a hand has no handedness), so presence is the presence net's alone here.
    tracker = HandTracker(TrackerOptions(model=str(out), agreement=False))
    with open_source("demo", frames=3, realtime=False) as source:
        results = list(tracker.track(source))
    assert results[0].hands[0].left_probability is not None
