"""`handtrack stream` (also `handtrack --stream`): track headless and publish every frame's hand to other programs.

Data goes to the outputs (stdout by default: one JSON object per line), logs to stderr. SIGINT/SIGTERM end the
stream cleanly with every output flushed; so do --frames N, the end of a recording, and stdout's reader leaving.
The message format is docs/stream.md and app/stream/hand_frame.v1.schema.json.
"""
from __future__ import annotations

import argparse
import threading
from contextlib import ExitStack
from pathlib import Path

from handtrack.app.commands.source_args import add_source_options, source_options
from handtrack.inference.errors import HandtrackError
from handtrack.models_onnx import DEFAULT_MODEL


def add_parser(sub) -> None:
    p = sub.add_parser("stream", help="track headless and stream the hand as JSON lines / ZeroMQ (also --stream)",
                       description="Track the hand in every frame of a source and publish one message per frame: "
                                   "newline-delimited JSON on stdout (default), JSON lines or msgpack files, "
                                   "ZeroMQ PUB sockets (JSON or msgpack, conflating: a slow subscriber gets the "
                                   "newest pose and never slows the tracker). Runs until SIGINT/SIGTERM, --frames "
                                   "N or the end of a recording. Logs go to stderr. Format: docs/stream.md.")
    p.add_argument("--source", default="demo",
                   help="demo (default), realsense[:SERIAL], openni[:URI], a recording (.bag, .db3, .oni, a "
                        "recorded session) or a dataset folder")
    add_source_options(p)
    p.add_argument("--unpaced", action="store_true",
                   help="for sources that keep time (demo, recorded sessions): every frame, as fast as the tracker "
                        "takes them, instead of at the camera's pace")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"shipped model name (default {DEFAULT_MODEL}) or a pose .onnx file")
    p.add_argument("--out", action="append", metavar="OUTPUT",
                   help="stdout (default), zmq://HOST:PORT, zmq+msgpack://HOST:PORT (port 0: any free port), "
                        "FILE.jsonl / FILE.ndjson / FILE.msgpack; repeat for several at once")
    p.add_argument("--frames", type=_positive, metavar="N", help="stop after N messages")
    p.add_argument("--hand", choices=("auto", "right", "left"), default="auto",
                   help="the hand to track; auto: the hand finder's detector says which (default)")
    p.add_argument("--no-finder", action="store_true",
                   help="find the hand with the nearest-object rule alone (no learned detector / presence net)")
    p.add_argument("--smoothing", choices=("on", "off"), default="on", help="One Euro filtering of the joints")
    p.add_argument("--calibration", type=Path, metavar="FILE",
                   help="extrinsics file (calibration/example_extrinsics.json): also send the joints in its base "
                        "frame")
    p.add_argument("--camera-frame", metavar="NAME",
                   help="name of the camera optical frame in the messages (default camera_depth_optical_frame, "
                        "or the calibration's camera_frame)")
    p.add_argument("--threads", type=_positive, default=1, help="onnxruntime threads (default 1)")
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from handtrack.app.stream import DEFAULT_CAMERA_FRAME, Stream, open_output
    from handtrack.app.stream.runner import log_to_stderr as log
    from handtrack.calibration.extrinsics import load_extrinsics
    from handtrack.inference.filters import OneEuroOptions
    from handtrack.inference.sources import open_source
    from handtrack.inference.sources.loop import stop_on_signals
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    extrinsics = load_extrinsics(args.calibration) if args.calibration else None
    camera_frame = args.camera_frame or (extrinsics.camera_frame if extrinsics else DEFAULT_CAMERA_FRAME)
    if extrinsics and camera_frame != extrinsics.camera_frame:
        raise HandtrackError(f"--camera-frame {camera_frame} differs from the calibration's camera_frame "
                             f"{extrinsics.camera_frame}")
    tracker = HandTracker(TrackerOptions(model=args.model, threads=args.threads, hand=args.hand,
                                         finder=not args.no_finder,
                                         smoothing=OneEuroOptions() if args.smoothing == "on" else None))
    stop = threading.Event()
    with ExitStack() as stack:
        stack.enter_context(stop_on_signals(stop))  # from here on a signal ends the stream cleanly
        options = source_options(args)
        source = open_source(args.source, **options)
        if args.unpaced and source.live:  # only paced sources (demo, sessions) take realtime; playback is unpaced
            source = open_source(args.source, realtime=False, **options)
        source = stack.enter_context(source)
        outputs = []
        for spec in args.out or ["stdout"]:
            output = open_output(spec)
            stack.callback(output.close)  # closed (flushed) before the source, in reverse order of opening
            outputs.append(output)
        info = source.info
        log(f"tracking {source.name} ({info.intrinsics.width}x{info.intrinsics.height}"
            + (f" at {info.fps:g} FPS" if info.fps else "") + f") with {args.model}, publishing to "
            + ", ".join(o.name for o in outputs))
        stream = Stream(tracker, outputs, camera_frame=camera_frame, extrinsics=extrinsics)
        summary = stream.run(source, args.frames, stop)
    log(summary.line())
    return 0
