"""Depth sensor models: turn a clean rendered depth image into what a real depth camera would deliver.

The renderer gives exact depth in mm (0 = the ray hit nothing) for a window of a sensor. A sensor model adds,
in this order, the artefacts that matter for hand crops:

1. projector shadows / stereo occlusion: pixels the projector (structured light) or the second imager (stereo)
   cannot see because a nearer surface on the same row is in the way, computed geometrically from the depth;
2. edge artefacts at depth discontinuities: dropped pixels and flying pixels (depth between the two surfaces);
3. disparity noise, spatially correlated (real matchers use windows, so their noise is blotchy, not white);
4. disparity quantisation (PrimeSense: 1/8 px), so depth steps grow as z^2;
5. output: depth-unit rounding, range limits, random small holes, and the missing value (0, or 2001 like NYU).

Everything is done in disparity d = f * |baseline| / z (pixels of the window), the quantity these sensors
measure: their noise and quantisation are constant in disparity, which is why their depth error grows as z^2,
and occlusion is a comparison of columns shifted by d. The sign of `baseline_mm` says where the projector /
second imager sits along the sensor's x axis, and so on which side of a foreground edge its shadow falls.
Numbers in the presets cite their source; see docs/sensors.md.

Cost matters (the synthetic pipeline must make >= 300 samples/s on one core): a few whole-image numpy / cv2
passes, no per-pixel Python, in-place arithmetic where it is natural, and random bytes or a hash instead of
numpy's float and normal samplers (several times slower).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from handtrack.inference.camera import D435_848, NYU, SR305, Intrinsics

NYU_FAR_MM = 2001.0  # NYU frames write missing and far-background pixels as 2001 mm (../shared/data/README.md)


@dataclass(frozen=True)
class SensorModel:
    """One depth camera. Pixel quantities are at the sensor's native resolution (render windows at it)."""

    name: str
    intrinsics: Intrinsics  # full frame, native resolution
    # x of the projector (structured light) or second imager (stereo) relative to the reference camera, in mm;
    # shadows fall on the side of a foreground edge away from it. 0 = an ideal sensor: no disparity effects.
    baseline_mm: float = 0.0
    disparity_noise_px: float = 0.0  # std of the disparity noise
    noise_grain_px: int = 2  # even; noise and edge decisions are correlated over ~this many px (matching windows)
    disparity_step_px: float = 0.0  # disparity quantisation; 0 = continuous
    depth_unit_mm: float = 0.0  # output depth is rounded to multiples of this; 0 = no rounding
    min_range_mm: float = 0.0
    max_range_mm: float = math.inf
    shadows: bool = False  # projector shadows / stereo occlusion
    out_of_view_invalid: bool = False  # pixels whose match falls outside the second imager's frame (D4xx band)
    edge_step: float = 0.03  # a depth discontinuity: neighbourhood with 1 - z_near / z_far above this
    edge_radius_px: int = 1  # neighbourhood half-size for edges (and so how wide the edge artefacts are)
    edge_dropout: float = 0.0  # probability that an edge pixel is missing
    flying_pixels: float = 0.0  # probability that an edge pixel gets a depth between its near and far neighbours
    holes_per_mpx: float = 0.0  # random small holes per million pixels
    hole_radius_px: int = 1
    nyu_like: bool = False  # missing and out-of-range pixels read NYU_FAR_MM instead of 0

    def __post_init__(self):
        disparity_effects = (self.disparity_noise_px, self.disparity_step_px, self.shadows,
                             self.out_of_view_invalid, self.edge_dropout, self.flying_pixels)
        if self.baseline_mm == 0 and any(disparity_effects):
            raise ValueError(f"sensor {self.name!r}: noise, quantisation, shadows and edge artefacts need a baseline")
        if self.edge_dropout + self.flying_pixels > 1:
            raise ValueError(f"sensor {self.name!r}: edge_dropout + flying_pixels must be <= 1")
        if self.noise_grain_px % 2 or self.noise_grain_px < 2:
            raise ValueError(f"sensor {self.name!r}: noise_grain_px must be even and >= 2")

    @property
    def missing_value(self) -> float:
        return NYU_FAR_MM if self.nyu_like else 0.0


# An ideal sensor: exact depth, only the range limits and the missing convention.
CLEAN = SensorModel(
    name="clean",
    intrinsics=NYU,  # any camera would do; NYU is the benchmark's
    min_range_mm=100.0,  # chosen wider than every real preset, so "clean" never cuts what a sensor would keep
    max_range_mm=10_000.0,
)

# Kinect v1 / PrimeSense Carmine, as recorded in the NYU hand dataset.
PRIMESENSE = SensorModel(
    name="primesense",
    intrinsics=NYU,  # NYU calibration, 640x480 (REFERENCE.md section 5 and 7)
    # |75 mm|: projector-camera baseline (REFERENCE.md section 5). Negative = projector on the image's left, so
    # shadows fall to the RIGHT of foreground edges: measured in ../shared/data/nyu/test_depth_1_0000001.png, where
    # 512 near-left/far-right row gaps have a median width 0.84x the 75 mm geometric prediction, while gaps on
    # the other sides are rarer and unrelated to the geometry. (Physical side or mirrored image: the data decides.)
    baseline_mm=-75.0,
    disparity_step_px=1 / 8,  # REFERENCE.md section 5; steps ~1 mm at 0.6 m, ~2.8 mm at 1 m, as in the NYU frame
    # Khoshelham & Elberink, Sensors 12(2):1437, 2012: random error grows as z^2 to ~4 cm at 5 m. That includes
    # the 1/8 px quantisation (step 71 mm at 5 m, ~20 mm RMS); the rest, ~34 mm, is
    # sigma_d = 34 mm * f * b / (5 m)^2 = 0.034 * 588 * 0.075 / 25 ~ 0.06 px.
    disparity_noise_px=0.06,
    noise_grain_px=4,  # chosen by eye: NYU surfaces show clean iso-depth bands, little pixel-scale speckle
    depth_unit_mm=1.0,  # OpenNI and NYU store integer mm
    # ~0.5 m: nearest depth PrimeSense returns in practice (Microsoft's Kinect v1 spec: 0.8 m default mode,
    # 0.4 m near mode); the NYU test frame starts at 731 mm.
    min_range_mm=500.0,
    max_range_mm=2000.0,  # NYU writes 2001 for anything farther (frame 1: valid 731..1996 mm, the rest 2001)
    shadows=True,
    # Edge artefacts chosen by eye against the NYU frame: silhouettes fray in chunks, few mixed depths.
    edge_step=0.03,  # ~20 mm at 0.6 m: a finger lying on the palm is already an edge
    edge_radius_px=1,
    edge_dropout=0.3,
    flying_pixels=0.05,
    nyu_like=True,  # missing -> 2001 like NYU frames (dataclasses.replace(..., nyu_like=False) for 0)
)

# Intel RealSense D435 (D4xx active stereo), depth at 848x480.
REALSENSE = SensorModel(
    name="realsense",
    intrinsics=D435_848,  # inference/camera.py: D435 at 848x480, fx ~430 px (REFERENCE.md section 5)
    # Left imager is the reference, right imager 50 mm to its right (REFERENCE.md section 5, D435 datasheet):
    # occlusion holes to the LEFT of foreground edges.
    baseline_mm=50.0,
    # RMS error z^2 * subpixel / (f * b) with subpixel ~0.08 px (REFERENCE.md section 5; Grunnet-Jepsen et al.,
    # Intel "Tuning depth cameras for best performance"): ~1 mm at 0.5 m, ~4 mm at 1 m.
    disparity_noise_px=0.08,
    noise_grain_px=2,  # chosen: slightly blotchy, as window-matched stereo noise is (no D4xx frame here to measure)
    depth_unit_mm=1.0,  # D4xx default depth scale 0.001 m
    # REFERENCE.md section 5: minimum range ~0.2-0.3 m (the lower end, as for hands held close).
    min_range_mm=200.0,
    max_range_mm=10_000.0,  # D435 datasheet: depth up to ~10 m
    shadows=True,  # regions the right imager cannot see are invalid
    out_of_view_invalid=True,  # the D4xx invalid band at the left image border (no overlap with the right imager)
    # Edge artefacts and holes chosen by eye (no D4xx frame in ../shared/data): D4xx keeps many mixed depths at
    # silhouettes ("flying pixels") and drops some.
    edge_step=0.03,
    edge_radius_px=1,
    edge_dropout=0.15,
    flying_pixels=0.5,
    holes_per_mpx=150.0,  # ~9 holes in a 250x250 window
    hole_radius_px=1,  # 3x3 px
)

# Intel RealSense SR305 (SR300 coded light), 640x480, depth unit 1/8 mm.
SR305_MODEL = SensorModel(
    name="sr305",
    intrinsics=SR305,  # ../shared/data/README.md (fx = fy = 476.0068)
    # Chosen by eye against ../shared/data/realsense_sr305 frames: invalid bands are widest to the RIGHT of the
    # hand (median ~20 px for a hand ~0.3 m in front of the body, ~6-10 px on other sides), i.e. a shadow of
    # ~10-14 px on top of the edge dropout; 35 mm gives 476 * 35 * (1/500 - 1/800) ~ 12 px.
    baseline_mm=-35.0,
    # Modest: the SDK output is very smooth (pixel-to-pixel residual < 0.1 mm in the frames); 0.02 px gives
    # ~0.4 mm at 0.5 m, ~1.4 mm at 1 m. Chosen by eye, not measured.
    disparity_noise_px=0.02,
    noise_grain_px=4,  # chosen by eye: the SDK output is smooth
    depth_unit_mm=0.125,  # 1/8 mm per unit (REFERENCE.md section 5, data README)
    min_range_mm=200.0,  # REFERENCE.md section 5: range ~0.2-1.5 m
    max_range_mm=1500.0,
    shadows=True,
    # Chosen by eye against the SR305 frames: solid invalid rims, gaps of 6-8 px between a hand and the body
    # on the sides without shadow (so ~3 px on each side of a silhouette), smooth outlines, no mixed depths.
    edge_step=0.03,
    edge_radius_px=3,
    edge_dropout=1.0,
    flying_pixels=0.0,
    holes_per_mpx=100.0,  # a few small holes on the body in the frames
    hole_radius_px=1,  # 3x3 px, like those holes
)

SENSORS: dict[str, SensorModel] = {m.name: m for m in (CLEAN, PRIMESENSE, REALSENSE, SR305_MODEL)}


def get_sensor(name: str) -> SensorModel:
    try:
        return SENSORS[name]
    except KeyError:
        raise KeyError(f"unknown sensor {name!r}; known: {', '.join(SENSORS)}") from None


def apply_sensor(depth_clean_mm: np.ndarray, K_window: Intrinsics, model: SensorModel, rng: np.random.Generator,
                 labels: np.ndarray | None = None) -> np.ndarray:
    """What `model` would deliver for the clean depth (mm, 0 = nothing) of the window `K_window` of the sensor.

    Returns float32 (H, W) mm with `model.missing_value` where the sensor has no depth. Deterministic for a given
    `rng` state. `labels` (per-pixel surface ids) is accepted for the generator's convenience and checked for
    shape; the current models derive everything from depth alone.
    Shadows cast by occluders outside the window are not seen: render with `shadow_margin_px` extra columns.
    """
    z = np.asarray(depth_clean_mm, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {z.shape}")
    if labels is not None and np.shape(labels) != z.shape:
        raise ValueError(f"labels shape {np.shape(labels)} differs from depth shape {z.shape}")
    hit = z > 0
    if model.baseline_mm == 0:
        return _finish(z.copy(), hit, model)

    fb = np.float32(K_window.fx * abs(model.baseline_mm))  # disparity (px) times depth (mm)
    disparity = _disparity(z, hit, fb)
    valid = hit
    if model.shadows or model.out_of_view_invalid:
        valid = valid & ~_unseen_by_second_view(disparity, hit, K_window, model)
    if model.edge_dropout or model.flying_pixels:
        dropped, flying = _edge_artefacts(disparity, model, rng)
        valid = (valid | flying) & ~dropped  # a flying pixel may also bridge into empty or shadowed space
    if model.disparity_noise_px:
        disparity += _blotchy_noise(z.shape, model.disparity_noise_px, model.noise_grain_px, rng)
    if model.disparity_step_px:
        _round_to(disparity, model.disparity_step_px)
    if model.holes_per_mpx:
        valid = valid & ~_random_holes(z.shape, model, rng)
    with np.errstate(divide="ignore"):
        depth = np.divide(fb, disparity, out=disparity)  # a disparity pushed to <= 0 is out of range: missing
    return _finish(depth, valid, model)


def shadow_margin_px(model: SensorModel, K_window: Intrinsics, z_near_mm: float, z_far_mm: float) -> int:
    """Columns to render beyond a window so its shadows and edges see every occluder that can reach into it.

    An occluder at z_near hides background at z_far up to f * |b| * (1/z_near - 1/z_far) px away, on the side of
    it away from the projector; add the edge neighbourhood. Render that many extra columns on the side TOWARD the
    projector / second imager (right for baseline > 0, left for < 0), or on both sides to keep it simple, and crop.
    """
    if model.baseline_mm == 0:
        return 0
    reach = K_window.fx * abs(model.baseline_mm) * (1.0 / z_near_mm - 1.0 / z_far_mm)
    return int(math.ceil(max(reach, 0.0))) + model.edge_radius_px + 1


def _disparity(z: np.ndarray, hit: np.ndarray, fb: np.float32) -> np.ndarray:
    """f*|b|/z in px; 0 (infinitely far) where the ray hit nothing."""
    with np.errstate(divide="ignore"):
        d = fb / z
    d[~hit] = 0
    return d


def _unseen_by_second_view(disparity: np.ndarray, hit: np.ndarray, K: Intrinsics, model: SensorModel) -> np.ndarray:
    """Pixels the projector / second imager cannot see: hidden by a nearer surface, or outside its frame.

    The second view sees pixel u of a row at column u2 = u - s * d (s = sign of the baseline). Along a row,
    surfaces keep their left-to-right order there unless one hides another, so (for s > 0) pixel u is hidden
    exactly when some pixel to its right lands at or left of u2(u); for s < 0, mirrored. Such an occluder lies
    at most max(d) - min(d) columns away, which bounds the search.
    """
    sign = 1.0 if model.baseline_mm > 0 else -1.0
    cols = np.arange(disparity.shape[1], dtype=np.float32)
    key = np.float32(sign) * cols - disparity  # = s * u2: must not decrease toward the second view
    key[~hit] = np.inf  # nothing occludes nothing
    unseen = np.zeros(disparity.shape, dtype=bool)
    if model.shadows and hit.any():
        d_min, d_max, _, _ = cv2.minMaxLoc(disparity, mask=hit.view(np.uint8))
        unseen = _smaller_within(key, int(math.ceil(d_max - d_min)) + 1, forward=sign > 0)
    if model.out_of_view_invalid:
        # Second-view column in full-frame pixels; assumes K is a window of model.intrinsics (same f).
        u2_full = np.float32(sign) * key + np.float32(model.intrinsics.cx - K.cx)
        unseen |= (u2_full < -0.5) | (u2_full > model.intrinsics.width - 0.5)
    return unseen


def _smaller_within(key: np.ndarray, reach: int, forward: bool) -> np.ndarray:
    """Per pixel: is a smaller key within `reach` columns after it (forward) or before it (backward), same row?

    Running minimum by doubling: after k steps each entry holds the min over 2^k columns, so log2(reach)
    whole-array minimums (~4x faster than np.minimum.accumulate here). Done on the transposed image
    (cv2.transpose is ~5x faster than numpy's copy) so each step compares contiguous blocks.
    """
    key_t = cv2.transpose(key)
    run, spare = key_t.copy(), np.empty_like(key_t)  # ping-pong buffers: no allocation per step
    n = run.shape[0]
    span = 1
    while span <= reach and span < n:
        if forward:  # run[i] <- min(run[i], run[i + span]); the last `span` rows keep theirs
            np.minimum(run[: n - span], run[span:], out=spare[: n - span])
            spare[n - span:] = run[n - span:]
        else:
            np.minimum(run[span:], run[: n - span], out=spare[span:])
            spare[:span] = run[:span]
        run, spare = spare, run
        span *= 2
    return cv2.transpose((key_t > run).view(np.uint8)).view(bool)


def _edge_artefacts(disparity: np.ndarray, model: SensorModel,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Drop or mix pixels near depth discontinuities: updates `disparity` in place, returns (dropped, flying).

    A pixel is at an edge when its (2r+1)^2 neighbourhood spans more than `edge_step` in relative depth
    (1 - z_near/z_far = 1 - d_min/d_max; rays that hit nothing count as infinitely far). A flying pixel takes
    a disparity uniformly between its neighbourhood's extremes, like a matcher window straddling both surfaces.
    Decisions are shared by grain x grain patches, so silhouettes fray in chunks as in real frames, not in
    single-pixel salt and pepper.
    """
    kernel = np.ones((2 * model.edge_radius_px + 1,) * 2, dtype=np.uint8)
    d_max = cv2.dilate(disparity, kernel).reshape(-1)
    d_min = cv2.erode(disparity, kernel).reshape(-1)
    edge = np.flatnonzero(d_min < np.float32(1.0 - model.edge_step) * d_max)
    u = _patch_uniform(edge, disparity.shape, model.noise_grain_px, rng)
    dropped = np.zeros(disparity.shape, dtype=bool)
    dropped.reshape(-1)[edge[u < model.edge_dropout]] = True
    flying = np.zeros(disparity.shape, dtype=bool)
    if model.flying_pixels:
        flies = (u >= model.edge_dropout) & (u < model.edge_dropout + model.flying_pixels)
        at = edge[flies]
        t = (u[flies] - np.float32(model.edge_dropout)) / np.float32(model.flying_pixels)
        lo, hi = d_min[at], d_max[at]
        disparity.reshape(-1)[at] = lo + t * (hi - lo)
        flying.reshape(-1)[at] = True
    return dropped, flying


def _patch_uniform(flat_index: np.ndarray, shape: tuple[int, int], grain_px: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Uniform [0, 1) values for the given pixels, one value per grain x grain patch of the image.

    Only edge pixels need values, so hashing their patch index with a fresh seed (the splitmix64 mixer) is
    several times cheaper than drawing a value for every patch of the image.
    """
    rows, cols = np.divmod(flat_index, shape[1])
    patches_per_row = -(-shape[1] // grain_px)
    x = ((rows // grain_px) * patches_per_row + cols // grain_px).astype(np.uint64)
    x = x * np.uint64(0x9E3779B97F4A7C15) + np.uint64(rng.integers(1 << 63))  # wraps mod 2^64, as intended
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)


def _blotchy_noise(shape: tuple[int, int], std: float, grain_px: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise of standard deviation `std`, correlated over about `grain_px` (even) pixels.

    Made at half resolution, where it costs a quarter: triangular noise (the sum of two random bytes; bytes
    cost a fraction of numpy's float or normal draws), box-smoothed over grain - 1 half-res pixels, then
    upsampled x2 bilinearly; pixels `grain_px` apart keep a correlation of ~0.35. The result is stationary (the
    four phases of the x2 upsampling are mirror images of each other and the field is mirror-symmetric), close
    to Gaussian, and its variance gain is known exactly (_noise_gain).
    """
    margin = grain_px // 2  # half-res pixels, so no output pixel sees reflected borders
    h2, w2 = shape[0] // 2 + 1 + 2 * margin, shape[1] // 2 + 1 + 2 * margin
    raw = np.frombuffer(rng.bytes(2 * h2 * w2), dtype=np.uint8).reshape(2, h2, w2)
    half = cv2.add(raw[0], raw[1], dtype=cv2.CV_32F)
    half -= np.float32(255.0)  # the mean of the sum of two bytes
    noise = _smooth_upsample(half, grain_px)[2 * margin: 2 * margin + shape[0], 2 * margin: 2 * margin + shape[1]]
    noise *= np.float32(std / math.sqrt(_BYTE_PAIR_VARIANCE * _noise_gain(grain_px)))
    return noise


_BYTE_PAIR_VARIANCE = 2 * (256.0**2 - 1) / 12  # the sum of two uniform random bytes


def _smooth_upsample(half: np.ndarray, grain_px: int) -> np.ndarray:
    """The linear part of _blotchy_noise: box-smooth at half resolution, then bilinear x2."""
    box = grain_px - 1  # odd, so the field stays centred; at half resolution it spans ~2 * grain px
    if box > 1:
        half = cv2.blur(half, (box, box))
    return cv2.resize(half, (2 * half.shape[1], 2 * half.shape[0]), interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=None)
def _noise_gain(grain_px: int) -> float:
    """Variance of _smooth_upsample's output per unit variance of white input: the energy of its impulse response
    over the 4 upsampling phases (each output pixel collects one phase of every input sample's response)."""
    size = 8 * grain_px + 9
    delta = np.zeros((size, size), dtype=np.float32)
    delta[size // 2, size // 2] = 1.0
    return float(np.sum(np.square(_smooth_upsample(delta, grain_px), dtype=np.float64)) / 4)


def _random_holes(shape: tuple[int, int], model: SensorModel, rng: np.random.Generator) -> np.ndarray:
    """Small round holes at Poisson-many random places (dark or specular spots the sensor cannot read)."""
    h, w = shape
    seeds = np.zeros(shape, dtype=np.uint8)
    seeds.reshape(-1)[rng.integers(0, h * w, rng.poisson(model.holes_per_mpx * h * w / 1e6))] = 1
    r = model.hole_radius_px
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(seeds, disc).view(bool)


def _finish(depth: np.ndarray, valid: np.ndarray, model: SensorModel) -> np.ndarray:
    """Round to the depth unit, apply the range limits and write the missing value."""
    if model.depth_unit_mm:
        _round_to(depth, model.depth_unit_mm)
    valid = valid & (depth >= np.float32(model.min_range_mm)) & (depth <= np.float32(model.max_range_mm))
    depth[~valid] = np.float32(model.missing_value)
    return depth


def _round_to(a: np.ndarray, step: float) -> None:
    """Round `a` in place to multiples of `step` (in place: large temporaries cost page faults here)."""
    a *= np.float32(1.0 / step)
    np.rint(a, out=a)
    a *= np.float32(step)
