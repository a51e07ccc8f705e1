"""Training data for Crossing Nets: depth crops in memory, labelled and unlabelled, normalised per batch by the
runtime's own crop code (`inference.crop`), so that training and serving cannot drift apart.

A source is a folder of synthetic shards (or, later, recorded sessions converted to shards) with the fraction of
its samples whose labels training may see; the others enter as unlabelled depth, exactly as the paper's
semi-supervised setting: their depth maps feed the GAN and smoothness tasks, never the posterior loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from handtrack.inference.crop import normalise_depth, normalise_joints
from handtrack.inference.errors import HandtrackError
from handtrack.training.synth.generator import SynthShards


@dataclass
class CropSet:
    depth: np.ndarray   # (N, S, S) uint16 mm, 0 = missing
    centre: np.ndarray  # (N, 3) crop centre, mm
    joints: np.ndarray | None  # (N, 21, 3) mm, or None for unlabelled depth
    cube_mm: float

    def __len__(self) -> int:
        return len(self.depth)

    def images(self, idx: np.ndarray) -> torch.Tensor:
        """(B, 1, S, S) float32 crops normalised to [-1, 1], missing and background at +1."""
        d = normalise_depth(self.depth[idx], self.centre[idx, 2][:, None, None], self.cube_mm)
        return torch.from_numpy(d).unsqueeze(1)

    def targets(self, idx: np.ndarray) -> torch.Tensor:
        """(B, 21, 3) float32 joints in normalised crop units."""
        if self.joints is None:
            raise ValueError("unlabelled set has no targets")
        j = normalise_joints(self.joints[idx], self.centre[idx, None, :], self.cube_mm)
        return torch.from_numpy(j.astype(np.float32))

    def subset(self, idx: np.ndarray, labelled: bool = True) -> CropSet:
        return CropSet(self.depth[idx], self.centre[idx],
                       self.joints[idx] if labelled and self.joints is not None else None, self.cube_mm)


def concat_crops(sets: list[CropSet], labelled: bool) -> CropSet | None:
    """The non-empty sets end to end (with their labels if `labelled`), or None if all are empty."""
    sets = [s for s in sets if len(s)]
    if not sets:
        return None
    return CropSet(np.concatenate([s.depth for s in sets]), np.concatenate([s.centre for s in sets]),
                   np.concatenate([s.joints for s in sets]) if labelled else None, sets[0].cube_mm)


def load_shards(path: str | Path, limit: int | None = None, cube_mm: float | None = None) -> CropSet:
    shards = SynthShards(path)
    if cube_mm is not None and abs(shards.config["cube_mm"] - cube_mm) > 1e-6:
        raise HandtrackError(f"{path}: crops of a {shards.config['cube_mm']} mm cube, the model uses {cube_mm} mm")
    a = shards.view_arrays(("depth", "centre", "joints"), limit=limit)
    return CropSet(a["depth"], a["centre"].astype(np.float32), a["joints"].astype(np.float32),
                   float(shards.config["cube_mm"]))


def load_sources(sources: list[dict], cube_mm: float, seed: int) -> tuple[CropSet, CropSet | None]:
    """Labelled and unlabelled crops from config entries {path, labelled_fraction (default 1), limit}.
    Which samples keep their labels is a seeded random choice, the same on every rank and every resume."""
    labelled, unlabelled = [], []
    for k, src in enumerate(sources):
        s = load_shards(src["path"], src.get("limit"), cube_mm)
        fraction = float(src.get("labelled_fraction", 1.0))
        order = np.random.default_rng([seed, 7, k]).permutation(len(s))
        n_lab = int(round(fraction * len(s)))
        labelled.append(s.subset(np.sort(order[:n_lab])))
        unlabelled.append(s.subset(np.sort(order[n_lab:]), labelled=False))
    lab = concat_crops(labelled, True)
    if lab is None:
        raise HandtrackError("the training sources hold no labelled samples (labelled_fraction is 0 everywhere)")
    return lab, concat_crops(unlabelled, False)
