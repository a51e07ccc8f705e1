"""The tracker on real frames and on bad input: never an exception, always a result that says what happened."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handtrack.inference.camera import Intrinsics
from handtrack.inference.datasets import nyu
from handtrack.inference.errors import HandtrackError
from handtrack.inference.filters import OneEuroFilter, OneEuroOptions
from handtrack.inference.frame import DepthFrame
from handtrack.inference.tracker import HandTracker, TrackerOptions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NYU_PALM = 32


@pytest.fixture(scope="module")
def nyu_frame() -> DepthFrame:
    return nyu.load_frame(DATA / "nyu" / "test_depth_1_0000001.png", DATA / "nyu" / "test_joints36_xyz_0000001.json")


@pytest.fixture
def tracker() -> HandTracker:
    return HandTracker(TrackerOptions(smoothing=None))


def with_depth(frame: DepthFrame, depth, K: Intrinsics | None = None) -> DepthFrame:
    return dataclasses.replace(frame, depth_mm=depth, intrinsics=K or frame.intrinsics, meta={})


def test_nyu_frame_hand_found_near_the_labelled_palm(tracker, nyu_frame):
    r = tracker.process(nyu_frame)
    assert r.present and r.skipped is None
    assert np.linalg.norm(r.centre_mm - nyu_frame.joints_xyz[NYU_PALM]) < 30.0
    assert r.joints_mm.shape == (21, 3) and np.isfinite(r.joints_mm).all()
    assert r.uv.shape == (21, 2) and r.confidence.shape == (21,)
    # the stages, and the hand finder's parts of them (the detector in localise, the presence net in infer)
    assert set(r.latency_ms) == {"decode", "localise", "crop", "infer", "post", "total", "detector", "presence"}


def test_running_the_tracker_never_imports_torch():
    code = (
        "import sys\n"
        "from handtrack.inference.tracker import HandTracker, TrackerOptions\n"
        "from handtrack.inference.datasets import nyu\n"
        f"d = {str(DATA)!r}\n"
        "f = nyu.load_frame(d + '/nyu/test_depth_1_0000001.png', d + '/nyu/test_joints36_xyz_0000001.json')\n"
        "r = HandTracker(TrackerOptions()).process(f)\n"
        "assert r.present\n"
        "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("make, reason", [
    (lambda d: np.zeros((0, 0), np.float32), "shape"),
    (lambda d: d[None], "shape"),
    (lambda d: d[:100], "shape"),
    (lambda d: d.astype(np.complex64), "dtype"),
    (lambda d: d > 0, "dtype"),
    (lambda d: [[1.0]], "type"),
    (lambda d: d / 1000.0, "units"),
])
def test_unreadable_frames_are_counted_skips(tracker, nyu_frame, make, reason):
    r = tracker.process(with_depth(nyu_frame, make(nyu_frame.depth_mm)))
    assert not r.present and r.skipped, r
    assert tracker.stats[f"skipped_{reason}"] == 1
    assert len(r.skipped.splitlines()) == 1


def test_all_zero_and_nan_frames_mean_no_hand_not_an_error(tracker, nyu_frame):
    for depth in (np.zeros_like(nyu_frame.depth_mm), np.full_like(nyu_frame.depth_mm, np.nan),
                  np.full_like(nyu_frame.depth_mm, np.inf)):
        r = tracker.process(with_depth(nyu_frame, depth))
        assert not r.present and r.skipped is None
    assert tracker.stats["no_hand"] == 3


def test_nan_and_inf_pixels_are_missing_depth(tracker, nyu_frame):
    d = nyu_frame.depth_mm.copy()
    rng = np.random.default_rng(0)
    holes = rng.random(d.shape) < 0.05
    d[holes] = np.nan
    d[rng.random(d.shape) < 0.01] = np.inf
    r = tracker.process(with_depth(nyu_frame, d))
    assert r.present and np.linalg.norm(r.centre_mm - nyu_frame.joints_xyz[NYU_PALM]) < 30.0


def test_uint16_millimetres_are_accepted(tracker, nyu_frame):
    r = tracker.process(with_depth(nyu_frame, nyu_frame.depth_mm.astype(np.uint16)))
    assert r.present


def test_no_hand_for_many_frames_then_the_hand_again(nyu_frame):
    tracker = HandTracker(TrackerOptions())
    assert tracker.process(nyu_frame, 0.0).present
    empty = with_depth(nyu_frame, np.zeros_like(nyu_frame.depth_mm))
    for k in range(30):
        assert not tracker.process(empty, 0.01 * (k + 1)).present
    back = tracker.process(nyu_frame, 1.0)
    assert back.present and np.linalg.norm(back.centre_mm - nyu_frame.joints_xyz[NYU_PALM]) < 30.0


def test_hand_at_the_image_border(tracker, nyu_frame):
    """Shift the image so the hand's palm sits 20 px from the left edge: a result, no exception."""
    u = int(nyu_frame.intrinsics.fx * nyu_frame.joints_xyz[NYU_PALM, 0] / nyu_frame.joints_xyz[NYU_PALM, 2]
            + nyu_frame.intrinsics.cx)
    shift = u - 20
    d = np.zeros_like(nyu_frame.depth_mm)
    d[:, : d.shape[1] - shift] = nyu_frame.depth_mm[:, shift:]
    r = tracker.process(with_depth(nyu_frame, d))
    assert r.skipped is None
    if r.present:
        assert np.isfinite(r.joints_mm).all()


def test_two_hands_the_nearer_one_is_tracked(tracker, nyu_frame):
    """A copy of the hand region 150 mm further back and 200 px to the right: the tracker keeps the real one."""
    d = nyu_frame.depth_mm.copy()
    palm = nyu_frame.joints_xyz[NYU_PALM]
    near = (d > 0) & (np.abs(d - palm[2]) < 120)
    v, u = np.nonzero(near)
    keep = u + 200 < d.shape[1]
    d[v[keep], u[keep] + 200] = d[v[keep], u[keep]] + 150
    r = tracker.process(with_depth(nyu_frame, d))
    assert r.present and np.linalg.norm(r.centre_mm - palm) < 30.0


def test_left_hand_by_mirroring(nyu_frame):
    """The NYU frame mirrored left-right is a left hand; tracked with hand='left' its joints mirror the right-hand
    result."""
    K = nyu_frame.intrinsics
    mirrored_K = dataclasses.replace(K, cx=K.width - 1 - K.cx)
    right = HandTracker(TrackerOptions(smoothing=None)).process(nyu_frame)
    left = HandTracker(TrackerOptions(smoothing=None, hand="left")).process(
        with_depth(nyu_frame, nyu_frame.depth_mm[:, ::-1].copy(), mirrored_K))
    assert left.present and left.handedness == "left"
    expected = right.joints_mm * np.array([-1.0, 1.0, 1.0])
    # Not exact: the localiser samples every 4th pixel, and the mirrored image puts other pixels on that grid,
    # so the two crops are centred a few mm apart. A wrong mirror would be off by the hand's width (~100 mm).
    assert np.abs(left.joints_mm - expected).max() < 12.0


def test_one_euro_filter_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(1)
    f = OneEuroFilter(OneEuroOptions(min_cutoff=1.0, beta=0.02))
    t = np.arange(300) / 90.0
    still = [f(np.array([100.0]) + rng.normal(0, 3, 1), ti) for ti in t[:150]]
    assert np.std(still[50:]) < 1.5  # jitter of 3 mm reduced
    moving = [f(np.array([100.0 + 500 * (ti - t[150])]), ti) for ti in t[150:]]
    true_end = 100.0 + 500 * (t[-1] - t[150])
    assert abs(moving[-1][0] - true_end) < 25.0  # at 500 mm/s the lag stays small
    f.reset()
    assert f(np.array([7.0]), 0.0)[0] == 7.0


def test_track_uses_the_sources_clock_and_keeps_time_increasing(nyu_frame):
    """Frames carry the source's sensor time; a clock that repeats or goes back still yields increasing times."""
    times = [1.0, 1.011, 1.011, 1.005, 1.033]
    frames = [dataclasses.replace(nyu_frame, meta={"sensor_time": t, "host_time": 50.0 + k})
              for k, t in enumerate(times)]
    out = [r.timestamp for r in HandTracker(TrackerOptions()).track(frames)]
    assert out[:2] == [1.0, 1.011] and out[-1] == 1.033
    assert all(b > a for a, b in zip(out, out[1:]))
    no_sensor = dataclasses.replace(nyu_frame, meta={"sensor_time": None, "host_time": 7.5})
    assert HandTracker(TrackerOptions()).process(no_sensor).timestamp == 7.5


def test_every_sr305_frame_the_hand_not_the_body_is_found():
    from handtrack.training.model_eval import SR305_LANDMARKS_UV, eval_tracker_real

    rows = eval_tracker_real(TrackerOptions(smoothing=None), DATA)["sr305"]
    assert {row["frame"] for row in rows} == set(SR305_LANDMARKS_UV)
    for row in rows:
        assert row["present"], row["frame"]
        # the centre on the annotated palm, in the image and in depth (the body is >= 100 mm further back)
        assert row["hand_found"], (row["frame"], row.get("palm_px"), row.get("palm_dz_mm"))


def test_eval_tracker_command_writes_json_and_overlays(tmp_path):
    import json

    from handtrack.app.cli import main

    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["eval", "tracker", "--data", str(DATA), "--json", str(out), "--png", str(png)]) == 0
    r = json.loads(out.read_text())
    assert r["nyu"]["centre_error_mm"] < 30.0 and r["nyu"]["joint_error"]["mean_error_mm"] > 0
    assert r["sr305"]["frames"] == 8 and 0 < r["sr305"]["mean_plausibility"] <= 1
    assert png.stat().st_size > 10_000


def _graph_with_joints_of(tmp_path, last: int):
    """A model with valid handtrack metadata (the shipped MURAUER's) whose graph outputs joints (B, 21, last)."""
    import onnx
    from onnx import TensorProto, helper

    from handtrack.inference.model import METADATA_KEY, _session
    from handtrack.models_onnx import resolve

    meta = json.loads(_session(resolve("murauer"), 1).get_modelmeta().custom_metadata_map[METADATA_KEY])
    meta = json.dumps({**meta, "outputs": ["latent", "joints"]})  # the shipped file also says which hand
    const = lambda name, values: helper.make_tensor(name, TensorProto.INT64, [len(values)], values)  # noqa: E731
    nodes = [helper.make_node("Flatten", ["crop"], ["flat"], axis=1),
             helper.make_node("Slice", ["flat", "s0", "s8", "ax"], ["latent"]),
             helper.make_node("Slice", ["flat", "s0", "sj", "ax"], ["first"]),
             helper.make_node("Reshape", ["first", "shape"], ["joints"])]
    graph = helper.make_graph(
        nodes, "wrong", [helper.make_tensor_value_info("crop", TensorProto.FLOAT, ["B", 1, 128, 128])],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["B", 8]),
         helper.make_tensor_value_info("joints", TensorProto.FLOAT, ["B", 21, last])],
        [const("s0", [0]), const("s8", [8]), const("sj", [21 * last]), const("ax", [1]),
         const("shape", [-1, 21, last])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta
    path = tmp_path / f"joints{last}_pose.onnx"
    onnx.save_model(model, str(path))
    return path


def test_a_model_whose_outputs_have_the_wrong_shape_is_refused_at_load(tmp_path):
    """Issue 17, item 4: valid metadata, wrong graph: one line when it loads, not a crash at the first frame."""
    from handtrack.inference.model import PoseModel

    with pytest.raises(HandtrackError, match=r"joints \(1, 21, 7\)") as err:
        HandTracker(TrackerOptions(model=str(_graph_with_joints_of(tmp_path, 7))))
    assert "\n" not in str(err.value)
    assert PoseModel(_graph_with_joints_of(tmp_path, 3)).predict(np.ones((2, 128, 128)))[1].shape == (2, 21, 3)


def test_a_hand_found_anew_is_recentred_until_its_palm_stays_put(nyu_frame):
    """While the predicted palm still moves by more than RECENTRE_AGAIN_MM, a hand found anew gets another pass
    centred there, up to MAX_PASSES_FOUND; a tracked hand gets its one pass. A pose model that always puts the
    palm 30 mm to the side of its crop's centre never settles, so it runs the most passes."""
    from handtrack.inference import skeleton
    from handtrack.inference import tracker as T

    # The faked model walks the crop 120 mm off the hand, which render and compare rightly calls no hand (then
    # nothing is tracked); passes are counted here, so presence is the presence net's alone.
    tracker = HandTracker(TrackerOptions(smoothing=None, hand="right", agreement=False))
    passes, predict = [], tracker.pose_model.predict

    def to_the_side(crops):
        latent, joints = predict(crops)
        passes.append(1)
        side = np.array([30.0 / (tracker.cube_mm / 2), 0.0, 0.0], np.float32)
        return latent, joints - skeleton.palm_centre(joints)[:, None] + side

    tracker.pose_model.predict = to_the_side
    assert tracker.process(nyu_frame).present
    assert len(passes) == T.MAX_PASSES_FOUND
    passes.clear()
    tracker.process(nyu_frame)  # tracked now
    assert len(passes) == 1

    settled = HandTracker(TrackerOptions(smoothing=None, hand="right"))
    passes.clear()
    settled_predict = settled.pose_model.predict
    settled.pose_model.predict = lambda crops: (passes.append(1), settled_predict(crops))[1]
    settled.process(nyu_frame)
    assert 2 <= len(passes) < T.MAX_PASSES_FOUND  # the found pass, the re-centred one, at most one more
