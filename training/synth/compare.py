"""Real crops beside synthetic crops of the same kind of hand, to judge the synthetic data by eye.

NYU: the real test frame 1, and our PrimeSense and D4xx models rendering the hand model fitted to that frame's
36 ground-truth joints, cropped at the same centre. SR305 (no labels): the hand is found as the nearest blob,
and an open hand pointing the same way in the image is rendered at the same place with the SR305 and D4xx models.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from handtrack.inference import camera
from handtrack.inference.crop import crop_depth, crop_window
from handtrack.inference.datasets import nyu, realsense_png
from handtrack.inference.draw import colorize_depth
from handtrack.inference.handmodel import params
from handtrack.inference.handmodel.fit import fit_to_joints
from handtrack.inference.localise import localise

from .generator import render_view
from .scene import build_scene, hand_pose
from .sensors import SENSORS

# Three SR305 frames and the image direction their fingers point in, read by eye from each frame (no labels).
SR305_FRAMES = (("20210326-230536_110.png", (1.0, -0.45)), ("20210326-230536_130.png", (1.0, 0.15)),
                ("20210326-230536_150.png", (0.2, 1.0)))
CUBE_MM = 300.0
TILE = 192


def _tile(crop_mm: np.ndarray, centre_z: float, label: str) -> np.ndarray:
    img = colorize_depth(crop_mm, centre_z - CUBE_MM / 2, centre_z + CUBE_MM / 2)
    img = cv2.resize(img, (TILE, TILE), interpolation=cv2.INTER_NEAREST)
    cv2.putText(img, label, (4, TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _synthetic(pose, shape, centre, sensor: str, K: camera.Intrinsics, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scene = build_scene(rng, pose, shape, body_probability=1.0)
    crop, _ = render_view(scene, K, SENSORS[sensor], centre, CUBE_MM, 128, rng)
    return crop


def localised_hand_centre(depth_mm: np.ndarray, K: camera.Intrinsics) -> np.ndarray:
    """Centre (mm) of the hand the runtime's localiser finds in these unlabelled frames."""
    found = localise(depth_mm, K)
    if found.centre is None:
        raise ValueError("no hand found in the frame")
    return found.centre


def _open_hand_facing(direction_uv: np.ndarray, palm: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Open spread right hand, palm to the camera, fingers along `direction_uv` in the image."""
    artic = np.zeros(params.NUM_ARTIC)
    names = params.POSE_NAMES[params.ARTIC]
    for name, deg in (("index_mcp_abd", 10), ("ring_mcp_abd", -8), ("pinky_mcp_abd", -18),
                      ("thumb_cmc_abd", 15), ("index_mcp_flex", 8), ("middle_mcp_flex", 8)):
        artic[names.index(name)] = np.deg2rad(deg)
    roll = np.arctan2(direction_uv[0], -direction_uv[1])  # 0 = fingers up in the image
    c, s = np.cos(roll), np.sin(roll)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([1.0, -1.0, -1.0])
    return hand_pose(artic, shape, R, palm, np.zeros(2))


def make_figure(data_dir: Path, out_png: Path) -> dict:
    rows, report = [], {}
    # NYU frame 1 with its ground truth.
    frame = nyu.load_frame(data_dir / "nyu" / "test_depth_1_0000001.png",
                           data_dir / "nyu" / "test_joints36_xyz_0000001.json")
    fit = fit_to_joints(frame.joints_xyz[None], "nyu36")
    report["nyu_fit_residual_mm"] = float(fit.residual_mm[0])
    centre = frame.joints_xyz[32]  # NYU palm centre, the benchmark crop centre
    real = crop_depth(frame.depth_mm, crop_window(centre, frame.intrinsics, CUBE_MM, 128))
    prime = _synthetic(fit.pose[0], fit.shape[0], centre, "primesense", frame.intrinsics, 1)
    rs = _synthetic(fit.pose[0], fit.shape[0], centre, "realsense", SENSORS["realsense"].intrinsics, 2)
    rows.append([_tile(real, centre[2], "NYU real"), _tile(prime, centre[2], "synth primesense"),
                 _tile(rs, centre[2], "synth realsense D4xx")])
    # SR305 frames: no labels, an open hand placed where the real one is.
    for k, (name, direction) in enumerate(SR305_FRAMES):
        f = realsense_png.load_frame(data_dir / "realsense_sr305" / name)
        centre = localised_hand_centre(f.depth_mm, f.intrinsics)
        real = crop_depth(f.depth_mm, crop_window(centre, f.intrinsics, CUBE_MM, 128))
        shape = np.ones(params.NUM_SHAPE)
        pose = _open_hand_facing(direction, centre, shape)
        sr = _synthetic(pose, shape, centre, "sr305", f.intrinsics, 10 + k)
        rs = _synthetic(pose, shape, centre, "realsense", SENSORS["realsense"].intrinsics, 20 + k)
        rows.append([_tile(real, centre[2], f"SR305 real {k + 1}"), _tile(sr, centre[2], "synth sr305"),
                     _tile(rs, centre[2], "synth realsense D4xx")])
    sheet = np.vstack([np.hstack(r) for r in rows])
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), sheet)
    return report
