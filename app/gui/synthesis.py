"""Synthesized depth for the GUI (no Qt): the depth a model believes the frame shows, and the walk between two
captured poses.

Each frame gets a code, and a code gives a depth map and a skeleton:
  - latent: Crossing Nets share one latent between its pose route and its render route. The tracker returns the
    latent of each frame; the render model turns it into the depth the generator believes the frame shows, and
    the pose decoder (the pose model's own latent -> joints half) turns it into joints.
  - pose: a model without a render route of its own (MURAUER) is explained through its joints: the code is the
    frame's normalised joints and the shipped joints -> depth model (`POSE_RENDERER`) draws them.
Side by side with the normalised input crop and their difference, the user sees how well the model explains
the frame. A walk interpolates between two captured codes and shows each point's synthesized depth with its
skeleton (the Crossing Nets paper's Fig. 1, live, for latents).

The model works on right hands; a left hand's crop and latent are mirrored. Everything here is returned the way
the camera sees it (mirrored back), so the tiles match the live depth view.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handtrack.inference.camera import Intrinsics
from handtrack.inference.crop import normalise_joints
from handtrack.inference.errors import HandtrackError
from handtrack.inference.handmodel.estimate_render import render_estimate
from handtrack.inference.model import RenderModel
from handtrack.inference.pose_decoder import PoseDecoder
from handtrack.inference.tracker import HandResult, _render_name
from handtrack.models_onnx import resolve

from .images import crop_joints_uv, crop_tile, difference_tile

MIRROR = np.array([-1.0, 1.0, 1.0])
POSE_RENDERER = "crossingnets"  # its render_from_pose model draws the joints of models without a render route


def _camera_view(crop: np.ndarray, joints_norm: np.ndarray, hand: str) -> tuple[np.ndarray, np.ndarray]:
    """A crop and its normalised joints from the model's (right-hand) view back to the camera's."""
    if hand == "left":
        return crop[:, ::-1], joints_norm * MIRROR
    return crop, joints_norm


def _own_render_route(model: str):
    try:
        path = resolve(_render_name(model), "render")
    except HandtrackError:  # a shipped name without a render model
        return None
    return path if path.is_file() else None


class Synthesizer:
    """Codes, depth and skeletons for one pose model: its own render route and pose decoder where it has them
    (kind "latent"), else the shipped joints -> depth model (kind "pose")."""

    def __init__(self, model: str, threads: int = 1):
        self.model = model
        own = _own_render_route(model)
        if own is not None:
            self.kind = "latent"
            self.render_model = RenderModel(own, threads)
            self.decoder = PoseDecoder(resolve(model, "pose"), threads)
        else:
            self.kind = "pose"
            self.render_model = RenderModel(resolve(POSE_RENDERER, "render_from_pose"), threads)
            self.decoder = None
        self.size = self.render_model.info.input_size

    def code(self, result: HandResult, cube_mm: float) -> np.ndarray | None:
        """The frame's code in the model's (right-hand) view, or None when the frame has no hand."""
        if not result.present:
            return None
        if self.kind == "latent":
            return None if result.latent is None else np.array(result.latent, dtype=np.float32)
        if result.joints_mm is None or result.centre_mm is None:
            return None
        joints = (result.joints_mm - result.centre_mm) / (cube_mm / 2)
        if result.handedness == "left":
            joints = joints * MIRROR
        return joints[None].astype(np.float32)

    def render(self, code: np.ndarray) -> np.ndarray:
        """(S, S) normalised synthesized depth for one code, in the model's (right-hand) view."""
        batch = code[None] if (self.kind == "pose" and code.ndim == 2) else np.atleast_2d(code)
        return self.render_model.render(batch.astype(np.float32))[0, 0]

    def decode(self, code: np.ndarray) -> np.ndarray:
        """(21, 3) normalised joints for one code, in the model's (right-hand) view."""
        if self.kind == "pose":
            return np.asarray(code, dtype=np.float64).reshape(-1, 3)
        return self.decoder.decode(code)[0].astype(np.float64)


@dataclass
class SynthesisTiles:
    input: np.ndarray       # BGR: the normalised crop the model saw, with the decoded skeleton
    synthesized: np.ndarray  # BGR: the synthesized depth for the frame's code, with the same skeleton
    difference: np.ndarray  # BGR: |synthesized - input| where either shows the hand
    mean_difference: float  # normalised depth units (1.0 = half the cube)


def synthesis_tiles(synth: Synthesizer, result: HandResult, K: Intrinsics, cube_mm: float,
                    scale: int = 2) -> SynthesisTiles | None:
    """The three synthesis tiles for one tracked frame, or None when it has no hand (nothing to explain)."""
    code = synth.code(result, cube_mm)
    if code is None or result.crop is None:
        return None
    depth = synth.render(code)
    joints = synth.decode(code)
    crop, joints = _camera_view(result.crop, joints, result.handedness)
    depth, _ = _camera_view(depth, joints, result.handedness)
    # The crop is centred near the palm the tracker reports; the small offset only bends the drawn skeleton's
    # perspective, not where it sits in the crop (the joints are relative to the crop centre).
    uv = crop_joints_uv(joints, result.centre_mm, K, cube_mm, crop.shape[-1])
    diff, mean = difference_tile(depth, crop, scale)
    return SynthesisTiles(crop_tile(crop, uv, scale), crop_tile(depth, uv, scale), diff, mean)


@dataclass
class HandModelTiles:
    rendered: np.ndarray     # BGR: our hand model fitted to the estimate, drawn into the crop, with the skeleton
    difference: np.ndarray   # BGR: |rendered - input| where either shows the hand
    mean_difference: float


def hand_model_tiles(result: HandResult, K: Intrinsics, cube_mm: float, scale: int = 2) -> HandModelTiles | None:
    """The exact synthesis for one tracked frame: what the tracker believes, drawn with our hand model (fitted to
    its joints) into the crop, beside the input; None when it has no hand. Works for every model."""
    if result.joints_mm is None or result.crop is None or result.centre_mm is None:
        return None
    joints, centre, size = np.asarray(result.joints_mm, np.float64), np.asarray(result.centre_mm), result.crop.shape[-1]
    if result.handedness == "left":  # the hand model is a right hand: draw the mirror image, then mirror it back
        mirrored = Intrinsics(K.fx, K.fy, K.width - 1 - K.cx, K.cy, K.width, K.height)
        depth = render_estimate(joints * MIRROR, mirrored, centre * MIRROR, cube_mm, size).crop[:, ::-1]
    else:
        depth = render_estimate(joints, K, centre, cube_mm, size).crop
    crop, _ = _camera_view(result.crop, np.zeros((1, 3)), result.handedness)
    uv = crop_joints_uv(normalise_joints(joints, centre, cube_mm), centre, K, cube_mm, size)
    diff, mean = difference_tile(depth, crop, scale)
    return HandModelTiles(crop_tile(depth, uv, scale), diff, mean)


@dataclass(frozen=True)
class CapturedPose:
    """One end of a walk: the frame's code and where its crop was."""
    code: np.ndarray        # the Synthesizer's code, the model's (right-hand) view
    centre_mm: np.ndarray
    hand: str
    intrinsics: Intrinsics
    cube_mm: float

    @classmethod
    def from_result(cls, synth: Synthesizer, result: HandResult, K: Intrinsics,
                    cube_mm: float) -> "CapturedPose | None":
        code = synth.code(result, cube_mm)
        if code is None:
            return None
        return cls(code, np.array(result.centre_mm, dtype=np.float64), result.handedness, K, cube_mm)


class LatentWalk:
    """Points on the line between two captured codes (latents, or joints): synthesized depth and skeleton for each."""

    def __init__(self, synth: Synthesizer, a: CapturedPose, b: CapturedPose, period_s: float = 4.0):
        self.synth, self.a, self.b, self.period_s = synth, a, b, period_s

    def phase(self, seconds: float) -> float:
        """0 -> 1 -> 0 over one period, easing in and out at the ends so each end pose is held a moment."""
        return 0.5 - 0.5 * math.cos(2 * math.pi * seconds / self.period_s)

    def tile(self, t: float, scale: int = 2) -> np.ndarray:
        """Synthesized depth with the decoded skeleton at t in [0, 1] (0 = pose A, 1 = pose B)."""
        a, b = self.a, self.b
        return latent_tile(self.synth, (1 - t) * a.code + t * b.code, (1 - t) * a.centre_mm + t * b.centre_mm,
                           a.hand, a.intrinsics, a.cube_mm, scale)


def capture_tile(synth: Synthesizer, pose: CapturedPose, scale: int = 2) -> np.ndarray:
    """A captured pose as the walk shows its ends."""
    return latent_tile(synth, pose.code, pose.centre_mm, pose.hand, pose.intrinsics, pose.cube_mm, scale)


def latent_tile(synth: Synthesizer, code: np.ndarray, centre_mm: np.ndarray, hand: str, K: Intrinsics,
                cube_mm: float, scale: int = 2) -> np.ndarray:
    """One code as synthesized depth with its skeleton over it, the way the camera sees it."""
    depth, joints = _camera_view(synth.render(code), synth.decode(code), hand)
    return crop_tile(depth, crop_joints_uv(joints, centre_mm, K, cube_mm, depth.shape[-1]), scale)
