"""Adaptive Wasserstein Hourglass's feature critic: a Wasserstein critic with gradient penalty (WGAN-GP) on the
pose network's feature maps, synthetic against the user's real crops, where each channel counts by how alike
its synthetic and real maps are. Channels that respond to the hand in both domains are pulled together; channels
that only one domain lights up (the sleeve, sensor artefacts, the body behind) are left alone, so aligning does
not erase what the pose head needs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeatureCritic(nn.Module):
    """feature map (B, C, H, W) -> score (B,); no batch norm (the gradient penalty is per sample)."""

    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, 2, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(width, width, 3, 2, 1), nn.LeakyReLU(0.2))
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x).mean((2, 3)))[:, 0]


def channel_weights(synthetic: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(C,) weights, mean 1: the cosine similarity (clipped at 0) of each channel's batch-mean map, centred and
    normalised, between the domains. Detached: the weights say where to align, they are not trained."""
    with torch.no_grad():
        s, r = synthetic.float().mean(0).flatten(1), real.float().mean(0).flatten(1)  # (C, HW)
        s, r = s - s.mean(1, keepdim=True), r - r.mean(1, keepdim=True)
        sim = F.cosine_similarity(s, r, dim=1, eps=1e-6).clamp(min=0.0)
        return sim / sim.mean().clamp(min=1e-6)


def gradient_penalty(critic: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (|grad D| - 1)^2 at random points between the two batches."""
    n = min(len(a), len(b))
    alpha = torch.rand(n, 1, 1, 1)
    mix = (alpha * a[:n] + (1 - alpha) * b[:n]).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
