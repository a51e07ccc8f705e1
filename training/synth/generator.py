"""Synthetic training data: sample a scene, render each view at the sensor's resolution, add the sensor's noise,
crop with the runtime's crop code, and write deterministic shards.

Sample i of a run with seed S draws everything from `default_rng([S, i])`, so a dataset does not depend on how
it is split into shards or workers. Only the window of the sensor image that the crop reads (plus a margin for
shadows cast from outside it) is rendered: it is the same rays, so the same pixels, as a full frame.
"""
from __future__ import annotations

import json
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import Intrinsics
from handtrack.inference.crop import CropWindow, crop_depth, crop_window
from handtrack.inference.errors import HandtrackError
from handtrack.inference.frame import DepthFrame
from handtrack.inference.handmodel.render import render_capsules, render_planes

from . import scene as scenes
from .pose_prior import PosePrior
from .sensors import SENSORS, apply_sensor, shadow_margin_px

FORMAT_VERSION = 1
# Rows rendered above and below the crop's window, for the sensors' edge neighbourhoods (<= 3 px).
MARGIN_Y = 4


@dataclass(frozen=True)
class SynthConfig:
    sensor: str = "primesense"
    cube_mm: float = 250.0
    size: int = 128
    views: int = 1
    jitter_mm: float = 5.0  # crop centre noise (MURAUER / DeepPrior++ augmentation)
    z_range: tuple[float, float] = (350.0, 1100.0)  # palm depth, mm; narrowed to what the sensor sees
    orbit_deg: float = 60.0  # how far extra views may orbit around the hand
    seed: int = 0
    # Hand-size multipliers, one drawn per sample (uniformly among them): a target domain of hands larger and
    # smaller than the prior's (the MURAUER experiment). The default draws nothing, so old datasets stay as they were.
    size_factors: tuple[float, ...] = (1.0,)


@dataclass
class Sample:
    """One instant seen from `views` cameras (view 0 is the main camera)."""
    depth: np.ndarray    # (V, S, S) uint16 crop in mm, 0 = missing (2001 = missing/far for NYU-like sensors)
    joints: np.ndarray   # (V, 21, 3) float32 mm, each view's camera frame
    centre: np.ndarray   # (V, 3) crop centre (ground-truth palm centre + jitter), mm
    window: np.ndarray   # (V, 4) uc, vc, sx, sy of each crop (see CropWindow)
    pose: np.ndarray     # (V, 29)
    shape: np.ndarray    # (8,)
    view_R: np.ndarray   # (V, 3, 3) view-0 camera -> view camera
    view_t: np.ndarray   # (V, 3)
    timing: dict = field(default_factory=dict)


def hand_depth_range(config: SynthConfig, model) -> tuple[float, float]:
    """Palm depths to sample: the configured range, kept where the sensor sees the whole hand."""
    lo = max(config.z_range[0], model.min_range_mm + 100.0)
    hi = min(config.z_range[1], model.max_range_mm - 150.0)
    if hi <= lo:
        raise HandtrackError(f"sensor {model.name} sees nothing in palm depths {config.z_range} mm")
    return lo, hi


def render_view(scene: scenes.Scene, K: Intrinsics, model, centre: np.ndarray, cube_mm: float, size: int,
                rng: np.random.Generator, timing: dict | None = None) -> tuple[np.ndarray, CropWindow]:
    """Crop (float32 mm) of one noisy sensor image of `scene`, centred on `centre`."""
    t0 = time.perf_counter()
    window = crop_window(centre, K, cube_mm, size)
    us, vs = window.sample_grid()
    # Shadows and occlusion holes inside the crop can be cast by surfaces outside it, on the side towards the
    # projector / second imager: render that many extra columns there.
    reach = shadow_margin_px(model, K, max(centre[2] - cube_mm / 2, 100.0), min(model.max_range_mm, 4000.0))
    left, right = (reach, 1) if model.baseline_mm < 0 else (1, reach)
    u0, u1 = max(int(us.min()) - left, 0), min(int(us.max()) + 1 + right, K.width)
    v0, v1 = max(int(vs.min()) - MARGIN_Y, 0), min(int(vs.max()) + 1 + MARGIN_Y, K.height)
    if u1 <= u0 or v1 <= v0:  # the cube lies entirely outside the image
        return np.zeros((size, size), np.float32), window
    K_roi = K.window(u0, v0, u1 - u0, v1 - v0)
    depth, labels = render_capsules(scene.capsules, K_roi, scene.parts)
    depth, labels = render_planes(scene.planes, K_roi, scene.plane_parts, depth, labels)
    t1 = time.perf_counter()
    noisy = apply_sensor(depth, K_roi, model, rng, labels=labels)
    t2 = time.perf_counter()
    crop = crop_depth(noisy, crop_window(centre, K_roi, cube_mm, size))
    if timing is not None:
        timing["render"] = timing.get("render", 0.0) + t1 - t0
        timing["noise"] = timing.get("noise", 0.0) + t2 - t1
        timing["crop"] = timing.get("crop", 0.0) + time.perf_counter() - t2
    return crop, window


def make_sample(index: int, config: SynthConfig, prior: PosePrior, timing: dict | None = None) -> Sample:
    rng = np.random.default_rng([config.seed, index])
    model = SENSORS[config.sensor]
    K = model.intrinsics
    t0 = time.perf_counter()
    articulation, shape = prior.sample(rng, 1)
    if len(config.size_factors) > 1 or config.size_factors[0] != 1.0:
        shape[0, 0] *= config.size_factors[int(rng.integers(len(config.size_factors)))]
    base = scenes.sample_scene(rng, K, articulation[0], shape[0], hand_depth_range(config, model))
    if timing is not None:
        timing["scene"] = timing.get("scene", 0.0) + time.perf_counter() - t0
    V, S = config.views, config.size
    out = Sample(np.zeros((V, S, S), np.uint16), np.zeros((V, 21, 3), np.float32), np.zeros((V, 3), np.float32),
                 np.zeros((V, 4), np.float32), np.zeros((V, 29), np.float32), shape[0].astype(np.float32),
                 np.tile(np.eye(3, dtype=np.float32), (V, 1, 1)), np.zeros((V, 3), np.float32))
    palm = skeleton.palm_centre(base.joints)
    for v in range(V):
        sc = base
        if v > 0:
            R, t = scenes.orbit_view(rng, palm, config.orbit_deg)
            sc = base.transformed(R, t)
            out.view_R[v], out.view_t[v] = R, t
        centre = skeleton.palm_centre(sc.joints) + rng.normal(0.0, config.jitter_mm, 3)
        crop, window = render_view(sc, K, model, centre, config.cube_mm, S, rng, timing)
        out.depth[v] = np.clip(np.rint(crop), 0, 65535).astype(np.uint16)
        out.joints[v] = sc.joints
        out.centre[v] = window.center
        out.window[v] = (window.uc, window.vc, window.sx, window.sy)
        out.pose[v] = sc.pose
    return out


# --- shards ----------------------------------------------------------------------------------------------

def shard_name(k: int) -> str:
    return f"shard_{k:05d}.npz"


def write_shard(path: Path, samples: list[Sample], config: SynthConfig, first_index: int) -> None:
    arrays = {name: np.stack([getattr(s, name) for s in samples]) for name in
              ("depth", "joints", "centre", "window", "pose", "shape", "view_R", "view_t")}
    meta = dict(format_version=FORMAT_VERSION, config=asdict(config), first_index=first_index, count=len(samples),
                intrinsics=SENSORS[config.sensor].intrinsics.to_dict(), joint_set="canonical21",
                units="mm, OpenCV camera frame (x right, y down, z forward)")
    tmp = path.with_suffix(".tmp.npz")
    try:
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)  # a shard is either complete or absent, never half-written
    finally:
        tmp.unlink(missing_ok=True)  # after a failed write (full disk), leave no partial file behind


def generate_shard(out_dir: Path, k: int, n_total: int, shard_size: int, config: SynthConfig,
                   prior: PosePrior | None = None, progress=None) -> Path:
    prior = prior or PosePrior.load()
    first = k * shard_size
    samples = []
    for i in range(first, min(first + shard_size, n_total)):
        samples.append(make_sample(i, config, prior))
        if progress is not None:
            progress(1)
    path = Path(out_dir) / shard_name(k)
    write_shard(path, samples, config, first)
    return path


class SynthShards:
    """Reader of a folder of shards: whole arrays for training, or DepthFrames (one view) for evaluation."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        # A writer killed mid-shard leaves shard_*.tmp.npz (write_shard's temporary name): never a shard.
        self.paths = sorted(p for p in self.root.glob("shard_*.npz") if not p.name.endswith(".tmp.npz"))
        if not self.paths:
            raise HandtrackError(f"no synthetic shards (shard_*.npz) in {self.root}")
        self._cache: dict[int, dict] = {}
        # Counts come from each shard's small metadata member, so opening a large set decompresses nothing else.
        metas = [self._read(k, ("meta",))["meta"] for k in range(len(self.paths))]
        self._counts = [m["count"] for m in metas]
        self.config: dict = metas[0]["config"]  # SynthConfig as written (sensor, cube_mm, size, ...)
        self._offsets = np.cumsum([0] + self._counts)

    def _read(self, k: int, members: tuple[str, ...] | None = None) -> dict:
        path = self.paths[k]
        try:
            with np.load(path) as z:
                data = {name: z[name] for name in set(members or z.files) | {"meta"}}
            data["meta"] = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise HandtrackError(f"{path}: not a readable handtrack shard ({exc})") from exc
        if data["meta"].get("format_version") != FORMAT_VERSION:
            raise HandtrackError(f"{path}: shard format {data['meta'].get('format_version')}, "
                                 f"this handtrack reads format {FORMAT_VERSION}")
        return data

    def _load(self, k: int) -> dict:
        if k not in self._cache:
            self._cache = {k: self._read(k)}  # keep one shard in memory
        return self._cache[k]

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def arrays(self) -> dict[str, np.ndarray]:
        """All shards concatenated (for training on small sets)."""
        parts = [self._load(k) for k in range(len(self.paths))]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0] if name != "meta"}

    def view_arrays(self, names: tuple[str, ...] = ("depth", "centre", "joints"), view: int = 0,
                    limit: int | None = None) -> dict[str, np.ndarray]:
        """One view of the named per-sample arrays over all shards (at most `limit` samples), reading shard by
        shard so that a large set is never held twice in memory."""
        out: dict[str, list[np.ndarray]] = {name: [] for name in names}
        n = 0
        for k in range(len(self.paths)):
            if limit is not None and n >= limit:
                break
            data = self._read(k, names)
            take = len(data[names[0]]) if limit is None else min(len(data[names[0]]), limit - n)
            for name in names:
                out[name].append(data[name][:take, view])
            n += take
        return {name: np.concatenate(parts) for name, parts in out.items()}

    def frame(self, i: int, view: int = 0) -> DepthFrame:
        k = int(np.searchsorted(self._offsets, i, side="right") - 1)
        data = self._load(k)
        j = i - self._offsets[k]
        meta = data["meta"]
        K = Intrinsics.from_dict(meta["intrinsics"])
        cfg = meta["config"]
        uc, vc, sx, sy = data["window"][j, view].astype(np.float64)
        window = CropWindow(data["centre"][j, view].astype(np.float64), cfg["cube_mm"], cfg["size"], uc, vc, sx, sy)
        return DepthFrame(depth_mm=data["depth"][j, view].astype(np.float32), intrinsics=window.intrinsics(K),
                          joints_xyz=data["joints"][j, view].astype(np.float64), joint_set="canonical21",
                          frame_id=f"{self.paths[k].name}:{j}:{view}",
                          meta=dict(window=window, sensor_intrinsics=K, sensor=cfg["sensor"]))

    def __iter__(self):
        for i in range(len(self)):
            yield self.frame(i)
