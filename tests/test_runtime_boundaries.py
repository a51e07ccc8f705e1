"""The runtime stays torch-free, and a missing optional dependency is one clear line."""
import subprocess
import sys

import numpy as np
import pytest

from handtrack.app.cli import main
from handtrack.inference.errors import MissingDependency, require


def test_runtime_imports_no_torch():
    code = (
        "import sys, numpy as np\n"
        "import handtrack.inference.camera, handtrack.inference.crop, handtrack.inference.plausibility\n"
        "import handtrack.inference.datasets.nyu, handtrack.inference.datasets.realsense_png\n"
        "from handtrack.inference.handmodel import kinematics, surface, render, fit, keypoints, params\n"
        "kin = kinematics.forward(params.rest_pose())\n"
        "caps, parts = surface.capsules(kin)\n"
        "render.render_capsules(caps, handtrack.inference.camera.NYU, parts)\n"
        "fit.fit_to_joints(kin.joints[None], 'canonical21')\n"
        "assert 'torch' not in sys.modules, 'the runtime imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_dependency_names_the_extra():
    with pytest.raises(MissingDependency, match=r"pip install 'handtrack\[gui\]'"):
        require("handtrack_no_such_module", extra="gui", feature="the desktop app")


def test_cli_reports_a_missing_plotting_library_in_one_line(monkeypatch, tmp_path, capsys):
    pred = tmp_path / "pred.txt"
    labels = tmp_path / "labels.txt"
    rows = np.random.default_rng(0).uniform(100, 400, (3, 42))
    rows[:, 2::3] = 700
    np.savetxt(labels, rows)
    np.savetxt(pred, rows[:, :42])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the viz extra were not installed
    rc = main(["eval", "nyu", str(pred), "--labels", str(labels), "--plot", str(tmp_path / "p.png")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("handtrack: error")]
    assert rc == 2 and len(errors) == 1 and "handtrack[viz]" in errors[0]
