"""The staged trainers' schedule: which stages a resumed run still trains, per-step generators, log-row means."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from handtrack.training.schedule import RunningMeans, stages_to_run, step_generator  # noqa: E402

CONFIG = {"stages": {"a": {"steps": 5}, "b": {"steps": 0}, "c": {"steps": 3}, "d": {"steps": 2}}}


def test_a_fresh_run_trains_every_stage_with_steps():
    position = {"stage": 0, "step": 0}
    assert [(si, name) for si, name, _ in stages_to_run("abcd", CONFIG, position)] == [(0, "a"), (2, "c"), (3, "d")]
    assert position == {"stage": 3, "step": 0}


def test_a_resumed_run_continues_mid_stage_then_starts_the_next_at_step_0():
    position = {"stage": 2, "step": 1}
    stages = stages_to_run("abcd", CONFIG, position)
    si, name, cfg = next(stages)
    assert (si, name, cfg, position) == (2, "c", {"steps": 3}, {"stage": 2, "step": 1})  # mid-stage: kept
    position["step"] = 3
    assert next(stages)[1] == "d" and position == {"stage": 3, "step": 0}


def test_a_step_draws_the_same_numbers_whenever_it_runs():
    first = step_generator(7, 1, 42, 0).random(3), torch.rand(2)
    step_generator(7, 1, 43, 0)  # another step in between
    again = step_generator(7, 1, 42, 0).random(3), torch.rand(2)
    assert np.array_equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not np.array_equal(first[0], step_generator(7, 1, 42, 1).random(3))  # another rank


def test_running_means_start_afresh_after_each_row():
    running = RunningMeans()
    running.add({"loss": 1.0, "acc": 0.5})
    running.add({"loss": 3.0, "acc": 0.7})
    assert running.take() == pytest.approx({"loss": 2.0, "acc": 0.6})
    running.add({"loss": 5.0})
    assert running.take() == {"loss": 5.0}
