"""A demo camera that can be unplugged and plugged back, served through the real CaptureSource (GUI tests)."""
from __future__ import annotations

from handtrack.inference.sources import Backoff, CaptureSource, DeviceLost, DeviceMissing
from handtrack.inference.sources.demo import DemoBackend


class UnpluggableDemo(DemoBackend):
    """The live demo hand, as a camera whose cable can be pulled (`plugged = False`) and put back."""

    reconnectable = True

    def __init__(self, **options):
        super().__init__(**options)
        self.name = "unpluggable demo"
        self.plugged = True

    def open(self):
        if not self.plugged:
            raise DeviceMissing("the demo camera is not plugged in")
        return super().open()

    def grab(self, timeout):
        if not self.plugged:
            raise DeviceLost("the demo camera was unplugged")
        return super().grab(timeout)


def unpluggable_source(fps: float = 30.0) -> tuple[CaptureSource, UnpluggableDemo]:
    """The source (quick reconnection attempts) and its backend, whose `plugged` the test sets."""
    backend = UnpluggableDemo(fps=fps)
    return CaptureSource(backend, backoff=Backoff(initial=0.05, factor=2.0, maximum=0.2)), backend
