"""`handtrack finetune`: adapt the pose model to the user's camera and hand from unlabelled recorded sessions
(needs the train extra). See docs/finetune.md.

    handtrack finetune --sessions S1.mcap [S2.mcap ...] --out DIR [--method semihand,awh] [--steps N]
    handtrack --stream --model DIR/finetuned_pose.onnx
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handtrack.inference.errors import HandtrackError, require
from handtrack.inference.report import write_json


def add_parser(sub) -> None:
    from handtrack.training.finetune.config import DEFAULTS, METHODS

    p = sub.add_parser("finetune", help="adapt the model to your camera and hand from recorded sessions",
                       description="Fine-tune the pose model on unlabelled sessions from `handtrack record` (or "
                                   "the GUI's Record button), keeping labelled synthetic data in the mix, and export "
                                   "a model that --model DIR/<name>_pose.onnx loads everywhere. Resumable.")
    p.add_argument("--sessions", nargs="+", required=True, type=Path, metavar="SESSION", help="recorded sessions")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="run folder: model, report, checkpoints")
    p.add_argument("--model", default="murauer",
                   help="the model to start from: a shipped name (murauer) or a MURAUER checkpoint .pt")
    p.add_argument("--method", default=",".join(DEFAULTS["methods"]),
                   help=f"comma-separated, any of {', '.join(METHODS)} (default %(default)s)")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="training steps (default %(default)s)")
    p.add_argument("--camera", help="use only this camera of multi-camera sessions (cam0, cam1, ...; default all)")
    p.add_argument("--name", default="finetuned", help="model name: DIR/<name>_pose.onnx (default %(default)s)")
    p.add_argument("--synthetic", metavar="SHARDS", help="labelled synthetic shards to keep in the mix (default: "
                   "generate fresh ones under DIR/synthetic)")
    p.add_argument("--config", type=Path, metavar="JSON", help="more settings over the defaults "
                   "(training/finetune/config.py), e.g. loss weights")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--resume", action="store_true", help="go on with the run in DIR where it stopped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the report as JSON here too")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="fine-tuning")
    from handtrack.training.configfile import read_object
    from handtrack.training.finetune.run import finetune

    override = read_object(args.config) if args.config else {}
    override.update({"methods": [m.strip() for m in args.method.split(",") if m.strip()], "steps": args.steps,
                     "threads": args.threads})
    override.setdefault("session", {})["camera"] = args.camera
    if args.synthetic:
        override.setdefault("synthetic", {})["path"] = args.synthetic
    for path in args.sessions:
        if not path.is_file():
            raise HandtrackError(f"no session at {path}")
    report = finetune(args.sessions, args.out, start=args.model, name=args.name, config=override,
                      resume=args.resume, quiet=args.quiet, command=" ".join(["handtrack", *sys.argv[1:]]))
    b, a = report["plausibility"]["before"], report["plausibility"]["after"]
    kept = report["pseudo_labels"][-1]["kept_share"] if report["pseudo_labels"] else None
    print(f"fine-tuned {report['start']} with {'+'.join(report['methods'])} for {report['steps']} steps in "
          f"{report['train_seconds'] / 60:.1f} min ({report['total_seconds'] / 60:.1f} min in all)")
    if kept is not None:
        print(f"pseudo-labels kept: {kept:.0%}")
    print(f"on the sessions: plausibility {_f(b['plausibility'])} -> {_f(a['plausibility'])}, hand found "
          f"{b['found_share']:.0%} -> {a['found_share']:.0%}")
    print(f"model: {report['model']}  (handtrack --stream --model {report['model']})")
    if args.json:
        write_json(args.json, report)
    return 0


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}"
