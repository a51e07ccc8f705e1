"""Readers for benchmark datasets and our own recorded sessions; all return inference.frame.DepthFrame in mm, OpenCV
frame."""
