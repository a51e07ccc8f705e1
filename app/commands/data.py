"""`handtrack data`: make synthetic training data and the pose prior it samples from."""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

from handtrack.inference.errors import HandtrackError
from handtrack.inference.report import write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="synthetic data: render shards (synth), detector frames (frames), the fine-tuning "
                                    "user (user-domain), compare with real crops (compare), fit the pose prior "
                                    "(fit-prior)",
                       description="Synthetic training data.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = dsub.add_parser("synth", help="render deterministic shards of synthetic depth crops")
    s.add_argument("--n", type=int, required=True, help="number of samples (instants)")
    s.add_argument("--out", type=Path, required=True, help="output folder for shard_*.npz and meta.json")
    s.add_argument("--sensor", default="primesense", help="sensor model: primesense, realsense, sr305, clean")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--views", type=int, default=1, help="cameras per instant (>1 for view prediction)")
    s.add_argument("--cube", type=float, default=250.0, help="crop cube edge in mm")
    s.add_argument("--size", type=int, default=128, help="crop size in pixels")
    s.add_argument("--jitter", type=float, default=5.0,
                   help="crop-centre noise, mm per axis (Gaussian); larger for training the centre refiner")
    s.add_argument("--size-factors", type=float, nargs="+", default=[1.0], metavar="F",
                   help="hand sizes: the prior's size times one of these, drawn per sample (e.g. 0.85 1.15)")
    s.add_argument("--shard-size", type=int, default=1000)
    s.add_argument("--workers", type=int, default=1, help="processes (the output does not depend on it)")
    s.add_argument("--preview", type=Path, help="also write a PNG grid of the first samples")
    s.set_defaults(run=run_synth)

    fr = dsub.add_parser("frames", help="render synthetic full frames and crops for the hand detector and presence net",
                         description="Synthetic full frames (bodies, arms, clutter, walls, left and right hands, "
                                     "frames without a hand, wrong depth scales) at the detector's resolution, "
                                     "with hand / not-a-hand crops cut from them (training/detect/frames.py).")
    fr.add_argument("--n", type=int, required=True, help="number of frames")
    fr.add_argument("--out", type=Path, required=True, help="output folder for frames_*.npz")
    fr.add_argument("--seed", type=int, default=0)
    fr.add_argument("--shard-size", type=int, default=500)
    fr.add_argument("--workers", type=int, default=1, help="processes (the output does not depend on it)")
    fr.set_defaults(run=run_frames)

    u = dsub.add_parser("user-domain", help="the fine-tuning experiment's user: SR305 frames of an unusual hand, "
                                            "gestures and sleeve, labels kept aside",
                        description="Render the user of training/finetune/user_domain.py into DIR/session (record "
                                    "it: handtrack record --source DIR/session --out S.mcap) and DIR/heldout (score "
                                    "on it: handtrack eval finetune --heldout DIR/heldout), each a folder of SR305 "
                                    "depth PNGs with labels.npz beside them.")
    u.add_argument("--out", type=Path, required=True, metavar="DIR")
    u.add_argument("--frames", type=int, default=300, help="frames per part (at most 300)")
    u.set_defaults(run=run_user_domain)

    c = dsub.add_parser("compare", help="picture of real NYU/SR305 crops beside synthetic crops of each sensor")
    c.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared real data folder")
    c.add_argument("--out", type=Path, default=Path("runs/real_vs_synth.png"),
                   help="the figure to write (default runs/real_vs_synth.png; the README's is docs/figures/)")
    c.set_defaults(run=run_compare)

    f = dsub.add_parser("fit-prior", help="fit the hand model to the NYU poses and rebuild the pose prior",
                        description="Calibrate where the NYU points sit on the hand model, fit all NYU poses and "
                                    "fit the pose prior to them. Writes under runs/prior/ unless told otherwise; "
                                    "to replace the packaged files, name them: --out training/synth/pose_prior.npz "
                                    "--keypoints inference/handmodel/keypoints_nyu.json.")
    f.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with nyu/test_joints36_uvd.npz")
    f.add_argument("--out", type=Path, default=Path("runs/prior/pose_prior.npz"), metavar="FILE",
                   help="the prior to write (default runs/prior/pose_prior.npz)")
    f.add_argument("--keypoints", type=Path, default=Path("runs/prior/keypoints_nyu.json"), metavar="FILE",
                   help="the calibrated NYU keypoints to write (default runs/prior/keypoints_nyu.json)")
    f.add_argument("--json", type=Path, help="write the fit report here")
    f.set_defaults(run=run_fit_prior)


def _generate(k: int, out: Path, n: int, shard_size: int, config) -> int:
    from handtrack.training.synth.generator import generate_shard
    generate_shard(out, k, n, shard_size, config)
    return min(shard_size, n - k * shard_size)


def run_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from handtrack.training.synth.generator import SynthConfig, generate_shard
    from handtrack.training.synth.pose_prior import PosePrior
    from handtrack.training.synth.sensors import SENSORS

    if args.sensor not in SENSORS:
        raise HandtrackError(f"unknown sensor '{args.sensor}'; choose one of {', '.join(sorted(SENSORS))}")
    if args.n <= 0 or args.views <= 0 or args.shard_size <= 0:
        raise HandtrackError("--n, --views and --shard-size must be positive")
    if not all(0.5 <= f <= 2.0 for f in args.size_factors):
        raise HandtrackError("--size-factors must lie in [0.5, 2] (a hand half or twice the prior's size)")
    config = SynthConfig(sensor=args.sensor, cube_mm=args.cube, size=args.size, views=args.views, seed=args.seed,
                         jitter_mm=args.jitter, size_factors=tuple(args.size_factors))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HandtrackError(f"cannot create {args.out}: {exc.strerror}") from exc
    n_shards = (args.n + args.shard_size - 1) // args.shard_size
    start = time.perf_counter()
    with tqdm(total=args.n, unit="sample", desc=f"synth {args.sensor}", file=sys.stderr) as bar:
        try:
            if args.workers <= 1:
                prior = PosePrior.load()
                for k in range(n_shards):
                    generate_shard(args.out, k, args.n, args.shard_size, config, prior, progress=bar.update)
            else:
                from multiprocessing import get_context
                with get_context("spawn").Pool(args.workers) as pool:
                    job = partial(_generate, out=args.out, n=args.n, shard_size=args.shard_size, config=config)
                    for done in pool.imap_unordered(job, range(n_shards)):
                        bar.update(done)
        except OSError as exc:  # a full disk or a vanished folder: shards already written stay valid
            raise HandtrackError(f"writing shards to {args.out} failed: {exc}") from exc
    elapsed = time.perf_counter() - start
    meta = dict(command=" ".join(["handtrack"] + sys.argv[1:]) if sys.argv else "", n=args.n, shards=n_shards,
                config=config.__dict__, seconds=round(elapsed, 2))
    try:
        write_json(args.out / "meta.json", meta)
    except OSError as exc:
        raise HandtrackError(f"the shards are written, but {args.out / 'meta.json'} is not: {exc}") from exc
    print(f"wrote {args.n} samples x {args.views} view(s) in {n_shards} shard(s) to {args.out} "
          f"({args.n / elapsed:.0f} samples/s)")
    if args.preview:
        from handtrack.training.synth.preview import save_preview
        save_preview(args.out, args.preview)
        print(f"preview: {args.preview}")
    return 0


def _generate_frames(k: int, out: Path, n: int, shard_size: int, seed: int) -> int:
    from handtrack.training.detect.data import write_shard
    write_shard(out, k, n, shard_size, seed)
    return min(shard_size, n - k * shard_size)


def run_frames(args: argparse.Namespace) -> int:
    from multiprocessing import get_context

    from tqdm import tqdm

    if args.n <= 0 or args.shard_size <= 0 or args.workers <= 0:
        raise HandtrackError("--n, --shard-size and --workers must be positive")
    n_shards = (args.n + args.shard_size - 1) // args.shard_size
    start = time.perf_counter()
    job = partial(_generate_frames, out=args.out, n=args.n, shard_size=args.shard_size, seed=args.seed)
    with tqdm(total=args.n, unit="frame", desc="frames", file=sys.stderr) as bar:
        try:
            if args.workers == 1:
                for k in range(n_shards):
                    bar.update(job(k))
            else:
                with get_context("spawn").Pool(args.workers) as pool:
                    for done in pool.imap_unordered(job, range(n_shards)):
                        bar.update(done)
        except OSError as exc:
            raise HandtrackError(f"writing frames to {args.out} failed: {exc}") from exc
    elapsed = time.perf_counter() - start
    print(f"wrote {args.n} frames in {n_shards} shard(s) to {args.out} ({args.n / elapsed:.1f} frames/s)")
    return 0


def run_user_domain(args: argparse.Namespace) -> int:
    from handtrack.training.finetune.user_domain import write_user_frames

    for part in ("session", "heldout"):
        folder = write_user_frames(args.out / part, part, args.frames)
        print(f"wrote {folder} ({min(args.frames, 300)} frames + labels.npz)")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from handtrack.training.synth.compare import make_figure
    if not (args.data / "nyu").is_dir():
        raise HandtrackError(f"no real data at {args.data} (expected nyu/ and realsense_sr305/ there)")
    report = make_figure(args.data, args.out)
    print(f"wrote {args.out}; NYU frame fit residual {report['nyu_fit_residual_mm']:.2f} mm")
    return 0


def run_fit_prior(args: argparse.Namespace) -> int:
    from handtrack.training.synth.pose_prior import NYU_JOINTS_FILE, build_prior
    if not (args.data / NYU_JOINTS_FILE).is_file():
        raise HandtrackError(f"no {NYU_JOINTS_FILE} under {args.data}; pass --data DIR (the shared data folder)")
    for path in (args.out, args.keypoints):
        path.parent.mkdir(parents=True, exist_ok=True)
    report = build_prior(args.data, args.out, keypoints_path=args.keypoints)
    if args.json:
        write_json(args.json, report)
    print(json.dumps(report, indent=2, default=float))
    return 0
