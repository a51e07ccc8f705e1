"""MURAUER training configuration (plain JSON over these defaults, saved beside every checkpoint).

Two stages run in order, a stage with 0 steps is skipped: `pretrain` (f and p on labelled synthetic crops, the
bulk of the accuracy) and `adapt` (everything: the paper's l = l_p + 0.2 l_c + 1e-4 l_g + 1e-5 l_m).
"""
from __future__ import annotations

from pathlib import Path

from handtrack.inference.errors import HandtrackError
from handtrack.training.configfile import merge, read_object, resolve_path

STAGES = ("pretrain", "adapt")
REAL_KINDS = ("shards", "frames", "session")

DEFAULTS: dict = {
    "name": "murauer",
    "seed": 0,
    # A MURAUER checkpoint whose weights start this run (fine-tuning: e.g. a longer schedule or other data on top
    # of a trained model); the model section must match it. Ignored on --resume, which starts from last.pt.
    "init": None,
    "threads": 0,                 # torch intra-op threads; 0 = torch's default
    "model": {
        "widths": [32, 64, 128, 256], "depths": [2, 2, 2, 2], "strides": [1, 2, 2, 2],
        "block": "basic",         # "bottleneck": MURAUER's own blocks (paper: widths 64 128 256 256, depths 5)
        "head": "dense",          # "fc": the paper's FC head (flatten -> FC 1024 -> p)
        "fused": 128, "fc": 1024, "view_width": 512, "cube_mm": 250.0,
    },
    "data": {
        # Labelled synthetic shard folders [{"path", "limit"}]; multi-view shards (--views 2) also feed g.
        "synthetic": [],
        # Real (target-domain) depth [{"kind": shards | frames | session, "path", "labelled_fraction", "limit",
        # "crops_per_frame", "jitter_mm", "locator_model", "min_presence"}]: shards keep labelled_fraction of
        # their labels; frames (any folder open_dataset reads) are cropped where the tracker with locator_model
        # (default crossingnets) finds the hand; sessions around each frame's recorded palm, on frames whose
        # recorded presence is at least min_presence (default 0.5). Both unlabelled.
        "real": [],
        # Paired real/synthetic samples: labelled real frames with the hand model fitted to their labels and
        # rendered at the same place ([{"kind": "nyu", "path": "../shared/data", "crops": 64}]).
        "paired": [],
        "val": None,              # {"path": synthetic shards, "limit": 500}: val_mm, through p(f(x))
        "real_val": None,         # {"path": target-domain shards, "limit": 500}: real_val_mm, through p(m(f(x)))
    },
    "stages": {
        # AdamW, linear warm-up then cosine decay to 0 over the stage (FINDINGS.md section 1).
        "pretrain": {"steps": 2000, "lr": 1e-3, "warmup": 300, "batch": 64},
        # Per step: 16 synthetic, 16 labelled real, 16 unlabelled real, 16 paired (the paper's 4 x 16); parts
        # without data are left out.
        "adapt": {"steps": 0, "lr": 3.3e-4, "warmup": 100,
                  "batch": {"synthetic": 16, "real_labelled": 16, "real_unlabelled": 16, "paired": 16},
                  # False: real crops go straight to p, m stays the identity (the experiment's baseline:
                  # f + p trained on source and target labels)
                  "map_real": True,
                  # f's and p's learning rate as a fraction of lr. 0 freezes them, batch-norm statistics
                  # included, so that p(f(x)) on synthetic crops stays exactly the pretrained one and only m
                  # (with g and h) learns: the way to align a few real frames without drifting f.
                  "backbone_lr": 1.0},
    },
    "loss": {"beta": 0.02,        # smooth L1 on normalised joints
             "paired": 0.2, "view": 1e-4, "adversarial": 1e-5},  # 0 leaves that task (and its network) out
    "weight_decay": 1e-4,
    "bf16": True,                 # autocast to bfloat16 (measured 2.2x faster on this AVX-512 BF16 CPU)
    "channels_last": True,
    "log_every": 20,
    "val_every": 500,
    "ckpt_every": 500,
    "meta": {"training_data": "", "command": ""},
}


def make_config(override: dict | None = None) -> dict:
    config = merge(DEFAULTS, override or {})
    _check(config, "config")
    return config


def load_config(path: str | Path) -> dict:
    config = merge(DEFAULTS, read_object(path))
    if not config["data"]["synthetic"]:
        raise HandtrackError(f"{path}: data.synthetic names no training data")
    _check(config, path)
    if config["init"]:
        config["init"] = resolve_path(config["init"], path)
    d = config["data"]
    for src in d["synthetic"] + d["real"] + d["paired"] + [v for v in (d["val"], d["real_val"]) if v]:
        src["path"] = resolve_path(src["path"], path)
    return config


def _check(config: dict, source) -> None:
    """Values that would otherwise fail deep inside a training step."""
    m = config["model"]
    if m["head"] not in ("dense", "fc") or m["block"] not in ("basic", "bottleneck"):
        raise HandtrackError(f"{source}: model.head is dense or fc, model.block basic or bottleneck")
    if not len(m["widths"]) == len(m["depths"]) == len(m["strides"]) or len(m["widths"]) < 3:
        raise HandtrackError(f"{source}: model.widths, depths and strides need one entry per stage (3 or more)")
    for name in STAGES:
        st = config["stages"][name]
        if st["steps"] < 0 or st["lr"] <= 0 or st["warmup"] < 0 or st.get("backbone_lr", 1.0) < 0:
            raise HandtrackError(f"{source}: stages.{name} needs steps >= 0, warmup >= 0, lr > 0 and backbone_lr >= 0")
    if config["stages"]["pretrain"]["batch"] <= 0 or min(config["stages"]["adapt"]["batch"].values()) < 0:
        raise HandtrackError(f"{source}: batch sizes must be positive")
    for src in config["data"]["real"]:
        if src.get("kind") not in REAL_KINDS:
            raise HandtrackError(f"{source}: data.real kind {src.get('kind')!r}; one of {', '.join(REAL_KINDS)}")
        if not 0.0 <= float(src.get("labelled_fraction", 0.0)) <= 1.0:
            raise HandtrackError(f"{source}: labelled_fraction of {src.get('path')} must lie in [0, 1]")
    for src in config["data"]["paired"]:
        if src.get("kind") != "nyu":
            raise HandtrackError(f"{source}: data.paired kind {src.get('kind')!r}; only 'nyu' is known")
    for key in ("log_every", "val_every", "ckpt_every"):
        if config[key] <= 0:
            raise HandtrackError(f"{source}: {key} must be positive")
