"""`handtrack eval tracker`: the whole runtime tracker, finding the hand by itself, on the real frames in
../shared/data (the NYU test frame and the SR305 frames), with an overlay figure to look at.
Registered by app/commands/eval.py (TARGETS)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from handtrack.app.commands.eval_args import add_data, add_model, add_outputs, add_target, print_written
from handtrack.inference.errors import HandtrackError


def add_tracker(targets) -> None:
    p = add_target(targets, "tracker", run_tracker,
                   help="the tracker (hand finding + pose, no ground truth) on the real frames")
    add_model(p)
    p.add_argument("--refine-passes", type=int, default=0, help="extra pose passes re-centred on the predicted palm")
    p.add_argument("--no-centre-refine", action="store_true", help="use the localiser's centre as it is")
    p.add_argument("--no-finder", action="store_true",
                   help="the nearest-object rule alone, presence from the plausibility (for comparison)")
    p.add_argument("--demo-frames", type=int, default=200, help="demo frames scored against their ground truth")
    add_data(p, holding="nyu/ and realsense_sr305/")
    add_outputs(p, json="the results", png="the overlays of every frame")


def run_tracker(args: argparse.Namespace) -> int:
    """Run the runtime tracker on the real NYU frame (crop-centre distance to the labelled palm, 14-joint error)
    and on every SR305 frame (hand found on the annotated palm, presence, plausibility). Each frame is tracked
    from scratch."""
    from handtrack.inference.report import write_json
    from handtrack.inference.tracker import HandTracker, TrackerOptions
    from handtrack.training.model_eval import eval_tracker_demo, eval_tracker_real

    for sub in ("nyu/test_depth_1_0000001.png", "realsense_sr305"):
        if not (args.data / sub).exists():
            raise HandtrackError(f"no {sub} under {args.data}; pass --data DIR (the folder holding nyu/ and "
                                 "realsense_sr305/)")
    options = TrackerOptions(model=args.model, refine_passes=args.refine_passes, smoothing=None,
                             centre_refine=not args.no_centre_refine, finder=not args.no_finder)
    probe = HandTracker(options)
    cube_mm, refiner = probe.cube_mm, probe.centre_model is not None
    # Without the presence net the tracker's presence is the plausibility itself: one column then, not two.
    presence_net = probe.presence_model is not None
    r = eval_tracker_real(options, args.data)
    demo = eval_tracker_demo(options, args.demo_frames) if args.demo_frames > 0 else None
    nyu, sr305 = r["nyu"], r["sr305"]
    found = sum(row["hand_found"] for row in sr305)
    out = {"benchmark": "tracker_on_real_frames", "model": args.model, "refine_passes": args.refine_passes,
           "centre_refiner": refiner, "presence_from": "presence net" if presence_net else "plausibility",
           "demo": demo,
           "nyu": {"present": nyu["present"], "presence": nyu["presence"],
                   "centre_error_mm": nyu.get("centre_error_mm"),
                   **({"joint_error": nyu["summary"].to_dict()} if "summary" in nyu else {})},
           "sr305": {"frames": len(sr305), "hand_found": found,
                     "mean_plausibility": float(np.mean([row.get("plausibility", 0.0) for row in sr305])),
                     "per_frame": [{k: row.get(k) for k in ("frame", "present", "presence", "plausibility",
                                                            "hand_found", "palm_px", "palm_dz_mm")}
                                   for row in sr305]}}
    print(f"tracker: {args.model}, centre refiner {'on' if refiner else 'off'}, a pass re-centred on the predicted "
          f"palm when a hand is found anew, {args.refine_passes} more on every frame; no ground-truth centre; "
          + ("presence: the presence net's p(hand)" if presence_net else "no presence net: presence = plausibility"))
    if demo:
        print(f"  demo, {demo['frames']} frames: localiser centre {demo['localiser_centre_error_mm']['mean']:.1f} mm "
              f"from the palm, crop centre {demo['crop_centre_error_mm']['mean']:.1f} mm, "
              f"21-joint error {demo['joint_error_mm']['mean']:.1f} mm (median "
              f"{demo['joint_error_mm']['median']:.1f}), missed {demo['missed']}")
    if "summary" in nyu:
        print(f"  NYU frame 1: crop centre {nyu['centre_error_mm']:.1f} mm from the labelled palm; "
              f"14-joint mean error {nyu['summary'].mean_error_mm:.2f} mm; "
              f"{'presence' if presence_net else 'plausibility'} {nyu['presence']:.2f}")
    else:
        print("  NYU frame 1: no hand found")
    for row in sr305:
        where = (f"{row['palm_px']:5.1f} px / {row['palm_dz_mm']:5.1f} mm from the annotated palm"
                 if "palm_px" in row else "no hand")
        presence = f"presence {row['presence']:.2f}  " if presence_net else ""
        print(f"  {row['frame']:<22} found {'yes' if row['hand_found'] else 'NO ':<4} {where}   "
              f"{presence}plausibility {row.get('plausibility', 0.0):.2f}")
    print(f"  SR305: hand found on {found}/{len(sr305)} frames, mean plausibility "
          f"{out['sr305']['mean_plausibility']:.3f}")
    if args.json:
        write_json(args.json, out)
    if args.png:
        _write_overlays(args.png, [nyu] + sr305, cube_mm)
    print_written(args.json, args.png)
    return 0


def _write_overlays(path: Path, rows: list[dict], cube_mm: float, columns: int = 3) -> None:
    """A contact sheet: per frame the full frame (half size) and a zoom on the hand, with the hand cube,
    the skeleton (coloured per finger) and, on NYU, the labelled joints as white dots."""
    import cv2

    from handtrack.inference.camera import project
    from handtrack.inference.draw import colorize_depth, draw_cube, draw_points, draw_skeleton

    tiles = []
    for row in rows:
        r, K, depth = row["result"], row["intrinsics"], row["depth_mm"]
        if r.centre_mm is not None:
            z = r.centre_mm[2]
            img = colorize_depth(depth, z - cube_mm / 2, z + cube_mm / 2)
            draw_cube(img, r.centre_mm, cube_mm, K)
            if "truth14_mm" in row:
                draw_points(img, project(row["truth14_mm"], K), radius=2)
            draw_skeleton(img, r.uv, radius=2, thickness=1)
            u, v = np.round(project(r.centre_mm, K)).astype(int)
        else:
            img, (u, v) = colorize_depth(depth), (K.width // 2, K.height // 2)
        half = 100  # zoom window: 200x200 px around the crop centre, shown at 1.2x
        padded = cv2.copyMakeBorder(img, half, half, half, half, cv2.BORDER_CONSTANT)
        zoom = cv2.resize(padded[v:v + 2 * half, u:u + 2 * half], (240, 240), interpolation=cv2.INTER_NEAREST)
        small = cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)
        tile = np.hstack([small, zoom])
        label = row["frame"] + ("" if r.present else "  (no hand)")
        if "summary" in row:
            label += f"  {row['summary'].mean_error_mm:.1f} mm"
        elif "plausibility" in row:
            label += f"  plaus {row['plausibility']:.2f}"
        cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    write_contact_sheet(path, tiles, columns)


def write_contact_sheet(path: Path, tiles: list[np.ndarray], columns: int) -> None:
    """Equal-sized BGR tiles in rows of `columns` (the last row padded with black), written as one image."""
    import cv2

    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet):
        raise HandtrackError(f"cannot write {path}")
