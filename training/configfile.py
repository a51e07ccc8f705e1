"""Training configs: plain JSON objects laid over a trainer's defaults, saved beside every checkpoint."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from handtrack.inference.errors import HandtrackError
from handtrack.inference.report import write_json

FREE_FORM = ("meta",)  # keys whose contents are not checked against the defaults


def merge(base: dict, override: dict, where: str = "") -> dict:
    """`override` laid over `base`; a key the defaults do not have is a typo, and says so."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            raise HandtrackError(f"unknown config key '{where}{key}'")
        if isinstance(base[key], dict) and isinstance(value, dict) and key not in FREE_FORM:
            out[key] = merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def read_object(path: str | Path) -> dict:
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise HandtrackError(f"cannot read config {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise HandtrackError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise HandtrackError(f"{path}: a config is a JSON object")
    return raw


def resolve_path(value: str, config_path: str | Path) -> str:
    """Paths relative to the config file also work (when they do not exist relative to the working folder)."""
    p = Path(value)
    base = Path(config_path).resolve().parent
    if not p.is_absolute() and not p.exists() and (base / p).exists():
        return str(base / p)
    return value


def save_config(config: dict, path: Path) -> None:
    write_json(path, config)
