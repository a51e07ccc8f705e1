"""Where stream messages go: stdout (NDJSON), a file (NDJSON or msgpack), a ZeroMQ PUB socket (JSON or msgpack).

    open_output("stdout")                      one JSON object per line on stdout (the default)
    open_output("poses.jsonl")                 the same lines in a file (.jsonl or .ndjson); "x.msgpack": msgpack
    open_output("zmq://127.0.0.1:5556")        a PUB socket bound there, one JSON message per ZeroMQ message
    open_output("zmq+msgpack://127.0.0.1:5556")  the same, msgpack-encoded

stdout and files are lossless: every message is written and flushed as one complete line, so a reader that stalls
holds the stream up (that is what a pipe is for). The ZeroMQ socket never holds it up: the PUB socket conflates
(ZMQ_CONFLATE), so each subscriber's queue holds only the newest message and a slow or stalled subscriber simply
gets the latest pose when it next reads; sends are non-blocking. PUB sockets drop without telling the sender, so a
subscriber counts drops as gaps in the messages' `seq`. Port 0 binds a free port (see `endpoint`).
"""
from __future__ import annotations

import logging
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path

import orjson

from handtrack.inference.errors import HandtrackError, require

LOG = logging.getLogger("handtrack")

ENCODINGS = ("json", "msgpack")
FILE_SUFFIXES = {".jsonl": "json", ".ndjson": "json", ".msgpack": "msgpack"}
OUTPUTS_HELP = "stdout, zmq://HOST:PORT, zmq+msgpack://HOST:PORT, or a file ending in .jsonl, .ndjson or .msgpack"
ZMQ_LINGER_MS = 500  # on close, pending messages get this long to leave; a stalled subscriber cannot hold exit up


class OutputClosed(Exception):
    """The reader of an output went away (stdout's pipe was closed): the stream ends, cleanly."""


def encode(message: dict, encoding: str) -> bytes:
    """A message as bytes: compact JSON or msgpack. JSON goes through orjson, five times faster than the standard
    library on a hand message (the stream's per-frame budget is 0.2 ms). orjson writes NaN as null, which is
    why `build_message` never puts a NaN into a message."""
    if encoding == "json":
        return orjson.dumps(message)
    if encoding == "msgpack":
        return require("msgpack", pip="msgpack", feature="msgpack output").packb(message)
    raise ValueError(f"unknown encoding {encoding!r}")


class Output(ABC):
    """One destination. `send` takes the message already encoded as `encoding`."""

    encoding = "json"

    def __init__(self, name: str):
        self.name = name
        self.sent = 0
        self.dropped = 0

    @abstractmethod
    def send(self, payload: bytes) -> None:
        """Deliver one message; HandtrackError when the output failed, OutputClosed when its reader left."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release; safe to call twice."""


class StdoutOutput(Output):
    def __init__(self):
        super().__init__("stdout")
        self._closed = False

    def send(self, payload: bytes) -> None:
        if self._closed:
            raise OutputClosed("stdout was closed by its reader")
        stream = sys.stdout
        try:
            if hasattr(stream, "buffer"):
                stream.buffer.write(payload + b"\n")
            else:  # a text-only stdout (a test's capture): the payload is JSON, i.e. UTF-8 text
                stream.write(payload.decode() + "\n")
            stream.flush()  # one line at a time: the reader of a pipe sees each message when it is made
        except BrokenPipeError:
            self._closed = True
            _silence_stdout()
            raise OutputClosed("stdout was closed by its reader") from None
        except OSError as exc:  # stdout redirected to a full disk (or /dev/full): nothing more can be written
            self._closed = True
            _silence_stdout()  # Python's own flush at exit would fail again, with a traceback
            raise HandtrackError(f"cannot write to stdout: {exc.strerror or exc}") from None
        self.sent += 1

    def close(self) -> None:
        if not self._closed:
            try:
                sys.stdout.flush()
            except (OSError, ValueError):
                _silence_stdout()
            self._closed = True


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so Python's own flush at exit does not print a BrokenPipeError traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class FileOutput(Output):
    def __init__(self, path: Path, encoding: str):
        super().__init__(str(path))
        self.encoding = encoding
        self.path = path
        self._separator = b"\n" if encoding == "json" else b""  # msgpack objects delimit themselves
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "wb")
        except OSError as exc:
            raise HandtrackError(f"cannot write {path}: {exc.strerror or exc}") from None

    def send(self, payload: bytes) -> None:
        try:
            self._file.write(payload + self._separator)
            self._file.flush()  # lines already written stay complete whatever happens to the process later
        except OSError as exc:
            raise HandtrackError(f"cannot write {self.path}: {exc.strerror or exc} "
                                 f"(after {self.sent} complete messages)") from None
        self.sent += 1

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.close()
        except OSError as exc:
            raise HandtrackError(f"cannot write {self.path}: {exc.strerror or exc}") from None


class ZmqOutput(Output):
    def __init__(self, host: str, port: int, encoding: str):
        zmq = require("zmq", pip="pyzmq", feature="ZeroMQ output")
        scheme = "zmq+msgpack" if encoding == "msgpack" else "zmq"
        super().__init__(f"{scheme}://{host}:{port}")
        self.encoding = encoding
        self._zmq = zmq
        self._context = zmq.Context()
        self.socket = self._context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.CONFLATE, 1)  # per subscriber: keep only the newest message
        self.socket.setsockopt(zmq.LINGER, ZMQ_LINGER_MS)
        ipv6 = host.startswith("[") and host.endswith("]")
        if ipv6:  # "[::1]": ZeroMQ takes IPv6 addresses in brackets once the socket allows IPv6
            self.socket.setsockopt(zmq.IPV6, 1)
        if host in ("0.0.0.0", "*", "[::]"):
            LOG.warning("publishing on every network interface (%s): anyone on the network can read the poses; "
                        "use 127.0.0.1 to keep them on this machine", host)
        try:
            self.socket.bind(f"tcp://{host}:{port}")
        except zmq.ZMQError as exc:
            self.close()
            raise HandtrackError(f"cannot publish on {self.name}: {exc}") from None
        # The address actually bound ("tcp://127.0.0.1:41234"): a free port when port 0 was asked for.
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.name = scheme + self.endpoint[len("tcp"):]

    def send(self, payload: bytes) -> None:
        try:
            self.socket.send(payload, self._zmq.NOBLOCK)
        except self._zmq.Again:  # a PUB socket drops rather than block; counted in case it ever says so
            self.dropped += 1
            return
        self.sent += 1

    def close(self) -> None:
        if not self.socket.closed:
            self.socket.close()
        if not self._context.closed:
            self._context.term()  # waits at most ZMQ_LINGER_MS for messages still queued


def open_output(spec: str) -> Output:
    """The output `spec` names (see the module docstring); one-line HandtrackError if it cannot be opened."""
    if spec in ("stdout", "-"):
        return StdoutOutput()
    scheme, sep, rest = spec.partition("://")
    if sep and scheme in ("zmq", "zmq+json", "zmq+msgpack"):
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not port.isdigit() or int(port) > 65535:
            raise HandtrackError(f"output {spec!r}: expected {scheme}://HOST:PORT, e.g. {scheme}://127.0.0.1:5556")
        return ZmqOutput(host, int(port), "msgpack" if scheme == "zmq+msgpack" else "json")
    path = Path(spec).expanduser()
    encoding = FILE_SUFFIXES.get(path.suffix.lower())
    if sep or encoding is None:
        raise HandtrackError(f"unknown output {spec!r}: use {OUTPUTS_HELP}")
    return FileOutput(path, encoding)
