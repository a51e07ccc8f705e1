"""Pacing for sources that keep their own time (the demo, a replayed session): each frame is handed out when it is
due on the host's clock, as a camera would deliver it."""
from __future__ import annotations

import time


class Pacer:
    """Holds a stream's clock to the host's: the frame of stream time t is due at (host start) + (t - stream start),
    both starts taken at the first frame after `restart()`.

    A host that falls behind by more than `resync_after_s` (busy, or a reader that stopped taking frames) restarts
    the schedule at the late frame instead of rushing out a burst of overdue ones, as a camera whose frames nobody
    collected would."""

    def __init__(self, resync_after_s: float):
        self.resync_after_s = resync_after_s
        self._start: tuple[float, float] | None = None  # (host time, stream time) the schedule runs from

    def restart(self) -> None:
        self._start = None

    def wait(self, t: float, timeout: float) -> bool:
        """Sleep until the frame of stream time `t` is due; False (after sleeping `timeout`) if it is due later
        than that, so a capture thread still gets to look at its stop flag."""
        now = time.monotonic()
        if self._start is None:
            self._start = (now, t)
        due = self._start[0] + (t - self._start[1])
        if due - now > timeout:
            time.sleep(timeout)
            return False
        if due > now:
            time.sleep(due - now)
        elif now - due > self.resync_after_s:
            self._start = (now, t)
        return True
