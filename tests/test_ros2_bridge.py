"""The ROS 2 bridge example's conversion logic (docs/examples/ros2_bridge/conversion.py), checked on real stream
messages without ROS: PoseArray- and MarkerArray-shaped dicts, frames, stamps, bones, the no-hand case."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from handtrack.app.stream import build_message
from handtrack.calibration.extrinsics import load_extrinsics
from handtrack.inference.camera import NYU
from handtrack.inference.frame import DepthFrame
from handtrack.inference.skeleton import BONES, JOINT_NAMES
from handtrack.inference.sources import open_source
from handtrack.inference.tracker import HandTracker

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "docs" / "examples" / "ros2_bridge"


def load(name: str):
    sys.path.insert(0, str(BRIDGE))  # bridge_node imports its sibling `conversion` as a script would
    try:
        spec = importlib.util.spec_from_file_location(name, BRIDGE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BRIDGE))


conversion = load("conversion")


@pytest.fixture(scope="module")
def messages():
    tracker = HandTracker()
    with open_source("demo", realtime=False, frames=1) as source:
        frame = source.read()
    result = tracker.process(frame)
    assert result.present
    empty = tracker.process(DepthFrame(np.zeros((NYU.height, NYU.width), np.float32), NYU), 5.0)
    extrinsics = load_extrinsics(ROOT / "calibration" / "example_extrinsics.json")
    return {"camera": build_message(result, 0),
            "base": build_message(result, 1, extrinsics=extrinsics),
            "empty": build_message(empty, 2)}


def xyz(point: dict) -> list[float]:
    return [point["x"], point["y"], point["z"]]


@pytest.mark.parametrize("kind, frame, key", [("camera", "camera_depth_optical_frame", "joints_m"),
                                              ("base", "base_link", "joints_base_m")])
def test_pose_array_has_one_pose_per_joint_in_the_right_frame(messages, kind, frame, key):
    message = messages[kind]
    poses = conversion.pose_array(message)
    assert poses["header"]["frame_id"] == frame
    stamp = poses["header"]["stamp"]
    assert isinstance(stamp["sec"], int) and 0 <= stamp["nanosec"] < 1_000_000_000
    assert stamp["sec"] + stamp["nanosec"] * 1e-9 == pytest.approx(message["stamp"]["host_wall_s"], abs=1e-6)
    assert len(poses["poses"]) == 21
    np.testing.assert_allclose([xyz(p["position"]) for p in poses["poses"]], message["hands"][0][key])
    assert all(p["orientation"] == {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0} for p in poses["poses"])


def test_markers_are_joint_spheres_and_bone_lines(messages):
    message = messages["base"]
    spheres, lines = conversion.marker_array(message)["markers"]
    joints = np.array(message["hands"][0]["joints_base_m"])
    assert spheres["type"] == conversion.SPHERE_LIST and lines["type"] == conversion.LINE_LIST
    assert {spheres["action"], lines["action"]} == {conversion.ADD} and spheres["id"] != lines["id"]
    assert spheres["header"]["frame_id"] == lines["header"]["frame_id"] == "base_link"
    np.testing.assert_allclose([xyz(p) for p in spheres["points"]], joints)
    segments = np.array([xyz(p) for p in lines["points"]]).reshape(-1, 2, 3)
    assert len(segments) == len(BONES) == 20
    for (parent, child), segment in zip(BONES, segments):
        np.testing.assert_allclose(segment, joints[[parent, child]])
    for marker in (spheres, lines):
        assert len(marker["colors"]) == len(marker["points"])
        assert all(0.0 <= c[k] <= 1.0 for c in marker["colors"] for k in "rgba")
        assert marker["scale"]["x"] > 0 and marker["lifetime"]["sec"] + marker["lifetime"]["nanosec"] > 0
    # Fingers are told apart by colour: the five tips have five different colours.
    tips = {tuple(spheres["colors"][j].values()) for j in (4, 8, 12, 16, 20)}
    assert len(tips) == 5


def test_no_hand_clears_the_markers_and_sends_no_poses(messages):
    message = messages["empty"]
    assert conversion.pose_array(message)["poses"] == []
    markers = conversion.marker_array(message)["markers"]
    assert len(markers) == 1 and markers[0]["action"] == conversion.DELETEALL


def test_joint_names_are_a_json_list_in_pose_order(messages):
    assert json.loads(conversion.joint_names(messages["camera"])["data"]) == list(JOINT_NAMES)


def test_another_major_schema_version_is_refused(messages):
    with pytest.raises(ValueError, match="2.0"):
        conversion.pose_array(dict(messages["camera"], schema_version="2.0"))


def test_the_bridge_loads_without_ros_and_copies_nested_fields():
    assert "rclpy" not in sys.modules
    node = load("bridge_node")
    assert "rclpy" not in sys.modules  # rclpy is imported only when the node runs
    header = SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id="")
    node._set(header, {"stamp": {"sec": 5, "nanosec": 7}, "frame_id": "base_link"})
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (5, 7, "base_link")
