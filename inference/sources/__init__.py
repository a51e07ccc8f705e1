"""Depth sources behind one protocol (base.FrameSource): RealSense and OpenNI2 cameras and recordings, dataset
folders, and the synthetic `demo`. Open any of them by name with open_source(spec); see base.py for what a frame
carries and factory.py for the specs.
"""
from .base import (CONNECTED, DISCONNECTED, FAILED, FINISHED, LOST, META_HOST_TIME, META_INDEX, META_SENSOR_FRAME,
                   META_SENSOR_TIME, META_SOURCE, RECONNECTING, STATES, DeviceInfo, DeviceLost, DeviceMissing,
                   EndOfStream, FrameSource, SourceTimeout, StreamInfo)
from .capture import Backend, Backoff, CaptureSource
from .factory import enumerate_devices, open_source

__all__ = [
    "FrameSource", "CaptureSource", "Backend", "Backoff", "StreamInfo", "DeviceInfo", "open_source",
    "enumerate_devices", "EndOfStream", "DeviceMissing", "DeviceLost", "SourceTimeout", "STATES", "DISCONNECTED",
    "CONNECTED", "LOST", "RECONNECTING", "FINISHED", "FAILED", "META_INDEX", "META_HOST_TIME", "META_SENSOR_TIME",
    "META_SENSOR_FRAME", "META_SOURCE",
]
