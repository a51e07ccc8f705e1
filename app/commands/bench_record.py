"""`handtrack bench record`: can the session writer keep up with a RealSense D4xx at 848x480, 90 FPS?

The frames are realistic and made up front, so the figure is the writer's alone: the demo scene rendered at 848x480
through the D435 intrinsics, passed through the project's RealSense sensor model (disparity noise, edge dropout,
shadows, holes; training/synth/sensors.py) and quantised to the D4xx default depth unit (1 mm), so each frame is
what the RealSense source delivers: uint16 units times the unit, stored as 16UC1. Sensor noise matters here: a clean
render would compress far better than real depth. A few dozen distinct frames are cycled (every frame is compressed
on its own, so repeating them does not flatter the ratio).

They are offered at the target rate for the given time, as a camera would (the offering loop never waits on the
writer); the writer's own figures say whether it kept up: frames dropped (queue full), the queue's high-water
mark, the fraction of the time its thread was busy, MB/s written and the compression ratio. The written session is
read back at the end, every frame compared bit-exact with the one offered.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from handtrack.inference.recording.writer import COMPRESSIONS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="how long to record")
    p.add_argument("--fps", type=float, default=90.0)
    p.add_argument("--distinct", type=int, default=30, help="distinct frames to make and cycle")
    p.add_argument("--compression", choices=COMPRESSIONS, default="auto",
                   help="MCAP chunk compression; auto: zstd unless the cameras' pixel rate needs the faster lz4")
    p.add_argument("--dir", type=Path, help="where to write the session (default: a temporary folder, deleted)")
    p.add_argument("--json", type=Path, help="write the results here")


def realsense_like_frames(n: int) -> list:
    """n DepthFrames at 848x480 as the RealSense source delivers them (see the module docstring)."""
    from handtrack.inference.camera import D435_848
    from handtrack.inference.sources import open_source
    from handtrack.training.synth.sensors import REALSENSE, apply_sensor

    unit = np.float32(REALSENSE.depth_unit_mm or 1.0)
    rng = np.random.default_rng(0)
    frames = []
    with open_source("demo", realtime=False, intrinsics=D435_848, frames=n) as source:
        for frame in source:
            noisy = apply_sensor(frame.depth_mm, D435_848, REALSENSE, rng)
            units = np.clip(np.rint(noisy / unit), 0, 65535).astype(np.uint16)
            frame.depth_mm = units.astype(np.float32) * unit
            frame.joints_xyz = None
            frame.meta = {"depth_unit_mm": float(unit)}
            frames.append(frame)
    return frames


def run(args: argparse.Namespace) -> int:
    from handtrack.inference.report import machine_info, write_json
    from handtrack.inference.frame import META_HOST_TIME, META_INDEX, META_SENSOR_TIME, DepthFrame, StreamInfo
    from handtrack.inference.recording import META_RECORDED_INDEX, SessionReader, SessionWriter

    frames = realsense_like_frames(args.distinct)
    info = StreamInfo(frames[0].intrinsics, args.fps, "RealSense-like frames (bench record)", frames[0].meta["depth_unit_mm"])
    n = int(round(args.seconds * args.fps))
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "bench.mcap"
        writer = SessionWriter(path, info, compression=args.compression, queue_frames=64)
        late = 0
        start = time.monotonic()
        for i in range(n):
            due = start + i / args.fps
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 1.0 / args.fps:
                late += 1  # the offering loop itself fell behind (a busy machine), counted apart from drops
            src = frames[i % len(frames)]
            writer.write(DepthFrame(src.depth_mm, src.intrinsics, frame_id=str(i),
                                    meta={**src.meta, META_HOST_TIME: time.monotonic(), META_INDEX: i,
                                          META_SENSOR_TIME: i / args.fps}))
        offered_s = time.monotonic() - start
        writer.close()
        s = writer.stats
        read_back, exact = 0, True
        with SessionReader(path) as reader:  # every frame read back and compared with the one offered
            for frame in reader.frames():
                offered = frames[frame.meta[META_RECORDED_INDEX] % len(frames)]
                exact &= bool(np.array_equal(frame.depth_mm, offered.depth_mm))
                read_back += 1
    result = dict(
        target="record", width=info.intrinsics.width, height=info.intrinsics.height, fps_target=args.fps,
        compression=writer.compression, frames_offered=n, frames_written=s["frames"], dropped=s["dropped"],
        offer_late=late, offered_fps=round(n / offered_s, 2),
        written_fps=round(s["frames"] / offered_s, 2), queue_max=s["queue_max"], queue_size=64,
        writer_busy_fraction=round(s["busy_s"] / offered_s, 3),
        writer_ms_per_frame=round(1000 * s["busy_s"] / max(1, s["frames"]), 3),
        mb_per_s=round(s["bytes"] / 1e6 / offered_s, 2), raw_mb_per_s=round(s["raw_bytes"] / 1e6 / offered_s, 2),
        compression_ratio=round(s["raw_bytes"] / s["bytes"], 3) if s["bytes"] else None,
        file_mb=round(s["bytes"] / 1e6, 2), frames_read_back=read_back, read_back_bit_exact=exact,
        error=s["error"], **machine_info())
    print(f"record {result['width']}x{result['height']} @ {args.fps:g} FPS, {writer.compression}: "
          f"{s['frames']}/{n} frames written, {s['dropped']} dropped, queue max {s['queue_max']}/64, "
          f"writer busy {100 * result['writer_busy_fraction']:.0f}% ({result['writer_ms_per_frame']} ms/frame), "
          f"{result['mb_per_s']} MB/s written, compression {result['compression_ratio']}x; "
          f"read back {read_back} frames, all bit-exact: {exact}")
    if args.json:
        write_json(args.json, result)
    return 0 if s["error"] is None else 2
