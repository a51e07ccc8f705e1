"""The two inference routes of a trained model, as modules that export to ONNX unchanged.

pose route:   normalised crop (B, 1, 128, 128) -> shared latent (B, 23), joints (B, 21, 3) in crop units
render route: shared latent (B, 23) -> synthesized normalised crop (B, 1, 128, 128)
"""
from __future__ import annotations

import torch
from torch import nn

from .codec import PoseCodec
from .networks import POSE_LATENT, CrossingNets


class PoseRoute(nn.Module):
    def __init__(self, model: CrossingNets, cube_mm: float):
        super().__init__()
        self.dis, self.vae = model.dis, model.vae
        self.codec = PoseCodec(cube_mm)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Shared latent -> normalised joints: the VAE decodes the pose, the last 3 numbers place its root."""
        return self.codec.decode(self.vae.decode(z[:, :POSE_LATENT]), z[:, POSE_LATENT:])

    def forward(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.dis(crop)
        return z, self.decode(z)


class RenderRoute(nn.Module):
    def __init__(self, model: CrossingNets):
        super().__init__()
        self.ali, self.gen = model.ali, model.gen

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.gen(self.ali(z))
