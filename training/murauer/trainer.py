"""Trains MURAUER in two stages (`config.STAGES`), resumably, on one process or several under torchrun.

pretrain  f and p on labelled synthetic crops: smooth L1 on normalised joints.
adapt     everything, per step one batch of four parts (synthetic with its second view, labelled real, unlabelled
          real, paired real/synthetic), all through f at once (batch norm sees the mixture, in training as at the
          statistics it keeps):
            l   = l_p + w_c l_c + w_g l_g + w_m l_m        updates f, p, m, g
            l_p   pose error: p(f(x_s)) on synthetic, p(m(f(x_r))) on labelled real and paired real
            l_c   |m(f(x_r)) - f(x_s)|^2 on paired samples (the synthetic side is the fixed target)
            l_g   |g(f(x_s), view) - other view|_1 on synthetic multi-view instants
            l_m   h(m(f(x_r)))^2: m makes real features look synthetic to h
            l_h   h(f(x_s))^2 + (h(m(f(x_r))) - 1)^2      updates h (least-squares GAN)

Checkpoints hold tensors and plain data only (weights, optimiser states, position, history, config), read with
`torch.load(weights_only=True)`. Each step draws its batch from a generator seeded by (seed, stage, step, rank),
so a resumed run draws what the uninterrupted run would have. Under torchrun every rank draws its own batches and
the gradients are averaged before each update.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handtrack.inference.errors import HandtrackError
from handtrack.training.checkpoint import read_checkpoint, write_checkpoint
from handtrack.training.configfile import save_config
from handtrack.training.crossingnets.data import CropSet, load_shards
from handtrack.training.curves import plot_history
from handtrack.training.distributed import average_gradients, barrier, setup_training
from handtrack.training.schedule import RunningMeans, stages_to_run, step_generator

from .config import STAGES
from .data import MurauerData, load_data
from .networks import Murauer

CHECKPOINT_FORMAT = 1


def build_model(config: dict) -> Murauer:
    m = config["model"]
    return Murauer(widths=m["widths"], depths=m["depths"], strides=m["strides"], block=m["block"], head=m["head"],
                   fused=m["fused"], fc=m["fc"], view_width=m["view_width"])


def load_checkpoint(path: str | Path) -> dict:
    return read_checkpoint(path, CHECKPOINT_FORMAT, "MURAUER")


def model_from_checkpoint(path: str | Path) -> tuple[Murauer, dict]:
    ckpt = load_checkpoint(path)
    config = json.loads(ckpt["config"])
    model = build_model(config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise HandtrackError(f"{path}: weights do not fit this model ({str(exc).splitlines()[0][:200]})") from exc
    return model.eval(), config


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero at the stage's last step."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def pose_loss(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    return F.smooth_l1_loss(pred.float(), target, beta=beta)


class MurauerTrainer:
    def __init__(self, config: dict, out_dir: Path, resume: bool = False, quiet: bool = False):
        self.config, self.out = config, Path(out_dir)
        self.rank, self.world = setup_training(config)
        self.model = build_model(config)
        self.memory_format = torch.channels_last if config["channels_last"] else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.quiet = quiet or self.rank != 0
        cube = config["model"]["cube_mm"]
        self.data: MurauerData = load_data(config["data"], cube, config["seed"])
        self.val = self._eval_set(config["data"]["val"], cube)
        self.real_val = self._eval_set(config["data"]["real_val"], cube)
        self.history: list[dict] = []
        self.position = {"stage": 0, "step": 0}
        self._optim_state: dict | None = None
        if resume and (self.out / "last.pt").exists():
            ckpt = load_checkpoint(self.out / "last.pt")
            self._check_same_model(ckpt, self.out / "last.pt")
            self.model.load_state_dict(ckpt["model"])
            self.position, self.history, self._optim_state = dict(ckpt["position"]), list(ckpt["history"]), ckpt["optim"]
        elif config["init"]:
            init = load_checkpoint(config["init"])
            self._check_same_model(init, config["init"])
            self.model.load_state_dict(init["model"])

    @staticmethod
    def _eval_set(entry: dict | None, cube: float) -> CropSet | None:
        return load_shards(entry["path"], entry.get("limit", 500), cube) if entry else None

    def _check_same_model(self, ckpt: dict, path: Path) -> None:
        theirs = json.loads(ckpt["config"])["model"]
        if theirs != self.config["model"]:
            raise HandtrackError(f"{path}: a model of another configuration; use its config's model section or "
                                 f"train into another folder")

    # --- batches ---------------------------------------------------------------------------------------------
    def _images(self, crops: CropSet, idx: np.ndarray) -> torch.Tensor:
        return crops.images(idx).contiguous(memory_format=self.memory_format)

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(self.config["bf16"]))

    # --- stages ----------------------------------------------------------------------------------------------
    def _optimisers(self, name: str) -> dict[str, torch.optim.Optimizer]:
        cfg, wd = self.config["stages"][name], self.config["weight_decay"]
        m = self.model
        if name == "pretrain":
            return {"main": torch.optim.AdamW([*m.f.parameters(), *m.p.parameters()], cfg["lr"], weight_decay=wd)}
        # m and g first, at the stage's own rate: the history logs the first group's learning rate
        groups = [{"params": [*m.m.parameters(), *m.g.parameters()], "lr_scale": 1.0}]
        if cfg["backbone_lr"] > 0:
            groups.append({"params": [*m.f.parameters(), *m.p.parameters()], "lr_scale": cfg["backbone_lr"]})
        return {"main": torch.optim.AdamW(groups, cfg["lr"], weight_decay=wd),
                "critic": torch.optim.AdamW(m.h.parameters(), cfg["lr"], weight_decay=wd)}

    def _frozen(self, stage: str) -> list[nn.Module]:
        """The parts that `stage` leaves exactly as they are: f and p when the adapt stage's backbone_lr is 0.
        They stay in eval mode, so that not even their batch-norm statistics move."""
        if stage == "adapt" and self.config["stages"]["adapt"]["backbone_lr"] == 0:
            return [self.model.f, self.model.p]
        return []

    def _train_mode(self, stage: str) -> None:
        self.model.train()
        for part in self._frozen(stage):
            part.eval()
            part.requires_grad_(False)

    def _pretrain_step(self, rng: np.random.Generator, opt: dict) -> dict[str, float]:
        s, beta = self.data.synthetic, self.config["loss"]["beta"]
        idx = rng.integers(len(s), size=self.config["stages"]["pretrain"]["batch"])
        x, y = self._images(s, idx), s.targets(idx)
        with self._autocast():
            pred = self.model.p(self.model.f(x))
        loss = pose_loss(pred, y, beta)
        opt["main"].zero_grad(set_to_none=True)
        loss.backward()
        average_gradients([*self.model.f.parameters(), *self.model.p.parameters()], self.world)
        opt["main"].step()
        return {"l_p": loss.item()}

    def _adapt_batch(self, rng: np.random.Generator) -> tuple[dict, dict, np.ndarray]:
        """One adapt batch: crops per part, targets of the labelled parts, and the synthetic indices."""
        d, sizes = self.data, self.config["stages"]["adapt"]["batch"]
        parts, targets = {}, {}
        # synthetic: from the multi-view instants where there are some (their second view feeds g)
        synth = d.views.first if d.views is not None else d.synthetic
        idx_s = rng.integers(len(synth), size=sizes["synthetic"])
        parts["synthetic"], targets["synthetic"] = self._images(synth, idx_s), synth.targets(idx_s)
        for key, crops in (("real_labelled", d.real_labelled), ("real_unlabelled", d.real_unlabelled),
                           ("paired_real", d.paired_real)):
            n = sizes["paired" if key == "paired_real" else key]
            if crops is not None and n > 0:
                idx = rng.integers(len(crops), size=n)
                parts[key] = self._images(crops, idx)
                if crops.joints is not None:
                    targets[key] = crops.targets(idx)
                if key == "paired_real":
                    parts["paired_synthetic"] = self._images(d.paired_synthetic, idx)
        return parts, targets, idx_s

    def _adapt_step(self, rng: np.random.Generator, opt: dict) -> dict[str, float]:
        d, w, m = self.data, self.config["loss"], self.model
        beta = w["beta"]
        parts, targets, idx_s = self._adapt_batch(rng)
        names = list(parts)
        counts = [len(parts[k]) for k in names]
        real_keys = [k for k in ("real_labelled", "real_unlabelled", "paired_real") if k in parts]

        mapping = self.config["stages"]["adapt"]["map_real"]
        adversarial = real_keys and mapping and w["adversarial"] > 0
        with self._autocast():
            feats = dict(zip(names, torch.split(m.f(torch.cat([parts[k] for k in names])), counts)))
            mapped = {k: m.m(feats[k]) if mapping else feats[k] for k in real_keys}
            l_p = pose_loss(m.p(feats["synthetic"]), targets["synthetic"], beta)
            for k in ("real_labelled", "paired_real"):
                if k in mapped and k in targets:
                    l_p = l_p + pose_loss(m.p(mapped[k]), targets[k], beta)
            out = {"l_p": l_p}
            total = l_p
            if "paired_real" in mapped and w["paired"] > 0:
                out["l_c"] = F.mse_loss(mapped["paired_real"].float(), feats["paired_synthetic"].detach().float())
                total = total + w["paired"] * out["l_c"]
            if d.views is not None and w["view"] > 0:
                view = self._images(d.views.second, idx_s).float()
                code = torch.from_numpy(d.views.code[idx_s])
                out["l_g"] = F.l1_loss(m.g(feats["synthetic"], code).float(), view)
                total = total + w["view"] * out["l_g"]
            if adversarial:
                m.h.requires_grad_(False)
                real_mapped = torch.cat([mapped[k] for k in real_keys])
                out["l_m"] = (m.h(real_mapped).float() ** 2).mean()
                total = total + w["adversarial"] * out["l_m"]
        opt["main"].zero_grad(set_to_none=True)
        total.backward()
        m.h.requires_grad_(True)
        main_params = [p for g in opt["main"].param_groups for p in g["params"]]
        average_gradients(main_params, self.world)
        opt["main"].step()
        if adversarial:  # the critic on detached features: synthetic -> 0, mapped real -> 1
            with self._autocast():
                fake = m.h(feats["synthetic"].detach()).float()
                real = m.h(real_mapped.detach()).float()
                l_h = (fake ** 2).mean() + ((real - 1) ** 2).mean()
            opt["critic"].zero_grad(set_to_none=True)
            l_h.backward()
            average_gradients(list(m.h.parameters()), self.world)
            opt["critic"].step()
            out["l_h"] = l_h
        return {k: v.item() for k, v in out.items()}

    # --- batch-norm statistics ---------------------------------------------------------------------------------
    @torch.no_grad()
    def recalibrate_batchnorm(self, stage: str, batches: int = 40) -> None:
        """Batch-norm running statistics re-estimated as a plain average over `batches` training batches of the
        current weights. The running averages kept during training lag the weights; measured on the shipped
        run at step 9000 (lr still high), they gave 40.8 mm where re-estimated statistics give 9.8 mm. Training
        never reads running statistics, so refreshing them changes nothing but evaluation and export."""
        frozen = {id(mod) for part in self._frozen(stage) for mod in part.modules()}
        norms = [mod for mod in self.model.modules()
                 if isinstance(mod, nn.modules.batchnorm._BatchNorm) and id(mod) not in frozen]
        momenta = [mod.momentum for mod in norms]
        modes = [(mod, mod.training) for mod in self.model.modules()]
        for mod in norms:
            mod.reset_running_stats()
            mod.momentum = None  # a plain average over the batches below
        self._train_mode(stage)
        m, mapping = self.model, self.config["stages"]["adapt"]["map_real"]
        rng = np.random.default_rng([self.config["seed"], 99])
        with self._autocast():
            for _ in range(batches):
                if stage == "pretrain":
                    s = self.data.synthetic
                    m.p(m.f(self._images(s, rng.integers(len(s), size=self.config["stages"]["pretrain"]["batch"]))))
                    continue
                parts, _, _ = self._adapt_batch(rng)
                names = list(parts)
                feats = dict(zip(names, torch.split(m.f(torch.cat([parts[k] for k in names])),
                                                    [len(parts[k]) for k in names])))
                real = [m.m(feats[k]) if mapping else feats[k] for k in names if k.startswith("real") or k == "paired_real"]
                m.p(torch.cat([feats["synthetic"], *real]))
        for mod, momentum in zip(norms, momenta):
            mod.momentum = momentum
        for mod, mode in modes:
            mod.train(mode)

    # --- validation ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def error_mm(self, crops: CropSet, real: bool) -> float:
        """Mean joint error (mm) on labelled crops: p(f(x)), or p(m(f(x))) for real-domain crops."""
        modes = [(mod, mod.training) for mod in self.model.modules()]
        self.model.eval()
        half = self.config["model"]["cube_mm"] / 2
        errs = []
        for start in range(0, len(crops), 256):
            idx = np.arange(start, min(start + 256, len(crops)))
            with self._autocast():
                pred = self.model.pose(self._images(crops, idx), real=real).float()
            errs.append(((pred - crops.targets(idx)).norm(dim=-1) * half).mean(1))
        for mod, mode in modes:
            mod.train(mode)
        return float(torch.cat(errs).mean())

    def validate(self) -> dict[str, float]:
        out = {}
        if self.val is not None:
            out["val_mm"] = self.error_mm(self.val, real=False)
        if self.real_val is not None:
            out["real_val_mm"] = self.error_mm(self.real_val, real=True)
        return out

    # --- checkpoints -----------------------------------------------------------------------------------------
    def save(self, optimisers: dict | None, tag: str | None = None) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.out / "config.json")
        ckpt = {"format": CHECKPOINT_FORMAT, "model": self.model.state_dict(),
                "optim": {k: o.state_dict() for k, o in (optimisers or {}).items()},
                "position": dict(self.position), "history": self.history, "config": json.dumps(self.config)}
        write_checkpoint(ckpt, self.out / "last.pt")
        if tag:
            write_checkpoint(ckpt, self.out / f"{tag}.pt")
        plot_history(self.history, self.out / "curves.png")
        return self.out / "last.pt"

    # --- the schedule ----------------------------------------------------------------------------------------
    def run(self) -> dict:
        from tqdm import tqdm

        self.model.train()
        if not self.quiet:
            print(f"data: {self.data.describe()}", file=sys.stderr)
        trained, last_stage = False, "pretrain"
        for si, name, cfg in stages_to_run(STAGES, self.config, self.position):
            opt = self._optimisers(name)
            self._train_mode(name)
            if self.position["step"] > 0 and self._optim_state:
                for k, o in opt.items():
                    o.load_state_dict(self._optim_state[k])
            self._optim_state = None
            step_fn = self._pretrain_step if name == "pretrain" else self._adapt_step
            running = RunningMeans()
            bar = tqdm(total=cfg["steps"], initial=self.position["step"], desc=name, file=sys.stderr,
                       disable=self.quiet, dynamic_ncols=True)
            t_last, n_last = time.perf_counter(), self.position["step"]
            while self.position["step"] < cfg["steps"]:
                step = self.position["step"]
                for o in opt.values():
                    for group in o.param_groups:
                        scale = group.get("lr_scale", 1.0)  # backbone_lr on f and p in the adapt stage
                        group["lr"] = cfg["lr"] * scale * lr_factor(step, cfg["steps"], cfg["warmup"])
                running.add(step_fn(step_generator(self.config["seed"], si, step, self.rank), opt))
                trained = True
                self.position["step"] = step = step + 1
                last = step == cfg["steps"]
                if step % self.config["log_every"] == 0 or last:
                    now = time.perf_counter()
                    row = {"stage": name, "step": step, "time": time.time(), "lr": opt["main"].param_groups[0]["lr"],
                           "steps_per_s": (step - n_last) / max(now - t_last, 1e-9), **running.take()}
                    t_last, n_last = now, step
                    if step % self.config["val_every"] == 0 or last:
                        self.recalibrate_batchnorm(name)
                        row.update(self.validate())
                    self.history.append(row)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                                     if k not in ("stage", "step", "time", "lr", "steps_per_s")})
                bar.update(1)
                if self.rank == 0 and (step % self.config["ckpt_every"] == 0 or last):
                    self.save(opt, tag=f"{name}_end" if last else None)
            bar.close()
            last_stage = name
        if trained:
            self.recalibrate_batchnorm(last_stage)  # the statistics final.pt and the export carry
        result = self.validate()
        if self.rank == 0 and (trained or not (self.out / "final.pt").exists()):
            self.save(None, tag="final")
        barrier(self.world)
        return result
