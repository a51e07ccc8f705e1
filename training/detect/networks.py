"""The two small networks that find the hand before the pose network runs.

HandDetector: the whole frame, subsampled to ~160x120 (every 4th pixel of 640x480) and scaled to metres, ->
  per cell of a stride-4 grid: palm logit, left-hand logit, the palm's sub-cell offset (dx, dy in cells) and its
  depth (metres). A stride-8 branch with dilated convolutions gives each cell the context of most of the frame
  (the arm, the body), which is what tells a hand from a torso corner and a right hand from a left one (the
  body is on the other side of a right arm than of a left one); the stride-4 branch keeps the palm's position.
  Fully convolutional, so 848x480 frames (212x120) need nothing special.

PresenceNet: the tracker's normalised 128x128 crop -> hand logit (its temperature, fitted on held-out crops after
  training, makes the sigmoid a calibrated probability). It was also asked for the hand's side at first and did no
  better than chance on held-out crops (55 %): a hand's chirality alone is a subtle cue in noisy depth, the body
  beside it a plain one, so handedness is the detector's.

Both stay far under a millisecond on one core (measured by `handtrack bench`).
"""
from __future__ import annotations

import torch
from torch import nn

DETECTOR_OUTPUTS = ("palm", "left", "dx", "dy", "z")


def conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class HandDetector(nn.Module):
    STRIDE = 4  # cells of the output grid, in pixels of the subsampled frame (16 px of a 640x480 frame)

    def __init__(self, width: int = 48):
        super().__init__()
        w = width
        self.fine = nn.Sequential(conv(1, 16, 2), conv(16, 32, 2))                       # stride 4
        self.context = nn.Sequential(conv(32, w, 2), conv(w, w), conv(w, w, dilation=2),  # stride 8, wide view
                                     conv(w, w, dilation=4), conv(w, w, dilation=8))
        self.lift = nn.Conv2d(w, 32, 1)
        self.head = nn.Sequential(conv(32, 32), nn.Conv2d(32, len(DETECTOR_OUTPUTS), 1))

    def forward(self, frame_m: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) depth in metres (0 = missing), H and W multiples of 8 -> (B, 5, H/4, W/4)."""
        fine = self.fine(frame_m)
        context = nn.functional.interpolate(self.lift(self.context(fine)), scale_factor=2.0, mode="nearest")
        return self.head(fine + context)


class PresenceNet(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        # Halved to 64x64 first: a hand is still plain at that size and the net costs a fifth.
        self.body = nn.Sequential(nn.AvgPool2d(2), conv(1, 16, 2), conv(16, w, 2), conv(w, 2 * w, 2),
                                  conv(2 * w, 2 * w), conv(2 * w, 2 * w, 2))
        self.fc = nn.Linear(4 * w, 1)

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        """(B, 1, 128, 128) normalised crop -> (B, 1) hand logit."""
        x = self.body(crop)
        x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], 1)
        return self.fc(x)
