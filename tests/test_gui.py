"""handtrack-gui used as a person would: a real window on a real X server (Xvfb, xcb platform, OpenGL through
Mesa), the demo source, the real models. The offscreen platform cannot do OpenGL, so without a display these
tests start their own Xvfb, and they skip (saying why) on a machine that has neither.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6", reason="the gui extra is not installed (pip install 'handtrack[gui]')")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed (pip install 'handtrack[dev]')")


@pytest.fixture(scope="session", autouse=True)
def display():
    """An X display: the one we run under, or a private Xvfb started (and stopped) here. Session-scoped and
    autouse so that it comes before pytest-qt's session-scoped QApplication."""
    if not os.environ.get("DISPLAY"):
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            pytest.skip("no X display and no Xvfb to start one (apt-get install xvfb)")
        read, write = os.pipe()
        # -displayfd: Xvfb picks a free display number and writes it to the pipe once it accepts connections.
        server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1600x1200x24", "-nolisten", "tcp"],
                                  pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=_die_with_parent)
        os.close(write)
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            server.kill()
            pytest.skip("Xvfb did not start")
        os.environ["DISPLAY"] = f":{number}"
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from handtrack.app.gui.main import make_app

    yield make_app()  # before pytest-qt's qapp, so the app gets the GUI's settings (shared GL contexts)
    # Our Xvfb must outlive the QApplication, which lives until the interpreter exits (stopping the server
    # earlier makes Qt abort on the broken X connection): it is ended by the kernel when this process ends.


def _die_with_parent() -> None:
    """In the Xvfb child before exec: have Linux send it SIGTERM when the test process ends (PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@pytest.fixture
def open_gui(qtbot, tmp_path):
    """open_gui(source) -> a shown main window tracking `source`; closed, with its tracking process, afterwards."""
    from handtrack.app.gui.main import open_window
    from handtrack.app.gui.worker import TrackingSettings

    windows = []

    def make(source="demo", settings=TrackingSettings()):
        window = open_window(source, settings, size="1400x900", record_dir=tmp_path / "recordings")
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    from PySide6.QtCore import QCoreApplication, QEvent

    for w in windows:
        w.close()
        assert not w.tracking.running  # closing the window ends the tracking process
        # Delete it now, while the application and its GL context exist: a window left to the interpreter's exit
        # is destroyed after Qt has shut down, and its OpenGL view segfaults there.
        w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def wait_frames(qtbot, window, n: int, timeout_ms: int = 30000) -> None:
    start = window.shown_count
    qtbot.waitUntil(lambda: window.shown_count >= start + n, timeout=timeout_ms)


def colour_near(img: np.ndarray, bgr, tol: int = 40) -> int:
    """Pixels of an (H, W, 3+) image within `tol` of a BGR colour."""
    return int(np.all(np.abs(img[..., :3].astype(int) - np.array(bgr)) < tol, axis=-1).sum())


def test_app_on_the_demo_shows_depth_skeleton_3d_and_synthesized_depth(qtbot, open_gui):
    from PySide6 import QtCore

    from handtrack.inference import skeleton

    window = open_gui("demo")
    wait_frames(qtbot, window, 15)
    qtbot.waitUntil(lambda: window.synthesis.mean_difference is not None, timeout=10000)
    snap = window.snapshot
    assert snap.result.present
    depth = window.depth.image()
    assert depth.shape == (480, 640, 3)
    index_bgr = skeleton.FINGER_COLORS_BGR["index"]
    assert colour_near(depth, index_bgr, 10) > 20  # the skeleton is drawn over the depth
    # The 3D view renders the cloud and the coloured skeleton (the image is RGBA).
    qtbot.waitUntil(lambda: colour_near(window.view3d.rendered_image()[..., 2::-1], index_bgr, 30) > 10, timeout=5000)
    rendered = window.view3d.rendered_image()
    assert rendered.shape[0] > 100 and (rendered[..., :3].std(axis=(0, 1)) > 5).all()
    assert window.synthesis.synthesized.image().any() and window.synthesis.difference.image().any()
    # the exact synthesis beside the generator's: our hand model drawn at the estimate explains the crop. One frame,
    # whichever the panel caught: the demo's frames read about 0.2 (25 mm), so the bound leaves room for a pose
    # the estimate gets less right, and still fails on a hand model drawn in the wrong place (about 1).
    assert window.synthesis.hand_model.image().any() and window.synthesis.hand_mean_difference < 0.35
    # Dragging orbits the 3D view around the hand.
    view, azimuth = window.view3d, window.view3d.scene.opts["azimuth"]
    centre = view.rect().center()
    qtbot.mousePress(view, _left(), pos=centre)
    qtbot.mouseMove(view, centre + QtCore.QPoint(60, 0))
    qtbot.mouseRelease(view, _left(), pos=centre + QtCore.QPoint(60, 0))
    assert window.view3d.scene.opts["azimuth"] != azimuth
    window.show_status()
    assert "connected" in window.state_label.text()
    assert "tracking" in window.fps_label.text() and window.tracking.status["tracking_fps"] > 0


def test_latent_walk_captures_two_poses_and_animates_between_them(qtbot, open_gui):
    window = open_gui("demo")
    wait_frames(qtbot, window, 5)
    qtbot.mouseClick(window.walk.capture_a, _left())
    assert window.walk.a is not None and window.walk.walk is None
    wait_frames(qtbot, window, 30)  # a second later the demo hand has moved on
    qtbot.mouseClick(window.walk.capture_b, _left())
    assert window.walk.walk is not None
    window.walk.show_at(0.5)
    middle = window.walk.tile_walk.image().copy()
    window.walk.show_at(0.0)
    assert not np.array_equal(middle, window.walk.tile_walk.image())
    qtbot.mouseClick(window.walk.clear, _left())
    assert window.walk.walk is None


def _left():
    from PySide6 import QtCore
    return QtCore.Qt.MouseButton.LeftButton


def test_switching_source_and_model_and_a_bad_model_is_reported(qtbot, open_gui, tmp_path):
    from handtrack.inference.recording import SessionWriter
    from handtrack.inference.sources import open_source
    from handtrack.models_onnx import resolve

    session = tmp_path / "short.mcap"
    with open_source("demo", realtime=False, frames=20) as source:
        writer = SessionWriter(session, info=source.info)
        for frame in source:
            writer.write(frame)
        writer.close()
    for role in ("pose", "render"):  # the shipped model under another name, as a user's own model would be
        shutil.copy(resolve("crossingnets", role), tmp_path / f"mine_{role}.onnx")

    window = open_gui("demo")
    wait_frames(qtbot, window, 3)
    window.controls.choose_source(str(session))
    qtbot.waitUntil(lambda: window.tracking.status["source_name"] not in (None, "demo")
                    and window.snapshot is not None and window.snapshot.frame.frame_id != "", timeout=20000)
    qtbot.waitUntil(lambda: window.tracking.source_state == "finished", timeout=20000)
    window.show_status()
    assert "finished" in window.state_label.text()

    window.controls.choose_source("demo")
    wait_frames(qtbot, window, 3)
    mine = str(tmp_path / "mine_pose.onnx")
    window.controls.choose_model(mine)
    qtbot.waitUntil(lambda: window.snapshot is not None and window.snapshot.model == mine, timeout=10000)
    qtbot.waitUntil(lambda: window.models.model == mine and window.synthesis.mean_difference is not None,
                    timeout=10000)
    assert window.models.error is None

    broken = tmp_path / "broken_pose.onnx"
    broken.write_text("not a model")
    window.controls.choose_model(str(broken))
    qtbot.waitUntil(lambda: window.tracking.error is not None, timeout=10000)
    window.show_status()
    assert "cannot use model" in window.state_label.text()
    count = window.tracking.tracked
    qtbot.waitUntil(lambda: window.tracking.tracked > count + 3, timeout=10000)  # still tracking
    assert window.tracking.status["settings"].tracker.model == mine  # with the last model that worked


def test_looking_for_cameras_runs_beside_the_display_and_keeps_the_source(qtbot, open_gui):
    window = open_gui("demo")
    wait_frames(qtbot, window, 3)
    controls = window.controls
    qtbot.mouseClick(controls.refresh_button, _left())
    assert not controls.refresh_button.isEnabled()  # the drivers are being asked, on another thread
    qtbot.waitUntil(controls.refresh_button.isEnabled, timeout=30000)
    specs = [controls.source_combo.itemData(i) for i in range(controls.source_combo.count())]
    assert specs[0] == "demo" and controls.source_combo.currentData() == "demo"
    wait_frames(qtbot, window, 3)  # still tracking and drawing


def test_record_button_records_a_session_with_elapsed_frames_and_size(qtbot, open_gui, tmp_path):
    from handtrack.inference.sources import open_source

    window = open_gui("demo")
    wait_frames(qtbot, window, 3)
    qtbot.mouseClick(window.controls.record_button, _left())
    qtbot.waitUntil(lambda: (window.tracking.status["record_live"] or {}).get("frames", 0) >= 15, timeout=20000)
    window.show_status()
    text = window.controls.record_label.text()
    assert text.startswith("recording session_") and " frames" in text and " MB" in text
    assert window.controls.record_button.text() == "■ Stop"
    qtbot.mouseClick(window.controls.record_button, _left())
    qtbot.waitUntil(lambda: not window.tracking.status["recording"] and bool(window.tracking.status["record_stats"]),
                    timeout=10000)
    window.show_status()
    assert window.controls.record_label.text().startswith("saved ")
    files = list((tmp_path / "recordings").glob("session_*.mcap"))
    assert len(files) == 1
    with open_source(files[0], realtime=False) as replay:
        assert len(list(replay)) == window.tracking.status["record_stats"]["frames"] >= 15


@pytest.mark.slow
def test_finetune_button_tunes_on_the_saved_session_and_offers_the_model(qtbot, open_gui, tmp_path):
    """Record, then "Fine-tune on this session": it trains in the background (shortened here to two steps on a
    small labelled side), shows progress, and the tuned model joins the picker and tracks."""
    pytest.importorskip("torch", reason="fine-tuning needs the train extra")
    import json

    from handtrack.training.synth.generator import SynthConfig, generate_shard

    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    generate_shard(synthetic, 0, 16, 16, SynthConfig(sensor="primesense", seed=4))
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps({"batch": {"synthetic": 4, "session": 4}, "semihand": {"views": 2}, "bf16": False}))
    window = open_gui("demo")
    window.finetune.extra_args = ("--steps", "2", "--synthetic", str(synthetic), "--config", str(tiny))
    wait_frames(qtbot, window, 3)
    assert not window.controls.finetune_button.isEnabled()  # nothing recorded yet
    qtbot.mouseClick(window.controls.record_button, _left())
    qtbot.waitUntil(lambda: (window.tracking.status["record_live"] or {}).get("frames", 0) >= 10, timeout=20000)
    qtbot.mouseClick(window.controls.record_button, _left())
    qtbot.waitUntil(lambda: bool(window.tracking.status["record_stats"]), timeout=10000)
    window.show_status()
    assert window.controls.finetune_button.isEnabled()
    qtbot.mouseClick(window.controls.finetune_button, _left())
    assert window.finetune.running and window.controls.finetune_bar.isVisible()
    qtbot.waitUntil(lambda: not window.finetune.running, timeout=240000)
    text = window.controls.finetune_label.text()
    assert "is in the model list" in text, text
    session = window.tracking.status["record_path"]
    model = str(session.with_name(session.stem + "_finetuned") / "finetuned_pose.onnx")
    assert window.controls.model_combo.findData(model) >= 0
    window.controls.choose_model(model)
    qtbot.waitUntil(lambda: window.snapshot is not None and window.snapshot.model == model, timeout=20000)
    assert window.tracking.error is None


def test_camera_unplug_shows_in_the_status_bar_and_recovers(qtbot, open_gui, tmp_path):
    from functools import partial

    from gui_fakes import unpluggable_source

    plug = tmp_path / "plugged"  # the camera's cable: plugged in while this file exists
    plug.touch()
    window = open_gui(partial(unpluggable_source, str(plug)))
    wait_frames(qtbot, window, 5)
    plug.unlink()

    def status_says(word):
        window.show_status()
        return word in window.state_label.text()

    qtbot.waitUntil(lambda: status_says("reconnecting"), timeout=10000)
    assert "unplugged" in window.state_label.text() or "not plugged" in window.state_label.text()
    plug.touch()
    qtbot.waitUntil(lambda: status_says("connected") and "reconnecting" not in window.state_label.text(),
                    timeout=10000)
    wait_frames(qtbot, window, 5)  # frames flow again
    assert window.tracking.status["source_stats"]["reconnects"] == 1


def test_tracking_controls_reach_the_tracker(qtbot, open_gui):
    window = open_gui("demo")
    wait_frames(qtbot, window, 3)
    c = window.controls
    c.hand_combo.setCurrentText("left")
    c.cube_spin.setValue(300)
    c.smoothing_check.setChecked(False)
    c.far_spin.setValue(1200)
    def applied():
        s = window.tracking.status["settings"]  # what the tracking process runs with
        return s.tracker.hand == "left" and s.tracker.cube_mm == 300 and s.tracker.smoothing is None \
            and s.far_mm == 1200 and s.tracker_options().max_depth_mm == 1200

    qtbot.waitUntil(applied, timeout=10000)
    qtbot.waitUntil(lambda: window.snapshot.cube_mm == 300 and window.snapshot.result.handedness == "left",
                    timeout=10000)
    assert window.snapshot.frame.depth_mm.max() <= 1200
    c.near_spin.setValue(1500)  # past the far end: the far end moves, the range never empties
    assert c.far_spin.value() > c.near_spin.value()


def test_display_loop_keeps_python_booleans_alive(qtbot, open_gui):
    """PySide6 6.12.0 dropped a reference to True on every pyqtgraph repaint, which aborts the app within about a
    minute (bool_dealloc); pyproject pins it out. This watches the refcount across a few seconds of display."""
    window = open_gui("demo")
    wait_frames(qtbot, window, 10)
    before = sys.getrefcount(True)
    wait_frames(qtbot, window, 60)
    assert sys.getrefcount(True) > before - 100


def test_screenshot_command_saves_the_whole_window(tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    done = subprocess.run([sys.executable, "-m", "handtrack.app.gui.main", "--source", "demo", "--screenshot",
                           str(out), "--frames", "20", "--size", "1300x850"], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    import cv2

    img = cv2.imread(str(out))
    assert img.shape[0] >= 850 and img.shape[1] >= 1300  # the window, at least as large as asked
    # The 3D view's GL rendering is in the picture.
    from handtrack.inference import skeleton
    assert colour_near(img, skeleton.FINGER_COLORS_BGR["middle"], 20) > 100


def test_unknown_source_is_a_one_line_error_and_exit_2(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    done = subprocess.run([sys.executable, "-m", "handtrack.app.gui.main", "--source", str(tmp_path / "nothing.bag"),
                           "--screenshot", str(tmp_path / "s.png"), "--frames", "5"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("handtrack-gui: error")]
    assert len(errors) == 1 and "nothing.bag" in errors[0]
    assert Path(tmp_path / "s.png").is_file()  # the window as it was, showing why
