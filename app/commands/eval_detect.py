"""`handtrack eval detect`: hand finding, presence and handedness on held-out synthetic full frames (per hard
case) and on the real frames, with an overlay figure of the real frames and their non-hand crops.
Registered by app/commands/eval.py (TARGETS)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from handtrack.app.commands.eval_args import add_data, add_model, add_outputs, add_target, print_written
from handtrack.inference.errors import HandtrackError


def add_detect(targets) -> None:
    p = add_target(targets, "detect", run_detect,
                   help="hand finding, presence and handedness (synthetic full frames + real frames)")
    add_model(p, help="the pose model (the hand finder is the shipped one)")
    p.add_argument("--n", type=int, default=1000, help="synthetic frames")
    p.add_argument("--seed", type=int, default=None, help="synthetic seed (default: the held-out one)")
    p.add_argument("--no-finder", action="store_true", help="the nearest-object rule alone (for comparison)")
    p.add_argument("--no-agreement", action="store_true",
                   help="presence from the presence net alone, without render-and-compare (for comparison)")
    add_data(p, holding="nyu/ and realsense_sr305/")
    add_outputs(p, json="the results", png="overlays of the real frames")


def run_detect(args: argparse.Namespace) -> int:
    """Run the tracker from scratch on held-out synthetic full frames (bodies nearer than the hand, edge-on and
    back-facing hands, hands on the body, frames without a hand, wrong depth scales; left and right hands) and
    on the real NYU and SR305 frames; report hand found within 30 mm, false hands, handedness and presence, per
    case."""
    from tqdm import tqdm

    from handtrack.inference.report import write_json
    from handtrack.inference.tracker import TrackerOptions
    from handtrack.training.detect.evaluate import HELD_OUT_SEED, eval_real, eval_synthetic

    if args.n < 0:
        raise HandtrackError("--n must be >= 0")
    options = TrackerOptions(model=args.model, smoothing=None, finder=not args.no_finder,
                             agreement=not args.no_agreement)
    out = {"benchmark": "hand_finding", "model": args.model, "finder": not args.no_finder,
           "agreement": not args.no_agreement}
    if args.n:
        with tqdm(total=args.n, unit="frame", desc="eval detect", file=sys.stderr) as bar:
            out["synthetic"] = eval_synthetic(options, args.n, args.seed or HELD_OUT_SEED, progress=bar.update)
        _print_synthetic(out["synthetic"])
    if (args.data / "nyu").is_dir() and (args.data / "realsense_sr305").is_dir():
        real = eval_real(options, args.data)
        _print_real(real)
        if args.png:
            _write_overlays(args.png, real["rows"], options)
            print_written(args.png)
        out["real"] = {**{k: v for k, v in real.items() if k != "rows"},
                       "per_frame": [{k: row.get(k) for k in ("frame", "present", "presence", "handedness",
                                                             "centre_error_mm", "within_30mm", "non_hand_presence")}
                                     for row in real["rows"]]}
    else:
        print(f"no real frames under {args.data} (nyu/, realsense_sr305/): real part skipped")
    if args.json:
        write_json(args.json, out)
        print_written(args.json)
    return 0


def _fmt(v, pct=True) -> str:
    if v is None:
        return "-"
    return f"{100 * v:6.1f}%" if pct else f"{v:6.1f}"


def _print_synthetic(s: dict) -> None:
    print(f"synthetic (seed {s['seed']}): {s['frames']} frames, {s['hand_frames']} with a hand")
    print(f"  {'':<14}{'frames':>7}{'found':>9}{'handed':>9}{'false':>9}{'centre mm':>11}"
          "   (false: a hand reported without one; wrong_scale: frames at a wrong depth unit)")
    groups = [("all", s)] + [(k, v) for key in ("per_case", "per_view", "per_sensor") for k, v in s[key].items()]
    for name, g in groups:
        print(f"  {name:<14}{g['frames']:>7}{_fmt(g.get('found')):>9}{_fmt(g.get('handedness')):>9}"
              f"{_fmt(g.get('false_hand', g.get('wrong_scale_reported'))):>9}"
              f"{_fmt(g.get('centre_error_mm_median'), False):>11}")
    if "presence_crops" in s:
        pc = s["presence_crops"]
        print(f"  presence on {pc['crops']} held-out crops ({pc['hand_crops']} hands): ROC AUC {pc['roc_auc']:.4f}"
              + (f" (with render-and-compare {pc['roc_auc_with_agreement']:.4f})" if "roc_auc_with_agreement" in pc
                 else ""))
        print("  mean presence per crop kind: " + ", ".join(f"{k} {v:.2f}"
                                                          for k, v in pc["per_kind_mean_presence"].items()))


def _print_real(real: dict) -> None:
    print(f"real frames: crop centre within 30 mm of the palm on {real['within_30mm']}/{real['frames']}, "
          f"lowest presence {real['presence_min']:.2f}")
    for row in real["rows"]:
        err = f"{row['centre_error_mm']:6.1f} mm" if row["centre_error_mm"] is not None else "   no hand"
        nh = row.get("non_hand_presence")
        extra = f"  non-hand crops: max presence {max(nh):.2f}" if nh else ""
        print(f"  {row['frame']:<22} centre {err}  presence {row['presence']:.2f}  {row['handedness']:<5}{extra}")
    if "non_hand_crops" in real:
        nh = real["non_hand_crops"]
        print(f"  non-hand crops: {nh['crops']}, presence max {nh['max_presence']:.2f}, "
              f"mean {nh['mean_presence']:.2f}, {nh['above_0.2']} above 0.2")


def _write_overlays(path: Path, rows: list[dict], options, columns: int = 3) -> None:
    """Per real frame: the frame with the hand's cube and skeleton (green label) and the non-hand crop centres
    with their presence (red)."""
    import cv2

    from handtrack.app.commands.eval_tracker import write_contact_sheet
    from handtrack.inference.camera import project
    from handtrack.inference.draw import colorize_depth, draw_cube, draw_skeleton

    tiles = []
    for row in rows:
        r, K, depth = row["result"], row["intrinsics"], row["depth_mm"]
        img = colorize_depth(depth, 300.0, 1500.0)
        if r.centre_mm is not None:
            draw_cube(img, r.centre_mm, 250.0, K)
            draw_skeleton(img, r.uv, radius=3, thickness=2)
        for c, p in zip(row.get("non_hand_centres", []), row.get("non_hand_presence", [])):
            u, v = np.round(project(np.asarray(c), K)).astype(int)
            cv2.circle(img, (int(u), int(v)), 6, (0, 0, 255), 2)
            cv2.putText(img, f"{p:.2f}", (int(u) + 8, int(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
        label = (f"{row['frame']}  presence {row['presence']:.2f}  {row['handedness']}"
                 + (f"  centre {row['centre_error_mm']:.0f} mm" if row["centre_error_mm"] is not None else "  no hand"))
        cv2.putText(img, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 255, 0), 1, cv2.LINE_AA)
        tiles.append(cv2.resize(img, (480, 360), interpolation=cv2.INTER_AREA))
    write_contact_sheet(path, tiles, columns)
