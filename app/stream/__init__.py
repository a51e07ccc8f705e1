"""Headless streaming of tracked hands to other programs (`handtrack --stream`); numpy + pyzmq + msgpack, no torch.

message.py   one tracker result -> one message dict (the versioned schema in hand_frame.v1.schema.json)
outputs.py   stdout / file NDJSON, msgpack, ZeroMQ PUB (conflating: a slow subscriber never slows the tracker)
runner.py    the stream: source -> tracker -> message -> outputs, until the sources' loop stops
"""
from .message import DEFAULT_CAMERA_FRAME, SCHEMA_VERSION, build_message, load_schema
from .outputs import Output, OutputClosed, encode, open_output
from .runner import Stream, StreamSummary

__all__ = ["build_message", "load_schema", "SCHEMA_VERSION", "DEFAULT_CAMERA_FRAME", "Output", "OutputClosed",
           "encode", "open_output", "Stream", "StreamSummary"]
