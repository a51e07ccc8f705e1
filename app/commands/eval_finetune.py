"""`handtrack eval finetune`: models before and after fine-tuning, side by side, on the held-out frames of a
labelled user domain (`handtrack data user-domain`), the real SR305 frames (plausibility) and the real NYU frame.
Registered by app/commands/eval.py (TARGETS)."""
from __future__ import annotations

import argparse
from pathlib import Path

from handtrack.app.commands.eval_args import add_data, add_outputs, add_target, print_written


def add_finetune(targets) -> None:
    p = add_target(targets, "finetune", run_finetune,
                   help="models before / after fine-tuning on a labelled user domain")
    p.add_argument("--heldout", type=Path, required=True, metavar="DIR",
                   help="a folder from `handtrack data user-domain` (PNGs + labels.npz)")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                   help="a row of the table: a label and a shipped name or *_pose.onnx (repeat)")
    add_data(p, holding="realsense_sr305/ and nyu/")
    p.add_argument("--frames", type=int, help="score only the first N held-out frames")
    add_outputs(p, json="the table")


def run_finetune(args: argparse.Namespace) -> int:
    """Score each model on the held-out user frames (the whole tracker, and the pose network on crops at the
    true palm), the SR305 frames and the NYU frame."""
    from handtrack.inference.model import PoseModel
    from handtrack.inference.report import write_json
    from handtrack.models_onnx import resolve
    from handtrack.training.finetune.user_domain import score_folder
    from handtrack.training.model_eval import eval_nyu_frame, eval_sr305_plausibility

    rows = []
    for entry in args.model:
        label, sep, path = entry.partition("=")
        if not sep:
            label, path = Path(entry).stem, entry
        row = {"name": label, "model": str(path), **score_folder(path, args.heldout, args.frames)}
        if (args.data / "realsense_sr305").is_dir():
            model = PoseModel(resolve(path))
            sr = eval_sr305_plausibility(model, args.data)
            row["sr305_plausibility"] = sum(r["plausibility"] for r in sr) / len(sr)
            row["nyu_frame_mm"] = eval_nyu_frame(model, args.data)["summary"].mean_error_mm
        rows.append(row)
        print(_line(row), flush=True)
    if args.json:
        write_json(args.json, {"heldout": str(args.heldout), "rows": rows})
        print_written(args.json)
    return 0


def _line(r: dict) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)
    return (f"{r['name']:<18} held-out: tracker {f(r['tracker_mm'], '6.2f')} mm (found {r['tracker_found']:.0%}), "
            f"crop {r['crop_mm']:6.2f} mm | SR305 plausibility {f(r.get('sr305_plausibility'), '.3f')} | "
            f"NYU frame {f(r.get('nyu_frame_mm'), '.1f')} mm")
