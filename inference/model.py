"""ONNX models and the metadata embedded in each file (onnxruntime only; the runtime never imports torch).

Every handtrack model carries one metadata entry, key `handtrack`, whose value is JSON:

    format          METADATA_FORMAT; a file with another format (or none) is refused with one line
    method, role    e.g. "crossingnets", and "pose" | "render" | "render_from_pose" | "centre"
    version         the model's own version string
    cube_mm, input_size, joint_set, joint_names
    depth_normalisation, joint_normalisation   formulas, as text, of what the inputs and outputs mean
    inputs, outputs names of the graph's tensors
    training        {data, command, steps, validation}
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.errors import HandtrackError

METADATA_KEY = "handtrack"
METADATA_FORMAT = 1
ROLES = ("pose", "render", "render_from_pose", "centre", "detector", "presence")
DEPTH_NORMALISATION = "(depth_mm - centre_z) / (cube_mm / 2); missing and farther than the cube -> +1; clip to [-1, 1]"
# The detector reads the whole frame instead of a crop.
FRAME_NORMALISATION = ("every extra['frame_stride']-th pixel of the frame; depth_mm / 1000 (metres); missing and "
                       "farther than extra['max_depth_mm'] -> 0")
JOINT_NORMALISATION = "(xyz_mm - centre) / (cube_mm / 2), OpenCV camera frame (x right, y down, z forward)"


@dataclass(frozen=True)
class ModelInfo:
    method: str
    role: str
    version: str
    cube_mm: float
    input_size: int
    joint_set: str
    joint_names: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    training: dict
    extra: dict = field(default_factory=dict)  # what one role needs beyond the common fields (the detector's strides)

    @classmethod
    def from_metadata(cls, meta: dict, source: str) -> ModelInfo:
        if meta.get("format") != METADATA_FORMAT:
            raise HandtrackError(f"{source}: model metadata format {meta.get('format')!r}; this handtrack "
                                 f"reads format {METADATA_FORMAT}")
        try:
            info = cls(method=str(meta["method"]), role=str(meta["role"]), version=str(meta["version"]),
                       cube_mm=float(meta["cube_mm"]), input_size=int(meta["input_size"]),
                       joint_set=str(meta["joint_set"]), joint_names=tuple(meta["joint_names"]),
                       inputs=tuple(meta["inputs"]), outputs=tuple(meta["outputs"]),
                       training=dict(meta.get("training", {})), extra=dict(meta.get("extra", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise HandtrackError(f"{source}: incomplete handtrack metadata ({exc})") from exc
        if info.role not in ROLES:
            raise HandtrackError(f"{source}: unknown model role '{info.role}'")
        expected = FRAME_NORMALISATION if info.role == "detector" else DEPTH_NORMALISATION
        if meta.get("depth_normalisation") != expected:
            raise HandtrackError(f"{source}: the model expects a depth normalisation this handtrack does not do")
        if info.joint_set == "canonical21" and info.joint_names != skeleton.JOINT_NAMES:
            raise HandtrackError(f"{source}: joint names differ from handtrack's canonical 21")
        return info

    def to_metadata(self) -> dict:
        return {"format": METADATA_FORMAT, "method": self.method, "role": self.role, "version": self.version,
                "cube_mm": self.cube_mm, "input_size": self.input_size, "joint_set": self.joint_set,
                "joint_names": list(self.joint_names),
                "depth_normalisation": FRAME_NORMALISATION if self.role == "detector" else DEPTH_NORMALISATION,
                "joint_normalisation": JOINT_NORMALISATION, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "training": self.training, "extra": self.extra}


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Spinning pool threads fight the tracker's own thread for the cores between inferences
        # (a 0.6 ms model leaves them spinning most of the frame); let them sleep instead.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
        raise HandtrackError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from exc


def read_info(path: str | Path, session=None) -> ModelInfo:
    path = Path(path)
    if not path.is_file():
        raise HandtrackError(f"no model file at {path}")
    session = session or _session(path, 1)
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise HandtrackError(f"{path}: an ONNX model without handtrack metadata (made elsewhere?)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HandtrackError(f"{path}: unreadable handtrack metadata ({exc})") from exc
    return ModelInfo.from_metadata(meta, str(path))


class OnnxModel:
    """One handtrack ONNX file: its session and what its metadata says."""

    def __init__(self, path: str | Path, threads: int = 1, role: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise HandtrackError(f"no model file at {self.path}")
        self.session = _session(self.path, threads)
        self.info = read_info(self.path, self.session)
        if role and self.info.role != role:
            raise HandtrackError(f"{self.path}: a '{self.info.role}' model, expected a '{role}' model")
        names = tuple(i.name for i in self.session.get_inputs())
        if names != self.info.inputs:
            raise HandtrackError(f"{self.path}: graph inputs {names} do not match its metadata {self.info.inputs}")
        outputs = tuple(o.name for o in self.session.get_outputs())
        if outputs != self.info.outputs:
            raise HandtrackError(f"{self.path}: graph outputs {outputs} do not match its metadata {self.info.outputs}")

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        feeds = {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in zip(self.info.inputs, inputs)}
        return self.session.run(None, feeds)


class PoseModel(OnnxModel):
    """Normalised crops (B, 1, S, S) -> latent (B, L) and normalised joints (B, J, 3); a pose file may also say
    which hand the crop holds (a third output `left`, p(left hand), `training/handedness.py`)."""

    def __init__(self, path: str | Path, threads: int = 1):
        super().__init__(path, threads, role="pose")
        self.has_handedness = self.info.outputs[2:] == ("left",)
        self._check_shapes()

    def _check_shapes(self) -> None:
        """One empty crop through the graph at load: a graph whose outputs do not have the shapes its metadata
        promises is refused here, in one line, instead of failing at the first frame."""
        S, J = self.info.input_size, len(self.info.joint_names)
        try:
            latent, joints = self.run(np.ones((1, 1, S, S), np.float32))[:2]
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors for a graph that cannot take the input
            raise HandtrackError(f"{self.path}: does not run on the {S}x{S} crops its metadata names "
                                 f"({str(exc).splitlines()[0][:160]})") from exc
        if joints.shape != (1, J, 3) or latent.ndim != 2 or latent.shape[0] != 1:
            raise HandtrackError(f"{self.path}: outputs latent {latent.shape} and joints {joints.shape}; its "
                                 f"metadata promises (1, L) and (1, {J}, 3)")

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim == 2:
            crops = crops[None]
        if crops.ndim == 3:
            crops = crops[:, None]
        S = self.info.input_size
        if crops.shape[1:] != (1, S, S):
            raise HandtrackError(f"{self.path.name} takes {S}x{S} crops, got {crops.shape[-2:]}")
        latent, joints = self.run(crops)[:2]
        return latent, joints

    def predict_sided(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """One crop as it is (not mirrored) -> latent (1, L), joints (1, J, 3) and p(left hand), in one run of a
        file that has the `left` output (`has_handedness`)."""
        if not self.has_handedness:
            raise HandtrackError(f"{self.path.name} has no 'left' output (no handedness readout)")
        latent, joints, left = self.run(np.asarray(crop, np.float32).reshape(1, 1, *crop.shape[-2:]))
        return latent, joints, float(left[0, 0])


class CentreModel(OnnxModel):
    """The centre refiner: a normalised crop (S, S) around a rough hand centre -> where the palm centre is,
    as an offset from the crop centre in cube/2 units (the joint normalisation)."""

    def __init__(self, path: str | Path, threads: int = 1):
        super().__init__(path, threads, role="centre")

    def offset(self, crop: np.ndarray) -> np.ndarray:
        S = self.info.input_size
        if crop.shape[-2:] != (S, S):
            raise HandtrackError(f"{self.path.name} takes {S}x{S} crops, got {crop.shape[-2:]}")
        return self.run(np.asarray(crop, dtype=np.float32).reshape(1, 1, S, S))[0][0].astype(np.float64)


class RenderModel(OnnxModel):
    """Latent (B, L) -> synthesized normalised depth crop (B, 1, S, S); or, role render_from_pose,
    normalised joints (B, J, 3) -> crop."""

    def __init__(self, path: str | Path, threads: int = 1):
        super().__init__(path, threads)
        if self.info.role not in ("render", "render_from_pose"):
            raise HandtrackError(f"{self.path}: a '{self.info.role}' model, expected a render model")

    def render(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[0]
