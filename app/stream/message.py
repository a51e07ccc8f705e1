"""One tracked frame -> one stream message (a plain dict), as `hand_frame.v1.schema.json` defines it.

The message speaks metres in the camera's optical frame (REP-103: x right, y down, z forward; the tracker's own
OpenCV frame, in mm) and, with an extrinsics file, also in a robot's base frame. docs/stream.md documents every
field. Versioning: SCHEMA_VERSION is "MAJOR.MINOR"; a minor bump only adds optional fields (consumers ignore fields
they do not know), a major bump renames, removes or changes the meaning of one and ships a new schema file.
"""
from __future__ import annotations

import json
import time
from importlib import resources

import numpy as np

from handtrack.inference.frame import META_HOST_TIME, META_INDEX, META_SENSOR_TIME, META_SOURCE
from handtrack.inference.result import Hand, HandResult
from handtrack.inference.skeleton import JOINT_NAMES

SCHEMA_NAME = "handtrack/hand_frame"
SCHEMA_VERSION = "1.1"
SCHEMA_FILE = "hand_frame.v1.schema.json"
DEFAULT_CAMERA_FRAME = "camera_depth_optical_frame"  # the RealSense ROS wrapper's name for the depth optical frame
# Rounding keeps lines short and JSON fast; each step is far below the tracker's accuracy.
DECIMALS_M = 5      # 10 micrometres
DECIMALS_PX = 2
DECIMALS_SCORE = 4
DECIMALS_MS = 3


def load_schema() -> dict:
    """The JSON Schema every message validates against (shipped beside this module)."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def build_message(result: HandResult, seq: int, *, camera_frame: str = DEFAULT_CAMERA_FRAME,
                  extrinsics=None) -> dict:
    """The message for one tracker result, one entry under "hands" per hand of the result. The frame's index, host
    and sensor time and source name come from the result's `frame_meta`; `seq` counts messages from 0;
    `extrinsics` (calibration.extrinsics.Extrinsics) adds the joints in its base frame."""
    now = time.monotonic()
    meta = result.frame_meta
    host_time = meta.get(META_HOST_TIME)
    if host_time is None:  # a frame that came from no source (a list in a test or benchmark): processing start
        host_time = result.host_time - result.latency_ms.get("total", 0.0) * 1e-3
    sensor_time = meta.get(META_SENSOR_TIME)
    message = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "seq": seq,
        "source": str(meta.get(META_SOURCE, "")),
        "frame_index": int(meta.get(META_INDEX, result.frame_index)),
        "frame_id": camera_frame,
        "stamp": {
            "sensor_s": _finite_or_none(sensor_time),
            "host_monotonic_s": round(float(host_time), 6),
            # The arrival time on the wall clock (Unix epoch), for consumers on other machines and ROS headers.
            "host_wall_s": round(time.time() - (now - host_time), 6),
        },
        "latency_ms": {
            "tracker": round(float(result.latency_ms.get("total", 0.0)), DECIMALS_MS),
            "end_to_end": round((now - host_time) * 1e3, DECIMALS_MS),
        },
        "skipped": result.skipped,
        "joint_names": list(JOINT_NAMES),
        "hands": [_hand(hand, extrinsics) for hand in result.hands],
    }
    if extrinsics is not None:
        message["base_frame_id"] = extrinsics.base_frame
    return message


def _finite_or_none(value) -> float | None:
    """The encoder writes no NaN (JSON has none), so a clock that gives one becomes "unknown"."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _hand(found: Hand, extrinsics) -> dict:
    joints = found.joints_mm
    usable = joints is not None and found.uv is not None and found.confidence is not None \
        and bool(np.isfinite(joints).all()) and bool(np.isfinite(found.uv).all()) \
        and bool(np.isfinite(found.confidence).all())
    score = float(found.presence)
    hand = {
        "handedness": found.handedness,
        # "detected": the hand finder's detector classified it (--hand auto); "configured": --hand left/right, or
        # auto without the detector's word (the right-hand default)
        "handedness_source": "detected" if found.auto_hand else "configured",
        "left_probability": (round(float(found.left_probability), DECIMALS_SCORE)
                             if found.left_probability is not None else None),
        "present": bool(found.present and usable),
        "score": round(score, DECIMALS_SCORE) if np.isfinite(score) else 0.0,
        "joints_m": None, "joints_px": None, "joint_confidence": None,
    }
    if extrinsics is not None:
        hand["joints_base_m"] = None
    if usable:  # also for a low presence: the estimate is there, `present` says whether to trust it
        hand["joints_m"] = np.round(joints * 1e-3, DECIMALS_M).tolist()
        hand["joints_px"] = np.round(found.uv, DECIMALS_PX).tolist()
        hand["joint_confidence"] = np.round(found.confidence, DECIMALS_SCORE).tolist()
        if extrinsics is not None:
            hand["joints_base_m"] = np.round(extrinsics.camera_mm_to_base_m(joints), DECIMALS_M).tolist()
    return hand
