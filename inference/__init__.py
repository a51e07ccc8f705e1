"""handtrack runtime: numpy + opencv + onnxruntime only. Nothing under here may import torch."""
