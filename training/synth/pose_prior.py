"""A pose prior learned from real hands: the hand model fitted to the NYU test poses, then a Gaussian mixture
over the fitted articulation angles (and a Gaussian over the shape factors).

`build_prior` (CLI: `handtrack data fit-prior`) does the whole job from the 36 NYU joints of
../shared/data/nyu/test_joints36_uvd.npz:
1. `calibrate_nyu_keypoints`: where each NYU point sits on our model. Alternates fitting poses and shapes on a
   subset of frames with the current offsets and re-estimating each point's offset in the frame of its bone
   (the mean of R^T (target - origin)), choosing the bone among the plausible ones by residual. Writes
   inference/handmodel/keypoints_nyu.json.
2. Fits every frame with the calibrated points and reports the residuals.
3. Fits the mixture (EM in numpy) to the 21 fitted articulation angles and writes pose_prior.npz. Only the
   mixture parameters and the shape mean/covariance are saved; the fitted per-frame angles stay out of the repo.

`PosePrior.load().sample(rng, n)` then draws natural poses (fists, pointing, pinches, open hands) with
correlated joints, clipped to the joint limits, for the synthetic data generator.
Torch-free: numpy (and the runtime's hand model) only.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import NYU, uvd_to_xyz
from handtrack.inference.datasets.nyu import load_joints36_uvd
from handtrack.inference.handmodel import keypoints as kp
from handtrack.inference.handmodel.fit import fit_to_joints
from handtrack.inference.handmodel.kinematics import PALM_BONE, digit_bones, forward
from handtrack.inference.handmodel.params import (ARTIC, NUM_POSE, POSE_LOWER, POSE_UPPER, SHAPE_LOWER, SHAPE_NAMES,
                                                  SHAPE_UPPER)

PRIOR_PATH = Path(__file__).with_name("pose_prior.npz")
NYU_JOINTS_FILE = Path("nyu") / "test_joints36_uvd.npz"
_NYU_DIGIT = {"little": "pinky", "ring": "ring", "middle": "middle", "index": "index", "thumb": "thumb"}


def load_nyu_xyz(data_dir: str | Path) -> np.ndarray:
    """The 36 NYU test joints (frames, 36, 3) in mm, our camera frame."""
    return uvd_to_xyz(load_joints36_uvd(Path(data_dir) / NYU_JOINTS_FILE), NYU)


# --- 1. calibrating the NYU points ----------------------------------------------------------------------
def initial_nyu_keypoints() -> kp.KeypointSet:
    """The starting guess: per segment KNU<k>_B at the segment's base joint and KNU<k>_A further out on it
    (KNU3_A at the tip); the palm points at the wrist sides, palm centre and wrist centre (README semantics).
    Only a seed: the calibration moves every point and may move it to another bone."""
    bone, along, offset = [], [], []
    for name in skeleton.NYU36_NAMES[:30]:
        digit, point = name.split("_", 1)
        segment = {"knu3": 2, "knu2": 1, "knu1": 0}[point[:4]]
        bone.append(digit_bones(_NYU_DIGIT[digit])[segment])
        along.append({"knu3_a": 1.0, "knu3_b": 0.0}.get(point, 0.5 if point.endswith("_a") else 0.0))
        offset.append((0.0, 0.0))
    # palm_1..6: ulnar and radial wrist sides, palm centre, ulnar and radial palm sides, wrist centre (mm).
    palm_length = forward(np.zeros(NUM_POSE)).length[PALM_BONE]
    for x, y in ((-15, 0), (15, 0), (0, 50), (-20, 45), (15, 40), (0, 0)):
        bone.append(PALM_BONE)
        along.append(y / palm_length)
        offset.append((x, 0.0))
    return kp.KeypointSet("nyu36", skeleton.NYU36_NAMES, np.array(bone), np.array(along), np.array(offset))


def candidate_bones(name: str) -> tuple[int, ...]:
    """Bones an NYU point may attach to: its digit's three bones or the palm (palm points: the palm only)."""
    digit = name.split("_", 1)[0]
    return (PALM_BONE,) if digit == "palm" else digit_bones(_NYU_DIGIT[digit]) + (PALM_BONE,)


def reestimate_offsets(kin, targets: np.ndarray, ks: kp.KeypointSet) -> tuple[kp.KeypointSet, np.ndarray]:
    """For fitted hands `kin` (N frames) and their targets (N, J, 3): each point's mean local offset on each
    candidate bone; keep the bone where that mean explains the targets best. Returns the new set and the
    mean residual (J,) in mm of each point with its new offset (poses held fixed)."""
    bone, along, offset = ks.bone.copy(), ks.along.copy(), ks.offset_mm.copy()
    residual = np.zeros(len(ks))
    for j, name in enumerate(ks.names):
        best = None
        for b in candidate_bones(name):
            local = np.einsum("nji,nj->ni", kin.R[:, b], targets[:, j] - kin.origin[:, b])
            scales = kp.offset_scales(kin, np.array([b]))[:, 0]
            mean = (local / scales).mean(0)
            err = np.linalg.norm(mean * scales - local, axis=-1).mean()
            if best is None or err < best[0]:
                best = (err, b, mean)
        residual[j], bone[j], (offset[j, 0], along[j], offset[j, 1]) = best
    return kp.KeypointSet(ks.name, ks.names, bone, along, offset), residual


def calibrate_nyu_keypoints(xyz: np.ndarray, rounds: int = 6, every: int = 8, iterations: int = 30,
                            out_path: str | Path | None = kp.NYU_JSON,
                            progress: bool = True) -> tuple[kp.KeypointSet, dict]:
    """Alternate fitting (every `every`-th frame of xyz (N, 36, 3)) and re-estimating the offsets, `rounds`
    times from `initial_nyu_keypoints`; write the result to out_path (None: do not write).

    The median residual drops from ~5.7 mm (the seed) to ~2.0 mm after one round and ~1.8 mm after six; later
    rounds creep on (~1.67 mm after 40) along a weakly determined direction (palm width against the finger
    offsets) that over-relaxation turns unstable, so a few rounds it is."""
    targets = xyz[::every]
    ks = initial_nyu_keypoints()
    history = []
    rounds_iter = range(rounds)
    if progress:
        from tqdm import tqdm
        rounds_iter = tqdm(rounds_iter, desc="calibrate NYU keypoints", unit="round")
    for _ in rounds_iter:
        fit = fit_to_joints(targets, ks, iterations=iterations)
        ks, point_residual = reestimate_offsets(forward(fit.pose, fit.shape), targets, ks)
        history.append(round(float(np.median(fit.residual_mm)), 3))
    report = {"frames": len(targets), "rounds": rounds, "median_residual_mm_per_round": history,
              "point_residual_mm": dict(zip(ks.names, np.round(point_residual, 2).tolist()))}
    ks = kp.KeypointSet.from_json_dict(ks.to_json_dict(), ks.names)  # the set as its file holds it (rounded)
    if out_path is not None:
        note = (f"Calibrated by handtrack.training.synth.pose_prior.calibrate_nyu_keypoints: {rounds} rounds of "
                f"fitting the model to every {every}th frame of the NYU test split (36 joints, {len(targets)} frames, "
                f"both subjects) and re-estimating each point's offset on the candidate bone that explains it "
                f"best. bone: the model bone it rides on; along: fraction of that bone's length; x_mm, z_mm: "
                f"offsets along the bone's x and z at the reference hand size.")
        Path(out_path).write_text(json.dumps(ks.to_json_dict(note, {"calibration": report}), indent=1) + "\n")
        kp.reload_nyu()
    return ks, report


# --- 2. the mixture -----------------------------------------------------------------------------------------
@dataclass
class GaussianMixture:
    """Full-covariance Gaussian mixture: weights (K,), means (K, D), covariances (K, D, D)."""
    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 200,
            reg: float = 1e-4, tol: float = 1e-6) -> "GaussianMixture":
        """EM from a k-means++-style start. `reg` is added to every covariance's diagonal (a floor on the spread
        of each component, so none collapses onto a few frames)."""
        means = X[_kmeanspp(X, k, rng)]
        resp = _one_hot(_nearest(X, means), k)
        gm, prev = None, -np.inf
        for _ in range(iterations):
            gm = cls._m_step(X, resp, reg)
            log_p = gm._component_log_prob(X)
            ll = np.logaddexp.reduce(log_p, axis=1)
            resp = np.exp(log_p - ll[:, None])
            if ll.mean() - prev < tol:
                break
            prev = ll.mean()
        return gm

    @classmethod
    def _m_step(cls, X, resp, reg):
        nk = resp.sum(0) + 1e-10
        means = resp.T @ X / nk[:, None]
        diff = X[None] - means[:, None]                                   # (K, N, D)
        covs = np.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None]
        covs += reg * np.eye(X.shape[1])
        return cls(nk / nk.sum(), means, covs)

    def _component_log_prob(self, X: np.ndarray) -> np.ndarray:
        """(N, K): log(weight_k N(x | mean_k, cov_k))."""
        L = np.linalg.cholesky(self.covs)                                  # (K, D, D)
        diff = X[None] - self.means[:, None]                               # (K, N, D)
        z = diff @ np.swapaxes(np.linalg.inv(L), 1, 2)                     # L^-1 (x - mean), (K, N, D)
        log_det = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1)
        d = X.shape[1]
        return (np.log(self.weights) - 0.5 * (d * np.log(2 * np.pi) + log_det))[None] - 0.5 * (z ** 2).sum(-1).T

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        return np.logaddexp.reduce(self._component_log_prob(np.atleast_2d(X)), axis=1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        z = rng.standard_normal((n, self.means.shape[1]))
        return self.means[comp] + np.einsum("nij,nj->ni", self._cholesky[comp], z)

    @cached_property
    def _cholesky(self) -> np.ndarray:
        # The generator draws one pose at a time: factor the covariances once.
        return np.linalg.cholesky(self.covs)


def _kmeanspp(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    idx = [int(rng.integers(len(X)))]
    d2 = ((X - X[idx[0]]) ** 2).sum(-1)
    for _ in range(k - 1):
        idx.append(int(rng.choice(len(X), p=d2 / d2.sum())))
        d2 = np.minimum(d2, ((X - X[idx[-1]]) ** 2).sum(-1))
    return np.array(idx)


def _nearest(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.argmin(((X[:, None] - centres[None]) ** 2).sum(-1), axis=1)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


# --- 3. the prior -----------------------------------------------------------------------------------------
@dataclass
class PosePrior:
    """Natural articulations (a mixture over the 21 angles, radians) and hand shapes (a Gaussian)."""
    articulation: GaussianMixture
    shape_mean: np.ndarray   # (8,)
    shape_cov: np.ndarray    # (8, 8)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PosePrior":
        path = Path(path) if path is not None else PRIOR_PATH
        with np.load(path) as z:
            return cls(GaussianMixture(z["weights"], z["means"], z["covs"]), z["shape_mean"], z["shape_cov"])

    def save(self, path: str | Path, **meta) -> None:
        gm = self.articulation
        np.savez_compressed(path, weights=gm.weights, means=gm.means, covs=gm.covs, shape_mean=self.shape_mean,
                            shape_cov=self.shape_cov, meta=json.dumps(meta))

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, 21) articulation angles and (n, 8) shape factors, clipped to the model's limits."""
        artic = np.clip(self.articulation.sample(rng, n), POSE_LOWER[ARTIC], POSE_UPPER[ARTIC])
        shape = rng.multivariate_normal(self.shape_mean, self.shape_cov, size=n, method="cholesky")
        return artic, np.clip(shape, SHAPE_LOWER, SHAPE_UPPER)


# Joints do not see the thickness factor (the fit leaves it at 1); adult palm thickness varies by roughly 7 %
# (one standard deviation) in anthropometric tables, so that is the spread it gets, independent of the rest.
THICKNESS_STD = 0.07


def shape_statistics(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (8,) and covariance (8, 8) of fitted shape factors, with the unobservable thickness filled in."""
    mean = shapes.mean(0)
    cov = np.cov(shapes, rowvar=False)
    t = SHAPE_NAMES.index("thickness")
    mean[t] = 1.0
    cov[t, :] = cov[:, t] = 0.0
    cov[t, t] = THICKNESS_STD ** 2
    return mean, cov + 1e-8 * np.eye(len(mean))


def _stats(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    return {"median": float(np.median(x)), "mean": float(x.mean()), "p90": float(np.percentile(x, 90)),
            "max": float(x.max())}


def build_prior(data_dir: str | Path, out_path: str | Path | None = None, components: int = 16,
                spread_deg: float = 5.0, calibrate: bool = True, keypoints_path: str | Path | None = kp.NYU_JSON,
                seed: int = 0, progress: bool = True) -> dict:
    """Calibrate the NYU points (unless calibrate=False: use the shipped ones) and save them to keypoints_path,
    fit all NYU poses with them, fit the prior and save it to out_path (default: the packaged pose_prior.npz).
    Returns a report."""
    start = time.perf_counter()
    xyz = load_nyu_xyz(data_dir)
    report: dict = {"frames": len(xyz)}
    keypoints: kp.KeypointSet | str = "nyu36"
    if calibrate:
        keypoints, report["calibration"] = calibrate_nyu_keypoints(xyz, out_path=keypoints_path, progress=progress)
    report["calibration_seconds"] = round(time.perf_counter() - start, 1)

    t0 = time.perf_counter()
    fit = fit_to_joints(xyz, keypoints, progress=progress)
    report["fit_seconds"] = round(time.perf_counter() - t0, 1)
    report["residual_nyu36_mm"] = _stats(fit.residual_mm)
    report["residual_nyu14_subset_mm"] = _stats(np.nanmean(fit.per_joint[:, list(skeleton.NYU14_FROM_36)], 1))

    artic = fit.pose[:, ARTIC]
    gm = GaussianMixture.fit(artic, components, np.random.default_rng(seed), reg=np.deg2rad(spread_deg) ** 2)
    prior = PosePrior(gm, *shape_statistics(fit.shape))
    out_path = Path(out_path) if out_path is not None else PRIOR_PATH
    prior.save(out_path, source="NYU test split, 36 joints, fitted by handtrack data fit-prior",
               frames=len(xyz), components=components, spread_deg=spread_deg,
               residual_nyu36_median_mm=report["residual_nyu36_mm"]["median"])
    report.update(components=components, mean_log_likelihood=float(gm.log_prob(artic).mean()),
                  prior_path=str(out_path), seconds=round(time.perf_counter() - start, 1))
    return report


# --- figures (docs/figures) ---------------------------------------------------------------------------------
def save_samples_figure(path: str | Path, prior: "PosePrior | None" = None, rows: int = 3, cols: int = 8,
                        seed: int = 0, wrist_mm: float = 600.0) -> None:
    """Depth renders of prior samples: each sample palm to the camera (the rest orientation, fingers up) and,
    below it, turned 75 degrees about the vertical so that flexion shows. For eyeballing the prior."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from handtrack.inference.camera import project
    from handtrack.inference.handmodel import render, surface
    from handtrack.inference.handmodel.kinematics import axis_angle_to_matrix, matrix_to_axis_angle
    from handtrack.inference.handmodel.params import ROT, rest_pose

    prior = prior or PosePrior.load()
    n = rows * cols
    artic, shape = prior.sample(np.random.default_rng(seed), n)
    palm_view = rest_pose((n,), wrist_mm=(0.0, 80.0, wrist_mm))
    side_view = palm_view.copy()
    turn = axis_angle_to_matrix(np.array([0.0, np.deg2rad(75.0), 0.0]))  # about the camera's vertical
    side_view[:, ROT] = matrix_to_axis_angle(turn @ axis_angle_to_matrix(palm_view[0, ROT]))
    fig, axes = plt.subplots(2 * rows, cols, figsize=(2 * cols, 2 * 2 * rows))
    for v, pose in enumerate((palm_view, side_view)):
        pose[:, ARTIC] = artic
        kin = forward(pose, shape)
        for i in range(n):
            ax = axes[2 * (i // cols) + v, i % cols]
            centre = project(kin.joints[i].mean(0), NYU)
            half = 105
            window = NYU.window(int(centre[0]) - half, int(centre[1]) - half, 2 * half, 2 * half)
            caps, parts = surface.capsules(_index(kin, i))
            depth, _ = render.render_capsules(caps, window, parts)
            ax.imshow(np.where(depth > 0, depth, np.nan), cmap="viridis_r", vmin=wrist_mm - 100, vmax=wrist_mm + 60)
            ax.set_axis_off()
    fig.suptitle(f"pose prior samples (seed {seed}), depth at {wrist_mm:.0f} mm: palm view, and below it the "
                 f"same hand turned 75 deg", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def save_nyu_fit_figure(path: str | Path, data_dir: str | Path,
                        frames=(0, 1100, 2200, 3300, 4400, 5500, 6600, 7700)) -> None:
    """NYU target joints and the fitted model's NYU keypoints, projected into the NYU camera."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from handtrack.inference.camera import project

    xyz = load_nyu_xyz(data_dir)[list(frames)]
    fit = fit_to_joints(xyz, "nyu36")
    pred = kp.keypoints(forward(fit.pose, fit.shape), "nyu36")
    cols = (len(frames) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(3 * cols, 6.4))
    for ax, f, target, model, res in zip(axes.ravel(), frames, xyz, pred, fit.residual_mm):
        t_uv, m_uv = project(target, NYU), project(model, NYU)
        for d in range(6):  # five digits and the palm, each drawn as its chain of six points
            ax.plot(*t_uv[6 * d:6 * d + 6].T, "-", color="0.6", lw=1)
        ax.plot(*t_uv.T, "o", ms=5, mfc="none", color="k", label="NYU label")
        ax.plot(*m_uv.T, ".", ms=5, color="tab:red", label="fitted model")
        ax.set_title(f"frame {f + 1}: {res:.1f} mm", fontsize=9)
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("NYU-36 labels vs the hand model fitted to them (pixels, NYU camera); mean joint distance per frame",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _index(kin, i: int):
    """One hand of a batched Kinematics."""
    return type(kin)(kin.R[i], kin.origin[i], kin.length[i], kin.shape[i])
