"""The loss terms of Crossing Nets (paper eqs. 2-11), each as a small function.

Scales: the paper writes ||A||_*^2 / N for latents, which we read as the per-sample squared Euclidean norm
averaged over the batch. Depth-map terms are averaged over pixels, so that one image does not outweigh a
23-number latent by four orders of magnitude; the paper combines the terms with equal weights.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def squared_norm(a: torch.Tensor) -> torch.Tensor:
    """Batch mean of the per-sample squared Euclidean norm."""
    return a.pow(2).flatten(1).sum(1).mean()


def vae_loss(recon: torch.Tensor, pose: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             kl_weight: float = 1.0) -> torch.Tensor:
    """kl_weight * KL(q(z|y) || N(0, I)) + 0.5 * squared reconstruction error (eqs. 2-4; the paper's weight is 1,
    a beta-VAE weight below 1 trades latent regularity for reconstruction accuracy)."""
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
    return kl_weight * kl + 0.5 * squared_norm(recon - pose)


def clipped_reconstruction(synth: torch.Tensor, real: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 6 as a robust (truncated) per-pixel squared error: a pixel that the sensor got wrong, a hole or a
    shadow, costs at most tau, so noise the generator cannot know about does not dominate the fit."""
    return torch.clamp((synth - real).pow(2), max=tau).mean()


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Salimans et al.: match the mean of the discriminator's last conv features on real and synthetic depth.
    Averaged over the features (not summed): summed over 512 of them it would drown the other generator terms."""
    return (real_features.detach().mean(0) - fake_features.mean(0)).pow(2).mean()


def gan_discriminator(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-L_gan of eq. 10 (binary cross-entropy), which the discriminator minimises."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def random_latents(z: torch.Tensor, n: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n latents, each a convex combination with random weights of k labelled latents (paper, section 4.4):
    they stay on the manifold of real poses, where N(0, I) samples might not."""
    pick = torch.randint(len(z), (n, k), generator=generator)
    w = torch.rand(n, k, generator=generator)
    w = w / w.sum(1, keepdim=True)
    return (w[..., None] * z[pick]).sum(1)


def decoded_pose_error(vae, z_pred: torch.Tensor, z_true: torch.Tensor, pose_latent: int) -> torch.Tensor:
    """Squared error of the joints that two shared latents decode to (50 mm units; the VAE is not trained by it).

    L_pos weighs every latent dimension alike, but a dimension the decoder is sensitive to moves the joints
    more than one it nearly ignores; this term measures the error where the pose route is judged. The target is
    the decoding of the true latent, so no extra labels are needed."""
    def joints(z):
        pose = vae.decode(z[:, :pose_latent])
        return pose.view(len(z), -1, 3) + z[:, None, pose_latent:]
    with torch.no_grad():
        target = joints(z_true)
    return squared_norm(joints(z_pred) - target)
