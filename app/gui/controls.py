"""The control panel: source and model pickers, tracker settings, and the record button.

It only describes what the user asked for (signals carrying a source spec, a TrackingSettings, a recording
request); the main window passes them to the worker, which applies them between frames.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from handtrack.inference.filters import OneEuroOptions
from handtrack.inference.sources import enumerate_devices
from handtrack.models_onnx import HERE as MODELS_DIR
from handtrack.models_onnx import DEFAULT_MODEL, shipped

from .worker import TrackingSettings

OPEN_FILE = "Open recording…"
OPEN_FOLDER = "Open dataset folder…"
OPEN_MODEL = "Open .onnx…"
RECORDING_FILTER = "Recordings (*.mcap *.bag *.db3 *.oni);;All files (*)"


def shipped_models() -> list[str]:
    """The pose models in models_onnx/, by method name."""
    return shipped() or [DEFAULT_MODEL]


class ControlPanel(QtWidgets.QWidget):
    sourceChosen = QtCore.Signal(str)
    settingsChanged = QtCore.Signal(object)   # TrackingSettings
    recordToggled = QtCore.Signal(bool)
    finetuneRequested = QtCore.Signal()
    _devicesFound = QtCore.Signal(list)       # from the enumeration thread, delivered on the GUI thread

    def __init__(self, settings: TrackingSettings, source: str, parent=None):
        super().__init__(parent)
        self._settings = settings
        self._source = source
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._source_box(source))
        layout.addWidget(self._tracking_box(settings))
        layout.addWidget(self._record_box())
        layout.addStretch(0)

    # --- source and model ---------------------------------------------------------------------------------
    def _source_box(self, source: str) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Source and model")
        form = QtWidgets.QFormLayout(box)
        self.source_combo = QtWidgets.QComboBox()
        self.source_combo.setToolTip("Cameras found when the list was last refreshed, the demo, or a recording")
        self.refresh_button = QtWidgets.QToolButton(text="⟳", toolTip="Look for cameras again")
        self.refresh_button.clicked.connect(self.look_for_cameras)
        self._devicesFound.connect(self._show_devices)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.source_combo, 1)
        row.addWidget(self.refresh_button)
        form.addRow("Source", row)
        self.model_combo = QtWidgets.QComboBox()
        self.model_combo.setToolTip(f"Pose models shipped in {MODELS_DIR}, or any handtrack .onnx file")
        for name in shipped_models():
            self.model_combo.addItem(name, name)
        if self.model_combo.findData(self._settings.tracker.model) < 0:
            self.model_combo.addItem(Path(self._settings.tracker.model).name, self._settings.tracker.model)
        self.model_combo.addItem(OPEN_MODEL, OPEN_MODEL)
        self.model_combo.setCurrentIndex(self.model_combo.findData(self._settings.tracker.model))
        self.model_combo.activated.connect(self._model_activated)
        form.addRow("Model", self.model_combo)
        self.refresh_sources(select=source)
        self.source_combo.activated.connect(self._source_activated)
        return box

    def look_for_cameras(self) -> None:
        """Enumerate cameras on a thread: with devices plugged in, the drivers can take seconds to answer, and the
        window must keep drawing meanwhile. The button is off until the answer is in the picker."""
        self.refresh_button.setEnabled(False)

        def enumerate_and_report() -> None:
            devices = enumerate_devices()
            try:
                self._devicesFound.emit(devices)
            except RuntimeError:
                pass  # the window closed while the drivers were answering

        threading.Thread(target=enumerate_and_report, name="camera enumeration", daemon=True).start()

    def _show_devices(self, devices: list) -> None:
        self._fill_sources(devices, None)
        self.refresh_button.setEnabled(True)

    def refresh_sources(self, select: str | None = None) -> None:
        """Fill the picker with the cameras found now (blocking: used once, before the window shows)."""
        self._fill_sources(enumerate_devices(), select)

    def _fill_sources(self, devices: list, select: str | None) -> None:
        current = select or self.source_combo.currentData()
        self.source_combo.clear()
        for device in devices:
            self.source_combo.addItem(f"{device.spec}: {device.name}", device.spec)
            self.source_combo.setItemData(self.source_combo.count() - 1, device.name,
                                          QtCore.Qt.ItemDataRole.ToolTipRole)
        if current and self.source_combo.findData(current) < 0:
            self.source_combo.addItem(Path(current).name if Path(current).exists() else current, current)
        self.source_combo.addItem(OPEN_FILE, OPEN_FILE)
        self.source_combo.addItem(OPEN_FOLDER, OPEN_FOLDER)
        self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(current)))

    def choose_source(self, spec: str) -> None:
        """Select `spec` in the picker (adding it if new) and ask for it, as if the user had picked it."""
        if self.source_combo.findData(spec) < 0:
            self.source_combo.insertItem(self.source_combo.findData(OPEN_FILE), Path(spec).name, spec)
        self.source_combo.setCurrentIndex(self.source_combo.findData(spec))
        self._source = spec
        self.sourceChosen.emit(spec)

    def _source_activated(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec in (OPEN_FILE, OPEN_FOLDER):
            if spec == OPEN_FILE:
                path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a recording", "", RECORDING_FILTER)
            else:
                path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a dataset folder (NYU, ICVL, MSRA, PNGs)")
            if not path:  # cancelled: show the source that is still being tracked
                self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(self._source)))
                return
            spec = path
        self.choose_source(spec)

    def choose_model(self, model: str) -> None:
        """Select `model` (a shipped name or a .onnx path) and ask for it."""
        if self.model_combo.findData(model) < 0:
            self.model_combo.insertItem(self.model_combo.count() - 1, Path(model).name, model)
        self.model_combo.setCurrentIndex(self.model_combo.findData(model))
        self._emit(tracker=replace(self._settings.tracker, model=model))

    def _model_activated(self, index: int) -> None:
        model = self.model_combo.itemData(index)
        if model == OPEN_MODEL:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open a pose model", str(MODELS_DIR),
                                                            "ONNX pose models (*_pose.onnx *.onnx)")
            if not path:
                self.model_combo.setCurrentIndex(self.model_combo.findData(self._settings.tracker.model))
                return
            model = path
        self.choose_model(model)

    # --- tracking settings --------------------------------------------------------------------------------
    def _tracking_box(self, settings: TrackingSettings) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Tracking")
        form = QtWidgets.QFormLayout(box)
        self.hand_combo = QtWidgets.QComboBox()
        self.hand_combo.addItems(["auto", "right", "left"])
        self.hand_combo.setCurrentText(settings.tracker.hand)
        self.hand_combo.setToolTip("auto: the hand finder's detector says which hand it sees. The pose model is "
                                   "trained on right hands; a left hand is mirrored in and out")
        self.hand_combo.currentTextChanged.connect(lambda hand: self._emit(tracker=replace(self._settings.tracker,
                                                                                            hand=hand)))
        form.addRow("Hand", self.hand_combo)

        smoothing = settings.tracker.smoothing
        self.smoothing_check = QtWidgets.QCheckBox("One Euro filter")
        self.smoothing_check.setChecked(smoothing is not None)
        self.cutoff_spin = _spin(0.05, 20.0, (smoothing or OneEuroOptions()).min_cutoff, 0.25, " Hz", 2)
        self.cutoff_spin.setToolTip("Cutoff at rest: lower is steadier, higher follows small motions sooner")
        self.beta_spin = _spin(0.0, 1.0, (smoothing or OneEuroOptions()).beta, 0.005, "", 3)
        self.beta_spin.setToolTip("How much the cutoff rises with speed: higher lags less in fast motion")
        for w in (self.smoothing_check, self.cutoff_spin, self.beta_spin):
            (w.toggled if w is self.smoothing_check else w.valueChanged).connect(self._smoothing_changed)
        form.addRow("Smoothing", self.smoothing_check)
        form.addRow("  min cutoff", self.cutoff_spin)
        form.addRow("  beta", self.beta_spin)

        self.near_spin = _spin(0, 5000, settings.near_mm, 50, " mm", 0)
        self.far_spin = _spin(100, 10000, settings.far_mm, 50, " mm", 0)
        for w in (self.near_spin, self.far_spin):
            w.setToolTip("Depth outside this range is ignored by the tracker and shown black")
            w.valueChanged.connect(self._range_changed)
        form.addRow("Depth from", self.near_spin)
        form.addRow("Depth to", self.far_spin)

        self.cube_spin = _spin(0, 600, settings.tracker.cube_mm or 0, 10, " mm", 0)
        self.cube_spin.setSpecialValueText("model's")
        self.cube_spin.setToolTip("Edge of the crop cube; \"model's\" uses the size the model was trained with. "
                                  "A larger cube suits a larger hand")
        self.cube_spin.valueChanged.connect(
            lambda v: self._emit(tracker=replace(self._settings.tracker, cube_mm=float(v) if v > 0 else None)))
        form.addRow("Cube size", self.cube_spin)
        return box

    def _smoothing_changed(self, *_) -> None:
        on = self.smoothing_check.isChecked()
        self.cutoff_spin.setEnabled(on)
        self.beta_spin.setEnabled(on)
        options = OneEuroOptions(self.cutoff_spin.value(), self.beta_spin.value()) if on else None
        self._emit(tracker=replace(self._settings.tracker, smoothing=options))

    def _range_changed(self, *_) -> None:
        near, far = self.near_spin.value(), self.far_spin.value()
        if near >= far:  # keep a non-empty range: move the other end
            if self.sender() is self.near_spin:
                self.far_spin.setValue(near + 50)
            else:
                self.near_spin.setValue(max(0, far - 50))
            return
        self._emit(near_mm=float(near), far_mm=float(far))

    def _emit(self, **changes) -> None:
        self._settings = replace(self._settings, **changes)
        self.settingsChanged.emit(self._settings)

    @property
    def settings(self) -> TrackingSettings:
        return self._settings

    # --- recording ----------------------------------------------------------------------------------------
    def _record_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Record")
        layout = QtWidgets.QVBoxLayout(box)
        self.record_button = QtWidgets.QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the session (depth and the tracker's predictions) as .mcap")
        self.record_button.toggled.connect(self.recordToggled.emit)
        self.record_label = QtWidgets.QLabel("not recording")
        self.record_label.setWordWrap(True)
        layout.addWidget(self.record_button)
        layout.addWidget(self.record_label)
        self.finetune_button = QtWidgets.QPushButton("Fine-tune on this session")
        self.finetune_button.setToolTip("Adapt the model to this camera and hand from the saved session (runs in "
                                        "the background; the result joins the model list)")
        self.finetune_button.setEnabled(False)
        self.finetune_button.clicked.connect(self.finetuneRequested.emit)
        self.finetune_bar = QtWidgets.QProgressBar()
        self.finetune_bar.setRange(0, 100)
        self.finetune_bar.setVisible(False)
        self.finetune_label = QtWidgets.QLabel("")
        self.finetune_label.setWordWrap(True)
        layout.addWidget(self.finetune_button)
        layout.addWidget(self.finetune_bar)
        layout.addWidget(self.finetune_label)
        return box

    def set_recording(self, on: bool, text: str) -> None:
        """Show the recording state (the worker may have stopped it, e.g. on a full disk)."""
        if self.record_button.isChecked() != on:
            self.record_button.blockSignals(True)
            self.record_button.setChecked(on)
            self.record_button.blockSignals(False)
        self.record_button.setText("■ Stop" if on else "● Record")
        self.record_label.setText(text)


    def set_finetune(self, can_start: bool, percent: int | None = None, text: str = "") -> None:
        """The fine-tuning state: whether a saved session can be tuned on now, the progress, a line of text."""
        self.finetune_button.setEnabled(can_start)
        self.finetune_bar.setVisible(percent is not None)
        if percent is not None:
            self.finetune_bar.setValue(percent)
        self.finetune_label.setText(text)

    def offer_model(self, model: str) -> None:
        """Add a model to the picker without switching to it."""
        if self.model_combo.findData(model) < 0:
            self.model_combo.insertItem(self.model_combo.count() - 1, Path(model).name, model)


def _spin(low: float, high: float, value: float, step: float, suffix: str, decimals: int) -> QtWidgets.QDoubleSpinBox:
    spin = QtWidgets.QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(decimals)
    spin.setSingleStep(step)
    spin.setSuffix(suffix)
    spin.setValue(value)
    spin.setKeyboardTracking(False)  # typing "600" applies once, not as 6, 60, 600
    return spin
