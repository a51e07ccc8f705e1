"""Recording unlabelled sessions: depth frames (lossless), calibration, timestamps, device info and the tracker's own
predictions (pseudo-labels) in one MCAP file per session, readable in Foxglove. See docs/recording.md.

    from handtrack.inference.recording import SessionWriter, SessionReader
"""
from .reader import (META_CAMERA, META_LOG_TIME_NS, META_PREDICTION, META_RECORDED_HOST_TIME, META_RECORDED_INDEX,
                     META_RECORDED_SOURCE, META_SESSION_FRAME, SessionReader, is_session_file)
from .writer import DEFAULT_CAMERA, SessionWriter, depth_pixels

__all__ = ["SessionWriter", "SessionReader", "is_session_file", "depth_pixels", "DEFAULT_CAMERA", "META_PREDICTION",
           "META_RECORDED_HOST_TIME", "META_RECORDED_INDEX", "META_RECORDED_SOURCE", "META_LOG_TIME_NS", "META_CAMERA",
           "META_SESSION_FRAME"]
