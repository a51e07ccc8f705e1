"""Checkpoints that hold only tensors and plain data, read with `torch.load(weights_only=True)` (handtrack never
unpickles objects), written so that a crash mid-write leaves the previous file intact."""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch

from handtrack.inference.errors import HandtrackError


def read_checkpoint(path: str | Path, fmt: int, what: str) -> dict:
    """The checkpoint at `path`, or one line saying why it is not a `what` checkpoint of format `fmt`."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise HandtrackError(f"no checkpoint at {path}") from exc
    except pickle.UnpicklingError as exc:
        raise HandtrackError(f"{path}: not a handtrack checkpoint (corrupt, or holds objects other than "
                             "tensors and plain data, which handtrack never unpickles)") from exc
    except Exception as exc:  # noqa: BLE001 - any unreadable or foreign file gets one line
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()[:1] or [""]
        raise HandtrackError(f"{path}: not a handtrack checkpoint ({type(exc).__name__}: {first[0][:200]})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt or "model" not in ckpt:
        raise HandtrackError(f"{path}: not a handtrack {what} checkpoint")
    return ckpt


def write_checkpoint(ckpt: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
