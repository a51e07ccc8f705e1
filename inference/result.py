"""What the tracker returns for one frame: a `HandResult` holding one `Hand` per hand it follows.

The frame-level fields (time, latency, why a frame was skipped, the frame's meta) are the result's own; each hand's
estimate is a `Hand`. The tracker follows one hand today, so `hands` has exactly one entry (present or not) and the
result also reads as that hand (`result.joints_mm` is `result.hands[0].joints_mm`): code written for one hand keeps
working when a tracker fills more than one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .skeleton import JOINT_NAMES


@dataclass(kw_only=True)
class Hand:
    """One hand's estimate in one frame. Without a hand (`present` False) the arrays may be None."""
    handedness: str                       # "right" or "left" (detected with hand="auto", else as configured)
    present: bool = False
    presence: float = 0.0                 # 0..1: the probability that the crop holds a hand (presence net), or
                                          # without the finder the plausibility below
    joints_mm: np.ndarray | None = None   # (21, 3) camera frame (OpenCV: x right, y down, z forward), mm
    uv: np.ndarray | None = None          # (21, 2) pixel coordinates
    confidence: np.ndarray | None = None  # (21,) per-joint plausibility 0..1
    centre_mm: np.ndarray | None = None   # the crop centre the pose came from
    plausibility: float = 0.0             # 0..1, how well the observed depth supports the estimated joints
    left_probability: float | None = None  # p(left hand) when this hand was found (detector and pose model; kept while tracked)
    auto_hand: bool = False               # handedness was detected (hand="auto"), not configured
    render_error: float | None = None     # mean |synthesized - observed| on hand pixels (normalised depth)
    latent: np.ndarray | None = None      # (1, d) the pose model's latent (the render route's input)
    crop: np.ndarray | None = None        # (S, S) the normalised crop the pose came from, as the model saw it (a
                                          # left hand mirrored)


def _first_hand(name: str) -> property:
    return property(lambda self: getattr(self.hands[0], name), doc=f"The first hand's `{name}` (see Hand).")


@dataclass(kw_only=True)
class HandResult:
    """The tracker's answer for one frame (see the module docstring)."""
    hands: list[Hand]                     # one entry per hand the tracker follows (one today)
    timestamp: float                      # the frame's time (sensor or source clock), seconds
    host_time: float                      # time.monotonic() when processing finished
    latency_ms: dict[str, float] = field(default_factory=dict)  # per stage, and "total"
    frame_index: int = -1                 # frames this tracker processed before this one
    skipped: str | None = None            # why the frame was not processed, or None
    # The input frame's meta (index, arrival and sensor time, source name: frame.py's META_* keys), so a consumer of
    # results (the stream's messages) has the frame's own times. Only the meta: a reference to the frame would keep
    # every depth image alive as long as results are kept (plots, lists) and send it wherever they go.
    frame_meta: dict = field(default_factory=dict)
    joint_names: tuple[str, ...] = JOINT_NAMES


# Every Hand field reads through on the result (result.present, result.joints_mm, ...): one property each, made from
# the Hand's own field list so a field added to Hand is readable on the result without a second list to keep.
for _field in fields(Hand):
    setattr(HandResult, _field.name, _first_hand(_field.name))
del _field
