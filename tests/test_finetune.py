"""`handtrack finetune` on a tiny session made here: each method for a few steps, the exported model in the
tracker, resuming, the transforms and the label correction it rests on, and bad sessions."""
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="fine-tuning needs the train extra")

from handtrack.inference.errors import HandtrackError  # noqa: E402

TINY = {"steps": 2, "batch": {"synthetic": 4, "session": 4}, "log_every": 1, "ckpt_every": 1,
        "semihand": {"views": 2, "refresh": 2}, "bf16": False}


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """Six frames of the experiment's user, recorded by `handtrack record` as a user would, and 24 synthetic
    samples for the labelled side."""
    from handtrack.app.cli import main
    from handtrack.training.finetune.user_domain import write_user_frames
    from handtrack.training.synth.generator import SynthConfig, generate_shard

    root = tmp_path_factory.mktemp("finetune")
    frames = write_user_frames(root / "frames", "session", frames=6)
    session = root / "session.mcap"
    assert main(["record", "--source", str(frames), "--out", str(session)]) == 0
    synthetic = root / "synthetic"
    synthetic.mkdir()
    generate_shard(synthetic, 0, 24, 24, SynthConfig(sensor="sr305", seed=3))
    return {"root": root, "frames": frames, "session": session, "synthetic": synthetic}


def _config(methods, user, **more):
    from handtrack.training.finetune.config import make_config
    return make_config({**TINY, "methods": methods, "synthetic": {"path": str(user["synthetic"]), "samples": 24},
                        **more})


def _trainer(methods, user, out, **more):
    from handtrack.training.crossingnets.data import load_shards
    from handtrack.training.finetune.sessions import load_sessions
    from handtrack.training.finetune.trainer import FinetuneTrainer

    config = _config(methods, user, **more)
    sessions = load_sessions([user["session"]], 250.0)
    return FinetuneTrainer(config, "murauer", sessions, load_shards(user["synthetic"], None, 250.0), out,
                           quiet=True)


@pytest.mark.parametrize("methods, losses", [
    (["semihand"], {"l_sup", "l_pl", "l_cons"}),
    (["murauer"], {"l_sup", "l_m", "l_anchor", "l_h"}),
    (["awh"], {"l_sup", "l_w", "l_depth", "l_critic", "gp"}),
])
def test_each_method_trains_a_few_steps_and_moves_the_weights(user, tmp_path, methods, losses):
    trainer = _trainer(methods, user, tmp_path)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    row = trainer.history[-1]
    assert losses <= set(row) and all(np.isfinite(row[k]) for k in losses)
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("f."))
    # batch norm keeps the shipped statistics
    assert all(torch.equal(before[k], after[k]) for k in before if k.endswith(("running_mean", "running_var")))
    if "semihand" in methods:
        assert [s["step"] for s in trainer.pseudo_stats] == [0, 1]  # refreshed at the start and half-way
        assert 0.0 <= trainer.pseudo_stats[-1]["kept_share"] <= 1.0


def test_session_crops_take_the_exported_route_and_m_keeps_its_mapping(user, tmp_path):
    """The shipped model's m is a trained mapping (its adapt stage): tuning runs session crops through it, as the
    exported graph does, leaves it alone without the murauer method, and anchors it to its own output with it."""
    shipped = _trainer(["semihand"], user, tmp_path / "semihand")
    m = shipped.model
    assert not m.m.is_identity()
    x = shipped.sessions.crops.images(np.arange(4))
    m.eval()
    with torch.no_grad():
        assert torch.allclose(shipped.route(x), m.p(m.m(m.f(x))))
        assert not torch.allclose(shipped.route(x), m.p(m.f(x)), atol=1e-3)
    before = {k: v.clone() for k, v in m.m.state_dict().items()}
    shipped.run()
    assert all(torch.equal(before[k], v) for k, v in m.m.state_dict().items())

    # murauer with the critic's weight at 0: the anchor alone holds m where it started (not at the identity)
    aligned = _trainer(["murauer"], user, tmp_path / "murauer", murauer={"adversarial": 0.0})
    aligned.run()
    assert aligned.history[0]["l_anchor"] < 1e-6
    assert not aligned.model.m.is_identity()


@pytest.mark.slow
def test_finetune_command_combined_exports_a_model_the_tracker_runs(user, tmp_path):
    from handtrack.app.cli import main
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({k: v for k, v in TINY.items() if k != "steps"}))
    out = tmp_path / "run"
    code = main(["finetune", "--sessions", str(user["session"]), "--out", str(out), "--method",
                 "semihand,murauer,awh", "--steps", "2", "--synthetic", str(user["synthetic"]), "--config",
                 str(config), "--quiet", "--json", str(tmp_path / "report.json")])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["methods"] == ["semihand", "murauer", "awh"] and report["steps"] == 2
    assert report["plausibility"]["before"]["frames"] == report["plausibility"]["after"]["frames"] == 6
    assert (out / "report.png").stat().st_size > 0
    model = out / "finetuned_pose.onnx"
    assert model == Path(report["model"]) and (out / "finetuned_centre.onnx").is_file()
    tracker = HandTracker(TrackerOptions(model=str(model)))
    from handtrack.inference.model import read_info
    from handtrack.models_onnx import resolve
    assert tracker.pose_model.info.version == read_info(resolve("murauer")).version + "+semihand+murauer+awh"
    assert tracker.pose_model.info.extra["precision"] == "int8" and (out / "finetuned_pose_fp32.onnx").is_file()
    with open_source(user["frames"]) as source:
        results = [tracker.process(frame) for frame in source]
    assert sum(r.present for r in results) >= 5
    # the same command again refuses to overwrite the run; --resume finds it finished
    assert main(["finetune", "--sessions", str(user["session"]), "--out", str(out), "--quiet"]) == 2


@pytest.mark.slow
def test_resume_goes_on_from_the_last_checkpoint(user, tmp_path):
    first = _trainer(["semihand"], user, tmp_path)
    first.run()
    assert (tmp_path / "last.pt").is_file()
    from handtrack.training.crossingnets.data import load_shards
    from handtrack.training.finetune.sessions import load_sessions
    from handtrack.training.finetune.trainer import FinetuneTrainer

    config = _config(["semihand"], user, steps=4)
    with pytest.raises(HandtrackError, match="other settings"):
        FinetuneTrainer(config, "murauer", load_sessions([user["session"]], 250.0),
                        load_shards(user["synthetic"], None, 250.0), tmp_path, resume=True)
    again = _trainer(["semihand"], user, tmp_path)
    again._resume()
    assert again.step == 2 and torch.equal(again.pseudo, first.pseudo)
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), first.model.state_dict().values()))


def test_a_session_of_another_resolution_without_predictions_is_used(user, tmp_path):
    """A 320x240 session recorded with --no-track: the hand is found by the tracker here."""
    from handtrack.inference.frame import DepthFrame, StreamInfo
    from handtrack.inference.recording import SessionWriter
    from handtrack.inference.sources import open_source
    from handtrack.training.finetune.sessions import load_sessions

    path = tmp_path / "small.mcap"
    with open_source(user["frames"]) as source:
        frames = list(source)
    K = frames[0].intrinsics.scaled(0.5)
    writer = SessionWriter(path, StreamInfo(K, 30.0, "half-size test camera", 1.0))
    for f in frames:
        writer.write(DepthFrame(np.ascontiguousarray(f.depth_mm[::2, ::2]), K, frame_id=f.frame_id))
    writer.close()
    crops = load_sessions([path], 250.0)
    (counts,) = crops.counts.values()
    assert counts["frames"] == 6 and counts["tracked_here"] == 6 and counts["used"] >= 5
    assert crops.crops.depth.shape[1:] == (128, 128)


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\x89MCAP0\r\n" + b"\x00" * 40, "session"),
    (b"this is not a recording at all", "not a session"),
])
def test_empty_or_corrupt_sessions_get_one_line(tmp_path, content, message):
    from handtrack.training.finetune.sessions import load_sessions

    path = tmp_path / "bad.mcap"
    path.write_bytes(content)
    with pytest.raises(HandtrackError, match=message) as err:
        load_sessions([path], 250.0)
    assert "\n" not in str(err.value)


def test_a_truncated_session_is_read_up_to_its_last_complete_frame(user, tmp_path):
    from handtrack.training.finetune.sessions import load_sessions

    data = user["session"].read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        crops = load_sessions([cut], 250.0)
    except HandtrackError as exc:  # cut inside the first chunk: nothing complete to read, said in one line
        assert "\n" not in str(exc)
    else:
        (counts,) = crops.counts.values()
        assert counts["truncated"] and 0 < counts["used"] < 6


def test_transforms_move_the_crop_and_its_joints_alike():
    from handtrack.training.finetune import transforms as T

    crops = torch.ones(1, 1, 128, 128)
    joint = torch.tensor([[[0.3, -0.2, 0.0]]])
    u, v = int((0.3 + 1) / 2 * 128), int((-0.2 + 1) / 2 * 128)
    crops[0, 0, v - 1:v + 2, u - 1:u + 2] = -0.5  # a blob at the joint
    params = torch.tensor([[np.deg2rad(40.0), 0.1, 0.05]], dtype=torch.float32)
    moved = T.transform_crops(crops, params)
    where = torch.nonzero(moved[0, 0] < 0).float().mean(0)  # (row, col)
    target = T.transform_joints(joint, params)[0, 0]
    assert abs((where[1] + 0.5) / 64 - 1 - target[0]) < 0.03 and abs((where[0] + 0.5) / 64 - 1 - target[1]) < 0.03
    assert torch.allclose(T.invert_joints(T.transform_joints(joint, params), params), joint, atol=1e-6)
    assert moved.max() == 1.0  # uncovered pixels are background


def test_label_correction_imposes_the_bone_lengths_and_keeps_directions():
    from handtrack.inference import skeleton
    from handtrack.training.finetune.correction import bone_lengths, correct

    rng = np.random.default_rng(0)
    joints = rng.normal(0, 40, (5, 21, 3))
    lengths = np.concatenate([[0.0], rng.uniform(20, 60, 20)])
    fixed = correct(joints, lengths)
    assert np.allclose(bone_lengths(fixed), lengths)
    assert np.allclose(fixed[:, 0], joints[:, 0])
    for j in range(1, 21):
        p = skeleton.PARENTS[j]
        a, b = joints[:, j] - joints[:, p], fixed[:, j] - fixed[:, p]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert np.all(cos > 0.9999)


def test_depth_regulariser_prefers_the_true_joints(user):
    """On the user's crops around the true palm, the true joints explain the depth better than shifted ones."""
    from handtrack.inference import skeleton
    from handtrack.inference.crop import crop_and_normalise
    from handtrack.inference.sources import open_source
    from handtrack.training.finetune.render import depth_regulariser, fit_thickness
    from handtrack.training.finetune.user_domain import load_labels

    labels = load_labels(user["frames"])
    crops, joints, centres = [], [], []
    with open_source(user["frames"]) as source:
        for i, frame in enumerate(source):
            truth = labels[f"frame_{i:05d}"]
            palm = skeleton.palm_centre(truth)
            crop, _ = crop_and_normalise(frame.depth_mm, frame.intrinsics, palm, 250.0, 128)
            crops.append(crop)
            joints.append((truth - palm) / 125.0)
            centres.append(palm)
    x = torch.from_numpy(np.stack(crops)).unsqueeze(1)
    j = torch.from_numpy(np.stack(joints).astype(np.float32))
    c = torch.from_numpy(np.stack(centres).astype(np.float32))

    thickness = fit_thickness(j, x, c, 250.0)
    assert thickness > 1.2  # the user's hand is 1.3 x 1.3 the reference's thickness

    def loss(joints):
        return float(depth_regulariser(joints, x, c, 250.0, thickness=thickness))

    true = loss(j)
    assert true < loss(j + torch.tensor([0.1, 0.0, 0.0])) and true < loss(j + torch.tensor([0.0, 0.0, 0.1]))
    assert true < loss(j * 0.8)
    moved = j.clone().requires_grad_(True)
    depth_regulariser(moved, x, c, 250.0, thickness=thickness).backward()
    assert moved.grad.abs().sum() > 0


def test_unknown_method_and_foreign_start_weights_are_one_line(tmp_path):
    from handtrack.training.finetune.config import make_config
    from handtrack.training.finetune.start import load_start

    with pytest.raises(HandtrackError, match="one or more of"):
        make_config({"methods": ["magic"]})
    with pytest.raises(HandtrackError, match=r"no shipped .train. model named .crossingnets. \(shipped: murauer\)"):
        load_start("crossingnets")
    foreign = tmp_path / "other.pt"
    torch.save({"weights": [1, 2, 3]}, foreign)
    with pytest.raises(HandtrackError, match="not a MURAUER checkpoint|not a handtrack"):
        load_start(foreign)
