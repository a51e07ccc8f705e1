"""`handtrack bench`: measured speed, never asserted in tests. Results go to docs/benchmarks.md."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: the tracker (default), synth (synthetic data), gui, stream, record, "
                                       "soak (hours)",
                       description="Benchmarks. Without a TARGET: the tracker's per-stage latency, end-to-end FPS "
                                   "and peak memory. Pin to one core with `taskset -c 0` for single-core figures.")
    from handtrack.app.commands import bench_tracker

    bench_tracker.add_arguments(p)
    p.set_defaults(run=bench_tracker.run)
    bsub = p.add_subparsers(dest="bench_command", metavar="TARGET")
    s = bsub.add_parser("synth", help="samples/s of scene + render + sensor noise + crop")
    s.add_argument("--n", type=int, default=600, help="samples to time (after a warm-up)")
    s.add_argument("--sensor", default="primesense")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", type=Path, help="write the results here")
    s.set_defaults(run=run_synth)
    from handtrack.app.gui import bench as gui_bench  # Qt is imported only when `bench gui` runs

    gui_bench.add_parser(bsub)
    from handtrack.app.commands import bench_stream

    st = bsub.add_parser("stream", help="per-frame cost of stream messages and outputs; frame-to-subscriber latency")
    bench_stream.add_arguments(st)
    st.set_defaults(run=bench_stream.run)
    from handtrack.app.commands import bench_record

    rec = bsub.add_parser("record", help="session writer at 848x480, 90 FPS: drops, queue, MB/s, compression ratio")
    bench_record.add_arguments(rec)
    rec.set_defaults(run=bench_record.run)
    from handtrack.app.commands import bench_soak

    soak = bsub.add_parser("soak", help="hours of tracking with a recorder and a ZeroMQ subscriber: RSS and FPS "
                                        "over time")
    bench_soak.add_arguments(soak)
    soak.set_defaults(run=bench_soak.run)


def run_synth(args: argparse.Namespace) -> int:
    import cv2

    from handtrack.inference.report import machine_info, write_json
    from handtrack.training.synth.generator import SynthConfig, make_sample
    from handtrack.training.synth.pose_prior import PosePrior

    cv2.setNumThreads(1)
    config = SynthConfig(sensor=args.sensor, seed=args.seed)
    prior = PosePrior.load()
    for i in range(5):  # warm-up: compiles the render kernel (cached on disk afterwards)
        make_sample(10_000_000 + i, config, prior)
    timing: dict[str, float] = {}
    start = time.perf_counter()
    for i in range(args.n):
        make_sample(i, config, prior, timing)
    elapsed = time.perf_counter() - start
    pipeline = sum(timing[k] for k in ("render", "noise", "crop"))
    # samples_per_s counts everything (pose prior, scene, render, noise, crop); the render + noise + crop part
    # alone is reported beside it.
    result = dict(target="synth", sensor=args.sensor, samples=args.n, seconds=round(elapsed, 3),
                  samples_per_s=round(args.n / elapsed, 1),
                  render_noise_crop_samples_per_s=round(args.n / pipeline, 1),
                  ms_per_sample={k: round(1000 * v / args.n, 3) for k, v in timing.items()},
                  **machine_info())
    print(f"synth {args.sensor}: {result['samples_per_s']} samples/s end to end "
          f"({result['render_noise_crop_samples_per_s']} render+noise+crop) on {result['cores_usable']} usable core(s); "
          + ", ".join(f"{k} {v} ms" for k, v in result["ms_per_sample"].items()))
    if args.json:
        write_json(args.json, result)
    return 0
