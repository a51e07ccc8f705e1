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


def synthetic_test_set(sensor: str, n: int, cube_mm: float, seed: int = HELD_OUT_SEED, size: int = 128,
                       jitter_mm: float = 5.0) -> dict:
    from handtrack.training.synth.generator import SynthConfig, make_sample
    from handtrack.training.synth.pose_prior import PosePrior

    config = SynthConfig(sensor=sensor, cube_mm=cube_mm, size=size, seed=seed, jitter_mm=jitter_mm)
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


# Hand landmarks of the SR305 frames, read by eye off 3.5x enlarged depth images with a 10-pixel grid (the frames
# have no labels, and "the tracker found the hand, not the body or the head" needs a reference): the middle of
# the wrist, and for the index, middle, ring and little finger the tip and the finger's base (where its axis
# crosses the line of the webs), pixels, about +-5 px. The palm centre follows the project's definition
# (skeleton.PALM_JOINTS: the mean of the wrist and the four MCP joints); see sr305_palm_mm.
SR305_LANDMARKS_UV = {  # frame: wrist, then (tip, base) of the index, middle, ring and little finger
    "20210326-230536_30": ((335, 315),
        ((208, 332), (262, 325)), ((210, 362), (265, 340)),
        ((225, 375), (270, 352)), ((253, 385), (280, 362))),
    "20210326-230536_50": ((338, 287),
        ((206, 279), (258, 275)), ((200, 313), (255, 294)),
        ((210, 327), (262, 309)), ((237, 343), (272, 322))),
    "20210326-230536_70": ((338, 310),
        ((267, 183), (297, 232)), ((231, 197), (268, 232)),
        ((223, 213), (255, 240)), ((220, 247), (262, 266))),
    "20210326-230536_90": ((300, 303),
        ((355, 158), (343, 210)), ((321, 137), (322, 203)),
        ((303, 143), (302, 203)), ((283, 160), (281, 207))),
    "20210326-230536_110": ((236, 252),
        ((381, 227), (322, 244)), ((373, 181), (325, 218)),
        ((357, 167), (318, 198)), ((317, 161), (292, 193))),
    "20210326-230536_130": ((220, 200),
        ((341, 289), (290, 258)), ((370, 249), (300, 236)),
        ((369, 223), (303, 212)), ((346, 191), (297, 188))),
    "20210326-230536_150": ((297, 178),
        ((287, 334), (290, 268)), ((341, 336), (313, 270)),
        ((364, 317), (336, 262)), ((377, 281), (356, 250))),
    "20210326-230536_170": ((303, 200),
        ((191, 284), (246, 252)), ((213, 319), (252, 282)),
        ((236, 327), (266, 292)), ((273, 321), (287, 283))),
}
# The MCP joint lies proximal of the finger's base at the webs: the web sits about halfway along the proximal
# phalanx (35-45 mm long), so the joint is taken this far back along the finger's axis.
MCP_BEHIND_WEB_MM = 18.0
# Joints lie inside the hand, the depth camera sees its skin: in our hand model the palm centre of a hand facing
# the camera lies 14.6 mm (median; 12.1-17.7 from the 10th to the 90th percentile) behind the surface seen there.
PALM_BEHIND_SURFACE_MM = 15.0
HAND_FOUND_PX = 45.0    # the tracker's crop centre within this many pixels of the annotated palm ...
HAND_FOUND_DEPTH = 60.0  # ... and within this many mm of its depth: on the hand, not on the body behind it


def _surface_mm(depth_mm: np.ndarray, K, uv, window: int) -> np.ndarray:
    """A pixel lifted to 3D with the median valid depth around it."""
    from handtrack.inference.camera import deproject

    u, v = int(round(uv[0])), int(round(uv[1]))
    patch = depth_mm[max(v - window, 0):v + window + 1, max(u - window, 0):u + window + 1]
    return deproject(np.array([u, v], float), float(np.median(patch[patch > 0])), K)


def sr305_palm_mm(depth_mm: np.ndarray, K, landmarks) -> np.ndarray:
    """The palm centre (the mean of the wrist and the four MCP joints) from a frame's annotated landmarks: each
    MCP is MCP_BEHIND_WEB_MM back from the finger's base along its axis (tip -> base, in 3D on the observed
    surface), and the centre is pushed PALM_BEHIND_SURFACE_MM behind the surface seen at its pixel."""
    from handtrack.inference.camera import project

    wrist_uv, *fingers = landmarks
    wrist = _surface_mm(depth_mm, K, wrist_uv, 7)
    mcps = []
    for tip_uv, base_uv in fingers:
        tip, base = _surface_mm(depth_mm, K, tip_uv, 2), _surface_mm(depth_mm, K, base_uv, 3)
        axis = (base - tip) / np.linalg.norm(base - tip)
        mcps.append(base + MCP_BEHIND_WEB_MM * axis)
    palm = np.mean([wrist, *mcps], axis=0)  # skeleton.PALM_JOINTS: the wrist and the four MCPs
    surface = _surface_mm(depth_mm, K, project(palm, K), 3)
    return surface * (surface[2] + PALM_BEHIND_SURFACE_MM) / surface[2]


def eval_tracker_real(options, data_dir: Path) -> dict:
    """The whole runtime tracker (no ground-truth centre: it finds the hand itself) on the real frames.

    NYU frame: crop-centre distance to the labelled palm, and the 14-joint error (hand model fitted to the 21
    predicted joints, as in eval_nyu_frame). SR305 frames: whether the hand was found (centre on the annotated
    palm), presence and the plausibility of the skeleton. Each frame is tracked from scratch (a fresh tracker)."""
    from handtrack.inference.camera import project
    from handtrack.inference.datasets import nyu, realsense_png
    from handtrack.inference.handmodel.fit import fit_to_joints
    from handtrack.inference.handmodel.keypoints import keypoints
    from handtrack.inference.handmodel.kinematics import forward
    from handtrack.inference.plausibility import frame_plausibility
    from handtrack.inference.tracker import HandTracker

    frame = nyu.load_frame(data_dir / "nyu" / "test_depth_1_0000001.png")
    truth14 = nyu.load_joints14_xyz_from_uvd(data_dir / "nyu" / "test_joints14_uvd.txt")[0]
    r = HandTracker(options).process(frame)
    nyu_row = {"frame": "nyu_test_1", "present": r.present, "presence": r.presence, "depth_mm": frame.depth_mm,
               "intrinsics": frame.intrinsics, "result": r, "truth14_mm": truth14}
    if r.joints_mm is not None:
        fit = fit_to_joints(r.joints_mm[None], "canonical21")
        pred14 = keypoints(forward(fit.pose, fit.shape), "nyu14")[0]
        nyu_row.update(centre_error_mm=float(np.linalg.norm(r.centre_mm - truth14[skeleton.NYU14_PALM])),
                       summary=evaluate(pred14[None], truth14[None], skeleton.NYU14_NAMES), pred14_mm=pred14)
    sr305 = []
    for path in sorted((data_dir / "realsense_sr305").glob("*.png")):
        f = realsense_png.load_frame(path)
        r = HandTracker(options).process(f)
        row = {"frame": path.stem, "present": r.present, "presence": r.presence, "depth_mm": f.depth_mm,
               "intrinsics": f.intrinsics, "result": r, "hand_found": False}
        if r.joints_mm is not None:
            row["plausibility"] = frame_plausibility(r.confidence)
            if path.stem in SR305_LANDMARKS_UV:
                palm = sr305_palm_mm(f.depth_mm, f.intrinsics, SR305_LANDMARKS_UV[path.stem])
                px = float(np.linalg.norm(project(r.centre_mm, f.intrinsics) - project(palm, f.intrinsics)))
                dz = float(abs(r.centre_mm[2] - palm[2]))
                row.update(palm_px=px, palm_dz_mm=dz, hand_found=px <= HAND_FOUND_PX and dz <= HAND_FOUND_DEPTH)
        sr305.append(row)
    return {"nyu": nyu_row, "sr305": sr305}


def eval_tracker_demo(options, frames: int = 200, every: int = 2) -> dict:
    """The whole tracker on the demo, whose frames carry their ground-truth joints: how far the crop centre
    lands from the palm (the localiser, and the centre refiner where one is used) and the 21-joint error.
    Centre errors: the localiser's, the final crop's (after the refiner and any re-centred passes), and the
    palm of the predicted joints. One tracker runs over every `every`-th frame of the unpaced demo (so it tracks,
    seeded by the last palm)."""
    from handtrack.inference.localise import localise
    from handtrack.inference.sources import open_source
    from handtrack.inference.tracker import HandTracker

    tracker = HandTracker(options)
    centre_err, palm_err, joint_err, rough_err, missed = [], [], [], [], 0
    with open_source("demo", realtime=False) as source:
        for i, frame in zip(range(frames * every), source):
            if i % every:
                continue
            palm = skeleton.palm_centre(frame.joints_xyz)
            rough = localise(frame.depth_mm, frame.intrinsics, None, tracker.localiser).centre
            r = tracker.process(frame)
            if rough is not None:
                rough_err.append(np.linalg.norm(rough - palm))
            if not r.present:
                missed += 1
                continue
            centre_err.append(np.linalg.norm(r.centre_mm - palm))
            palm_err.append(np.linalg.norm(skeleton.palm_centre(r.joints_mm) - palm))
            joint_err.append(np.linalg.norm(r.joints_mm - frame.joints_xyz, axis=1).mean())
    stats = lambda e: {"mean": float(np.mean(e)), "median": float(np.median(e)), "p90": float(np.percentile(e, 90))}
    return {"frames": frames, "missed": missed, "localiser_centre_error_mm": stats(rough_err),
            "crop_centre_error_mm": stats(centre_err), "predicted_palm_error_mm": stats(palm_err),
            "joint_error_mm": stats(joint_err)}


def hand_pixel_error_mm(synth: np.ndarray, truth: np.ndarray, hand: np.ndarray, cube_mm: float) -> float:
    """Mean |synthesized - true| in mm over the hand's pixels (`hand`, a mask); a synthesized crop that draws
    nothing there counts the distance to the cube's back face."""
    return float(np.abs(synth - truth)[hand].mean() * cube_mm / 2) if hand.any() else float("nan")


def eval_synthesis(model: PoseModel, sensor: str, n: int, seed: int = HELD_OUT_SEED) -> dict:
    """The two syntheses on held-out synthetic crops, per crop against the true crop (mm, on the hand's pixels:
    where our hand model fitted to the true joints, forearm left out, covers the crop and the sensor measured
    depth): the learned generator
    from the pose model's latent (models with a render route) and our hand model fitted to the predicted joints
    (every model). The hand model on the true joints themselves is the floor the second can reach."""
    from handtrack.inference.handmodel.estimate_render import render_estimate
    from handtrack.inference.model import RenderModel
    from handtrack.inference.tracker import _render_name
    from handtrack.models_onnx import resolve
    from handtrack.training.synth.sensors import SENSORS

    cube, size = model.info.cube_mm, model.info.input_size
    data = synthetic_test_set(sensor, n, cube, seed, size)
    K = SENSORS[sensor].intrinsics
    renderer = None
    if model.info.method == "crossingnets":
        path = resolve(_render_name(str(model.path)), "render")
        renderer = RenderModel(path) if path.is_file() else None
    generator, hand_model, floor, fit = [], [], [], []
    for s in range(0, n, 64):
        crops, centres = data["crops"][s:s + 64], data["centre"][s:s + 64]
        latent, joints = model.predict(crops)
        pred = denormalise_joints(joints, centres[:, None, :], cube)
        synth = renderer.render(latent)[:, 0] if renderer is not None else [None] * len(crops)
        for k, crop in enumerate(crops):
            truth = render_estimate(data["joints"][s + k], K, centres[k], cube, size)
            # the hand's pixels where the sensor measured them (a hole says nothing about either synthesis)
            hand = (render_estimate(data["joints"][s + k], K, centres[k], cube, size, forearm=False).crop < 1.0) \
                & (crop < 1.0)
            est = render_estimate(pred[k], K, centres[k], cube, size)
            hand_model.append(hand_pixel_error_mm(est.crop, crop, hand, cube))
            floor.append(hand_pixel_error_mm(truth.crop, crop, hand, cube))
            fit.append(est.fit_residual_mm)
            if synth[k] is not None:
                generator.append(hand_pixel_error_mm(synth[k], crop, hand, cube))
    return {"sensor": sensor, "crops": n,
            "generator_mm": float(np.nanmean(generator)) if generator else None,
            "hand_model_mm": float(np.nanmean(hand_model)), "hand_model_on_true_joints_mm": float(np.nanmean(floor)),
            "hand_model_fit_residual_mm": float(np.mean(fit))}
