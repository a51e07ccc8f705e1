"""Training, calibration and export of the hand detector and the presence net (`handtrack train detect`).

Detector targets on its stride-4 grid (CenterNet practice): a Gaussian bump (sigma 1 cell) around the palm's cell
for the palm logit under the penalty-reduced focal loss; at the palm's cell its sub-cell offset and depth (L1);
within 2 cells of it the left-hand logit (binary cross-entropy). Frames without a hand teach only "nothing here".
Presence: binary cross-entropy on hand / not-a-hand crops, with holes punched into half of them (real sensors
lose hair, dark and shiny surfaces and edges: a head with holes must not pass for a hand), and optionally
(`ragged`, `--ragged-edges`) SR305-like vertical streaks along the silhouette's edges. Both mirror half of each
batch (a mirrored right hand is a left hand, so the detector's left label flips).

After training, a temperature fitted on held-out crops scales the presence logit so that its sigmoid is a
calibrated probability; the exported graph includes it and outputs probabilities.

Checkpoints (`detector.pt`, `presence.pt` with `last_*.pt` while training) hold weights and plain data only.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import ModelInfo
from handtrack.inference.report import write_json

from .data import read_frames
from .frames import DETECT_STRIDE, MAX_DEPTH_MM
from .networks import DETECTOR_OUTPUTS, HandDetector, PresenceNet

GRID = HandDetector.STRIDE
NAME = "handfinder"


def _lr(step: int, steps: int, lr: float, warmup: int = 100) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def detector_targets(hand: np.ndarray, uv: np.ndarray, z_mm: np.ndarray, gh: int, gw: int) -> dict[str, torch.Tensor]:
    """Heatmap (B, gh, gw), peak index, sub-cell offsets, depth (m) and the left-label mask for each frame."""
    B = len(hand)
    gu, gv = uv[:, 0] / GRID, uv[:, 1] / GRID  # palm in cell units
    jj, ii = np.meshgrid(np.arange(gw) + 0.5, np.arange(gh) + 0.5)
    d2 = (jj[None] - np.nan_to_num(gu)[:, None, None]) ** 2 + (ii[None] - np.nan_to_num(gv)[:, None, None]) ** 2
    heat = np.where(hand[:, None, None], np.exp(-d2 / 2.0), 0.0)
    cj = np.clip(np.floor(np.nan_to_num(gu)), 0, gw - 1).astype(int)
    ci = np.clip(np.floor(np.nan_to_num(gv)), 0, gh - 1).astype(int)
    heat[np.arange(B)[hand], ci[hand], cj[hand]] = 1.0
    near = (d2 <= 2.0 ** 2) & hand[:, None, None]
    return {"heat": torch.from_numpy(heat.astype(np.float32)), "ci": torch.from_numpy(ci), "cj": torch.from_numpy(cj),
            "off": torch.from_numpy(np.stack([np.nan_to_num(gu) - cj, np.nan_to_num(gv) - ci], 1).astype(np.float32)),
            "z": torch.from_numpy((np.nan_to_num(z_mm) / 1000.0).astype(np.float32)),
            "near": torch.from_numpy(near), "hand": torch.from_numpy(hand)}


def focal_loss(logit: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of frames with a hand (at least 1)."""
    p = torch.sigmoid(logit.float()).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 1.0
    pos_loss = -((1 - p) ** 2 * torch.log(p))[pos].sum()
    neg_loss = -((1 - heat) ** 4 * p ** 2 * torch.log(1 - p))[~pos].sum()
    return (pos_loss + neg_loss) / max(int(pos.sum()), 1)


def detector_loss(out: torch.Tensor, t: dict) -> dict[str, torch.Tensor]:
    out = out.float()
    losses = {"heat": focal_loss(out[:, 0], t["heat"])}
    hand = t["hand"]
    if hand.any():
        b = torch.nonzero(hand)[:, 0]
        cell = out[b, :, t["ci"][b], t["cj"][b]]  # (n, 5)
        losses["off"] = F.l1_loss(cell[:, 2:4], t["off"][b])
        losses["z"] = F.l1_loss(cell[:, 4], t["z"][b])
        near = t["near"]
        left = t["left"][:, None, None].expand_as(near)
        losses["left"] = F.binary_cross_entropy_with_logits(out[:, 1][near], left[near].float())
    return losses


def _mirror_detector(x: torch.Tensor, uv: np.ndarray, left: np.ndarray, flip: np.ndarray):
    """Mirror the flagged frames: depth left-right, the palm's column, and the hand (right <-> left)."""
    if flip.any():
        x = x.clone()
        idx = torch.from_numpy(np.nonzero(flip)[0])
        x[idx] = torch.flip(x[idx], dims=[-1])
        uv = uv.copy()
        uv[flip, 0] = x.shape[-1] - 1 - uv[flip, 0]
        left = np.where(flip, ~left, left)
    return x, uv, left


def frames_to_input(depth_mm: np.ndarray) -> torch.Tensor:
    d = depth_mm.astype(np.float32)
    d[d > MAX_DEPTH_MM] = 0.0
    return torch.from_numpy(d / 1000.0)[:, None]


def train(data: list[Path], out: Path, detector_steps: int = 3000, presence_steps: int = 2000, batch: int = 64,
          lr: float = 2e-3, threads: int = 2, seed: int = 0, val_share: float = 0.05, log=print,
          progress: bool = True, init: Path | None = None, ragged: float = 0.0) -> dict:
    """Train the detector, then the presence net, into `out` (detector.pt, presence.pt, result.json). `init`: a
    previous run folder whose weights both networks start from (a network given 0 steps is copied as it is)."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    d = read_frames(data)
    n, m = len(d["det_hand"]), len(d["crop_hand"])
    n_val, m_val = max(1, int(n * val_share)), max(1, int(m * val_share))
    if n - n_val < batch or m - m_val < batch:
        raise HandtrackError(f"only {n} frames / {m} crops in {', '.join(map(str, data))}; need more than a batch")
    out.mkdir(parents=True, exist_ok=True)
    result = {"data": [str(p) for p in data], "frames": n, "crops": m, "val_frames": n_val, "val_crops": m_val,
              "batch": batch, "lr": lr, "detector_steps": detector_steps, "presence_steps": presence_steps,
              "init": str(init) if init else None, "ragged_edges": ragged}
    rng = np.random.default_rng(seed)
    start = time.time()

    # --- detector ------------------------------------------------------------------------------------------------
    det = HandDetector().to(memory_format=torch.channels_last)
    if init is not None:
        det.load_state_dict(_weights(init / "detector.pt")["state_dict"])
        if not detector_steps:
            torch.save({"state_dict": det.state_dict(), "step": 0}, out / "detector.pt")
    opt = torch.optim.AdamW(det.parameters(), lr, weight_decay=1e-4)
    x_all = d["det_depth"]
    hand_all, left_all = d["det_hand"].astype(bool), d["det_left"].astype(bool)
    uv_all, z_all = d["det_palm_uv"].astype(np.float64), d["det_palm_z"].astype(np.float64)
    history = []
    for step in range(detector_steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, detector_steps, lr)
        idx = rng.integers(n - n_val, size=batch)
        x = frames_to_input(x_all[idx])
        x, uv, left = _mirror_detector(x, uv_all[idx], left_all[idx], rng.random(batch) < 0.5)
        t = detector_targets(hand_all[idx], uv, z_all[idx], x.shape[-2] // GRID, x.shape[-1] // GRID)
        t["left"] = torch.from_numpy(left)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            o = det(x.contiguous(memory_format=torch.channels_last))
        losses = detector_loss(o, t)
        loss = losses["heat"] + losses.get("off", 0) + losses.get("z", 0) + 0.5 * losses.get("left", 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 250 == 0 or step + 1 == detector_steps:
            row = {"step": step + 1, "loss": loss.item(), **{k: v.item() for k, v in losses.items()},
                   **evaluate_detector(det, x_all[n - n_val:], hand_all[n - n_val:], left_all[n - n_val:],
                                       uv_all[n - n_val:]), "seconds": round(time.time() - start, 1)}
            history.append(row)
            log(f"detector {row['step']}/{detector_steps}: loss {row['loss']:.3f}  val: palm within 2 cells "
                f"{row['val_found']:.3f}  false hands {row['val_false']:.3f}  handedness {row['val_handedness']:.3f}")
            torch.save({"state_dict": det.state_dict(), "step": step + 1}, out / "detector.pt")
    result["detector"] = history

    # --- presence ------------------------------------------------------------------------------------------------
    net = PresenceNet().to(memory_format=torch.channels_last)
    if init is not None:
        net.load_state_dict(_weights(init / "presence.pt")["state_dict"])
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    crops, is_hand = d["crops"], d["crop_hand"]
    history = []
    for step in range(presence_steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, presence_steps, lr)
        idx = rng.integers(m - m_val, size=batch)
        x = punch_holes(torch.from_numpy(crops[idx].astype(np.float32))[:, None], rng)
        if ragged:
            x = ragged_edges(x, rng, share=ragged)
        flip = torch.from_numpy(rng.random(batch) < 0.5)
        x = torch.where(flip[:, None, None, None], torch.flip(x, dims=[-1]), x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            o = net(x.contiguous(memory_format=torch.channels_last)).float()
        loss = F.binary_cross_entropy_with_logits(o[:, 0], torch.from_numpy(is_hand[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 250 == 0 or step + 1 == presence_steps:
            val = crops[m - m_val:]
            row = {"step": step + 1, "loss": loss.item(),
                   "val_auc": roc_auc(presence_logits(net, val)[:, 0], is_hand[m - m_val:]),
                   "val_auc_holes": roc_auc(presence_logits(net, val, holes=np.random.default_rng(step))[:, 0],
                                            is_hand[m - m_val:]),
                   "seconds": round(time.time() - start, 1)}
            history.append(row)
            log(f"presence {row['step']}/{presence_steps}: loss {row['loss']:.3f}  val: AUC {row['val_auc']:.4f}  "
                f"(with holes {row['val_auc_holes']:.4f})")
            torch.save({"state_dict": net.state_dict(), "temperature": 1.0, "step": step + 1}, out / "presence.pt")
    temperature = fit_temperature(net, crops[m - m_val:], is_hand[m - m_val:])
    torch.save({"state_dict": net.state_dict(), "temperature": temperature, "step": presence_steps},
               out / "presence.pt")
    result["presence"] = history
    result["temperature"] = temperature
    write_json(out / "result.json", result)
    return result


def _weights(path: Path) -> dict:
    if not path.is_file():
        raise HandtrackError(f"{path}: no such checkpoint to start from (a run folder of 'handtrack train detect')")
    return torch.load(path, map_location="cpu", weights_only=True)


@torch.no_grad()
def detector_maps(det: HandDetector, depth_mm: np.ndarray) -> np.ndarray:
    det.eval()
    outs = [det(frames_to_input(depth_mm[s:s + 128])).numpy() for s in range(0, len(depth_mm), 128)]
    det.train()
    return np.concatenate(outs)


def evaluate_detector(det, depth_mm, hand, left, uv) -> dict:
    maps = detector_maps(det, depth_mm)
    B, _, gh, gw = maps.shape
    flat = maps[:, 0].reshape(B, -1)
    best = flat.argmax(1)
    score = 1 / (1 + np.exp(-flat.max(1)))
    bi, bj = best // gw, best % gw
    cell_err = np.hypot(bj + 0.5 - uv[:, 0] / GRID, bi + 0.5 - uv[:, 1] / GRID)
    left_pred = maps[np.arange(B), 1, bi, bj] > 0
    return {"val_found": float(((cell_err <= 2.0) & (score >= 0.5))[hand].mean()) if hand.any() else 0.0,
            "val_false": float((score >= 0.5)[~hand].mean()) if (~hand).any() else 0.0,
            "val_handedness": float((left_pred == left)[hand].mean()) if hand.any() else 0.0}


def punch_holes(x: torch.Tensor, rng: np.random.Generator, share: float = 0.5) -> torch.Tensor:
    """Background-valued (+1) blobs and speckles in `share` of the crops (B, 1, S, S), as real sensors lose hair,
    dark and shiny surfaces and edges."""
    B, _, H, W = x.shape
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    for b in np.nonzero(rng.random(B) < share)[0]:
        img = x[b, 0]
        for _ in range(int(rng.integers(1, 8))):
            cy, cx = rng.uniform(0, H), rng.uniform(0, W)
            ry, rx = rng.uniform(2.0, 14.0, 2)
            img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = 1.0
        img[torch.from_numpy(rng.random((H, W)) < rng.uniform(0.0, 0.15))] = 1.0
    return x


def ragged_edges(x: torch.Tensor, rng: np.random.Generator, share: float = 0.5) -> torch.Tensor:
    """Vertical streaks at the silhouette's edges in `share` of the crops (B, 1, S, S): thin strips of a
    surface's depth hanging into the background beside it and gaps cut into it, as a structured-light camera
    (SR305) leaves along a body's edge. Real crops of a body cut by the frame's corner read as a hand (presence
    0.8) for their finger-like fragments; hands get the streaks too, so only the shape is left to tell them apart."""
    B, _, H, W = x.shape
    for b in np.nonzero(rng.random(B) < share)[0]:
        img = x[b, 0].numpy()  # a view: edited in place
        fg = img < 0.99
        edge = fg & ~(np.roll(fg, 1, 1) & np.roll(fg, -1, 1))  # surface pixels with background left or right
        ys, xs = np.nonzero(edge)
        if len(ys) == 0:
            continue
        for k in rng.choice(len(ys), size=min(len(ys), int(rng.integers(3, 16))), replace=False):
            y, x0 = ys[k], xs[k]
            length, width = int(rng.integers(6, 40)), int(rng.integers(1, 6))
            y0 = int(np.clip(y - rng.integers(0, length), 0, H - 1))
            side = 1 if not fg[y, min(x0 + 1, W - 1)] else -1  # the background side of this edge
            if rng.random() < 0.6:  # a strip of the surface hanging into the background
                c0 = int(np.clip(x0 + side * rng.integers(1, 7), 0, W - width))
                img[y0:y0 + length, c0:c0 + width] = img[y, x0] + rng.normal(0.0, 0.01)
            else:  # a gap cut into the surface
                c0 = int(np.clip(x0 - side * rng.integers(1, 10), 0, W - width))
                img[y0:y0 + length, c0:c0 + width] = 1.0
    return x


@torch.no_grad()
def presence_logits(net: PresenceNet, crops: np.ndarray, holes: np.random.Generator | None = None) -> np.ndarray:
    net.eval()
    outs = []
    for s in range(0, len(crops), 256):
        x = torch.from_numpy(crops[s:s + 256].astype(np.float32))[:, None]
        outs.append(net(punch_holes(x, holes) if holes is not None else x).numpy())
    net.train()
    return np.concatenate(outs)


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = score[label > 0], score[label <= 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for v in np.unique(allv[np.diff(np.sort(allv), prepend=np.nan) == 0]):  # average ranks of ties
        tie = allv == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fit_temperature(net: PresenceNet, crops: np.ndarray, is_hand: np.ndarray) -> float:
    """The T minimising the held-out negative log-likelihood of sigmoid(logit / T) (temperature scaling)."""
    logit = presence_logits(net, crops)[:, 0].astype(np.float64)
    y = (is_hand > 0).astype(np.float64)
    best, best_nll = 1.0, np.inf
    for T in np.exp(np.linspace(np.log(0.25), np.log(8.0), 121)):
        p = np.clip(1 / (1 + np.exp(-logit / T)), 1e-7, 1 - 1e-7)
        nll = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
        if nll < best_nll:
            best, best_nll = float(T), nll
    return best


class _Probabilities(torch.nn.Module):
    """The presence net with its temperature, giving probabilities."""

    def __init__(self, net: PresenceNet, temperature: float):
        super().__init__()
        self.net, self.t = net, float(temperature)

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(crop) / self.t)


def export(run: Path, out: Path, version: str, command: str = "", data: str = "") -> list[Path]:
    """`<out>/handfinder_detector.onnx` and `handfinder_presence.onnx`, with metadata, checked against torch."""
    import onnxruntime as ort

    from handtrack.training.onnx_file import write_onnx

    out.mkdir(parents=True, exist_ok=True)
    training = {"data": data, "command": command}
    det = HandDetector()
    det.load_state_dict(torch.load(run / "detector.pt", map_location="cpu", weights_only=True)["state_dict"])
    det.eval()
    det_info = ModelInfo(method=NAME, role="detector", version=version, cube_mm=0.0, input_size=0, joint_set="none",
                         joint_names=(), inputs=("frame",), outputs=("maps",), training=training,
                         extra={"frame_stride": DETECT_STRIDE, "grid_stride": GRID, "input_multiple": 2 * GRID,
                                "max_depth_mm": MAX_DEPTH_MM,
                                "channels": list(DETECTOR_OUTPUTS)})
    det_path = out / f"{NAME}_detector.onnx"
    write_onnx(det, torch.zeros(1, 1, 120, 160), ["frame"], ["maps"], det_info, det_path, spatial=True)
    ckpt = torch.load(run / "presence.pt", map_location="cpu", weights_only=True)
    net = PresenceNet()
    net.load_state_dict(ckpt["state_dict"])
    prob = _Probabilities(net.eval(), ckpt["temperature"]).eval()
    pres_info = ModelInfo(method=NAME, role="presence", version=version, cube_mm=250.0, input_size=128,
                          joint_set="none", joint_names=(), inputs=("crop",), outputs=("probability",),
                          training={**training, "temperature": ckpt["temperature"]})
    pres_path = out / f"{NAME}_presence.onnx"
    write_onnx(prob, torch.zeros(1, 1, 128, 128), ["crop"], ["probability"], pres_info, pres_path)
    for model, path, shape in ((det, det_path, (2, 1, 120, 208)), (prob, pres_path, (4, 1, 128, 128))):
        x = torch.rand(*shape)
        with torch.no_grad():
            ref = model(x).numpy()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        err = float(np.abs(ref - got).max())
        if err > 1e-4:
            raise HandtrackError(f"{path}: onnxruntime differs from torch by {err:.2e}")
    return [det_path, pres_path]
