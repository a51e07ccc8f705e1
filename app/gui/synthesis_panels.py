"""The synthesized-depth panel and the latent-walk panel (Qt); the pictures come from synthesis.py."""
from __future__ import annotations

import time

import numpy as np
from PySide6 import QtWidgets

from handtrack.inference.camera import Intrinsics
from handtrack.inference.errors import HandtrackError
from handtrack.inference.tracker import HandResult

from .images import placeholder
from .synthesis import CapturedPose, LatentWalk, Synthesizer, capture_tile, hand_model_tiles, synthesis_tiles
from .widgets import ImageWidget

TILE = 256  # tiles are 128-pixel crops shown twice as large


class SynthesisModels:
    """The Synthesizer for the model being tracked with, rebuilt when the model changes. A model without a render
    route (or a decodable latent) leaves `error` set, and the panels say so instead of drawing."""

    def __init__(self):
        self.model: str | None = None
        self.synth: Synthesizer | None = None
        self.error: str | None = None

    def for_model(self, model: str) -> Synthesizer | None:
        if model != self.model:
            self.model, self.synth, self.error = model, None, None
            try:
                self.synth = Synthesizer(model)
            except HandtrackError as exc:
                self.error = f"no synthesized depth for this model:\n{exc}"[:160]
        return self.synth


def _tile_row(captions: list[str]) -> tuple[QtWidgets.QHBoxLayout, list[ImageWidget]]:
    row = QtWidgets.QHBoxLayout()
    row.setSpacing(4)
    widgets = [ImageWidget(c, min_size=(128, 140)) for c in captions]
    for w in widgets:
        w.set_image(placeholder(TILE, TILE, "waiting for a hand"))
        row.addWidget(w)
    return row, widgets


class SynthesisPanel(QtWidgets.QGroupBox):
    """Input crop | the generator's depth for the frame's code | |difference| | our hand model fitted to the
    estimate | |difference|: what the model has learnt to draw, and exactly what the tracker believes."""

    def __init__(self, models: SynthesisModels, parent=None):
        super().__init__("Synthesized depth for the current pose: the generator's and our hand model's, and "
                         "|difference| to the input", parent)
        self.models = models
        row, (self.input, self.synthesized, self.difference, self.hand_model, self.hand_difference) = _tile_row(
            ["input crop", "generator", "difference", "hand model", "difference"])
        self.setLayout(row)
        self.mean_difference: float | None = None
        self.hand_mean_difference: float | None = None

    def show_result(self, result: HandResult, K: Intrinsics, cube_mm: float, model: str) -> None:
        exact = hand_model_tiles(result, K, cube_mm)
        if exact is not None:
            self.hand_mean_difference = exact.mean_difference
            self.hand_model.set_image(exact.rendered)
            self.hand_difference.set_image(exact.difference, f"difference: mean {exact.mean_difference:.2f}")
        synth = self.models.for_model(model)
        if synth is None:
            for w in (self.synthesized, self.difference):
                w.set_image(placeholder(TILE, TILE, self.models.error or "no render model"))
            return
        tiles = synthesis_tiles(synth, result, K, cube_mm)
        if tiles is None:
            return  # no hand in this frame: keep showing the last one
        self.mean_difference = tiles.mean_difference
        self.input.set_image(tiles.input)
        self.synthesized.set_image(tiles.synthesized)
        self.difference.set_image(tiles.difference, f"difference: mean {tiles.mean_difference:.2f}")


class LatentWalkPanel(QtWidgets.QGroupBox):
    """Capture two poses, then watch the synthesized depth and decoded skeleton walk between their latents."""

    def __init__(self, models: SynthesisModels, parent=None):
        super().__init__("Walk between two captured poses: synthesized depth and skeleton", parent)
        self.models = models
        self.a: CapturedPose | None = None
        self.b: CapturedPose | None = None
        self.walk: LatentWalk | None = None
        self._start = time.monotonic()
        self._walk_model: str | None = None
        buttons = QtWidgets.QVBoxLayout()
        self.capture_a = QtWidgets.QPushButton("Capture A")
        self.capture_b = QtWidgets.QPushButton("Capture B")
        self.clear = QtWidgets.QPushButton("Clear")
        for b in (self.capture_a, self.capture_b, self.clear):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.clear.clicked.connect(self.reset)
        row, (self.tile_a, self.tile_walk, self.tile_b) = _tile_row(["pose A", "walk", "pose B"])
        row.insertLayout(0, buttons)
        self.setLayout(row)
        self.reset()

    def reset(self) -> None:
        self.a = self.b = self.walk = None
        self.tile_a.set_image(placeholder(TILE, TILE, "press Capture A\nwith a hand in view"))
        self.tile_walk.set_image(placeholder(TILE, TILE, "the walk starts when\nA and B are captured"))
        self.tile_b.set_image(placeholder(TILE, TILE, "press Capture B\nwith a hand in view"))

    def capture(self, which: str, result: HandResult | None, K: Intrinsics, cube_mm: float, model: str) -> bool:
        """Keep the frame's latent as end A or B; False (and nothing changes) if the frame has no hand."""
        synth = self.models.for_model(model)
        pose = CapturedPose.from_result(synth, result, K, cube_mm) if result is not None and synth else None
        if pose is None:
            return False
        if self._walk_model != model:  # codes of another model mean nothing to this one
            self.reset()
            self._walk_model = model
        setattr(self, which, pose)
        (self.tile_a if which == "a" else self.tile_b).set_image(capture_tile(synth, pose), f"pose {which.upper()}")
        if self.a is not None and self.b is not None:
            self.walk = LatentWalk(synth, self.a, self.b)
            self._start = time.monotonic()
        return True

    def animate(self, now: float | None = None) -> None:
        if self.walk is not None:
            self.show_at(self.walk.phase((now or time.monotonic()) - self._start))

    def show_at(self, t: float) -> None:
        if self.walk is not None:
            self.tile_walk.set_image(self.walk.tile(float(np.clip(t, 0, 1))), f"walk t = {t:.2f}")
