"""The hand-over between a capture thread and its reader: bounded, so memory never grows with a slow reader.

A live buffer never blocks the producer: when full it drops the oldest frame (with capacity 1 it is a latest-frame
slot). A playback buffer blocks the producer instead, so a recording loses nothing and is read at the reader's pace.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any


class FrameBuffer:
    def __init__(self, capacity: int, drop_oldest: bool):
        if capacity < 1:
            raise ValueError("a frame buffer holds at least one frame")
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: Any, stop: threading.Event | None = None) -> int:
        """Add an item; returns how many older items were dropped to make room (live) or 0.

        A blocking (playback) put waits for room, but gives up, dropping nothing and adding nothing, once `stop` is
        set or the buffer is closed, so a capture thread can always be stopped."""
        with self._cond:
            dropped = 0
            if self.drop_oldest:
                while len(self._items) >= self.capacity:
                    self._items.popleft()
                    dropped += 1
            else:
                while len(self._items) >= self.capacity:
                    if self._closed or (stop is not None and stop.is_set()):
                        return 0
                    # Wake up now and then to notice `stop`, which is an Event and cannot notify this condition.
                    self._cond.wait(0.05)
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None) -> Any | None:
        """The oldest item, waiting up to `timeout` s (None: forever); None on timeout or when closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            return self._pop()

    def poll(self) -> Any | None:
        """The oldest item if there is one, else None, without waiting."""
        with self._cond:
            return self._pop() if self._items else None

    def _pop(self) -> Any | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self._cond.notify_all()  # a blocked producer may go on
        return item

    def close(self) -> None:
        """No more items will come: wakes every waiter (readers then drain what is left)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
