"""Depth sources behind one protocol (base.FrameSource): RealSense and OpenNI2 cameras and recordings, dataset
folders, and the synthetic `demo`. Open any of them by name with open_source(spec); see base.py for the protocol,
inference/frame.py for what a frame carries, factory.py for the specs and loop.py for reading until told to stop.
"""
from .base import (CONNECTED, DISCONNECTED, FAILED, FINISHED, LOST, RECONNECTING, STATES, DeviceInfo, DeviceLost,
                   DeviceMissing, EndOfStream, FrameSource, SourceTimeout)
from .capture import Backend, Backoff, CaptureSource
from .factory import enumerate_devices, open_source

__all__ = [
    "FrameSource", "CaptureSource", "Backend", "Backoff", "DeviceInfo", "open_source", "enumerate_devices",
    "EndOfStream", "DeviceMissing", "DeviceLost", "SourceTimeout", "STATES", "DISCONNECTED", "CONNECTED", "LOST",
    "RECONNECTING", "FINISHED", "FAILED",
]
