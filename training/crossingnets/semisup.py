"""The paper's semi-supervised experiment (its Fig. 3), on our data.

A labelled source domain (e.g. PrimeSense-style crops) and a target domain whose sensor differs (e.g. RealSense
D4xx crops): m% of the target keeps its labels, the rest enters as unlabelled depth. For each m three models:

  scratch    posterior network (trunk + posterior head) on the labelled crops alone, random initialisation
  gan_init   the same, its trunk (the discriminator's first two convs) from the GAN pretrained on all depth
  full       Crossing Nets: Ali + the heads, then Algorithm 1 with the unlabelled target depth in the GAN task

All three share one pretraining run (VAE on the source poses, GAN on all source and target depth), so they differ
only in what the paper compares. Each is scored on held-out target crops (mean joint error, mm).
"""
from __future__ import annotations

import json
from pathlib import Path

from handtrack.inference.errors import HandtrackError
from handtrack.inference.report import write_json

from .config import make_config
from .trainer import Trainer

METHODS = ("scratch", "gan_init", "full")
PRETRAIN_MODEL = {"vae_hidden": 128}  # as the shipped model (docs/training.md)


def experiment_configs(source: str, target: str, target_val: str, fractions: list[float], steps: dict,
                       batch: dict, seed: int, limits: dict, pretrained: Path) -> dict[tuple[str, float], dict]:
    configs = {}
    for m in fractions:
        sources = [{"path": source, "labelled_fraction": 1.0, "limit": limits.get("source")},
                   {"path": target, "labelled_fraction": m / 100.0, "limit": limits.get("target")}]
        base = {"seed": seed, "threads": steps.get("threads", 0), "batch": batch, "init_from": str(pretrained),
                "model": {"vae_hidden": PRETRAIN_MODEL["vae_hidden"]},
                "data": {"sources": sources, "val": {"path": target_val, "limit": limits.get("val", 500)}},
                "log_every": 25, "val_every": 10**9, "ckpt_every": 10**9}
        no_stage = {"steps": 0}
        for method in METHODS:
            override = json.loads(json.dumps(base))
            override["name"] = f"semisup_{method}_{m:g}"
            if method == "full":
                override["stages"] = {"vae": no_stage, "gan": no_stage, "ali": {"steps": steps["ali"]},
                                      "joint": {"steps": steps["joint"]}}
            else:
                override["stages"] = {"vae": no_stage, "gan": no_stage, "ali": no_stage,
                                      "joint": {"steps": steps["joint"]}}
                override["posterior_only"] = True
                override["init_trunk_from_gan"] = method == "gan_init"
            configs[(method, m)] = make_config(override)
    return configs


def pretrain_config(source: str, target: str, steps: dict, batch: dict, seed: int, limits: dict) -> dict:
    # The VAE learns from the source's poses only (target labels stay hidden); the GAN from every depth map.
    sources = [{"path": source, "labelled_fraction": 1.0, "limit": limits.get("source")},
               {"path": target, "labelled_fraction": 0.0, "limit": limits.get("target")}]
    return make_config({"name": "semisup_pretrain", "seed": seed, "threads": steps.get("threads", 0),
                        "batch": {k: batch[k] for k in ("labelled", "unlabelled", "synth")},
                        "data": {"sources": sources, "val": None},
                        "stages": {"vae": {"steps": steps["vae"], "batch": batch["vae"], "kl_weight": 0.01},
                                   "gan": {"steps": steps["gan"], "batch": batch["gan"]},
                                   "ali": {"steps": 0}, "joint": {"steps": 0}},
                        "model": dict(PRETRAIN_MODEL),
                        "log_every": 25, "val_every": 10**9, "ckpt_every": 10**9})


def run_experiment(source: str, target: str, target_val: str, out: Path, fractions: list[float], steps: dict,
                   batch: dict, seed: int = 0, limits: dict | None = None, quiet: bool = False) -> dict:
    limits = limits or {}
    if any(not 0 < m <= 100 for m in fractions):
        raise HandtrackError("labelled fractions are percentages in (0, 100]")
    out.mkdir(parents=True, exist_ok=True)
    train_batch = {k: batch[k] for k in ("labelled", "unlabelled", "synth")}
    pre_out = out / "pretrain"
    if not (pre_out / "final.pt").exists():  # not yet, or interrupted: resume continues where it stopped
        Trainer(pretrain_config(source, target, steps, batch, seed, limits), pre_out, resume=True, quiet=quiet).run()
    results = _load_results(out)
    for (method, m), config in experiment_configs(source, target, target_val, fractions, steps, train_batch, seed,
                                                  limits, pre_out / "final.pt").items():
        key = f"{method}@{m:g}"
        if key in results:  # finished in an earlier invocation: the experiment resumes run by run
            continue
        result = Trainer(config, out / f"{method}_{m:g}", resume=True, quiet=quiet).run()
        results[key] = {"method": method, "labelled_percent": m, "target_mean_error_mm": result["val_mm"]}
        write_json(out / "results.json", results)
    return results


def _load_results(out: Path) -> dict:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}
