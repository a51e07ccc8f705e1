"""`handtrack export METHOD --checkpoint CKPT --out DIR`: trained checkpoint -> single-file ONNX models with
handtrack metadata, checked against torch on random and real crops (needs the train extra)."""
from __future__ import annotations

import argparse
from pathlib import Path

from handtrack.inference.errors import HandtrackError, require
from handtrack.inference.report import write_json

# Largest |onnxruntime - torch| accepted on any output (normalised units: 1e-4 of a 125 mm half-cube is 12.5 um).
PARITY_TOLERANCE = 1e-4


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a trained checkpoint to ONNX (needs the train extra)",
                       description="Write the method's ONNX files (crossingnets: pose, render and render_from_pose; "
                                   "murauer: pose and the centre refiner beside it), then compare each with torch "
                                   "on random and real inputs.")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    c = methods.add_parser("crossingnets", help="Crossing Nets: pose route and render routes")
    c.add_argument("--checkpoint", type=Path, required=True, help="a training checkpoint (e.g. runs/NAME/last.pt)")
    _add_out(c)
    c.add_argument("--name", default="crossingnets", help="file name prefix (default crossingnets)")
    c.add_argument("--version", help="model version written into the metadata (default NAME-1)")
    c.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="the pose file: fp32 (default) or int8 (its first and last convolutions in float; the "
                        "float file kept beside it as NAME_pose_fp32.onnx and measured against it)")
    c.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data, for real parity crops")
    c.add_argument("--json", type=Path, metavar="OUT", help="write the files and parity figures as JSON")
    c.set_defaults(run=run_crossingnets)

    m = methods.add_parser("murauer", help="MURAUER: the pose route p(m(f(x))) and a centre refiner beside it")
    m.add_argument("--checkpoint", type=Path, required=True, help="a training checkpoint (e.g. runs/NAME/final.pt)")
    _add_out(m)
    m.add_argument("--name", default="murauer", help="file name prefix (default murauer)")
    m.add_argument("--version", help="model version written into the metadata (default NAME-1)")
    m.add_argument("--centre", default="crossingnets",
                   help="the centre refiner to ship beside it: a shipped model name or a *_centre.onnx path "
                        "(default crossingnets); 'none' for no refiner")
    m.add_argument("--precision", choices=("int8", "fp32"), default="int8",
                   help="the tracker's pose file: int8 (default; calibrated on synthetic crops, the float file "
                        "kept beside it as NAME_pose_fp32.onnx and measured against it) or fp32")
    m.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data, for real parity crops")
    m.add_argument("--json", type=Path, metavar="OUT", help="write the files and parity figures as JSON")
    m.set_defaults(run=run_murauer)


def _add_out(p: argparse.ArgumentParser) -> None:
    # Under runs/ by default: the shipped models (models_onnx/) are replaced only when named.
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default runs/NAME_onnx; models_onnx replaces the shipped model)")


def _out_dir(args: argparse.Namespace) -> Path:
    return args.out or Path("runs") / f"{args.name}_onnx"


def run_crossingnets(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="export")
    require("onnxscript", extra="train", feature="ONNX export")
    from handtrack.training.crossingnets.export import export_checkpoint, parity, parity_inputs

    _quiet_exporter()
    files = export_checkpoint(args.checkpoint, _out_dir(args), args.name, args.version, args.precision)
    floats = {**files, "pose": files.get("pose_fp32", files["pose"])}  # torch parity: the float files
    return _report(files, parity(args.checkpoint, floats, parity_inputs(args.data)), args.json,
                   _int8_agreement(files))


def _int8_agreement(files: dict) -> dict:
    """The int8 pose file against its float original on held-out crops (printed and reported), if there is one."""
    if "pose_fp32" not in files:
        return {}
    from handtrack.training.quantize import agreement

    a = agreement(files["pose_fp32"], files["pose"])
    print(f"int8 against float32 on {a['crops']} held-out crops: joints {a['mean_joint_difference_mm']:.2f} mm "
          f"apart on average; error {a['int8_error_mm']:.2f} mm (float32 {a['float_error_mm']:.2f} mm)")
    return {"int8": a}


def run_murauer(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="export")
    require("onnxscript", extra="train", feature="ONNX export")
    from handtrack.training.murauer.export import export_checkpoint, parity

    _quiet_exporter()
    centre = None if args.centre == "none" else args.centre
    files = export_checkpoint(args.checkpoint, _out_dir(args), args.name, args.version, centre, args.precision)
    float_file = files.get("pose_fp32", files["pose"])
    return _report(files, parity(args.checkpoint, float_file, args.data), args.json, _int8_agreement(files))


def _report(files: dict, diffs: dict[str, float], json_path: Path | None, extra: dict | None = None) -> int:
    worst = max(diffs.values())
    result = {"files": {k: str(v) for k, v in files.items()}, "parity_max_abs": diffs, "tolerance": PARITY_TOLERANCE,
              **(extra or {})}
    if json_path:
        write_json(json_path, result)
    for role, path in files.items():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {role})")
    for k, v in diffs.items():
        print(f"  parity {k:<28} max |onnxruntime - torch| = {v:.2e}")
    if worst > PARITY_TOLERANCE:
        raise HandtrackError(f"exported models differ from torch by {worst:.2e} > {PARITY_TOLERANCE:.0e}")
    return 0


def _quiet_exporter() -> None:
    """The exporter logs a warning per missing torchvision op; none of them is used here."""
    import logging
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
