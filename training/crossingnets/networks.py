"""The Crossing Nets networks (Wan et al., CVPR 2017), at the sizes of the paper's reference implementation.

    pose VAE       pose (3J) -> 40 -> mu, logvar (20)          20 -> 40 -> pose (3J)
    Ali            shared latent z (23) -> the GAN's latent z_x in (-1, 1)^23
    generator      z_x (23) -> FC 512 -> 32x4x4 -> four transposed convs (8..64) -> 1x128x128, tanh
                   (wider at will: model.gen_widths)
    discriminator  a trunk of two stride-2 convs (128 -> 32) shared by three heads, each three more convs:
                   the GAN head (real/synthetic logit), the posterior head (depth -> z) and the Siamese
                   smoothness head (two depths -> z1 - z2).

The shared latent z is [pose latent (20) || root offset (3)]; `codec.py` says what the numbers mean.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

POSE_LATENT = 20
OFFSET_DIMS = 3
LATENT = POSE_LATENT + OFFSET_DIMS
IMAGE_SIZE = 128
KERNEL, STRIDE, PAD = 6, 2, 2  # every (transposed) convolution halves or doubles the size exactly


class PoseVAE(nn.Module):
    """Variational autoencoder of root-relative hand poses: the pose prior."""

    def __init__(self, pose_dims: int = 63, hidden: int = 40, latent: int = POSE_LATENT):
        super().__init__()
        self.enc = nn.Linear(pose_dims, hidden)
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.dec_hidden = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, pose_dims)

    def encode(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.enc(pose))
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec_out(F.leaky_relu(self.dec_hidden(z), 0.01))

    def forward(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(pose)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def init_from_pca(self, poses: torch.Tensor) -> None:
        """Start the outer layers as a PCA of the poses (the reference implementation's initialisation):
        the encoder's first layer projects onto the leading components, the decoder's last layer maps them back."""
        mean = poses.mean(0)
        _, _, v = torch.linalg.svd(poses - mean, full_matrices=False)
        k = min(self.enc.out_features, v.shape[0])
        comps = v[:k]  # (k, pose_dims)
        self.enc.weight[:k] = comps
        self.enc.bias[:k] = -(comps @ mean)
        self.dec_out.weight[:, :k] = comps.T
        self.dec_out.bias.copy_(mean)


class Ali(nn.Module):
    """Maps the shared (pose) latent, ~N(0, I), to the GAN's latent in (-1, 1): one linear layer, batch norm
    (as the reference implementation) and the tanh the paper names."""

    def __init__(self, latent: int = LATENT):
        super().__init__()
        self.linear = nn.Linear(latent, latent)
        self.bn = nn.BatchNorm1d(latent)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.bn(self.linear(z)))


class DepthGenerator(nn.Module):
    """DCGAN-style generator of normalised 128x128 depth crops from z_x in (-1, 1)^23. `widths`: channels at 4x4,
    8x8, 16x16, 32x32 and 64x64; the paper's are 32 at every scale (`width`)."""

    def __init__(self, latent: int = LATENT, width: int = 32, widths: list[int] | None = None):
        super().__init__()
        widths = list(widths) if widths else [width] * 5
        if len(widths) != 5:
            raise ValueError(f"the generator takes 5 widths (4x4 .. 64x64), got {widths}")
        self.width = widths[0]
        self.fc = nn.Sequential(nn.Linear(latent, widths[0] * 16), nn.BatchNorm1d(widths[0] * 16), nn.ReLU())
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):  # 4 -> 8 -> 16 -> 32 -> 64
            layers += [nn.ConvTranspose2d(cin, cout, KERNEL, STRIDE, PAD), nn.BatchNorm2d(cout), nn.ReLU()]
        layers += [nn.ConvTranspose2d(widths[-1], 1, KERNEL, STRIDE, PAD), nn.Tanh()]  # -> 128
        self.deconv = nn.Sequential(*layers)

    def forward(self, z_x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z_x).view(-1, self.width, 4, 4))


def _conv_block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, KERNEL, STRIDE, PAD), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]


def _tail(width: int) -> nn.Sequential:
    """Three stride-2 convolutions, 32x32 -> 4x4, flattened to width*16 features."""
    return nn.Sequential(*_conv_block(width, width), *_conv_block(width, width), *_conv_block(width, width),
                         nn.Flatten())


class Discriminator(nn.Module):
    """The multi-task discriminator: one shared trunk, the GAN, posterior and smoothness heads."""

    def __init__(self, width: int = 32, latent: int = LATENT):
        super().__init__()
        self.trunk = nn.Sequential(*_conv_block(1, width), *_conv_block(width, width))  # 128 -> 64 -> 32
        features = width * 16
        self.gan_convs = _tail(width)
        self.gan_out = nn.Linear(features, 1)
        self.pos_convs = _tail(width)
        self.pos_out = nn.Sequential(nn.Linear(features, latent), nn.BatchNorm1d(latent), nn.LeakyReLU(0.2),
                                     nn.Linear(latent, latent))
        self.smo_convs = _tail(width)
        self.smo_embed = nn.Sequential(nn.Linear(features, features), nn.BatchNorm1d(features), nn.LeakyReLU(0.2))
        self.smo_out = nn.Linear(features, latent)

    # Each head reads the trunk's features, so a batch that several tasks look at passes the trunk once.
    def gan(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trunk features -> real/synthetic logit and the last conv layer's features (for feature matching)."""
        features = self.gan_convs(f)
        return self.gan_out(features).squeeze(1), features

    def posterior(self, f: torch.Tensor) -> torch.Tensor:
        """Trunk features -> shared latent z."""
        return self.pos_out(self.pos_convs(f))

    def smoothness(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Trunk features of two crops -> estimated z1 - z2. Siamese: both go through the same embedding, whose
        difference maps linearly to the latent difference, so smo(x, x) = 0 and smo(x1, x2) = -smo(x2, x1)."""
        e = self.smo_embed(self.smo_convs(torch.cat([f1, f2])))
        e1, e2 = e.chunk(2)
        return self.smo_out(e1 - e2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pose route: depth crop -> shared latent."""
        return self.posterior(self.trunk(x))

    def heads(self) -> list[nn.Module]:
        return [self.pos_convs, self.pos_out, self.smo_convs, self.smo_embed, self.smo_out]


class CrossingNets(nn.Module):
    """All networks of one model, so that one state_dict checkpoints them together."""

    def __init__(self, num_joints: int = 21, vae_hidden: int = 40, width: int = 32, gen_widths: list[int] | None = None):
        super().__init__()
        self.vae = PoseVAE(3 * num_joints, vae_hidden)
        self.ali = Ali()
        self.gen = DepthGenerator(width=width, widths=gen_widths)
        self.dis = Discriminator(width=width)

    def render(self, z: torch.Tensor) -> torch.Tensor:
        """Shared latent -> synthesized normalised depth crop (the render route)."""
        return self.gen(self.ali(z))
