"""Training configuration: plain data, read from a JSON file and saved beside every checkpoint.

Stages run in order (`STAGES`); a stage with 0 steps is skipped (e.g. the posterior-only baselines of the semi-supervised
experiment skip the GAN stages). Step counts rather than epochs, because the synthetic sets differ in size.
"""
from __future__ import annotations

from pathlib import Path

from handtrack.inference.errors import HandtrackError
from handtrack.training.configfile import merge, read_object, resolve_path

STAGES = ("vae", "gan", "ali", "joint", "render", "refine")

DEFAULTS: dict = {
    "name": "crossingnets",
    "seed": 0,
    "threads": 0,                 # torch intra-op threads; 0 = torch's default
    "bf16": False,                # autocast training steps to bfloat16 (about 2x faster on an AVX-512 BF16 CPU)
    # gen_widths: the generator's channels at 4x4 .. 64x64 (5 numbers); null = `width` at every scale (the paper's)
    "model": {"vae_hidden": 40, "width": 32, "cube_mm": 250.0, "gen_widths": None},
    "data": {
        "sources": [],            # [{"path": shard folder, "labelled_fraction": 1.0, "limit": null}]
        "val": None,              # {"path": shard folder, "limit": 500}
    },
    "stages": {
        # Pose VAE pretraining (paper: Adam 3e-4, beta1 0.5, batch 200).
        "vae": {"steps": 2000, "lr": 3e-4, "batch": 200, "kl_weight": 1.0},
        # Depth GAN pretraining with feature matching, z ~ U(-1, 1).
        "gan": {"steps": 1000, "lr": 2e-4, "batch": 32},
        # Ali by the clipped reconstruction loss; posterior and smoothness heads at head_lr_scale x lr.
        "ali": {"steps": 500, "lr": 1e-3, "head_lr_scale": 10.0},
        # Algorithm 1: joint discriminator / generator updates.
        "joint": {"steps": 2000, "lr": 1e-3},
        # Not in the paper (0 = off): Ali and the generator alone learn to draw labelled crops, batch `batch`, the
        # learning rate decayed to 0 along a cosine; loss "recons" (eq. 6, clipped squared error) or "l1".
        "render": {"steps": 0, "lr": 1e-3, "batch": 64, "loss": "recons"},
        # Not in the paper (0 = off): the pose route alone (trunk + posterior head) on labelled crops, L_pos plus
        # joint_weight x the error of the decoded joints, its learning rate decayed to 0 along a cosine.
        "refine": {"steps": 0, "lr": 1e-3, "joint_weight": 1.0},
    },
    # Per-iteration batch of the ali and joint stages: labelled crops; unlabelled crops; how many of the
    # labelled ones also enter the generator's tasks (reconstruction, smoothness) with as many random latents.
    "batch": {"labelled": 64, "unlabelled": 16, "synth": 16},
    "init_from": None,            # a checkpoint whose weights start this run (e.g. a shared pretrained GAN)
    "init_fresh_generator": False,  # take all of init_from but its generator, which starts anew (other gen_widths)
    "posterior_only": False,      # the baselines: train the posterior alone (joint stage: L_pos only)
    "init_trunk_from_gan": True,  # keep the GAN-pretrained trunk (False: re-initialise it before the posterior)
    "latent_noise": 0.05,         # std of the noise added to Enc(y) in training
    "recons_tau": 1.0,            # clip of the per-pixel squared reconstruction error ([-1, 1] depth scale)
    "convex_k": 5,                # random latents are convex combinations of this many labelled latents
    "log_every": 20,
    "val_every": 250,
    "ckpt_every": 250,
    "meta": {"training_data": "", "command": ""},
}


def make_config(override: dict | None = None) -> dict:
    return merge(DEFAULTS, override or {})


def load_config(path: str | Path) -> dict:
    config = make_config(read_object(path))
    if not config["data"]["sources"]:
        raise HandtrackError(f"{path}: data.sources names no training data")
    _check(config, path)
    for src in config["data"]["sources"] + ([config["data"]["val"]] if config["data"]["val"] else []):
        src["path"] = resolve_path(src["path"], path)
    return config


def _check(config: dict, source) -> None:
    """Values that would otherwise fail deep inside a training step."""
    b = config["batch"]
    if min(b["labelled"], b["synth"]) <= 0 or b["unlabelled"] < 0:
        raise HandtrackError(f"{source}: batch sizes must be positive (unlabelled may be 0)")
    if b["synth"] > b["labelled"]:
        raise HandtrackError(f"{source}: batch.synth ({b['synth']}) cannot exceed batch.labelled ({b['labelled']}): "
                             "the generator's tasks take the first batch.synth labelled crops")
    if config["stages"]["render"]["loss"] not in ("recons", "l1"):
        raise HandtrackError(f"{source}: stages.render.loss must be \"recons\" or \"l1\"")
    for name, stage in config["stages"].items():
        if stage["steps"] < 0 or stage.get("batch", 1) <= 0 or stage["lr"] <= 0:
            raise HandtrackError(f"{source}: stages.{name} needs steps >= 0, a positive batch and lr")
    for src in config["data"]["sources"]:
        if not 0.0 <= float(src.get("labelled_fraction", 1.0)) <= 1.0:
            raise HandtrackError(f"{source}: labelled_fraction of {src.get('path')} must lie in [0, 1]")
    for key in ("log_every", "val_every", "ckpt_every"):
        if config[key] <= 0:
            raise HandtrackError(f"{source}: {key} must be positive")
