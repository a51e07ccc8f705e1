"""The stream: frames from a source -> tracker -> one message -> every output, until told to stop.

The frames come through the sources' one loop (inference/sources/loop.py). It ends when the recording ends, after
`max_messages`, when `stop` is set (the CLI sets it on SIGINT/SIGTERM), or when stdout's reader goes away; in every
case the caller closes the outputs, so what was sent is flushed. A live source that is lost or reconnecting does not
end it: the loop says so on the log and keeps waiting for frames.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from handtrack.inference.sources.base import FrameSource
from handtrack.inference.sources.loop import FrameLoop
from handtrack.inference.tracker import HandTracker

from .message import DEFAULT_CAMERA_FRAME, build_message
from .outputs import Output, OutputClosed, encode

ENDED_BY = {"stop": "signal", "limit": "frames", "end": "end of recording"}  # FrameLoop.ended_by -> the summary's


def log_to_stderr(line: str) -> None:
    print(f"handtrack stream: {line}", file=sys.stderr, flush=True)


@dataclass
class StreamSummary:
    messages: int = 0
    seconds: float = 0.0
    ended_by: str = ""                 # "frames", "end of recording", "signal", "stdout closed"
    tracker: dict = field(default_factory=dict)   # HandTracker.stats: frames, tracked, no_hand, skipped_* ...
    source_dropped: int = 0            # frames a live source replaced before the tracker took them
    source_skipped: int = 0            # frames the source could not read (bad files), counted and passed over
    outputs: dict = field(default_factory=dict)   # output name -> {"sent": n, "dropped": n}

    def line(self) -> str:
        rate = self.messages / self.seconds if self.seconds > 0 else 0.0
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.tracker.items()) if k != "frames")
        return (f"{self.messages} messages in {self.seconds:.1f} s ({rate:.1f}/s; {counts or 'no frames'}; "
                f"{self.source_dropped} frames dropped at the source"
                + (f", {self.source_skipped} unreadable frames skipped" if self.source_skipped else "")
                + f"), ended by {self.ended_by}")


class Stream:
    def __init__(self, tracker: HandTracker, outputs: list[Output], *, camera_frame: str = DEFAULT_CAMERA_FRAME,
                 extrinsics=None, log: Callable[[str], None] = log_to_stderr):
        self.tracker = tracker
        self.outputs = outputs
        self.camera_frame = extrinsics.camera_frame if extrinsics is not None else camera_frame
        self.extrinsics = extrinsics
        self.log = log
        self.seq = 0

    def run(self, source: FrameSource, max_messages: int | None = None,
            stop: threading.Event | None = None) -> StreamSummary:
        """Track and publish until one of the ends in the module docstring; the source must be connected."""
        loop = FrameLoop([source], stop or threading.Event(), limit=max_messages, log=self.log)
        summary = StreamSummary()
        start = time.monotonic()
        try:
            for result in self.tracker.track(frame for _, frame in loop):
                self.publish(build_message(result, self.seq, camera_frame=self.camera_frame,
                                           extrinsics=self.extrinsics))
            summary.ended_by = ENDED_BY[loop.ended_by]
        except OutputClosed as exc:
            self.log(f"{exc}; stopping")
            summary.ended_by = "stdout closed"
        unit = self.tracker.unit_check
        if unit is not None and unit.hint():
            self.log(unit.hint())
        summary.messages = self.seq
        summary.seconds = time.monotonic() - start
        summary.tracker = dict(self.tracker.stats)
        summary.source_dropped = int(getattr(source, "stats", {}).get("dropped", 0))
        summary.source_skipped = int(getattr(source, "stats", {}).get("skipped", 0))
        summary.outputs = {o.name: {"sent": o.sent, "dropped": o.dropped} for o in self.outputs}
        return summary

    def publish(self, message: dict) -> None:
        """Encode once per encoding, send to every output, count the message."""
        payloads: dict[str, bytes] = {}
        for output in self.outputs:
            if output.encoding not in payloads:
                payloads[output.encoding] = encode(message, output.encoding)
            output.send(payloads[output.encoding])
        self.seq += 1
