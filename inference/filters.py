"""One Euro filter (Casiez, Roussel and Vogel, CHI 2012) for joint positions.

A low-pass filter whose cutoff rises with speed: at rest the cutoff is `min_cutoff` Hz (jitter removed), when
the hand moves fast it grows by `beta` Hz per (mm/s), so fast motion lags little. Works on any array shape;
each element is filtered independently, with the time step taken from the frames' timestamps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroOptions:
    min_cutoff: float = 1.5   # Hz at rest
    beta: float = 0.02        # extra Hz per mm/s of speed
    d_cutoff: float = 1.0     # Hz, for the speed estimate itself


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    def __init__(self, options: OneEuroOptions = OneEuroOptions()):
        self.options = options
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filtered value of `x` observed at time `t` (seconds)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t or self._x.shape != x.shape:
            # First sample, a timestamp that went backwards, or a different shape: start over.
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        o = self.options
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(o.d_cutoff, dt) * (dx - self._dx)
        cutoff = o.min_cutoff + o.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()
