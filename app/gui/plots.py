"""Status plots (pyqtgraph): per-stage tracker latency over the last frames, presence and per-joint confidence."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from handtrack.inference import skeleton
from handtrack.inference.tracker import STAGES, HandResult

from .view3d import finger_rgba

STAGE_COLOURS = ("#9e9e9e", "#42a5f5", "#ab47bc", "#ef5350", "#ffca28", "#26a69a", "#8d6e63", "#ec407a")


class LatencyPlot(pg.PlotWidget):
    """One line per tracker stage (ms) and their total, over the frames the worker keeps."""

    def __init__(self, parent=None):
        super().__init__(parent, background=(24, 24, 24))
        self.setTitle("tracker latency per stage (ms)", size="9pt")
        self.setLabel("bottom", "frame")
        self.showGrid(x=False, y=True, alpha=0.3)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        legend = self.addLegend(offset=(4, 4), labelTextSize="7pt", colCount=3)
        legend.setBrush(pg.mkBrush(24, 24, 24, 180))
        self.curves = {stage: self.plot(pen=pg.mkPen(colour, width=1.5), name=stage)
                       for stage, colour in zip(STAGES, STAGE_COLOURS)}
        self.curves["total"] = self.plot(pen=pg.mkPen("w", width=2), name="total")
        self.setMinimumHeight(140)

    def show_latencies(self, latencies: list[dict]) -> None:
        if not latencies:
            return
        x = np.arange(len(latencies))
        for stage, curve in self.curves.items():
            curve.setData(x, np.array([lat.get(stage, 0.0) for lat in latencies]))


class ConfidencePlot(pg.PlotWidget):
    """Per-joint confidence as bars coloured per finger, with the frame's presence in the title."""

    def __init__(self, parent=None):
        super().__init__(parent, background=(24, 24, 24))
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.setYRange(0, 1, padding=0.02)
        self.setXRange(-0.7, skeleton.NUM_JOINTS - 0.3, padding=0)
        # One tick per finger, under the middle of its four bars.
        finger_ticks = [(1 + 4 * i + 1.5, f) for i, f in enumerate(skeleton.FINGERS)]
        self.getAxis("bottom").setTicks([[(0, "wrist")] + finger_ticks])
        brushes = [pg.mkBrush(*(255 * c).astype(int)) for c in finger_rgba()]
        self.bars = pg.BarGraphItem(x=np.arange(skeleton.NUM_JOINTS), height=np.zeros(skeleton.NUM_JOINTS),
                                    width=0.8, brushes=brushes, pens=[None] * skeleton.NUM_JOINTS)
        self.addItem(self.bars)
        self.setMinimumHeight(120)
        self.show_result(None)

    def show_result(self, result: HandResult | None) -> None:
        if result is None or result.confidence is None:
            self.bars.setOpts(height=np.zeros(skeleton.NUM_JOINTS))
            self.setTitle("presence: no hand", size="9pt")
            return
        self.bars.setOpts(height=np.asarray(result.confidence, dtype=float))
        state = "tracked" if result.present else "not tracked"
        hand = f"{result.handedness} hand" + (" (detected)" if result.auto_hand else "")
        self.setTitle(f"{hand}, presence {result.presence:.2f} ({state}), joint confidence", size="9pt")
