"""`handtrack doctor`: plain lines about the machine, the model and the source, every check run."""
import json
from pathlib import Path

from handtrack.app.cli import main

SR305 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "realsense_sr305"


def test_doctor_on_the_demo_finds_nothing_wrong(tmp_path, capsys):
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--frames", "12", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    from handtrack.inference.model import read_info
    from handtrack.models_onnx import resolve
    shipped = read_info(resolve("murauer")).version
    finder = read_info(resolve("handfinder", "detector")).version
    assert "onnxruntime" in text and f"version {shipped}, int8" in text and "a hand in 12 of 12 frames" in text
    assert f"hand finder {finder} loaded" in text
    lines = json.loads(out.read_text())["lines"]
    assert {line["topic"] for line in lines} >= {"machine", "model", "source", "depth", "hand", "verdict"}
    assert not [line for line in lines if line["level"] == "PROBLEM"]


def test_doctor_names_a_wrong_depth_unit_and_a_missing_source(capsys):
    assert main(["doctor", "--source", str(SR305), "--depth-unit", "1"]) == 1
    text = capsys.readouterr().out
    assert "PROBLEM depth" in text and "--depth-unit" in text
    assert main(["doctor", "--source", str(SR305)]) == 0  # the right unit (the SR305's, the default)
    assert "a hand in 8 of 8 frames" in capsys.readouterr().out
    assert main(["doctor", "--source", "no/such/recording.mcap"]) == 1
    text = capsys.readouterr().out
    assert "PROBLEM source" in text and "verdict" in text  # the other checks still ran to the end
