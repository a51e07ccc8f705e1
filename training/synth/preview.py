"""A contact sheet of synthetic crops with their ground-truth skeletons, for looking at a dataset."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from handtrack.inference.camera import project
from handtrack.inference.draw import colorize_depth, draw_skeleton

from .generator import SynthShards


def save_preview(shards_dir: Path, out_png: Path, count: int = 16, columns: int = 8, scale: int = 2) -> None:
    shards = SynthShards(shards_dir)
    tiles = []
    for i in range(min(count, len(shards))):
        frame = shards.frame(i)
        cz, cube = frame.meta["window"].center[2], frame.meta["window"].cube_mm
        tile = colorize_depth(frame.depth_mm, cz - cube / 2, cz + cube / 2)
        tile = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        draw_skeleton(tile, project(frame.joints_xyz, frame.intrinsics) * scale + (scale - 1) / 2, radius=2)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)]
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), np.vstack(rows))
