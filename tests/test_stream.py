"""`handtrack --stream`: schema-valid messages from the real tracker, real loopback ZeroMQ sockets, real files,
signals and pipes to a real subprocess. No timing asserts: "never slows the tracker" is checked with counts."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import msgpack
import numpy as np
import pytest
import zmq

from handtrack.app.cli import main
from handtrack.app.stream import Stream, build_message, encode, load_schema, open_output
from handtrack.calibration.extrinsics import load_extrinsics
from handtrack.inference.camera import NYU
from handtrack.inference.errors import HandtrackError
from handtrack.inference.frame import DepthFrame, StreamInfo
from handtrack.inference.sources import Backend, CaptureSource, DeviceLost, open_source
from handtrack.inference.tracker import HandTracker, TrackerOptions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CALIBRATION = ROOT / "calibration" / "example_extrinsics.json"
VALIDATOR = jsonschema.Draft202012Validator(load_schema())
HANDTRACK = [sys.executable, "-m", "handtrack.app.cli"]


def assert_valid(message: dict) -> None:
    errors = sorted(VALIDATOR.iter_errors(message), key=lambda e: list(e.path))
    assert not errors, f"{errors[0].message} at {list(errors[0].path)}"


@pytest.fixture(scope="module")
def tracker_factory():
    return lambda **kw: HandTracker(TrackerOptions(**kw))


def stream_demo(tmp_path, frames: int, tracker, **stream_options) -> list[dict]:
    path = tmp_path / "not_yet" / "out.jsonl"  # a file output makes its folder
    output = open_output(str(path))
    with open_source("demo", realtime=False, frames=frames) as source:
        summary = Stream(tracker, [output], log=lambda line: None, **stream_options).run(source)
    output.close()
    assert summary.messages == frames and summary.ended_by == "end of recording"
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- messages and schema ------------------------------------------------------------------------------------------
def test_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_real_tracker_messages_validate_and_are_in_metres(tmp_path, tracker_factory):
    messages = stream_demo(tmp_path, 12, tracker_factory(smoothing=None))
    assert [m["seq"] for m in messages] == list(range(12))
    assert [m["frame_index"] for m in messages] == list(range(12))
    for m in messages:
        assert_valid(m)
        assert m["source"] == "demo" and m["frame_id"] == "camera_depth_optical_frame"
        assert m["stamp"]["sensor_s"] == pytest.approx(m["frame_index"] / 30.0)
        assert m["latency_ms"]["end_to_end"] >= m["latency_ms"]["tracker"] > 0
    present = [m for m in messages if m["hands"][0]["present"]]
    assert len(present) >= 10, "the demo hand should be found in most frames"
    # The demo's hand is 0.4-0.8 m in front of the camera: metres, not millimetres.
    joints = np.array([m["hands"][0]["joints_m"] for m in present])
    assert joints.shape == (len(present), 21, 3) and 0.3 < np.median(joints[..., 2]) < 1.0
    # Pixels are the joints projected with the demo camera (NYU intrinsics).
    uv = np.array(present[0]["hands"][0]["joints_px"])
    xyz = joints[0]
    assert np.allclose(uv[:, 0], NYU.fx * xyz[:, 0] / xyz[:, 2] + NYU.cx, atol=0.05)


def test_frames_without_a_hand_or_unreadable_frames_validate(tracker_factory):
    tracker = tracker_factory()
    empty = tracker.process(DepthFrame(np.zeros((NYU.height, NYU.width), np.float32), NYU), 1.0)
    broken = tracker.process(DepthFrame(np.zeros((5, 5), np.float32), NYU), 2.0)
    for seq, result in enumerate((empty, broken)):
        message = build_message(result, seq)
        assert_valid(message)
        hand = message["hands"][0]
        assert hand["present"] is False and hand["joints_m"] is None and hand["score"] == 0.0
    assert build_message(broken, 1)["skipped"] and build_message(empty, 0)["skipped"] is None


def test_calibration_adds_joints_in_the_base_frame(tmp_path, tracker_factory):
    extrinsics = load_extrinsics(EXAMPLE_CALIBRATION)
    messages = stream_demo(tmp_path, 4, tracker_factory(), extrinsics=extrinsics)
    for m in messages:
        assert_valid(m)
        assert m["base_frame_id"] == "base_link" and m["frame_id"] == extrinsics.camera_frame
        hand = m["hands"][0]
        expected = np.array(hand["joints_m"]) @ extrinsics.rotation.T + extrinsics.translation_m
        assert np.allclose(hand["joints_base_m"], expected, atol=2e-5)
    # A message claiming a base frame must carry the base-frame joints.
    broken = dict(messages[0], hands=[{k: v for k, v in messages[0]["hands"][0].items() if k != "joints_base_m"}])
    assert list(VALIDATOR.iter_errors(broken))


def test_msgpack_carries_the_same_message(tracker_factory):
    tracker = tracker_factory()
    with open_source("demo", realtime=False, frames=1) as source:
        frame = source.read()
    message = build_message(tracker.process(frame), 0)
    assert msgpack.unpackb(encode(message, "msgpack")) == json.loads(encode(message, "json"))


def test_nan_never_reaches_json(tracker_factory):
    # A result whose numbers went bad becomes a schema-valid "no usable hand", not NaN or null in a number field.
    with open_source("demo", realtime=False, frames=1) as source:
        frame = source.read()
    good = tracker_factory().process(frame)
    confidence = good.confidence.copy()
    confidence[3] = np.nan
    bad = dataclasses.replace(good, hands=[dataclasses.replace(good.hands[0], presence=float("nan"),
                                                               confidence=confidence)],
                              frame_meta={**good.frame_meta, "sensor_time": float("inf")})
    message = json.loads(encode(build_message(bad, 0), "json"))
    assert_valid(message)
    hand = message["hands"][0]
    assert hand["present"] is False and hand["joints_m"] is None and hand["score"] == 0.0
    assert message["stamp"]["sensor_s"] is None


def test_every_hand_of_a_result_is_one_entry_of_the_message(tracker_factory):
    """A result that holds two hands (as a two-hand tracker will fill it) gives a message with both, in order, each
    with its own handedness and joints; the result itself still reads as its first hand."""
    with open_source("demo", realtime=False, frames=1) as source:
        frame = source.read()
    tracked = tracker_factory().process(frame)
    right = dataclasses.replace(tracked.hands[0], handedness="right")
    left = dataclasses.replace(right, handedness="left", joints_mm=right.joints_mm + [100.0, 0.0, 0.0])
    two = dataclasses.replace(tracked, hands=[right, left])
    assert two.handedness == "right" and two.joints_mm is right.joints_mm
    message = build_message(two, 0)
    assert [hand["handedness"] for hand in message["hands"]] == ["right", "left"]
    first, second = (np.array(hand["joints_m"]) for hand in message["hands"])
    np.testing.assert_allclose(second - first, np.tile([0.1, 0.0, 0.0], (21, 1)), atol=2e-5)
    assert message["source"] == "demo"  # from the frame's own meta, which the result carries


# --- outputs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["bogus", "out.txt", "zmq://127.0.0.1", "zmq://127.0.0.1:port", "zmq://:5556",
                                  "http://x:1"])
def test_bad_output_specs_are_one_line(spec):
    with pytest.raises(HandtrackError) as info:
        open_output(spec)
    assert "\n" not in str(info.value)


def test_port_in_use_is_one_line():
    first = open_output("zmq://127.0.0.1:0")
    try:
        with pytest.raises(HandtrackError, match="cannot publish"):
            open_output(first.name)
    finally:
        first.close()


def subscribe(endpoint: str, conflate: bool) -> tuple[zmq.Context, zmq.Socket]:
    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    if conflate:
        socket.setsockopt(zmq.CONFLATE, 1)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(endpoint)
    return context, socket


def wait_until_subscribed(output, socket) -> None:
    """A PUB socket drops what it sends before a subscription arrives: probe until one gets through."""
    for _ in range(200):
        output.send(b'{"probe":true}')
        if socket.poll(50):
            socket.recv()
            return
    raise AssertionError("the subscriber never connected")


@pytest.mark.parametrize("scheme", ["zmq", "zmq+msgpack"])
def test_loopback_subscriber_receives_every_message_well_formed(scheme, tracker_factory):
    output = open_output(f"{scheme}://127.0.0.1:0")
    context, socket = subscribe(output.endpoint, conflate=False)
    try:
        wait_until_subscribed(output, socket)
        while socket.poll(100):  # probes still in flight
            socket.recv()
        decode = msgpack.unpackb if scheme == "zmq+msgpack" else json.loads
        received = []
        with open_source("demo", realtime=False, frames=8) as source:
            stream = Stream(tracker_factory(), [output], log=lambda line: None)
            for frame in source:  # publish one, read one: a subscriber that keeps up receives all of them
                stream.publish(build_message(stream.tracker.process(frame), stream.seq))
                assert socket.poll(5000)
                received.append(decode(socket.recv()))
        assert [m["seq"] for m in received] == list(range(8))
        for m in received:
            assert_valid(m)
    finally:
        output.close()
        socket.close(linger=0)
        context.term()


@pytest.mark.parametrize("conflating", [True, False], ids=["conflating subscriber", "naive subscriber"])
def test_stalled_subscriber_never_blocks_the_publisher_and_then_gets_the_newest(conflating, tracker_factory):
    """40000 real messages (~70 MB: more than the subscriber's queue and the TCP buffers hold) to a subscriber that
    stopped reading: every send returns (none blocks, none is refused) while a second subscriber keeps reading.
    When the stalled one reads again, its last message is the newest; a conflating subscriber gets only that one,
    a naive one a bounded backlog first (the publisher replaced messages instead of queueing them all)."""
    n = 40_000
    output = open_output("zmq://127.0.0.1:0")
    stalled_context, stalled = subscribe(output.endpoint, conflate=conflating)
    live_context, live = subscribe(output.endpoint, conflate=False)
    try:
        wait_until_subscribed(output, stalled)  # it has read the probe; from now on it does not read
        wait_until_subscribed(output, live)
        with open_source("demo", realtime=False, frames=1) as source:
            frame = source.read()
        template = encode(build_message(tracker_factory().process(frame), 0), "json")
        assert template.count(b'"seq":0,') == 1
        probes, live_seen = output.sent, 0
        for seq in range(n):
            output.send(template.replace(b'"seq":0,', b'"seq":%d,' % seq))
            while seq % 100 == 0 and live.poll(0):
                live.recv()
                live_seen += 1
        assert output.sent - probes == n and output.dropped == 0
        assert live_seen > 0
        time.sleep(0.3)  # let the I/O threads move what they can
        seqs = []
        while stalled.poll(300):
            message = json.loads(stalled.recv())
            if "probe" not in message:  # probes sent while the other subscriber connected may be queued first
                seqs.append(message["seq"])
        assert seqs[-1] == n - 1
        if conflating:
            assert seqs == [n - 1]
        else:
            assert len(seqs) < n and seqs == sorted(seqs)
    finally:
        output.close()
        for socket, context in ((stalled, stalled_context), (live, live_context)):
            socket.close(linger=0)
            context.term()


def test_full_disk_is_one_line_and_keeps_complete_lines(tmp_path, capsys):
    full = tmp_path / "full.jsonl"
    full.symlink_to("/dev/full")  # every write fails with ENOSPC, like a full disk
    rc = main(["stream", "--unpaced", "--frames", "3", "--out", str(full)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("handtrack: error")]
    assert rc == 2 and len(errors) == 1 and "No space left on device" in errors[0]


# --- a source that is lost and comes back ------------------------------------------------------------------------
class FlakyCamera(Backend):
    """A camera that is unplugged after 5 frames and comes back on the second reopen attempt."""
    name = "flaky"
    live = True
    reconnectable = True

    def __init__(self):
        self.grabs = 0
        self.opens = 0

    def open(self) -> StreamInfo:
        self.opens += 1
        if self.opens == 2:
            raise DeviceLost("flaky: still unplugged")
        return StreamInfo(NYU, 100.0, "flaky test camera")

    def grab(self, timeout: float) -> DepthFrame:
        self.grabs += 1
        if self.grabs == 6:
            raise DeviceLost("flaky: USB device unplugged")
        time.sleep(0.005)
        return DepthFrame(np.zeros((NYU.height, NYU.width), np.float32), NYU)

    def close(self) -> None:
        pass


def test_lost_and_reconnecting_source_does_not_end_the_stream(tracker_factory):
    from handtrack.inference.sources import Backoff

    lines = []
    source = CaptureSource(FlakyCamera(), backoff=Backoff(initial=0.3, factor=1.0, maximum=0.3))
    with source:
        summary = Stream(tracker_factory(), [], log=lines.append).run(source, max_messages=12)
    assert summary.messages == 12 and summary.ended_by == "frames"
    assert source.stats["reconnects"] == 1
    assert any("reconnecting" in line for line in lines), lines
    assert any("again" in line for line in lines), lines


# --- the command, as a real process --------------------------------------------------------------------------
def run_cli(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(HANDTRACK + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw)


def test_cli_stream_prints_schema_valid_lines_and_exits_0():
    done = run_cli("--stream", "--source", "demo", "--frames", "20")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 20
    for seq, line in enumerate(lines):
        message = json.loads(line)
        assert_valid(message)
        assert message["seq"] == seq
    assert "Traceback" not in done.stderr and "20 messages" in done.stderr


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "handtrack-extrinsics"}')
    for args in (["--source", "realsense"], ["--source", str(tmp_path / "missing.bag")], ["--out", "nonsense"], ["--calibration", str(bad)],
                 ["--source", str(tmp_path), "--unpaced"]):
        rc = main(["--stream", "--frames", "1", *args])
        lines = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("handtrack: error"), lines


def start_stream(*args) -> tuple[subprocess.Popen, list[str]]:
    """A running `handtrack --stream`, and the stderr lines it printed up to its start-up line."""
    process = subprocess.Popen(HANDTRACK + ["--stream", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=ROOT)
    lines = []
    for raw in process.stderr:
        lines.append(raw.decode())
        if "publishing to" in lines[-1] or "Traceback" in lines[-1]:
            break
    return process, lines


def test_zmq_subscriber_receives_messages_then_sigterm_exits_0_with_everything_flushed(tmp_path):
    out = tmp_path / "poses.jsonl"
    process, started = start_stream("--source", "demo", "--out", "zmq://127.0.0.1:0", "--out", str(out))
    try:
        endpoint = "tcp://" + started[-1].split("zmq://")[1].split(",")[0].strip()
        context, socket = subscribe(endpoint, conflate=False)
        received = []
        while len(received) < 10:
            assert socket.poll(10_000), "no message within 10 s"
            received.append(json.loads(socket.recv()))
        socket.close(linger=0)
        context.term()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    for m in received:
        assert_valid(m)
    assert [m["seq"] for m in received] == list(range(received[0]["seq"], received[0]["seq"] + 10))
    text = out.read_text()
    assert text.endswith("\n")  # the last line is complete
    lines = [json.loads(line) for line in text.splitlines()]
    assert [m["seq"] for m in lines] == list(range(len(lines)))
    assert len(lines) >= received[-1]["seq"] + 1
    assert f"{len(lines)} messages" in stderr.decode() and "ended by signal" in stderr.decode()
    assert stdout == b""  # stdout is not an output unless asked for


def test_sigint_on_stdout_stream_exits_0_with_complete_lines():
    process = subprocess.Popen(HANDTRACK + ["--stream", "--source", "demo"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    try:
        first = [process.stdout.readline() for _ in range(5)]
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    lines = b"".join(first).decode().splitlines() + rest.decode().splitlines()
    assert rest.endswith(b"\n") or rest == b""
    for line in lines:
        assert_valid(json.loads(line))


def test_reader_closing_stdout_ends_the_stream_cleanly():
    process = subprocess.Popen(HANDTRACK + ["--stream", "--source", "demo"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    try:
        for _ in range(3):
            json.loads(process.stdout.readline())
        process.stdout.close()  # like `handtrack --stream | head -n 3`
        stderr = process.stderr.read().decode()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "stdout was closed" in stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this machine")
def test_stdout_on_a_full_disk_is_one_line_not_a_traceback():
    """`handtrack --stream > /dev/full` (issue 17, item 2): the first write fails as a full disk does."""
    with open("/dev/full", "wb") as full:
        done = subprocess.run(HANDTRACK + ["--stream", "--source", "demo", "--frames", "5"], stdout=full,
                              stderr=subprocess.PIPE, cwd=ROOT, timeout=120)
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr and "handtrack: error: cannot write to stdout: No space left" in stderr


def test_stream_imports_no_torch(tmp_path):
    code = ("import sys\n"
            "from handtrack.app.cli import main\n"
            f"assert main(['stream', '--unpaced', '--frames', '3', '--out', {str(tmp_path / 'x.jsonl')!r}]) == 0\n"
            "assert 'torch' not in sys.modules, 'the stream imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("scheme", ["zmq", "zmq+msgpack"])
def test_reference_subscriber_prints_a_line_per_message(scheme, tracker_factory):
    output = open_output(f"{scheme}://127.0.0.1:0")
    with open_source("demo", realtime=False, frames=1) as source:
        frame = source.read()
    tracker = tracker_factory()
    result = tracker.process(frame)
    stream = Stream(tracker, [output], log=lambda line: None)
    command = [sys.executable, str(ROOT / "docs" / "examples" / "subscriber.py"), "--connect", output.name,
               "--count", "5", "--all"] + (["--msgpack"] if scheme == "zmq+msgpack" else [])
    subscriber = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        give_up = time.monotonic() + 60  # a guard against a hang, not a speed requirement
        while subscriber.poll() is None and time.monotonic() < give_up:
            stream.publish(build_message(result, stream.seq))  # until it has connected and read 5
            time.sleep(0.01)
        stdout, stderr = subscriber.communicate(timeout=30)
    finally:
        output.close()
        if subscriber.poll() is None:
            subscriber.kill()
    assert subscriber.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert len(lines) == 5 and all("right hand" in line and "wrist" in line for line in lines), lines
    assert "5 messages received" in stderr.decode()


def test_recorded_session_replays_through_the_stream(tmp_path):
    session = tmp_path / "S"
    recorded = run_cli("record", "--source", "demo", "--frames", "20", "--out", str(session))
    assert recorded.returncode == 0, recorded.stderr
    out = tmp_path / "replay.jsonl"
    assert main(["--stream", "--source", str(session), "--unpaced", "--out", str(out)]) == 0
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["seq"] for m in messages] == list(range(20))  # every recorded frame, in order
    for m in messages:
        assert_valid(m)
    assert sum(m["hands"][0]["present"] for m in messages) >= 15
    # The sensor clock is the recorded demo's: frame k at k / 30 s.
    assert [m["stamp"]["sensor_s"] for m in messages] == pytest.approx([k / 30.0 for k in range(20)], abs=1e-6)


def test_zmq_on_ipv6_loopback_reaches_a_subscriber_and_binding_everywhere_warns(caplog):
    """Issue 17, item 7: `[::1]` failed with "No such device"; 0.0.0.0 / * bound every interface silently."""
    out = open_output("zmq://[::1]:0")
    try:
        assert out.endpoint.startswith("tcp://[::1]:")
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.IPV6, 1)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(out.endpoint)
        received = None
        for _ in range(100):  # a PUB socket drops what is sent before the subscription arrives
            out.send(b'{"hello": 1}')
            if sub.poll(50):
                received = sub.recv()
                break
        sub.close()
        ctx.term()
        assert received == b'{"hello": 1}'
    finally:
        out.close()
    for host in ("0.0.0.0", "*"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="handtrack"):
            everywhere = open_output(f"zmq://{host}:0")
            everywhere.close()
        assert [r for r in caplog.records if "every network interface" in r.getMessage()]
    caplog.clear()
    with caplog.at_level("WARNING", logger="handtrack"):
        open_output("zmq://127.0.0.1:0").close()
    assert not caplog.records


def test_a_png_folders_depth_unit_and_camera_are_given_on_the_command_line(tmp_path, capsys):
    """Issue 17, item 3: the folder source's depth unit and intrinsics are explicit options of stream/record."""
    folder = ROOT.parent / "shared" / "data" / "realsense_sr305"
    out = tmp_path / "poses.jsonl"
    assert main(["stream", "--source", str(folder), "--depth-unit", "0.125", "--intrinsics", "sr305", "--unpaced",
                 "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == len(list(folder.glob("*.png")))
    custom = "476.0068,476.0068,313.683,242.755,640,480"  # the same camera, written out
    assert main(["stream", "--source", str(folder), "--intrinsics", custom, "--unpaced", "--frames", "2",
                 "--out", str(tmp_path / "b.jsonl")]) == 0
    capsys.readouterr()
    for bad, message in ((["--intrinsics", "1,2,3"], "six numbers"), (["--depth-unit", "0"], "must be positive")):
        assert main(["stream", "--source", str(folder), *bad, "--out", str(tmp_path / "c.jsonl")]) == 2
        assert message in capsys.readouterr().err
    assert main(["stream", "--source", "demo", "--depth-unit", "1", "--out", str(tmp_path / "d.jsonl")]) == 2
    assert "no option 'depth_unit_mm'" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_soak_samples_memory_and_rate_with_subscriber_and_recorder(tmp_path):
    """A few seconds of the soak benchmark: samples come, the subscriber hears the messages, the rotated
    recordings are cleaned up."""
    out = tmp_path / "soak.json"
    assert main(["bench", "soak", "--minutes", "0.08", "--every", "1", "--rotate", "2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert len(r["samples"]) >= 3 and all(s["rss_mb"] > 50 and s["fps"] > 0 for s in r["samples"])
    assert r["files"] >= 2 and r["subscriber_received"] > 0
    assert r["samples"][-1]["recorded"] > 0 and r["samples"][-1]["published"] >= r["samples"][-1]["recorded"]
