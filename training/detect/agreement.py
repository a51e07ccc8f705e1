"""Fitting the presence-with-agreement combiner (`handtrack train agreement`; runtime: inference/agreement.py).

The combiner is a logistic regression on agreement.FEATURES (the presence net's logit and how well our hand
model, rendered at the pose model's estimate, explains the crop). It is fitted where the tracker uses it: crops
the presence net gives at least tracker.AGREE_FROM, cut as the tracker cuts them, from synthetic full frames of
a seed no other training uses (`make_frame`, every case):

- the tracker's own final crop on every frame (run from scratch with the agreement off): a hand when its centre
  lies within POSITIVE_MM of the true palm, not a hand when at least NEGATIVE_MM away or on a frame without a
  hand (in between: part hand, left out);
- the frame's presence crops that are not hands (body, head, forearm, clutter, wall, a hand cut by the crop's
  edge, a crop at the frame's border, a hand of impossible size), read once by the pose model.

The last VALIDATION share of the frames is held out and scored, against the presence net alone.
"""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

from handtrack.inference.agreement import FEATURES, AgreementModel, agreement_features
from handtrack.inference.crop import crop_and_normalise, normalise_joints

from .frames import make_frame

POSITIVE_MM = 40.0    # as the presence net's own hand crops (frames.POSITIVE_RADIUS_MM)
NEGATIVE_MM = 110.0   # as its non-hand crops (frames.NEGATIVE_MIN_MM)
VALIDATION = 0.2
L2 = 1e-2             # ridge on the standardised weights: a few thousand samples, six features


def frame_samples(tracker, f, K) -> tuple[list[np.ndarray], list[float], list[str]]:
    """(features, label, kind) of one synthetic frame's crops, as described in the module's docstring."""
    from handtrack.inference.frame import DepthFrame
    from handtrack.inference.tracker import AGREE_FROM

    feats, labels, kinds = [], [], []
    tracker.reset()
    hand = tracker.process(DepthFrame(depth_mm=f.full_depth, intrinsics=K), timestamp=0.0).hands[0]
    if hand.centre_mm is not None and hand.joints_mm is not None:
        dist = float(np.linalg.norm(hand.centre_mm - f.palm_mm)) if f.hand else np.inf
        label = 1.0 if dist <= POSITIVE_MM else 0.0 if dist >= NEGATIVE_MM else None
        crop, window = crop_and_normalise(f.full_depth, K, hand.centre_mm, tracker.cube_mm, tracker.input_size)
        p = tracker.presence_model.probability(crop)
        if label is not None and p >= AGREE_FROM:
            left = hand.handedness == "left"
            joints = normalise_joints(hand.joints_mm, window.center, tracker.cube_mm) * ([-1.0, 1, 1] if left else 1)
            feats.append(agreement_features(hand.crop, joints, p, K, window.center, tracker.cube_mm, left))
            labels.append(label)
            kinds.append("tracker_hand" if label else "tracker_" + (f.case if not f.hand else "off_palm"))
    for crop, is_hand, kind, centre in zip(f.crops, f.crop_hand, f.crop_kind, f.crop_centre):
        if is_hand:
            continue  # the hands are the tracker's own crops above
        crop = crop.astype(np.float32)
        p = tracker.presence_model.probability(crop)
        if p >= AGREE_FROM:
            feats.append(tracker.agreement_features_at(crop, K, centre, p))
            labels.append(0.0)
            kinds.append(kind)
    return feats, labels, kinds


def _collect(args) -> tuple[list, list, list, list]:
    from handtrack.inference.tracker import HandTracker, TrackerOptions
    from handtrack.training.synth.pose_prior import PosePrior
    from handtrack.training.synth.sensors import SENSORS

    model, seed, indices = args
    tracker = HandTracker(TrackerOptions(model=model, smoothing=None, agreement=False))
    tracker.unit_check = None  # each frame stands alone
    prior = PosePrior.load()
    X, y, kinds, frames = [], [], [], []
    for i in indices:
        f = make_frame(i, seed, prior, keep_full=True)
        fx, fy, fk = frame_samples(tracker, f, SENSORS[f.sensor].intrinsics)
        X += fx
        y += fy
        kinds += fk
        frames += [i] * len(fy)
    return X, y, kinds, frames


def collect(model: str, n: int, seed: int, workers: int = 2) -> dict:
    """Features and labels of n synthetic frames, in `workers` processes."""
    chunks = [(model, seed, list(range(k, n, workers))) for k in range(workers)]
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_collect, chunks)
    else:
        parts = [_collect(chunks[0])]
    out = {"X": [], "y": [], "kind": [], "frame": []}
    for X, y, kinds, frames in parts:
        out["X"] += X
        out["y"] += y
        out["kind"] += kinds
        out["frame"] += frames
    return {"X": np.asarray(out["X"], np.float64).reshape(-1, len(FEATURES)), "y": np.asarray(out["y"]),
            "kind": np.asarray(out["kind"]), "frame": np.asarray(out["frame"])}


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias of a ridge logistic regression (Newton's method on standardised features), returned for
    the raw features."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([(X - mu) / sd, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    ridge = np.diag([l2 * len(X)] * (Z.shape[1] - 1) + [0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-Z @ w))
        grad = Z.T @ (p - y) + ridge @ w
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + ridge
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[:-1] / sd
    return weights, float(w[-1] - np.dot(weights, mu))


def score(p: np.ndarray, y: np.ndarray) -> dict:
    from .trainer import roc_auc

    return {"roc_auc": roc_auc(p, y), "hands_kept": float((p[y > 0] >= 0.5).mean()),
            "non_hands_passed": float((p[y == 0] >= 0.5).mean())}


def train_agreement(model: str, n: int, seed: int, out: Path, version: str, workers: int = 2,
                    samples: Path | None = None) -> dict:
    """Collect, fit on the first frames, score on the last VALIDATION share against the presence net alone, refit
    on all and write the agreement file (and the collected samples as .npz to `samples`, when given)."""
    data = collect(model, n, seed, workers)
    if samples is not None:
        np.savez_compressed(samples, **data)
    X, y = data["X"], data["y"]
    held = data["frame"] >= int(n * (1 - VALIDATION))
    w, b = fit_logistic(X[~held], y[~held])
    fitted = AgreementModel(w, b)
    p_agree = np.array([fitted.probability(x) for x in X[held]])
    p_net = 1.0 / (1.0 + np.exp(-X[held, 0]))
    w, b = fit_logistic(X, y)
    result = {"model": model, "frames": n, "seed": seed, "samples": int(len(y)), "hands": int(y.sum()),
              "per_kind": {k: int((data["kind"] == k).sum()) for k in sorted(set(data["kind"]))},
              "validation": {"samples": int(held.sum()), "presence_net": score(p_net, y[held]),
                             "with_agreement": score(p_agree, y[held])},
              "weights": dict(zip(FEATURES, np.round(w, 4).tolist())), "bias": round(b, 4)}
    AgreementModel(w, b, version).save(out, fitted_on={k: result[k] for k in ("model", "frames", "seed", "samples")})
    result["file"] = str(out)
    return result
