"""Export a MURAUER checkpoint to ONNX files with handtrack metadata:

    <name>_pose.onnx        crop (B, 1, 128, 128) -> latent (B, C), joints (B, 21, 3): what the tracker runs,
                            int8 by default (`training/quantize.py`: ~2.8x faster on one core, ~0.1 mm)
    <name>_pose_fp32.onnx   the same graph in float32, which the parity check compares with torch (only beside
                            an int8 file; with precision "fp32" the float file is <name>_pose.onnx itself)

The graph is p(m(f(x))): the runtime only ever sees real depth, and m is what MURAUER puts between real
features and the pose head (it starts as the identity and moves only as far as real data pulls it; an m that is
still exactly the identity, as after pretraining alone, is left out of the graph, saving its runtime). `latent` is
the mapped feature averaged over the grid, a summary for whoever wants one (the tracker passes it on).
The centre refiner that goes beside it is copied from a shipped one (`centre_from`): the tracker measured the
shared refiner, and a refiner depends on the crops, not on the pose network.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handtrack.inference import skeleton
from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import ModelInfo
from handtrack.training.crossingnets.export import parity_inputs
from handtrack.training.onnx_file import write_onnx

from .networks import IMAGE_SIZE, Murauer, summary_vector
from .trainer import load_checkpoint, model_from_checkpoint


class RealPoseRoute(nn.Module):
    """crop -> (latent, joints) through f, m and p."""

    def __init__(self, model: Murauer):
        super().__init__()
        self.f, self.p = model.f, model.p
        self.m = nn.Identity() if model.m.is_identity() else model.m

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.m(self.f(crops))
        return summary_vector(feature), self.p(feature)


PRECISIONS = ("int8", "fp32")


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, name: str = "murauer", version: str | None = None,
                      centre_from: str | Path | None = None, precision: str = "int8") -> dict[str, Path]:
    """Write the files; returns role -> path ("pose", "pose_fp32" beside an int8 pose file, "centre")."""
    if precision not in PRECISIONS:
        raise HandtrackError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    model, config = model_from_checkpoint(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    validation = next((dict(r) for r in reversed(ckpt["history"]) if "val_mm" in r), {})
    training = {"data": config["meta"].get("training_data", ""), "command": config["meta"].get("command", ""),
                "config": config["name"], "steps": {s: config["stages"][s]["steps"] for s in config["stages"]},
                "model": config["model"],
                "validation": {k: validation[k] for k in ("val_mm", "real_val_mm") if k in validation}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = ModelInfo(method="murauer", role="pose", version=version or f"{name}-1",
                     cube_mm=float(config["model"]["cube_mm"]), input_size=IMAGE_SIZE, joint_set="canonical21",
                     joint_names=skeleton.JOINT_NAMES, inputs=("crop",), outputs=("latent", "joints"),
                     training=training)
    path = out_dir / f"{name}_pose.onnx"
    float_path = out_dir / f"{name}_pose_fp32.onnx" if precision == "int8" else path
    write_onnx(RealPoseRoute(model).eval(), torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), ["crop"],
               ["latent", "joints"], info, float_path)
    written = {"pose": path}
    if precision == "int8":
        from handtrack.training.quantize import quantize_pose

        quantize_pose(float_path, path)
        written["pose_fp32"] = float_path
    if centre_from is not None:
        from handtrack.models_onnx import resolve
        source = resolve(centre_from, "centre")
        if not source.is_file():
            raise HandtrackError(f"no centre refiner at {source}")
        target = out_dir / f"{name}_centre.onnx"
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        written["centre"] = target
    return written


def parity(checkpoint: str | Path, pose_file: Path, data_dir: Path) -> dict[str, float]:
    """Max |onnxruntime - torch| per output on random crops and the real NYU / SR305 crops."""
    import onnxruntime as ort

    model, _ = model_from_checkpoint(checkpoint)
    x = parity_inputs(data_dir)["pose"]
    with torch.no_grad():
        expected = RealPoseRoute(model).eval()(torch.from_numpy(x))
    got = ort.InferenceSession(str(pose_file), providers=["CPUExecutionProvider"]).run(None, {"crop": x})
    return {f"pose.{n}": float(np.abs(e.numpy() - g).max()) for n, e, g in zip(("latent", "joints"), expected, got)}
