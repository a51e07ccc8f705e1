"""The tracker: a depth frame in, 21 metric 3D joints out, in the MediaPipe Tasks style.

    tracker = HandTracker(TrackerOptions())   # the default model: models_onnx.DEFAULT_MODEL
    result = tracker.process(frame)          # one DepthFrame -> HandResult (result.py), read as its one hand
    for result in tracker.track(source):     # a stream, newest frame first when the consumer is slow
        ...

Per frame: decode (validate the depth, NaN/inf -> missing) -> localise (the previous palm while the hand is
tracked; else the hand finder's detector on the whole frame, lifted to 3D with the observed depth; else the
nearest-object rule; then the model's centre refiner moves the centre onto the palm, because the pose model was
trained on palm-centred crops; on a source's first frames the depth-unit check) -> crop (the one crop code
training uses) -> presence (the presence net's p(hand) on the crop; a left hand, as the detector says, is mirrored
for the right-hand pose model) -> infer (ONNX pose model; on a frame where the hand was found anew one more pass
re-centred on the predicted palm, and optionally `refine_passes` more; a hand found anew is then judged again on
its final crop, with our hand model rendered at the estimate and compared, agreement.py) -> post (back to camera
mm, per-joint confidence, One Euro filtering).

Frames the tracker cannot read (empty, wrong shape or dtype, depth that looks like metres) are skipped with a
counted reason in `stats` and a result whose `skipped` says why; they never raise. numpy, opencv and
onnxruntime only: importing this module leaves torch unloaded.
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from handtrack.models_onnx import DEFAULT_MODEL

from . import skeleton
from .camera import Intrinsics, project
from .crop import crop_and_normalise, denormalise_joints
from .filters import OneEuroFilter, OneEuroOptions
from .frame import DepthFrame, frame_time
from .agreement import AgreementModel, agreement_features
from .handfinder import Candidate, DetectorModel, PresenceModel
from .localise import LocaliserOptions, detect, palm_from_detection, palm_on_nearest_surface, track
from .model import CentreModel, PoseModel, RenderModel
from .plausibility import frame_plausibility, joint_plausibility
from .result import Hand, HandResult
from .unit_check import DepthUnitCheck

log = logging.getLogger("handtrack")
STAGES = ("decode", "localise", "crop", "infer", "post")
FINDER = "handfinder"       # the shipped detector and presence net (models_onnx/handfinder_*.onnx)
AGREEMENT_FILE = "handfinder_agreement.json"  # presence with render-and-compare (agreement.py), beside them
OPEN_3X3 = np.ones((3, 3), np.uint8)
DETECT_MIN_SCORE = 0.3      # a detector peak below this is no hand (the depth rule then tries, presence judges)
ALTERNATIVE_MIN_SCORE = 0.1  # ... but a peak down to this is still judged when the first place is not a hand
SAME_PLACE_MM = 60.0        # an alternative this close to a place already judged is not judged again
RECENTRE_AGAIN_MM = 10.0    # a hand found anew: another re-centred pass while the palm moves more than this ...
MAX_PASSES_FOUND = 4        # ... up to this many pose passes in all (docs/results.md: edge-on hands)
ALTERNATIVE_PRESENCE = 0.7  # an alternative place is taken only this sure (each place judged is a chance of a
                            # false hand on a frame without one); render and compare judges it again where the
                            # passes leave the crop, so 0.7 costs no false hands that 0.9 did not (docs/results.md)
REJUDGE_MM = 5.0            # a rejected first place is judged again where the pose passes moved the crop
AGREE_FROM = 0.05           # a crop the presence net gives at least this is rendered and compared (~10 ms, only
                            # on a hand found anew; below it the agreement could not make it a hand anyway)
METRES_LIKE_MAX = 20.0  # valid depths all below this: the frame is in metres (or another unit), not mm


@dataclass(frozen=True)
class TrackerOptions:
    model: str = DEFAULT_MODEL            # a shipped model name or a .onnx path (the pose model)
    threads: int = 1                      # onnxruntime intra-op threads
    recentre_found: bool = True           # on a frame where the hand is found anew (not tracked), one more pose
                                          # pass re-centred on the predicted palm (docs/results.md)
    track_from_palm: bool = True          # while tracking, refine the previous predicted palm itself rather than
                                          # the centre of mass around it (which the forearm pulls down the arm)
    refine_passes: int = 0                # extra pose passes re-centred on the predicted palm (docs/results.md:
                                          # with the centre refiner one more pass gains ~1 mm for 0.9 ms)
    centre_refine: bool = True            # move the localiser's centre onto the palm with the model's centre
                                          # refiner (<model>_centre.onnx), where one is shipped beside it
    smoothing: OneEuroOptions | None = OneEuroOptions()  # None: raw joints
    render_compare: bool = False          # also score the frame by rendering the estimate (needs a render model)
    hand: str = "auto"                    # "auto": the detector says which hand; "left" / "right": fixed. A
                                          # left hand's crop is mirrored for the right-hand pose model
    finder: bool = True                   # find the hand with the learned detector and presence net (handfinder);
                                          # False: the nearest-object rule alone, presence from plausibility
    presence_threshold: float = 0.5       # presence (a probability with the finder) below this -> no hand
    agreement: bool = True                # a hand found anew: presence also from rendering our hand model at the
                                          # estimate and comparing it with the crop (agreement.py), where shipped
    max_depth_mm: float = 2000.0
    cube_mm: float | None = None          # crop cube edge; None: the model's own (its metadata). The model sees
                                          # a larger cube as a smaller hand and joints scale back with it

    def __post_init__(self):
        if self.hand not in ("auto", "right", "left"):
            raise ValueError(f"hand must be 'auto', 'right' or 'left', got {self.hand!r}")
        if self.cube_mm is not None and not self.cube_mm > 0:
            raise ValueError(f"cube_mm must be positive, got {self.cube_mm}")


@dataclass(frozen=True)
class Located:
    centre: np.ndarray | None  # rough hand centre (before the centre refiner), or None
    score: float               # the detector's best score on this frame (0 where it did not run or saw nothing)
    left: float | None         # the detector's p(left) where it found the hand on this frame
    tracked: bool              # the centre came from the previous frame's palm
    others: tuple = ()         # the detector's other peaks (Candidate), tried when the presence net rejects this one
    depth_rule: bool = False   # the centre came from the nearest-object rule
    first: Candidate | None = None  # the detector's best peak, where the centre came from it


class FrameSkipped(Exception):
    """A frame the tracker cannot use; the message says why, in one line."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def decode_depth(depth, K: Intrinsics) -> np.ndarray:
    """float32 mm with 0 = missing, or FrameSkipped."""
    if not isinstance(depth, np.ndarray):
        raise FrameSkipped("type", f"depth is a {type(depth).__name__}, not a numpy array")
    if depth.ndim != 2 or depth.size == 0:
        raise FrameSkipped("shape", f"depth of shape {depth.shape}; expected a 2-D image")
    if depth.shape != (K.height, K.width):
        raise FrameSkipped("shape", f"depth is {depth.shape[1]}x{depth.shape[0]} but the intrinsics are for "
                                    f"{K.width}x{K.height}")
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)) \
            or depth.dtype == np.bool_:
        raise FrameSkipped("dtype", f"depth of dtype {depth.dtype}; expected millimetres as float or uint16")
    d = depth.astype(np.float32, copy=True)
    if np.issubdtype(depth.dtype, np.floating):
        d[~np.isfinite(d) | (d < 0)] = 0.0
    elif np.issubdtype(depth.dtype, np.signedinteger):
        d[d < 0] = 0.0
    top = float(d.max())  # the largest valid depth (missing is 0), or 0 when nothing is valid
    if 0 < top < METRES_LIKE_MAX:
        raise FrameSkipped("units", f"depth values are all below {METRES_LIKE_MAX:g} (max {top:.3g}): "
                                    "metres rather than millimetres? scale the depth to mm")
    return d


def _pose_centre(joints_mm: np.ndarray) -> np.ndarray:
    return skeleton.palm_centre(joints_mm)


class HandTracker:
    def __init__(self, options: TrackerOptions = TrackerOptions()):
        from handtrack.models_onnx import HERE, resolve

        self.options = options
        self.pose_model = PoseModel(resolve(options.model, "pose"), threads=options.threads)
        self.render_model = None
        self.centre_model = None
        if options.centre_refine:
            centre_path = _beside(options.model, "centre")
            if centre_path is not None:
                self.centre_model = CentreModel(centre_path, threads=options.threads)
        if options.render_compare:
            self.render_model = RenderModel(resolve(_render_name(options.model), "render"), threads=options.threads)
        self.detector = self.presence_model = self.unit_check = self.agreement = None
        if options.finder:
            detector, presence = _beside(FINDER, "detector"), _beside(FINDER, "presence")
            if detector is not None and presence is not None:
                self.detector = DetectorModel(detector, threads=options.threads)
                self.presence_model = PresenceModel(presence, threads=options.threads)
                self.unit_check = DepthUnitCheck(self.detector)
                agreement = HERE / AGREEMENT_FILE
                if options.agreement and agreement.is_file():
                    self.agreement = AgreementModel.load(agreement)
        info = self.pose_model.info
        self.cube_mm, self.input_size = options.cube_mm or info.cube_mm, info.input_size
        self.localiser = LocaliserOptions(cube_mm=self.cube_mm, max_depth_mm=options.max_depth_mm)
        self.filter = OneEuroFilter(options.smoothing) if options.smoothing else None
        self.stats: Counter = Counter()
        self._seed: np.ndarray | None = None
        self._left: float | None = None  # p(left) of the hand being tracked (detector and pose model)
        self._index = 0

    def reset(self) -> None:
        """Forget the previous frame (seed, handedness and filter state), e.g. after a jump in the stream."""
        self._seed = None
        self._left = None
        if self.filter:
            self.filter.reset()

    # --- one frame ---------------------------------------------------------------------------------------------
    def process(self, frame: DepthFrame, timestamp: float | None = None) -> HandResult:
        """Track the hand in one frame. `timestamp` (seconds) defaults to the frame's own, then the host clock."""
        if timestamp is None:
            timestamp = frame_time(frame)
        index, self._index = self._index, self._index + 1
        meta = frame.meta if isinstance(frame.meta, dict) else {}
        self.stats["frames"] += 1
        lat: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            depth = decode_depth(frame.depth_mm, frame.intrinsics)
        except FrameSkipped as skip:
            self.stats[f"skipped_{skip.reason}"] += 1
            self.reset()
            return self._empty(timestamp, index, meta, {"decode": _ms(t0)}, skipped=str(skip))
        K = frame.intrinsics
        t1 = time.perf_counter()
        lat["decode"] = (t1 - t0) * 1e3
        found = self._locate(depth, K, lat)
        centre, p_left = found.centre, found.left
        if self.unit_check is not None and not self.unit_check.done:
            self.unit_check.observe(depth, 1.0 if found.tracked else found.score)
            if self.unit_check.message:
                log.warning(self.unit_check.message)
        if self.unit_check is not None and self.unit_check.factor not in (None, 1.0):
            self.stats["skipped_units"] += 1
            self.reset()
            return self._empty(timestamp, index, meta, lat, skipped=self.unit_check.message)
        if centre is not None and self.centre_model is not None:
            centre = self._refine_centre(depth, K, centre)
        t2 = time.perf_counter()
        lat["localise"] = (t2 - t1) * 1e3
        if centre is None:
            self.stats["no_hand"] += 1
            self.reset()
            return self._empty(timestamp, index, meta, lat)
        crop_ms, infer_ms = 0.0, 0.0
        ta = time.perf_counter()
        crop, window = crop_and_normalise(depth, K, centre, self.cube_mm, self.input_size)
        crop_ms += (time.perf_counter() - ta) * 1e3
        p_hand, hand = None, self.options.hand
        if self.presence_model is not None:
            tp = time.perf_counter()
            p_hand = self.presence_model.probability(crop)
            lat["presence"] = (time.perf_counter() - tp) * 1e3  # counted in "infer"
            infer_ms += lat["presence"]
            if p_hand < self.options.presence_threshold and not found.tracked:
                # Not a hand where the finder looked first: judge the other places it offers, in turn, and take
                # the first that is plainly a hand (the time counts in "localise": it is hand finding).
                tp = time.perf_counter()
                tried = [centre]
                for rough, left in self._alternatives(depth, K, found):
                    if min(np.linalg.norm(rough - c) for c in tried) < SAME_PLACE_MM:
                        continue
                    tried.append(rough)
                    alt = self._judge(depth, K, rough)
                    self.stats["alternatives_tried"] += 1
                    if alt[3] >= ALTERNATIVE_PRESENCE:
                        (centre, crop, window, p_hand), p_left = alt, left
                        break
                lat["localise"] += (time.perf_counter() - tp) * 1e3
        judged_at = centre  # where the presence net looked
        as_is = None  # the pose model's (latent, joints, p(left)) on the crop as it is, where it says which hand
        if not found.tracked:  # a hand found anew: its side holds while it is tracked
            if self.options.hand == "auto" and self.pose_model.has_handedness:
                tp = time.perf_counter()
                as_is = self.pose_model.predict_sided(crop)
                infer_ms += (time.perf_counter() - tp) * 1e3
            self._left = _which_hand(p_left, None if as_is is None else as_is[2])
        if hand == "auto":  # without the detector's word, a right hand (the pose models are right-hand models)
            hand = "left" if self._left is not None and self._left > 0.5 else "right"
        passes = 1 + self.options.refine_passes + int(self.options.recentre_found and not found.tracked)
        k = 0
        while k < passes:
            ta = time.perf_counter()
            if k > 0:
                crop, window = crop_and_normalise(depth, K, centre, self.cube_mm, self.input_size)
            tb = time.perf_counter()
            if k == 0 and as_is is not None and hand == "right":  # that run already was this pass: not again
                model_crop, latent, joints_norm = crop, as_is[0], as_is[1][0].astype(np.float64)
            else:
                model_crop, latent, joints_norm = _right_hand_pose(self.pose_model, crop, hand)
            joints = denormalise_joints(joints_norm, window.center, self.cube_mm)
            tc = time.perf_counter()
            crop_ms += (tb - ta) * 1e3
            infer_ms += (tc - tb) * 1e3
            used_crop, used_latent, used_centre = model_crop, latent, window.center
            centre = _pose_centre(joints)  # the next pass (if any) is centred on the predicted palm
            k += 1
            if (k == passes and self.options.recentre_found and not found.tracked and passes < MAX_PASSES_FOUND
                    and np.linalg.norm(centre - window.center) > RECENTRE_AGAIN_MM):
                passes += 1  # a hand found anew whose palm is still far from the crop centre: once more, there
        moved = np.linalg.norm(used_centre - judged_at) > REJUDGE_MM
        if as_is is not None:
            # A hand found anew: which hand, once more, on the crop the joints came from (the first crop is often
            # off the palm: on the forearm, the hand half out of it), and on its mirror image too. The readout
            # was trained on crops and their mirror images as the other hand, so a crop's p(left) and its mirror's
            # p(right) are two looks at one question; their mean logit is right on 96.6 % of hands where the crop
            # alone is on 94.0 % (docs/results.md: handedness). Where the side changes, the last pass is redone.
            tp = time.perf_counter()
            seen = self.pose_model.predict_sided(crop)[2] if moved else as_is[2]
            mirrored = self.pose_model.predict_sided(np.ascontiguousarray(crop[:, ::-1]))[2]
            self._left = _which_hand(p_left, _both_ways(seen, mirrored))
            side = "left" if self._left > 0.5 else "right"
            if side != hand:
                hand = side
                used_crop, used_latent, joints_norm = _right_hand_pose(self.pose_model, crop, side)
                joints = denormalise_joints(joints_norm, window.center, self.cube_mm)
            infer_ms += (time.perf_counter() - tp) * 1e3
        if p_hand is not None and not found.tracked:
            tp = time.perf_counter()
            model_joints = joints_norm * ([-1.0, 1.0, 1.0] if hand == "left" else 1.0)
            p_hand = self._presence_found(p_hand, moved, crop, used_crop, model_joints, K, window.center,
                                          hand == "left")
            infer_ms += (time.perf_counter() - tp) * 1e3
        lat["crop"], lat["infer"] = crop_ms, infer_ms
        t3 = time.perf_counter()
        confidence = joint_plausibility(joints, depth, K)
        plausibility = frame_plausibility(confidence)
        presence = plausibility if p_hand is None else p_hand
        render_error = None
        if self.render_model is not None:
            render_error = _render_error(self.render_model, used_latent, used_crop)
            presence *= float(np.exp(-render_error / 0.25))
        present = bool(presence >= self.options.presence_threshold)
        if not present:
            self.stats["low_presence"] += 1
            self.reset()
        else:
            self.stats["tracked"] += 1
            self._seed = _pose_centre(joints)
            if self.filter:
                joints = self.filter(joints, timestamp)
        uv = project(joints, K)
        lat["post"] = (time.perf_counter() - t3) * 1e3
        lat["total"] = (time.perf_counter() - t0) * 1e3
        found_hand = Hand(handedness=hand, present=present, presence=float(presence), joints_mm=joints, uv=uv,
                          confidence=confidence, centre_mm=np.asarray(used_centre), plausibility=float(plausibility),
                          left_probability=self._left, auto_hand=self.options.hand == "auto" and self._left is not None,
                          render_error=render_error, latent=used_latent, crop=used_crop)
        return HandResult(hands=[found_hand], timestamp=float(timestamp), host_time=time.monotonic(), latency_ms=lat,
                          frame_index=index, frame_meta=meta)

    def _presence_found(self, p_first: float, moved: bool, crop: np.ndarray, model_crop: np.ndarray,
                        model_joints: np.ndarray, K: Intrinsics, centre: np.ndarray, left: bool) -> float:
        """The presence of a hand found anew, judged on the crop its joints came from (`crop`; `model_crop` and
        `model_joints` as the right-hand pose model saw and read it) by the presence net and, where the agreement
        file is shipped, by how well our hand model rendered at those joints explains the crop (agreement.py).
        `p_first` is the presence net's word where it looked first."""
        rejected = p_first < self.options.presence_threshold
        if (rejected and not moved) or (not rejected and self.agreement is None):
            return p_first
        # Presence rejected the first crop, but the passes re-centred it onto the predicted palm (a hand found off
        # its palm: on the forearm, or half out of the first crop): a new place, taken as an alternative is, only
        # when it is sure of it (docs/results.md).
        p = self.presence_model.probability(crop) if moved else p_first
        self.stats["presence_rejudged"] += int(rejected)
        if self.agreement is not None and p >= AGREE_FROM:
            p = self.agreement.probability(agreement_features(model_crop, model_joints, p, K, centre, self.cube_mm,
                                                              left))
            self.stats["agreement_judged"] += 1
        return p if not rejected or p >= ALTERNATIVE_PRESENCE else p_first

    def presence_at(self, depth: np.ndarray, K: Intrinsics, centre: np.ndarray) -> float:
        """The presence a hand found anew at `centre` (mm) would be given, without re-centring: the presence net
        on the crop there and, with the agreement file, the pose model's reading of it rendered and compared
        (read as the hand the pose model's readout says, else as a right hand)."""
        crop, window = crop_and_normalise(depth, K, centre, self.cube_mm, self.input_size)
        p = self.presence_model.probability(crop)
        if self.agreement is None or p < AGREE_FROM:
            return p
        return self.agreement.probability(self.agreement_features_at(crop, K, window.center, p))

    def agreement_features_at(self, crop: np.ndarray, K: Intrinsics, centre: np.ndarray, p: float) -> np.ndarray:
        """agreement.FEATURES for a crop read once by the pose model, as the hand its readout says."""
        left = self.pose_model.has_handedness and self.pose_model.predict_sided(crop)[2] > 0.5
        model_crop, _, joints = _right_hand_pose(self.pose_model, crop, "left" if left else "right")
        model_joints = joints * ([-1.0, 1.0, 1.0] if left else 1.0)
        return agreement_features(model_crop, model_joints, p, K, centre, self.cube_mm, left)

    def _locate(self, depth: np.ndarray, K: Intrinsics, lat: dict) -> Located:
        """Where to look: the previous palm, where the cube around it still holds a hand-sized surface; else the
        detector's best palm; else the nearest-object rule (whose crop the presence net then judges)."""
        if self._seed is not None:
            loc = track(depth, K, self._seed, self.localiser, refine=not self.options.track_from_palm)
            if loc.centre is not None:
                return Located(loc.centre, 1.0, None, True)
        best, candidates = 0.0, []
        if self.detector is not None:
            t = time.perf_counter()
            candidates = self.detector.detect(depth, top=2, min_score=ALTERNATIVE_MIN_SCORE)
            lat["detector"] = (time.perf_counter() - t) * 1e3  # part of "localise"
            if candidates:
                c = candidates[0]
                best = c.score
                if best >= DETECT_MIN_SCORE:
                    return Located(palm_from_detection(depth, K, c.uv, c.z_mm), best, c.left, False,
                                   tuple(candidates[1:]), first=c)
        return Located(detect(depth, K, self.localiser).centre, best, None, False, tuple(candidates), depth_rule=True)

    def _alternatives(self, depth: np.ndarray, K: Intrinsics,
                      found: Located) -> Iterator[tuple[np.ndarray, float | None]]:
        """Where else a hand found anew may be when the presence net rejects the first place (rough centres and
        the detector's p(left)): the best peak's pixel on the nearest surface there (localise.py:
        palm_on_nearest_surface), the detector's other peaks (already down to ALTERNATIVE_MIN_SCORE), then the
        nearest-object rule. On held-out frames this took hands found from 91.9 to 93.3 % (docs/results.md)."""
        if found.first is not None:  # the best palm's pixel, on the nearest surface there rather than at its depth
            nearest = palm_on_nearest_surface(depth, K, found.first.uv)
            if nearest is not None:
                yield nearest, found.first.left
        for c in found.others:
            yield palm_from_detection(depth, K, c.uv, c.z_mm), c.left
        if not found.depth_rule:
            centre = detect(depth, K, self.localiser).centre
            if centre is not None:
                yield centre, None

    def _judge(self, depth: np.ndarray, K: Intrinsics, centre: np.ndarray):
        """A rough centre -> the refined centre, its crop and window, and the presence net's p(hand) on it."""
        if self.centre_model is not None:
            centre = self._refine_centre(depth, K, centre)
        crop, window = crop_and_normalise(depth, K, centre, self.cube_mm, self.input_size)
        return centre, crop, window, self.presence_model.probability(crop)

    def _refine_centre(self, depth: np.ndarray, K: Intrinsics, centre: np.ndarray) -> np.ndarray:
        """The centre refiner's palm estimate for a crop around `centre` (a detected palm, the previous palm, or
        the nearest-object rule's centre of mass, which the forearm pulls down the arm)."""
        info = self.centre_model.info  # its own cube, whatever cube the pose crops use
        crop, _ = crop_and_normalise(depth, K, centre, info.cube_mm, info.input_size)
        # Scattered missing pixels (background, +1) throw the refiner off by centimetres (measured: 45 mm with 6 %
        # dropout); a 3x3 opening fills them and moves a clean frame's answer by ~3 mm.
        crop = cv2.morphologyEx(crop, cv2.MORPH_OPEN, OPEN_3X3)
        # Trained on mirrored crops half of the time, it serves either hand as it is.
        offset = self.centre_model.offset(crop)
        return centre + offset * (info.cube_mm / 2)

    def _empty(self, timestamp: float, index: int, meta: dict, lat: dict, skipped: str | None = None) -> HandResult:
        """The result of a frame without a hand (or that could not be read): one hand entry, not present."""
        lat = {**lat, "total": sum(v for k, v in lat.items() if k in STAGES)}
        hand = Hand(handedness=self.options.hand if self.options.hand != "auto" else "right")
        return HandResult(hands=[hand], timestamp=float(timestamp), host_time=time.monotonic(), latency_ms=lat,
                          frame_index=index, skipped=skipped, frame_meta=meta)

    # --- streams -----------------------------------------------------------------------------------------------
    def track(self, source: Iterable[DepthFrame]) -> Iterator[HandResult]:
        """Results for a stream of frames. A live source keeps only its newest frame while this generator's
        consumer is busy, so a slow consumer sees fewer frames, never older ones. Timestamps are made strictly
        increasing (a frame whose clock went backwards gets the previous time plus 1 us)."""
        last = -np.inf
        for frame in source:
            t = max(frame_time(frame), last + 1e-6)
            last = t
            yield self.process(frame, t)


def _render_name(model: str) -> str:
    """The render model beside a pose model: 'crossingnets' -> 'crossingnets'; 'x_pose.onnx' -> 'x_render.onnx'."""
    return model.replace("_pose.onnx", "_render.onnx") if model.endswith("_pose.onnx") else model


def _beside(model: str, role: str):
    """The `role` model that goes with a pose model (shipped name, or an x_pose.onnx or x_pose_fp32.onnx path), or
    None if there is none."""
    from handtrack.models_onnx import HERE

    stem = re.match(r"(.*)_pose(_fp32)?\.onnx$", model)
    if stem:
        path = Path(f"{stem.group(1)}_{role}.onnx")
    else:
        path = HERE / f"{model}_{role}.onnx"
    return path if path.is_file() else None


def _which_hand(detector_left: float | None, pose_left: float | None) -> float | None:
    """p(left hand) from what there is: the detector's (from the frame around the hand) and the pose model's (from
    the hand's own shape), their logits averaged where both speak (docs/results.md measures each and both)."""
    said = [p for p in (detector_left, pose_left) if p is not None]
    if not said:
        return None
    logit = np.mean([_logit(p) for p in said])
    return float(1.0 / (1.0 + np.exp(-logit)))


def _both_ways(left_as_is: float, left_mirrored: float) -> float:
    """p(left) from the readout on a crop and on its mirror image (which shows the other hand)."""
    logit = (_logit(left_as_is) - _logit(left_mirrored)) / 2
    return float(1.0 / (1.0 + np.exp(-logit)))


def _logit(p: float) -> float:
    return float(np.log(max(p, 1e-6) / max(1.0 - p, 1e-6)))


def _right_hand_pose(model: PoseModel, crop: np.ndarray, hand: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pose model (a right-hand model) on a normalised crop -> (the crop as the model saw it, its latent, the
    normalised joints in the crop's own frame). The one place a left hand is mirrored: the model sees the crop
    mirrored left-right, and the joints it returns are mirrored back (x -> -x; the crop is centred on x = 0)."""
    left = hand == "left"
    model_crop = crop[:, ::-1] if left else crop
    latent, joints = model.predict(model_crop)
    joints = joints[0].astype(np.float64)
    if left:
        joints[:, 0] *= -1.0
    return model_crop, latent, joints


def _render_error(render: RenderModel, latent: np.ndarray, crop: np.ndarray) -> float:
    """How far the render route's depth for `latent` is from `crop`, the crop the model saw: both are in the
    model's own (right-hand) view, so a left hand needs no mirroring here."""
    synth = render.render(latent.astype(np.float32))[0, 0]
    hand_px = (crop < 0.9) | (synth < 0.9)  # either says there is surface in the cube
    if not hand_px.any():
        return 2.0
    return float(np.abs(synth - crop)[hand_px].mean())


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3
