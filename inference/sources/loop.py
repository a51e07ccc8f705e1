"""Reading sources until told to stop: the one loop behind the stream, the GUI's tracking worker and the recorder.

What stops it is always a `threading.Event`, whoever sets it: `stop_on_signals` (SIGINT/SIGTERM in the commands),
a timer (`record --seconds`), or another thread (the GUI posting a request or closing). The loop looks at it
between frames, so the caller's own clean-up (flushing outputs, finishing a recording) always runs.

    stop = threading.Event()
    with stop_on_signals(stop):
        loop = FrameLoop([source], stop)
        for _, frame in loop:
            ...
    loop.ended_by   # "stop", "limit" or "end"
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from ..frame import DepthFrame
from .base import CONNECTED, EndOfStream, FrameSource, SourceTimeout

POLL_S = 0.25   # the longest one read waits before the loop looks at `stop` again
NAP_S = 0.002   # with several sources and none of them ready, the pause before looking again
_ENDED = object()  # what _read returns for a source that has ended


class FrameLoop:
    """(position in `sources`, frame) from connected sources as they deliver them, until

    - `stop` is set (ended_by "stop"),
    - every source has given `limit` frames (ended_by "limit"), or
    - every source has ended, by its limit or its last frame (ended_by "end").

    A live source that is lost or reconnecting does not end the loop: it is waited for, and `log` (if given) hears
    one line when that starts and one when its frames flow again. A source that failed for good raises its
    HandtrackError. With one source the loop waits in its `read`, so a frame is handed on the moment it arrives;
    with several it takes whatever each has ready, so one slow or stalled source never holds up the others.
    """

    def __init__(self, sources: Sequence[FrameSource], stop: threading.Event, *, limit: int | None = None,
                 log: Callable[[str], None] | None = None):
        self.sources = list(sources)
        self.stop = stop
        self.limit = limit
        self.log = log
        self.counts = [0] * len(self.sources)
        self.ended_by = ""
        self._waiting: dict[int, tuple] = {}  # position -> (state, error) last said, while its source has a problem

    def __iter__(self) -> Iterator[tuple[int, DepthFrame]]:
        active = [i for i in range(len(self.sources)) if self.limit is None or self.limit > 0]
        while active and not self.stop.is_set():
            wait_s = POLL_S if len(active) == 1 else 0.0
            delivered = False
            for i in list(active):
                frame = self._read(i, wait_s)
                if frame is _ENDED:
                    active.remove(i)
                    continue
                if frame is None:
                    continue
                delivered = True
                self.counts[i] += 1
                if self.limit is not None and self.counts[i] >= self.limit:
                    active.remove(i)
                yield i, frame
                if self.stop.is_set():
                    break
            if not delivered and wait_s == 0.0:
                self.stop.wait(NAP_S)
        if active:
            self.ended_by = "stop"
        elif self.limit is not None and all(n >= self.limit for n in self.counts):
            self.ended_by = "limit"
        else:
            self.ended_by = "end"

    def _read(self, i: int, timeout: float):
        """The source's next frame; None if none came in time; _ENDED once it has ended."""
        source = self.sources[i]
        try:
            frame = source.read(timeout=timeout)
        except EndOfStream:
            return _ENDED
        except SourceTimeout:
            problem = (source.state, source.error)
            if source.state != CONNECTED and self._waiting.get(i) != problem:
                self._waiting[i] = problem
                self._say(f"source {source.name} is {source.state}"
                          + (f" ({source.error})" if source.error else "") + "; waiting for frames")
            return None
        if self._waiting.pop(i, None) is not None:
            self._say(f"source {source.name} is delivering frames again")
        return frame

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)


@contextmanager
def stop_on_signals(stop: threading.Event, signals=(signal.SIGINT, signal.SIGTERM)):
    """While inside, SIGINT and SIGTERM set `stop` (the loop then ends cleanly and the caller's clean-up runs); a
    second signal raises KeyboardInterrupt at once, for a program that does not stop. The previous handlers come
    back on exit. Only the main thread may install signal handlers."""
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
