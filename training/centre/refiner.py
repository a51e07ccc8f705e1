"""Training and export of the centre refiner (DeepPrior++'s "com refinement", REFERENCE.md section 3).

The localiser finds the centre of mass of the nearest object inside the hand cube; the forearm in the cube pulls
it down the arm, about 50 mm from the palm on the demo. The pose models were trained on crops centred on the
palm (jitter 5 mm), so a crop that far off costs accuracy. This small CNN looks at the crop around the rough
centre and regresses where the palm centre is, in the crop's normalised coordinates: (palm - centre) / (cube/2).

Training data: synthetic shards rendered with a large crop-centre jitter (`handtrack data synth --jitter 30`),
so the net sees the hand at every offset the localiser produces, with the body and arm in the crop.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handtrack.inference import skeleton
from handtrack.inference.crop import normalise_depth
from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import ModelInfo
from handtrack.inference.report import write_json
from handtrack.training.synth.generator import SynthShards


class CentreNet(nn.Module):
    """Four strided convolutions (128 -> 8 px) and two linear layers: ~0.1 ms per crop on one core."""

    def __init__(self, size: int = 128, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * (size // 16) ** 2, 128), nn.ReLU(inplace=True),
                                  nn.Linear(128, 3))

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(crop))


def load_targets(paths: list[Path], limit: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Normalised crops (N, 1, S, S) and palm offsets (N, 3) in cube/2 units, from synthetic shards."""
    crops, targets, config = [], [], None
    for path in paths:
        shards = SynthShards(path)
        a, config = shards.arrays(), shards.config
        cube = float(config["cube_mm"])
        depth, centre, joints = a["depth"][:, 0], a["centre"][:, 0], a["joints"][:, 0]
        crops.append(normalise_depth(depth.astype(np.float32), centre[:, 2, None, None], cube)[:, None])
        targets.append(((skeleton.palm_centre(joints) - centre) / (cube / 2)).astype(np.float32))
    crops, targets = np.concatenate(crops), np.concatenate(targets)
    if limit:
        crops, targets = crops[:limit], targets[:limit]
    return crops, targets, config


def train(data: list[Path], out: Path, steps: int = 3000, batch: int = 128, lr: float = 1e-3, val: int = 1000,
          seed: int = 0, threads: int = 2, log=print) -> dict:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    crops, targets, config = load_targets(data)
    val = min(val, len(crops) // 5)  # the last samples (of the last folder) are held out
    if len(crops) <= val + batch:
        raise HandtrackError(f"only {len(crops)} samples in {', '.join(map(str, data))}; need more than {val + batch}")
    cube = float(config["cube_mm"])
    xv, yv = torch.from_numpy(crops[-val:]), torch.from_numpy(targets[-val:])
    xt, yt = torch.from_numpy(crops[:-val]), torch.from_numpy(targets[:-val])
    net = CentreNet(crops.shape[-1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    start = time.time()
    for step in range(1, steps + 1):
        for group in opt.param_groups:  # cosine decay to 0 (math, not numpy: the state stays plain floats)
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.from_numpy(rng.integers(0, len(xt), batch))
        x = xt[idx]
        if rng.random() < 0.5:  # left and right views of the arm both occur: mirror x in half the batches
            x, y = torch.flip(x, dims=[-1]), yt[idx] * torch.tensor([-1.0, 1.0, 1.0])
        else:
            y = yt[idx]
        loss = nn.functional.smooth_l1_loss(net(x), y, beta=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == steps:
            row = {"step": step, "loss": loss.item(), **evaluate(net, xv, yv, cube), "seconds": time.time() - start}
            history.append(row)
            log(f"step {step}: loss {row['loss']:.4f}  val centre error {row['val_error_mm']:.1f} mm "
                f"(before {row['val_before_mm']:.1f} mm)")
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "size": crops.shape[-1], "cube_mm": cube,
                "data": [str(p) for p in data], "steps": steps}, out / "centre.pt")
    result = {"history": history, "final": history[-1], "data": [str(p) for p in data], "train_samples": len(xt),
              "val_samples": val, "steps": steps, "batch": batch, "lr": lr}
    write_json(out / "result.json", result)
    return result


@torch.no_grad()
def evaluate(net: CentreNet, x: torch.Tensor, y: torch.Tensor, cube_mm: float) -> dict:
    net.eval()
    pred = torch.cat([net(x[s:s + 256]) for s in range(0, len(x), 256)])
    net.train()
    scale = cube_mm / 2
    return {"val_error_mm": float((pred - y).norm(dim=1).mean() * scale),
            "val_before_mm": float(y.norm(dim=1).mean() * scale)}


def export(checkpoint: Path, out: Path, version: str, name: str = "crossingnets") -> Path:
    """Write `<name>_centre.onnx` with the handtrack metadata, and check it against torch."""
    import onnxruntime as ort

    from handtrack.training.onnx_file import write_onnx

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = CentreNet(ckpt["size"])
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    size, cube = int(ckpt["size"]), float(ckpt["cube_mm"])
    path = Path(out) / f"{name}_centre.onnx"
    info = ModelInfo(method=name, role="centre", version=version, cube_mm=cube, input_size=size,
                     joint_set="palm_centre", joint_names=("palm",), inputs=("crop",), outputs=("palm_offset",),
                     training={"data": ckpt["data"], "steps": ckpt["steps"],
                               "command": "handtrack train centre", "target": "(palm - crop centre) / (cube/2)"})
    write_onnx(net, torch.zeros(1, 1, size, size), ["crop"], ["palm_offset"], info, path)
    x = (torch.rand(8, 1, size, size) * 2 - 1)
    with torch.no_grad():
        ref = net(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"crop": x.numpy()})[0]
    err = float(np.abs(ref - got).max())
    if err > 1e-4:
        raise HandtrackError(f"{path}: onnxruntime differs from torch by {err:.2e}")
    return path
