"""Recording sessions: the MCAP round trip (bit-exact depth, calibration, times, predictions), crash safety under a
real SIGKILL, a full disk, a session as a source and as a training set, several cameras, and `handtrack record`."""
from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from handtrack.inference.camera import D435_848, ICVL, NYU, Intrinsics
from handtrack.inference.datasets.session import SessionDataset
from handtrack.inference.errors import HandtrackError
from handtrack.inference.frame import (META_HOST_TIME, META_INDEX, META_SENSOR_FRAME, META_SENSOR_TIME, DepthFrame,
                                       StreamInfo)
from handtrack.inference.recording import (META_PREDICTION, META_RECORDED_HOST_TIME, META_RECORDED_INDEX,
                                           SessionReader, SessionWriter, messages, writer as writer_module)
from handtrack.inference.sources import open_source
from handtrack.inference.tracker import HandTracker, TrackerOptions

SMALL = Intrinsics(50.5, 51.25, 31.75, 23.5, 64, 48)
SR305_UNIT = 0.125  # mm per unit, as the SR305 reports


def demo_frames(n: int, **options) -> list[DepthFrame]:
    with open_source("demo", realtime=False, frames=n, **options) as source:
        return list(source)


def camera_frames(n: int, unit: float = SR305_UNIT, K: Intrinsics = SMALL) -> list[DepthFrame]:
    """Frames as a camera source makes them: uint16 units times the unit, with sensor times and counters."""
    rng = np.random.default_rng(1)
    frames = []
    for k in range(n):
        units = rng.integers(0, 65536, (K.height, K.width)).astype(np.uint16)
        units[0, :5] = 0  # missing pixels
        frames.append(DepthFrame(units.astype(np.float32) * np.float32(unit), K, frame_id=str(k),
                                 meta={META_SENSOR_TIME: 1000.0 + k / 90 if k != 2 else None,
                                       META_SENSOR_FRAME: 500 + k, META_HOST_TIME: 20.0 + k * 0.011,
                                       META_INDEX: k, "depth_unit_mm": unit}))
    return frames


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A session of 12 demo frames with the real tracker's predictions, and what went into it."""
    path = tmp_path_factory.mktemp("tracked") / "not_yet" / "demo.mcap"  # the writer makes the folder
    tracker = HandTracker(TrackerOptions(model="crossingnets"))
    frames = demo_frames(12)
    results = [tracker.process(f) for f in frames]
    with SessionWriter(path, StreamInfo(NYU, 30.0, "demo"), model="crossingnets") as writer:
        for frame, result in zip(frames, results):
            assert writer.write(frame, result)
    assert writer.stats["frames"] == 12 and writer.error is None
    return path, frames, results


def assert_same_frame(got: DepthFrame, want: DepthFrame) -> None:
    assert got.depth_mm.dtype == np.float32 and got.depth_mm.shape == want.depth_mm.shape
    assert np.array_equal(got.depth_mm, want.depth_mm, equal_nan=True), "depth differs"
    assert got.intrinsics == want.intrinsics
    assert got.joints_xyz is None  # a session has no ground truth
    for key in (META_SENSOR_TIME, META_SENSOR_FRAME):
        assert got.meta[key] == want.meta.get(key)


# --- messages and the round trip ----------------------------------------------------------------------------
def test_own_cdr_encoding_decodes_with_the_ros2_library():
    from mcap.records import Schema
    from mcap_ros2.decoder import DecoderFactory

    factory = DecoderFactory()

    def decode(i, name, data):
        return factory.decoder_for("cdr", Schema(id=i, name=name, encoding="ros2msg",
                                                 data=messages.SCHEMAS[name].encode()))(data)

    pixels = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64)
    image = decode(1, messages.IMAGE, messages.encode_image(3_000_000_007, "cam0_depth", pixels, "16UC1"))
    assert (image.header.stamp.sec, image.header.stamp.nanosec, image.header.frame_id) == (3, 7, "cam0_depth")
    assert (image.height, image.width, image.encoding, image.step, image.is_bigendian) == (48, 64, "16UC1", 128, 0)
    assert np.array_equal(np.frombuffer(image.data, "<u2").reshape(48, 64), pixels)
    info = decode(2, messages.CAMERA_INFO, messages.encode_camera_info(0, "c", D435_848))
    assert (info.width, info.height, info.distortion_model, list(info.d)) == (848, 480, "plumb_bob", [0.0] * 5)
    assert info.k == [430.0, 0.0, 424.0, 0.0, 430.0, 240.0, 0.0, 0.0, 1.0] and info.p[2] == 424.0
    fi = decode(3, messages.FRAME_INFO, messages.encode_frame_info(-5, "c", 7, 12.5, None, -3, 0.125, "demo"))
    assert (fi.frame_index, fi.host_time, fi.has_sensor_time, fi.has_sensor_frame, fi.sensor_frame) == \
           (7, 12.5, False, True, -3)
    assert (fi.depth_unit_mm, fi.source, fi.header.stamp.sec, fi.header.stamp.nanosec) == (0.125, "demo", -1, 999999995)


def test_round_trip_is_bit_exact_with_times_unit_and_intrinsics(tmp_path):
    frames = camera_frames(6)
    path = tmp_path / "cam.mcap"
    with SessionWriter(path, StreamInfo(SMALL, 90.0, "Intel RealSense SR305 (serial 1)", SR305_UNIT)) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.stats["raw_bytes"] == 6 * 64 * 48 * 2  # stored as raw 16-bit units, not floats
    with SessionReader(path) as reader:
        assert reader.cameras["cam0"] == StreamInfo(SMALL, 90.0, "Intel RealSense SR305 (serial 1)", SR305_UNIT)
        got = list(reader.frames())
        assert not reader.truncated
    assert len(got) == 6
    for g, f in zip(got, frames):
        assert_same_frame(g, f)
        assert g.meta["depth_unit_mm"] == SR305_UNIT
        assert g.meta[META_RECORDED_HOST_TIME] == f.meta[META_HOST_TIME]  # float64 exactly
        assert g.meta[META_RECORDED_INDEX] == f.meta[META_INDEX]
        assert g.meta[META_PREDICTION] is None
    assert got[2].meta[META_SENSOR_TIME] is None  # "no sensor time" stays None, not 0


@pytest.mark.parametrize("intrinsics, fps, expected", [(D435_848, 90.0, "lz4"), (NYU, 30.0, "zstd"),
                                                        (D435_848, None, "zstd")])
def test_auto_compression_picks_what_the_writer_keeps_up_with(tmp_path, intrinsics, fps, expected):
    from mcap.reader import make_reader

    path = tmp_path / "auto.mcap"
    depth = np.full((intrinsics.height, intrinsics.width), 600.0, np.float32)
    with SessionWriter(path, StreamInfo(intrinsics, fps, "camera", 1.0)) as writer:
        writer.write(DepthFrame(depth, intrinsics))
    assert writer.compression == expected
    with open(path, "rb") as f:
        assert {c.compression for c in make_reader(f).get_summary().chunk_indexes} == {expected}
    with SessionReader(path) as reader:
        assert np.array_equal(next(iter(reader.frames())).depth_mm, depth)


def test_predictions_round_trip_as_pseudo_labels_and_standard_readers_open_the_file(tracked):
    path, frames, results = tracked
    got = list(SessionReader(path).frames())
    assert len(got) == len(frames)
    assert any(r.present for r in results)
    for g, f, r in zip(got, frames, results):
        assert_same_frame(g, f)  # float demo depth: stored as 32FC1, still bit-exact
        p = g.meta[META_PREDICTION]
        assert p["model"] == "crossingnets" and p["present"] == r.present and p["presence"] == r.presence
        assert p["joint_set"] == "canonical21"
        if r.joints_mm is None:
            assert p["joints_mm"] is None
        else:
            assert np.array_equal(p["joints_mm"], r.joints_mm) and p["joints_mm"].shape == (21, 3)
            assert np.array_equal(p["uv"], r.uv) and np.array_equal(p["confidence"], r.confidence)
            assert np.array_equal(p["centre_mm"], r.centre_mm)
    # The finished file has its summary and index: the mcap library's own indexed reader decodes every topic.
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        topics = {c.topic for c in summary.channels.values()}
        assert topics == {"/cam0/depth/image_raw", "/cam0/depth/camera_info", "/cam0/depth/frame_info",
                          "/cam0/handtrack/predictions"}
        assert summary.statistics.message_count == 4 * len(frames)
        images = [m for _, _, _, m in reader.iter_decoded_messages(topics=["/cam0/depth/image_raw"])]
        assert [i.encoding for i in images] == ["32FC1"] * len(frames)
        assert {m.name for m in reader.iter_metadata()} == {"handtrack.session", "handtrack.camera.cam0"}


# --- crash safety and bad input -----------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys
    from handtrack.inference.recording import SessionWriter
    from handtrack.inference.sources import open_source
    with open_source("demo", fps=60.0) as source:              # live: paced like a camera
        writer = SessionWriter(sys.argv[1], info=source.info)
        for frame in source:
            writer.write(frame)
            print(frame.meta["sensor_frame"], flush=True)      # handed to the writer
""")


def test_kill_9_loses_under_a_second_and_every_earlier_frame_reads_back_bit_exact(tmp_path):
    path = tmp_path / "killed.mcap"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        handed = -1
        deadline = time.monotonic() + 120  # the first demo render may compile the renderer
        while handed < 40 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            handed = int(line)
        assert handed >= 40, "the recording child did not get going"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    reader = SessionReader(path)
    got = list(reader.frames())
    sensor_frames = [f.meta[META_SENSOR_FRAME] for f in got]
    assert sensor_frames == sorted(sensor_frames) and len(got) >= 20
    assert handed - sensor_frames[-1] <= 60, f"lost {handed - sensor_frames[-1]} frames, over a second at 60 FPS"
    truth = demo_frames(sensor_frames[-1] + 1, fps=60.0)
    for frame in got:
        assert np.array_equal(frame.depth_mm, truth[frame.meta[META_SENSOR_FRAME]].depth_mm)
    # ... and the same through the source, as `--source killed.mcap` would replay it.
    with open_source(path, realtime=False) as source:
        assert [f.meta[META_SENSOR_FRAME] for f in source] == sensor_frames


class FullDisk(io.FileIO):
    """A real file on a disk that fills up after `room` bytes: writes what fits, then ENOSPC."""
    room = 0

    def write(self, data):
        fits = max(0, min(len(data), self.room - self.tell()))
        if fits < len(data):
            if fits:
                super().write(memoryview(data)[:fits])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_full_disk_stops_recording_with_one_line_and_keeps_what_was_written(tmp_path, monkeypatch):
    frames = camera_frames(40, K=Intrinsics(200.0, 200.0, 99.5, 74.5, 200, 150))
    FullDisk.room = 200_000  # about 3 compressed frames
    monkeypatch.setattr(writer_module, "_open_output",
                        lambda path, overwrite: io.BufferedWriter(FullDisk(path, "xb"), buffer_size=8192))
    path = tmp_path / "full.mcap"
    writer = SessionWriter(path, StreamInfo(frames[0].intrinsics, 90.0, "cam", SR305_UNIT))
    accepted = 0
    for frame in frames:
        accepted += writer.write(frame)  # the caller (tracking) carries on whatever happens
        time.sleep(0.002)
    writer.close()
    writer.close()  # twice is fine
    error = writer.error
    assert error and "\n" not in error and "No space left on device" in error and str(path) in error
    assert 0 < writer.stats["frames"] < accepted
    assert writer.write(frames[0]) is False  # stopped: refused at once, never raises
    reader = SessionReader(path)
    got = list(reader.frames())
    assert reader.truncated and 1 <= len(got) <= writer.stats["frames"]
    for g, f in zip(got, frames):
        assert_same_frame(g, f)


def test_unwritable_or_existing_output_is_one_line(tmp_path):
    info = StreamInfo(SMALL, 30.0, "cam")
    with pytest.raises(HandtrackError, match="No space left on device") as exc:
        SessionWriter("/dev/full", info, overwrite=True)
    assert "\n" not in str(exc.value)
    existing = tmp_path / "taken.mcap"
    existing.write_bytes(b"precious")
    with pytest.raises(HandtrackError, match="exists"):
        SessionWriter(existing, info)
    assert existing.read_bytes() == b"precious"
    with pytest.raises(HandtrackError, match="cannot create the folder"):
        SessionWriter(existing / "under_a_file" / "s.mcap", info)  # a missing folder is made; this one cannot be


@pytest.mark.parametrize("args, message", [
    (["--seconds", "-1"], "--seconds must be positive"),
    (["--seconds", "0"], "--seconds must be positive"),
    (["--source", ""], "empty one"),
])
def test_record_refuses_nonsense_arguments_in_one_line(tmp_path, capsys, args, message):
    """Issue 17, item 8: a negative duration was accepted, and an empty source spec named the current folder."""
    from handtrack.app.cli import main

    out = tmp_path / "s.mcap"
    argv = ["record", "--out", str(out)] + (args if "--source" in args else ["--source", "demo", *args])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_a_damaged_chunk_mid_session_is_counted_and_reported_on_replay_and_in_the_dataset(tmp_path, caplog):
    """Issue 17, item 6: the frames of a corrupted chunk used to vanish without a word."""
    from handtrack.inference.datasets.session import SessionDataset

    path = tmp_path / "ok.mcap"
    with SessionWriter(path, StreamInfo(SMALL, 90.0, "cam", SR305_UNIT)) as writer:
        for frame in camera_frames(6):
            writer.write(frame)
    offsets = SessionReader(path).index()
    data = bytearray(path.read_bytes())
    data[offsets[2] + 200] ^= 0xFF  # the third frame's chunk
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="handtrack"):
        with open_source(damaged, realtime=False) as replay:
            got = list(replay)
            assert replay.stats["skipped"] == 1 and replay.state == "finished"
        assert [f.meta["session_frame"] for f in got] == [0, 1, 3, 4, 5]
        assert [r for r in caplog.records if "frames lost in a damaged part" in r.getMessage()]
        caplog.clear()
        with SessionDataset(damaged) as dataset:
            assert len(dataset) == 5 and dataset.lost_frames == 1 and dataset.gaps == [(2, 2)]
        assert [r for r in caplog.records if "1 frames of cam0 lost" in r.getMessage()]
    with SessionDataset(path) as intact:
        assert intact.lost_frames == 0 and intact.gaps == []


def test_damaged_files_are_clear_errors_or_counted_skips(tmp_path):
    frames = camera_frames(5)
    path = tmp_path / "ok.mcap"
    with SessionWriter(path, StreamInfo(SMALL, 90.0, "cam", SR305_UNIT)) as writer:
        for frame in frames:
            writer.write(frame)
    offsets = SessionReader(path).index()
    data = bytearray(path.read_bytes())
    data[offsets[2] + 200] ^= 0xFF  # one flipped byte inside the third frame's chunk
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(bytes(data))
    reader = SessionReader(damaged)
    got = list(reader.frames())
    assert reader.corrupt_chunks == 1 and [g.frame_id.split("/")[-1] for g in got] == ["000000", "000001",
                                                                                       "000003", "000004"]
    not_mcap = tmp_path / "notes.mcap"
    not_mcap.write_text("hello")
    with pytest.raises(HandtrackError, match="not a session"):
        open_source(not_mcap).connect()
    with pytest.raises(HandtrackError, match="no session at"):
        open_source(tmp_path / "missing.mcap").connect()
    frame = frames[0]
    bad = DepthFrame(np.zeros((2, 3, 4), np.float32), SMALL)  # not an image: skipped, recording goes on
    with SessionWriter(tmp_path / "skip.mcap", StreamInfo(SMALL, 90.0, "cam", SR305_UNIT)) as writer:
        writer.write(bad)
        writer.write(frame)
    assert writer.stats["skipped"] == 1 and writer.stats["frames"] == 1 and writer.error is None


# --- a session as a source and as a training set -------------------------------------------------------------
def test_session_source_replays_at_max_speed_and_at_the_recorded_pace(tmp_path):
    frames = camera_frames(6)
    for k, frame in enumerate(frames):
        frame.meta[META_HOST_TIME] = 100.0 + 0.05 * k  # recorded 50 ms apart
    path = tmp_path / "paced.mcap"
    with SessionWriter(path, StreamInfo(SMALL, 20.0, "cam", SR305_UNIT)) as writer:
        for frame in frames:
            writer.write(frame)
    with open_source(path, realtime=False) as source:
        assert not source.live
        got = list(source)
    assert len(got) == 6
    for g, f in zip(got, frames):
        assert_same_frame(g, f)
    with open_source(str(path)) as source:  # realtime by default: a camera-like replay
        assert source.live and source.info.depth_unit_mm == SR305_UNIT
        arrivals = [source.read(timeout=5).meta[META_HOST_TIME] for _ in range(6)]
    # Paced by the recorded host times: the replay cannot be faster than the recording was.
    assert arrivals[-1] - arrivals[0] >= 0.9 * 0.25
    with pytest.raises(HandtrackError, match="no option 'speed'"):
        open_source(path, speed=2)


def test_multi_camera_session_records_and_replays_each_camera(tmp_path):
    near = demo_frames(4)
    far = demo_frames(3, intrinsics=ICVL)
    path = tmp_path / "two.mcap"
    info = {"cam0": StreamInfo(NYU, 30.0, "demo"), "cam1": StreamInfo(ICVL, 30.0, "demo small")}
    with SessionWriter(path, info) as writer:
        with pytest.raises(HandtrackError, match="say which"):
            writer.write(near[0])
        for k in range(4):
            writer.write(near[k], camera="cam0")
            if k < 3:
                writer.write(far[k], camera="cam1")
    assert writer.stats["per_camera"] == {"cam0": 4, "cam1": 3}
    reader = SessionReader(path)
    assert list(reader.cameras) == ["cam0", "cam1"] and reader.cameras["cam1"].intrinsics == ICVL
    for cam, want in (("cam0", near), ("cam1", far)):
        got = list(reader.frames(cam))
        assert len(got) == len(want)
        for g, f in zip(got, want):
            assert_same_frame(g, f)
    with open_source(path, realtime=False, camera="cam1") as source:
        assert source.intrinsics == ICVL and len(list(source)) == 3
    with pytest.raises(HandtrackError, match="no camera 'cam7'"):
        open_source(path, camera="cam7").connect()


def test_training_reader_gives_frames_and_crops_around_the_predicted_palm(tracked):
    from handtrack.inference import skeleton
    from handtrack.inference.crop import crop_and_normalise

    path, frames, results = tracked
    data = SessionDataset(path)
    assert len(data) == len(frames)
    assert_same_frame(data[5], frames[5])
    assert_same_frame(data[-1], frames[-1])
    with pytest.raises(IndexError):
        data[len(frames)]
    present = [i for i, r in enumerate(results) if r.present]
    sample = data.crop(present[0])
    r = results[present[0]]
    want, window = crop_and_normalise(frames[present[0]].depth_mm, NYU, skeleton.palm_centre(r.joints_mm))
    assert np.array_equal(sample.crop, want) and np.allclose(window.center, sample.window.center)
    assert sample.pseudo_joints_norm.shape == (21, 3) and np.abs(sample.pseudo_joints_norm).max() < 1.5
    absent = [i for i, r in enumerate(results) if not r.present]
    if absent:
        assert data.crop(absent[0]) is None
    confident = SessionDataset(path, min_presence=0.0)
    assert len(confident) == len(present)


# --- the command ---------------------------------------------------------------------------------------------
def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "handtrack.app.cli", *args], capture_output=True, text=True,
                          timeout=300, **kw)


def test_record_command_then_the_same_string_replays_the_session(tmp_path):
    out = tmp_path / "S"  # no extension: open_source takes exactly the string given to --out
    done = run_cli("record", "--source", "demo", "--frames", "30", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "recorded 30 frames" in done.stderr and "compression" in done.stderr
    with open_source(str(out), realtime=False) as source:
        got = list(source)
    assert len(got) == 30
    assert any(f.meta[META_PREDICTION] and f.meta[META_PREDICTION]["present"] for f in got)
    truth = {f.meta[META_SENSOR_FRAME]: f for f in demo_frames(got[-1].meta[META_SENSOR_FRAME] + 1)}
    for frame in got:
        assert np.array_equal(frame.depth_mm, truth[frame.meta[META_SENSOR_FRAME]].depth_mm)
    again = run_cli("record", "--source", "demo", "--frames", "1", "--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and again.stderr.count("\n") == 1


def test_record_command_with_two_cameras_ends_cleanly_on_sigterm(tmp_path):
    out = tmp_path / "term.mcap"
    child = subprocess.Popen([sys.executable, "-m", "handtrack.app.cli", "record", "--source", "demo", "--source",
                              "demo", "--out", str(out), "--no-track"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if out.exists() and out.stat().st_size > 1_000_000:  # a few frames are in
                break
            time.sleep(0.1)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, stderr
    from mcap.reader import make_reader

    with open(out, "rb") as f:
        summary = make_reader(f).get_summary()  # finished: the summary was written
    images = {c.topic: summary.statistics.channel_message_counts.get(i, 0) for i, c in summary.channels.items()
              if c.topic.endswith("/image_raw")}
    assert set(images) == {"/cam0/depth/image_raw", "/cam1/depth/image_raw"} and min(images.values()) > 0
    assert f"recorded {sum(images.values())} frames" in stderr and "(stopped)" in stderr
    reader = SessionReader(out)
    assert [len(list(reader.frames(cam))) for cam in ("cam0", "cam1")] == [images["/cam0/depth/image_raw"],
                                                                          images["/cam1/depth/image_raw"]]


def test_recording_path_imports_no_torch():
    code = ("import sys\n"
            "import handtrack.inference.recording, handtrack.inference.sources.session\n"
            "import handtrack.inference.datasets.session, handtrack.app.commands.record\n"
            "assert 'torch' not in sys.modules, 'recording imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
