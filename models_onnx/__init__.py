"""Shipped ONNX models and their model cards (populated by the Crossing Nets and MURAUER work)."""
