"""What commands and training runs write as reports: JSON files, and the machine a measurement ran on.

It sits in the runtime package, the lowest layer, so the commands (app/), training and the runtime alike can
write their reports through it; it needs nothing but numpy.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np


def write_json(path: str | Path, obj) -> None:
    """`obj` as indented JSON at `path`, its folder made if missing.

    numpy scalars and arrays and paths are written as the plain numbers, lists and strings they hold. A
    new or regular file is replaced atomically (a temporary file beside it, renamed over it), so a reader never
    sees half a report and an interrupted run never leaves one. A link or anything else that is not a plain file
    (/dev/stdout, a pipe) is written through, in place: renaming over it would replace the link itself.
    """
    path = Path(path)
    text = json.dumps(obj, indent=2, default=_plain) + "\n"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        path.write_text(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # opened as any new file: the usual permissions
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _plain(value):
    """json.dumps's fallback for what it cannot write itself."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def machine_info() -> dict:
    """Where a measurement ran: CPU model, usable cores, Python and numpy versions, the command line."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return dict(cpu=cpu, cores_usable=len(os.sched_getaffinity(0)), python=platform.python_version(),
                numpy=np.__version__, command="handtrack " + " ".join(sys.argv[1:]))
