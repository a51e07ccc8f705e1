"""The weights fine-tuning starts from.

The shipped ONNX graph cannot be trained (batch norm is folded into the convolutions), so beside each fine-tunable
shipped model goes `models_onnx/<name>_train.pt`: the torch weights of MURAUER's f, p and m that the ONNX file was
exported from, in float16 (half the size; the rounding moves predictions by well under 0.1 mm, see
docs/finetune.md), with the model section of the training config and the version it is. Written by
`write_start_weights` from a MURAUER checkpoint whenever a new default model is shipped:

    python -c "from handtrack.training.finetune.start import write_start_weights; \\
               write_start_weights('runs/murauer_cpu_adapt/final.pt', 'models_onnx/murauer_train.pt', 'murauer-cpu-4')"

`--model` of `handtrack finetune` takes a shipped name (murauer) or any MURAUER training checkpoint (.pt), such
as the final.pt of an earlier fine-tuning run, to go on from there.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from handtrack.inference.errors import HandtrackError
from handtrack.training.checkpoint import read_checkpoint
from handtrack.training.murauer.config import make_config
from handtrack.training.murauer.networks import Murauer
from handtrack.training.murauer.trainer import build_model, load_checkpoint

START_FORMAT = 1
KEPT = ("f.", "p.", "m.")  # g (view prediction) and h (critic) are training-only and start afresh


def write_start_weights(checkpoint: str | Path, out: str | Path, version: str) -> Path:
    ckpt = load_checkpoint(checkpoint)
    weights = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items() if k.startswith(KEPT)}
    config = json.loads(ckpt["config"])
    torch.save({"format": START_FORMAT, "model": weights, "model_config": json.dumps(config["model"]),
                "version": version}, out)
    return Path(out)


def load_start(name_or_path: str | Path) -> tuple[Murauer, dict, str]:
    """(model in float32 with the start weights, MURAUER config with that model section, version)."""
    from handtrack.models_onnx import resolve

    path = resolve(name_or_path, "train", ".pt")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a foreign file gets one line
        raise HandtrackError(f"{path}: not a handtrack weights file ({type(exc).__name__})") from exc
    if isinstance(raw, dict) and raw.get("format") == START_FORMAT and "model_config" in raw:
        config = make_config({"model": json.loads(raw["model_config"])})
        weights, version = raw["model"], str(raw.get("version", path.stem))
    else:  # a MURAUER training checkpoint (one line if it is not one)
        ckpt = read_checkpoint(path, 1, "MURAUER")
        config = make_config({"model": json.loads(ckpt["config"])["model"]})
        weights, version = ckpt["model"], path.stem
    model = build_model(config)
    state = model.state_dict()
    missing = [k for k in state if k.startswith(KEPT) and k not in weights]
    try:
        model.load_state_dict({**state, **{k: v.float() if v.is_floating_point() else v
                                           for k, v in weights.items() if k in state}})
    except RuntimeError as exc:
        raise HandtrackError(f"{path}: weights do not fit its own model section ({str(exc).splitlines()[0][:160]})"
                             ) from exc
    if missing:
        raise HandtrackError(f"{path}: lacks {len(missing)} weights of f, p and m (e.g. {missing[0]})")
    return model, config, version
