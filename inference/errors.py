"""Errors that reach a user as one clear line (the CLI prints them without a traceback)."""
from __future__ import annotations

import importlib
from types import ModuleType


class HandtrackError(RuntimeError):
    """A problem the user can act on: bad input, a missing file or device, a missing dependency."""


class MissingDependency(HandtrackError):
    pass


def require(module: str, *, extra: str | None = None, pip: str | None = None, apt: str | None = None,
            feature: str | None = None) -> ModuleType:
    """Import an optional dependency, or raise one line naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = feature or module
        hints = []
        if extra:
            hints.append(f"pip install 'handtrack[{extra}]'")
        elif pip:
            hints.append(f"pip install {pip}")
        if apt:
            hints.append(f"apt-get install {apt}")
        raise MissingDependency(f"{what} needs '{module}', which is not importable ({exc}); install it with: "
                                + " and ".join(hints or [f"pip install {module}"])) from exc
