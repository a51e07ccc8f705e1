"""Synthetic samples and shards: deterministic, geometrically consistent, readable."""
import json
from pathlib import Path

import numpy as np
import pytest

from handtrack.app.cli import main
from handtrack.inference import camera, skeleton
from handtrack.inference.crop import CropWindow
from handtrack.inference.errors import HandtrackError
from handtrack.training.synth.generator import SynthConfig, SynthShards, generate_shard, make_sample
from handtrack.training.synth.pose_prior import PosePrior
from handtrack.training.synth.sensors import SENSORS


@pytest.fixture(scope="module")
def prior():
    return PosePrior.load()


def test_a_sample_is_a_pure_function_of_seed_and_index(prior):
    cfg = SynthConfig(sensor="realsense", seed=3)
    a, b, c = make_sample(7, cfg, prior), make_sample(7, cfg, prior), make_sample(8, cfg, prior)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert not np.array_equal(a.depth, c.depth)


@pytest.mark.parametrize("sensor", ["clean", "primesense", "realsense", "sr305"])
def test_crop_shows_the_hand_at_its_joints(sensor, prior):
    cfg = SynthConfig(sensor=sensor)
    hits = []
    for i in range(6):
        s = make_sample(i, cfg, prior)
        centre, joints = s.centre[0], s.joints[0]
        assert np.linalg.norm(centre - skeleton.palm_centre(joints)) < 30  # 5 mm jitter per axis
        # the crop's own camera: project the palm centre and read the depth there
        w = CropWindow(centre.astype(float), cfg.cube_mm, cfg.size, *s.window[0].astype(float))
        K = w.intrinsics(SENSORS[sensor].intrinsics)
        u, v = np.round(camera.project(skeleton.palm_centre(joints), K)).astype(int)
        patch = s.depth[0][v - 3:v + 4, u - 3:u + 4].astype(float)
        valid = patch[(patch > 0) & (patch < 2001)]
        hits.append(valid.size > 0 and abs(np.median(valid) - centre[2]) < 60)
    assert sum(hits) >= 5  # the palm may be hidden behind fingers in a rare pose


def test_extra_views_see_the_same_instant(prior):
    s = make_sample(0, SynthConfig(views=3, sensor="clean"), prior)
    for v in range(1, 3):
        moved = s.joints[0] @ s.view_R[v].T + s.view_t[v]
        np.testing.assert_allclose(moved, s.joints[v], atol=1e-3)
        assert not np.allclose(s.joints[v], s.joints[0], atol=1.0)
    assert (s.depth[1] > 0).any()


def test_shards_do_not_depend_on_sharding(tmp_path, prior):
    cfg = SynthConfig(sensor="primesense", seed=5)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for k in range(2):
        generate_shard(tmp_path / "a", k, 5, 3, cfg, prior)
    generate_shard(tmp_path / "b", 0, 5, 5, cfg, prior)
    a, b = SynthShards(tmp_path / "a"), SynthShards(tmp_path / "b")
    assert len(a) == len(b) == 5
    np.testing.assert_array_equal(a.arrays()["depth"], b.arrays()["depth"])
    f = a.frame(4)
    assert f.depth_mm.shape == (128, 128) and f.joint_set == "canonical21"
    uv = camera.project(f.joints_xyz, f.intrinsics)
    assert (np.abs(uv - 63.5) < 64 * 1.5).all()


def test_a_killed_writers_temporary_file_is_not_a_shard(tmp_path, prior):
    """An interrupted `handtrack data synth` can leave shard_*.tmp.npz behind (issue 17, item 9)."""
    generate_shard(tmp_path, 0, 3, 3, SynthConfig(sensor="primesense", seed=5), prior)
    (tmp_path / "shard_00001.tmp.npz").write_bytes(b"half a shard")
    shards = SynthShards(tmp_path)
    assert len(shards) == 3 and [p.name for p in shards.paths] == ["shard_00000.npz"]


def test_unreadable_shards_are_a_clear_error(tmp_path):
    with pytest.raises(HandtrackError, match="no synthetic shards"):
        SynthShards(tmp_path)
    (tmp_path / "shard_00000.npz").write_bytes(b"not a zip")
    with pytest.raises(HandtrackError, match="shard_00000"):
        SynthShards(tmp_path)


def test_cli_writes_shards_meta_and_preview(tmp_path, capsys):
    out = tmp_path / "synth"
    rc = main(["data", "synth", "--n", "5", "--shard-size", "2", "--sensor", "sr305", "--views", "2",
               "--out", str(out), "--preview", str(tmp_path / "p.png")])
    assert rc == 0
    assert len(list(out.glob("shard_*.npz"))) == 3
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n"] == 5 and meta["config"]["views"] == 2
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert SynthShards(out).arrays()["depth"].shape == (5, 2, 128, 128)


def test_cli_rejects_unknown_sensor(tmp_path, capsys):
    assert main(["data", "synth", "--n", "2", "--sensor", "kinect9", "--out", str(tmp_path)]) == 2
    assert "unknown sensor 'kinect9'" in capsys.readouterr().err


def test_a_failed_shard_write_leaves_no_partial_file(tmp_path, prior, monkeypatch):
    def disk_full(path, *args, **kwargs):
        Path(path).write_bytes(b"PK half a zip")  # the disk fills up part-way through the write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError):
        generate_shard(tmp_path, 0, 2, 2, SynthConfig(), prior)
    assert list(tmp_path.iterdir()) == []
