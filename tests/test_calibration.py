"""Extrinsics files: the example loads, both rotation forms agree, points land where they should, and every kind of
broken file is one line naming the file and the problem."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from handtrack.calibration.extrinsics import load_extrinsics, parse_extrinsics
from handtrack.inference.errors import HandtrackError

EXAMPLE = Path(__file__).resolve().parents[1] / "calibration" / "example_extrinsics.json"
LEVEL = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]  # a level camera looking along the base's x axis (z up)


def valid(**changes) -> dict:
    data = {"format": "handtrack-extrinsics", "version": 1, "camera_frame": "camera_depth_optical_frame",
            "base_frame": "base_link", "units": "m", "rotation": LEVEL, "translation": [0.1, 0.0, 0.6]}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_example_file_loads_and_maps_the_optical_axis_forward_and_down():
    e = load_extrinsics(EXAMPLE)
    assert (e.camera_frame, e.base_frame) == ("camera_depth_optical_frame", "base_link")
    np.testing.assert_allclose(e.rotation.T @ e.rotation, np.eye(3), atol=1e-5)
    forward = e.camera_mm_to_base_m([0.0, 0.0, 1000.0]) - e.translation_m
    assert forward[0] > 0.8 and forward[2] < -0.4  # 30 degrees down from the base's x axis
    assert e.camera_mm_to_base_m([0.0, 0.0, 0.0]) == pytest.approx(e.translation_m)


def test_level_camera_axes_follow_rep103():
    e = parse_extrinsics(valid())
    # optical x (right) -> base -y, optical y (down) -> base -z, optical z (forward) -> base +x; mm -> m
    np.testing.assert_allclose(e.camera_mm_to_base_m([[1000, 0, 0], [0, 1000, 0], [0, 0, 1000]]) - e.translation_m,
                               [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-12)


def test_quaternion_and_matrix_give_the_same_rotation_and_units_scale_the_translation():
    by_matrix = parse_extrinsics(valid())
    by_quaternion = parse_extrinsics(valid(rotation=None, quaternion={"x": -0.5, "y": 0.5, "z": -0.5, "w": 0.5},
                                           units="mm", translation=[100, 0, 600]))
    np.testing.assert_allclose(by_quaternion.rotation, by_matrix.rotation, atol=1e-12)
    np.testing.assert_allclose(by_quaternion.translation_m, by_matrix.translation_m, atol=1e-12)


def test_round_trip_through_to_dict():
    e = load_extrinsics(EXAMPLE)
    again = parse_extrinsics(json.loads(json.dumps(e.to_dict())))
    np.testing.assert_allclose(again.rotation, e.rotation)
    np.testing.assert_allclose(again.translation_m, e.translation_m)


BAD = {
    "unknown key": (valid(translaton=[0, 0, 0]), "unknown key"),
    "missing key": (valid(translation=None), "missing key"),
    "other format": (valid(format="handtrack-intrinsics"), "format"),
    "newer version": (valid(version=2), "version 2"),
    "bad units": (valid(units="inch"), "units 'inch'"),
    "both rotations": (valid(quaternion={"x": 0, "y": 0, "z": 0, "w": 1}), "exactly one"),
    "no rotation": (valid(rotation=None), "exactly one"),
    "reflection": (valid(rotation=[[0, 0, 1], [1, 0, 0], [0, -1, 0]]), "determinant -1"),
    "not orthonormal": (valid(rotation=[[1, 0.1, 0], [0, 1, 0], [0, 0, 1]]), "not orthonormal"),
    "rotation shape": (valid(rotation=[[1, 0, 0], [0, 1, 0]]), "shape"),
    "rotation text": (valid(rotation="identity"), "numbers"),
    "quaternion length": (valid(rotation=None, quaternion={"x": 0, "y": 0, "z": 0, "w": 0.5}), "length 0.5"),
    "quaternion as list": (valid(rotation=None, quaternion=[0, 0, 0, 1]), "keys x, y, z, w"),
    "translation shape": (valid(translation=[0, 0]), "shape"),
    "mm labelled m": (valid(translation=[100, 0, 600]), "wrong units"),
    "same frames": (valid(base_frame="camera_depth_optical_frame"), "both"),
    "bad frame name": (valid(base_frame="base link"), "not a frame name"),
    "frame not text": (valid(camera_frame=3), "not a frame name"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_files_are_one_line_naming_file_and_problem(case, tmp_path):
    data, expected = BAD[case]
    path = tmp_path / "extrinsics.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HandtrackError) as info:
        load_extrinsics(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and expected in message, message


@pytest.mark.parametrize("text, expected", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_unreadable_files_are_one_line(tmp_path, text, expected):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(HandtrackError, match=expected):
        load_extrinsics(path)


def test_non_finite_numbers_are_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(valid()).replace("0.6", "NaN"))  # Python's json reads NaN; it is no position
    with pytest.raises(HandtrackError, match="non-finite"):
        load_extrinsics(path)


def test_a_huge_translation_is_one_line_without_numpys_overflow_warning(tmp_path, recwarn):
    """Issue 17, item 10: 1e308 used to print numpy's overflow warning before the error."""
    data = valid()
    data["translation"] = [1e308, 1e308, 0.0]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HandtrackError, match="more than 50 m"):
        load_extrinsics(path)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(HandtrackError, match="does not exist"):
        load_extrinsics(tmp_path / "nope.json")
