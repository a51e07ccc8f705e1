"""The GUI's "Fine-tune on this session": `handtrack finetune` in a child process, so the window and the tracking
go on while it trains (the training's two cores are the user's choice; tracking stays responsive, at a lower
frame rate). Progress comes from the command's own progress bar on stderr; the result is the model file its
report names.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from PySide6 import QtCore

PERCENT = re.compile(r"fine-tune:\s+(\d+)%")


class FinetuneJob(QtCore.QObject):
    progress = QtCore.Signal(int, str)     # percent, what it is doing
    finished = QtCore.Signal(str, str)     # model path ("" on failure), message

    def __init__(self, parent=None, extra_args: tuple[str, ...] = ()):
        """extra_args: more `handtrack finetune` options (the tests shorten the run with --steps)."""
        super().__init__(parent)
        self.extra_args = tuple(extra_args)
        self.process: QtCore.QProcess | None = None
        self.out_dir: Path | None = None
        self._stderr = ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QtCore.QProcess.NotRunning

    def start(self, session: Path, out_dir: Path) -> None:
        if self.running:
            return
        self.out_dir, self._stderr = Path(out_dir), ""
        args = ["-m", "handtrack.app.cli", "finetune", "--sessions", str(session), "--out", str(out_dir),
                *(["--resume"] if (Path(out_dir) / "last.pt").exists() else []), *self.extra_args]
        self.process = QtCore.QProcess(self)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._done)
        self.process.start(sys.executable, args)
        self.progress.emit(0, "starting")

    def cancel(self) -> None:
        """Stop the run; its last checkpoint stays, and starting again on the same session goes on from it."""
        if self.running:
            self.process.terminate()
            self.process.waitForFinished(5000)

    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr = (self._stderr + text)[-4000:]
        found = PERCENT.findall(text)
        if found:
            self.progress.emit(int(found[-1]), "training")
        elif "synthetic" in text:
            self.progress.emit(0, "making synthetic data")

    def _done(self, code: int, _status) -> None:
        report = self.out_dir / "report.json" if self.out_dir else None
        if code == 0 and report is not None and report.is_file():
            data = json.loads(report.read_text())
            after = data["plausibility"]["after"]["plausibility"]
            before = data["plausibility"]["before"]["plausibility"]
            self.finished.emit(data["model"], f"plausibility on the session {before:.3f} -> {after:.3f}"
                               if before is not None and after is not None else "done")
            return
        errors = [line for line in self._stderr.splitlines() if line.startswith("handtrack: error:")]
        self.finished.emit("", errors[-1] if errors else f"fine-tuning stopped (exit code {code})")
