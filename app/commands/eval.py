"""`handtrack eval TARGET`: score predictions against benchmark labels, and check labels against their depth.

Each target is a sub-subcommand: a function `_add_<target>(targets)` that registers its parser and sets
`run=`, listed in TARGETS at the bottom. A target that grows large can live in its own module and expose the
same kind of function.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from handtrack.app.commands import eval_detect, eval_finetune, eval_model, eval_tracker
from handtrack.app.commands.eval_args import add_data, add_outputs, add_target, print_written
from handtrack.inference.errors import HandtrackError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="score predictions on benchmarks; check labels against depth",
        description="Evaluate hand poses. Choose a target; each has its own --help.")
    targets = parser.add_subparsers(dest="eval_target", metavar="TARGET", title="targets")
    for add in TARGETS:
        add(targets)
    names = ", ".join(targets.choices)
    parser.set_defaults(run=lambda args: _no_target(names))


def _no_target(names: str) -> int:
    raise HandtrackError(f"say what to evaluate: handtrack eval {{{names}}} ... (see handtrack eval --help)")


# --- eval nyu: published-style predictions against the 14-joint NYU test labels -------------------------

def _add_nyu(targets) -> None:
    p = add_target(targets, "nyu", run_nyu,
                   help="score NYU test predictions (14 joints, xyz mm, y up, one frame per line)")
    p.add_argument("pred", type=Path, metavar="PRED",
                   help="predictions: one line per frame, 14 joints x (x y z) in mm, NYU's y-up camera frame")
    p.add_argument("--labels", type=Path, required=True, metavar="LABELS",
                   help="test_joints14_uvd.txt: one line per frame, 14 joints x (u v depth_mm)")
    add_outputs(p, json="the summary", plot="the max-error curve and per-joint errors")


def run_nyu(args: argparse.Namespace) -> int:
    """Score predictions on the NYU test set: mean joint error, per-joint errors and the fraction of frames
    whose largest joint error is within 0..80 mm."""
    from handtrack.inference.camera import NYU
    from handtrack.inference.datasets import nyu
    from handtrack.inference.report import write_json
    from handtrack.inference.skeleton import NYU14_NAMES
    from handtrack.training import evaluation

    true_xyz = nyu.load_joints14_xyz_from_uvd(args.labels)
    pred_xyz = nyu.load_predictions_xyz(args.pred)
    if len(pred_xyz) != len(true_xyz):
        raise HandtrackError(f"{args.pred.name} has {len(pred_xyz)} lines, {args.labels.name} has {len(true_xyz)}")
    summary = evaluation.evaluate(pred_xyz, true_xyz, NYU14_NAMES)
    if args.json:
        payload = {"benchmark": "nyu_test_14", **summary.to_dict(),
                   "fraction_within_20mm": summary.fraction_within(20),
                   "fraction_within_40mm": summary.fraction_within(40),
                   "inputs": {"predictions": str(args.pred.resolve()), "labels": str(args.labels.resolve()),
                              "prediction_frame": "xyz mm, NYU camera frame (y up)",
                              "labels_camera": NYU.to_dict()}}
        write_json(args.json, payload)
    if args.plot:
        evaluation.plot_summaries({args.pred.stem: summary}, args.plot, title="NYU test, 14 joints")
    if summary.mean_error_mm > 50:
        print(f"warning: a {summary.mean_error_mm:.0f} mm mean error usually means the predictions are not "
              "xyz in mm with y up (uvd? metres? y down?)", file=sys.stderr)
    evaluation.print_summary(summary, f"NYU test: {args.pred.name} vs {args.labels.name}")
    print_written(args.json, args.plot)
    return 0


# --- eval reprojection: the real NYU frame's 36 joints on its own depth image ----------------------------

def _add_reprojection(targets) -> None:
    p = add_target(targets, "reprojection", run_reprojection,
                   help="check the NYU sample frame's 3D labels against its depth image and uvd labels")
    add_data(p, holding="nyu/")
    add_outputs(p, json="the report", png="the depth image with the joints drawn")


# Reprojection of the 3D labels onto the uvd labels is exact in the data (~0.002 px); more means a wrong
# camera, a lost y flip or a misread file.
MAX_REPROJECTION_PX = 0.5


def run_reprojection(args: argparse.Namespace) -> int:
    """Project the 36 ground-truth joints of NYU test frame 1 onto its depth image; report how far behind the
    visible surface they lie and how well they match the 14-joint uvd labels."""
    from handtrack.inference.datasets import nyu
    from handtrack.inference.report import write_json
    from handtrack.inference.skeleton import NYU14_FROM_36
    from handtrack.training import evaluation

    folder = args.data / "nyu"
    files = {name: folder / name for name in
             ("test_depth_1_0000001.png", "test_joints36_xyz_0000001.json", "test_joints14_uvd.txt")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise HandtrackError(f"missing {', '.join(missing)}; pass --data DIR (the folder holding nyu/)")
    frame = nyu.load_frame(files["test_depth_1_0000001.png"], files["test_joints36_xyz_0000001.json"])
    labels_uv = nyu.load_joints14_uvd(files["test_joints14_uvd.txt"])[0]
    report = evaluation.reprojection_check(frame, labels_uv, NYU14_FROM_36)
    if args.json:
        write_json(args.json, {"dataset": "nyu", "inputs": {k: str(p.resolve()) for k, p in files.items()}, **report})
    if args.png:
        _write_overlay(args.png, frame.depth_mm, np.asarray(report["joints_uv"]), labels_uv)
    _print_reprojection(report)
    print_written(args.json, args.png)
    if report["reprojection_max_px"] > MAX_REPROJECTION_PX:
        print(f"FAILED: the 3D labels reproject {report['reprojection_max_px']:.3f} px away from the uvd labels",
              file=sys.stderr)
        return 1
    return 0


def _print_reprojection(report: dict) -> None:
    every, ref = report["surface_offset_mm"], report["reference_surface_offset_mm"]
    print(f"NYU {report['frame']}: {report['joints']} ground-truth joints on their depth image")
    print(f"  reprojection vs 14-joint uvd labels (line 1): max {report['reprojection_max_px']:.4f} px")
    print(f"  surface offset, joint z - nearest depth in a {report['window_px']}x{report['window_px']} window "
          "(+ = behind the surface):")
    print(f"    all {every['count']} joints: {_describe(every)}")
    print(f"    the {ref['count']} evaluation joints: {_describe(ref)}")


def _describe(stats: dict) -> str:
    if not stats["count"]:
        return "no valid depth near any joint"
    return (f"mean {stats['mean']:.1f} mm, median {stats['median']:.1f} mm, "
            f"range {stats['min']:.1f}..{stats['max']:.1f} mm")


def _write_overlay(path: Path, depth_mm: np.ndarray, joints_uv: np.ndarray, labels_uv: np.ndarray) -> None:
    import cv2

    from handtrack.inference.skeleton import FINGER_COLORS_BGR
    from handtrack.training import evaluation

    # NYU-36: five fingers (little, ring, middle, index, thumb) of six points from the tip in; then the palm.
    fingers = ("pinky", "ring", "middle", "index", "thumb")
    chains = [list(range(6 * f, 6 * f + 6)) for f in range(5)]
    image = evaluation.draw_overlay(depth_mm, joints_uv, chains, [FINGER_COLORS_BGR[f] for f in fingers], labels_uv)
    if not cv2.imwrite(str(path), image):
        raise HandtrackError(f"cannot write {path}")


TARGETS = (_add_nyu, _add_reprojection, eval_model.add_synth, eval_model.add_nyu_frame, eval_model.add_sr305,
           eval_model.add_synthesis, eval_model.add_latent_walk, eval_tracker.add_tracker, eval_detect.add_detect,
           eval_finetune.add_finetune)
