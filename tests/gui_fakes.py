"""A demo camera that can be unplugged and plugged back, served through the real CaptureSource (GUI tests).

Its cable is a file: the camera is plugged in while `plug_file` exists. A file, because the GUI runs tracking in
a child process where the test cannot reach the backend object; `functools.partial(unpluggable_source, path)` is
what the test hands over as the source.
"""
from __future__ import annotations

from pathlib import Path

from handtrack.inference.sources import Backoff, CaptureSource, DeviceLost, DeviceMissing
from handtrack.inference.sources.demo import DemoBackend


class UnpluggableDemo(DemoBackend):
    """The live demo hand, as a camera that is connected only while `plug_file` exists."""

    reconnectable = True

    def __init__(self, plug_file: str | Path, **options):
        super().__init__(**options)
        self.name = "unpluggable demo"
        self.plug_file = Path(plug_file)

    @property
    def plugged(self) -> bool:
        return self.plug_file.exists()

    def open(self):
        if not self.plugged:
            raise DeviceMissing("the demo camera is not plugged in")
        return super().open()

    def grab(self, timeout):
        if not self.plugged:
            raise DeviceLost("the demo camera was unplugged")
        return super().grab(timeout)


def unpluggable_source(plug_file: str | Path, fps: float = 30.0) -> CaptureSource:
    """The unpluggable demo with quick reconnection attempts."""
    return CaptureSource(UnpluggableDemo(plug_file, fps=fps), backoff=Backoff(initial=0.05, factor=2.0, maximum=0.2))


class CrashingDemo(DemoBackend):
    """The demo hand until `crash_file` exists; then the whole process dies, as with a crashing camera driver."""

    def __init__(self, crash_file: str | Path, **options):
        super().__init__(**options)
        self.crash_file = Path(crash_file)

    def grab(self, timeout):
        if self.crash_file.exists():
            import os
            os._exit(3)
        return super().grab(timeout)


def crashing_source(crash_file: str | Path) -> CaptureSource:
    return CaptureSource(CrashingDemo(crash_file, fps=60.0))
