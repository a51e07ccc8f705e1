"""ONNX export of Crossing Nets: single files, metadata, parity with torch, refusal of foreign files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from handtrack.app.cli import main  # noqa: E402
from handtrack.inference.errors import HandtrackError  # noqa: E402
from handtrack.inference.model import METADATA_KEY, PoseModel, RenderModel, read_info  # noqa: E402
from handtrack.training.crossingnets.config import make_config  # noqa: E402
from handtrack.training.crossingnets.export import export_checkpoint, parity, parity_inputs  # noqa: E402
from handtrack.training.crossingnets.trainer import CHECKPOINT_FORMAT, build_model  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of an untrained model with non-trivial batch-norm statistics (parity must hold for any
    weights, and eval-mode batch norm is where exporters go wrong)."""
    torch.manual_seed(0)
    config = make_config({"meta": {"training_data": "none (test)", "command": "pytest"}})
    model = build_model(config)
    model.train()
    with torch.no_grad():  # move the running statistics away from 0 / 1
        for _ in range(3):
            model.dis(torch.rand(16, 1, 128, 128) * 2 - 1)
            model.render(torch.randn(16, 23))
            model.vae(torch.randn(16, 63))
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optim": {}, "history": [],
                "position": {"stage": 4, "step": 0}, "config": json.dumps(config)}, path)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> dict[str, Path]:
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("onnx"), "test", version="test-0")


def test_three_single_file_models_with_metadata(exported):
    import onnx
    assert set(exported) == {"pose", "render", "render_from_pose"}
    for role, path in exported.items():
        assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith("test_")) == sorted(
            p.name for p in exported.values())  # no external-data side files
        proto = onnx.load(str(path), load_external_data=False)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
        meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
        assert meta["role"] == role and meta["cube_mm"] == 250.0 and meta["input_size"] == 128
        assert meta["joint_set"] == "canonical21" and len(meta["joint_names"]) == 21
        assert meta["version"] == "test-0" and meta["training"]["command"] == "pytest"
        assert "cube_mm / 2" in meta["depth_normalisation"]


def test_parity_random_and_real_crops(checkpoint, exported):
    inputs = parity_inputs(DATA)
    if DATA.is_dir():
        assert len(inputs["pose"]) > 4  # the real NYU and SR305 crops are in
    diffs = parity(checkpoint, exported, inputs)
    assert set(diffs) == {"pose.latent", "pose.joints", "render.depth", "render_from_pose.depth"}
    assert max(diffs.values()) <= 1e-4, diffs


def test_dynamic_batch_and_shapes(exported):
    pose = PoseModel(exported["pose"])
    for b in (1, 7):
        latent, joints = pose.predict(np.zeros((b, 128, 128), np.float32))
        assert latent.shape == (b, 23) and joints.shape == (b, 21, 3)
    render = RenderModel(exported["render"])
    assert render.render(np.zeros((3, 23), np.float32)).shape == (3, 1, 128, 128)
    with pytest.raises(HandtrackError, match="128x128"):
        pose.predict(np.zeros((1, 96, 96), np.float32))


def test_foreign_and_corrupt_models_are_refused(exported, tmp_path):
    import onnx
    proto = onnx.load(str(exported["pose"]))
    del proto.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save_model(proto, str(foreign))
    with pytest.raises(HandtrackError, match="without handtrack metadata"):
        read_info(foreign)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(exported["pose"].read_bytes()[:5000])
    with pytest.raises(HandtrackError, match="not a loadable ONNX model"):
        PoseModel(corrupt)
    with pytest.raises(HandtrackError, match="expected a 'pose' model"):
        PoseModel(exported["render"])
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({"format": 99})
    future = tmp_path / "future.onnx"
    onnx.save_model(proto, str(future))
    with pytest.raises(HandtrackError, match="format 99"):
        read_info(future)


def test_export_command_reports_parity(checkpoint, tmp_path, capsys):
    assert main(["export", "crossingnets", "--checkpoint", str(checkpoint), "--out", str(tmp_path), "--name", "cli",
                 "--data", str(DATA), "--json", str(tmp_path / "export.json")]) == 0
    report = json.loads((tmp_path / "export.json").read_text())
    assert max(report["parity_max_abs"].values()) <= report["tolerance"]
    assert (tmp_path / "cli_pose.onnx").is_file()
    assert main(["export", "crossingnets", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_int8_export_quantizes_the_pose_file_and_keeps_its_first_and_last_convolutions_in_float(checkpoint,
                                                                                                  tmp_path):
    import onnx

    assert main(["export", "crossingnets", "--checkpoint", str(checkpoint), "--out", str(tmp_path), "--name", "q",
                 "--precision", "int8", "--data", str(DATA), "--json", str(tmp_path / "export.json")]) == 0
    report = json.loads((tmp_path / "export.json").read_text())
    assert max(report["parity_max_abs"].values()) <= report["tolerance"]  # the float files against torch
    assert report["int8"]["crops"] > 0 and np.isfinite(report["int8"]["mean_joint_difference_mm"])
    int8 = PoseModel(tmp_path / "q_pose.onnx")
    assert int8.info.extra["precision"] == "int8" and len(int8.info.extra["kept_float"]) == 2
    graph = onnx.load(str(tmp_path / "q_pose.onnx")).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    float_convs = [n.name for n in graph.node if n.op_type == "Conv" and n.input[1] not in dequantized]
    int8_convs = [n.name for n in graph.node if n.op_type == "Conv" and n.input[1] in dequantized]
    assert float_convs == int8.info.extra["kept_float"] and len(int8_convs) == 3  # int8 weights in the others
    crop = np.random.default_rng(0).uniform(-1, 1, (1, 1, 128, 128)).astype(np.float32)
    assert np.isfinite(int8.predict(crop)[1]).all()
    assert not (tmp_path / "q_render_fp32.onnx").exists()  # the render routes stay float


def test_eval_commands_score_an_exported_model(exported, tmp_path):
    out = tmp_path / "synth.json"
    assert main(["eval", "synth", "--model", str(exported["pose"]), "--sensor", "sr305", "--n", "8",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 8 and report["joints"] == 21 and np.isfinite(report["mean_error_mm"])
    assert report["model"]["version"] == "test-0"
    if DATA.is_dir():
        out = tmp_path / "nyu.json"
        assert main(["eval", "nyu-frame", "--model", str(exported["pose"]), "--data", str(DATA),
                     "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["joints"] == 14 and len(report["pred14_mm"]) == 14
    assert main(["eval", "synth", "--model", "no-such-model"]) == 2
