"""`handtrack record`: record an unlabelled session (lossless depth, calibration, timestamps, device info, and the
tracker's own predictions as pseudo-labels) from one or more sources into one MCAP file. See docs/recording.md.

    handtrack record --source demo --frames 300 --out S.mcap
    handtrack record --source realsense:123 --source realsense:456 --out two_views.mcap --no-track

Every frame a source delivers is tracked (unless --no-track) and handed to the session writer, whose own thread
does the disk work. Ctrl-C or SIGTERM end the recording cleanly: the file is finished and the summary printed.
A full disk stops the recording with a one-line error (exit code 2); what was recorded before stays readable.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from handtrack.app.commands.source_args import add_source_options, source_options
from handtrack.inference.errors import HandtrackError
from handtrack.inference.recording.writer import COMPRESSIONS
from handtrack.models_onnx import DEFAULT_MODEL

SOURCE_BUFFER_FRAMES = 16  # frames a source may hold while the loop is busy: absorbs jitter, never grows


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record an unlabelled session (depth, calibration, predictions) to MCAP",
                       description="Record depth frames from one or more sources into one session file (MCAP, "
                                   "readable in Foxglove; replay it with --source SESSION). Ctrl-C stops.")
    p.add_argument("--source", action="append", required=True, metavar="SPEC",
                   help="a source spec as for every command (demo, realsense[:SERIAL], openni, a recording, ...); "
                        "repeat for several cameras: they become cam0, cam1, ... of the session")
    add_source_options(p)
    p.add_argument("--out", required=True, type=Path, metavar="SESSION",
                   help="the session file to write (by convention .mcap); refuses to replace an existing file")
    p.add_argument("--frames", type=int, help="stop after this many frames from every source")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    track = p.add_mutually_exclusive_group()
    track.add_argument("--model", default=DEFAULT_MODEL, help="tracker model recorded as predictions")
    track.add_argument("--no-track", action="store_true", help="record depth only, no predictions")
    p.add_argument("--hand", choices=("auto", "right", "left"), default="auto",
                   help="the hand to track; auto: the hand finder's detector says which (default)")
    p.add_argument("--compression", choices=COMPRESSIONS, default="auto",
                   help="MCAP chunk compression; auto: zstd unless the cameras' pixel rate needs the faster lz4")
    p.add_argument("--overwrite", action="store_true", help="replace SESSION if it exists")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from handtrack.inference.recording import SessionWriter
    from handtrack.inference.sources import open_source
    from handtrack.inference.sources.loop import stop_on_signals

    if args.frames is not None and args.frames < 1:
        raise HandtrackError("--frames must be at least 1")
    if args.seconds is not None and not args.seconds > 0:
        raise HandtrackError("--seconds must be positive")
    empty = [spec for spec in args.source if not spec.strip()]
    if empty:  # an empty spec would otherwise name the current folder
        raise HandtrackError("--source needs a source spec (demo, realsense, a recording, a folder); got an empty one")
    cameras = [f"cam{i}" for i in range(len(args.source))]
    sources = []
    writer = None
    stop = threading.Event()
    try:
        with ExitStack() as stack:
            # From here on Ctrl-C and SIGTERM end the recording cleanly: the file is finished, the summary printed.
            stack.enter_context(stop_on_signals(stop))
            for spec in args.source:
                source = open_source(spec, buffer_frames=SOURCE_BUFFER_FRAMES, **source_options(args))
                sources.append(source)
                stack.callback(source.disconnect)
                source.connect()
            trackers = None if args.no_track else [_tracker(args) for _ in sources]
            writer = SessionWriter(args.out, {cam: s.info for cam, s in zip(cameras, sources)},
                                   model=None if args.no_track else args.model, compression=args.compression,
                                   overwrite=args.overwrite,
                                   metadata={"sources": json.dumps(args.source), "command": " ".join(sys.argv)})
            stack.callback(writer.close)  # after the loop, before the sources are released
            how = _record(sources, cameras, trackers, writer, stop, args)
    except KeyboardInterrupt:  # a second signal: stop at once (the writer and sources are still closed above)
        how = "stopped"
    _summary(writer, sources, cameras, args.out, how)
    if writer is not None and writer.error:
        raise HandtrackError(writer.error)
    return 0


def _record(sources, cameras, trackers, writer, stop: threading.Event, args) -> str:
    """Every source's frames, in order, tracked and written, through the sources' one loop; returns why it
    ended. --seconds is a timer that sets `stop` like a signal does, so a stalled camera cannot hold it up."""
    from handtrack.inference.sources.loop import FrameLoop

    loop = FrameLoop(sources, stop, limit=args.frames)
    start = last_progress = time.monotonic()
    timer = None
    if args.seconds is not None:
        timer = threading.Timer(args.seconds, stop.set)
        timer.daemon = True
        timer.start()
    try:
        for i, frame in loop:
            result = trackers[i].process(frame) if trackers else None
            writer.write(frame, result, camera=cameras[i])
            if writer.error:
                return "stopped by an error"
            now = time.monotonic()
            if now - last_progress >= 1.0 and sys.stderr.isatty():
                last_progress = now
                print(f"\rrecording: {writer.stats['frames']} frames, {now - start:.0f} s, "
                      f"{writer.stats['bytes'] / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)
    finally:
        if timer is not None:
            timer.cancel()
    if loop.ended_by != "stop":
        return "done"
    return "time up" if args.seconds is not None and time.monotonic() - start >= args.seconds else "stopped"


def _tracker(args):
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    return HandTracker(TrackerOptions(model=args.model, hand=args.hand))


def _summary(writer, sources, cameras, out: Path, how: str) -> None:
    if writer is None:
        return
    s = writer.stats
    ratio = s["raw_bytes"] / s["bytes"] if s["bytes"] else 0.0
    per_camera = ", ".join(f"{cam}: {n}" for cam, n in s["per_camera"].items())
    source_drops = sum(src.stats.get("dropped", 0) for src in sources)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"recorded {s['frames']} frames ({per_camera}) in {s['seconds']:.1f} s to {out} ({how}): "
          f"{s['bytes'] / 1e6:.1f} MB, {writer.compression} compression {ratio:.2f}x of "
          f"{s['raw_bytes'] / 1e6:.1f} MB raw depth; "
          f"dropped {s['dropped']} (writer queue) + {source_drops} (sources)", file=sys.stderr)
