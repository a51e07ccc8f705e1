"""The main window: live depth and 3D view on top, synthesized depth and the latent walk below, controls and
status plots at the side, source state and FPS in the status bar.

Tracking runs in its own process (tracking_process.py). The display is pulled, never pushed: a timer takes the
newest snapshot the tracking process sent and redraws only what changed.
Depth and 3D views follow every new frame (up to the timer's rate); the synthesized depth, the walk and the plots
refresh at lower rates of their own, which keeps the GUI thread's share of the CPU small so tracking keeps its
throughput.
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .controls import ControlPanel
from .finetune_job import FinetuneJob
from .images import depth_view, ground_truth, placeholder
from .plots import ConfidencePlot, LatencyPlot
from .synthesis_panels import LatentWalkPanel, SynthesisModels, SynthesisPanel
from .tracking_process import TrackingProcess
from .view3d import HandView3D
from .widgets import ImageWidget
from .worker import Rate, Snapshot

DISPLAY_INTERVAL_MS = 30   # the display timer: up to 33 redraws/s, enough for 30 FPS sources, no more
SYNTHESIS_PERIOD_S = 1 / 8
WALK_PERIOD_S = 1 / 20
PLOTS_PERIOD_S = 1 / 2
STATUS_PERIOD_S = 1 / 4
STATE_COLOURS = {"connected": "#66bb6a", "lost": "#ef5350", "reconnecting": "#ffa726", "failed": "#ef5350",
                 "finished": "#90a4ae"}


class Every:
    """True at most once per `period_s` (a cheap throttle for the timer's secondary work)."""

    def __init__(self, period_s: float):
        self.period_s, self._last = period_s, -1e9

    def due(self, now: float) -> bool:
        if now - self._last >= self.period_s:
            self._last = now
            return True
        return False


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, tracking: TrackingProcess, source: str, record_dir: Path = Path("recordings")):
        """`source`: the spec the tracking was started with, for the source picker."""
        super().__init__()
        self.setWindowTitle("handtrack")
        self.tracking = tracking
        self.record_dir = Path(record_dir)
        self.display_rate = Rate()       # new tracked frames shown per second
        self.shown_count = 0             # new tracked frames shown since the window opened
        self.tick_rate = Rate()          # display timer ticks handled per second
        self.shown_seq = -1
        self.snapshot: Snapshot | None = None
        self._synthesis, self._walk = Every(SYNTHESIS_PERIOD_S), Every(WALK_PERIOD_S)
        self._plots, self._status = Every(PLOTS_PERIOD_S), Every(STATUS_PERIOD_S)

        self.depth = ImageWidget("depth", min_size=(320, 240))
        self.depth.set_image(placeholder(640, 480, "opening the source..."))
        self.view3d = HandView3D()
        self.models = SynthesisModels()
        self.synthesis = SynthesisPanel(self.models)
        self.walk = LatentWalkPanel(self.models)
        self.controls = ControlPanel(tracking.settings, source)
        self.confidence = ConfidencePlot()
        self.latency = LatencyPlot()
        self._layout()

        self.controls.sourceChosen.connect(self._source_chosen)
        self.controls.settingsChanged.connect(tracking.set_settings)
        self.controls.recordToggled.connect(self._record_toggled)
        self.finetune = FinetuneJob(self)
        self.finetune.progress.connect(self._finetune_progress)
        self.finetune.finished.connect(self._finetune_finished)
        self.controls.finetuneRequested.connect(self.start_finetune)
        self.walk.capture_a.clicked.connect(lambda: self.capture_walk("a"))
        self.walk.capture_b.clicked.connect(lambda: self.capture_walk("b"))

        self.state_label = QtWidgets.QLabel()
        self.fps_label = QtWidgets.QLabel()
        self.statusBar().addWidget(self.state_label, 1)
        self.statusBar().addPermanentWidget(self.fps_label)
        self.timer = QtCore.QTimer(self, interval=DISPLAY_INTERVAL_MS, timerType=QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def _layout(self) -> None:
        views = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        views.addWidget(self.depth)
        frame3d = QtWidgets.QGroupBox("3D: hand points in the crop cube, skeleton, camera frustum (drag to orbit)")
        box = QtWidgets.QVBoxLayout(frame3d)
        box.setContentsMargins(2, 2, 2, 2)
        box.addWidget(self.view3d)
        views.addWidget(frame3d)
        views.setStretchFactor(0, 5)  # the live depth gets a little more room than the 3D view
        views.setStretchFactor(1, 4)
        synth = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(synth)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.synthesis, 5)
        row.addWidget(self.walk, 4)
        main = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        main.addWidget(views)
        main.addWidget(synth)
        main.setStretchFactor(0, 2)  # the synthesis tiles need about a third of the height
        main.setStretchFactor(1, 1)
        side = QtWidgets.QWidget()
        col = QtWidgets.QVBoxLayout(side)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.controls)
        col.addWidget(self.confidence, 1)
        col.addWidget(self.latency, 1)
        side.setFixedWidth(300)
        central = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(main, 1)
        layout.addWidget(side)
        self.setCentralWidget(central)

    # --- the display loop ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        now = time.monotonic()
        self.tick_rate.tick(now)
        self.tracking.poll()
        snap = self.tracking.latest
        if snap is not None and snap.seq != self.shown_seq:
            self.shown_seq, self.snapshot = snap.seq, snap
            self._show_frame(snap)
            self.display_rate.tick(now)
            self.shown_count += 1
            if self._synthesis.due(now):
                self.synthesis.show_result(snap.result, snap.frame.intrinsics, snap.cube_mm, snap.model)
        if self._walk.due(now):
            self.walk.animate(now)
        if self._plots.due(now):
            self.latency.show_latencies(self.tracking.status["latencies"])
            self.confidence.show_result(snap.result if snap is not None else None)
        if self._status.due(now):
            self.show_status()

    def _show_frame(self, snap: Snapshot) -> None:
        s, frame = self.tracking.settings, snap.frame
        K = frame.intrinsics
        truth = ground_truth(frame)
        img = depth_view(frame.depth_mm, K, snap.result, snap.cube_mm, s.near_mm, s.far_mm, truth)
        source = frame.meta.get("source", "") if isinstance(frame.meta, dict) else ""
        caption = f"depth: {source} {K.width}x{K.height}, {s.near_mm:.0f}-{s.far_mm:.0f} mm; crop cube " \
                  f"{snap.cube_mm:.0f} mm"
        if truth is not None and snap.result.joints_mm is not None:
            error = np.linalg.norm(snap.result.joints_mm - truth, axis=-1).mean()
            caption += f"; ground truth (white dots): mean joint error {error:.0f} mm"
        self.depth.set_image(img, caption)
        self.view3d.show_frame(frame.depth_mm, K, snap.result, snap.cube_mm)

    def show_status(self) -> None:
        w, st = self.tracking, self.tracking.status
        state, why = w.source_state, w.source_error
        text = f"{st['source_name'] or 'no source'}: {state}" + (f" ({why})" if why else "")
        if w.error:
            text += f"  |  {w.error}"
            state = "failed"
        self.state_label.setText(text)
        self.state_label.setStyleSheet(f"color: {STATE_COLOURS.get(state, '#e0e0e0')}")
        self.fps_label.setText(f"capture {st['capture_fps']:.0f} FPS   tracking {st['tracking_fps']:.0f} FPS   "
                               f"display {self.display_rate.per_second():.0f} FPS")
        self._show_recording()

    def _show_recording(self) -> None:
        status = self.tracking.status
        if status["recording"] and status["record_live"] is not None:
            st = status["record_live"]
            text = (f"recording {status['record_path'].name}\n{st['seconds']:.1f} s, {st['frames']} frames, "
                    f"{st['bytes'] / 1e6:.1f} MB" + (f", {st['dropped']} dropped" if st.get("dropped") else ""))
            self.controls.set_recording(True, text)
        elif status["record_stats"] is not None:
            st = status["record_stats"]
            self.controls.set_recording(False, f"saved {status['record_path']}\n{st['frames']} frames, "
                                               f"{st['bytes'] / 1e6:.1f} MB")
        else:
            self.controls.set_recording(False, "not recording")
        saved = not status["recording"] and status["record_stats"] is not None
        self.controls.finetune_button.setEnabled(saved and not self.finetune.running)

    # --- user actions -------------------------------------------------------------------------------------
    def _source_chosen(self, spec: str) -> None:
        self.depth.set_image(placeholder(640, 480, f"opening {spec}..."))
        self.snapshot = None
        self.tracking.set_source(spec)

    def _record_toggled(self, on: bool) -> None:
        if on:
            path = self.record_dir / f"session_{datetime.now():%Y%m%d_%H%M%S}.mcap"
            try:
                self.record_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.tracking.report("recording", f"cannot create {self.record_dir}: {exc.strerror or exc}")
                self.controls.set_recording(False, "not recording")
                return
            self.tracking.start_recording(path)
        else:
            self.tracking.stop_recording()

    def start_finetune(self) -> None:
        """Fine-tune on the session saved last, into <session>_finetuned/ beside it."""
        path = self.tracking.status["record_path"]
        if path is None or self.finetune.running:
            return
        path = Path(path)
        self.finetune.start(path, path.with_name(path.stem + "_finetuned"))

    def _finetune_progress(self, percent: int, what: str) -> None:
        self.controls.set_finetune(False, percent, f"fine-tuning: {what}")

    def _finetune_finished(self, model: str, message: str) -> None:
        if model:
            self.controls.offer_model(model)
            self.controls.set_finetune(True, None, f"{Path(model).name} is in the model list ({message})")
        else:
            self.controls.set_finetune(True, None, message)

    def capture_walk(self, which: str) -> bool:
        snap = self.snapshot
        if snap is None:
            return False
        ok = self.walk.capture(which, snap.result, snap.frame.intrinsics, snap.cube_mm, snap.model)
        if not ok:
            self.statusBar().showMessage("no hand in view to capture", 3000)
        return ok

    def screenshot(self) -> QtGui.QPixmap:
        """The whole window as shown."""
        return self.grab()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.timer.stop()
        self.finetune.cancel()  # its checkpoint stays: the same button goes on from it next time
        self.tracking.stop()  # finishes a recording, so its file is complete
        super().closeEvent(event)
