"""What the `handtrack eval` targets share: their parsers (described by their run functions' docstrings), the
model, data and output options, and the lines that name the files a target wrote."""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from handtrack.models_onnx import DEFAULT_MODEL

DEFAULT_DATA = Path("../shared/data")  # the shared reference data, beside the project's checkout


def add_model(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=help or f"a shipped model's name (default {DEFAULT_MODEL}) or the path of a *_pose.onnx file")


def add_data(p: argparse.ArgumentParser, holding: str = "") -> None:
    """--data DIR; `holding`: the sub-folders the target reads, named in the help."""
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                   help=f"the shared data folder{' holding ' + holding if holding else ''} (default: {DEFAULT_DATA})")


def add_outputs(p: argparse.ArgumentParser, json: str, png: str | None = None, plot: str | None = None) -> None:
    """--json OUT, and --png OUT / --plot PNG where the target draws; each text says what the file holds."""
    p.add_argument("--json", type=Path, metavar="OUT", help=f"write {json} as JSON")
    if png:
        p.add_argument("--png", type=Path, metavar="OUT", help=f"write {png}")
    if plot:
        p.add_argument("--plot", type=Path, metavar="PNG", help=f"write {plot}")


def print_written(*paths: Path | None) -> None:
    """A `wrote PATH` line for each file asked for (None: not asked for). Commands print these last, after
    writing every file, so a reader that closes stdout early (`| head`) cannot cost the results."""
    for path in paths:
        if path:
            print(f"wrote {path}")


def add_target(targets, name: str, run, help: str) -> argparse.ArgumentParser:
    """The target's parser: `help` in the list of targets, `run`'s docstring as its description."""
    p = targets.add_parser(name, help=help, description=inspect.getdoc(run))
    p.set_defaults(run=run)
    return p
