"""Render and compare: does the estimated hand explain the depth it was read from?

The presence net looks at a crop and says whether it holds a hand; on real frames it is sometimes sure of a
head or of a body cut by the frame's corner (docs/results.md). A second, independent look: fit our hand model to
the 21 joints the pose model read off the crop, render it into the crop's camera (handmodel/estimate_render.py)
and compare with the observed crop. A hand explains its crop; a head, a torso or a wall read as a hand does not:
the rendered hand lies off the observed surface or inside it, and the joints themselves need a large residual to be
a hand at all (on the real frames: 1-4 mm for the hands, 2-15 mm for crops of heads, bodies and walls).

`AgreementModel` combines these figures with the presence net's logit in a logistic regression fitted on
synthetic crops as the tracker cuts them (`handtrack train agreement`, training/detect/agreement.py), so the
result is still a probability. Its coefficients live in models_onnx/handfinder_agreement.json.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import Intrinsics
from .errors import HandtrackError
from .handmodel.estimate_render import render_estimate

FEATURES = ("presence_logit", "fit_residual_cm", "gap_on_hand", "hidden")
SURFACE = 0.99        # a normalised crop pixel below this holds surface inside the cube (background is +1)
BEHIND = 0.16         # a drawn pixel with seen surface this much nearer (20 mm of a 250 mm cube) is hidden
FIT_ITERATIONS = 8    # the fit converges in about five on the tracker's estimates; the cost is ~1 ms per iteration
LOGIT_CLIP = 9.0      # presence probabilities of exactly 0 or 1 stay finite


def logit(p: float) -> float:
    p = min(max(float(p), 1e-4), 1.0 - 1e-4)
    return float(np.clip(np.log(p / (1.0 - p)), -LOGIT_CLIP, LOGIT_CLIP))


def mirrored_camera(K: Intrinsics) -> Intrinsics:
    """The camera seen in a mirror (u -> width - 1 - u): a left hand's crop mirrored for the right-hand pose model is
    this camera's crop of the mirrored scene."""
    return Intrinsics(K.fx, K.fy, K.width - 1 - K.cx, K.cy, K.width, K.height)


def agreement_features(model_crop: np.ndarray, model_joints: np.ndarray, presence: float, K: Intrinsics,
                       centre_mm: np.ndarray, cube_mm: float, left: bool) -> np.ndarray:
    """The figures of FEATURES for one crop, in the pose model's own (right-hand) view: `model_crop` the crop as
    the model saw it (mirrored for a left hand), `model_joints` (21, 3) its normalised output before un-mirroring,
    `centre_mm` the crop's centre in the camera frame.

    Only where the hand is drawn: a body beside or behind a real hand (a hand on the chest, an arm) costs nothing.
    gap_on_hand: the median depth difference there (normalised; 0.08 is 10 mm); hidden: the share of the drawn
    hand that lies behind a seen surface (a hand drawn inside a head or a torso); fit_residual_cm: how far our
    hand model must stay from the 21 joints (a hand's joints fit it within a few millimetres)."""
    centre = np.asarray(centre_mm, np.float64) * ([-1.0, 1.0, 1.0] if left else 1.0)
    camera = mirrored_camera(K) if left else K
    joints = np.asarray(model_joints, np.float64) * (cube_mm / 2) + centre
    drawn = render_estimate(joints, camera, centre, cube_mm, model_crop.shape[-1], iterations=FIT_ITERATIONS)
    seen_crop, render = np.asarray(model_crop, np.float32), drawn.crop
    hand = render < SURFACE
    on_hand = hand & (seen_crop < SURFACE)
    gap_on_hand = float(np.median(np.abs(render - seen_crop)[on_hand])) if on_hand.any() else 1.0
    hidden = (hand & (seen_crop < render - BEHIND)).sum() / max(hand.sum(), 1)
    return np.array([logit(presence), drawn.fit_residual_mm / 10.0, gap_on_hand, hidden])


@dataclass(frozen=True)
class AgreementModel:
    """p(hand) = sigmoid(w . features + b), features in the order of FEATURES."""
    weights: np.ndarray
    bias: float
    version: str = ""

    def probability(self, features: np.ndarray) -> float:
        z = float(np.dot(self.weights, features) + self.bias)
        return float(1.0 / (1.0 + np.exp(-z)))

    @classmethod
    def load(cls, path: str | Path) -> AgreementModel:
        path = Path(path)
        try:
            meta = json.loads(path.read_text())
            if tuple(meta["features"]) != FEATURES:
                raise ValueError(f"features {meta['features']} are not {list(FEATURES)}")
            weights = np.asarray(meta["weights"], np.float64)
            if weights.shape != (len(FEATURES),) or not np.all(np.isfinite(weights)):
                raise ValueError(f"weights {meta['weights']} are not {len(FEATURES)} finite numbers")
            return cls(weights, float(meta["bias"]), str(meta.get("version", "")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HandtrackError(f"{path}: not a hand-agreement file ({exc})") from exc

    def save(self, path: str | Path, **extra) -> None:
        Path(path).write_text(json.dumps({"version": self.version, "features": list(FEATURES),
                                          "weights": [round(float(w), 6) for w in self.weights],
                                          "bias": round(self.bias, 6), **extra}, indent=2) + "\n")
