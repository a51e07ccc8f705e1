"""Shards of synthetic detector frames and presence crops (`handtrack data frames`), and their reader.

A shard holds, for its frames, the subsampled depth cut to a fixed DETECT_HEIGHT x DETECT_WIDTH window (848-wide
sensors give 212 columns: a 160-column window that keeps the palm is cut at random), the palm's position in that
window, the labels and the cases; and all the frames' presence crops. Writes are atomic (`.tmp` then rename) and
the reader's glob does not match the temporary names.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError

from .frames import DETECT_STRIDE, make_frame

FORMAT_VERSION = 1
DETECT_HEIGHT, DETECT_WIDTH = 120, 160


def shard_path(out: Path, k: int) -> Path:
    return Path(out) / f"frames_{k:05d}.npz"


def write_shard(out: Path, k: int, n_total: int, shard_size: int, seed: int, prior=None, progress=None) -> Path:
    from handtrack.training.synth.pose_prior import PosePrior

    prior = prior or PosePrior.load()
    first, last = k * shard_size, min((k + 1) * shard_size, n_total)
    det = {name: [] for name in ("depth", "hand", "left", "palm_uv", "palm_z")}
    cases, views, sensors = [], [], []
    crops, crop_hand, crop_left, crop_kind = [], [], [], []
    for i in range(first, last):
        f = make_frame(i, seed, prior)
        depth, uv = f.depth, f.palm_uv / DETECT_STRIDE
        h, w = depth.shape
        if (h, w) != (DETECT_HEIGHT, DETECT_WIDTH):
            rng = np.random.default_rng([seed, i, 1])
            lo, hi = 0, w - DETECT_WIDTH
            if f.hand:  # keep the palm at least 10 columns inside the window
                lo, hi = max(lo, int(uv[0]) - DETECT_WIDTH + 10), min(hi, int(uv[0]) - 10)
            u0 = int(rng.integers(lo, max(hi, lo) + 1))
            depth = depth[:DETECT_HEIGHT, u0:u0 + DETECT_WIDTH]
            uv = uv - [u0, 0]
        det["depth"].append(depth)
        det["hand"].append(f.hand)
        det["left"].append(f.left)
        det["palm_uv"].append(uv)
        det["palm_z"].append(f.palm_mm[2])
        cases.append(f.case)
        views.append(f.view)
        sensors.append(f.sensor)
        crops.append(f.crops)
        crop_hand.append(f.crop_hand)
        crop_left.append(f.crop_left)
        crop_kind += f.crop_kind
        if progress:
            progress(1)
    arrays = {f"det_{k_}": np.asarray(v) for k_, v in det.items()}
    arrays.update(crops=np.concatenate(crops), crop_hand=np.concatenate(crop_hand),
                  crop_left=np.concatenate(crop_left))
    meta = dict(format_version=FORMAT_VERSION, seed=seed, first_index=first, count=last - first, cases=cases,
                views=views, sensors=sensors, crop_kind=crop_kind, stride=DETECT_STRIDE)
    path = shard_path(out, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    try:
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_frames(folders: list[Path]) -> dict:
    """Every shard of the folders, concatenated: det_* arrays, crops, labels, and the per-frame/per-crop cases."""
    parts = list(iter_shards(folders))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def iter_shards(folders: list[Path]):
    """The shards of the folders one by one (each a dict like read_frames'), for readers that keep only a part."""
    for folder in folders:
        paths = sorted(p for p in Path(folder).glob("frames_*.npz") if not p.name.endswith(".tmp.npz"))
        if not paths:
            raise HandtrackError(f"no detector shards (frames_*.npz) in {folder}: make them with "
                                 f"'handtrack data frames --out {folder}'")
        for path in paths:
            try:
                with np.load(path) as z:
                    part = {name: z[name] for name in z.files}
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise HandtrackError(f"{path}: not a readable detector shard ({exc})") from exc
            meta = json.loads(str(part.pop("meta")))
            if meta.get("format_version") != FORMAT_VERSION:
                raise HandtrackError(f"{path}: detector shard format {meta.get('format_version')}, "
                                     f"this handtrack reads format {FORMAT_VERSION}")
            part.update(cases=np.asarray(meta["cases"]), views=np.asarray(meta["views"]),
                        sensors=np.asarray(meta["sensors"]), crop_kind=np.asarray(meta["crop_kind"]))
            yield part
