"""Readers for benchmark datasets and our own synthetic shards; all return DepthFrame in mm, OpenCV frame."""
from .base import DepthFrame

__all__ = ["DepthFrame"]
