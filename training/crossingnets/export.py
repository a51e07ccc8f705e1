"""Export a trained Crossing Nets checkpoint to single-file ONNX models with handtrack metadata.

    <name>_pose.onnx              crop (B, 1, 128, 128) -> latent (B, 23), joints (B, 21, 3)  [the discriminator]
    <name>_render.onnx            latent (B, 23) -> depth (B, 1, 128, 128)                     [Ali + generator]
    <name>_render_from_pose.onnx  joints (B, 21, 3) -> depth (B, 1, 128, 128)                  [VAE encoder + render]

The batch dimension is dynamic. Weights are stored inside each file (no external data), so a model is one file
to copy. Metadata: `inference/model.py` documents it; the engine refuses a file whose metadata it cannot read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from handtrack.inference import skeleton
from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import ModelInfo
from handtrack.training.onnx_file import write_onnx

from .codec import PoseCodec
from .networks import IMAGE_SIZE, LATENT, CrossingNets
from .routes import PoseRoute, RenderRoute
from .trainer import load_checkpoint, model_from_checkpoint


class RenderFromPose(nn.Module):
    """Normalised joints -> depth: the VAE's mean latent of the pose plus its root offset, then the render route."""

    def __init__(self, model: CrossingNets, cube_mm: float):
        super().__init__()
        self.vae, self.render = model.vae, RenderRoute(model)
        self.codec = PoseCodec(cube_mm)

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        pose, offset = self.codec.encode(joints)
        mu, _ = self.vae.encode(pose)
        return self.render(torch.cat([mu, offset], 1))


def _routes(model: CrossingNets, cube_mm: float) -> dict[str, tuple[nn.Module, torch.Tensor, list[str], list[str]]]:
    J = skeleton.NUM_JOINTS
    return {
        "pose": (PoseRoute(model, cube_mm), torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE), ["crop"], ["latent", "joints"]),
        "render": (RenderRoute(model), torch.zeros(2, LATENT), ["latent"], ["depth"]),
        "render_from_pose": (RenderFromPose(model, cube_mm), torch.zeros(2, J, 3), ["joints"], ["depth"]),
    }


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, name: str = "crossingnets",
                      version: str | None = None, precision: str = "fp32") -> dict[str, Path]:
    """Write the three ONNX files; returns role -> path. With precision "int8" the pose file is quantized
    (`training/quantize.py`, its first and last convolutions left in float) and the float one is kept beside it
    as <name>_pose_fp32.onnx (role "pose_fp32"): the tracker runs the pose file on every frame, the render
    files only in the GUI, so those stay in float."""
    if precision not in ("fp32", "int8"):
        raise HandtrackError(f"precision must be fp32 or int8, got {precision!r}")
    model, config = model_from_checkpoint(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    cube = float(config["model"]["cube_mm"])
    history = ckpt["history"]
    validation = next((dict(r) for r in reversed(history) if "val_mm" in r), {})
    training = {"data": config["meta"].get("training_data", ""), "command": config["meta"].get("command", ""),
                "config": config["name"], "steps": {s: config["stages"][s]["steps"] for s in config["stages"]},
                "validation": {k: validation[k] for k in ("val_mm", "vae_floor_mm") if k in validation}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for role, (module, example, inputs, outputs) in _routes(model, cube).items():
        info = ModelInfo(method="crossingnets", role=role, version=version or f"{name}-1", cube_mm=cube,
                         input_size=IMAGE_SIZE, joint_set="canonical21", joint_names=skeleton.JOINT_NAMES,
                         inputs=tuple(inputs), outputs=tuple(outputs), training=training)
        path = out_dir / f"{name}_{role}.onnx"
        if role == "pose" and precision == "int8":
            float_path = out_dir / f"{name}_pose_fp32.onnx"
            write_onnx(module.eval(), example, inputs, outputs, info, float_path)
            from handtrack.training.quantize import quantize_pose
            quantize_pose(float_path, path, keep_first=True)
            written["pose_fp32"] = float_path
        else:
            write_onnx(module.eval(), example, inputs, outputs, info, path)
        written[role] = path
    return written


def parity(checkpoint: str | Path, files: dict[str, Path], inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Max |onnxruntime - torch| per role and output, on the given inputs (role -> array)."""
    import onnxruntime as ort

    model, config = model_from_checkpoint(checkpoint)
    routes = _routes(model, float(config["model"]["cube_mm"]))
    result = {}
    for role, x in inputs.items():
        module, _, in_names, out_names = routes[role]
        with torch.no_grad():
            expected = module.eval()(torch.from_numpy(x))
        expected = expected if isinstance(expected, tuple) else (expected,)
        sess = ort.InferenceSession(str(files[role]), providers=["CPUExecutionProvider"])
        got = sess.run(None, {in_names[0]: x})
        for name, e, g in zip(out_names, expected, got):
            result[f"{role}.{name}"] = float(np.abs(e.numpy() - g).max())
    return result


def parity_inputs(data_dir: Path, n_random: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for every route plus, for the pose route, real crops: the NYU frame at its palm centre and
    the SR305 frames at their nearest blob (those present under data_dir)."""
    from handtrack.inference.crop import crop_and_normalise

    rng = np.random.default_rng(seed)
    crops = [rng.uniform(-1, 1, (n_random, 1, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)]
    nyu_png = Path(data_dir) / "nyu" / "test_depth_1_0000001.png"
    if nyu_png.is_file():
        from handtrack.inference.datasets import nyu
        frame = nyu.load_frame(nyu_png)
        centre = nyu.load_joints14_xyz_from_uvd(nyu_png.parent / "test_joints14_uvd.txt")[0][skeleton.NYU14_PALM]
        crops.append(crop_and_normalise(frame.depth_mm, frame.intrinsics, centre)[0][None, None])
    sr = sorted((Path(data_dir) / "realsense_sr305").glob("*.png"))
    if sr:
        from handtrack.inference.datasets import realsense_png
        from handtrack.training.synth.compare import localised_hand_centre
        for path in sr[:3]:
            f = realsense_png.load_frame(path)
            centre = localised_hand_centre(f.depth_mm, f.intrinsics)
            crops.append(crop_and_normalise(f.depth_mm, f.intrinsics, centre)[0][None, None])
    return {"pose": np.concatenate(crops).astype(np.float32),
            "render": rng.normal(size=(n_random, LATENT)).astype(np.float32),
            "render_from_pose": rng.normal(0, 0.3, (n_random, skeleton.NUM_JOINTS, 3)).astype(np.float32)}
