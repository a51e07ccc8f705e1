"""Options every command that opens a source shares: what a folder of depth PNGs cannot say about itself."""
from __future__ import annotations

import argparse

from handtrack.inference.camera import PRESETS, Intrinsics
from handtrack.inference.errors import HandtrackError


def add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--depth-unit", type=float, metavar="MM",
                   help="millimetres per raw depth unit of a folder of depth PNGs (default 0.125, the SR305's; "
                        "D400 cameras write 1)")
    p.add_argument("--intrinsics", metavar="CAMERA",
                   help=f"the camera of a folder of depth PNGs: {', '.join(PRESETS)} or fx,fy,cx,cy,width,height "
                        "(default sr305)")


def parse_intrinsics(text: str) -> Intrinsics:
    if text.lower() in PRESETS:
        return PRESETS[text.lower()]
    try:
        fx, fy, cx, cy, width, height = (float(v) for v in text.split(","))
    except ValueError:
        raise HandtrackError(f"--intrinsics {text!r}: a camera name ({', '.join(PRESETS)}) or six numbers "
                             "fx,fy,cx,cy,width,height") from None
    if min(fx, fy, width, height) <= 0 or width != int(width) or height != int(height):
        raise HandtrackError(f"--intrinsics {text!r}: focal lengths and image size must be positive, sizes whole")
    return Intrinsics(fx, fy, cx, cy, int(width), int(height))


def source_options(args: argparse.Namespace) -> dict:
    """The open_source options the command line gave (a source that does not take one says so in one line)."""
    options = {}
    if args.depth_unit is not None:
        if not args.depth_unit > 0:
            raise HandtrackError("--depth-unit must be positive (millimetres per raw unit)")
        options["depth_unit_mm"] = args.depth_unit
    if args.intrinsics is not None:
        options["intrinsics"] = parse_intrinsics(args.intrinsics)
    return options
