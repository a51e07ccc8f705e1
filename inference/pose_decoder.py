"""The pose route's decoder on its own: a shared latent (B, L) -> normalised joints (B, J, 3).

A shipped pose model maps a crop to the latent and decodes the joints from it inside one graph (its outputs are
`latent` and `joints`). Cutting that graph at its `latent` output (onnx.utils.Extractor) gives exactly the decoder
the tracker runs, with no second file to ship or to drift: a latent walk (the paper's Fig. 1) can then show the
pose of any point between two latents beside the render route's depth for it. numpy, onnx and onnxruntime only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import HandtrackError
from .model import PoseModel


class PoseDecoder:
    """latent (B, L) -> normalised joints (B, J, 3), the decoder half of a pose model."""

    def __init__(self, pose_model: str | Path | PoseModel, threads: int = 1):
        import onnx
        import onnxruntime as ort
        from onnx.utils import Extractor

        model = pose_model if isinstance(pose_model, PoseModel) else PoseModel(pose_model, threads)
        self.info = model.info
        if tuple(self.info.outputs[:2]) != ("latent", "joints"):
            raise HandtrackError(f"{model.path.name}: outputs {self.info.outputs}; a decodable pose model gives "
                                 "('latent', 'joints')")
        graph = onnx.load(str(model.path))
        try:
            decoder = Extractor(graph).extract_model(["latent"], ["joints"])
        except Exception as exc:  # noqa: BLE001 - onnx raises plain exceptions for graphs it cannot cut
            raise HandtrackError(f"{model.path.name}: the joints do not follow from the latent alone ({exc})") from exc
        if [i.name for i in decoder.graph.input] != ["latent"]:
            raise HandtrackError(f"{model.path.name}: the joints need more than the latent to decode")
        # The same session options (threads) as the pose model it was cut from.
        self.session = ort.InferenceSession(decoder.SerializeToString(), model.session.get_session_options(),
                                            providers=["CPUExecutionProvider"])
        self.latent_size = int(model.session.get_outputs()[0].shape[-1])

    def decode(self, latent: np.ndarray) -> np.ndarray:
        latent = np.ascontiguousarray(np.atleast_2d(latent), dtype=np.float32)
        if latent.shape[-1] != self.latent_size:
            raise HandtrackError(f"latent of size {latent.shape[-1]}; this model's latent has {self.latent_size}")
        return self.session.run(None, {"latent": latent})[0]
