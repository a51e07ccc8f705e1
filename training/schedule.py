"""What both staged trainers (Crossing Nets, MURAUER) share in their schedule loop: the stages still to run from
a resumed position, each step's random generator, and the means of the step outputs between two log rows.

The position ({"stage", "step"}) is what a checkpoint holds; with the generator seeded by (seed, stage, step,
rank), a resumed run draws the batches the uninterrupted run would have drawn.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch


def stages_to_run(stages: Sequence[str], config: dict, position: dict) -> Iterator[tuple[int, str, dict]]:
    """(index, name, settings) of each stage still to train from `position` on: earlier stages and stages
    without steps are passed over, and reaching a later stage moves `position`, in place, to its start."""
    for si, name in enumerate(stages):
        cfg = config["stages"][name]
        if si < position["stage"] or cfg["steps"] <= 0:
            continue
        if si > position["stage"]:
            position.update(stage=si, step=0)
        yield si, name, cfg


def step_generator(seed: int, stage: int, step: int, rank: int) -> np.random.Generator:
    """The generator of one step; torch's global seed (dropout, noise drawn by torch) is drawn from it too."""
    rng = np.random.default_rng([seed, stage, step, rank])
    torch.manual_seed(int(rng.integers(2**62)))
    return rng


class RunningMeans:
    """The step outputs (name -> float) since the last log row, and their means for the next one."""

    def __init__(self):
        self._values: dict[str, list[float]] = {}

    def add(self, out: dict[str, float]) -> None:
        for k, v in out.items():
            self._values.setdefault(k, []).append(v)

    def take(self) -> dict[str, float]:
        """The mean of each output since the last take (or the start), and a fresh start."""
        means = {k: float(np.mean(v)) for k, v in self._values.items()}
        self._values = {}
        return means
