"""The MURAUER experiment on our data (docs/results.md): labelled synthetic source, a target domain of another
sensor and other hand sizes with m % of its labels, the rest unlabelled.

One pretraining of f + p on the source is shared; from it, for each labelled percentage m:
    baseline   f + p trained on the source and the m % labelled target crops (m = 0: the pretrained model)
    murauer    the same, plus m, h and g: unlabelled target crops through m with the adversarial loss,
               labelled ones through m with the pose loss, view prediction on the source's second views
Both are scored on a held-out target test set (mean 21-joint error, mm, through p(m(f(x)))). Finished runs are
kept, so re-running continues where it stopped.
"""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from handtrack.inference.report import write_json

from .config import make_config
from .trainer import MurauerTrainer

METHODS = ("baseline", "murauer")


def experiment_config(source: str, target: str, target_test: str, fraction: float, method: str, model: dict,
                      pretrain_steps: int, adapt_steps: int, seed: int, threads: int, loss: dict | None) -> dict:
    real = [{"kind": "shards", "path": target, "labelled_fraction": fraction}] if method == "murauer" or fraction else []
    batch = {"synthetic": 16, "real_labelled": 16 if fraction else 0,
             "real_unlabelled": 16 if method == "murauer" and fraction < 1 else 0, "paired": 0}
    raw = {"name": f"{method}@{fraction * 100:g}", "seed": seed, "threads": threads, "model": model,
           "data": {"synthetic": [{"path": source}], "real": real, "val": {"path": source, "limit": 500},
                    "real_val": {"path": target_test, "limit": 1000}},
           "stages": {"pretrain": {"steps": pretrain_steps},
                      "adapt": {"steps": adapt_steps, "batch": batch, "map_real": method == "murauer"}},
           "val_every": max(adapt_steps // 2, 1), "ckpt_every": 250}
    if method == "baseline":
        raw["loss"] = {"paired": 0.0, "view": 0.0, "adversarial": 0.0}
    elif loss:
        raw["loss"] = dict(loss)
    return make_config(raw)


def run_experiment(source: str, target: str, target_test: str, out: Path, fractions: list[float], model: dict,
                   pretrain_steps: int, adapt_steps: int, seed: int = 0, threads: int = 0,
                   loss: dict | None = None) -> dict[str, dict]:
    out = Path(out)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    pre_dir = out / "pretrain"
    pre_config = experiment_config(source, target, target_test, 0.0, "baseline", model, pretrain_steps, 0, seed,
                                   threads, loss)
    pre = MurauerTrainer(pre_config, pre_dir, resume=True)
    scores = pre.run()
    for percent in fractions:
        for method in METHODS:
            key = f"{method}@{percent:g}"
            if key in results:
                continue
            if percent == 0 and method == "baseline":
                results[key] = {"target_mean_error_mm": scores["real_val_mm"], "source_mean_error_mm": scores["val_mm"],
                                "note": "the pretrained model: no target labels, no adaptation"}
            else:
                run_dir = out / key.replace("@", "_")
                if not (run_dir / "last.pt").exists():
                    run_dir.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(pre_dir / "last.pt", run_dir / "last.pt")  # start from the shared pretraining
                cfg = experiment_config(source, target, target_test, percent / 100, method, model, pretrain_steps,
                                        adapt_steps, seed, threads, loss)
                r = MurauerTrainer(copy.deepcopy(cfg), run_dir, resume=True).run()
                results[key] = {"target_mean_error_mm": r["real_val_mm"], "source_mean_error_mm": r["val_mm"]}
            write_json(results_path, results)
    return results
