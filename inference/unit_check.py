"""Is the depth in the unit the tracker was told? Checked from hand sizes on a source's first frames.

A wrong depth unit (the classic RealSense file read with 1 mm per unit instead of 0.125 mm, or 0.25 instead of
0.125) scales every depth by a constant while the image stays the same: a hand then covers the pixels of a hand
at the wrong distance, 2x or 8x too large (or small) for the depth it reads. The detector was trained to find
only hands of a possible size for their depth, so the check runs it on the frame rescaled by each candidate
factor: where hands are found only after rescaling by the same factor on most frames, the unit is wrong by that
factor. One line names it, once per source; until the source is fixed the tracker reports such frames as skipped
instead of tracking them with confident wrong joints. A source that ends before a verdict (a folder of a few
frames) gets `hint()`: the same line, qualified, where every vote so far named one wrong factor.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .handfinder import DetectorModel

FACTORS = (1.0, 0.5, 2.0, 0.125, 8.0, 0.25, 4.0)  # true depth = read depth x factor
FOUND = 0.5                 # detector score that counts as a hand
FRAMES = 10                 # frames with a hand at some factor needed for a verdict
HINT_FRAMES = 2             # votes, all for one wrong factor, that make a hint when the source ends early
MAX_FRAMES = 60             # the check gives up (assumes the unit is right) after this many frames


class DepthUnitCheck:
    def __init__(self, detector: DetectorModel):
        self.detector = detector
        self.votes: Counter = Counter()
        self.seen = 0
        self.factor: float | None = None   # the verdict: 1.0 = the unit is right
        self.message: str | None = None

    @property
    def done(self) -> bool:
        return self.factor is not None

    def observe(self, depth_mm: np.ndarray, found_at_one: float) -> None:
        """One decoded frame, with the best detector score the tracker already got for it unscaled."""
        if self.done:
            return
        self.seen += 1
        if found_at_one >= FOUND:
            self.votes[1.0] += 1
        else:
            scores = {f: self._best(depth_mm * np.float32(f)) for f in FACTORS[1:]}
            best = max(scores, key=scores.get)
            if scores[best] >= FOUND:
                self.votes[best] += 1
        total = sum(self.votes.values())
        if total >= FRAMES:
            factor, count = self.votes.most_common(1)[0]
            if factor != 1.0 and count >= 0.7 * total:
                self.factor = factor
                self.message = wrong_unit_message(factor)
            elif self.votes[1.0] >= 0.5 * total:
                self.factor = 1.0
        if self.factor is None and self.seen >= MAX_FRAMES:
            self.factor = 1.0

    def hint(self) -> str | None:
        """For a source that ended before a verdict: a line if every frame with a hand found one only at the
        same wrong factor (at least HINT_FRAMES of them), else None. Frames are not skipped on a hint."""
        if self.done or not self.votes:
            return None
        factor, count = self.votes.most_common(1)[0]
        if factor == 1.0 or count < HINT_FRAMES or count < sum(self.votes.values()):
            return None
        return (f"from {count} of {self.seen} frames (too few for a verdict): "
                + wrong_unit_message(factor).replace(" Frames are skipped until the depth unit is fixed.", ""))

    def _best(self, depth_mm: np.ndarray) -> float:
        cands = self.detector.detect(depth_mm, top=1)
        return cands[0].score if cands else 0.0


def wrong_unit_message(factor: float) -> str:
    """One line: how far off the depth reads, and the usual cause."""
    examples = {0.125: "e.g. an SR305 / L515 recording (0.125 mm per unit) read with 1 mm per unit",
                0.5: "e.g. 0.25 mm per unit used for a 0.125 mm per unit camera",
                2.0: "e.g. 0.0625 mm per unit used for a 0.125 mm per unit camera",
                8.0: "e.g. 0.125 mm per unit used for a 1 mm per unit camera"}
    how = f"{1 / factor:g}x too far" if factor < 1 else f"{factor:g}x too near"
    example = f" ({examples[factor]})" if factor in examples else ""
    return (f"depth scale looks wrong: hands have a possible size only with every depth x{factor:g}, so the depth "
            f"reads {how}; the source's depth unit is probably {factor:g}x the one it was read with{example}. "
            f"Frames are skipped until the depth unit is fixed.")
