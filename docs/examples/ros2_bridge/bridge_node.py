"""ROS 2 bridge: subscribes to `handtrack --stream --out zmq://...` and republishes each hand as ROS 2 messages.

    handtrack --stream --source realsense --calibration my_extrinsics.json --out zmq://127.0.0.1:5556 &
    python3 bridge_node.py --connect tcp://127.0.0.1:5556 [--msgpack] [--rate 100]

Topics: /handtrack/joints (geometry_msgs/msg/PoseArray, one pose per joint), /handtrack/markers
(visualization_msgs/msg/MarkerArray, for RViz) and /handtrack/joint_names (std_msgs/msg/String, a JSON array;
latched: transient-local durability, so late subscribers get it too). Needs a sourced ROS 2 environment (rclpy,
geometry_msgs, visualization_msgs, std_msgs) plus pyzmq and handtrack. All the conversion logic lives in
conversion.py, which has no ROS dependency and is what handtrack's tests check; this file only moves values into
the ROS classes.
"""
from __future__ import annotations

import argparse
import json

import zmq

import conversion


def _set(ros_obj, values: dict):
    """Copy a conversion dict into a ROS message object, field by field (nested dicts into nested messages)."""
    for name, value in values.items():
        if isinstance(value, dict):
            _set(getattr(ros_obj, name), value)
        else:
            setattr(ros_obj, name, value)
    return ros_obj


def to_pose_array(d: dict):
    from geometry_msgs.msg import Pose, PoseArray

    msg = _set(PoseArray(), {"header": d["header"]})
    msg.poses = [_set(Pose(), p) for p in d["poses"]]
    return msg


def to_marker_array(d: dict):
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    markers = []
    for m in d["markers"]:
        plain = {k: v for k, v in m.items() if k not in ("points", "colors")}
        marker = _set(Marker(), plain)
        marker.points = [_set(Point(), p) for p in m.get("points", [])]
        marker.colors = [_set(ColorRGBA(), c) for c in m.get("colors", [])]
        markers.append(marker)
    return MarkerArray(markers=markers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connect", default="tcp://127.0.0.1:5556", help="the stream's ZeroMQ address")
    parser.add_argument("--msgpack", action="store_true", help="the stream is zmq+msgpack://")
    parser.add_argument("--rate", type=float, default=100.0, help="how often to look for a new message (Hz)")
    args, ros_args = parser.parse_known_args()

    import rclpy
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from geometry_msgs.msg import PoseArray
    from std_msgs.msg import String
    from visualization_msgs.msg import MarkerArray

    if args.msgpack:
        import msgpack
        decode = msgpack.unpackb
    else:
        decode = json.loads

    class Bridge(Node):
        def __init__(self):
            super().__init__("handtrack_bridge")
            self.socket = zmq.Context.instance().socket(zmq.SUB)
            self.socket.setsockopt(zmq.CONFLATE, 1)  # only the newest pose matters to a robot
            self.socket.setsockopt(zmq.SUBSCRIBE, b"")
            self.socket.connect(args.connect)
            self.poses = self.create_publisher(PoseArray, "handtrack/joints", 10)
            self.markers = self.create_publisher(MarkerArray, "handtrack/markers", 10)
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.names = self.create_publisher(String, "handtrack/joint_names", latched)
            self.names_sent = False
            self.create_timer(1.0 / args.rate, self.poll)

        def poll(self):
            try:
                message = decode(self.socket.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            if not self.names_sent:
                self.names.publish(String(data=conversion.joint_names(message)["data"]))
                self.names_sent = True
            self.poses.publish(to_pose_array(conversion.pose_array(message)))
            self.markers.publish(to_marker_array(conversion.marker_array(message)))

    rclpy.init(args=ros_args)
    node = Bridge()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
