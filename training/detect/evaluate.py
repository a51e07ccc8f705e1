"""`handtrack eval detect`: does the tracker find the hand, say whether there is one, and which hand?

Synthetic: held-out full frames (a seed no training set uses) of every case of `frames.CASES`, each run through
the runtime tracker from scratch (hand finding, centre refiner, presence, handedness), reported per case, per
view of the hand and per sensor: the crop centre within 30 mm of the true palm centre on frames with a hand, a
hand reported on frames without one, handedness right; and the presence net's ROC AUC on the held-out crops.

Real: the NYU frame and the SR305 frames: the crop centre against the labelled / annotated palm, presence, and
the presence of non-hand crops cut from the same frames (centres on the body, arm and background, at least
NON_HAND_MM from the palm), judged as the tracker judges a hand found there (`HandTracker.presence_at`: the
presence net and, where shipped, the render-and-compare agreement).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import deproject
from handtrack.inference.frame import DepthFrame

HELD_OUT_SEED = 9_100_001
FOUND_MM = 30.0
NON_HAND_MM = 160.0
NON_HAND_PER_FRAME = 6


def _tracker(options):
    from handtrack.inference.tracker import HandTracker

    tracker = HandTracker(options)
    tracker.unit_check = None  # each frame stands alone here; the unit check judges a whole source
    return tracker


def eval_synthetic(options, n: int, seed: int = HELD_OUT_SEED, progress=None) -> dict:
    from handtrack.training.detect.frames import make_frame
    from handtrack.training.detect.trainer import roc_auc
    from handtrack.training.synth.pose_prior import PosePrior
    from handtrack.training.synth.sensors import SENSORS

    prior = PosePrior.load()
    tracker = _tracker(options)
    rows, crop_scores, judged_scores, crop_labels, crop_kinds = [], [], [], [], []
    for i in range(n):
        f = make_frame(i, seed, prior, keep_full=True)
        K = SENSORS[f.sensor].intrinsics
        tracker.reset()
        r = tracker.process(DepthFrame(depth_mm=f.full_depth, intrinsics=K), timestamp=float(i))
        row = {"case": f.case, "view": f.view, "sensor": f.sensor, "hand": f.hand, "present": r.present,
               "presence": r.presence}
        if f.hand:
            err = float(np.linalg.norm(r.centre_mm - f.palm_mm)) if r.centre_mm is not None else None
            row.update(centre_error_mm=err, found=bool(r.present and err is not None and err <= FOUND_MM),
                       handedness_right=bool(r.present and r.handedness == ("left" if f.left else "right")))
        rows.append(row)
        if tracker.presence_model is not None:
            for crop, label, kind, centre in zip(f.crops, f.crop_hand, f.crop_kind, f.crop_centre):
                crop_scores.append(tracker.presence_model.probability(crop.astype(np.float32)))
                if tracker.agreement is not None:
                    judged_scores.append(tracker.presence_at(f.full_depth, K, centre))
                crop_labels.append(label)
                crop_kinds.append(kind)
        if progress:
            progress(1)
    out = {"seed": seed, "frames": n, **_summary(rows)}
    for key in ("case", "view", "sensor"):
        groups = defaultdict(list)
        for row in rows:
            if row[key]:
                groups[row[key]].append(row)
        out[f"per_{key}"] = {k: _summary(v) for k, v in sorted(groups.items())}
    if crop_scores:
        scores, labels, kinds = np.asarray(crop_scores), np.asarray(crop_labels), np.asarray(crop_kinds)
        out["presence_crops"] = {
            "crops": len(scores), "hand_crops": int((labels > 0).sum()), "roc_auc": roc_auc(scores, labels),
            "per_kind_mean_presence": {k: float(scores[kinds == k].mean()) for k in sorted(set(kinds))}}
        if judged_scores:
            # As the tracker judges a hand found there: with the render-and-compare agreement.
            judged = np.asarray(judged_scores)
            out["presence_crops"].update(
                roc_auc_with_agreement=roc_auc(judged, labels),
                per_kind_mean_with_agreement={k: float(judged[kinds == k].mean()) for k in sorted(set(kinds))})
    return out


def _summary(rows: list[dict]) -> dict:
    hand = [r for r in rows if r["hand"]]
    none = [r for r in rows if not r["hand"]]
    out = {"frames": len(rows), "hand_frames": len(hand), "no_hand_frames": len(none)}
    if hand:
        errs = [r["centre_error_mm"] for r in hand if r["centre_error_mm"] is not None and r["present"]]
        out.update(found=float(np.mean([r["found"] for r in hand])),
                   handedness=float(np.mean([r["handedness_right"] for r in hand if r["present"]] or [0.0])),
                   centre_error_mm_median=float(np.median(errs)) if errs else None)
    # Frames at a wrong depth scale hold no hand of a possible size; the per-source unit check is what answers
    # them (a single frame tells nothing about the unit), so they are counted apart from the frames without a hand.
    empty = [r for r in none if r["case"] != "wrong_scale"]
    scaled = [r for r in none if r["case"] == "wrong_scale"]
    if empty:
        out["false_hand"] = float(np.mean([r["present"] for r in empty]))
    if scaled:
        out["wrong_scale_reported"] = float(np.mean([r["present"] for r in scaled]))
    return out


def eval_real(options, data_dir: Path) -> dict:
    from handtrack.inference.datasets import nyu, realsense_png
    from handtrack.training.model_eval import SR305_LANDMARKS_UV, sr305_palm_mm

    frames = []
    frame = nyu.load_frame(data_dir / "nyu" / "test_depth_1_0000001.png")
    truth14 = nyu.load_joints14_xyz_from_uvd(data_dir / "nyu" / "test_joints14_uvd.txt")[0]
    frames.append(("nyu_test_1", frame, truth14[skeleton.NYU14_PALM]))
    for path in sorted((data_dir / "realsense_sr305").glob("*.png")):
        if path.stem in SR305_LANDMARKS_UV:
            f = realsense_png.load_frame(path)
            frames.append((path.stem, f, sr305_palm_mm(f.depth_mm, f.intrinsics, SR305_LANDMARKS_UV[path.stem])))
    tracker = _tracker(options)
    rows, non_hand = [], []
    for name, f, palm in frames:
        tracker.reset()
        r = tracker.process(f, timestamp=0.0)
        err = float(np.linalg.norm(r.centre_mm - palm)) if r.centre_mm is not None else None
        row = {"frame": name, "present": r.present, "presence": r.presence, "handedness": r.handedness,
               "centre_error_mm": err, "within_30mm": err is not None and err <= FOUND_MM,
               "result": r, "depth_mm": f.depth_mm, "intrinsics": f.intrinsics}
        if tracker.presence_model is not None:
            scores = [(c.tolist(), tracker.presence_at(f.depth_mm, f.intrinsics, c)) for c in non_hand_centres(f, palm)]
            row["non_hand_presence"] = [s for _, s in scores]
            row["non_hand_centres"] = [c for c, _ in scores]
            non_hand += row["non_hand_presence"]
        rows.append(row)
    out = {"frames": len(rows), "within_30mm": sum(r["within_30mm"] for r in rows),
           "presence_min": float(min(r["presence"] for r in rows)), "rows": rows}
    if non_hand:
        out["non_hand_crops"] = {"crops": len(non_hand), "max_presence": float(max(non_hand)),
                                 "mean_presence": float(np.mean(non_hand)),
                                 "above_0.2": int(sum(p > 0.2 for p in non_hand))}
    return out


def non_hand_centres(frame: DepthFrame, palm: np.ndarray, n: int = NON_HAND_PER_FRAME) -> list[np.ndarray]:
    """Spread-out centres on the observed surface at least NON_HAND_MM from the palm (body, arm, background):
    farthest-point sampling from the point nearest the palm outward, so the arm next to the hand comes first."""
    K, d = frame.intrinsics, frame.depth_mm
    vs, us = np.mgrid[0:d.shape[0]:8, 0:d.shape[1]:8]
    z = d[vs, us]
    ok = (z > 0) & (z < 2000)
    pts = deproject(np.stack([us[ok], vs[ok]], -1), z[ok], K)
    pts = pts[np.linalg.norm(pts - palm, axis=1) >= NON_HAND_MM]
    if not len(pts):
        return []
    chosen = [int(np.argmin(np.linalg.norm(pts - palm, axis=1)))]
    dist = np.linalg.norm(pts - pts[chosen[0]], axis=1)
    while len(chosen) < min(n, len(pts)):
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[k], axis=1))
    return [pts[k] + [0.0, 0.0, 20.0] for k in chosen]
