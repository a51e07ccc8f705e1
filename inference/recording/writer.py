"""SessionWriter: records depth frames (and the tracker's predictions beside them) into an MCAP session.

    writer = SessionWriter(path, info=source.info)     # or {"cam0": info0, "cam1": info1} for several cameras
    writer.write(frame, result)                        # never blocks: hands the frame to the writer thread
    writer.stats                                       # frames, bytes, seconds, dropped, error, ...
    writer.close()                                     # finishes the file (index and summary); safe twice

Why it is shaped like this:
- The caller is a capture or tracking loop that must not wait on the disk, so `write()` only puts the frame on a
  bounded queue; a writer thread converts, encodes, compresses and writes it. When the queue is full (the disk is
  slower than the camera) the frame is dropped and counted, never buffered without bound.
- Crash safety: each frame's messages become one compressed MCAP chunk, written and flushed to the operating
  system before the next frame is taken. A process killed with SIGKILL therefore loses only the frames still in
  the queue (a fraction of a second), and the file it leaves is a valid MCAP prefix that the reader (reader.py)
  opens, reading every complete chunk. Nothing is fsync'ed: a power cut may lose what the OS had not yet written.
- A write error (full disk, vanished USB stick) stops the recording with a one-line `error` in `stats`; `write()`
  then returns False at once, so the caller's tracking goes on. What was written before stays readable.
- Depth is lossless: a frame that is an exact multiple of the source's depth unit (what every camera and
  PNG dataset delivers) is stored as its raw 16-bit units (16UC1); any other frame (the synthetic demo's float
  millimetres) as float32 millimetres (32FC1). Both read back bit-exact.
"""
from __future__ import annotations

import io
import json
import os
import platform
import queue
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..closing import ClosedByWith
from ..errors import HandtrackError, require
from ..frame import META_HOST_TIME, META_INDEX, META_SENSOR_FRAME, META_SENSOR_TIME, META_SOURCE, DepthFrame, StreamInfo
from . import messages as msg

FORMAT = "handtrack-session"
FORMAT_VERSION = "1"
SESSION_METADATA = "handtrack.session"
CAMERA_METADATA = "handtrack.camera."   # + camera id
DEFAULT_CAMERA = "cam0"
QUEUE_FRAMES = 64                        # ~0.7 s at 90 FPS: absorbs disk hiccups without growing without bound
COMPRESSIONS = ("auto", "zstd", "lz4", "none")
# "auto" picks zstd (ratio ~2.4 on noisy depth) unless the cameras deliver more pixels per second than this, then
# lz4 (~1.5, about 60 % of zstd's cost). zstd at the mcap package's fixed level costs ~25 ns per pixel in the
# writer thread: 848x480 at 90 FPS (37 Mpx/s) keeps it 92 % busy on an idle core of the build machine and let its
# queue fill with the tracker running beside it (docs/benchmarks.md); 640x480 at 30 FPS (9 Mpx/s) is ~25 %.
ZSTD_MAX_PIXELS_PER_S = 20e6
_CAMERA_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # usable inside a ROS topic name


def depth_pixels(depth_mm: np.ndarray, unit_mm: float | None) -> tuple[np.ndarray, str, float]:
    """(pixels, image encoding, depth unit): raw uint16 units if the frame is exactly representable so, else
    float32 millimetres. The check is exact (it multiplies back the way the camera sources do), so it never loses
    a bit either way."""
    from .depth_units import to_units

    depth = np.asarray(depth_mm)
    if unit_mm and depth.size:
        units = to_units(depth, unit_mm)
        if units is not None:
            return units, msg.DEPTH_U16, float(unit_mm)
    return np.asarray(depth, dtype=np.float32), msg.DEPTH_F32, 1.0


def choose_compression(compression: str, streams: dict[str, StreamInfo]) -> str:
    """The chunk compression to use: `compression` itself, or for "auto" the best ratio the writer keeps up with
    (a stream of unknown rate, a file being converted, is taken as light)."""
    if compression != "auto":
        return compression
    rate = sum(info.intrinsics.width * info.intrinsics.height * (info.fps or 0.0) for info in streams.values())
    return "lz4" if rate > ZSTD_MAX_PIXELS_PER_S else "zstd"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("handtrack")
    except PackageNotFoundError:
        return "unknown"


def _open_output(path: Path, overwrite: bool) -> io.BufferedWriter:
    """The output file; a seam for the tests that simulate a full disk."""
    return open(path, "wb" if overwrite else "xb")


class SessionWriter(ClosedByWith):
    def __init__(self, path: str | os.PathLike, info: StreamInfo | dict[str, StreamInfo], *, model: str | None = None,
                 compression: str = "auto", queue_frames: int = QUEUE_FRAMES, overwrite: bool = False,
                 metadata: dict[str, str] | None = None):
        """Open `path` (refusing an existing file unless `overwrite`) and start the writer thread.

        info: the StreamInfo of the one camera, or {camera id: StreamInfo} for several (ids like "cam0", "left").
        model: name of the tracker model whose predictions are recorded (stored with each prediction).
        metadata: extra strings for the session metadata record (e.g. the source specs, a note).
        Raises HandtrackError (one line) when the file cannot be created or written."""
        mcap_writer = require("mcap.writer", pip="mcap", feature="recording")
        if compression not in COMPRESSIONS:
            raise HandtrackError(f"unknown compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
        self.streams = self._streams(info)
        compression = self.compression = choose_compression(compression, self.streams)
        if compression == "zstd":
            require("zstandard", pip="zstandard", feature="zstd-compressed recording")
        if compression == "lz4":
            require("lz4.frame", pip="lz4", feature="lz4-compressed recording")
        self.path = Path(path)
        self.model = model or ""
        self.stats = {"frames": 0, "bytes": 0, "raw_bytes": 0, "seconds": 0.0, "dropped": 0, "skipped": 0,
                      "queue_max": 0, "busy_s": 0.0, "error": None,
                      "per_camera": {cam: 0 for cam in self.streams}}
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_frames)))
        self._sequence = {cam: 0 for cam in self.streams}
        self._wall_minus_monotonic = time.time() - time.monotonic()  # host_time (monotonic) -> Unix log_time
        self._first_write: float | None = None
        self._closed = False
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # `record --out runs/new/S.mcap` just works
        except OSError as exc:
            raise HandtrackError(f"cannot create the folder {self.path.parent}: {exc.strerror or exc}") from None
        try:
            self._file = _open_output(self.path, overwrite)
        except FileExistsError:
            raise HandtrackError(f"{self.path} exists: record to a new name (or overwrite it explicitly)") from None
        except OSError as exc:
            raise HandtrackError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        try:
            self._mcap = mcap_writer.Writer(self._file, chunk_size=1 << 30,  # chunks are cut per frame, see _append
                                            compression=getattr(mcap_writer.CompressionType, compression.upper()))
            self._start(metadata or {})
        except OSError as exc:
            self._file_close()
            raise HandtrackError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        depth_pixels(np.ones((1, 1), np.float32), 1.0)  # compile the units kernel now, not on the first frame
        self._thread = threading.Thread(target=self._run, name=f"recording {self.path.name}", daemon=True)
        self._thread.start()

    # --- the caller's side ------------------------------------------------------------------------------------
    @property
    def error(self) -> str | None:
        return self.stats["error"]

    def write(self, frame: DepthFrame, result=None, camera: str | None = None) -> bool:
        """Queue one frame (and the tracker's HandResult for it, recorded as a prediction) for writing.

        Returns at once: True if queued; False if the queue was full (counted in stats["dropped"]), or the
        recording has stopped (closed, or `error` says why)."""
        cam = self._camera(camera)
        if self._closed or self.stats["error"] is not None:
            return False
        try:
            self._queue.put_nowait((cam, frame, result))
        except queue.Full:
            self.stats["dropped"] += 1
            return False
        self.stats["queue_max"] = max(self.stats["queue_max"], self._queue.qsize())
        return True

    def close(self) -> None:
        """Write what is queued, then the file's index and summary, and close it. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)  # after every queued frame; the thread takes items, so this wait is short
        self._thread.join()
        if self.stats["error"] is None:
            try:
                self._mcap.finish()  # summary + footer: fast random access for readers (not needed to read)
                self._file.flush()
                self.stats["bytes"] = self._file.tell()
            except OSError as exc:
                self._fail(exc)
        self._file_close()


    # --- the writer thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.stats["error"] is not None:
                continue  # stopped: drain what was queued before the error
            start = time.perf_counter()
            try:
                self._append(*item)
            except OSError as exc:
                self._fail(exc)
            except (ValueError, TypeError, AttributeError) as exc:
                # A frame that cannot be encoded (not a 2-D image, bad meta): skip it, keep recording.
                self.stats["skipped"] += 1
                self.stats["last_skip"] = f"{type(exc).__name__}: {exc}"
            self.stats["busy_s"] += time.perf_counter() - start

    def _append(self, cam: str, frame: DepthFrame, result) -> None:
        """One frame -> its messages (all encoded before any is added, so a bad frame adds nothing) -> one chunk,
        written and flushed."""
        meta = frame.meta if isinstance(frame.meta, dict) else {}
        depth = np.asarray(frame.depth_mm)
        if depth.ndim != 2:
            raise ValueError(f"depth of shape {depth.shape} is not an image")
        host_time = meta.get(META_HOST_TIME)
        host_time = float(host_time) if host_time is not None else time.monotonic()
        log_ns = int(round((host_time + self._wall_minus_monotonic) * 1e9))
        sensor_time = meta.get(META_SENSOR_TIME)
        stamp_ns = int(round(float(sensor_time) * 1e9)) if sensor_time is not None else log_ns
        sensor_frame = meta.get(META_SENSOR_FRAME)
        unit = meta.get("depth_unit_mm") or self.streams[cam].depth_unit_mm or 1.0  # 1 mm: integer-mm datasets
        pixels, encoding, unit = depth_pixels(depth, unit)
        frame_id = f"{cam}_depth_optical_frame"
        encoded = [
            (msg.camera_info_topic(cam), msg.encode_camera_info(stamp_ns, frame_id, frame.intrinsics)),
            (msg.frame_info_topic(cam), msg.encode_frame_info(
                stamp_ns, frame_id, int(meta.get(META_INDEX, self._sequence[cam])), host_time,
                None if sensor_time is None else float(sensor_time),
                None if sensor_frame is None else int(sensor_frame), unit, str(meta.get(META_SOURCE, "")))),
        ]
        if result is not None:
            encoded.append((msg.predictions_topic(cam), msg.encode_prediction(stamp_ns, frame_id, result, self.model)))
        # The image last: a reader has the whole frame once its image arrives.
        encoded.append((msg.image_topic(cam), msg.encode_image(stamp_ns, frame_id, pixels, encoding)))
        sequence = self._sequence[cam]
        for topic, data in encoded:
            self._mcap.add_message(self._channels[topic], log_time=log_ns, data=data, publish_time=log_ns,
                                   sequence=sequence)
        self._mcap.flush()   # cut the chunk here: one compressed chunk per frame ...
        self._file.flush()   # ... handed to the OS now, so a killed process loses at most the queue
        self._sequence[cam] += 1
        now = time.monotonic()
        if self._first_write is None:
            self._first_write = now
        self.stats["frames"] += 1
        self.stats["per_camera"][cam] += 1
        self.stats["raw_bytes"] += pixels.nbytes
        self.stats["bytes"] = self._file.tell()
        self.stats["seconds"] = now - self._first_write

    def _fail(self, exc: OSError) -> None:
        self.stats["error"] = f"recording stopped: cannot write {self.path}: {exc.strerror or exc}"

    # --- opening ----------------------------------------------------------------------------------------------
    def _start(self, extra: dict[str, str]) -> None:
        self._mcap.start(profile="ros2", library=f"handtrack {_version()}")
        schema_ids = {name: self._mcap.register_schema(name, "ros2msg", text.encode())
                      for name, text in msg.SCHEMAS.items()}
        self._channels: dict[str, int] = {}
        for cam in self.streams:
            for topic, schema in ((msg.image_topic(cam), msg.IMAGE), (msg.camera_info_topic(cam), msg.CAMERA_INFO),
                                  (msg.frame_info_topic(cam), msg.FRAME_INFO),
                                  (msg.predictions_topic(cam), msg.PREDICTION)):
                self._channels[topic] = self._mcap.register_channel(topic, "cdr", schema_ids[schema],
                                                                    metadata={"camera": cam})
        session = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "handtrack": _version(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
            "cameras": json.dumps(list(self.streams)), "model": self.model,
            "wall_minus_monotonic_s": repr(self._wall_minus_monotonic),
            "labels": "none: the predictions topics hold the tracker's own estimates (pseudo-labels), not ground truth",
        }
        self._mcap.add_metadata(SESSION_METADATA, {**session, **{str(k): str(v) for k, v in extra.items()}})
        for cam, info in self.streams.items():
            self._mcap.add_metadata(CAMERA_METADATA + cam, {
                "device": info.device, "fps": "" if info.fps is None else repr(float(info.fps)),
                "depth_unit_mm": "" if info.depth_unit_mm is None else repr(float(info.depth_unit_mm)),
                "intrinsics": json.dumps(info.intrinsics.to_dict()),
                "image_topic": msg.image_topic(cam), "camera_info_topic": msg.camera_info_topic(cam),
                "frame_info_topic": msg.frame_info_topic(cam), "predictions_topic": msg.predictions_topic(cam)})
        self._mcap.flush()
        self._file.flush()  # a full disk shows up here, as an error of the constructor

    @staticmethod
    def _streams(info) -> dict[str, StreamInfo]:
        streams = {DEFAULT_CAMERA: info} if isinstance(info, StreamInfo) else dict(info or {})
        if not streams:
            raise HandtrackError("a session needs at least one camera stream")
        for cam, stream in streams.items():
            if not isinstance(cam, str) or not _CAMERA_ID.match(cam):
                raise HandtrackError(f"camera id {cam!r} must start with a letter and hold only letters, digits, _")
            if not isinstance(stream, StreamInfo):
                raise HandtrackError(f"camera {cam}: expected a StreamInfo, got {type(stream).__name__}")
        return streams

    def _camera(self, camera: str | None) -> str:
        if camera is None:
            if len(self.streams) == 1:
                return next(iter(self.streams))
            raise HandtrackError(f"this session records {len(self.streams)} cameras: say which with camera= "
                                 f"({', '.join(self.streams)})")
        if camera not in self.streams:
            raise HandtrackError(f"no camera {camera!r} in this session ({', '.join(self.streams)})")
        return camera

    def _file_close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # the error that matters was recorded when the write failed
