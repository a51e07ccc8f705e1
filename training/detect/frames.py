"""Synthetic full frames for the hand detector and crops for the presence net, with the hard cases of real use.

One scene per index (`default_rng([seed, index])`, so a set does not depend on workers or shards) is rendered
at the sensor's full resolution with its noise, then gives:

- the detector's frame: every `DETECT_STRIDE`-th pixel, as the runtime subsamples it, with the palm centre
  (pixels of the full frame and mm), whether a hand is there and whether it is a left hand;
- crops for the presence net, cut with the runtime's crop code: one around the palm (centre off by up to
  `POSITIVE_RADIUS_MM`, as the localiser leaves it before the centre refiner) and negatives centred on the torso,
  head (whole, or as real heads look: hair, eyes and the image top missing), upper arm, forearm, clutter, wall,
  a hand cut by the crop's edge, anything cut by the frame's edge, or anything in a frame without a hand.

Cases (`CASES`): a hand alone in front of the person; the body's lower edge nearer the camera than the hand; the
hand touching the body; no hand (an arm without a hand, the person alone, clutter, a wall, nothing); and the whole
frame at a wrong depth scale (a hand that is 2x or 0.5x the size a hand can have at its depth: not a hand). The
hand's view (palm, back or edge towards the camera) comes from the scene generator's orbit; half the frames are
mirrored, so half the hands are left hands.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import Intrinsics, deproject, project
from handtrack.inference.crop import crop_and_normalise
from handtrack.inference.handmodel import surface
from handtrack.inference.handmodel.render import render_capsules, render_planes
from handtrack.training.synth import scene as scenes
from handtrack.training.synth.pose_prior import PosePrior
from handtrack.training.synth.sensors import SENSORS, apply_sensor

DETECT_STRIDE = 4            # the runtime reads every 4th pixel of a 640x480 frame: 160x120
MAX_DEPTH_MM = 2000.0        # the tracker's max_depth_mm: farther is treated as missing
HAND_Z_RANGE = (250.0, 1200.0)
CASES = ("hand", "body_nearer", "touching", "no_hand", "wrong_scale")
CASE_P = (0.45, 0.15, 0.12, 0.20, 0.08)
SENSOR_P = {"primesense": 0.3, "realsense": 0.35, "sr305": 0.35}
NEGATIVE_KINDS = ("body", "head", "forearm", "clutter", "wall", "hand_cut", "anything", "border")
BORDER_PX = 60               # a "border" negative is centred this close to the frame's edge, which cuts it
POSITIVE_RADIUS_MM = 40.0    # a crop centred this close to the palm is a hand crop
NEGATIVE_MIN_MM = 110.0      # ... and one centred at least this far away is not
HAND_ONLY = surface.HAND_PARTS
MIN_VISIBLE = 0.5            # a hand frame keeps at least this share of the hand's pixels unoccluded


@dataclass
class FrameSample:
    sensor: str
    case: str
    view: str                 # "palm", "back" or "edge" towards the camera ("" without a hand)
    depth: np.ndarray         # (H/4, W/4) uint16 mm, subsampled as the runtime does, 0 = missing or too far
    hand: bool
    left: bool
    palm_uv: np.ndarray       # (2,) full-frame pixels (nan without a hand)
    palm_mm: np.ndarray       # (3,) camera frame (nan without a hand)
    crops: np.ndarray         # (C, S, S) float16 normalised crops
    crop_hand: np.ndarray     # (C,) 1 = a hand crop
    crop_left: np.ndarray     # (C,) 1 = a left hand (meaningful for hand crops)
    crop_kind: list[str]
    crop_centre: np.ndarray   # (C, 3) mm, camera frame: where each crop was cut
    full_depth: np.ndarray | None = None  # float32 full-resolution frame (kept only when asked for)


def sample_sensor(rng: np.random.Generator) -> str:
    names = list(SENSOR_P)
    return names[int(rng.choice(len(names), p=list(SENSOR_P.values())))]


def palm_view(joints: np.ndarray) -> str:
    """Which side of the hand faces the camera: the palm normal against the line of sight."""
    wrist, index, pinky = joints[0], joints[5], joints[17]
    normal = np.cross(index - wrist, pinky - wrist)  # out of the palm for a right hand
    normal /= np.linalg.norm(normal) + 1e-9
    sight = skeleton.palm_centre(joints)
    cos = float(normal @ sight) / (np.linalg.norm(sight) + 1e-9)
    if abs(cos) < 0.35:
        return "edge"
    return "palm" if cos < 0 else "back"


def _render(scene: scenes.Scene, K: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    depth, labels = render_capsules(scene.capsules, K, scene.parts)
    return render_planes(scene.planes, K, scene.plane_parts, depth, labels)


def _body_capsule(scene: scenes.Scene, k: int) -> int | None:
    """The index of the scene's k-th body capsule (0 upper arm, 1 torso, 2 head), or None without a body."""
    body = np.nonzero(scene.parts == scenes.PART_BODY)[0]
    return int(body[k]) if body.size >= 3 else None


def _torso(scene: scenes.Scene) -> int | None:
    return _body_capsule(scene, 1)


def _head(scene: scenes.Scene) -> int | None:
    return _body_capsule(scene, 2)


def _as_real_heads_look(depth: np.ndarray, K: Intrinsics, head: np.ndarray, radius: float,
                        rng: np.random.Generator) -> np.ndarray | None:
    """A copy of the frame in which the head has lost what real depth cameras lose on a head: the hair (no depth
    above a ragged line across the head), the eyes, and often everything above the image's top edge. Real heads
    cut up like this reached hand-like presence (0.4-0.98 on the SR305 frames) when the presence net had only seen
    whole, smooth ones."""
    (u, v), = project(head[None], K)
    r_px = radius * K.fx / head[2]
    if not (-r_px < u < K.width + r_px and -r_px < v < K.height + r_px):
        return None
    out = depth.copy()
    v0, v1 = int(max(v - 1.3 * r_px, 0)), int(min(v + 1.3 * r_px, K.height))
    u0, u1 = int(max(u - 1.3 * r_px, 0)), int(min(u + 1.3 * r_px, K.width))
    if v1 <= v0 or u1 <= u0:
        return None
    vs, us = np.mgrid[v0:v1, u0:u1]
    on_head = np.abs(out[v0:v1, u0:u1] - head[2]) < radius + 30.0
    # The hairline: a ragged line somewhere between above the head's centre and its forehead.
    cols = np.arange(u0, u1)
    line = v + r_px * (rng.uniform(-0.5, 0.25) + 0.15 * np.sin(cols / max(r_px, 1.0) * rng.uniform(2.0, 6.0)
                                                            + rng.uniform(0, 6.3)))
    hair = on_head & (vs < line[None, :] + rng.normal(0, 0.06 * r_px, vs.shape))
    for _ in range(2):  # eyes
        if rng.random() < 0.6:
            eu, ev = u + rng.choice([-1, 1]) * rng.uniform(0.2, 0.45) * r_px, v + rng.uniform(0.0, 0.3) * r_px
            hair |= on_head & ((us - eu) ** 2 + (vs - ev) ** 2 < (rng.uniform(0.08, 0.16) * r_px) ** 2)
    out[v0:v1, u0:u1][hair] = 0.0
    if rng.random() < 0.5:  # the top of the image cuts the head
        out[:int(np.clip(v + rng.uniform(-0.6, 0.4) * r_px, 0, K.height))] = 0.0
    return out


def _body_nearer(scene: scenes.Scene, rng: np.random.Generator) -> bool:
    """Tilt the torso so that its lower end comes nearer the camera than the palm (a person leaning in, a camera
    looking down at someone sitting)."""
    t = _torso(scene)
    if t is None:
        return False
    palm_z = skeleton.palm_centre(scene.joints)[2]
    r_bottom = scene.capsules[t, 7]
    scene.capsules[t, 5] = palm_z - rng.uniform(20.0, 200.0) + r_bottom
    return True


def _touching(scene: scenes.Scene, rng: np.random.Generator) -> bool:
    """Move the torso (and head) behind the hand so that the hand rests on it."""
    t = _torso(scene)
    if t is None:
        return False
    palm = skeleton.palm_centre(scene.joints)
    r_top = scene.capsules[t, 6]
    shift = np.array([palm[0] + rng.normal(0, 60.0) - scene.capsules[t, 0], 0.0,
                      palm[2] + rng.uniform(15.0, 45.0) + r_top - scene.capsules[t, 2]])
    for i in (t, t + 1):
        scene.capsules[i, 0:3] += shift
        scene.capsules[i, 3:6] += shift
    return True


def _visible_share(scene: scenes.Scene, K_small: Intrinsics, labels_small: np.ndarray) -> float:
    alone, _ = render_capsules(scene.capsules[np.isin(scene.parts, HAND_ONLY)], K_small)
    total = int((alone > 0).sum())
    return float(np.isin(labels_small, HAND_ONLY).sum()) / total if total else 0.0


def make_frame(index: int, seed: int, prior: PosePrior, crop_size: int = 128, cube_mm: float = 250.0,
               crops: int = 3, keep_full: bool = False) -> FrameSample:
    rng = np.random.default_rng([seed, index])
    sensor = sample_sensor(rng)
    model = SENSORS[sensor]
    K = model.intrinsics
    case = CASES[int(rng.choice(len(CASES), p=CASE_P))]
    lo = max(HAND_Z_RANGE[0], model.min_range_mm + 60.0)
    hi = min(HAND_Z_RANGE[1], model.max_range_mm - 150.0)
    articulation, shape = prior.sample(rng, 1)
    shape[0, 0] *= rng.uniform(0.88, 1.12)  # users' hands vary beyond the prior's shapes
    scale = 1.0
    if case == "wrong_scale":
        scale = float(rng.choice([rng.uniform(1.7, 2.6), rng.uniform(0.35, 0.6)]))
        lo, hi = max(lo, 150.0 / scale), min(hi, (model.max_range_mm - 150.0) / scale)
    for _attempt in range(6):
        scene = scenes.sample_scene(rng, K, articulation[0], shape[0], (lo, hi),
                                    body_probability=1.0 if case in ("body_nearer", "touching") else 0.85)
        if case == "body_nearer" and not _body_nearer(scene, rng):
            continue
        if case == "touching" and not _touching(scene, rng):
            continue
        if case == "no_hand":
            kind = rng.choice(["arm", "body", "scene", "wall", "nothing"], p=[0.35, 0.25, 0.2, 0.15, 0.05])
            drop = {"arm": HAND_ONLY, "body": HAND_ONLY + (surface.PART_FOREARM,),
                    "scene": HAND_ONLY + (surface.PART_FOREARM, scenes.PART_BODY)}.get(kind)
            if kind in ("wall", "nothing"):
                drop = HAND_ONLY + (surface.PART_FOREARM, scenes.PART_BODY, scenes.PART_CLUTTER)
            scene = scene.without(drop)
            if kind == "nothing":
                scene = scenes.Scene(scene.pose, scene.shape, scene.joints, scene.capsules, scene.parts,
                                     scene.planes[:0], scene.plane_parts[:0])
        if scale != 1.0:
            scene = scene.scaled(scale)
        if rng.random() < 0.5:
            scene, left = scene.mirrored(), True
        else:
            left = False
        if case in ("no_hand", "wrong_scale"):
            break
        small = K.scaled(1.0 / DETECT_STRIDE)
        _, labels_small = _render(scene, small)
        if _visible_share(scene, small, labels_small) >= MIN_VISIBLE:
            break
    else:
        case = "hand_hidden"  # six scenes in a row hid the hand: keep the last one, labelled as it is
    clean, labels = _render(scene, K)
    depth = apply_sensor(clean, K, model, rng, labels=labels)
    depth[(depth > MAX_DEPTH_MM) | ~np.isfinite(depth)] = 0.0
    hand = case in ("hand", "body_nearer", "touching")
    palm = skeleton.palm_centre(scene.joints) if hand else np.full(3, np.nan)
    palm_uv = project(palm[None], K)[0] if hand else np.full(2, np.nan)
    view = palm_view(scene.joints if not left else scene.joints * [-1, 1, 1]) if hand else ""
    small_depth = np.clip(np.rint(depth[::DETECT_STRIDE, ::DETECT_STRIDE]), 0, 65535).astype(np.uint16)
    crop_list, crop_hand, kinds, centres = _crops(depth, labels, K, scene, hand, case, rng, crops, crop_size, cube_mm)
    return FrameSample(sensor, case, view, small_depth, hand, left, palm_uv, palm, crop_list, crop_hand,
                       np.full(len(crop_hand), float(left), np.float32), kinds, centres,
                       depth if keep_full else None)


def _surface_point(depth: np.ndarray, labels: np.ndarray, K: Intrinsics, parts: tuple[int, ...] | None,
                   rng: np.random.Generator, border: bool = False) -> np.ndarray | None:
    """A random observed 3D point on one of `parts` (any valid pixel when None), pushed a little into the object
    as a centre of mass would be. `border`: within BORDER_PX of the frame's edge, off the hand (a body, head or
    arm cut by the frame: on the real frames such fragments looked like hands to a net that had not seen them)."""
    ok = depth > 0
    if parts is not None:
        ok &= np.isin(labels, parts)
    if border:
        ok &= ~np.isin(labels, HAND_ONLY)
        inner = np.zeros_like(ok)
        inner[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX] = True
        ok &= ~inner
    vs, us = np.nonzero(ok[::2, ::2])
    if vs.size == 0:
        return None
    k = int(rng.integers(vs.size))
    u, v = us[k] * 2, vs[k] * 2
    z = float(depth[v, u]) + rng.uniform(0.0, 40.0)
    return deproject((u, v), z, K)


def _negative_centre(kind: str, depth, labels, K, scene, palm, rng) -> np.ndarray | None:
    if kind == "hand_cut":
        if palm is None:
            return None
        d = rng.normal(size=3) * [1.0, 1.0, 0.3]
        return palm + d / np.linalg.norm(d) * rng.uniform(NEGATIVE_MIN_MM + 20.0, 180.0)
    parts = {"body": (scenes.PART_BODY,), "forearm": (surface.PART_FOREARM,), "clutter": (scenes.PART_CLUTTER,),
             "wall": (scenes.PART_WALL,), "anything": None, "border": None}[kind]
    for _ in range(4):
        c = _surface_point(depth, labels, K, parts, rng, border=kind == "border")
        if c is None:
            return None
        if palm is None or np.linalg.norm(c - palm) >= NEGATIVE_MIN_MM:
            return c
    return None


def _head_centre(depth, K, scene, palm, rng) -> tuple[np.ndarray | None, np.ndarray]:
    """A crop centre on the head, seen as real heads are (see _as_real_heads_look), or None."""
    h = _head(scene)
    if h is None:
        return None, depth
    head, radius = scene.capsules[h, 0:3], float(scene.capsules[h, 6])
    if palm is not None and np.linalg.norm(head - palm) < NEGATIVE_MIN_MM:
        return None, depth
    seen = _as_real_heads_look(depth, K, head, radius, rng)
    if seen is None:
        return None, depth
    # The centre a localiser would pick: on the head's front, somewhere across its face.
    centre = head + np.array([rng.normal(0, 0.3 * radius), rng.normal(0, 0.3 * radius), -radius + rng.uniform(0, 40)])
    return centre, seen


def _crops(depth, labels, K, scene, hand, case, rng, n, size, cube_mm):
    palm = skeleton.palm_centre(scene.joints) if case != "no_hand" else None
    out, is_hand, kinds, centres = [], [], [], []
    if palm is not None and n:
        # Around the palm: a hand crop, or in a wrong-scale frame a hand of impossible size.
        off = rng.normal(size=3)
        off *= rng.uniform(0.0, POSITIVE_RADIUS_MM) / np.linalg.norm(off)
        out.append(crop_and_normalise(depth, K, palm + off, cube_mm, size)[0])
        centres.append(palm + off)
        is_hand.append(1.0 if hand else 0.0)
        kinds.append("hand" if hand else "wrong_scale")
    tries = 0
    while len(out) < n and tries < 4 * n:
        tries += 1
        kind = NEGATIVE_KINDS[int(rng.integers(len(NEGATIVE_KINDS)))]
        seen = depth
        if kind == "head":
            centre, seen = _head_centre(depth, K, scene, palm, rng)
        else:
            centre = _negative_centre(kind, depth, labels, K, scene, palm if hand or case == "wrong_scale" else None,
                                      rng)
        if centre is None:
            continue
        if centre[2] <= 50.0:
            continue
        out.append(crop_and_normalise(seen, K, centre, cube_mm, size)[0])
        centres.append(centre)
        is_hand.append(0.0)
        kinds.append(kind)
    if not out:
        return np.zeros((0, size, size), np.float16), np.zeros(0, np.float32), [], np.zeros((0, 3))
    return np.stack(out).astype(np.float16), np.asarray(is_hand, np.float32), kinds, np.asarray(centres, np.float64)
