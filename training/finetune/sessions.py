"""The user's recorded sessions as unlabelled training crops.

Each frame is cropped around the palm of the prediction recorded with it (what the tracker saw live). Frames of
a session recorded with --no-track, or whose recorded prediction found no hand, are tracked here with the shipped
tracker instead, so any session works. Every camera of a multi-camera session is used unless one is named;
each camera's own intrinsics place its crops, so sessions of any resolution mix. The recorded predictions only
centre the crops: the pseudo-labels come from the model being tuned (trainer.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.crop import crop_depth, crop_window
from handtrack.inference.errors import HandtrackError
from handtrack.training.crossingnets.data import CropSet


@dataclass
class SessionCrops:
    crops: CropSet                   # one raw crop per usable frame (uint16 mm), unlabelled
    frame_ids: list[str]
    sources: list[str]               # "path#camera" per crop
    counts: dict = field(default_factory=dict)  # per "path#camera": frames, used, tracked here, no hand


def _open(path: Path, camera):
    from handtrack.inference.datasets.session import SessionDataset

    if not path.is_file():
        raise HandtrackError(f"no session at {path}")
    if path.stat().st_size == 0:
        raise HandtrackError(f"{path}: empty file, not a session")
    try:
        return SessionDataset(path, camera=camera)
    except HandtrackError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file gets one line, whatever the parser tripped on
        raise HandtrackError(f"{path}: not a readable session ({type(exc).__name__}: {str(exc)[:120]})") from exc


def cameras_of(path: str | Path) -> list[str]:
    data = _open(Path(path), None)
    try:
        return list(data.reader.cameras)
    finally:
        data.close()


def load_sessions(paths: list[str | Path], cube_mm: float, size: int = 128, camera: str | None = None,
                  min_presence: float = 0.5, limit: int | None = None, tracker_model: str | None = None
                  ) -> SessionCrops:
    from handtrack.inference.recording.reader import META_PREDICTION
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    tracker = None
    crops, centres, ids, sources, counts = [], [], [], [], {}
    for raw in paths:
        path = Path(raw)
        for cam in ([camera] if camera else cameras_of(path)):
            data = _open(path, cam)
            key = f"{path.name}#{data.camera}"
            n = {"frames": len(data), "used": 0, "tracked_here": 0, "no_hand": 0, "truncated": bool(data.truncated)}
            try:
                for i in range(min(len(data), limit or len(data))):
                    frame = data[i]
                    pred = frame.meta.get(META_PREDICTION)
                    if pred and pred["present"] and pred["joints_mm"] is not None and pred["presence"] >= min_presence:
                        palm = skeleton.palm_centre(np.asarray(pred["joints_mm"], np.float64))
                    else:
                        if tracker is None:
                            from handtrack.models_onnx import DEFAULT_MODEL
                            tracker = HandTracker(TrackerOptions(model=tracker_model or DEFAULT_MODEL,
                                                                 smoothing=None))
                        result = tracker.process(frame)
                        n["tracked_here"] += 1
                        if not (result.present and result.joints_mm is not None):
                            n["no_hand"] += 1
                            continue
                        palm = skeleton.palm_centre(result.joints_mm)
                    window = crop_window(palm, frame.intrinsics, cube_mm, size)
                    crops.append(np.clip(np.rint(crop_depth(frame.depth_mm, window)), 0, 65535).astype(np.uint16))
                    centres.append(window.center.astype(np.float32))
                    ids.append(frame.frame_id)
                    sources.append(key)
                    n["used"] += 1
            finally:
                data.close()
            counts[key] = n
    if not crops:
        detail = "; ".join(f"{k}: {v['frames']} frames, {v['no_hand']} without a hand" for k, v in counts.items())
        raise HandtrackError(f"no frame with a hand to learn from ({detail or 'no frames'})")
    return SessionCrops(CropSet(np.stack(crops), np.stack(centres), None, cube_mm), ids, sources, counts)
