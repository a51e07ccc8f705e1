"""Depth sources: the protocol and capture thread (through fake backends), the demo, dataset folders, and the
hardware backends for real: RealSense through a pyrealsense2 software device recorded to a file and played back,
OpenNI2 against the real library (no camera attached, and its dummy driver's device)."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from handtrack.inference.camera import NYU, Intrinsics, project
from handtrack.inference.datasets.msra import save_depth_bin, save_joints
from handtrack.inference.datasets.realsense_png import save_depth_png
from handtrack.inference.errors import HandtrackError
from handtrack.inference.frame import (META_HOST_TIME, META_INDEX, META_SENSOR_FRAME, META_SENSOR_TIME, META_SOURCE,
                                       DepthFrame, StreamInfo)
from handtrack.inference.handmodel import params, surface
from handtrack.inference.sources import (CONNECTED, FINISHED, LOST, RECONNECTING, Backend, Backoff, CaptureSource,
                                         DeviceLost, DeviceMissing, EndOfStream, SourceTimeout, enumerate_devices,
                                         open_source)
from handtrack.inference.sources.demo_scene import GESTURES, SEQUENCE, DemoScene
from handtrack.inference.sources.loop import FrameLoop

SMALL = Intrinsics(50.5, 51.25, 31.75, 23.5, 64, 48)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text, f"not one line: {text!r}"
    return text


def wait_for(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


# --- fake backends: the capture thread's behaviour without hardware ---------------------------------------------
class FakeCamera(Backend):
    """A live camera that can be unplugged and plugged back (`plugged`), delivering a frame every `period` s."""
    name = "fake"
    live = True
    reconnectable = True

    def __init__(self, period: float = 0.002):
        self.period = period
        self.plugged = True
        self.open_times: list[float] = []
        self.closes = 0
        self.n = 0

    def open(self) -> StreamInfo:
        self.open_times.append(time.monotonic())
        if not self.plugged:
            raise DeviceMissing("fake camera is not plugged in")
        return StreamInfo(SMALL, 1 / self.period, "fake camera")

    def grab(self, timeout: float) -> DepthFrame:
        if not self.plugged:
            raise DeviceLost("fake camera was unplugged")
        time.sleep(self.period)
        self.n += 1
        return DepthFrame(np.full((SMALL.height, SMALL.width), self.n, np.float32), SMALL,
                          meta={META_SENSOR_FRAME: self.n, META_SENSOR_TIME: self.n * self.period})

    def close(self) -> None:
        self.closes += 1


class FakeRecording(Backend):
    """A recording of `count` frames, as fast as it is read."""
    name = "fake recording"
    live = False

    def __init__(self, count: int):
        self.count = count
        self.i = 0

    def open(self) -> StreamInfo:
        self.i = 0
        return StreamInfo(SMALL, 30.0, "fake recording")

    def grab(self, timeout: float) -> DepthFrame:
        if self.i >= self.count:
            raise EndOfStream(self.name)
        self.i += 1
        return DepthFrame(np.full((SMALL.height, SMALL.width), self.i, np.float32), SMALL,
                          meta={META_SENSOR_FRAME: self.i})

    def close(self) -> None:
        pass


def test_unplugged_camera_is_lost_then_reconnects_with_exponential_backoff():
    camera = FakeCamera()
    states = []
    backoff = Backoff(initial=0.02, factor=2.0, maximum=0.08)
    source = CaptureSource(camera, backoff=backoff, on_state=lambda s, e: states.append((s, e)))
    with source:
        assert source.state == CONNECTED and source.read(timeout=2).meta[META_SENSOR_FRAME] >= 1
        camera.plugged = False
        assert wait_for(lambda: len(camera.open_times) >= 5)  # the first open, then four failed retries
        assert source.state == RECONNECTING and "not plugged in" in source.error
        camera.plugged = True
        assert wait_for(lambda: source.state == CONNECTED)
        before = source.stats["captured"]
        source.read(timeout=2)  # may still be the last frame from before the loss
        assert source.read(timeout=2).meta[META_INDEX] >= before and source.error is None
    names = [s for s, _ in states]
    assert names[:3] == [CONNECTED, LOST, RECONNECTING] and names[-2:] == [CONNECTED, "disconnected"]
    assert dict(states)[LOST] == "fake camera was unplugged"
    assert source.stats["reconnects"] == 1 and camera.closes >= 2
    # Retries wait initial * factor^k, capped: 0.02, 0.04, 0.08, 0.08 s (an Event.wait never returns early).
    gaps = np.diff(camera.open_times[1:6])
    assert np.all(gaps >= 0.95 * np.array([0.04, 0.08, 0.08, 0.08])), gaps
    assert camera.open_times[1] - camera.open_times[0] > 0


def test_slow_reader_gets_the_newest_frame_and_never_blocks():
    camera = FakeCamera(period=0.001)
    with CaptureSource(camera) as source:
        assert source.read(timeout=2) is not None
        seen, waits = [], []
        for _ in range(8):
            captured_before = source.stats["captured"]
            time.sleep(0.03)  # a reader far slower than the camera
            assert source.stats["captured"] > captured_before  # the capture thread kept going meanwhile
            t = time.perf_counter()
            frame = source.latest()
            waits.append(time.perf_counter() - t)
            seen.append(frame.meta[META_INDEX])
        assert max(waits) < 0.02  # a lock and a pop, never a wait for the camera
        assert np.all(np.diff(seen) > 1) and source.stats["dropped"] > 0  # older frames were dropped, not queued
        assert len(source._buffer) <= 1


def test_playback_delivers_every_frame_in_order_to_a_slow_reader():
    with CaptureSource(FakeRecording(12), buffer_frames=3) as source:
        frames = []
        for _ in range(4):
            time.sleep(0.01)
            frames.append(source.read(timeout=2))
        frames += list(source)
        assert source.state == FINISHED
        with pytest.raises(EndOfStream):
            source.read(timeout=1)
        assert source.latest() is None
    assert [f.meta[META_SENSOR_FRAME] for f in frames] == list(range(1, 13))
    assert [f.meta[META_INDEX] for f in frames] == list(range(12))
    assert source.stats["dropped"] == 0


def test_frames_carry_counter_host_and_sensor_time():
    with CaptureSource(FakeCamera(period=0.003)) as source:
        frames = [source.read(timeout=2) for _ in range(5)]
    for f in frames:
        assert {META_INDEX, META_HOST_TIME, META_SENSOR_TIME, META_SENSOR_FRAME, META_SOURCE} <= set(f.meta)
        assert f.meta[META_SOURCE] == "fake"
    host = [f.meta[META_HOST_TIME] for f in frames]
    assert np.all(np.diff(host) >= 0) and abs(host[-1] - time.monotonic()) < 5
    assert np.all(np.diff([f.meta[META_INDEX] for f in frames]) >= 1)


def test_read_errors_are_one_line():
    source = CaptureSource(FakeCamera())
    with pytest.raises(HandtrackError) as exc:
        source.read()
    assert "not connected" in one_line(exc)

    class Silent(FakeCamera):
        def grab(self, timeout):
            time.sleep(timeout)
            return None

    with CaptureSource(Silent()) as quiet:
        with pytest.raises(SourceTimeout) as exc:
            quiet.read(timeout=0.05)
        assert "no frame from fake within 0.05 s" in one_line(exc)

    class Broken(FakeCamera):
        def grab(self, timeout):
            raise ValueError("sensor returned garbage")

    with CaptureSource(Broken()) as broken:
        assert wait_for(lambda: broken.state == "failed")
        with pytest.raises(HandtrackError) as exc:
            broken.read(timeout=1)
        assert "sensor returned garbage" in one_line(exc)
    source.disconnect()  # disconnecting what never connected, or twice, is harmless
    broken.disconnect()


# --- the loop and pacing --------------------------------------------------------------------------------------------
def test_frame_loop_reads_several_sources_in_order_to_their_ends_or_limit():
    def run(limit=None, stop=None):
        sources = [CaptureSource(FakeRecording(3)).connect(), CaptureSource(FakeRecording(5)).connect()]
        loop = FrameLoop(sources, stop or threading.Event(), limit=limit)
        got = [(i, frame.meta[META_SENSOR_FRAME]) for i, frame in loop]
        for source in sources:
            source.disconnect()
        return loop, [[n for i, n in got if i == k] for k in (0, 1)]

    loop, frames = run()
    assert frames == [[1, 2, 3], [1, 2, 3, 4, 5]] and loop.ended_by == "end" and loop.counts == [3, 5]
    loop, frames = run(limit=4)  # the short one ends first, the long one at the limit
    assert frames == [[1, 2, 3], [1, 2, 3, 4]] and loop.ended_by == "end"
    loop, frames = run(limit=2)
    assert frames == [[1, 2], [1, 2]] and loop.ended_by == "limit"
    stopped = threading.Event()
    stopped.set()
    loop, frames = run(stop=stopped)
    assert frames == [[], []] and loop.ended_by == "stop"


def test_frame_loop_waits_out_a_lost_camera_and_says_so_once():
    camera = FakeCamera()
    lines, stop = [], threading.Event()
    with CaptureSource(camera, backoff=Backoff(initial=0.02, factor=1.0, maximum=0.02)) as source:
        loop = FrameLoop([source], stop, log=lines.append)
        for k, _ in enumerate(loop):
            if k == 2:
                camera.plugged = False  # lost, then reconnecting, retried every 20 ms: one line per change
                threading.Timer(0.3, setattr, (camera, "plugged", True)).start()
            if k == 5:
                stop.set()
    assert loop.ended_by == "stop" and loop.counts == [6]
    assert len(camera.open_times) > 5  # retried many times while it was away, but said once per change of state
    assert lines[-1] == "source fake is delivering frames again" and len(set(lines)) == len(lines) <= 4
    assert lines[0].startswith("source fake is ") and all(line.endswith("; waiting for frames") for line in lines[:-1])


def test_pacer_holds_frames_to_their_time_and_restarts_a_late_schedule(monkeypatch):
    from handtrack.inference.sources import pacing

    class Clock:
        now = 0.0

        def monotonic(self):
            return self.now

        def sleep(self, s):
            self.now += s

    clock = Clock()
    monkeypatch.setattr(pacing, "time", clock)
    pacer = pacing.Pacer(resync_after_s=0.1)
    assert pacer.wait(5.0, timeout=1.0) and clock.now == 0.0  # the first frame starts the schedule
    assert pacer.wait(5.5, timeout=1.0) and clock.now == pytest.approx(0.5)  # due half a second later
    assert not pacer.wait(7.0, timeout=0.25) and clock.now == pytest.approx(0.75)  # not due yet: only the timeout
    clock.now = 3.0  # the host stalled: frame 7.0 was due at 2.0
    assert pacer.wait(7.0, timeout=1.0) and clock.now == 3.0  # late: at once, and the schedule starts here ...
    assert pacer.wait(7.05, timeout=1.0) and clock.now == pytest.approx(3.05)  # ... so no burst of late frames
    pacer.restart()
    assert pacer.wait(100.0, timeout=1.0) and clock.now == pytest.approx(3.05)


# --- the demo -----------------------------------------------------------------------------------------------------
def test_demo_frames_have_the_sensor_shape_ground_truth_and_stamps():
    with open_source("demo", realtime=False, frames=6) as source:
        assert not source.live and source.intrinsics == NYU
        frames = list(source)
        assert source.state == FINISHED
    assert len(frames) == 6
    for k, f in enumerate(frames):
        assert f.depth_mm.shape == (480, 640) and f.depth_mm.dtype == np.float32
        assert f.joints_xyz.shape == (21, 3) and f.joint_set == "canonical21"
        assert f.meta[META_INDEX] == k and f.meta[META_SENSOR_FRAME] == k
        assert f.meta[META_SENSOR_TIME] == pytest.approx(k / 30.0)
        assert f.depth_mm.min() > 0  # a wall behind everything: no holes in a clean synthetic frame
    assert not np.array_equal(frames[0].depth_mm, frames[5].depth_mm)  # it moves
    assert frames[0].depth_mm is not frames[1].depth_mm  # each frame owns its pixels


def test_demo_joints_project_onto_the_rendered_hand():
    scene = DemoScene()
    hand_parts = set(surface.HAND_PARTS) | {surface.PART_FOREARM}
    for t in np.linspace(0, scene.loop_seconds, 17)[:-1]:
        depth, labels, joints, _ = scene.render(t)
        uv = np.rint(project(joints, scene.K)).astype(int)
        assert np.all((uv >= 0) & (uv < [scene.K.width, scene.K.height])), f"a joint leaves the image at t={t}"
        on_hand = np.isin(labels[uv[:, 1], uv[:, 0]], list(hand_parts))
        # Joints lie inside the fingers, so the visible surface is at most a finger radius in front of them;
        # joints hidden behind other fingers (a fist) may be further from it.
        gap = joints[:, 2] - depth[uv[:, 1], uv[:, 0]]
        assert on_hand.mean() >= 0.9, (t, on_hand)
        assert 0 <= np.median(gap) <= 20 and np.mean((gap > -2) & (gap < 40)) >= 0.75, (t, gap)
    # The same holds for the frames the source delivers.
    with open_source("demo", realtime=False, frames=1) as source:
        f = source.read()
    uv = np.rint(project(f.joints_xyz, f.intrinsics)).astype(int)
    assert 0 <= np.median(f.joints_xyz[:, 2] - f.depth_mm[uv[:, 1], uv[:, 0]]) <= 20


def test_demo_motion_is_smooth_and_loops_without_a_seam():
    scene = DemoScene()
    np.testing.assert_allclose(scene.pose_at(0.0), scene.pose_at(scene.loop_seconds), atol=1e-9)
    t = np.arange(0, scene.loop_seconds, 1 / 30)
    joints = np.stack([scene.moving_capsules(scene.pose_at(x))[2] for x in t])
    steps = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max(axis=1)
    assert steps.max() < 25  # mm per frame at 30 FPS: brisk but continuous
    spread = np.linalg.norm(joints - joints[:, :1], axis=-1)  # joint distances from the wrist
    assert np.ptp(spread[:, 8]) > 60  # the index tip really closes and opens over the loop
    poses = np.stack([scene.pose_at(x) for x in t])
    assert np.all(poses[:, params.ARTIC] >= params.POSE_LOWER[params.ARTIC] - 1e-9)
    assert np.all(poses[:, params.ARTIC] <= params.POSE_UPPER[params.ARTIC] + 1e-9)


def test_demo_gestures_are_natural_under_the_training_pose_prior():
    """Every gesture but the two the NYU poses lack is as likely as the 0.1 % least likely poses the prior draws."""
    from handtrack.training.synth.pose_prior import PosePrior
    prior = PosePrior.load()
    samples, _ = prior.sample(np.random.default_rng(0), 20000)
    floor = np.percentile(prior.articulation.log_prob(samples), 0.1)
    for name in SEQUENCE:
        if name in ("point", "victory"):
            continue
        assert prior.articulation.log_prob(GESTURES[name])[0] >= floor, name


def test_demo_throughput_benchmark(record_property):
    """Unpaced demo frames per second at 640x480, kept in the test report (`--junitxml`), not asserted: speed is
    measured by `handtrack bench`, never asserted in tests. What is asserted: every frame is a 640x480 depth image."""
    with open_source("demo", realtime=False) as source:
        source.read()  # the first frame pays for loading the compiled renderer
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            assert source.read().depth_mm.shape == (480, 640)
            n += 1
        record_property("demo_frames_per_s", round(n / (time.perf_counter() - start)))


def test_paced_demo_is_a_live_source():
    with open_source("demo", fps=200) as source:
        assert source.live
        frames = [source.read(timeout=2) for _ in range(5)]
        time.sleep(0.1)
        newest = source.latest()
    assert newest.meta[META_INDEX] > frames[-1].meta[META_INDEX] + 1  # it kept running, the reader got the newest
    assert np.all(np.diff([f.meta[META_SENSOR_TIME] for f in frames]) > 0)


def test_demo_rejects_unknown_gestures():
    with pytest.raises(HandtrackError) as exc:
        open_source("demo", gestures=("open", "wave")).connect()
    assert "'wave'" in one_line(exc)


# --- dataset folders --------------------------------------------------------------------------------------------
def test_png_folder_replays_in_order(tmp_path):
    rng = np.random.default_rng(1)
    images = [np.rint(rng.uniform(300, 900, (48, 64))).astype(np.float32) for _ in range(3)]
    for i, img in enumerate(images):
        save_depth_png(tmp_path / f"frame_{i + 8}.png", img, depth_unit_mm=1.0)  # natural order: 8, 9, 10
    with open_source(tmp_path, intrinsics=SMALL, depth_unit_mm=1.0, fps=10) as source:
        assert source.intrinsics == SMALL and not source.live
        frames = list(source)
    assert [f.frame_id for f in frames] == ["frame_8", "frame_9", "frame_10"]
    for f, img in zip(frames, images):
        np.testing.assert_array_equal(f.depth_mm, img)
    assert [f.meta[META_SENSOR_TIME] for f in frames] == [0.0, 0.1, 0.2]


def _folder_with_bad_files(folder: Path, height: int = 48, width: int = 64) -> int:
    """Good PNGs at even names, and between them every kind of bad file a folder can hold; returns how many bad
    ones."""
    import cv2

    good = np.full((height, width), 700.0, np.float32)
    for i in range(0, 10, 2):
        save_depth_png(folder / f"f{i}.png", good, depth_unit_mm=1.0)
    (folder / "f1.png").write_bytes(b"")                                            # zero bytes
    data = (folder / "f0.png").read_bytes()
    (folder / "f3.png").write_bytes(data[: len(data) // 3])                         # truncated
    (folder / "f5.png").write_text("not an image")                                  # text named .png
    cv2.imwrite(str(folder / "f7.png"), np.zeros((height, width, 3), np.uint8))  # 8-bit RGB
    cv2.imwrite(str(folder / "f9.png"), np.zeros((height // 2, width // 2), np.uint16))  # wrong size
    return 5


def test_unreadable_files_of_a_folder_are_skipped_counted_and_said_once(tmp_path, caplog):
    """Issue 17, item 1: a bad file must not end a stream of good ones."""
    bad = _folder_with_bad_files(tmp_path)
    with caplog.at_level("WARNING", logger="handtrack"):
        with open_source(tmp_path, intrinsics=SMALL, depth_unit_mm=1.0) as source:
            frames = list(source)
            assert source.stats["skipped"] == bad and source.state == FINISHED
    assert [f.frame_id for f in frames] == ["f0", "f2", "f4", "f6", "f8"]
    warnings = [r for r in caplog.records if "skipping unreadable frames" in r.getMessage()]
    assert len(warnings) == 1


def test_a_folder_with_no_readable_frame_is_one_line(tmp_path):
    (tmp_path / "a.png").write_text("not an image")
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(HandtrackError, match="no readable frame among its 2"):
        open_source(tmp_path, intrinsics=SMALL, depth_unit_mm=1.0).connect()


def test_stream_over_a_folder_with_bad_files_sends_every_good_frame(tmp_path):
    bad = _folder_with_bad_files(tmp_path, 480, 640)  # the size of the folder default's camera (SR305)
    done = subprocess.run([sys.executable, "-m", "handtrack.app.cli", "--stream", "--source", str(tmp_path),
                           "--unpaced"], capture_output=True, timeout=120)
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert len(done.stdout.decode().splitlines()) == 5
    assert f"{bad} unreadable frames skipped" in stderr and "Traceback" not in stderr


def test_loose_nyu_frames_replay_with_their_packed_depth():
    from handtrack.inference.datasets import nyu

    folder = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nyu"
    with open_source(folder) as source:
        frames = list(source)
    assert [f.frame_id for f in frames] == ["test_depth_1_0000001"]
    expected = nyu.load_frame(folder / "test_depth_1_0000001.png")
    np.testing.assert_array_equal(frames[0].depth_mm, expected.depth_mm)
    assert frames[0].intrinsics == expected.intrinsics


def test_msra_folder_keeps_its_joints(tmp_path):
    gesture = tmp_path / "P0" / "1"
    gesture.mkdir(parents=True)
    joints = np.random.default_rng(2).uniform(-50, 50, (2, 21, 3)) + [0, 0, 400]
    for n in range(2):
        depth = np.zeros((240, 320), np.float32)
        depth[100:140, 150:200] = 400 + n
        save_depth_bin(gesture / f"{n:06d}_depth.bin", depth)
    save_joints(gesture / "joint.txt", joints)
    with open_source(tmp_path) as source:
        frames = list(source)
    assert [f.joint_set for f in frames] == ["msra21", "msra21"]
    np.testing.assert_allclose(frames[1].joints_xyz, joints[1], atol=1e-5)


def test_folder_that_is_no_dataset_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(HandtrackError) as exc:
        open_source(tmp_path).connect()
    assert "not a dataset folder" in one_line(exc)


# --- the factory ----------------------------------------------------------------------------------------------------
def test_open_source_names_every_backend(tmp_path):
    from handtrack.inference.sources.folder import FolderBackend
    from handtrack.inference.sources.openni import OpenNIBackend
    from handtrack.inference.sources.realsense import RealSenseCamera, RealSenseRecording
    assert open_source("realsense:123456").backend.serial == "123456"
    assert open_source("realsense", serial="42").name == "realsense:42"
    assert isinstance(open_source("openni:PingPong").backend, OpenNIBackend)
    assert isinstance(open_source(tmp_path / "a.BAG").backend, RealSenseRecording)
    assert isinstance(open_source(tmp_path / "a.db3").backend, RealSenseRecording)
    assert not open_source(tmp_path / "a.oni").live
    assert isinstance(open_source(tmp_path).backend, FolderBackend)
    assert isinstance(open_source("realsense").backend, RealSenseCamera)


def test_unknown_spec_or_option_is_one_line(tmp_path):
    with pytest.raises(HandtrackError) as exc:
        open_source("webcam")
    assert "unknown source 'webcam'" in one_line(exc)
    with pytest.raises(HandtrackError) as exc:
        open_source(tmp_path / "missing_folder")
    one_line(exc)
    with pytest.raises(HandtrackError) as exc:
        open_source("demo", colour=True)
    assert "no option 'colour'" in one_line(exc) and "fps" in str(exc.value)
    with pytest.raises(HandtrackError) as exc:
        open_source("demo", intrinsics="kinect2")
    assert "unknown camera" in one_line(exc)


def test_enumerate_lists_the_demo_first():
    devices = enumerate_devices()
    assert devices[0].spec == "demo"
    assert all(d.spec.startswith(("demo", "realsense", "openni")) for d in devices)


# --- RealSense, through pyrealsense2's software device -----------------------------------------------------------
def record_software_device(path, images: list[np.ndarray], K: Intrinsics, depth_units_m: float):
    """Write `images` (uint16) as a RealSense recording through a software depth sensor and rs.recorder."""
    rs = pytest.importorskip("pyrealsense2")
    device = rs.software_device()
    sensor = device.add_sensor("Depth")
    sensor.add_read_only_option(rs.option.depth_units, depth_units_m)
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.depth, 0, 0
    stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = K.width, K.height, 30, 2, rs.format.z16
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = K.width, K.height, K.fx, K.fy, K.cx, K.cy
    intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
    stream.intrinsics = intr
    profile = sensor.add_video_stream(stream).as_video_stream_profile()
    recorder = rs.recorder(str(path), device)
    sync = rs.syncer()
    sensor.open(profile)
    sensor.start(sync)
    for i, img in enumerate(images):
        frame = rs.software_video_frame()
        frame.pixels, frame.stride, frame.bpp = img, K.width * 2, 2
        frame.timestamp, frame.domain = 1000.0 + i * 1000 / 30, rs.timestamp_domain.hardware_clock
        frame.frame_number, frame.profile = i + 1, profile
        sensor.on_video_frame(frame)
        sync.wait_for_frames(2000)  # the recorder has written it once the frame came through
    sensor.stop()
    sensor.close()
    del recorder  # closes the file


def test_realsense_recording_plays_back_exact_pixels_intrinsics_and_depth_scale(tmp_path):
    pytest.importorskip("pyrealsense2")
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 12000, (SMALL.height, SMALL.width), dtype=np.uint16) for _ in range(20)]
    path = tmp_path / "software.db3"  # librealsense 2.59 records only ROS2 .db3 (".bag" is refused)
    record_software_device(path, images, SMALL, depth_units_m=0.000125)
    with open_source(path, buffer_frames=2) as source:
        assert source.intrinsics == SMALL  # fx, fy, ppx, ppy, size exactly as the device reported them
        assert np.float32(source.info.depth_unit_mm / 1000) == np.float32(0.000125)
        frames = []
        for frame in source:
            time.sleep(0.005)  # a reader slower than the file: nothing may be dropped
            frames.append(frame)
        assert source.state == FINISHED
    assert len(frames) == len(images)
    assert [f.meta[META_SENSOR_FRAME] for f in frames] == list(range(1, 21))
    np.testing.assert_allclose([f.meta[META_SENSOR_TIME] for f in frames], 1.0 + np.arange(20) / 30, atol=1e-6)
    unit = np.float32(source.info.depth_unit_mm)
    for f, raw in zip(frames, images):
        assert f.depth_mm.dtype == np.float32 and f.intrinsics == SMALL
        np.testing.assert_array_equal(f.depth_mm, raw.astype(np.float32) * unit)
        np.testing.assert_array_equal(np.rint(f.depth_mm / 0.125).astype(np.uint16), raw)


def test_realsense_live_mode_is_the_fastest_up_to_90_fps_then_the_largest():
    rs = pytest.importorskip("pyrealsense2")
    from handtrack.inference.sources.realsense import choose_depth_profile
    sensor = rs.software_device().add_sensor("Stereo Module")
    for uid, (w, h, fps, fmt) in enumerate([(64, 48, 30, rs.format.z16), (64, 48, 90, rs.format.z16),
                                            (32, 24, 90, rs.format.z16), (64, 48, 100, rs.format.z16),
                                            (128, 96, 90, rs.format.y8)]):
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = rs.stream.depth, 0, uid
        stream.width, stream.height, stream.fps, stream.bpp, stream.fmt = w, h, fps, 2, fmt
        sensor.add_video_stream(stream)
    mode = lambda p: (p.width(), p.height(), p.fps())  # noqa: E731
    profiles = sensor.get_stream_profiles()
    assert mode(choose_depth_profile(profiles)) == (64, 48, 90)
    assert mode(choose_depth_profile(profiles, fps=30)) == (64, 48, 30)
    assert mode(choose_depth_profile(profiles, max_fps=None)) == (64, 48, 100)
    with pytest.raises(HandtrackError) as exc:
        choose_depth_profile(profiles, width=848)
    assert "32x24@90, 64x48@30, 64x48@90, 64x48@100" in one_line(exc)


def test_realsense_broken_or_missing_recording_is_one_line(tmp_path):
    pytest.importorskip("pyrealsense2")
    with pytest.raises(DeviceMissing) as exc:
        open_source(tmp_path / "nothing.db3").connect()
    assert "no RealSense recording" in one_line(exc)
    bad = tmp_path / "garbage.bag"
    bad.write_bytes(b"not a rosbag\n" * 10)
    with pytest.raises(HandtrackError) as exc:
        open_source(bad).connect()
    assert "cannot read RealSense recording" in one_line(exc)


def test_realsense_live_without_a_camera_is_one_line():
    pytest.importorskip("pyrealsense2")
    from handtrack.inference.sources import realsense
    if realsense.enumerate_devices():
        pytest.skip("a RealSense camera is plugged in")
    with pytest.raises(DeviceMissing) as exc:
        open_source("realsense").connect()
    assert "no RealSense camera found" in one_line(exc)
    with pytest.raises(DeviceMissing) as exc:
        open_source("realsense:0123456789").connect()
    assert "serial 0123456789" in one_line(exc)


# --- OpenNI2, against the real library -------------------------------------------------------------------------
def test_openni_without_a_camera_is_one_line_and_enumerates_nothing(tmp_path):
    pytest.importorskip("openni")
    from handtrack.inference.sources import openni
    assert openni.enumerate_devices() == []
    with pytest.raises(DeviceMissing) as exc:
        open_source("openni").connect()
    assert "no OpenNI2 camera found" in one_line(exc)
    with pytest.raises(DeviceMissing) as exc:
        open_source(tmp_path / "none.oni").connect()
    assert "no OpenNI recording" in one_line(exc)
    bad = tmp_path / "garbage.oni"
    bad.write_bytes(b"\0" * 256)
    with pytest.raises(HandtrackError) as exc:
        open_source(bad).connect()
    assert "cannot read OpenNI recording" in one_line(exc)


def test_openni_live_frames_from_the_dummy_driver():
    """OpenNI2 ships a dummy driver whose device 'PingPong' streams 320x240 depth; read it through the source.

    Runs in a child process: after that device was opened, OpenNI2's shutdown (run at exit by the `openni`
    package) crashes in the dummy driver, so the child reports and leaves with os._exit."""
    pytest.importorskip("openni")
    code = textwrap.dedent("""
        import json, os
        from handtrack.inference.camera import Intrinsics
        from handtrack.inference.errors import HandtrackError
        from handtrack.inference.sources import open_source
        from handtrack.inference.sources import DeviceMissing
        out = {}
        try:
            open_source("openni:PingPong").connect()
        except DeviceMissing as exc:  # an OpenNI2 build without the dummy driver
            print(json.dumps({"skip": str(exc)}), flush=True)
            os._exit(0)
        except HandtrackError as exc:
            out["no_fov"] = str(exc)
        K = Intrinsics(288.0, 288.0, 160.0, 120.0, 320, 240)
        with open_source("openni:PingPong", intrinsics=K) as source:
            out["live"] = source.live
            out["info"] = [source.info.fps, source.info.depth_unit_mm, source.intrinsics == K]
            frames = [source.read(timeout=5) for _ in range(4)]
        out["frames"] = [[f.meta["sensor_frame"], f.meta["sensor_time"], f.meta["frame_index"], f.depth_mm.dtype.str,
                          list(f.depth_mm.shape), float(f.depth_mm.max())] for f in frames]
        print(json.dumps(out), flush=True)
        os._exit(0)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(f"no OpenNI2 dummy device: {out['skip']}")
    assert "does not report its field of view" in out["no_fov"] and "\n" not in out["no_fov"]
    assert out["live"] is True and out["info"] == [30.0, 1.0, True]
    numbers = [f[0] for f in out["frames"]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    assert [f[2] for f in out["frames"]] == sorted(f[2] for f in out["frames"])
    for _, sensor_time, _, dtype, shape, top in out["frames"]:
        assert dtype == "<f4" and shape == [240, 320] and 0 < top <= 10000 and sensor_time > 0


def test_openni_intrinsics_follow_openni_world_conversion():
    from handtrack.inference.sources.openni import intrinsics_from_fov
    K = intrinsics_from_fov(640, 480, 1.0144686, 0.7898979)  # the fields of view a PrimeSense sensor reports
    assert (K.cx, K.cy) == (320, 240) and K.fx == pytest.approx(575.8, abs=0.1)  # Kinect v1's well-known 575.8
    # OpenNI2: x = (u / W - 0.5) * z * 2 tan(hfov / 2); the same point through the pinhole:
    u, z = 500.0, 800.0
    assert (u - K.cx) * z / K.fx == pytest.approx((u / 640 - 0.5) * z * 2 * np.tan(1.0144686 / 2))


def test_sources_import_no_torch_and_no_training():
    code = ("import sys\n"
            "from handtrack.inference.sources import open_source\n"
            "with open_source('demo', realtime=False, frames=2) as s: list(s)\n"
            "import handtrack.inference.sources.realsense, handtrack.inference.sources.openni\n"
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('handtrack.training')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_disconnect_while_a_reader_waits_wakes_it():
    class Silent(FakeCamera):
        def grab(self, timeout):
            time.sleep(timeout)
            return None

    source = CaptureSource(Silent()).connect()
    errors = []
    reader = threading.Thread(target=lambda: errors.append(pytest.raises(HandtrackError, source.read, 10.0)))
    reader.start()
    time.sleep(0.05)
    source.disconnect()
    reader.join(timeout=3)
    assert not reader.is_alive() and "disconnected" in str(errors[0].value)
