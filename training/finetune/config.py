"""Fine-tuning configuration: plain data over these defaults, saved beside every checkpoint (`config.json`).

Figures behind the defaults are in docs/finetune.md (measured on the user domain of user_domain.py).
"""
from __future__ import annotations

from handtrack.inference.errors import HandtrackError
from handtrack.training.configfile import merge

METHODS = ("semihand", "murauer", "awh")

DEFAULTS: dict = {
    "methods": ["semihand"],      # the one of the three that helped on the user domain (docs/results.md)
    "seed": 0,
    "threads": 0,                 # torch intra-op threads; 0 = torch's default
    "steps": 600,
    # AdamW at lr for the first half, then a tenth of it (SemiHand: 1e-4, 1e-5 from half-way)
    "lr": 1e-4, "warmup": 20, "weight_decay": 1e-4,
    "batch": {"synthetic": 24, "session": 24},
    # The labelled synthetic side that keeps the model from forgetting: a shard folder, or (path None) this many
    # fresh samples, a third per sensor model, with the 12 mm crop-centre jitter the shipped model was trained on
    "synthetic": {"path": None, "samples": 3000, "jitter_mm": 12.0, "seed": 8_100_001},
    "session": {"camera": None, "min_presence": 0.5, "limit": None},
    "semihand": {
        "views": 4,               # weak perturbations per pseudo-label (the first is the crop itself)
        "weak_deg": 5.0, "weak_shift": 0.06,  # +-5 deg, +-4 px of 128
        "tau_mm": 8.0,            # keep a pseudo-label when disagreement + correction residual <= tau
        "refresh": 2,             # pseudo-labels are recomputed this many times (at 0, half-way, ...)
        "pseudo": 1.0, "consistency": 0.1,  # loss weights (SemiHand's lambda_c = 0.1)
        "strong_deg": 30.0, "strong_shift": 0.12,  # the labelled side's diversity augmentation
    },
    # l_m weight (the paper's) for m(f(x_real)) against the critic h; l_anchor: m keeps its starting output on
    # synthetic features
    "murauer": {"adversarial": 1e-5, "anchor": 1.0},
    "awh": {"critic": 1e-3, "gradient_penalty": 10.0, "depth": 1.0},
    "beta": 0.02,                 # smooth L1 on normalised joints, as MURAUER trains
    "bf16": True,
    "log_every": 10,
    "ckpt_every": 50,
}


def make_config(override: dict | None = None) -> dict:
    config = merge(DEFAULTS, override or {})
    methods = config["methods"]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise HandtrackError(f"fine-tuning methods: one or more of {', '.join(METHODS)} (got {methods})")
    if config["steps"] < 1 or config["lr"] <= 0:
        raise HandtrackError("fine-tuning needs steps >= 1 and lr > 0")
    if min(config["batch"].values()) < 1:
        raise HandtrackError("batch sizes must be at least 1")
    if config["semihand"]["views"] < 2:
        raise HandtrackError("semihand.views must be at least 2 (the crop and one perturbation)")
    return config
