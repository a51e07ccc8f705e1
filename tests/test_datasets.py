"""Dataset readers: the real NYU and SR305 files in ../shared/data, and ICVL/MSRA/NYU-folder fixtures written
in the published layouts (no real ICVL/MSRA files ship with the project)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from handtrack.inference.camera import ICVL, MSRA, NYU, SR305, project, xyz_to_uvd
from handtrack.inference.datasets import icvl, msra, nyu, realsense_png
from handtrack.inference.errors import HandtrackError
from handtrack.inference.skeleton import NYU14_FROM_36

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NYU_DIR = DATA / "nyu"
SR305_DIR = DATA / "realsense_sr305"
needs_nyu = pytest.mark.skipif(not NYU_DIR.is_dir(), reason=f"shared NYU reference data not found at {NYU_DIR}")
needs_sr305 = pytest.mark.skipif(not SR305_DIR.is_dir(), reason=f"shared SR305 frames not found at {SR305_DIR}")


# --- NYU: the real files ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nyu_frame():
    return nyu.load_frame(NYU_DIR / "test_depth_1_0000001.png", NYU_DIR / "test_joints36_xyz_0000001.json")


@needs_nyu
def test_nyu_depth_png_decodes_green_high_blue_low(nyu_frame):
    d = nyu_frame.depth_mm
    assert d.shape == (480, 640) and d.dtype == np.float32
    assert d.min() == 731 and d.max() == 2001  # values stated in the data README
    assert nyu_frame.intrinsics == NYU and nyu_frame.joint_set == "nyu36"


@needs_nyu
def test_nyu_json_is_flipped_to_y_down(nyu_frame):
    stored = np.asarray(json.loads((NYU_DIR / "test_joints36_xyz_0000001.json").read_text())["joints_xyz"])
    np.testing.assert_allclose(nyu_frame.joints_xyz[:, 1], -stored[:, 1])
    np.testing.assert_allclose(nyu_frame.joints_xyz[:, [0, 2]], stored[:, [0, 2]])
    # y down: the fingertips (knu3_a) lie above the wrist points (palm_1, palm_2) in the image.
    tips, wrist = nyu_frame.joints_xyz[[0, 6, 12, 18], 1], nyu_frame.joints_xyz[[30, 31], 1]
    assert tips.max() < wrist.min()


@needs_nyu
def test_nyu_json_projects_onto_both_uvd_label_files(nyu_frame):
    uv = project(nyu_frame.joints_xyz, NYU)
    labels14 = nyu.load_joints14_uvd(NYU_DIR / "test_joints14_uvd.txt")
    labels36 = nyu.load_joints36_uvd(NYU_DIR / "test_joints36_uvd.npz")
    assert labels14.shape == (8252, 14, 3) and labels36.shape == (8252, 36, 3)
    assert np.abs(uv[list(NYU14_FROM_36)] - labels14[0, :, :2]).max() < 0.01
    assert np.abs(uv - labels36[0, :, :2]).max() < 0.01  # the npz is rounded to 0.01 px
    # The two label files agree on the 14 evaluation joints for the whole split (npz rounding only).
    assert np.abs(labels36[:, list(NYU14_FROM_36)] - labels14).max() < 0.06


@needs_nyu
def test_nyu_depth_encoding_round_trips(nyu_frame):
    np.testing.assert_array_equal(nyu.decode_depth(nyu.encode_depth(nyu_frame.depth_mm)), nyu_frame.depth_mm)


@pytest.mark.parametrize("text, message", [
    ("1 2 3\n1 2\n", "line 2 has 2 numbers, expected 3"),
    ("1 2 3\n1 x 3\n", "line 2 has a non-numeric value 'x'"),
    ("1 2 nan\n", "line 1 has a NaN"),
    ("\n\n", "is empty"),
])
def test_joint_table_rejects_malformed_lines(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(HandtrackError, match=message):
        nyu.read_joint_table(path, num_joints=1)


def test_joint_table_ignores_trailing_blank_lines(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text("1 2 3 4 5 6 \n7 8 9 10 11 12\n\n")
    np.testing.assert_array_equal(nyu.read_joint_table(path, 2).ravel(), np.arange(1, 13))


# --- NYU: the folder layout (joint_data.mat + depth PNGs) -------------------------------------------------

def _write_nyu_split(root: Path, depths: list[np.ndarray], xyz_y_up: np.ndarray) -> None:
    """A miniature NYU test split: depth_<cam>_<n>.png for camera 1 and joint_data.mat for 3 cameras."""
    sio = pytest.importorskip("scipy.io")
    folder = root / "test"
    folder.mkdir(parents=True)
    for n, depth in enumerate(depths, start=1):
        cv2.imwrite(str(folder / f"depth_1_{n:07d}.png"), nyu.encode_depth(depth))
    uvd = xyz_to_uvd(nyu.y_up_to_opencv(xyz_y_up), NYU)
    sio.savemat(str(folder / "joint_data.mat"), {"joint_xyz": xyz_y_up, "joint_uvd": uvd})


def test_nyu_folder_reader_reads_camera_1_and_flips_y(tmp_path):
    rng = np.random.default_rng(0)
    depths = [rng.integers(0, 3000, (480, 640)).astype(np.float32) for _ in range(2)]
    xyz = rng.normal([0, 0, 700], 50, (3, 2, 36, 3))  # (cameras, frames, joints, xyz), y up
    _write_nyu_split(tmp_path, depths, xyz)
    data = nyu.NYUDataset(tmp_path, "test")
    assert len(data) == 2
    frames = list(data)
    for depth, frame, stored in zip(depths, frames, xyz[0]):
        np.testing.assert_array_equal(frame.depth_mm, depth)
        np.testing.assert_allclose(frame.joints_xyz, stored * [1, -1, 1])
    assert frames[1].frame_id == "depth_1_0000002" and frames[1].joint_set == "nyu36"
    np.testing.assert_allclose(nyu.NYUDataset(tmp_path, "test", camera=3).joints_xyz, xyz[2] * [1, -1, 1])


def test_nyu_folder_reader_says_what_is_missing(tmp_path):
    with pytest.raises(HandtrackError, match="joint_data.mat"):
        nyu.NYUDataset(tmp_path, "test")
    with pytest.raises(HandtrackError, match="split"):
        nyu.NYUDataset(tmp_path, "validation")


# --- ICVL --------------------------------------------------------------------------------------------------

def _icvl_uvd(rng) -> np.ndarray:
    return np.column_stack([rng.uniform(100, 220, 16), rng.uniform(60, 180, 16), rng.uniform(250, 450, 16)])


def test_icvl_reader_follows_the_release_layout(tmp_path):
    rng = np.random.default_rng(1)
    depth = rng.integers(0, 1000, (240, 320)).astype(np.uint16)
    image = tmp_path / "Training" / "Depth" / "201403121135" / "image_0000.png"
    image.parent.mkdir(parents=True)
    cv2.imwrite(str(image), depth)
    uvd = _icvl_uvd(rng)
    line = "201403121135/image_0000.png " + " ".join(f"{v:.4f}" for v in uvd.ravel())
    (tmp_path / "Training" / "labels.txt").write_text(line + "\n")

    data = icvl.ICVLDataset.split(tmp_path, "train")
    assert len(data) == 1
    frame = data[0]
    np.testing.assert_array_equal(frame.depth_mm, depth.astype(np.float32))
    assert frame.intrinsics == ICVL and frame.joint_set == "icvl16"
    assert frame.frame_id == "201403121135/image_0000.png"
    # The uvd labels come back when the joints are projected, so no axis was flipped.
    np.testing.assert_allclose(xyz_to_uvd(frame.joints_xyz, ICVL), np.round(uvd, 4), atol=1e-9)


def test_icvl_labels_with_a_wrong_count_are_refused(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("a.png " + " ".join(["1"] * 47) + "\n")
    with pytest.raises(HandtrackError, match="line 1 has 47 numbers"):
        icvl.load_labels(path)


# --- MSRA --------------------------------------------------------------------------------------------------

def _write_msra_bin(path: Path, width: int, height: int, box: tuple[int, int, int, int], values: np.ndarray) -> None:
    """The published layout, written by hand: six int32 (width, height, left, top, right, bottom), float32 box."""
    path.write_bytes(struct.pack("<6i", width, height, *box) + values.astype("<f4").tobytes())


def test_msra_reader_places_the_box_and_flips_y_and_z(tmp_path):
    folder = tmp_path / "P0" / "1"
    folder.mkdir(parents=True)
    left, top, right, bottom = 100, 80, 140, 130
    box = np.arange((bottom - top) * (right - left), dtype=np.float32).reshape(bottom - top, right - left) + 300
    _write_msra_bin(folder / "000000_depth.bin", 320, 240, (left, top, right, bottom), box)
    stored = np.random.default_rng(2).normal([0, 0, -350], 40, (1, 21, 3))  # y up, z negated, as published
    (folder / "joint.txt").write_text("1\n" + " ".join(f"{v:.6f}" for v in stored.ravel()) + "\n")

    data = msra.MSRADataset(tmp_path)
    assert len(data) == 1
    frame = data[0]
    assert frame.depth_mm.shape == (240, 320) and frame.intrinsics == MSRA and frame.frame_id == "P0/1/000000"
    np.testing.assert_array_equal(frame.depth_mm[top:bottom, left:right], box)
    outside = frame.depth_mm.copy()
    outside[top:bottom, left:right] = 0
    assert not outside.any()
    np.testing.assert_allclose(frame.joints_xyz, stored[0] * [1, -1, -1], atol=1e-6)
    assert (frame.joints_xyz[:, 2] > 0).all()


def test_msra_writers_round_trip(tmp_path):
    depth = np.zeros((240, 320), np.float32)
    depth[50:90, 120:170] = np.random.default_rng(3).uniform(200, 500, (40, 50))
    msra.save_depth_bin(tmp_path / "000000_depth.bin", depth)
    np.testing.assert_array_equal(msra.load_depth_bin(tmp_path / "000000_depth.bin"), depth)
    joints = np.random.default_rng(4).normal([0, 0, 350], 40, (3, 21, 3))
    msra.save_joints(tmp_path / "joint.txt", joints)
    np.testing.assert_allclose(msra.load_joints(tmp_path / "joint.txt"), joints, atol=1e-6)


def test_msra_refuses_truncated_files(tmp_path):
    _write_msra_bin(tmp_path / "a.bin", 320, 240, (0, 0, 10, 10), np.ones(99))
    with pytest.raises(HandtrackError, match="holds 99 depth values, its box needs 100"):
        msra.load_depth_bin(tmp_path / "a.bin")
    (tmp_path / "joint.txt").write_text("2\n" + " ".join(["0"] * 63) + "\n")
    with pytest.raises(HandtrackError, match="header says 2 frames"):
        msra.load_joints(tmp_path / "joint.txt")


# --- uint16 PNG with a depth unit (RealSense SR305) --------------------------------------------------------

@needs_sr305
def test_sr305_frames_load_in_mm_in_natural_order():
    frames = realsense_png.DepthPngFolder(SR305_DIR)
    assert len(frames) == 8
    assert [p.stem.split("_")[-1] for p in frames.paths] == ["30", "50", "70", "90", "110", "130", "150", "170"]
    frame = frames[0]
    raw = cv2.imread(str(frames.paths[0]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(frame.depth_mm, raw * np.float32(0.125))
    assert frame.intrinsics == SR305 and frame.joints_xyz is None
    # The hand is held at about 0.5-0.8 m (data README): plenty of valid pixels there.
    assert ((frame.depth_mm > 450) & (frame.depth_mm < 850)).sum() > 2000


def test_depth_png_round_trips_and_refuses_8_bit(tmp_path):
    depth = np.random.default_rng(5).integers(0, 8000, (48, 64)).astype(np.float32) * np.float32(0.125)
    realsense_png.save_depth_png(tmp_path / "d.png", depth, depth_unit_mm=0.125)
    np.testing.assert_array_equal(realsense_png.load_depth_png(tmp_path / "d.png", 0.125), depth)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(HandtrackError, match="not a 16-bit single-channel"):
        realsense_png.load_depth_png(tmp_path / "rgb.png", 1.0)
    with pytest.raises(HandtrackError, match="cannot read"):
        realsense_png.load_depth_png(tmp_path / "missing.png", 1.0)


def test_a_huge_png_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    """Issue 17, item 5: a 20000x20000 PNG used to be decoded (2.4 GB) before its size was checked."""
    import struct
    import zlib

    import cv2

    from handtrack.inference.datasets import realsense_png
    from handtrack.inference.errors import HandtrackError

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 16, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    monkeypatch.setattr(cv2, "imread", lambda *a, **k: pytest.fail("decoded before the size was checked"))
    with pytest.raises(HandtrackError, match="20000x20000 but the camera is 640x480"):
        realsense_png.load_frame(huge)
    with pytest.raises(HandtrackError, match="at most 8192 pixels a side"):
        realsense_png.load_depth_png(huge, 1.0)
