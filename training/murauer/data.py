"""MURAUER's training data, all as depth crops in memory (`CropSet`, normalised per batch by the runtime's crop
code):

    synthetic       labelled synthetic crops (view 0 of every shard folder)
    views           (view 0, view 1) of the same instants, from multi-view shards: what g learns to predict
    real_labelled   target-domain crops whose labels training may use
    real_unlabelled target-domain crops without labels: shards past labelled_fraction, folders of depth frames,
                    recorded sessions
    paired          real crops and synthetic renderings of the same hand at the same place (l_c)

Real frames without labels are cropped where the runtime tracker puts the hand (folders), or around the palm
of the session's recorded prediction (sessions); each frame gives `crops_per_frame` crops with the synthetic
data's centre jitter, so that a handful of real frames still fill batches without repeating one crop.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import Intrinsics
from handtrack.inference.crop import crop_depth, crop_window
from handtrack.inference.errors import HandtrackError
from handtrack.training.crossingnets.data import CropSet, concat_crops, load_shards
from handtrack.training.synth.generator import SynthShards


@dataclass
class ViewPairs:
    """The same instants seen by two cameras: view 0 is what f sees, view 1 what g must predict.
    `code` (N, 12) tells g which view to draw: view 1's rotation from view 0 (9) and its crop centre in view 0's
    frame, relative to view 0's crop centre, in normalised units (3)."""
    first: CropSet
    second: CropSet
    code: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


@dataclass
class MurauerData:
    synthetic: CropSet
    views: ViewPairs | None = None
    real_labelled: CropSet | None = None
    real_unlabelled: CropSet | None = None
    paired_real: CropSet | None = None
    paired_synthetic: CropSet | None = None

    def describe(self) -> str:
        parts = [f"{len(self.synthetic)} synthetic"]
        for name in ("views", "real_labelled", "real_unlabelled", "paired_real"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{len(value)} {name.replace('_', ' ')}")
        return ", ".join(parts)


def view_code(R: np.ndarray, t: np.ndarray, centre0: np.ndarray, centre1: np.ndarray, cube_mm: float) -> np.ndarray:
    """(N, 12): view 1's rotation (from view 0's camera frame) and its crop centre seen from view 0, relative to
    view 0's crop centre, / (cube/2)."""
    c1_in_0 = np.einsum("nji,nj->ni", R, centre1 - t)  # x0 = R^T (x1 - t)
    rel = (c1_in_0 - centre0) / (cube_mm / 2)
    return np.concatenate([R.reshape(len(R), 9), rel], 1).astype(np.float32)


def load_view_pairs(path: str | Path, limit: int | None, cube_mm: float) -> ViewPairs | None:
    shards = SynthShards(path)
    if shards.config.get("views", 1) < 2:
        return None
    names = ("depth", "centre", "joints", "view_R", "view_t")
    a0 = shards.view_arrays(names[:3], view=0, limit=limit)
    a1 = shards.view_arrays(names, view=1, limit=limit)
    first = CropSet(a0["depth"], a0["centre"].astype(np.float32), a0["joints"].astype(np.float32), cube_mm)
    second = CropSet(a1["depth"], a1["centre"].astype(np.float32), None, cube_mm)
    code = view_code(a1["view_R"].astype(np.float64), a1["view_t"].astype(np.float64),
                     a0["centre"].astype(np.float64), a1["centre"].astype(np.float64), cube_mm)
    return ViewPairs(first, second, code)


def jittered_crops(depth_mm: np.ndarray, K: Intrinsics, centre: np.ndarray, n: int, jitter_mm: float,
                   cube_mm: float, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n raw crops (uint16 mm) of one frame around `centre` moved by N(0, jitter) per axis; and their centres."""
    crops = np.zeros((n, size, size), np.uint16)
    centres = np.zeros((n, 3), np.float32)
    for k in range(n):
        c = np.asarray(centre, np.float64) + (rng.normal(0.0, jitter_mm, 3) if k else 0.0)
        raw = crop_depth(depth_mm, crop_window(c, K, cube_mm, size))
        crops[k] = np.clip(np.rint(raw), 0, 65535).astype(np.uint16)
        centres[k] = c
    return crops, centres


def _crops_around(found, src: dict, cube_mm: float, rng: np.random.Generator, default_crops: int) -> CropSet | None:
    """`crops_per_frame` jittered crops around each (frame, hand centre) of `found`; None if it found none."""
    crops, centres = [], []
    for frame, centre in found:
        c, cc = jittered_crops(frame.depth_mm, frame.intrinsics, centre, src.get("crops_per_frame", default_crops),
                               src.get("jitter_mm", 5.0), cube_mm, 128, rng)
        crops.append(c)
        centres.append(cc)
    return CropSet(np.concatenate(crops), np.concatenate(centres), None, cube_mm) if crops else None


def _frames_crops(src: dict, cube_mm: float, rng: np.random.Generator) -> CropSet:
    """Unlabelled crops of a folder of depth frames, where the tracker finds the hand."""
    from handtrack.inference.sources.folder import open_dataset
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    _, frames = open_dataset(src["path"])
    tracker = HandTracker(TrackerOptions(model=src.get("locator_model", "crossingnets"), smoothing=None))

    def found():
        for i in range(min(len(frames), src.get("limit") or len(frames))):
            tracker.reset()  # frames of a folder need not follow each other: no seeding from the last palm
            result = tracker.process(frames[i])
            if result.present and result.centre_mm is not None:
                yield frames[i], result.centre_mm

    crops = _crops_around(found(), src, cube_mm, rng, default_crops=32)
    if crops is None:
        raise HandtrackError(f"{src['path']}: the tracker found no hand in any frame")
    return crops


def _session_crops(src: dict, cube_mm: float, rng: np.random.Generator) -> CropSet:
    """Unlabelled crops of a recorded session around the palm of each frame's recorded prediction."""
    from handtrack.inference.datasets.session import SessionDataset
    from handtrack.inference.recording.reader import META_PREDICTION

    with SessionDataset(src["path"], min_presence=src.get("min_presence", 0.5)) as data:
        def found():
            for i in range(min(len(data), src.get("limit") or len(data))):
                frame = data[i]
                prediction = frame.meta.get(META_PREDICTION)
                if prediction and prediction["present"] and prediction["joints_mm"] is not None:
                    yield frame, skeleton.palm_centre(np.asarray(prediction["joints_mm"], np.float64))

        crops = _crops_around(found(), src, cube_mm, rng, default_crops=1)
    if crops is None:
        raise HandtrackError(f"{src['path']}: no frame of this session has a recorded hand")
    return crops


def nyu_pairs(data_dir: str | Path, n: int, cube_mm: float, rng: np.random.Generator,
              sensor: str = "primesense") -> tuple[CropSet, CropSet]:
    """The labelled NYU frame and our hand model fitted to its 36 joints, rendered with `sensor`'s noise at the
    same crop centres: (real crops with the fitted model's 21 joints as labels, synthetic crops)."""
    from handtrack.inference.datasets import nyu
    from handtrack.inference.handmodel.fit import fit_to_joints
    from handtrack.training.synth.generator import render_view
    from handtrack.training.synth.scene import build_scene
    from handtrack.training.synth.sensors import SENSORS

    root = Path(data_dir) / "nyu"
    frame = nyu.load_frame(root / "test_depth_1_0000001.png", root / "test_joints36_xyz_0000001.json")
    fit = fit_to_joints(frame.joints_xyz[None], "nyu36")
    scene = build_scene(rng, fit.pose[0], fit.shape[0], body_probability=1.0)
    palm = frame.joints_xyz[skeleton.NYU14_FROM_36[skeleton.NYU14_PALM]]  # the benchmark crop centre
    real, centres = jittered_crops(frame.depth_mm, frame.intrinsics, palm, n, 5.0, cube_mm, 128, rng)
    synth = np.zeros_like(real)
    for k in range(n):
        crop, _ = render_view(scene, frame.intrinsics, SENSORS[sensor], centres[k].astype(np.float64), cube_mm,
                              128, rng)
        synth[k] = np.clip(np.rint(crop), 0, 65535).astype(np.uint16)
    joints = np.repeat(scene.joints[None].astype(np.float32), n, 0)
    return CropSet(real, centres, joints, cube_mm), CropSet(synth, centres.copy(), joints.copy(), cube_mm)


def load_data(data: dict, cube_mm: float, seed: int) -> MurauerData:
    rng = np.random.default_rng([seed, 11])
    synthetic = concat_crops([load_shards(s["path"], s.get("limit"), cube_mm) for s in data["synthetic"]], True)
    pairs = [p for p in (load_view_pairs(s["path"], s.get("limit"), cube_mm) for s in data["synthetic"]) if p]
    views = None
    if pairs:
        views = ViewPairs(concat_crops([p.first for p in pairs], True), concat_crops([p.second for p in pairs], False),
                          np.concatenate([p.code for p in pairs]))
    labelled, unlabelled = [], []
    for k, src in enumerate(data["real"]):
        if src["kind"] == "shards":
            s = load_shards(src["path"], src.get("limit"), cube_mm)
            order = np.random.default_rng([seed, 7, k]).permutation(len(s))  # the same split on every resume
            n_lab = int(round(float(src.get("labelled_fraction", 0.0)) * len(s)))
            labelled.append(s.subset(np.sort(order[:n_lab])))
            unlabelled.append(s.subset(np.sort(order[n_lab:]), labelled=False))
        elif src["kind"] == "frames":
            unlabelled.append(_frames_crops(src, cube_mm, rng))
        else:
            unlabelled.append(_session_crops(src, cube_mm, rng))
    paired_real = paired_synth = None
    if data["paired"]:
        made = [nyu_pairs(p["path"], p.get("crops", 64), cube_mm, rng) for p in data["paired"]]
        paired_real = concat_crops([m[0] for m in made], True)
        paired_synth = concat_crops([m[1] for m in made], True)
    return MurauerData(synthetic, views, concat_crops(labelled, True), concat_crops(unlabelled, False), paired_real,
                       paired_synth)
