"""Reports: JSON written whole, numpy values as plain numbers, links written through; the machine's description."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from handtrack.inference.report import machine_info, write_json
from handtrack.training import evaluation


def test_numpy_values_and_paths_are_written_as_plain_json(tmp_path):
    path = tmp_path / "new" / "folder" / "r.json"  # the folder is made
    write_json(path, {"f": np.float32(1.5), "i": np.int64(3), "b": np.bool_(True), "a": np.arange(3),
                      "m": np.eye(2, dtype=np.float32), "p": Path("x/y")})
    assert json.loads(path.read_text()) == {"f": 1.5, "i": 3, "b": True, "a": [0, 1, 2],
                                            "m": [[1.0, 0.0], [0.0, 1.0]], "p": "x/y"}
    assert path.read_text().endswith("}\n")


def test_an_evaluation_summary_round_trips(tmp_path):
    s = evaluation.evaluate(np.random.default_rng(0).normal(0, 10, (20, 3, 3)), np.zeros((20, 3, 3)), "xyz")
    write_json(tmp_path / "s.json", s.to_dict())
    assert json.loads((tmp_path / "s.json").read_text())["mean_error_mm"] == pytest.approx(s.mean_error_mm)


def test_a_failed_write_leaves_the_old_report_and_no_temporary_file(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"run": 1})
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        write_json(path, {"run": 2, "bad": object()})
    assert json.loads(path.read_text()) == {"run": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_a_link_is_written_through_not_replaced(tmp_path):
    target, link = tmp_path / "target.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    write_json(link, [1])
    assert link.is_symlink() and json.loads(target.read_text()) == [1]


def test_machine_info_names_the_machine():
    info = machine_info()
    assert info["cores_usable"] >= 1 and info["numpy"] == np.__version__ and info["command"].startswith("handtrack")
