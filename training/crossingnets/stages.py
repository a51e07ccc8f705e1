"""The staged schedule of Crossing Nets, one class per stage.

  vae    pose VAE pretraining (KL + reconstruction), its outer layers started from a PCA of the poses
  gan    depth GAN pretraining on all depth maps, labelled or not; the generator by feature matching
  ali    Ali by the clipped reconstruction loss (generator frozen), posterior + smoothness heads at 10x lr
  joint  Algorithm 1: a discriminator update (L_pos + L_smo + L_gan) and a generator update
         (L_recons + L_smo + feature matching) per iteration
  render (not in the paper, off by default) Ali and the generator alone by the clipped reconstruction loss
  refine (not in the paper, off by default) the pose route alone, L_pos + decoded-joint error, learning rate
         decayed to 0

Each optimisation step runs one forward of a *loss module* (an nn.Module whose forward returns the loss), so
that under torchrun the module is wrapped once in DistributedDataParallel and its gradients are averaged over
processes. A network that a loss reads but does not train (the discriminator in a generator update) is kept out
of the loss module's parameters: `_Frozen` holds it without registering it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from handtrack.inference.errors import HandtrackError

from . import losses
from .networks import POSE_LATENT, CrossingNets


class _Frozen:
    """A module reference that nn.Module does not register (its parameters belong to another optimiser)."""

    def __init__(self, module: nn.Module):
        self.module = module


def _adam(params, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))  # beta1 0.5 as in the paper


# --- loss modules --------------------------------------------------------------------------------------------

class VaeLoss(nn.Module):
    def __init__(self, model: CrossingNets, kl_weight: float):
        super().__init__()
        self.vae = model.vae
        self.kl_weight = kl_weight

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        recon, mu, logvar = self.vae(pose)
        return losses.vae_loss(recon, pose, mu, logvar, self.kl_weight)


class GanDiscriminatorLoss(nn.Module):
    def __init__(self, model: CrossingNets):
        super().__init__()
        self.dis = model.dis

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        logits, _ = self.dis.gan(self.dis.trunk(torch.cat([real, fake])))
        return losses.gan_discriminator(logits[:len(real)], logits[len(real):])


class GanGeneratorLoss(nn.Module):
    def __init__(self, model: CrossingNets):
        super().__init__()
        self.gen = model.gen
        self.dis = _Frozen(model.dis)

    def forward(self, z_x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fake = self.gen(z_x)
        dis = self.dis.module
        _, features = dis.gan(dis.trunk(torch.cat([real, fake])))
        return losses.feature_matching(features[:len(real)], features[len(real):]), fake


class AliLoss(nn.Module):
    def __init__(self, model: CrossingNets, tau: float):
        super().__init__()
        self.ali = model.ali
        self.gen = _Frozen(model.gen)
        self.tau = tau

    def forward(self, z: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        synth = self.gen.module(self.ali(z))
        return losses.clipped_reconstruction(synth, real, self.tau), synth


class RenderLoss(nn.Module):
    """Ali and the generator both trained: the render route alone draws labelled crops, by eq. 6 (the clipped
    squared error) or by the mean absolute error, whose optimum is the per-pixel median: where the latent leaves
    a finger's exact place uncertain, the squared error's mean smears it over the places it could be."""

    def __init__(self, model: CrossingNets, tau: float, loss: str):
        super().__init__()
        self.ali, self.gen = model.ali, model.gen
        self.tau, self.l1 = tau, loss == "l1"

    def forward(self, z: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        synth = self.gen(self.ali(z))
        if self.l1:
            return (synth - real).abs().mean()
        return losses.clipped_reconstruction(synth, real, self.tau)


class DiscriminatorLoss(nn.Module):
    """L_D = L_pos + L_smo (+ L_gan): the posterior, smoothness and GAN tasks on one pass of the shared trunk.

    x_l, z_l: labelled crops and their latents; x_u: unlabelled crops; synth_l = Gen(Ali(z_l[:s])),
    synth_r = Gen(Ali(z_r)) with z_r the random latents. Heads that a stage does not use are skipped."""

    def __init__(self, model: CrossingNets, gan: bool = True, smoothness: bool = True, trunk: bool = True,
                 joint_weight: float = 0.0):
        super().__init__()
        self.dis = model.dis
        self.vae = _Frozen(model.vae)
        self.use_gan, self.use_smo, self.train_trunk = gan, smoothness, trunk
        self.joint_weight = joint_weight

    def forward(self, x_l, z_l, x_u=None, synth_l=None, synth_r=None, z_r=None) -> tuple[torch.Tensor, dict]:
        parts = {k: t for k, t in (("l", x_l), ("u", x_u), ("sl", synth_l), ("sr", synth_r)) if t is not None}
        with torch.set_grad_enabled(self.train_trunk and torch.is_grad_enabled()):
            f = self.dis.trunk(torch.cat(list(parts.values())))
        chunks = dict(zip(parts, f.split([len(t) for t in parts.values()])))
        z_pred = self.dis.posterior(chunks["l"])
        out = {"pos": losses.squared_norm(z_pred - z_l)}
        if self.joint_weight:
            out["pos_j"] = self.joint_weight * losses.decoded_pose_error(self.vae.module, z_pred, z_l, POSE_LATENT)
        if self.use_smo:
            s = len(z_r)
            f_ls = chunks["l"][:s]
            out["smo"] = (losses.squared_norm(self.dis.smoothness(chunks["sr"], f_ls) - (z_r - z_l[:s]))
                          + losses.squared_norm(self.dis.smoothness(chunks["sl"], f_ls)))
        if self.use_gan:
            n_real = len(x_l) + (len(x_u) if x_u is not None else 0)
            logits, _ = self.dis.gan(f)
            out["gan_d"] = losses.gan_discriminator(logits[:n_real], logits[n_real:])
        return sum(out.values()), out


class GeneratorLoss(nn.Module):
    """L_G = L_recons + L_smo + feature matching, with the discriminator frozen."""

    def __init__(self, model: CrossingNets, tau: float):
        super().__init__()
        self.ali, self.gen = model.ali, model.gen
        self.dis = _Frozen(model.dis)
        self.tau = tau

    def forward(self, z_ls, z_r, x_real, s: int) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """z_ls: latents of the first s labelled crops of x_real; z_r: random latents."""
        synth = self.gen(self.ali(torch.cat([z_ls, z_r])))
        synth_l, synth_r = synth.split([len(z_ls), len(z_r)])
        dis = self.dis.module
        f = dis.trunk(torch.cat([x_real, synth]))
        f_real, f_sl, f_sr = f.split([len(x_real), len(z_ls), len(z_r)])
        f_ls = f_real[:s].detach()
        _, gan_features = dis.gan(f)
        out = {
            "recons": losses.clipped_reconstruction(synth_l, x_real[:s], self.tau),
            "smo_g": (losses.squared_norm(dis.smoothness(f_sr, f_ls) - (z_r - z_ls))
                      + losses.squared_norm(dis.smoothness(f_sl, f_ls))),
            "fm": losses.feature_matching(gan_features[:len(x_real)], gan_features[len(x_real):]),
        }
        return sum(out.values()), out, synth.detach()


# --- stages ----------------------------------------------------------------------------------------------------

class Stage:
    """One stage: its optimisers and one training step. `t` is the Trainer (data, model, codec, replicate)."""

    def __init__(self, t, cfg: dict):
        self.t, self.cfg = t, cfg
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def state_dict(self) -> dict:
        return {k: o.state_dict() for k, o in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        missing = [k for k in self.optimizers if k not in state]
        if missing:
            raise HandtrackError(f"the checkpoint has no optimiser state for {', '.join(missing)}; "
                                 "resume from a checkpoint written during this stage")
        for k, o in self.optimizers.items():
            o.load_state_dict(state[k])

    def begin(self) -> None:
        """Called once when the stage starts fresh (not on resume)."""

    def step(self, rng: np.random.Generator) -> dict[str, float]:
        raise NotImplementedError

    def _cosine_lr(self, opt: torch.optim.Optimizer) -> None:
        """The stage's learning rate decayed to 0 along a cosine over its steps."""
        lr = 0.5 * self.cfg["lr"] * (1 + math.cos(math.pi * self.t.position["step"] / self.cfg["steps"]))
        for group in opt.param_groups:
            group["lr"] = lr

    @staticmethod
    def _update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class VaeStage(Stage):
    def __init__(self, t, cfg):
        super().__init__(t, cfg)
        self.loss = t.replicate(VaeLoss(t.model, cfg["kl_weight"]))
        self.optimizers["vae"] = _adam(t.model.vae.parameters(), cfg["lr"])

    def begin(self) -> None:
        pose, _ = self.t.codec.encode(self.t.labelled.targets(np.arange(len(self.t.labelled))))
        self.t.model.vae.init_from_pca(pose)

    def step(self, rng):
        pose, _ = self.t.codec.encode(self.t.labelled.targets(rng.integers(len(self.t.labelled), size=self.cfg["batch"])))
        loss = self.loss(pose)
        self._update(self.optimizers["vae"], loss)
        return {"vae": loss.item()}


class GanStage(Stage):
    def __init__(self, t, cfg):
        super().__init__(t, cfg)
        self.d_loss = t.replicate(GanDiscriminatorLoss(t.model), unused_parameters=True)  # heads wait
        self.g_loss = t.replicate(GanGeneratorLoss(t.model))
        self.optimizers["dis"] = _adam(t.model.dis.parameters(), cfg["lr"])
        self.optimizers["gen"] = _adam(t.model.gen.parameters(), cfg["lr"])

    def step(self, rng):
        b = self.cfg["batch"]
        real = self.t.depth_batch(rng, b)
        z_x = torch.rand(b, self.t.model.gen.fc[0].in_features) * 2 - 1
        with self.t.frozen(self.t.model.dis):
            g, fake = self.g_loss(z_x, real)
            self._update(self.optimizers["gen"], g)
        d = self.d_loss(real, fake.detach())
        self._update(self.optimizers["dis"], d)
        return {"gan_d": d.item(), "fm": g.item()}


class AliStage(Stage):
    """Ali learns to render labelled poses; the posterior and smoothness heads learn on the (frozen) trunk."""

    def __init__(self, t, cfg):
        super().__init__(t, cfg)
        self.ali_loss = t.replicate(AliLoss(t.model, t.config["recons_tau"]))
        self.heads_loss = t.replicate(DiscriminatorLoss(t.model, gan=False, trunk=False), unused_parameters=True)
        self.optimizers["ali"] = _adam(t.model.ali.parameters(), cfg["lr"])
        heads = [p for m in t.model.dis.heads() for p in m.parameters()]
        self.optimizers["heads"] = _adam(heads, cfg["lr"] * cfg["head_lr_scale"])

    def step(self, rng):
        b = self.t.batch_sizes
        x_l, z_l = self.t.labelled_batch(rng, b["labelled"])
        s = b["synth"]
        z_r = self.t.random_latents(z_l, s)
        with self.t.frozen(self.t.model.gen):
            rec, synth_l = self.ali_loss(z_l[:s], x_l[:s])
            self._update(self.optimizers["ali"], rec)
            with torch.no_grad():
                synth_r = self.t.model.render(z_r)
        loss, parts = self.heads_loss(x_l, z_l, None, synth_l.detach(), synth_r, z_r)
        self._update(self.optimizers["heads"], loss)
        return {"recons": rec.item(), **{k: v.item() for k, v in parts.items()}}


def _pose_route_training(t, lr: float, joint_weight: float = 0.0) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The loss module and optimiser that train the pose route alone: trunk + posterior head, labelled crops."""
    dis = t.model.dis
    loss = t.replicate(DiscriminatorLoss(t.model, gan=False, smoothness=False, joint_weight=joint_weight),
                       unused_parameters=True)
    params = list(dis.trunk.parameters()) + list(dis.pos_convs.parameters()) + list(dis.pos_out.parameters())
    return loss, _adam(params, lr)


class JointStage(Stage):
    """Algorithm 1. With `posterior_only` it is the baseline instead: the discriminator's trunk and posterior
    head trained on labelled crops alone (L_pos), no generator."""

    def __init__(self, t, cfg):
        super().__init__(t, cfg)
        self.posterior_only = t.config["posterior_only"]
        dis = t.model.dis
        if self.posterior_only:
            self.d_loss, self.optimizers["dis"] = _pose_route_training(t, cfg["lr"])
        else:
            self.d_loss = t.replicate(DiscriminatorLoss(t.model))
            self.g_loss = t.replicate(GeneratorLoss(t.model, t.config["recons_tau"]))
            self.optimizers["dis"] = _adam(dis.parameters(), cfg["lr"])
            self.optimizers["gen"] = _adam(list(t.model.ali.parameters()) + list(t.model.gen.parameters()), cfg["lr"])

    def step(self, rng):
        b = self.t.batch_sizes
        x_l, z_l = self.t.labelled_batch(rng, b["labelled"])
        if self.posterior_only:
            loss, parts = self.d_loss(x_l, z_l)
            self._update(self.optimizers["dis"], loss)
            return {k: v.item() for k, v in parts.items()}
        s = b["synth"]
        x_u = self.t.unlabelled_batch(rng, b["unlabelled"])
        z_r = self.t.random_latents(z_l, s)
        x_real = torch.cat([x_l, x_u]) if x_u is not None else x_l
        # Generator first, so the discriminator then sees the samples of this iteration's generator.
        with self.t.frozen(self.t.model.dis):
            g, g_parts, synth = self.g_loss(z_l[:s], z_r, x_real, s)
            self._update(self.optimizers["gen"], g)
        synth_l, synth_r = synth.split([s, s])
        d, d_parts = self.d_loss(x_l, z_l, x_u, synth_l, synth_r, z_r)
        self._update(self.optimizers["dis"], d)
        return {**{k: v.item() for k, v in d_parts.items()}, **{k: v.item() for k, v in g_parts.items()}}


class RenderStage(Stage):
    """Not in the paper: after Algorithm 1, Ali and the generator alone learn to draw the labelled crops from
    their latents (L_recons, eq. 6), the discriminator untouched. Algorithm 1 gives the generator batch.synth
    reconstructions per iteration at the cost of three discriminator heads; on a CPU budget that is too few for
    fingers to appear (docs/training.md). The pose route is unaffected."""

    def __init__(self, t, cfg):
        super().__init__(t, cfg)
        self.loss = t.replicate(RenderLoss(t.model, t.config["recons_tau"], cfg["loss"]))
        self.optimizers["render"] = _adam(list(t.model.ali.parameters()) + list(t.model.gen.parameters()), cfg["lr"])

    def step(self, rng):
        self._cosine_lr(self.optimizers["render"])
        x_l, z_l = self.t.labelled_batch(rng, self.cfg["batch"])
        loss = self.loss(z_l, x_l)
        self._update(self.optimizers["render"], loss)
        return {"render": loss.item()}


class RefineStage(Stage):
    """Not in the paper: after Algorithm 1, the pose route alone learns on the labelled crops with a cosine
    learning-rate decay. On a CPU budget the joint stage sees each labelled crop about once; this stage spends
    the remaining budget on the task the shipped model serves, at about a fifth of a joint step's cost
    (docs/training.md gives the numbers)."""

    def __init__(self, t, cfg):
        super().__init__(t, cfg)
        t.model.vae.requires_grad_(False)  # trained in its own stage only; the decoded-joint loss reads it
        self.d_loss, self.optimizers["dis"] = _pose_route_training(t, cfg["lr"], cfg["joint_weight"])

    def step(self, rng):
        self._cosine_lr(self.optimizers["dis"])
        x_l, z_l = self.t.labelled_batch(rng, self.t.batch_sizes["labelled"])
        loss, parts = self.d_loss(x_l, z_l)
        self._update(self.optimizers["dis"], loss)
        return {k: v.item() for k, v in parts.items()}


STAGE_CLASSES = {"vae": VaeStage, "gan": GanStage, "ali": AliStage, "joint": JointStage, "render": RenderStage,
                 "refine": RefineStage}
