"""One self-contained ONNX file per model, with handtrack's metadata: how every trainer writes its exports.

`write_onnx` exports a torch module (dynamic batch; optionally dynamic height and width) with the metadata
`inference/model.py` reads; `save_onnx` writes any ONNX proto atomically, weights inside the file.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import METADATA_KEY, ModelInfo

OPSET = 18


def write_onnx(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str], info: ModelInfo,
               path: Path, spatial: bool = False) -> None:
    """Export `module` (batch dimension dynamic; with `spatial`, height and width too, for fully convolutional
    networks that read whole frames) to one self-contained ONNX file carrying `info` as metadata."""
    import onnx

    shapes = {0: torch.export.Dim("batch", min=1, max=4096)}
    if spatial:
        shapes.update({2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the exporter's own deprecation notices, not ours
        program = torch.onnx.export(module, (example,), None, input_names=inputs, output_names=outputs,
                                    dynamic_shapes=(shapes,), opset_version=OPSET, dynamo=True,
                                    external_data=False, verbose=False)
    proto = program.model_proto
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(info.to_metadata())
    proto.doc_string = f"handtrack {info.method} {info.role} model, version {info.version}"
    onnx.checker.check_model(proto)
    save_onnx(proto, path)


def save_onnx(proto, path: Path) -> None:
    """Write a model as one file, atomically: a reader never sees half a file, a failed write leaves none."""
    import onnx

    tmp = path.with_suffix(".onnx.tmp")
    try:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise HandtrackError(f"cannot write {path}: {exc.strerror}") from exc
