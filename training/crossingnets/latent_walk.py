"""A latent walk like the paper's Fig. 1: poses and synthesized depth along a line between two shared latents.

The two end latents are the VAE codes of two held-out synthetic poses (with their root offsets); every point
on the line is decoded into a pose by the VAE and into a depth map by Ali + generator. The skeleton is drawn
over the depth with the crop's approximate (orthographic) projection, so the picture shows whether the two
routes agree along the way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from handtrack.inference.draw import colorize_depth, draw_skeleton
from handtrack.inference.errors import HandtrackError

from .routes import PoseRoute, RenderRoute
from .trainer import model_from_checkpoint


def latent_walk(checkpoint: str | Path, joints_a: np.ndarray, joints_b: np.ndarray, steps: int = 8
                ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised joints of the two ends -> (steps, 21, 3) decoded joints and (steps, S, S) depth in [-1, 1]."""
    model, config = model_from_checkpoint(checkpoint)
    pose_route, render = PoseRoute(model, config["model"]["cube_mm"]), RenderRoute(model)
    with torch.no_grad():
        ends = torch.from_numpy(np.stack([joints_a, joints_b]).astype(np.float32))
        pose, offset = pose_route.codec.encode(ends)
        z = torch.cat([model.vae.encode(pose)[0], offset], 1)
        t = torch.linspace(0, 1, steps)[:, None]
        line = (1 - t) * z[0] + t * z[1]
        return pose_route.decode(line).numpy(), render(line)[:, 0].numpy()


def walk_figure(joints: np.ndarray, depth: np.ndarray, scale: int = 2) -> np.ndarray:
    """Two rows of tiles (BGR): the synthesized depth, and the same with the decoded skeleton drawn over it."""
    import cv2

    S = depth.shape[-1]
    top, bottom = [], []
    for j, d in zip(joints, depth):
        # Back to a depth-like scale (the cube's 250 mm from a nominal 500 mm) so the usual colour map applies;
        # background (+1) shows as missing (black).
        pseudo_mm = np.where(d < 0.99, 500.0 + (d + 1) * 125.0, 0.0).astype(np.float32)
        tile = colorize_depth(pseudo_mm, 500.0, 750.0)
        tile = cv2.resize(tile, (S * scale, S * scale), interpolation=cv2.INTER_NEAREST)
        top.append(tile)
        over = tile.copy()
        draw_skeleton(over, (j[:, :2] + 1) * (S * scale / 2), radius=3, thickness=2)
        bottom.append(over)
    gap = np.full((S * scale, 4, 3), 255, np.uint8)
    row = lambda tiles: np.hstack([x for t in tiles for x in (t, gap)][:-1])  # noqa: E731
    return np.vstack([row(top), np.full((4, row(top).shape[1], 3), 255, np.uint8), row(bottom)])


def write_walk(checkpoint: str | Path, joints_a: np.ndarray, joints_b: np.ndarray, out_png: Path,
               steps: int = 8) -> Path:
    import cv2

    joints, depth = latent_walk(checkpoint, joints_a, joints_b, steps)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), walk_figure(joints, depth)):
        raise HandtrackError(f"cannot write {out_png}")
    return out_png
