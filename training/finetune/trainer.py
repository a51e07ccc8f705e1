"""Fine-tunes MURAUER on the user's unlabelled sessions, resumably, with any combination of three methods.

Every step draws a labelled synthetic batch (strongly augmented, so the model does not forget) and a batch of
session crops, both through f at once. Batch norm keeps the shipped model's statistics (frozen): a session is
one hand in one room, and re-estimating statistics on it would move every prediction at once.

    always     l_sup   pose loss on the synthetic batch
    semihand   l_pl    pose loss of route(T(x_r)) against T(corrected pseudo-label), kept pseudo-labels only
               l_cons  route(T(x_r)) against T(route(x_r)) (the teacher's side detached), all session crops
    murauer    l_m     h(m(f(x_r)))^2: m maps real features to look synthetic to h (least squares), h learns
                       synthetic -> 0, mapped real -> 1
               l_anchor m(f(x_s)) against the starting m's output on the same features: m keeps the mapping it
                       came with (the identity for a model whose adapt stage never ran) unless the critic moves it
    awh        l_w     -D(w * f(x_r)): f moves real features towards the synthetic ones where the channel
                       weights w say the domains share them; D is a WGAN-GP critic
               l_d     the depth regulariser: our hand drawn from route(x_r) against the observed crop

Session crops always take the exported model's route, p(m(f(x))): the runtime sees only real depth and its graph
holds m (murauer-cpu-4's m maps real SR305 features; skipping it during tuning and putting it back at export would
tune p for inputs it never gets). Without the murauer method m is frozen; synthetic crops go through p(f(x)), as
MURAUER trains them.

Pseudo-labels (semihand) are made by the model being tuned, at the start and again `refresh - 1` times: the
average over weak perturbations T_k of T_k^-1(route(T_k(x))), corrected to the user's bone lengths (estimated
from the session); kept when disagreement + correction residual <= tau_mm.
"""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handtrack.inference.errors import HandtrackError
from handtrack.training.checkpoint import read_checkpoint, write_checkpoint
from handtrack.training.crossingnets.data import CropSet, concat_crops, load_shards
from handtrack.training.murauer.trainer import CHECKPOINT_FORMAT as MURAUER_FORMAT
from handtrack.training.murauer.trainer import pose_loss

from . import transforms as T
from .correction import bone_lengths, correct
from .critic import FeatureCritic, channel_weights, gradient_penalty
from .render import depth_regulariser, fit_thickness
from .sessions import SessionCrops
from .start import load_start

FORMAT = 1
SENSORS = ("primesense", "realsense", "sr305")


def ensure_synthetic(folder: Path, config: dict, progress: bool = True) -> CropSet:
    """The labelled synthetic crops: config.synthetic.path, or fresh samples written once under `folder`."""
    from handtrack.training.synth.generator import SynthConfig, SynthShards, generate_shard
    from handtrack.training.synth.pose_prior import PosePrior

    cfg = config["synthetic"]
    if cfg["path"]:
        return load_shards(cfg["path"], cfg["samples"] or None, 250.0)
    sets, prior = [], None
    per = max(cfg["samples"] // len(SENSORS), 1)
    for k, sensor in enumerate(SENSORS):
        out = folder / sensor
        try:
            if len(SynthShards(out)) >= per:
                sets.append(load_shards(out, per, 250.0))
                continue
        except HandtrackError:
            pass
        out.mkdir(parents=True, exist_ok=True)
        prior = prior or PosePrior.load()
        synth = SynthConfig(sensor=sensor, jitter_mm=cfg["jitter_mm"], seed=cfg["seed"] + k)
        from tqdm import tqdm
        with tqdm(total=per, desc=f"synthetic {sensor}", file=sys.stderr, disable=not progress) as bar:
            generate_shard(out, 0, per, per, synth, prior, progress=bar.update)
        (out / "config.json").write_text(json.dumps({**synth.__dict__, "n": per}))
        sets.append(load_shards(out, per, 250.0))
    return concat_crops(sets, True)


def critic_input(feat: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """What the AWH critic sees: the weighted feature map at unit RMS per sample. Without the normalisation f
    wins against the critic by scaling its real features up (measured: the critic term ran to -100 within 100
    steps while the pose loss quadrupled)."""
    feat = feat.float()
    rms = feat.pow(2).mean((1, 2, 3), keepdim=True).sqrt().clamp(min=1e-6)
    return weights * feat / rms


class FinetuneTrainer:
    def __init__(self, config: dict, start: str | Path, sessions: SessionCrops, synthetic: CropSet, out_dir: Path,
                 resume: bool = False, quiet: bool = False):
        self.config, self.out, self.quiet = config, Path(out_dir), quiet
        if config["threads"]:
            torch.set_num_threads(int(config["threads"]))
        torch.manual_seed(config["seed"])
        self.model, self.model_config, self.start_version = load_start(start)
        self.methods = tuple(config["methods"])
        self.cube = float(self.model_config["model"]["cube_mm"])
        self.half = self.cube / 2
        self.sessions, self.synthetic = sessions, synthetic
        # m as it came: the anchor's target (m's own output, so a trained mapping is held, not undone)
        self.start_m = copy.deepcopy(self.model.m).eval().requires_grad_(False)
        if "murauer" not in self.methods:
            self.model.m.requires_grad_(False)
        self.critic = (FeatureCritic(self.model_config["model"]["fused"])
                       if "awh" in self.methods and config["awh"]["critic"] > 0 else None)
        self.step, self.history = 0, []
        n = len(sessions.crops)
        self.pseudo = torch.zeros(n, 21, 3)
        self.keep = torch.zeros(n, dtype=torch.bool)
        self.lengths = np.zeros(21)
        self.thickness = 1.0  # of the user's fingers, x the reference hand's (AWH's regulariser), fitted at refresh
        self.pseudo_stats: list[dict] = []
        self.opt = self._optimisers()
        if resume:
            self._resume()

    # --- the route real crops take, and training mode -----------------------------------------------------
    def route(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.p(m.m(m.f(x)))

    def _train_mode(self) -> None:
        self.model.train()
        for mod in self.model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.eval()  # frozen statistics (see the module docstring)

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(self.config["bf16"]))

    def _optimisers(self) -> dict:
        m, wd, lr = self.model, self.config["weight_decay"], self.config["lr"]
        params = [*m.f.parameters(), *m.p.parameters()]
        if "murauer" in self.methods:
            params += list(m.m.parameters())
        opt = {"main": torch.optim.AdamW(params, lr, weight_decay=wd)}
        if "murauer" in self.methods:
            opt["h"] = torch.optim.AdamW(m.h.parameters(), lr, weight_decay=wd)
        if self.critic is not None:
            opt["critic"] = torch.optim.Adam(self.critic.parameters(), lr, betas=(0.5, 0.9))
        return opt

    def lr_at(self, step: int) -> float:
        cfg = self.config
        if step < cfg["warmup"]:
            return cfg["lr"] * (step + 1) / cfg["warmup"]
        return cfg["lr"] if step < cfg["steps"] // 2 else cfg["lr"] * 0.1

    # --- pseudo-labels (SemiHand) ---------------------------------------------------------------------------
    @torch.no_grad()
    def refresh_pseudo_labels(self) -> dict:
        cfg = self.config["semihand"]
        self.model.eval()
        crops = self.sessions.crops
        rng = np.random.default_rng([self.config["seed"], 31, self.step])
        views = [torch.zeros(1, 3)] + [T.sample_transforms(1, rng, cfg["weak_deg"], cfg["weak_shift"])
                                       for _ in range(cfg["views"] - 1)]
        preds = []
        for s in range(0, len(crops), 64):
            x = crops.images(np.arange(s, min(s + 64, len(crops))))
            per_view = []
            for v in views:
                params = v.expand(len(x), 3)
                with self._autocast():
                    y = self.route(T.transform_crops(x, params)).float()
                per_view.append(T.invert_joints(y, params))
            preds.append(torch.stack(per_view, 1))
        preds = torch.cat(preds).numpy() * self.half                            # (N, V, 21, 3) mm, crop-relative
        mean = preds.mean(1)
        disagreement = np.linalg.norm(preds - mean[:, None], axis=-1).mean((1, 2))
        agreeing = disagreement <= np.median(disagreement)
        self.lengths = bone_lengths(mean[agreeing])
        corrected = correct(mean, self.lengths)
        residual = np.linalg.norm(corrected - mean, axis=-1).mean(1)
        score = disagreement + residual
        self.pseudo = torch.from_numpy((corrected / self.half).astype(np.float32))
        self.keep = torch.from_numpy(score <= cfg["tau_mm"])
        stats = {"step": self.step, "kept_share": float(self.keep.float().mean()),
                 "disagreement_mm": float(np.median(disagreement)), "residual_mm": float(np.median(residual)),
                 "bone_lengths_mm": [round(float(v), 1) for v in self.lengths]}
        if "awh" in self.methods:
            sample = np.linspace(0, len(crops) - 1, min(len(crops), 64)).astype(int)
            self.thickness = fit_thickness(self.pseudo[sample], crops.images(sample),
                                           torch.from_numpy(crops.centre[sample]), self.cube)
            stats["thickness"] = self.thickness
        self.pseudo_stats.append(stats)
        return stats

    # --- one step ------------------------------------------------------------------------------------------
    def _step(self, rng: np.random.Generator) -> dict[str, float]:
        cfg, m, beta = self.config, self.model, self.config["beta"]
        sh = cfg["semihand"]
        syn, ses = self.synthetic, self.sessions.crops
        idx_s = rng.integers(len(syn), size=cfg["batch"]["synthetic"])
        idx_r = rng.integers(len(ses), size=cfg["batch"]["session"])
        x_s, y_s = T.strong_augment(syn.images(idx_s), syn.targets(idx_s), rng, sh["strong_deg"], sh["strong_shift"])
        x_r = ses.images(idx_r)
        semihand = "semihand" in self.methods
        params = T.sample_transforms(len(idx_r), rng, sh["weak_deg"], sh["weak_shift"]) if semihand else None
        x_rt = T.transform_crops(x_r, params) if semihand else x_r
        out: dict[str, torch.Tensor] = {}
        self._train_mode()
        with self._autocast():
            feats = m.f(torch.cat([x_s, x_rt]))
            f_s, f_r = feats[: len(idx_s)], feats[len(idx_s):]
            mapped = m.m(f_r)
            pred_r = m.p(mapped).float()
            out["l_sup"] = pose_loss(m.p(f_s), y_s, beta)
            total = out["l_sup"]
            if semihand:
                keep = self.keep[idx_r]
                if keep.any():
                    target = T.transform_joints(self.pseudo[idx_r], params)
                    out["l_pl"] = pose_loss(pred_r[keep], target[keep], beta)
                    total = total + sh["pseudo"] * out["l_pl"]
                with torch.no_grad():
                    teacher = T.transform_joints(self.route(x_r).float(), params)
                out["l_cons"] = pose_loss(pred_r, teacher, beta)
                total = total + sh["consistency"] * out["l_cons"]
            if "murauer" in self.methods:
                m.h.requires_grad_(False)
                out["l_m"] = (m.h(mapped).float() ** 2).mean()
                # m's only other signal: on synthetic features m keeps doing what it did. Without it Adam moves m at
                # full speed on the critic's gradient alone, whatever its weight (measured: 17.0 -> 21.6 mm on the
                # user domain)
                with torch.no_grad():
                    held = self.start_m(f_s.detach()).float()
                out["l_anchor"] = F.mse_loss(m.m(f_s).float(), held)
                total = total + cfg["murauer"]["adversarial"] * out["l_m"] + cfg["murauer"]["anchor"] * out["l_anchor"]
            if self.critic is not None:
                w = channel_weights(f_s, f_r)[None, :, None, None]
                self.critic.requires_grad_(False)
                out["l_w"] = -self.critic(critic_input(f_r, w)).mean()
                total = total + cfg["awh"]["critic"] * out["l_w"]
        if "awh" in self.methods:  # the regulariser in float32: square roots of small differences
            centre = torch.from_numpy(ses.centre[idx_r])
            out["l_depth"] = depth_regulariser(pred_r, x_rt, centre, self.cube, thickness=self.thickness)
            total = total + cfg["awh"]["depth"] * out["l_depth"]
        self.opt["main"].zero_grad(set_to_none=True)
        total.backward()
        self.opt["main"].step()
        if "murauer" in self.methods:
            m.h.requires_grad_(True)
            with self._autocast():
                l_h = (m.h(f_s.detach()).float() ** 2).mean() + ((m.h(mapped.detach()).float() - 1) ** 2).mean()
            self.opt["h"].zero_grad(set_to_none=True)
            l_h.backward()
            self.opt["h"].step()
            out["l_h"] = l_h
        if self.critic is not None:
            self.critic.requires_grad_(True)
            a, b = critic_input(f_s.detach(), w), critic_input(f_r.detach(), w)
            l_c = self.critic(b).mean() - self.critic(a).mean()
            gp = gradient_penalty(self.critic, a, b)
            self.opt["critic"].zero_grad(set_to_none=True)
            (l_c + cfg["awh"]["gradient_penalty"] * gp).backward()
            self.opt["critic"].step()
            out["l_critic"], out["gp"] = l_c, gp
        return {k: float(v.detach()) for k, v in out.items()}

    # --- the run -------------------------------------------------------------------------------------------
    def run(self, on_progress=None) -> dict:
        from tqdm import tqdm

        cfg = self.config
        steps = cfg["steps"]
        refresh_at = {int(k * steps / cfg["semihand"]["refresh"]) for k in range(cfg["semihand"]["refresh"])}
        bar = tqdm(total=steps, initial=self.step, desc="fine-tune", file=sys.stderr, disable=self.quiet,
                   dynamic_ncols=True)
        running: dict[str, list[float]] = {}
        t_last, n_last = time.perf_counter(), self.step
        while self.step < steps:
            if {"semihand", "awh"} & set(self.methods) and self.step in refresh_at and \
                    not any(s["step"] == self.step for s in self.pseudo_stats):
                self.refresh_pseudo_labels()
            for o in self.opt.values():
                for g in o.param_groups:
                    g["lr"] = self.lr_at(self.step)
            rng = np.random.default_rng([cfg["seed"], self.step])
            torch.manual_seed(int(rng.integers(2**62)))
            for k, v in self._step(rng).items():
                running.setdefault(k, []).append(v)
            self.step += 1
            if self.step % cfg["log_every"] == 0 or self.step == steps:
                now = time.perf_counter()
                row = {"step": self.step, "lr": self.lr_at(self.step - 1),
                       "steps_per_s": (self.step - n_last) / max(now - t_last, 1e-9),
                       **{k: float(np.mean(v)) for k, v in running.items()}}
                if self.pseudo_stats:
                    row["kept_share"] = self.pseudo_stats[-1]["kept_share"]
                self.history.append(row)
                t_last, n_last, running = now, self.step, {}
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith("l_")})
            if self.step % cfg["ckpt_every"] == 0 or self.step == steps:
                self.save()
            bar.update(1)
            if on_progress is not None:
                on_progress(self.step, steps)
        bar.close()
        return {"steps": self.step, "pseudo_labels": self.pseudo_stats}

    # --- checkpoints -----------------------------------------------------------------------------------------
    def save(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt = {"format": FORMAT, "model": self.model.state_dict(),
                "critic": self.critic.state_dict() if self.critic is not None else {},
                "optim": {k: o.state_dict() for k, o in self.opt.items()}, "step": self.step,
                "history": self.history, "pseudo": self.pseudo, "keep": self.keep,
                "lengths": torch.from_numpy(self.lengths), "thickness": self.thickness, "pseudo_stats": json.dumps(self.pseudo_stats),
                "config": json.dumps(self.config), "start_version": self.start_version}
        write_checkpoint(ckpt, self.out / "last.pt")
        return self.out / "last.pt"

    def _resume(self) -> None:
        path = self.out / "last.pt"
        ckpt = read_checkpoint(path, FORMAT, "fine-tuning")
        if json.loads(ckpt["config"]) != self.config:
            raise HandtrackError(f"{path}: a run with other settings; use them, or another --out")
        if ckpt["pseudo"].shape[0] != len(self.sessions.crops):
            raise HandtrackError(f"{path}: a run on other sessions; use another --out")
        self.model.load_state_dict(ckpt["model"])
        if self.critic is not None:
            self.critic.load_state_dict(ckpt["critic"])
        for k, o in self.opt.items():
            o.load_state_dict(ckpt["optim"][k])
        self.step, self.history = int(ckpt["step"]), list(ckpt["history"])
        self.pseudo, self.keep = ckpt["pseudo"], ckpt["keep"]
        self.lengths = ckpt["lengths"].numpy()
        self.thickness = float(ckpt["thickness"])
        self.pseudo_stats = json.loads(ckpt["pseudo_stats"])

    def write_murauer_checkpoint(self, path: Path, meta: dict) -> Path:
        """The tuned model as a MURAUER training checkpoint (what export and a later fine-tuning read)."""
        config = json.loads(json.dumps(self.model_config))
        config["name"] = meta.get("name", "finetuned")
        config["stages"]["pretrain"]["steps"] = 0
        config["meta"] = {"training_data": meta.get("training_data", ""), "command": meta.get("command", "")}
        ckpt = {"format": MURAUER_FORMAT, "model": self.model.state_dict(), "optim": {},
                "position": {"stage": 0, "step": 0}, "history": [], "config": json.dumps(config)}
        write_checkpoint(ckpt, path)
        return path
