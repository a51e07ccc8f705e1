"""Evaluate an exported pose model (ONNX, through onnxruntime: what users run) on data with known answers.

- synthetic: freshly rendered held-out samples of one sensor model (a seed no training set uses, so poses,
  shapes, views and noise are all unseen), cropped at the jittered palm centre as in training;
- the real NYU frame: cropped at its labelled palm centre (the benchmark protocol), scored on the 14 NYU joints
  after reading them off the hand model fitted to the 21 predicted joints;
- the real SR305 frames (no labels): how plausible the predicted joints are against the observed depth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.crop import crop_and_normalise, denormalise_joints, normalise_depth
from handtrack.inference.model import PoseModel
from handtrack.training.evaluation import EvalSummary, evaluate

HELD_OUT_SEED = 9_000_001  # training sets use small seeds; this one is for evaluation only


def synthetic_test_set(sensor: str, n: int, cube_mm: float, seed: int = HELD_OUT_SEED, size: int = 128) -> dict:
    from handtrack.training.synth.generator import SynthConfig, make_sample
    from handtrack.training.synth.pose_prior import PosePrior

    config = SynthConfig(sensor=sensor, cube_mm=cube_mm, size=size, seed=seed)
    prior = PosePrior.load()
    depth, centre, joints = (np.zeros((n, size, size), np.float32), np.zeros((n, 3)), np.zeros((n, 21, 3)))
    for i in range(n):
        s = make_sample(i, config, prior)
        depth[i], centre[i], joints[i] = s.depth[0], s.centre[0], s.joints[0]
    crops = normalise_depth(depth, centre[:, 2, None, None], cube_mm)
    return {"crops": crops, "centre": centre, "joints": joints}


def predict_mm(model: PoseModel, crops: np.ndarray, centre: np.ndarray, batch: int = 64) -> np.ndarray:
    """Normalised crops and their centres -> (N, 21, 3) joints in mm."""
    out = []
    for s in range(0, len(crops), batch):
        _, joints = model.predict(crops[s:s + batch])
        out.append(joints)
    return denormalise_joints(np.concatenate(out), centre[:, None, :], model.info.cube_mm)


def eval_synthetic(model: PoseModel, sensor: str, n: int, seed: int = HELD_OUT_SEED) -> EvalSummary:
    data = synthetic_test_set(sensor, n, model.info.cube_mm, seed, model.info.input_size)
    pred = predict_mm(model, data["crops"], data["centre"])
    return evaluate(pred, data["joints"], skeleton.JOINT_NAMES)


def eval_nyu_frame(model: PoseModel, data_dir: Path) -> dict:
    from handtrack.inference.datasets import nyu
    from handtrack.inference.handmodel.fit import fit_to_joints
    from handtrack.inference.handmodel.keypoints import keypoints
    from handtrack.inference.handmodel.kinematics import forward

    frame = nyu.load_frame(data_dir / "nyu" / "test_depth_1_0000001.png")
    truth14 = nyu.load_joints14_xyz_from_uvd(data_dir / "nyu" / "test_joints14_uvd.txt")[0]
    centre = truth14[skeleton.NYU14_PALM]
    crop, _ = crop_and_normalise(frame.depth_mm, frame.intrinsics, centre, model.info.cube_mm, model.info.input_size)
    pred21 = predict_mm(model, crop[None], centre[None])[0]
    fit = fit_to_joints(pred21[None], "canonical21")
    pred14 = keypoints(forward(fit.pose, fit.shape), "nyu14")[0]
    summary = evaluate(pred14[None], truth14[None], skeleton.NYU14_NAMES)
    return {"summary": summary, "pred21_mm": pred21, "pred14_mm": pred14, "truth14_mm": truth14,
            "fit_residual_mm": float(np.mean(fit.residual_mm)), "depth_mm": frame.depth_mm,
            "intrinsics": frame.intrinsics, "centre": centre}


def eval_sr305_plausibility(model: PoseModel, data_dir: Path) -> list[dict]:
    from handtrack.inference.datasets import realsense_png
    from handtrack.inference.plausibility import frame_plausibility, joint_plausibility
    from handtrack.training.synth.compare import localised_hand_centre

    rows = []
    for path in sorted((data_dir / "realsense_sr305").glob("*.png")):
        f = realsense_png.load_frame(path)
        centre = localised_hand_centre(f.depth_mm, f.intrinsics)
        crop, _ = crop_and_normalise(f.depth_mm, f.intrinsics, centre, model.info.cube_mm, model.info.input_size)
        pred = predict_mm(model, crop[None], centre[None])[0]
        scores = joint_plausibility(pred, f.depth_mm, f.intrinsics)
        rows.append({"frame": path.name, "plausibility": frame_plausibility(scores),
                     "joint_plausibility": scores.tolist(), "centre_mm": centre.tolist(), "pred_mm": pred,
                     "depth_mm": f.depth_mm, "intrinsics": f.intrinsics})
    return rows
