"""`handtrack eval synth | nyu-frame | sr305`: score a pose model (shipped name or .onnx path) the way users run it,
through onnxruntime. Registered by app/commands/eval.py (TARGETS)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from handtrack.app.commands.eval_args import add_data, add_model, add_outputs, add_target, print_written
from handtrack.inference.errors import HandtrackError
from handtrack.inference.report import write_json


def _model_args(p: argparse.ArgumentParser, png: str | None = None, plot: str | None = None) -> None:
    add_model(p)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    add_outputs(p, json="the results", png=png, plot=plot)


def _load(args) -> object:
    from handtrack.inference.model import PoseModel
    from handtrack.models_onnx import resolve
    return PoseModel(resolve(args.model, "pose"), threads=args.threads)


def _write_report(path: Path | None, model, payload: dict) -> None:
    """The target's figures and the model they are of, as JSON at `path` (None: not asked for)."""
    if path:
        write_json(path, {**payload, "model": {"path": str(model.path.resolve()), "version": model.info.version,
                                               "method": model.info.method, "training": model.info.training}})


def add_synth(targets) -> None:
    p = add_target(targets, "synth", run_synth, help="a pose model on freshly rendered held-out synthetic crops")
    _model_args(p, plot="the max-error curve and per-joint errors")
    p.add_argument("--sensor", default="primesense", help="sensor model: primesense, realsense, sr305, clean")
    p.add_argument("--n", type=int, default=1000, help="number of test samples")
    p.add_argument("--seed", type=int, help="test-set seed (default: the held-out evaluation seed)")


def run_synth(args: argparse.Namespace) -> int:
    """Render N held-out samples (a seed no training set uses) with one sensor model, crop them at the jittered
    palm centre, predict, and score the 21 joints: mean error, per joint, and the max-error curve."""
    from handtrack.training import evaluation
    from handtrack.training.model_eval import HELD_OUT_SEED, eval_synthetic
    from handtrack.training.synth.sensors import SENSORS

    if args.sensor not in SENSORS:
        raise HandtrackError(f"unknown sensor '{args.sensor}'; choose one of {', '.join(sorted(SENSORS))}")
    if args.n <= 0:
        raise HandtrackError("--n must be positive")
    model = _load(args)
    seed = HELD_OUT_SEED if args.seed is None else args.seed
    summary = eval_synthetic(model, args.sensor, args.n, seed)
    _write_report(args.json, model, {"benchmark": f"synthetic_{args.sensor}", "sensor": args.sensor, "seed": seed,
                                     **summary.to_dict(), "fraction_within_20mm": summary.fraction_within(20),
                                     "fraction_within_40mm": summary.fraction_within(40)})
    if args.plot:
        evaluation.plot_summaries({f"{model.info.version} on {args.sensor}": summary}, args.plot,
                                  title=f"held-out synthetic {args.sensor}, 21 joints")
    evaluation.print_summary(summary, f"synthetic {args.sensor}, held-out seed {seed}: {model.path.name}")
    print_written(args.json, args.plot)
    return 0


def add_nyu_frame(targets) -> None:
    p = add_target(targets, "nyu-frame", run_nyu_frame, help="a pose model on the real NYU test frame (14 joints)")
    _model_args(p, png="the frame with prediction and ground truth")
    add_data(p, holding="nyu/")


def run_nyu_frame(args: argparse.Namespace) -> int:
    """Crop the real NYU test frame at its labelled palm centre, predict the 21 joints, fit the hand model to
    them and score the 14 NYU joints read off it."""
    from handtrack.inference import camera
    from handtrack.training import evaluation
    from handtrack.training.model_eval import eval_nyu_frame

    if not (args.data / "nyu" / "test_depth_1_0000001.png").is_file():
        raise HandtrackError(f"no NYU frame under {args.data}/nyu; pass --data DIR (the folder holding nyu/)")
    model = _load(args)
    r = eval_nyu_frame(model, args.data)
    s = r["summary"]
    _write_report(args.json, model, {"benchmark": "nyu_test_frame_1_14_joints", **s.to_dict(),
                                     "crop_centre": "labelled palm centre (NYU joint 32)",
                                     "fit_residual_mm": r["fit_residual_mm"], "pred14_mm": r["pred14_mm"],
                                     "truth14_mm": r["truth14_mm"]})
    if args.png:
        K = r["intrinsics"]
        overlay = evaluation.draw_overlay(r["depth_mm"], camera.project(r["pred14_mm"], K),
                                          reference_uv=camera.project(r["truth14_mm"], K))
        _write_png(args.png, overlay)
    evaluation.print_summary(s, f"NYU test frame 1: {model.path.name}")
    print(f"  (hand model fitted to the 21 predicted joints: {r['fit_residual_mm']:.2f} mm mean residual)")
    print_written(args.json, args.png)
    return 0


def add_sr305(targets) -> None:
    p = add_target(targets, "sr305", run_sr305,
                   help="plausibility of a pose model's joints on the real SR305 frames (no labels)")
    _model_args(p)
    add_data(p, holding="realsense_sr305/")


def run_sr305(args: argparse.Namespace) -> int:
    """The SR305 frames have no labels: the hand is found as the nearest blob, and the predicted joints are
    scored against the observed depth (inference/plausibility.py: 1 = on or just behind the surface)."""
    from handtrack.training.model_eval import eval_sr305_plausibility

    if not (args.data / "realsense_sr305").is_dir():
        raise HandtrackError(f"no realsense_sr305/ under {args.data}; pass --data DIR")
    model = _load(args)
    rows = eval_sr305_plausibility(model, args.data)
    mean = float(np.mean([r["plausibility"] for r in rows]))
    _write_report(args.json, model, {"benchmark": "sr305_plausibility", "frames": len(rows), "mean_plausibility": mean,
                                     "per_frame": [{k: r[k] for k in ("frame", "plausibility", "centre_mm")}
                                                   for r in rows]})
    print(f"SR305 frames: {model.path.name}  (plausibility: 1 = joints on or just behind the observed surface)")
    for r in rows:
        print(f"  {r['frame']:<28}{r['plausibility']:6.3f}")
    print(f"  {'mean':<28}{mean:6.3f}")
    print_written(args.json)
    return 0


def _write_png(path: Path, image) -> None:
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise HandtrackError(f"cannot write {path}")


def add_synthesis(targets) -> None:
    p = add_target(targets, "synthesis", run_synthesis,
                   help="how well the synthesized depth explains held-out synthetic crops")
    _model_args(p)
    p.add_argument("--sensor", default="primesense", help="sensor model of the test crops")
    p.add_argument("--n", type=int, default=200, help="test crops")


def run_synthesis(args: argparse.Namespace) -> int:
    """On held-out synthetic crops: the generator's depth from the pose model's latent (Crossing Nets) and our
    hand model fitted to the predicted joints, each against the true crop (mean |difference| on hand pixels,
    mm)."""
    from handtrack.training.model_eval import eval_synthesis

    model = _load(args)
    out = eval_synthesis(model, args.sensor, args.n)
    gen = out["generator_mm"]
    print(f"synthesis on {out['crops']} held-out {args.sensor} crops, {model.path.name}: mean |synthesized - true| "
          f"on hand pixels")
    print(f"  generator (from the latent): {'-' if gen is None else f'{gen:.2f} mm'}")
    print(f"  hand model fitted to the estimate: {out['hand_model_mm']:.2f} mm "
          f"(fit residual {out['hand_model_fit_residual_mm']:.2f} mm; on the true joints: "
          f"{out['hand_model_on_true_joints_mm']:.2f} mm)")
    _write_report(args.json, model, {"benchmark": "synthesis", **out})
    print_written(args.json)
    return 0


def add_latent_walk(targets) -> None:
    p = add_target(targets, "latent-walk", run_latent_walk,
                   help="poses and synthesized depth along a line between two latents (Fig. 1)")
    p.add_argument("--checkpoint", type=Path, required=True, help="a Crossing Nets training checkpoint")
    p.add_argument("--png", type=Path, required=True, help="the figure to write")
    p.add_argument("--steps", type=int, default=8, help="points on the line, ends included")
    p.add_argument("--seed", type=int, default=5, help="which two held-out poses (test-set seed)")


def run_latent_walk(args: argparse.Namespace) -> int:
    """Decode points on the line between the shared latents of two held-out synthetic poses into poses (VAE) and
    depth maps (Ali + generator)."""
    from handtrack.inference.crop import normalise_joints
    from handtrack.inference.errors import require
    require("torch", extra="train", feature="the latent walk")
    from handtrack.training.crossingnets.latent_walk import write_walk
    from handtrack.training.crossingnets.trainer import model_from_checkpoint
    from handtrack.training.model_eval import synthetic_test_set

    if args.steps < 2:
        raise HandtrackError("--steps must be at least 2")
    _, config = model_from_checkpoint(args.checkpoint)
    cube = config["model"]["cube_mm"]
    data = synthetic_test_set("clean", 2, cube, seed=args.seed)
    ends = normalise_joints(data["joints"], data["centre"][:, None], cube)
    write_walk(args.checkpoint, ends[0], ends[1], args.png, args.steps)
    print(f"wrote {args.png}")
    return 0
