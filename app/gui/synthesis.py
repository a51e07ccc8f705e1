"""Synthesized depth for the GUI (no Qt): the render route's depth map for the current pose, and the latent walk.

Crossing Nets share one latent between its pose route and its render route. The tracker returns the latent of
each frame; the render model turns it into the depth the generator believes the frame shows, and the pose
decoder (the pose model's own latent -> joints half) turns it into joints. Side by side with the normalised input
crop and their difference, the user sees how well the model explains the frame. A latent walk interpolates
between two captured latents and shows each point's synthesized depth with its decoded skeleton (the paper's
Fig. 1, live).

The model works on right hands; a left hand's crop and latent are mirrored. Everything here is returned the way
the camera sees it (mirrored back), so the tiles match the live depth view.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handtrack.inference.camera import Intrinsics
from handtrack.inference.model import RenderModel
from handtrack.inference.pose_decoder import PoseDecoder
from handtrack.inference.tracker import HandResult, _render_name
from handtrack.models_onnx import resolve

from .images import crop_joints_uv, crop_tile, difference_tile

MIRROR = np.array([-1.0, 1.0, 1.0])


def _camera_view(crop: np.ndarray, joints_norm: np.ndarray, hand: str) -> tuple[np.ndarray, np.ndarray]:
    """A crop and its normalised joints from the model's (right-hand) view back to the camera's."""
    if hand == "left":
        return crop[:, ::-1], joints_norm * MIRROR
    return crop, joints_norm


class Synthesizer:
    """The render route and the pose decoder that belong to one pose model."""

    def __init__(self, model: str, threads: int = 1):
        self.model = model
        self.render_model = RenderModel(resolve(_render_name(model), "render"), threads)
        self.decoder = PoseDecoder(resolve(model, "pose"), threads)
        self.size = self.render_model.info.input_size

    def render(self, latent: np.ndarray) -> np.ndarray:
        """(S, S) normalised synthesized depth for one latent, in the model's (right-hand) view."""
        return self.render_model.render(np.atleast_2d(latent).astype(np.float32))[0, 0]

    def decode(self, latent: np.ndarray) -> np.ndarray:
        """(21, 3) normalised joints for one latent, in the model's (right-hand) view."""
        return self.decoder.decode(latent)[0].astype(np.float64)


@dataclass
class SynthesisTiles:
    input: np.ndarray       # BGR: the normalised crop the model saw, with the decoded skeleton
    synthesized: np.ndarray  # BGR: the generator's depth for the frame's latent, with the same skeleton
    difference: np.ndarray  # BGR: |synthesized - input| where either shows the hand
    mean_difference: float  # normalised depth units (1.0 = half the cube)


def synthesis_tiles(synth: Synthesizer, result: HandResult, K: Intrinsics, cube_mm: float,
                    scale: int = 2) -> SynthesisTiles | None:
    """The three synthesis tiles for one tracked frame, or None when it has no hand (nothing to explain)."""
    if not result.present or result.latent is None or result.crop is None:
        return None
    depth = synth.render(result.latent)
    joints = synth.decode(result.latent)
    crop, joints = _camera_view(result.crop, joints, result.handedness)
    depth, _ = _camera_view(depth, joints, result.handedness)
    # The crop is centred near the palm the tracker reports; the small offset only bends the drawn skeleton's
    # perspective, not where it sits in the crop (the joints are relative to the crop centre).
    uv = crop_joints_uv(joints, result.centre_mm, K, cube_mm, crop.shape[-1])
    diff, mean = difference_tile(depth, crop, scale)
    return SynthesisTiles(crop_tile(crop, uv, scale), crop_tile(depth, uv, scale), diff, mean)


@dataclass(frozen=True)
class CapturedPose:
    """One end of a latent walk: the frame's latent and where its crop was."""
    latent: np.ndarray      # (1, L), the model's (right-hand) view
    centre_mm: np.ndarray
    hand: str
    intrinsics: Intrinsics
    cube_mm: float

    @classmethod
    def from_result(cls, result: HandResult, K: Intrinsics, cube_mm: float) -> "CapturedPose | None":
        if not result.present or result.latent is None:
            return None
        return cls(np.array(result.latent, dtype=np.float32), np.array(result.centre_mm, dtype=np.float64),
                   result.handedness, K, cube_mm)


class LatentWalk:
    """Points on the line between two captured latents: synthesized depth and decoded skeleton for each."""

    def __init__(self, synth: Synthesizer, a: CapturedPose, b: CapturedPose, period_s: float = 4.0):
        self.synth, self.a, self.b, self.period_s = synth, a, b, period_s

    def phase(self, seconds: float) -> float:
        """0 -> 1 -> 0 over one period, easing in and out at the ends so each end pose is held a moment."""
        return 0.5 - 0.5 * math.cos(2 * math.pi * seconds / self.period_s)

    def tile(self, t: float, scale: int = 2) -> np.ndarray:
        """Synthesized depth with the decoded skeleton at t in [0, 1] (0 = pose A, 1 = pose B)."""
        a, b = self.a, self.b
        return latent_tile(self.synth, (1 - t) * a.latent + t * b.latent, (1 - t) * a.centre_mm + t * b.centre_mm,
                           a.hand, a.intrinsics, a.cube_mm, scale)


def capture_tile(synth: Synthesizer, pose: CapturedPose, scale: int = 2) -> np.ndarray:
    """A captured pose as the walk shows its ends."""
    return latent_tile(synth, pose.latent, pose.centre_mm, pose.hand, pose.intrinsics, pose.cube_mm, scale)


def latent_tile(synth: Synthesizer, latent: np.ndarray, centre_mm: np.ndarray, hand: str, K: Intrinsics,
                cube_mm: float, scale: int = 2) -> np.ndarray:
    """One latent as synthesized depth with its decoded skeleton over it, the way the camera sees it."""
    depth, joints = _camera_view(synth.render(latent), synth.decode(latent), hand)
    return crop_tile(depth, crop_joints_uv(joints, centre_mm, K, cube_mm, depth.shape[-1]), scale)
