"""The stream loop: frames from a source -> tracker -> one message -> every output, until told to stop.

It ends when the recording ends, after `max_messages`, when `stop` is set (the CLI sets it on SIGINT/SIGTERM), or
when stdout's reader goes away; in every case the caller closes the outputs, so what was sent is flushed. A live
source that is lost or reconnecting does not end it: the loop says so on the log and keeps waiting for frames.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from handtrack.inference.datasets.base import DepthFrame
from handtrack.inference.sources.base import CONNECTED, EndOfStream, FrameSource, SourceTimeout
from handtrack.inference.tracker import HandTracker

from .message import DEFAULT_CAMERA_FRAME, build_message
from .outputs import Output, OutputClosed, encode

READ_POLL_S = 0.25  # how long a read waits before the loop looks at `stop` and the source's state again


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


class _LastFrame:
    """Passes frames through and remembers the one handed out last, so the loop knows the frame (its meta) behind
    each result while HandTracker.track keeps the timestamp bookkeeping (strictly increasing times)."""

    def __init__(self, frames: Iterator[DepthFrame]):
        self._frames = frames
        self.frame: DepthFrame | None = None

    def __iter__(self) -> Iterator[DepthFrame]:
        for self.frame in self._frames:
            yield self.frame


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
        stop = stop or threading.Event()
        frames = _LastFrame(self._frames(source, stop))
        summary = StreamSummary(ended_by="end of recording")
        start = time.monotonic()
        try:
            for result in self.tracker.track(frames):
                self.publish(build_message(result, frames.frame.meta, self.seq, camera_frame=self.camera_frame,
                                           extrinsics=self.extrinsics))
                if max_messages is not None and self.seq >= max_messages:
                    summary.ended_by = "frames"
                    break
            else:
                if stop.is_set():
                    summary.ended_by = "signal"
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

    def _frames(self, source: FrameSource, stop: threading.Event) -> Iterator[DepthFrame]:
        """Frames until the recording ends or `stop` is set. Waiting on a lost or reconnecting live source is
        logged once per change of its state, never raised (a source that failed for good still raises)."""
        problem = None  # the (state, error) last reported, while the source has a problem
        while not stop.is_set():
            try:
                frame = source.read(timeout=READ_POLL_S)
            except EndOfStream:
                return
            except SourceTimeout:
                state = (source.state, source.error)
                if source.state != CONNECTED and state != problem:
                    self.log(f"source {source.name} is {source.state}"
                             + (f" ({source.error})" if source.error else "") + "; waiting for frames")
                    problem = state
                continue
            if problem is not None:
                self.log(f"source {source.name} is delivering frames again")
                problem = None
            yield frame


@contextmanager
def stop_on_signals(stop: threading.Event, signals=(signal.SIGINT, signal.SIGTERM)):
    """While inside, SIGINT and SIGTERM set `stop` (the loop then ends cleanly and outputs are flushed); a second
    signal interrupts at once, for a stream that does not stop. The previous handlers come back on exit."""
    def handle(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, handle) for s in signals}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
