"""int8 pose models: an exported float pose model, statically quantized for onnxruntime's CPU kernels.

The tracker spends most of a frame in the pose network (MURAUER's is about 175 M multiply-adds per crop); this
CPU has AVX-512 VNNI, on which onnxruntime's int8 convolutions run ~2.8x faster than float ones. What is
quantized, and why (measured on murauer-cpu-2, 500 held-out crops, docs/results.md):

- only the convolutions. Quantizing every operator onnxruntime can (the residual adds, the upsampling, the
  head's softmax and weighted sum) cost 2 mm of mean error; the convolutions alone cost 0.5 mm;
- not the last convolution: it writes the dense head's per-cell weight logits and offsets, which the softmax
  and the weighted sum turn into millimetres; leaving it in float brings the cost to ~0.1 mm for 0.05 ms;
- weights per output channel (symmetric int8), activations per tensor (asymmetric uint8) with ranges from a
  high percentile of what synthetic crops produce. The crops come from the project's own generator at the three
  sensors' noise and with the centre jitter the tracker's crops have, from a seed no training set uses.

The quantized file keeps the float file's handtrack metadata, with `extra.precision = "int8"` and how it was
calibrated; `agreement` measures it against the float file on other held-out crops.
"""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import METADATA_KEY, PoseModel
from handtrack.training.onnx_file import save_onnx

CALIBRATION_SEED = 8_000_001   # neither a training seed (small numbers) nor the evaluation's (9_000_001)
AGREEMENT_SEED = 8_000_002
CALIBRATION_SENSORS = ("primesense", "realsense", "sr305")
CALIBRATION_JITTER_MM = 12.0   # the tracker's first crop of a hand is ~20 mm off its palm
ACTIVATION_PERCENTILE = 99.999


def calibration_crops(n: int, cube_mm: float, size: int, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """n normalised synthetic crops (n, 1, size, size), the sensors in turn."""
    from handtrack.training.model_eval import synthetic_test_set

    per = [n // len(CALIBRATION_SENSORS) + (k < n % len(CALIBRATION_SENSORS)) for k in range(len(CALIBRATION_SENSORS))]
    crops = [synthetic_test_set(s, m, cube_mm, seed + k, size, jitter_mm=CALIBRATION_JITTER_MM)["crops"]
             for k, (s, m) in enumerate(zip(CALIBRATION_SENSORS, per)) if m]
    return np.concatenate(crops)[:, None].astype(np.float32)


def _kept_convs(path: Path, keep_first: bool) -> list[str]:
    """The convolutions left in float: the last, and with `keep_first` the first too."""
    import onnx

    convs = [node.name for node in onnx.load(str(path)).graph.node if node.op_type == "Conv"]
    if len(convs) < 1 + keep_first:
        raise HandtrackError(f"{path}: no convolution to quantize")
    return ([convs[0]] if keep_first else []) + [convs[-1]]


def quantize_pose(float_path: str | Path, out_path: str | Path, n_calibration: int = 384,
                  seed: int = CALIBRATION_SEED, keep_first: bool = False) -> dict:
    """Write the int8 version of the float pose model at `float_path` to `out_path`; returns how it was made.
    `keep_first` leaves the first convolution in float as well: Crossing Nets' first layer (6x6 kernels on the
    raw crop, 32 filters) moved its joints by 10.7 mm in int8, its next two by 2.9 mm (docs/results.md)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    float_path, out_path = Path(float_path), Path(out_path)
    info = PoseModel(float_path).info
    if info.extra.get("precision", "float32") != "float32":
        raise HandtrackError(f"{float_path}: already quantized ({info.extra['precision']}); quantize the float file")
    crops = calibration_crops(n_calibration, info.cube_mm, info.input_size, seed)

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(np.array_split(crops, max(1, len(crops) // 16)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {info.inputs[0]: batch}

    kept_float = _kept_convs(float_path, keep_first)
    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its progress
            quantize_static(str(prepared), str(quantized), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile, op_types_to_quantize=["Conv"],
                            nodes_to_exclude=kept_float,
                            extra_options={"CalibPercentile": ACTIVATION_PERCENTILE})
        proto = onnx.load(str(quantized))
    recipe = {"precision": "int8", "float_model": float_path.name, "quantized": "Conv (weights per channel, int8; "
              f"activations uint8, {ACTIVATION_PERCENTILE} percentile)", "kept_float": kept_float,
              "calibration": {"crops": len(crops), "seed": seed, "sensors": list(CALIBRATION_SENSORS),
                              "jitter_mm": CALIBRATION_JITTER_MM}}
    meta = info.to_metadata()
    meta["extra"] = {**meta["extra"], **recipe}
    del proto.metadata_props[:]  # the quantizer adds its own entries; the file carries ours only
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.doc_string = f"handtrack {info.method} {info.role} model, version {info.version}, int8"
    save_onnx(proto, out_path)
    return recipe


def agreement(float_path: str | Path, int8_path: str | Path, n: int = 300, seed: int = AGREEMENT_SEED) -> dict:
    """The int8 model against its float original on held-out PrimeSense-style crops: the mean distance between
    their joints and each one's mean error to the truth, in mm."""
    from handtrack.training.model_eval import predict_mm, synthetic_test_set

    fp32, int8 = PoseModel(float_path), PoseModel(int8_path)
    data = synthetic_test_set("primesense", n, fp32.info.cube_mm, seed, fp32.info.input_size)
    a = predict_mm(fp32, data["crops"], data["centre"])
    b = predict_mm(int8, data["crops"], data["centre"])
    return {"crops": n, "seed": seed,
            "mean_joint_difference_mm": float(np.linalg.norm(a - b, axis=-1).mean()),
            "max_joint_difference_mm": float(np.linalg.norm(a - b, axis=-1).max()),
            "float_error_mm": float(np.linalg.norm(a - data["joints"], axis=-1).mean()),
            "int8_error_mm": float(np.linalg.norm(b - data["joints"], axis=-1).mean())}
