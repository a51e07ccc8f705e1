"""handtrack stream messages -> ROS 2 messages, as plain dicts shaped like the ROS types (no rclpy here).

Each function returns a dict whose keys are the ROS message's field names, nested the same way, so bridge_node.py
only copies values into the real classes and this logic is testable without a ROS 2 installation:

    pose_array(message)    geometry_msgs/msg/PoseArray: one pose per joint (position = the joint, orientation =
                           identity: joints have no orientation), empty when no hand is present
    marker_array(message)  visualization_msgs/msg/MarkerArray: a SPHERE_LIST of the joints coloured by finger and a
                           LINE_LIST of the bones; a single DELETEALL marker when no hand is present
    joint_names(message)   std_msgs/msg/String: the joint names as a JSON array, in the order of the poses

The joints are taken in the robot base frame when the stream has an extrinsics file (`base_frame_id`,
`joints_base_m`), else in the camera optical frame (`frame_id`, `joints_m`). Stamps are the frame's arrival on the
wall clock (`stamp.host_wall_s`), the clock ROS nodes use by default.
"""
from __future__ import annotations

import json
import math

from handtrack.inference.skeleton import BONES, FINGER_COLORS_BGR, joint_finger

# visualization_msgs/msg/Marker constants.
LINE_LIST, SPHERE_LIST = 5, 7
ADD, DELETEALL = 0, 3
SUPPORTED_MAJOR = "1"
JOINT_DIAMETER_M = 0.012
BONE_WIDTH_M = 0.005
MARKER_LIFETIME_S = 0.5  # markers vanish when the stream stops instead of freezing in RViz
WRIST_RGBA = (0.9, 0.9, 0.9, 1.0)
IDENTITY = {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}  # geometry_msgs/msg/Quaternion: no rotation


def check_version(message: dict) -> None:
    version = str(message.get("schema_version", ""))
    if version.split(".")[0] != SUPPORTED_MAJOR:
        raise ValueError(f"stream schema version {version!r}; this bridge reads {SUPPORTED_MAJOR}.x")


def header(message: dict) -> dict:
    """std_msgs/msg/Header for the frame the joints are given in."""
    seconds = float(message["stamp"]["host_wall_s"])
    sec = math.floor(seconds)
    nanosec = min(int(round((seconds - sec) * 1e9)), 999_999_999)
    frame = message.get("base_frame_id") or message["frame_id"]
    return {"stamp": {"sec": sec, "nanosec": nanosec}, "frame_id": frame}


def present_joints(message: dict) -> list[list[float]] | None:
    """The first present hand's joints in the header's frame, or None."""
    check_version(message)
    key = "joints_base_m" if message.get("base_frame_id") else "joints_m"
    for hand in message["hands"]:
        if hand["present"] and hand.get(key) is not None:
            return hand[key]
    return None


def _point(xyz) -> dict:
    return {"x": float(xyz[0]), "y": float(xyz[1]), "z": float(xyz[2])}


def pose_array(message: dict) -> dict:
    joints = present_joints(message) or []
    return {"header": header(message),
            "poses": [{"position": _point(j), "orientation": dict(IDENTITY)} for j in joints]}


def _rgba(joint: int) -> dict:
    finger = joint_finger(joint)
    if finger is None:
        r, g, b, a = WRIST_RGBA
    else:
        blue, green, red = FINGER_COLORS_BGR[finger]
        r, g, b, a = red / 255, green / 255, blue / 255, 1.0
    return {"r": r, "g": g, "b": b, "a": a}


def _marker(message: dict, ns: str, marker_id: int, kind: int, scale: float, points, colors) -> dict:
    lifetime_sec = math.floor(MARKER_LIFETIME_S)
    return {"header": header(message), "ns": ns, "id": marker_id, "type": kind, "action": ADD,
            "pose": {"position": _point((0, 0, 0)), "orientation": dict(IDENTITY)},
            "scale": {"x": scale, "y": scale, "z": scale}, "color": {"r": 1.0, "g": 1.0, "b": 1.0, "a": 1.0},
            "lifetime": {"sec": lifetime_sec, "nanosec": int(round((MARKER_LIFETIME_S - lifetime_sec) * 1e9))},
            "points": points, "colors": colors}


def marker_array(message: dict, ns: str = "handtrack") -> dict:
    joints = present_joints(message)
    if joints is None:
        return {"markers": [{"header": header(message), "ns": ns, "id": 0, "action": DELETEALL}]}
    spheres = _marker(message, ns, 0, SPHERE_LIST, JOINT_DIAMETER_M, [_point(j) for j in joints],
                      [_rgba(j) for j in range(len(joints))])
    bone_points, bone_colors = [], []
    for parent, child in BONES:  # LINE_LIST: each pair of points is one segment, coloured per point
        bone_points += [_point(joints[parent]), _point(joints[child])]
        bone_colors += [_rgba(child), _rgba(child)]
    bones = _marker(message, ns, 1, LINE_LIST, BONE_WIDTH_M, bone_points, bone_colors)
    return {"markers": [spheres, bones]}


def joint_names(message: dict) -> dict:
    check_version(message)
    return {"data": json.dumps(message["joint_names"])}
