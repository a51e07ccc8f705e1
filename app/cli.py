"""`handtrack`: the command line. Each subcommand lives in app/commands/<name>.py with add_parser() and run()."""
from __future__ import annotations

import argparse
import importlib
import sys

from handtrack.inference.errors import HandtrackError

# name -> module under handtrack.app.commands; the order is the order of `handtrack --help`.
COMMANDS = ("data", "train", "finetune", "export", "eval", "bench", "stream", "record", "doctor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handtrack",
        description="Real-time 3D hand tracking for depth cameras. Every subcommand has its own --help.")
    parser.add_argument("--version", action="version", version=f"handtrack {_version()}")
    parser.add_argument("--stream", action="store_true",
                        help="track headless and stream poses: `handtrack --stream [OPTIONS]` is `handtrack stream "
                             "[OPTIONS]` (see `handtrack stream --help`)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        importlib.import_module(f"handtrack.app.commands.{name}").add_parser(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("handtrack")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--stream"]:  # the spelling of the stream command
        argv[0] = "stream"
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except HandtrackError as exc:
        print(f"handtrack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("handtrack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `handtrack ... | head` closed our stdout: not an error worth a traceback
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
