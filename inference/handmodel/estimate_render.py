"""The exact synthesis: what the tracker believes, drawn with our own hand model.

A learned generator draws what it has learnt to draw; this draws the estimate itself. The hand model is fitted
to the 21 estimated joints (fit.py, shape included), its capsules (surface.py) are ray cast into the frame's
camera, and the result is cropped with the same window the pose model saw. Beside the observed crop it shows
where the estimate puts every finger, and their difference measures how well it explains the depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import Intrinsics
from ..crop import crop_depth, crop_window, normalise_depth
from .fit import fit_to_joints
from .kinematics import forward
from .render import render_capsules
from .surface import capsules


@dataclass
class EstimateRender:
    crop: np.ndarray        # (S, S) float32 normalised depth of the fitted hand, background +1
    fit_residual_mm: float  # mean distance between the estimate and the fitted hand's joints


def render_estimate(joints_mm: np.ndarray, K: Intrinsics, centre_mm: np.ndarray, cube_mm: float, size: int,
                    iterations: int = 15, forearm: bool = True) -> EstimateRender:
    """The crop (around `centre_mm`, as the tracker cut it) our hand model gives for 21 estimated joints in the
    camera frame (mm). forearm: draw the forearm as well, as a camera sees it."""
    fit = fit_to_joints(np.asarray(joints_mm, np.float64)[None], "canonical21", iterations=iterations)
    kin = forward(fit.pose[0], fit.shape[0])
    caps, parts = capsules(kin, forearm=forearm)
    window = crop_window(centre_mm, K, cube_mm, size)
    # Only the crop's window of the image is drawn: its pixels, through the window's own intrinsics.
    us, vs = window.sample_grid()
    u0, v0 = int(us.min()), int(vs.min())
    K_roi = K.window(u0, v0, int(us.max()) - u0 + 1, int(vs.max()) - v0 + 1)
    depth, _ = render_capsules(caps, K_roi, parts)
    crop = crop_depth(depth, crop_window(centre_mm, K_roi, cube_mm, size))
    return EstimateRender(normalise_depth(crop, window.center[2], cube_mm), float(fit.residual_mm[0]))
