"""A trainable Crossing Nets checkpoint rebuilt from the shipped ONNX files, so training can go on from a
shipped model when its torch checkpoint is gone.

The export folds every batch norm into the convolution or linear layer before it, so the files hold the
folded weights only. Training needs the batch norms back (they normalise batches in training), so each one is
*unfolded*: its layer keeps the folded weights, and the norm gets as its scale and shift the per-channel spread
and mean of that layer's output over real crops (or latents), with running statistics to match. In eval mode the
norm is then exactly the identity, so the rebuilt pose and render routes compute what the files compute; in
training mode it starts as nearly the identity (each batch's statistics against the measured ones).

What the files do not hold starts afresh: the discriminator's GAN and smoothness heads and the VAE's log-variance
layer (none of them is on an exported route; the refine and render stages do not read them).

    python -m handtrack.training.crossingnets.from_onnx --models models_onnx --data runs/data/ps_val \\
        --config training/configs/crossingnets_cpu_long.json --out runs/cn_from_onnx/init.pt
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handtrack.inference.errors import HandtrackError

from .config import load_config
from .data import load_shards
from .networks import CrossingNets
from .trainer import CHECKPOINT_FORMAT, build_model

# The files whose initialisers hold the routes' weights between them (render_from_pose adds the VAE's encoder).
FILES = ("pose_fp32", "render", "render_from_pose")
WRAPPED = "render."  # render_from_pose holds the render route as a submodule of that name


def onnx_weights(models_dir: Path, name: str = "crossingnets") -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    weights: dict[str, torch.Tensor] = {}
    for role in FILES:
        path = models_dir / f"{name}_{role}.onnx"
        if not path.exists():
            raise HandtrackError(f"{path}: missing (the pose_fp32, render and render_from_pose files are needed)")
        for init in onnx.load(str(path)).graph.initializer:
            key = init.name.removeprefix(WRAPPED)
            if "." in key:  # named parameters; the exporter's constants are called val_N
                weights[key] = torch.from_numpy(numpy_helper.to_array(init).copy())
    return weights


@torch.no_grad()
def unfold(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Run x through `layers` (in order), giving every batch norm the statistics of its input so that in eval
    mode it passes that input through unchanged."""
    for layer in layers:
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            dims = [0] + list(range(2, x.dim()))
            mean, var = x.mean(dims), x.var(dims, unbiased=False)
            var = var.clamp_min(2 * layer.eps)
            layer.weight.copy_(var.sqrt())
            layer.bias.copy_(mean)
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var - layer.eps)  # (x - m) / sqrt(v - eps + eps) * sqrt(v) + m = x
            layer.eval()
        x = layer(x)
    return x


@torch.no_grad()
def rebuild(models_dir: Path, config: dict, crops: torch.Tensor, poses: torch.Tensor) -> CrossingNets:
    """The model of `config` with the shipped files' weights, its batch norms unfolded on `crops` (B, 1, S, S)
    and the latents of `poses` (B, 21, 3 normalised joints)."""
    from .codec import PoseCodec

    model = build_model(config).eval()
    weights = onnx_weights(models_dir)
    state = model.state_dict()
    unknown = [k for k in weights if k not in state]
    if unknown:
        raise HandtrackError(f"{models_dir}: the files' weights do not fit this model (e.g. {unknown[0]})")
    for k, v in weights.items():
        if state[k].shape != v.shape:
            raise HandtrackError(f"{models_dir}: {k} is {tuple(v.shape)}, this model's {tuple(state[k].shape)}")
        state[k].copy_(v)
    dis = model.dis
    features = unfold(list(dis.trunk), crops)
    unfold(list(dis.pos_convs) + list(dis.pos_out), features)
    pose, offset = PoseCodec(config["model"]["cube_mm"]).encode(poses)
    z = torch.cat([model.vae.encode(pose)[0], offset], 1)
    z_x = torch.tanh(unfold([model.ali.linear, model.ali.bn], z))
    unfold(list(model.gen.fc), z_x)
    unfold(list(model.gen.deconv), model.gen.fc(z_x).view(-1, model.gen.width, 4, 4))
    return model


def write_start(model: CrossingNets, config: dict, out: Path, source: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {**config, "meta": {**config.get("meta", {}), "rebuilt_from": source}}
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optim": {},
                "position": {"stage": 0, "step": 0}, "history": [], "config": json.dumps(config)}, out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=Path("models_onnx"))
    p.add_argument("--data", type=Path, required=True, help="shards whose crops and poses set the batch norms")
    p.add_argument("--config", type=Path, required=True, help="a training config with the files' model section")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=1024)
    args = p.parse_args(argv)
    config = load_config(args.config)
    data = load_shards(args.data, args.n, config["model"]["cube_mm"])
    idx = np.arange(len(data))
    model = rebuild(args.models, config, data.images(idx), data.targets(idx))
    print(write_start(model, config, args.out, str(args.models)))


if __name__ == "__main__":
    main()
