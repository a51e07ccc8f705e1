"""SessionReader: the frames of a recorded session, also of one cut short by a crash.

A session (writer.py) is an MCAP file whose data section is a header, metadata records, then one compressed chunk
per frame. This reader walks those records from the start and never needs the summary at the end of the file:
a file whose recording was killed has no summary and may end inside a record, and it is read up to its last
complete chunk (`truncated` then says so). Each record's length is checked against the file size before it is
read, and chunks are checked against their CRC, so a torn or damaged tail is a counted stop, not an exception.
Records are parsed with the mcap package's own record classes; ROS 2 messages are decoded by mcap-ros2-support.

    reader = SessionReader("S.mcap")
    reader.cameras             # {"cam0": StreamInfo, ...}
    for frame in reader.frames("cam0"): ...          # DepthFrame, bit-exact depth, times and predictions in meta
    offsets = reader.index("cam0"); reader.frame_at(offsets[i], "cam0")   # random access (the training reader)
"""
from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..camera import Intrinsics
from ..closing import ClosedByWith
from ..errors import HandtrackError, require
from ..frame import META_SENSOR_FRAME, META_SENSOR_TIME, DepthFrame, StreamInfo
from . import messages as msg
from .writer import CAMERA_METADATA, FORMAT, SESSION_METADATA

MAGIC = b"\x89MCAP0\r\n"
# Opcodes of the MCAP records this reader looks at (https://mcap.dev/spec).
_HEADER, _FOOTER, _SCHEMA, _CHANNEL, _MESSAGE, _CHUNK, _METADATA, _DATA_END = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x0F
_RECORD_HEAD = struct.Struct("<BQ")  # opcode, body length

# DepthFrame.meta keys a recorded frame carries (beside the sources' META_SENSOR_TIME and META_SENSOR_FRAME, which
# keep the device's own values). The tracker's predictions are under META_PREDICTION, never in joints_xyz.
META_PREDICTION = "recorded_prediction"   # dict (see _prediction) or None: a PSEUDO-LABEL, not ground truth
META_RECORDED_HOST_TIME = "recorded_host_time"    # time.monotonic() of the recording host when the frame arrived
META_RECORDED_INDEX = "recorded_frame_index"      # the source's frame counter at recording (gaps = dropped frames)
META_RECORDED_SOURCE = "recorded_source"          # name of the source that was recorded
META_LOG_TIME_NS = "recorded_log_time_ns"         # the MCAP log time: Unix epoch nanoseconds
META_CAMERA = "session_camera"                    # the camera id within the session
META_SESSION_FRAME = "session_frame"              # this camera's frame number within the session, from 0


def is_session_file(path: str | os.PathLike) -> bool:
    """True if `path` is a file that starts like an MCAP file (the session format)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


@dataclass
class _Parts:
    """The messages of one frame as they are met; complete once the image (written last) arrives."""
    camera_info: object = None
    frame_info: object = None
    prediction: object = None


class SessionReader(ClosedByWith):
    def __init__(self, path: str | os.PathLike):
        self._mcap_records = require("mcap.records", pip="mcap", feature="reading sessions")
        self._stream_reader = require("mcap.stream_reader", pip="mcap", feature="reading sessions")
        decoder = require("mcap_ros2.decoder", pip="mcap-ros2-support", feature="reading sessions")
        self.path = Path(path)
        if not self.path.is_file():
            raise HandtrackError(f"no session at {self.path}")
        self._file = open(self.path, "rb")
        if self._file.read(len(MAGIC)) != MAGIC:
            self._file.close()
            raise HandtrackError(f"{self.path} is not a session (not an MCAP file)")
        self._decoders = decoder.DecoderFactory()
        self._schemas: dict[int, object] = {}
        self._channels: dict[int, object] = {}
        self.truncated = False      # the file ends inside a record (a recording that was killed)
        self.corrupt_chunks = 0     # chunks that failed their CRC or could not be decompressed, skipped
        # per camera, the runs of frames (first, last session frame number) missing from a whole pass over the
        # file: what the damaged chunks held
        self.gaps: dict[str, list[tuple[int, int]]] = {}
        self.session: dict[str, str] = {}
        self.camera_metadata: dict[str, dict[str, str]] = {}
        self._read_metadata()
        if self.session.get("format") != FORMAT:
            self.close()
            raise HandtrackError(f"{self.path} is an MCAP file but not a handtrack session "
                                 f"(no '{SESSION_METADATA}' metadata)")
        self.cameras: dict[str, StreamInfo] = {cam: self._stream_info(cam) for cam in json.loads(self.session["cameras"])}

    # --- what the session holds -------------------------------------------------------------------------------
    def camera(self, camera: str | int | None = None) -> str:
        """A camera id of this session: by id, by position, or the first one (None)."""
        ids = list(self.cameras)
        if camera is None:
            return ids[0]
        if isinstance(camera, int) or (isinstance(camera, str) and camera.isdigit()):
            if 0 <= int(camera) < len(ids):
                return ids[int(camera)]
        elif camera in self.cameras:
            return camera
        raise HandtrackError(f"{self.path.name} has no camera {camera!r}; it has {', '.join(ids)}")

    def _stream_info(self, cam: str) -> StreamInfo:
        meta = self.camera_metadata.get(cam, {})
        if "intrinsics" not in meta:
            raise HandtrackError(f"{self.path.name}: camera {cam} has no metadata")
        return StreamInfo(Intrinsics.from_dict(json.loads(meta["intrinsics"])),
                          float(meta["fps"]) if meta.get("fps") else None, meta.get("device", ""),
                          float(meta["depth_unit_mm"]) if meta.get("depth_unit_mm") else None)

    def _read_metadata(self) -> None:
        """The metadata records the writer puts before the first frame."""
        for _, opcode, body in self._records(want=(_METADATA,), stop_at_chunk=True):
            record = self._mcap_records.Metadata.read(self._data(body))
            if record.name == SESSION_METADATA:
                self.session = dict(record.metadata)
            elif record.name.startswith(CAMERA_METADATA):
                self.camera_metadata[record.name[len(CAMERA_METADATA):]] = dict(record.metadata)

    # --- frames -----------------------------------------------------------------------------------------------
    def frames(self, camera: str | int | None = None) -> Iterator[DepthFrame]:
        """Every complete frame of one camera, in recording order."""
        for _, frame in self._frames(self.camera(camera)):
            yield frame

    def scan(self, camera: str | int | None = None) -> Iterator[tuple[int, DepthFrame]]:
        """(chunk offset, frame) for every complete frame of one camera: frames() with what frame_at() takes."""
        yield from self._frames(self.camera(camera))

    def index(self, camera: str | int | None = None) -> list[int]:
        """The file offset of the chunk holding each complete frame of `camera` (for frame_at). One pass over the
        file, decompressing every chunk once (~1 GB/s)."""
        return [offset for offset, _ in self._frames(self.camera(camera), build=False)]

    def lost_frames(self, camera: str | int | None = None) -> int:
        """Frames of `camera` missing from the last whole pass (frames(), scan(), index()): lost in damaged
        chunks."""
        return sum(b - a + 1 for a, b in self.gaps.get(self.camera(camera), []))

    def frame_at(self, offset: int, camera: str | int | None = None) -> DepthFrame:
        """The frame of `camera` whose image is in the chunk at `offset` (from index())."""
        cam = self.camera(camera)
        if not self._channels:  # schemas and channels are declared in the first chunk: learn them once
            for _ in self._messages(len(MAGIC), chunks=1):
                pass
        for _, frame in self._frames(cam, start=offset, chunks=1):
            return frame
        raise HandtrackError(f"{self.path.name}: no frame of {cam} in the chunk at offset {offset}")

    def _frames(self, cam: str, start: int = len(MAGIC), chunks: int | None = None,
                build: bool = True) -> Iterator[tuple[int, DepthFrame | None]]:
        topics = {msg.camera_info_topic(cam): "camera_info", msg.frame_info_topic(cam): "frame_info",
                  msg.predictions_topic(cam): "prediction", msg.image_topic(cam): "image"}
        pending: dict[int, _Parts] = {}
        whole_pass = start == len(MAGIC) and chunks is None
        if whole_pass:
            self.gaps[cam] = []
        expected = 0  # the next frame number of this camera: the writer numbers them 0, 1, 2, ...
        for offset, message in self._messages(start, chunks):
            channel = self._channels.get(message.channel_id)
            part = topics.get(channel.topic) if channel is not None else None
            if part is None:
                continue
            parts = pending.setdefault(message.sequence, _Parts())
            if part != "image":
                setattr(parts, part, self._decode(message))
                continue
            del pending[message.sequence]
            if whole_pass and message.sequence > expected:
                self.gaps[cam].append((expected, message.sequence - 1))
            expected = message.sequence + 1
            if not build:
                yield offset, None
                continue
            yield offset, self._frame(cam, message, self._decode(message), parts)

    def _frame(self, cam: str, message, image, parts: _Parts) -> DepthFrame:
        info = parts.frame_info
        K = _intrinsics(parts.camera_info) if parts.camera_info is not None else self.cameras[cam].intrinsics
        unit = info.depth_unit_mm if info is not None else (self.cameras[cam].depth_unit_mm or 1.0)
        depth = _depth(image, unit)
        meta = {META_CAMERA: cam, META_SESSION_FRAME: message.sequence, META_LOG_TIME_NS: message.log_time,
                META_SENSOR_TIME: None, META_SENSOR_FRAME: None, META_PREDICTION: None}
        if info is not None:
            meta.update({META_SENSOR_TIME: info.sensor_time if info.has_sensor_time else None,
                         META_SENSOR_FRAME: info.sensor_frame if info.has_sensor_frame else None,
                         META_RECORDED_HOST_TIME: info.host_time, META_RECORDED_INDEX: info.frame_index,
                         META_RECORDED_SOURCE: info.source})
        if image.encoding == msg.DEPTH_U16:
            meta["depth_unit_mm"] = unit
        if parts.prediction is not None:
            meta[META_PREDICTION] = _prediction(parts.prediction)
        return DepthFrame(depth, K, None, None, frame_id=f"{self.path.name}/{cam}/{message.sequence:06d}", meta=meta)

    # --- MCAP records -----------------------------------------------------------------------------------------
    def _messages(self, start: int, chunks: int | None) -> Iterator[tuple[int, object]]:
        """(offset of the chunk, Message record) for every message in the data section, from `start`."""
        seen = 0
        for offset, opcode, body in self._records(want=(_CHUNK, _SCHEMA, _CHANNEL, _MESSAGE), start=start):
            if opcode != _CHUNK:
                yield from ((offset, r) for r in self._learn([self._parse(opcode, body)]))
                continue
            try:
                chunk = self._mcap_records.Chunk.read(self._data(body))
                records = self._stream_reader.breakup_chunk(chunk, validate_crc=True)
            except Exception:  # noqa: BLE001 - CRC mismatch or undecompressable data: a damaged chunk, skipped
                self.corrupt_chunks += 1
                continue
            yield from ((offset, r) for r in self._learn(records))
            seen += 1
            if chunks is not None and seen >= chunks:
                return

    def _learn(self, records) -> Iterator[object]:
        """Remember schemas and channels as they come; hand on the messages."""
        for record in records:
            if isinstance(record, self._mcap_records.Schema):
                self._schemas[record.id] = record
            elif isinstance(record, self._mcap_records.Channel):
                self._channels[record.id] = record
            elif isinstance(record, self._mcap_records.Message):
                yield record

    def _parse(self, opcode: int, body: bytes):
        kind = {_SCHEMA: "Schema", _CHANNEL: "Channel", _MESSAGE: "Message"}[opcode]
        cls = getattr(self._mcap_records, kind)
        return cls.read(self._data(body), len(body)) if opcode == _MESSAGE else cls.read(self._data(body))

    def _records(self, want: tuple[int, ...], start: int = len(MAGIC),
                 stop_at_chunk: bool = False) -> Iterator[tuple[int, int, bytes]]:
        """(offset, opcode, body) of the wanted records of the data section; other records are skipped unread."""
        size = os.fstat(self._file.fileno()).st_size
        offset = start
        while offset + _RECORD_HEAD.size <= size:
            self._file.seek(offset)
            opcode, length = _RECORD_HEAD.unpack(self._file.read(_RECORD_HEAD.size))
            end = offset + _RECORD_HEAD.size + length
            if end > size:
                self.truncated = True  # a record cut off by the end of the file: the recording was killed
                return
            if opcode in (_DATA_END, _FOOTER) or (stop_at_chunk and opcode == _CHUNK):
                return
            if opcode in want:
                yield offset, opcode, self._file.read(length)
            offset = end
        if offset < size:
            self.truncated = True

    def _data(self, body: bytes):
        return self._stream_reader.ReadDataStream(io.BytesIO(body))

    def _decode(self, message):
        channel = self._channels[message.channel_id]
        schema = self._schemas.get(channel.schema_id)
        decode = self._decoders.decoder_for(channel.message_encoding, schema)
        if decode is None:
            raise HandtrackError(f"{self.path.name}: cannot decode {channel.topic} ({channel.message_encoding})")
        return decode(message.data)

    def close(self) -> None:
        self._file.close()


def _depth(image, unit_mm: float) -> np.ndarray:
    """A decoded sensor_msgs/Image -> float32 mm, exactly as the source delivered it."""
    if image.encoding == msg.DEPTH_U16:
        raw = np.frombuffer(image.data, dtype="<u2").reshape(image.height, image.width)
        return raw.astype(np.float32) * np.float32(unit_mm)
    if image.encoding == msg.DEPTH_F32:
        return np.frombuffer(image.data, dtype="<f4").reshape(image.height, image.width).astype(np.float32)
    raise HandtrackError(f"depth image encoding {image.encoding!r} is not one a session uses (16UC1, 32FC1)")


def _intrinsics(info) -> Intrinsics:
    k = info.k
    return Intrinsics(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(info.width), int(info.height))


def _prediction(p) -> dict:
    """A decoded HandPrediction -> plain values; arrays are None when the tracker had no estimate."""
    def array(values, cols: int | None):
        a = np.asarray(values, dtype=np.float64)
        return None if a.size == 0 else (a.reshape(-1, cols) if cols else a)

    return {"model": p.model, "present": bool(p.present), "presence": float(p.presence), "handedness": p.handedness,
            "skipped": p.skipped or None, "joint_set": p.joint_set, "joints_mm": array(p.joints_mm, 3),
            "uv": array(p.uv, 2), "confidence": array(p.confidence, None), "centre_mm": array(p.centre_mm, None)}
