"""Shipped ONNX models and their model cards. A model is named by its method; each method ships one file per
role it has: `<method>_pose.onnx` (crop -> joints), `<method>_centre.onnx` (the centre refiner),
`<method>_render.onnx` (latent -> depth) and `<method>_render_from_pose.onnx` (joints -> depth), with the card
`<method>.md`. MURAUER ships pose and centre; Crossing Nets all four. The hand finder, used with any pose model,
ships `handfinder_detector.onnx` and `handfinder_presence.onnx` (card `handfinder.md`)."""
from __future__ import annotations

from pathlib import Path

from handtrack.inference.errors import HandtrackError

HERE = Path(__file__).resolve().parent
# What the tracker, the stream, the recorder, the GUI and the evaluators use unless told otherwise: the most
# accurate shipped model (docs/results.md).
DEFAULT_MODEL = "murauer"


def shipped() -> list[str]:
    """Methods with a shipped pose model."""
    return sorted(p.name[: -len("_pose.onnx")] for p in HERE.glob("*_pose.onnx")
                  if not p.name.endswith("_render_from_pose.onnx"))  # a render model, not a method's pose model


def resolve(name_or_path: str | Path, role: str = "pose", suffix: str = ".onnx") -> Path:
    """A shipped model by method name ('crossingnets'), or any .onnx file by path. `suffix` ".pt" with role
    "train" finds the torch weights fine-tuning starts from (`<method>_train.pt`)."""
    path = Path(name_or_path)
    if path.suffix == suffix or path.exists():
        return path
    candidate = HERE / f"{name_or_path}_{role}{suffix}"
    if candidate.is_file():
        return candidate
    names = shipped() if suffix == ".onnx" else sorted(p.name[: -len(f"_{role}{suffix}")]
                                                        for p in HERE.glob(f"*_{role}{suffix}"))
    known = ", ".join(names) or "none"
    raise HandtrackError(f"no shipped '{role}' model named '{name_or_path}' (shipped: {known}); "
                         f"give a {suffix} path")
