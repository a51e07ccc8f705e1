"""`with` support for the objects that hold a file open: the block's end calls their `close()`."""
from __future__ import annotations


class ClosedByWith:
    """Mix in to a class with a `close()` method: `with Cls(...) as obj:` closes obj however the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
