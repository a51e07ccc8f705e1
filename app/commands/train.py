"""`handtrack train METHOD --config FILE`: train a model (PyTorch; the `train` extra).

Under torchrun the same command trains with DistributedDataParallel:
    torchrun --nproc_per_node 2 -m handtrack.app.cli train crossingnets --config FILE --out DIR
"""
from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

from handtrack.inference.errors import HandtrackError, require
from handtrack.inference.report import write_json
from handtrack.models_onnx import DEFAULT_MODEL


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model from a config file (needs the train extra)",
                       description="Train a model. The config is saved beside every checkpoint; --resume "
                                   "continues from OUT/last.pt exactly where it stopped.")
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    _run_args(methods.add_parser("crossingnets", help="Crossing Nets: pose VAE + depth GAN + multi-task posterior"),
              run_crossingnets)

    _run_args(methods.add_parser("murauer", help="MURAUER: residual pose network, real -> synthetic feature mapping, "
                                                 "view prediction and latent adversarial alignment"), run_murauer)

    e = _sweep_parser(methods, "murauer-experiment", run_murauer_experiment,
                      help="the MURAUER experiment: m%% labelled target, baseline vs MURAUER",
                      source="labelled source shards (multi-view: g learns from them)",
                      target="target-domain shards: m%% keep their labels", held_out="--target-test",
                      fractions=[0, 1, 10, 100])
    e.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128], help="backbone stage widths")
    e.add_argument("--fused", type=int, default=64, help="channels of the fused feature map")
    e.add_argument("--view-width", type=int, default=128, help="channels of g's first layer (paper: 512)")
    e.add_argument("--pretrain-steps", type=int, default=3000)
    e.add_argument("--adapt-steps", type=int, default=1000)
    e.add_argument("--loss", type=json.loads, help='loss weights as JSON, e.g. \'{"adversarial": 0.01}\'')

    s = _sweep_parser(methods, "semisup", run_semisup,
                      help="the paper's Fig. 3: m%% labelled target + unlabelled rest, three models",
                      source="labelled source shards (e.g. primesense)", held_out="--target-val",
                      target="target-domain shards (another sensor): m%% keep labels", fractions=[2, 5, 10, 100])
    s.add_argument("--limit-source", type=int, help="use at most this many source samples")
    s.add_argument("--limit-target", type=int, help="use at most this many target samples")
    s.add_argument("--val-limit", type=int, default=500)
    s.add_argument("--vae-steps", type=int, default=4000)
    s.add_argument("--gan-steps", type=int, default=300)
    s.add_argument("--ali-steps", type=int, default=100)
    s.add_argument("--joint-steps", type=int, default=600)
    s.add_argument("--batch", type=int, default=64, help="labelled crops per step (generator tasks: a quarter)")

    r = _network_parser(methods, "centre", run_centre,
                        help="the centre refiner: rough hand centre -> palm centre (ONNX on export)",
                        data="synthetic shard folders", out="run folder (centre.pt, result.json)", batch=128,
                        onnx="crossingnets_centre.onnx", version="centre-1", history="validation history")
    r.add_argument("--steps", type=int, default=3000)

    d = _network_parser(methods, "detect", run_detect,
                        help="the hand detector (whole frame) and presence net (crop) (ONNX on export)",
                        data="frame shard folders (handtrack data frames)", batch=64,
                        out="run folder (detector.pt, presence.pt, result.json)", version="handfinder-1",
                        onnx="handfinder_{detector,presence}.onnx", history="training history")
    h = methods.add_parser("handedness", help="a pose file's left / right readout on its latent",
                           description=inspect.getdoc(run_handedness))
    h.set_defaults(run=run_handedness)
    h.add_argument("--pose", type=Path, required=True, help="the pose ONNX file (e.g. models_onnx/murauer_pose.onnx)")
    h.add_argument("--data", type=Path, nargs="+", required=True, help="frame shard folders (handtrack data frames)")
    h.add_argument("--out", type=Path, help="where to write the file with the readout (default: --pose, in place)")
    h.add_argument("--epochs", type=int, default=60)
    h.add_argument("--hidden", type=int, default=64, help="units of the readout's hidden layer")
    h.add_argument("--no-mirror", action="store_true",
                   help="do not also train on the crops mirrored left-right as the other hand")
    h.add_argument("--replace", action="store_true", help="retrain a readout the file already has")
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--json", type=Path, metavar="OUT", help="write the accuracies and the settings as JSON")
    a = methods.add_parser("agreement", help="presence with render-and-compare: fit its combiner on synthetic frames",
                           description=inspect.getdoc(run_agreement))
    a.set_defaults(run=run_agreement)
    a.add_argument("--model", default=DEFAULT_MODEL, help="the pose model whose estimates are rendered")
    a.add_argument("--n", type=int, default=3000, help="synthetic full frames")
    a.add_argument("--seed", type=int, default=106, help="their seed (none of the other training sets' seeds)")
    a.add_argument("--out", type=Path, required=True, help="the agreement file to write "
                                                           "(models_onnx/handfinder_agreement.json ships)")
    a.add_argument("--version", default="agreement-1")
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--samples", type=Path, metavar="NPZ", help="also keep the collected features and labels")
    a.add_argument("--json", type=Path, metavar="OUT", help="write the validation figures and the weights as JSON")
    d.add_argument("--detector-steps", type=int, default=3000)
    d.add_argument("--presence-steps", type=int, default=2000)
    d.add_argument("--lr", type=float, default=2e-3)
    d.add_argument("--init", type=Path, metavar="RUN", help="start both networks from a previous run folder's weights")
    d.add_argument("--ragged-edges", type=float, default=0.0, metavar="SHARE",
                   help="share of presence crops given SR305-like vertical streaks at their edges (default 0: "
                        "handfinder-2 was trained without; docs/results.md)")


def _network_parser(methods, name: str, run, help: str, data: str, out: str, batch: int, onnx: str, version: str,
                    history: str) -> argparse.ArgumentParser:
    """The parser of a trainer of one of the small networks the tracker runs beside the pose model (centre,
    detect), described by `run`'s docstring: shard folders in, a run folder, the ONNX export."""
    p = methods.add_parser(name, help=help, description=inspect.getdoc(run))
    p.set_defaults(run=run)
    p.add_argument("--data", type=Path, nargs="+", required=True, help=data)
    p.add_argument("--out", type=Path, required=True, help=out)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--export", type=Path, metavar="DIR", help=f"also write DIR/{onnx}")
    p.add_argument("--version", default=version, help="model version written into the ONNX metadata")
    p.add_argument("--json", type=Path, metavar="OUT", help=f"write the {history} as JSON")
    return p


def _sweep_parser(methods, name: str, run, help: str, source: str, target: str, held_out: str,
                  fractions: list[float]) -> argparse.ArgumentParser:
    """A labelled-percentage experiment's parser, described by `run`'s docstring, with what both experiments
    take: source and target shards, the held-out target shards (`held_out`: the option's name) they are scored
    on, the percentages, the run folder and the outputs."""
    p = methods.add_parser(name, help=help, description=inspect.getdoc(run))
    p.set_defaults(run=run)
    p.add_argument("--source", required=True, help=source)
    p.add_argument("--target", required=True, help=target)
    p.add_argument(held_out, required=True, help="held-out target shards to score on")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fractions", type=float, nargs="+", default=fractions, help="labelled target %%")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, metavar="OUT", help="write the table as JSON")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write the target error per labelled percentage")
    return p


def run_detect(args: argparse.Namespace) -> int:
    """Train the hand finder on synthetic full frames and crops from 'handtrack data frames': the detector (palm
    heatmap, handedness, depth on the subsampled frame), then the presence net (hand / not a hand, left / right
    on the crop) with a fitted temperature; export both with --export."""
    require("torch", extra="train", feature="training")
    import sys

    from handtrack.training.detect.trainer import export, train

    result = train(args.data, args.out, args.detector_steps, args.presence_steps, args.batch, args.lr, args.threads,
                   init=args.init, ragged=args.ragged_edges)
    if args.export:
        command = " ".join(["handtrack"] + sys.argv[1:])
        paths = export(args.out, args.export, args.version, command=command,
                       data=", ".join(str(p) for p in args.data))
        result["onnx"] = [str(p) for p in paths]
        print("wrote " + ", ".join(map(str, paths)))
    if args.json:
        write_json(args.json, result)
    return 0


def _run_args(p: argparse.ArgumentParser, run) -> None:
    """What every trainer takes: a config file, a run folder, resume, a JSON result."""
    p.add_argument("--config", type=Path, required=True, help="JSON config (see training/configs/)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the final validation figures as JSON")
    p.set_defaults(run=run)


def _report_sweep(args: argparse.Namespace, results: dict, methods: tuple[str, ...], settings: dict) -> int:
    """A labelled-percentage experiment's table: as JSON with the settings it ran with, as a plot, and printed
    (target error per labelled percentage in rows, per method in columns)."""
    from handtrack.training.curves import plot_label_sweep

    if args.json:
        write_json(args.json, {"results": results, **settings})
    if args.plot:
        plot_label_sweep(results, methods, args.plot,
                         f"target {Path(args.target).name}, source {Path(args.source).name}")
    print(f"{'labelled %':>10}" + "".join(f"{m:>12}" for m in methods))
    for m in args.fractions:
        row = [results.get(f"{method}@{m:g}", {}).get("target_mean_error_mm") for method in methods]
        print(f"{m:>10g}" + "".join(f"{v:>10.2f}mm" if v is not None else f"{'-':>12}" for v in row))
    return 0


def run_crossingnets(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="training")
    from handtrack.training.crossingnets.config import load_config
    from handtrack.training.crossingnets.trainer import Trainer
    return _train(args, load_config, Trainer)


def run_murauer(args: argparse.Namespace) -> int:
    require("torch", extra="train", feature="training")
    from handtrack.training.murauer.config import load_config
    from handtrack.training.murauer.trainer import MurauerTrainer
    return _train(args, load_config, MurauerTrainer)


def run_murauer_experiment(args: argparse.Namespace) -> int:
    """Pretrain f + p once on the labelled source, then for each labelled target percentage train the baseline
    (source + target labels) and MURAUER (plus m, h, g on the unlabelled target); score both on held-out target
    crops. Re-running continues where it stopped."""
    require("torch", extra="train", feature="training")
    from handtrack.training.murauer.experiment import METHODS, run_experiment

    model = {"widths": args.widths, "fused": args.fused, "view_width": args.view_width}
    results = run_experiment(args.source, args.target, args.target_test, args.out, args.fractions, model,
                             args.pretrain_steps, args.adapt_steps, args.seed, args.threads, args.loss)
    return _report_sweep(args, results, METHODS, {"model": model, "pretrain_steps": args.pretrain_steps,
                                                  "adapt_steps": args.adapt_steps, "loss": args.loss,
                                                  "source": args.source, "target": args.target,
                                                  "target_test": args.target_test})


def _train(args: argparse.Namespace, load_config, Trainer) -> int:
    config = load_config(args.config)
    out = args.out or Path("runs") / config["name"]
    if (out / "last.pt").exists() and not args.resume:
        raise HandtrackError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    trainer = Trainer(config, out, resume=args.resume)
    result = trainer.run()
    if trainer.rank == 0:
        result = {"run": str(out), "checkpoint": str(out / "last.pt"), **result}
        if args.json:
            write_json(args.json, result)
        print(json.dumps(result))
    return 0


def run_semisup(args: argparse.Namespace) -> int:
    """Pretrain once (VAE on source poses, GAN on all depth), then for each labelled percentage train a posterior
    from scratch, one from the GAN's trunk, and the full multi-task model; score each on held-out target crops.
    Re-running continues where it stopped."""
    require("torch", extra="train", feature="training")
    from handtrack.training.crossingnets.semisup import METHODS, run_experiment

    quarter = max(1, args.batch // 4)
    steps = {"vae": args.vae_steps, "gan": args.gan_steps, "ali": args.ali_steps, "joint": args.joint_steps,
             "threads": args.threads}
    batch = {"labelled": args.batch, "unlabelled": quarter, "synth": quarter, "vae": 200, "gan": 32}
    limits = {"source": args.limit_source, "target": args.limit_target, "val": args.val_limit}
    results = run_experiment(args.source, args.target, args.target_val, args.out, args.fractions, steps, batch,
                             args.seed, limits)
    return _report_sweep(args, results, METHODS, {"steps": steps, "batch": batch, "limits": limits,
                                                  "source": args.source, "target": args.target})


def run_handedness(args: argparse.Namespace) -> int:
    """Teach a pose file to say which hand a crop holds: a small readout on its latent, trained on the hand
    crops of 'handtrack data frames' shards (left hands are mirrored scenes) through the file itself, then
    appended to the file as a third output, p(left hand). The tracker averages it with the detector's word."""
    require("torch", extra="train", feature="training")
    from handtrack.training.handedness import train_handedness

    result = train_handedness(args.pose, args.data, args.out, hidden=args.hidden, epochs=args.epochs, seed=args.seed,
                              replace=args.replace, mirror=not args.no_mirror)
    print(f"handedness right on {result['held_out_accuracy']:.1%} of {result['held_out_crops']} held-out crops "
          f"({result['train_accuracy']:.1%} of the {result['train_crops']} trained on); wrote {args.out or args.pose}")
    if args.json:
        write_json(args.json, result)
    return 0


def run_agreement(args: argparse.Namespace) -> int:
    """Fit how the tracker judges a hand it has found anew: the presence net's word combined with how well our
    hand model, rendered at the pose model's estimate, explains the crop (a logistic regression; runtime:
    inference/agreement.py). Fitted on synthetic full frames through the tracker itself, scored on the last fifth
    of them against the presence net alone. numpy only: no network is trained."""
    from handtrack.training.detect.agreement import train_agreement

    if args.n < 50:
        raise HandtrackError("--n must be at least 50")
    result = train_agreement(args.model, args.n, args.seed, args.out, args.version, args.workers, args.samples)
    v = result["validation"]
    for name in ("presence_net", "with_agreement"):
        s = v[name]
        print(f"{name:<15} ROC AUC {s['roc_auc']:.4f}  hands kept {s['hands_kept']:.1%}  "
              f"non-hands passed {s['non_hands_passed']:.1%}  ({v['samples']} held-out crops)")
    print(f"wrote {args.out}")
    if args.json:
        write_json(args.json, result)
    return 0


def run_centre(args: argparse.Namespace) -> int:
    """Train the small CNN that moves the localiser's centre of mass onto the palm, on shards rendered with a
    large crop jitter (handtrack data synth --jitter 30); export it with --export."""
    require("torch", extra="train", feature="training")
    from handtrack.training.centre.refiner import export, train

    result = train(args.data, args.out, steps=args.steps, batch=args.batch, threads=args.threads)
    if args.export:
        path = export(args.out / "centre.pt", args.export, args.version)
        result["onnx"] = str(path)
        print(f"wrote {path}")
    if args.json:
        write_json(args.json, result)
    return 0
