"""What a session holds on each topic: ROS 2 message definitions and their CDR encoding.

Every channel of a session uses ONE encoding, ROS 2 CDR with `ros2msg` schemas embedded in the file, so that the
standard viewers (Foxglove, ROS 2 tools, `mcap` readers with ROS 2 support) open it without a ROS install: depth is
a plain `sensor_msgs/msg/Image` and calibration a `sensor_msgs/msg/CameraInfo`, the two types every depth viewer
knows; handtrack's per-frame facts and its own predictions are two small message types of its own, defined below
in the same language and so shown field by field in any of those tools. (Foxglove's protobuf schemas would have
needed protobuf plus the schema package on the runtime path for the same result.)

Encoding is done here with `struct` (the four types are flat and fixed; encoding them directly avoids a per-field
interpreter on the 90 FPS path); decoding goes through mcap-ros2-support's generic decoder, which the tests use to
check this encoder against the definitions.
"""
from __future__ import annotations

import struct

import numpy as np

# --- topics: one set per camera, `cam` is the camera id (cam0, cam1, ...) -------------------------------------
def image_topic(cam: str) -> str:
    return f"/{cam}/depth/image_raw"


def camera_info_topic(cam: str) -> str:
    return f"/{cam}/depth/camera_info"


def frame_info_topic(cam: str) -> str:
    return f"/{cam}/depth/frame_info"


def predictions_topic(cam: str) -> str:
    # The name says what these are: the tracker's own estimates (pseudo-labels), never ground truth.
    return f"/{cam}/handtrack/predictions"


# --- schemas (ros2msg text: the type, then each dependency after a line of '=' and 'MSG: <type>') -------------
_SEPARATOR = "=" * 80
_HEADER_DEPS = f"""{_SEPARATOR}
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
{_SEPARATOR}
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec"""

IMAGE = "sensor_msgs/msg/Image"
IMAGE_DEF = f"""std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data
{_HEADER_DEPS}"""

CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
CAMERA_INFO_DEF = f"""std_msgs/Header header
uint32 height
uint32 width
string distortion_model
float64[] d
float64[9] k
float64[9] r
float64[12] p
uint32 binning_x
uint32 binning_y
sensor_msgs/RegionOfInterest roi
{_HEADER_DEPS}
{_SEPARATOR}
MSG: sensor_msgs/RegionOfInterest
uint32 x_offset
uint32 y_offset
uint32 height
uint32 width
bool do_rectify"""

FRAME_INFO = "handtrack_msgs/msg/FrameInfo"
FRAME_INFO_DEF = f"""# Capture facts for the depth image with the same header.stamp and sequence.
std_msgs/Header header
uint64 frame_index      # frames the source captured before this one, counting any it dropped
float64 host_time       # time.monotonic() of the recording host when the frame arrived, seconds
bool has_sensor_time
float64 sensor_time     # the device's own clock, seconds, its own epoch (valid if has_sensor_time)
bool has_sensor_frame
int64 sensor_frame      # the device's own frame counter (valid if has_sensor_frame)
float64 depth_unit_mm   # millimetres per value of a 16UC1 image; 1.0 for 32FC1 (float millimetres)
string source           # the name of the source that delivered the frame
{_HEADER_DEPS}"""

PREDICTION = "handtrack_msgs/msg/HandPrediction"
PREDICTION_DEF = f"""# handtrack's own estimate for the depth image with the same header.stamp and sequence.
# A PSEUDO-LABEL made by a model, never ground truth. Camera frame: OpenCV optical (x right, y down, z forward).
std_msgs/Header header
string model            # the pose model that made it
bool present
float64 presence        # 0..1, how well the depth supports the estimate
string handedness       # right or left
string skipped          # why the tracker skipped the frame; empty when it did not
string joint_set        # canonical21: MediaPipe order
float64[] joints_mm     # 21 x 3, row-major, millimetres; empty when there is no estimate
float64[] uv            # 21 x 2 pixel coordinates
float64[] confidence    # 21 per-joint plausibility, 0..1
float64[] centre_mm     # 3: the crop centre the pose came from
{_HEADER_DEPS}"""

SCHEMAS = {IMAGE: IMAGE_DEF, CAMERA_INFO: CAMERA_INFO_DEF, FRAME_INFO: FRAME_INFO_DEF, PREDICTION: PREDICTION_DEF}

# Image encodings (sensor_msgs/image_encodings): raw sensor units, or float millimetres for sources without units.
DEPTH_U16 = "16UC1"
DEPTH_F32 = "32FC1"


# --- CDR (little-endian, XCDR1 as ROS 2 writes it): a 4-byte encapsulation header, then each field aligned to its
# own size counted from the end of that header, strings as uint32 length (with the NUL) + bytes + NUL, sequences as
# uint32 count + elements, fixed arrays as the bare elements.
class _Cdr:
    def __init__(self):
        self.buf = bytearray(b"\x00\x01\x00\x00")  # CDR_LE, no options

    def _align(self, size: int) -> None:
        pad = -(len(self.buf) - 4) % size
        if pad:
            self.buf += b"\x00" * pad

    def pack(self, fmt: str, size: int, *values) -> "_Cdr":
        self._align(size)
        self.buf += struct.pack("<" + fmt, *values)
        return self

    def string(self, text: str) -> "_Cdr":
        raw = text.encode()
        self.pack("I", 4, len(raw) + 1)
        self.buf += raw + b"\x00"
        return self

    def bytes_seq(self, data) -> "_Cdr":
        view = memoryview(data).cast("B")
        self.pack("I", 4, view.nbytes)
        self.buf += view
        return self

    def f64_seq(self, values: np.ndarray | None) -> "_Cdr":
        flat = np.zeros(0) if values is None else np.ascontiguousarray(values, dtype="<f8").ravel()
        self.pack("I", 4, flat.size)
        if flat.size:
            self._align(8)
            self.buf += flat.tobytes()
        return self

    def f64_fixed(self, values, n: int) -> "_Cdr":
        flat = np.ascontiguousarray(values, dtype="<f8").ravel()
        assert flat.size == n
        self._align(8)
        self.buf += flat.tobytes()
        return self

    def header(self, stamp_ns: int, frame_id: str) -> "_Cdr":
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.pack("iI", 4, sec, nanosec).string(frame_id)

    def done(self) -> bytes:
        return bytes(self.buf)


def encode_image(stamp_ns: int, frame_id: str, pixels: np.ndarray, encoding: str) -> bytes:
    """A depth image (uint16 for 16UC1, float32 for 32FC1), little-endian, rows packed."""
    h, w = pixels.shape
    data = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<"))
    return (_Cdr().header(stamp_ns, frame_id).pack("II", 4, h, w).string(encoding).pack("B", 1, 0)
            .pack("I", 4, w * data.itemsize).bytes_seq(data).done())


def encode_camera_info(stamp_ns: int, frame_id: str, K) -> bytes:
    """Pinhole intrinsics as ROS CameraInfo: no distortion (plumb_bob with zeros), identity rectification."""
    k = [K.fx, 0.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 1.0]
    p = [K.fx, 0.0, K.cx, 0.0, 0.0, K.fy, K.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return (_Cdr().header(stamp_ns, frame_id).pack("II", 4, K.height, K.width).string("plumb_bob")
            .f64_seq(np.zeros(5)).f64_fixed(k, 9).f64_fixed(np.eye(3), 9).f64_fixed(p, 12)
            .pack("II", 4, 0, 0).pack("IIII", 4, 0, 0, 0, 0).pack("B", 1, 0).done())


def encode_frame_info(stamp_ns: int, frame_id: str, frame_index: int, host_time: float, sensor_time: float | None,
                      sensor_frame: int | None, depth_unit_mm: float, source: str) -> bytes:
    return (_Cdr().header(stamp_ns, frame_id).pack("Q", 8, frame_index).pack("d", 8, host_time)
            .pack("B", 1, sensor_time is not None).pack("d", 8, sensor_time or 0.0)
            .pack("B", 1, sensor_frame is not None).pack("q", 8, sensor_frame or 0)
            .pack("d", 8, depth_unit_mm).string(source).done())


def encode_prediction(stamp_ns: int, frame_id: str, result, model: str) -> bytes:
    """A tracker HandResult (result.py) as a HandPrediction message: its first hand, the one a session holds."""
    return (_Cdr().header(stamp_ns, frame_id).string(model).pack("B", 1, bool(result.present))
            .pack("d", 8, float(result.presence)).string(result.handedness).string(result.skipped or "")
            .string("canonical21").f64_seq(result.joints_mm).f64_seq(result.uv).f64_seq(result.confidence)
            .f64_seq(result.centre_mm).done())


def stamp_to_seconds(stamp) -> float:
    """A decoded builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9
