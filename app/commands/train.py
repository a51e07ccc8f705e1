"""`handtrack train METHOD --config FILE`: train a model (PyTorch; the `train` extra).

Under torchrun the same command trains with DistributedDataParallel:
    torchrun --nproc_per_node 2 -m handtrack.app.cli train crossingnets --config FILE --out DIR
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from handtrack.inference.errors import HandtrackError, require


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a config file (needs the train extra)",
                       description="Train a model. The config is saved beside every checkpoint; --resume "
                                   "continues from OUT/last.pt exactly where it stopped.")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    c = methods.add_parser("crossingnets", help="Crossing Nets: pose VAE + depth GAN + multi-task posterior")
    c.add_argument("--config", type=Path, required=True, help="JSON config (see training/configs/)")
    c.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
    c.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    c.add_argument("--json", type=Path, metavar="OUT", help="write the final validation figures as JSON")
    c.set_defaults(run=run_crossingnets)


def run_crossingnets(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="training")
    from handtrack.training.crossingnets.config import load_config
    from handtrack.training.crossingnets.trainer import Trainer

    config = load_config(args.config)
    out = args.out or Path("runs") / config["name"]
    if (out / "last.pt").exists() and not args.resume:
        raise HandtrackError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    trainer = Trainer(config, out, resume=args.resume)
    result = trainer.run()
    if trainer.rank == 0:
        result = {"run": str(out), "checkpoint": str(out / "last.pt"), **result}
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))
    return 0
