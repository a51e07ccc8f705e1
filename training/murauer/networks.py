"""MURAUER's networks on a residual backbone (`../shared/REFERENCE.md` section 2, FINDINGS.md section 1).

    f  Backbone         normalised crop (B, 1, 128, 128) -> feature
    p  DensePoseHead    feature -> 21 normalised joints          (or FCPoseHead, the paper's head)
    m  FeatureMapping   real feature -> synthetic-looking feature (residual, so it starts as the identity)
    h  LatentCritic     feature -> least-squares GAN score (synthetic 0, real 1)
    g  ViewPredictor    feature + crop centre -> the same instant's crop seen from another camera

The feature is what the pose head reads. With the dense head that is a map: the last three backbone stages
brought to the stride-8 grid (16 x 16) by 1x1 convolutions and nearest upsampling and summed, so m and h act
on that map (convolutional residual blocks) instead of on the paper's 1024-vector. With the FC head it is the
paper's vector (flatten -> FC 1024) and m and h are the paper's residual FC blocks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from handtrack.inference import skeleton

IMAGE_SIZE = 128
J = skeleton.NUM_JOINTS


def _bn_relu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = None
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)), inplace=True)


class Bottleneck(nn.Module):
    """MURAUER's own block (1x1 -> 3x3 -> 1x1, a quarter of the width inside)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        mid = max(c_out // 4, 8)
        self.body = nn.Sequential(nn.Conv2d(c_in, mid, 1, bias=False), _bn_relu(mid),
                                  nn.Conv2d(mid, mid, 3, stride, 1, bias=False), _bn_relu(mid),
                                  nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = None
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + (x if self.skip is None else self.skip(x)), inplace=True)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNetTrunk(nn.Module):
    """Stem conv 5x5 stride 2 + 2x2 max-pool (128 -> 32), then residual stages; returns every stage's output."""

    def __init__(self, widths: list[int], depths: list[int], strides: list[int], block: str = "basic",
                 stem: int = 32):
        super().__init__()
        if not len(widths) == len(depths) == len(strides):
            raise ValueError("widths, depths and strides need one entry per stage")
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 5, 2, 2, bias=False), _bn_relu(stem), nn.MaxPool2d(2))
        Block = BLOCKS[block]
        stages, c = [], stem
        for w, d, s in zip(widths, depths, strides):
            stages.append(nn.Sequential(*[Block(c if i == 0 else w, w, s if i == 0 else 1) for i in range(d)]))
            c = w
        self.stages = nn.ModuleList(stages)
        self.widths = list(widths)
        self.resolutions = []
        r = IMAGE_SIZE // 4
        for s in strides:
            r //= s
            self.resolutions.append(r)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class Backbone(nn.Module):
    """f. `head="dense"`: the last three stages fused on the finest of their grids (a feature map);
    `head="fc"`: the last stage flattened -> FC (a feature vector)."""

    def __init__(self, widths: list[int], depths: list[int], strides: list[int], block: str, head: str,
                 fused: int = 128, fc: int = 1024):
        super().__init__()
        self.trunk = ResNetTrunk(widths, depths, strides, block)
        self.head = head
        if head == "dense":
            self.lateral = nn.ModuleList(nn.Conv2d(w, fused, 1) for w in self.trunk.widths[-3:])
            self.grid = self.trunk.resolutions[-3]
            self.channels = fused
        elif head == "fc":
            r = self.trunk.resolutions[-1]
            self.flat = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True), nn.Flatten(),
                                      nn.Linear(widths[-1] * r * r, fc))
            self.channels = fc
        else:
            raise ValueError(f"unknown head '{head}' (dense or fc)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.trunk(x)
        if self.head == "fc":
            return self.flat(outs[-1])
        fused = None
        for lateral, o in zip(self.lateral, outs[-3:]):
            y = lateral(o)
            if y.shape[-1] != self.grid:
                y = F.interpolate(y, scale_factor=self.grid // y.shape[-1], mode="nearest")
            fused = y if fused is None else fused + y
        return fused


class DensePoseHead(nn.Module):
    """p for a feature map: per joint and cell a weight logit and (dx, dy, z); x, y are offsets from the cell's own
    normalised crop position, z is absolute; each joint is the softmax-weighted sum over the cells (AWR / A2J)."""

    def __init__(self, channels: int, grid: int, hidden: int = 128):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, hidden, 3, 1, 1, bias=False), _bn_relu(hidden),
                                  nn.Conv2d(hidden, 4 * J, 1))
        # Cell centres in normalised crop units: the crop spans [-1, 1] across its width (x right, y down).
        c = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid * 2 - 1
        gy, gx = torch.meshgrid(c, c, indexing="ij")
        self.register_buffer("cells", torch.stack([gx.reshape(-1), gy.reshape(-1)], 0), persistent=False)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        B = feature.shape[0]
        out = self.body(feature).reshape(B, J, 4, -1)
        weight = torch.softmax(out[:, :, 0], dim=-1)                      # (B, J, cells)
        xy = out[:, :, 1:3] + self.cells                                  # (B, J, 2, cells)
        xyz = torch.cat([xy, out[:, :, 3:4]], 2)                          # (B, J, 3, cells)
        return (xyz * weight.unsqueeze(2)).sum(-1)                        # (B, J, 3)


class FCPoseHead(nn.Module):
    """p for a feature vector, the paper's: ReLU -> FC 1024 -> ReLU -> FC 3J."""

    def __init__(self, channels: int, hidden: int = 1024):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, 3 * J))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.body(feature).reshape(-1, J, 3)


class _ResidualConv(nn.Module):
    def __init__(self, c: int, k: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, k, 1, k // 2), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Conv2d(c, c, k, 1, k // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _ResidualFC(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(c, c), nn.LeakyReLU(0.2, inplace=True), nn.Linear(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FeatureMapping(nn.Module):
    """m: two residual blocks; the last layer starts at zero so that m begins as the identity and a run that
    never sees real data leaves real features untouched. On a feature map the blocks are 1x1 convolutions: the
    paper's FC blocks applied to each cell, at a tenth of the backbone's cost (3x3 ones would double the
    runtime's inference time, since m runs on every real frame)."""

    def __init__(self, channels: int, is_map: bool):
        super().__init__()
        if is_map:
            self.blocks = nn.Sequential(_ResidualConv(channels, 1), _ResidualConv(channels, 1))
        else:
            self.blocks = nn.Sequential(_ResidualFC(channels), _ResidualFC(channels))
        for block in self.blocks:
            nn.init.zeros_(block.body[-1].weight)
            nn.init.zeros_(block.body[-1].bias)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.blocks(feature)

    def is_identity(self) -> bool:
        """True while every block's last layer is still zero (m never learnt from real data)."""
        return all(not block.body[-1].weight.any() and not block.body[-1].bias.any() for block in self.blocks)


class LatentCritic(nn.Module):
    """h: least-squares discriminator on features (synthetic -> 0, real -> 1)."""

    def __init__(self, channels: int, is_map: bool):
        super().__init__()
        if is_map:
            self.body = nn.Sequential(nn.Conv2d(channels, 64, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                                      _ResidualConv(64), nn.Conv2d(64, 64, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))
        else:
            self.body = nn.Sequential(_ResidualFC(channels), nn.LeakyReLU(0.2), _ResidualFC(channels),
                                      nn.LeakyReLU(0.2), nn.Linear(channels, 1))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.body(feature).squeeze(1)


VIEW_CODE = 12  # which view g draws: rotation (9) and crop centre (3); data.view_code


class ViewPredictor(nn.Module):
    """g: [feature || view code] -> the crop of another view (128 x 128, tanh). A feature map is first pooled
    to a vector; then the paper's decoder: transposed convs 4x4 (512@4, 256@8, 128@16, 64@32) -> 1@64 -> x2.
    The paper's cameras are fixed, so its g reads only the crop centre; our synthetic views orbit the hand at
    random, so g is told the view's rotation as well."""

    def __init__(self, channels: int, is_map: bool, width: int = 512):
        super().__init__()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()) if is_map else nn.Identity()
        w = [width, width // 2, width // 4, width // 8]
        layers: list[nn.Module] = [nn.ConvTranspose2d(channels + VIEW_CODE, w[0], 4, 1, 0)]
        for a, b in zip(w, w[1:]):
            layers += [nn.BatchNorm2d(a), nn.LeakyReLU(0.2, inplace=True), nn.ConvTranspose2d(a, b, 4, 2, 1)]
        layers += [nn.BatchNorm2d(w[-1]), nn.LeakyReLU(0.2, inplace=True), nn.ConvTranspose2d(w[-1], 1, 4, 2, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, feature: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        z = torch.cat([self.pool(feature), code], 1)[:, :, None, None]
        y = self.body(z)
        return torch.tanh(F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False))


class Murauer(nn.Module):
    def __init__(self, widths=(32, 64, 128, 256), depths=(2, 2, 2, 2), strides=(1, 2, 2, 2), block="basic",
                 head="dense", fused=128, fc=1024, view_width=512):
        super().__init__()
        self.f = Backbone(list(widths), list(depths), list(strides), block, head, fused, fc)
        is_map = head == "dense"
        c = self.f.channels
        self.p = DensePoseHead(c, self.f.grid) if is_map else FCPoseHead(c)
        self.m = FeatureMapping(c, is_map)
        self.h = LatentCritic(c, is_map)
        self.g = ViewPredictor(c, is_map, view_width)

    def pose(self, crops: torch.Tensor, real: bool = False) -> torch.Tensor:
        feature = self.f(crops)
        return self.p(self.m(feature) if real else feature)


def summary_vector(feature: torch.Tensor) -> torch.Tensor:
    """A feature (map or vector) as one vector per sample: the runtime's `latent` output."""
    return feature.mean((2, 3)) if feature.dim() == 4 else feature
